"""An operating day's moves on the real broker and workers: an order inserted into a route in
progress (from where the rider's phone last was), a hyperlocal pickup-and-drop pair, a rider stationed at a store, an address change re-planned, a failed order
re-attempted and delivered, one failed up to the limit and returned to the hub, a break in the
plan and one reported, and a dispatcher's manual assignment honoured."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from harness import Kafka, new_id, now, order_created
from harness import shift_started as harness_shift

from infra.settings import Settings
from schemas import events as ev
from streams.domain.orders import otp

S = ev.OrderStatus


def _hub() -> str:
    return f"hub-{new_id()[:8]}"


def shift_started(hub: str, **fields: object) -> ev.RiderShiftStarted:
    """A shift of 12 hours from now (a re-attempt's window opens an hour after the failure)."""
    return harness_shift(hub, **{"shift_end": now() + timedelta(hours=12), **fields})


def _orders(hub: str, n: int, lat0: float = 12.975) -> list[ev.OrderCreated]:
    return [order_created(hub_id=hub, drop=ev.Location(lat=lat0 + 0.004 * k, lon=77.60 + 0.002 * k,
                                                       address=f"{k} Test Road")) for k in range(n)]


def _route_with(kafka: Kafka, rider_id: str, orders: set[str], predicate: Callable[[ev.RoutePlanned], bool] = lambda r: True,
                timeout_s: float = 60) -> ev.RoutePlanned:
    """The first route of ``rider_id`` dropping all of ``orders`` that ``predicate`` accepts."""
    return kafka.wait_for("routes", lambda e: e.rider_id == rider_id and predicate(e)
                          and orders <= {s.order_id for s in e.stops if s.kind is ev.StopKind.DROP},
                          timeout_s=timeout_s)[0]


def _status(kafka: Kafka, order_id: str, to: S, rider_id: str, at: datetime, **fields: object) -> None:
    kafka.produce("inbox", ev.StatusChanged(event_id=new_id(), occurred_at=at, order_id=order_id, to_status=to,
                                            rider_id=rider_id, **fields))  # type: ignore[arg-type]
    kafka.wait_for("orders", lambda e: isinstance(e, ev.StatusChanged) and e.order_id == order_id and e.to_status is to
                   and e.occurred_at == at)


def _out(kafka: Kafka, route: ev.RoutePlanned, at: datetime) -> None:
    for s in route.stops:
        if s.kind is ev.StopKind.DROP:
            kafka.wait_for("orders", lambda e, o=s.order_id: isinstance(e, ev.OrderAssigned) and e.order_id == o
                           and e.rider_id == route.rider_id)
            _status(kafka, s.order_id, S.OUT_FOR_DELIVERY, route.rider_id, at, reason="left_hub")


def _deliver(settings: Settings, kafka: Kafka, order_id: str, rider_id: str, at: datetime, attempt: int) -> None:
    """The customer reads the OTP of this attempt; the rider app submits its hash."""
    notices = kafka.wait_for("notifications", lambda e: isinstance(e, ev.OtpIssued) and e.order_id == order_id,
                             count=attempt)
    notice = notices[attempt - 1]
    code = otp.open_sealed(otp.key_bytes(settings.otp_key), notice.otp_sealed).decode()
    kafka.produce("inbox", ev.PodSubmitted(event_id=new_id(), occurred_at=at, order_id=order_id, rider_id=rider_id,
                                           otp_hash=otp.hash_otp(code, notice.otp_salt)))
    kafka.wait_for("orders", lambda e: isinstance(e, ev.StatusChanged) and e.order_id == order_id
                   and e.to_status is S.DELIVERED)


def _out_with(kafka: Kafka, n: int) -> tuple[str, ev.RiderShiftStarted, list[ev.OrderCreated], ev.RoutePlanned, datetime]:
    """A hub whose one rider is out with ``n`` orders: (hub, rider, orders, route, when it left)."""
    hub = _hub()
    rider = shift_started(hub)
    orders = _orders(hub, n)
    kafka.produce("riders", rider)
    for o in orders:
        kafka.produce("inbox", o)
    route = _route_with(kafka, rider.rider_id, {o.order_id for o in orders})
    t = now()
    _out(kafka, route, t)
    return hub, rider, orders, route, t


def test_an_order_created_while_every_rider_is_out_is_inserted_into_a_route_in_progress(
        settings: Settings, kafka: Kafka, worker: object) -> None:
    hub, rider, orders, route, t = _out_with(kafka, 3)
    first = route.stops[0]
    _status(kafka, first.order_id, S.ARRIVED, rider.rider_id, t + timedelta(minutes=5),
            location=ev.GeoPoint(lat=first.lat, lon=first.lon))
    late = order_created(hub_id=hub, occurred_at=t + timedelta(minutes=6),
                         drop=ev.Location(lat=12.99, lon=77.61, address="9 Late Lane"))
    kafka.produce("inbox", late)

    inserted = _route_with(kafka, rider.rider_id, {late.order_id} | {o.order_id for o in orders},
                           lambda e: "new_order" in e.reason)
    stops = [(s.order_id, s.kind) for s in inserted.stops]
    assert stops[0] == (first.order_id, ev.StopKind.DROP)  # the stop being served stays first
    assert stops.index((late.order_id, ev.StopKind.PICKUP)) < stops.index((late.order_id, ev.StopKind.DROP))
    pickup = next(s for s in inserted.stops if s.kind is ev.StopKind.PICKUP)
    assert (pickup.lat, pickup.lon) == (rider.start.lat, rider.start.lon)  # collected at the hub
    (assigned,) = kafka.wait_for("orders", lambda e: isinstance(e, ev.OrderAssigned) and e.order_id == late.order_id)
    assert assigned.rider_id == rider.rider_id and assigned.route_id == inserted.route_id
    assert (assigned.occurred_at - late.occurred_at).total_seconds() <= 120


def test_a_rider_under_way_is_re_planned_from_where_its_phone_last_was(settings: Settings, kafka: Kafka,
                                                                        worker: object) -> None:
    """Dispatch reads no GPS topic: the tracker hands it a fix a minute, and an insertion starts
    from there, not from the hub the rider left."""
    hub, rider, orders, route, t = _out_with(kafka, 3)
    first = route.stops[0]
    where = ((rider.start.lat + first.lat) / 2, (rider.start.lon + first.lon) / 2)  # half way to the first stop
    forwarded = None
    for minute in range(1, 6):  # the tracker must have the route first: a ride a minute until it forwards one
        before = (where[0] - 0.0018, where[1])  # 200 m short of it a minute before: riding there
        for k, (lat, lon) in enumerate((before, where)):
            at = t + timedelta(minutes=2 * minute + k)
            ping = ev.GpsPing(event_id=new_id(), occurred_at=at, rider_id=rider.rider_id, device_id=f"p-{rider.rider_id}",
                              device_time=at, lat=lat, lon=lon, speed_mps=6.0, accuracy_m=8.0)
            kafka.produce("gps", ping)
        try:
            (forwarded,) = kafka.wait_for("dispatch-queue", lambda e, p=ping: e.event_id == p.event_id, timeout_s=10)
            break
        except AssertionError:
            continue
    assert forwarded is not None, "the tracker forwarded none of the rider's fixes to dispatch"
    late = order_created(hub_id=hub, occurred_at=forwarded.occurred_at + timedelta(seconds=30),
                         drop=ev.Location(lat=12.99, lon=77.61, address="9 Late Lane"))
    kafka.produce("inbox", late)
    inserted = _route_with(kafka, rider.rider_id, {late.order_id} | {o.order_id for o in orders},
                           lambda e: "new_order" in e.reason)
    assert (inserted.start.lat, inserted.start.lon) == where
    assert (route.start.lat, route.start.lon) == (rider.start.lat, rider.start.lon)  # the first plan: from the hub


def test_a_hyperlocal_order_is_picked_up_at_the_store_then_dropped_within_its_promise(
        settings: Settings, kafka: Kafka, worker: object) -> None:
    hub = _hub()
    rider = shift_started(hub)
    t = now()
    store = ev.Location(lat=12.9800, lon=77.6000, address="Store 1")
    order = order_created(hub_id=hub, mode=ev.DeliveryMode.HYPERLOCAL, pickup=store, promise_min=25,
                          drop=ev.Location(lat=12.9870, lon=77.6060, address="5 Quick Street"),
                          window_start=t, window_end=t + timedelta(hours=4))
    kafka.produce("riders", rider)
    kafka.produce("inbox", order)
    route = _route_with(kafka, rider.rider_id, {order.order_id})
    assert [(s.kind, s.lat, s.lon) for s in route.stops] == [
        (ev.StopKind.PICKUP, store.lat, store.lon), (ev.StopKind.DROP, order.drop.lat, order.drop.lon)]
    assert route.stops[1].window_end == t + timedelta(minutes=25)  # the promise is the deadline
    assert route.stops[1].planned_arrival <= t + timedelta(minutes=25)
    kafka.wait_for("orders", lambda e: isinstance(e, ev.OrderAssigned) and e.order_id == order.order_id)
    # the rider confirms the pickup at the store; the parcel is out for delivery
    _status(kafka, order.order_id, S.OUT_FOR_DELIVERY, rider.rider_id, t + timedelta(minutes=8), reason="picked_up",
            location=ev.GeoPoint(lat=store.lat, lon=store.lon))


def test_a_rider_stationed_at_a_store_takes_its_store_orders_and_leaves_hub_parcels_to_the_hub_riders(
        settings: Settings, kafka: Kafka, worker: object) -> None:
    hub = _hub()
    store = ev.Location(lat=12.9850, lon=77.6100, address="Store 2")
    at_store = shift_started(hub, start=ev.GeoPoint(lat=store.lat, lon=store.lon), station_id="store-2")
    kafka.produce("riders", at_store)
    t = now()
    quick = order_created(hub_id=hub, mode=ev.DeliveryMode.HYPERLOCAL, pickup=store, promise_min=20,
                          drop=ev.Location(lat=12.9890, lon=77.6130, address="7 Quick Street"),
                          window_start=t, window_end=t + timedelta(hours=4))
    # a hub parcel for a door next to the store, while the store's rider is the only one free
    parcel = order_created(hub_id=hub, drop=ev.Location(lat=12.9860, lon=77.6110, address="9 Store Lane"))
    kafka.produce("inbox", parcel)
    kafka.produce("inbox", quick)
    store_route = _route_with(kafka, at_store.rider_id, {quick.order_id})
    assert [(s.kind, s.order_id) for s in store_route.stops] == [(ev.StopKind.PICKUP, quick.order_id),
                                                                 (ev.StopKind.DROP, quick.order_id)]
    # the parcel waits for a rider of the hub, and goes to the first one on shift
    at_hub = shift_started(hub)
    kafka.produce("riders", at_hub)
    _route_with(kafka, at_hub.rider_id, {parcel.order_id})
    assigned = kafka.wait_for("orders", lambda e: isinstance(e, ev.OrderAssigned)
                              and e.order_id in (quick.order_id, parcel.order_id), count=2)
    assert {(a.order_id, a.rider_id) for a in assigned} == {(quick.order_id, at_store.rider_id),
                                                           (parcel.order_id, at_hub.rider_id)}


def test_an_address_change_reaches_dispatch_and_the_rider_gets_a_route_to_the_new_drop(
        settings: Settings, kafka: Kafka, worker: object) -> None:
    _, rider, orders, route, t = _out_with(kafka, 2)
    moved = orders[1]
    new_drop = ev.Location(lat=moved.drop.lat + 0.018, lon=moved.drop.lon, address="New Address 2 km north")
    kafka.produce("inbox", ev.OrderUpdated(event_id=new_id(), occurred_at=t + timedelta(minutes=2),
                                           order_id=moved.order_id, drop=new_drop))
    replanned = _route_with(kafka, rider.rider_id, {moved.order_id}, lambda e: "order_changed" in e.reason)
    stop = next(s for s in replanned.stops if s.order_id == moved.order_id)
    assert (stop.lat, stop.lon) == (new_drop.lat, new_drop.lon)
    assert moved.order_id in replanned.reason


def _failed(settings: Settings, kafka: Kafka, order: ev.OrderCreated, rider_id: str, at: datetime,
            why: ev.FailureReason) -> ev.AttemptDecided:
    _status(kafka, order.order_id, S.FAILED, rider_id, at, failure_reason=why, reason="rang twice",
            location=ev.GeoPoint(lat=order.drop.lat, lon=order.drop.lon))
    return kafka.wait_for("orders", lambda e: isinstance(e, ev.AttemptDecided) and e.order_id == order.order_id
                          and e.occurred_at == at)[0]


def test_a_failed_delivery_is_reattempted_by_policy_and_delivered(settings: Settings, kafka: Kafka,
                                                                  worker: object) -> None:
    hub = _hub()
    rider = shift_started(hub)
    (order,) = _orders(hub, 1)
    kafka.produce("riders", rider)
    kafka.produce("inbox", order)
    route = _route_with(kafka, rider.rider_id, {order.order_id})
    t = now()
    _out(kafka, route, t)
    decided = _failed(settings, kafka, order, rider.rider_id, t + timedelta(minutes=10),
                      ev.FailureReason.CUSTOMER_NOT_AVAILABLE)
    assert decided.decision is ev.AttemptDecision.REATTEMPT and decided.attempt == 1
    assert decided.window_start is not None and decided.window_start > t + timedelta(minutes=10)
    assert "customer_not_available" in decided.reason or "customer not available" in decided.reason

    # the rider's route is over: free again, it gets the re-attempt (collected back at the hub)
    again = _route_with(kafka, rider.rider_id, {order.order_id}, lambda e: e.route_id != route.route_id)
    assert [s.kind for s in again.stops if s.order_id == order.order_id][-1] is ev.StopKind.DROP
    drop = next(s for s in again.stops if s.kind is ev.StopKind.DROP)
    assert drop.window_start == decided.window_start
    assigned = kafka.wait_for("orders", lambda e: isinstance(e, ev.OrderAssigned) and e.order_id == order.order_id,
                              count=2)
    assert assigned[-1].route_id == again.route_id
    t2 = now()  # the rider goes early (the edge refuses event times in the future)
    _status(kafka, order.order_id, S.OUT_FOR_DELIVERY, rider.rider_id, t2, reason="picked_up")
    _deliver(settings, kafka, order.order_id, rider.rider_id, t2 + timedelta(minutes=12), attempt=2)


def test_a_failure_on_the_last_attempt_returns_the_parcel_to_the_hub(settings: Settings, kafka: Kafka,
                                                                     worker: object) -> None:
    hub = _hub()
    rider = shift_started(hub)
    order = order_created(hub_id=hub, max_attempts=1)  # the order allows one attempt (the hub's default is 2)
    kafka.produce("riders", rider)
    kafka.produce("inbox", order)
    route = _route_with(kafka, rider.rider_id, {order.order_id})
    t = now()
    _out(kafka, route, t)
    decided = _failed(settings, kafka, order, rider.rider_id, t + timedelta(minutes=10), ev.FailureReason.NO_ACCESS)
    assert decided.decision is ev.AttemptDecision.RETURN_TO_HUB and decided.rider_id == rider.rider_id
    _status(kafka, order.order_id, S.RETURNED_TO_HUB, rider.rider_id, t + timedelta(minutes=30), reason="back_at_hub")
    # returned: settled, never planned again
    fresh = shift_started(hub)
    kafka.produce("riders", fresh)
    other = order_created(hub_id=hub)
    kafka.produce("inbox", other)
    route = _route_with(kafka, fresh.rider_id, {other.order_id})
    assert order.order_id not in {s.order_id for s in route.stops}


def test_a_planned_break_is_in_the_route_and_a_reported_break_replans_the_rest(settings: Settings, kafka: Kafka,
                                                                               worker: object) -> None:
    hub = _hub()
    t = now()
    lunch = ev.PlannedBreak(break_id="lunch", earliest_start=t + timedelta(minutes=20),
                            latest_start=t + timedelta(minutes=40), duration_s=1800)
    rider = shift_started(hub, breaks=(lunch,))
    orders = _orders(hub, 4)
    kafka.produce("riders", rider)
    for o in orders:
        kafka.produce("inbox", o)
    route = _route_with(kafka, rider.rider_id, {o.order_id for o in orders})
    (planned,) = route.breaks
    assert planned.break_id == "lunch" and lunch.earliest_start <= planned.start <= lunch.latest_start
    assert planned.end - planned.start == timedelta(seconds=1800)
    _out(kafka, route, t)
    kafka.produce("riders", ev.BreakStarted(event_id=new_id(), occurred_at=t + timedelta(minutes=5),
                                            rider_id=rider.rider_id, expected_end=t + timedelta(minutes=20)))
    moved = _route_with(kafka, rider.rider_id, set(), lambda e: "break" in e.reason and rider.rider_id in e.reason)
    first = next(s for s in moved.stops if s.kind is ev.StopKind.DROP)
    assert first.planned_arrival >= t + timedelta(minutes=20)  # nothing before the break ends


def test_a_dispatchers_manual_assignment_is_honoured(settings: Settings, kafka: Kafka, worker: object) -> None:
    hub = _hub()
    riders = [shift_started(hub), shift_started(hub, start=ev.GeoPoint(lat=12.95, lon=77.58))]
    orders = _orders(hub, 4)
    for r in riders:
        kafka.produce("riders", r)
    for o in orders:
        kafka.produce("inbox", o)
    wanted = {o.order_id for o in orders}
    routes: dict[str, ev.RoutePlanned] = {}
    ids = {r.rider_id for r in riders}
    while {s.order_id for r in routes.values() for s in r.stops} != wanted:
        routes = {r.rider_id: r for r in kafka.wait_for("routes", lambda e: e.rider_id in ids, count=len(routes) + 1)}
    owner = next(iter(routes))
    moved = next(s.order_id for s in routes[owner].stops)
    target = next(r for r in ids if r != owner)
    kafka.wait_for("orders", lambda e: isinstance(e, ev.OrderAssigned) and e.order_id == moved)
    kafka.produce("inbox", ev.OrderAssigned(event_id=new_id(), occurred_at=now(), order_id=moved, rider_id=target,
                                            route_id="manual", sequence=1, planned_arrival=now() + timedelta(minutes=30),
                                            assigned_by="dispatcher:ana"))
    honoured = _route_with(kafka, target, {moved})
    assert moved in {s.order_id for s in honoured.stops if s.kind is ev.StopKind.DROP}
    lost = kafka.wait_for("routes", lambda e: e.rider_id == owner and "manual_assignment" in e.reason)[0]
    assert moved not in {s.order_id for s in lost.stops} and "dispatcher:ana" in lost.reason
