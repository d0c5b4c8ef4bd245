"""A Faust worker killed mid-stream and restarted recovers its tables from the changelog:
orders it accepted before the kill are still known after it (a lost state would dead-letter
their next step as 'unknown order'), and nothing lands on the ledger twice under new ids."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from harness import Kafka, isolated_settings, new_id, now, order_created, start_role

from infra.kafka import ensure_topics
from infra.settings import Settings
from infra.stack import count_events
from schemas import events as ev


def _start(settings: Settings, log: Path, **env: str) -> subprocess.Popen[bytes]:
    return start_role(settings, "orders", log, **env)


def test_killed_worker_recovers_order_state_and_duplicates_nothing(settings: Settings) -> None:
    own = isolated_settings(settings, "restart")
    ensure_topics(own)
    kafka = Kafka(own)
    log = Path(own.data_dir) / f"{own.app_id}.log"
    orders = [order_created(hub_id="hub-r") for _ in range(60)]
    # Frequent commits put the committed offsets mid-batch when the worker dies: the case in which
    # Faust 0.15.3's recovery dropped records (see streams/faust_recovery.py).
    worker = _start(own, log, BROKER_COMMIT_INTERVAL="0.3")
    try:
        for o in orders:
            kafka.produce("inbox", o)
        kafka.wait_for("orders", lambda e: isinstance(e, ev.OrderCreated) and e.order_id == orders[-1].order_id,
                       timeout_s=90)
        t = now()
        assigned = [ev.OrderAssigned(event_id=new_id(), occurred_at=t, order_id=o.order_id, rider_id="r1", route_id="R",
                                     sequence=i + 1, planned_arrival=t) for i, o in enumerate(orders)]
        for a in assigned[:30]:
            kafka.produce("inbox", a)
        kafka.wait_for("orders", lambda e: isinstance(e, ev.OrderAssigned), count=1, timeout_s=30)
        os.kill(worker.pid, signal.SIGKILL)  # mid-stream, no clean shutdown
        worker.wait(10)
        for a in assigned[30:]:
            kafka.produce("inbox", a)
        worker = _start(own, log)
        ledger = kafka.wait_for("orders", lambda e: isinstance(e, ev.OrderAssigned), count=len(assigned), timeout_s=40)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
    assert {e.event_id for e in ledger} == {a.event_id for a in assigned}
    created = kafka.wait_for("orders", lambda e: isinstance(e, ev.OrderCreated), count=len(orders))
    assert {e.event_id for e in created} == {o.event_id for o in orders}
    assert count_events(own, [own.topic("dead-letter")], first_s=3.0) == 0  # no "unknown order": state was recovered
