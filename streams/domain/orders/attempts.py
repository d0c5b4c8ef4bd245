"""What happens after a failed delivery attempt, pure: the re-attempt policy's decision.

Written to the ledger as ``AttemptDecided`` right after the accepted failure, so dispatch, the
rider app and analysts read one decision with its reason instead of each applying the policy:

1. refused or damaged: the parcel goes back to the hub (trying again would not help);
2. the attempts used (times out for delivery) reached the allowed attempts (the order's
   ``max_attempts``, else the hub's): back to the hub;
3. otherwise by the re-attempt mode (the order's, else the hub's): ``same_day`` re-attempts in
   ``[failed + same_day_after_min, max(window end, that + same_day_window_min)]``; ``next_day``
   moves the order's window by whole days to the first day (UTC) after the failure;
   ``customer_slot`` waits for the customer's new window (an ``OrderUpdated``). A same-day
   re-attempt that would open after the hub's ``same_day_latest_min`` goes back to the hub instead.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

from schemas import events as ev
from schemas.events import AttemptDecision, FailureReason, ReattemptMode
from streams.domain.hub_policy import HubPolicy
from streams.domain.ids import derived_id


class OrderState(Protocol):
    """What the decision reads of an order (:class:`streams.domain.orders.lifecycle.OrderState`)."""

    order_id: str
    rider_id: str | None
    attempts: int
    max_attempts: int | None
    reattempt: ReattemptMode | None
    window_start: datetime | None
    window_end: datetime | None

# Failures another attempt would not fix: the customer said no, or the parcel is broken.
RETURN_AT_ONCE = frozenset({FailureReason.REFUSED, FailureReason.DAMAGED})
DAY = timedelta(days=1)


def decide(state: OrderState, failure: ev.StatusChanged, hub: HubPolicy) -> ev.AttemptDecided:
    """The decision after ``failure`` (an accepted FAILED with its ``failure_reason``) of the order in
    ``state`` (as it was before the failure), under its hub's policy and its own overrides."""
    if failure.failure_reason is None:
        raise ValueError(f"StatusChanged {failure.event_id}: a failure needs its failure_reason to be decided on")
    why = failure.failure_reason
    attempt = max(1, state.attempts)
    allowed, allowed_from = (state.max_attempts, "order") if state.max_attempts is not None else (
        hub.reattempt.max_attempts, "hub policy")
    mode, mode_from = (state.reattempt, "order") if state.reattempt is not None else (hub.reattempt.mode, "hub policy")
    failed_at = failure.occurred_at
    said = f"attempt {attempt} of {allowed} ({allowed_from}) failed: {why.value}"

    def decided(decision: AttemptDecision, reason: str, window: tuple[datetime, datetime] | None = None
                ) -> ev.AttemptDecided:
        return ev.AttemptDecided(
            event_id=derived_id(failure.event_id, "attempt-decided"), occurred_at=failed_at, order_id=state.order_id,
            attempt=attempt, failure_reason=why, decision=decision, rider_id=failure.rider_id or state.rider_id,
            window_start=window[0] if window else None, window_end=window[1] if window else None, reason=reason)

    if why in RETURN_AT_ONCE:
        return decided(AttemptDecision.RETURN_TO_HUB, f"{said}; {why.value} parcels go back to the hub")
    if attempt >= allowed:
        return decided(AttemptDecision.RETURN_TO_HUB, f"{said}; no attempts left, back to the hub")
    policy = hub.reattempt
    match mode:
        case ReattemptMode.SAME_DAY:
            start = failed_at + timedelta(minutes=policy.same_day_after_min)
            latest = policy.same_day_latest_min
            if latest is not None and start.astimezone(UTC).hour * 60 + start.astimezone(UTC).minute > latest:
                return decided(AttemptDecision.RETURN_TO_HUB,
                               f"{said}; too late for a re-attempt today (none opens after "
                               f"{int(latest) // 60:02d}:{int(latest) % 60:02d} UTC), back to the hub")
            end = start + timedelta(minutes=policy.same_day_window_min)
            if state.window_end is not None:
                end = max(end, state.window_end)
            return decided(AttemptDecision.REATTEMPT, f"{said}; re-attempt the same day ({mode_from})", (start, end))
        case ReattemptMode.NEXT_DAY:
            return decided(AttemptDecision.REATTEMPT, f"{said}; re-attempt the next day ({mode_from})",
                           next_day_window(state.window_start, state.window_end, failed_at, policy.same_day_window_min))
        case ReattemptMode.CUSTOMER_SLOT:
            return decided(AttemptDecision.AWAIT_CUSTOMER_SLOT,
                           f"{said}; re-attempt in the slot the customer picks ({mode_from})")
    raise ValueError(f"unknown re-attempt mode {mode!r}")  # pragma: no cover - the enum is exhausted above


def next_day_window(start: datetime | None, end: datetime | None, failed_at: datetime,
                    fallback_min: float) -> tuple[datetime, datetime]:
    """The window ``[start, end]`` moved by whole days so it starts on the first day (UTC) after the
    failure (at least one day later). An order without a known window (state written before windows
    were kept) gets ``fallback_min`` minutes from a day after the failure."""
    if start is None or end is None:
        return failed_at + DAY, failed_at + DAY + timedelta(minutes=fallback_min)
    days = max(1, (failed_at.astimezone(UTC).date() - start.astimezone(UTC).date()).days + 1)
    return start + days * DAY, end + days * DAY


__all__ = ["RETURN_AT_ONCE", "decide", "next_day_window"]
