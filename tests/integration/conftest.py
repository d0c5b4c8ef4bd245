"""Real parts only: one Tansu broker, one process per worker role and one chdb engine per session
(chdb allows one engine per process; Faust takes seconds to join). Tests isolate themselves
with unique hubs, orders, topic prefixes, consumer groups and databases."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import ROLES, Kafka, new_id, order_created, start_role, stop

from infra.clickhouse import connect
from infra.kafka import EmbeddedBroker, ensure_topics
from infra.settings import Settings


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(log_path=tmp_path_factory.mktemp("broker") / "tansu.log") as b:
        yield b


@pytest.fixture(scope="session")
def settings(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    run = uuid.uuid4().hex[:8]
    return Settings.from_env(
        {}, kafka_bootstrap=broker.bootstrap, topic_prefix=f"it{run}.", app_id=f"it{run}",
        data_dir=str(tmp_path_factory.mktemp("data")), otp_key=secrets.token_hex(32),
        dispatch_batch_window_s=0.5, dispatch_time_limit_s=1.0, kafka_partitions=3)


@pytest.fixture(scope="session")
def chdb_client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    s = Settings.from_env({}, data_dir=str(tmp_path_factory.mktemp("ch")))
    return connect(s)


@pytest.fixture(scope="session")
def kafka(settings: Settings) -> Kafka:
    return Kafka(settings)


@pytest.fixture(scope="session")
def worker(settings: Settings, kafka: Kafka) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """One real process of every worker role, started once; ready when the orders worker has put a
    probe order on the ledger."""
    ensure_topics(settings)
    logs = Path(settings.data_dir)
    procs = {role: start_role(settings, role, logs / f"{role}.log") for role in ROLES}
    try:
        probe = order_created(hub_id=f"probe-{new_id()}")
        kafka.produce("inbox", probe)
        deadline = time.monotonic() + 90
        while True:
            dead = [r for r, p in procs.items() if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise AssertionError(f"workers never became ready (exited: {dead}):\n"
                                     + "\n".join((logs / f"{r}.log").read_text()[-3000:] for r in procs))
            try:
                kafka.wait_for("orders", lambda e: e.event_id == probe.event_id, timeout_s=3)
                break
            except AssertionError:
                continue
        yield procs
    finally:
        stop(*procs.values())
        if os.environ.get("MILESTREAM_TEST_SHOW_WORKER_LOG"):
            for role in procs:
                print(f"--- {role}\n" + (logs / f"{role}.log").read_text()[-20000:])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.integration)
