"""Hostile input on every input topic (the small corpus of ``milestream bench hostile``: each variant
once), then valid traffic, on real worker processes of their own: every hostile message is
dead-lettered exactly once with the kind its case names, none reaches the ledger, no worker exits,
duplicates are dropped silently, and the valid traffic after it all reaches its end state."""

from __future__ import annotations

import resource
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import ROLES, Kafka, isolated_settings, new_id, order_created, start_role, stop

from benchmarks import hostile
from infra.kafka import confluent_config, ensure_topics
from infra.settings import Settings

# A tracker without a stop limit builds an N x N matrix for a huge route (28k stops: about 25 GB):
# on a shared machine the workers get a bound, so that such a bug fails this test and not the machine.
MEMORY_BOUND = 8 << 30


@pytest.fixture(scope="module")
def system(settings: Settings) -> Iterator[tuple[Settings, dict[str, subprocess.Popen[bytes]]]]:
    """Worker processes of every role on topics of their own: hostile input must not reach the
    session's workers, which other tests share."""
    s = isolated_settings(settings, "hostile")
    ensure_topics(s)
    logs = Path(s.data_dir) / s.app_id
    logs.mkdir(parents=True, exist_ok=True)
    procs = {role: start_role(s, role, logs / f"{role}.log") for role in ROLES}
    for proc in procs.values():
        resource.prlimit(proc.pid, resource.RLIMIT_AS, (MEMORY_BOUND, MEMORY_BOUND))
    try:
        kafka = Kafka(s)
        probe = order_created(hub_id=f"probe-{new_id()}")
        kafka.produce("inbox", probe)
        deadline = time.monotonic() + 90
        while True:
            dead = [r for r, p in procs.items() if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise AssertionError(f"workers never became ready (exited: {dead})")
            try:
                kafka.wait_for("orders", lambda e: e.event_id == probe.event_id, timeout_s=3)
                break
            except AssertionError:
                continue
        yield s, procs
    finally:
        stop(*procs.values())


def test_hostile_input_is_dead_lettered_once_and_valid_traffic_goes_on(
        system: tuple[Settings, dict[str, subprocess.Popen[bytes]]]) -> None:
    s, procs = system
    target = hostile.Target(client_config=confluent_config(s), topic=s.topic,
                            exits=lambda: [role for role, p in procs.items() if p.poll() is not None])
    result = hostile.run(target, messages=0, seed=1, timeout_s=300, idle_s=45)
    checklist = "\n".join(hostile.report(result))
    assert result["hostile"] >= 250, checklist  # every variant, less the 1 MiB ones a broker may refuse
    assert result["duplicates"] == 4, checklist
    assert hostile.problems(result) == [], checklist
