"""A Faust worker killed mid-stream and restarted recovers its tables from the changelog:
orders it accepted before the kill are still known after it (a lost state would dead-letter
their next step as 'unknown order'), and nothing lands on the ledger twice under new ids."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from harness import Kafka, isolated_settings, new_id, now, order_created

from infra.kafka import ensure_topics, process_env
from infra.settings import Settings
from infra.stack import count_events
from schemas import events as ev


def _start(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "streams", "worker", "-l", "info"], env=process_env(settings),
                                stdout=out, stderr=subprocess.STDOUT, cwd=settings.data_dir)


def test_killed_worker_recovers_order_state_and_duplicates_nothing(settings: Settings) -> None:
    own = isolated_settings(settings, "restart")
    ensure_topics(own)
    kafka = Kafka(own)
    log = Path(own.data_dir) / f"{own.app_id}.log"
    orders = [order_created(hub_id="hub-r") for _ in range(60)]
    worker = _start(own, log)
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
        try:
            ledger = kafka.wait_for("orders", lambda e: isinstance(e, ev.OrderAssigned), count=len(assigned), timeout_s=40)
        except AssertionError:
            from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

            from infra.kafka import confluent_config
            got = {e.event_id for e in kafka.wait_for("orders", lambda e: isinstance(e, ev.OrderAssigned), count=1)}
            missing = {a.event_id for a in assigned} - got
            idx = {a.event_id: i for i, a in enumerate(assigned)}
            c = Consumer(confluent_config(own, **{"group.id": new_id()}))
            topic = own.topic("inbox")
            c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(3)])
            where = []
            while True:
                ms = c.consume(1000, timeout=1)
                if not ms: break
                for m in ms:
                    try:
                        e = __import__("harness").CODEC.decode(m.value())
                    except Exception:
                        continue
                    if e.event_id in missing:
                        where.append((m.partition(), m.offset(), idx[e.event_id]))
            g = Consumer(confluent_config(own, **{"group.id": own.app_id}))
            comm = g.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
            print("MISSING (partition, offset, index):", sorted(where))
            print("COMMITTED:", [(t.partition, t.offset) for t in comm])
            import asyncio

            from aiokafka import AIOKafkaConsumer
            from aiokafka import TopicPartition as ATP

            from infra.kafka import aiokafka_config
            async def probe():
                out = {}
                for t in comm:
                    c2 = AIOKafkaConsumer(**aiokafka_config(own), enable_auto_commit=False)
                    await c2.start()
                    tp = ATP(topic, t.partition)
                    c2.assign([tp]); c2.seek(tp, t.offset)
                    got = await c2.getmany(tp, timeout_ms=3000)
                    out[t.partition] = [r.offset for r in got.get(tp, [])][:5]
                    await c2.stop()
                return out
            print("AIOKAFKA FROM COMMITTED:", asyncio.run(probe()))
            for t in comm:
                c3 = Consumer(confluent_config(own, **{"group.id": new_id()}))
                c3.assign([TopicPartition(topic, t.partition, t.offset)])
                print("LIBRDKAFKA FROM COMMITTED", t.partition, [m.offset() for m in c3.consume(5, timeout=3)])
                c3.close()
            raise
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
    assert {e.event_id for e in ledger} == {a.event_id for a in assigned}
    created = kafka.wait_for("orders", lambda e: isinstance(e, ev.OrderCreated), count=len(orders))
    assert {e.event_id for e in created} == {o.event_id for o in orders}
    assert count_events(own, [own.topic("dead-letter")]) == 0  # no "unknown order": state was recovered
