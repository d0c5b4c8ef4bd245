"""Events to ClickHouse rows: given a ledger, then this order-state row; and the raw event,
GPS and dead-letter rows."""

from __future__ import annotations

import dataclasses
import enum
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from projections import rows
from schemas import events as ev
from schemas.events import OrderStatus as S

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
ORDER = "ord-1"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def created() -> ev.OrderCreated:
    return ev.OrderCreated(
        event_id="e0", occurred_at=at(0), order_id=ORDER, tracking_id="TRK1", hub_id="hub-1",
        mode=ev.DeliveryMode.LAST_MILE, drop=ev.Location(lat=12.97, lon=77.59, address="1 Main St"),
        window_start=at(30), window_end=at(210), service_time_s=120, weight_kg=2.5, volume_l=3.0, units=1,
        required_skills=("fragile",), cod_amount=249.0, currency="INR")


def sc(eid: str, minute: float, frm: S | None, to: S, reason: str = "") -> ev.StatusChanged:
    return ev.StatusChanged(event_id=eid, occurred_at=at(minute), order_id=ORDER, from_status=frm, to_status=to,
                            reason=reason, rider_id="r1")


def delivered_ledger() -> list[ev.Event]:
    return [
        created(),
        ev.OrderAssigned(event_id="e1", occurred_at=at(1), order_id=ORDER, rider_id="r1", route_id="route-1",
                         sequence=1, planned_arrival=at(40)),
        sc("e2", 5, S.ASSIGNED, S.OUT_FOR_DELIVERY),
        sc("e3", 38, S.OUT_FOR_DELIVERY, S.ARRIVED),
        ev.PodSubmitted(event_id="e4", occurred_at=at(40), order_id=ORDER, rider_id="r1", otp_hash=b"\x01\xab" * 16),
        ev.PodAccepted(event_id="e5", occurred_at=at(40), order_id=ORDER, rider_id="r1", pod_event_id="e4"),
        sc("e6", 40, S.ARRIVED, S.DELIVERED, "pod_otp"),
    ]


def fold(ledger: list[ev.Event], start_version: int = 0, row: rows.OrderRow | None = None) -> rows.OrderRow | None:
    for offset, event in enumerate(ledger, start=start_version):
        row = rows.fold_order(row, event, offset)
    return row


# ---- order state ---------------------------------------------------------------------------


def test_folding_a_delivered_ledger_gives_a_delivered_row_with_one_attempt_and_timestamps() -> None:
    row = fold(delivered_ledger())
    assert row is not None
    assert (row.order_id, row.tracking_id, row.hub_id, row.mode) == (ORDER, "TRK1", "hub-1", "last_mile")
    assert row.status == "delivered"
    assert row.attempts == 1
    assert (row.rider_id, row.route_id) == ("r1", "route-1")
    assert row.created_at == at(0)
    assert row.assigned_at == at(1)
    assert row.out_for_delivery_at == at(5)
    assert row.arrived_at == at(38)
    assert row.delivered_at == at(40)
    assert row.failed_at is None and row.cancelled_at is None and row.failure_reason == ""
    assert (row.window_start, row.window_end) == (at(30), at(210))
    assert (row.drop_lat, row.drop_lon, row.weight_kg, row.cod_amount) == (12.97, 77.59, 2.5, 249.0)
    assert row.updated_at == at(40)
    assert row.version == 6


def test_order_created_alone_gives_a_created_row() -> None:
    row = rows.fold_order(None, created(), 17)
    assert row is not None
    assert row.status == "created" and row.attempts == 0 and row.version == 17
    assert row.rider_id == "" and row.route_id == ""
    assert row.assigned_at is None and row.delivered_at is None


@pytest.mark.parametrize("index", range(7))
def test_refolding_any_event_at_or_below_the_row_version_changes_nothing(index: int) -> None:
    ledger = delivered_ledger()
    row = fold(ledger)
    assert row is not None
    for version in (index, row.version):
        assert rows.fold_order(row, ledger[index], version) == row


def test_refolding_an_earlier_status_at_its_old_version_does_not_move_the_row_back() -> None:
    ledger = delivered_ledger()
    row = fold(ledger)
    assert row is not None
    again = rows.fold_order(row, ledger[2], 2)  # out_for_delivery, replayed
    assert again is not None
    assert again.status == "delivered" and again.attempts == 1


def test_folding_the_whole_ledger_twice_equals_folding_it_once() -> None:
    ledger = delivered_ledger()
    once = fold(ledger)
    twice = fold(ledger, row=once)
    assert twice == once


def test_replay_after_a_crash_mid_ledger_converges_to_the_same_row() -> None:
    ledger = delivered_ledger()
    partial = fold(ledger[:4])
    resumed = fold(ledger[2:], start_version=2, row=partial)  # offsets 2.. replayed
    assert resumed == fold(ledger)


def test_events_before_order_created_give_none() -> None:
    for event in delivered_ledger()[1:]:
        assert rows.fold_order(None, event, 0) is None
    row = fold([*delivered_ledger()[1:3], created()])
    assert row is not None and row.status == "created"


def test_second_order_created_does_not_reset_the_row() -> None:
    ledger = delivered_ledger()
    row = fold(ledger)
    assert rows.fold_order(row, created(), 99) == row


def test_failed_then_reattempt_counts_two_attempts_and_keeps_the_failure_reason() -> None:
    ledger = delivered_ledger()[:3] + [
        sc("f1", 45, S.OUT_FOR_DELIVERY, S.FAILED, "customer_not_available"),
        ev.OrderAssigned(event_id="a2", occurred_at=at(60), order_id=ORDER, rider_id="r2", route_id="route-2",
                         sequence=3, planned_arrival=at(90)),
        sc("o2", 65, S.ASSIGNED, S.OUT_FOR_DELIVERY),
    ]
    row = fold(ledger)
    assert row is not None
    assert row.status == "out_for_delivery"
    assert row.attempts == 2
    assert row.failed_at == at(45) and row.failure_reason == "customer_not_available"
    assert (row.rider_id, row.route_id, row.assigned_at, row.out_for_delivery_at) == ("r2", "route-2", at(60), at(65))


@pytest.mark.parametrize(("reason", "code", "stored"), [
    ("", ev.FailureReason.NO_ACCESS, "no_access"),
    ("no_access", ev.FailureReason.NO_ACCESS, "no_access"),
    ("gate locked", ev.FailureReason.NO_ACCESS, "no_access: gate locked"),
    ("dog in the yard", ev.FailureReason.OTHER, "other: dog in the yard"),
    ("left before codes", None, "left before codes"),  # a ledger written before reason codes
])
def test_the_failure_column_holds_the_code_and_the_riders_words(reason: str, code: ev.FailureReason | None,
                                                                  stored: str) -> None:
    failed = dataclasses.replace(sc("f1", 45, S.OUT_FOR_DELIVERY, S.FAILED, reason), failure_reason=code)
    row = fold(delivered_ledger()[:3] + [failed])
    assert row is not None and row.failure_reason == stored


def test_failed_to_the_limit_then_returned_to_hub_keeps_both_times_and_the_attempts() -> None:
    decided = ev.AttemptDecided(event_id="d1", occurred_at=at(45), order_id=ORDER, attempt=1,
                                failure_reason=ev.FailureReason.REFUSED, decision=ev.AttemptDecision.RETURN_TO_HUB,
                                rider_id="r1", reason="refused parcels go back to the hub")
    ledger = delivered_ledger()[:3] + [
        dataclasses.replace(sc("f1", 45, S.OUT_FOR_DELIVERY, S.FAILED), failure_reason=ev.FailureReason.REFUSED),
        decided, sc("back", 80, S.FAILED, S.RETURNED_TO_HUB, "back at the hub")]
    row = fold(ledger)
    assert row is not None
    assert (row.status, row.attempts, row.failed_at, row.returned_at) == ("returned_to_hub", 1, at(45), at(80))
    assert row.failure_reason == "refused" and row.version == 5
    assert fold(delivered_ledger()).returned_at is None  # type: ignore[union-attr]


def test_cancel_sets_status_and_time() -> None:
    row = fold([created(), ev.OrderCancelled(event_id="c", occurred_at=at(3), order_id=ORDER, reason="x")])
    assert row is not None and row.status == "cancelled" and row.cancelled_at == at(3)


def test_order_updated_changes_window_and_drop_only_where_given() -> None:
    upd = ev.OrderUpdated(event_id="u", occurred_at=at(2), order_id=ORDER, window_end=at(300),
                          drop=ev.Location(lat=12.5, lon=77.5))
    row = fold([created(), upd])
    assert row is not None
    assert (row.window_start, row.window_end, row.drop_lat, row.drop_lon) == (at(30), at(300), 12.5, 77.5)
    only_priority = ev.OrderUpdated(event_id="u2", occurred_at=at(3), order_id=ORDER, priority=5)
    row2 = rows.fold_order(row, only_priority, 2)
    assert row2 is not None
    assert (row2.window_start, row2.window_end, row2.drop_lat, row2.drop_lon) == (at(30), at(300), 12.5, 77.5)
    assert row2.version == 2


def test_updated_at_never_goes_back_for_an_event_with_an_older_timestamp() -> None:
    row = fold(delivered_ledger())
    assert row is not None
    late = ev.OrderUpdated(event_id="u", occurred_at=at(-5), order_id=ORDER, priority=1)
    row2 = rows.fold_order(row, late, row.version + 1)
    assert row2 is not None and row2.updated_at == at(40) and row2.version == row.version + 1


def test_order_row_values_follow_the_column_order() -> None:
    row = fold(delivered_ledger())
    assert row is not None
    values = rows.order_row_values(row)
    assert len(values) == len(rows.ORDER_COLUMNS)
    assert dict(zip(rows.ORDER_COLUMNS, values, strict=True)) == dataclasses.asdict(row)


# ---- raw event rows ------------------------------------------------------------------------


def as_json(value: Any) -> Any:
    """What an event's field should look like in the payload."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value):
        return {f.name: as_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [as_json(v) for v in value]
    return value


SAMPLES: list[ev.Event] = [
    created(),
    delivered_ledger()[4],  # PodSubmitted with bytes
    sc("s", 3, None, S.ARRIVED),
    ev.RoutePlanned(event_id="rp", occurred_at=at(1), rider_id="r1", route_id="route-1", hub_id="hub-1",
                    stops=(ev.PlannedStop(order_id=ORDER, kind=ev.StopKind.DROP, lat=12.9, lon=77.5,
                                          planned_arrival=at(30), service_time_s=90),),
                    start=ev.GeoPoint(lat=12.97, lon=77.59), planned_start=at(2), planned_end=at(60), distance_m=1234.5),
    ev.OtpIssued(event_id="otp", occurred_at=at(5), order_id=ORDER, tracking_id="TRK1", otp_salt=b"\x00\x01",
                 otp_sealed=b"\xff" * 38, expires_at=at(725), max_attempts=3),
    ev.AlertRaised(event_id="al", occurred_at=at(1), subject_id=ORDER, kind="unassignable_order",
                   severity=ev.Severity.WARNING, order_id=ORDER, message="m"),
    ev.AttemptDecided(event_id="ad", occurred_at=at(45), order_id=ORDER, attempt=1,
                      failure_reason=ev.FailureReason.NO_ACCESS, decision=ev.AttemptDecision.REATTEMPT, rider_id="r1",
                      window_start=at(105), window_end=at(285), reason="same day"),
    ev.BreakStarted(event_id="bs", occurred_at=at(50), rider_id="r1", break_id="lunch", expected_end=at(80)),
    ev.BreakEnded(event_id="be", occurred_at=at(80), rider_id="r1"),
    ev.TravelTimesLearned(event_id="tt", occurred_at=at(90), vehicle_type=ev.VehicleType.BIKE,
                          leg_speed_mps=(4.5,) * 24, service_factor=0.9, legs=12),
    ev.RiderShiftStarted(event_id="ss", occurred_at=at(0), rider_id="r1", hub_id="hub-1",
                         vehicle_type=ev.VehicleType.BIKE, capacity_weight_kg=20.0, capacity_volume_l=40.0,
                         capacity_units=10, shift_start=at(0), shift_end=at(480), start=ev.GeoPoint(lat=12.9, lon=77.5),
                         breaks=(ev.PlannedBreak(break_id="lunch", earliest_start=at(200), latest_start=at(260),
                                                 duration_s=1800),)),
]


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_event_row_payload_is_json_that_round_trips_the_event_fields(event: ev.Event) -> None:
    row = rows.event_row(event, "milestream.orders", 2, 41)
    assert len(row) == len(rows.EVENT_COLUMNS)
    named = dict(zip(rows.EVENT_COLUMNS, row, strict=True))
    assert named["event_id"] == event.event_id
    assert named["event_type"] == type(event).__name__
    assert named["stream_key"] == event.key
    assert named["occurred_at"] == event.occurred_at
    assert (named["topic"], named["partition"], named["offset"]) == ("milestream.orders", 2, 41)
    assert named["schema_version"] == event.schema_version
    payload = json.loads(named["payload"])
    assert payload == as_json(event)
    assert datetime.fromisoformat(payload["occurred_at"]) == event.occurred_at


def test_event_row_payload_encodes_bytes_as_hex() -> None:
    pod = delivered_ledger()[4]
    assert isinstance(pod, ev.PodSubmitted) and pod.otp_hash is not None
    payload = json.loads(rows.event_row(pod, "t", 0, 0)[-1])
    assert bytes.fromhex(payload["otp_hash"]) == pod.otp_hash
    assert payload["photo_ref"] is None


def test_gps_row_follows_the_gps_columns() -> None:
    ping = ev.GpsPing(event_id="p", occurred_at=at(1), rider_id="r1", device_id="d1", device_time=at(0.5), lat=1.5,
                      lon=2.5, speed_mps=3.0, heading_deg=90.0, accuracy_m=7.0, battery_pct=80.0)
    named = dict(zip(rows.GPS_COLUMNS, rows.gps_row(ping), strict=True))
    assert named == {"event_id": "p", "rider_id": "r1", "device_id": "d1", "device_time": at(0.5), "received_at": at(1),
                     "lat": 1.5, "lon": 2.5, "speed_mps": 3.0, "heading_deg": 90.0, "accuracy_m": 7.0,
                     "battery_pct": 80.0}


def test_dead_letter_row_keeps_the_original_bytes_as_hex_and_the_kind_as_text() -> None:
    letter = ev.DeadLetter(event_id="dl", occurred_at=at(1), source_key="k", source_topic="milestream.inbox",
                           source_partition=1, source_offset=9, original=b"\xc3\x01junk",
                           error_kind=ev.DeadLetterKind.ILLEGAL_TRANSITION, reason="why")
    named = dict(zip(rows.DEAD_LETTER_COLUMNS, rows.dead_letter_row(letter), strict=True))
    assert named == {"event_id": "dl", "occurred_at": at(1), "source_topic": "milestream.inbox", "source_partition": 1,
                     "source_offset": 9, "source_key": "k", "error_kind": "illegal_transition", "reason": "why",
                     "original": "c3016a756e6b"}


# ---- text from outside -----------------------------------------------------------------------

HOSTILE = "wrong address\x1b[2J\x1b]0;owned\x07\nFAKE ROW"


def test_dead_letter_reason_is_stored_escaped_and_without_url_credentials_but_the_key_as_it_is() -> None:
    letter = ev.DeadLetter(event_id="dl", occurred_at=at(1), source_key="key\x1bk", source_topic="milestream.inbox",
                           source_partition=1, source_offset=9, original=b"\x1b",
                           error_kind=ev.DeadLetterKind.UNKNOWN_SCHEMA,
                           reason=f"registry http://u:reg-pass@registry:8081 said {HOSTILE}")
    named = dict(zip(rows.DEAD_LETTER_COLUMNS, rows.dead_letter_row(letter), strict=True))
    assert named["reason"] == ("registry http://u:****@registry:8081 said wrong address\\x1b[2J\\x1b]0;owned\\x07"
                               "\\nFAKE ROW")
    assert named["source_key"] == "key\x1bk"  # an identifier: the same as the event's stream key
    assert rows.event_row(letter, "milestream.dead-letter", 0, 1)[2] == named["source_key"]


def test_failure_reason_is_stored_escaped_and_ids_are_kept_for_joins() -> None:
    order_id = "ord-\x1b-1"
    ledger = [dataclasses.replace(created(), order_id=order_id),
              dataclasses.replace(sc("e1", 5, S.CREATED, S.FAILED, HOSTILE), order_id=order_id)]
    row = fold(ledger)
    assert row is not None and row.order_id == order_id
    assert row.failure_reason == "wrong address\\x1b[2J\\x1b]0;owned\\x07\\nFAKE ROW"
    assert rows.event_row(ledger[1], "milestream.orders", 0, 1)[2] == order_id


def test_event_payload_json_carries_control_characters_only_as_escapes() -> None:
    event = sc("e1", 5, S.CREATED, S.FAILED, HOSTILE)
    payload = rows.event_row(event, "milestream.orders", 0, 1)[-1]
    assert all(c.isprintable() for c in payload)
    assert json.loads(payload)["reason"] == HOSTILE  # nothing lost: JSON readers get the original text
