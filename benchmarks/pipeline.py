"""``milestream bench pipeline``: pings per second through one tracking worker, and its latency.

On one broker (the embedded one unless ``MILESTREAM_KAFKA_BOOTSTRAP`` is set), on topics of its
own, with a simulated day of :mod:`simulator.truth` (shifts, routes, noisy pings with duplicates,
late and out-of-order fixes):

1. **ceiling**: a plain consumer reads the day's pings from the topic and decodes them
   (fastavro): the most any worker could do with these messages on this broker;
2. **throughput** (``pings_per_s``): a :class:`streams.workers.tracking.TrackerWorker` works the
   same backlog (decode -> hygiene -> geofence -> ETA -> alerts -> produce outputs ->
   checkpoints with acknowledged outputs and state), timed from its first batch to the last
   record done, final checkpoint included;
3. **latency** (``p99_latency_ms``): a second day (the next one, so the riders' clocks move on)
   is produced by another process at half the measured throughput while the same worker runs;
   a ping's latency is from its produce time (the message's CreateTime) to the moment the
   outputs of its slice of the batch (``TrackerWorker.emit_every`` records) were handed to the
   producer (librdkafka sends them within ``linger.ms``, 2).
"""

from __future__ import annotations

import dataclasses
import gc
import multiprocessing
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas import Codec
from schemas import events as ev
from schemas import topics as tp
from simulator.truth import DayParams, GroundTruthDay, truth_day
from streams.kafka import FETCH_WAIT_MS, TopicPlan, ensure_topics
from streams.workers.tracking import TrackerWorker, TrackingConfig

# The device fleet's pings reach Kafka through an ingest gateway that batches for up to this long (it
# counts in the latency: a ping's time starts when the gateway takes it). The embedded broker's fetch
# slows with the number of record batches in a partition: a raw consumer tailing 10k pings/s produced
# with 1 ms batches fell seconds behind within 20 s, with 20 ms batches it stayed at p99 73 ms.
LIVE_LINGER_MS = 20
TOPICS = (tp.GPS, tp.ROUTES, tp.RIDERS, tp.ETAS, tp.ALERTS, tp.TRACKING, tp.INBOX, tp.DEAD_LETTER, tp.TRAVEL_TIMES,
          tp.DISPATCH_QUEUE)


def _day(seed: int, riders: int, stops: int, day: int) -> GroundTruthDay:
    """Day 0 two days ago, day 1 yesterday, at the simulator's hour: the records are stamped now (the
    latency clock starts there) and the stream edge bounds event times by the record's timestamp."""
    default = DayParams().day_start
    two_days_ago = datetime.now(UTC).date() - timedelta(days=2)
    start = default.replace(year=two_days_ago.year, month=two_days_ago.month, day=two_days_ago.day) + timedelta(days=day)
    return truth_day(seed + day, riders=riders, stops_per_rider=stops, noise_m=30.0,
                     params=DayParams(day_start=start))


def _setup_events(day: GroundTruthDay) -> list[tuple[tp.TopicSpec, ev.Event]]:
    out: list[tuple[tp.TopicSpec, ev.Event]] = []
    for r in day.riders:
        t0 = r.route.occurred_at - timedelta(seconds=1)
        out.append((tp.RIDERS, ev.RiderShiftStarted(
            event_id=f"shift-{r.route.route_id}", occurred_at=t0, rider_id=r.rider_id, hub_id=r.route.hub_id,
            vehicle_type=r.vehicle_type, capacity_weight_kg=50.0, capacity_volume_l=100.0, capacity_units=40,
            shift_start=t0, shift_end=t0 + timedelta(hours=10), start=r.route.start)))
        out.append((tp.ROUTES, r.route))
    return out


def _produce(settings: TrackingConfig, events: Sequence[tuple[tp.TopicSpec, ev.Event]], rate: float | None = None) -> None:
    codec = Codec()
    names = {s.name: settings.topic(s.name) for s in TOPICS}
    _produce_encoded(settings, [(names[s.name], e.key.encode(), codec.encode(e, names[s.name])) for s, e in events],
                     rate)


def _produce_encoded(settings: TrackingConfig, messages: Sequence[tuple[str, bytes, bytes]], rate: float | None = None) -> None:
    """(topic, key, value) messages, as fast as they go or paced at ``rate`` a second (through the
    device gateway's batching, ``LIVE_LINGER_MS``)."""
    from confluent_kafka import Producer

    producer = Producer({**settings.client, "partitioner": "murmur2_random", "acks": "all",
                         "linger.ms": 5 if rate is None else LIVE_LINGER_MS, "socket.nagle.disable": True,
                         "queue.buffering.max.messages": 2_000_000})
    started = time.perf_counter()
    for i, (topic, key, value) in enumerate(messages):
        if rate is not None:
            wait = started + i / rate - time.perf_counter()
            if wait > 0.002:
                producer.poll(0)
                time.sleep(wait)
        while True:
            try:
                producer.produce(topic, value, key)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 20000 == 0:
            producer.poll(0)
    producer.flush(60)


def _paced_producer(settings: TrackingConfig, seed: int, riders: int, stops: int, rate: float, limit: int) -> None:
    """The latency phase's device fleet, in a process of its own (not competing for our GIL)."""
    day = _day(seed, riders, stops, 1)
    _produce(settings, _setup_events(day))
    time.sleep(2.0)  # the routes reach the worker before the pings
    _produce(settings, [(tp.GPS, o.ping) for o in day.pings[:limit]], rate=rate)


def _await(event: threading.Event, thread: threading.Thread, deadline: float) -> None:
    while not event.wait(1.0) and thread.is_alive() and time.monotonic() < deadline:
        pass


def ceiling(settings: TrackingConfig, expected: int) -> float:
    """Consume and decode ``expected`` pings from the gps topic: records per second."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    codec = Codec()
    name = settings.topic(tp.GPS.name)
    consumer = Consumer({**settings.client, "group.id": f"ceiling-{uuid.uuid4().hex[:6]}", "enable.auto.commit": False,
                         "fetch.wait.max.ms": FETCH_WAIT_MS, "queued.max.messages.kbytes": 65536})
    try:
        consumer.assign([TopicPartition(name, p, OFFSET_BEGINNING) for p in range(settings.partitions)])
        n, started = 0, None
        deadline = time.monotonic() + 300
        while n < expected and time.monotonic() < deadline:
            for m in consumer.consume(num_messages=5000, timeout=0.2):
                if m.error():
                    continue
                if started is None:
                    started = time.perf_counter()
                codec.decode(m.value())
                n += 1
        assert started is not None and n >= expected, f"ceiling read {n} of {expected} pings"
        return n / (time.perf_counter() - started)
    finally:
        consumer.close()


def run(riders: int = 400, stops: int = 3, seed: int = 1, latency_s: float = 20.0, batch: int = 5000,
        checkpoint_s: float = 2.0, client: dict[str, Any] | None = None, partitions: int = 3,
        latency_rate: float | None = None, log: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """``client``: the librdkafka settings of the broker to use (the command line starts one);
    ``latency_rate``: pings per second of the latency phase (default half the measured throughput)."""
    tag = uuid.uuid4().hex[:6]
    settings = TrackingConfig(client=dict(client or {}), topic_prefix=f"bench{tag}.", app_id=f"bench{tag}",
                              partitions=partitions, checkpoint_s=checkpoint_s)
    ensure_topics(settings.client, [TopicPlan(settings.topic(s.name), partitions, 1, s.config()) for s in TOPICS])
    log(f"simulating {riders} riders x {stops} stops (seed {seed})")
    day = _day(seed, riders, stops, 0)
    setup = _setup_events(day)
    codec = Codec()
    gps_topic = settings.topic(tp.GPS.name)
    pings = [(gps_topic, o.ping.rider_id.encode(), codec.encode(o.ping, gps_topic)) for o in day.pings]
    total = len(setup) + len(pings)
    del day  # the simulation's objects would otherwise weigh on every garbage collection of the worker
    gc.collect()

    worker = TrackerWorker(settings, batch=batch, checkpoint_s=checkpoint_s)
    latencies: list[float] = []
    measuring = threading.Event()

    reached = threading.Event()  # set by the worker thread itself: the main thread must not poll
    target = [len(setup)]  # (every wake-up of another thread costs the worker a GIL hand-over)

    def on_outputs(messages: list[Any]) -> None:
        now = time.time()
        if worker.stats.records >= target[0]:
            reached.set()
        if measuring.is_set():
            latencies.extend(now - m.timestamp()[1] / 1000 for m in messages
                             if not m.error() and m.topic() == gps_topic)

    worker.on_outputs = on_outputs
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 600
    # Shifts and routes first, consumed before any ping: the worker reads its topics side by side,
    # and a backlog of pings read before their routes would be cheaper (no route: no ETA, no fence).
    log(f"worker joins its group; {len(setup)} shift and route events go first")
    _produce(settings, setup)
    _await(reached, thread, deadline)
    worker.started_at = None
    reached.clear()
    target[0] = total
    log(f"throughput: {len(pings):,} pings produced at once, the worker takes them as they come")
    # from another process: a producer loop in this one would take the GIL from the worker's thread
    backlog = multiprocessing.get_context("spawn").Process(target=_produce_encoded, args=(settings, pings))
    backlog.start()
    _await(reached, thread, deadline)
    backlog.join(60)
    done_records = worker.stats.records
    # the final checkpoint of the backlog belongs to the measurement
    ckpt_before = worker.stats.checkpoints
    worker._last_checkpoint = 0.0  # noqa: SLF001 - ask the worker thread for a checkpoint now
    while worker.stats.checkpoints == ckpt_before and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.002)
    elapsed = time.perf_counter() - worker.started_at if worker.started_at else float("nan")
    if done_records < total:
        raise RuntimeError(f"the worker processed {done_records} of {total} records")
    pings_per_s = len(pings) / elapsed
    stats_backlog = dataclasses.asdict(worker.stats)
    log(f"  {pings_per_s:,.0f} pings/s ({len(pings)} pings in {elapsed:.1f} s; "
        f"{stats_backlog['outputs']} outputs, {stats_backlog['checkpoints']} checkpoints)")

    log("ceiling: consume + decode the same pings")
    ceiling_per_s = ceiling(settings, len(pings))
    log(f"  {ceiling_per_s:,.0f} pings/s")

    rate = latency_rate or pings_per_s / 2
    limit = int(rate * latency_s)
    log(f"latency: another process produces the next day's pings at {rate:,.0f}/s for {latency_s:.0f} s")
    measuring.set()
    ctx = multiprocessing.get_context("spawn")
    producer = ctx.Process(target=_paced_producer, args=(settings, seed, riders, max(stops, 6), rate, limit))
    producer.start()
    producer.join(latency_s * 4 + 120)
    time.sleep(1.0)
    stop.set()
    thread.join(60)
    if not latencies:
        raise RuntimeError("no latency samples: the worker saw none of the paced pings")
    lat_ms = sorted(x * 1000 for x in latencies)
    p = lambda q: lat_ms[min(len(lat_ms) - 1, int(q * len(lat_ms)))]  # noqa: E731
    return {
        "pings_per_s": round(pings_per_s), "ceiling_per_s": round(ceiling_per_s),
        "ratio_to_ceiling": round(pings_per_s / ceiling_per_s, 3),
        "p99_latency_ms": round(p(0.99), 1), "p50_latency_ms": round(statistics.median(lat_ms), 1),
        "max_latency_ms": round(lat_ms[-1], 1), "latency_rate_per_s": round(rate), "latency_samples": len(lat_ms),
        "riders": riders, "pings": len(pings), "outputs": stats_backlog["outputs"],
        "checkpoints": stats_backlog["checkpoints"], "dead_letters": worker.stats.dead_letters,
        "batch": batch, "checkpoint_s": checkpoint_s, "partitions": settings.partitions,
    }


def report(r: dict[str, Any]) -> list[str]:
    return [
        f"tracking worker, one process, {r['riders']} riders, {r['pings']:,} pings, {r['partitions']} partitions",
        f"  ceiling (consume + decode)   {r['ceiling_per_s']:>10,} pings/s",
        f"  worker (whole pipeline)      {r['pings_per_s']:>10,} pings/s  ({r['ratio_to_ceiling']:.0%} of the ceiling; "
        f"target >= 20,000: {'met' if r['pings_per_s'] >= 20000 else 'MISSED'})",
        f"  latency at {r['latency_rate_per_s']:,}/s            p50 {r['p50_latency_ms']} ms, p99 {r['p99_latency_ms']} ms, "
        f"max {r['max_latency_ms']} ms over {r['latency_samples']:,} pings "
        f"(target p99 < 250 ms: {'met' if r['p99_latency_ms'] < 250 else 'MISSED'})",
        f"  outputs {r['outputs']:,}, checkpoints {r['checkpoints']} (every {r['checkpoint_s']} s), "
        f"dead letters {r['dead_letters']}, batch {r['batch']}",
    ]


__all__ = ["ceiling", "report", "run"]
