"""The plan checker: given a problem and a plan that breaks one rule, then the violation names
the route, the job and the numbers; a consistent plan has none."""

from __future__ import annotations

import dataclasses

import solver_scenarios as sc
from test_solver_model import _plan

from solver.checker import violations
from solver.model import Route, Solution, Visit


def _replace_visit(solution: Solution, job_id: str, **changes: int) -> Solution:
    routes = tuple(
        dataclasses.replace(r, visits=tuple(dataclasses.replace(v, **changes) if v.job_id == job_id else v
                                            for v in r.visits))
        for r in solution.routes)
    return dataclasses.replace(solution, routes=routes)


def test_consistent_plan_has_no_violations() -> None:
    problem = sc.three_stops_one_van()
    assert violations(_plan(problem, {"v1": ["c", "a", "b"]}), problem) == []


def test_violations_detects_over_capacity() -> None:
    problem = sc.four_units_two_vans_of_two()
    found = violations(_plan(problem, {"v1": ["j1", "j2", "j3"], "v2": ["j4"]}), problem)
    assert found == ["route 'v1': trip 1 leaves the hub with 3, over its capacity 2 in dimension 0"]


def test_violations_detects_late_arrival() -> None:
    problem = sc.line_with_windows(far_first=True)  # far closes at 600 s, near opens at 1800 s
    found = violations(_plan(problem, {"v1": ["near", "far"]}), problem)
    assert len(found) == 1 and "'far' starts service late" in found[0]


def test_violations_detects_arrival_faster_than_driving() -> None:
    problem = sc.three_stops_one_van()
    plan = _plan(problem, {"v1": ["a", "b", "c"]})
    b = plan.routes[0].visits[1]
    faked = _replace_visit(plan, "b", arrival_s=b.arrival_s - 60, start_s=b.start_s - 60)
    found = violations(faked, problem)
    assert len(found) == 1 and "cannot get there before" in found[0]


def test_violations_detects_shift_overrun() -> None:
    problem = sc.short_shift()
    found = violations(_plan(problem, {"v1": ["a", "b", "c"]}), problem)
    assert len(found) == 1 and "after its shift ends at 3600s" in found[0]


def test_violations_detects_missing_skill() -> None:
    problem = sc.cold_chain_far_van()
    found = violations(_plan(problem, {"plain": ["ice", "bread"]}), problem)
    assert found == ["route 'plain': job 'ice' needs skills ['cold_chain'] the vehicle lacks"]


def test_violations_detects_lost_and_duplicated_jobs() -> None:
    problem = sc.four_units_two_vans_of_two()
    twice = _plan(problem, {"v1": ["j1", "j2"], "v2": ["j2", "j3"]}, unassigned=("j3",))
    found = violations(twice, problem)
    assert "route 'v2': job 'j2' is already served by route 'v1'" in found
    assert "unassigned: job 'j3' is also served by route 'v2'" in found
    assert "job 'j4' is neither routed nor unassigned" in found


def test_violations_detects_wrong_distance_and_unknown_vehicle() -> None:
    problem = sc.three_stops_one_van()
    plan = _plan(problem, {"v1": ["a", "b", "c"]})
    bad = Route(vehicle_id="ghost", visits=(Visit(job_id="a", arrival_s=0, start_s=0, departure_s=0),), start_s=0,
                end_s=0, distance_m=0.0)
    wrong = dataclasses.replace(plan, routes=(dataclasses.replace(plan.routes[0], distance_m=1.0), bad))
    found = violations(wrong, problem)
    assert any("distance_m=1.0" in f for f in found)
    assert "route 'ghost': unknown vehicle" in found
