"""City-sized instances: a hub's dispatch batch at peak, and the seeded city day of :mod:`benchmarks.city`."""

from __future__ import annotations

import time
from collections import Counter

import solver_scenarios as sc

from benchmarks.city import DAY_S, HOUR, KINDS, KM_LAT, SIDE_KM, SKILLS, city_day, point
from solver import SolveParams, solve
from solver.eligibility import screen


def test_200_jobs_10_vehicles_all_served_within_3s() -> None:
    problem = sc.city(seed=42, jobs=200, vehicles=10)
    started = time.perf_counter()
    solution = solve(problem, SolveParams(time_limit_s=1.0, seed=1))
    elapsed = time.perf_counter() - started
    assert elapsed < 3.0
    assert solution.unassigned == ()
    assert solution.violations(problem) == []
    assert sum(len(r.visits) for r in solution.routes) == 200


def test_city_day_is_the_same_for_the_same_seed_and_differs_across_seeds() -> None:
    assert city_day(orders=50, riders=6, hubs=2, seed=5) == city_day(orders=50, riders=6, hubs=2, seed=5)
    assert city_day(orders=50, riders=6, hubs=2, seed=5).jobs != city_day(orders=50, riders=6, hubs=2, seed=6).jobs


def test_city_day_riders_work_from_hubs_with_every_kind_and_skill() -> None:
    problem = city_day(orders=400, riders=40, hubs=5, seed=2)
    assert len(problem.jobs) == 400 and len(problem.vehicles) == 40
    assert all(v.start == v.end and v.start < 5 for v in problem.vehicles)
    for hub in range(5):
        mine = [v for v in problem.vehicles if v.start == hub]
        assert mine, f"hub {hub} has no riders"
        assert set(SKILLS) <= set().union(*(v.skills for v in mine))
    kinds = {k.name: k for k in KINDS}
    assert {v.profile for v in problem.vehicles} == set(kinds)
    bike, van = kinds["bike"], kinds["van"]
    assert bike.max_trips > 1 and bike.capacity[2] < van.capacity[2] and bike.speed_mps < kinds["scooter"].speed_mps


def test_city_day_orders_are_clustered_in_the_city_with_slots_and_skills() -> None:
    problem = city_day(orders=1000, riders=40, hubs=1, seed=2)
    corners = [point(-SIDE_KM / 2 - 0.01, -SIDE_KM / 2 - 0.01), point(SIDE_KM / 2 + 0.01, SIDE_KM / 2 + 0.01)]
    assert all(corners[0][k] <= problem.locations[j.location][k] <= corners[1][k] for j in problem.jobs for k in (0, 1))
    windows = Counter(j.window_end_s - j.window_start_s for j in problem.jobs)
    assert set(windows) == {2 * HOUR, DAY_S} and 0.3 < windows[2 * HOUR] / 1000 < 0.5
    assert all(120 <= j.service_s <= 300 for j in problem.jobs)
    skilled = Counter(s for j in problem.jobs for s in j.skills)
    assert set(skilled) == set(SKILLS) and sum(1 for j in problem.jobs if j.skills) < 300
    # clustered: the busiest square kilometre holds far more than the 1.6 orders of a uniform spread
    cells = Counter((round(problem.locations[j.location][0] / KM_LAT), round(problem.locations[j.location][1] / KM_LAT))
                    for j in problem.jobs)
    assert max(cells.values()) >= 8


def test_city_day_every_order_can_be_served_and_a_plan_serves_almost_all() -> None:
    problem = city_day(orders=100, riders=6, hubs=1, seed=4)
    assert screen(problem).unassigned == ()
    solution = solve(problem, SolveParams(time_limit_s=1.0, seed=1, engine="ortools"))
    assert solution.violations(problem) == []
    assert len(solution.unassigned) <= 0.05 * len(problem.jobs)
