"""The rider app follows re-plans: a new route for a rider already driving replaces the ride,
keeps what the rider already did, and drives the remaining stops from where the rider is. The
app runs against the real order lifecycle (no Kafka): every submission it makes must be legal."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import timedelta

import pytest

from schemas import Codec
from schemas import events as ev
from schemas import topics as tp
from simulator import driving as dr
from simulator import world
from simulator.runner import DayRunner
from solver.geo import haversine_m
from streams.domain.orders import lifecycle as lc
from streams.domain.orders import otp

S = ev.OrderStatus
KEY = "e5" * 32
DAY = world.make_day(world.DayConfig(seed=5, orders=12, riders=2))
RIDER, OTHER = DAY.shifts[0].rider_id, DAY.shifts[1].rider_id
T0 = DAY.config.day_start
ORDERS = {o.order_id: o for o in DAY.orders}
A, B, C, D, E, F = (o.order_id for o in DAY.orders[:6])


class Harness:
    """The order service and dispatch around a DayRunner: submissions go through the lifecycle,
    whose ledger and OTP notices go straight back to the app."""

    def __init__(self, params: dr.DriveParams) -> None:
        self.runner = DayRunner(day=DAY, kafka={}, topic=lambda n: n, otp_key=KEY, speedup=2e4, params=params)
        self.runner._producer = self  # noqa: SLF001
        self.policy = lc.Policy(otp_key=otp.key_bytes(KEY))
        self.codec = Codec()
        self.orders: dict[str, lc.OrderState | None] = {}
        self.sent: list[ev.Event] = []
        self.rejected: list[tuple[ev.Event, str]] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.hooks: list[Callable[[ev.Event], None]] = []
        for order in DAY.orders:
            self.submit(order)

    def send(self, topic: str, key: bytes, value: bytes, timestamp_ms: int = 0) -> None:
        """The runner's producer (``streams.kafka.Publisher.send``)."""
        event = self.codec.decode(value)
        self.sent.append(event)
        if topic == tp.INBOX.name:
            self.submit(event)
        for hook in list(self.hooks):
            hook(event)

    def submit(self, event: ev.Event) -> lc.Decision:
        state = self.orders.get(event.order_id)  # type: ignore[attr-defined]
        decision = lc.decide(state, event, event.occurred_at, self.policy)
        if decision.rejection is not None:
            self.rejected.append((event, decision.rejection.reason))
            return decision
        self.orders[event.order_id] = lc.apply(state, decision)  # type: ignore[attr-defined]
        for e in decision.ledger:
            self.runner._on_ledger(e)  # noqa: SLF001
        for notice in decision.notifications:
            self.runner._otps[notice.order_id] = notice  # noqa: SLF001
            self.runner._otp_waiters.setdefault(notice.order_id, asyncio.Event()).set()  # noqa: SLF001
        self.runner._news.set()  # noqa: SLF001
        self.runner._news = asyncio.Event()  # noqa: SLF001
        return decision

    def assign(self, order_id: str, rider: str, route_id: str) -> None:
        self.submit(ev.OrderAssigned(event_id=f"{route_id}/assign/{order_id}", occurred_at=T0, order_id=order_id,
                                     rider_id=rider, route_id=route_id, sequence=1, planned_arrival=T0))

    def plan(self, rider: str, route_id: str, orders: tuple[str, ...], *, new: tuple[str, ...] = (),
             reason: str = "dispatch") -> ev.RoutePlanned:
        """Dispatch: assignments for the stops new to the rider, then the route."""
        now = max(T0, self.runner.clock.now())
        stops = tuple(ev.PlannedStop(order_id=o, kind=ev.StopKind.DROP, lat=ORDERS[o].drop.lat,
                                     lon=ORDERS[o].drop.lon, planned_arrival=now + timedelta(minutes=10 * (i + 1)),
                                     service_time_s=ORDERS[o].service_time_s) for i, o in enumerate(orders))
        for seq, o in enumerate(orders, start=1):
            if o in new:
                self.submit(ev.OrderAssigned(event_id=f"{route_id}/assign/{o}", occurred_at=now, order_id=o,
                                             rider_id=rider, route_id=route_id, sequence=seq,
                                             planned_arrival=stops[seq - 1].planned_arrival))
        start = DAY.shifts[0].start
        route = ev.RoutePlanned(event_id=f"{route_id}-planned", occurred_at=now, rider_id=rider, route_id=route_id,
                                hub_id=DAY.hub_id, stops=stops, start=start, planned_start=now,
                                planned_end=now + timedelta(hours=3), distance_m=1.0, reason=reason)
        self.runner._on_route(route, self.tasks)  # noqa: SLF001
        return route

    async def finish(self) -> None:
        while not all(t.done() for t in self.tasks):
            await asyncio.gather(*self.tasks)

    def of(self, kind: type[ev.Event], **match: object) -> list[ev.Event]:
        return [e for e in self.sent if isinstance(e, kind) and all(getattr(e, k) == v for k, v in match.items())]

    def status(self, order_id: str) -> S:
        state = self.orders[order_id]
        assert state is not None
        return state.status


QUIET = dict(gap_probability=0.0, duplicate_probability=0.0, wrong_otp_probability=0.0)


def after_first(kind: type[ev.Event], h: Harness, then: Callable[[], None]) -> None:
    def hook(event: ev.Event) -> None:
        if isinstance(event, kind) and not (isinstance(event, ev.StatusChanged) and event.to_status is S.OUT_FOR_DELIVERY):
            h.hooks.remove(hook)
            then()
    h.hooks.append(hook)


def test_replan_after_a_delivery_replaces_the_ride_without_visiting_a_stop_twice() -> None:
    async def day() -> Harness:
        h = Harness(dr.DriveParams(failure_probability=0.0, **QUIET))
        h.assign(E, OTHER, "route-other")  # assigned to the other rider, not yet out
        # The re-plan moves E from OTHER to RIDER, adds F (new), drops D and still lists A, which the
        # rider delivered while it was computed.
        after_first(ev.PodSubmitted, h, lambda: h.plan(RIDER, "route-2", (A, C, E, B, F), new=(E, F),
                                                       reason="failed_delivery: x"))
        h.plan(RIDER, "route-1", (A, B, C, D), new=(A, B, C, D))
        await h.finish()
        return h

    h = asyncio.run(day())
    assert h.rejected == []
    pods = [e.order_id for e in h.of(ev.PodSubmitted)]
    assert pods == [A, C, E, B, F]  # the new route's order; D was dropped: one route at a time, not both
    outs = [e.order_id for e in h.of(ev.StatusChanged, to_status=S.OUT_FOR_DELIVERY)]
    assert sorted(outs) == sorted([A, B, C, D, E, F])  # once each: B and C were already out
    assert h.of(ev.StatusChanged, to_status=S.OUT_FOR_DELIVERY, order_id=E)[0].rider_id == RIDER
    assert {h.status(o) for o in (A, B, C, E, F)} == {S.DELIVERED}
    assert len(h.of(ev.RiderShiftEnded, rider_id=RIDER)) == 1


def test_failed_stops_are_not_revisited_and_go_back_to_the_hub_once_at_the_end() -> None:
    async def day() -> Harness:
        h = Harness(dr.DriveParams(failure_probability=1.0, **QUIET))
        after_first(ev.StatusChanged, h, lambda: h.plan(RIDER, "route-2", (A, B, C), reason="failed_delivery: A"))
        h.plan(RIDER, "route-1", (A, B, C), new=(A, B, C))
        await h.finish()
        return h

    h = asyncio.run(day())
    assert h.rejected == []
    failed = [e.order_id for e in h.of(ev.StatusChanged, to_status=S.FAILED)]
    assert failed == [A, B, C]
    returned = h.of(ev.StatusChanged, to_status=S.RETURNED_TO_HUB)
    assert sorted(e.order_id for e in returned) == sorted([A, B, C])
    (ended,) = h.of(ev.RiderShiftEnded, rider_id=RIDER)
    assert all(e.occurred_at == ended.occurred_at for e in returned)
    assert {h.status(o) for o in (A, B, C)} == {S.RETURNED_TO_HUB}


def test_the_new_route_starts_where_the_rider_is_not_at_the_hub() -> None:
    hub = (DAY.shifts[0].start.lat, DAY.shifts[0].start.lon)

    async def day() -> Harness:
        h = Harness(dr.DriveParams(failure_probability=0.0, **QUIET))
        after_first(ev.PodSubmitted, h, lambda: h.plan(RIDER, "route-2", (C,), reason="failed_delivery: x"))
        h.plan(RIDER, "route-1", (A, B, C), new=(A, B, C))
        await h.finish()
        return h

    h = asyncio.run(day())
    pings = h.of(ev.GpsPing, rider_id=RIDER)
    pod_a = next(e for e in h.of(ev.PodSubmitted) if e.order_id == A)
    i = next(k for k, p in enumerate(pings) if p.device_time > pod_a.occurred_at)
    drop_a = (ORDERS[A].drop.lat, ORDERS[A].drop.lon)
    assert haversine_m(drop_a, hub) > 1000  # else the test proves nothing
    # the first ping after A's handover is a ping interval or two from A, not back at the hub
    assert haversine_m((pings[i].lat, pings[i].lon), drop_a) < 250
    assert [e.order_id for e in h.of(ev.PodSubmitted)] == [A, C]  # B was dropped by the re-plan
    times = [p.device_time for p in pings]
    assert times == sorted(times)


def test_a_replan_reaching_a_rider_already_home_with_nothing_to_do_is_ignored() -> None:
    async def day() -> Harness:
        h = Harness(dr.DriveParams(failure_probability=0.0, **QUIET))
        after_first(ev.RiderShiftEnded, h, lambda: h.plan(RIDER, "route-2", (A,), reason="rider_offline: x"))
        h.plan(RIDER, "route-1", (A,), new=(A,))
        await h.finish()
        return h

    h = asyncio.run(day())
    assert len(h.of(ev.RiderShiftEnded, rider_id=RIDER)) == 1
    assert len(h.of(ev.PodSubmitted)) == 1 and h.rejected == []


# ---- triage (pure) -----------------------------------------------------------------------------


def stop(order_id: str) -> ev.PlannedStop:
    return ev.PlannedStop(order_id=order_id, kind=ev.StopKind.DROP, lat=0.0, lon=0.0, planned_arrival=T0,
                          service_time_s=60)


@pytest.mark.parametrize(("status", "holder", "handed", "out", "expected"), [
    (S.ASSIGNED, RIDER, (), (), ("visit", True)),
    (S.ASSIGNED, RIDER, (), ("o",), ("visit", False)),  # our own out_for_delivery not read back yet
    (S.OUT_FOR_DELIVERY, RIDER, (), ("o",), ("visit", False)),
    (S.ARRIVED, RIDER, (), ("o",), ("visit", False)),
    (S.OUT_FOR_DELIVERY, RIDER, ("o",), ("o",), ("skip", False)),  # delivered, the ledger lags
    (S.FAILED, RIDER, ("o",), ("o",), ("skip", False)),
    (S.DELIVERED, OTHER, (), (), ("skip", False)),  # the re-plan lost the race to a delivery
    (S.OUT_FOR_DELIVERY, OTHER, (), (), ("skip", False)),  # in another box: the move is rejected
    (S.ASSIGNED, OTHER, (), (), ("wait", False)),  # our assignment (the move) is on its way
    (S.CREATED, None, (), (), ("wait", False)),
    (None, None, (), (), ("wait", False)),
])
def test_triage(status: S | None, holder: str | None, handed: tuple[str, ...], out: tuple[str, ...],
                expected: tuple[str, bool]) -> None:
    t = dr.triage((stop("o"),), RIDER, {"o": status} if status else {}, {"o": holder} if holder else {},
                  set(handed), set(out))
    where = "visit" if t.visit else "skip" if t.skipped else "wait"
    assert (where, bool(t.send_out)) == expected
    assert len(t.visit) + len(t.skipped) + len(t.waiting) == 1


def test_triage_keeps_the_route_order() -> None:
    stops = tuple(stop(o) for o in ("a", "b", "c", "d"))
    status = dict.fromkeys("abcd", S.ASSIGNED) | {"c": S.DELIVERED}
    t = dr.triage(stops, RIDER, status, dict.fromkeys("abcd", RIDER), set(), set())
    assert [s.order_id for s in t.visit] == ["a", "b", "d"] and t.send_out == ("a", "b", "d")


def test_position_between_two_steps_is_interpolated_in_time() -> None:
    hub = dataclasses.replace(DAY.shifts[0].start)
    step = dr.BackAtHub(at=T0 + timedelta(seconds=100), lat=hub.lat + 0.01, lon=hub.lon)
    lat, lon = dr.position_at((T0, hub.lat, hub.lon), step, T0 + timedelta(seconds=25))
    assert lat == pytest.approx(hub.lat + 0.0025) and lon == pytest.approx(hub.lon)
    assert dr.position_at((T0, hub.lat, hub.lon), step, T0 + timedelta(hours=1)) == (step.lat, step.lon)
