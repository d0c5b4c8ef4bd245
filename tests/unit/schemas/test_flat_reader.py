"""The flat-record reader gives exactly what fastavro gives, for every flat event type, and refuses
what fastavro refuses: truncated bodies, bytes after the record, an impossible union branch."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime, timedelta

import fastavro
import pytest

from schemas import Codec, MalformedMessage
from schemas import events as ev
from schemas.codec import from_record, to_record
from schemas.flat import flat_reader

CODEC = Codec()
T0 = datetime(2026, 11, 24, 7, 30, tzinfo=UTC)


def _pings(n: int) -> list[ev.GpsPing]:
    rng = random.Random(4)
    out = []
    for k in range(n):
        maybe = lambda lo, hi: None if rng.random() < 0.3 else rng.uniform(lo, hi)  # noqa: E731
        t = T0 + timedelta(milliseconds=rng.randrange(-10**12, 10**12))
        out.append(ev.GpsPing(event_id=f"é-{k}-" + "x" * rng.randrange(0, 200), occurred_at=t, rider_id=f"r{k}ß",
                              device_id="" if k % 7 == 0 else f"d{k}", device_time=t - timedelta(seconds=k),
                              lat=rng.uniform(-90, 90), lon=rng.uniform(-180, 180), speed_mps=maybe(0, 60),
                              heading_deg=maybe(0, 360), accuracy_m=maybe(0, 500), battery_pct=maybe(0, 100),
                              schema_version=rng.choice([1, 2, 300])))
    return out


def _fastavro(event: ev.Event) -> ev.Event:
    data = CODEC.encode(event)
    record = fastavro.schemaless_reader(io.BytesIO(data[10:]), CODEC._current[type(event)][0], None)  # noqa: SLF001
    return from_record(type(event), record)


def test_flat_reader_equals_fastavro_on_pings() -> None:
    for ping in _pings(400):
        data = CODEC.encode(ping)
        assert CODEC.decode(data) == _fastavro(ping) == ping


def test_timestamps_are_exact_to_the_millisecond_on_both_sides_of_the_fast_span() -> None:
    """Inside 1970-2106 the reader takes datetime.fromtimestamp(ms / 1000): every millisecond must
    come back exact, at the span's edges and anywhere inside it (20,000 random ones)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    rng = random.Random(11)
    edge = 2**32 * 1000
    millis = [0, 1, -1, 999, 1000, edge - 1, edge, edge + 1, -(10**12), 253402300799999]
    millis += [rng.randrange(0, edge) for _ in range(20000)]
    for ms in millis:
        t = epoch + timedelta(milliseconds=ms)
        e = ev.EtaUpdated(event_id="e", occurred_at=t, order_id="o", rider_id="r", route_id="x", eta_p50=t, eta_p90=t)
        assert CODEC.decode(CODEC.encode(e)).eta_p50 == t, ms


def test_flat_reader_equals_fastavro_on_the_other_flat_events() -> None:
    t = T0
    events = [
        ev.EtaUpdated(event_id="e", occurred_at=t, order_id="o", rider_id="r", route_id="x", eta_p50=t, eta_p90=t),
        ev.OrderAssigned(event_id="e", occurred_at=t, order_id="o", rider_id="r", route_id="x", sequence=-3,
                         planned_arrival=t),
        ev.OrderCancelled(event_id="e", occurred_at=t, order_id="o", reason="customer asked"),
        ev.PodRejected(event_id="e", occurred_at=t, order_id="o", rider_id="r", pod_event_id="p", reason="wrong",
                       attempts_left=2),
    ]
    for e in events:
        assert CODEC.decode(CODEC.encode(e)) == _fastavro(e) == e


def test_only_flat_schemas_get_the_reader() -> None:
    source = CODEC._source  # noqa: SLF001
    assert flat_reader(source[ev.GpsPing], ev.GpsPing) is not None
    assert flat_reader(source[ev.RoutePlanned], ev.RoutePlanned) is None  # nested records and arrays
    assert flat_reader(source[ev.AlertRaised], ev.AlertRaised) is None  # an enum
    assert flat_reader(source[ev.GpsPing], ev.EtaUpdated) is None  # fields are not the class's


def test_broken_bodies_are_malformed_not_crashes() -> None:
    data = CODEC.encode(_pings(1)[0])
    for cut in (11, 20, len(data) - 1):
        with pytest.raises(MalformedMessage):
            CODEC.decode(data[:cut])
    with pytest.raises(MalformedMessage, match="after the record"):
        CODEC.decode(data + b"\x00")
    ping = _pings(1)[0]
    record = to_record(ping)
    # the speed union's branch byte (0x02: double) turned into 0x04: no such branch
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, CODEC._current[ev.GpsPing][0], record)  # noqa: SLF001
    body = bytearray(buf.getvalue())
    speed_at = len(body) - sum(1 if record[k] is None else 9 for k in ("speed_mps", "heading_deg", "accuracy_m",
                                                                        "battery_pct"))
    body[speed_at] = 0x04
    with pytest.raises(MalformedMessage):
        CODEC.decode(CODEC.header_of(ev.GpsPing) + bytes(body))
