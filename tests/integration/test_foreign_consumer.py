"""A consumer that is not ours decodes our topics with the .avsc files alone: confluent-kafka
reads the order ledger the worker wrote, fastavro decodes with schemas found by fingerprint.
No milestream code is used to decode."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import fastavro
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from fastavro.schema import fingerprint, to_parsing_canonical_form
from harness import Kafka, new_id, order_created

from infra.settings import Settings

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"


def test_confluent_kafka_and_fastavro_decode_the_ledger_with_avsc_files_only(settings: Settings, kafka: Kafka,
                                                                             worker: object) -> None:
    by_fp = {}
    for path in SCHEMA_DIR.glob("*.avsc"):
        parsed = fastavro.parse_schema(json.loads(path.read_text()))
        by_fp[bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))] = parsed
    order = order_created(hub_id=f"foreign-{new_id()[:8]}", required_skills=("fragile", "age_check"))
    kafka.produce("inbox", order)

    topic = settings.topic("orders")
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"foreign-{new_id()}"})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(settings.kafka_partitions)])
    found = None
    deadline = time.monotonic() + 60
    while found is None and time.monotonic() < deadline:
        for m in consumer.consume(100, timeout=0.5):
            value = m.value()
            assert value[:2] == b"\xc3\x01"
            record = fastavro.schemaless_reader(io.BytesIO(value[10:]), by_fp[value[2:10]], None)
            if record.get("event_id") == order.event_id:
                found = (m.key(), record)
    consumer.close()
    assert found is not None, "the worker never appended the order to the ledger"
    key, record = found
    assert key == order.order_id.encode()
    assert record["order_id"] == order.order_id and record["mode"] == "last_mile"
    assert record["required_skills"] == ["fragile", "age_check"]
    assert record["drop"] == {"lat": 12.975, "lon": 77.60, "address": "1 Test Road"}
    assert record["window_end"] == order.window_end
