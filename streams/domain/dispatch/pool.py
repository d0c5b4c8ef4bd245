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
from solver.model import Job, Problem, Solution, Vehicle
from streams.domain.ids import derived_id

SETTLED = frozenset({ev.OrderStatus.DELIVERED, ev.OrderStatus.RETURNED_TO_HUB, ev.OrderStatus.CANCELLED})
DISPATCH_REASON = "dispatch"  # RoutePlanned.reason of a new plan (a re-plan gives its triggers)

# Average urban road speeds (m/s) by vehicle; the full speed profile is the solver's business.
VEHICLE_SPEED_MPS: dict[ev.VehicleType, float] = {
    ev.VehicleType.BIKE: 4.5,
    ev.VehicleType.SCOOTER: 7.0,
    ev.VehicleType.CAR: 8.0,
    ev.VehicleType.VAN: 7.0,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingOrder:
    order_id: str
    lat: float
    lon: float
    window_start: datetime
    window_end: datetime
    service_s: int
    demand: tuple[float, float, float]  # weight_kg, volume_l, units
    skills: frozenset[str]
    priority: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FreeRider:
    rider_id: str
    vehicle: ev.VehicleType
    capacity: tuple[float, float, float]
    skills: frozenset[str]
    shift_start: datetime
    shift_end: datetime
    lat: float
    lon: float


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

    @property
    def ready(self) -> bool:
        """Worth planning: orders waiting, riders free, and something changed since the last plan."""
        return bool(self.pending) and bool(self.free) and self.version != self.planned_version


def on_event(pool: HubPool, event: ev.Event) -> HubPool:
    if isinstance(event, ev.EtaUpdated | ev.AlertRaised | ev.GpsPing):  # for the re-planner (streams.domain.dispatch.replan) only
        return pool
    clock = max(pool.clock, event.occurred_at) if pool.clock else event.occurred_at
    pending, free, taken, alerted = pool.pending, pool.free, pool.taken, pool.alerted
    match event:
        case ev.OrderCreated() if event.order_id not in taken:
            pending = {**pending, event.order_id: PendingOrder(
                order_id=event.order_id, lat=event.drop.lat, lon=event.drop.lon, window_start=event.window_start,
                window_end=event.window_end, service_s=event.service_time_s,
                demand=(event.weight_kg, event.volume_l, float(event.units)), skills=frozenset(event.required_skills),
                priority=event.priority)}
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
            free = {**free, event.rider_id: FreeRider(
                rider_id=event.rider_id, vehicle=event.vehicle_type,
                capacity=(event.capacity_weight_kg, event.capacity_volume_l, float(event.capacity_units)),
                skills=frozenset(event.skills), shift_start=event.shift_start, shift_end=event.shift_end,
                lat=event.start.lat, lon=event.start.lon)}
        case ev.RiderShiftEnded():
            free = {k: v for k, v in free.items() if k != event.rider_id}
    return dataclasses.replace(pool, pending=pending, free=free, taken=taken, alerted=alerted, clock=clock,
                               version=pool.version + 1, last_event_id=event.event_id)


def give_back(pool: HubPool, orders: Iterable[PendingOrder]) -> HubPool:
    """Orders a re-plan dropped from a route (an offline rider's, say, that no rider on a route
    could take): pending again, so a free rider's plan may take them."""
    back = {o.order_id: o for o in orders}
    if not back:
        return pool
    return dataclasses.replace(pool, pending={**pool.pending, **back}, taken=pool.taken - back.keys(),
                               version=pool.version + 1)


def take(pool: HubPool, order_ids: Iterable[str]) -> HubPool:
    """Orders a re-plan put on a route: out of ``pending`` for good."""
    ids = frozenset(order_ids)
    if not ids:
        return pool
    return dataclasses.replace(pool, pending={k: v for k, v in pool.pending.items() if k not in ids},
                               taken=pool.taken | ids)


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanInput:
    problem: Problem
    epoch: datetime
    orders: tuple[PendingOrder, ...]
    riders: tuple[FreeRider, ...]
    version: int
    plan_id: str  # deterministic: the same pool plans under the same id after a replay


def build_problem(pool: HubPool) -> PlanInput:
    """Times are seconds since the pool clock; riders start no earlier than now."""
    epoch = pool.clock or datetime.now().astimezone()
    riders = sorted(pool.free.values(), key=lambda r: r.rider_id)
    orders = sorted(pool.pending.values(), key=lambda o: o.order_id)

    def secs(t: datetime) -> int:
        return int((t - epoch).total_seconds())

    locations = [(r.lat, r.lon) for r in riders] + [(o.lat, o.lon) for o in orders]
    vehicles = tuple(
        Vehicle(id=r.rider_id, start=i, end=i, capacity=r.capacity, shift_start_s=max(0, secs(r.shift_start)),
                shift_end_s=max(1, secs(r.shift_end)), speed_mps=VEHICLE_SPEED_MPS[r.vehicle], skills=r.skills)
        for i, r in enumerate(riders)
    )
    jobs = tuple(
        Job(id=o.order_id, location=len(riders) + j, demand=o.demand, window_start_s=max(0, secs(o.window_start)),
            window_end_s=max(0, secs(o.window_end)), service_s=o.service_s, skills=o.skills, priority=o.priority)
        for j, o in enumerate(orders)
    )
    return PlanInput(problem=Problem(locations=tuple(locations), jobs=jobs, vehicles=vehicles), epoch=epoch,
                     orders=tuple(orders), riders=tuple(riders), version=pool.version,
                     plan_id=derived_id(pool.hub_id, f"plan/{pool.version}/{pool.last_event_id}"))


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanOutcome:
    pool: HubPool
    assignments: tuple[ev.OrderAssigned, ...]
    routes: tuple[ev.RoutePlanned, ...]
    alerts: tuple[ev.AlertRaised, ...]


def apply_plan(pool: HubPool, plan: PlanInput, solution: Solution) -> PlanOutcome:
    """Turn a solution into events, and take the assigned orders and busy riders out of ``pool``
    (the pool as it is now: it may have changed while the solver ran)."""
    at = plan.epoch
    plan_id = plan.plan_id
    riders = {r.rider_id: r for r in plan.riders}
    orders = {o.order_id: o for o in plan.orders}

    def t(s: int) -> datetime:
        return plan.epoch + timedelta(seconds=s)

    assignments: list[ev.OrderAssigned] = []
    routes: list[ev.RoutePlanned] = []
    for route in solution.routes:
        # Orders cancelled and riders gone while the solver ran are not planned; they drop out of
        # the route (the rest of it stays valid: removing a stop only makes it earlier).
        visits = [v for v in route.stops if v.job_id in pool.pending]
        if not visits or route.vehicle_id not in pool.free:
            continue
        rider = riders[route.vehicle_id]
        route_id = derived_id(plan_id, f"route/{rider.rider_id}")
        stops = []
        for seq, visit in enumerate(visits, start=1):
            order = orders[visit.job_id]
            stops.append(ev.PlannedStop(order_id=order.order_id, kind=ev.StopKind.DROP, lat=order.lat, lon=order.lon,
                                        planned_arrival=t(visit.arrival_s), service_time_s=order.service_s,
                                        window_start=order.window_start, window_end=order.window_end))
            assignments.append(ev.OrderAssigned(
                event_id=derived_id(route_id, f"assign/{order.order_id}"), occurred_at=at, order_id=order.order_id,
                rider_id=rider.rider_id, route_id=route_id, sequence=seq, planned_arrival=t(visit.arrival_s)))
        routes.append(ev.RoutePlanned(
            event_id=derived_id(route_id, "planned"), occurred_at=at, rider_id=rider.rider_id, route_id=route_id,
            hub_id=pool.hub_id, stops=tuple(stops), start=ev.GeoPoint(lat=rider.lat, lon=rider.lon),
            planned_start=t(route.start_s), planned_end=t(route.end_s), distance_m=route.distance_m,
            reason=DISPATCH_REASON))
    assigned = {a.order_id for a in assignments}
    busy = {r.rider_id for r in routes}
    alerts = tuple(
        ev.AlertRaised(event_id=derived_id(plan_id, f"unassignable/{u.job_id}"), occurred_at=at, subject_id=u.job_id,
                       kind="unassignable_order", severity=ev.Severity.WARNING, order_id=u.job_id,
                       message=f"order {u.job_id} could not be planned: {u.reason}")
        for u in solution.unassigned if u.job_id not in pool.alerted
    )
    new_pool = dataclasses.replace(
        pool, pending={k: v for k, v in pool.pending.items() if k not in assigned}, taken=pool.taken | assigned,
        free={k: v for k, v in pool.free.items() if k not in busy},
        alerted=pool.alerted | {a.order_id for a in alerts if a.order_id},
        planned_version=plan.version,
    )
    return PlanOutcome(pool=new_pool, assignments=tuple(assignments), routes=tuple(routes), alerts=alerts)
