"""Every agent's handler without a broker: records in (encoded as a producer would), the pure domain
called, the events it publishes (and the dead letters) out. ``Streams.offline`` keeps tables as
dicts and the published events in a list; the handlers are the ones the Faust workers run."""

from __future__ import annotations

import asyncio
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra.settings import Settings
from schemas import Codec
from schemas import events as ev
from schemas import topics as tp
from streams.agents import dispatch as dispatch_agent
from streams.agents import notifications as notifications_agent
from streams.agents import orders as orders_agent
from streams.agents import riders as riders_agent
from streams.app import Streams
from streams.edge import Record

CODEC = Codec()
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
OFFSETS = iter(range(1_000_000))


@pytest.fixture
def streams() -> Streams:
    settings = Settings.from_env({}, otp_key=secrets.token_hex(32), topic_prefix="u.", dispatch_batch_window_s=0.0,
                                 dispatch_time_limit_s=1.0)
    return Streams.offline(settings, codec=CODEC)


def rec(streams: Streams, topic: tp.TopicSpec, event: ev.Event, key: str | None = None) -> Record:
    name = streams.settings.topic(topic.name)
    return Record(name, 0, next(OFFSETS), (key or event.key).encode(), CODEC.encode(event, name),
                  int(event.occurred_at.timestamp() * 1000))


def raw(streams: Streams, topic: tp.TopicSpec, value: bytes, key: bytes | None = b"k") -> Record:
    return Record(streams.settings.topic(topic.name), 0, next(OFFSETS), key, value, None)


def sent(streams: Streams, topic: tp.TopicSpec) -> list[ev.Event]:
    return [e for name, _, e in streams.sent if name == topic.name]


def order(order_id: str = "ord-1", hub: str = "hub-1", **overrides: Any) -> ev.OrderCreated:
    fields: dict[str, Any] = dict(
        event_id=f"c-{order_id}", occurred_at=T0, order_id=order_id, tracking_id=f"TRK-{order_id}", hub_id=hub,
        mode=ev.DeliveryMode.LAST_MILE, drop=ev.Location(lat=12.975, lon=77.60, address="1 Test Road"),
        window_start=T0, window_end=T0 + timedelta(hours=6), service_time_s=60, weight_kg=1.0, volume_l=2.0, units=1)
    fields.update(overrides)
    return ev.OrderCreated(**fields)


def shift(rider: str = "rider-1", hub: str = "hub-1") -> ev.RiderShiftStarted:
    return ev.RiderShiftStarted(
        event_id=f"s-{rider}", occurred_at=T0, rider_id=rider, hub_id=hub, vehicle_type=ev.VehicleType.SCOOTER,
        capacity_weight_kg=30, capacity_volume_l=90, capacity_units=25, shift_start=T0,
        shift_end=T0 + timedelta(hours=8), start=ev.GeoPoint(lat=12.9716, lon=77.5946))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- orders ---------------------------------------------------------------------------------------


def test_orders_an_accepted_order_goes_to_the_ledger_and_dispatch_keyed_by_hub(streams: Streams) -> None:
    states: dict[bytes, Any] = {}
    run(orders_agent.handle_submission(streams, states, rec(streams, tp.INBOX, order())))
    assert [e.event_id for e in sent(streams, tp.ORDERS)] == ["c-ord-1"]
    [(name, key, event)] = [s for s in streams.sent if s[0] == tp.DISPATCH_QUEUE.name]
    assert key == b"hub-1" and event.event_id == "c-ord-1"
    assert b"ord-1" in states


def test_orders_a_redelivered_submission_publishes_nothing_more(streams: Streams) -> None:
    states: dict[bytes, Any] = {}
    message = rec(streams, tp.INBOX, order())
    run(orders_agent.handle_submission(streams, states, message))
    before = len(streams.sent)
    run(orders_agent.handle_submission(streams, states, message))
    assert len(streams.sent) == before


def test_orders_an_illegal_transition_is_dead_lettered_with_its_reason(streams: Streams) -> None:
    states: dict[bytes, Any] = {}
    delivered = ev.StatusChanged(event_id="x1", occurred_at=T0, order_id="ord-9", to_status=ev.OrderStatus.DELIVERED)
    run(orders_agent.handle_submission(streams, states, rec(streams, tp.INBOX, delivered)))
    [letter] = sent(streams, tp.DEAD_LETTER)
    assert letter.error_kind is ev.DeadLetterKind.ILLEGAL_TRANSITION and sent(streams, tp.ORDERS) == []
    assert states == {}


@pytest.mark.parametrize("case", ["no key", "garbage", "far future"])
def test_orders_bad_input_is_dead_lettered_once_and_never_reaches_the_ledger(streams: Streams, case: str) -> None:
    states: dict[bytes, Any] = {}
    if case == "no key":
        message = rec(streams, tp.INBOX, order())._replace(key=None)
    elif case == "garbage":
        message = raw(streams, tp.INBOX, b"\xc3\x01garbage-garbage")
    else:
        future = datetime(9999, 1, 1, tzinfo=UTC)
        message = rec(streams, tp.INBOX, order(occurred_at=future))._replace(timestamp_ms=None)
    run(orders_agent.handle_submission(streams, states, message))
    assert len(sent(streams, tp.DEAD_LETTER)) == 1 and sent(streams, tp.ORDERS) == [] and states == {}


def _order_ledger_to(streams: Streams, states: dict[bytes, Any], *subs: ev.Event) -> None:
    for sub in subs:
        run(orders_agent.handle_submission(streams, states, rec(streams, tp.INBOX, sub)))


def test_orders_dispatch_hears_changes_failures_decisions_and_manual_assignments_not_its_own(streams: Streams) -> None:
    states: dict[bytes, Any] = {}
    planned = ev.OrderAssigned(event_id="a1", occurred_at=T0, order_id="ord-1", rider_id="rider-1", route_id="route-1",
                               sequence=1, planned_arrival=T0 + timedelta(minutes=30))
    manual = ev.OrderAssigned(event_id="a2", occurred_at=T0 + timedelta(minutes=1), order_id="ord-1",
                              rider_id="rider-2", route_id="manual-1", sequence=1,
                              planned_arrival=T0 + timedelta(minutes=40), assigned_by="dispatcher:ana")
    moved = ev.OrderUpdated(event_id="u1", occurred_at=T0 + timedelta(minutes=2), order_id="ord-1",
                            drop=ev.Location(lat=12.99, lon=77.61), weight_kg=3.0)
    out = ev.StatusChanged(event_id="o1", occurred_at=T0 + timedelta(minutes=3), order_id="ord-1",
                           to_status=ev.OrderStatus.OUT_FOR_DELIVERY, rider_id="rider-2")
    failed = ev.StatusChanged(event_id="f1", occurred_at=T0 + timedelta(minutes=20), order_id="ord-1",
                              to_status=ev.OrderStatus.FAILED, reason="gate locked",
                              failure_reason=ev.FailureReason.NO_ACCESS)
    _order_ledger_to(streams, states, order(), planned, manual, moved, out, failed)
    assert sent(streams, tp.DEAD_LETTER) == []
    ledger = [type(e).__name__ for e in sent(streams, tp.ORDERS)]
    assert ledger == ["OrderCreated", "OrderAssigned", "OrderAssigned", "OrderUpdated", "StatusChanged",
                      "StatusChanged", "AttemptDecided"]
    to_dispatch = [(k, e) for name, k, e in streams.sent if name == tp.DISPATCH_QUEUE.name]
    assert {k for k, _ in to_dispatch} == {b"hub-1"}
    assert [e.event_id for _, e in to_dispatch] == [
        "c-ord-1", "a2", "u1", "o1", "f1", sent(streams, tp.ORDERS)[-1].event_id]  # not a1: dispatch's own plan
    decided = to_dispatch[-1][1]
    assert isinstance(decided, ev.AttemptDecided) and decided.decision is ev.AttemptDecision.REATTEMPT


def test_orders_the_hub_policies_setting_reaches_the_lifecycle() -> None:
    settings = Settings.from_env({}, otp_key=secrets.token_hex(32), topic_prefix="u.",
                                 hub_policies='{"hubs": {"hub-1": {"reattempt": {"max_attempts": 1}}}}')
    streams = Streams.offline(settings, codec=CODEC)
    assert streams.hub_policies.of("hub-1").reattempt.max_attempts == 1
    assert streams.policy is not None and streams.policy.hubs is streams.hub_policies
    states: dict[bytes, Any] = {}
    out = ev.StatusChanged(event_id="o1", occurred_at=T0 + timedelta(minutes=3), order_id="ord-1",
                           to_status=ev.OrderStatus.OUT_FOR_DELIVERY, rider_id="rider-1")
    planned = ev.OrderAssigned(event_id="a1", occurred_at=T0, order_id="ord-1", rider_id="rider-1", route_id="route-1",
                               sequence=1, planned_arrival=T0 + timedelta(minutes=30))
    failed = ev.StatusChanged(event_id="f1", occurred_at=T0 + timedelta(minutes=20), order_id="ord-1",
                              to_status=ev.OrderStatus.FAILED, failure_reason=ev.FailureReason.CUSTOMER_NOT_AVAILABLE)
    _order_ledger_to(streams, states, order(), planned, out, failed)
    decided = sent(streams, tp.ORDERS)[-1]
    assert isinstance(decided, ev.AttemptDecided) and decided.decision is ev.AttemptDecision.RETURN_TO_HUB


# -- riders ---------------------------------------------------------------------------------------


def test_riders_a_shift_goes_to_its_hub_and_its_end_follows_it_there(streams: Streams) -> None:
    hubs: dict[bytes, Any] = {}
    run(riders_agent.handle_shift(streams, hubs, rec(streams, tp.RIDERS, shift())))
    ended = ev.RiderShiftEnded(event_id="e1", occurred_at=T0 + timedelta(hours=1), rider_id="rider-1")
    run(riders_agent.handle_shift(streams, hubs, rec(streams, tp.RIDERS, ended)))
    keys = [k for name, k, _ in streams.sent if name == tp.DISPATCH_QUEUE.name]
    assert keys == [b"hub-1", b"hub-1"] and hubs[b"rider-1"] is None


def test_riders_breaks_go_to_the_riders_hub(streams: Streams) -> None:
    hubs: dict[bytes, Any] = {}
    run(riders_agent.handle_shift(streams, hubs, rec(streams, tp.RIDERS, shift(hub="hub-2"))))
    began = ev.BreakStarted(event_id="b1", occurred_at=T0 + timedelta(minutes=10), rider_id="rider-1",
                            break_id="lunch", expected_end=T0 + timedelta(minutes=40))
    ended = ev.BreakEnded(event_id="b2", occurred_at=T0 + timedelta(minutes=38), rider_id="rider-1")
    for event in (began, ended):
        run(riders_agent.handle_shift(streams, hubs, rec(streams, tp.RIDERS, event)))
    forwarded = [(k, e.event_id) for name, k, e in streams.sent if name == tp.DISPATCH_QUEUE.name]
    assert forwarded == [(b"hub-2", "s-rider-1"), (b"hub-2", "b1"), (b"hub-2", "b2")]
    assert sent(streams, tp.DEAD_LETTER) == [] and hubs[b"rider-1"] == "hub-2"


@pytest.mark.parametrize("kind", [ev.BreakStarted, ev.BreakEnded])
def test_riders_a_break_without_a_shift_is_an_illegal_transition(streams: Streams, kind: type[ev.RiderEvent]) -> None:
    hubs: dict[bytes, Any] = {b"rider-1": None}  # its shift ended
    run(riders_agent.handle_shift(streams, hubs, rec(streams, tp.RIDERS, kind(event_id="b1", occurred_at=T0,
                                                                               rider_id="rider-1"))))
    [letter] = sent(streams, tp.DEAD_LETTER)
    assert letter.error_kind is ev.DeadLetterKind.ILLEGAL_TRANSITION and "without a shift" in letter.reason
    assert [s for s in streams.sent if s[0] == tp.DISPATCH_QUEUE.name] == []


def test_riders_an_end_without_a_start_is_an_illegal_transition(streams: Streams) -> None:
    ended = ev.RiderShiftEnded(event_id="e1", occurred_at=T0, rider_id="rider-7")
    run(riders_agent.handle_shift(streams, {}, rec(streams, tp.RIDERS, ended)))
    [letter] = sent(streams, tp.DEAD_LETTER)
    assert letter.error_kind is ev.DeadLetterKind.ILLEGAL_TRANSITION and "never started" in letter.reason


# -- dispatch -------------------------------------------------------------------------------------


def test_dispatch_plans_a_quiet_hub_and_publishes_assignments_and_a_route(streams: Streams) -> None:
    pool = ThreadPoolExecutor(1)
    dispatcher = dispatch_agent.HubDispatcher(streams, {}, executor=lambda: pool)
    for event in (shift(), order("ord-1"), order("ord-2")):
        run(dispatcher.handle_hub_input(rec(streams, tp.DISPATCH_QUEUE, event, key="hub-1")))
    run(dispatcher.plan_quiet_hubs())
    pool.shutdown()
    assignments, routes = sent(streams, tp.INBOX), sent(streams, tp.ROUTES)
    assert {a.order_id for a in assignments} == {"ord-1", "ord-2"}
    [route] = routes
    assert route.rider_id == "rider-1" and {s.order_id for s in route.stops} == {"ord-1", "ord-2"}


def test_dispatch_keeps_a_riders_fix_without_a_state_write_and_plans_from_it(streams: Streams) -> None:
    pool = ThreadPoolExecutor(1)
    states: dict[bytes, Any] = {}
    dispatcher = dispatch_agent.HubDispatcher(streams, states, executor=lambda: pool)
    run(dispatcher.handle_hub_input(rec(streams, tp.DISPATCH_QUEUE, shift(), key="hub-1")))
    written, changed = dict(states), dict(dispatcher.last_change)
    t = shift().shift_start + timedelta(minutes=5)
    fix = ev.GpsPing(event_id="gps-1", occurred_at=t, rider_id="rider-1", device_id="phone-1", device_time=t,
                     lat=12.99, lon=77.62)
    run(dispatcher.handle_hub_input(rec(streams, tp.DISPATCH_QUEUE, fix, key="hub-1")))
    assert states == written and dispatcher.last_change == changed  # soft: no write, the hub stays quiet
    run(dispatcher.handle_hub_input(rec(streams, tp.DISPATCH_QUEUE, order("ord-1"), key="hub-1")))
    run(dispatcher.plan_quiet_hubs())
    pool.shutdown()
    [route] = sent(streams, tp.ROUTES)
    assert (route.start.lat, route.start.lon) == (12.99, 77.62)  # planned from where the rider is


def test_dispatch_input_without_a_key_is_dead_lettered_not_pooled(streams: Streams) -> None:
    states: dict[bytes, Any] = {}
    dispatcher = dispatch_agent.HubDispatcher(streams, states)
    run(dispatcher.handle_hub_input(rec(streams, tp.DISPATCH_QUEUE, order())._replace(key=None)))
    assert len(sent(streams, tp.DEAD_LETTER)) == 1 and states == {}


# -- notifications --------------------------------------------------------------------------------


def test_notifications_an_order_out_with_an_eta_tells_the_customer(streams: Streams) -> None:
    notices = notifications_agent.CustomerNotices(streams, {})
    created = order("ord-5")
    t = T0 + timedelta(minutes=5)
    ledger = [
        created,
        ev.OrderAssigned(event_id="a5", occurred_at=t, order_id="ord-5", rider_id="rider-1", route_id="R1",
                         sequence=1, planned_arrival=t + timedelta(minutes=30)),
        ev.StatusChanged(event_id="o5", occurred_at=t, order_id="ord-5", from_status=ev.OrderStatus.ASSIGNED,
                         to_status=ev.OrderStatus.OUT_FOR_DELIVERY, rider_id="rider-1"),
    ]
    for e in ledger:
        run(notices.handle_order_input(rec(streams, tp.ORDERS, e)))
    eta = ev.EtaUpdated(event_id="eta5", occurred_at=t, order_id="ord-5", rider_id="rider-1", route_id="R1",
                        eta_p50=t + timedelta(minutes=30), eta_p90=t + timedelta(minutes=40))
    run(notices.handle_order_input(rec(streams, tp.ETAS, eta)))
    kinds = [n.kind for n in sent(streams, tp.NOTIFICATIONS)]
    assert ev.NoticeKind.OUT_FOR_DELIVERY in kinds
    assert all(n.order_id == "ord-5" for n in sent(streams, tp.NOTIFICATIONS))
    before = len(streams.sent)
    wall = streams.clock()
    streams.clock = lambda: wall + 15 * 60  # the events' day, 15 minutes on: the p50 is 15 minutes off
    run(notices.tell_arriving_soon())
    assert len(streams.sent) == before
    streams.clock = lambda: wall + 21 * 60  # now it is 9 minutes off
    run(notices.tell_arriving_soon())
    soon = sent(streams, tp.NOTIFICATIONS)[len(kinds):]
    assert [n.kind for n in soon] == [ev.NoticeKind.ARRIVING_SOON]
    assert len(streams.sent) == before + 1
    # dated on the events' day (55 minutes ago), not by the wall clock
    assert abs(soon[0].occurred_at - (t + timedelta(minutes=21))) < timedelta(seconds=5)


def test_dispatch_loses_no_event_that_arrives_while_a_plan_is_being_published(streams: Streams) -> None:
    """An order created while dispatch waits for its outcome's acks is still in the pool afterwards,
    and an 'out for delivery' of a planned order, read right after, finds its route (parcel on board)."""
    pool = ThreadPoolExecutor(1)
    states: dict[bytes, Any] = {}
    dispatcher = dispatch_agent.HubDispatcher(streams, states, executor=lambda: pool)
    for event in (shift(), order("ord-1")):
        run(dispatcher.handle_hub_input(rec(streams, tp.DISPATCH_QUEUE, event, key="hub-1")))
    publish = streams.publish
    publishing = asyncio.Event()

    async def slow_publish(*args: Any, **kwargs: Any) -> None:  # the broker's acks take a while
        publishing.set()
        await asyncio.sleep(0.05)
        await publish(*args, **kwargs)

    streams.publish = slow_publish  # type: ignore[method-assign]
    late = order("ord-late")
    out = ev.StatusChanged(event_id="out-1", occurred_at=T0 + timedelta(minutes=1), order_id="ord-1",
                           from_status=ev.OrderStatus.ASSIGNED, to_status=ev.OrderStatus.OUT_FOR_DELIVERY,
                           rider_id="rider-1")

    async def day() -> None:
        planning = asyncio.create_task(dispatcher.plan_quiet_hubs())
        await asyncio.wait_for(publishing.wait(), 30)  # solved; its outcome is on its way to the broker
        await dispatcher.handle_hub_input(rec(streams, tp.DISPATCH_QUEUE, late, key="hub-1"))
        await dispatcher.handle_hub_input(rec(streams, tp.DISPATCH_QUEUE, out, key="hub-1"))
        await planning

    run(day())
    pool.shutdown()
    hub = dispatcher.hub(b"hub-1")
    assert "ord-late" in hub.pool.pending  # not overwritten by the plan's outcome
    assert "ord-1" in hub.routes.plans["rider-1"].on_board  # the route was known when the parcel left
