"""A city-sized instance: the size a hub's dispatch batch reaches at peak."""

from __future__ import annotations

import time

import solver_scenarios as sc

from solver import SolveParams, solve


def test_200_jobs_10_vehicles_all_served_within_3s() -> None:
    problem = sc.city(seed=42, jobs=200, vehicles=10)
    started = time.perf_counter()
    solution = solve(problem, SolveParams(time_limit_s=1.0, seed=1))
    elapsed = time.perf_counter() - started
    assert elapsed < 3.0
    assert solution.unassigned == ()
    assert solution.violations(problem) == []
    assert sum(len(r.visits) for r in solution.routes) == 200
