"""Order lifecycle: given the ledger so far, when a submission arrives, then these events (or
this rejection)."""

from __future__ import annotations

import dataclasses
import datetime as _dt
from datetime import UTC, datetime, timedelta

import pytest

from schemas import Codec
from schemas import events as ev
from schemas.events import OrderStatus as S
from streams.domain.ids import derived_id
from streams.domain.orders import lifecycle as lc
from streams.domain.orders import otp

KEY = otp.key_bytes("c3" * 32)
POLICY = lc.Policy(otp_key=KEY, otp_max_attempts=3, otp_ttl=timedelta(hours=2))
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
ORDER = "ord-1"
RIDER = "rider-1"
ILLEGAL = ev.DeadLetterKind.ILLEGAL_TRANSITION
INVALID = ev.DeadLetterKind.INVALID


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# ---- submissions --------------------------------------------------------------------------


def created(eid: str = "e-created") -> ev.OrderCreated:
    return ev.OrderCreated(
        event_id=eid, occurred_at=at(0), order_id=ORDER, tracking_id="TRK1", hub_id="hub-1",
        mode=ev.DeliveryMode.LAST_MILE, drop=ev.Location(lat=12.97, lon=77.59), window_start=at(30),
        window_end=at(210), service_time_s=120, weight_kg=1.5, volume_l=3.0, units=1)


def assigned(eid: str = "e-assigned", rider: str = RIDER, minute: float = 1) -> ev.OrderAssigned:
    return ev.OrderAssigned(event_id=eid, occurred_at=at(minute), order_id=ORDER, rider_id=rider, route_id="route-1",
                            sequence=1, planned_arrival=at(40))


def status(to: S, eid: str, minute: float = 2, reason: str = "") -> ev.StatusChanged:
    return ev.StatusChanged(event_id=eid, occurred_at=at(minute), order_id=ORDER, to_status=to, reason=reason)


def out(eid: str = "e-out", minute: float = 2) -> ev.StatusChanged:
    return status(S.OUT_FOR_DELIVERY, eid, minute)


def arrived(eid: str = "e-arrived", minute: float = 10) -> ev.StatusChanged:
    return status(S.ARRIVED, eid, minute)


def failed(eid: str = "e-failed", minute: float = 12, reason: str = "customer_not_available") -> ev.StatusChanged:
    return status(S.FAILED, eid, minute, reason)


def pod(eid: str, otp_hash: bytes | None, minute: float = 11) -> ev.PodSubmitted:
    return ev.PodSubmitted(event_id=eid, occurred_at=at(minute), order_id=ORDER, rider_id=RIDER, otp_hash=otp_hash,
                           location=ev.GeoPoint(lat=12.97, lon=77.59))


def cancelled(eid: str = "e-cancel", minute: float = 20) -> ev.OrderCancelled:
    return ev.OrderCancelled(event_id=eid, occurred_at=at(minute), order_id=ORDER, reason="customer changed mind")


# ---- driving the state machine -------------------------------------------------------------


def accept(state: lc.OrderState | None, sub: ev.Event, now: datetime | None = None) -> tuple[lc.OrderState, lc.Decision]:
    decision = lc.decide(state, sub, now or sub.occurred_at, POLICY)
    assert decision.rejection is None, decision.rejection
    assert not decision.duplicate
    new = lc.apply(state, decision)
    assert new is not None
    return new, decision


def given(*subs: ev.Event) -> lc.OrderState:
    state: lc.OrderState | None = None
    for sub in subs:
        state, _ = accept(state, sub)
    assert state is not None
    return state


def sent_out(out_eid: str = "e-out") -> tuple[lc.OrderState, ev.OtpIssued]:
    state = given(created(), assigned())
    state, decision = accept(state, out(out_eid))
    (notice,) = decision.notifications
    return state, notice


def code_of(notice: ev.OtpIssued) -> str:
    return otp.open_sealed(KEY, notice.otp_sealed).decode()


def right_hash(notice: ev.OtpIssued) -> bytes:
    return otp.hash_otp(code_of(notice), notice.otp_salt)


def wrong_hash(notice: ev.OtpIssued) -> bytes:
    code = code_of(notice)
    wrong = "000000" if code != "000000" else "111111"
    return otp.hash_otp(wrong, notice.otp_salt)


# ---- happy path ----------------------------------------------------------------------------


def test_created_is_accepted_as_the_first_ledger_event() -> None:
    sub = created()
    decision = lc.decide(None, sub, at(0), POLICY)
    assert decision.rejection is None
    assert decision.ledger == (sub,)
    state = lc.apply(None, decision)
    assert state is not None
    assert (state.order_id, state.tracking_id, state.hub_id, state.status) == (ORDER, "TRK1", "hub-1", S.CREATED)


def test_assignment_records_rider_and_route() -> None:
    state = given(created())
    state, decision = accept(state, assigned())
    assert decision.ledger == (assigned(),)
    assert (state.status, state.rider_id, state.route_id) == (S.ASSIGNED, RIDER, "route-1")


def test_out_for_delivery_emits_one_otp_notification_with_a_sealed_six_digit_code() -> None:
    state = given(created(), assigned())
    decision = lc.decide(state, out(), at(2), POLICY)
    assert decision.rejection is None
    (accepted,) = decision.ledger
    assert isinstance(accepted, ev.StatusChanged)
    assert (accepted.from_status, accepted.to_status, accepted.rider_id) == (S.ASSIGNED, S.OUT_FOR_DELIVERY, RIDER)
    assert len(decision.notifications) == 1
    notice = decision.notifications[0]
    assert isinstance(notice, ev.OtpIssued)
    assert notice.event_id == derived_id("e-out", "otp-issued")
    assert notice.order_id == ORDER and notice.tracking_id == "TRK1"
    assert notice.expires_at == at(2) + POLICY.otp_ttl
    assert notice.max_attempts == POLICY.otp_max_attempts
    code = code_of(notice)
    assert len(code) == 6 and code.isdigit()
    assert code == otp.derive_otp(KEY, ORDER, "e-out")


def test_out_for_delivery_state_keeps_only_the_otp_hash_never_the_code() -> None:
    state, notice = sent_out()
    code = code_of(notice)
    assert state.status is S.OUT_FOR_DELIVERY
    assert state.attempts == 1
    assert state.otp_hash == otp.hash_otp(code, notice.otp_salt)
    assert state.otp_salt == notice.otp_salt
    assert state.otp_attempts_left == POLICY.otp_max_attempts
    assert code not in repr(state)
    assert code not in repr(notice)
    assert code.encode() not in notice.otp_sealed
    for value in dataclasses.astuple(state):
        assert value != code
    # the hash rides on the decision, never on an event
    decision = lc.decide(given(created(), assigned()), out(), at(2), POLICY)
    assert code not in repr(decision)
    assert all(not hasattr(e, "otp_hash") or e.otp_hash is None for e in decision.ledger + decision.notifications)


def test_arrival_after_out_for_delivery_is_accepted() -> None:
    state, _ = sent_out()
    state, decision = accept(state, arrived())
    (event,) = decision.ledger
    assert isinstance(event, ev.StatusChanged)
    assert (event.from_status, event.to_status) == (S.OUT_FOR_DELIVERY, S.ARRIVED)
    assert decision.notifications == ()
    assert state.status is S.ARRIVED


def test_pod_with_the_right_otp_delivers_with_deterministic_derived_ids() -> None:
    state, notice = sent_out()
    state = given_more(state, arrived())
    sub = pod("e-pod", right_hash(notice))
    first = lc.decide(state, sub, at(11), POLICY)
    again = lc.decide(state, sub, at(11), POLICY)
    assert first.rejection is None
    assert [type(e) for e in first.ledger] == [ev.PodSubmitted, ev.PodAccepted, ev.StatusChanged]
    submitted, accepted, delivered = first.ledger
    assert submitted == sub
    assert isinstance(accepted, ev.PodAccepted) and isinstance(delivered, ev.StatusChanged)
    assert accepted.pod_event_id == "e-pod" and accepted.rider_id == RIDER
    assert (delivered.from_status, delivered.to_status, delivered.rider_id) == (S.ARRIVED, S.DELIVERED, RIDER)
    assert delivered.location == sub.location
    assert accepted.event_id == derived_id("e-pod", "pod-accepted")
    assert delivered.event_id == derived_id("e-pod", "delivered")
    assert len({e.event_id for e in first.ledger}) == 3
    assert [e.event_id for e in first.ledger] == [e.event_id for e in again.ledger]
    assert first.ledger == again.ledger
    after = lc.apply(state, first)
    assert after is not None and after.status is S.DELIVERED


def given_more(state: lc.OrderState, *subs: ev.Event) -> lc.OrderState:
    for sub in subs:
        state, _ = accept(state, sub)
    return state


def test_pod_straight_from_out_for_delivery_is_accepted_when_arrival_went_unobserved() -> None:
    state, notice = sent_out()
    decision = lc.decide(state, pod("e-pod", right_hash(notice)), at(11), POLICY)
    assert decision.rejection is None
    delivered = decision.ledger[-1]
    assert isinstance(delivered, ev.StatusChanged)
    assert (delivered.from_status, delivered.to_status) == (S.OUT_FOR_DELIVERY, S.DELIVERED)


def test_same_out_for_delivery_input_derives_the_same_otp_notification() -> None:
    base = given(created(), assigned())
    one = lc.decide(base, out(), at(2), POLICY)
    two = lc.decide(base, out(), at(2), POLICY)
    assert one.notifications == two.notifications
    assert one.otp_hash == two.otp_hash


# ---- OTP failures --------------------------------------------------------------------------


def test_wrong_otp_is_rejected_and_decrements_attempts_left() -> None:
    state, notice = sent_out()
    state, decision = accept(state, pod("e-pod-1", wrong_hash(notice)))
    submitted, rejected = decision.ledger
    assert isinstance(submitted, ev.PodSubmitted)
    assert isinstance(rejected, ev.PodRejected)
    assert rejected.reason == "wrong OTP"
    assert rejected.attempts_left == POLICY.otp_max_attempts - 1
    assert rejected.pod_event_id == "e-pod-1"
    assert rejected.event_id == derived_id("e-pod-1", "pod-rejected")
    assert state.otp_attempts_left == POLICY.otp_max_attempts - 1
    assert state.status is S.OUT_FOR_DELIVERY


def test_right_otp_after_fewer_than_max_wrong_entries_still_delivers() -> None:
    state, notice = sent_out()
    for i in range(POLICY.otp_max_attempts - 1):
        state, _ = accept(state, pod(f"e-wrong-{i}", wrong_hash(notice)))
    decision = lc.decide(state, pod("e-right", right_hash(notice)), at(11), POLICY)
    assert isinstance(decision.ledger[1], ev.PodAccepted)


def test_after_max_wrong_entries_even_the_right_otp_is_rejected_as_locked() -> None:
    state, notice = sent_out()
    lefts = []
    for i in range(POLICY.otp_max_attempts):
        state, decision = accept(state, pod(f"e-wrong-{i}", wrong_hash(notice)))
        lefts.append(decision.ledger[1].attempts_left)  # type: ignore[union-attr]
    assert lefts == [2, 1, 0]
    assert state.otp_attempts_left == 0
    decision = lc.decide(state, pod("e-right", right_hash(notice)), at(11), POLICY)
    assert decision.rejection is None  # recorded on the ledger as a rejected POD
    assert [type(e) for e in decision.ledger] == [ev.PodSubmitted, ev.PodRejected]
    rejected = decision.ledger[1]
    assert isinstance(rejected, ev.PodRejected)
    assert "locked" in rejected.reason
    assert rejected.attempts_left == 0
    assert not any(isinstance(e, ev.PodAccepted) for e in decision.ledger)


def test_expired_otp_is_rejected_without_spending_an_attempt() -> None:
    state, notice = sent_out()
    too_late = notice.expires_at + timedelta(seconds=1)
    decision = lc.decide(state, pod("e-late", right_hash(notice)), too_late, POLICY)
    assert [type(e) for e in decision.ledger] == [ev.PodSubmitted, ev.PodRejected]
    rejected = decision.ledger[1]
    assert isinstance(rejected, ev.PodRejected)
    assert rejected.reason == "OTP expired"
    assert rejected.attempts_left == POLICY.otp_max_attempts


def test_otp_at_exactly_the_expiry_instant_is_still_accepted() -> None:
    state, notice = sent_out()
    decision = lc.decide(state, pod("e-edge", right_hash(notice)), notice.expires_at, POLICY)
    assert isinstance(decision.ledger[1], ev.PodAccepted)


def test_pod_without_an_otp_hash_is_a_wrong_otp() -> None:
    state, _ = sent_out()
    decision = lc.decide(state, pod("e-nohash", None), at(11), POLICY)
    rejected = decision.ledger[1]
    assert isinstance(rejected, ev.PodRejected) and rejected.reason == "wrong OTP"


def test_otp_hash_of_another_order_attempt_is_wrong() -> None:
    state, notice = sent_out()
    other_code = otp.derive_otp(KEY, ORDER, "some-other-out-event")
    assert other_code != code_of(notice)
    decision = lc.decide(state, pod("e-other", otp.hash_otp(other_code, notice.otp_salt)), at(11), POLICY)
    assert isinstance(decision.ledger[1], ev.PodRejected)


# ---- duplicates ----------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["created", "assigned", "out", "pod"])
def test_redelivered_submission_is_a_duplicate_with_no_events(which: str) -> None:
    state, notice = sent_out()
    subs = {"created": created(), "assigned": assigned(), "out": out(), "pod": pod("e-pod", wrong_hash(notice))}
    if which == "pod":
        state, _ = accept(state, subs["pod"])
    decision = lc.decide(state, subs[which], at(30), POLICY)
    assert decision.duplicate is True
    assert decision.ledger == () and decision.notifications == () and decision.rejection is None
    assert lc.apply(state, decision) == state


def test_duplicate_of_a_delivering_pod_does_not_deliver_twice() -> None:
    state, notice = sent_out()
    sub = pod("e-pod", right_hash(notice))
    state, _ = accept(state, sub)
    decision = lc.decide(state, sub, at(12), POLICY)
    assert decision.duplicate and decision.ledger == ()


def test_derived_events_are_remembered_as_seen() -> None:
    state, notice = sent_out()
    state, decision = accept(state, pod("e-pod", right_hash(notice)))
    for event in decision.ledger:
        assert event.event_id in state.seen
    assert notice.event_id in state.seen


def updated(eid: str, minute: float) -> ev.OrderUpdated:
    return ev.OrderUpdated(event_id=eid, occurred_at=at(minute), order_id=ORDER, priority=1)


def test_seen_is_a_window_of_the_last_event_ids() -> None:
    """Many accepted events (an order updated over and over) do not grow the state past the window."""
    state, _ = accept(None, created())
    for k in range(3 * lc.SEEN_WINDOW):
        state, _ = accept(state, updated(f"e-upd-{k}", 1 + k / 1000))
    assert len(state.seen) == lc.SEEN_WINDOW
    assert state.seen[-1] == f"e-upd-{3 * lc.SEEN_WINDOW - 1}" and "e-created" not in state.seen
    small = lc.apply(state, lc.decide(state, updated("e-upd-last", 2), at(2), POLICY), seen_window=3)
    assert small is not None and small.seen == (f"e-upd-{3 * lc.SEEN_WINDOW - 2}", f"e-upd-{3 * lc.SEEN_WINDOW - 1}",
                                                 "e-upd-last")


def test_a_recent_event_redelivered_after_many_is_still_a_duplicate() -> None:
    state, _ = accept(None, created())
    for k in range(3 * lc.SEEN_WINDOW):
        state, _ = accept(state, updated(f"e-upd-{k}", 1 + k / 1000))
    for k in range(2 * lc.SEEN_WINDOW + 1, 3 * lc.SEEN_WINDOW):  # the last window's worth, redelivered
        decision = lc.decide(state, updated(f"e-upd-{k}", 1 + k / 1000), at(3), POLICY)
        assert decision.duplicate and decision.ledger == ()
        assert lc.apply(state, decision) == state


# ---- illegal transitions -------------------------------------------------------------------


def _state_in(target: S) -> lc.OrderState:
    if target is S.CREATED:
        return given(created())
    if target is S.ASSIGNED:
        return given(created(), assigned())
    state, notice = sent_out()
    if target is S.OUT_FOR_DELIVERY:
        return state
    if target is S.ARRIVED:
        return given_more(state, arrived())
    if target is S.FAILED:
        return given_more(state, failed())
    if target is S.RETURNED_TO_HUB:
        return given_more(state, failed(), status(S.RETURNED_TO_HUB, "e-rth", 30))
    if target is S.DELIVERED:
        return given_more(state, pod("e-pod", right_hash(notice)))
    if target is S.CANCELLED:
        return given_more(state, cancelled())
    raise AssertionError(target)


def test_state_builder_reaches_every_status() -> None:
    for status_ in S:
        assert _state_in(status_).status is status_


ILLEGAL_CASES = [
    # (id, from status, submission, words the reason must contain)
    ("arrived_from_created", S.CREATED, arrived(), ["created", "arrived"]),
    ("out_for_delivery_from_created", S.CREATED, out("e-out-2"), ["created", "out_for_delivery"]),
    ("failed_from_assigned", S.ASSIGNED, failed(), ["assigned", "failed"]),
    ("returned_from_out_for_delivery", S.OUT_FOR_DELIVERY, status(S.RETURNED_TO_HUB, "e-rth"), ["out_for_delivery", "returned_to_hub"]),
    ("out_for_delivery_twice", S.OUT_FOR_DELIVERY, out("e-out-2"), ["out_for_delivery"]),
    ("arrived_from_failed", S.FAILED, arrived("e-arr-2"), ["failed", "arrived"]),
    ("delivered_via_status_changed", S.ARRIVED, status(S.DELIVERED, "e-del"), ["delivered", "arrived", "POD"]),
    ("assigned_via_status_changed", S.CREATED, status(S.ASSIGNED, "e-as"), ["assigned", "created", "OrderAssigned"]),
    ("cancelled_via_status_changed", S.ASSIGNED, status(S.CANCELLED, "e-cs"), ["cancelled", "assigned", "OrderCancelled"]),
    ("created_via_status_changed", S.ASSIGNED, status(S.CREATED, "e-cr"), ["created", "assigned"]),
    ("cancel_after_delivered", S.DELIVERED, cancelled("e-cancel-2"), ["cancel", "delivered"]),
    ("cancel_after_returned", S.RETURNED_TO_HUB, cancelled("e-cancel-2"), ["cancel", "returned_to_hub"]),
    ("cancel_after_cancelled", S.CANCELLED, cancelled("e-cancel-2"), ["cancel", "cancelled"]),
    ("update_after_delivered", S.DELIVERED,
     ev.OrderUpdated(event_id="e-upd", occurred_at=at(30), order_id=ORDER, priority=2), ["update", "delivered"]),
    ("assign_when_out_for_delivery", S.OUT_FOR_DELIVERY,
     dataclasses.replace(assigned("e-as-2", "rider-2"), assigned_by="dispatcher:ana"), ["out_for_delivery", "rider-2"]),
    ("assign_when_arrived", S.ARRIVED, dataclasses.replace(assigned("e-as-2", "rider-2"), assigned_by="dispatcher:ana"),
     ["arrived"]),
    ("assign_after_delivered", S.DELIVERED, dataclasses.replace(assigned("e-as-2", "rider-2"), assigned_by="dispatcher:ana"),
     ["delivered"]),
    ("pod_when_assigned", S.ASSIGNED, pod("e-pod-x", b"\x00" * 32), ["POD", "assigned"]),
    ("pod_when_created", S.CREATED, pod("e-pod-x", b"\x00" * 32), ["POD", "created"]),
    ("pod_when_failed", S.FAILED, pod("e-pod-x", b"\x00" * 32), ["POD", "failed"]),
    ("pod_after_delivered", S.DELIVERED, pod("e-pod-x", b"\x00" * 32), ["POD", "delivered"]),
    ("created_again", S.ASSIGNED, created("e-created-2"), ["OrderCreated", "assigned"]),
    ("status_after_cancelled", S.CANCELLED, arrived("e-arr-2"), ["cancelled", "arrived"]),
]


@pytest.mark.parametrize(("start", "sub", "words"), [c[1:] for c in ILLEGAL_CASES], ids=[c[0] for c in ILLEGAL_CASES])
def test_illegal_transition_is_rejected_naming_the_states(start: S, sub: ev.Event, words: list[str]) -> None:
    state = _state_in(start)
    decision = lc.decide(state, sub, sub.occurred_at, POLICY)
    assert decision.rejection is not None
    assert decision.rejection.kind is ILLEGAL
    for word in words:
        assert word in decision.rejection.reason, (word, decision.rejection.reason)
    assert ORDER in decision.rejection.reason
    assert decision.ledger == () and decision.notifications == () and not decision.duplicate
    assert decision.otp_hash is None


@pytest.mark.parametrize("sub", [arrived(), assigned(), pod("e-pod", b"x" * 32), cancelled(),
                                 ev.OrderUpdated(event_id="e-upd", occurred_at=at(1), order_id=ORDER, priority=1)],
                         ids=lambda s: type(s).__name__)
def test_submission_for_an_unknown_order_is_illegal(sub: ev.Event) -> None:
    decision = lc.decide(None, sub, at(1), POLICY)
    assert decision.rejection is not None
    assert decision.rejection.kind is ILLEGAL
    assert "unknown order" in decision.rejection.reason and ORDER in decision.rejection.reason
    assert decision.ledger == ()


def test_non_order_event_on_the_inbox_is_invalid() -> None:
    ping = ev.GpsPing(event_id="p1", occurred_at=at(1), rider_id=RIDER, device_id="d", device_time=at(1), lat=1.0, lon=1.0)
    decision = lc.decide(given(created()), ping, at(1), POLICY)
    assert decision.rejection is not None and decision.rejection.kind is INVALID
    assert "GpsPing" in decision.rejection.reason


def test_ledger_only_event_submitted_to_the_inbox_is_invalid() -> None:
    state, _ = sent_out()
    sub = ev.PodAccepted(event_id="e-forged", occurred_at=at(5), order_id=ORDER, rider_id=RIDER, pod_event_id="x")
    decision = lc.decide(state, sub, at(5), POLICY)
    assert decision.rejection is not None and decision.rejection.kind is INVALID
    assert decision.ledger == ()


@pytest.mark.parametrize("start", [S.OUT_FOR_DELIVERY, S.ARRIVED])
def test_failed_without_reason_is_invalid(start: S) -> None:
    state = _state_in(start)
    decision = lc.decide(state, failed(reason=""), at(12), POLICY)
    assert decision.rejection is not None
    assert decision.rejection.kind is INVALID
    assert "reason" in decision.rejection.reason
    assert decision.ledger == ()


@pytest.mark.parametrize("start", [S.OUT_FOR_DELIVERY, S.ARRIVED])
def test_failed_with_reason_is_accepted(start: S) -> None:
    state = _state_in(start)
    state, decision = accept(state, failed())
    event, decided = decision.ledger
    assert isinstance(event, ev.StatusChanged)
    assert (event.from_status, event.to_status, event.reason) == (start, S.FAILED, "customer_not_available")
    assert event.failure_reason is ev.FailureReason.CUSTOMER_NOT_AVAILABLE  # the legacy reason text is the code
    assert event.rider_id == RIDER  # filled in from the state
    assert isinstance(decided, ev.AttemptDecided) and decided.event_id == derived_id("e-failed", "attempt-decided")
    assert state.status is S.FAILED


def test_returned_to_hub_after_failure_is_terminal() -> None:
    state = _state_in(S.RETURNED_TO_HUB)
    assert state.status is S.RETURNED_TO_HUB
    manual = dataclasses.replace(assigned("e-as-9"), assigned_by="dispatcher:ana")
    assert lc.decide(state, manual, at(40), POLICY).rejection is not None


# ---- re-attempt ----------------------------------------------------------------------------


def test_failed_order_can_be_reassigned_and_sent_out_again_with_a_new_otp() -> None:
    state, first_notice = sent_out("e-out-1")
    state = given_more(state, failed())
    state, decision = accept(state, assigned("e-assign-2", "rider-2", minute=30))
    assert decision.ledger[0].event_id == "e-assign-2"
    assert (state.status, state.rider_id) == (S.ASSIGNED, "rider-2")
    state, decision = accept(state, out("e-out-2", minute=31))
    assert state.attempts == 2
    (second_notice,) = decision.notifications
    assert second_notice.event_id != first_notice.event_id
    assert second_notice.otp_sealed != first_notice.otp_sealed
    assert code_of(second_notice) == otp.derive_otp(KEY, ORDER, "e-out-2")
    assert state.otp_hash == right_hash(second_notice)
    assert state.otp_attempts_left == POLICY.otp_max_attempts
    # the old code no longer opens the door, the new one does
    assert code_of(first_notice) != code_of(second_notice)
    old = lc.decide(state, pod("e-old", right_hash(first_notice)), at(35), POLICY)
    assert isinstance(old.ledger[1], ev.PodRejected)
    new = lc.decide(state, pod("e-new", right_hash(second_notice)), at(35), POLICY)
    assert isinstance(new.ledger[1], ev.PodAccepted)


def test_reattempt_resets_a_locked_otp() -> None:
    state, notice = sent_out("e-out-1")
    for i in range(POLICY.otp_max_attempts):
        state, _ = accept(state, pod(f"e-wrong-{i}", wrong_hash(notice)))
    state = given_more(state, failed(reason="otp_locked"), assigned("e-assign-2", minute=30), out("e-out-2", minute=31))
    assert state.otp_attempts_left == POLICY.otp_max_attempts


def test_replan_moves_an_assigned_order_to_another_rider_and_route() -> None:
    """A re-plan may give an order not yet out to another rider: the ledger follows the move."""
    state = given(created(), assigned())
    moved = dataclasses.replace(assigned("e-assign-2", "rider-2", minute=5), route_id="route-2", sequence=3)
    state, decision = accept(state, moved)
    assert decision.ledger == (moved,)
    assert (state.status, state.rider_id, state.route_id, state.attempts) == (S.ASSIGNED, "rider-2", "route-2", 0)
    state, decision = accept(state, dataclasses.replace(out("e-out-2", minute=6), rider_id="rider-2"))
    (accepted,) = decision.ledger
    assert isinstance(accepted, ev.StatusChanged) and accepted.rider_id == "rider-2"
    assert state.attempts == 1


@pytest.mark.parametrize("start", [S.OUT_FOR_DELIVERY, S.ARRIVED, S.DELIVERED, S.RETURNED_TO_HUB, S.CANCELLED])
def test_a_replan_overtaken_by_the_departure_changes_nothing_but_a_dispatchers_move_is_refused(start: S) -> None:
    state = _state_in(start)
    move = dataclasses.replace(assigned("e-assign-2", "rider-2", minute=40), route_id="route-2")
    assert move.assigned_by == "dispatch"
    decision = lc.decide(state, move, move.occurred_at, POLICY)
    assert decision.duplicate and decision.rejection is None and decision.ledger == ()  # in a box, or settled
    manual = dataclasses.replace(move, assigned_by="dispatcher:ana")
    decision = lc.decide(state, manual, manual.occurred_at, POLICY)
    assert decision.rejection is not None and decision.rejection.kind is ILLEGAL
    assert f"cannot assign to rider-2: order {ORDER} is {start.value}" == decision.rejection.reason


# ---- cancellation --------------------------------------------------------------------------


@pytest.mark.parametrize("start", [S.CREATED, S.ASSIGNED, S.OUT_FOR_DELIVERY, S.ARRIVED, S.FAILED])
def test_cancel_is_accepted_from_every_non_terminal_state(start: S) -> None:
    state = _state_in(start)
    sub = cancelled("e-cancel-x")
    state, decision = accept(state, sub)
    assert decision.ledger == (sub,)
    assert state.status is S.CANCELLED


def test_terminal_states_are_exactly_delivered_returned_and_cancelled() -> None:
    assert lc.TERMINAL == {S.DELIVERED, S.RETURNED_TO_HUB, S.CANCELLED}


def test_order_updated_is_accepted_before_a_terminal_state() -> None:
    state = _state_in(S.OUT_FOR_DELIVERY)
    sub = ev.OrderUpdated(event_id="e-upd", occurred_at=at(5), order_id=ORDER, instructions="ring twice")
    state2, decision = accept(state, sub)
    assert decision.ledger == (sub,)
    assert state2.status is S.OUT_FOR_DELIVERY


# ---- evolve --------------------------------------------------------------------------------


@pytest.mark.parametrize("first", [assigned(), out(), cancelled(), pod("e-pod", None)], ids=lambda e: type(e).__name__)
def test_evolve_refuses_history_that_does_not_start_with_order_created(first: ev.Event) -> None:
    with pytest.raises(ValueError, match=type(first).__name__):
        lc.evolve(None, first)


def test_replaying_the_ledger_through_evolve_rebuilds_the_state_but_not_the_otp_hash() -> None:
    live: lc.OrderState | None = None
    events: list[ev.Event] = []
    for sub in (created(), assigned(), out(), arrived()):
        decision = lc.decide(live, sub, sub.occurred_at, POLICY)
        live = lc.apply(live, decision)
        events.extend((*decision.ledger, *decision.notifications))
    replayed: lc.OrderState | None = None
    for event in events:
        replayed = lc.evolve(replayed, event)
    assert replayed is not None and live is not None
    assert replayed.status is live.status is S.ARRIVED
    assert replayed.attempts == live.attempts == 1
    assert replayed.otp_salt == live.otp_salt
    assert replayed.otp_hash is None and live.otp_hash is not None


# ---- contract ------------------------------------------------------------------------------


def test_every_event_the_lifecycle_emits_keeps_the_wire_contract() -> None:
    codec = Codec()
    state: lc.OrderState | None = None
    emitted: list[ev.Event] = []
    notice: ev.OtpIssued | None = None
    for sub in (created(), assigned(), out(), arrived()):
        decision = lc.decide(state, sub, sub.occurred_at, POLICY)
        state = lc.apply(state, decision)
        emitted.extend((*decision.ledger, *decision.notifications))
        notice = next(iter(decision.notifications), notice)
    assert notice is not None
    for sub in (pod("e-wrong", wrong_hash(notice)), pod("e-right", right_hash(notice))):
        decision = lc.decide(state, sub, sub.occurred_at, POLICY)
        state = lc.apply(state, decision)
        emitted.extend(decision.ledger)
    assert {type(e) for e in emitted} >= {ev.OtpIssued, ev.PodRejected, ev.PodAccepted, ev.StatusChanged}
    for event in emitted:
        assert codec.decode(codec.encode(event)) == event


def test_geofence_arrival_after_the_handover_is_ignored_not_dead_lettered() -> None:
    """The geofence path lags the rider app; its late arrival is no illegal claim."""
    from schemas import events as _ev
    from streams.domain.orders import lifecycle as _lc
    from streams.domain.orders import otp as _otp

    policy = _lc.Policy(otp_key=_otp.key_bytes("d4" * 32))
    t = _dt.datetime(2026, 11, 24, 9, tzinfo=UTC)
    state = _lc.OrderState(order_id="o1", tracking_id="T", hub_id="h", status=_ev.OrderStatus.DELIVERED)
    late = _ev.StatusChanged(event_id="g1", occurred_at=t, order_id="o1", to_status=_ev.OrderStatus.ARRIVED,
                             reason=_lc.GEOFENCE)
    decision = _lc.decide(state, late, t, policy)
    assert decision.duplicate and not decision.ledger and decision.rejection is None
    from_app = _ev.StatusChanged(event_id="a1", occurred_at=t, order_id="o1", to_status=_ev.OrderStatus.ARRIVED,
                                 reason="rider_app")
    rejected = _lc.decide(state, from_app, t, policy).rejection
    assert rejected is not None and rejected.kind is _ev.DeadLetterKind.ILLEGAL_TRANSITION
    # at the door of a parcel the rider does not carry yet (assigned, not loaded): no arrival either
    assigned = dataclasses.replace(state, status=_ev.OrderStatus.ASSIGNED)
    decision = _lc.decide(assigned, late, t, policy)
    assert decision.duplicate and not decision.ledger and decision.rejection is None
    rejected = _lc.decide(assigned, from_app, t, policy).rejection
    assert rejected is not None and rejected.kind is _ev.DeadLetterKind.ILLEGAL_TRANSITION
    out = dataclasses.replace(state, status=_ev.OrderStatus.OUT_FOR_DELIVERY)
    arrived = _lc.decide(out, late, t, policy)
    assert [e.to_status for e in arrived.ledger if isinstance(e, _ev.StatusChanged)] == [_ev.OrderStatus.ARRIVED]
