"""Dispatch never plans an order twice (a plan, a re-plan or the order's own progress takes it out
of the pool for good), and its route plans say why they were made and what was promised."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas import events as ev
from solver import model as sm
from streams.domain.dispatch import pool as dp

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
HUB = "hub-1"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def order(oid: str, lat: float = 12.98) -> ev.OrderCreated:
    return ev.OrderCreated(
        event_id=f"created-{oid}", occurred_at=T0, order_id=oid, tracking_id=f"TRK-{oid}", hub_id=HUB,
        mode=ev.DeliveryMode.LAST_MILE, drop=ev.Location(lat=lat, lon=77.60), window_start=at(30),
        window_end=at(150), service_time_s=90, weight_kg=1.5, volume_l=4.0, units=1)


def shift(rid: str) -> ev.RiderShiftStarted:
    return ev.RiderShiftStarted(
        event_id=f"shift-{rid}", occurred_at=T0, rider_id=rid, hub_id=HUB, vehicle_type=ev.VehicleType.BIKE,
        capacity_weight_kg=30.0, capacity_volume_l=90.0, capacity_units=25, shift_start=at(-30), shift_end=at(480),
        start=ev.GeoPoint(lat=12.97, lon=77.59))


def pool_of(*events: ev.Event) -> dp.HubPool:
    pool = dp.HubPool(hub_id=HUB)
    for e in events:
        pool = dp.on_event(pool, e)
    return pool


def one_route(rider: str, *order_ids: str) -> sm.Solution:
    visits = tuple(sm.Visit(job_id=o, arrival_s=600 * (k + 1), start_s=600 * (k + 1), departure_s=600 * (k + 1) + 90)
                   for k, o in enumerate(order_ids))
    return sm.Solution(routes=(sm.Route(vehicle_id=rider, visits=visits, start_s=0, end_s=4000, distance_m=5000.0),),
                       unassigned=())


def test_a_planned_order_redelivered_stays_out_of_the_pool() -> None:
    pool = pool_of(shift("r1"), order("o1"), order("o2"))
    outcome = dp.apply_plan(pool, dp.build_problem(pool), one_route("r1", "o1"))
    assert set(outcome.pool.pending) == {"o2"}
    replayed = dp.on_event(dp.on_event(outcome.pool, order("o1")), shift("r2"))  # a redelivery after a crash
    assert set(replayed.pending) == {"o2"}
    assert [o.order_id for o in dp.build_problem(replayed).orders] == ["o2"]


def test_an_order_a_replan_placed_leaves_the_pool_for_good() -> None:
    pool = dp.take(pool_of(shift("r1"), order("o1"), order("o2")), ["o1"])
    assert set(pool.pending) == {"o2"} and "o1" in pool.taken
    assert set(dp.on_event(pool, order("o1")).pending) == {"o2"}
    assert dp.take(pool, []) is pool


def test_an_order_on_its_way_is_not_dispatchs_to_plan() -> None:
    pool = pool_of(shift("r1"), order("o1"), order("o2"))
    moved = ev.StatusChanged(event_id="s1", occurred_at=at(5), order_id="o1", to_status=ev.OrderStatus.OUT_FOR_DELIVERY,
                             rider_id="r9")
    assert set(dp.on_event(pool, moved).pending) == {"o2"}


def test_dispatch_routes_give_their_reason_and_each_stops_window() -> None:
    pool = pool_of(shift("r1"), order("o1"), order("o2", lat=12.99))
    (route,) = dp.apply_plan(pool, dp.build_problem(pool), one_route("r1", "o2", "o1")).routes
    assert route.reason == dp.DISPATCH_REASON == "dispatch"
    assert [(s.order_id, s.window_start, s.window_end) for s in route.stops] == [("o2", at(30), at(150)),
                                                                                ("o1", at(30), at(150))]
