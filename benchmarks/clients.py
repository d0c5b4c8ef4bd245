"""``milestream bench clients``: kafka-python beside confluent-kafka on the paths we use Kafka for.

On one broker (its bootstrap and each client's connection settings are passed in), one backlog of
encoded ``GpsPing`` events from a :mod:`simulator.truth` day, keyed by rider, on a topic of
``partitions`` partitions. Per run, the two clients take turns (the order alternates between runs)
on three paths, each timed from its first record to its last acknowledgement or commit:

- **tracker**: a consumer group reads the backlog in batches (``tracker_batch``), decodes every
  record with :meth:`schemas.Codec.decode` and produces one small output per record (acks=all);
  at the end it waits for the acks and commits. The client's part of the tracking worker, with
  our decode but without the tracker's own work;
- **produce**: the backlog produced again with acks=all and flushed (the simulator, the demo);
- **projection**: the partitions assigned, batches of up to ``projection_batch`` consumed and
  committed after each batch, nothing else: the client's share of the projection writer (the
  decode and the ClickHouse insert come on top); counted from the first batch on, that batch
  excluded.

Each client creates its own output topics with its own admin client (timed, ``admin_ms``).
"""

from __future__ import annotations

import math
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from schemas import Codec
from simulator.truth import truth_day
from streams.kafka import FETCH_WAIT_MS

CLIENTS = ("confluent-kafka", "kafka-python")
PATHS = ("tracker", "produce", "projection")
PINGS_PER_RIDER = 400  # a truth day's rider with 3 stops sends about 410 pings
PATH_TIMEOUT_S = 120.0
# How long a consume call may wait to fill its batch (the tracking worker's own wait): the last,
# partial batch of the backlog costs at most this much (the projection writer waits up to 0.5 s).
POLL_S = 0.01
POLL_MS = 10
KIB = 1024

Message = tuple[bytes, bytes]  # (key, value)

# What each client is given on top of its connection settings. confluent-kafka's are the tracking
# worker's and the projection writer's own; kafka-python's are chosen to do its best on the same work:
# the same batch sizes, acks and linger, larger producer batches and tracker fetches (fewer requests,
# each paid for in Python), CRC checks off as librdkafka has them by default, no client metrics.
CONFLUENT_PRODUCER = {"partitioner": "murmur2_random", "acks": "all", "enable.idempotence": False,
                      "linger.ms": 2, "batch.num.messages": 10000, "socket.nagle.disable": True,
                      "queue.buffering.max.messages": 1_000_000, "delivery.report.only.error": True}
CONFLUENT_CONSUMER = {"enable.auto.commit": False, "auto.offset.reset": "earliest", "fetch.wait.max.ms": FETCH_WAIT_MS,
                      "socket.nagle.disable": True, "queued.max.messages.kbytes": 65536,
                      "partition.assignment.strategy": "range", "session.timeout.ms": 6000,
                      "heartbeat.interval.ms": 1000}
CONFLUENT_PROJECTION = {"enable.auto.commit": False, "auto.offset.reset": "earliest",
                        "enable.partition.eof": False}
KAFKA_PYTHON_PRODUCER = {"acks": "all", "enable_idempotence": False, "linger_ms": 2, "batch_size": 256 * KIB,
                         "max_request_size": 4 * KIB * KIB, "metrics_enabled": False}
KAFKA_PYTHON_CONSUMER = {"enable_auto_commit": False, "auto_offset_reset": "earliest", "fetch_max_wait_ms": FETCH_WAIT_MS,
                         "max_partition_fetch_bytes": 4 * KIB * KIB, "fetch_max_bytes": 64 * KIB * KIB,
                         "check_crcs": False, "metrics_enabled": False, "session_timeout_ms": 6000,
                         "heartbeat_interval_ms": 1000}
# (its fetch sizes stay at their defaults here, 1 MiB a partition: with 4 MiB it consumed half as fast)
KAFKA_PYTHON_PROJECTION = {"enable_auto_commit": False, "auto_offset_reset": "earliest", "check_crcs": False,
                           "metrics_enabled": False}


def backlog(messages: int, seed: int = 1, stops: int = 3) -> list[Message]:
    """The first ``messages`` pings of a simulated day, in delivery order, encoded as on the gps topic.

    Riders are added until the day has enough pings; the same arguments give the same bytes."""
    if messages < 1:
        raise ValueError(f"messages={messages} must be at least 1")
    riders = max(2, math.ceil(messages / PINGS_PER_RIDER))
    while True:
        day = truth_day(seed, riders=riders, stops_per_rider=stops, noise_m=30.0)
        if len(day.pings) >= messages:
            break
        riders *= 2
    codec = Codec()
    return [(o.ping.rider_id.encode(), codec.encode(o.ping)) for o in day.pings[:messages]]


def median_ratio(figures: dict[str, dict[str, list[float]]], path: str) -> float:
    """kafka-python's median over confluent-kafka's on one path."""
    return statistics.median(figures["kafka-python"][path]) / statistics.median(figures["confluent-kafka"][path])


# -- confluent-kafka --------------------------------------------------------------------------------


class _Confluent:
    name = "confluent-kafka"

    def __init__(self, conf: dict[str, Any]) -> None:
        self.conf = conf

    def create_topics(self, names: Sequence[str], partitions: int) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({**self.conf, "log_level": 4})  # not its notice about unserved events at exit
        for fut in admin.create_topics([NewTopic(n, partitions, 1) for n in names]).values():
            fut.result(30)

    def _producer(self, failures: list[str], **extra: Any) -> Any:
        from confluent_kafka import Producer

        def delivered(err: Any, _msg: Any) -> None:
            if err is not None:
                failures.append(str(err))

        return Producer({**self.conf, **CONFLUENT_PRODUCER, "on_delivery": delivered, **extra})

    def tracker(self, topic: str, out: str, expected: int, batch: int) -> float:
        from confluent_kafka import Consumer

        failures: list[str] = []
        producer = self._producer(failures)
        consumer = Consumer({**self.conf, **CONFLUENT_CONSUMER, "group.id": f"clients-{uuid.uuid4().hex[:8]}"})
        decode = Codec().decode
        consumer.subscribe([topic])
        try:
            n, started = 0, 0.0
            deadline = time.monotonic() + PATH_TIMEOUT_S
            while n < expected and time.monotonic() < deadline:
                messages = consumer.consume(num_messages=batch, timeout=POLL_S)
                if messages and not started:
                    started = time.perf_counter()
                for m in messages:
                    if m.error():
                        continue
                    event = decode(m.value())
                    producer.produce(out, event.event_id.encode(), m.key())
                    n += 1
                producer.poll(0)
            producer.flush(60)
            consumer.commit(asynchronous=False)
            elapsed = time.perf_counter() - started
        finally:
            consumer.close()
        _check(self.name, "tracker", n, expected, failures)
        return n / elapsed

    def produce(self, messages: Sequence[Message], out: str) -> float:
        failures: list[str] = []
        producer = self._producer(failures, **{"linger.ms": 5})
        started = time.perf_counter()
        for i, (key, value) in enumerate(messages):
            producer.produce(out, value, key)
            if i % 10000 == 0:
                producer.poll(0)
        producer.flush(60)
        elapsed = time.perf_counter() - started
        _check(self.name, "produce", len(messages), len(messages), failures)
        return len(messages) / elapsed

    def projection(self, topic: str, partitions: int, expected: int, batch: int) -> float:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        consumer = Consumer({**self.conf, **CONFLUENT_PROJECTION, "group.id": f"clients-{uuid.uuid4().hex[:8]}"})
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        try:
            n, first, started = 0, 0, 0.0
            deadline = time.monotonic() + PATH_TIMEOUT_S
            while n < expected and time.monotonic() < deadline:
                messages = [m for m in consumer.consume(num_messages=batch, timeout=POLL_S) if not m.error()]
                if not messages:
                    continue
                if not started:
                    started, first = time.perf_counter(), len(messages)
                last: dict[int, int] = {}
                for m in messages:
                    last[m.partition()] = m.offset()
                consumer.commit(offsets=[TopicPartition(topic, p, o + 1) for p, o in last.items()],
                                asynchronous=False)
                n += len(messages)
            elapsed = time.perf_counter() - started
        finally:
            consumer.close()
        _check(self.name, "projection", n, expected, [])
        return _after_first(n, first, elapsed)


# -- kafka-python -----------------------------------------------------------------------------------


class _KafkaPython:
    name = "kafka-python"

    def __init__(self, conf: dict[str, Any]) -> None:
        self.conf = conf

    def create_topics(self, names: Sequence[str], partitions: int) -> None:
        from kafka.admin import KafkaAdminClient, NewTopic

        admin = KafkaAdminClient(**self.conf)
        try:
            admin.create_topics([NewTopic(n, partitions, 1) for n in names], timeout_ms=30000)
        finally:
            admin.close()

    def _producer(self, **extra: Any) -> Any:
        from kafka import KafkaProducer

        return KafkaProducer(**self.conf, **{**KAFKA_PYTHON_PRODUCER, **extra})

    def tracker(self, topic: str, out: str, expected: int, batch: int) -> float:
        from kafka import KafkaConsumer

        failures: list[str] = []
        failed = lambda exc: failures.append(repr(exc))  # noqa: E731
        producer = self._producer()
        consumer = KafkaConsumer(**self.conf, **KAFKA_PYTHON_CONSUMER, max_poll_records=batch,
                                 group_id=f"clients-{uuid.uuid4().hex[:8]}")
        decode = Codec().decode
        send = producer.send
        consumer.subscribe([topic])
        try:
            n, started = 0, 0.0
            deadline = time.monotonic() + PATH_TIMEOUT_S
            while n < expected and time.monotonic() < deadline:
                polled = consumer.poll(timeout_ms=POLL_MS, max_records=batch)
                if polled and not started:
                    started = time.perf_counter()
                for records in polled.values():
                    for r in records:
                        event = decode(r.value)
                        send(out, value=event.event_id.encode(), key=r.key).add_errback(failed)
                    n += len(records)
            producer.flush(60)
            consumer.commit()
            elapsed = time.perf_counter() - started
        finally:
            consumer.close()
            producer.close(10)
        _check(self.name, "tracker", n, expected, failures)
        return n / elapsed

    def produce(self, messages: Sequence[Message], out: str) -> float:
        failures: list[str] = []
        failed = lambda exc: failures.append(repr(exc))  # noqa: E731
        producer = self._producer(linger_ms=5)
        send = producer.send
        started = time.perf_counter()
        for key, value in messages:
            send(out, value=value, key=key).add_errback(failed)
        producer.flush(60)
        elapsed = time.perf_counter() - started
        producer.close(10)
        _check(self.name, "produce", len(messages), len(messages), failures)
        return len(messages) / elapsed

    def projection(self, topic: str, partitions: int, expected: int, batch: int) -> float:
        from kafka import KafkaConsumer, TopicPartition
        from kafka.structs import OffsetAndMetadata

        consumer = KafkaConsumer(**self.conf, **KAFKA_PYTHON_PROJECTION, max_poll_records=batch,
                                 group_id=f"clients-{uuid.uuid4().hex[:8]}")
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        try:
            n, first, started = 0, 0, 0.0
            deadline = time.monotonic() + PATH_TIMEOUT_S
            while n < expected and time.monotonic() < deadline:
                polled = consumer.poll(timeout_ms=POLL_MS, max_records=batch)
                if not polled:
                    continue
                got = sum(len(records) for records in polled.values())
                if not started:
                    started, first = time.perf_counter(), got
                consumer.commit({tp: OffsetAndMetadata(records[-1].offset + 1, "", -1)
                                 for tp, records in polled.items()})
                n += got
            elapsed = time.perf_counter() - started
        finally:
            consumer.close()
        _check(self.name, "projection", n, expected, [])
        return _after_first(n, first, elapsed)


def _after_first(n: int, first: int, elapsed: float) -> float:
    """Records per second after the first batch: with nothing else to do, a consumer has fetched
    much of the backlog while it waited for that batch, so counting it would be counting free records."""
    if n <= first:
        raise RuntimeError(f"one batch held all {n} records: give the projection path more messages than a batch")
    return (n - first) / elapsed


def _check(client: str, path: str, done: int, expected: int, failures: list[str]) -> None:
    if done < expected or failures:
        raise RuntimeError(f"{client} {path}: {done} of {expected} records, {len(failures)} failed deliveries "
                           f"{failures[:3]}")


def run(confluent: dict[str, Any], kafka_python: dict[str, Any], *, messages: int = 100_000, runs: int = 3,
        seed: int = 1, partitions: int = 3, tracker_batch: int = 5000, projection_batch: int = 20000,
        log: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """``confluent``: librdkafka settings to connect (``bootstrap.servers``, security); ``kafka_python``:
    the same as kafka-python keyword arguments (``bootstrap_servers``, ...)."""
    if runs < 1:
        raise ValueError(f"runs={runs} must be at least 1")
    log(f"simulating {messages:,} pings (seed {seed})")
    pings = backlog(messages, seed)
    clients = {c.name: c for c in (_Confluent(confluent), _KafkaPython(kafka_python))}
    tag = uuid.uuid4().hex[:6]
    source = f"bench-clients-{tag}.gps"
    clients["confluent-kafka"].create_topics([source], partitions)
    log(f"backlog: {len(pings):,} pings on {source} ({partitions} partitions)")
    clients["confluent-kafka"].produce(pings, source)

    figures: dict[str, dict[str, list[float]]] = {c: {p: [] for p in (*PATHS, "admin_ms")} for c in CLIENTS}
    for k in range(runs):
        order = CLIENTS if k % 2 == 0 else CLIENTS[::-1]
        for name in order:
            client = clients[name]
            out, produced = f"{source}-{name}-{k}.out", f"{source}-{name}-{k}.produced"
            started = time.perf_counter()
            client.create_topics([out, produced], partitions)
            figures[name]["admin_ms"].append((time.perf_counter() - started) * 1000)
            tracker = client.tracker(source, out, len(pings), tracker_batch)
            produce = client.produce(pings, produced)
            projection = client.projection(source, partitions, len(pings), projection_batch)
            for path, value in zip(PATHS, (tracker, produce, projection), strict=True):
                figures[name][path].append(value)
            log(f"run {k + 1}/{runs} {name:>15}: tracker {tracker:,.0f}/s, produce {produce:,.0f}/s, "
                f"projection {projection:,.0f}/s")
    return {
        "messages": len(pings), "runs": runs, "partitions": partitions, "seed": seed,
        "tracker_batch": tracker_batch, "projection_batch": projection_batch,
        "median": {c: {p: round(statistics.median(v)) for p, v in figures[c].items()} for c in CLIENTS},
        "ratio": {p: round(median_ratio(figures, p), 3) for p in PATHS},
        "runs_per_s": {c: {p: [round(x) for x in v] for p, v in figures[c].items()} for c in CLIENTS},
        "config": {"confluent-kafka": {"producer": CONFLUENT_PRODUCER, "tracker": CONFLUENT_CONSUMER,
                                       "projection": CONFLUENT_PROJECTION},
                   "kafka-python": {"producer": KAFKA_PYTHON_PRODUCER, "tracker": KAFKA_PYTHON_CONSUMER,
                                    "projection": KAFKA_PYTHON_PROJECTION}},
    }


def report(r: dict[str, Any]) -> list[str]:
    med = r["median"]
    lines = [f"Kafka clients, {r['messages']:,} pings on {r['partitions']} partitions, median of {r['runs']} runs "
             f"(records/s)",
             f"  {'path':<12}{'confluent-kafka':>17}{'kafka-python':>15}{'kp / ck':>10}"]
    for p in PATHS:
        lines.append(f"  {p:<12}{med['confluent-kafka'][p]:>17,}{med['kafka-python'][p]:>15,}{r['ratio'][p]:>10.2f}")
    lines.append(f"  {'admin (ms)':<12}{med['confluent-kafka']['admin_ms']:>17,}{med['kafka-python']['admin_ms']:>15,}"
                 f"{'':>10}")
    lines.append(f"  tracker: batches of {r['tracker_batch']:,}, decode, one output per record, acks=all, commit; "
                 f"projection: batches of {r['projection_batch']:,}, a commit each (the client's share: no decode, "
                 f"no ClickHouse)")
    return lines


__all__ = ["CLIENTS", "PATHS", "backlog", "median_ratio", "report", "run"]
