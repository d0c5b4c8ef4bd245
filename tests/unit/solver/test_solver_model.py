"""The pure model: validation, distances, scheduling and the independent feasibility check."""

from __future__ import annotations

import dataclasses
import math
import pickle
import re
from collections.abc import Callable

import pytest
import solver_scenarios as sc

from solver.checker import violations
from solver.model import Problem, Solution, Unassigned, schedule_route
from solver.params import SolveParams


def _plan(problem: Problem, orders: dict[str, list[str]], unassigned: tuple[str, ...] = ()) -> Solution:
    """A solution visiting jobs in the given order per vehicle, with consistent times."""
    jobs = {j.id: j for j in problem.jobs}
    vehicles = {v.id: v for v in problem.vehicles}
    routes = tuple(schedule_route(problem, vehicles[v], [jobs[j] for j in order]) for v, order in orders.items())
    return Solution(routes=routes, unassigned=tuple(Unassigned(job_id=j, reason="test") for j in unassigned))


# --- validation -------------------------------------------------------------------------------

BAD: dict[str, tuple[Callable[[], object], str]] = {
    "job location out of range": (
        lambda: Problem(locations=(sc.HUB,), jobs=(sc.job("a", 5),), vehicles=(sc.van("v"),)), "location=5"),
    "vehicle end out of range": (
        lambda: Problem(locations=(sc.HUB,), jobs=(), vehicles=(sc.van("v", end=9),)), "end=9"),
    "demand dimensions differ": (
        lambda: Problem(locations=(sc.HUB,), jobs=(sc.job("a", 0, demand=(1.0,)),), vehicles=(sc.van("v"),)),
        "demand=(1.0,)"),
    "duplicate job id": (
        lambda: Problem(locations=(sc.HUB,), jobs=(sc.job("a", 0), sc.job("a", 0)), vehicles=()), "id='a'"),
    "duplicate vehicle id": (
        lambda: Problem(locations=(sc.HUB,), jobs=(), vehicles=(sc.van("v"), sc.van("v"))), "id='v'"),
    "latitude out of range": (
        lambda: Problem(locations=(sc.HUB, (91.0, 0.0)), jobs=(), vehicles=()), "locations[1]"),
    "circuity below one": (
        lambda: Problem(locations=(sc.HUB,), jobs=(), vehicles=(), circuity=0.5), "circuity=0.5"),
    "window reversed": (lambda: sc.job("a", 0, window=(100, 10)), "window_end_s=10"),
    "negative demand": (lambda: sc.job("a", 0, demand=(-1.0, 0.0, 0.0)), "demand=(-1.0"),
    "shift reversed": (lambda: sc.van("v", shift=(3600, 0)), "shift_end_s=0"),
    "zero speed": (lambda: sc.van("v", speed_mps=0.0), "speed_mps=0.0"),
    "zero time limit": (lambda: SolveParams(time_limit_s=0), "time_limit_s=0"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_invalid_input_names_field_and_value(case: str) -> None:
    build, expected = BAD[case]
    with pytest.raises(ValueError, match=re.escape(expected)):
        build()


# --- distances and schedules ------------------------------------------------------------------


def test_distance_is_haversine_times_circuity() -> None:
    problem = Problem(locations=((12.0, 77.0), (13.0, 77.0), (12.0, 77.0)), jobs=(), vehicles=(), circuity=1.5)
    one_degree_m = 111_195.08  # of latitude, on the mean-radius sphere
    assert problem.distance_m(0, 1) == pytest.approx(one_degree_m * 1.5, rel=1e-6)
    assert problem.distance_m(1, 0) == problem.distance_m(0, 1)
    assert problem.distance_m(0, 2) == 0.0


def test_travel_time_rounds_up_to_whole_seconds() -> None:
    problem = sc.three_stops_one_van()  # stops 0 and 1 are ~1300 m apart by road
    fractions = []
    for speed in (7.0, 9.0):
        vehicle = dataclasses.replace(problem.vehicles[0], speed_mps=speed)
        exact = problem.distance_m(0, 1) / speed
        fractions.append(exact - math.floor(exact))
        assert problem.travel_s(vehicle, 0, 1) == math.floor(exact) + 1
        assert problem.travel_s(vehicle, 1, 1) == 0
    assert min(fractions) < 0.5 < max(fractions)  # rounds up, not to nearest


def test_schedule_leaves_late_enough_not_to_wait_at_the_first_stop() -> None:
    problem = sc.line_with_windows(far_first=True)
    route = _plan(problem, {"v1": ["near", "far"]}).routes[0]
    near = route.visits[0]
    assert near.arrival_s == near.start_s == 1800  # window opens at 1800
    assert route.start_s == 1800 - problem.travel_s(problem.vehicles[0], 0, 1)


def test_problem_and_solution_pickle() -> None:
    problem = sc.three_stops_one_van()
    distance = problem.distance_m(0, 2)  # fills the cache, which must travel along
    copy = pickle.loads(pickle.dumps(problem))
    assert copy == problem and copy.distance_m(0, 2) == distance
    solution = _plan(problem, {"v1": ["a", "b", "c"]})
    assert pickle.loads(pickle.dumps(solution)) == solution


def test_a_solution_checks_itself_with_the_checker() -> None:
    problem = sc.four_units_two_vans_of_two()
    plan = _plan(problem, {"v1": ["j1", "j2", "j3"], "v2": ["j4"]})
    assert plan.violations(problem) == violations(plan, problem) != []
