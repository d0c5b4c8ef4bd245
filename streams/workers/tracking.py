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
from datetime import UTC, datetime
from typing import Any

from infra.kafka import confluent_config, producer_config
from infra.settings import Settings
from schemas import Codec, DecodeError, InvalidEvent, UnknownSchema
from schemas import events as ev
from schemas import topics as tp
from streams import state
from streams.domain.ids import derived_id
from streams.domain.tracking import zones
from streams.domain.tracking.tracker import STATE_FORMAT, Fleet, RiderLive, Tracker, TrackerParams

log = logging.getLogger(__name__)

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


class TrackerError(RuntimeError):
    """Kafka failed under the tracking worker (an output or checkpoint was not acknowledged)."""


def state_topic(settings: Settings) -> str:
    return f"{settings.topic_prefix}{settings.app_id}-tracking-state"


@dataclass
class WorkerStats:
    records: int = 0
    batches: int = 0
    outputs: int = 0
    dead_letters: int = 0
    checkpoints: int = 0
    restored_riders: int = 0
    last_checkpoint_s: float = 0.0


class TrackerWorker:
    """One member of the ``<app_id>-tracking`` consumer group."""

    def __init__(self, settings: Settings, *, params: TrackerParams = TrackerParams(), codec: Codec | None = None,
                 batch: int = 5000, checkpoint_s: float = 2.0, fleet_every_s: float = 30.0,
                 on_outputs: Callable[[list[Any]], None] | None = None) -> None:
        from confluent_kafka import Consumer, Producer

        self.settings = settings
        self.codec = codec or Codec()
        if settings.zones_file and params.zones is None:
            params = dataclasses.replace(params, zones=load_zones(settings.zones_file, params.zone_params))
        self.tracker = Tracker(params)
        self.batch = batch
        self.checkpoint_s = checkpoint_s
        self.fleet_every_s = fleet_every_s
        self.on_outputs = on_outputs  # hook: the records whose outputs were just produced (the bench times it)
        self.stats = WorkerStats()
        self.state_topic = state_topic(settings)
        self.topic_names = {settings.topic(s.name): s for s in INPUTS}
        self.gps_topic = settings.topic(tp.GPS.name)
        self.out_names = {s.name: settings.topic(s.name) for s in tp.ALL}
        self.consumer = Consumer(confluent_config(
            settings, **{"group.id": f"{settings.app_id}-tracking", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "session.timeout.ms": int(settings.kafka_session_timeout_s * 1000),
                         "heartbeat.interval.ms": int(settings.kafka_heartbeat_s * 1000),
                         # latency: the broker answers a fetch at once when data is there; Nagle off
                         "partition.assignment.strategy": "range", "fetch.wait.max.ms": 5,
                         "socket.nagle.disable": True, "queued.max.messages.kbytes": 65536}))
        # Delivery reports for failures only: a Python callback per acknowledged output cost more
        # than producing it; a failure still reaches _delivered and fails the next checkpoint.
        self.producer = Producer(producer_config(settings, **{"linger.ms": 2, "batch.num.messages": 10000,
                                                              "socket.nagle.disable": True,
                                                              "queue.buffering.max.messages": 1_000_000,
                                                              "delivery.report.only.error": True,
                                                              "on_delivery": self._delivered}))
        self._errors: list[str] = []
        self._rider_partition: dict[str, int] = {}
        self._plans: dict[str, tuple[Any, Any]] = {}  # rider -> (previous, current) plan as last written
        self._owned: set[int] = set()
        self._last_checkpoint = time.monotonic()
        self._round: tuple[list[Any], list[str], float] | None = None  # a spread checkpoint under way
        self._round_done = 0
        self.round_chunk = 50  # riders written per step during a round
        self.emit_every = 250  # records between hand-overs of outputs to the producer (~12 ms of work)
        self._last_fleet = 0.0
        self.started_at: float | None = None  # perf_counter of the first batch (the bench times from it)

    # ---- lifecycle ------------------------------------------------------------------------

    def ensure_state_topic(self) -> None:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient(confluent_config(self.settings))
        if self.state_topic in admin.list_topics(timeout=15).topics:
            return
        fut = admin.create_topics([NewTopic(self.state_topic, self.settings.kafka_partitions,
                                            self.settings.kafka_replication_factor,
                                            config={"cleanup.policy": "compact"})])[self.state_topic]
        try:
            fut.result(15)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise TrackerError(f"could not create {self.state_topic}: {exc}") from exc

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
        self._emit(self.tracker.tick())
        if n:
            self.stats.batches += 1
        self._checkpoint_round()
        return n

    # ---- records in, events out ---------------------------------------------------------

    def _emit(self, outputs: list[Any]) -> None:
        for out in outputs:
            self._produce(out[0], out[1], out[2] if len(out) > 2 else None)
        self.producer.poll(0)
        self.stats.outputs += len(outputs)

    def _handle(self, m: Any) -> list[Any]:
        spec = self.topic_names[m.topic()]
        try:
            event = self.codec.decode(m.value())
        except UnknownSchema as exc:
            return self._dead(m, ev.DeadLetterKind.UNKNOWN_SCHEMA, str(exc))
        except DecodeError as exc:
            return self._dead(m, ev.DeadLetterKind.MALFORMED, str(exc))
        except InvalidEvent as exc:
            return self._dead(m, ev.DeadLetterKind.INVALID, str(exc))
        if not isinstance(event, spec.events):
            return self._dead(m, ev.DeadLetterKind.INVALID, f"{type(event).__name__} does not belong on {m.topic()}")
        key = m.key()
        rider_id = event.key
        if key is not None and key != rider_id.encode():
            return self._dead(m, ev.DeadLetterKind.INVALID,
                              f"message key {key!r} differs from the event's stream key {rider_id!r}")
        self._rider_partition[rider_id] = m.partition()
        try:  # a ping's received time is its occurred_at (stream time, not the wall clock)
            if type(event) is ev.GpsPing:  # the hot path: skip the dispatch
                return self.tracker.on_ping(event, spec.name, m.offset())
            return self.tracker.on_event(event, spec.name, m.offset())
        except Exception as exc:  # a bug or a poison record: dead-letter it, the stream goes on
            log.exception("tracking %s/%s/%s failed", m.topic(), m.partition(), m.offset())
            return self._dead(m, ev.DeadLetterKind.PROCESSING_ERROR, f"{type(exc).__name__}: {exc}")

    def _dead(self, m: Any, kind: ev.DeadLetterKind, reason: str) -> list[Any]:
        self.stats.dead_letters += 1
        where = f"{m.topic()}/{m.partition()}/{m.offset()}"
        key = (m.key() or b"").decode("utf-8", "replace")
        log.warning("dead letter %s: %s: %s", where, kind.value, reason)
        return [(tp.DEAD_LETTER, ev.DeadLetter(
            event_id=derived_id(where, "dead-letter"), occurred_at=datetime.now(UTC), source_key=key or where,
            source_topic=m.topic(), source_partition=m.partition(), source_offset=m.offset(),
            original=bytes(m.value() or b""), error_kind=kind, reason=reason[:2000]))]

    def _produce(self, spec: tp.TopicSpec, event: ev.Event, key: str | None = None) -> None:
        name = self.out_names[spec.name]
        value = self.codec.encode(event, name)  # validates against the schema first
        self._send(name, (key or event.key).encode(), value)

    def _send(self, topic: str, key: bytes, value: bytes | None, partition: int | None = None) -> None:
        while True:
            try:
                if partition is None:
                    self.producer.produce(topic, value, key)
                else:
                    self.producer.produce(topic, value, key, partition=partition)
                return
            except BufferError:  # local queue full: let it drain
                self.producer.poll(0.05)

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err}")

    # ---- durability ------------------------------------------------------------------------

    def _flush(self) -> None:
        remaining = self.producer.flush(30)
        if remaining or self._errors:
            errors, self._errors = self._errors[:5], []
            raise TrackerError(f"{remaining} outputs not acknowledged; errors: {errors}")

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
            from confluent_kafka import KafkaException

            try:
                if positions is None:
                    self.consumer.commit(asynchronous=False)
                elif positions:
                    self.consumer.commit(offsets=positions, asynchronous=False)
            except KafkaException as exc:
                if "NO_OFFSET" not in str(exc):  # nothing consumed since the last commit
                    raise
        self.stats.checkpoints += 1
        self.stats.last_checkpoint_s = time.monotonic() - started
        self._last_checkpoint = time.monotonic()

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        self.checkpoint()
        lost = {p.partition for p in partitions}
        self._owned -= lost
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

        marker = uuid.uuid4().bytes
        self._send(self.state_topic, MARKER_KEY, marker, partition)
        self._flush()
        reader = Consumer(confluent_config(self.settings, **{"group.id": f"{self.settings.app_id}-tracking-restore",
                                                             "enable.auto.commit": False}))
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


__all__ = ["INPUTS", "TrackerError", "TrackerWorker", "WorkerStats", "state_topic"]
