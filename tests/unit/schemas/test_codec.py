"""The wire codec: single-object encoding any Avro consumer can read, Confluent framing with a
registry, schema resolution from released writer schemas, and the decode / contract errors."""

from __future__ import annotations

import dataclasses
import enum
import io
import json
import random
import struct
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.schema import to_parsing_canonical_form

from schemas import events as ev
from schemas.codec import (
    SCHEMA_DIR,
    Codec,
    DecodeError,
    InvalidEvent,
    MalformedMessage,
    SchemaRegistryClient,
    UnknownSchema,
)

T0 = datetime(2025, 3, 14, 9, 26, 53, 589_000, tzinfo=UTC)  # whole milliseconds: timestamp-millis


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


BLR_HUB = ev.GeoPoint(lat=12.9716, lon=77.5946)

EVENTS: dict[type[ev.Event], ev.Event] = {
    e.__class__: e
    for e in [
        ev.OrderCreated(
            event_id="0b7c6f0e-6a51-4a57-9d3b-2f4f0d8f8a10", occurred_at=T0, order_id="ord-1001",
            tracking_id="TRK-8F3K2", hub_id="hub-blr-koramangala", mode=ev.DeliveryMode.HYPERLOCAL,
            drop=ev.Location(lat=12.9352, lon=77.6245, address="80 Feet Rd, Koramangala 4th Block, Bengaluru"),
            pickup=ev.Location(lat=12.9279, lon=77.6271, address="Café Ünïcode, 5th Block — shop 3"),
            window_start=at(30), window_end=at(90), service_time_s=180, weight_kg=2.5, volume_l=6.0, units=2,
            required_skills=("fragile", "age_check"), cod_amount=1249.5, currency="INR", priority=2,
            instructions="Ring twice; leave with the guard if nobody answers",
        ),
        ev.OrderUpdated(
            event_id="e-upd-1", occurred_at=at(1), order_id="ord-1001",
            drop=ev.Location(lat=12.9360, lon=77.6250), window_end=at(120), priority=3,
        ),
        ev.OrderCancelled(event_id="e-can-1", occurred_at=at(2), order_id="ord-1002", reason="customer unreachable",
                          cancelled_by="customer"),
        ev.RiderShiftStarted(
            event_id="e-shift-1", occurred_at=T0, rider_id="rider-42", hub_id="hub-blr-koramangala",
            vehicle_type=ev.VehicleType.SCOOTER, capacity_weight_kg=25.0, capacity_volume_l=60.0, capacity_units=12,
            skills=("cold_chain",), shift_start=T0, shift_end=at(8 * 60), start=BLR_HUB,
            breaks=(ev.PlannedBreak(break_id="lunch", earliest_start=at(180), latest_start=at(240), duration_s=1800),),
        ),
        ev.RiderShiftEnded(event_id="e-shift-2", occurred_at=at(480), rider_id="rider-42",
                           position=ev.GeoPoint(lat=12.95, lon=77.60)),
        ev.GpsPing(
            event_id="e-gps-1", occurred_at=at(5), rider_id="rider-42", device_id="imei-356938035643809",
            device_time=at(4.99), lat=12.9401, lon=77.6112, speed_mps=7.4, heading_deg=271.5, accuracy_m=4.2,
            battery_pct=63.0,
        ),
        ev.OrderAssigned(event_id="e-asg-1", occurred_at=at(3), order_id="ord-1001", rider_id="rider-42",
                         route_id="route-7", sequence=2, planned_arrival=at(45)),
        ev.RoutePlanned(
            event_id="e-route-1", occurred_at=at(3), rider_id="rider-42", route_id="route-7",
            hub_id="hub-blr-koramangala",
            stops=(
                ev.PlannedStop(order_id="ord-1001", kind=ev.StopKind.PICKUP, lat=12.9279, lon=77.6271,
                               planned_arrival=at(20), service_time_s=120),
                ev.PlannedStop(order_id="ord-1001", kind=ev.StopKind.DROP, lat=12.9352, lon=77.6245,
                               planned_arrival=at(45), service_time_s=180, window_start=at(30), window_end=at(90)),
            ),
            start=BLR_HUB, planned_start=at(10), planned_end=at(60), distance_m=7421.5,
            reason="failed_delivery: ord-0999; delay: ord-1001",
            breaks=(ev.RouteBreak(break_id="lunch", start=at(50), end=at(80)),),
        ),
        ev.StatusChanged(event_id="e-st-1", occurred_at=at(46), order_id="ord-1001",
                         from_status=ev.OrderStatus.OUT_FOR_DELIVERY, to_status=ev.OrderStatus.ARRIVED,
                         reason="geofence", rider_id="rider-42", location=ev.GeoPoint(lat=12.9353, lon=77.6244)),
        ev.PodSubmitted(event_id="e-pod-1", occurred_at=at(50), order_id="ord-1001", rider_id="rider-42",
                        otp_hash=bytes(range(256))[::7], photo_ref="s3://pod/ord-1001.jpg", recipient_name="Asha",
                        location=ev.GeoPoint(lat=12.9352, lon=77.6245)),
        ev.PodAccepted(event_id="e-pod-2", occurred_at=at(50.5), order_id="ord-1001", rider_id="rider-42",
                       pod_event_id="e-pod-1"),
        ev.PodRejected(event_id="e-pod-3", occurred_at=at(51), order_id="ord-1003", rider_id="rider-42",
                       pod_event_id="e-pod-0", reason="otp mismatch", attempts_left=2),
        ev.OtpIssued(event_id="e-otp-1", occurred_at=at(40), order_id="ord-1001", tracking_id="TRK-8F3K2",
                     otp_salt=b"\x00\x01salt\xff", otp_sealed=bytes(range(44)), expires_at=at(240), max_attempts=3),
        ev.EtaUpdated(event_id="e-eta-1", occurred_at=at(30), order_id="ord-1001", rider_id="rider-42",
                      route_id="route-7", eta_p50=at(44), eta_p90=at(52)),
        ev.AlertRaised(event_id="e-alert-1", occurred_at=at(60), subject_id="rider-42", kind="device_silent",
                       severity=ev.Severity.WARNING, rider_id="rider-42", message="no GPS fix for 5 minutes"),
        ev.DeadLetter(event_id="e-dl-1", occurred_at=at(61), source_key="ord-9", source_topic="milestream.inbox",
                      source_partition=3, source_offset=2**40 + 17, original=b"\xc3\x01garbage\x00",
                      error_kind=ev.DeadLetterKind.MALFORMED, reason="body does not decode"),
        ev.ArrivedAtStop(event_id="e-arr-1", occurred_at=at(46), rider_id="rider-42", route_id="route-7",
                         fence_id="ord-1001", kind=ev.FenceKind.STOP, order_id="ord-1001", arrived_at=at(45.5),
                         location=ev.GeoPoint(lat=12.93521, lon=77.62448), confidence=0.875,
                         source_ping_id="e-gps-77", stop_kind=ev.StopKind.DROP),
        ev.DepartedStop(event_id="e-dep-1", occurred_at=at(53), rider_id="rider-42", route_id="route-7",
                        fence_id="hub-blr-koramangala", kind=ev.FenceKind.HUB, departed_at=at(52.5), confidence=0.5,
                        source_ping_id="e-gps-91"),
        ev.ZoneEvent(event_id="e-zone-1", occurred_at=at(20), rider_id="rider-42", zone_id="zone-no-parking-mg-road",
                     kind=ev.ZoneEventKind.DWELLED, at=at(19.5), source_ping_id="e-gps-40"),
        ev.CustomerNotified(event_id="e-notice-1", occurred_at=at(31), order_id="ord-1001", tracking_id="TRK-8F3K2",
                            kind=ev.NoticeKind.DELAYED, attempt=2, window_start=at(95), window_end=at(105),
                            promised_end=at(90), rider_id="rider-42"),
        ev.AttemptDecided(event_id="e-decided-1", occurred_at=at(47), order_id="ord-1001", attempt=1,
                          failure_reason=ev.FailureReason.OTHER, decision=ev.AttemptDecision.REATTEMPT,
                          rider_id="rider-42", window_start=at(107), window_end=at(287),
                          reason="same-day re-attempt 1 of 2 (hub policy): gate locked"),
        ev.BreakStarted(event_id="e-break-1", occurred_at=at(120), rider_id="rider-42", break_id="lunch",
                        expected_end=at(150), position=ev.GeoPoint(lat=12.95, lon=77.60)),
        ev.BreakEnded(event_id="e-break-2", occurred_at=at(150), rider_id="rider-42"),
        ev.TravelTimesLearned(event_id="e-learned-1", occurred_at=at(180), vehicle_type=ev.VehicleType.SCOOTER,
                              leg_speed_mps=tuple(4.0 + h / 10 for h in range(24)), service_factor=1.25, legs=812),
    ]
}
ALL = list(EVENTS.values())
IDS = [type(e).__name__ for e in ALL]


def test_there_is_a_sample_of_every_event_type() -> None:
    assert set(EVENTS) == set(ev.EVENT_TYPES)


@pytest.fixture(scope="module")
def codec() -> Codec:
    return Codec()


# ---- an independent CRC-64-AVRO (Avro spec, "Schema Fingerprints") ------------------------------

EMPTY = 0xC15D213AA4D7A795


def _table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (EMPTY & -(fp & 1))
        table.append(fp)
    return table


FP_TABLE = _table()


def crc64_avro(data: bytes) -> int:
    fp = EMPTY
    for byte in data:
        fp = (fp >> 8) ^ FP_TABLE[(fp ^ byte) & 0xFF]
    return fp


def fingerprint_of(avsc: Path) -> bytes:
    canonical = to_parsing_canonical_form(json.loads(avsc.read_text()))
    return crc64_avro(canonical.encode("utf-8")).to_bytes(8, "little")


def test_crc64_avro_implementation_basics() -> None:
    assert crc64_avro(b"") == EMPTY
    assert FP_TABLE[0] == 0 and FP_TABLE[1] != 0
    assert crc64_avro(b'"int"') != crc64_avro(b'"long"')


# ---- round trip and the wire format ------------------------------------------------------------


@pytest.mark.parametrize("event", ALL, ids=IDS)
def test_round_trip_is_equal(codec: Codec, event: ev.Event) -> None:
    decoded = codec.decode(codec.encode(event))
    assert type(decoded) is type(event)
    assert decoded == event


@pytest.mark.parametrize("event", ALL, ids=IDS)
def test_single_object_header_is_magic_and_crc64_avro_fingerprint(codec: Codec, event: ev.Event) -> None:
    data = codec.encode(event)
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == fingerprint_of(SCHEMA_DIR / f"{type(event).__name__}.avsc")
    assert codec.header_of(type(event)) == data[:10]


def test_fingerprints_differ_between_event_types(codec: Codec) -> None:
    headers = {codec.header_of(cls) for cls in ev.EVENT_TYPES}
    assert len(headers) == len(ev.EVENT_TYPES)


def as_plain_record(value: Any) -> Any:
    """What a plain Avro reader yields for a dataclass value (written independently of the codec)."""
    if dataclasses.is_dataclass(value):
        return {f.name: as_plain_record(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return [as_plain_record(v) for v in value]
    return value


@pytest.mark.parametrize("event", ALL, ids=IDS)
def test_a_foreign_consumer_decodes_with_fastavro_and_the_avsc_alone(codec: Codec, event: ev.Event) -> None:
    data = codec.encode(event)
    schema = fastavro.parse_schema(json.loads((SCHEMA_DIR / f"{type(event).__name__}.avsc").read_text()))
    body = io.BytesIO(data[10:])
    record = fastavro.schemaless_reader(body, schema, None)
    assert body.tell() == len(data) - 10, "the body must be exactly one Avro datum"
    assert record == as_plain_record(event)
    assert record["occurred_at"].tzinfo is not None


def test_defaults_are_written_and_read(codec: Codec) -> None:
    bare = ev.OrderCancelled(event_id="e", occurred_at=T0, order_id="o", reason="r")
    assert codec.decode(codec.encode(bare)) == bare
    assert codec.decode(codec.encode(bare)).cancelled_by == "shipper"


# ---- decode errors -----------------------------------------------------------------------------


def _random_payloads() -> list[bytes]:
    rng = random.Random(20250314)
    out = []
    while len(out) < 20:
        data = rng.randbytes(rng.randint(1, 200))
        if data[:1] not in (b"\x00", b"\xc3"):  # those are framing bytes, tested below
            out.append(data)
    return out


@pytest.mark.parametrize("data", [b"", None, b"\x00", b"\xc3\x01", b"abcd"], ids=["empty", "None", "1B", "2B", "4B"])
def test_too_short_messages_are_malformed(codec: Codec, data: bytes | None) -> None:
    with pytest.raises(MalformedMessage):
        codec.decode(data)


def test_random_bytes_are_malformed(codec: Codec) -> None:
    for data in _random_payloads():
        with pytest.raises(MalformedMessage):
            codec.decode(data)


@pytest.mark.parametrize("magic", [b"\xc3\x02", b"\xc2\x01", b"\x01\x01", b"{\""], ids=lambda m: m.hex())
def test_wrong_magic_is_malformed(codec: Codec, magic: bytes) -> None:
    good = codec.encode(EVENTS[ev.GpsPing])
    with pytest.raises(MalformedMessage):
        codec.decode(magic + good[2:])


@pytest.mark.parametrize("length", range(1, 10))
def test_truncated_header_is_malformed(codec: Codec, length: int) -> None:
    good = codec.encode(EVENTS[ev.GpsPing])
    with pytest.raises(MalformedMessage):
        codec.decode(good[:length])


def test_unknown_fingerprint_is_unknown_schema(codec: Codec) -> None:
    good = codec.encode(EVENTS[ev.GpsPing])
    fp = bytearray(good[2:10])
    fp[0] ^= 0xFF
    with pytest.raises(UnknownSchema):
        codec.decode(b"\xc3\x01" + bytes(fp) + good[10:])


@pytest.mark.parametrize(
    "body",
    [b"", b"\xff" * 12, b"\x02", b"\x7f" + b"x" * 10],
    ids=["empty", "endless-varint", "string-cut", "length-past-end"],
)
@pytest.mark.parametrize("cls", [ev.GpsPing, ev.RoutePlanned, ev.DeadLetter], ids=lambda c: c.__name__)
def test_valid_header_with_garbage_body_is_malformed(codec: Codec, cls: type[ev.Event], body: bytes) -> None:
    with pytest.raises(MalformedMessage):
        codec.decode(codec.header_of(cls) + body)


@pytest.mark.parametrize("event", ALL, ids=IDS)
def test_a_truncated_body_is_malformed(codec: Codec, event: ev.Event) -> None:
    data = codec.encode(event)
    with pytest.raises(MalformedMessage):
        codec.decode(data[: 10 + (len(data) - 10) // 2])


def test_an_enum_index_out_of_range_is_malformed(codec: Codec) -> None:
    schema = codec.schema_of(ev.AlertRaised)
    buf = io.BytesIO()
    record = as_plain_record(EVENTS[ev.AlertRaised])
    fastavro.schemaless_writer(buf, schema, record)
    body = bytearray(buf.getvalue())
    good_body = codec.encode(EVENTS[ev.AlertRaised])[10:]
    assert bytes(body) == good_body
    # severity is the enum after 3 strings + 2 varints; find it: WARNING is index 1 -> zigzag 0x02
    prefix = fastavro_prefix_len(schema, record, "severity")
    assert body[prefix] == 0x02
    body[prefix] = 0x0A  # index 5 of 3 symbols
    with pytest.raises(MalformedMessage):
        codec.decode(codec.header_of(ev.AlertRaised) + bytes(body))


def fastavro_prefix_len(schema: Any, record: dict[str, Any], field: str) -> int:
    """Byte offset of ``field`` in the body: the length of the body written up to it."""
    names = [f["name"] for f in schema["fields"]]
    partial = {"type": "record", "name": "Prefix", "fields": schema["fields"][: names.index(field)]}
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(partial), record)
    return len(buf.getvalue())


def test_decode_errors_are_one_family() -> None:
    assert issubclass(MalformedMessage, DecodeError) and issubclass(UnknownSchema, DecodeError)
    assert issubclass(InvalidEvent, ValueError) and not issubclass(InvalidEvent, DecodeError)


# ---- contract rules ----------------------------------------------------------------------------

ORDER = EVENTS[ev.OrderCreated]
PING = EVENTS[ev.GpsPing]


@pytest.mark.parametrize(
    "event",
    [
        dataclasses.replace(PING, lat=95.0),
        dataclasses.replace(PING, lon=-180.5),
        dataclasses.replace(PING, lat=float("nan")),
        dataclasses.replace(ORDER, drop=ev.Location(lat=95.0, lon=77.6)),
        dataclasses.replace(ORDER, window_start=at(90), window_end=at(30)),
        dataclasses.replace(ORDER, pickup=None),  # ORDER is hyperlocal
        dataclasses.replace(ORDER, weight_kg=-1.0),
        dataclasses.replace(PING, event_id=""),
        dataclasses.replace(ORDER, event_id=""),
        dataclasses.replace(PING, rider_id=""),
        dataclasses.replace(PING, occurred_at=datetime(2025, 3, 14, 9, 0)),  # naive
        dataclasses.replace(EVENTS[ev.RiderShiftStarted], shift_end=T0),
        dataclasses.replace(EVENTS[ev.StatusChanged], location=ev.GeoPoint(lat=12.9, lon=181.0)),
        dataclasses.replace(EVENTS[ev.RoutePlanned], stops=(dataclasses.replace(
            EVENTS[ev.RoutePlanned].stops[0], lat=-91.0),)),
    ],
    ids=["lat-95", "lon-180.5", "lat-nan", "drop-lat-95", "window-reversed", "hyperlocal-no-pickup",
         "negative-weight", "empty-event-id", "empty-event-id-order", "empty-key", "naive-occurred-at",
         "empty-shift", "status-lon-181", "stop-lat--91"],
)
def test_contract_violations_raise_invalid_event_on_encode(codec: Codec, event: ev.Event) -> None:
    with pytest.raises(InvalidEvent):
        codec.encode(event)


@pytest.mark.parametrize(
    "event",
    [
        dataclasses.replace(EVENTS[ev.OrderCancelled], reason=5),  # type: ignore[arg-type]
        dataclasses.replace(EVENTS[ev.OrderAssigned], sequence=2**31),  # Avro int is 32-bit
        dataclasses.replace(EVENTS[ev.OtpIssued], otp_salt="not bytes"),  # type: ignore[arg-type]
    ],
    ids=["str-field-int", "int-overflow", "bytes-field-str"],
)
def test_values_that_do_not_fit_the_schema_raise_invalid_event_on_encode(codec: Codec, event: ev.Event) -> None:
    with pytest.raises(InvalidEvent):
        codec.encode(event)


def test_a_hyperlocal_order_with_pickup_and_a_last_mile_order_without_are_fine(codec: Codec) -> None:
    last_mile = dataclasses.replace(ORDER, mode=ev.DeliveryMode.LAST_MILE, pickup=None)
    assert codec.decode(codec.encode(last_mile)) == last_mile
    assert codec.decode(codec.encode(ORDER)) == ORDER


def test_a_decoded_contract_violation_raises_invalid_event(codec: Codec) -> None:
    """A foreign producer writes lat 95 straight with fastavro: the codec still refuses it."""
    record = as_plain_record(dataclasses.replace(PING, lat=12.0))
    record["lat"] = 95.0
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, codec.schema_of(ev.GpsPing), record)
    with pytest.raises(InvalidEvent):
        codec.decode(codec.header_of(ev.GpsPing) + buf.getvalue())


# ---- schema resolution: a payload written with an older released schema ------------------------


@pytest.fixture
def evolved_dir(schema_dir: Path) -> Path:
    """Current schemas are the real ones; released/v1 has a GpsPing without ``battery_pct``."""
    target = schema_dir
    v1 = target / "released" / "v1" / "GpsPing.avsc"
    schema = json.loads(v1.read_text())
    schema["fields"] = [f for f in schema["fields"] if f["name"] != "battery_pct"]
    v1.write_text(json.dumps(schema, indent=2))
    return target


def v1_gps_payload(v1_avsc: Path, event: ev.GpsPing) -> bytes:
    raw = json.loads(v1_avsc.read_text())
    record = as_plain_record(event)
    del record["battery_pct"]
    buf = io.BytesIO()
    buf.write(b"\xc3\x01" + fingerprint_of(v1_avsc))
    fastavro.schemaless_writer(buf, fastavro.parse_schema(raw), record)
    return buf.getvalue()


def test_a_payload_written_with_a_released_older_schema_decodes_into_the_current_type(evolved_dir: Path) -> None:
    v1_avsc = evolved_dir / "released" / "v1" / "GpsPing.avsc"
    payload = v1_gps_payload(v1_avsc, PING)
    codec = Codec(schema_dir=evolved_dir)
    assert payload[:10] != codec.header_of(ev.GpsPing), "the v1 writer schema must differ from the current one"
    decoded = codec.decode(payload)
    assert type(decoded) is ev.GpsPing
    assert decoded.battery_pct is None
    assert decoded == dataclasses.replace(PING, battery_pct=None)
    # current payloads still decode with the same codec
    assert codec.decode(codec.encode(PING)) == PING


def test_an_older_schema_that_was_never_released_is_unknown(evolved_dir: Path) -> None:
    payload = v1_gps_payload(evolved_dir / "released" / "v1" / "GpsPing.avsc", PING)
    with pytest.raises(UnknownSchema):
        Codec().decode(payload)  # the repository's released/v1 has no such GpsPing


# ---- Confluent framing with a schema registry ---------------------------------------------------


class FakeRegistry:
    """Just enough of the Confluent Schema Registry REST API, on a stdlib HTTP server."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}  # schema text -> id
        self.schemas: dict[int, str] = {}
        self.subjects: dict[str, list[int]] = {}
        self.posts = 0
        self.gets = 0
        self.lock = threading.Lock()
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                parts = self.path.strip("/").split("/")
                if len(parts) != 3 or parts[0] != "subjects" or parts[2] != "versions":
                    return self.reply(404, {"error_code": 404, "message": "not found"})
                schema = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["schema"]
                with registry.lock:
                    registry.posts += 1
                    schema_id = registry.ids.setdefault(schema, len(registry.ids) + 1)
                    registry.schemas[schema_id] = schema
                    registry.subjects.setdefault(parts[1], []).append(schema_id)
                self.reply(200, {"id": schema_id})

            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")
                with registry.lock:
                    registry.gets += 1
                    schema = registry.schemas.get(int(parts[2])) if len(parts) == 3 and parts[2].isdigit() else None
                if parts[:2] != ["schemas", "ids"] or schema is None:
                    return self.reply(404, {"error_code": 40403, "message": "Schema not found"})
                self.reply(200, {"schema": schema})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FakeRegistry:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    with FakeRegistry() as reg:
        yield reg


def test_registry_framing_round_trips_every_event_type(registry: FakeRegistry) -> None:
    codec = Codec(registry=SchemaRegistryClient(registry.url, timeout_s=5))
    for event in ALL:
        name = type(event).__name__
        data = codec.encode(event, topic="milestream.orders")
        assert data[:1] == b"\x00"
        (schema_id,) = struct.unpack(">I", data[1:5])
        assert registry.subjects[f"milestream.orders-milestream.events.{name}"] == [schema_id]
        assert json.loads(registry.schemas[schema_id]) == json.loads((SCHEMA_DIR / f"{name}.avsc").read_text())
        assert codec.decode(data) == event
    assert registry.posts == len(ALL)


def test_registry_ids_are_cached_and_a_fresh_codec_fetches_the_schema(registry: FakeRegistry) -> None:
    producer = Codec(registry=SchemaRegistryClient(registry.url, timeout_s=5))
    first = producer.encode(PING, topic="milestream.gps")
    second = producer.encode(dataclasses.replace(PING, event_id="e-gps-2"), topic="milestream.gps")
    assert registry.posts == 1 and first[:5] == second[:5]
    consumer = Codec(registry=SchemaRegistryClient(registry.url, timeout_s=5))
    assert consumer.decode(first) == PING
    assert consumer.decode(second).event_id == "e-gps-2"
    assert registry.gets == 1
    # a registry-aware consumer still reads the default framing
    assert consumer.decode(Codec().encode(PING)) == PING


def test_an_id_the_registry_does_not_know_is_unknown_schema(registry: FakeRegistry) -> None:
    codec = Codec(registry=SchemaRegistryClient(registry.url, timeout_s=5))
    body = codec.encode(PING, topic="milestream.gps")[5:]
    with pytest.raises(UnknownSchema):
        codec.decode(b"\x00" + struct.pack(">I", 999) + body)


def test_a_registry_schema_that_is_not_ours_is_unknown_schema(registry: FakeRegistry) -> None:
    foreign = json.dumps({"type": "record", "name": "Invoice", "namespace": "acme", "fields": [
        {"name": "id", "type": "string"}]})
    schema_id = SchemaRegistryClient(registry.url).register("acme-invoices-value", foreign)
    codec = Codec(registry=SchemaRegistryClient(registry.url, timeout_s=5))
    with pytest.raises(UnknownSchema):
        codec.decode(b"\x00" + struct.pack(">I", schema_id) + b"\x04ab")


def test_a_default_codec_refuses_confluent_framing_as_unknown_schema(registry: FakeRegistry) -> None:
    data = Codec(registry=SchemaRegistryClient(registry.url, timeout_s=5)).encode(PING, topic="milestream.gps")
    with pytest.raises(UnknownSchema):
        Codec().decode(data)


def test_trailing_bytes_after_the_body_are_malformed(codec: Codec) -> None:
    with pytest.raises(MalformedMessage):
        codec.decode(codec.encode(PING) + b"junk")


def test_the_registry_gets_the_schema_of_the_codecs_own_folder(registry: FakeRegistry, schema_dir: Path) -> None:
    """A codec over another schema folder registers that folder's schema, not the package's."""
    path = schema_dir / "GpsPing.avsc"
    schema = json.loads(path.read_text())
    schema["doc"] = "a folder of our own"
    path.write_text(json.dumps(schema))
    Codec(schema_dir=schema_dir, registry=SchemaRegistryClient(registry.url)).encode(PING, "t.gps")
    registered = [json.loads(s) for s in registry.schemas.values()]
    assert [s["doc"] for s in registered] == ["a folder of our own"]


def test_registry_encoding_needs_the_topic(registry: FakeRegistry) -> None:
    with pytest.raises(ValueError, match="needs the topic"):
        Codec(registry=SchemaRegistryClient(registry.url)).encode(PING)


def test_non_finite_capacity_and_non_numeric_latitude_are_invalid(codec: Codec) -> None:
    shift = EVENTS[ev.RiderShiftStarted]
    with pytest.raises(InvalidEvent, match="capacity_weight_kg must be within"):
        codec.encode(dataclasses.replace(shift, capacity_weight_kg=float("nan")))
    with pytest.raises(InvalidEvent):
        codec.encode(dataclasses.replace(PING, lat="12"))  # type: ignore[arg-type]
