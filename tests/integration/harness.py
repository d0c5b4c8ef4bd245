"""Helpers for the integration tests: producing events, waiting for what the system writes,
and building test events. (Kept out of conftest.py: test modules import it by a unique name.)"""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from infra.kafka import confluent_config, process_env, producer_config
from infra.settings import Settings
from schemas import Codec
from schemas import events as ev

CODEC = Codec()
# An order's window and a rider's shift run this long from now: whatever the hour a test starts at
# (up to 23:59 of the day, the shift near midnight ended minutes later and overtime rules applied)
DAY_LEFT = timedelta(hours=12)


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def stamp(event: ev.Event) -> int:
    """The record timestamp a producer of ours gives an event: its event time (the stream edge
    bounds event times by the record's)."""
    return int(event.occurred_at.timestamp() * 1000)


def new_id() -> str:
    return str(uuid.uuid4())


class Kafka:
    """Produce events and wait for what the system writes, reading from the start of a topic."""

    def __init__(self, settings: Settings) -> None:
        from confluent_kafka import Producer

        self.settings = settings
        self.producer = Producer(producer_config(settings))

    def produce(self, topic: str, event: ev.Event | None = None, *, raw: bytes | None = None, key: str | None = None) -> None:
        name = self.settings.topic(topic)
        value = raw if raw is not None else CODEC.encode(event, name)  # type: ignore[arg-type]
        self.producer.produce(name, key=(key or (event.key if event else "")).encode(), value=value,
                              timestamp=stamp(event) if event is not None else 0)
        self.producer.flush(10)

    def wait_for(self, topic: str, predicate: Callable[[Any], bool], *, count: int = 1, timeout_s: float = 60.0,
                 decode: bool = True) -> list[Any]:
        """Messages on ``topic`` (decoded events, or raw confluent messages) matching ``predicate``,
        once at least ``count`` have been seen; fails at the deadline."""
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        name = self.settings.topic(topic)
        consumer = Consumer(confluent_config(self.settings, **{"group.id": f"probe-{new_id()}", "enable.auto.commit": False}))
        try:
            parts = consumer.list_topics(name, timeout=10).topics[name].partitions
            consumer.assign([TopicPartition(name, p, OFFSET_BEGINNING) for p in parts])
            found: list[Any] = []
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                for m in consumer.consume(num_messages=1000, timeout=0.3):
                    if m.error():
                        continue
                    item = CODEC.decode(m.value()) if decode else m
                    if predicate(item):
                        found.append(item)
                if len(found) >= count:
                    return found
            raise AssertionError(f"{len(found)} of {count} expected messages on {name} after {timeout_s}s: {found[:3]}")
        finally:
            consumer.close()


def order_created(**overrides: Any) -> ev.OrderCreated:
    t = now()
    fields: dict[str, Any] = dict(
        event_id=new_id(), occurred_at=t, order_id=f"ord-{new_id()}", tracking_id="TRK1", hub_id="hub-test",
        mode=ev.DeliveryMode.LAST_MILE, drop=ev.Location(lat=12.975, lon=77.60, address="1 Test Road"),
        window_start=t, window_end=t + DAY_LEFT, service_time_s=60, weight_kg=1.0, volume_l=2.0, units=1)
    fields.update(overrides)
    return ev.OrderCreated(**fields)


def shift_started(hub_id: str, **overrides: Any) -> ev.RiderShiftStarted:
    t = now()
    fields: dict[str, Any] = dict(
        event_id=new_id(), occurred_at=t, rider_id=f"rider-{new_id()[:8]}", hub_id=hub_id,
        vehicle_type=ev.VehicleType.SCOOTER, capacity_weight_kg=30, capacity_volume_l=90, capacity_units=25,
        shift_start=t, shift_end=t + DAY_LEFT, start=ev.GeoPoint(lat=12.9716, lon=77.5946))
    fields.update(overrides)
    return ev.RiderShiftStarted(**fields)


def isolated_settings(settings: Settings, tag: str) -> Settings:
    """The session's broker with topics, groups and a database of this test's own."""
    run = uuid.uuid4().hex[:6]
    return dataclasses.replace(settings, topic_prefix=f"{tag}{run}.", app_id=f"{tag}{run}",
                               clickhouse_database=f"{tag}_{run}")


ROLES = ("orders", "dispatch", "notifications", "tracking")


def start_role(settings: Settings, role: str, log: Path, **env: str) -> subprocess.Popen[bytes]:
    """One real worker process of ``role`` (``python -m streams ROLE``), logging to ``log``."""
    args = [sys.executable, "-m", "streams", role] + ([] if role == "tracking" else ["-l", "info"])
    with open(log, "ab") as out:
        return subprocess.Popen(args, env={**process_env(settings), **env}, stdout=out, stderr=subprocess.STDOUT,
                                cwd=settings.data_dir)


def stop(*procs: subprocess.Popen[bytes]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def every_record(bootstrap: str, prefixes: tuple[str, ...], idle_s: float = 2.0) -> Iterator[Any]:
    """Every record of every topic whose name starts with one of ``prefixes``, from the start, until
    nothing new came for ``idle_s`` (the embedded broker reports end offsets short)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    settings = Settings.from_env({}, kafka_bootstrap=bootstrap)
    consumer = Consumer(confluent_config(settings, **{"group.id": f"audit-{new_id()}", "enable.auto.commit": False}))
    try:
        metadata = consumer.list_topics(timeout=10)
        topics = {t for t in metadata.topics if t.startswith(prefixes)}
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t in topics for p in metadata.topics[t].partitions])
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < idle_s:
            batch = consumer.consume(num_messages=5000, timeout=0.3)
            if batch:
                quiet_since = time.monotonic()
            yield from (m for m in batch if not m.error())
    finally:
        consumer.close()
