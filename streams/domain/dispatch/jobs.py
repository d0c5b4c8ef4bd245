"""Orders, riders and travel times as the solver sees them, pure: the one way dispatch and re-plans
turn a hub's work into jobs and vehicles, and solver visits back into planned stops and breaks.

An order whose parcel is not on board yet is a pickup-and-drop pair: picked up at the store
(hyperlocal) or at the hub (a parcel loaded mid-route, by a rider coming back for more, or by a
free rider who is not at the hub); the same rider drops it after. A parcel on board, or loaded at
the start of a route that leaves from the hub, is a plain drop. A pickup's job id is the order id
plus :data:`PICKUP_SUFFIX` (also the tracker's fence id of the pickup).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from schemas import events as ev
from solver.geo import haversine_m
from solver.model import BREAK, Break, Job, Route, Vehicle
from solver.travel import PROFILES

PICKUP_SUFFIX = "/pickup"
AT_HUB_M = 150.0  # a rider this close to the hub is at it: parcels are loaded at the start
CIRCUITY = 1.3  # the planner's road distance over great-circle distance (solver.model.Problem.circuity)
PICKUP_SERVICE_S = 60  # handing a parcel over at a store or the hub's counter
# A skill every hub parcel needs and every rider has but those stationed at a store: they take
# store orders only, so that a promise at their store never waits for a rider on a long hub route.
HUB_PARCEL = "milestream:hub-parcel"
# Average urban road speeds (m/s) by vehicle when learned travel times are off.
VEHICLE_SPEED_MPS: dict[ev.VehicleType, float] = {
    ev.VehicleType.BIKE: 4.5,
    ev.VehicleType.SCOOTER: 7.0,
    ev.VehicleType.CAR: 8.0,
    ev.VehicleType.VAN: 7.0,
}

Point = tuple[float, float]
LATE_COST_PER_HOUR = 60.0  # soft windows: an hour late costs as much as 60 km driven
# A promise (a store's 15-30 minutes) is worth ten windows: ten minutes late costs 100 km, so a
# route does the promised pickup and drop before parcels that have hours left.
PROMISE_LATE_COST_PER_HOUR = 600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingOrder:
    """An order as dispatch plans it."""

    order_id: str
    lat: float
    lon: float
    window_start: datetime
    window_end: datetime  # the promise's deadline when it is earlier (hyperlocal)
    service_s: int
    demand: tuple[float, float, float]  # weight_kg, volume_l, units
    skills: frozenset[str]
    priority: int
    pickup: Point | None = None  # the store it is collected from (hyperlocal); None: the hub
    rider: str | None = None  # pinned by a dispatcher's manual assignment
    promised: bool = False  # window_end is a promise made at the order (OrderCreated.promise_min)

    @classmethod
    def of(cls, e: ev.OrderCreated) -> PendingOrder:
        end = e.window_end
        if e.promise_min is not None and e.promise_min > 0:
            end = min(end, e.occurred_at + timedelta(minutes=e.promise_min))
        return cls(order_id=e.order_id, lat=e.drop.lat, lon=e.drop.lon, window_start=min(e.window_start, end),
                   window_end=end, service_s=e.service_time_s, demand=(e.weight_kg, e.volume_l, float(e.units)),
                   skills=frozenset(e.required_skills), priority=e.priority,
                   pickup=(e.pickup.lat, e.pickup.lon) if e.pickup is not None else None,
                   promised=e.promise_min is not None and e.promise_min > 0)

    def updated(self, e: ev.OrderUpdated) -> PendingOrder:
        weight, volume, units = self.demand
        return dataclasses.replace(
            self, lat=e.drop.lat if e.drop else self.lat, lon=e.drop.lon if e.drop else self.lon,
            window_start=e.window_start or self.window_start, window_end=e.window_end or self.window_end,
            service_s=self.service_s if e.service_time_s is None else e.service_time_s,
            priority=self.priority if e.priority is None else e.priority,
            pickup=(e.pickup.lat, e.pickup.lon) if e.pickup else self.pickup,
            demand=(weight if e.weight_kg is None else e.weight_kg, volume if e.volume_l is None else e.volume_l,
                    units if e.units is None else float(e.units)))


@dataclass(frozen=True, slots=True, kw_only=True)
class FreeRider:
    """A rider on shift as dispatch plans them (free: where they are now)."""

    rider_id: str
    vehicle: ev.VehicleType
    capacity: tuple[float, float, float]
    skills: frozenset[str]
    shift_start: datetime
    shift_end: datetime
    lat: float
    lon: float
    breaks: tuple[ev.PlannedBreak, ...] = ()
    breaks_taken: frozenset[str] = frozenset()
    break_until: datetime | None = None  # on a break the app reported, until about then
    station: Point | None = None  # stationed at a store: routes end there, not at the hub

    @classmethod
    def of(cls, e: ev.RiderShiftStarted) -> FreeRider:
        return cls(rider_id=e.rider_id, vehicle=e.vehicle_type,
                   capacity=(e.capacity_weight_kg, e.capacity_volume_l, float(e.capacity_units)),
                   skills=frozenset(e.skills), shift_start=e.shift_start, shift_end=e.shift_end,
                   lat=e.start.lat, lon=e.start.lon, breaks=e.breaks,
                   station=(e.start.lat, e.start.lon) if e.station_id else None)


def order_jobs(order: PendingOrder, locations: Locations, epoch: datetime, *, collect_at: Point | None,
               travel: TravelTimes, vehicles: frozenset[str]) -> list[Job]:
    """The jobs of one order: its drop, after a pickup at ``collect_at`` when the parcel is not on
    board yet. Windows are soft: a late parcel is still delivered, at a cost."""

    def secs(t: datetime) -> int:
        return int((t - epoch).total_seconds())

    start = max(0, secs(order.window_start))
    end = max(start, secs(order.window_end))
    pinned = order.rider if order.rider in vehicles else None
    skills = order.skills if pinned else needs(order)  # a dispatcher's pin overrides the station
    late_cost = PROMISE_LATE_COST_PER_HOUR if order.promised else LATE_COST_PER_HOUR
    jobs = []
    if collect_at is not None:
        jobs.append(Job(id=pickup_id(order.order_id), location=locations.add(collect_at), demand=order.demand,
                        window_start_s=0, window_end_s=end, service_s=PICKUP_SERVICE_S, skills=skills,
                        priority=order.priority, late_cost_per_hour=late_cost, vehicle_id=pinned))
    jobs.append(Job(id=order.order_id, location=locations.add((order.lat, order.lon)), demand=order.demand,
                    window_start_s=start, window_end_s=end, service_s=travel.service_s(order.service_s),
                    skills=skills, priority=order.priority, late_cost_per_hour=late_cost,
                    pickup_id=jobs[0].id if jobs else None, vehicle_id=pinned))
    return jobs


def pickup_id(order_id: str) -> str:
    return order_id + PICKUP_SUFFIX


def order_of(job_id: str) -> tuple[str, ev.StopKind]:
    """The order a job belongs to, and whether it is its pickup or its drop."""
    if job_id.endswith(PICKUP_SUFFIX):
        return job_id[: -len(PICKUP_SUFFIX)], ev.StopKind.PICKUP
    return job_id, ev.StopKind.DROP


def is_pickup(job_id: str) -> bool:
    return job_id.endswith(PICKUP_SUFFIX)


@dataclass(frozen=True, slots=True, kw_only=True)
class TravelTimes:
    """How long legs and services take: learned (the tracker's ``TravelTimesLearned`` per vehicle
    type, else the time-of-day profiles) or one constant speed per vehicle."""

    learned: Mapping[str, ev.TravelTimesLearned]
    use_learned: bool = True

    def speed_mps(self, vehicle: ev.VehicleType, at: datetime, rider_id: str | None = None) -> float:
        """The speed a vehicle drives the planner's road distance (great circle x :data:`CIRCUITY`)
        for a departure at ``at``; the rider's own learned pace, when known, divides it."""
        if not self.use_learned:
            return VEHICLE_SPEED_MPS[vehicle]
        hour = at.astimezone(UTC).hour
        known = self.learned.get(str(vehicle))
        if known is not None and len(known.leg_speed_mps) == 24 and known.leg_speed_mps[hour] > 0:
            chord = known.leg_speed_mps[hour]
        else:
            profile = PROFILES[str(vehicle)]
            chord = profile.speed_mps * profile.hourly_factors[hour] / profile.circuity
        pace = 1.0
        if known is not None and rider_id is not None:
            pace = next((f.travel_factor for f in known.rider_factors if f.rider_id == rider_id), 1.0)
            pace = min(2.0, max(0.5, pace)) if math.isfinite(pace) else 1.0
        return max(0.5, chord * CIRCUITY / pace)

    def speed_steps(self, vehicle: ev.VehicleType, at: datetime, rider_id: str | None = None
                    ) -> tuple[tuple[int, float], ...]:
        """The speed of each hour from ``at`` on (seconds since ``at``), a day ahead, for the times a
        plan publishes (:func:`solver.model.retime`); none with one constant speed."""
        if not self.use_learned:
            return ()
        first = 3600 - (at.minute * 60 + at.second + at.microsecond / 1e6)  # the next full hour
        starts = [0, *(math.ceil(first) + 3600 * k for k in range(24))]
        return tuple((s, self.speed_mps(vehicle, at + timedelta(seconds=s), rider_id)) for s in starts)

    def service_s(self, planned_s: int) -> int:
        """An order's service time as the hub's riders really take it (the vehicle types' mean factor)."""
        factors = [k.service_factor for k in self.learned.values()
                   if k.legs > 0 and math.isfinite(k.service_factor) and k.service_factor > 0]
        if not self.use_learned or not factors:
            return planned_s
        return max(0, round(planned_s * min(4.0, max(0.25, sum(factors) / len(factors)))))


CONSTANT = TravelTimes(learned={}, use_learned=False)


class Locations:
    """Problem locations, each coordinate once."""

    def __init__(self) -> None:
        self.points: list[Point] = []
        self._index: dict[Point, int] = {}

    def add(self, point: Point) -> int:
        index = self._index.get(point)
        if index is None:
            index = self._index[point] = len(self.points)
            self.points.append(point)
        return index


def at_hub(position: Point, depot: Point | None) -> bool:
    return depot is not None and haversine_m(position, depot) <= AT_HUB_M


def solver_breaks(breaks: Iterable[ev.PlannedBreak], epoch: datetime, taken: Iterable[str] = ()) -> tuple[Break, ...]:
    """A shift's planned breaks not yet taken whose window has not closed, in seconds since ``epoch``."""
    done = set(taken)
    out = []
    for b in breaks:
        latest = int((b.latest_start - epoch).total_seconds())
        if b.break_id in done or latest < 0 or b.duration_s <= 0:
            continue
        out.append(Break(id=b.break_id, earliest_start_s=max(0, int((b.earliest_start - epoch).total_seconds())),
                         latest_start_s=latest, duration_s=b.duration_s))
    return tuple(out)


def route_breaks(route: Route | None, epoch: datetime) -> tuple[ev.RouteBreak, ...]:
    if route is None:
        return ()
    return tuple(ev.RouteBreak(break_id=v.job_id, start=epoch + timedelta(seconds=v.start_s),
                               end=epoch + timedelta(seconds=v.departure_s))
                 for v in route.visits if v.kind == BREAK)


def needs(order: PendingOrder) -> frozenset[str]:
    """The skills a rider needs for the order: its own, and :data:`HUB_PARCEL` for a hub parcel."""
    return order.skills if order.pickup is not None else order.skills | {HUB_PARCEL}


def has(rider: FreeRider) -> frozenset[str]:
    """The skills the rider brings: its own, and :data:`HUB_PARCEL` unless stationed at a store."""
    return rider.skills if rider.station is not None else rider.skills | {HUB_PARCEL}


def vehicle_for(*, rider_id: str, vehicle: ev.VehicleType, capacity: tuple[float, float, float], skills: frozenset[str],
                start: int, end: int, shift_start_s: int, shift_end_s: int, breaks: tuple[Break, ...],
                travel: TravelTimes, at: datetime) -> Vehicle:
    shift_start_s = max(0, shift_start_s)
    return Vehicle(id=rider_id, start=start, end=end, capacity=capacity, shift_start_s=shift_start_s,
                   shift_end_s=max(shift_start_s, shift_end_s), speed_mps=travel.speed_mps(vehicle, at, rider_id),
                   speed_steps=travel.speed_steps(vehicle, at, rider_id), skills=skills, profile=str(vehicle),
                   breaks=tuple(b for b in breaks if b.latest_start_s >= shift_start_s))


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedVisit:
    """A job visit of a solved route as a published stop: which order, pickup or drop, where, when."""

    order_id: str
    kind: ev.StopKind
    lat: float
    lon: float
    arrival: datetime
    service_s: int


def published_stops(visits: Sequence[tuple[str, float, float, datetime, int]], start: Point,
                    depot: Point | None) -> list[PlannedVisit]:
    """``(job id, lat, lon, arrival, service s)`` in route order, as stops; pickups at the hub that open a
    route leaving from the hub are the load it starts with, not stops."""
    out: list[PlannedVisit] = []
    loading = at_hub(start, depot)
    for job_id, lat, lon, arrival, service_s in visits:
        order_id, kind = order_of(job_id)
        if loading and kind is ev.StopKind.PICKUP and at_hub((lat, lon), depot):
            continue
        loading = False
        out.append(PlannedVisit(order_id=order_id, kind=kind, lat=lat, lon=lon, arrival=arrival, service_s=service_s))
    return out


def pickups_before_drops(stops: Sequence[ev.PlannedStop]) -> bool:
    """Each pickup comes before its order's drop (the rule every published route keeps)."""
    dropped: set[str] = set()
    for s in stops:
        if s.kind is ev.StopKind.DROP:
            dropped.add(s.order_id)
        elif s.order_id in dropped:
            return False
    return True
