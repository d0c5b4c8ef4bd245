"""Customer notifications, pure: what to tell the person waiting for an order, and when.

A customer should hear about each thing once, in order, and nothing after the parcel is in
their hands. Per delivery *attempt* (the lifecycle's out_for_delivery, counted in
``OrderState.attempts``), each kind goes out at most once:

- **out_for_delivery**: the order is out for delivery and an ETA for its route is known. Carries
  an ETA window: p50..p90 rounded outward to 5-minute slots (10-minute slots when the p90 is more
  than an hour away), local-time aligned.
- **arriving_soon**: the p50 is within 10 minutes, or the rider is heading to this stop now
  (:func:`on_next_stop`). Checked on ETAs and on a timer (:func:`on_tick`): the ETA module emits
  only when an estimate moves, and an on-time rider's estimate does not. Skipped when the
  out_for_delivery notice already said so (a first stop near the hub).
- **delayed**: the p90 moved past the promised window end; carries the new window. Once per
  promise: a later one (``OrderUpdated`` with a new window end) can be missed again. A notice
  whose window already ends past the promise (out_for_delivery, arriving_soon) tells the delay
  itself, so no second notice follows it.
- **delivered**: once; after it nothing is ever sent for the order.
- **failed**, with the reason: ends the attempt; nothing more is sent for it. If the lifecycle
  sends the order out again (failed -> assigned -> out_for_delivery) a new attempt starts with
  its own notices. Cancelled and returned-to-hub orders are closed silently (the order system
  owns those conversations).

Inputs are what flows on the order key, so one agent on ``orders`` + ``etas`` owns an order's
state: ``OrderCreated`` / ``OrderUpdated`` (the promise), ``OrderAssigned`` (the route whose ETAs
count: estimates of an earlier route are stale), ``StatusChanged``, ``OrderCancelled`` and
``EtaUpdated``; plus :func:`on_tick` and :func:`on_next_stop`. Times are epoch seconds.

Output: :class:`Notice` records with deterministic ids (a replay after a restart derives the
same id, so the sender can deduplicate); ``streams.agents.notifications`` publishes them as
``CustomerNotified`` events on ``notifications``.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass

from schemas import events as ev
from schemas.events import NoticeKind, OrderStatus  # the kinds are the wire enum
from streams.domain.ids import derived_id

__all__ = [
    "Notice", "NoticeKind", "NoticeParams", "NoticeState", "Phase", "eta_window", "on_eta", "on_next_stop",
    "on_order", "on_tick", "tick_due_at",
]



N = NoticeKind


class Phase(enum.StrEnum):
    WAITING = "waiting"  # not out for delivery (yet, or again after a failed attempt)
    OUT = "out"
    ARRIVED = "arrived"  # the rider is at the door: nothing to announce until the outcome
    FAILED = "failed"  # this attempt failed; the lifecycle may start another
    CLOSED = "closed"  # delivered, cancelled or returned: never again


@dataclass(frozen=True, slots=True, kw_only=True)
class NoticeParams:
    slot_s: float = 300.0  # ETA windows snap outward to slots of this size...
    wide_slot_s: float = 600.0  # ...or of this size when the p90 is further away than
    wide_after_s: float = 3600.0  # this
    arriving_soon_s: float = 600.0
    utc_offset_s: float = 0.0  # local time of the city, so slots fall on :00, :05, :10...


DEFAULT_PARAMS = NoticeParams()


@dataclass(frozen=True, slots=True, kw_only=True)
class NoticeState:
    order_id: str
    tracking_id: str = ""
    promised_end_s: float = math.inf
    route_id: str | None = None  # the route whose ETAs count
    rider_id: str | None = None  # the rider of that route, for the message ("Ravi is on his way")
    attempt: int = 0
    phase: Phase = Phase.WAITING
    sent: frozenset[NoticeKind] = frozenset()  # this attempt
    delayed_for_s: float | None = None  # the promise a delay was told against
    eta: tuple[float, float, float] | None = None  # (made at, p50, p90) of the latest estimate
    next_stop: bool = False  # the rider is heading here now


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice:
    notice_id: str
    order_id: str
    tracking_id: str
    kind: NoticeKind
    attempt: int
    at_s: float
    window_start_s: float | None = None  # the ETA window told, when the notice has one
    window_end_s: float | None = None
    promised_end_s: float | None = None  # so the message can say "later than promised"
    reason: str = ""  # why a delivery failed
    rider_id: str | None = None


def eta_window(p50_s: float, p90_s: float, now_s: float, params: NoticeParams = DEFAULT_PARAMS) -> tuple[float, float]:
    """p50..p90 snapped outward to whole slots (never starting in the past, at least one slot)."""
    slot = params.slot_s if p90_s - now_s <= params.wide_after_s else params.wide_slot_s
    off = params.utc_offset_s
    start = math.floor((max(p50_s, now_s) + off) / slot) * slot - off
    end = math.ceil((p90_s + off) / slot) * slot - off
    return start, max(end, start + slot)


def on_order(state: NoticeState | None, event: ev.OrderEvent,
             params: NoticeParams = DEFAULT_PARAMS) -> tuple[NoticeState, tuple[Notice, ...]]:
    """Fold one order-ledger event in; returns the notices it causes."""
    if state is None:
        state = NoticeState(order_id=event.order_id)
    at_s = event.occurred_at.timestamp()
    match event:
        case ev.OrderCreated():
            return dataclasses.replace(state, tracking_id=event.tracking_id, promised_end_s=event.window_end.timestamp()), ()
        case ev.OrderUpdated() if event.window_end is not None:
            return _due(dataclasses.replace(state, promised_end_s=event.window_end.timestamp()), at_s, params)
        case ev.OrderAssigned() if event.route_id != state.route_id:
            return dataclasses.replace(state, route_id=event.route_id, rider_id=event.rider_id, eta=None,
                                       next_stop=False), ()
        case ev.OrderCancelled():
            return dataclasses.replace(state, phase=Phase.CLOSED), ()
        case ev.StatusChanged():
            return _on_status(state, event, at_s, params)
    return state, ()


def _on_status(state: NoticeState, event: ev.StatusChanged, at_s: float,
               params: NoticeParams) -> tuple[NoticeState, tuple[Notice, ...]]:
    to, phase = event.to_status, state.phase
    if phase is Phase.CLOSED:
        return state, ()
    if to is OrderStatus.OUT_FOR_DELIVERY:
        if phase not in (Phase.WAITING, Phase.FAILED):
            return state, ()  # the same attempt again (a replay)
        return _due(dataclasses.replace(state, attempt=state.attempt + 1, phase=Phase.OUT, sent=frozenset(), next_stop=False),
                    at_s, params)
    if to is OrderStatus.ARRIVED:
        return (dataclasses.replace(state, phase=Phase.ARRIVED), ()) if phase is Phase.OUT else (state, ())
    if to is OrderStatus.DELIVERED:
        closed = dataclasses.replace(state, phase=Phase.CLOSED)
        if phase not in (Phase.OUT, Phase.ARRIVED):
            return closed, ()
        return closed, (_notice(state, N.DELIVERED, at_s),)
    if to is OrderStatus.FAILED:
        if phase not in (Phase.OUT, Phase.ARRIVED):
            return state, ()
        return dataclasses.replace(state, phase=Phase.FAILED, eta=None, next_stop=False), \
            (_notice(state, N.FAILED, at_s, reason=event.reason),)
    if to in (OrderStatus.CANCELLED, OrderStatus.RETURNED_TO_HUB):
        return dataclasses.replace(state, phase=Phase.CLOSED), ()
    return state, ()


def on_eta(state: NoticeState | None, eta: ev.EtaUpdated,
           params: NoticeParams = DEFAULT_PARAMS) -> tuple[NoticeState, tuple[Notice, ...]]:
    """A new estimate for the order: kept if it is for the order's route and newer than the last."""
    if state is None:
        state = NoticeState(order_id=eta.order_id)
    made = eta.occurred_at.timestamp()
    if (state.route_id is not None and eta.route_id != state.route_id) or \
            (state.eta is not None and made <= state.eta[0]) or state.phase is Phase.CLOSED:
        return state, ()
    # The rider too: the ETA may be read before the OrderAssigned for its route (another topic).
    return _due(dataclasses.replace(state, route_id=eta.route_id, rider_id=eta.rider_id,
                                    eta=(made, eta.eta_p50.timestamp(), eta.eta_p90.timestamp())), made, params)


def on_next_stop(state: NoticeState, at_s: float,
                 params: NoticeParams = DEFAULT_PARAMS) -> tuple[NoticeState, tuple[Notice, ...]]:
    """The rider left the stop before this one (or the hub) heading here."""
    if state.next_stop or state.phase is not Phase.OUT:
        return state, ()
    return _due(dataclasses.replace(state, next_stop=True), at_s, params)


def on_tick(state: NoticeState, now_s: float,
            params: NoticeParams = DEFAULT_PARAMS) -> tuple[NoticeState, tuple[Notice, ...]]:
    """Time passing brings a known p50 within the arriving-soon horizon."""
    return _due(state, now_s, params)


def tick_due_at(state: NoticeState, params: NoticeParams = DEFAULT_PARAMS) -> float | None:
    """When time passing alone would call for a notice (the arriving-soon horizon of the known p50),
    or None: lets a timer skip, without folding, every order a tick cannot change."""
    if state.phase is not Phase.OUT or state.eta is None or N.ARRIVING_SOON in state.sent:
        return None
    return state.eta[1] - params.arriving_soon_s


class EventClock:
    """The time a tick judges by: the latest event time seen, running on with the wall clock
    since. Live, it is the wall clock less the pipeline's lag; in a replay or a simulated day
    (a past date, or time running faster than the wall) it stays on the events' day, where the
    wall clock would call every estimate due at once and date the notices today. Never ahead of
    the wall clock: one event stamped in the future (a skewed device or producer) must not make
    every order's notice early. Never goes back; None until the first event."""

    __slots__ = ("_event_s", "_wall_s")

    def __init__(self) -> None:
        self._event_s: float | None = None
        self._wall_s = 0.0

    def saw(self, event_s: float, wall_s: float) -> None:
        running = self.now(wall_s)
        self._event_s = event_s if running is None else max(running, event_s)
        self._wall_s = wall_s

    def now(self, wall_s: float) -> float | None:
        if self._event_s is None:
            return None
        return min(wall_s, self._event_s + max(0.0, wall_s - self._wall_s))


def _due(state: NoticeState, now_s: float, params: NoticeParams) -> tuple[NoticeState, tuple[Notice, ...]]:
    """The notices the state now calls for, each at most once per attempt."""
    if state.phase is not Phase.OUT or state.eta is None:
        return state, ()
    _, p50, p90 = state.eta
    sent = state.sent
    promise = state.promised_end_s
    late = p90 > promise and state.delayed_for_s != promise
    soon = state.next_stop or p50 - now_s <= params.arriving_soon_s
    kind = None
    if N.OUT_FOR_DELIVERY not in sent:
        kind = N.OUT_FOR_DELIVERY
        sent = sent | ({N.OUT_FOR_DELIVERY, N.ARRIVING_SOON} if soon else {N.OUT_FOR_DELIVERY})
    elif soon and N.ARRIVING_SOON not in sent:
        kind = N.ARRIVING_SOON
        sent = sent | {N.ARRIVING_SOON}
    elif late:
        kind = N.DELAYED
    if kind is None:
        return state, ()
    start, end = eta_window(p50, p90, now_s, params)
    notice = _notice(state, kind, now_s, start, end)
    return dataclasses.replace(state, sent=sent, delayed_for_s=promise if late else state.delayed_for_s), (notice,)


def _notice(state: NoticeState, kind: NoticeKind, at_s: float, start: float | None = None, end: float | None = None,
            reason: str = "") -> Notice:
    attempt = max(1, state.attempt)
    purpose = f"notice/{attempt}/{kind}" + (f"/{state.promised_end_s!r}" if kind is N.DELAYED else "")
    return Notice(notice_id=derived_id(state.order_id, purpose), order_id=state.order_id,
                  tracking_id=state.tracking_id, kind=kind, attempt=attempt, at_s=at_s, window_start_s=start,
                  window_end_s=end, promised_end_s=None if math.isinf(state.promised_end_s) else state.promised_end_s,
                  reason=reason, rider_id=state.rider_id)
