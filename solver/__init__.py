"""Route planning: the problem and its rules are in :mod:`solver.model`.

``solve`` is a top-level function over plain dataclasses so it can run in a worker process
(``ProcessPoolExecutor``). An engine (OR-Tools or PyVRP, see :mod:`solver.engines`) is imported
only when there is something to solve, so importing this package or :mod:`solver.model` stays cheap.
:mod:`solver.geo` (distances) is shared with live tracking; :mod:`solver.checker` checks a plan.

May import: ``schemas``, numpy, h3; OR-Tools only in ``_ortools``, PyVRP only in ``_pyvrp``. Never
``streams`` or ``infra``.
"""

from __future__ import annotations

from solver import engines
from solver.eligibility import screen
from solver.model import Job, Problem, Route, Solution, Unassigned, Vehicle, Visit
from solver.params import SolveParams

__all__ = ["Job", "Problem", "Route", "Solution", "SolveParams", "Unassigned", "Vehicle", "Visit", "solve"]


def solve(problem: Problem, params: SolveParams = SolveParams()) -> Solution:
    """Plan routes for ``problem``. Every job ends up either on a route or in ``unassigned`` with
    a reason; infeasible jobs are reported, never a reason to fail the whole plan."""
    eligible = screen(problem)
    if not eligible.allowed:  # nothing routable (no jobs, no vehicles, or none can serve any job)
        return Solution(routes=(), unassigned=eligible.unassigned)
    if engines.choose(problem, params.engine) == "pyvrp":
        from solver import _pyvrp

        return _pyvrp.solve(problem, eligible, params)
    from solver import _ortools

    return _ortools.solve(problem, eligible, params)
