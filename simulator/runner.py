"""Plays a simulated day against Kafka: the order system creates orders, rider apps start shifts,
follow the routes dispatch plans, report pings, hand over with the customer's OTP or fail, and
go home. Time is compressed: one wall second is ``speedup`` simulated seconds.

A rider drives one route at a time. A re-plan (a new route for a rider already driving) replaces
the ride at its next wait, never in the middle of a handover: what the rider already did stands,
and the new route's remaining stops are driven from where the rider is, at the clock's now."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from schemas import Codec, DecodeError, InvalidEvent
from schemas import events as ev
from schemas import topics as tp
from simulator import driving
from simulator.world import SPEED_MPS, Day
from streams.domain.orders import otp

log = logging.getLogger(__name__)
TERMINAL = {ev.OrderStatus.DELIVERED, ev.OrderStatus.RETURNED_TO_HUB, ev.OrderStatus.CANCELLED}


@dataclass
class Progress:
    orders: int = 0
    produced: int = 0
    routes: int = 0
    riders_done: int = 0
    delivered: int = 0
    failed: int = 0
    status: dict[str, ev.OrderStatus] = field(default_factory=dict)

    @property
    def settled(self) -> int:
        return sum(1 for s in self.status.values() if s in TERMINAL)


class SimClock:
    def __init__(self, start: datetime, speedup: float) -> None:
        self.start, self.speedup, self.wall0 = start, speedup, time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self.wall0) * self.speedup)

    async def sleep_until(self, t: datetime, interrupt: asyncio.Event | None = None) -> bool:
        """Sleep until ``t``; True when ``interrupt`` is (or gets) set first."""
        if interrupt is not None and interrupt.is_set():
            return True
        delay = (t - self.now()).total_seconds() / self.speedup
        if delay <= 0:
            return False
        if interrupt is None:
            await asyncio.sleep(delay)
            return False
        try:
            async with asyncio.timeout(delay):
                await interrupt.wait()
        except TimeoutError:
            return False
        return True


@dataclass(eq=False)
class RiderApp:
    """The rider's phone: the route in hand and what the rider already did, which a re-plan does
    not undo (delivered and failed stops are not visited again; failed parcels go back to the hub
    at the end of the last route)."""

    rider_id: str
    hub: ev.GeoPoint
    position: tuple[float, float]
    clock: datetime  # time of the rider's last step
    next_route: ev.RoutePlanned | None = None
    replanned: asyncio.Event = field(default_factory=asyncio.Event)
    out: set[str] = field(default_factory=set)  # sent out for delivery by this rider
    handed: set[str] = field(default_factory=set)  # delivered or failed by this rider
    failed: list[str] = field(default_factory=list)  # on board until back at the hub
    rides: int = 0
    home: bool = False
    task: asyncio.Task[None] | None = None


class DayRunner:
    def __init__(self, *, day: Day, kafka: dict[str, Any], topic: Callable[[str], str], otp_key: str,
                 speedup: float = 200.0, params: driving.DriveParams = driving.DriveParams(),
                 codec: Codec | None = None) -> None:
        self.day, self.kafka, self.topic = day, kafka, topic
        self.key = otp.key_bytes(otp_key)
        self.speedup, self.params = speedup, params
        self.codec = codec or Codec()
        self.clock = SimClock(day.config.day_start, speedup)
        self.progress = Progress(orders=len(day.orders))
        self._otps: dict[str, ev.OtpIssued] = {}
        self._otp_waiters: dict[str, asyncio.Event] = {}
        self._holder: dict[str, str] = {}  # order -> rider of its last accepted assignment
        self._news = asyncio.Event()  # replaced (after being set) whenever the ledger or a route moves on
        self._producer: Any = None
        self._vehicle = {s.rider_id: s.vehicle_type for s in day.shifts}
        self._apps = {s.rider_id: RiderApp(rider_id=s.rider_id, hub=s.start, position=(s.start.lat, s.start.lon),
                                           clock=s.shift_start) for s in day.shifts}
        self._seen_routes: set[str] = set()
        self.assignment_wait_s = 120.0  # wall seconds a ride waits for its assignments in the ledger

    async def _send(self, spec: tp.TopicSpec, event: ev.Event) -> None:
        name = self.topic(spec.name)
        # Stamped with the event's (simulated) time: the stream edge bounds event times by the record's.
        self._producer.send(name, event.key.encode(), self.codec.encode(event, name),
                            timestamp_ms=int(event.occurred_at.timestamp() * 1000))
        self.progress.produced += 1

    async def run(self, timeout_s: float = 600.0, alive: Callable[[], bool] = lambda: True) -> Progress:
        """Play the day; stops with an error at ``timeout_s``, at the first write the broker does not
        acknowledge, or as soon as ``alive()`` is False (the worker process died: nothing would ever
        settle). ``kafka`` is a librdkafka client configuration (confluent-kafka)."""
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        from streams.kafka import Publisher

        # murmur2: the partitioner of Faust's client, so that the simulator's pings and Faust's routes
        # for one rider land on the same partition of their topics (the tracker joins them there).
        self._producer = Publisher({**self.kafka, "partitioner": "murmur2_random", "linger.ms": 5, "acks": "all"})
        # A reader of whole topics, not a member of any group: nothing is committed.
        consumer = Consumer({**self.kafka, "group.id": f"milestream-sim-{time.time_ns()}",
                             "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        listener: asyncio.Task[None] | None = None
        flushed = False
        try:
            parts = []
            for spec in (tp.ORDERS, tp.ROUTES, tp.NOTIFICATIONS):
                name = self.topic(spec.name)
                parts += [TopicPartition(name, p, OFFSET_BEGINNING) for p in await self._wait_partitions(consumer, name)]
            consumer.assign(parts)
            for shift in self.day.shifts:
                await self._send(tp.RIDERS, shift)
            for order in self.day.orders:
                await self._send(tp.INBOX, order)
                self.progress.status[order.order_id] = ev.OrderStatus.CREATED
            await asyncio.to_thread(self._producer.flush)
            riders: list[asyncio.Task[None]] = []
            listener = asyncio.create_task(self._listen(consumer, riders))
            deadline = time.monotonic() + timeout_s
            while self.progress.settled < len(self.day.orders) or any(not r.done() for r in riders):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"day not finished after {timeout_s:.0f}s: {self.progress.settled} of "
                                       f"{len(self.day.orders)} orders settled")
                if not alive():
                    raise RuntimeError("the stream worker is not running (see its log); stopping the day")
                self._producer.raise_failure()
                if listener.done():
                    listener.result()
                for r in riders:
                    if r.done() and not r.cancelled() and r.exception():
                        raise r.exception()  # type: ignore[misc]
                await asyncio.sleep(0.2)
            await asyncio.to_thread(self._producer.flush)
            flushed = True
            return self.progress
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await listener
            consumer.close()
            if not flushed:  # the day failed: still deliver what it wrote, best effort
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self._producer.flush, 10.0)
            self._producer.close()

    @staticmethod
    async def _wait_partitions(consumer: Any, topic: str) -> list[int]:
        for _ in range(100):
            metadata = await asyncio.to_thread(consumer.list_topics, topic, 5.0)
            found = metadata.topics.get(topic)
            if found is not None and found.error is None and found.partitions:
                return sorted(found.partitions)
            await asyncio.sleep(0.1)
        raise RuntimeError(f"topic {topic} not found")

    async def _listen(self, consumer: Any, riders: list[asyncio.Task[None]]) -> None:
        """Reads the ledger, routes and notices back. Polls without blocking (the consumer is only
        ever touched from the event loop, so closing it never races a poll) and naps when idle."""
        from streams.kafka import translate

        orders_topic = self.topic(tp.ORDERS.name)
        while True:
            messages = consumer.consume(num_messages=5000, timeout=0)
            if not messages:
                await asyncio.sleep(0.05)
                continue
            for message in messages:
                if message.error() is not None:
                    failure = translate(message.error(), f"reading {message.topic()}")
                    if failure.fatal:
                        raise failure
                    log.warning("%s", failure)
                    continue
                value = message.value()
                if (schema_id := self.codec.missing_schema_id(value)) is not None:  # off the loop
                    await asyncio.get_running_loop().run_in_executor(None, self.codec.fetch_schema, schema_id)
                try:
                    event = self.codec.decode(value)
                except (DecodeError, InvalidEvent):
                    continue
                if isinstance(event, ev.RoutePlanned) and event.route_id not in self._seen_routes:
                    self._seen_routes.add(event.route_id)
                    self.progress.routes += 1
                    self._on_route(event, riders)
                elif isinstance(event, ev.OtpIssued):
                    self._otps[event.order_id] = event
                    self._otp_waiters.setdefault(event.order_id, asyncio.Event()).set()
                elif message.topic() == orders_topic:
                    self._on_ledger(event)
            self._news.set()
            self._news = asyncio.Event()

    def _on_route(self, route: ev.RoutePlanned, riders: list[asyncio.Task[None]]) -> None:
        """The rider's next route, which replaces the one being driven (a re-plan) at its next wait."""
        app = self._apps.get(route.rider_id)
        if app is None:
            log.warning("route %s for unknown rider %s ignored", route.route_id, route.rider_id)
            return
        app.next_route = route
        app.replanned.set()
        if app.task is None or app.task.done():
            app.task = asyncio.create_task(self._rider_app(app))
            riders.append(app.task)

    def _on_ledger(self, event: ev.Event) -> None:
        if isinstance(event, ev.OrderAssigned):
            self._holder[event.order_id] = event.rider_id
            self.progress.status[event.order_id] = ev.OrderStatus.ASSIGNED
        elif isinstance(event, ev.StatusChanged):
            self.progress.status[event.order_id] = event.to_status
            if event.to_status is ev.OrderStatus.DELIVERED:
                self.progress.delivered += 1
            elif event.to_status is ev.OrderStatus.FAILED:
                self.progress.failed += 1
        elif isinstance(event, ev.OrderCancelled):
            self.progress.status[event.order_id] = ev.OrderStatus.CANCELLED

    async def _rider_app(self, app: RiderApp) -> None:
        while app.next_route is not None:
            route, app.next_route = app.next_route, None
            app.replanned.clear()
            await self._ride(app, route)

    async def _stops_to_visit(self, app: RiderApp, route: ev.RoutePlanned) -> driving.Triage | None:
        """The route's stops once every one is settled in the ledger as this rider's or not
        (the app shows a route once its assignments are confirmed); None if re-planned meanwhile."""
        deadline = time.monotonic() + self.assignment_wait_s
        while True:
            news = self._news
            if app.next_route is not None:
                return None
            triage = driving.triage(route.stops, app.rider_id, self.progress.status, self._holder, app.handed,
                                    app.out)
            left = deadline - time.monotonic()
            if not triage.waiting:
                return triage
            if left <= 0:
                log.warning("route %s of %s: no assignment in the ledger for %s; driving without them",
                            route.route_id, app.rider_id, ", ".join(triage.waiting))
                return triage
            try:
                async with asyncio.timeout(left):
                    await news.wait()
            except TimeoutError:
                pass

    async def _ride(self, app: RiderApp, route: ev.RoutePlanned) -> None:
        seed = self.day.config.seed
        triage = await self._stops_to_visit(app, route)
        if triage is None:
            return
        if app.home and not triage.visit and not app.failed:
            return  # a re-plan that reached a rider already gone home with nothing left to do
        # The first route starts at the plan's start, not "now": what the rider reports depends on
        # the seed and the plan only (if the sim clock is past it, the first pings go out as fast as
        # possible). A re-plan takes over where the rider is, now.
        start_at = route.planned_start if app.rides == 0 and route.reason == "dispatch" else max(self.clock.now(), app.clock)
        app.rides += 1
        app.home = False
        for order_id in triage.send_out:
            app.out.add(order_id)
            await self._send(tp.INBOX, ev.StatusChanged(
                event_id=driving.new_event_id(seed, route.route_id, order_id, "out"), occurred_at=start_at,
                order_id=order_id, to_status=ev.OrderStatus.OUT_FOR_DELIVERY, reason="left_hub",
                rider_id=route.rider_id, location=ev.GeoPoint(lat=app.position[0], lon=app.position[1])))
        speed = SPEED_MPS[self._vehicle.get(route.rider_id, ev.VehicleType.SCOOTER)]
        last = (start_at, *app.position)
        steps = driving.drive(dataclasses.replace(route, stops=triage.visit), speed, start_at, seed, self.params,
                              origin=app.position, home=(app.hub.lat, app.hub.lon))
        for step in steps:
            if await self.clock.sleep_until(driving.step_time(step), app.replanned):
                now = self.clock.now()
                app.position, app.clock = driving.position_at(last, step, now), max(now, last[0])
                return
            last = (driving.step_time(step), step.lat, step.lon)
            app.position, app.clock = (step.lat, step.lon), last[0]
            if isinstance(step, driving.Ping):
                await self._send(tp.GPS, step.ping)
            elif isinstance(step, driving.Handover):
                app.handed.add(step.order_id)
                if step.delivered:
                    await self._hand_over(route, step)
                else:
                    app.failed.append(step.order_id)
                    await self._send(tp.INBOX, ev.StatusChanged(
                        event_id=driving.new_event_id(seed, route.route_id, step.order_id, "failed"), occurred_at=step.at,
                        order_id=step.order_id, to_status=ev.OrderStatus.FAILED, reason=step.reason,
                        rider_id=route.rider_id, location=ev.GeoPoint(lat=step.lat, lon=step.lon)))
            elif isinstance(step, driving.BackAtHub):
                for order_id in app.failed:
                    await self._send(tp.INBOX, ev.StatusChanged(
                        event_id=driving.new_event_id(seed, route.route_id, order_id, "returned"), occurred_at=step.at,
                        order_id=order_id, to_status=ev.OrderStatus.RETURNED_TO_HUB, reason="back_at_hub",
                        rider_id=route.rider_id, location=app.hub))
                app.failed.clear()
                await self._send(tp.RIDERS, ev.RiderShiftEnded(
                    event_id=driving.new_event_id(seed, route.route_id, "shift-end"), occurred_at=step.at,
                    rider_id=route.rider_id, position=app.hub))
                app.home = True
                self.progress.riders_done = sum(a.home for a in self._apps.values())

    async def _hand_over(self, route: ev.RoutePlanned, step: driving.Handover) -> None:
        """The customer reads out the OTP from the notification; the rider app sends its salted hash."""
        waiter = self._otp_waiters.setdefault(step.order_id, asyncio.Event())
        await asyncio.wait_for(waiter.wait(), timeout=60)
        notice = self._otps[step.order_id]
        code = otp.open_sealed(self.key, notice.otp_sealed).decode()
        tries = [("000000" if code != "000000" else "111111"), code] if step.wrong_otp_first else [code]
        for i, attempt in enumerate(tries):
            await self._send(tp.INBOX, ev.PodSubmitted(
                event_id=driving.new_event_id(self.day.config.seed, route.route_id, step.order_id, f"pod{i}"),
                occurred_at=step.at + timedelta(seconds=20 * i), order_id=step.order_id, rider_id=route.rider_id,
                otp_hash=otp.hash_otp(attempt, notice.otp_salt), recipient_name="customer",
                location=ev.GeoPoint(lat=step.lat, lon=step.lon)))
