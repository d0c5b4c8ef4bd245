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
from solver.model import Break, Problem, Solution, Unassigned, retime, schedule_route
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


# --- retiming a plan by the hour it drives in ---------------------------------------------------


def _out_and_back(speed_steps: tuple[tuple[int, float], ...], *, second_window: tuple[int, int] = (0, sc.DAY_S),
                  with_break: bool = False) -> tuple[Problem, Solution]:
    """A van at 5 m/s driving 3 km north, 3 km further, then home; an optional 10-minute break."""
    brk = (Break(id="rest", earliest_start_s=0, latest_start_s=sc.DAY_S, duration_s=600),) if with_break else ()
    van = dataclasses.replace(sc.van("v"), speed_mps=5.0, speed_steps=speed_steps, breaks=brk)
    problem = Problem(locations=(sc.HUB, sc.north(3), sc.north(6)), vehicles=(van,), circuity=1.0,
                      jobs=(sc.job("a", 1, service_s=300), sc.job("b", 2, service_s=300, window=second_window)))
    steps = [problem.jobs[0], *brk, problem.jobs[1]]
    return problem, Solution(routes=(schedule_route(problem, van, steps),), unassigned=())


def test_a_plan_at_one_speed_is_retimed_unchanged() -> None:
    for steps in ((), ((0, 5.0),), ((0, 5.0), (3600, 5.0))):
        problem, solution = _out_and_back(steps, with_break=True)
        assert retime(solution.routes[0], problem.vehicles[0]) == solution.routes[0]


def test_each_drive_goes_at_the_speed_of_the_hour_it_leaves_in() -> None:
    # 5 m/s until 00:15, 2.5 m/s after: the first drive (about 600 s from 0) is as planned, the
    # second leaves at about 900 s, in the slow hour, and takes twice as long; so does the drive home
    problem, solution = _out_and_back(((0, 5.0), (900, 2.5)))
    planned = solution.routes[0]
    timed = retime(planned, problem.vehicles[0])
    (pa, pb), (a, b) = planned.visits, timed.visits
    assert (a.arrival_s, a.departure_s) == (pa.arrival_s, pa.departure_s) and pa.departure_s >= 900
    assert b.arrival_s - a.departure_s == 2 * (pb.arrival_s - pa.departure_s)
    assert timed.end_s - b.departure_s == 2 * (planned.end_s - pb.departure_s)
    assert timed.distance_m == planned.distance_m and timed.start_s == planned.start_s


def test_a_window_not_open_yet_still_holds_and_absorbs_a_late_arrival() -> None:
    # b opens at 2400 s: planned, the van waits there from about 1500 s; slower, it arrives at
    # about 2100 s and still waits; faster, it arrives at about 1200 s and waits longer
    for after, arrives in ((2.5, 2100), (10.0, 1200)):
        problem, solution = _out_and_back(((0, 5.0), (900, after)), second_window=(2400, sc.DAY_S))
        b = retime(solution.routes[0], problem.vehicles[0]).visits[1]
        assert abs(b.arrival_s - arrives) <= 3 and (b.start_s, b.departure_s) == (2400, 2700)


def test_a_break_keeps_its_place_and_its_length() -> None:
    problem, solution = _out_and_back(((0, 5.0), (900, 2.5)), with_break=True)
    planned, timed = solution.routes[0], retime(solution.routes[0], problem.vehicles[0])
    assert [v.kind for v in timed.visits] == [v.kind for v in planned.visits] == ["job", "break", "job"]
    a, rest, b = timed.visits
    assert (rest.start_s, rest.departure_s - rest.start_s) == (a.departure_s, 600)
    # taken parked on the way: the drive to b is twice as long, and the break comes on top
    drive = planned.visits[2].arrival_s - planned.visits[0].departure_s - 600
    assert b.arrival_s == a.departure_s + 2 * drive + 600


def test_speed_steps_must_rise_in_time_and_be_positive() -> None:
    for steps in (((0, 5.0), (0, 4.0)), ((3600, 5.0), (0, 4.0)), ((0, 0.0),), ((0, math.nan),)):
        with pytest.raises(ValueError, match="speed_steps"):
            dataclasses.replace(sc.van("v"), speed_steps=steps)
