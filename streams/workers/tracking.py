"""The tracking worker: Kafka at the edges of :class:`streams.domain.tracking.tracker.Tracker`, in batches.

Why not one Faust agent per ping: on this machine Faust's per-event stream path delivered 4-5k
events/s doing nothing at all (faust-streaming 0.15.3 on the embedded broker), a Faust table write
per event about 3k/s, and the target is 20k pings/s. So the hot path is a plain batched
consumer: fetch up to ``batch`` records, decode them (the codec; pings by its generated flat reader), fold them into the tracker,
produce what it returns (every ``emit_every`` records, so a large fetch does not hold back the
first pings' ETAs), and checkpoint. It runs inside the Faust worker process (a thread
started by ``streams.agents.tracking``) or on its own (``milestream bench pipeline``).

**Durable state, nothing lost, nothing counted twice.** Riders are partitioned by the murmur2
hash of their id on every input topic, so partition *p* of ``gps``, ``routes`` and ``riders``
holds the same riders. The state of those riders is checkpointed to partition *p* of the
compacted ``<app_id>-tracking-state`` topic (:meth:`streams.domain.tracking.tracker.RiderLive.snapshot` per
rider, its last two plans apart, the fleet's learning under ``__fleet__``). A checkpoint takes the
consumer's positions, writes the riders changed so far (spread over the next steps, 50 a step, so
the loop never stalls on all of them), waits for the broker's acks of every output and state
write, and commits those positions.

After a crash the worker restores the state of its partitions and resumes from the committed
positions. Records between the checkpoint and the commit are skipped by each rider's last
applied offsets; records after the checkpoint are processed again and derive the same events
with the same ids (consumers deduplicate on ``event_id``), so nothing is lost and no fact gets a
second id. Restoring reads a partition up to a marker record written just before, not up to the
reported end offset (the embedded broker reports the high watermark short).

**Order.** Kafka orders records within a partition only, not across ``gps``, ``routes`` and
``riders``. Within each fetched batch, plans and shifts are applied before pings; a ping fetched
in an earlier batch than its rider's first plan is applied without a route (no fence, no ETA).

Bad input never stops the worker: undecodable, invalid or misplaced records go to ``dead-letter``
with the original bytes and the reason.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from schemas import Codec, InvalidEvent
from schemas import events as ev
from schemas import topics as tp
from streams import state
from streams.domain.tracking import zones
from streams.domain.tracking.tracker import STATE_FORMAT, Fleet, RiderLive, Tracker, TrackerParams
from streams.edge import Edge, Limits, Record, Rejection
from streams.errors import KafkaFailure, WorkerError
from streams.kafka import FETCH_WAIT_MS, Publisher, TopicPlan, commit, ensure_topics

log = logging.getLogger(__name__)
GPS_NAME = tp.GPS.name

INPUTS: tuple[tp.TopicSpec, ...] = (tp.GPS, tp.ROUTES, tp.RIDERS)
FLEET_KEY = b"__fleet__"
PLAN_SUFFIX = "\x00plans"  # key of a rider's last two plans (rider ids are printable)
MARKER_KEY = b"__marker__"


def load_zones(path: str, params: zones.ZoneParams = zones.ZoneParams()) -> zones.ZoneIndex:
    """The custom zones of ``MILESTREAM_ZONES_FILE``; a clear error names the file."""
    try:
        with open(path, encoding="utf-8") as f:
            return zones.zones_from_geojson(json.load(f), params)
    except (OSError, ValueError) as exc:
        raise ValueError(f"MILESTREAM_ZONES_FILE={path}: {exc}") from exc


def _fleet_snapshot(blob: bytes | None) -> tuple[float, Fleet] | None:
    """The fleet's learning as checkpointed, or None when the record is refused (another version
    wrote it, or it is no state record at all): learning starts over."""
    try:
        now_s, fleet, written = state.decode("tracker-fleet", blob)
        if written != STATE_FORMAT:
            raise state.StateError(f"tracker-fleet: format {written}, this version reads {STATE_FORMAT}")
    except state.StateError as exc:
        log.warning("tracking: the fleet's learning is refused (%s); it starts over", exc)
        return None
    return now_s, fleet


def _rider_plans(rider_id: str, blob: bytes) -> tuple[ev.RoutePlanned | None, ...]:
    """A rider's last plans as checkpointed; refused unless they are this rider's (and then the
    rider starts with no plan, as a rider never planned)."""
    try:
        plans = state.decode("tracker-plans", blob)
    except state.StateError as exc:
        log.warning("tracking: the plans of rider %r are refused: %s", rider_id, exc)
        return (None, None)
    if any(p is not None and p.rider_id != rider_id for p in plans) or len(plans) != 2:
        log.warning("tracking: the plans under rider %r are not its last two plans; refused", rider_id)
        return (None, None)
    return tuple(plans)


TrackerError = WorkerError  # an output or checkpoint was not acknowledged: the process must restart


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackingConfig:
    """What a tracking worker needs to know; the entry point builds it from the settings."""

    client: dict[str, Any]  # librdkafka settings shared by its clients: bootstrap, security
    topic_prefix: str = "milestream."
    app_id: str = "milestream"
    partitions: int = 3
    replication_factor: int = 1
    session_timeout_s: float = 6.0
    heartbeat_s: float = 1.0
    checkpoint_s: float = 2.0
    zones_file: str = ""
    max_zone_cells: int = 5_000
    limits: Limits = Limits()

    def topic(self, name: str) -> str:
        return self.topic_prefix + name

    @property
    def state_topic(self) -> str:
        return f"{self.topic_prefix}{self.app_id}-tracking-state"


def state_topic(config: TrackingConfig) -> str:
    return config.state_topic


@dataclass
class WorkerStats:
    records: int = 0
    batches: int = 0
    outputs: int = 0
    dead_letters: int = 0
    skipped: int = 0  # bad shifts, dead-lettered by their owner (the rider-shift agent)
    checkpoints: int = 0
    restored_riders: int = 0
    last_checkpoint_s: float = 0.0


class TrackerWorker:
    """One member of the ``<app_id>-tracking`` consumer group."""

    def __init__(self, config: TrackingConfig, *, params: TrackerParams = TrackerParams(), codec: Codec | None = None,
                 batch: int = 5000, checkpoint_s: float | None = None, fleet_every_s: float = 30.0,
                 on_outputs: Callable[[list[Any]], None] | None = None) -> None:
        from confluent_kafka import Consumer, TopicPartition

        self.config = settings = config
        self.codec = codec or Codec()
        if settings.zones_file and params.zones is None:
            zone_params = dataclasses.replace(params.zone_params, max_cells=config.max_zone_cells)
            params = dataclasses.replace(params, zones=load_zones(settings.zones_file, zone_params),
                                         zone_params=zone_params)
        self.edge = Edge(self.codec, {config.topic(s.name): s for s in INPUTS}, config.limits)
        # Shifts are dead-lettered by the rider-shift agent, their one owner; here a bad one is skipped.
        self.dead_letters_for = {config.topic(tp.GPS.name), config.topic(tp.ROUTES.name)}
        self.tracker = Tracker(params)
        self.batch = batch
        self.checkpoint_s = config.checkpoint_s if checkpoint_s is None else checkpoint_s
        self.fleet_every_s = fleet_every_s
        self.on_outputs = on_outputs  # hook: the records whose outputs were just produced (the bench times it)
        self.stats = WorkerStats()
        self.state_topic = state_topic(settings)
        self.topic_names = {settings.topic(s.name): s for s in INPUTS}
        self.gps_topic = settings.topic(tp.GPS.name)
        self.out_names = {s.name: settings.topic(s.name) for s in tp.ALL}
        self.consumer = Consumer({
            **config.client, "group.id": f"{settings.app_id}-tracking", "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "session.timeout.ms": int(settings.session_timeout_s * 1000),
            "heartbeat.interval.ms": int(settings.heartbeat_s * 1000),
            # latency: the broker answers a fetch at once when data is there; Nagle off
            "partition.assignment.strategy": "range", "fetch.wait.max.ms": FETCH_WAIT_MS,
            "socket.nagle.disable": True, "queued.max.messages.kbytes": 65536})
        self.publisher = Publisher({**config.client, "partitioner": "murmur2_random", "acks": "all",
                                    "enable.idempotence": False, "linger.ms": 2, "batch.num.messages": 10000,
                                    "socket.nagle.disable": True, "queue.buffering.max.messages": 1_000_000})
        self.producer = self.publisher.producer
        self._rider_partition: dict[str, int] = {}
        self._plans: dict[str, tuple[Any, Any]] = {}  # rider -> (previous, current) plan as last written
        self._owned: set[int] = set()
        self._gps_partitions: dict[int, Any] = {}  # owned partition -> its TopicPartition of gps
        self._topic_partition = TopicPartition
        self._last_checkpoint = time.monotonic()
        self._round: tuple[list[Any], list[str], float] | None = None  # a spread checkpoint under way
        self._round_done = 0
        self.round_chunk = 50  # riders written per step during a round
        self.emit_every = 250  # records between hand-overs of outputs to the producer (~12 ms of work)
        self._last_fleet = 0.0
        self.started_at: float | None = None  # perf_counter of the first batch (the bench times from it)

    # ---- lifecycle ------------------------------------------------------------------------

    def ensure_state_topic(self) -> None:
        c = self.config
        ensure_topics(c.client, [TopicPlan(self.state_topic, c.partitions, c.replication_factor,
                                           {"cleanup.policy": "compact"})])

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set, then checkpoint and leave the group."""
        self.ensure_state_topic()
        self.consumer.subscribe(list(self.topic_names), on_assign=self._on_assign, on_revoke=self._on_revoke)
        # What is alive now (modules, settings, the app) lives as long as the process: out of the
        # collector's sight, so its full collections walk only the tracking state.
        gc.freeze()
        try:
            while not stop.is_set():
                self.step()
            self.checkpoint()
        finally:
            self.consumer.close()
            self.producer.flush(10)

    def step(self, timeout_s: float = 0.01) -> int:
        messages = self.consumer.consume(num_messages=self.batch, timeout=timeout_s)
        if messages and self.started_at is None:
            self.started_at = time.perf_counter()
        n = 0
        if len(messages) > 1:  # plans and shifts of a batch before its pings (no order holds across topics)
            gps = self.gps_topic
            others = [m for m in messages if m.topic() != gps]
            if others:
                messages = others + [m for m in messages if m.topic() == gps]
        handle = self._handle
        every = self.emit_every
        # outputs leave every `every` records: a large fetch does not hold its first pings' ETAs back
        for start in range(0, len(messages), every):
            part = messages[start:start + every]
            outputs: list[Any] = []
            done = 0
            for m in part:
                if m.error():
                    log.warning("consumer: %s", m.error())
                    continue
                done += 1
                out = handle(m)
                if out:
                    outputs.extend(out)
            self._emit(outputs)
            n += done
            self.stats.records += done
            if self.on_outputs is not None and done:
                self.on_outputs(part)
        self.tracker.caught_up(self._gps_read_to_end())
        self._emit(self.tracker.tick())
        if n:
            self.stats.batches += 1
        self._checkpoint_round()
        return n

    def _gps_read_to_end(self) -> list[int]:
        """Owned ``gps`` partitions with nothing fetched left to handle: the position reached the
        high watermark of the last fetch (short by at most a batch on the embedded broker)."""
        if not self._owned:
            return []
        parts = self._gps_partitions
        if parts.keys() != self._owned:
            parts = self._gps_partitions = {p: self._topic_partition(self.gps_topic, p) for p in self._owned}
        done = []
        for tp_ in self.consumer.position(list(parts.values())):
            high = self.consumer.get_watermark_offsets(tp_, cached=True)
            if high is not None and 0 <= high[1] <= tp_.offset:
                done.append(tp_.partition)
        return done

    # ---- records in, events out ---------------------------------------------------------

    def _emit(self, outputs: list[Any]) -> None:
        for out in outputs:
            try:
                self._produce(out[0], out[1], out[2] if len(out) > 2 else None)
            except (InvalidEvent, ValueError, TypeError) as exc:  # a bug derived a bad event: never a crash
                log.error("tracking: derived %s not produced: %s", type(out[1]).__name__, exc)
        self.publisher.poll()
        self.stats.outputs += len(outputs)

    def _handle(self, m: Any) -> list[Any]:
        kind, ms = m.timestamp()
        record = Record(m.topic(), m.partition(), m.offset(), m.key(), m.value(), ms if kind else None)
        event = self.edge.accept(record, time.time())
        if type(event) is Rejection:
            return self._dead(record, event)
        rider_id = event.key
        self._rider_partition[rider_id] = record.partition
        try:  # a ping's received time is its occurred_at (stream time, not the wall clock)
            if type(event) is ev.GpsPing:  # the hot path: skip the dispatch
                return self.tracker.on_ping(event, GPS_NAME, record.offset, partition=record.partition)
            return self.tracker.on_event(event, self.topic_names[record.topic].name, record.offset)
        except Exception as exc:  # a bug or a poison record: dead-letter it, the stream goes on
            log.exception("tracking %s/%s/%s failed", record.topic, record.partition, record.offset)
            return self._dead(record, Rejection(ev.DeadLetterKind.PROCESSING_ERROR, f"{type(exc).__name__}: {exc}"),
                              owner=True)

    def _dead(self, record: Record, rejection: Rejection, owner: bool = False) -> list[Any]:
        if not owner and record.topic not in self.dead_letters_for:
            self.stats.skipped += 1
            return []
        self.stats.dead_letters += 1
        log.warning("dead letter %s/%s/%s: %s: %s", record.topic, record.partition, record.offset,
                    rejection.kind.value, rejection.reason)
        return [(tp.DEAD_LETTER, self.edge.dead_letter(record, rejection, time.time()))]

    def _produce(self, spec: tp.TopicSpec, event: ev.Event, key: str | None = None) -> None:
        name = self.out_names[spec.name]
        value = self.codec.encode(event, name)  # validates against the schema first
        # The record's timestamp is the event's time, so the next edge bounds it against itself.
        self.publisher.send(name, (key or event.key).encode(), value, int(event.occurred_at.timestamp() * 1000))

    def _send(self, topic: str, key: bytes, value: bytes | None, partition: int | None = None) -> None:
        self.publisher.send(topic, key, value, partition=partition)

    # ---- durability ------------------------------------------------------------------------

    def _flush(self) -> None:
        try:
            self.publisher.flush(30)
        except KafkaFailure as exc:
            raise TrackerError(f"outputs not acknowledged: {exc}") from exc

    def checkpoint(self) -> None:
        """All at once (on revoke and stop): outputs acknowledged, then changed riders written, then
        the current positions committed."""
        started = time.monotonic()
        self._flush()
        tracker = self.tracker
        dirty, tracker.dirty = tracker.dirty, set()
        if self._round is not None:  # a spread checkpoint under way: its riders too
            dirty |= set(self._round[1][self._round_done:])
            self._round = None
        for rider_id in dirty:
            self._write_rider(rider_id)
        self._finish_checkpoint(None, started)

    def _checkpoint_round(self) -> None:
        """The periodic checkpoint, spread over steps so the loop never stalls for all riders at once.

        At the start of a round the consumer's positions P are taken and the riders changed so far
        are listed; each step writes ``round_chunk`` of them (their state now, which has applied
        everything before P); at the end, outputs and state acknowledged, P is committed. A rider
        written with records after P skips them when they are replayed (its applied offsets)."""
        if self._round is None:
            if time.monotonic() - self._last_checkpoint < self.checkpoint_s or not self._owned:
                return
            positions = [p for p in self.consumer.position(self.consumer.assignment()) if p.offset >= 0]
            self._round = (positions, list(self.tracker.dirty), time.monotonic())
            self._round_done = 0
            self.tracker.dirty = set()
        positions, riders, started = self._round
        for rider_id in riders[self._round_done:self._round_done + self.round_chunk]:
            self._write_rider(rider_id)
        self._round_done += self.round_chunk
        if self._round_done >= len(riders):
            self._round = None
            self._flush()
            self._finish_checkpoint(positions, started)

    def _write_rider(self, rider_id: str) -> None:
        p = self._rider_partition.get(rider_id)
        r = self.tracker.riders.get(rider_id)
        if p is None or r is None or p not in self._owned:
            return
        plans = self._plans.get(rider_id)
        try:
            if r.route is not None and (plans is None or plans[-1] is not r.route):  # a new plan: written first
                plans = (None if plans is None else plans[-1], r.route)
                self._send(self.state_topic, (rider_id + PLAN_SUFFIX).encode(), state.encode("tracker-plans", plans), p)
                self._plans[rider_id] = plans
            self._send(self.state_topic, rider_id.encode(), state.encode("tracker-rider", r.snapshot()), p)
        except state.StateError:  # a bug, not input: this rider restarts on its plan after a crash; the rest go on
            log.exception("tracking: rider %r not checkpointed", rider_id)

    def _finish_checkpoint(self, positions: list[Any] | None, started: float) -> None:
        """Fleet snapshot (now and then), every write acknowledged, then the commit (of ``positions``,
        or of the current positions)."""
        tracker = self.tracker
        if self._owned and started - self._last_fleet >= self.fleet_every_s:
            self._last_fleet = started
            blob = state.encode("tracker-fleet", state.FleetCheckpoint(tracker.now_s, tracker.fleet, STATE_FORMAT))
            for p in self._owned:
                self._send(self.state_topic, FLEET_KEY, blob, p)
        self._flush()
        if self._owned:
            commit(self.consumer, positions)
        self.stats.checkpoints += 1
        self.stats.last_checkpoint_s = time.monotonic() - started
        self._last_checkpoint = time.monotonic()

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        self.checkpoint()
        lost = {p.partition for p in partitions}
        self._owned -= lost
        self.tracker.forget_partitions(lost)
        for rider_id in [r for r, p in self._rider_partition.items() if p in lost]:
            self.tracker.riders.pop(rider_id, None)
            self._rider_partition.pop(rider_id, None)
            self._plans.pop(rider_id, None)

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        new = {p.partition for p in partitions} - self._owned
        for p in sorted(new):
            self._restore(p)
        self._owned |= new
        self._last_fleet = 0.0

    def _afresh(self, rider_id: str, plan: ev.RoutePlanned | None) -> RiderLive:
        """A rider with no usable state: on its last plan, as if the plan had just arrived (its
        vehicle type comes back with its next shift event)."""
        self.tracker.riders.pop(rider_id, None)
        if plan is not None:
            self.tracker.on_route(plan)
        return self.tracker.rider(rider_id)

    def _restore(self, partition: int) -> None:
        """Load the riders of ``partition`` from the state topic: read it from the beginning up to
        a marker written now (end offsets can be reported short)."""
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        marker = state.encode("tracker-marker", uuid.uuid4().bytes)  # a state record like the rest
        self._send(self.state_topic, MARKER_KEY, marker, partition)
        self._flush()
        reader = Consumer({**self.config.client, "group.id": f"{self.config.app_id}-tracking-restore",
                           "enable.auto.commit": False})
        riders: dict[bytes, bytes] = {}
        plans: dict[bytes, bytes] = {}
        suffix = PLAN_SUFFIX.encode()
        fleet: tuple[float, Fleet] | None = None
        try:
            reader.assign([TopicPartition(self.state_topic, partition, OFFSET_BEGINNING)])
            deadline = time.monotonic() + 120
            found = False
            while not found:
                if time.monotonic() > deadline:
                    raise TrackerError(f"restoring {self.state_topic}/{partition}: marker not seen in 120 s")
                for m in reader.consume(num_messages=10000, timeout=0.5):
                    if m.error():
                        continue
                    key = m.key()
                    if key == MARKER_KEY:
                        found = found or m.value() == marker
                    elif key == FLEET_KEY:
                        snapshot = _fleet_snapshot(m.value())
                        if snapshot is not None and (fleet is None or snapshot[0] >= fleet[0]):
                            fleet = snapshot
                    elif m.value() is None:
                        riders.pop(key, None)
                    elif key.endswith(suffix):
                        plans[key[:-len(suffix)]] = m.value()
                    else:
                        riders[key] = m.value()
        finally:
            reader.close()
        refused: list[str] = []
        for key, blob in riders.items():
            rider_id = key.decode("utf-8", "replace")
            rider_plans: tuple[ev.RoutePlanned | None, ...] = (None, None)
            try:
                if key in plans:
                    rider_plans = _rider_plans(rider_id, plans[key])
                r = RiderLive.restore(state.decode("tracker-rider", blob), rider_plans)
                if r.rider_id != rider_id:
                    raise state.StateError(f"tracker-rider: the record under {rider_id!r} is rider {r.rider_id!r}")
            except Exception as exc:  # noqa: BLE001 - refused, stale or unusable: start the rider on its plan
                refused.append(f"{rider_id!r}: {exc}")
                r = self._afresh(rider_id, rider_plans[-1])
            self.tracker.riders[r.rider_id] = r
            self._rider_partition[r.rider_id] = partition
            self._plans[r.rider_id] = rider_plans
        if refused:
            log.warning("tracking: %d riders of partition %d start afresh on their last plan, their state refused "
                        "(another version, or not a state record), e.g. %s", len(refused), partition,
                        "; ".join(refused[:3]))
        if fleet is not None and fleet[0] >= self.tracker.now_s:  # the newest learning of any partition
            self.tracker.fleet = fleet[1]
            self.tracker.now_s = fleet[0]
        self.stats.restored_riders += len(riders)
        log.info("tracking: restored %d riders of partition %d", len(riders), partition)


__all__ = ["INPUTS", "TrackerError", "TrackerWorker", "TrackingConfig", "WorkerStats", "state_topic"]
