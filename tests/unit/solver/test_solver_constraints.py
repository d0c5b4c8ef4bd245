"""The OR-Tools engine on one tiny scenario per rule of solver.model: each test shows the rule
changing the plan (against the control without it, where cheap) and the checker accepting it."""

from __future__ import annotations

import constraint_scenarios as cs

from solver import Problem, Solution, SolveParams, solve
from solver.eligibility import screen
from solver.model import BREAK, RELOAD

FAST = SolveParams(time_limit_s=0.3, engine="ortools")


def _solve(problem: Problem) -> Solution:
    solution = solve(problem, FAST)
    assert solution.violations(problem) == []
    return solution


def _routes(solution: Solution) -> dict[str, list[str]]:
    """Vehicle id -> visit ids in order (a reload shows as "reload", a break by its id)."""
    return {r.vehicle_id: [v.job_id or RELOAD for v in r.visits] for r in solution.routes}


def _unassigned(solution: Solution) -> dict[str, str]:
    return {u.job_id: u.reason for u in solution.unassigned}


# --- heterogeneous fleet ---------------------------------------------------------------------


def test_a_dearer_cost_per_km_sends_the_work_to_the_far_cheap_van() -> None:
    assert set(_routes(_solve(cs.pricey_van_near_cheap_van_far(priced=False)))) == {"near"}
    assert set(_routes(_solve(cs.pricey_van_near_cheap_van_far(priced=True)))) == {"far"}


def test_a_fixed_cost_keeps_the_second_van_parked() -> None:
    assert len(_solve(cs.two_hubs_two_clusters(fixed_cost=0.0)).routes) == 2
    solution = _solve(cs.two_hubs_two_clusters(fixed_cost=100.0))
    (route,) = solution.routes
    assert len(route.stops) == 4


def test_cost_per_hour_prefers_the_faster_vehicle() -> None:
    assert set(_routes(_solve(cs.slow_bike_fast_van(hourly=0.0)))) == {"bike"}
    assert set(_routes(_solve(cs.slow_bike_fast_van(hourly=60.0)))) == {"van"}


def test_travel_times_come_from_the_vehicle_profile() -> None:
    assert set(_unassigned(_solve(cs.scooter_profile_reaches_in_time(with_profile=False)))) == {"rush"}
    problem = cs.scooter_profile_reaches_in_time(with_profile=True)
    solution = _solve(problem)
    assert solution.routes[0].stops[0].arrival_s == 240


# --- soft windows ----------------------------------------------------------------------------


def test_a_soft_window_serves_late_at_a_cost_where_a_hard_one_cannot() -> None:
    assert "cannot be reached" in _unassigned(_solve(cs.late_but_served(soft=False)))["late"]
    problem = cs.late_but_served(soft=True)
    solution = _solve(problem)
    assert solution.unassigned == ()
    late_s = solution.lateness_s(problem)
    assert late_s > 0
    assert solution.cost(problem) > 36.0 * late_s / 3600  # lateness is priced


def test_a_cheap_soft_window_is_missed_to_save_a_detour() -> None:
    assert _routes(_solve(cs.soft_window_order(soft=False)))["v1"] == ["far", "near"]
    problem = cs.soft_window_order(soft=True)
    solution = _solve(problem)
    assert _routes(solution)["v1"] == ["near", "far"] and solution.lateness_s(problem) > 0


# --- pickup and delivery ---------------------------------------------------------------------


def test_a_pair_is_picked_up_before_it_is_dropped() -> None:
    assert _routes(_solve(cs.pair_pickup_before_drop(paired=False)))["v1"] == ["drop", "pickup"]
    assert _routes(_solve(cs.pair_pickup_before_drop(paired=True)))["v1"] == ["pickup", "drop"]


def test_a_pickup_waits_until_hub_parcels_made_room() -> None:
    problem = cs.pair_picked_up_late_in_a_full_trip()
    solution = _solve(problem)
    order = _routes(solution)["v1"]
    assert solution.unassigned == ()
    assert order.index("pickup") > min(order.index(h) for h in ("h1", "h2", "h3"))
    assert order.index("pickup") < order.index("drop")


def test_a_pair_whose_drop_cannot_be_served_is_left_out_whole() -> None:
    reasons = _unassigned(_solve(cs.pair_drop_unreachable()))
    assert set(reasons) == {"pickup", "drop"}
    assert "pair" in reasons["pickup"] and "cannot be reached" in reasons["drop"]


# --- multiple trips --------------------------------------------------------------------------


def test_a_second_trip_serves_what_one_cannot() -> None:
    one = _solve(cs.two_trips_small_van(trips=1))
    assert len(one.unassigned) == 2 and all("not served" in u.reason for u in one.unassigned)
    problem = cs.two_trips_small_van(trips=2)
    solution = _solve(problem)
    assert solution.unassigned == ()
    (route,) = solution.routes
    reloads = [v for v in route.visits if v.kind == RELOAD]
    assert len(reloads) == 1 and reloads[0].departure_s - reloads[0].start_s == 300
    kinds = [v.kind for v in route.visits]
    assert kinds.index(RELOAD) == 2  # two parcels per trip


def test_picked_up_goods_stay_on_board_over_a_reload() -> None:
    problem = cs.pair_carried_over_a_reload()
    solution = _solve(problem)
    assert solution.unassigned == ()
    assert RELOAD in _routes(solution)["v1"]


# --- breaks ----------------------------------------------------------------------------------


def test_a_lunch_break_takes_room_from_the_stops() -> None:
    assert _solve(cs.lunch_break(with_break=False)).unassigned == ()
    problem = cs.lunch_break(with_break=True)
    solution = _solve(problem)
    (lunch,) = [v for v in solution.routes[0].visits if v.kind == BREAK]
    assert cs.LUNCH.earliest_start_s <= lunch.start_s <= cs.LUNCH.latest_start_s
    assert lunch.departure_s - lunch.start_s == cs.LUNCH.duration_s
    assert len(solution.unassigned) == 2


def test_a_break_is_taken_while_waiting_for_a_window() -> None:
    problem = cs.break_while_waiting()
    solution = _solve(problem)
    assert _routes(solution)["v1"] == ["early", "rest", "later"]
    later = solution.routes[0].visits[-1]
    assert later.start_s == 4200  # the break did not delay the stop


# --- pinned, locked, stability, warm start ---------------------------------------------------


def test_a_pinned_parcel_rides_with_its_vehicle_even_when_another_is_closer() -> None:
    assert set(_routes(_solve(cs.pinned_parcel_far_van(pinned=False)))) == {"near"}
    assert set(_routes(_solve(cs.pinned_parcel_far_van(pinned=True)))) == {"far"}


def test_locked_stops_come_first_in_their_order() -> None:
    assert _routes(_solve(cs.locked_stops_first(locked=())))["v1"] == ["a", "b", "c"]
    assert _routes(_solve(cs.locked_stops_first(locked=("c", "a"))))["v1"][:2] == ["c", "a"]


def test_max_new_stops_caps_changes_to_the_planned_route() -> None:
    free = _routes(_solve(cs.stability_cap(max_new_stops=None)))
    assert sorted(free["v1"]) == ["a", "b", "new1", "new2"]
    capped = _routes(_solve(cs.stability_cap(max_new_stops=1)))
    assert len([j for j in capped["v1"] if j.startswith("new")]) == 1
    assert len(capped["v2"]) == 1


def test_warm_start_ignores_stale_ids_and_survives_an_infeasible_plan() -> None:
    stale = _solve(cs.warm_start_from_plan(planned=("j2", "gone", "j1")))
    assert stale.unassigned == () and len(stale.routes[0].stops) == 4
    broken = _solve(cs.warm_start_from_plan(planned=("j1", "j2", "j3", "j4"), j4_closes_s=900))
    assert broken.unassigned == () and _routes(broken)["v1"] != ["j1", "j2", "j3", "j4"]  # j4 would be late


def test_a_late_rider_with_locks_and_a_cap_still_gets_a_plan() -> None:
    """Regression: OR-Tools found no solution at all (every stop unassigned) when the planned
    routes were late somewhere and the capped count of new stops forced an order out."""
    problem = cs.delayed_rider_replan()
    solution = _solve(problem)
    routes = _routes(solution)
    assert routes["v1"][0] == "a1" and routes["v2"][0] == "b1"
    assert {"a2", "a3", "a4"} <= set(routes["v1"]) and {"b2", "b3"} <= set(routes["v2"])
    assert [len([j for j in routes[v] if j.startswith("new")]) for v in ("v1", "v2")] == [1, 1]
    assert [u.job_id.startswith("new") for u in solution.unassigned] == [True]
    uncapped = _solve(cs.delayed_rider_replan(capped=False))
    assert uncapped.unassigned == ()


# --- even workload ---------------------------------------------------------------------------


def test_even_workload_splits_stops_between_vans() -> None:
    lumped = _solve(cs.eight_stops_two_vans(even=False))
    assert [len(r.stops) for r in lumped.routes] == [8]
    even = _solve(cs.eight_stops_two_vans(even=True))
    assert sorted(len(r.stops) for r in even.routes) == [4, 4]


# --- eligibility -----------------------------------------------------------------------------


def test_screen_applies_pins_locks_pairs_and_soft_windows() -> None:
    allowed = screen(cs.pinned_parcel_far_van(pinned=True)).allowed
    assert allowed == {"parcel": (1,)}
    locked = cs.locked_stops_first(locked=("c",))
    assert screen(locked).allowed["c"] == (0,)
    assert screen(cs.late_but_served(soft=True)).allowed == {"late": (0,)}
    assert screen(cs.late_but_served(soft=False)).allowed == {}
    pair = screen(cs.pair_pickup_before_drop(paired=True))
    assert pair.allowed == {"pickup": (0,), "drop": (0,)}


def test_screen_skips_a_vehicle_whose_breaks_do_not_fit_its_shift() -> None:
    problem = cs.lunch_break(with_break=True)
    short = Problem(locations=problem.locations, jobs=problem.jobs,
                    vehicles=(cs.van("v1", shift_end_s=1800, breaks=(cs.LUNCH,)),))
    eligible = screen(short)
    assert eligible.allowed == {}
    assert all("breaks" in u.reason for u in eligible.unassigned)


# --- all at once -----------------------------------------------------------------------------


def test_pairs_breaks_soft_window_two_trips_and_skills_together() -> None:
    problem = cs.combined_day()
    solution = _solve(problem)
    assert solution.unassigned == ()
    routes = _routes(solution)
    assert "ice" in routes["cold"]
    cold = next(r for r in solution.routes if r.vehicle_id == "cold")
    assert [v.kind for v in cold.visits].count(RELOAD) == 1
    assert any(v.kind == BREAK for v in cold.visits)
    assert solution.lateness_s(problem) > 0
    order = routes["cold"] if "pickup" in routes["cold"] else routes["plain"]
    assert order.index("pickup") < order.index("drop")
