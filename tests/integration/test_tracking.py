"""Live tracking on the real broker and worker: a rider's pings become arrivals, departures, ETAs
and a delay alert; a worker killed mid-stream and restarted continues from its checkpoint with
no arrival lost and none given a second id.

The expected facts come from the pure tracker run on the same events in this process: the
worker must derive exactly those, wherever it was killed."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path

from harness import CODEC, Kafka, isolated_settings, stamp, start_role

from infra.kafka import ensure_topics
from infra.settings import Settings
from schemas import DecodeError, InvalidEvent
from schemas import events as ev
from schemas import topics as tp
from simulator.truth import GroundTruthDay, truth_day
from streams.domain.tracking import alerts
from streams.domain.tracking.tracker import Tracker, events_of


def _start(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    return start_role(settings, "tracking", log, MILESTREAM_TRACKER_CHECKPOINT_S="0.5")


def _stop(worker: subprocess.Popen[bytes]) -> None:
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(30)
    except subprocess.TimeoutExpired:
        worker.kill()


def _day(seed: int, tight_windows: bool = False) -> tuple[GroundTruthDay, ev.RiderShiftStarted]:
    day = truth_day(seed, riders=1, stops_per_rider=4, noise_m=10.0)
    rider = day.riders[0]
    route = rider.route
    if tight_windows:  # promised within a minute of the start: every stop will be late
        route = dataclasses.replace(route, stops=tuple(
            dataclasses.replace(s, window_end=route.planned_start + timedelta(minutes=1)) for s in route.stops))
        day = dataclasses.replace(day, riders=(dataclasses.replace(rider, route=route),))
    t0 = route.occurred_at - timedelta(seconds=1)
    shift = ev.RiderShiftStarted(
        event_id=f"shift-{route.route_id}", occurred_at=t0, rider_id=rider.rider_id, hub_id=route.hub_id,
        vehicle_type=rider.vehicle_type, capacity_weight_kg=50.0, capacity_volume_l=100.0, capacity_units=40,
        shift_start=t0, shift_end=t0 + timedelta(hours=10), start=route.start)
    return day, shift


def _own_worker(settings: Settings, name: str) -> tuple[Settings, Kafka, Path]:
    """Topics and a log of the test's own, for a worker it starts and kills itself."""
    own = isolated_settings(settings, name)
    ensure_topics(own)
    return own, Kafka(own), Path(own.data_dir) / f"{own.app_id}.log"


def _expected(day: GroundTruthDay, shift: ev.RiderShiftStarted) -> list[tuple[tp.TopicSpec, ev.Event]]:
    tracker = Tracker()
    out = tracker.on_shift(shift) + tracker.on_route(day.riders[0].route)
    for obs in day.pings:
        out += tracker.on_ping(obs.ping)
    return out


def _produce_setup(settings: Settings, kafka: Kafka, shift: ev.RiderShiftStarted, route: ev.RoutePlanned) -> None:
    """Shift and route, then wait until the tracking worker committed past the route: it reads its
    topics side by side, so pings sent at once could be read before the plan they belong to."""
    placed: list[tuple[int, int]] = []
    for topic, event in (("riders", shift), ("routes", route)):
        name = settings.topic(topic)
        kafka.producer.produce(name, key=event.key.encode(), value=CODEC.encode(event, name), timestamp=stamp(event),
                               on_delivery=lambda err, msg: placed.append((msg.partition(), msg.offset())))
    kafka.producer.flush(10)
    _wait_committed(settings, "routes", [placed[-1]])


def _wait_committed(settings: Settings, topic: str, placed: list[tuple[int, int]]) -> None:
    """Until the tracking worker has committed past each ``(partition, offset)`` of ``topic``."""
    from confluent_kafka import Consumer, TopicPartition

    from infra.kafka import confluent_config

    last = {p: o for p, o in sorted(placed)}
    probe = Consumer(confluent_config(settings, **{"group.id": f"{settings.app_id}-tracking",
                                                   "enable.auto.commit": False}))
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            committed = probe.committed([TopicPartition(settings.topic(topic), p) for p in last], timeout=10)
            if all(c.offset > last[c.partition] for c in committed):
                return
            time.sleep(0.2)
        raise AssertionError(f"the tracking worker did not read {topic} up to {last} within 90 s")
    finally:
        probe.close()


def _produce_pings(settings: Settings, kafka: Kafka, pings: list[ev.GpsPing]) -> list[tuple[int, int]]:
    """The pings, acknowledged; where each landed."""
    name = settings.topic("gps")
    placed: list[tuple[int, int]] = []
    for p in pings:
        kafka.producer.produce(name, key=p.rider_id.encode(), value=CODEC.encode(p, name), timestamp=stamp(p),
                               on_delivery=lambda err, msg: placed.append((msg.partition(), msg.offset())))
    kafka.producer.flush(30)
    return placed


def test_pings_give_arrivals_etas_and_a_delay_alert(settings: Settings, kafka: Kafka, worker: object) -> None:
    day, shift = _day(21, tight_windows=True)
    route = day.riders[0].route
    rider_id = shift.rider_id
    expected = _expected(day, shift)
    _produce_setup(settings, kafka, shift, route)
    _produce_pings(settings, kafka, [o.ping for o in day.pings])

    want_arrivals = {e.event_id for e in events_of(expected, tp.TRACKING) if isinstance(e, ev.ArrivedAtStop)}
    assert len(want_arrivals) >= 4  # the hub and the stops
    arrivals = kafka.wait_for("tracking", lambda e: isinstance(e, ev.ArrivedAtStop) and e.route_id == route.route_id,
                              count=len(want_arrivals), timeout_s=90)
    assert {a.event_id for a in arrivals} == want_arrivals
    assert all(0.0 <= a.confidence <= 1.0 for a in arrivals)
    etas = kafka.wait_for("etas", lambda e: e.route_id == route.route_id, count=4, timeout_s=30)
    assert {e.order_id for e in etas} >= {s.order_id for s in route.stops[1:]}
    late = kafka.wait_for("alerts", lambda e: e.rider_id == rider_id and e.kind == "delay_risk", timeout_s=30)
    assert late[0].order_id in {s.order_id for s in route.stops}
    def arrived(m: object) -> bool:  # the shared inbox also holds the dead-letter tests' garbage
        try:
            e = CODEC.decode(m.value())  # type: ignore[attr-defined]
        except (DecodeError, InvalidEvent):
            return False
        return isinstance(e, ev.StatusChanged) and e.rider_id == rider_id and e.to_status is ev.OrderStatus.ARRIVED

    status = [CODEC.decode(m.value()) for m in kafka.wait_for("inbox", arrived, count=3, timeout_s=30, decode=False)]
    assert {s.order_id for s in status} <= {s.order_id for s in route.stops}


def test_a_pickup_stop_gives_a_pickup_arrival_and_no_arrived_status(settings: Settings, kafka: Kafka,
                                                                    worker: object) -> None:
    """A hyperlocal pair on the real worker: the first stop is the pickup of the second's order.
    Arriving there is an arrival of kind pickup under the fence ``<order>/pickup``, and no ARRIVED
    status reaches the inbox (the rider confirms a pickup); the drops get theirs."""
    day, shift = _day(23)
    rider_id = "rider-pickup-23"  # its own rider: the shared worker holds the other tests' riders
    route = day.riders[0].route
    pickup = dataclasses.replace(route.stops[0], kind=ev.StopKind.PICKUP, order_id=route.stops[1].order_id)
    route = dataclasses.replace(route, rider_id=rider_id, stops=(pickup, *route.stops[1:]))
    shift = dataclasses.replace(shift, rider_id=rider_id)
    pings = [dataclasses.replace(o.ping, rider_id=rider_id) for o in day.pings]
    tracker = Tracker()
    expected = tracker.on_shift(shift) + tracker.on_route(route)
    for p in pings:
        expected += tracker.on_ping(p)
    want = [e for e in events_of(expected, tp.TRACKING) if isinstance(e, ev.ArrivedAtStop) and e.kind is ev.FenceKind.STOP]
    assert (want[0].fence_id, want[0].stop_kind) == (f"{pickup.order_id}/pickup", ev.StopKind.PICKUP)
    want_status = {e.event_id for e in events_of(expected, tp.INBOX)}
    assert len(want_status) == len(want) - 1  # every stop arrived at but the pickup
    _produce_setup(settings, kafka, shift, route)
    _produce_pings(settings, kafka, pings)

    arrivals = kafka.wait_for("tracking", lambda e: isinstance(e, ev.ArrivedAtStop) and e.route_id == route.route_id
                              and e.kind is ev.FenceKind.STOP, count=len(want), timeout_s=90)
    assert sorted((a.fence_id, a.order_id, a.stop_kind) for a in arrivals) == \
        sorted((w.fence_id, w.order_id, w.stop_kind) for w in want)

    def arrived(m: object) -> bool:
        try:
            e = CODEC.decode(m.value())  # type: ignore[attr-defined]
        except (DecodeError, InvalidEvent):
            return False
        return isinstance(e, ev.StatusChanged) and e.rider_id == rider_id and e.to_status is ev.OrderStatus.ARRIVED

    status = [CODEC.decode(m.value()) for m in kafka.wait_for("inbox", arrived, count=len(want_status), timeout_s=30,
                                                              decode=False)]
    assert {s.event_id for s in status} == want_status  # none for the pickup


def test_a_killed_worker_continues_without_loss_or_duplicate_events(settings: Settings) -> None:
    own, kafka, log = _own_worker(settings, "track")
    day, shift = _day(22)
    rider_id = shift.rider_id
    expected = _expected(day, shift)
    facts = {e.event_id: e for e in events_of(expected, tp.TRACKING)}
    assert len(facts) >= 8  # arrivals and departures at the hub and 4 stops
    half = len(day.pings) // 2

    worker = _start(own, log)
    try:
        _produce_setup(own, kafka, shift, day.riders[0].route)
        _produce_pings(own, kafka, [o.ping for o in day.pings[:half]])
        kafka.wait_for("tracking", lambda e: isinstance(e, ev.ArrivedAtStop) and e.kind is ev.FenceKind.STOP,
                       timeout_s=90)
        time.sleep(0.7)  # at least one checkpoint after the first arrival, then die mid-stream
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        _produce_pings(own, kafka, [o.ping for o in day.pings[half:]])
        worker = _start(own, log)
        seen = kafka.wait_for("tracking", lambda e: e.rider_id == rider_id, count=len(facts), timeout_s=120)
        time.sleep(2.0)  # anything extra would show up now
        seen = kafka.wait_for("tracking", lambda e: e.rider_id == rider_id, count=len(facts), timeout_s=10)
    finally:
        _stop(worker)
    assert {e.event_id for e in seen} == set(facts)  # nothing lost, no fact under a second id
    by_id = {e.event_id: e for e in seen}
    assert all(by_id[i] == facts[i] for i in facts)  # the same facts, field for field


def _on_another_partition(rider_id: str, partitions: int) -> str:
    """A rider id whose ``gps`` partition (murmur2, as every producer of ours keys it) is not ``rider_id``'s."""
    from aiokafka.partitioner import murmur2

    def part(key: str) -> int:
        return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions

    return next(c for c in (f"{rider_id}-b{n}" for n in range(100)) if part(c) != part(rider_id))


def test_a_rider_whose_partition_was_read_to_its_end_is_called_offline_by_the_others_clock(settings: Settings) -> None:
    """Two riders on two ``gps`` partitions; the second one's phone goes off mid-route while the
    first pings on. The worker judges a rider by its own partition's clock, which stands while
    nothing comes; only the worker seeing that partition read to its end (the last fetch's high
    watermark) lets the first rider's pings tell the time there, and the silent rider is called
    offline; the other is not."""
    own, kafka, log = _own_worker(settings, "trackparts")
    day, shift = _day(24)
    pinging = shift.rider_id
    route = day.riders[0].route
    quiet = _on_another_partition(pinging, own.kafka_partitions)
    quiet_route = dataclasses.replace(route, rider_id=quiet, route_id=f"{route.route_id}-b")
    quiet_shift = dataclasses.replace(shift, rider_id=quiet, event_id=f"{shift.event_id}-b")
    tracker = Tracker()  # where the mirrored rider is driving, a third of the way in: its phone goes off there
    tracker.on_shift(quiet_shift)
    tracker.on_route(quiet_route)
    cut = len(day.pings) // 3
    mirrored = [dataclasses.replace(o.ping, rider_id=quiet, device_id=f"{o.ping.device_id}-b",
                                    event_id=f"{o.ping.event_id}-b") for o in day.pings]
    for p in mirrored[:cut]:
        tracker.on_ping(p)
    while tracker.riders[quiet].alert.progress.task is not alerts.Task.DRIVING:
        tracker.on_ping(mirrored[cut])
        cut += 1
    assert day.pings[-1].received_s - day.pings[cut].received_s > 600  # the other rider pings on for 10 min and more

    worker = _start(own, log)
    try:
        _produce_setup(own, kafka, shift, route)
        _produce_setup(own, kafka, quiet_shift, quiet_route)
        # up to the moment the phone goes off, both read; then the other rider's next half hour
        _wait_committed(own, "gps", _produce_pings(own, kafka, mirrored[:cut] + [o.ping for o in day.pings[:cut]]))
        _produce_pings(own, kafka, [o.ping for o in day.pings[cut:]])
        offline = kafka.wait_for("alerts", lambda e: e.kind == "rider_offline", timeout_s=90)
        time.sleep(1.0)
        offline = kafka.wait_for("alerts", lambda e: e.kind == "rider_offline", timeout_s=10)
    finally:
        _stop(worker)
    assert [e.rider_id for e in offline] == [quiet]
    assert offline[0].occurred_at.timestamp() >= day.pings[cut].received_s + 300
