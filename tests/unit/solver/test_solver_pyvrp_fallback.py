"""When PyVRP ends with an infeasible plan, OR-Tools re-solves with the time left: never a bad plan."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import solver_scenarios as sc

from solver import SolveParams, _ortools, _pyvrp, solve


def test_an_infeasible_pyvrp_result_goes_to_ortools_with_the_time_left(monkeypatch: pytest.MonkeyPatch) -> None:
    infeasible = SimpleNamespace(best=SimpleNamespace(is_feasible=lambda: False))
    monkeypatch.setattr(_pyvrp, "pyvrp_solve", lambda *args: infeasible)
    limits: list[float] = []
    real = _ortools.solve

    def spy(problem: Any, eligible: Any, params: SolveParams) -> Any:
        limits.append(params.time_limit_s)
        return real(problem, eligible, params)

    monkeypatch.setattr(_ortools, "solve", spy)
    problem = sc.three_stops_one_van()
    solution = solve(problem, SolveParams(time_limit_s=1.0, engine="pyvrp"))
    assert solution.violations(problem) == [] and solution.unassigned == ()
    [limit] = limits
    assert 0.2 <= limit <= 1.0  # what is left of the caller's second, at least a fifth of it
