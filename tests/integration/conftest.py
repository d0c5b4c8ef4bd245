"""Real parts only: one Tansu broker, one Faust worker process and one chdb engine per session
(chdb allows one engine per process; Faust takes seconds to join). Tests isolate themselves
with unique hubs, orders, topic prefixes, consumer groups and databases."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from infra.clickhouse import connect
from infra.kafka import EmbeddedBroker, confluent_config, ensure_topics, process_env, producer_config
from infra.settings import Settings
from schemas import Codec
from schemas import events as ev

pytestmark = pytest.mark.integration
CODEC = Codec()


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def new_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(log_path=tmp_path_factory.mktemp("broker") / "tansu.log") as b:
        yield b


@pytest.fixture(scope="session")
def settings(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    run = uuid.uuid4().hex[:8]
    return Settings.from_env(
        {}, kafka_bootstrap=broker.bootstrap, topic_prefix=f"it{run}.", app_id=f"it{run}",
        data_dir=str(tmp_path_factory.mktemp("data")), otp_key="integration-test-key",
        dispatch_batch_window_s=0.5, dispatch_time_limit_s=1.0, kafka_partitions=3)


@pytest.fixture(scope="session")
def chdb_client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    s = Settings.from_env({}, data_dir=str(tmp_path_factory.mktemp("ch")))
    return connect(s)


class Kafka:
    """Produce events and wait for what the system writes, reading from the start of a topic."""

    def __init__(self, settings: Settings) -> None:
        from confluent_kafka import Producer

        self.settings = settings
        self.producer = Producer(producer_config(settings))

    def produce(self, topic: str, event: ev.Event | None = None, *, raw: bytes | None = None, key: str | None = None) -> None:
        name = self.settings.topic(topic)
        value = raw if raw is not None else CODEC.encode(event, name)  # type: ignore[arg-type]
        self.producer.produce(name, key=(key or (event.key if event else "")).encode(), value=value)
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
            raise AssertionError(f"{len(found)} of {count} expected messages on {name} after {timeout_s}s: {found}")
        finally:
            consumer.close()


@pytest.fixture(scope="session")
def kafka(settings: Settings) -> Kafka:
    return Kafka(settings)


@pytest.fixture(scope="session")
def worker(settings: Settings, kafka: Kafka) -> Iterator[subprocess.Popen[bytes]]:
    """The real Faust worker, started once; ready when it has put a probe order on the ledger."""
    ensure_topics(settings)
    log_path = Path(settings.data_dir) / "worker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "streams", "worker", "-l", "info"], env=process_env(settings),
                                stdout=log, stderr=subprocess.STDOUT, cwd=settings.data_dir)
    try:
        probe = order_created(hub_id=f"probe-{new_id()}")
        kafka.produce("inbox", probe)
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("worker never became ready:\n" + log_path.read_text()[-5000:])
            try:
                kafka.wait_for("orders", lambda e: e.event_id == probe.event_id, timeout_s=3)
                break
            except AssertionError:
                continue
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if os.environ.get("MILESTREAM_TEST_SHOW_WORKER_LOG"):
            print(log_path.read_text()[-20000:])


def order_created(**overrides: Any) -> ev.OrderCreated:
    t = now()
    fields: dict[str, Any] = dict(
        event_id=new_id(), occurred_at=t, order_id=f"ord-{new_id()}", tracking_id="TRK1", hub_id="hub-test",
        mode=ev.DeliveryMode.LAST_MILE, drop=ev.Location(lat=12.975, lon=77.60, address="1 Test Road"),
        window_start=t, window_end=t.replace(hour=23, minute=59), service_time_s=60, weight_kg=1.0, volume_l=2.0, units=1)
    fields.update(overrides)
    return ev.OrderCreated(**fields)


def shift_started(hub_id: str, **overrides: Any) -> ev.RiderShiftStarted:
    t = now()
    fields: dict[str, Any] = dict(
        event_id=new_id(), occurred_at=t, rider_id=f"rider-{new_id()[:8]}", hub_id=hub_id,
        vehicle_type=ev.VehicleType.SCOOTER, capacity_weight_kg=30, capacity_volume_l=90, capacity_units=25,
        shift_start=t, shift_end=t.replace(hour=23, minute=59), start=ev.GeoPoint(lat=12.9716, lon=77.5946))
    fields.update(overrides)
    return ev.RiderShiftStarted(**fields)


def isolated_settings(settings: Settings, tag: str) -> Settings:
    """The session's broker with topics, groups and a database of this test's own."""
    run = uuid.uuid4().hex[:6]
    return dataclasses.replace(settings, topic_prefix=f"{tag}{run}.", app_id=f"{tag}{run}",
                               clickhouse_database=f"{tag}_{run}")
