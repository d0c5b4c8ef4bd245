"""The rider apps and customers of the runner, against the real order lifecycle (no Kafka): every
submission they make must be legal. Riders pick up at stores before their drops, ride several
routes a shift, follow re-plans without visiting a stop twice, fail with a reason and bring a
parcel failed for good back to the hub, try again on a re-attempt, take breaks, and go silent."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from datetime import timedelta

from schemas import Codec
from schemas import events as ev
from schemas import topics as tp
from simulator import continuous as ct
from simulator import world
from simulator.runner import DayRunner, SimClock
from solver.geo import haversine_m
from streams.domain.orders import lifecycle as lc
from streams.domain.orders import otp

S = ev.OrderStatus
KEY = "e5" * 32
BASE = world.make_day(world.DayConfig(seed=5, orders=6, riders=2))
RIDER = BASE.shifts[0].rider_id
T0 = BASE.config.day_start
HUB = (BASE.shifts[0].start.lat, BASE.shifts[0].start.lon)
A, B, C, D, E, F = (o.order_id for o in BASE.orders)
SPEEDUP = 2e4


def day_of(orders: tuple[str, ...], *, riders: int = 1, incidents: tuple[object, ...] = (), hyper: str = "",
           **behaviour: float) -> world.Day:
    kept = []
    for o in BASE.orders:
        if o.order_id not in orders:
            continue
        if o.order_id == hyper:
            store = world.offset_point(HUB[0], HUB[1], 900.0, 900.0)
            o = dataclasses.replace(o, mode=ev.DeliveryMode.HYPERLOCAL, promise_min=30, max_attempts=1,
                                    pickup=ev.Location(lat=store[0], lon=store[1], address="store"))
        kept.append(o)
    return dataclasses.replace(BASE, orders=tuple(kept), shifts=BASE.shifts[:riders], incidents=incidents,
                               behaviour=world.Behaviour(wrong_otp_rate=0.0, **behaviour))


class Harness:
    """The order service and dispatch around a DayRunner: submissions go through the lifecycle,
    whose ledger and OTP notices go straight back to the runner; routes are planned by the test."""

    def __init__(self, day: world.Day) -> None:
        self.day = day
        self.orders = {o.order_id: o for o in day.orders}
        self.runner = DayRunner(day=day, kafka={}, topic=lambda n: n, otp_key=KEY, speedup=SPEEDUP)
        self.runner._producer = self.runner._pinger = self  # noqa: SLF001
        self.runner.clock = SimClock(day.start, SPEEDUP)
        self.policy = lc.Policy(otp_key=otp.key_bytes(KEY))
        self.codec = Codec()
        self.state: dict[str, lc.OrderState | None] = {}
        self.sent: list[ev.Event] = []
        self.rejected: list[tuple[ev.Event, str]] = []
        self.hooks: list[Callable[[ev.Event], None]] = []
        self.topics: list[str] = []

    def send(self, topic: str, key: bytes, value: bytes, timestamp_ms: int = 0) -> None:
        """The runner's producer (``streams.kafka.Publisher.send``)."""
        event = self.codec.decode(value)
        assert timestamp_ms == int(event.occurred_at.timestamp() * 1000)
        self.sent.append(event)
        self.topics.append(topic)
        if topic == tp.INBOX.name:
            self.submit(event)
        for hook in list(self.hooks):
            hook(event)

    def submit(self, event: ev.Event) -> None:
        state = self.state.get(event.order_id)  # type: ignore[attr-defined]
        decision = lc.decide(state, event, event.occurred_at, self.policy)
        if decision.rejection is not None:
            self.rejected.append((event, decision.rejection.reason))
            return
        self.state[event.order_id] = lc.apply(state, decision)  # type: ignore[attr-defined]
        for e in (*decision.ledger, *decision.notifications):
            self.runner.feed(e)
        self.runner.news()

    def plan(self, route_id: str, stops: list[tuple[str, ev.StopKind]], *, new: tuple[str, ...] = (),
             rider: str = RIDER, start_in_min: float = 0.0,
             breaks: tuple[ev.RouteBreak, ...] = ()) -> ev.RoutePlanned:
        """Dispatch: assignments for the orders new to the rider, then the route."""
        now = max(T0, self.runner.clock.now())
        planned = []
        for i, (o, kind) in enumerate(stops):
            order = self.orders[o]
            where = order.pickup if kind is ev.StopKind.PICKUP and order.pickup else order.drop
            planned.append(ev.PlannedStop(order_id=o, kind=kind, lat=where.lat, lon=where.lon,
                                          planned_arrival=now + timedelta(minutes=10 * (i + 1)),
                                          service_time_s=order.service_time_s))
        for seq, o in enumerate(dict.fromkeys(o for o, _ in stops), start=1):
            if o in new:
                self.submit(ev.OrderAssigned(event_id=f"{route_id}/assign/{o}", occurred_at=now, order_id=o,
                                             rider_id=rider, route_id=route_id, sequence=seq, planned_arrival=now))
        route = ev.RoutePlanned(event_id=f"{route_id}-planned", occurred_at=now, rider_id=rider, route_id=route_id,
                                hub_id=self.day.hub_id, stops=tuple(planned), start=self.day.shifts[0].start,
                                planned_start=now + timedelta(minutes=start_in_min),
                                planned_end=now + timedelta(hours=3), distance_m=1.0, breaks=breaks)
        self.runner.feed(route)
        return route

    async def play(self, until: Callable[[], bool] = lambda: False, wall_s: float = 20.0) -> None:
        """Start the day and run it until every rider went home (or ``until()``)."""
        self.runner.start_day()
        try:
            async with asyncio.timeout(wall_s):
                while not until() and not all(a.done for a in self.runner._apps.values()):  # noqa: SLF001
                    for t in self.runner._tasks:  # noqa: SLF001
                        if t.done() and not t.cancelled() and t.exception():
                            raise t.exception()  # type: ignore[misc]
                    await asyncio.sleep(0.005)
        finally:
            for t in self.runner._tasks:  # noqa: SLF001
                t.cancel()

    def of(self, kind: type[ev.Event], **match: object) -> list[ev.Event]:
        return [e for e in self.sent if isinstance(e, kind) and all(getattr(e, k) == v for k, v in match.items())]

    def status(self, order_id: str) -> S:
        state = self.state[order_id]
        assert state is not None
        return state.status

    def when_idle(self, then: Callable[[], None], *, after: int = 0) -> Callable[[], bool]:
        """Run ``then`` once the rider is idle at the hub with ``after`` deliveries done; never stops the day."""
        fired = []

        def check() -> bool:
            app = self.runner._apps[RIDER]  # noqa: SLF001
            if not fired and app.idle_at_hub and app.next_route is None and len(self.of(ev.PodSubmitted)) >= after:
                fired.append(1)
                then()
            return False
        return check


def after_first(h: Harness, kind: type[ev.Event], then: Callable[[], None], **match: object) -> None:
    def hook(event: ev.Event) -> None:
        if isinstance(event, kind) and all(getattr(event, k) == v for k, v in match.items()):
            h.hooks.remove(hook)
            then()
    h.hooks.append(hook)


def ids(events: list[ev.Event]) -> list[str]:
    return [e.order_id for e in events]  # type: ignore[attr-defined]


P, DR = ev.StopKind.PICKUP, ev.StopKind.DROP


def test_orders_are_produced_at_their_creation_time_and_the_rider_goes_home_once_all_settled() -> None:
    late = dataclasses.replace(BASE.orders[1], occurred_at=T0 + timedelta(minutes=40))
    day = dataclasses.replace(day_of((A,), failure_rate=0.0), orders=(BASE.orders[0], late))
    h = Harness(day)
    after_first(h, ev.OrderCreated, lambda: h.plan("r1", [(A, DR)], new=(A,)), order_id=A)
    after_first(h, ev.OrderCreated, lambda: h.plan("r2", [(B, DR)], new=(B,)), order_id=B)
    asyncio.run(h.play())
    created = h.of(ev.OrderCreated)
    assert [e.occurred_at for e in created] == [T0, T0 + timedelta(minutes=40)]
    assert h.rejected == [] and {h.status(A), h.status(B)} == {S.DELIVERED}
    (ended,) = h.of(ev.RiderShiftEnded, rider_id=RIDER)
    assert ended.occurred_at < BASE.shifts[0].shift_end  # the day's work was over before the shift
    assert h.sent.index(ended) == len(h.sent) - 1


def test_pings_leave_on_the_batched_producer_and_nothing_else_does() -> None:
    """The embedded broker pays for each batch in a partition at every fetch: pings, most of a
    day's records, go on a producer that lingers; orders and statuses on the prompt one."""
    h = Harness(day_of((A,), failure_rate=0.0))
    pinged: list[str] = []

    class Pinger:
        def send(self, topic: str, key: bytes, value: bytes, timestamp_ms: int = 0) -> None:
            pinged.append(topic)
            h.send(topic, key, value, timestamp_ms)

    h.runner._pinger = Pinger()  # noqa: SLF001
    after_first(h, ev.OrderCreated, lambda: h.plan("r1", [(A, DR)], new=(A,)), order_id=A)
    asyncio.run(h.play())
    assert h.status(A) is S.DELIVERED
    assert pinged and set(pinged) == {tp.GPS.name}
    assert pinged.count(tp.GPS.name) == h.topics.count(tp.GPS.name)  # every ping, none through the other


def test_a_pickup_is_confirmed_after_its_service_and_parcels_from_the_hub_leave_with_the_rider() -> None:
    h = Harness(day_of((A, B), hyper=B, failure_rate=0.0))
    after_first(h, ev.OrderCreated, lambda: h.plan("r1", [(B, P), (A, DR), (B, DR)], new=(A, B)), order_id=B)
    asyncio.run(h.play())
    assert h.rejected == []
    (out_a,) = h.of(ev.StatusChanged, to_status=S.OUT_FOR_DELIVERY, order_id=A)
    (out_b,) = h.of(ev.StatusChanged, to_status=S.OUT_FOR_DELIVERY, order_id=B)
    assert out_a.reason == "left_hub" and out_b.reason == "picked_up"
    assert out_a.occurred_at < out_b.occurred_at
    store = h.orders[B].pickup
    assert store is not None and haversine_m((out_b.location.lat, out_b.location.lon), (store.lat, store.lon)) < 30
    assert ids(h.of(ev.PodSubmitted)) == [A, B]
    assert {h.status(A), h.status(B)} == {S.DELIVERED}
    arrived = h.runner.scorecard._orders[B].reached  # noqa: SLF001
    assert len(arrived) == 1 and arrived[0][0] < h.of(ev.PodSubmitted, order_id=B)[0].occurred_at


def test_a_rider_rides_several_routes_a_shift_back_at_the_hub_in_between() -> None:
    h = Harness(day_of((A, B), failure_rate=0.0))
    after_first(h, ev.OrderCreated, lambda: h.plan("r1", [(A, DR)], new=(A,)), order_id=B)
    asyncio.run(h.play(h.when_idle(lambda: h.plan("r2", [(B, DR)], new=(B,)), after=1)))
    assert h.rejected == [] and ids(h.of(ev.PodSubmitted)) == [A, B]
    out_b = h.of(ev.StatusChanged, to_status=S.OUT_FOR_DELIVERY, order_id=B)[0]
    assert out_b.reason == "left_hub" and haversine_m((out_b.location.lat, out_b.location.lon), HUB) < 150
    assert len(h.of(ev.RiderShiftEnded)) == 1


def test_a_replan_mid_route_replaces_the_ride_without_visiting_a_stop_twice() -> None:
    h = Harness(day_of((A, B, C, D), failure_rate=0.0))
    after_first(h, ev.PodSubmitted, lambda: h.plan("r2", [(A, DR), (C, DR), (B, DR), (D, DR)]))
    after_first(h, ev.OrderCreated, lambda: h.plan("r1", [(A, DR), (B, DR), (C, DR), (D, DR)], new=(A, B, C, D)),
                order_id=D)
    asyncio.run(h.play())
    assert h.rejected == []
    assert ids(h.of(ev.PodSubmitted)) == [A, C, B, D]
    assert sorted(ids(h.of(ev.StatusChanged, to_status=S.OUT_FOR_DELIVERY))) == [A, B, C, D]  # once each


def test_a_parcel_failed_for_good_is_returned_at_the_hub_with_its_failure_reason() -> None:
    day = day_of((A,), failure_rate=1.0)
    day = dataclasses.replace(day, orders=(dataclasses.replace(day.orders[0], max_attempts=1),))
    h = Harness(day)
    after_first(h, ev.OrderCreated, lambda: h.plan("r1", [(A, DR)], new=(A,)))
    asyncio.run(h.play())
    assert h.rejected == []
    (failed,) = h.of(ev.StatusChanged, to_status=S.FAILED)
    assert failed.failure_reason is not None and failed.reason
    (returned,) = h.of(ev.StatusChanged, to_status=S.RETURNED_TO_HUB)
    assert returned.occurred_at > failed.occurred_at
    assert haversine_m((returned.location.lat, returned.location.lon), HUB) < 1.0
    assert h.status(A) is S.RETURNED_TO_HUB


def test_a_reattempt_goes_out_again_and_is_delivered_with_the_new_otp() -> None:
    h = Harness(day_of((A,), failure_rate=1.0, retry_failure_rate=0.0))
    after_first(h, ev.OrderCreated, lambda: h.plan("r1", [(A, DR)], new=(A,)))
    asyncio.run(h.play(_retry_when_failed(h)))
    assert h.rejected == []
    outs = h.of(ev.StatusChanged, to_status=S.OUT_FOR_DELIVERY, order_id=A)
    assert len(outs) == 2 and all(o.reason == "left_hub" for o in outs)
    assert len(h.of(ev.PodSubmitted)) == 1 and h.status(A) is S.DELIVERED


def _retry_when_failed(h: Harness) -> Callable[[], bool]:
    fired = []

    def check() -> bool:
        app = h.runner._apps[RIDER]  # noqa: SLF001
        decided = h.runner._decision.get(A)  # noqa: SLF001
        if not fired and decided is ev.AttemptDecision.REATTEMPT and app.idle_at_hub and not app.failed_on_board:
            fired.append(1)
            h.plan("r2", [(A, DR)], new=(A,))
        return False
    return check


def test_breaks_the_route_places_are_reported_started_and_ended() -> None:
    h = Harness(day_of((A, B), failure_rate=0.0))
    brk = BASE.shifts[0].breaks  # the short day's shifts owe none: the route's own break
    assert brk == ()
    at = T0 + timedelta(minutes=20)
    after_first(h, ev.OrderCreated, lambda: h.plan(
        "r1", [(A, DR), (B, DR)], new=(A, B),
        breaks=(ev.RouteBreak(break_id="b1", start=at, end=at + timedelta(minutes=30)),)), order_id=B)
    asyncio.run(h.play())
    (started,) = h.of(ev.BreakStarted)
    (ended,) = h.of(ev.BreakEnded)
    assert started.break_id == ended.break_id == "b1"
    assert started.occurred_at >= at - timedelta(minutes=5)
    assert (ended.occurred_at - started.occurred_at) >= timedelta(minutes=30)
    assert not [p for p in h.of(ev.GpsPing) if started.occurred_at < p.device_time < ended.occurred_at
                and haversine_m((p.lat, p.lon), (started.position.lat, started.position.lon)) > 150]


def test_a_silent_phone_sends_nothing_for_its_quarter_hour_then_the_rider_goes_on() -> None:
    silent = ct.PhoneSilent(rider_id=RIDER, at=T0, duration_s=900.0)
    h = Harness(day_of((A, B), incidents=(silent,), failure_rate=0.0))
    after_first(h, ev.OrderCreated, lambda: h.plan("r1", [(A, DR), (B, DR)], new=(A, B)), order_id=B)
    asyncio.run(h.play())
    assert h.rejected == [] and {h.status(A), h.status(B)} == {S.DELIVERED}
    times = sorted([p.device_time for p in h.of(ev.GpsPing)])
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    assert max(gaps) >= 890


def test_a_customer_cancels_a_planned_order_before_it_leaves_the_hub() -> None:
    cancel = ct.Cancel(order_id=B, after_assigned_s=60.0)
    h = Harness(day_of((A, B), incidents=(cancel,), failure_rate=0.0))
    after_first(h, ev.OrderCreated, lambda: h.plan("r1", [(A, DR), (B, DR)], new=(A, B), start_in_min=20),
                order_id=B)
    asyncio.run(h.play())
    assert h.rejected == []
    assert h.status(B) is S.CANCELLED and h.status(A) is S.DELIVERED
    assert ids(h.of(ev.StatusChanged, to_status=S.OUT_FOR_DELIVERY)) == [A]


def test_a_route_planned_as_if_the_rider_were_still_at_the_hub_sends_it_back_to_load() -> None:
    h = Harness(day_of((A, B), failure_rate=0.0))
    after_first(h, ev.PodSubmitted, lambda: h.plan("r2", [(B, DR)], new=(B,)))
    after_first(h, ev.OrderCreated, lambda: h.plan("r1", [(A, DR)], new=(A,)), order_id=B)
    asyncio.run(h.play())
    assert h.rejected == [] and {h.status(A), h.status(B)} == {S.DELIVERED}
    (out_b,) = h.of(ev.StatusChanged, to_status=S.OUT_FOR_DELIVERY, order_id=B)
    assert haversine_m((out_b.location.lat, out_b.location.lon), HUB) < 150
    assert out_b.occurred_at > h.of(ev.PodSubmitted, order_id=A)[0].occurred_at
    assert h.runner.progress.anomalies == {"rode_back_to_load": 1}


def test_a_parcel_on_board_that_the_next_route_forgets_is_still_delivered() -> None:
    h = Harness(day_of((A, B), failure_rate=0.0))
    after_first(h, ev.PodSubmitted, lambda: h.plan("r2", []))  # B, on board, left out
    after_first(h, ev.OrderCreated, lambda: h.plan("r1", [(A, DR), (B, DR)], new=(A, B)), order_id=B)
    asyncio.run(h.play())
    assert h.rejected == [] and {h.status(A), h.status(B)} == {S.DELIVERED}
    assert h.runner.progress.anomalies == {"on_board_not_in_route": 1}


def test_the_clock_stands_still_while_the_world_waits_for_the_pipeline() -> None:
    async def main() -> None:
        clock = SimClock(T0, 1000.0)
        with clock.held():
            before = clock.now()
            await asyncio.sleep(0.05)
            assert abs((clock.now() - before).total_seconds()) < 1.0  # 50 s of simulated time did not pass
        target = clock.now() + timedelta(seconds=100)  # 0.1 s of wall time away

        async def hold(seconds: float) -> None:
            with clock.held():
                await asyncio.sleep(seconds)

        wall = time.monotonic()
        await asyncio.gather(clock.sleep_until(target), hold(0.2))  # the hold begins as the sleep does
        assert time.monotonic() - wall >= 0.28 and clock.now() >= target  # woke at the simulated time, not before
        assert clock.stood_s >= 0.25
        stop = asyncio.Event()

        async def interrupt() -> None:
            await asyncio.sleep(0.05)
            stop.set()

        with clock.held():  # a new route reaches a rider even while the world stands still
            woken, _ = await asyncio.gather(clock.sleep_until(clock.now() + timedelta(hours=1), stop), interrupt())
        assert woken is True

    asyncio.run(main())
