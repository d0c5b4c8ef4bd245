"""Event-triggered re-planning: which riders each trigger re-plans and why, the per-rider rate
limit (coalesce, never drop), an offline rider's stops redistributed, and a whole re-plan through
the solver with locks kept and reasons recorded."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta

from schemas import events as ev
from solver import SolveParams, solve
from solver.reoptimise import Policy, build, reoptimise
from streams.domain.dispatch import hub as hb
from streams.domain.dispatch import pool as dispatch
from streams.domain.dispatch import replan as rp

S = ev.OrderStatus
T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
HUB = (12.97, 77.59)
KM = 1 / 111.195  # degrees of latitude per km
FAST = SolveParams(time_limit_s=0.2, engine="auto")
_ids = iter(range(1_000_000))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ts(seconds: float) -> float:
    return at(seconds).timestamp()


def point(km_north: float, km_east: float = 0.0) -> tuple[float, float]:
    return (HUB[0] + km_north * KM, HUB[1] + km_east * KM / math.cos(math.radians(HUB[0])))


def eid() -> str:
    return f"e{next(_ids)}"


def shift(rider: str, *, units: int = 20) -> ev.RiderShiftStarted:
    return ev.RiderShiftStarted(event_id=eid(), occurred_at=T0, rider_id=rider, hub_id="h1",
                                vehicle_type=ev.VehicleType.SCOOTER, capacity_weight_kg=100.0,
                                capacity_volume_l=500.0, capacity_units=units, shift_start=T0,
                                shift_end=at(10 * 3600), start=ev.GeoPoint(lat=HUB[0], lon=HUB[1]))


def order(order_id: str, where: tuple[float, float], *, created_s: float = 0.0, priority: int = 0,
          window_end_s: float = 8 * 3600) -> ev.OrderCreated:
    return ev.OrderCreated(event_id=eid(), occurred_at=at(created_s), order_id=order_id, tracking_id=f"t-{order_id}",
                           hub_id="h1", mode=ev.DeliveryMode.LAST_MILE, drop=ev.Location(lat=where[0], lon=where[1]),
                           window_start=T0, window_end=at(window_end_s), service_time_s=120, weight_kg=2.0,
                           volume_l=5.0, units=1, priority=priority)


def route(rider: str, stops: list[str], where: dict[str, tuple[float, float]], route_id: str | None = None
          ) -> ev.RoutePlanned:
    return ev.RoutePlanned(
        event_id=eid(), occurred_at=T0, rider_id=rider, route_id=route_id or f"r-{rider}", hub_id="h1",
        stops=tuple(ev.PlannedStop(order_id=s, kind=ev.StopKind.DROP, lat=where[s][0], lon=where[s][1],
                                   planned_arrival=at(600 * (k + 1)), service_time_s=120) for k, s in enumerate(stops)),
        start=ev.GeoPoint(lat=HUB[0], lon=HUB[1]), planned_start=T0, planned_end=at(4 * 3600), distance_m=10_000.0)


def status(order_id: str, to: S, rider: str, *, at_s: float, reason: str = "") -> ev.StatusChanged:
    return ev.StatusChanged(event_id=eid(), occurred_at=at(at_s), order_id=order_id, to_status=to, rider_id=rider,
                            reason=reason)


def cancel(order_id: str, *, at_s: float) -> ev.OrderCancelled:
    return ev.OrderCancelled(event_id=eid(), occurred_at=at(at_s), order_id=order_id, reason="customer changed mind")


# Rider a works north, b north-east, c far south; each has three stops 1-3 km out.
WHERE = {"a1": point(1), "a2": point(2), "a3": point(3), "b1": point(1, 1), "b2": point(2, 1.5), "b3": point(3, 2),
         "c1": point(-8), "c2": point(-9), "c3": point(-10)}
ROUTES = {"a": ["a1", "a2", "a3"], "b": ["b1", "b2", "b3"], "c": ["c1", "c2", "c3"]}
POSITIONS = {"a": point(0.5), "b": point(0.5, 0.8), "c": point(-7)}


def fleet(params: rp.ReplanParams = rp.DEFAULT_PARAMS, out: bool = True) -> rp.ReplanState:
    """Riders on their routes; ``out``: every parcel on board (out for delivery), else assigned only."""
    state = rp.ReplanState(hub_id="h1")
    for rider in ROUTES:
        state = rp.on_event(state, shift(rider), params)
    for order_id, where in WHERE.items():
        state = rp.on_event(state, order(order_id, where), params)
    for rider, stops in ROUTES.items():
        state = rp.on_event(state, route(rider, stops, WHERE), params)
        for s in stops if out else ():
            state = rp.on_event(state, status(s, S.OUT_FOR_DELIVERY, rider, at_s=60), params)
    return rp.on_fixes(state, {r: rp.Fix(*p, ts(0)) for r, p in POSITIONS.items()})


def kinds(request: rp.ReplanRequest) -> list[tuple[str, str]]:
    return [(t.kind, t.subject_id) for t in request.triggers]


# --- each trigger -----------------------------------------------------------------------------------


def test_a_failed_delivery_replans_its_rider_with_the_reason() -> None:
    state = rp.on_event(fleet(), status("a1", S.FAILED, "a", at_s=200, reason="customer not home"))
    assert state.plans["a"].stops == ("a2", "a3")  # the attempt is done: off the route
    state, requests = rp.due(state, ts(210))
    (request,) = requests
    assert request.riders == ("a",) and request.offline == ()
    assert kinds(request) == [("failed_delivery", "a1")]
    assert request.reason == "failed_delivery a1 (customer not home)"
    assert request.situation.plan == {"a": ("a2", "a3")}
    assert request.situation.riders[0].position == POSITIONS["a"]
    assert request.situation.riders[0].on_board == {"a2", "a3"}
    assert state.in_flight == {"a"} and state.pending == ()


def test_a_cancelled_planned_order_replans_its_rider_and_the_solver_drops_it() -> None:
    state = rp.on_event(fleet(), cancel("b2", at_s=200))
    state = rp.on_event(state, cancel("nobody-plans-this", at_s=200))  # not on a route: dispatch's business
    _, (request,) = rp.due(state, ts(210))
    assert request.riders == ("b",) and kinds(request) == [("cancellation", "b2")]
    assert request.changes.cancelled == {"b2"}
    assert [j.id for j in build(request.situation, request.changes, request.policy).jobs] == ["b1", "b3"]


def test_an_urgent_order_goes_to_the_nearest_riders_that_can_carry_it() -> None:
    params = rp.ReplanParams(nearest_riders=2)
    state = fleet(params)
    state = rp.on_event(state, order("calm", point(1.5, 0.5), created_s=100), params)
    assert state.pending == ()  # neither important nor closing soon: dispatch plans it
    state = rp.on_event(state, order("vip", point(1.5, 0.5), created_s=100, priority=5), params)
    state = rp.on_event(state, order("soon", point(-9.5), created_s=100, window_end_s=100 + 1800), params)
    offered = {t.subject_id: t.riders for t in state.pending}
    assert offered == {"vip": {"a", "b"},  # c is 8 km away
                       "soon": {"c", "a"}}  # c is nearest; a is nearer than b
    _, (request,) = rp.due(state, ts(110), params)  # they share a: one re-plan of all three
    assert request.riders == ("a", "b", "c") and kinds(request) == [("urgent_order", "vip"), ("urgent_order", "soon")]
    jobs = {j.id: j for j in request.situation.problem.jobs}
    # new to the riders, not on board: each collected at the hub first, then dropped
    assert jobs["vip"].pickup_id == "vip/pickup" and jobs["soon"].pickup_id == "soon/pickup"
    assert request.reason.startswith("urgent_order vip (priority 5, window closes in 478 min); urgent_order soon (")


def test_an_urgent_order_skips_a_rider_without_room() -> None:
    params = rp.ReplanParams(nearest_riders=1)
    state = rp.ReplanState(hub_id="h1")
    state = rp.on_event(state, shift("full", units=3), params)
    state = rp.on_event(state, shift("roomy"), params)
    for order_id in ("a1", "a2", "a3", "c1"):
        state = rp.on_event(state, order(order_id, WHERE[order_id]), params)
    state = rp.on_event(state, route("full", ["a1", "a2", "a3"], WHERE), params)
    state = rp.on_event(state, route("roomy", ["c1"], WHERE), params)
    state = rp.on_fixes(state, {"full": rp.Fix(*point(1.5), ts(0)), "roomy": rp.Fix(*point(-8), ts(0))})
    state = rp.on_event(state, order("vip", point(1.5), created_s=60, priority=9), params)
    (trigger,) = state.pending
    assert trigger.riders == {"roomy"}  # "full" stands on it but carries 3 of 3 units


def test_a_stop_late_past_the_threshold_replans_its_rider_once() -> None:
    params = rp.ReplanParams(late_after_s=600)
    state = fleet(params)
    window_end = at(8 * 3600)

    def eta(late_s: float, at_s: float) -> ev.EtaUpdated:
        p50 = window_end + timedelta(seconds=late_s)
        return ev.EtaUpdated(event_id=eid(), occurred_at=at(at_s), order_id="c3", rider_id="c", route_id="r-c",
                             eta_p50=p50, eta_p90=p50 + timedelta(minutes=10))

    state = rp.on_event(state, eta(300, 100), params)  # five minutes late: within tolerance
    assert state.pending == ()
    state = rp.on_event(state, eta(900, 200), params)
    state = rp.on_event(state, eta(1200, 250), params)  # still late: no second trigger
    (trigger,) = state.pending
    assert (trigger.kind, trigger.subject_id, trigger.riders) == ("delay", "c3", {"c"})
    _, (request,) = rp.due(state, ts(260), params)
    assert request.reason == "delay c3 (p50 15 min past the window)"


def test_a_silent_rider_loses_its_open_stops_to_the_others_and_gets_nothing_new() -> None:
    params = rp.ReplanParams(offline_after_s=300, nearest_riders=2)
    state = fleet(params, out=False)  # assigned, not yet on board: movable
    state = rp.on_event(state, status("a1", S.ARRIVED, "a", at_s=30), params)  # a is at a1's door
    state = rp.on_fixes(state, {"b": rp.Fix(*POSITIONS["b"], ts(400)), "c": rp.Fix(*POSITIONS["c"], ts(400))})
    state, requests = rp.due(state, ts(200), params)
    assert requests == []  # a silent 200 s: not yet
    state, (request,) = rp.due(state, ts(400), params)
    assert request.offline == ("a",) and "a" not in request.riders
    assert set(request.riders) == {"b", "c"}
    assert kinds(request) == [("rider_offline", "a")]
    assert request.reason.startswith("rider_offline a (no fix for 7 min")
    problem = build(request.situation, request.changes, request.policy)
    assert {j.id for j in problem.jobs} >= {"a2", "a3"} and "a1" not in {j.id for j in problem.jobs}

    solution = reoptimise(request.situation, request.changes, request.policy, params=FAST)
    state, outcome = rp.apply_result(state, request, solution, ts(401), params)
    assert state.plans["a"].stops == ("a1",)  # keeps the stop being served, nothing else
    moved = {s for r in ("b", "c") for s in state.plans[r].stops}
    assert {"a2", "a3"} <= moved
    assert not outcome.unassignable
    planned = {p.rider_id: p for p in outcome.plans}
    assert [s.order_id for s in planned["a"].stops] == ["a1"]
    assert all(p.reason == request.reason for p in outcome.plans)

    # a is offline: a new urgent order next to it is not offered to a.
    state = rp.on_event(state, order("vip", point(0.6), created_s=420, priority=9), params)
    assert "a" not in state.pending[-1].riders


def test_a_shift_ended_with_stops_left_redistributes_them() -> None:
    state = rp.on_event(fleet(out=False), ev.RiderShiftEnded(event_id=eid(), occurred_at=at(500), rider_id="c"))
    (trigger,) = state.pending
    assert (trigger.kind, trigger.subject_id) == ("rider_offline", "c") and "c" in trigger.riders
    assert trigger.riders - {"c"}  # someone takes over


def test_the_trackers_offline_alert_redistributes_at_the_dispatcher_and_its_fix_back_brings_the_rider_online(
        ) -> None:
    """Dispatch reads no GPS (DISPATCH_PARAMS: no fix-based offline rule); the tracker's rider_offline
    alert and its forwarded first fix back are how a hub's dispatcher learns either."""
    hub = hb.Hub(pool=dispatch.HubPool(hub_id="h1"), routes=fleet(rp.DISPATCH_PARAMS, out=False))
    alert = ev.AlertRaised(event_id=eid(), occurred_at=at(400), subject_id="a", kind="rider_offline",
                           severity=ev.Severity.CRITICAL, rider_id="a", message="no ping for 5 min out on the route")
    hub = hb.on_hub_event(hub, alert)
    assert hub.routes.offline == {"a"}
    (trigger,) = hub.routes.pending
    assert (trigger.kind, trigger.subject_id, trigger.note) == ("rider_offline", "a", alert.message)
    assert "a" in trigger.riders and trigger.riders - {"a"}  # someone takes a's stops
    assert hb.on_hub_event(hub, alert).routes.pending == hub.routes.pending  # told twice: one trigger
    assert hub.pool == dispatch.HubPool(hub_id="h1")  # nothing for dispatch's own pool
    back = ev.GpsPing(event_id=eid(), occurred_at=at(700), rider_id="a", device_id="d", device_time=at(699),
                      lat=POSITIONS["a"][0], lon=POSITIONS["a"][1])
    hub = hb.on_hub_event(hub, back)
    assert hub.routes.offline == frozenset() and hub.routes.positions["a"].at_s == ts(699)


# --- rate limit --------------------------------------------------------------------------------------


def test_triggers_within_the_rate_limit_are_coalesced_into_one_replan() -> None:
    params = rp.ReplanParams(min_interval_s=120)
    state = rp.on_event(fleet(params), status("a1", S.FAILED, "a", at_s=0, reason="no answer"), params)
    state, (first,) = rp.due(state, ts(10), params)
    state, outcome = rp.apply_result(state, first, solve(build(first.situation, first.changes, first.policy), FAST),
                                     ts(11), params)
    assert not outcome.stale and state.in_flight == frozenset()
    state = rp.on_event(state, cancel("a2", at_s=40), params)
    state = rp.on_event(state, cancel("a3", at_s=70), params)
    state = rp.on_event(state, cancel("a3", at_s=70), params)  # redelivered: kept once
    state, requests = rp.due(state, ts(100), params)
    assert requests == [] and len(state.pending) == 2  # held, not lost
    state, (second,) = rp.due(state, ts(131), params)
    assert kinds(second) == [("cancellation", "a2"), ("cancellation", "a3")]
    assert second.reason == ("cancellation a2 (customer changed mind); cancellation a3 (customer changed mind)")
    assert second.changes.cancelled == {"a2", "a3"}


def test_an_urgent_order_bypasses_the_limit_with_a_shorter_one() -> None:
    params = rp.ReplanParams(min_interval_s=120, urgent_interval_s=30, nearest_riders=1)
    state = rp.on_event(fleet(params), status("c1", S.FAILED, "c", at_s=0), params)
    state, (first,) = rp.due(state, ts(0), params)
    state, _ = rp.apply_result(state, first, solve(build(first.situation, first.changes, first.policy), FAST),
                               ts(1), params)
    state = rp.on_event(state, cancel("c2", at_s=20), params)
    state, requests = rp.due(state, ts(40), params)
    assert requests == []  # a cancellation waits the full two minutes
    state = rp.on_event(state, order("vip", point(-8.5), created_s=40, priority=9), params)
    state, (request,) = rp.due(state, ts(41), params)
    assert request.riders == ("c",)
    assert kinds(request) == [("cancellation", "c2"), ("urgent_order", "vip")]  # the waiting one comes along


def test_triggers_during_a_solve_wait_and_a_failed_or_stale_solve_gives_them_back() -> None:
    state = rp.on_event(fleet(), status("b1", S.FAILED, "b", at_s=0))
    state, (request,) = rp.due(state, ts(0))
    state = rp.on_event(state, cancel("b3", at_s=5))
    state, requests = rp.due(state, ts(150))
    assert requests == [] and kinds_of(state) == [("cancellation", "b3")]  # b is being re-planned

    state = rp.abandon(state, request)  # the solver crashed
    state, (retry,) = rp.due(state, ts(150))
    assert kinds(retry) == [("failed_delivery", "b1"), ("cancellation", "b3")]

    solution = solve(build(retry.situation, retry.changes, retry.policy), FAST)
    state = rp.on_event(state, route("b", ["b2"], WHERE, route_id="dispatch-made-another"))
    state, outcome = rp.apply_result(state, retry, solution, ts(151))
    assert outcome.stale and outcome.plans == ()
    assert state.plans["b"].route_id == "dispatch-made-another"
    assert kinds_of(state) == [("failed_delivery", "b1"), ("cancellation", "b3")]


def kinds_of(state: rp.ReplanState) -> list[tuple[str, str]]:
    return [(t.kind, t.subject_id) for t in state.pending]


# --- end to end ----------------------------------------------------------------------------------------


def test_a_failed_delivery_and_an_urgent_order_replan_keeps_locks_and_records_why() -> None:
    # Dispatch plans eight orders for two riders, as it would live.
    spots = {f"o{k}": point(0.8 * k, 0.3 * (k % 3)) for k in range(1, 9)}
    pool = dispatch.HubPool(hub_id="h1")
    state = rp.ReplanState(hub_id="h1")
    setup: list[ev.Event] = [shift("a"), shift("b"), *(order(o, p) for o, p in spots.items())]
    for e in setup:
        pool, state = dispatch.on_event(pool, e), rp.on_event(state, e)
    plan = dispatch.build_problem(pool)
    planned = dispatch.apply_plan(pool, plan, solve(plan.problem, FAST))
    assert {s.order_id for r in planned.routes for s in r.stops} == set(spots)
    for r in planned.routes:
        state = rp.on_event(state, r)
        for s in r.stops:
            state = rp.on_event(state, status(s.order_id, S.OUT_FOR_DELIVERY, r.rider_id, at_s=60))
    routes = {r.rider_id: [s.order_id for s in r.stops] for r in planned.routes}
    rider = max(routes, key=lambda r: len(routes[r]))
    first, second, third, *_ = routes[rider]

    # The rider delivers the first stop, fails the second, and is at the third's door.
    events = [status(first, S.ARRIVED, rider, at_s=600), status(first, S.DELIVERED, rider, at_s=700),
              status(second, S.ARRIVED, rider, at_s=1200),
              status(second, S.FAILED, rider, at_s=1300, reason="customer not home"),
              status(third, S.ARRIVED, rider, at_s=1600), order("vip", point(2.5, 0.5), created_s=1610, priority=9)]
    for e in events:
        state = rp.on_event(state, e)
    where = spots[third]
    state = rp.on_fixes(state, {r: rp.Fix(where[0], where[1], ts(1620)) for r in routes})
    state, (request,) = rp.due(state, ts(1630))
    assert set(request.riders) == set(routes)  # the failure's rider and the urgent order's: one re-plan
    assert kinds(request) == [("failed_delivery", second), ("urgent_order", "vip")]

    solution = reoptimise(request.situation, request.changes, request.policy, params=FAST)
    state, outcome = rp.apply_result(state, request, solution, ts(1631))

    remaining = routes[rider][2:]
    locked = (third, remaining[1]) if len(remaining) > 1 else (third,)
    assert state.plans[rider].stops[:len(locked)] == locked  # started and next stop kept in place
    on_routes = [s for p in state.plans.values() for s in p.stops if not s.endswith("/pickup")]
    (vip_plan,) = [p.stops for p in state.plans.values() if "vip" in p.stops]
    assert vip_plan.index("vip/pickup") < vip_plan.index("vip")  # collected at the hub before the drop
    assert "vip" in on_routes and first not in on_routes and second not in on_routes
    assert sorted(on_routes) == sorted({*spots, "vip"} - {first, second})
    record = outcome.record
    assert record is not None and state.history[-1] == record
    assert record.reason == (f"failed_delivery {second} (customer not home); "
                             "urgent_order vip (priority 9, window closes in 453 min)")
    assert all(c.locks_kept for c in record.changes)
    assert sum(len(c.added) for c in record.changes) >= 1  # vip was added somewhere
    assert outcome.plans and all(p.reason == record.reason and p.request_id == request.request_id
                                 for p in outcome.plans)
    assert state.in_flight == frozenset() and state.pending == ()

    # The agent publishes the plans; their echo changes nothing.
    for p in outcome.plans:
        echo = ev.RoutePlanned(
            event_id=eid(), occurred_at=at(1632), rider_id=p.rider_id, route_id=p.route_id, hub_id="h1",
            stops=tuple(ev.PlannedStop(order_id=s.order_id, kind=ev.StopKind.DROP, lat=s.lat, lon=s.lon,
                                       planned_arrival=datetime.fromtimestamp(s.planned_arrival_s, UTC),
                                       service_time_s=s.service_s) for s in p.stops),
            start=ev.GeoPoint(lat=p.start[0], lon=p.start[1]), planned_start=at(1632), planned_end=at(9000),
            distance_m=p.distance_m)
        assert rp.on_event(state, echo) == state


def test_the_lock_policy_of_the_params_reaches_the_request() -> None:
    params = dataclasses.replace(rp.DEFAULT_PARAMS, policy=Policy(lock_next=2))
    state = rp.on_event(fleet(params), status("c1", S.FAILED, "c", at_s=0), params)
    _, (request,) = rp.due(state, ts(1), params)
    assert request.policy.lock_next == 2
    assert build(request.situation, request.changes, request.policy).vehicles[0].locked == ("c2", "c3")


def test_a_silent_rider_keeps_the_parcels_on_board_and_nobody_else_is_offered_them() -> None:
    """Only the rider holding a parcel can deliver it (the ledger refuses to assign it elsewhere):
    an offline rider whose parcels are all on board gives nothing up, so no re-plan moves them."""
    params = rp.ReplanParams(offline_after_s=300, nearest_riders=2)
    state = fleet(params)  # every parcel out for delivery
    state = rp.on_event(state, status("a1", S.ARRIVED, "a", at_s=30), params)
    state = rp.on_fixes(state, {"b": rp.Fix(*POSITIONS["b"], ts(400)), "c": rp.Fix(*POSITIONS["c"], ts(400))})
    state, requests = rp.due(state, ts(400), params)
    assert all(set(r.riders) <= {"a"} for r in requests)  # no other rider is re-planned with a's parcels
    for request in requests:
        solution = reoptimise(request.situation, request.changes, request.policy, params=FAST)
        state, _ = rp.apply_result(state, request, solution, ts(401), params)
    assert state.plans["a"].stops == tuple(ROUTES["a"])  # the stop being served first, then the parcels it holds
