"""Dispatch policy, pure: a hub's pool of unassigned orders and free riders, the routing
problem built from it, and the assignments and route plans made from a solution.

The solve itself (OR-Tools) is the caller's business: it runs off the event loop.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas import events as ev
from solver.model import Problem, Solution, retime
from streams.domain.dispatch.departure import NO_HOLD, Hold, StopTimes, hold_s, later
from streams.domain.dispatch.jobs import (
    CONSTANT,
    VEHICLE_SPEED_MPS,
    FreeRider,
    Locations,
    PendingOrder,
    Point,
    TravelTimes,
    at_hub,
    has,
    needs,
    order_jobs,
    order_of,
    published_stops,
    route_breaks,
    solver_breaks,
    vehicle_for,
)
from streams.domain.ids import derived_id

__all__ = ["CONSTANT", "VEHICLE_SPEED_MPS", "FreeRider", "HubPool", "PendingOrder", "PlanInput", "PlanOutcome", "apply_plan",
           "build_problem", "give_back", "on_event", "take"]

SETTLED = frozenset({ev.OrderStatus.DELIVERED, ev.OrderStatus.RETURNED_TO_HUB, ev.OrderStatus.CANCELLED})
DISPATCH_REASON = "dispatch"  # RoutePlanned.reason of a new plan (a re-plan gives its triggers)


@dataclass(frozen=True, slots=True, kw_only=True)
class HubPool:
    hub_id: str
    pending: dict[str, PendingOrder] = dataclasses.field(default_factory=dict)
    free: dict[str, FreeRider] = dataclasses.field(default_factory=dict)
    clock: datetime | None = None  # latest event time seen: "now" for planning
    alerted: frozenset[str] = frozenset()  # orders already reported unassignable
    version: int = 0  # events folded in
    planned_version: int = 0  # version the last plan was made from
    last_event_id: str = ""
    # Orders planned (here or by a re-plan) or already past ``created``, until they settle: a
    # redelivered OrderCreated must not put them back in ``pending``, or they would be planned twice
    # (once settled, the hub's routes remember them: :func:`streams.domain.dispatch.replan.is_settled`).
    taken: frozenset[str] = frozenset()
    depot: Point | None = None  # the hub's place (where its riders' shifts start)
    travel: dict[str, ev.TravelTimesLearned] = dataclasses.field(default_factory=dict)  # vehicle type -> learned

    def plannable(self, horizon_s: float) -> list[PendingOrder]:
        """Pending orders whose window opens within the horizon (the rest wait for it: a rolling horizon)."""
        if self.clock is None:
            return list(self.pending.values())
        until = self.clock + timedelta(seconds=min(horizon_s, 400 * 86_400.0))
        return [o for o in self.pending.values() if o.window_start <= until]

    def on_shift(self) -> list[FreeRider]:
        """Free riders whose shift has not ended (one past its end can take nothing new)."""
        return [r for r in self.free.values() if self.clock is None or r.shift_end > self.clock]

    def free_for(self, order: PendingOrder, skills: list[frozenset[str]] | None = None) -> bool:
        """A free rider on shift may take the order (a hub parcel needs a rider of the hub, not one
        stationed at a store): else it is for the riders on routes. ``skills``: the free riders'
        :func:`~streams.domain.dispatch.jobs.has`, when the caller asks for many orders."""
        need = needs(order)
        return any(need <= s for s in (self._skills() if skills is None else skills))

    def _skills(self) -> list[frozenset[str]]:
        return [has(r) for r in self.on_shift()]

    def ready(self, horizon_s: float) -> bool:
        """Worth planning: orders due within the horizon that a free rider may take, and something changed
        since the last plan."""
        if self.version == self.planned_version:
            return False
        skills = self._skills()
        return bool(skills) and any(self.free_for(o, skills) for o in self.plannable(horizon_s))


def on_event(pool: HubPool, event: ev.Event) -> HubPool:
    if isinstance(event, ev.EtaUpdated | ev.AlertRaised | ev.GpsPing):  # for the re-planner (streams.domain.dispatch.replan) only
        return pool
    clock = max(pool.clock, event.occurred_at) if pool.clock else event.occurred_at
    pending, free, taken, alerted = pool.pending, pool.free, pool.taken, pool.alerted
    depot, travel = pool.depot, pool.travel
    match event:
        case ev.OrderCreated() if event.order_id not in taken:
            pending = {**pending, event.order_id: PendingOrder.of(event)}
        case ev.OrderUpdated() if event.order_id in pending:
            pending = {**pending, event.order_id: pending[event.order_id].updated(event)}
        case ev.OrderCancelled():
            pending = {k: v for k, v in pending.items() if k != event.order_id}
            taken, alerted = taken - {event.order_id}, alerted - {event.order_id}
        case ev.StatusChanged() if event.to_status in SETTLED:  # settled: the pool forgets it
            pending = {k: v for k, v in pending.items() if k != event.order_id}
            taken, alerted = taken - {event.order_id}, alerted - {event.order_id}
        case ev.StatusChanged():  # on its way (assigned elsewhere, out, failed...): not dispatch's to plan
            pending = {k: v for k, v in pending.items() if k != event.order_id}
            taken = taken | {event.order_id}
        case ev.RiderShiftStarted():
            free = {**free, event.rider_id: FreeRider.of(event)}
            if event.station_id is None:  # the hub's place: where its riders not stationed elsewhere start
                depot = depot or (event.start.lat, event.start.lon)
        case ev.RiderShiftEnded():
            free = {k: v for k, v in free.items() if k != event.rider_id}
        case ev.BreakStarted() if event.rider_id in free:
            rider = free[event.rider_id]
            until = event.expected_end or event.occurred_at + timedelta(minutes=30)
            free = {**free, rider.rider_id: dataclasses.replace(
                rider, break_until=until,
                breaks_taken=rider.breaks_taken | ({event.break_id} if event.break_id else set()))}
        case ev.BreakEnded() if event.rider_id in free:
            free = {**free, event.rider_id: dataclasses.replace(free[event.rider_id], break_until=None)}
        case ev.TravelTimesLearned():
            travel = {**travel, str(event.vehicle_type): event}
    return dataclasses.replace(pool, pending=pending, free=free, taken=taken, alerted=alerted, clock=clock,
                               depot=depot, travel=travel, version=pool.version + 1, last_event_id=event.event_id)


def give_back(pool: HubPool, orders: Iterable[PendingOrder]) -> HubPool:
    """Orders a re-plan dropped from a route (an offline rider's, say, that no rider on a route
    could take), or a failed one to try again: pending again, so a free rider's plan may take them."""
    back = {o.order_id: o for o in orders}
    if not back:
        return pool
    return dataclasses.replace(pool, pending={**pool.pending, **back}, taken=pool.taken - back.keys(),
                               alerted=pool.alerted - back.keys(), version=pool.version + 1)


def take(pool: HubPool, order_ids: Iterable[str]) -> HubPool:
    """Orders a re-plan put on a route: out of ``pending`` for good."""
    ids = frozenset(order_ids)
    if not ids:
        return pool
    return dataclasses.replace(pool, pending={k: v for k, v in pool.pending.items() if k not in ids},
                               taken=pool.taken | ids)


def rejoin(pool: HubPool, rider: FreeRider) -> HubPool:
    """A rider whose route is done is free again, from where they are."""
    return dataclasses.replace(pool, free={**pool.free, rider.rider_id: rider}, version=pool.version + 1)


def travel_times(pool: HubPool, use_learned: bool) -> TravelTimes:
    return TravelTimes(learned=pool.travel, use_learned=use_learned) if use_learned else CONSTANT


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanInput:
    problem: Problem
    epoch: datetime
    orders: tuple[PendingOrder, ...]
    riders: tuple[FreeRider, ...]
    version: int
    plan_id: str  # deterministic: the same pool plans under the same id after a replay


def build_problem(pool: HubPool, horizon_s: float = float("inf"), travel: TravelTimes | None = None,
                  even_workload: bool = False, exclude: Iterable[str] = ()) -> PlanInput:
    """The free riders and the orders due within the horizon (but ``exclude``: offered to riders
    waiting at the hub, see :func:`streams.domain.dispatch.hub.offer_to_waiting`). Times are seconds since the pool
    clock; riders start no earlier than now (or the end of a break they are on). When every free
    rider is at the hub, hub parcels are loaded at the start (plain drops); otherwise they are
    collected at the hub (pairs), as store orders always are."""
    epoch = pool.clock or datetime.now().astimezone()
    travel = travel or travel_times(pool, True)
    riders = sorted(pool.on_shift(), key=lambda r: r.rider_id)
    skip = frozenset(exclude)
    hub_riders = any(r.station is None for r in riders)  # hub parcels wait for one (see jobs.HUB_PARCEL)
    orders = sorted((o for o in pool.plannable(horizon_s) if o.order_id not in skip
                     and (hub_riders or o.pickup is not None)), key=lambda o: o.order_id)
    loaded_at_start = all(at_hub((r.lat, r.lon), pool.depot) for r in riders) or pool.depot is None

    def secs(t: datetime) -> int:
        return int((t - epoch).total_seconds())

    locations = Locations()
    vehicles = []
    for r in riders:
        here = locations.add((r.lat, r.lon))
        home = locations.add(r.station or pool.depot) if (r.station or pool.depot) is not None else here
        start = max(0, secs(r.shift_start), secs(r.break_until) if r.break_until else 0)
        vehicles.append(vehicle_for(rider_id=r.rider_id, vehicle=r.vehicle, capacity=r.capacity, skills=has(r),
                                    start=here, end=home, shift_start_s=start, shift_end_s=max(1, secs(r.shift_end)),
                                    breaks=solver_breaks(r.breaks, epoch, r.breaks_taken), travel=travel, at=epoch))
    ids = frozenset(r.rider_id for r in riders)
    jobs = []
    for o in orders:
        collect = o.pickup if o.pickup is not None else (None if loaded_at_start else pool.depot)
        jobs.extend(order_jobs(o, locations, epoch, collect_at=collect, travel=travel, vehicles=ids))
    problem = Problem(locations=tuple(locations.points), jobs=tuple(jobs), vehicles=tuple(vehicles),
                      even_workload=even_workload)
    return PlanInput(problem=problem, epoch=epoch, orders=tuple(orders), riders=tuple(riders), version=pool.version,
                     plan_id=derived_id(pool.hub_id, f"plan/{pool.version}/{pool.last_event_id}"))


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanOutcome:
    pool: HubPool
    assignments: tuple[ev.OrderAssigned, ...]
    routes: tuple[ev.RoutePlanned, ...]
    alerts: tuple[ev.AlertRaised, ...]


def apply_plan(pool: HubPool, plan: PlanInput, solution: Solution, hold: Hold = NO_HOLD) -> PlanOutcome:
    """Turn a solution into events, and take the assigned orders and busy riders out of ``pool``
    (the pool as it is now: it may have changed while the solver ran). A route leaving the hub
    leaves when ``hold`` says (:mod:`streams.domain.dispatch.departure`)."""
    at = plan.epoch
    plan_id = plan.plan_id
    riders = {r.rider_id: r for r in plan.riders}
    orders = {o.order_id: o for o in plan.orders}
    points = plan.problem.locations
    jobs = {j.id: j for j in plan.problem.jobs}
    vehicles = {v.id: v for v in plan.problem.vehicles}

    def t(s: int) -> datetime:
        return plan.epoch + timedelta(seconds=s)

    assignments: list[ev.OrderAssigned] = []
    routes: list[ev.RoutePlanned] = []
    for solved in solution.routes:
        route = retime(solved, vehicles[solved.vehicle_id])  # each leg at the speed of the hour it is driven in
        # Orders cancelled and riders gone while the solver ran are not planned; they drop out of
        # the route (the rest of it stays valid: removing a stop only makes it earlier).
        visits = [v for v in route.stops if order_of(v.job_id)[0] in pool.pending]
        if not visits or route.vehicle_id not in pool.free:
            continue
        rider = riders[route.vehicle_id]
        route_id = derived_id(plan_id, f"route/{rider.rider_id}")
        planned = published_stops(
            [(v.job_id, *points[jobs[v.job_id].location], t(v.arrival_s), jobs[v.job_id].service_s) for v in visits],
            (rider.lat, rider.lon), pool.depot)
        wait = timedelta(0)
        if pool.depot is not None and at_hub((rider.lat, rider.lon), pool.depot):
            start = max(at, t(route.start_s))
            wait = timedelta(seconds=hold_s(start.timestamp(), [
                StopTimes(s.kind, s.arrival.timestamp(), orders[s.order_id].window_start.timestamp(),
                          orders[s.order_id].window_end.timestamp()) for s in planned], at.timestamp(), hold))
            planned = [dataclasses.replace(s, arrival=s.arrival + wait) for s in planned]
        stops = []
        seq = 0
        for stop in planned:
            order = orders[stop.order_id]
            stops.append(ev.PlannedStop(order_id=order.order_id, kind=stop.kind, lat=stop.lat, lon=stop.lon,
                                        planned_arrival=stop.arrival, service_time_s=stop.service_s,
                                        window_start=order.window_start, window_end=order.window_end))
            if stop.kind is ev.StopKind.DROP:
                seq += 1
                assignments.append(ev.OrderAssigned(
                    event_id=derived_id(route_id, f"assign/{order.order_id}"), occurred_at=at, order_id=order.order_id,
                    rider_id=rider.rider_id, route_id=route_id, sequence=seq, planned_arrival=stop.arrival))
        routes.append(ev.RoutePlanned(
            event_id=derived_id(route_id, "planned"), occurred_at=at, rider_id=rider.rider_id, route_id=route_id,
            hub_id=pool.hub_id, stops=tuple(stops), start=ev.GeoPoint(lat=rider.lat, lon=rider.lon),
            planned_start=t(route.start_s) + wait, planned_end=t(route.end_s) + wait, distance_m=route.distance_m,
            reason=DISPATCH_REASON, breaks=later(route_breaks(route, plan.epoch), wait.total_seconds())))
    assigned = {a.order_id for a in assignments}
    busy = {r.rider_id for r in routes}
    unplanned = {order_of(u.job_id)[0]: u.reason for u in solution.unassigned}
    alerts = tuple(
        ev.AlertRaised(event_id=derived_id(plan_id, f"unassignable/{o}"), occurred_at=at, subject_id=o,
                       kind="unassignable_order", severity=ev.Severity.WARNING, order_id=o,
                       message=f"order {o} could not be planned: {why}")
        for o, why in unplanned.items() if o not in pool.alerted and o not in assigned
    )
    new_pool = dataclasses.replace(
        pool, pending={k: v for k, v in pool.pending.items() if k not in assigned}, taken=pool.taken | assigned,
        free={k: v for k, v in pool.free.items() if k not in busy},
        alerted=pool.alerted | {a.order_id for a in alerts if a.order_id},
        planned_version=plan.version,
    )
    return PlanOutcome(pool=new_pool, assignments=tuple(assignments), routes=tuple(routes), alerts=alerts)
