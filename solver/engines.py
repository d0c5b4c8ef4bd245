"""Which engine solves a problem, pure.

OR-Tools supports every constraint of :mod:`solver.model`. PyVRP (iterated local search since
0.14, formerly hybrid genetic search) finds clearly better plans on the classes it supports
(Solomon: about +0.1% from the best-known in seconds, where OR-Tools' guided local search sits
at several per cent), so ``auto`` sends a problem to PyVRP when PyVRP supports all of its
constraints, and to OR-Tools otherwise.

PyVRP has no breaks, soft windows, caps on route changes or workload balancing. Locked stops
(a rider's started and next stops) go to OR-Tools too: PyVRP could only take them as a route
that starts after its locked prefix, with a partly loaded first trip it cannot express, and a
re-plan with locks is small and short anyway.
"""

from __future__ import annotations

from solver.model import Problem


def pyvrp_unsupported(problem: Problem) -> list[str]:
    """The constraints of ``problem`` PyVRP cannot express (empty: PyVRP can solve it)."""
    out = []
    if any(v.breaks for v in problem.vehicles):
        out.append("breaks")
    if any(not j.hard_window for j in problem.jobs):
        out.append("soft time windows")
    if any(v.max_new_stops is not None for v in problem.vehicles):
        out.append("a cap on route changes")
    if problem.even_workload:
        out.append("even workload")
    if any(v.locked for v in problem.vehicles):
        out.append("locked stops")
    return out


def choose(problem: Problem, requested: str) -> str:
    """The engine for ``problem``: ``requested`` unless it is "auto". Raises ValueError when PyVRP
    is requested for a problem it cannot express."""
    if requested == "auto":
        return "ortools" if pyvrp_unsupported(problem) else "pyvrp"
    if requested == "pyvrp" and (missing := pyvrp_unsupported(problem)):
        raise ValueError(f"engine pyvrp does not support {', '.join(missing)}; use engine ortools or auto")
    return requested
