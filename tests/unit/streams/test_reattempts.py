"""Failed deliveries: the failure's reason code (legacy reason texts mapped), the re-attempt decision
after each accepted failure (each rule of ``streams.domain.orders.attempts``), the order state that
decision needs (window, overrides) and its state record, old records included."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
import pytest

from schemas import events as ev
from schemas.codec import SINGLE_OBJECT_MAGIC, schema_fingerprint
from schemas.events import AttemptDecision as D
from schemas.events import FailureReason as F
from schemas.events import OrderStatus as S
from schemas.events import ReattemptMode as M
from streams import state as state_codec
from streams.domain.hub_policy import HubPolicies, HubPolicy, ReattemptPolicy
from streams.domain.ids import derived_id
from streams.domain.orders import attempts, otp
from streams.domain.orders import lifecycle as lc

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # a Tuesday, 09:00 UTC
ORDER = "ord-1"
RIDER = "rider-1"
HUB = HubPolicy()  # 2 attempts, same day: from 60 min after the failure, at least 180 min
KEY = otp.key_bytes("c3" * 32)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def order_state(attempts_used: int = 1, **overrides: Any) -> lc.OrderState:
    fields: dict[str, Any] = dict(order_id=ORDER, tracking_id="TRK1", hub_id="hub-1", status=S.OUT_FOR_DELIVERY,
                                  rider_id=RIDER, route_id="route-1", attempts=attempts_used, window_start=at(0),
                                  window_end=at(240))
    fields.update(overrides)
    return lc.OrderState(**fields)


def failure(why: F = F.CUSTOMER_NOT_AVAILABLE, minute: float = 120, eid: str = "e-failed",
            reason: str = "") -> ev.StatusChanged:
    return ev.StatusChanged(event_id=eid, occurred_at=at(minute), order_id=ORDER, from_status=S.OUT_FOR_DELIVERY,
                            to_status=S.FAILED, reason=reason, rider_id=RIDER, failure_reason=why)


def hub(**reattempt: Any) -> HubPolicy:
    return HubPolicy(reattempt=ReattemptPolicy(**reattempt))


# ---- the decision, rule by rule -------------------------------------------------------------------


@pytest.mark.parametrize("why", [F.REFUSED, F.DAMAGED])
def test_a_refused_or_damaged_parcel_goes_back_to_the_hub_with_attempts_left(why: F) -> None:
    decided = attempts.decide(order_state(), failure(why), hub(max_attempts=5))
    assert (decided.decision, decided.failure_reason, decided.attempt) == (D.RETURN_TO_HUB, why, 1)
    assert decided.window_start is None and decided.window_end is None
    assert why.value in decided.reason and "back to the hub" in decided.reason


def test_the_last_allowed_attempt_failed_goes_back_to_the_hub() -> None:
    decided = attempts.decide(order_state(attempts_used=2), failure(), HUB)
    assert decided.decision is D.RETURN_TO_HUB and decided.attempt == 2
    assert "attempt 2 of 2 (hub policy)" in decided.reason and "no attempts left" in decided.reason


def test_the_orders_max_attempts_overrides_the_hubs() -> None:
    more = attempts.decide(order_state(attempts_used=2, max_attempts=3), failure(), HUB)
    assert more.decision is D.REATTEMPT and "attempt 2 of 3 (order)" in more.reason
    fewer = attempts.decide(order_state(attempts_used=1, max_attempts=1), failure(), hub(max_attempts=4))
    assert fewer.decision is D.RETURN_TO_HUB and "attempt 1 of 1 (order)" in fewer.reason


def test_same_day_reattempt_opens_after_the_wait_and_keeps_the_original_end_when_later() -> None:
    decided = attempts.decide(order_state(window_end=at(600)), failure(minute=120), HUB)
    assert decided.decision is D.REATTEMPT
    assert (decided.window_start, decided.window_end) == (at(180), at(600))
    assert "same day (hub policy)" in decided.reason


def test_same_day_reattempt_stays_open_at_least_the_policys_window() -> None:
    decided = attempts.decide(order_state(window_end=at(240)), failure(minute=120),
                              hub(same_day_after_min=30, same_day_window_min=120))
    assert (decided.window_start, decided.window_end) == (at(150), at(270))


def test_a_same_day_reattempt_that_would_open_after_the_hubs_latest_goes_back_to_the_hub() -> None:
    late = hub(same_day_latest_min=12 * 60)  # no re-attempt window opens after 12:00 UTC
    early = attempts.decide(order_state(), failure(minute=60), late)  # 10:00 + 60 min: 11:00
    assert early.decision is D.REATTEMPT and early.window_start == at(120)
    decided = attempts.decide(order_state(), failure(minute=150), late)  # 11:30 + 60 min: 12:30
    assert decided.decision is D.RETURN_TO_HUB and decided.window_start is None
    assert "too late for a re-attempt today (none opens after 12:00 UTC)" in decided.reason


def test_next_day_moves_the_original_window_to_the_day_after_the_failure() -> None:
    decided = attempts.decide(order_state(window_start=at(0), window_end=at(240)), failure(minute=120),
                              hub(mode=M.NEXT_DAY))
    assert decided.decision is D.REATTEMPT
    assert (decided.window_start, decided.window_end) == (at(24 * 60), at(24 * 60 + 240))
    assert "next day" in decided.reason


def test_next_day_counts_whole_days_from_the_windows_own_day() -> None:
    """A window that began two days before the failure moves three days: to the day after the failure."""
    start, end = attempts.next_day_window(at(-2 * 24 * 60), at(-2 * 24 * 60 + 60), at(300), 180)
    assert (start, end) == (at(24 * 60), at(24 * 60 + 60))
    late_failure = attempts.next_day_window(at(0), at(60), T0.replace(hour=23, minute=59), 180)
    assert late_failure == (at(24 * 60), at(24 * 60 + 60))
    assert attempts.next_day_window(None, None, at(0), 90) == (at(24 * 60), at(24 * 60 + 90))


def test_customer_slot_waits_for_the_customer_without_a_window() -> None:
    decided = attempts.decide(order_state(), failure(), hub(mode=M.CUSTOMER_SLOT))
    assert decided.decision is D.AWAIT_CUSTOMER_SLOT
    assert decided.window_start is None and decided.window_end is None


def test_the_orders_mode_overrides_the_hubs() -> None:
    decided = attempts.decide(order_state(reattempt=M.CUSTOMER_SLOT), failure(), hub(mode=M.NEXT_DAY))
    assert decided.decision is D.AWAIT_CUSTOMER_SLOT and "(order)" in decided.reason


def test_the_decision_names_the_parcels_holder_and_derives_its_id_from_the_failure() -> None:
    decided = attempts.decide(order_state(rider_id="rider-9"), dataclasses.replace(failure(), rider_id=None), HUB)
    assert decided.rider_id == "rider-9"
    assert decided.event_id == derived_id("e-failed", "attempt-decided")
    assert decided.occurred_at == at(120) and decided.order_id == ORDER


def test_a_failure_without_its_code_cannot_be_decided() -> None:
    with pytest.raises(ValueError, match="failure_reason"):
        attempts.decide(order_state(), dataclasses.replace(failure(), failure_reason=None), HUB)


# ---- the lifecycle: reason codes and the decision on the ledger ----------------------------------


POLICY = lc.Policy(otp_key=KEY, hubs=HubPolicies(hubs={"hub-2": hub(mode=M.NEXT_DAY, max_attempts=3)}))


def created(hub_id: str = "hub-1", **overrides: Any) -> ev.OrderCreated:
    return ev.OrderCreated(
        event_id="e-created", occurred_at=at(-60), order_id=ORDER, tracking_id="TRK1", hub_id=hub_id,
        mode=ev.DeliveryMode.LAST_MILE, drop=ev.Location(lat=12.97, lon=77.59), window_start=at(0),
        window_end=at(240), service_time_s=120, weight_kg=1.5, volume_l=3.0, units=1, **overrides)


def assigned(eid: str, minute: float) -> ev.OrderAssigned:
    return ev.OrderAssigned(event_id=eid, occurred_at=at(minute), order_id=ORDER, rider_id=RIDER, route_id="route-1",
                            sequence=1, planned_arrival=at(minute + 30))


def status(to: S, eid: str, minute: float, reason: str = "", why: F | None = None) -> ev.StatusChanged:
    return ev.StatusChanged(event_id=eid, occurred_at=at(minute), order_id=ORDER, to_status=to, reason=reason,
                            failure_reason=why)


def run(*subs: ev.Event, policy: lc.Policy = POLICY) -> tuple[lc.OrderState, list[lc.Decision]]:
    state: lc.OrderState | None = None
    decisions = []
    for sub in subs:
        decision = lc.decide(state, sub, sub.occurred_at, policy)
        assert decision.rejection is None, decision.rejection
        state = lc.apply(state, decision)
        decisions.append(decision)
    assert state is not None
    return state, decisions


def out_for_delivery(hub_id: str = "hub-1", **overrides: Any) -> lc.OrderState:
    state, _ = run(created(hub_id, **overrides), assigned("e-a1", 1), status(S.OUT_FOR_DELIVERY, "e-o1", 2))
    return state


@pytest.mark.parametrize(("reason", "why", "code"), [
    ("", F.NO_ACCESS, F.NO_ACCESS),  # the code alone is enough
    ("gate locked", F.NO_ACCESS, F.NO_ACCESS),  # words may come with it
    ("address_not_found", None, F.ADDRESS_NOT_FOUND),  # a legacy producer naming a code
    ("  refused ", None, F.REFUSED),
    ("nobody home, dog barking", None, F.OTHER),  # any other legacy text is other, with its words
    ("gate locked", F.OTHER, F.OTHER),
])
def test_a_failure_is_accepted_with_its_reason_code(reason: str, why: F | None, code: F) -> None:
    decision = lc.decide(out_for_delivery(), status(S.FAILED, "e-f1", 30, reason, why), at(30), POLICY)
    assert decision.rejection is None
    failed, decided = decision.ledger
    assert isinstance(failed, ev.StatusChanged) and isinstance(decided, ev.AttemptDecided)
    assert (failed.failure_reason, failed.reason, failed.from_status) == (code, reason, S.OUT_FOR_DELIVERY)
    assert decided.failure_reason is code


@pytest.mark.parametrize(("reason", "why", "words"), [
    ("", None, "needs a failure_reason"),
    ("   ", None, "needs a failure_reason"),
    ("", F.OTHER, "other needs the rider's words"),
    (" ", F.OTHER, "other needs the rider's words"),
])
def test_a_failure_without_a_code_or_words_is_invalid(reason: str, why: F | None, words: str) -> None:
    decision = lc.decide(out_for_delivery(), status(S.FAILED, "e-f1", 30, reason, why), at(30), POLICY)
    assert decision.rejection is not None and decision.rejection.kind is ev.DeadLetterKind.INVALID
    assert words in decision.rejection.reason and decision.ledger == ()


def test_failed_reattempted_failed_again_then_returned_to_hub() -> None:
    state, decisions = run(
        created(), assigned("e-a1", 1), status(S.OUT_FOR_DELIVERY, "e-o1", 2),
        status(S.FAILED, "e-f1", 30, why=F.CUSTOMER_NOT_AVAILABLE),
        assigned("e-a2", 100), status(S.OUT_FOR_DELIVERY, "e-o2", 101),
        status(S.FAILED, "e-f2", 150, why=F.CUSTOMER_NOT_AVAILABLE),
        status(S.RETURNED_TO_HUB, "e-back", 200, "back at the hub"))
    first, second = (d.ledger[1] for d in (decisions[3], decisions[6]))
    assert isinstance(first, ev.AttemptDecided) and isinstance(second, ev.AttemptDecided)
    assert (first.decision, first.attempt, first.window_start, first.window_end) == (D.REATTEMPT, 1, at(90), at(270))
    assert (second.decision, second.attempt) == (D.RETURN_TO_HUB, 2)
    assert (state.status, state.attempts) == (S.RETURNED_TO_HUB, 2)
    again = lc.decide(state, assigned("e-a3", 210), at(210), POLICY)  # a plan overtaken by the return
    assert again.duplicate and again.ledger == ()
    manual = dataclasses.replace(assigned("e-a4", 210), assigned_by="dispatcher:ana")
    assert lc.decide(state, manual, at(210), POLICY).rejection is not None


def test_the_hubs_own_policy_and_the_orders_overrides_reach_the_decision() -> None:
    at_hub_2 = lc.decide(out_for_delivery("hub-2"), status(S.FAILED, "e-f1", 30, why=F.NO_ACCESS), at(30), POLICY)
    decided = at_hub_2.ledger[1]
    assert isinstance(decided, ev.AttemptDecided)
    assert decided.decision is D.REATTEMPT and decided.window_start == at(24 * 60)  # hub-2: next day
    overridden = lc.decide(out_for_delivery("hub-2", max_attempts=1), status(S.FAILED, "e-f1", 30, why=F.NO_ACCESS),
                           at(30), POLICY)
    assert overridden.ledger[1].decision is D.RETURN_TO_HUB  # type: ignore[attr-defined]
    default = lc.decide(out_for_delivery(), status(S.FAILED, "e-f1", 30, why=F.NO_ACCESS), at(30),
                        lc.Policy(otp_key=KEY))
    assert default.ledger[1].decision is D.REATTEMPT  # type: ignore[attr-defined]


def test_a_redelivered_failure_decides_nothing_new() -> None:
    failed = status(S.FAILED, "e-f1", 30, why=F.NO_ACCESS)
    state, _ = run(created(), assigned("e-a1", 1), status(S.OUT_FOR_DELIVERY, "e-o1", 2), failed)
    again = lc.decide(state, failed, at(31), POLICY)
    assert again.duplicate and again.ledger == ()


def test_the_customers_new_window_is_the_one_the_next_decision_moves() -> None:
    """Awaiting the customer's slot: the OrderUpdated with the slot becomes the order's window."""
    slot = ev.OrderUpdated(event_id="e-slot", occurred_at=at(60), order_id=ORDER, window_start=at(600),
                           window_end=at(660))
    state, decisions = run(created(reattempt=M.CUSTOMER_SLOT, max_attempts=3), assigned("e-a1", 1),
                           status(S.OUT_FOR_DELIVERY, "e-o1", 2), status(S.FAILED, "e-f1", 30, why=F.NO_ACCESS), slot)
    assert decisions[3].ledger[1].decision is D.AWAIT_CUSTOMER_SLOT  # type: ignore[attr-defined]
    assert (state.window_start, state.window_end, state.reattempt, state.max_attempts) == (
        at(600), at(660), M.CUSTOMER_SLOT, 3)
    only_priority = ev.OrderUpdated(event_id="e-prio", occurred_at=at(61), order_id=ORDER, priority=4)
    state, _ = run(created(), only_priority)
    assert (state.window_start, state.window_end) == (at(0), at(240))


# ---- the state record ----------------------------------------------------------------------------


def test_an_order_state_with_window_and_overrides_round_trips_its_record() -> None:
    state = out_for_delivery(max_attempts=3, reattempt=M.NEXT_DAY)
    assert (state.max_attempts, state.reattempt, state.window_start) == (3, M.NEXT_DAY, at(0))
    assert state_codec.decode("order-state", state_codec.encode("order-state", state)) == state


def test_a_record_written_before_windows_were_kept_reads_with_none() -> None:
    released = sorted((state_codec.STATE_DIR / "released").glob("OrderState.*.avsc"))
    old = next(json.loads(p.read_text()) for p in released
               if "window_start" not in {f["name"] for f in json.loads(p.read_text())["fields"]})
    datum = {"order_id": ORDER, "tracking_id": "TRK1", "hub_id": "hub-1", "status": "failed",
             "rider_id": ("string", RIDER), "route_id": None, "attempts": 1, "otp_salt": None, "otp_hash": None,
             "otp_expires_at": None, "otp_attempts_left": 0, "seen": ["e-created"]}
    buf = io.BytesIO()
    buf.write(SINGLE_OBJECT_MAGIC + schema_fingerprint(fastavro.parse_schema(old, _write_hint=False)))
    fastavro.schemaless_writer(buf, fastavro.parse_schema(old), datum)
    got = state_codec.decode("order-state", buf.getvalue())
    assert got == lc.OrderState(order_id=ORDER, tracking_id="TRK1", hub_id="hub-1", status=S.FAILED, rider_id=RIDER,
                                attempts=1, seen=("e-created",))
    # and such an order is still decided on: a next-day re-attempt without a known window
    decided = attempts.decide(got, failure(minute=120), hub(mode=M.NEXT_DAY))
    assert (decided.window_start, decided.window_end) == (at(120 + 24 * 60), at(120 + 24 * 60 + 180))
