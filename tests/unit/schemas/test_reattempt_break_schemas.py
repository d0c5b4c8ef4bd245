"""The issue-11 contract: failure reasons, re-attempt decisions, breaks, pickups, manual assignments and
learned travel times. Old (v1) payloads read with the new fields' defaults; the contract rules refuse
what no producer may send; the new topic is a compacted table keyed by vehicle type."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
import pytest
from fastavro.schema import fingerprint, to_parsing_canonical_form

from schemas import Codec, InvalidEvent
from schemas import events as ev
from schemas import topics as tp
from schemas.codec import SCHEMA_DIR, to_record

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
CODEC = Codec()
V1 = SCHEMA_DIR / "released" / "v1"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


SHIFT = ev.RiderShiftStarted(
    event_id="s1", occurred_at=T0, rider_id="rider-1", hub_id="hub-1", vehicle_type=ev.VehicleType.BIKE,
    capacity_weight_kg=20.0, capacity_volume_l=50.0, capacity_units=10, shift_start=T0, shift_end=at(480),
    start=ev.GeoPoint(lat=12.97, lon=77.59),
    breaks=(ev.PlannedBreak(break_id="lunch", earliest_start=at(180), latest_start=at(240), duration_s=1800),))
ROUTE = ev.RoutePlanned(
    event_id="r1", occurred_at=T0, rider_id="rider-1", route_id="route-1", hub_id="hub-1",
    stops=(ev.PlannedStop(order_id="ord-1", kind=ev.StopKind.PICKUP, lat=12.93, lon=77.62, planned_arrival=at(10),
                          service_time_s=120),
           ev.PlannedStop(order_id="ord-1", kind=ev.StopKind.DROP, lat=12.94, lon=77.63, planned_arrival=at(20),
                          service_time_s=60)),
    start=ev.GeoPoint(lat=12.97, lon=77.59), planned_start=T0, planned_end=at(60), distance_m=4200.0,
    breaks=(ev.RouteBreak(break_id="lunch", start=at(30), end=at(60)),))
FAILED = ev.StatusChanged(event_id="f1", occurred_at=at(20), order_id="ord-1", from_status=ev.OrderStatus.ARRIVED,
                          to_status=ev.OrderStatus.FAILED, reason="gate locked", rider_id="rider-1",
                          failure_reason=ev.FailureReason.OTHER)
DECIDED = ev.AttemptDecided(event_id="d1", occurred_at=at(20), order_id="ord-1", attempt=1,
                            failure_reason=ev.FailureReason.NO_ACCESS, decision=ev.AttemptDecision.REATTEMPT,
                            rider_id="rider-1", window_start=at(80), window_end=at(200), reason="same day")
LEARNED = ev.TravelTimesLearned(event_id="t1", occurred_at=T0, vehicle_type=ev.VehicleType.VAN,
                                leg_speed_mps=(5.0,) * 24, service_factor=1.1, legs=40)
BREAK = ev.BreakStarted(event_id="b1", occurred_at=at(30), rider_id="rider-1", break_id="lunch", expected_end=at(60),
                        position=ev.GeoPoint(lat=12.9, lon=77.6))


def v1_payload(event: ev.Event) -> bytes:
    """``event`` as a producer still on the released v1 schema writes it (the new fields left out)."""
    raw = json.loads((V1 / f"{type(event).__name__}.avsc").read_text())
    parsed = fastavro.parse_schema(raw)
    known = {f["name"] for f in raw["fields"]}
    record = {k: v for k, v in to_record(event).items() if k in known}
    buf = io.BytesIO()
    buf.write(b"\xc3\x01" + bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO")))
    fastavro.schemaless_writer(buf, parsed, record)
    return buf.getvalue()


@pytest.mark.parametrize(("event", "defaults"), [
    (FAILED, {"failure_reason": None}),
    (SHIFT, {"breaks": ()}),
    (ROUTE, {"breaks": ()}),
    (ev.OrderAssigned(event_id="a1", occurred_at=T0, order_id="ord-1", rider_id="rider-1", route_id="route-1",
                      sequence=1, planned_arrival=at(20), assigned_by="dispatcher:ana"), {"assigned_by": "dispatch"}),
    (ev.OrderUpdated(event_id="u1", occurred_at=T0, order_id="ord-1", priority=2, weight_kg=3.0, units=2,
                     pickup=ev.Location(lat=12.9, lon=77.6)), {"pickup": None, "weight_kg": None, "units": None}),
], ids=lambda x: type(x).__name__ if isinstance(x, ev.Event) else "")
def test_a_v1_payload_reads_with_the_new_fields_defaults(event: ev.Event, defaults: dict[str, Any]) -> None:
    payload = v1_payload(event)
    assert payload[2:10] != CODEC.header_of(type(event))[2:], "v1 and current schemas must differ"
    assert CODEC.decode(payload) == dataclasses.replace(event, **defaults)


@pytest.mark.parametrize("event", [SHIFT, ROUTE, FAILED, DECIDED, LEARNED, BREAK,
                                   ev.BreakEnded(event_id="b2", occurred_at=at(60), rider_id="rider-1")],
                         ids=lambda e: type(e).__name__)
def test_new_fields_and_events_round_trip(event: ev.Event) -> None:
    assert CODEC.decode(CODEC.encode(event)) == event


@pytest.mark.parametrize("event", [
    dataclasses.replace(FAILED, to_status=ev.OrderStatus.RETURNED_TO_HUB),
    dataclasses.replace(DECIDED, attempt=0),
    dataclasses.replace(DECIDED, window_end=None),
    dataclasses.replace(DECIDED, window_start=at(300)),
    dataclasses.replace(DECIDED, decision=ev.AttemptDecision.RETURN_TO_HUB),
    dataclasses.replace(SHIFT, breaks=(dataclasses.replace(SHIFT.breaks[0], latest_start=at(100)),)),
    dataclasses.replace(SHIFT, breaks=(dataclasses.replace(SHIFT.breaks[0], duration_s=0),)),
    dataclasses.replace(SHIFT, breaks=SHIFT.breaks * 2),
    dataclasses.replace(ROUTE, breaks=(ev.RouteBreak(break_id="lunch", start=at(60), end=at(30)),)),
    dataclasses.replace(LEARNED, leg_speed_mps=(5.0,) * 23),
    dataclasses.replace(LEARNED, leg_speed_mps=(5.0,) * 23 + (float("nan"),)),
    dataclasses.replace(LEARNED, leg_speed_mps=(0.0,) * 24),
    dataclasses.replace(LEARNED, service_factor=0.0),
    dataclasses.replace(LEARNED, legs=-1),
    dataclasses.replace(BREAK, break_id=""),
    dataclasses.replace(BREAK, position=ev.GeoPoint(lat=91.0, lon=0.0)),
    ev.OrderUpdated(event_id="u", occurred_at=T0, order_id="o", pickup=ev.Location(lat=0.0, lon=200.0)),
    ev.OrderUpdated(event_id="u", occurred_at=T0, order_id="o", weight_kg=-2.0),
], ids=["failure-reason-on-returned", "attempt-0", "reattempt-half-window", "reattempt-window-reversed",
        "return-with-window", "break-latest-before-earliest", "break-no-duration", "break-ids-repeated",
        "route-break-reversed", "23-hours", "nan-speed", "zero-speed", "zero-service-factor", "negative-legs",
        "empty-break-id", "break-lat-91", "update-pickup-lon-200", "update-negative-weight"])
def test_the_contract_rules_refuse_what_no_producer_may_send(event: ev.Event) -> None:
    with pytest.raises(InvalidEvent):
        CODEC.encode(event)


def test_order_created_overrides_are_bounded() -> None:
    order = ev.OrderCreated(
        event_id="c1", occurred_at=T0, order_id="ord-1", tracking_id="TRK-1", hub_id="hub-1",
        mode=ev.DeliveryMode.HYPERLOCAL, drop=ev.Location(lat=12.94, lon=77.63),
        pickup=ev.Location(lat=12.93, lon=77.62), window_start=T0, window_end=at(30), service_time_s=60,
        weight_kg=1.0, volume_l=1.0, units=1)
    fine = dataclasses.replace(order, promise_min=20, max_attempts=3, reattempt=ev.ReattemptMode.NEXT_DAY)
    assert CODEC.decode(CODEC.encode(fine)) == fine
    for bad in (dict(promise_min=0), dict(max_attempts=0), dict(max_attempts=21)):
        with pytest.raises(InvalidEvent):
            CODEC.encode(dataclasses.replace(order, **bad))


def test_travel_times_is_a_compacted_projected_topic_keyed_by_vehicle_type() -> None:
    spec = tp.TRAVEL_TIMES
    assert (spec.name, spec.key, spec.events) == ("travel-times", "vehicle_type", (ev.TravelTimesLearned,))
    assert spec.config() == {"cleanup.policy": "compact"}
    assert LEARNED.key == "van"
    assert spec in tp.ALL and spec in tp.PROJECTED
    assert tp.ORDERS.config()["cleanup.policy"] == "delete"


def test_the_new_events_ride_the_topics_the_contract_names() -> None:
    assert ev.AttemptDecided in tp.ORDERS.events and ev.AttemptDecided not in tp.INBOX.events
    assert {ev.BreakStarted, ev.BreakEnded} <= set(tp.RIDERS.events)
    assert {ev.OrderUpdated, ev.OrderAssigned, ev.AttemptDecided, ev.BreakStarted, ev.BreakEnded,
            ev.TravelTimesLearned} <= set(tp.DISPATCH_QUEUE.events)
    on_a_topic = {cls for spec in tp.ALL for cls in spec.events}
    assert set(ev.EVENT_TYPES) <= on_a_topic


# ---- the stream edge's limits reach the new fields ------------------------------------------------


def _edge_verdict(event: ev.Event, topic: tp.TopicSpec, **limits: Any) -> ev.Event | str:
    from streams.edge import Edge, Limits, Record

    name = f"t.{topic.name}"
    edge = Edge(CODEC, {f"t.{s.name}": s for s in tp.ALL}, Limits(**limits))
    got = edge.accept(Record(name, 0, 1, event.key.encode(), CODEC.encode(event, name),
                             int(event.occurred_at.timestamp() * 1000)), event.occurred_at.timestamp())
    return got if isinstance(got, ev.Event) else got.reason


def test_the_edge_checks_break_ids_counts_and_an_updated_pickup() -> None:
    assert _edge_verdict(SHIFT, tp.RIDERS) == SHIFT
    many = tuple(ev.PlannedBreak(break_id=f"b{i}", earliest_start=at(i), latest_start=at(i), duration_s=60)
                 for i in range(5))
    assert "5 breaks, over the limit of 4" in str(_edge_verdict(dataclasses.replace(SHIFT, breaks=many), tp.RIDERS,
                                                                max_breaks=4))
    bad_id = dataclasses.replace(ROUTE, breaks=(ev.RouteBreak(break_id="x" * 200, start=at(30), end=at(60)),))
    assert "break break_id" in str(_edge_verdict(bad_id, tp.ROUTES))
    update = ev.OrderUpdated(event_id="u", occurred_at=T0, order_id="ord-1",
                             pickup=ev.Location(lat=12.9, lon=77.6, address="a" * 50))
    assert _edge_verdict(update, tp.INBOX) == update
    assert "pickup address has 50 characters" in str(_edge_verdict(update, tp.INBOX, max_text_chars=40))
    decided_text = dataclasses.replace(DECIDED, reason="r" * 50)
    assert "reason has 50 characters" in str(_edge_verdict(decided_text, tp.ORDERS, max_text_chars=40))
