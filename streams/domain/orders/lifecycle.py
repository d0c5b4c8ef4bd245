"""The order lifecycle as a pure state machine: ``decide`` and ``evolve``.

    created -> assigned -> out_for_delivery -> arrived -> delivered
                  ^              |    \\            \\
                  |              |     '-> failed <-'
                  '--- (re-attempt) ----'    |
                                             '-> returned_to_hub
    cancelled: from any state before delivered / returned_to_hub.

A failure needs its ``failure_reason`` (a legacy submission's ``reason`` equal to a reason code is
that code, any other text is ``other`` with that text). Right after an accepted failure the ledger
gets the re-attempt decision (``AttemptDecided``, :mod:`streams.domain.orders.attempts`): a
re-attempt (failed -> assigned again), a wait for the customer's slot, or back to the hub
(failed -> returned_to_hub once the parcel is there).

An assigned order not yet out may be assigned again (a re-plan moves it to another rider's route);
once out for delivery the parcel is in one rider's box and only a failure frees it.

Arrival may go unobserved (GPS gaps), so POD and failure are also accepted straight from
out_for_delivery. ``decide`` turns one submission (from the inbox) into the events to append to
the order ledger plus notifications, or a rejection with a reason. The clock, the OTP key and
the policy are arguments; nothing here does I/O.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from schemas import events as ev
from schemas.events import OrderStatus as S
from streams.domain.hub_policy import HubPolicies
from streams.domain.ids import derived_id
from streams.domain.orders import attempts, otp

TERMINAL = frozenset({S.DELIVERED, S.RETURNED_TO_HUB, S.CANCELLED})

# Transitions a StatusChanged submission may ask for. Delivered needs an accepted POD, assigned
# an OrderAssigned and cancelled an OrderCancelled, so they are not here.
STATUS_TRANSITIONS: dict[S, frozenset[S]] = {
    S.OUT_FOR_DELIVERY: frozenset({S.ASSIGNED}),
    S.ARRIVED: frozenset({S.OUT_FOR_DELIVERY}),
    S.FAILED: frozenset({S.OUT_FOR_DELIVERY, S.ARRIVED}),
    S.RETURNED_TO_HUB: frozenset({S.FAILED}),
}
ASSIGNABLE = frozenset({S.CREATED, S.ASSIGNED, S.FAILED})  # assigned: moved by a re-plan before it left
POD_STATES = frozenset({S.OUT_FOR_DELIVERY, S.ARRIVED})
# Event ids an order remembers: more than a whole normal history (about ten events, twice that with
# a re-attempt), so a redelivered one is a no-op, while hostile input cannot grow the state.
SEEN_WINDOW = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderState:
    order_id: str
    tracking_id: str
    hub_id: str
    status: S
    rider_id: str | None = None
    route_id: str | None = None
    attempts: int = 0  # times sent out for delivery
    otp_salt: bytes | None = field(default=None, repr=False)
    otp_hash: bytes | None = field(default=None, repr=False)
    otp_expires_at: datetime | None = None
    otp_attempts_left: int = 0
    seen: tuple[str, ...] = ()  # the last event ids applied, oldest first: redelivery is a no-op
    window_start: datetime | None = None  # the promised window (OrderCreated, then OrderUpdated); None in old state
    window_end: datetime | None = None
    max_attempts: int | None = None  # the order's overrides of its hub's re-attempt policy
    reattempt: ev.ReattemptMode | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    otp_key: bytes
    otp_max_attempts: int = 3
    otp_ttl: timedelta = timedelta(hours=12)
    hubs: HubPolicies = HubPolicies()  # re-attempts after a failed delivery, per hub


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejection:
    kind: ev.DeadLetterKind
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    ledger: tuple[ev.OrderEvent, ...] = ()
    notifications: tuple[ev.OtpIssued, ...] = ()
    rejection: Rejection | None = None
    duplicate: bool = False  # already applied (redelivery), or an observation overtaken by facts
    otp_hash: bytes | None = field(default=None, repr=False)  # kept in state only, never in an event


def _illegal(reason: str) -> Decision:
    return Decision(rejection=Rejection(kind=ev.DeadLetterKind.ILLEGAL_TRANSITION, reason=reason))


def decide(state: OrderState | None, submission: ev.Event, now: datetime, policy: Policy) -> Decision:
    """What accepting ``submission`` means for an order in ``state``."""
    if not isinstance(submission, ev.OrderEvent):
        return Decision(rejection=Rejection(kind=ev.DeadLetterKind.INVALID,
                                            reason=f"{type(submission).__name__} does not belong on the order inbox"))
    if state is not None and submission.event_id in state.seen:
        return Decision(duplicate=True)
    name = type(submission).__name__
    if state is None:
        if isinstance(submission, ev.OrderCreated):
            return Decision(ledger=(submission,))
        return _illegal(f"{name} for unknown order {submission.order_id}")
    here = f"order {state.order_id} is {state.status.value}"
    match submission:
        case ev.OrderCreated():
            return _illegal(f"OrderCreated for an existing order: {here}")
        case ev.OrderUpdated():
            if state.status in TERMINAL:
                return _illegal(f"cannot update: {here}")
            return Decision(ledger=(submission,))
        case ev.OrderCancelled():
            if state.status in TERMINAL:
                return _illegal(f"cannot cancel: {here}")
            return Decision(ledger=(submission,))
        case ev.OrderAssigned():
            if (state.status in POD_STATES or state.status in TERMINAL) and not submission.manual:
                # A plan made before the parcel left the hub with another rider, or before the order
                # was cancelled or settled: overtaken by facts (dispatch hears them and drops it).
                return Decision(duplicate=True)
            if state.status not in ASSIGNABLE:
                return _illegal(f"cannot assign to {submission.rider_id}: {here}")
            return Decision(ledger=(submission,))
        case ev.StatusChanged():
            return _decide_status(state, submission, here, policy)
        case ev.PodSubmitted():
            return _decide_pod(state, submission, now, here)
        case _:
            return Decision(rejection=Rejection(kind=ev.DeadLetterKind.INVALID, reason=f"{name} is not an order submission"))


GEOFENCE = "geofence"


def _decide_status(state: OrderState, sub: ev.StatusChanged, here: str, policy: Policy) -> Decision:
    target = sub.to_status
    if target is S.ARRIVED and sub.reason == GEOFENCE and state.status is not S.OUT_FOR_DELIVERY:
        # The geofence saw the rider stop after the handover was already recorded, or at the door of
        # a parcel the rider does not carry (not loaded yet, moved to another rider): nothing new.
        return Decision(duplicate=True)
    allowed = STATUS_TRANSITIONS.get(target)
    if allowed is None:
        how = {S.DELIVERED: "an accepted POD", S.ASSIGNED: "OrderAssigned", S.CANCELLED: "OrderCancelled",
               S.CREATED: "OrderCreated"}[target]
        return _illegal(f"status {target.value} is reached through {how}, not StatusChanged ({here})")
    if state.status not in allowed:
        return _illegal(f"cannot go {state.status.value} -> {target.value}: {here}")
    accepted = dataclasses.replace(sub, from_status=state.status, rider_id=sub.rider_id or state.rider_id)
    if target is S.FAILED:
        failure = failure_reason(sub)
        if isinstance(failure, Rejection):
            return Decision(rejection=failure)
        accepted = dataclasses.replace(accepted, failure_reason=failure)
        return Decision(ledger=(accepted, attempts.decide(state, accepted, policy.hubs.of(state.hub_id))))
    if target is not S.OUT_FOR_DELIVERY:
        return Decision(ledger=(accepted,))
    issued = otp.issue(policy.otp_key, state.order_id, sub.event_id)
    notice = ev.OtpIssued(
        event_id=derived_id(sub.event_id, "otp-issued"), occurred_at=sub.occurred_at, order_id=state.order_id,
        tracking_id=state.tracking_id, otp_salt=issued.salt, otp_sealed=issued.sealed,
        expires_at=sub.occurred_at + policy.otp_ttl, max_attempts=policy.otp_max_attempts,
    )
    return Decision(ledger=(accepted,), notifications=(notice,), otp_hash=issued.hash)


_REASON_CODES = {r.value: r for r in ev.FailureReason}


def failure_reason(sub: ev.StatusChanged) -> ev.FailureReason | Rejection:
    """The failure's reason code: its ``failure_reason``, or for a legacy submission (only ``reason``)
    the code its text names, else ``other``. ``other`` needs the rider's words in ``reason``."""
    code = sub.failure_reason
    if code is None:
        if not sub.reason.strip():
            return Rejection(kind=ev.DeadLetterKind.INVALID,
                             reason="a failed delivery needs a failure_reason (or the reason in words)")
        code = _REASON_CODES.get(sub.reason.strip(), ev.FailureReason.OTHER)
    if code is ev.FailureReason.OTHER and not sub.reason.strip():
        return Rejection(kind=ev.DeadLetterKind.INVALID, reason="failure_reason other needs the rider's words in reason")
    return code


def _decide_pod(state: OrderState, sub: ev.PodSubmitted, now: datetime, here: str) -> Decision:
    if state.status not in POD_STATES:
        return _illegal(f"POD submitted but {here}")

    def rejected(reason: str, left: int) -> Decision:
        return Decision(ledger=(sub, ev.PodRejected(
            event_id=derived_id(sub.event_id, "pod-rejected"), occurred_at=sub.occurred_at, order_id=state.order_id,
            rider_id=sub.rider_id, pod_event_id=sub.event_id, reason=reason, attempts_left=left)))

    if state.otp_hash is None or state.otp_salt is None:
        return rejected("no OTP was issued for this attempt", 0)
    if state.otp_attempts_left <= 0:
        return rejected("OTP locked after too many wrong entries", 0)
    if state.otp_expires_at is not None and now > state.otp_expires_at:
        return rejected("OTP expired", state.otp_attempts_left)
    if not otp.matches(sub.otp_hash, state.otp_hash):
        return rejected("wrong OTP", state.otp_attempts_left - 1)
    accepted = ev.PodAccepted(event_id=derived_id(sub.event_id, "pod-accepted"), occurred_at=sub.occurred_at,
                              order_id=state.order_id, rider_id=sub.rider_id, pod_event_id=sub.event_id)
    delivered = ev.StatusChanged(event_id=derived_id(sub.event_id, "delivered"), occurred_at=sub.occurred_at,
                                 order_id=state.order_id, from_status=state.status, to_status=S.DELIVERED,
                                 reason="pod_otp", rider_id=sub.rider_id, location=sub.location)
    return Decision(ledger=(sub, accepted, delivered))


def evolve(state: OrderState | None, event: ev.Event, seen_window: int = SEEN_WINDOW) -> OrderState | None:
    """The order after one ledger or notification event; ``seen`` keeps the last ``seen_window`` ids."""
    if state is None:
        if not isinstance(event, ev.OrderCreated):
            raise ValueError(f"{type(event).__name__} cannot start order history")
        return OrderState(order_id=event.order_id, tracking_id=event.tracking_id, hub_id=event.hub_id,
                          status=S.CREATED, seen=_remember((), event.event_id, seen_window),
                          window_start=event.window_start, window_end=event.window_end,
                          max_attempts=event.max_attempts, reattempt=event.reattempt)
    seen = _remember(state.seen, event.event_id, seen_window)
    match event:
        case ev.OrderUpdated():
            return dataclasses.replace(state, window_start=event.window_start or state.window_start,
                                       window_end=event.window_end or state.window_end, seen=seen)
        case ev.OrderCancelled():
            return dataclasses.replace(state, status=S.CANCELLED, seen=seen)
        case ev.OrderAssigned():
            return dataclasses.replace(state, status=S.ASSIGNED, rider_id=event.rider_id, route_id=event.route_id, seen=seen)
        case ev.StatusChanged():
            attempts = state.attempts + (event.to_status is S.OUT_FOR_DELIVERY)
            return dataclasses.replace(state, status=event.to_status, attempts=attempts, seen=seen)
        case ev.OtpIssued():
            return dataclasses.replace(state, otp_salt=event.otp_salt, otp_expires_at=event.expires_at,
                                       otp_attempts_left=event.max_attempts, seen=seen)
        case ev.PodRejected():
            return dataclasses.replace(state, otp_attempts_left=max(0, min(state.otp_attempts_left, event.attempts_left)), seen=seen)
        case _:
            return dataclasses.replace(state, seen=seen)


def _remember(seen: tuple[str, ...], event_id: str, window: int) -> tuple[str, ...]:
    if event_id in seen:
        return seen
    return (*seen, event_id)[-window:] if window > 0 else ()


def apply(state: OrderState | None, decision: Decision, seen_window: int = SEEN_WINDOW) -> OrderState | None:
    """Evolve through everything a decision emits. The OTP hash rides on the decision, not on
    any event, so it exists only inside the order state."""
    for event in (*decision.ledger, *decision.notifications):
        state = evolve(state, event, seen_window)
    if decision.otp_hash is not None and state is not None:
        state = dataclasses.replace(state, otp_hash=decision.otp_hash)
    return state
