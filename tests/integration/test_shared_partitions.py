"""Two orders workers (Faust) and two tracking workers on one broker share their partitions; one of
each is killed with SIGKILL mid-stream and the survivors take its partitions over: every order
submission reaches the ledger under its one id, and the tracking facts are exactly those the pure
tracker derives from the same events, none lost and none under a second id."""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta
from pathlib import Path

from harness import CODEC, Kafka, isolated_settings, new_id, now, order_created, stamp, start_role, stop

from infra.kafka import ensure_topics
from infra.settings import Settings
from schemas import events as ev
from schemas import topics as tp
from simulator.truth import GroundTruthDay, truth_day
from streams.domain.tracking.tracker import Tracker, events_of


def _wait_for_lines(log: Path, text: str, count: int, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if log.exists() and log.read_text(errors="replace").count(text) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"{log.name}: {text!r} not seen {count} times in {timeout_s}s:\n"
                         + (log.read_text(errors="replace")[-3000:] if log.exists() else ""))


def _shifts(day: GroundTruthDay) -> list[ev.RiderShiftStarted]:
    out = []
    for r in day.riders:
        t0 = r.route.occurred_at - timedelta(seconds=1)
        out.append(ev.RiderShiftStarted(
            event_id=f"shift-{r.route.route_id}", occurred_at=t0, rider_id=r.rider_id, hub_id=r.route.hub_id,
            vehicle_type=r.vehicle_type, capacity_weight_kg=50.0, capacity_volume_l=100.0, capacity_units=40,
            shift_start=t0, shift_end=t0 + timedelta(hours=10), start=r.route.start))
    return out


def _expected_tracking(day: GroundTruthDay, shifts: list[ev.RiderShiftStarted]) -> dict[str, ev.Event]:
    tracker = Tracker()
    out = []
    for shift, rider in zip(shifts, day.riders, strict=True):
        out += tracker.on_shift(shift) + tracker.on_route(rider.route)
    for obs in day.pings:
        out += tracker.on_ping(obs.ping)
    return {e.event_id: e for e in events_of(out, tp.TRACKING)}


def _produce(kafka: Kafka, topic: str, events: list[ev.Event]) -> dict[int, int]:
    """Produce and wait for the acks; returns the last offset written per partition."""
    name = kafka.settings.topic(topic)
    placed: dict[int, int] = {}

    def on_delivery(err: object, msg: object) -> None:
        if err is None:
            placed[msg.partition()] = max(placed.get(msg.partition(), -1), msg.offset())  # type: ignore[attr-defined]

    for e in events:
        kafka.producer.produce(name, key=e.key.encode(), value=CODEC.encode(e, name), timestamp=stamp(e),
                               on_delivery=on_delivery)
    kafka.producer.flush(30)
    return placed


def _wait_committed(settings: Settings, group: str, topic: str, placed: dict[int, int], timeout_s: float = 90) -> None:
    """Until ``group`` has committed past every offset in ``placed`` (a deadline, not a guess)."""
    from confluent_kafka import Consumer, TopicPartition

    from infra.kafka import confluent_config

    probe = Consumer(confluent_config(settings, **{"group.id": group, "enable.auto.commit": False}))
    try:
        deadline = time.monotonic() + timeout_s
        name = settings.topic(topic)
        while time.monotonic() < deadline:
            committed = probe.committed([TopicPartition(name, p) for p in placed], timeout=10)
            if all(c.offset > placed[c.partition] for c in committed):
                return
            time.sleep(0.2)
        raise AssertionError(f"{group} did not commit past {placed} on {name} within {timeout_s} s")
    finally:
        probe.close()


def test_survivors_take_over_a_killed_worker_of_each_kind_with_nothing_lost_or_doubled(settings: Settings) -> None:
    own = isolated_settings(settings, "share")
    ensure_topics(own)
    kafka = Kafka(own)
    logs = Path(own.data_dir)
    tag = own.app_id
    env = {"MILESTREAM_TRACKER_CHECKPOINT_S": "0.5", "BROKER_COMMIT_INTERVAL": "0.3"}
    procs = {name: start_role(own, role, logs / f"{tag}-{name}.log", **env)
             for name, role in (("orders-a", "orders"), ("orders-b", "orders"),
                                ("tracking-a", "tracking"), ("tracking-b", "tracking"))}
    try:
        for name in ("orders-a", "orders-b"):
            _wait_for_lines(logs / f"{tag}-{name}.log", "Worker]: Ready", 1)
        for name in ("tracking-a", "tracking-b"):
            _wait_for_lines(logs / f"{tag}-{name}.log", "restored", 1)

        day = truth_day(31, riders=6, stops_per_rider=3, noise_m=10.0)
        shifts = _shifts(day)
        facts = _expected_tracking(day, shifts)
        assert len(facts) >= 6 * 4  # arrivals and departures at hubs and stops
        _produce(kafka, "riders", shifts)
        placed = _produce(kafka, "routes", [r.route for r in day.riders])
        # plans before pings: the tracking workers read their topics side by side
        _wait_committed(own, f"{own.app_id}-tracking", "routes", placed)
        orders = [order_created(hub_id=f"hub-share-{new_id()[:6]}") for _ in range(60)]
        t = now()
        assigned = [ev.OrderAssigned(event_id=new_id(), occurred_at=t, order_id=o.order_id, rider_id="r1",
                                     route_id="R", sequence=i + 1, planned_arrival=t) for i, o in enumerate(orders)]
        half = len(day.pings) // 2
        _produce(kafka, "inbox", orders + assigned[:30])
        _produce(kafka, "gps", [o.ping for o in day.pings[:half]])
        kafka.wait_for("orders", lambda e: isinstance(e, ev.OrderAssigned) and e.order_id in
                       {o.order_id for o in orders}, timeout_s=60)
        kafka.wait_for("tracking", lambda e: isinstance(e, ev.ArrivedAtStop) and e.event_id in facts, timeout_s=90)
        for name in ("orders-a", "tracking-a"):  # mid-stream, no clean shutdown
            os.kill(procs[name].pid, signal.SIGKILL)
            procs[name].wait(10)
        _produce(kafka, "inbox", assigned[30:])
        _produce(kafka, "gps", [o.ping for o in day.pings[half:]])

        ours = {o.order_id for o in orders}
        ledger = kafka.wait_for("orders", lambda e: e.order_id in ours and isinstance(e, ev.OrderAssigned),
                                count=len(assigned), timeout_s=120)
        riders = {r.rider_id for r in day.riders}
        seen = kafka.wait_for("tracking", lambda e: e.rider_id in riders, count=len(facts), timeout_s=180)
        time.sleep(3.0)  # anything extra would show up now
        ledger = kafka.wait_for("orders", lambda e: e.order_id in ours, count=len(orders) + len(assigned), timeout_s=30)
        seen = kafka.wait_for("tracking", lambda e: e.rider_id in riders, count=len(facts), timeout_s=30)
        assert procs["orders-b"].poll() is None and procs["tracking-b"].poll() is None  # the survivors lived
    finally:
        stop(*procs.values())
    want = {o.event_id for o in orders} | {a.event_id for a in assigned}
    assert {e.event_id for e in ledger} == want  # every submission once, none under a second id
    per_order = {}
    for e in ledger:
        if isinstance(e, ev.OrderAssigned):
            per_order.setdefault(e.order_id, set()).add(e.event_id)
    assert all(len(ids) == 1 for ids in per_order.values()) and len(per_order) == len(orders)
    assert {e.event_id for e in seen} == set(facts)  # nothing lost, no fact under a second id
    by_id = {e.event_id: e for e in seen}
    assert all(by_id[i] == facts[i] for i in facts)  # the same facts, field for field
