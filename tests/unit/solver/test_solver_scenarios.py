"""The solver on tiny named scenarios: each one isolates a single rule."""

from __future__ import annotations

import time

import solver_scenarios as sc

from solver import Problem, Solution, SolveParams, solve
from solver.model import Job

FAST = SolveParams(time_limit_s=0.5)


def _routes(solution: Solution) -> dict[str, list[str]]:
    return {r.vehicle_id: [v.job_id for v in r.visits] for r in solution.routes}


def _reasons(solution: Solution) -> dict[str, str]:
    return {u.job_id: u.reason for u in solution.unassigned}


def test_three_stops_one_van_serves_all() -> None:
    problem = sc.three_stops_one_van()
    solution = solve(problem, FAST)
    assert sorted(_routes(solution)["v1"]) == ["a", "b", "c"]
    assert solution.unassigned == ()
    assert solution.violations(problem) == []
    route = solution.routes[0]
    assert route.start_s >= 0 and route.end_s > route.visits[-1].departure_s
    assert solution.distance_m() == route.distance_m > 0


def test_capacity_forces_second_vehicle() -> None:
    problem = sc.four_units_two_vans_of_two()
    solution = solve(problem, FAST)
    routes = _routes(solution)
    assert len(routes) == 2 and all(len(stops) == 2 for stops in routes.values())
    assert solution.unassigned == () and solution.violations(problem) == []


def test_time_window_forces_visit_order() -> None:
    # Control: without the windows the shortest order is near, then far.
    free = sc.line_with_windows(far_first=False)
    assert _routes(solve(free, FAST))["v1"] == ["near", "far"]
    timed = sc.line_with_windows(far_first=True)
    solution = solve(timed, FAST)
    assert _routes(solution)["v1"] == ["far", "near"]
    far, near = solution.routes[0].visits
    assert far.arrival_s <= 600 and near.start_s >= 1800  # waits for the near stop's window
    assert solution.violations(timed) == []


def test_skill_sends_job_to_the_only_vehicle_that_has_it() -> None:
    problem = sc.cold_chain_far_van()
    solution = solve(problem, FAST)
    assert "ice" in _routes(solution)["cold"]
    assert "ice" not in _routes(solution).get("plain", [])
    assert solution.unassigned == () and solution.violations(problem) == []


def test_jobs_no_vehicle_can_serve_are_unassigned_with_the_cause() -> None:
    problem = sc.with_impossible_jobs()
    solution = solve(problem, FAST)
    reasons = _reasons(solution)
    assert set(reasons) == {"piano", "acid", "rush"}
    assert "capacity" in reasons["piano"] and "300.0" in reasons["piano"]
    assert "hazmat" in reasons["acid"] and "skills" in reasons["acid"]
    assert "cannot be reached" in reasons["rush"]
    assert [s for stops in _routes(solution).values() for s in stops] == ["ok"]
    assert solution.violations(problem) == []


def test_return_to_end_location_must_fit_the_shift() -> None:
    # 2 km out, 7 m/s with circuity: ~372 s each way; the window is reachable but the way back is not.
    problem = Problem(locations=(sc.HUB, sc.north(2)), jobs=(sc.job("late", 1, service_s=300),),
                      vehicles=(sc.van("v1", shift=(0, 900)),))
    reason = _reasons(solve(problem, FAST))["late"]
    assert "end its shift" in reason


def test_shift_end_is_respected_and_the_rest_is_reported() -> None:
    problem = sc.short_shift()
    solution = solve(problem, FAST)
    (route,) = solution.routes
    assert len(route.visits) == 2 and route.end_s <= 3600
    (dropped,) = solution.unassigned
    assert dropped.job_id == "c"  # the farthest stop is the cheapest to leave out
    assert "not served" in dropped.reason
    assert solution.violations(problem) == []


def test_priority_keeps_an_expensive_job_on_the_plan() -> None:
    problem = sc.short_shift(vip=True)
    solution = solve(problem, FAST)
    assert "c" in _routes(solution)["v1"]
    assert [u.job_id for u in solution.unassigned] != ["c"] and len(solution.unassigned) == 1
    assert solution.violations(problem) == []


def test_vehicle_without_any_servable_job_gets_no_route() -> None:
    # v2's shift is over before anything can be done: it must not make the model infeasible.
    problem = Problem(locations=(sc.HUB, sc.north(1), sc.north(30)), jobs=(sc.job("a", 1),),
                      vehicles=(sc.van("v1"), sc.van("v2", start=2, end=0, shift=(0, 60))))
    solution = solve(problem, FAST)
    assert _routes(solution) == {"v1": ["a"]}


def test_no_jobs_returns_quickly() -> None:
    problem = Problem(locations=(sc.HUB,), jobs=(), vehicles=(sc.van("v1"),))
    started = time.perf_counter()
    solution = solve(problem, SolveParams(time_limit_s=5))
    assert time.perf_counter() - started < 0.1
    assert solution == Solution(routes=(), unassigned=())


def test_no_vehicles_reports_every_job() -> None:
    problem = Problem(locations=(sc.HUB,), jobs=(sc.job("a", 0), sc.job("b", 0)), vehicles=())
    solution = solve(problem, FAST)
    assert [u.job_id for u in solution.unassigned] == ["a", "b"]
    assert all("no vehicles" in u.reason for u in solution.unassigned)


def test_fractional_demand_fills_capacity_exactly() -> None:
    # 4.03 * 1000 is 4030.000000000001 in floats and ten 0.1s sum to 0.9999999999999999: scaling to
    # integers must neither round such demands past an exactly matching capacity nor lose any.
    parcels = [(f"p{i}", 0.1) for i in range(10)] + [("crate", 4.03)]
    problem = Problem(locations=(sc.HUB, sc.north(1)),
                      jobs=tuple(Job(id=id_, location=1, demand=(kg,), window_start_s=0, window_end_s=sc.DAY_S,
                                     service_s=10) for id_, kg in parcels),
                      vehicles=(sc.van("v1", capacity=(5.03,)),))
    solution = solve(problem, FAST)
    assert solution.unassigned == () and len(solution.routes[0].visits) == 11
    assert solution.violations(problem) == []
