"""The hub's dispatch state stays bounded: settled orders (delivered, returned to the hub,
cancelled) leave both halves, while dispatch and re-plans keep working, and a redelivered event
of a settled order brings nothing back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas import events as ev
from solver import model as sm
from streams import state
from streams.domain.dispatch import hub as hb
from streams.domain.dispatch import pool as dispatch
from streams.domain.dispatch import replan as rp

S = ev.OrderStatus
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
HUB = "h1"
RIDERS = ("a", "b", "c", "d", "e")
STOPS = 10  # orders per rider and round


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def order(oid: str, t: float) -> ev.OrderCreated:
    return ev.OrderCreated(
        event_id=f"created-{oid}", occurred_at=at(t), order_id=oid, tracking_id=f"t-{oid}", hub_id=HUB,
        mode=ev.DeliveryMode.LAST_MILE, drop=ev.Location(lat=12.97, lon=77.59), window_start=at(t),
        window_end=at(t + 8 * 3600), service_time_s=120, weight_kg=2.0, volume_l=5.0, units=1)


def status(oid: str, to: S, t: float, rider: str, reason: str = "") -> ev.StatusChanged:
    return ev.StatusChanged(event_id=f"{oid}-{to}", occurred_at=at(t), order_id=oid, to_status=to, rider_id=rider,
                            reason=reason)


def cancelled(oid: str, t: float) -> ev.OrderCancelled:
    return ev.OrderCancelled(event_id=f"cancel-{oid}", occurred_at=at(t), order_id=oid,
                             reason="customer changed their mind")


def solution(routes: dict[str, list[str]]) -> sm.Solution:
    return sm.Solution(routes=tuple(
        sm.Route(vehicle_id=r, visits=tuple(sm.Visit(job_id=o, arrival_s=600 * (k + 1), start_s=600 * (k + 1),
                                                     departure_s=600 * (k + 1) + 120) for k, o in enumerate(stops)),
                 start_s=0, end_s=3600, distance_m=4000.0) for r, stops in routes.items()), unassigned=())


def fold(hub: hb.Hub, *events: ev.Event) -> hb.Hub:
    for e in events:
        hub = hb.on_hub_event(hub, e)
    return hub


def round_of(hub: hb.Hub, k: int) -> hb.Hub:
    """One hour of the hub: five riders start a shift, dispatch plans ten orders for each and they
    go out; per rider one is delivered and one fails (it is returned to the hub later), and the
    first rider's last order is cancelled on the route; each rider's re-plan drops what failed or
    was cancelled; the rest are delivered and the shifts end. Order ids have a fixed width, so
    sizes compare."""
    t = k * 3600.0
    ids = {r: [f"o{(k * len(RIDERS) + i) * STOPS + j:08d}" for j in range(STOPS)] for i, r in enumerate(RIDERS)}
    shifts = [ev.RiderShiftStarted(
        event_id=f"shift-{r}-{k:08d}", occurred_at=at(t), rider_id=r, hub_id=HUB, vehicle_type=ev.VehicleType.SCOOTER,
        capacity_weight_kg=100.0, capacity_volume_l=500.0, capacity_units=20, shift_start=at(t),
        shift_end=at(t + 3000), start=ev.GeoPoint(lat=12.97, lon=77.59)) for r in RIDERS]
    hub = fold(hub, *shifts, *(order(o, t) for stops in ids.values() for o in stops))
    outcome = dispatch.apply_plan(hub.pool, dispatch.build_problem(hub.pool), solution(ids))
    assert len(outcome.routes) == len(RIDERS), "dispatch plans the round's orders"
    hub = hb.on_dispatched(hub, outcome)
    first = RIDERS[0]
    hub = fold(hub, *(status(o, S.OUT_FOR_DELIVERY, t + 60, r) for r, stops in ids.items() for o in stops),
               *(status(stops[0], S.DELIVERED, t + 600, r) for r, stops in ids.items()),
               *(status(stops[1], S.FAILED, t + 1200, r, reason="customer not home") for r, stops in ids.items()),
               cancelled(ids[first][-1], t + 1210))
    hub, requests = hb.start_replans(hub, at(t + 1300).timestamp())
    assert sorted(r for q in requests for r in q.riders) == sorted(RIDERS), "one re-plan per rider"
    rest = {r: stops[2:-1] if r == first else stops[2:] for r, stops in ids.items()}
    for request in requests:
        (r,) = request.riders
        hub, _, published = hb.finish_replan(hub, request, solution({r: rest[r]}), at(t + 1301).timestamp())
        (route,) = published.routes
        assert [s.order_id for s in route.stops] == rest[r], "the re-plan drops the failed and the cancelled order"
    hub = fold(hub, *(status(o, S.DELIVERED, t + 1400 + 60 * i, r) for r, stops in rest.items()
                      for i, o in enumerate(stops)),
               *(status(stops[1], S.RETURNED_TO_HUB, t + 2500, r, reason="back_at_hub") for r, stops in ids.items()),
               *(ev.RiderShiftEnded(event_id=f"end-{r}-{k:08d}", occurred_at=at(t + 3000), rider_id=r) for r in RIDERS))
    return hub


PER_ROUND = len(RIDERS) * STOPS


def size(hub: hb.Hub) -> int:
    """The hub-pool table value's size as stored (the state codec's record)."""
    return len(state.encode("hub-pool", hub))


def test_settled_orders_leave_the_hub_and_its_size_stops_growing() -> None:
    hub = hb.hub_state(None, HUB)
    for k in range(1_000 // PER_ROUND):
        hub = round_of(hub, k)
    after_1k = size(hub)
    assert hub.routes.orders == {} and not hub.routes.closed and not hub.routes.settling and not hub.routes.delayed
    assert hub.pool.taken == frozenset() and hub.pool.pending == {} and hub.pool.alerted == frozenset()
    assert len(hub.routes.history) == rp.DISPATCH_PARAMS.history  # full already
    for k in range(1_000 // PER_ROUND, 100_000 // PER_ROUND):
        hub = round_of(hub, k)
    after_100k = size(hub)
    # Only the counters (events folded, re-plans issued) grow, and only as wide as their varints.
    assert after_100k <= after_1k + 8, (after_1k, after_100k)
    remembered = hub.routes.settled | hub.routes.settled_before
    assert rp.DISPATCH_PARAMS.settled_memory // 2 <= len(remembered) <= rp.DISPATCH_PARAMS.settled_memory
    assert f"o{100_000 - 1:08d}" in remembered


def test_a_redelivered_event_of_a_settled_order_brings_nothing_back() -> None:
    hub = round_of(hb.hub_state(None, HUB), 0)
    delivered, failed_returned, cancelled_on_route = "o00000003", "o00000001", f"o{STOPS - 1:08d}"
    again = fold(hub, order(delivered, 0.0), status(delivered, S.OUT_FOR_DELIVERY, 60, "a"),
                 order(failed_returned, 0.0), cancelled(cancelled_on_route, 1210))
    assert again == hub
    assert not again.pool.pending  # dispatch would otherwise plan them a second time


def test_a_cancelled_order_on_a_route_stays_until_the_replan_drops_it() -> None:
    hub = hb.hub_state(None, HUB)
    shift = ev.RiderShiftStarted(
        event_id="shift-a", occurred_at=T0, rider_id="a", hub_id=HUB, vehicle_type=ev.VehicleType.SCOOTER,
        capacity_weight_kg=100.0, capacity_volume_l=500.0, capacity_units=20, shift_start=T0,
        shift_end=at(7200), start=ev.GeoPoint(lat=12.97, lon=77.59))
    ids = [f"p{i:08d}" for i in range(3)]
    hub = fold(hub, shift, *(order(o, 0) for o in ids))
    hub = hb.on_dispatched(hub, dispatch.apply_plan(hub.pool, dispatch.build_problem(hub.pool), solution({"a": ids})))
    hub = fold(hub, cancelled(ids[1], 100))
    assert ids[1] in hub.routes.orders and rp.is_settled(hub.routes, ids[1])  # the re-plan still needs it
    assert ids[1] not in hub.pool.taken
    assert fold(hub, order(ids[1], 0)) == hub  # redelivered meanwhile: not back in dispatch's pool
    hub, (request,) = hb.start_replans(hub, at(200).timestamp())
    assert request.changes.cancelled == {ids[1]}
    hub, _, published = hb.finish_replan(hub, request, solution({"a": [ids[0], ids[2]]}), at(201).timestamp())
    assert [s.order_id for s in published.routes[0].stops] == [ids[0], ids[2]]
    assert ids[1] not in hub.routes.orders and ids[1] in hub.routes.settled and not hub.routes.settling


def test_a_failed_order_stays_until_it_is_returned_to_the_hub() -> None:
    """It may yet be re-attempted: only its return settles it."""
    hub = hb.hub_state(None, HUB)
    shift = ev.RiderShiftStarted(
        event_id="shift-a", occurred_at=T0, rider_id="a", hub_id=HUB, vehicle_type=ev.VehicleType.SCOOTER,
        capacity_weight_kg=100.0, capacity_volume_l=500.0, capacity_units=20, shift_start=T0,
        shift_end=at(7200), start=ev.GeoPoint(lat=12.97, lon=77.59))
    hub = fold(hub, shift, order("p1", 0))
    hub = hb.on_dispatched(hub, dispatch.apply_plan(hub.pool, dispatch.build_problem(hub.pool),
                                                    solution({"a": ["p1"]})))
    hub = fold(hub, status("p1", S.OUT_FOR_DELIVERY, 60, "a"), status("p1", S.FAILED, 600, "a", reason="closed"))
    assert "p1" in hub.routes.orders and "p1" in hub.pool.taken and not rp.is_settled(hub.routes, "p1")
    hub = fold(hub, status("p1", S.RETURNED_TO_HUB, 900, "a", reason="back_at_hub"))
    assert "p1" not in hub.routes.orders and "p1" not in hub.pool.taken and rp.is_settled(hub.routes, "p1")


def test_a_rider_whose_shift_ends_leaves_no_trace() -> None:
    hub = round_of(hb.hub_state(None, HUB), 0)
    routes = hub.routes
    assert not (routes.riders or routes.plans or routes.positions or routes.last_replan_s or routes.offline)
    assert not hub.pool.free
