"""A hub's dispatch state, pure: dispatch's pool (work not yet planned, free riders) and the
routes being driven (:mod:`streams.domain.dispatch.replan`), side by side as the ``hub-pool``
table value, and its fold: dispatch-queue events in, dispatch's plans and finished re-plans in,
and what a finished re-plan publishes."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from schemas import events as ev
from solver.model import Solution
from streams.domain.dispatch import departure, replan
from streams.domain.dispatch import pool as dispatch
from streams.domain.dispatch.jobs import order_of
from streams.domain.dispatch.pool import HubPool
from streams.domain.dispatch.replan import (
    DISPATCH_PARAMS,
    Fix,
    ReplanOutcome,
    ReplanParams,
    ReplanRequest,
    ReplanState,
    Trigger,
    TriggerKind,
    abandon,
    apply_result,
    due,
    is_settled,
    on_event,
    on_fixes,
)
from streams.domain.hub_policy import HubPolicy
from streams.domain.ids import derived_id

REOFFER_S = 300.0  # an order no rider on a route took is offered again after this long (stream time)
REOFFER_PROMISED_S = 60.0  # ...or this long for a store's order: its promise is minutes away


@dataclass(frozen=True, slots=True, kw_only=True)
class Hub:
    """A hub's dispatch state (the ``hub-pool`` table value): work not yet planned, the routes
    being driven, and the re-plans being solved (kept so that a worker dying mid-solve loses no
    trigger: the next round gives them back)."""

    pool: HubPool
    routes: ReplanState
    solving: tuple[ReplanRequest, ...] = ()
    awaiting_slot: frozenset[str] = frozenset()  # failed orders waiting for the customer to pick a window
    offered: dict[str, float] = dataclasses.field(default_factory=dict)  # order -> when last offered to riders on routes
    # hub parcels offered to riders waiting at the hub (departure waves): not dispatch's to plan
    # until that re-plan is done
    to_waiting: dict[str, float] = dataclasses.field(default_factory=dict)
    # order -> the riders whose re-plan left it out: not offered to them again while others may take
    # it (a rider held for a late window with its shift nearly over would otherwise take every hub
    # parcel from dispatch, round after round, and place none; the three nearest riders on routes
    # would be asked every few minutes while a fourth had room)
    passed: dict[str, frozenset[str]] = dataclasses.field(default_factory=dict)


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
    neither half keeps settled orders, so a redelivered ``OrderCreated`` must not bring one back.
    A failed order the policy re-attempts goes back to the pool with its new window; a rider whose
    route is done joins the pool again, from where they are."""
    order_id = getattr(event, "order_id", None)
    if order_id is not None and is_settled(hub.routes, order_id):
        return hub
    routes = on_event(hub.routes, event, params)
    if isinstance(event, ev.StatusChanged) and event.rider_id and event.location is not None:
        routes = on_fixes(routes, {event.rider_id: Fix(event.location.lat, event.location.lon,
                                                       event.occurred_at.timestamp())})
    elif isinstance(event, ev.GpsPing):  # a device back after an offline alert (the tracker forwards it)
        routes = on_fixes(routes, {event.rider_id: Fix(event.lat, event.lon, event.device_time.timestamp())})
    pool = dispatch.on_event(hub.pool, event)
    if isinstance(event, ev.OrderCreated) and event.order_id in pool.pending and pool.free_for(pool.pending[event.order_id]):
        # a free rider is the better answer to an urgent order than a detour on a route in progress:
        # dispatch's next plan takes it (if that plan leaves it out, it is offered to routes then)
        routes = replan.drop_trigger(routes, TriggerKind.URGENT_ORDER, event.order_id)
    hub = dataclasses.replace(hub, pool=pool, routes=routes)
    match event:
        case ev.AttemptDecided():
            hub = _attempt_decided(hub, event)
        case ev.OrderUpdated() if event.order_id in hub.awaiting_slot and event.window_start and event.window_end:
            hub = _back_to_pool(dataclasses.replace(hub, awaiting_slot=hub.awaiting_slot - {event.order_id}),
                                event.order_id, event.window_start, event.window_end)
        case ev.OrderAssigned() if event.manual:
            hub = _manual(hub, event)
        case ev.OrderCancelled():
            hub = rejoin_finished(dataclasses.replace(hub, awaiting_slot=hub.awaiting_slot - {event.order_id}))
        case ev.StatusChanged() | ev.RiderShiftEnded():
            hub = rejoin_finished(hub)
    return hub


def _attempt_decided(hub: Hub, e: ev.AttemptDecided) -> Hub:
    if e.decision is ev.AttemptDecision.AWAIT_CUSTOMER_SLOT:
        return dataclasses.replace(hub, awaiting_slot=hub.awaiting_slot | {e.order_id})
    if e.decision is ev.AttemptDecision.REATTEMPT and e.window_start is not None and e.window_end is not None:
        return _back_to_pool(hub, e.order_id, e.window_start, e.window_end)
    return hub  # back to the hub: the rider brings it; nothing to plan


def _back_to_pool(hub: Hub, order_id: str, start: datetime, end: datetime) -> Hub:
    """A failed order tried again: collected at the hub (the parcel comes back there), in its new window."""
    order = hub.routes.orders.get(order_id)
    if order is None:
        return hub
    order = dataclasses.replace(order, window_start=start, window_end=max(start, end), pickup=None, rider=None,
                                promised=False)
    routes = dataclasses.replace(hub.routes, orders={**hub.routes.orders, order_id: order},
                                 closed=hub.routes.closed - {order_id}, delayed=hub.routes.delayed - {order_id},
                                 pins={k: v for k, v in hub.routes.pins.items() if k != order_id})
    return dataclasses.replace(hub, routes=routes, pool=dispatch.give_back(hub.pool, [order]),
                               offered={k: v for k, v in hub.offered.items() if k != order_id})


def _manual(hub: Hub, e: ev.OrderAssigned) -> Hub:
    """A dispatcher's assignment: a rider on a route gets it by a re-plan (see
    :mod:`streams.domain.dispatch.replan`); a free rider by the next plan, the order pinned to them."""
    pool = hub.pool
    if e.rider_id in pool.free and e.order_id in hub.routes.orders:
        order = dataclasses.replace(hub.routes.orders[e.order_id], rider=e.rider_id)
        return dataclasses.replace(hub, pool=dispatch.give_back(pool, [order]))
    return dataclasses.replace(hub, pool=dispatch.take(pool, [e.order_id]))


def with_positions(hub: Hub, fixes: Mapping[str, Fix]) -> Hub:
    """The riders' latest fixes (the tracker sends a moving rider's first of each minute; the
    agent holds them in memory, not in its table), folded in where newer than what the hub knew: re-plans and
    free riders' plans start from where the riders are. A rider the hub holds offline comes back
    by the fix the tracker sends for that, not by these."""
    known = hub.routes.positions
    newer = {r: f for r, f in fixes.items()
             if r not in hub.routes.offline and (r not in known or f.at_s > known[r].at_s)}
    if not newer:
        return hub
    free = hub.pool.free
    moved = {r: dataclasses.replace(free[r], lat=newer[r].lat, lon=newer[r].lon) for r in newer.keys() & free.keys()}
    pool = dataclasses.replace(hub.pool, free={**free, **moved}) if moved else hub.pool
    return dataclasses.replace(hub, routes=on_fixes(hub.routes, newer), pool=pool)


def rejoin_finished(hub: Hub) -> Hub:
    """Riders whose route has no stops left (delivered, failed, or moved away) are free again, from
    their latest position; their route is over."""
    routes, pool = hub.routes, hub.pool
    done = [r for r, p in routes.plans.items() if not p.stops and r not in routes.in_flight and r in routes.riders
            and r not in routes.offline]
    if not done:
        return hub
    gone = set(done)
    routes = dataclasses.replace(routes, pending=tuple(t for t in routes.pending if not t.riders <= gone))
    for r in done:
        fix = routes.positions.get(r)
        rider = routes.riders[r]
        pool = dispatch.rejoin(pool, dataclasses.replace(rider, lat=fix.lat, lon=fix.lon) if fix else rider)
    routes = dataclasses.replace(routes, plans={r: p for r, p in routes.plans.items() if r not in done})
    return dataclasses.replace(hub, routes=routes, pool=pool)


def offer_waiting(hub: Hub, now: float, policy: HubPolicy, params: ReplanParams = DISPATCH_PARAMS) -> Hub:
    """Orders due within the horizon that no free rider can take now (none is free, or the last plan
    left them out) are offered to the riders on a route nearest to where the order starts (its
    store, or its drop for a hub parcel): a re-plan inserts them. Riders whose re-plan left an order
    out are passed over: the next nearest are asked as soon as that re-plan is done; once all have
    passed, the nearest are asked again after ``REOFFER_S`` (their routes have moved on)."""
    pool = hub.pool
    if any(k not in pool.pending for k in hub.offered):  # placed, cancelled or settled: forget the offer
        hub = dataclasses.replace(hub, offered={k: v for k, v in hub.offered.items() if k in pool.pending})
    if any(k not in pool.pending for k in hub.passed):
        hub = dataclasses.replace(hub, passed={k: v for k, v in hub.passed.items() if k in pool.pending})
    horizon_s = policy.horizon_min * 60.0
    waiting = [o for o in pool.plannable(horizon_s)
               if (not pool.free_for(o) or o.order_id in pool.alerted)
               and now - hub.offered.get(o.order_id, -REOFFER_S) >= (REOFFER_S if o.pickup is None else REOFFER_PROMISED_S)
               and o.order_id in hub.routes.orders]
    if not waiting:
        return hub
    routes, offered, passed = hub.routes, dict(hub.offered), dict(hub.passed)
    for o in waiting:
        riders = _able(routes, o, now, params, passed.get(o.order_id, frozenset()))
        if not riders and passed.pop(o.order_id, None):
            riders = _able(routes, o, now, params, frozenset())
        routes = _offer(routes, offered, o.order_id, riders, now, "no free rider")
    return dataclasses.replace(hub, routes=routes, offered=offered, passed=passed)


def _able(routes: ReplanState, order: dispatch.PendingOrder, now: float, params: ReplanParams,
          passed: frozenset[str]) -> list[str]:
    """The riders on a route to offer ``order``: the nearest with fewer than ``offer_max_drops``
    drops left, else (only long routes can take it: the one rider with its skill, say) the nearest
    of those, rather than letting it wait for one to come back."""
    where = order.pickup or (order.lat, order.lon)
    return (replan.nearest(routes, where, order, now, params.nearest_riders, params.offer_max_drops, exclude=passed)
            or replan.nearest(routes, where, order, now, params.nearest_riders, exclude=passed))


def _offer(routes: ReplanState, offered: dict[str, float], order_id: str, riders: list[str], now: float,
           note: str) -> ReplanState:
    """A re-plan of ``riders`` to insert the order (none: nothing), and when it was offered."""
    if not riders:
        return routes
    offered[order_id] = now
    return replan.add_trigger(routes, Trigger(kind=TriggerKind.NEW_ORDER, subject_id=order_id,
                                              riders=frozenset(riders), at_s=now, note=note))


def offer_to_waiting(hub: Hub, now: float, policy: HubPolicy, params: ReplanParams = DISPATCH_PARAMS) -> Hub:
    """Hub parcels due within the horizon go first to the riders waiting at the hub for their
    departure (:mod:`streams.domain.dispatch.departure`) whose route passes nearest: a re-plan adds
    them to a route that leaves anyway, rather than sending out another rider with one parcel.
    What that re-plan leaves out comes back to dispatch's free riders, and is not offered to those
    waiting riders again."""
    hold = departure.of(policy)
    stale = {k for k, at in hub.to_waiting.items() if k not in hub.pool.pending or now - at > REOFFER_S}
    if stale:
        hub = dataclasses.replace(hub, to_waiting={k: v for k, v in hub.to_waiting.items() if k not in stale})
    if any(k not in hub.pool.pending for k in hub.passed):  # placed, cancelled or settled: forget
        hub = dataclasses.replace(hub, passed={k: v for k, v in hub.passed.items() if k in hub.pool.pending})
    if hold.max_wait_s <= 0:
        return hub
    routes = hub.routes
    waiting = [r for r in routes.plans if replan.waiting_at_hub(routes, r, now)
               and sum(1 for s in routes.plans[r].stops if order_of(s)[1] is ev.StopKind.DROP) < hold.full_drops]
    if not waiting:
        return hub
    to_waiting = dict(hub.to_waiting)
    for o in hub.pool.plannable(policy.horizon_min * 60.0):
        if o.pickup is not None or o.order_id in to_waiting or o.order_id not in routes.orders or o.rider is not None:
            continue
        passed = hub.passed.get(o.order_id, frozenset())
        riders = replan.passing_nearest(routes, o, [r for r in waiting if r not in passed], now, params.nearest_riders)
        routes = _offer(routes, to_waiting, o.order_id, riders, now, "riders waiting at the hub")
    return dataclasses.replace(hub, routes=routes, to_waiting=to_waiting)


def planned(hub: Hub) -> Hub:
    """Nothing left for dispatch's free riders in the pool as it is: no plan until it changes."""
    return dataclasses.replace(hub, pool=dataclasses.replace(hub.pool, planned_version=hub.pool.version))


def on_dispatched(hub: Hub, outcome: dispatch.PlanOutcome, params: ReplanParams = DISPATCH_PARAMS) -> Hub:
    """Dispatch planned (``outcome`` applied to this hub's pool): its routes are now driven, and re-planned."""
    routes = hub.routes
    for route in outcome.routes:
        routes = on_event(routes, route, params)
    return dataclasses.replace(hub, pool=outcome.pool, routes=routes)


def start_replans(hub: Hub, now: float, policy: HubPolicy = HubPolicy(), params: ReplanParams = DISPATCH_PARAMS
                  ) -> tuple[Hub, list[ReplanRequest]]:
    """The re-plans due at ``now``, recorded as being solved; requests of a solve that never
    finished (the worker died) give their triggers back first."""
    routes = hub.routes
    for request in hub.solving:
        routes = abandon(routes, request)
    routes, requests = due(routes, now, params, dispatch.travel_times(hub.pool, policy.learned_speeds),
                           policy.even_workload, departure.of(policy))
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
    # hub parcels offered to waiting riders that this re-plan did not place: dispatch's again
    offered = {t.subject_id for t in request.triggers} & hub.to_waiting.keys()
    pool = dispatch.give_back(dispatch.take(hub.pool, placed), dropped)
    if offered - placed:
        pool = dataclasses.replace(pool, version=pool.version + 1)
    passed, asked = dict(hub.passed), dict(hub.offered)
    for o in {t.subject_id for t in request.triggers if t.kind is TriggerKind.NEW_ORDER} - placed:
        passed[o] = passed.get(o, frozenset()) | frozenset(request.riders)
        if o in asked and o in pool.pending and _able(routes, pool.pending[o], now, params, passed[o]):
            asked[o] = now - REOFFER_S  # riders not asked yet may take it: ask them at once
    hub = dataclasses.replace(hub, pool=pool, routes=routes,
                              solving=tuple(r for r in hub.solving if r.request_id != request.request_id),
                              to_waiting={k: v for k, v in hub.to_waiting.items() if k not in offered}, passed=passed,
                              offered=asked)
    hub = rejoin_finished(hub)
    at = _dt(now)
    assignments: list[ev.OrderAssigned] = []
    planned: list[ev.RoutePlanned] = []
    for plan in outcome.plans:
        stops = []
        seq = 0
        for stop in plan.stops:
            order = routes.orders.get(stop.order_id)
            stops.append(ev.PlannedStop(
                order_id=stop.order_id, kind=stop.kind, lat=stop.lat, lon=stop.lon,
                planned_arrival=_dt(stop.planned_arrival_s), service_time_s=stop.service_s,
                window_start=order.window_start if order else None, window_end=order.window_end if order else None))
            if stop.kind is not ev.StopKind.DROP:
                continue
            seq += 1
            if stop.order_id not in before.get(plan.rider_id, ()):
                assignments.append(ev.OrderAssigned(
                    event_id=derived_id(plan.route_id, f"assign/{stop.order_id}"), occurred_at=at,
                    order_id=stop.order_id, rider_id=plan.rider_id, route_id=plan.route_id, sequence=seq,
                    planned_arrival=_dt(stop.planned_arrival_s)))
        planned.append(ev.RoutePlanned(
            event_id=derived_id(plan.route_id, "planned"), occurred_at=at, rider_id=plan.rider_id,
            route_id=plan.route_id, hub_id=plan.hub_id, stops=tuple(stops),
            start=ev.GeoPoint(lat=plan.start[0], lon=plan.start[1]), planned_start=_dt(plan.planned_start_s),
            planned_end=_dt(plan.planned_end_s), distance_m=plan.distance_m, reason=plan.reason, breaks=plan.breaks))
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
