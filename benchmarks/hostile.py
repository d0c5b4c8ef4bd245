"""``milestream bench hostile``: the hostile-input corpus (:mod:`benchmarks.hostile_corpus`) against a
running system, then valid traffic, and what became of each message.

The entry point starts the system (as ``milestream up`` does) and hands in a :class:`Target`; this
module produces, in order:

1. **valid setup**: a tracked rider's route and the order on it, sent out for delivery;
2. **the corpus**, at speed (confluent-kafka, murmur2 keys), each message's partition and offset
   taken from its delivery report; messages the broker refuses (too large) are not input we
   received and are counted apart (``refused``);
3. **valid traffic**: an order cancelled, one failed and returned to the hub, a rider's shift and an
   order on the hub the hostile orders and shifts name (dispatch must still assign it), and the
   tracked rider's pings (an arrival at the stop and ETAs must follow).

Then it reads ``dead-letter``, ``orders`` and ``etas`` from the start until every hostile message
has its dead letter and the valid traffic its end state, or nothing new arrives for ``idle_s``, or
the deadline. A dead letter belongs to the message at its ``source_topic/partition/offset``.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.hostile_corpus import BROKER_MAX_MESSAGE, ROUTE_STOPS, Hubs, Message, Outcome, corpus
from schemas import Codec, DecodeError, InvalidEvent
from schemas import events as ev
from simulator.truth import DayParams, truth_day

WATCHED = ("dead-letter", "orders", "etas")
VALID_CHECKS = ("order_cancelled", "order_returned", "order_dispatched", "arrival_from_tracking", "eta_from_tracking")


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """The running system as the entry point hands it in (benchmarks never import ``infra``)."""

    client_config: Mapping[str, Any]  # confluent-kafka settings: bootstrap servers, security
    topic: Callable[[str], str]  # a stream's name ("inbox") -> its topic name
    exits: Callable[[], Sequence[str]]  # the worker processes that have exited so far, one name per exit


@dataclass(slots=True)
class _Placed:
    """Where each produced message landed: (topic, partition, offset) -> index into ``messages``."""

    messages: list[Message] = field(default_factory=list)
    at: dict[tuple[str, int, int], int] = field(default_factory=dict)
    refused: list[tuple[int, str]] = field(default_factory=list)

    def add(self, message: Message) -> int:
        self.messages.append(message)
        return len(self.messages) - 1


# -- valid traffic ----------------------------------------------------------------------------


def _shifted(obj: Any, delta: timedelta) -> Any:
    """``obj`` (an event or a nested record of one) with every datetime moved by ``delta``."""
    if isinstance(obj, datetime):
        return obj + delta
    if isinstance(obj, tuple):
        return tuple(_shifted(x, delta) for x in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {f.name: _shifted(getattr(obj, f.name), delta) for f in dataclasses.fields(obj)
                   if isinstance(getattr(obj, f.name), datetime | tuple) or dataclasses.is_dataclass(getattr(obj, f.name))}
        return dataclasses.replace(obj, **changes)
    return obj


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidTraffic:
    setup: tuple[tuple[str, ev.Event], ...]  # before the corpus
    after: tuple[tuple[str, ev.Event], ...]  # after it
    cancelled: str  # order ids whose end state the checks look for
    returned: str
    dispatched: str
    tracked: str


def valid_traffic(now: datetime, tag: str, hubs: Hubs, seed: int) -> ValidTraffic:
    """Orders through their lifecycle, a shift and an order to dispatch, and a tracked rider's day
    (one stop, moved to end a minute before ``now``)."""
    now = now.replace(microsecond=0)
    quiet = f"{tag}-quiet"  # a hub with orders and no rider: dispatch leaves its orders alone

    def created(order_id: str, hub: str, lat: float = 12.975, lon: float = 77.60) -> ev.OrderCreated:
        return ev.OrderCreated(
            event_id=f"{order_id}-created", occurred_at=now, order_id=order_id, tracking_id=f"TRK-{order_id}",
            hub_id=hub, mode=ev.DeliveryMode.LAST_MILE, drop=ev.Location(lat=lat, lon=lon, address="1 Valid Road"),
            window_start=now - timedelta(hours=1), window_end=now + timedelta(hours=4), service_time_s=60,
            weight_kg=1.0, volume_l=2.0, units=1)

    def status(order_id: str, to: ev.OrderStatus, reason: str = "", minutes: int = 0) -> ev.StatusChanged:
        return ev.StatusChanged(event_id=f"{order_id}-{to.value}", occurred_at=now + timedelta(seconds=minutes),
                                order_id=order_id, to_status=to, reason=reason)

    def assigned(order_id: str, rider_id: str, route_id: str) -> ev.OrderAssigned:
        return ev.OrderAssigned(event_id=f"{order_id}-assigned", occurred_at=now, order_id=order_id,
                                rider_id=rider_id, route_id=route_id, sequence=1,
                                planned_arrival=now + timedelta(minutes=30))

    day = truth_day(seed, riders=1, stops_per_rider=1, noise_m=10.0, params=DayParams(hub_id=quiet))
    rider = day.riders[0]
    delta = now - timedelta(minutes=1) - max(o.ping.occurred_at for o in day.pings)
    rider_id, route_id, x = f"{tag}-tracked-rider", f"{tag}-tracked-route", f"{tag}-order-x"
    route = _shifted(rider.route, delta)
    stop = route.stops[0]
    route = dataclasses.replace(route, rider_id=rider_id, route_id=route_id,
                                stops=(dataclasses.replace(stop, order_id=x),))
    pings = [dataclasses.replace(_shifted(o.ping, delta), rider_id=rider_id, event_id=f"{tag}-{o.ping.event_id}")
             for o in day.pings]
    order_x = dataclasses.replace(created(x, quiet, stop.lat, stop.lon), occurred_at=route.occurred_at)
    setup: list[tuple[str, ev.Event]] = [
        ("routes", route), ("inbox", order_x), ("inbox", assigned(x, rider_id, route_id)),
        ("inbox", status(x, ev.OrderStatus.OUT_FOR_DELIVERY, minutes=1))]

    a, b, c = f"{tag}-order-a", f"{tag}-order-b", f"{tag}-order-c"
    shift = ev.RiderShiftStarted(
        event_id=f"{tag}-shift-v", occurred_at=now, rider_id=f"{tag}-rider-v", hub_id=hubs.dispatch,
        vehicle_type=ev.VehicleType.SCOOTER, capacity_weight_kg=30.0, capacity_volume_l=90.0, capacity_units=25,
        shift_start=now, shift_end=now + timedelta(hours=8), start=ev.GeoPoint(lat=12.9716, lon=77.5946))
    after: list[tuple[str, ev.Event]] = [
        ("inbox", created(a, quiet)),
        ("inbox", ev.OrderCancelled(event_id=f"{a}-cancelled", occurred_at=now, order_id=a, reason="customer asked")),
        ("inbox", created(b, quiet)), ("inbox", assigned(b, f"{tag}-rider-b", f"{tag}-route-b")),
        ("inbox", status(b, ev.OrderStatus.OUT_FOR_DELIVERY, minutes=1)),
        ("inbox", status(b, ev.OrderStatus.FAILED, "customer not at home", minutes=2)),
        ("inbox", status(b, ev.OrderStatus.RETURNED_TO_HUB, "back at the hub", minutes=3)),
        ("riders", shift), ("inbox", created(c, hubs.dispatch)),
        *(("gps", p) for p in pings)]
    return ValidTraffic(setup=tuple(setup), after=tuple(after), cancelled=a, returned=b, dispatched=c, tracked=x)


def _valid_state(ledger: list[ev.Event], etas: set[str], v: ValidTraffic) -> dict[str, bool]:
    def has(order_id: str, pred: Callable[[ev.Event], bool]) -> bool:
        return any(e.key == order_id and pred(e) for e in ledger)

    def to(status: ev.OrderStatus) -> Callable[[ev.Event], bool]:
        return lambda e: isinstance(e, ev.StatusChanged) and e.to_status is status

    return {
        "order_cancelled": has(v.cancelled, lambda e: isinstance(e, ev.OrderCancelled)),
        "order_returned": has(v.returned, to(ev.OrderStatus.RETURNED_TO_HUB)),
        "order_dispatched": has(v.dispatched, lambda e: isinstance(e, ev.OrderAssigned)),
        "arrival_from_tracking": has(v.tracked, to(ev.OrderStatus.ARRIVED)),
        "eta_from_tracking": v.tracked in etas,
    }


# -- producing ----------------------------------------------------------------------------------


def _producer(target: Target) -> Any:
    from confluent_kafka import Producer

    return Producer({**target.client_config, "partitioner": "murmur2_random", "acks": "all",
                     "enable.idempotence": False, "linger.ms": 20, "batch.num.messages": 10000,
                     "queue.buffering.max.messages": 1_000_000,
                     # room to offer the 1 MiB messages: whether the broker takes them is the broker's call
                     "message.max.bytes": 2 * BROKER_MAX_MESSAGE})


def _produce(target: Target, placed: _Placed, messages: list[Message], timestamps: list[int | None] | None = None,
             log: Callable[[str], None] = lambda s: None) -> None:
    from confluent_kafka import KafkaException

    producer = _producer(target)
    names = {t: target.topic(t) for t in ("inbox", "gps", "riders", "routes")}

    def report(index: int) -> Callable[[Any, Any], None]:
        def on_delivery(err: Any, msg: Any) -> None:
            if err is not None:
                placed.refused.append((index, str(err)))
            else:
                placed.at[(msg.topic(), msg.partition(), msg.offset())] = index
        return on_delivery

    for i, m in enumerate(messages):
        index = placed.add(m)
        extra = {} if timestamps is None or timestamps[i] is None else {"timestamp": timestamps[i]}
        while True:
            try:
                producer.produce(names[m.topic], m.value, m.key, on_delivery=report(index), **extra)
                break
            except BufferError:
                producer.poll(0.05)
            except KafkaException as exc:  # refused before it left (larger than the client takes)
                placed.refused.append((index, str(exc)))
                break
        if i % 5000 == 0:
            producer.poll(0)
            if i:
                log(f"  produced {i:,} of {len(messages):,}")
    left = producer.flush(120)
    if left:
        raise RuntimeError(f"{left} messages not acknowledged by the broker within 120 s")


def _as_messages(events: tuple[tuple[str, ev.Event], ...], codec: Codec) -> list[Message]:
    return [Message(topic=t, key=e.key.encode(), value=codec.encode(e), case="valid", outcome=Outcome.ACCEPTED,
                    event_id=e.event_id) for t, e in events]


# -- watching -----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Seen:
    letters: dict[int, list[ev.DeadLetterKind]] = field(default_factory=lambda: defaultdict(list))
    reasons: dict[int, str] = field(default_factory=dict)
    other_letters: Counter[str] = field(default_factory=Counter)  # dead letters of messages not ours
    unreadable: int = 0
    ledger: list[ev.Event] = field(default_factory=list)
    ledger_ids: Counter[str] = field(default_factory=Counter)
    etas: set[str] = field(default_factory=set)
    records: int = 0


def _watch(target: Target, placed: _Placed, v: ValidTraffic, hostile: set[int], deadline: float, idle_s: float,
           log: Callable[[str], None]) -> tuple[_Seen, list[str], float]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    codec = Codec()
    seen = _Seen()
    lost: list[str] = []
    consumer = Consumer({**target.client_config, "group.id": f"hostile-watch-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "fetch.message.max.bytes": 4 * BROKER_MAX_MESSAGE})
    names = {target.topic(t): t for t in WATCHED}
    started = time.monotonic()
    try:
        metadata = consumer.list_topics(timeout=15)
        consumer.assign([TopicPartition(name, p, OFFSET_BEGINNING) for name in names
                         for p in metadata.topics[name].partitions])
        last_new = time.monotonic()
        last_log = 0.0
        complete_at: float | None = None
        while time.monotonic() < deadline:
            batch = consumer.consume(num_messages=5000, timeout=0.5)
            for m in batch:
                if m.error():
                    continue
                seen.records += 1
                last_new = time.monotonic()
                try:
                    event = codec.decode(m.value())
                except (DecodeError, InvalidEvent):
                    seen.unreadable += 1
                    continue
                stream = names[m.topic()]
                if stream == "dead-letter" and isinstance(event, ev.DeadLetter):
                    index = placed.at.get((event.source_topic, event.source_partition, event.source_offset))
                    if index is None:
                        seen.other_letters[f"{event.source_topic}:{event.error_kind.value}"] += 1
                    else:
                        seen.letters[index].append(event.error_kind)
                        seen.reasons.setdefault(index, event.reason[:200])
                elif stream == "orders":
                    seen.ledger.append(event)
                    seen.ledger_ids[event.event_id] += 1
                elif stream == "etas" and isinstance(event, ev.EtaUpdated):
                    seen.etas.add(event.order_id)
            lost = list(target.exits())
            now = time.monotonic()
            lettered = sum(1 for i in hostile if i in seen.letters)
            valid = _valid_state(seen.ledger, seen.etas, v)
            if lettered >= len(hostile) and all(valid.values()):
                complete_at = complete_at or now
                if now - complete_at >= 3.0:  # a little longer: a second dead letter would show now
                    break
            if now - last_new >= idle_s:
                log(f"nothing new for {idle_s:.0f} s: stopping")
                break
            if now - last_log >= 5.0:
                last_log = now
                log(f"  {lettered:,} of {len(hostile):,} hostile messages dead-lettered; valid "
                    f"{sum(valid.values())}/{len(valid)}; {seen.records:,} records read"
                    + (f"; exited: {', '.join(lost)}" if lost else ""))
        else:
            log("deadline reached")
    finally:
        consumer.close()
    return seen, lost, time.monotonic() - started


# -- the run --------------------------------------------------------------------------------------


def run(target: Target, *, messages: int = 100_000, seed: int = 1, route_stops: tuple[int, ...] = ROUTE_STOPS,
        skip: frozenset[str] = frozenset(), timeout_s: float | None = None, idle_s: float = 60.0,
        log: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """``messages``: size of the corpus (0: each variant once, a few hundred messages); ``skip``: cases left out."""
    started = time.monotonic()
    tag = f"hx{seed}-{uuid.uuid4().hex[:6]}"
    hubs = Hubs(dispatch=f"{tag}-hub", orders_prefix=f"{tag}-orders-hub-", riders=f"{tag}-riders-hub")
    now = datetime.now(UTC)
    codec = Codec()
    log(f"building the corpus (seed {seed}, {messages:,} messages asked)")
    hostile_corpus = corpus(messages, seed=seed, now=now, tag=tag, hubs=hubs, codec=codec, route_stops=route_stops,
                            skip=skip)
    v = valid_traffic(now, tag, hubs, seed)
    placed = _Placed()

    setup = _as_messages(v.setup, codec)
    log(f"valid setup: {len(setup)} messages")
    _produce(target, placed, setup, [int(e.occurred_at.timestamp() * 1000) for _, e in v.setup])
    corpus_mb = sum(m.size for m in hostile_corpus) / 1e6
    log(f"corpus: {len(hostile_corpus):,} messages, {corpus_mb:.1f} MB")
    produce_started = time.monotonic()
    first = len(placed.messages)
    _produce(target, placed, hostile_corpus, log=log)
    produce_s = time.monotonic() - produce_started
    after = _as_messages(v.after, codec)
    # valid traffic carries its event time as the message timestamp (a device's backlog, sent late)
    _produce(target, placed, after, [int(e.occurred_at.timestamp() * 1000) for _, e in v.after])
    log(f"valid traffic: {len(after)} messages")

    refused = {i for i, _ in placed.refused}
    for i, why in placed.refused:
        if placed.messages[i].outcome is not Outcome.DEAD_LETTER:
            raise RuntimeError(f"the broker refused a valid message ({placed.messages[i].case}): {why}")
    hostile = {i for i in range(first, first + len(hostile_corpus))
               if placed.messages[i].outcome is Outcome.DEAD_LETTER and i not in refused}
    duplicates = {i for i, m in enumerate(placed.messages) if m.outcome is Outcome.DUPLICATE}
    accepted = {i for i, m in enumerate(placed.messages) if m.outcome is Outcome.ACCEPTED}
    deadline = time.monotonic() + (timeout_s if timeout_s is not None else 120.0 + len(hostile_corpus) / 50)
    log(f"waiting for {len(hostile):,} dead letters and the valid traffic's end state")
    seen, lost, wait_s = _watch(target, placed, v, hostile, deadline, idle_s, log)
    return _result(placed, seen, v, hostile, duplicates, accepted, refused, lost, {
        "messages": len(hostile_corpus), "corpus_mb": round(corpus_mb, 1), "produce_s": round(produce_s, 1),
        "produce_per_s": round(len(hostile_corpus) / produce_s) if produce_s else None, "wait_s": round(wait_s, 1),
        "elapsed_s": round(time.monotonic() - started, 1), "seed": seed, "route_stops": list(route_stops),
        "skipped": sorted(skip)})


def _result(placed: _Placed, seen: _Seen, v: ValidTraffic, hostile: set[int], duplicates: set[int],
            accepted: set[int], refused: set[int], lost: list[str], timing: dict[str, Any]) -> dict[str, Any]:
    msgs = placed.messages
    hostile_ids = {msgs[i].event_id: i for i in hostile if msgs[i].event_id}
    on_ledger = {hostile_ids[e.event_id] for e in seen.ledger if e.event_id in hostile_ids}
    rows: dict[str, dict[str, Any]] = {}
    for i in sorted(hostile):
        m = msgs[i]
        row = rows.setdefault(f"{m.case}/{m.topic}", {"hostile": 0, "dead_lettered": 0, "twice": 0, "wrong_kind": 0,
                                                       "on_ledger": 0, "expected": m.kind.value if m.kind else None,
                                                       "got": Counter(), "missing": []})
        row["hostile"] += 1
        kinds = seen.letters.get(i, [])
        row["dead_lettered"] += bool(kinds)
        row["twice"] += len(kinds) > 1
        row["wrong_kind"] += any(k is not m.kind for k in kinds)
        row["on_ledger"] += i in on_ledger
        row["got"].update(k.value for k in kinds)
        if not kinds:
            row["missing"].append(m.variant)
    for row in rows.values():
        row["got"] = dict(row["got"])
        row["missing"] = sorted(Counter(row["missing"]).items())
    valid = _valid_state(seen.ledger, seen.etas, v)
    inbox_duplicates = {msgs[i].event_id for i in duplicates if msgs[i].topic == "inbox"}
    return {
        "hostile": len(hostile),
        "dead_lettered": sum(1 for i in hostile if seen.letters.get(i)),
        "dead_lettered_twice": sum(1 for i in hostile if len(seen.letters.get(i, ())) > 1),
        "wrong_kind": sum(1 for i in hostile if any(k is not msgs[i].kind for k in seen.letters.get(i, ()))),
        "on_ledger": len(on_ledger),
        "processes_lost": len(lost),
        "lost": lost,
        "valid_processed": sum(valid.values()),
        "valid_expected": len(valid),
        "valid": valid,
        "valid_dead_lettered": sum(1 for i in accepted if seen.letters.get(i)),
        "duplicates": len(duplicates),
        "duplicates_dead_lettered": sum(1 for i in duplicates if seen.letters.get(i)),
        "duplicates_twice_on_ledger": sum(1 for e in inbox_duplicates if seen.ledger_ids[e or ""] > 1),
        "refused": len(refused),
        "refused_reasons": sorted(Counter(why.split(":")[0][:80] for _, why in placed.refused).items()),
        "other_dead_letters": dict(seen.other_letters),
        "unreadable_records": seen.unreadable,
        "by_case": rows,
        "reasons": {f"{msgs[i].case}/{msgs[i].topic}/{msgs[i].variant}": r for i, r in sorted(seen.reasons.items())
                    if i in hostile and any(k is not msgs[i].kind for k in seen.letters[i])},
        **timing,
    }


def problems(r: dict[str, Any]) -> list[str]:
    """The targets a result misses, one sentence each (empty: all met)."""
    out = []
    if r["dead_lettered"] != r["hostile"]:
        out.append(f"{r['hostile'] - r['dead_lettered']} of {r['hostile']} hostile messages not dead-lettered")
    for key, what in (("dead_lettered_twice", "dead-lettered more than once"), ("wrong_kind", "dead-lettered with the wrong kind"),
                      ("on_ledger", "hostile events on the orders ledger"), ("processes_lost", "processes lost"),
                      ("valid_dead_lettered", "valid messages dead-lettered"),
                      ("duplicates_dead_lettered", "duplicates dead-lettered"),
                      ("duplicates_twice_on_ledger", "duplicates twice on the ledger")):
        if r[key]:
            out.append(f"{r[key]} {what}" + (f" ({', '.join(r['lost'])})" if key == "processes_lost" else ""))
    if r["valid_processed"] != r["valid_expected"]:
        out.append("valid traffic not processed: " + ", ".join(k for k, ok in r["valid"].items() if not ok))
    return out


def report(r: dict[str, Any]) -> list[str]:
    lines = [
        f"hostile input: {r['messages']:,} messages ({r['corpus_mb']} MB) produced in {r['produce_s']} s, "
        f"then valid traffic; waited {r['wait_s']} s",
        f"  hostile {r['hostile']:,}, dead-lettered {r['dead_lettered']:,}, twice {r['dead_lettered_twice']:,}, "
        f"wrong kind {r['wrong_kind']:,}, on the ledger {r['on_ledger']:,}, refused by the broker {r['refused']}",
        f"  duplicates {r['duplicates']:,} (dead-lettered {r['duplicates_dead_lettered']}, twice on the ledger "
        f"{r['duplicates_twice_on_ledger']}); valid processed {r['valid_processed']}/{r['valid_expected']}; "
        f"processes lost {r['processes_lost']} {r['lost'] or ''}",
    ]
    bad = {k: row for k, row in r["by_case"].items()
           if row["dead_lettered"] != row["hostile"] or row["twice"] or row["wrong_kind"] or row["on_ledger"]}
    if bad:
        lines.append(f"  {'case/topic':<34}{'hostile':>8}{'lettered':>9}{'twice':>6}{'wrong':>6}{'ledger':>7}  "
                     "expected -> got; never dead-lettered")
        for k, row in sorted(bad.items()):
            missing = ", ".join(f"{name}" + (f" x{n}" if n > 1 else "") for name, n in row["missing"][:6])
            lines.append(f"  {k:<34}{row['hostile']:>8}{row['dead_lettered']:>9}{row['twice']:>6}{row['wrong_kind']:>6}"
                         f"{row['on_ledger']:>7}  {row['expected']} -> {row['got']}" + (f"; {missing}" if missing else ""))
    lines += [f"  MISSED: {p}" for p in problems(r)] or ["  all targets met"]
    return lines


__all__ = ["Target", "ValidTraffic", "problems", "report", "run", "valid_traffic"]
