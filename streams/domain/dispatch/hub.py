"""A hub's dispatch state, pure: dispatch's pool (work not yet planned, free riders) and the
routes being driven (:mod:`streams.domain.dispatch.replan`), side by side as the ``hub-pool``
table value, and its fold: dispatch-queue events in, dispatch's plans and finished re-plans in,
and what a finished re-plan publishes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from schemas import events as ev
from solver.model import Solution
from streams.domain.dispatch import pool as dispatch
from streams.domain.dispatch.pool import HubPool
from streams.domain.dispatch.replan import (
    DISPATCH_PARAMS,
    Fix,
    ReplanOutcome,
    ReplanParams,
    ReplanRequest,
    ReplanState,
    abandon,
    apply_result,
    due,
    is_settled,
    on_event,
    on_fixes,
)
from streams.domain.ids import derived_id


@dataclass(frozen=True, slots=True, kw_only=True)
class Hub:
    """A hub's dispatch state (the ``hub-pool`` table value): work not yet planned, the routes
    being driven, and the re-plans being solved (kept so that a worker dying mid-solve loses no
    trigger: the next round gives them back)."""

    pool: HubPool
    routes: ReplanState
    solving: tuple[ReplanRequest, ...] = ()


class Published(NamedTuple):
    """What a finished re-plan tells the world."""

    assignments: tuple[ev.OrderAssigned, ...]
    routes: tuple[ev.RoutePlanned, ...]
    alerts: tuple[ev.AlertRaised, ...]


def hub_state(value: Hub | HubPool | None, hub_id: str) -> Hub:
    """The table value as a :class:`Hub`. A bare pool was stored before re-planning: it gets no
    routes, and the pool fields it was pickled without (``taken``) their defaults."""
    if isinstance(value, Hub):
        return value
    pool = HubPool(hub_id=hub_id)
    if value is not None:
        pool = HubPool(**{f.name: getattr(value, f.name) for f in dataclasses.fields(HubPool) if hasattr(value, f.name)})
    return Hub(pool=pool, routes=ReplanState(hub_id=hub_id))


def on_hub_event(hub: Hub, event: ev.Event, params: ReplanParams = DISPATCH_PARAMS) -> Hub:
    """A dispatch-queue event into both; a status change with a location is also the rider's latest fix.
    Events of an order settled (:func:`streams.domain.dispatch.replan.is_settled`) change nothing:
    neither half keeps settled orders, so a redelivered ``OrderCreated`` must not bring one back."""
    order_id = getattr(event, "order_id", None)
    if order_id is not None and is_settled(hub.routes, order_id):
        return hub
    routes = on_event(hub.routes, event, params)
    if isinstance(event, ev.StatusChanged) and event.rider_id and event.location is not None:
        routes = on_fixes(routes, {event.rider_id: Fix(event.location.lat, event.location.lon,
                                                       event.occurred_at.timestamp())})
    elif isinstance(event, ev.GpsPing):  # a device back after an offline alert (the tracker forwards it)
        routes = on_fixes(routes, {event.rider_id: Fix(event.lat, event.lon, event.device_time.timestamp())})
    return dataclasses.replace(hub, pool=dispatch.on_event(hub.pool, event), routes=routes)


def on_dispatched(hub: Hub, outcome: dispatch.PlanOutcome, params: ReplanParams = DISPATCH_PARAMS) -> Hub:
    """Dispatch planned (``outcome`` applied to this hub's pool): its routes are now driven, and re-planned."""
    routes = hub.routes
    for route in outcome.routes:
        routes = on_event(routes, route, params)
    return dataclasses.replace(hub, pool=outcome.pool, routes=routes)


def start_replans(hub: Hub, now: float, params: ReplanParams = DISPATCH_PARAMS) -> tuple[Hub, list[ReplanRequest]]:
    """The re-plans due at ``now``, recorded as being solved; requests of a solve that never
    finished (the worker died) give their triggers back first."""
    routes = hub.routes
    for request in hub.solving:
        routes = abandon(routes, request)
    routes, requests = due(routes, now, params)
    return dataclasses.replace(hub, routes=routes, solving=tuple(requests)), requests


def fail_replan(hub: Hub, request: ReplanRequest) -> Hub:
    """The solve raised: the triggers wait for the next round."""
    return dataclasses.replace(hub, routes=abandon(hub.routes, request),
                               solving=tuple(r for r in hub.solving if r.request_id != request.request_id))


def finish_replan(hub: Hub, request: ReplanRequest, solution: Solution, now: float,
                  params: ReplanParams = DISPATCH_PARAMS) -> tuple[Hub, ReplanOutcome, Published]:
    """Apply the solver's answer (to the hub as it is now) and say what to publish: a route per
    changed rider with the re-plan's reason, an assignment per stop new to its rider (an urgent
    order leaves dispatch's pool with it), an alert per order dropped from a route (it goes back to
    dispatch's pool, where a free rider's plan may take it)."""
    before = {r: set(p.stops) | ({p.started} if p.started else set()) for r, p in hub.routes.plans.items()}
    routes, outcome = apply_result(hub.routes, request, solution, now, params)
    placed = {s.order_id for p in outcome.plans for s in p.stops}
    dropped = [routes.orders[u.order_id] for u in outcome.unassignable if u.order_id in routes.orders]
    hub = dataclasses.replace(hub, pool=dispatch.give_back(dispatch.take(hub.pool, placed), dropped), routes=routes,
                              solving=tuple(r for r in hub.solving if r.request_id != request.request_id))
    at = _dt(now)
    assignments: list[ev.OrderAssigned] = []
    planned: list[ev.RoutePlanned] = []
    for plan in outcome.plans:
        stops = []
        for seq, stop in enumerate(plan.stops, start=1):
            order = routes.orders.get(stop.order_id)
            stops.append(ev.PlannedStop(
                order_id=stop.order_id, kind=ev.StopKind.DROP, lat=stop.lat, lon=stop.lon,
                planned_arrival=_dt(stop.planned_arrival_s), service_time_s=stop.service_s,
                window_start=order.window_start if order else None, window_end=order.window_end if order else None))
            if stop.order_id not in before.get(plan.rider_id, ()):
                assignments.append(ev.OrderAssigned(
                    event_id=derived_id(plan.route_id, f"assign/{stop.order_id}"), occurred_at=at,
                    order_id=stop.order_id, rider_id=plan.rider_id, route_id=plan.route_id, sequence=seq,
                    planned_arrival=_dt(stop.planned_arrival_s)))
        planned.append(ev.RoutePlanned(
            event_id=derived_id(plan.route_id, "planned"), occurred_at=at, rider_id=plan.rider_id,
            route_id=plan.route_id, hub_id=plan.hub_id, stops=tuple(stops),
            start=ev.GeoPoint(lat=plan.start[0], lon=plan.start[1]), planned_start=_dt(plan.planned_start_s),
            planned_end=_dt(plan.planned_end_s), distance_m=plan.distance_m, reason=plan.reason))
    alerts = tuple(
        ev.AlertRaised(event_id=derived_id(u.request_id, f"dropped/{u.order_id}"), occurred_at=at,
                       subject_id=u.order_id, kind="replan_dropped_order", severity=ev.Severity.WARNING,
                       rider_id=u.previous_rider, order_id=u.order_id,
                       message=f"order {u.order_id} dropped from {u.previous_rider}'s route by a re-plan "
                               f"({request.reason}): {u.reason}; back with dispatch for a free rider")
        for u in outcome.unassignable)
    return hub, outcome, Published(assignments=tuple(assignments), routes=tuple(planned), alerts=alerts)


def _dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
