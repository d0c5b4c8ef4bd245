"""``milestream bench broker``: what one consumer tailing a partition costs the broker as the
partition's record batches pile up, beside the same records in fewer, larger batches.

Why it exists: on a loaded operating day the embedded broker (Tansu, memory storage) took more
CPU than any worker, and its cost followed the number of record batches in the partitions that
consumers tail, not the number of records. A producer that sends one record per batch (a short
``linger.ms`` and a trickle of events) makes every later fetch dearer. This bench keeps that
finding re-runnable and shows whether a broker (another Tansu, or Kafka by configuration) has it.

Each case is a fresh one-partition topic filled with ``records`` records in batches of
``per_batch``, then one consumer (our workers' fetch settings) tails it from the end while a
producer trickles ``rate`` records per second, one per batch, for ``window_s`` seconds. Measured
over the window: the broker's CPU in cores (embedded broker only: its process's clock ticks)
and each trickled record's latency from its produce time to its arrival at the consumer. The
first case is an empty partition: the other cases' cores and latencies are also given as ratios
to it."""

from __future__ import annotations

import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.kafka import FETCH_WAIT_MS, TopicPlan, ensure_topics

DEFAULT_CASES = ((0, 1), (20_000, 1), (60_000, 1), (60_000, 10))


@dataclass(frozen=True)
class Case:
    records: int  # already in the partition when the window starts
    per_batch: int  # records per batch they were produced in

    @property
    def batches(self) -> int:
        return -(-self.records // self.per_batch)

    @property
    def label(self) -> str:
        return f"{self.records:,} records in {self.batches:,} batches"


def parse_cases(text: str) -> list[Case]:
    """``"0x1,60000x1,60000x10"`` (records x records per batch) -> cases; a clear error otherwise."""
    cases = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        records, sep, per_batch = part.lower().partition("x")
        if not sep or not records.isdigit() or not per_batch.isdigit() or int(per_batch) < 1:
            raise ValueError(f"case {part!r}: expected RECORDSxPER_BATCH, e.g. 60000x1 (per batch at least 1)")
        cases.append(Case(int(records), int(per_batch)))
    if not cases:
        raise ValueError("no cases given: expected e.g. 0x1,60000x1,60000x10")
    return cases


def cpu_seconds(stat: str, ticks_per_s: float) -> float:
    """User plus system CPU seconds from the text of ``/proc/PID/stat``. The command name (field
    2) is in parentheses and may hold spaces and parentheses itself, so fields count from the
    last ``)``."""
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / ticks_per_s  # utime, stime: fields 14 and 15


def process_cpu_s(pid: int) -> float:
    return cpu_seconds(Path(f"/proc/{pid}/stat").read_text(), float(os.sysconf("SC_CLK_TCK")))


def _fill(client: dict[str, Any], topic: str, case: Case, log: Callable[[str], None]) -> None:
    """``case.records`` records in batches of exactly ``case.per_batch``: each batch is flushed
    before the next is queued, so the client cannot merge them."""
    from confluent_kafka import Producer

    linger_ms = 0 if case.per_batch == 1 else 10_000  # a batch of several leaves at its flush
    producer = Producer({**client, "linger.ms": linger_ms, "batch.num.messages": case.per_batch, "acks": 1})
    value = b"x" * 100
    started = time.monotonic()
    for b in range(case.batches):
        for _ in range(min(case.per_batch, case.records - b * case.per_batch)):
            producer.produce(topic, value=value, partition=0)
        if case.per_batch > 1:
            producer.flush(30)
        else:
            producer.poll(0)
        if b and b % 20_000 == 0:
            log(f"    {b:,} of {case.batches:,} batches in ({time.monotonic() - started:.0f} s)")
    remaining = producer.flush(120)
    if remaining:
        raise RuntimeError(f"{remaining} records of the backlog were not acknowledged within 120 s")


TRICKLE = b"t" * 100  # the trickle's records: the only ones timed


def _tail(client: dict[str, Any], topic: str, rate: float, window_s: float, broker_pid: int | None) -> dict[str, Any]:
    """One consumer from the end of the partition, a trickle of one-record batches: latencies and
    the broker's cores over the window."""
    from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition

    consumer = Consumer({**client, "group.id": f"bench-broker-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False,
                         "fetch.wait.max.ms": FETCH_WAIT_MS})
    consumer.assign([TopicPartition(topic, 0, OFFSET_END)])
    consumer.consume(num_messages=1, timeout=2.0)  # the fetch position resolved before the trickle starts
    producer = Producer({**client, "linger.ms": 0, "acks": 1})
    sent = int(rate * window_s)
    latencies_ms: list[float] = []
    done = threading.Event()

    def trickle() -> None:
        start = time.monotonic()
        for k in range(sent):
            time.sleep(max(0.0, start + k / rate - time.monotonic()))
            producer.produce(topic, value=TRICKLE, partition=0)  # stamped now (CreateTime)
            producer.poll(0)
        producer.flush(30)
        done.set()

    cpu_before = process_cpu_s(broker_pid) if broker_pid else None
    wall_before = time.monotonic()
    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    deadline = wall_before + window_s + 60
    try:
        while len(latencies_ms) < sent and time.monotonic() < deadline:
            for m in consumer.consume(num_messages=500, timeout=0.2):
                if m.error() is None and m.value() == TRICKLE:  # not a backlog record the fetch began in
                    latencies_ms.append(time.time() * 1000 - m.timestamp()[1])
        wall = time.monotonic() - wall_before
        cpu = process_cpu_s(broker_pid) - cpu_before if broker_pid and cpu_before is not None else None
    finally:
        done.wait(30)
        consumer.close()
    latencies_ms.sort()
    return {"sent": sent, "received": len(latencies_ms),
            "broker_cores": round(cpu / wall, 3) if cpu is not None else None,
            "p50_ms": round(statistics.median(latencies_ms), 1) if latencies_ms else None,
            "p99_ms": round(latencies_ms[int(0.99 * (len(latencies_ms) - 1))], 1) if latencies_ms else None}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def run(client: dict[str, Any], cases: Sequence[Case] = tuple(Case(*c) for c in DEFAULT_CASES), rate: float = 30.0,
        window_s: float = 20.0, broker_pid: int | None = None,
        log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Every case in turn on a topic of its own; ratios against the first case."""
    results = []
    for case in cases:
        topic = f"bench-broker-{uuid.uuid4().hex[:8]}"
        ensure_topics(client, [TopicPlan(topic, 1, 1, {})])
        log(f"  {case.label}: filling")
        _fill(client, topic, case, log)
        log(f"  {case.label}: tailing {window_s:.0f} s at {rate:g} records/s")
        results.append({"records": case.records, "per_batch": case.per_batch, "batches": case.batches,
                        **_tail(client, topic, rate, window_s, broker_pid)})
    base = results[0]
    for r in results:
        r["cores_ratio"] = _ratio(r["broker_cores"], base["broker_cores"])
        r["p50_ratio"] = _ratio(r["p50_ms"], base["p50_ms"])
    return {"rate": rate, "window_s": window_s, "fetch_wait_ms": FETCH_WAIT_MS, "cases": results,
            "cpu_measured": broker_pid is not None}


def report(result: dict[str, Any]) -> list[str]:
    lines = [f"one consumer tailing one partition, {result['rate']:g} records/s trickled for {result['window_s']:g} s"
             f" (fetch.wait.max.ms {result['fetch_wait_ms']}); ratios against the first case",
             f"{'records':>9} {'per batch':>9} {'batches':>9} {'broker cores':>12} {'x':>6} {'p50 ms':>8} {'x':>6}"
             f" {'p99 ms':>8} {'received':>9}"]

    def show(x: Any) -> str:
        return "-" if x is None else f"{x:g}"

    for c in result["cases"]:
        lines.append(f"{c['records']:>9,} {c['per_batch']:>9} {c['batches']:>9,} {show(c['broker_cores']):>12}"
                     f" {show(c['cores_ratio']):>6} {show(c['p50_ms']):>8} {show(c['p50_ratio']):>6}"
                     f" {show(c['p99_ms']):>8} {c['received']:>4}/{c['sent']}")
    if not result["cpu_measured"]:
        lines.append("broker CPU is measured on the embedded broker only (its process is ours)")
    return lines
