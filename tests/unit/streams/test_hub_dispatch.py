"""Hub dispatch policy: given the events a hub has seen, then this pool, this routing problem,
and, for a hand-built solution, these assignments, routes and alerts."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta

import pytest

from schemas import Codec
from schemas import events as ev
from solver import model as sm
from streams.domain.dispatch import jobs
from streams.domain.dispatch import pool as dp

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
HUB = "hub-1"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def order(oid: str, lat: float = 12.98, lon: float = 77.60, start: float = 30, end: float = 210, minute: float = 0,
          skills: tuple[str, ...] = (), units: int = 2, priority: int = 0) -> ev.OrderCreated:
    return ev.OrderCreated(
        event_id=f"created-{oid}", occurred_at=at(minute), order_id=oid, tracking_id=f"TRK-{oid}", hub_id=HUB,
        mode=ev.DeliveryMode.LAST_MILE, drop=ev.Location(lat=lat, lon=lon), window_start=at(start),
        window_end=at(end), service_time_s=90, weight_kg=1.5, volume_l=4.0, units=units, required_skills=skills,
        priority=priority)


def shift(rid: str, vehicle: ev.VehicleType = ev.VehicleType.SCOOTER, minute: float = 0, start: float = -30,
          end: float = 570, lat: float = 12.9716, lon: float = 77.5946) -> ev.RiderShiftStarted:
    return ev.RiderShiftStarted(
        event_id=f"shift-{rid}", occurred_at=at(minute), rider_id=rid, hub_id=HUB, vehicle_type=vehicle,
        capacity_weight_kg=30.0, capacity_volume_l=90.0, capacity_units=25, skills=("fragile",),
        shift_start=at(start), shift_end=at(end), start=ev.GeoPoint(lat=lat, lon=lon))


def pool_of(*events: ev.Event) -> dp.HubPool:
    pool = dp.HubPool(hub_id=HUB)
    for e in events:
        pool = dp.on_event(pool, e)
    return pool


# Hand-built solver output, in the solver's own model types.


def visit(job_id: str, arrival_s: int) -> sm.Visit:
    return sm.Visit(job_id=job_id, arrival_s=arrival_s, start_s=arrival_s, departure_s=arrival_s + 90)


def vroute(vehicle_id: str, visits: tuple[sm.Visit, ...], start_s: int, end_s: int,
          distance_m: float) -> sm.Route:
    return sm.Route(vehicle_id=vehicle_id, visits=visits, start_s=start_s, end_s=end_s, distance_m=distance_m)


def unassigned(job_id: str, reason: str) -> sm.Unassigned:
    return sm.Unassigned(job_id=job_id, reason=reason)


def solution_of(routes: tuple[sm.Route, ...], unassigned: tuple[sm.Unassigned, ...] = ()) -> sm.Solution:
    return sm.Solution(routes=routes, unassigned=unassigned)


def standard_pool() -> dp.HubPool:
    return pool_of(
        shift("r1", lat=12.97, lon=77.59), shift("r2", ev.VehicleType.VAN, lat=12.96, lon=77.58),
        order("o1", lat=12.981, lon=77.601), order("o2", lat=12.982, lon=77.602), order("o3", lat=12.983, lon=77.603),
        order("o4", lat=12.984, lon=77.604, minute=1),
    )


def standard_solution() -> sm.Solution:
    return solution_of(
        routes=(vroute("r1", (visit("o2", 1800), visit("o1", 2400), visit("o4", 3000)), 600, 3600, 4321.5),
                vroute("r2", (), 0, 0, 0.0)),
        unassigned=(unassigned("o3", "no vehicle can reach it in its window"),),
    )


# ---- the pool ------------------------------------------------------------------------------


def test_order_created_adds_a_pending_order_with_its_demand_and_window() -> None:
    pool = pool_of(order("o1", skills=("fragile",), units=3, priority=2))
    p = pool.pending["o1"]
    assert (p.lat, p.lon, p.window_start, p.window_end, p.service_s) == (12.98, 77.60, at(30), at(210), 90)
    assert p.demand == (1.5, 4.0, 3.0)
    assert p.skills == frozenset({"fragile"}) and p.priority == 2
    assert pool.version == 1 and pool.last_event_id == "created-o1"


def test_order_cancelled_removes_the_pending_order() -> None:
    pool = pool_of(order("o1"), order("o2"),
                   ev.OrderCancelled(event_id="c1", occurred_at=at(5), order_id="o1", reason="changed mind"))
    assert set(pool.pending) == {"o2"}


def test_shift_started_adds_a_free_rider_and_shift_ended_removes_it() -> None:
    pool = pool_of(shift("r1"), shift("r2", ev.VehicleType.VAN))
    r = pool.free["r1"]
    assert r.capacity == (30.0, 90.0, 25.0)
    assert r.vehicle is ev.VehicleType.SCOOTER
    assert (r.lat, r.lon, r.shift_start, r.shift_end) == (12.9716, 77.5946, at(-30), at(570))
    assert r.skills == frozenset({"fragile"})
    pool = dp.on_event(pool, ev.RiderShiftEnded(event_id="end-r1", occurred_at=at(60), rider_id="r1"))
    assert set(pool.free) == {"r2"}


def test_pool_clock_is_the_latest_event_time_seen() -> None:
    pool = pool_of(order("o1", minute=10), order("o2", minute=5))
    assert pool.clock == at(10)


def test_an_update_changes_the_pending_order_and_counts_as_change() -> None:
    pool = pool_of(order("o1"))
    pool2 = dp.on_event(pool, ev.OrderUpdated(event_id="u1", occurred_at=at(3), order_id="o1", priority=1,
                                              drop=ev.Location(lat=12.99, lon=77.61), units=5))
    o1 = pool2.pending["o1"]
    assert (o1.priority, o1.lat, o1.lon, o1.demand) == (1, 12.99, 77.61, (1.5, 4.0, 5.0))
    assert pool2.version == pool.version + 1


def test_events_the_pool_ignores_still_count_as_change() -> None:
    pool = pool_of(order("o1"))
    pool2 = dp.on_event(pool, ev.PodSubmitted(event_id="p1", occurred_at=at(3), order_id="o1", rider_id="r1"))
    assert pool2.pending == pool.pending and pool2.version == pool.version + 1


def test_ready_needs_pending_orders_and_free_riders() -> None:
    assert not dp.HubPool(hub_id=HUB).ready(math.inf)
    assert not pool_of(order("o1")).ready(math.inf)
    assert not pool_of(shift("r1")).ready(math.inf)
    assert pool_of(order("o1"), shift("r1")).ready(math.inf)


def test_the_rolling_horizon_holds_orders_whose_window_opens_later() -> None:
    pool = pool_of(shift("r1"), order("soon", start=30, end=210), order("later", start=300, end=480))
    assert [o.order_id for o in pool.plannable(60 * 60)] == ["soon"]
    assert [o.order_id for o in dp.build_problem(pool, 60 * 60).orders] == ["soon"]
    assert dp.on_event(pool, order("x", minute=241)).plannable(60 * 60)  # time moves on: later is due
    assert {o.order_id for o in dp.on_event(pool, order("x", minute=241)).plannable(60 * 60)} >= {"later"}


def test_ready_is_false_when_nothing_changed_since_the_last_plan() -> None:
    pool = standard_pool()
    plan = dp.build_problem(pool)
    outcome = dp.apply_plan(pool, plan, solution_of(routes=(), unassigned=(unassigned("o1", "x"),)))
    assert outcome.pool.pending and outcome.pool.free  # leftovers, yet no change
    assert outcome.pool.ready(math.inf) is False
    assert dp.on_event(outcome.pool, order("o9", minute=2)).ready(math.inf) is True


# ---- the routing problem -------------------------------------------------------------------


def test_build_problem_maps_windows_to_seconds_since_the_pool_clock() -> None:
    pool = pool_of(shift("r1", minute=0), order("o1", start=30, end=210, minute=10), order("o0", start=-60, end=-5))
    assert pool.clock == at(10)
    plan = dp.build_problem(pool)
    assert plan.epoch == at(10)
    jobs = {j.id: j for j in plan.problem.jobs}
    assert (jobs["o1"].window_start_s, jobs["o1"].window_end_s) == (20 * 60, 200 * 60)
    assert (jobs["o0"].window_start_s, jobs["o0"].window_end_s) == (0, 0)  # already late: clamped to now
    assert jobs["o0"].late_cost_per_hour is not None  # soft: a late parcel is still delivered, at a cost
    assert jobs["o1"].service_s == 90
    assert jobs["o1"].demand == (1.5, 4.0, 2.0)


def test_build_problem_maps_riders_to_vehicles_with_capacity_shift_and_speed() -> None:
    pool = pool_of(shift("r2", ev.VehicleType.VAN, start=60, end=600, lat=12.96),
                   shift("r1", ev.VehicleType.BIKE), order("o1"))
    plan = dp.build_problem(pool, travel=dp.CONSTANT)
    vehicles = plan.problem.vehicles
    assert [v.id for v in vehicles] == ["r1", "r2"]  # sorted by id
    r1, r2 = vehicles
    assert r1.capacity == (30.0, 90.0, 25.0)
    assert (r1.shift_start_s, r1.shift_end_s) == (0, 570 * 60)  # shift began before now
    assert (r2.shift_start_s, r2.shift_end_s) == (60 * 60, 600 * 60)
    assert r1.speed_mps == dp.VEHICLE_SPEED_MPS[ev.VehicleType.BIKE]
    assert r2.speed_mps == dp.VEHICLE_SPEED_MPS[ev.VehicleType.VAN]
    assert (r1.start, r2.start) == (0, 1) and r1.end == r2.end  # from where they are, back to the hub
    assert plan.problem.locations[r2.end] == (12.96, 77.5946)  # the hub: where the first shift started
    assert r1.skills == frozenset({"fragile", jobs.HUB_PARCEL})  # any rider not stationed at a store takes hub parcels
    learned = dp.build_problem(pool)  # no learned data yet: the vehicle's time-of-day profile
    assert learned.problem.vehicles[1].speed_mps != dp.VEHICLE_SPEED_MPS[ev.VehicleType.VAN]


def test_a_rider_stationed_at_a_store_ends_its_routes_there_and_does_not_make_the_store_the_hub() -> None:
    store = (12.99, 77.61)
    stationed = dataclasses.replace(shift("r0", lat=store[0], lon=store[1]), station_id="store-1a")
    pool = pool_of(stationed, shift("r1"), shift("r2", minute=1, lat=12.95), order("o1"))
    assert pool.depot == (12.9716, 77.5946)  # the first shift of a rider not stationed elsewhere
    plan = dp.build_problem(pool, travel=dp.CONSTANT)
    r0, r1, r2 = plan.problem.vehicles
    assert plan.problem.locations[r0.start] == plan.problem.locations[r0.end] == store
    assert plan.problem.locations[r1.end] == plan.problem.locations[r2.end] == pool.depot
    # store orders only: a hub parcel needs a skill the stationed rider lacks
    assert plan.problem.jobs and all(jobs.HUB_PARCEL in j.skills for j in plan.problem.jobs)  # collected at the hub
    assert jobs.HUB_PARCEL in r1.skills and jobs.HUB_PARCEL not in r0.skills
    alone = pool_of(stationed, order("o1"))  # no hub rider free: hub parcels wait for one, unplanned
    store_order = dataclasses.replace(dp.PendingOrder.of(order("o2")), pickup=store)
    hub_parcel = dp.PendingOrder.of(order("o1"))
    r0_, r1_ = pool.free["r0"], pool.free["r1"]
    assert jobs.needs(hub_parcel) <= jobs.has(r1_) and not jobs.needs(hub_parcel) <= jobs.has(r0_)
    assert jobs.needs(store_order) <= jobs.has(r0_) and jobs.needs(store_order) <= jobs.has(r1_)
    assert dp.build_problem(alone).problem.jobs == ()


def test_build_problem_puts_rider_starts_first_then_orders_in_id_order() -> None:
    pool = pool_of(shift("r1", lat=1.0, lon=2.0), order("o2", lat=3.0, lon=4.0), order("o1", lat=5.0, lon=6.0))
    plan = dp.build_problem(pool)
    assert plan.problem.locations == ((1.0, 2.0), (5.0, 6.0), (3.0, 4.0))
    assert [(j.id, j.location) for j in plan.problem.jobs] == [("o1", 1), ("o2", 2)]
    assert [o.order_id for o in plan.orders] == ["o1", "o2"]
    assert [r.rider_id for r in plan.riders] == ["r1"]
    assert plan.version == pool.version


def test_plan_id_is_deterministic_and_changes_with_the_pool() -> None:
    pool = standard_pool()
    assert dp.build_problem(pool).plan_id == dp.build_problem(standard_pool()).plan_id
    assert dp.build_problem(dp.on_event(pool, order("o9"))).plan_id != dp.build_problem(pool).plan_id


# ---- applying a solution -------------------------------------------------------------------


def test_apply_plan_assigns_orders_in_visit_sequence() -> None:
    pool = standard_pool()
    plan = dp.build_problem(pool)
    outcome = dp.apply_plan(pool, plan, standard_solution())
    got = [(a.order_id, a.rider_id, a.sequence, a.planned_arrival) for a in outcome.assignments]
    epoch = plan.epoch
    assert got == [("o2", "r1", 1, epoch + timedelta(seconds=1800)), ("o1", "r1", 2, epoch + timedelta(seconds=2400)),
                   ("o4", "r1", 3, epoch + timedelta(seconds=3000))]
    assert len({a.route_id for a in outcome.assignments}) == 1
    assert len({a.event_id for a in outcome.assignments}) == 3
    assert all(a.occurred_at == epoch for a in outcome.assignments)


def test_apply_plan_emits_one_route_per_non_empty_route_with_stops_in_order() -> None:
    pool = standard_pool()
    plan = dp.build_problem(pool)
    outcome = dp.apply_plan(pool, plan, standard_solution())
    (route,) = outcome.routes
    assert route.rider_id == "r1" and route.hub_id == HUB
    assert route.route_id == outcome.assignments[0].route_id
    assert [s.order_id for s in route.stops] == ["o2", "o1", "o4"]
    assert [(s.lat, s.lon) for s in route.stops] == [(12.982, 77.602), (12.981, 77.601), (12.984, 77.604)]
    assert [s.planned_arrival for s in route.stops] == [a.planned_arrival for a in outcome.assignments]
    assert all(s.kind is ev.StopKind.DROP and s.service_time_s == 90 for s in route.stops)
    assert route.start == ev.GeoPoint(lat=12.97, lon=77.59)
    assert route.planned_start == plan.epoch + timedelta(seconds=600)
    assert route.planned_end == plan.epoch + timedelta(seconds=3600)
    assert route.distance_m == 4321.5


def test_apply_plan_takes_assigned_orders_and_busy_riders_out_of_the_pool() -> None:
    pool = standard_pool()
    outcome = dp.apply_plan(pool, dp.build_problem(pool), standard_solution())
    assert set(outcome.pool.pending) == {"o3"}
    assert set(outcome.pool.free) == {"r2"}  # r2's route was empty: still free
    assert outcome.pool.planned_version == pool.version


def test_apply_plan_raises_one_unassignable_alert_per_unassigned_order() -> None:
    pool = standard_pool()
    outcome = dp.apply_plan(pool, dp.build_problem(pool), standard_solution())
    (alert,) = outcome.alerts
    assert (alert.kind, alert.subject_id, alert.order_id, alert.severity) == (
        "unassignable_order", "o3", "o3", ev.Severity.WARNING)
    assert "o3" in alert.message and "no vehicle can reach it" in alert.message
    assert outcome.pool.alerted == frozenset({"o3"})


def test_unassignable_alert_is_raised_only_once_across_two_plans() -> None:
    pool = standard_pool()
    first = dp.apply_plan(pool, dp.build_problem(pool), standard_solution())
    pool2 = dp.on_event(first.pool, order("o5", minute=3))
    second_solution = solution_of(routes=(vroute("r2", (visit("o5", 900),), 0, 1200, 900.0),),
                               unassigned=(unassigned("o3", "still unreachable"),))
    second = dp.apply_plan(pool2, dp.build_problem(pool2), second_solution)
    assert second.alerts == ()
    assert second.pool.alerted == frozenset({"o3"})
    assert set(second.pool.pending) == {"o3"}


def test_order_added_while_the_solver_ran_stays_pending() -> None:
    pool = standard_pool()
    plan = dp.build_problem(pool)
    during = dp.on_event(pool, order("o9", minute=2))
    outcome = dp.apply_plan(during, plan, standard_solution())
    assert set(outcome.pool.pending) == {"o3", "o9"}
    assert outcome.pool.ready(math.inf) is True  # o9 came after the plan: plan again
    assert "o9" not in {a.order_id for a in outcome.assignments}


def test_apply_plan_is_deterministic_for_a_replayed_pool() -> None:
    one = dp.apply_plan(standard_pool(), dp.build_problem(standard_pool()), standard_solution())
    two = dp.apply_plan(standard_pool(), dp.build_problem(standard_pool()), standard_solution())
    assert [e.event_id for e in (*one.assignments, *one.routes, *one.alerts)] == \
        [e.event_id for e in (*two.assignments, *two.routes, *two.alerts)]
    assert one.assignments == two.assignments and one.routes == two.routes and one.alerts == two.alerts


def test_two_riders_get_different_route_ids() -> None:
    pool = standard_pool()
    solution = solution_of(routes=(vroute("r1", (visit("o1", 100),), 0, 200, 10.0),
                                vroute("r2", (visit("o2", 100), visit("o3", 200)), 0, 300, 20.0)))
    outcome = dp.apply_plan(pool, dp.build_problem(pool), solution)
    assert len(outcome.routes) == 2
    assert outcome.routes[0].route_id != outcome.routes[1].route_id
    assert [(a.order_id, a.sequence) for a in outcome.assignments] == [("o1", 1), ("o2", 1), ("o3", 2)]
    assert outcome.pool.free == {}


@pytest.mark.parametrize("part", ["assignments", "routes", "alerts"])
def test_plan_events_satisfy_the_wire_contract(part: str) -> None:
    pool = standard_pool()
    outcome = dp.apply_plan(pool, dp.build_problem(pool), standard_solution())
    codec = Codec()
    events = getattr(outcome, part)
    assert events
    for e in events:
        assert codec.decode(codec.encode(e)) == e
