"""Schemas for live tracking (issue 4): arrivals, departures and zone events on ``tracking``,
customer notices on ``notifications``, and the re-plan reason and stop windows on RoutePlanned,
which must still read payloads written with the released v1 schema."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
import pytest

from schemas import compat
from schemas import events as ev
from schemas import topics as tp
from schemas.codec import SCHEMA_DIR, Codec, InvalidEvent, schema_fingerprint

T0 = datetime(2025, 3, 14, 18, 2, 11, 250_000, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


ARRIVED = ev.ArrivedAtStop(
    event_id="e-arr-9", occurred_at=at(12), rider_id="rider-7", route_id="route-3", fence_id="ord-55",
    kind=ev.FenceKind.STOP, order_id="ord-55", arrived_at=at(11.25), location=ev.GeoPoint(lat=12.9718, lon=77.6412),
    confidence=0.92, source_ping_id="e-gps-310",
)
BACK_AT_HUB = dataclasses.replace(ARRIVED, event_id="e-arr-10", fence_id="hub-blr-indiranagar", kind=ev.FenceKind.HUB,
                                  order_id=None, confidence=1.0)
DEPARTED = ev.DepartedStop(
    event_id="e-dep-9", occurred_at=at(20), rider_id="rider-7", route_id="route-3", fence_id="ord-55",
    kind=ev.FenceKind.STOP, order_id="ord-55", departed_at=at(19.5), confidence=0.0, source_ping_id="e-gps-330",
)
ZONE = ev.ZoneEvent(event_id="e-zone-9", occurred_at=at(5), rider_id="rider-7", zone_id="zone-school-100ft-rd",
                    kind=ev.ZoneEventKind.ENTERED, at=at(4.75), source_ping_id="e-gps-301")
OUT_FOR_DELIVERY = ev.CustomerNotified(
    event_id="e-notice-9", occurred_at=at(1), order_id="ord-55", tracking_id="TRK-Q7", kind=ev.NoticeKind.OUT_FOR_DELIVERY,
    attempt=1, window_start=at(10), window_end=at(20), promised_end=at(30), rider_id="rider-7",
)
FAILED = ev.CustomerNotified(event_id="e-notice-10", occurred_at=at(25), order_id="ord-55", tracking_id="TRK-Q7",
                             kind=ev.NoticeKind.FAILED, attempt=1, reason="customer not home")
NEW_EVENTS = [ARRIVED, BACK_AT_HUB, DEPARTED, ZONE, OUT_FOR_DELIVERY, FAILED]
IDS = ["arrived-stop", "arrived-hub", "departed", "zone", "out-for-delivery", "failed"]


@pytest.fixture(scope="module")
def codec() -> Codec:
    return Codec()


@pytest.mark.parametrize("event", NEW_EVENTS, ids=IDS)
def test_new_events_round_trip(codec: Codec, event: ev.Event) -> None:
    assert codec.decode(codec.encode(event)) == event


def test_notice_defaults_survive_the_wire(codec: Codec) -> None:
    decoded = codec.decode(codec.encode(FAILED))
    assert isinstance(decoded, ev.CustomerNotified)
    assert (decoded.window_start, decoded.window_end, decoded.promised_end, decoded.rider_id) == (None,) * 4
    assert decoded.reason == "customer not home"




# ---- RoutePlanned: written with released v1, read as the current type --------------------------

V1_ROUTE = SCHEMA_DIR / "released" / "v1" / "RoutePlanned.avsc"


def v1_route_payload() -> bytes:
    """A RoutePlanned as a producer still on v1 writes it (no reason, no stop windows)."""
    schema = fastavro.parse_schema(json.loads(V1_ROUTE.read_text()), _write_hint=False)
    record: dict[str, Any] = {
        "event_id": "e-route-v1", "occurred_at": at(0), "schema_version": 1, "rider_id": "rider-7",
        "route_id": "route-3", "hub_id": "hub-blr-indiranagar",
        "stops": [{"order_id": "ord-55", "kind": "drop", "lat": 12.9718, "lon": 77.6412, "planned_arrival": at(11),
                   "service_time_s": 120}],
        "start": {"lat": 12.9784, "lon": 77.6408}, "planned_start": at(2), "planned_end": at(40), "distance_m": 5310.0,
    }
    buf = io.BytesIO()
    buf.write(b"\xc3\x01" + schema_fingerprint(schema))
    fastavro.schemaless_writer(buf, schema, record)
    return buf.getvalue()


def test_a_released_v1_route_plan_reads_as_a_dispatch_plan_without_windows(codec: Codec) -> None:
    payload = v1_route_payload()
    assert payload[:10] != codec.header_of(ev.RoutePlanned), "v1 and the current RoutePlanned must differ"
    plan = codec.decode(payload)
    assert isinstance(plan, ev.RoutePlanned)
    assert plan.reason == "dispatch"
    assert [(s.order_id, s.window_start, s.window_end) for s in plan.stops] == [("ord-55", None, None)]
    assert plan.stops[0].planned_arrival == at(11) and plan.distance_m == 5310.0


def test_a_v1_reader_reads_a_current_re_plan(codec: Codec) -> None:
    """Forward: a consumer still on v1 skips the reason and the stop windows."""
    plan = dataclasses.replace(codec.decode(v1_route_payload()), reason="failed_delivery: ord-1; delay: ord-2")
    plan = dataclasses.replace(plan, stops=(dataclasses.replace(plan.stops[0], window_start=at(5), window_end=at(35)),))
    body = io.BytesIO(codec.encode(plan)[10:])
    v1 = fastavro.parse_schema(json.loads(V1_ROUTE.read_text()), _write_hint=False)
    record = fastavro.schemaless_reader(body, codec.schema_of(ev.RoutePlanned), v1)
    assert "reason" not in record and "window_start" not in record["stops"][0]
    assert record["route_id"] == "route-3" and record["stops"][0]["service_time_s"] == 120


def test_the_schemas_stay_compatible_with_released_v1() -> None:
    rep = compat.report()
    assert rep.problems == []
    assert rep.checked >= 16


# ---- contract rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "match"),
    [
        (dataclasses.replace(ARRIVED, confidence=1.01), "confidence"),
        (dataclasses.replace(DEPARTED, confidence=-0.1), "confidence"),
        (dataclasses.replace(ARRIVED, confidence=float("nan")), "confidence"),
        (dataclasses.replace(ARRIVED, order_id=None), "needs the order_id"),
        (dataclasses.replace(BACK_AT_HUB, order_id="ord-55"), "must not carry an order_id"),
        (dataclasses.replace(ARRIVED, location=ev.GeoPoint(lat=12.97, lon=190.0)), "out of range"),
        (dataclasses.replace(DEPARTED, source_ping_id=""), "must not be empty"),
        (dataclasses.replace(ZONE, zone_id=""), "must not be empty"),
        (dataclasses.replace(OUT_FOR_DELIVERY, window_start=at(21)), "before window_start"),
        (dataclasses.replace(OUT_FOR_DELIVERY, window_end=None), "both window_start and window_end"),
        (dataclasses.replace(FAILED, attempt=0), "counts from 1"),
    ],
    ids=["confidence-above-1", "confidence-below-0", "confidence-nan", "stop-without-order", "hub-with-order",
         "location-lon-190", "empty-source-ping", "empty-zone", "window-reversed", "half-a-window", "attempt-0"],
)
def test_contract_violations_of_the_new_events_are_refused(codec: Codec, event: ev.Event, match: str) -> None:
    with pytest.raises(InvalidEvent, match=match):
        codec.encode(event)


def test_a_stop_window_ending_before_it_starts_is_refused(codec: Codec) -> None:
    plan = codec.decode(v1_route_payload())
    assert isinstance(plan, ev.RoutePlanned)
    bad = dataclasses.replace(plan, stops=(dataclasses.replace(plan.stops[0], window_start=at(30), window_end=at(20)),))
    with pytest.raises(InvalidEvent, match="window_end is before window_start"):
        codec.encode(bad)


def test_confidence_bounds_are_inclusive(codec: Codec) -> None:
    assert codec.decode(codec.encode(DEPARTED)).confidence == 0.0
    assert codec.decode(codec.encode(BACK_AT_HUB)).confidence == 1.0


# ---- topics -------------------------------------------------------------------------------------


def test_tracking_topic_carries_the_rider_keyed_tracking_events_and_is_projected() -> None:
    assert tp.TRACKING.events == (ev.ArrivedAtStop, ev.DepartedStop, ev.ZoneEvent)
    assert tp.TRACKING.config()["retention.ms"] == str(7 * tp.DAY_MS)
    for spec in (tp.ALL, tp.PROJECTED):
        names = [s.name for s in spec]
        assert names.index("tracking") == names.index("routes") + 1
    assert len({s.name for s in tp.ALL}) == len(tp.ALL)


def test_notices_go_to_notifications() -> None:
    assert ev.CustomerNotified in tp.NOTIFICATIONS.events and ev.OtpIssued in tp.NOTIFICATIONS.events


@pytest.mark.parametrize("spec", [s for s in tp.ALL if s is not tp.DISPATCH_QUEUE], ids=lambda s: s.name)
def test_every_event_on_a_topic_is_keyed_by_the_topics_key_field(spec: tp.TopicSpec) -> None:
    """The message key (``Event.key``) must be the field the topic says it is keyed by, or one
    order's (one rider's) events would spread over partitions. The dispatch queue re-keys by hub."""
    samples = {type(e): e for e in NEW_EVENTS}
    for cls in spec.events:
        sample = samples.get(cls)
        if sample is None:
            assert spec.key in {f.name for f in dataclasses.fields(cls)}, (spec.name, cls.__name__)
            continue
        assert getattr(sample, spec.key) == sample.key, (spec.name, cls.__name__)
