"""Plays a simulated day against Kafka on a compressed clock (one wall second is ``speedup``
simulated seconds): the order system creates orders at their creation time, customers cancel,
move their drop or pick a slot for a re-attempt, rider apps start shifts, follow the routes
dispatch plans, report pings, pick up at stores, hand over with the customer's OTP or fail with
a reason, take breaks and go home. Every event is produced when the simulated clock reaches its
time, stamped with it.

A rider drives one route at a time, several a shift: after a route it rides back to the hub and
waits there for the next. A new route for a rider already driving replaces the ride at its next
wait (mid-leg, from where the rider is; never in the middle of a handover): what the rider
already did stands. Riders really drive at :data:`CITY`'s speeds (time of day, zone, the rider's
own pace), not at the planner's: the scorecard's planned-arrival error is measured against them.
The rider app's decisions are :mod:`simulator.rider`'s; the figures, :mod:`simulator.scorecard`'s."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas import Codec, DecodeError, InvalidEvent
from schemas import events as ev
from schemas import topics as tp
from simulator import rider as app_logic
from simulator.continuous import AddressChange, Cancel, PhoneSilent, UnplannedBreak
from simulator.scorecard import Scorecard
from simulator.truth import GpsNoise, Knot, TrueSpeeds, drive_leg, stand
from simulator.world import Day, attempt_outcome, customer_slot, rng_for, sim_id
from solver.geo import haversine_m
from streams.domain.hub_policy import HubPolicies
from streams.domain.orders import otp
from streams.errors import KafkaFailure

log = logging.getLogger(__name__)
S = ev.OrderStatus
TERMINAL = app_logic.SETTLED

# The city's true speeds: rush hours much slower than off-peak (deeper than truth.TrueSpeeds'
# defaults), and nothing like the planner's profiles.
CITY = TrueSpeeds(rush_depth={ev.VehicleType.BIKE: 0.15, ev.VehicleType.SCOOTER: 0.45, ev.VehicleType.CAR: 0.6,
                              ev.VehicleType.VAN: 0.55})
PING_INTERVAL_S = 10.0
IDLE_STEP_S = 60.0  # an idle rider at the hub looks at its shift and breaks this often (simulated)
LOAD_S = 90.0  # loading parcels at the hub before a route
AT_HUB_M = 150.0
SILENT_AFTER_S = 60.0  # a phone goes silent this long into the leg
OTP_WAIT_S = 60.0  # wall seconds a handover waits for the customer's OTP notice
FINAL_FLUSH_S = 150.0  # wall seconds the day's last writes may take (librdkafka re-sends after 60 s)
ASSIGNMENT_WAIT_S = 30.0  # wall seconds a route waits for its assignments to show in the ledger
# Pings leave in batches, as a gateway sends a fleet's fixes: the embedded broker's cost of a fetch grows
# with a partition's count of batches, and one ping a batch made it the day's bottleneck (README).
PING_LINGER_MS = 100


@dataclass
class Progress:
    orders: int = 0
    created: int = 0
    produced: int = 0
    routes: int = 0
    riders_on_shift: int = 0
    riders_done: int = 0
    delivered: int = 0
    failed: int = 0
    status: dict[str, ev.OrderStatus] = field(default_factory=dict)
    stalled: str = ""  # why the day stopped before every order settled
    anomalies: dict[str, int] = field(default_factory=dict)  # what the rider app could not do as planned

    @property
    def settled(self) -> int:
        return sum(1 for s in self.status.values() if s in TERMINAL)

    def note(self, what: str) -> None:
        self.anomalies[what] = self.anomalies.get(what, 0) + 1


class SimClock:
    """Simulated time, ``speedup`` times wall time, that stands still while the simulator waits for
    the system under test (:meth:`held`): a rider waiting at the door for the customer's OTP notice
    waits in wall time, and at 60x a second of pipeline lag would otherwise be a minute at the door."""

    def __init__(self, start: datetime, speedup: float) -> None:
        self.start, self.speedup, self.wall0 = start, speedup, time.monotonic()
        self._holders = 0
        self._held_at = 0.0
        self._stood_s = 0.0  # wall seconds the clock stood still
        self._running = asyncio.Event()
        self._running.set()

    def now(self) -> datetime:
        wall = time.monotonic()
        stood = self._stood_s + (wall - self._held_at if self._holders else 0.0)
        return self.start + timedelta(seconds=(wall - self.wall0 - stood) * self.speedup)

    @property
    def stood_s(self) -> float:
        """Wall seconds the clock has stood still so far."""
        return self._stood_s + (time.monotonic() - self._held_at if self._holders else 0.0)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """The world stands still inside (nested holds stack)."""
        if self._holders == 0:
            self._held_at = time.monotonic()
            self._running.clear()
        self._holders += 1
        try:
            yield
        finally:
            self._holders -= 1
            if self._holders == 0:
                self._stood_s += time.monotonic() - self._held_at
                self._running.set()

    async def sleep_until(self, t: datetime, interrupt: asyncio.Event | None = None) -> bool:
        """Sleep until the clock reads ``t``; True when ``interrupt`` is (or gets) set first."""
        while True:
            if interrupt is not None and interrupt.is_set():
                return True
            if self._holders:
                await self._first(self._running, interrupt)
                continue
            delay = (t - self.now()).total_seconds() / self.speedup
            if delay <= 0:
                return False
            try:
                async with asyncio.timeout(delay):
                    await (interrupt.wait() if interrupt is not None else asyncio.Event().wait())
            except TimeoutError:
                continue  # the clock may have stood still meanwhile: look again
            return True

    @staticmethod
    async def _first(running: asyncio.Event, interrupt: asyncio.Event | None) -> None:
        if interrupt is None:
            await running.wait()
            return
        waits = [asyncio.ensure_future(running.wait()), asyncio.ensure_future(interrupt.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()


def _ts(t: datetime) -> float:
    return t.timestamp()


def _dt(s: float) -> datetime:
    return datetime.fromtimestamp(s, UTC)


def position_on(knots: tuple[Knot, ...], t_s: float) -> tuple[float, float]:
    """Where a leg's true track is at ``t_s`` (linear between knots)."""
    if t_s <= knots[0].t_s:
        return knots[0].lat, knots[0].lon
    for a, b in zip(knots, knots[1:], strict=False):
        if t_s <= b.t_s:
            f = 0.0 if b.t_s <= a.t_s else (t_s - a.t_s) / (b.t_s - a.t_s)
            return a.lat + (b.lat - a.lat) * f, a.lon + (b.lon - a.lon) * f
    return knots[-1].lat, knots[-1].lon


@dataclass(eq=False)
class RiderApp:
    """The rider's phone and what the simulator knows of the rider."""

    shift: ev.RiderShiftStarted
    position: tuple[float, float]
    next_route: ev.RoutePlanned | None = None
    route: ev.RoutePlanned | None = None  # the route being driven
    last_route: ev.RoutePlanned | None = None  # the latest route dispatch gave the rider
    replanned: asyncio.Event = field(default_factory=asyncio.Event)
    failed_on_board: dict[str, datetime] = field(default_factory=dict)  # failed here (when), on board until a hub
    breaks_taken: set[str] = field(default_factory=set)
    unplanned: list[UnplannedBreak] = field(default_factory=list)
    silence: PhoneSilent | None = None
    silent: tuple[float, float] = (0.0, 0.0)  # (from, until) epoch seconds
    next_ping_s: float = 0.0
    arrived_at: datetime = datetime.min.replace(tzinfo=UTC)  # true arrival at the end of the last leg
    chunks: int = 0
    legs: int = 0
    on_shift: bool = False
    idle_at_hub: bool = False  # idle where it rests: at home, or at the hub with failed parcels on board
    depot: tuple[float, float] | None = None  # its hub's place (None: where the shift starts)
    done: bool = False

    @property
    def rider_id(self) -> str:
        return self.shift.rider_id

    @property
    def hub(self) -> tuple[float, float]:
        return self.depot or self.home

    @property
    def home(self) -> tuple[float, float]:
        """Where the rider waits between routes: the hub, or the store it is stationed at."""
        return self.shift.start.lat, self.shift.start.lon

    def at_hub(self) -> bool:
        return haversine_m(self.position, self.hub) <= AT_HUB_M

    def at_home(self) -> bool:
        return haversine_m(self.position, self.home) <= AT_HUB_M

    @property
    def rest(self) -> tuple[float, float]:
        """Where an idle rider goes: home, or first the hub with failed parcels on board."""
        return self.hub if self.failed_on_board else self.home


class DayRunner:
    def __init__(self, *, day: Day, kafka: dict[str, Any], topic: Callable[[str], str], otp_key: str,
                 speedup: float = 240.0, codec: Codec | None = None, speeds: TrueSpeeds = CITY,
                 gps: GpsNoise = GpsNoise(sigma_m=8.0), policies: HubPolicies = HubPolicies()) -> None:
        self.day, self.kafka, self.topic = day, kafka, topic
        self.key = otp.key_bytes(otp_key)
        self.speedup, self.speeds, self.gps = speedup, speeds, gps
        self.codec = codec or Codec()
        self.seed = day.seed
        self.clock = SimClock(day.start, speedup)
        self.progress = Progress(orders=len(day.orders))
        horizons = {h.hub_id: policies.of(h.hub_id).horizon_min for h in day.hubs}
        self.scorecard = Scorecard(day.orders, day.shifts, horizons or policies.default.horizon_min)
        self._orders = {o.order_id: o for o in day.orders}
        self._drop = {o.order_id: (o.drop.lat, o.drop.lon) for o in day.orders}
        self._holder: dict[str, str] = {}  # order -> rider of its last accepted assignment
        self._decision: dict[str, ev.AttemptDecision] = {}
        self._out: dict[str, str] = {}  # order -> rider who took the parcel, this attempt
        self._attempt: dict[str, int] = {}  # attempts the simulator started (out for delivery sent)
        self._handed: set[str] = set()  # served at the door this attempt
        self._serving: set[str] = set()
        self._cancelled: set[str] = set()
        self._otps: dict[str, list[ev.OtpIssued]] = {}
        self._otp_news: dict[str, asyncio.Event] = {}
        self._after_assignment: dict[str, list[Cancel | AddressChange]] = {}
        self._assigned_once: set[str] = set()
        self._seen: set[str] = set()
        self._news = asyncio.Event()  # replaced (after being set) whenever the ledger or a route moves on
        self._tasks: list[asyncio.Task[None]] = []
        self._created: set[str] = set()
        self.all_created = False
        self._producer: Any = None
        self._pinger: Any = None  # the pings' own producer (batched)
        depots = {h.hub_id: (h.lat, h.lon) for h in day.hubs}
        self._apps = {s.rider_id: RiderApp(shift=s, position=(s.start.lat, s.start.lon), depot=depots.get(s.hub_id))
                      for s in day.shifts}
        for incident in day.incidents:
            if isinstance(incident, PhoneSilent) and incident.rider_id in self._apps:
                self._apps[incident.rider_id].silence = incident
            elif isinstance(incident, UnplannedBreak) and incident.rider_id in self._apps:
                self._apps[incident.rider_id].unplanned.append(incident)
            elif isinstance(incident, Cancel | AddressChange) and incident.after_assigned_s is not None:
                self._after_assignment.setdefault(incident.order_id, []).append(incident)

    # ---- Kafka edge -------------------------------------------------------------------------

    def _eid(self, *parts: object) -> str:
        """Simulator-made ids for submissions, stable under a seed."""
        return sim_id(rng_for(self.seed, "/".join(str(p) for p in parts)))

    async def _send(self, spec: tp.TopicSpec, event: ev.Event) -> None:
        name = self.topic(spec.name)
        # Stamped with the event's (simulated) time: the stream edge bounds event times by the record's.
        producer = self._pinger if spec is tp.GPS else self._producer
        producer.send(name, event.key.encode(), self.codec.encode(event, name),
                      timestamp_ms=int(event.occurred_at.timestamp() * 1000))
        self.progress.produced += 1

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self._tasks.append(asyncio.create_task(coro))

    async def run(self, timeout_s: float = 600.0, alive: Callable[[], bool] = lambda: True,
                  grace_s: float = 20.0) -> Progress:
        """Play the day until every order is settled and every rider has gone home. Stops with an
        error at the first write the broker does not acknowledge or as soon as ``alive()`` is False
        (the workers died: nothing would ever settle); at ``timeout_s``, or ``grace_s`` after the
        last rider went home with orders unsettled, it returns with ``progress.stalled`` saying so.
        ``kafka`` is a librdkafka client configuration (confluent-kafka)."""
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        from streams.kafka import Publisher

        # murmur2: the partitioner of Faust's client, so that the simulator's pings and Faust's routes
        # for one rider land on the same partition of their topics (the tracker joins them there).
        config = {**self.kafka, "partitioner": "murmur2_random", "acks": "all"}
        self._producer = Publisher({**config, "linger.ms": 5})
        self._pinger = Publisher({**config, "linger.ms": PING_LINGER_MS})
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
            listener = asyncio.create_task(self._listen(consumer))
            self.clock = SimClock(self.day.start, self.speedup)
            self.start_day()
            deadline = time.monotonic() + timeout_s
            quiet_since: float | None = None
            while True:
                if self.progress.settled >= len(self.day.orders) and all(a.done for a in self._apps.values()):
                    break
                now = time.monotonic()
                if now > deadline:
                    self.progress.stalled = (f"timed out after {timeout_s:.0f}s: {self.progress.settled} of "
                                             f"{len(self.day.orders)} orders settled")
                    break
                if all(a.done for a in self._apps.values()):
                    quiet_since = quiet_since or now
                    if now - quiet_since > grace_s:
                        self.progress.stalled = (f"every rider went home with {len(self.day.orders) - self.progress.settled}"
                                                 " orders unsettled")
                        break
                if not alive():
                    raise RuntimeError("a stream worker is not running (see its log); stopping the day")
                self._producer.raise_failure()
                self._pinger.raise_failure()
                if listener.done():
                    listener.result()
                for t in self._tasks:
                    if t.done() and not t.cancelled() and t.exception():
                        raise t.exception()  # type: ignore[misc]
                await asyncio.sleep(0.2)
            try:  # longer than a produce request's timeout: a request the broker sat on is sent again
                await asyncio.to_thread(self._pinger.flush, FINAL_FLUSH_S)
                await asyncio.to_thread(self._producer.flush, FINAL_FLUSH_S)
            except KafkaFailure as exc:  # the day is played: report it, with what the broker did not take
                self.progress.stalled = f"the day's last writes were not acknowledged: {exc}"
            flushed = True
            return self.progress
        finally:
            for t in [*self._tasks, *([listener] if listener else [])]:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            consumer.close()
            if not flushed:  # the day failed: still deliver what it wrote, best effort
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self._pinger.flush, 10.0)
                    await asyncio.to_thread(self._producer.flush, 10.0)
            self._pinger.close()
            self._producer.close()

    def start_day(self) -> None:
        """The day's tasks: the order system's and customers' timeline, and one app per rider."""
        self._spawn(self._timeline())
        for app in self._apps.values():
            self._spawn(self._rider(app))

    @staticmethod
    async def _wait_partitions(consumer: Any, topic: str) -> list[int]:
        for _ in range(100):
            metadata = await asyncio.to_thread(consumer.list_topics, topic, 5.0)
            found = metadata.topics.get(topic)
            if found is not None and found.error is None and found.partitions:
                return sorted(found.partitions)
            await asyncio.sleep(0.1)
        raise RuntimeError(f"topic {topic} not found")

    async def _listen(self, consumer: Any) -> None:
        """Reads the ledger, routes and notices back. Polls without blocking (the consumer is only
        ever touched from the event loop, so closing it never races a poll) and naps when idle."""
        from streams.kafka import translate

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
                self.feed(event)
            self.news()

    def news(self) -> None:
        self._news.set()
        self._news = asyncio.Event()

    # ---- what is read back ------------------------------------------------------------------

    def feed(self, event: ev.Event) -> None:
        """One event read back: a route, an OTP notice, or an order-ledger event."""
        if event.event_id in self._seen:
            return
        self._seen.add(event.event_id)
        if isinstance(event, ev.RoutePlanned):
            self.progress.routes += 1
            self.scorecard.route(event)
            app = self._apps.get(event.rider_id)
            if app is None:
                log.warning("route %s for unknown rider %s ignored", event.route_id, event.rider_id)
                return
            app.next_route = event
            app.replanned.set()
        elif isinstance(event, ev.OtpIssued):
            self._otps.setdefault(event.order_id, []).append(event)
            self._otp_news.setdefault(event.order_id, asyncio.Event()).set()
        elif isinstance(event, ev.OrderEvent):
            self.scorecard.ledger(event)
            self._on_ledger(event)

    def _on_ledger(self, event: ev.OrderEvent) -> None:
        o = event.order_id
        status = self.progress.status
        if isinstance(event, ev.OrderCreated):
            status.setdefault(o, S.CREATED)
        elif isinstance(event, ev.OrderAssigned):
            if status.get(o) is S.FAILED:  # the re-attempt: a new attempt begins
                self._out.pop(o, None)
                self._handed.discard(o)
                self._decision.pop(o, None)
            self._holder[o] = event.rider_id
            status[o] = S.ASSIGNED
            if o not in self._assigned_once:
                self._assigned_once.add(o)
                for incident in self._after_assignment.pop(o, ()):
                    self._spawn(self._customer_after_assignment(incident, event.occurred_at))
        elif isinstance(event, ev.StatusChanged):
            status[o] = event.to_status
            if event.to_status is S.DELIVERED:
                self.progress.delivered += 1
            elif event.to_status is S.FAILED:
                self.progress.failed += 1
        elif isinstance(event, ev.OrderCancelled):
            status[o] = S.CANCELLED
        elif isinstance(event, ev.AttemptDecided):
            self._decision[o] = event.decision
            if event.rider_id:  # the parcel is with this rider only: another that failed it before has none
                for other in self._apps.values():
                    if other.rider_id != event.rider_id:
                        other.failed_on_board.pop(o, None)
            if event.decision is ev.AttemptDecision.AWAIT_CUSTOMER_SLOT:
                self._spawn(self._customer_slot(o, event.occurred_at))
            holder = self._apps.get(event.rider_id or self._holder.get(o, ""))
            if holder is not None and holder.idle_at_hub and o in holder.failed_on_board:
                self._spawn(self._unload(holder))

    # ---- the order system and the customers -------------------------------------------------

    async def _timeline(self) -> None:
        """Orders at their creation time, and the customers' timed changes, in time order."""
        timed: list[tuple[datetime, int, Any]] = [(o.occurred_at, 0, o) for o in self.day.orders]
        timed += [(i.at, 1, i) for i in self.day.incidents
                  if isinstance(i, Cancel | AddressChange) and i.at is not None]
        timed.sort(key=lambda x: (x[0], x[1]))
        for at, _, item in timed:
            await self.clock.sleep_until(at)
            if isinstance(item, ev.OrderCreated):
                await self._send(tp.INBOX, item)
                self._created.add(item.order_id)
                self.progress.status.setdefault(item.order_id, S.CREATED)
                self.progress.created += 1
                if self.progress.created == len(self.day.orders):
                    self.all_created = True
            else:
                await self._customer(item, at)
        self.all_created = True

    async def _customer_after_assignment(self, incident: Cancel | AddressChange, assigned_at: datetime) -> None:
        at = max(self.clock.now(), assigned_at) + timedelta(seconds=incident.after_assigned_s or 0.0)
        await self.clock.sleep_until(at)
        await self._customer(incident, at)

    async def _customer(self, incident: Cancel | AddressChange, at: datetime) -> None:
        """A cancellation while the parcel still waits at the hub or the store, or an address
        change before the rider is at the door; too late, and the customer lets it be."""
        o = incident.order_id
        status = self.progress.status.get(o, S.CREATED)
        if o in self._cancelled or status in TERMINAL or o in self._handed or o in self._serving:
            self.progress.note("customer_change_too_late")
            return
        if isinstance(incident, Cancel):
            if o in self._out or status not in (S.CREATED, S.ASSIGNED):
                self.progress.note("customer_change_too_late")
                return
            self._cancelled.add(o)
            await self._send(tp.INBOX, ev.OrderCancelled(event_id=self._eid("cancel", o), occurred_at=at, order_id=o,
                                                         reason=incident.reason, cancelled_by="customer"))
        else:
            self._drop[o] = (incident.drop.lat, incident.drop.lon)
            await self._send(tp.INBOX, ev.OrderUpdated(event_id=self._eid("moved", o), occurred_at=at, order_id=o,
                                                       drop=incident.drop))

    async def _customer_slot(self, o: str, asked_at: datetime) -> None:
        answer, start, end = customer_slot(self.seed, o, asked_at, self.day.behaviour)
        await self.clock.sleep_until(answer)
        if self.progress.status.get(o) is S.FAILED and o not in self._cancelled:
            await self._send(tp.INBOX, ev.OrderUpdated(event_id=self._eid("slot", o, asked_at.isoformat()),
                                                       occurred_at=answer, order_id=o, window_start=start,
                                                       window_end=end))

    # ---- the rider app ------------------------------------------------------------------------

    def _open_orders(self) -> list[app_logic.OpenOrder]:
        status = self.progress.status
        return [app_logic.OpenOrder(status=status.get(o, S.CREATED), holder=self._holder.get(o),
                                    returning=self._decision.get(o) is ev.AttemptDecision.RETURN_TO_HUB)
                for o in self._created if status.get(o) not in TERMINAL]

    async def _rider(self, app: RiderApp) -> None:
        shift = app.shift
        await self.clock.sleep_until(shift.shift_start)
        app.next_ping_s = _ts(shift.shift_start)
        await self._send(tp.RIDERS, shift)
        app.on_shift = True
        self.progress.riders_on_shift += 1
        began = self.clock.now()
        try:
            while True:
                if app.next_route is not None:
                    route, app.next_route = app.next_route, None
                    app.last_route = route
                    app.replanned.clear()
                    app.idle_at_hub = False
                    await self._ride(app, route)
                    continue
                if self._confirmed_since(app):  # its assignment reached the ledger after the ride passed it
                    self.progress.note("assigned_after_the_ride")
                    app.idle_at_hub = False
                    assert app.last_route is not None
                    await self._ride(app, app.last_route)
                    continue
                now = self.clock.now()
                if self._forgotten(app):  # parcels on board no route lists: deliver them
                    app.idle_at_hub = False
                    await self._ride(app, self._own_route(app))
                    continue
                if haversine_m(app.position, app.rest) <= AT_HUB_M:
                    app.idle_at_hub = True
                    if app.failed_on_board:
                        await self._unload(app)
                    # a parcel failed here stays with the rider until dispatch decides (then it is handed in)
                    app.failed_on_board = {o: t for o, t in app.failed_on_board.items()
                                           if self.progress.status.get(o) not in TERMINAL}
                    holding = app_logic.holding(app.failed_on_board, self.progress.status, now)
                    if not holding and app_logic.shift_over(
                            now, shift.shift_end, idle=True, all_created=self.all_created,
                            open_orders=self._open_orders(), rider_id=app.rider_id):
                        break
                    if await self._maybe_break(app, None):
                        continue
                    await self._stand(app, now + timedelta(seconds=IDLE_STEP_S), interruptible=True)
                else:  # a route done, or replaced by one with nothing left for us: back home (or to the hub)
                    await self._travel(app, app.rest, interruptible=True)
        finally:
            app.idle_at_hub = False
        now = self.clock.now()
        self.scorecard.on_shift((now - began).total_seconds())
        await self._send(tp.RIDERS, ev.RiderShiftEnded(event_id=self._eid(app.rider_id, "shift-end"), occurred_at=now,
                                                       rider_id=app.rider_id,
                                                       position=ev.GeoPoint(lat=app.position[0], lon=app.position[1])))
        app.on_shift, app.done = False, True
        self.progress.riders_on_shift -= 1
        self.progress.riders_done += 1

    async def _triage(self, app: RiderApp, route: ev.RoutePlanned) -> app_logic.Triage | None:
        """The route's stops once every one is settled in the ledger as this rider's or not
        (the app shows a route once its assignments are confirmed), or after a short wait (a minute of
        simulated time, 0.3 s of wall time at least: the ledger is about that far behind); None if
        re-planned meanwhile. Stops confirmed later are still driven: each is looked at again on the way."""
        deadline = time.monotonic() + min(ASSIGNMENT_WAIT_S, max(0.3, 60.0 / self.speedup))
        while True:
            news = self._news
            if app.next_route is not None:
                return None
            triage = app_logic.triage(route.stops, app.rider_id, self.progress.status, self._holder, self._handed,
                                      self._out)
            left = deadline - time.monotonic()
            if not triage.waiting or left <= 0:
                    return triage
            with contextlib.suppress(TimeoutError), self.clock.held():  # the world waits for the ledger
                async with asyncio.timeout(left):
                    await news.wait()

    def _mine_to_take(self, app: RiderApp, o: str) -> bool:
        return (self._holder.get(o) == app.rider_id and self.progress.status.get(o) is S.ASSIGNED
                and o not in self._out and o not in self._cancelled)

    async def _ride(self, app: RiderApp, route: ev.RoutePlanned) -> None:
        triage = await self._triage(app, route)
        if triage is None:
            return
        app.route = route
        if (app.at_hub() or app.at_home()) and triage.visit:
            if route.planned_start > self.clock.now() and await self._stand(app, route.planned_start,
                                                                            interruptible=True):
                return
            if app.failed_on_board:
                await self._unload(app)
        began = self.clock.now()
        picked_here = {s.order_id for s in route.stops if s.kind is ev.StopKind.PICKUP}
        try:
            to_load = [o for o in triage.send_out if self._mine_to_take(app, o)]
            stops: tuple[ev.PlannedStop, ...] = route.stops
            while True:
                if await self._load(app, to_load):
                    return
                if await self._visit(app, route, stops):
                    return
                # Drops of this route confirmed as ours only after it started, still at the hub: fetch them.
                to_load = [s.order_id for s in route.stops if s.kind is ev.StopKind.DROP
                           and s.order_id not in picked_here and self._mine_to_take(app, s.order_id)]
                if not to_load:
                    break
                self.progress.note("loaded_late")
                stops = tuple(s for s in route.stops if s.order_id in to_load and s.kind is ev.StopKind.DROP)
            if app.next_route is None:
                await self._travel(app, app.rest, interruptible=True)
        finally:
            self.scorecard.on_route((self.clock.now() - began).total_seconds())
            app.route = None

    async def _load(self, app: RiderApp, to_load: list[str]) -> bool:
        """Parcels waiting at the hub for this route leave with the rider: out for delivery. Away from
        the hub (a route planned as if the rider were there: its position lagged, or its assignment
        was confirmed late) the rider rides back to load them first. True if a new route interrupted."""
        to_load = [o for o in to_load if self._mine_to_take(app, o)]
        if not to_load:
            return False
        if not app.at_hub():
            self.progress.note("rode_back_to_load")
            if await self._travel(app, app.hub, interruptible=True):
                return True
        loaded = False
        for o in to_load:
            if self._mine_to_take(app, o):
                await self._take(app, o, "left_hub")
                loaded = True
        if loaded:
            await self._stand(app, self.clock.now() + timedelta(seconds=LOAD_S), interruptible=False)
        return False

    async def _visit(self, app: RiderApp, route: ev.RoutePlanned, stops: tuple[ev.PlannedStop, ...]) -> bool:
        """Drive the stops in order, each looked at again on the way (cancelled, settled, moved, not
        on board: passed over); True if a new route interrupted."""
        for stop in self._with_orphans(app, stops):
            if app.next_route is not None:
                return True
            o = stop.order_id
            status = self.progress.status.get(o)
            if o in self._cancelled or status in TERMINAL or o in self._handed:
                continue
            if stop.kind is ev.StopKind.PICKUP:
                if not self._mine_to_take(app, o):
                    continue
                target = (stop.lat, stop.lon)
            elif self._out.get(o) != app.rider_id:
                continue  # not on board with us (its pickup was skipped, or it moved)
            else:
                target = self._drop[o]
            await self._maybe_break(app, route, stop.planned_arrival)
            if app.silence is not None and self.clock.now() >= app.silence.at:
                depart = _ts(self.clock.now())
                app.silent = (depart + SILENT_AFTER_S, depart + SILENT_AFTER_S + app.silence.duration_s)
                app.silence = None
            there = haversine_m(app.position, target) < 1.0  # back at a door it waited at (a re-plan came)
            if await self._travel(app, target, interruptible=True):
                return True
            if stop.kind is ev.StopKind.DROP:
                if not there:
                    self.scorecard.reached(o, app.arrived_at)
                # the app's "complete after": a parcel is not handed over before its window opens
                if (stop.window_start is not None and stop.window_start > self.clock.now()
                        and await self._stand(app, stop.window_start, interruptible=True)):
                    return True
            await self._phone_back(app)
            if app.failed_on_board and app.at_hub():
                await self._unload(app)
            if stop.kind is ev.StopKind.PICKUP:
                await self._pick_up(app, stop)
            else:
                await self._serve(app, route, o)
        return app.next_route is not None

    def _forgotten(self, app: RiderApp, planned: set[str] | frozenset[str] = frozenset()) -> list[str]:
        return [o for o, r in self._out.items() if r == app.rider_id and o not in planned and o not in self._handed
                and self.progress.status.get(o) not in TERMINAL and o not in self._cancelled]

    def _confirmed_since(self, app: RiderApp) -> bool:
        """Stops of the rider's latest route that are now its own to take: the ledger confirmed them
        after the rider rode past (the app shows a stop once its assignment is confirmed)."""
        route = app.last_route
        return route is not None and any(self._mine_to_take(app, s.order_id) for s in route.stops)

    def _own_route(self, app: RiderApp) -> ev.RoutePlanned:
        """An empty route of the rider's own: what it rides to deliver what is left in its box."""
        now = self.clock.now()
        return ev.RoutePlanned(event_id=self._eid(app.rider_id, "own", now.isoformat()), occurred_at=now,
                               rider_id=app.rider_id, route_id="", hub_id=app.shift.hub_id, stops=(),
                               start=ev.GeoPoint(lat=app.position[0], lon=app.position[1]), planned_start=now,
                               planned_end=now, distance_m=0.0)

    def _with_orphans(self, app: RiderApp, visit: tuple[ev.PlannedStop, ...]) -> list[ev.PlannedStop]:
        """The route's stops, then any parcel on board the route forgot (a move dispatch lost to the
        rider's own "out for delivery"): the rider delivers what is in its box, nearest first."""
        forgot = self._forgotten(app, {s.order_id for s in visit if s.kind is ev.StopKind.DROP})
        stops = list(visit)
        here = (visit[-1].lat, visit[-1].lon) if visit else app.position
        while forgot:
            o = min(forgot, key=lambda x: haversine_m(here, self._drop[x]))
            forgot.remove(o)
            self.progress.note("on_board_not_in_route")
            here = self._drop[o]
            stops.append(ev.PlannedStop(order_id=o, kind=ev.StopKind.DROP, lat=here[0], lon=here[1],
                                        planned_arrival=self.clock.now(), service_time_s=120))
        return stops

    async def _take(self, app: RiderApp, o: str, reason: str) -> None:
        """The parcel is the rider's: out for delivery (the lifecycle issues the customer's OTP)."""
        self._out[o] = app.rider_id
        self._attempt[o] = self._attempt.get(o, 0) + 1
        await self._send(tp.INBOX, ev.StatusChanged(
            event_id=self._eid(app.rider_id, "out", o, self._attempt[o]), occurred_at=self.clock.now(), order_id=o,
            to_status=S.OUT_FOR_DELIVERY, reason=reason, rider_id=app.rider_id,
            location=ev.GeoPoint(lat=app.position[0], lon=app.position[1])))

    async def _pick_up(self, app: RiderApp, stop: ev.PlannedStop) -> None:
        rng = rng_for(self.seed, f"pickup/{stop.order_id}/{self._attempt.get(stop.order_id, 0)}")
        service = max(30.0, stop.service_time_s * rng.lognormvariate(0.0, 0.3))
        await self._stand(app, self.clock.now() + timedelta(seconds=service), interruptible=False)
        if self._mine_to_take(app, stop.order_id):
            await self._take(app, stop.order_id, "picked_up")

    async def _serve(self, app: RiderApp, route: ev.RoutePlanned, o: str) -> None:
        """At the door: deliver with the customer's OTP, or fail with a reason."""
        attempt = self._attempt.get(o, 1)
        outcome = attempt_outcome(self.seed, o, attempt, self.day.behaviour)
        rng = rng_for(self.seed, f"door-time/{o}/{attempt}")
        order = self._orders.get(o)
        planned = order.service_time_s if order else 120
        service = rng.uniform(30.0, 90.0) if outcome else min(4.0 * planned, max(20.0, planned * rng.lognormvariate(0.05, 0.35)))
        wrong_first = rng.random() < self.day.behaviour.wrong_otp_rate
        self._serving.add(o)
        try:
            await self._stand(app, self.clock.now() + timedelta(seconds=service), interruptible=False)
            here = ev.GeoPoint(lat=app.position[0], lon=app.position[1])
            self._handed.add(o)
            if outcome is None:
                await self._hand_over(app, o, attempt, here, wrong_first)
                return
            reason, words = outcome
            app.failed_on_board[o] = self.clock.now()
            await self._send(tp.INBOX, ev.StatusChanged(
                event_id=self._eid(app.rider_id, "failed", o, attempt), occurred_at=self.clock.now(), order_id=o,
                to_status=S.FAILED, reason=words, failure_reason=reason, rider_id=app.rider_id, location=here))
        finally:
            self._serving.discard(o)

    async def _hand_over(self, app: RiderApp, o: str, attempt: int, here: ev.GeoPoint, wrong_first: bool) -> None:
        """The customer reads out this attempt's OTP from the notification; the app sends its salted hash."""
        deadline = time.monotonic() + OTP_WAIT_S
        while len(self._otps.get(o, ())) < attempt:
            news = self._otp_news.setdefault(o, asyncio.Event())
            news.clear()
            try:
                with self.clock.held():  # the customer's phone is behind: the world waits with the rider
                    async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                        await news.wait()
            except TimeoutError:
                log.warning("no OTP notice for %s (attempt %d) after %.0fs; the handover is skipped", o, attempt,
                            OTP_WAIT_S)
                self.progress.note("otp_missing")
                return
        notice = self._otps[o][attempt - 1]
        code = otp.open_sealed(self.key, notice.otp_sealed).decode()
        tries = [("000000" if code != "000000" else "111111"), code] if wrong_first else [code]
        for i, attempt_code in enumerate(tries):
            at = self.clock.now() + timedelta(seconds=20 * i)
            await self.clock.sleep_until(at)
            await self._send(tp.INBOX, ev.PodSubmitted(
                event_id=self._eid(app.rider_id, "pod", o, attempt, i), occurred_at=at, order_id=o,
                rider_id=app.rider_id, otp_hash=otp.hash_otp(attempt_code, notice.otp_salt), recipient_name="customer",
                location=here))

    async def _unload(self, app: RiderApp) -> None:
        """At the hub: a parcel failed for good is handed back (returned to hub); one to be tried again
        stays at the hub for dispatch; one not decided yet stays on board until it is."""
        if not app.at_hub():
            return
        for o in sorted(app.failed_on_board):
            decision = self._decision.get(o)
            if decision is None or o not in app.failed_on_board:
                continue
            app.failed_on_board.pop(o, None)
            if decision is ev.AttemptDecision.RETURN_TO_HUB and self.progress.status.get(o) is S.FAILED:
                await self._send(tp.INBOX, ev.StatusChanged(
                    event_id=self._eid(app.rider_id, "returned", o), occurred_at=self.clock.now(), order_id=o,
                    to_status=S.RETURNED_TO_HUB, reason="back_at_hub", rider_id=app.rider_id,
                    location=ev.GeoPoint(lat=app.hub[0], lon=app.hub[1])))

    async def _maybe_break(self, app: RiderApp, route: ev.RoutePlanned | None, next_stop_at: datetime | None = None
                           ) -> bool:
        now = self.clock.now()
        due = app_logic.due_break(now, route_breaks=route.breaks if route else (), owed=app.shift.breaks,
                                  taken=app.breaks_taken, unplanned_at=[(u.at, u.duration_s) for u in app.unplanned],
                                  next_stop_at=next_stop_at)
        if due is None:
            return False
        if due.break_id is None:
            app.unplanned.pop(next(i for i, u in enumerate(app.unplanned) if u.at <= now))
        else:
            app.breaks_taken.add(due.break_id)
        await self._phone_back(app)
        now = self.clock.now()
        end = now + timedelta(seconds=due.duration_s)
        here = ev.GeoPoint(lat=app.position[0], lon=app.position[1])
        tag = due.break_id or f"unplanned-{now.isoformat()}"
        await self._send(tp.RIDERS, ev.BreakStarted(event_id=self._eid(app.rider_id, "break", tag), occurred_at=now,
                                                    rider_id=app.rider_id, break_id=due.break_id, expected_end=end,
                                                    position=here))
        self.scorecard.took_break(due.break_id, due.scheduled)
        await self._stand(app, end, interruptible=False)
        await self._send(tp.RIDERS, ev.BreakEnded(event_id=self._eid(app.rider_id, "break-end", tag),
                                                  occurred_at=self.clock.now(), rider_id=app.rider_id,
                                                  break_id=due.break_id, position=here))
        return True

    async def _phone_back(self, app: RiderApp) -> None:
        """A silent phone sends nothing: the rider waits where it is until it is back."""
        until = app.silent[1]
        if _ts(self.clock.now()) < until:
            await self._stand(app, _dt(until), interruptible=False)

    # ---- moving and pinging ---------------------------------------------------------------------

    async def _emit(self, app: RiderApp, fixes: list[Any], interrupt: asyncio.Event | None) -> bool:
        """Send the phone's pings of these true fixes as the clock reaches them; True if interrupted."""
        if not fixes:
            return False
        app.chunks += 1
        seen = self.gps.observe(fixes, rng_for(self.seed, f"gps/{app.rider_id}/{app.chunks}"), rider_id=app.rider_id,
                                id_prefix=f"gps-{self.seed}-{app.rider_id}-{app.chunks}",
                                ping_interval_s=PING_INTERVAL_S)
        quiet_from, quiet_until = app.silent
        for observed in seen:
            silent = quiet_from <= observed.ping.device_time.timestamp() < quiet_until
            if await self.clock.sleep_until(_dt(observed.received_s), None if silent else interrupt):
                return True
            if silent:
                continue  # and a silent phone hears of no new route either
            await self._send(tp.GPS, observed.ping)
        return False

    async def _stand(self, app: RiderApp, until: datetime, *, interruptible: bool) -> bool:
        """Stay where the rider is until ``until``, pinging; True if a new route interrupted it."""
        fixes: list[Any] = []
        now_s = _ts(self.clock.now())
        app.next_ping_s = max(app.next_ping_s, now_s)
        app.next_ping_s = stand(app.position, now_s, _ts(until), app.next_ping_s, PING_INTERVAL_S, fixes)
        interrupt = app.replanned if interruptible and not self._silent(app) else None
        if await self._emit(app, fixes, interrupt) or await self.clock.sleep_until(until, interrupt):
            app.next_ping_s = _ts(self.clock.now()) + PING_INTERVAL_S
            return True
        return False

    def _silent(self, app: RiderApp) -> bool:
        return app.silent[0] <= _ts(self.clock.now()) < app.silent[1]

    async def _travel(self, app: RiderApp, to: tuple[float, float], *, interruptible: bool) -> bool:
        """Drive to ``to`` at the city's true speeds; True if a new route interrupted the leg
        (the rider is then where the leg had got to)."""
        if haversine_m(app.position, to) < 1.0:
            return False
        app.legs += 1
        depart = _ts(self.clock.now())
        app.next_ping_s = max(app.next_ping_s, depart)
        leg = drive_leg(self.speeds, app.shift.vehicle_type, app.rider_id, app.position, to, depart,
                        rng_for(self.seed, f"leg/{app.rider_id}/{app.legs}"), next_ping_s=app.next_ping_s,
                        ping_interval_s=PING_INTERVAL_S)
        interrupt = app.replanned if interruptible and not self._silent(app) else None
        if (await self._emit(app, list(leg.fixes), interrupt)
                or await self.clock.sleep_until(_dt(leg.arrive_s), interrupt)):
            now_s = _ts(self.clock.now())
            app.position = position_on(leg.knots, now_s)
            app.next_ping_s = math.ceil(now_s) + PING_INTERVAL_S
            return True
        app.position = to
        app.arrived_at = _dt(leg.arrive_s)
        app.next_ping_s = leg.next_ping_s
        return False


__all__ = ["CITY", "DayRunner", "Progress", "RiderApp", "SimClock", "position_on"]
