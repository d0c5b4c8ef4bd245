"""Continuous dispatch, pure: a hub's state folded from events, planned with the real solver, and
what it publishes: hyperlocal pairs, riders back in the pool, re-attempts, changes, manual
assignments, breaks, learned travel times and even workload."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta

import pytest

from schemas import events as ev
from solver import SolveParams, solve
from solver import model as sm
from solver.reoptimise import reoptimise
from streams.domain.dispatch import departure, jobs
from streams.domain.dispatch import hub as hb
from streams.domain.dispatch import pool as dp
from streams.domain.dispatch import replan as rp
from streams.domain.hub_policy import HubPolicy

S = ev.OrderStatus
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
HUB = "h1"
DEPOT = (12.97, 77.59)
FAST = SolveParams(time_limit_s=0.5)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ts(seconds: float) -> float:
    return at(seconds).timestamp()


def order(oid: str, lat: float, *, created_s: float = 0.0, store: tuple[float, float] | None = None,
          promise_min: int | None = None, window_h: float = 8.0, units: int = 1) -> ev.OrderCreated:
    return ev.OrderCreated(
        event_id=f"created-{oid}", occurred_at=at(created_s), order_id=oid, tracking_id=f"t-{oid}", hub_id=HUB,
        mode=ev.DeliveryMode.HYPERLOCAL if store else ev.DeliveryMode.LAST_MILE,
        drop=ev.Location(lat=lat, lon=77.60), pickup=ev.Location(lat=store[0], lon=store[1]) if store else None,
        window_start=at(created_s), window_end=at(created_s + window_h * 3600), service_time_s=120, weight_kg=2.0,
        volume_l=5.0, units=units, promise_min=promise_min)


def shift(rider: str, *, breaks: tuple[ev.PlannedBreak, ...] = (), vehicle: ev.VehicleType = ev.VehicleType.SCOOTER,
          where: tuple[float, float] = DEPOT) -> ev.RiderShiftStarted:
    return ev.RiderShiftStarted(
        event_id=f"shift-{rider}", occurred_at=T0, rider_id=rider, hub_id=HUB, vehicle_type=vehicle,
        capacity_weight_kg=100.0, capacity_volume_l=500.0, capacity_units=20, shift_start=T0,
        shift_end=at(10 * 3600), start=ev.GeoPoint(lat=where[0], lon=where[1]), breaks=breaks)


def status(oid: str, to: S, rider: str, at_s: float, where: tuple[float, float] | None = None,
           reason: str = "") -> ev.StatusChanged:
    return ev.StatusChanged(event_id=f"{oid}-{to}-{at_s}", occurred_at=at(at_s), order_id=oid, to_status=to,
                            rider_id=rider, reason=reason,
                            failure_reason=ev.FailureReason.CUSTOMER_NOT_AVAILABLE if to is S.FAILED else None,
                            location=ev.GeoPoint(lat=where[0], lon=where[1]) if where else None)


def fold(hub: hb.Hub, *events: ev.Event) -> hb.Hub:
    for e in events:
        hub = hb.on_hub_event(hub, e)
    return hub


def plan(hub: hb.Hub, policy: HubPolicy = HubPolicy()) -> tuple[hb.Hub, dp.PlanOutcome]:
    """What the dispatch agent does when the hub is ready: build, solve, apply."""
    built = dp.build_problem(hub.pool, policy.horizon_min * 60, dp.travel_times(hub.pool, policy.learned_speeds),
                             policy.even_workload)
    outcome = dp.apply_plan(hub.pool, built, solve(built.problem, FAST), departure.of(policy))
    return hb.on_dispatched(hub, outcome), outcome


def replan_now(hub: hb.Hub, now_s: float, policy: HubPolicy = HubPolicy()) -> tuple[hb.Hub, hb.Published]:
    """What the agent does for due re-plans: start, solve, finish (one request expected)."""
    hub, (request,) = hb.start_replans(hub, ts(now_s), policy)
    solution = reoptimise(request.situation, request.changes, request.policy, params=FAST)
    hub, _, out = hb.finish_replan(hub, request, solution, ts(now_s + 1))
    return hub, out


def dispatch_round(hub: hb.Hub, now_s: float, policy: HubPolicy) -> tuple[hb.Hub, dp.PlanOutcome | None]:
    """The agent's dispatch step: hub parcels offered to riders waiting at the hub, the rest planned."""
    hub = hb.offer_to_waiting(hub, ts(now_s), policy)
    built = dp.build_problem(hub.pool, policy.horizon_min * 60, dp.travel_times(hub.pool, policy.learned_speeds),
                             exclude=hub.to_waiting.keys())
    if not built.orders:
        return hb.planned(hub), None
    outcome = dp.apply_plan(hub.pool, built, solve(built.problem, FAST), departure.of(policy))
    return hb.on_dispatched(hub, outcome), outcome


def start() -> hb.Hub:
    return hb.hub_state(None, HUB)


# ---- hyperlocal ------------------------------------------------------------------------------


def test_a_hyperlocal_order_is_picked_up_at_its_store_then_dropped_by_the_same_rider_within_its_promise() -> None:
    store = (12.975, 77.60)
    hub = fold(start(), shift("a"), order("h1", 12.984, store=store, promise_min=25))
    assert hub.pool.pending["h1"].window_end == at(25 * 60)  # the promise is the drop's deadline
    hub, outcome = plan(hub)
    (route,) = outcome.routes
    assert [(s.order_id, s.kind) for s in route.stops] == [("h1", ev.StopKind.PICKUP), ("h1", ev.StopKind.DROP)]
    assert (route.stops[0].lat, route.stops[0].lon) == store
    assert route.stops[1].planned_arrival <= at(25 * 60)
    assert jobs.pickups_before_drops(route.stops)
    (assigned,) = outcome.assignments  # one assignment per order, numbered by drops
    assert (assigned.order_id, assigned.sequence) == ("h1", 1)
    assert hub.routes.plans["a"].stops == ("h1/pickup", "h1")
    # the rider confirms the pickup: the parcel is on board, the pickup is done
    hub = fold(hub, status("h1", S.ASSIGNED, "a", 5), status("h1", S.OUT_FOR_DELIVERY, "a", 400, store, "picked_up"))
    assert hub.routes.plans["a"].stops == ("h1",) and hub.routes.plans["a"].on_board == {"h1"}


def test_a_promise_costs_ten_times_a_window_to_break_and_a_reattempt_keeps_no_promise() -> None:
    promised = dp.PendingOrder.of(order("h1", 12.984, store=(12.975, 77.60), promise_min=25))
    plain = dp.PendingOrder.of(order("o1", 12.984))
    assert promised.promised and not plain.promised

    def costs(o: dp.PendingOrder) -> set[float | None]:
        built = jobs.order_jobs(o, jobs.Locations(), T0, collect_at=o.pickup, travel=jobs.CONSTANT, vehicles=frozenset())
        return {j.late_cost_per_hour for j in built}

    assert costs(promised) == {jobs.PROMISE_LATE_COST_PER_HOUR} == {10 * jobs.LATE_COST_PER_HOUR}
    assert costs(plain) == {jobs.LATE_COST_PER_HOUR}
    hub = fold(start(), shift("a"), order("h1", 12.984, store=(12.975, 77.60), promise_min=25))
    hub = hb._back_to_pool(hub, "h1", at(3600), at(7200))
    assert not hub.pool.pending["h1"].promised and hub.pool.pending["h1"].pickup is None


def test_two_orders_from_one_store_ride_together_when_it_pays() -> None:
    store = (12.975, 77.60)
    hub = fold(start(), shift("a"), shift("b"), order("h1", 12.985, store=store, promise_min=30),
               order("h2", 12.986, store=store, promise_min=30))
    _, outcome = plan(hub)
    assert len(outcome.routes) == 1  # one rider collects both at the store
    kinds = [s.kind for s in outcome.routes[0].stops]
    assert kinds[:2] == [ev.StopKind.PICKUP, ev.StopKind.PICKUP]


# ---- riders back in the pool, several trips ---------------------------------------------------


def test_a_rider_whose_route_is_done_is_free_again_and_gets_the_next_order_collected_at_the_hub() -> None:
    hub = fold(start(), shift("a"), order("o1", 12.99))
    hub, _ = plan(hub)
    assert "a" not in hub.pool.free
    done_at = (12.99, 77.60)
    hub = fold(hub, status("o1", S.OUT_FOR_DELIVERY, "a", 60), status("o1", S.DELIVERED, "a", 900, done_at))
    assert "a" in hub.pool.free and "a" not in hub.routes.plans
    assert (hub.pool.free["a"].lat, hub.pool.free["a"].lon) == done_at  # from where the last stop was
    hub = fold(hub, order("o2", 12.95, created_s=950))
    assert hub.pool.ready(math.inf)
    hub, outcome = plan(hub)
    (route,) = outcome.routes
    # away from the hub: back there to load the parcel, then out again (a second trip)
    assert [(s.order_id, s.kind) for s in route.stops] == [("o2", ev.StopKind.PICKUP), ("o2", ev.StopKind.DROP)]
    assert (route.stops[0].lat, route.stops[0].lon) == DEPOT
    assert (route.start.lat, route.start.lon) == done_at


def test_a_rider_on_the_way_is_planned_from_its_latest_fix_not_from_its_last_stop() -> None:
    """Dispatch hears no GPS but the tracker's fix a minute: a re-plan starts where the rider is,
    and a free rider riding back is planned from there; an older fix or one of a rider held
    offline changes nothing."""
    hub = fold(start(), shift("a"), *(order(f"o{k}", 12.97 + 0.005 * k) for k in range(1, 4)))
    hub, _ = plan(hub)
    hub = fold(hub, *(status(f"o{k}", S.OUT_FOR_DELIVERY, "a", 60, DEPOT) for k in range(1, 4)))
    on_way = (12.973, 77.60)
    moved = hb.with_positions(hub, {"a": rp.Fix(*on_way, ts(300))})
    assert moved.routes.positions["a"] == rp.Fix(*on_way, ts(300))
    assert hb.with_positions(moved, {"a": rp.Fix(12.0, 77.0, ts(200))}) == moved  # older: ignored
    offline = dataclasses.replace(moved, routes=dataclasses.replace(moved.routes, offline=frozenset({"a"})))
    assert hb.with_positions(offline, {"a": rp.Fix(12.0, 77.0, ts(400))}) == offline
    moved = hb.offer_waiting(fold(moved, order("new", 12.99, created_s=310)), ts(311), HubPolicy())
    moved, out = replan_now(moved, 312)
    (route,) = out.routes
    assert (route.start.lat, route.start.lon) == on_way
    _, without = replan_now(hb.offer_waiting(fold(hub, order("new", 12.99, created_s=310)), ts(311), HubPolicy()), 312)
    (old,) = without.routes
    assert (old.start.lat, old.start.lon) == DEPOT  # without it: from where the parcels left
    # a free rider (route done) riding back is planned from its fix, not from where it delivered
    done = fold(hub, *(status(f"o{k}", S.DELIVERED, "a", 900 + k, (12.985, 77.60)) for k in range(1, 4)))
    back = hb.with_positions(done, {"a": rp.Fix(12.972, 77.595, ts(1000))})
    assert (done.pool.free["a"].lat, back.pool.free["a"].lat) == (12.985, 12.972)
    assert back.pool.version == done.pool.version  # a fix is no new work: the hub stays quiet


def test_an_order_no_free_rider_can_take_is_inserted_into_a_route_in_progress() -> None:
    hub = fold(start(), shift("a"), *(order(f"o{k}", 12.97 + 0.005 * k) for k in range(1, 4)))
    hub, _ = plan(hub)
    hub = fold(hub, *(status(f"o{k}", S.OUT_FOR_DELIVERY, "a", 60) for k in range(1, 4)),
               status("o1", S.ARRIVED, "a", 600, (12.975, 77.60)), order("new", 12.99, created_s=610))
    assert not hub.pool.free and "new" in hub.pool.pending
    hub = hb.offer_waiting(hub, ts(611), HubPolicy())
    assert [(t.kind, t.subject_id, t.riders) for t in hub.routes.pending] == [
        (rp.TriggerKind.NEW_ORDER, "new", frozenset({"a"}))]
    hub, out = replan_now(hub, 612)
    (route,) = out.routes
    assert route.stops[0].order_id == "o1"  # the stop being served stays first
    kinds = [(s.order_id, s.kind) for s in route.stops]
    assert kinds.index(("new", ev.StopKind.PICKUP)) < kinds.index(("new", ev.StopKind.DROP))
    assert [a.order_id for a in out.assignments] == ["new"] and "new" not in hub.pool.pending
    later = hb.offer_waiting(hub, ts(620), HubPolicy())
    assert later.routes.pending == () and later.offered == {}  # placed: not offered again, the offer forgotten


def with_shift_end(hub: hb.Hub, rider: str, end_s: float) -> hb.Hub:
    return dataclasses.replace(hub, routes=dataclasses.replace(hub.routes, riders={
        r: (dataclasses.replace(v, shift_end=at(end_s)) if r == rider else v) for r, v in hub.routes.riders.items()}))


def test_a_rider_whose_shift_ends_before_an_orders_window_opens_is_not_offered_it_even_with_parcels_on_board() -> None:
    """Parcels on board let a re-plan run past the shift's end (to deliver them), not take new work
    for after it: else the rider going home collects the evening's orders, and drops them all once
    the last parcel on board is delivered."""
    hub, _ = plan(fold(start(), shift("a"), order("o1", 12.99)))
    hub, _ = plan(fold(hub, shift("b"), order("o2", 12.95)))
    near, far = "a", "b"
    hub = fold(hub, status("o1", S.OUT_FOR_DELIVERY, near, 60, (12.99, 77.60)),
               status("o2", S.OUT_FOR_DELIVERY, far, 60, (12.95, 77.60)))
    hub = with_shift_end(hub, near, 3600)
    evening = dataclasses.replace(order("late", 12.995, created_s=600), window_start=at(2 * 3600))
    offered = hb.offer_waiting(fold(hub, evening), ts(601), HubPolicy())
    assert [t.riders for t in offered.routes.pending] == [frozenset({far})]
    soon = order("soon", 12.995, created_s=600)  # its window opens while both are on shift
    offered = hb.offer_waiting(fold(hub, soon), ts(601), HubPolicy())
    assert [t.riders for t in offered.routes.pending] == [frozenset({near, far})]


def test_a_re_plan_running_past_the_shift_for_the_parcels_on_board_takes_no_new_work_after_the_shift_ends() -> None:
    hub, _ = plan(fold(start(), shift("a"), order("o1", 12.99)))
    hub = fold(hub, status("o1", S.OUT_FOR_DELIVERY, "a", 60, DEPOT))
    hub = hb.with_positions(hub, {"a": rp.Fix(12.985, 77.60, ts(600))})
    hub = with_shift_end(hub, "a", 700)  # ends in 100 s: o1 is delivered in overtime
    hub = fold(hub, order("new", 12.995, created_s=600))  # its window opens within the shift
    hub = hb.offer_waiting(hub, ts(601), HubPolicy())
    assert [t.riders for t in hub.routes.pending] == [frozenset({"a"})]
    hub, out = replan_now(hub, 602)
    assert hub.routes.plans["a"].stops == ("o1",)  # the parcel on board, nothing collected at the hub for later
    assert "new" not in {a.order_id for a in out.assignments} and "new" in hub.pool.pending
    assert hub.passed == {"new": frozenset({"a"})}


def test_riders_whose_re_plan_left_an_order_out_are_passed_over_for_the_next_nearest_then_asked_again() -> None:
    nearest_only = dataclasses.replace(rp.DISPATCH_PARAMS, nearest_riders=1)
    hub, _ = plan(fold(start(), shift("a"), order("o1", 12.99)))
    hub, _ = plan(fold(hub, shift("b"), order("o2", 12.95)))
    near, far = "a", "b"
    hub = hb.with_positions(hub, {near: rp.Fix(12.99, 77.60, ts(600)), far: rp.Fix(12.95, 77.60, ts(600))})
    # the nearest rider's shift is nearly over: 17 km out and back does not fit it
    hub = with_shift_end(hub, near, 3600)
    hub = fold(hub, order("new", 13.14, created_s=610))
    hub = hb.offer_waiting(hub, ts(611), HubPolicy(), nearest_only)
    assert [t.riders for t in hub.routes.pending] == [frozenset({near})]
    hub, out = replan_now(hub, 612)
    assert "new" not in {a.order_id for a in out.assignments} and hub.passed == {"new": frozenset({near})}
    hub = hb.offer_waiting(hub, ts(614), HubPolicy(), nearest_only)
    assert [t.riders for t in hub.routes.pending] == [frozenset({far})]  # the next nearest, at once
    # everyone able has passed: the nearest is asked again once its route has had time to move on
    hub = dataclasses.replace(hub, routes=dataclasses.replace(hub.routes, pending=()),
                              passed={"new": frozenset({near, far})})
    assert hb.offer_waiting(hub, ts(620), HubPolicy(), nearest_only).routes.pending == ()
    hub = hb.offer_waiting(hub, ts(614 + hb.REOFFER_S), HubPolicy(), nearest_only)
    assert [t.riders for t in hub.routes.pending] == [frozenset({near})] and "new" not in hub.passed


def test_an_order_only_a_long_route_can_take_is_offered_to_it_rather_than_waiting_for_its_rider_to_return() -> None:
    """Offers go to routes with few drops left (a long route taking every order would keep its rider
    out for hours); but when only a long route has the skill, it gets the offer."""
    short = dataclasses.replace(rp.DISPATCH_PARAMS, offer_max_drops=2)
    fragile_car = dataclasses.replace(shift("a", vehicle=ev.VehicleType.CAR), skills=("fragile",))
    hub, _ = plan(fold(start(), fragile_car, *(order(f"o{k}", 12.97 + 0.005 * k) for k in range(1, 4))))
    hub, _ = plan(fold(hub, shift("b"), order("o4", 12.95)))
    assert len(hub.routes.plans["a"].stops) == 3 and len(hub.routes.plans["b"].stops) == 1
    hub = fold(hub, *(status(f"o{k}", S.OUT_FOR_DELIVERY, "a", 60, DEPOT) for k in range(1, 4)),
               status("o4", S.OUT_FOR_DELIVERY, "b", 60, DEPOT))
    plain = order("plain", 12.99, created_s=600)
    offered = hb.offer_waiting(fold(hub, plain), ts(601), HubPolicy(), short)
    assert [t.riders for t in offered.routes.pending] == [frozenset({"b"})]  # a has too many drops left
    glass = dataclasses.replace(order("glass", 12.99, created_s=600), required_skills=("fragile",))
    offered = hb.offer_waiting(fold(hub, glass), ts(601), HubPolicy(), short)
    assert [t.riders for t in offered.routes.pending] == [frozenset({"a"})]  # only a can carry it


def test_a_rider_free_at_a_store_does_not_keep_a_hub_parcel_from_the_routes_in_progress() -> None:
    # the hub's rider is out; the store's rider is free, but takes store orders only
    store = (12.985, 77.61)
    at_store = dataclasses.replace(shift("s"), start=ev.GeoPoint(lat=store[0], lon=store[1]), station_id="store-1")
    hub = fold(start(), shift("a"), at_store, *(order(f"o{k}", 12.97 + 0.005 * k) for k in range(1, 3)))
    hub, _ = plan(hub)
    assert "a" not in hub.pool.free and "s" in hub.pool.free
    hub = fold(hub, *(status(f"o{k}", S.OUT_FOR_DELIVERY, "a", 60) for k in range(1, 3)),
               order("new", 12.99, created_s=610))
    assert not hub.pool.free_for(hub.pool.pending["new"]) and not hub.pool.ready(math.inf)
    hub = hb.offer_waiting(hub, ts(611), HubPolicy())
    assert [(t.kind, t.subject_id, t.riders) for t in hub.routes.pending] == [
        (rp.TriggerKind.NEW_ORDER, "new", frozenset({"a"}))]
    # a store order is the free store rider's: no re-plan of a route for it
    quick = fold(hub, order("quick", 12.99, created_s=620, store=store, promise_min=20))
    assert quick.pool.free_for(quick.pool.pending["quick"]) and quick.pool.ready(math.inf)
    assert all(t.subject_id != "quick" for t in quick.routes.pending)


# ---- re-attempts --------------------------------------------------------------------------------


def decided(oid: str, decision: ev.AttemptDecision, start_s: float | None = None,
            end_s: float | None = None) -> ev.AttemptDecided:
    return ev.AttemptDecided(event_id=f"decided-{oid}", occurred_at=at(1000), order_id=oid, attempt=1,
                             failure_reason=ev.FailureReason.CUSTOMER_NOT_AVAILABLE, decision=decision, rider_id="a",
                             window_start=at(start_s) if start_s is not None else None,
                             window_end=at(end_s) if end_s is not None else None, reason="test")


def failed_once(*more: ev.Event) -> hb.Hub:
    hub = fold(start(), shift("a"), order("o1", 12.99), order("o2", 12.95))
    hub, _ = plan(hub)
    return fold(hub, status("o1", S.OUT_FOR_DELIVERY, "a", 60), status("o2", S.OUT_FOR_DELIVERY, "a", 60),
                status("o1", S.FAILED, "a", 900, (12.99, 77.60), "nobody home"), *more)


def test_a_reattempt_puts_the_failed_order_back_in_the_pool_with_its_new_window_collected_at_the_hub() -> None:
    hub = failed_once()
    assert "o1" not in hub.pool.pending  # failed: waiting for the policy's decision
    hub = fold(hub, decided("o1", ev.AttemptDecision.REATTEMPT, 4600, 15000))
    o1 = hub.pool.pending["o1"]
    assert (o1.window_start, o1.window_end, o1.pickup) == (at(4600), at(15000), None)
    assert "o1" not in hub.routes.closed
    assert [o.order_id for o in hub.pool.plannable(30 * 60)] == []  # its window opens later than the horizon
    assert [o.order_id for o in hub.pool.plannable(2 * 3600)] == ["o1"]


def test_return_to_hub_plans_nothing_and_awaiting_a_slot_waits_for_the_customers_window() -> None:
    assert "o1" not in failed_once(decided("o1", ev.AttemptDecision.RETURN_TO_HUB)).pool.pending
    hub = failed_once(decided("o1", ev.AttemptDecision.AWAIT_CUSTOMER_SLOT))
    assert "o1" not in hub.pool.pending and hub.awaiting_slot == {"o1"}
    hub = fold(hub, ev.OrderUpdated(event_id="slot", occurred_at=at(1200), order_id="o1", window_start=at(7200),
                                    window_end=at(10800)))
    assert hub.pool.pending["o1"].window_start == at(7200) and hub.awaiting_slot == frozenset()


# ---- changes ------------------------------------------------------------------------------------


def test_an_address_change_replans_the_rider_with_the_new_drop() -> None:
    hub = fold(start(), shift("a"), order("o1", 12.99), order("o2", 12.95))
    hub, _ = plan(hub)
    hub = fold(hub, status("o1", S.OUT_FOR_DELIVERY, "a", 60), status("o2", S.OUT_FOR_DELIVERY, "a", 60),
               ev.OrderUpdated(event_id="moved", occurred_at=at(300), order_id="o2",
                               drop=ev.Location(lat=12.93, lon=77.62)))
    assert [(t.kind, t.subject_id) for t in hub.routes.pending] == [(rp.TriggerKind.ORDER_CHANGED, "o2")]
    hub, out = replan_now(hub, 301)
    (route,) = out.routes
    moved = next(s for s in route.stops if s.order_id == "o2")
    assert (moved.lat, moved.lon) == (12.93, 77.62) and "order_changed o2 (drop)" in route.reason


def hand_plan(hub: hb.Hub, **routes: tuple[str, ...]) -> hb.Hub:
    """Dispatch with a hand-made solution (who gets what is the test's choice)."""
    built = dp.build_problem(hub.pool)
    solution = sm.Solution(routes=tuple(
        sm.Route(vehicle_id=r, visits=tuple(sm.Visit(job_id=o, arrival_s=600 * (k + 1), start_s=600 * (k + 1),
                                                     departure_s=600 * (k + 1) + 120) for k, o in enumerate(stops)),
                 start_s=0, end_s=3600, distance_m=4000.0) for r, stops in routes.items()), unassigned=())
    return hb.on_dispatched(hub, dp.apply_plan(hub.pool, built, solution))


def test_a_manual_assignment_moves_the_order_to_the_dispatchers_rider() -> None:
    hub = fold(start(), shift("a"), shift("b"), *(order(f"o{k}", 12.97 + 0.005 * k) for k in range(1, 5)))
    hub = hand_plan(hub, a=("o1", "o2"), b=("o3", "o4"))
    manual = ev.OrderAssigned(event_id="manual", occurred_at=at(120), order_id="o2", rider_id="b",
                              route_id="manual", sequence=1, planned_arrival=at(900), assigned_by="dispatcher:ana")
    hub = fold(hub, manual)
    assert hub.routes.pins == {"o2": "b"}
    (trigger,) = hub.routes.pending
    assert trigger.kind is rp.TriggerKind.MANUAL_ASSIGNMENT and trigger.riders == {"a", "b"}
    hub, request = hb.start_replans(hub, ts(130))
    assert {j.id: j.vehicle_id for j in request[0].situation.problem.jobs}["o2"] == "b"  # pinned by the dispatcher
    solution = reoptimise(request[0].situation, request[0].changes, request[0].policy, params=FAST)
    hub, _, out = hb.finish_replan(hub, request[0], solution, ts(131))
    assert "o2" in hub.routes.plans["b"].stops and "o2" not in hub.routes.plans["a"].stops
    stops = [(s.order_id, s.kind) for s in next(r for r in out.routes if r.rider_id == "b").stops]
    # not loaded yet: b collects it at the hub, then drops it
    assert [k for o, k in stops if o == "o2"] == [ev.StopKind.PICKUP, ev.StopKind.DROP]


def test_a_manual_assignment_to_a_free_rider_is_planned_for_that_rider() -> None:
    hub = fold(start(), shift("a"), shift("b"), order("o1", 12.99))
    manual = ev.OrderAssigned(event_id="manual", occurred_at=at(10), order_id="o1", rider_id="b",
                              route_id="manual", sequence=1, planned_arrival=at(900), assigned_by="dispatcher:ana")
    hub = fold(hub, manual)
    _, outcome = plan(hub)
    assert [(a.order_id, a.rider_id) for a in outcome.assignments] == [("o1", "b")]


# ---- breaks -------------------------------------------------------------------------------------


def test_a_planned_break_is_in_the_route_and_a_reported_break_delays_the_rest_of_it() -> None:
    lunch = ev.PlannedBreak(break_id="lunch", earliest_start=at(1800), latest_start=at(2400), duration_s=1800)
    hub = fold(start(), shift("a", breaks=(lunch,)), *(order(f"o{k}", 12.97 + 0.01 * k) for k in range(1, 6)))
    hub, outcome = plan(hub)
    (route,) = outcome.routes
    (b,) = route.breaks
    assert b.break_id == "lunch" and at(1800) <= b.start <= at(2400) and b.end - b.start == timedelta(seconds=1800)
    # an unplanned break reported mid-route: the rest of the route moves by it
    hub = fold(hub, *(status(f"o{k}", S.OUT_FOR_DELIVERY, "a", 60) for k in range(1, 6)),
               ev.BreakStarted(event_id="brk", occurred_at=at(600), rider_id="a", expected_end=at(1500)))
    assert [(t.kind, t.subject_id) for t in hub.routes.pending] == [(rp.TriggerKind.BREAK, "a")]
    hub, request = hb.start_replans(hub, ts(601))
    assert request[0].changes.delays_s == {"a": 899}


# ---- travel times -------------------------------------------------------------------------------


def learned(vehicle: ev.VehicleType, speed: float, service_factor: float = 1.0) -> ev.TravelTimesLearned:
    return ev.TravelTimesLearned(event_id=f"tt-{vehicle}-{speed}", occurred_at=T0, vehicle_type=vehicle,
                                 leg_speed_mps=(speed,) * 24, service_factor=service_factor, legs=50)


def test_learned_travel_times_set_the_planned_speed_and_service_and_the_constant_policy_ignores_them() -> None:
    hub = fold(start(), shift("a"), order("o1", 12.99), learned(ev.VehicleType.SCOOTER, 3.0, 1.5))
    built = dp.build_problem(hub.pool, travel=dp.travel_times(hub.pool, True))
    assert built.problem.vehicles[0].speed_mps == 3.0 * jobs.CIRCUITY
    assert {j.id: j.service_s for j in built.problem.jobs}["o1"] == 180
    constant = dp.build_problem(hub.pool, travel=dp.travel_times(hub.pool, False))
    assert constant.problem.vehicles[0].speed_mps == jobs.VEHICLE_SPEED_MPS[ev.VehicleType.SCOOTER]
    slow, fast = (plan(fold(start(), shift("a"), order("o1", 12.99), learned(ev.VehicleType.SCOOTER, v)))[1]
                  for v in (2.0, 6.0))
    assert slow.assignments[0].planned_arrival > fast.assignments[0].planned_arrival


def test_published_arrivals_take_each_leg_at_the_speed_of_the_hour_it_is_driven_in() -> None:
    """The solver prices a route at the speed of the hour it plans in (09:00); a route that runs
    past 10:00 into a slow hour arrives later there, and only there."""
    far = [order(f"o{k}", 12.97 + 0.04 * k) for k in range(1, 7)]  # 4.4 km apart: o6 is driven to after 10:00
    flat = learned(ev.VehicleType.SCOOTER, 6.0)
    slow_from_ten = dataclasses.replace(flat, leg_speed_mps=tuple(6.0 if h <= 9 else 2.0 for h in range(24)))
    arrivals = []
    for travel in (flat, slow_from_ten):
        _, outcome = plan(fold(start(), shift("a"), *far, travel))
        arrivals.append({x.order_id: x.planned_arrival for x in outcome.assignments})
    steady, slowed = arrivals
    before_ten = [o for o in steady if steady[o] < at(3600)]
    assert len(before_ten) >= 3 and all(slowed[o] == steady[o] for o in before_ten)  # as the solver priced them
    last = max(steady, key=steady.__getitem__)
    assert steady[last] > at(3600) and slowed[last] > steady[last] + timedelta(minutes=10)  # at a third of the speed
    built = dp.build_problem(fold(start(), shift("a"), *far, slow_from_ten).pool,
                             travel=dp.travel_times(fold(start(), slow_from_ten).pool, True))
    steps = built.problem.vehicles[0].speed_steps
    assert steps[:3] == ((0, 6.0 * jobs.CIRCUITY), (3600, 2.0 * jobs.CIRCUITY), (7200, 2.0 * jobs.CIRCUITY))
    assert jobs.CONSTANT.speed_steps(ev.VehicleType.SCOOTER, T0) == ()  # one speed: published as solved


def test_a_riders_learned_pace_sets_its_own_planned_speed_and_the_constant_policy_ignores_it() -> None:
    paced = dataclasses.replace(learned(ev.VehicleType.SCOOTER, 3.0), rider_factors=(
        ev.RiderFactor(rider_id="a", travel_factor=1.25), ev.RiderFactor(rider_id="c", travel_factor=float("nan"))))
    hub = fold(start(), shift("a"), shift("b"), shift("c"), order("o1", 12.99), paced)
    built = dp.build_problem(hub.pool, travel=dp.travel_times(hub.pool, True))
    speeds = {v.id: v.speed_mps for v in built.problem.vehicles}
    assert speeds["a"] == pytest.approx(3.0 * jobs.CIRCUITY / 1.25)  # 25 % slower than the type's typical leg
    assert speeds["b"] == speeds["c"] == 3.0 * jobs.CIRCUITY  # not learned, or nonsense: the type's speed
    constant = dp.build_problem(hub.pool, travel=dp.travel_times(hub.pool, False))
    assert {v.speed_mps for v in constant.problem.vehicles} == {jobs.VEHICLE_SPEED_MPS[ev.VehicleType.SCOOTER]}


def test_even_workload_reaches_the_problem() -> None:
    hub = fold(start(), shift("a"), shift("b"), *(order(f"o{k}", 12.97 + 0.002 * k) for k in range(6)))
    built = dp.build_problem(hub.pool, even_workload=True)
    assert built.problem.even_workload
    _, outcome = plan(hub, HubPolicy(even_workload=True))
    assert sorted(len(r.stops) for r in outcome.routes) == [3, 3]


def test_a_manual_assignment_to_a_free_rider_takes_the_order_off_the_route_it_was_on() -> None:
    hub = fold(start(), shift("a"), shift("b"), *(order(f"o{k}", 12.97 + 0.005 * k) for k in range(1, 4)))
    hub = hand_plan(hub, a=("o1", "o2", "o3"))
    hub = fold(hub, ev.OrderAssigned(event_id="manual", occurred_at=at(120), order_id="o2", rider_id="b",
                                     route_id="manual", sequence=1, planned_arrival=at(900),
                                     assigned_by="dispatcher:ana"))
    hub, out = replan_now(hub, 130)  # a loses it...
    assert "o2" not in hub.routes.plans["a"].stops and "o2" not in {s.order_id for r in out.routes for s in r.stops}
    assert "o2" in hub.pool.pending  # ...and dispatch plans it for b
    _, outcome = plan(hub)
    assert [(x.order_id, x.rider_id) for x in outcome.assignments] == [("o2", "b")]


def test_a_rider_back_in_the_pool_leaves_no_trigger_behind() -> None:
    hub = fold(start(), shift("a"), order("o1", 12.99))
    hub, _ = plan(hub)
    hub = fold(hub, status("o1", S.OUT_FOR_DELIVERY, "a", 60), status("o1", S.FAILED, "a", 900, (12.99, 77.6)))
    assert "a" in hub.pool.free and hub.routes.pending == ()  # the failure's re-plan is moot: the route is over


def test_a_parcel_that_left_with_another_rider_than_planned_stays_with_that_rider() -> None:
    hub = fold(start(), shift("a"), shift("b"), *(order(f"o{k}", 12.97 + 0.005 * k) for k in range(1, 5)))
    hub = hand_plan(hub, a=("o1", "o2"), b=("o3", "o4"))
    hub = fold(hub, status("o1", S.OUT_FOR_DELIVERY, "b", 60))  # a move to a raced b's departure with o1
    assert "o1" in hub.routes.plans["b"].on_board and "o1" not in hub.routes.plans["a"].stops
    (trigger,) = hub.routes.pending
    assert trigger.kind is rp.TriggerKind.ORDER_CHANGED and trigger.riders == {"a", "b"}
    hub, out = replan_now(hub, 70)
    assert "o1" in hub.routes.plans["b"].stops and "o1" not in hub.routes.plans["a"].stops
    assert all(a.order_id != "o1" for a in out.assignments)  # nobody is told to take it from b


def test_a_parcel_on_board_the_solver_leaves_out_stays_on_its_riders_route() -> None:
    hub = fold(start(), shift("a"), shift("b"), *(order(f"o{k}", 12.97 + 0.005 * k) for k in range(1, 4)))
    hub = hand_plan(hub, a=("o1", "o2", "o3"))
    hub = fold(hub, *(status(f"o{k}", S.OUT_FOR_DELIVERY, "a", 60) for k in range(1, 4)),
               status("o1", S.FAILED, "a", 600, (12.975, 77.60)))
    hub, request = hb.start_replans(hub, ts(610))
    empty = sm.Solution(routes=(), unassigned=tuple(sm.Unassigned(job_id=o, reason="shift over") for o in ("o2", "o3")))
    hub, outcome, out = hb.finish_replan(hub, request[0], empty, ts(611))
    assert hub.routes.plans["a"].stops == ("o2", "o3") and outcome.unassignable == ()
    assert "o2" not in hub.pool.pending and out.alerts == ()


def test_a_search_that_found_nothing_keeps_the_routes_and_tries_again() -> None:
    hub = fold(start(), shift("a"), *(order(f"o{k}", 12.97 + 0.005 * k) for k in range(1, 4)))
    hub = hand_plan(hub, a=("o1", "o2", "o3"))
    hub = fold(hub, status("o1", S.OUT_FOR_DELIVERY, "a", 60), status("o1", S.FAILED, "a", 600, (12.975, 77.60)))
    hub, (request,) = hb.start_replans(hub, ts(610))
    failed = sm.Solution(routes=(), unassigned=tuple(
        sm.Unassigned(job_id=j.id, reason="solver found no solution (routing status 3)")
        for j in request.situation.problem.jobs))
    hub, outcome, out = hb.finish_replan(hub, request, failed, ts(611))
    assert outcome.stale and out.routes == () and out.alerts == ()
    assert hub.routes.plans["a"].stops == ("o2", "o3") and [t.subject_id for t in hub.routes.pending] == ["o1"]


def test_a_rider_away_from_the_hub_collects_a_parcel_it_never_loaded_before_dropping_it() -> None:
    hub = fold(start(), shift("a"), *(order(f"o{k}", 12.97 + 0.005 * k) for k in range(1, 4)))
    hub = hand_plan(hub, a=("o1", "o2", "o3"))  # planned at the hub, loaded at the start...
    hub = fold(hub, status("o1", S.OUT_FOR_DELIVERY, "a", 60), status("o3", S.OUT_FOR_DELIVERY, "a", 60),
               status("o1", S.FAILED, "a", 600, (12.975, 77.60)))  # ...but o2 never left the hub
    hub, (request,) = hb.start_replans(hub, ts(610))
    jobs_ = {j.id: j for j in request.situation.problem.jobs}
    assert jobs_["o2"].pickup_id == "o2/pickup" and jobs_["o3"].pickup_id is None
    plan_ = request.situation.plan["a"]
    assert plan_.index("o2/pickup") < plan_.index("o2")
    hub, out = replan_now(hb.fail_replan(hub, request), 800)
    kinds = [(s.order_id, s.kind) for s in out.routes[0].stops]
    assert kinds.index(("o2", ev.StopKind.PICKUP)) < kinds.index(("o2", ev.StopKind.DROP))


def test_a_free_rider_past_the_shifts_end_is_planned_nothing() -> None:
    hub = fold(start(), shift("a"), shift("b"), *(order(f"o{k}", 12.97 + 0.005 * k) for k in range(1, 3)))
    hub = hand_plan(hub, a=("o1", "o2"))
    late = dataclasses.replace(hub.pool, clock=at(10 * 3600 + 60))  # b's shift ended a minute ago
    assert late.on_shift() == [] and not dp.on_event(late, order("o3", 12.99, created_s=36_100)).ready(math.inf)


def test_a_replan_answering_many_triggers_keeps_its_reason_inside_the_edges_text_limit() -> None:
    triggers = [rp.Trigger(kind=rp.TriggerKind.NEW_ORDER, subject_id=f"ord-{k:05d}", riders=frozenset({"a"}),
                           at_s=0.0, note="no free rider") for k in range(200)]
    text = rp.reason_text(triggers)
    assert len(text) <= rp.REASON_MAX_CHARS and text.startswith("new_order ord-00000 (no free rider); ")
    assert text.endswith(" more") and rp.reason_text(triggers[:2]) == (
        "new_order ord-00000 (no free rider); new_order ord-00001 (no free rider)")


# ---- departure waves ----------------------------------------------------------------------------

WAVES = HubPolicy(hold_min=20.0, hold_full_drops=3, hold_slack_min=30.0)


def drop(arrival_s: float, window_end_s: float | None = None, window_start_s: float | None = None) -> departure.StopTimes:
    return departure.StopTimes(ev.StopKind.DROP, arrival_s, window_start_s, window_end_s)


def test_the_departure_rule_waits_for_more_parcels_only_while_no_window_needs_the_rider_gone() -> None:
    hold = departure.of(WAVES)
    assert departure.hold_s(0, [drop(600, 8 * 3600)], 0, hold) == 20 * 60  # the whole wait
    assert departure.hold_s(300, [drop(900, 8 * 3600)], 0, hold) == 15 * 60  # held since 0: five minutes gone
    assert departure.hold_s(0, [drop(600, 600 + 40 * 60)], 0, hold) == 10 * 60  # 30 min slack kept to the window's end
    assert departure.hold_s(0, [drop(600, 600 + 20 * 60)], 0, hold) == 0.0  # already tight: leave now
    assert departure.hold_s(0, [drop(600, 8 * 3600), drop(900), drop(1200)], 0, hold) == 0.0  # full
    pickup = departure.StopTimes(ev.StopKind.PICKUP, 300, None, None)
    assert departure.hold_s(0, [pickup, drop(600, 8 * 3600)], 0, hold) == 0.0  # a store's order: its promise is short
    assert departure.hold_s(1300, [drop(1900, 8 * 3600)], 0, hold) == 0.0  # waited long enough
    assert departure.hold_s(0, [drop(600)], 0, hold) == 20 * 60  # no window: the whole wait
    moved = departure.later((ev.RouteBreak(break_id="b", start=at(3600), end=at(5400)),), 600)
    assert [(b.start, b.end) for b in moved] == [(at(4200), at(6000))]  # the break moves with the route
    assert departure.hold_s(0, [drop(600, 8 * 3600)], 0, departure.of(HubPolicy())) == 0.0  # the default: no waves


def test_a_rider_waits_at_the_hub_and_the_next_hub_parcel_joins_its_route_not_another_riders() -> None:
    hub = fold(start(), shift("a"), shift("b"), order("o1", 12.99))
    hub, outcome = dispatch_round(hub, 0, WAVES)
    assert outcome is not None
    (route,) = outcome.routes
    (assigned,) = outcome.assignments
    assert assigned.occurred_at == T0  # assigned at once: only the departure waits
    assert route.planned_start == at(20 * 60) and route.stops[0].planned_arrival > at(20 * 60)
    rider = route.rider_id
    assert rp.waiting_at_hub(hub.routes, rider, ts(60))
    hub = fold(hub, order("o2", 12.992, created_s=300))
    hub, outcome = dispatch_round(hub, 301, WAVES)
    assert outcome is None  # nothing for the free rider: o2 is offered to the waiting one
    assert [(t.subject_id, t.riders) for t in hub.routes.pending] == [("o2", frozenset({rider}))]
    hub, out = replan_now(hub, 302, WAVES)
    (route,) = out.routes
    assert route.rider_id == rider and [s.order_id for s in route.stops] in (["o1", "o2"], ["o2", "o1"])
    assert all(s.kind is ev.StopKind.DROP for s in route.stops)  # loaded at the hub with the rest
    assert route.planned_start == at(20 * 60)  # still the first departure: a wave does not wait forever
    assert [a.order_id for a in out.assignments] == ["o2"] and not hub.to_waiting
    # a third parcel fills the route: it leaves at once
    hub = fold(hub, order("o3", 12.994, created_s=400))
    hub, outcome = dispatch_round(hub, 401, WAVES)
    hub, out = replan_now(hub, 432, WAVES)
    (route,) = out.routes
    assert len(route.stops) == 3 and route.planned_start <= at(433)
    assert not rp.waiting_at_hub(hub.routes, rider, ts(440))


def test_a_store_order_is_not_held_and_goes_to_a_free_rider() -> None:
    hub = fold(start(), shift("a"), shift("b"), order("o1", 12.99))
    hub, _ = dispatch_round(hub, 0, WAVES)
    hub = fold(hub, order("h1", 12.984, created_s=120, store=(12.975, 77.60), promise_min=25))
    hub, outcome = dispatch_round(hub, 121, WAVES)
    assert outcome is not None and not hub.routes.pending
    (route,) = outcome.routes
    assert route.stops[0].kind is ev.StopKind.PICKUP and route.planned_start <= at(121)


def test_a_parcel_the_waiting_riders_cannot_take_comes_back_to_the_free_ones() -> None:
    hub = fold(start(), shift("a"), shift("b"), order("o1", 12.99))
    hub, outcome = dispatch_round(hub, 0, WAVES)
    assert outcome is not None
    waiting = outcome.routes[0].rider_id
    big = dataclasses.replace(order("o2", 12.95, created_s=300), units=19)  # o1 takes one of its 20 units
    hub = fold(hub, big, order("o3", 12.951, created_s=300, units=1))
    hub = dataclasses.replace(hub, routes=dataclasses.replace(hub.routes, riders={
        r: (dataclasses.replace(v, capacity=(100.0, 500.0, 10)) if r == waiting else v)
        for r, v in hub.routes.riders.items()}))
    hub, outcome = dispatch_round(hub, 301, WAVES)
    assert "o2" not in hub.to_waiting and "o3" in hub.to_waiting  # too big for the waiting rider
    assert outcome is not None and [a.order_id for a in outcome.assignments] == ["o2"]
    assert outcome.routes[0].rider_id != waiting


def test_a_parcel_a_waiting_riders_re_plan_left_out_goes_to_a_free_rider_and_is_not_offered_to_it_again() -> None:
    hub = fold(start(), shift("a"), shift("b"), order("o1", 12.99))
    hub, outcome = dispatch_round(hub, 0, WAVES)
    assert outcome is not None
    waiting = outcome.routes[0].rider_id
    free = ({"a", "b"} - {waiting}).pop()
    # the waiting rider's shift is nearly over: a parcel 17 km out fits its load, not its hours
    hub = with_shift_end(hub, waiting, 3600)
    hub = fold(hub, order("o2", 13.14, created_s=300))
    hub, outcome = dispatch_round(hub, 301, WAVES)
    assert outcome is None and "o2" in hub.to_waiting  # offered to the waiting rider first
    hub, out = replan_now(hub, 302, WAVES)
    assert "o2" not in {a.order_id for a in out.assignments} and hub.passed == {"o2": frozenset({waiting})}
    hub, outcome = dispatch_round(hub, 400, WAVES)
    assert outcome is not None and [(a.order_id, a.rider_id) for a in outcome.assignments] == [("o2", free)]
    assert not hub.routes.pending and not hub.to_waiting
    hub, _ = dispatch_round(hub, 500, WAVES)
    assert hub.passed == {}  # placed: forgotten


def test_an_urgent_order_goes_to_a_free_rider_and_only_without_one_to_the_route_passing_nearest_its_store() -> None:
    store = (12.95, 77.60)
    hub, _ = plan(fold(start(), shift("a"), order("o1", 12.99)))
    hub, _ = plan(fold(hub, shift("b"), order("o2", 12.951)))
    hub = fold(hub, status("o1", S.OUT_FOR_DELIVERY, "a", 60, (12.99, 77.60)),  # a near the drops, b near the store
               status("o2", S.OUT_FOR_DELIVERY, "b", 60, (12.951, 77.60)))
    hub = fold(hub, shift("c"), order("h1", 12.99, created_s=90, store=store, promise_min=20))
    assert hub.routes.pending == ()  # rider c is free: dispatch's plan takes it
    hub, outcome = plan(hub)
    assert [r.rider_id for r in outcome.routes] == ["c"]
    hub = fold(hub, order("h2", 12.99, created_s=120, store=store, promise_min=20))  # nobody is free now
    (trigger,) = hub.routes.pending
    assert (trigger.kind, trigger.subject_id) == (rp.TriggerKind.URGENT_ORDER, "h2")
    only_one = dataclasses.replace(rp.DEFAULT_PARAMS, nearest_riders=1)
    state = rp.on_event(dataclasses.replace(hub.routes, pending=()),
                        order("h3", 12.99, created_s=150, store=store, promise_min=20), only_one)
    assert state.pending[0].riders == {"b"}  # nearest the store, not the drop (a is there)
