"""Event-triggered re-planning policy, pure: which riders to re-plan, when, and why.

Five events re-plan routes already being driven:

- **failed delivery** (``StatusChanged`` to failed): the stop is done for this route (the
  parcel stays on board; a re-attempt is a new assignment by dispatch), the rider's day shifted;
- **cancellation** of a planned order: the solver drops it (``Changes.cancelled``) and may fill
  the gap;
- **new urgent order** (priority at least ``urgent_priority``, or a window that closes within
  ``closing_soon_s`` of its creation): offered to the ``nearest_riders`` riders on a route, by
  their latest position, that can carry it and have the skills (``Changes.new_jobs``);
- **delay** (``EtaUpdated`` whose p50 is more than ``late_after_s`` past the window end): once
  per order, so a stop that stays late does not re-plan its rider over and over;
- **rider offline** (no accepted fix for ``offline_after_s``, the tracker's ``rider_offline``
  alert (silent 5 min out on the route), or a shift ended with stops left):
  the rider keeps the stop being served and the parcels on board; the other stops go to the
  nearest riders.

Triggers wait in :attr:`ReplanState.pending`; :func:`due` merges those that share riders into one
request per group and holds a group back while any of its riders was re-planned less than
``min_interval_s`` ago (``urgent_interval_s`` when an urgent order is in the group) or is being
re-planned now. Held triggers are coalesced into the next request, never dropped: a request
whose result comes back stale (the rider got a new route meanwhile) or that failed
(:func:`abandon`) puts its triggers back.

The dispatch agent keeps this state beside dispatch's pool (:class:`streams.domain.dispatch.hub.Hub`,
fed the dispatch-queue events and dispatch's own routes; positions come from status changes with a location and from
the tracker's forwarded first fix of a rider back from offline, as it reads no GPS). The solve itself
(:func:`solver.reoptimise.reoptimise` on the request's situation, changes and policy) is the
caller's business, off the event loop; :func:`apply_result` turns its solution into
new route plans and unassignable orders (plain records the agent turns into events), with the
request's reason. Re-planned stops have soft windows (``late_cost_per_hour``): a promised parcel on
board is delivered late rather than dropped from the route.

Times are float POSIX seconds; positions arrive in batches (:func:`on_fixes`), not per ping.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from schemas import events as ev
from solver.geo import haversine_m
from solver.model import Problem, Route, Solution, retime
from solver.reoptimise import Changes, Policy, Rider, RouteChange, Situation, build, diff
from streams.domain.dispatch.departure import NO_HOLD, Hold, StopTimes, hold_s, later
from streams.domain.dispatch.jobs import (
    CONSTANT,
    FreeRider,
    Locations,
    PendingOrder,
    Point,
    TravelTimes,
    at_hub,
    has,
    is_pickup,
    needs,
    order_jobs,
    order_of,
    pickup_id,
    published_stops,
    route_breaks,
    solver_breaks,
    vehicle_for,
)
from streams.domain.ids import derived_id
from streams.domain.tracking.alerts import AlertKind

S = ev.OrderStatus


class TriggerKind(enum.StrEnum):
    FAILED_DELIVERY = "failed_delivery"
    CANCELLATION = "cancellation"
    URGENT_ORDER = "urgent_order"
    DELAY = "delay"
    RIDER_OFFLINE = "rider_offline"
    NEW_ORDER = "new_order"  # no free rider took it: offered to the nearest riders on a route
    ORDER_CHANGED = "order_changed"  # address, window or size changed
    MANUAL_ASSIGNMENT = "manual_assignment"  # a dispatcher put the order on this rider
    BREAK = "break"  # the rider reported a break: the rest of the route moves


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplanParams:
    urgent_priority: int = 2  # an order at least this important is urgent...
    closing_soon_s: float = 3600.0  # ...as is one whose window ends this soon after it is created
    nearest_riders: int = 3  # riders offered an urgent order or an offline rider's stops
    # a new order is offered only to riders with fewer drops left than this: a long route taking
    # every order that comes would keep its rider out for hours while others wait at the hub
    offer_max_drops: int = 8
    late_after_s: float = 600.0  # p50 ETA this far past the window end re-plans the rider
    offline_after_s: float = 300.0  # no accepted fix for this long: the rider is offline
    min_interval_s: float = 120.0  # at most one re-plan per rider in this time...
    urgent_interval_s: float = 30.0  # ...or in this time when an urgent order waits
    late_cost_per_hour: float = 60.0  # soft windows: an hour late costs as much as 60 km driven
    policy: Policy = Policy()  # locks and stability of each re-plan
    history: int = 100  # re-plans kept in the state
    # settled orders remembered after they leave the state, so that a redelivered event of one is a
    # no-op (a replay after a crash is recent: a few seconds of the hub's events, not 1,000 orders)
    settled_memory: int = 1000


DEFAULT_PARAMS = ReplanParams()
# The dispatch agent reads no GPS (positions come from status changes only), so silence there says
# nothing about a rider: it judges no one offline (a shift that ends with stops left still counts).
DISPATCH_PARAMS = dataclasses.replace(DEFAULT_PARAMS, offline_after_s=math.inf)


class Fix(NamedTuple):
    """A rider's latest accepted fix (see :mod:`streams.domain.tracking.hygiene`)."""

    lat: float
    lon: float
    at_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Trigger:
    kind: TriggerKind
    subject_id: str  # the order (failed, cancelled, urgent, late) or the rider (offline)
    riders: frozenset[str]  # riders to re-plan (an offline rider is among them: it loses its stops)
    at_s: float
    note: str = ""  # e.g. the failure reason, the minutes late


@dataclass(frozen=True, slots=True, kw_only=True)
class RiderPlan:
    """What a rider is doing: the remaining stops of their current route, in order, as job ids
    (an order id for its drop, :func:`streams.domain.dispatch.jobs.pickup_id` for its pickup)."""

    route_id: str
    stops: tuple[str, ...]  # not yet delivered or failed; the one being served first
    started: str | None = None  # being served (status arrived)
    on_board: frozenset[str] = frozenset()  # out for delivery with this rider: only they can deliver
    since_s: float = 0.0  # when the route was planned: "last heard" before the first fix
    depart_s: float = 0.0  # when the route leaves (the published planned start)
    held_since_s: float | None = None  # waiting at the hub for more parcels since (streams.domain.dispatch.departure)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplanRecord:
    """One re-plan, for the record: why, when, and what it changed."""

    request_id: str
    at_s: float
    reason: str
    triggers: tuple[Trigger, ...]
    changes: tuple[RouteChange, ...]  # per re-planned rider (solver.reoptimise.diff)
    unassigned: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplanState:
    hub_id: str
    orders: dict[str, PendingOrder] = field(default_factory=dict)  # the hub's open orders
    riders: dict[str, FreeRider] = field(default_factory=dict)  # riders on shift
    plans: dict[str, RiderPlan] = field(default_factory=dict)
    positions: dict[str, Fix] = field(default_factory=dict)
    last_replan_s: dict[str, float] = field(default_factory=dict)
    pending: tuple[Trigger, ...] = ()
    in_flight: frozenset[str] = frozenset()  # riders of requests being solved
    offline: frozenset[str] = frozenset()
    closed: frozenset[str] = frozenset()  # delivered, failed, returned or cancelled (until re-opened)
    depot: Point | None = None  # the hub's place: where hub parcels are collected
    pins: dict[str, str] = field(default_factory=dict)  # order -> rider a dispatcher assigned it to
    delayed: frozenset[str] = frozenset()  # orders whose lateness already triggered a re-plan
    history: tuple[ReplanRecord, ...] = ()
    seq: int = 0  # requests issued: request ids derive from it
    settling: frozenset[str] = frozenset()  # settled (delivered, returned, cancelled), still on a route
    # settled orders that left the state, in two generations of up to settled_memory / 2 each: the
    # newest, and the one before it (dropped whole when the newest fills up)
    settled: frozenset[str] = frozenset()
    settled_before: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplanRequest:
    """One re-plan to solve: ``reoptimise(situation, changes, policy)``."""

    request_id: str
    hub_id: str
    riders: tuple[str, ...]  # re-planned (vehicles of the problem)
    offline: tuple[str, ...]  # losing their stops not started
    triggers: tuple[Trigger, ...]
    reason: str  # recorded on the resulting route plans and alerts
    epoch_s: int  # POSIX seconds of the problem's time 0 (= when the request was made)
    route_ids: Mapping[str, str]  # rider -> route re-planned: a different one by apply time is stale
    situation: Situation
    changes: Changes
    policy: Policy
    hold: Hold = NO_HOLD  # the hub's departure rule for riders still waiting at the hub


class PlanStop(NamedTuple):
    order_id: str
    lat: float
    lon: float
    planned_arrival_s: float
    service_s: int
    kind: ev.StopKind = ev.StopKind.DROP


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutePlan:
    """A new route for a rider (becomes ``RoutePlanned``, plus ``OrderAssigned`` for new stops)."""

    rider_id: str
    route_id: str
    hub_id: str
    request_id: str
    reason: str
    stops: tuple[PlanStop, ...]
    start: tuple[float, float]
    planned_start_s: float
    planned_end_s: float
    distance_m: float
    breaks: tuple[ev.RouteBreak, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Unassignable:
    """An order dropped from a route by the re-plan (becomes an ``AlertRaised``; back to dispatch)."""

    order_id: str
    reason: str
    previous_rider: str  # whose route it was on
    request_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplanOutcome:
    plans: tuple[RoutePlan, ...] = ()
    unassignable: tuple[Unassignable, ...] = ()
    record: ReplanRecord | None = None
    stale: bool = False  # plans changed while solving: nothing applied, triggers back in pending


# ---------------------------------------------------------------------------------------------
# Events


def _secs(t: datetime) -> float:
    return t.timestamp()


def _dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def on_fixes(state: ReplanState, fixes: Mapping[str, Fix]) -> ReplanState:
    """Fold a batch's latest accepted fix per rider (one merge per batch, not per ping). A rider
    heard again is online again (eligible for new work; what they lost stays with the others)."""
    if not fixes:
        return state
    back = state.offline & fixes.keys()
    return dataclasses.replace(state, positions={**state.positions, **fixes},
                               offline=state.offline - back if back else state.offline)


def on_event(state: ReplanState, event: ev.Event, params: ReplanParams = DEFAULT_PARAMS) -> ReplanState:
    """Fold one dispatch-queue event. Orders settled (delivered, returned to the hub, cancelled)
    leave the state once off every route; a redelivered event of one is a no-op (see
    :func:`is_settled`). A failed order stays: it may be re-attempted."""
    order_id = getattr(event, "order_id", None)
    if order_id is not None and is_settled(state, order_id):
        return state
    state = _on_event(state, event, params)
    return _forget_settled(state, params) if state.settling else state


def is_settled(state: ReplanState, order_id: str) -> bool:
    """Settled: on a route still, or among the last (at least ``settled_memory / 2``, at most
    ``settled_memory``) that left the state."""
    return order_id in state.settling or order_id in state.settled or order_id in state.settled_before


def _on_event(state: ReplanState, event: ev.Event, params: ReplanParams) -> ReplanState:
    match event:
        case ev.OrderCreated() if event.hub_id == state.hub_id:
            return _order_created(state, event, params)
        case ev.OrderUpdated() if event.order_id in state.orders:
            return _order_updated(state, event)
        case ev.OrderAssigned() if event.manual and event.order_id in state.orders:
            return _manual(state, event)
        case ev.OrderCancelled():
            return _cancelled(state, event.order_id, _secs(event.occurred_at), event.reason)
        case ev.StatusChanged():
            return _status(state, event)
        case ev.RoutePlanned() if event.hub_id == state.hub_id:
            return _route_planned(state, event)
        case ev.RiderShiftStarted() if event.hub_id == state.hub_id:
            return dataclasses.replace(state, riders={**state.riders, event.rider_id: FreeRider.of(event)},
                                       depot=state.depot or (None if event.station_id else (event.start.lat, event.start.lon)))
        case ev.BreakStarted() | ev.BreakEnded() if event.rider_id in state.riders:
            return _break(state, event)
        case ev.RiderShiftEnded() if event.rider_id in state.riders:
            return _shift_ended(state, event, params)
        case ev.AlertRaised() if event.kind == AlertKind.RIDER_OFFLINE and event.rider_id in state.plans:
            return _offline_alert(state, event, params)
        case ev.EtaUpdated():
            return _eta(state, event, params)
    return state


def _order_created(state: ReplanState, e: ev.OrderCreated, params: ReplanParams) -> ReplanState:
    order = PendingOrder.of(e)
    state = dataclasses.replace(state, orders={**state.orders, e.order_id: order})
    now = _secs(e.occurred_at)
    closing_in = _secs(order.window_end) - now  # the promise, when earlier
    if e.priority < params.urgent_priority and closing_in > params.closing_soon_s:
        return state
    riders = _nearest(state, order.pickup or (order.lat, order.lon), [order], now, params.nearest_riders,
                      exclude=frozenset(), max_drops=params.offer_max_drops)
    if not riders:  # nobody on a route can take it: dispatch's free riders will
        return state
    note = f"priority {e.priority}, window closes in {closing_in / 60:.0f} min"
    return _trigger(state, Trigger(kind=TriggerKind.URGENT_ORDER, subject_id=e.order_id, riders=frozenset(riders),
                                   at_s=now, note=note))


def _order_updated(state: ReplanState, e: ev.OrderUpdated) -> ReplanState:
    """The order as it is now; its rider (if on a route) is re-planned: the new drop is on the new route."""
    state = dataclasses.replace(state, orders={**state.orders, e.order_id: state.orders[e.order_id].updated(e)})
    owner = _owner(state, e.order_id)
    if owner is None or e.order_id in state.closed:
        return state
    what = ", ".join(n for n in ("drop", "pickup", "window_start", "window_end", "service_time_s", "weight_kg",
                                 "volume_l", "units", "priority") if getattr(e, n) is not None)
    return _trigger(state, Trigger(kind=TriggerKind.ORDER_CHANGED, subject_id=e.order_id, riders=frozenset({owner}),
                                   at_s=_secs(e.occurred_at), note=what or "details"))


def _manual(state: ReplanState, e: ev.OrderAssigned) -> ReplanState:
    """A dispatcher's assignment: the order is pinned to the rider, who gets it on the next re-plan
    (with whoever had it, who loses it). A rider not on a route gets it from dispatch's pool (see the hub)."""
    state = dataclasses.replace(state, pins={**state.pins, e.order_id: e.rider_id},
                                orders={**state.orders, e.order_id: dataclasses.replace(state.orders[e.order_id],
                                                                                        rider=e.rider_id)})
    owner = _owner(state, e.order_id)
    riders = ({e.rider_id} if e.rider_id in state.plans else set()) | ({owner} if owner not in (None, e.rider_id) else set())
    if not riders:
        return state
    return _trigger(state, Trigger(kind=TriggerKind.MANUAL_ASSIGNMENT, subject_id=e.order_id, riders=frozenset(riders),
                                   at_s=_secs(e.occurred_at), note=f"by {e.assigned_by}"))


def _break(state: ReplanState, e: ev.BreakStarted | ev.BreakEnded) -> ReplanState:
    rider = state.riders[e.rider_id]
    if isinstance(e, ev.BreakEnded):
        return dataclasses.replace(state, riders={**state.riders, e.rider_id: dataclasses.replace(rider, break_until=None)})
    until = e.expected_end or e.occurred_at + _DEFAULT_BREAK
    taken = rider.breaks_taken | ({e.break_id} if e.break_id else set())
    state = dataclasses.replace(state, riders={**state.riders, e.rider_id: dataclasses.replace(
        rider, break_until=until, breaks_taken=taken)})
    plan = state.plans.get(e.rider_id)
    planned = e.break_id is not None and any(b.break_id == e.break_id for b in rider.breaks)
    if plan is None or not plan.stops or planned:  # a planned break is in the route already
        return state
    return _trigger(state, Trigger(kind=TriggerKind.BREAK, subject_id=e.rider_id, riders=frozenset({e.rider_id}),
                                   at_s=_secs(e.occurred_at), note=f"until {until:%H:%M}"))


_DEFAULT_BREAK = timedelta(minutes=30)  # an unplanned break that says nothing of its end


def _cancelled(state: ReplanState, order_id: str, at_s: float, note: str) -> ReplanState:
    """The order stays on its route until the re-plan, which drops it (``Changes.cancelled``)."""
    state = dataclasses.replace(state, closed=state.closed | {order_id}, settling=state.settling | {order_id})
    owner = _owner(state, order_id)
    if owner is None:
        return state
    return _trigger(state, Trigger(kind=TriggerKind.CANCELLATION, subject_id=order_id, riders=frozenset({owner}),
                                   at_s=at_s, note=note))


def _status(state: ReplanState, e: ev.StatusChanged) -> ReplanState:
    to = e.to_status
    if to is S.CANCELLED:
        return _cancelled(state, e.order_id, _secs(e.occurred_at), e.reason)
    owner = _owner(state, e.order_id, e.rider_id)
    if to in (S.ASSIGNED, S.OUT_FOR_DELIVERY):  # a re-attempt re-opens a failed order
        state = dataclasses.replace(state, closed=state.closed - {e.order_id})
        if to is S.OUT_FOR_DELIVERY and e.rider_id and e.rider_id != owner and e.rider_id in state.plans:
            # it left with another rider than the plan says (a move raced the departure): theirs now
            if owner is not None:
                lost = state.plans[owner]
                gone = {e.order_id, pickup_id(e.order_id)}
                state = _with_plan(state, owner, dataclasses.replace(
                    lost, stops=tuple(s for s in lost.stops if s not in gone), on_board=lost.on_board - gone))
            holder = state.plans[e.rider_id]
            state = _with_plan(state, e.rider_id, dataclasses.replace(
                holder, stops=(*holder.stops, e.order_id), on_board=holder.on_board | {e.order_id}))
            return _trigger(state, Trigger(kind=TriggerKind.ORDER_CHANGED, subject_id=e.order_id,
                                           riders=frozenset({e.rider_id, *([owner] if owner else [])}),
                                           at_s=_secs(e.occurred_at), note=f"left the hub with {e.rider_id}"))
        if to is S.OUT_FOR_DELIVERY and owner is not None:  # loaded (at the hub, or picked up at the store)
            plan = state.plans[owner]
            state = _with_plan(state, owner, dataclasses.replace(
                plan, on_board=plan.on_board | {e.order_id}, stops=tuple(s for s in plan.stops if s != pickup_id(e.order_id))))
        return state
    settles = to in (S.DELIVERED, S.RETURNED_TO_HUB)
    settling = state.settling | {e.order_id} if settles else state.settling
    if owner is None:
        if to in (S.DELIVERED, S.FAILED, S.RETURNED_TO_HUB):
            state = dataclasses.replace(state, closed=state.closed | {e.order_id}, settling=settling)
        return state
    plan = state.plans[owner]
    if to is S.ARRIVED:  # being served: first, and locked by the next re-plan
        stops = (e.order_id, *(s for s in plan.stops if s != e.order_id))
        return _with_plan(state, owner, dataclasses.replace(plan, stops=stops, started=e.order_id))
    if to not in (S.DELIVERED, S.FAILED, S.RETURNED_TO_HUB):
        return state
    gone = {e.order_id, pickup_id(e.order_id)}
    done = dataclasses.replace(plan, stops=tuple(s for s in plan.stops if s not in gone),
                               started=None if plan.started == e.order_id else plan.started,
                               on_board=plan.on_board - {e.order_id})
    state = dataclasses.replace(_with_plan(state, owner, done), closed=state.closed | {e.order_id}, settling=settling)
    if to is S.FAILED:
        state = _trigger(state, Trigger(kind=TriggerKind.FAILED_DELIVERY, subject_id=e.order_id,
                                        riders=frozenset({owner}), at_s=_secs(e.occurred_at), note=e.reason))
    return state


def _route_planned(state: ReplanState, e: ev.RoutePlanned) -> ReplanState:
    """A new route (from dispatch, or the echo of a re-plan: same route id, nothing to do)."""
    old = state.plans.get(e.rider_id)
    if old is not None and old.route_id == e.route_id:
        return state
    orders = dict(state.orders)
    for s in e.stops:  # an order seen only on a route (state rebuilt mid-stream): what the route says
        if s.kind is ev.StopKind.DROP and s.order_id not in orders and not is_settled(state, s.order_id):
            orders[s.order_id] = PendingOrder(
                order_id=s.order_id, lat=s.lat, lon=s.lon, window_start=s.window_start or e.planned_start,
                window_end=s.window_end or e.planned_end,
                service_s=s.service_time_s, demand=(0.0, 0.0, 0.0), skills=frozenset(), priority=0)
    loaded = old.on_board if old else frozenset()
    # A parcel in another rider's box stays theirs (a plan made before it left the hub cannot move it).
    elsewhere = {o for r, p in state.plans.items() if r != e.rider_id for o in p.on_board}
    stops = tuple(s.order_id if s.kind is ev.StopKind.DROP else pickup_id(s.order_id) for s in e.stops
                  if s.order_id not in state.closed and not is_settled(state, s.order_id)
                  and s.order_id not in elsewhere and not (s.kind is ev.StopKind.PICKUP and s.order_id in loaded))
    stops += tuple(o for o in (old.stops if old else ()) if o in loaded and o not in stops and o not in state.closed)
    taken = set(stops) | {pickup_id(s) for s in stops}
    plans = {r: (dataclasses.replace(p, stops=tuple(s for s in p.stops if s not in taken),
                                     on_board=p.on_board - taken) if taken & set(p.stops) else p)
             for r, p in state.plans.items() if r != e.rider_id}
    depart = _secs(e.planned_start)
    plans[e.rider_id] = RiderPlan(route_id=e.route_id, stops=stops, on_board=loaded & taken,
                                  since_s=_secs(e.occurred_at), depart_s=depart,
                                  held_since_s=_secs(e.occurred_at) if depart > _secs(e.occurred_at) + 1 else None)
    return dataclasses.replace(state, orders=orders, plans=plans, offline=state.offline - {e.rider_id})


def _shift_ended(state: ReplanState, e: ev.RiderShiftEnded, params: ReplanParams) -> ReplanState:
    plan = state.plans.get(e.rider_id)
    if plan is None or not _released(state, plan):
        r = e.rider_id  # gone: nothing of the rider stays
        return dataclasses.replace(state, riders=_without(state.riders, r), plans=_without(state.plans, r),
                                   positions=_without(state.positions, r),
                                   last_replan_s=_without(state.last_replan_s, r), offline=state.offline - {r})
    # Stops left: redistributed like an offline rider's, who keeps the stop being served.
    return _go_offline(state, e.rider_id, _secs(e.occurred_at), params, f"shift ended ({e.reason})")


def _offline_alert(state: ReplanState, e: ev.AlertRaised, params: ReplanParams) -> ReplanState:
    """The tracker saw the rider's device silent out on the route (dispatch reads no GPS itself)."""
    assert e.rider_id is not None
    if e.rider_id in state.offline:
        return state
    if not _released(state, state.plans[e.rider_id]):  # nothing to hand over; no new work meanwhile
        return dataclasses.replace(state, offline=state.offline | {e.rider_id})
    return _go_offline(state, e.rider_id, _secs(e.occurred_at), params, e.message)


def _eta(state: ReplanState, e: ev.EtaUpdated, params: ReplanParams) -> ReplanState:
    order = state.orders.get(e.order_id)
    plan = state.plans.get(e.rider_id)
    if order is None or plan is None or e.order_id in state.delayed or e.order_id not in plan.stops:
        return state
    late_s = _secs(e.eta_p50) - _secs(order.window_end)
    if late_s <= params.late_after_s:
        return state
    state = dataclasses.replace(state, delayed=state.delayed | {e.order_id})
    return _trigger(state, Trigger(kind=TriggerKind.DELAY, subject_id=e.order_id, riders=frozenset({e.rider_id}),
                                   at_s=_secs(e.occurred_at), note=f"p50 {late_s / 60:.0f} min past the window"))


# ---------------------------------------------------------------------------------------------
# Due re-plans


def due(state: ReplanState, now: float, params: ReplanParams = DEFAULT_PARAMS, travel: TravelTimes = CONSTANT,
        even_workload: bool = False, hold: Hold = NO_HOLD) -> tuple[ReplanState, list[ReplanRequest]]:
    """The re-plans to run now, one per group of triggers sharing riders, past the rate limit.
    The state marks their riders in flight until :func:`apply_result` or :func:`abandon`."""
    for rider_id, plan in sorted(state.plans.items()):
        heard = max(plan.since_s, state.positions[rider_id].at_s if rider_id in state.positions else plan.since_s)
        if (rider_id not in state.offline and rider_id not in state.in_flight and now - heard > params.offline_after_s
                and _released(state, plan)):
            state = _go_offline(state, rider_id, now, params, f"no fix for {(now - heard) / 60:.0f} min")
    pending = [t for t in state.pending if not _moot(state, t)]
    requests: list[ReplanRequest] = []
    held: list[Trigger] = []
    for group in _groups(pending):
        riders = frozenset().union(*(t.riders for t in group))
        receivers = sorted(r for r in riders if r not in state.offline and r in state.plans and r in state.riders)
        offline = sorted(riders & state.offline)
        if not receivers and not offline:  # riders gone: nothing to re-plan
            continue
        urgent = any(t.kind in _PLACES_ORDER or t.kind is TriggerKind.ORDER_CHANGED for t in group)
        wait = params.urgent_interval_s if urgent else params.min_interval_s
        if riders & state.in_flight or any(now - state.last_replan_s.get(r, -math.inf) < wait for r in receivers):
            held.extend(group)  # coalesced into the next re-plan of these riders
            continue
        request = _request(state, group, receivers, offline, now, params, travel, even_workload, hold)
        requests.append(request)
        state = dataclasses.replace(state, seq=state.seq + 1, in_flight=state.in_flight | riders,
                                    last_replan_s={**state.last_replan_s, **dict.fromkeys(receivers, now)})
    return dataclasses.replace(state, pending=tuple(held)), requests


def abandon(state: ReplanState, request: ReplanRequest) -> ReplanState:
    """The solve failed: its triggers wait again (the rate limit still counts from the request)."""
    return dataclasses.replace(state, pending=(*request.triggers, *state.pending),
                               in_flight=state.in_flight - {*request.riders, *request.offline})


def _moot(state: ReplanState, t: Trigger) -> bool:
    """Triggers overtaken by events: an urgent order planned or closed meanwhile, a late stop no
    longer on the route, an offline rider heard again, riders no longer on a route."""
    if t.kind in (TriggerKind.URGENT_ORDER, TriggerKind.NEW_ORDER):
        return (t.subject_id in state.closed or t.subject_id not in state.orders
                or _owner(state, t.subject_id) is not None)
    if t.kind is TriggerKind.MANUAL_ASSIGNMENT:
        return (t.subject_id in state.closed or t.subject_id not in state.orders
                or _owner(state, t.subject_id) == state.pins.get(t.subject_id))
    if t.kind is TriggerKind.ORDER_CHANGED:
        return t.subject_id in state.closed or _owner(state, t.subject_id) not in t.riders
    if t.kind is TriggerKind.RIDER_OFFLINE:
        return t.subject_id not in state.offline or t.subject_id not in state.plans
    if t.kind is TriggerKind.DELAY:
        (rider,) = t.riders
        return t.subject_id not in state.plans.get(rider, RiderPlan(route_id="", stops=())).stops
    return not any(r in state.plans for r in t.riders)


def _groups(triggers: Sequence[Trigger]) -> list[list[Trigger]]:
    """Triggers joined when they share a rider (transitively), in order of the first trigger."""
    groups: list[tuple[set[str], list[Trigger]]] = []
    for t in triggers:
        joined = [g for g in groups if g[0] & t.riders]
        riders, members = set(t.riders), [t]
        for g in joined:
            riders |= g[0]
            members = g[1] + members
            groups.remove(g)
        groups.append((riders, sorted(members, key=lambda m: m.at_s)))
    return sorted((g[1] for g in groups), key=lambda m: m[0].at_s)


def _request(state: ReplanState, triggers: list[Trigger], receivers: list[str], offline: list[str], now: float,
             params: ReplanParams, travel: TravelTimes, even_workload: bool, hold: Hold = NO_HOLD) -> ReplanRequest:
    epoch = int(now)
    at = _dt(epoch)
    plans = state.plans
    orders = state.orders
    released = [s for r in offline for s in _released(state, plans[r])]
    mine = {r: [j for j in plans[r].stops if _plannable(state, j, r)] for r in receivers}
    on_routes = {order_of(j)[0] for stops in mine.values() for j in stops}
    new_ids = [t.subject_id for t in triggers if t.kind in _PLACES_ORDER and t.subject_id in orders
               and t.subject_id not in state.closed and t.subject_id not in on_routes
               and state.pins.get(t.subject_id) in (None, *receivers)]  # pinned to a free rider: dispatch's
    locations = Locations()
    homes = [locations.add((state.riders[r].lat, state.riders[r].lon)) for r in receivers]
    vehicles = tuple(vehicle_for(
        rider_id=r, vehicle=state.riders[r].vehicle, capacity=state.riders[r].capacity, skills=has(state.riders[r]),
        start=home, end=home, shift_start_s=int(_secs(state.riders[r].shift_start)) - epoch,
        shift_end_s=max(int(_secs(state.riders[r].shift_end)) - epoch, OVERTIME_S if plans[r].on_board else 0),
        breaks=solver_breaks(state.riders[r].breaks, at, state.riders[r].breaks_taken), travel=travel, at=at)
        for r, home in zip(receivers, homes, strict=True))
    ids = frozenset(receivers)
    jobs = []
    for r in receivers:
        stops = set(mine[r])
        # a parcel not on board is collected: at its pickup stop, or at the hub by a rider who left it
        away = not at_hub(_position(state, r), state.depot)
        for o in dict.fromkeys(order_of(j)[0] for j in mine[r]):
            loaded = o in plans[r].on_board
            collect = (orders[o].pickup or state.depot) if (pickup_id(o) in stops or away) and not loaded else None
            jobs.extend(order_jobs(orders[o], locations, at, collect_at=collect, travel=travel, vehicles=ids))
    # riders all still waiting at the hub load a hub parcel with the rest: a plain drop
    loading = bool(receivers) and all(waiting_at_hub(state, r, now) for r in receivers)
    for o in dict.fromkeys([*released, *new_ids]):
        if o not in on_routes:
            collect = orders[o].pickup or (None if loading else state.depot)
            jobs.extend(order_jobs(orders[o], locations, at, collect_at=collect, travel=travel, vehicles=ids))
    built = {j.id for j in jobs}
    # the plan as the solver must read it: each pickup before its drop (a drop locked ahead of its
    # pickup would make the problem infeasible)
    mine = {r: [x for j in stops if j in built
                for x in ((pickup_id(j), j) if pickup_id(j) in built and pickup_id(j) not in stops else (j,))]
            for r, stops in mine.items()}
    riders = []
    delays = {}
    for r in receivers:
        plan = plans[r]
        fix = state.positions.get(r)
        started = plan.started if plan.started in built else None
        rider = state.riders[r]
        riders.append(Rider(vehicle_id=r, position=(fix.lat, fix.lon) if fix else (rider.lat, rider.lon),
                            started=started, on_board=plan.on_board & built, breaks_taken=rider.breaks_taken))
        if rider.break_until is not None and _secs(rider.break_until) > now:
            delays[r] = int(_secs(rider.break_until) - now)
    situation = Situation(problem=Problem(locations=tuple(locations.points), jobs=tuple(jobs), vehicles=vehicles,
                                          even_workload=even_workload),
                          plan={r: tuple(j for j in mine[r] if j in built) for r in receivers}, now_s=0,
                          riders=tuple(riders))
    policy = params.policy
    extra = 2 * len(new_ids) + math.ceil(2 * len(released) / max(1, len(receivers)))
    if extra and receivers and policy.min_new_stops is not None:  # room for the work this re-plan must place
        policy = dataclasses.replace(policy, min_new_stops=policy.min_new_stops + extra)
    return ReplanRequest(
        request_id=derived_id(state.hub_id, f"replan/{state.seq}"), hub_id=state.hub_id, riders=tuple(receivers),
        offline=tuple(offline), triggers=tuple(triggers), reason=reason_text(triggers), epoch_s=epoch,
        route_ids={r: plans[r].route_id for r in (*receivers, *offline)}, situation=situation,
        changes=Changes(cancelled=frozenset(j for j in built if order_of(j)[0] in state.closed), delays_s=delays),
        policy=policy, hold=hold)


NO_SOLUTION = "found no solution"  # the solver's reason when its search failed outright (solver/_ortools.py)
OVERTIME_S = 3 * 3600  # a rider carrying parcels may finish them this long after now, past the shift's end
_PLACES_ORDER = frozenset({TriggerKind.URGENT_ORDER, TriggerKind.NEW_ORDER, TriggerKind.MANUAL_ASSIGNMENT})


def _plannable(state: ReplanState, job_id: str, rider_id: str) -> bool:
    """A stop of the rider's route the re-plan works with: not pinned to someone else (a cancelled one
    is, for the solver to drop: ``Changes.cancelled``)."""
    order_id = order_of(job_id)[0]
    pinned = state.pins.get(order_id)
    return order_id in state.orders and pinned in (None, rider_id)


REASON_MAX_CHARS = 1000  # a route's reason stays well inside the stream edge's text limit (4,000 by default)


def reason_text(triggers: Iterable[Trigger]) -> str:
    """``"failed_delivery o1 (customer not home); cancellation o7"``: what the re-plan answers. Many
    coalesced triggers are cut short (``"...; and 12 more"``): the route must pass the stream edge."""
    parts = [f"{t.kind} {t.subject_id}" + (f" ({t.note})" if t.note else "") for t in triggers]
    text = "; ".join(parts)
    if len(text) <= REASON_MAX_CHARS:
        return text
    kept: list[str] = []
    for k, part in enumerate(parts):
        tail = f"; and {len(parts) - k} more"
        if len("; ".join([*kept, part])) + len(tail) > REASON_MAX_CHARS:
            return "; ".join(kept) + tail if kept else part[: REASON_MAX_CHARS - len(tail)] + tail
        kept.append(part)
    return text  # pragma: no cover - returned inside the loop


# ---------------------------------------------------------------------------------------------
# Results


def apply_result(state: ReplanState, request: ReplanRequest, solution: Solution, now: float,
                 params: ReplanParams = DEFAULT_PARAMS) -> tuple[ReplanState, ReplanOutcome]:
    """Take the solver's answer to ``request`` into the plans (the state as it is now: stops
    delivered or cancelled while it ran drop out), and say what to publish."""
    state = dataclasses.replace(state, in_flight=state.in_flight - {*request.riders, *request.offline})
    if any(NO_SOLUTION in u.reason for u in solution.unassigned):  # the search failed: keep the routes, retry later
        return _stale(state, request)
    plans = state.plans
    routes = {r.vehicle_id: r for r in solution.routes}
    group = {*request.riders, *request.offline}
    new: dict[str, tuple[str, ...]] = {}
    carried = {o: g for g in group if g in plans for o in plans[g].on_board}  # only they can deliver these
    past_shift: dict[str, str] = {}  # order -> the rider whose plan served it after their shift
    for r in request.riders:
        plan = plans.get(r)
        route = routes.get(r)
        stops = tuple(v.job_id for v in route.stops) if route else ()
        # Closed (or settled and gone) meanwhile, or planned for someone outside this re-plan
        # (dispatch got there first), or loaded meanwhile (its pickup is done, and it is that rider's).
        stops = tuple(s for s in stops if (o := order_of(s)[0]) in state.orders and o not in state.closed
                      and _owner(state, o) in (None, *group) and carried.get(o, r) == r
                      and not (is_pickup(s) and o in carried))
        if plan is None or plan.route_id != request.route_ids[r] or (plan.started and stops[:1] != (plan.started,)):
            return _stale(state, request)
        after = _after_shift(state, request, r, route, stops, carried)
        if after:
            stops = tuple(s for s in stops if order_of(s)[0] not in after)
            past_shift.update(dict.fromkeys(after, r))
        # A parcel on board the solver left out (the shift is over, say) stays: delivered after the rest.
        stops += tuple(o for o in plan.stops if carried.get(o) == r and o not in stops and o not in state.closed)
        new[r] = stops
    for r in request.offline:
        plan = plans.get(r)
        if plan is None or plan.route_id != request.route_ids[r]:
            return _stale(state, request)
        new[r] = _kept(state, plan)

    out_plans: list[RoutePlan] = []
    next_plans = {r: p for r, p in plans.items() if r not in new}
    # A rider whose own stop failed, was cancelled or runs late gets a new route even in the same
    # order: the published one still lists the stop, or has times that no longer hold.
    named = {r for t in request.triggers if t.kind in _RIDER_OWN for r in t.riders}
    for r, stops in new.items():
        plan = plans[r]
        if stops == plan.stops and r not in named:
            next_plans[r] = plan
            continue
        route_id = derived_id(request.request_id, f"route/{r}")
        route_plan = _route_plan(state, request, r, route_id, stops, routes.get(r), now)
        held_since = None
        if waiting_at_hub(state, r, now) and not plan.on_board & set(stops):
            held_since = plan.held_since_s if plan.held_since_s is not None else now
            route_plan = _held(state, route_plan, held_since, request.hold)
            held_since = held_since if route_plan.planned_start_s > now + 1 else None
        next_plans[r] = dataclasses.replace(plan, route_id=route_id, stops=stops, on_board=plan.on_board & set(stops),
                                            depart_s=route_plan.planned_start_s, held_since_s=held_since)
        out_plans.append(route_plan)
    placed = {order_of(s)[0] for stops in new.values() for s in stops}
    # Dropped from a route (a new urgent order left out stays with dispatch, which reports its own).
    left_out = dict.fromkeys([*(order_of(u.job_id)[0] for u in solution.unassigned), *past_shift])
    reasons = {order_of(u.job_id)[0]: u.reason for u in solution.unassigned}
    reasons.update({o: f"{r} could only serve it after their shift ends (overtime is for parcels on board)"
                    for o, r in past_shift.items()})
    unassignable = tuple(
        Unassignable(order_id=o, reason=reasons[o], previous_rider=owner, request_id=request.request_id)
        for o in left_out
        if o not in placed and o not in state.closed and o not in carried and (owner := _owner(state, o)) is not None)
    record = ReplanRecord(request_id=request.request_id, at_s=now, reason=request.reason, triggers=request.triggers,
                          changes=diff(build(request.situation, request.changes, request.policy), solution),
                          unassigned=tuple(u.order_id for u in unassignable))
    state = dataclasses.replace(state, plans=next_plans, history=(*state.history, record)[-params.history:])
    if state.settling:
        state = _forget_settled(state, params)
    return state, ReplanOutcome(plans=tuple(out_plans), unassignable=unassignable, record=record)


def _after_shift(state: ReplanState, request: ReplanRequest, rider_id: str, route: Route | None,
                 stops: tuple[str, ...], carried: Mapping[str, str]) -> frozenset[str]:
    """Orders of the rider's new stops served after the rider's shift ends. A rider with parcels on
    board is planned past the shift's end (:data:`OVERTIME_S`) to deliver them; no other work rides
    on that: it would be dropped once the last parcel on board is delivered."""
    rider, plan = state.riders.get(rider_id), state.plans.get(rider_id)
    if rider is None or route is None:
        return frozenset()
    end = _secs(rider.shift_end) - request.epoch_s
    keep = {order_of(plan.started)[0]} if plan is not None and plan.started else set()
    late = {order_of(v.job_id)[0] for v in route.stops if v.arrival_s > end}
    return frozenset(o for o in late if o not in carried and o not in keep and any(order_of(s)[0] == o for s in stops))


_RIDER_OWN = frozenset({TriggerKind.FAILED_DELIVERY, TriggerKind.CANCELLATION, TriggerKind.DELAY,
                        TriggerKind.ORDER_CHANGED, TriggerKind.MANUAL_ASSIGNMENT, TriggerKind.BREAK})


def _stale(state: ReplanState, request: ReplanRequest) -> tuple[ReplanState, ReplanOutcome]:
    """A rider got another route or began another stop while the solver ran: re-plan again."""
    return dataclasses.replace(state, pending=(*request.triggers, *state.pending)), ReplanOutcome(stale=True)


def _route_plan(state: ReplanState, request: ReplanRequest, rider_id: str, route_id: str, stops: tuple[str, ...],
                route: Route | None, now: float) -> RoutePlan:
    epoch = request.epoch_s
    at = _dt(epoch)
    vehicle = next((v for v in request.situation.problem.vehicles if v.id == rider_id), None)
    if route is not None and vehicle is not None:
        route = retime(route, vehicle)  # each leg at the speed of the hour it is driven in
    arrival = {v.job_id: epoch + v.arrival_s for v in route.stops} if route else {}
    fix = state.positions.get(rider_id)
    rider = state.riders.get(rider_id)
    start = (fix.lat, fix.lon) if fix else (rider.lat, rider.lon) if rider else (0.0, 0.0)
    problem = request.situation.problem
    jobs = {j.id: j for j in problem.jobs}

    def where(job_id: str) -> tuple[float, float]:
        job = jobs.get(job_id)
        if job is not None:
            return problem.locations[job.location]
        order = state.orders[order_of(job_id)[0]]
        return (order.lat, order.lon) if not is_pickup(job_id) else (order.pickup or state.depot or (order.lat, order.lon))

    visits = [(s, *where(s), _dt(arrival.get(s, now)), jobs[s].service_s if s in jobs else state.orders[order_of(s)[0]].service_s)
              for s in stops]
    # A rider on a route may have left the hub since its last known position: every pickup is a stop.
    planned = published_stops(visits, start, None)
    return RoutePlan(
        rider_id=rider_id, route_id=route_id, hub_id=state.hub_id, request_id=request.request_id,
        reason=request.reason, start=start,
        stops=tuple(PlanStop(p.order_id, p.lat, p.lon, p.arrival.timestamp(), p.service_s, p.kind) for p in planned),
        planned_start_s=float(epoch + route.start_s) if route else now,
        planned_end_s=float(epoch + route.end_s) if route else now,
        distance_m=route.distance_m if route else 0.0, breaks=route_breaks(route, at))


def _held(state: ReplanState, plan: RoutePlan, held_since_s: float, hold: Hold) -> RoutePlan:
    """A route of a rider still at the hub, leaving when the departure rule says."""
    def window(o: str) -> tuple[float | None, float | None]:
        order = state.orders.get(o)
        return (_secs(order.window_start), _secs(order.window_end)) if order else (None, None)

    wait = hold_s(plan.planned_start_s, [StopTimes(s.kind, s.planned_arrival_s, *window(s.order_id)) for s in plan.stops],
                  held_since_s, hold)
    if wait <= 0:
        return plan
    return dataclasses.replace(plan, stops=tuple(s._replace(planned_arrival_s=s.planned_arrival_s + wait) for s in plan.stops),
                               planned_start_s=plan.planned_start_s + wait, planned_end_s=plan.planned_end_s + wait,
                               breaks=later(plan.breaks, wait))


def waiting_at_hub(state: ReplanState, rider_id: str, now: float) -> bool:
    """The rider has a route but is still at the hub, before its departure, nothing loaded or begun."""
    plan = state.plans.get(rider_id)
    return (plan is not None and plan.held_since_s is not None and plan.depart_s > now and plan.started is None
            and not plan.on_board and rider_id not in state.offline and state.depot is not None
            and at_hub(_position(state, rider_id), state.depot))


# ---------------------------------------------------------------------------------------------
# Helpers


def _trigger(state: ReplanState, trigger: Trigger) -> ReplanState:
    """Add a trigger; the same kind and subject already waiting (a redelivered event) is kept once."""
    if any(t.kind == trigger.kind and t.subject_id == trigger.subject_id for t in state.pending):
        return state
    return dataclasses.replace(state, pending=(*state.pending, trigger))


def _owner(state: ReplanState, order_id: str, hint: str | None = None) -> str | None:
    """The rider whose route holds the order (the event's rider checked first)."""
    if hint is not None and order_id in state.plans.get(hint, _NO_PLAN).stops:
        return hint
    for rider_id, plan in state.plans.items():
        if order_id in plan.stops:
            return rider_id
    return None


_NO_PLAN = RiderPlan(route_id="", stops=())


def _forget_settled(state: ReplanState, params: ReplanParams) -> ReplanState:
    """Settled orders off every route leave the state; their ids join the ``settled`` window."""
    gone = frozenset(o for o in state.settling if _owner(state, o) is None)  # on_board is within stops
    if not gone:
        return state
    orders = dict(state.orders)
    for o in gone:
        orders.pop(o, None)
    settled, before = state.settled | gone, state.settled_before
    if params.settled_memory <= 0:
        settled = before = frozenset()
    elif len(settled) >= max(1, params.settled_memory // 2):  # a new generation; the oldest is forgotten
        settled, before = frozenset(), settled
    pins = {k: v for k, v in state.pins.items() if k not in gone} if state.pins.keys() & gone else state.pins
    return dataclasses.replace(state, orders=orders, closed=state.closed - gone, delayed=state.delayed - gone, pins=pins,
                               settling=state.settling - gone, settled=settled, settled_before=before)


def _with_plan(state: ReplanState, rider_id: str, plan: RiderPlan) -> ReplanState:
    return dataclasses.replace(state, plans={**state.plans, rider_id: plan})


def _without(d: dict, key: str) -> dict:
    return {k: v for k, v in d.items() if k != key}


def _released(state: ReplanState, plan: RiderPlan) -> tuple[str, ...]:
    """What an offline rider gives up (order ids): open orders neither being served nor on board (a
    parcel in its box only it can deliver: moving it would be refused by the ledger, and nobody would
    deliver it)."""
    return tuple(s for s in plan.stops if not is_pickup(s) and s != plan.started and s not in state.closed
                 and s not in plan.on_board)


def _kept(state: ReplanState, plan: RiderPlan) -> tuple[str, ...]:
    """What an offline rider keeps: the stop being served and the parcels on board, in route order."""
    return tuple(s for s in plan.stops if s not in state.closed and (s == plan.started or s in plan.on_board))


def _go_offline(state: ReplanState, rider_id: str, now: float, params: ReplanParams, note: str) -> ReplanState:
    plan = state.plans[rider_id]
    released = [state.orders[s] for s in _released(state, plan) if s in state.orders]
    others: list[str] = []
    if released:  # to the riders nearest the work it leaves
        centre = (sum(o.lat for o in released) / len(released), sum(o.lon for o in released) / len(released))
        others = _nearest(state, centre, released, now, params.nearest_riders, exclude=frozenset({rider_id}))
    state = dataclasses.replace(state, offline=state.offline | {rider_id})
    return _trigger(state, Trigger(kind=TriggerKind.RIDER_OFFLINE, subject_id=rider_id,
                                   riders=frozenset({rider_id, *others}), at_s=now, note=note))


def _position(state: ReplanState, rider_id: str) -> tuple[float, float]:
    fix = state.positions.get(rider_id)
    if fix is not None:
        return (fix.lat, fix.lon)
    rider = state.riders[rider_id]
    return (rider.lat, rider.lon)


def _nearest(state: ReplanState, point: tuple[float, float], orders: Sequence[PendingOrder], now: float, k: int,
             exclude: frozenset[str], max_drops: int | None = None) -> list[str]:
    """The ``k`` riders on a route nearest to ``point`` that are online, on shift, have the skills
    and spare capacity for at least one of ``orders`` and are still on shift when its window opens
    (and fewer than ``max_drops`` drops left)."""
    found = []
    for rider_id, plan in state.plans.items():
        rider = state.riders.get(rider_id)
        if rider is None or rider_id in exclude or rider_id in state.offline or _secs(rider.shift_end) <= now:
            continue
        if max_drops is not None and sum(not is_pickup(s) for s in plan.stops) >= max_drops:
            continue
        if any(_fits(state, rider_id, o) and _in_shift(rider, o, now) for o in orders):
            found.append((haversine_m(_position(state, rider_id), point), rider_id))
    return [r for _, r in sorted(found)[:k]]


def _fits(state: ReplanState, rider_id: str, order: PendingOrder) -> bool:
    """The rider has the order's skills and room for it beside the open orders of their route."""
    rider, plan = state.riders[rider_id], state.plans[rider_id]
    load = [0.0] * len(rider.capacity)
    for s in plan.stops:
        o = state.orders.get(s)
        if o is not None and s not in state.closed:
            load = [a + b for a, b in zip(load, o.demand, strict=True)]
    return needs(order) <= has(rider) and all(
        x + d <= c for x, d, c in zip(load, order.demand, rider.capacity, strict=True))


def _in_shift(rider: FreeRider, order: PendingOrder, now: float) -> bool:
    """The rider's shift ends after the order's window opens. A rider carrying parcels may finish
    them past the shift's end (:data:`OVERTIME_S`), but new work is for a rider on shift: else a
    rider about to go home takes the evening's parcels, to drop them once the last parcel on board
    is delivered."""
    return _secs(rider.shift_end) > max(now, _secs(order.window_start))


def passing_nearest(state: ReplanState, order: PendingOrder, riders: Iterable[str], now: float, k: int) -> list[str]:
    """Of ``riders`` (on routes, on shift when the order's window opens), the ``k`` whose route
    passes nearest the order's drop and that can take it."""
    found = []
    for r in riders:
        rider = state.riders.get(r)
        if rider is None or not _in_shift(rider, order, now) or not _fits(state, r, order):
            continue
        drops = [state.orders[s] for s in state.plans[r].stops if s in state.orders]
        near = min((haversine_m((o.lat, o.lon), (order.lat, order.lon)) for o in drops), default=math.inf)
        found.append((near, r))
    return [r for _, r in sorted(found)[:k]]


def nearest(state: ReplanState, point: tuple[float, float], order: PendingOrder, now: float, k: int,
            max_drops: int | None = None, exclude: frozenset[str] = frozenset()) -> list[str]:
    """The ``k`` riders on a route nearest to ``point``, not in ``exclude``, that can take ``order``
    (see :func:`_nearest`)."""
    return _nearest(state, point, [order], now, k, exclude=exclude, max_drops=max_drops)


def drop_trigger(state: ReplanState, kind: TriggerKind, subject_id: str) -> ReplanState:
    """A waiting trigger withdrawn from outside the fold (dispatch has a free rider for the order)."""
    kept = tuple(t for t in state.pending if not (t.kind is kind and t.subject_id == subject_id))
    return state if len(kept) == len(state.pending) else dataclasses.replace(state, pending=kept)


def add_trigger(state: ReplanState, trigger: Trigger) -> ReplanState:
    """A trigger from outside the fold (dispatch offering an order no free rider took)."""
    return _trigger(state, trigger)
