"""Bad input never stops the worker: each kind reaches the dead-letter topic with a reason and
the original bytes, and the messages after it are still processed."""

from __future__ import annotations

import struct

from harness import CODEC, Kafka, new_id, order_created

from schemas import events as ev


def test_bad_messages_reach_dead_letter_and_stream_goes_on(kafka: Kafka, worker: object) -> None:
    order = order_created(hub_id=f"dlq-{new_id()[:8]}")
    key = order.order_id  # one key: one partition, so "after" really means after
    garbage = b"not avro at all \xff\x00"
    unknown = b"\xc3\x01" + struct.pack("<Q", 0x1234_5678_9ABC_DEF0) + b"\x02\x04"
    kafka.produce("inbox", raw=garbage, key=key)
    kafka.produce("inbox", raw=unknown, key=key)
    kafka.produce("inbox", order)
    illegal = ev.StatusChanged(event_id=new_id(), occurred_at=order.occurred_at, order_id=key,
                               to_status=ev.OrderStatus.ARRIVED, rider_id="r-x")
    kafka.produce("inbox", illegal)
    later = ev.OrderCancelled(event_id=new_id(), occurred_at=order.occurred_at, order_id=key, reason="customer asked")
    kafka.produce("inbox", later)

    letters = {d.error_kind: d for d in kafka.wait_for("dead-letter", lambda d: d.source_key == key, count=3)}
    assert set(letters) == {ev.DeadLetterKind.MALFORMED, ev.DeadLetterKind.UNKNOWN_SCHEMA,
                            ev.DeadLetterKind.ILLEGAL_TRANSITION}
    assert letters[ev.DeadLetterKind.MALFORMED].original == garbage
    assert "framing" in letters[ev.DeadLetterKind.MALFORMED].reason
    assert letters[ev.DeadLetterKind.UNKNOWN_SCHEMA].original == unknown
    assert "f0debc9a78563412" in letters[ev.DeadLetterKind.UNKNOWN_SCHEMA].reason
    assert "created -> arrived" in letters[ev.DeadLetterKind.ILLEGAL_TRANSITION].reason
    assert all(d.source_topic.endswith("inbox") for d in letters.values())

    ledger = kafka.wait_for("orders", lambda e: e.order_id == key, count=2)
    assert [type(e) for e in ledger] == [ev.OrderCreated, ev.OrderCancelled]


def test_pings_breaking_the_contract_are_dead_lettered(kafka: Kafka, worker: object) -> None:
    """A foreign producer can write what our codec refuses to encode: latitude 95 decodes
    but breaks the contract, and a truncated header is malformed."""
    import io

    import fastavro

    from schemas.codec import to_record

    rider = f"rider-{new_id()[:8]}"
    t = order_created().occurred_at
    bad = ev.GpsPing(event_id=new_id(), occurred_at=t, rider_id=rider, device_id="d", device_time=t, lat=95.0, lon=77.6)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, CODEC.schema_of(ev.GpsPing), to_record(bad))
    kafka.produce("gps", raw=CODEC.header_of(ev.GpsPing) + buf.getvalue(), key=rider)
    kafka.produce("gps", raw=b"\xc3\x01\x00\x00\x00", key=rider)
    letters = {d.error_kind: d for d in kafka.wait_for("dead-letter", lambda d: d.source_key == rider, count=2)}
    assert "out of range" in letters[ev.DeadLetterKind.INVALID].reason
    assert "truncated" in letters[ev.DeadLetterKind.MALFORMED].reason
