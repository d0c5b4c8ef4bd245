"""The stream edge accepts a record only when it decodes, belongs on its topic, carries its stream
key, has an event time within bounds and fits the limits; everything else becomes one dead letter
whose reason says why (and an oversized original is kept as its first bytes, length and SHA-256)."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas import Codec
from schemas import events as ev
from schemas import topics as tp
from streams.edge import Edge, Limits, Record, Rejection

CODEC = Codec()
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
NOW_S = NOW.timestamp()
EDGE = Edge(CODEC, {f"t.{s.name}": s for s in tp.ALL})


def ping(**overrides: Any) -> ev.GpsPing:
    fields: dict[str, Any] = dict(event_id="p-1", occurred_at=NOW, rider_id="rider-1", device_id="dev-1",
                                  device_time=NOW, lat=12.97, lon=77.59)
    fields.update(overrides)
    return ev.GpsPing(**fields)


def order(**overrides: Any) -> ev.OrderCreated:
    fields: dict[str, Any] = dict(
        event_id="o-1", occurred_at=NOW, order_id="ord-1", tracking_id="TRK1", hub_id="hub-1",
        mode=ev.DeliveryMode.LAST_MILE, drop=ev.Location(lat=12.975, lon=77.60, address="1 Test Road"),
        window_start=NOW, window_end=NOW + timedelta(hours=2), service_time_s=60, weight_kg=1.0, volume_l=2.0,
        units=1)
    fields.update(overrides)
    return ev.OrderCreated(**fields)


def route(stops: int, **stop_overrides: Any) -> ev.RoutePlanned:
    stop = dict(order_id="ord-1", kind=ev.StopKind.DROP, lat=12.97, lon=77.6, planned_arrival=NOW, service_time_s=60)
    stop.update(stop_overrides)
    return ev.RoutePlanned(event_id="r-1", occurred_at=NOW, rider_id="rider-1", route_id="route-1", hub_id="hub-1",
                           start=ev.GeoPoint(lat=12.97, lon=77.59), planned_start=NOW, planned_end=NOW,
                           distance_m=1000.0, stops=tuple(ev.PlannedStop(**{**stop, "order_id": f"{stop['order_id']}{i}"})
                                                          for i in range(stops)))


def record(event: ev.Event | None, topic: str = "gps", *, key: bytes | None | str = "auto", value: bytes | None = None,
           timestamp: datetime | None = NOW) -> Record:
    name = f"t.{topic}"
    if value is None and event is not None:
        value = CODEC.encode(event, name)
    if key == "auto":
        key = event.key.encode() if event is not None else None
    return Record(name, 1, 42, key, value,  # type: ignore[arg-type]
                  None if timestamp is None else int(timestamp.timestamp() * 1000))


def refused(rec: Record, edge: Edge = EDGE, **kw: Any) -> Rejection:
    out = edge.accept(rec, NOW_S, **kw)
    assert isinstance(out, Rejection), f"accepted {out!r}"
    return out


def test_a_valid_ping_is_accepted_as_its_event() -> None:
    assert EDGE.accept(record(ping()), NOW_S) == ping()


def test_a_record_without_a_key_is_refused() -> None:
    r = refused(record(ping(), key=None))
    assert r.kind is ev.DeadLetterKind.INVALID and "no key" in r.reason
    assert "no key" in refused(record(ping(), key=b"")).reason


def test_a_key_other_than_the_stream_key_is_refused_unless_rekeyed_on_purpose() -> None:
    assert "differs" in refused(record(ping(), key=b"rider-2")).reason
    assert EDGE.accept(record(ping(), key=b"hub-1"), NOW_S, rekeyed=True) == ping()
    assert "no key" in refused(record(ping(), key=None), rekeyed=True).reason


def test_an_event_of_another_topic_is_refused() -> None:
    assert "does not belong on t.gps" in refused(record(order(), "gps")).reason


@pytest.mark.parametrize("shift", [timedelta(days=8), -timedelta(hours=2), timedelta(days=3000 * 365)])
def test_event_times_far_from_the_record_timestamp_are_refused_both_sides(shift: timedelta) -> None:
    at = NOW - shift if shift < timedelta(days=3000) else datetime(1971, 1, 1, tzinfo=UTC)
    r = refused(record(ping(occurred_at=at, device_time=at)))
    assert "occurred_at" in r.reason and "MILESTREAM_MAX_EVENT_AGE_S" in r.reason


def test_a_record_without_a_timestamp_is_bounded_by_now() -> None:
    late = NOW + timedelta(days=30)
    assert "occurred_at" in refused(record(ping(occurred_at=late, device_time=late), timestamp=None)).reason
    old = NOW - timedelta(days=2)
    assert EDGE.accept(record(ping(occurred_at=old, device_time=old), timestamp=None), NOW_S) == \
        ping(occurred_at=old, device_time=old)


def test_a_replayed_day_stamped_with_its_own_time_is_accepted_but_never_past_now() -> None:
    """A simulator or replay stamps records with event time: old days pass; a forged future never does."""
    old = NOW - timedelta(days=30)
    assert not isinstance(EDGE.accept(record(ping(occurred_at=old, device_time=old), timestamp=old), NOW_S), Rejection)
    future = datetime(9999, 1, 1, tzinfo=UTC)
    assert "occurred_at" in refused(record(ping(occurred_at=future, device_time=future), timestamp=future)).reason


@pytest.mark.parametrize("rider_id", ["__fleet__", "__marker__", "x\x00plans", "bad\nid", "r" * 129, "\x1b[31m"])
def test_ids_that_are_reserved_unprintable_or_too_long_are_refused(rider_id: str) -> None:
    r = refused(record(ping(rider_id=rider_id)))
    assert r.kind is ev.DeadLetterKind.INVALID and "rider_id" in r.reason and "not an id" in r.reason


def test_nested_ids_and_texts_are_checked_too() -> None:
    assert "stop order_id" in refused(record(route(2, order_id="a\x00b"), "routes")).reason
    assert "drop address" in refused(record(order(drop=ev.Location(lat=1, lon=1, address="x" * 5000)),
                                            "inbox")).reason
    assert "required_skills" in refused(record(order(required_skills=("cold\x00",)), "inbox")).reason


def test_an_empty_order_id_inside_a_route_is_refused_by_the_contract() -> None:
    good = route(1)
    bad = dataclasses.replace(good, stops=(dataclasses.replace(good.stops[0], order_id=""),))
    with pytest.raises(ValueError, match="empty order_id"):
        CODEC.encode(bad, "t.routes")
    assert not isinstance(EDGE.accept(record(good, "routes"), NOW_S), Rejection)


def test_routes_with_too_many_stops_and_orders_with_too_many_skills_are_refused() -> None:
    assert "1001 stops" in refused(record(route(1001), "routes")).reason
    assert not isinstance(EDGE.accept(record(route(1000), "routes"), NOW_S), Rejection)
    skills = tuple(f"s{i}" for i in range(33))
    assert "33 skills" in refused(record(order(required_skills=skills), "inbox")).reason


def test_garbage_is_malformed_and_an_unknown_fingerprint_unknown_schema() -> None:
    assert refused(record(None, key=b"k", value=b"\x07\x01garbage")).kind is ev.DeadLetterKind.MALFORMED
    assert refused(record(None, key=b"k", value=b"")).kind is ev.DeadLetterKind.MALFORMED
    unknown = b"\xc3\x01" + b"\x11" * 8 + b"\x00" * 20
    assert refused(record(None, key=b"k", value=unknown)).kind is ev.DeadLetterKind.UNKNOWN_SCHEMA
    trailing = CODEC.encode(ping(), "t.gps") + b"\x00"
    assert refused(record(ping(), value=trailing)).kind is ev.DeadLetterKind.MALFORMED


def test_an_oversized_message_is_refused_and_its_dead_letter_keeps_first_bytes_length_and_digest() -> None:
    edge = Edge(CODEC, EDGE.topics, Limits(max_message_bytes=1000, dead_letter_keep_bytes=100))
    big = order(drop=ev.Location(lat=1, lon=1, address="y" * 3000))
    rec = record(big, "inbox")
    r = refused(rec, edge)
    assert "over the limit of 1000" in r.reason
    letter = edge.dead_letter(rec, r, NOW_S)
    assert letter.original == rec.value[:100]
    assert letter.original_size == len(rec.value) and letter.original_sha256 == hashlib.sha256(rec.value).hexdigest()
    assert len(CODEC.encode(letter, "t.dead-letter")) < 2000  # the letter itself always fits


def test_a_small_original_is_kept_whole_and_the_letter_id_derives_from_where_it_was() -> None:
    rec = record(ping(rider_id="__fleet__"))
    letter = EDGE.dead_letter(rec, refused(rec), NOW_S)
    again = EDGE.dead_letter(rec, refused(rec), NOW_S + 5)
    assert letter.original == rec.value and letter.original_size is None and letter.original_sha256 is None
    assert letter.event_id == again.event_id  # a replay writes the same id
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == ("t.gps", 1, 42)
    assert letter.source_key == "__fleet__"


def test_dead_letter_reasons_mask_credentials() -> None:
    rec = record(ping())
    letter = EDGE.dead_letter(rec, Rejection(ev.DeadLetterKind.PROCESSING_ERROR,
                                             "registry https://svc:hunter2@reg.example/ down"), NOW_S)
    assert "hunter2" not in letter.reason and "svc:****@reg.example" in letter.reason


@pytest.mark.parametrize("field,value", [("speed_mps", float("nan")), ("speed_mps", -5.0), ("speed_mps", 1e9),
                                         ("heading_deg", 720.0), ("battery_pct", 250.0), ("battery_pct", -1.0),
                                         ("accuracy_m", float("inf"))])
def test_pings_with_impossible_readings_break_the_contract(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        CODEC.encode(ping(**{field: value}), "t.gps")


@pytest.mark.parametrize("field,value", [("service_time_s", 2**31 - 1), ("weight_kg", 1e300), ("units", -5)])
def test_orders_with_impossible_sizes_break_the_contract(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        CODEC.encode(order(**{field: value}), "t.inbox")


def test_empty_ids_and_shifts_with_too_many_skills_are_refused() -> None:
    assert "device_id" in refused(record(ping(device_id=""))).reason
    assert "tracking_id" in refused(record(order(tracking_id=""), "inbox")).reason
    shift = ev.RiderShiftStarted(event_id="s1", occurred_at=NOW, rider_id="rider-1", hub_id="hub-1",
                                 vehicle_type=ev.VehicleType.BIKE, capacity_weight_kg=10, capacity_volume_l=10,
                                 capacity_units=10, skills=tuple(f"s{i}" for i in range(40)), shift_start=NOW,
                                 shift_end=NOW + timedelta(hours=8), start=ev.GeoPoint(lat=1, lon=1))
    assert "40 skills" in refused(record(shift, "riders")).reason
