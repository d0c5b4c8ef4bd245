"""Independent check of a Solomon plan against the instance data itself, pure.

Deliberately shares no code with the solver or :func:`solver.checker.violations`: it
recomputes every arc from the coordinates (DIMACS: Euclidean truncated to one decimal, for cost
and travel time, exact integer arithmetic in tenths) and walks each route from the depot. A plan
is a list of routes, each the Solomon customer numbers in visit order (depot implied at both
ends). Checked: capacity, time windows (waiting allowed, start of service <= due date), return to
the depot by its due date, every customer exactly once, at most ``fleet`` non-empty routes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.solomon import Customer, Instance


@dataclass(frozen=True, slots=True)
class Verdict:
    problems: list[str]  # empty = feasible
    distance: float  # total of truncated arcs, Solomon units
    vehicles: int  # non-empty routes

    @property
    def ok(self) -> bool:
        return not self.problems


def _tenths(v: float) -> int:
    t = round(v * 10)
    if abs(t - v * 10) > 1e-6:
        raise ValueError(f"value {v} has more than one decimal")
    return t


def _arc(a: Customer, b: Customer) -> int:
    """floor(10 * Euclidean distance), exact: the largest k with k*k <= 100 * d^2."""
    dx, dy = _tenths(a.x) - _tenths(b.x), _tenths(a.y) - _tenths(b.y)  # in tenths, so 100*d^2 = dx^2 + dy^2
    return math.isqrt(dx * dx + dy * dy)


def verify(instance: Instance, routes: Sequence[Sequence[int]]) -> Verdict:
    depot = instance.depot
    by_number = {c.number: c for c in instance.customers}
    problems: list[str] = []
    seen: dict[int, int] = {}
    total = 0
    used = [r for r in routes if len(r)]
    if len(used) > instance.fleet:
        problems.append(f"{len(used)} routes, but the fleet has only {instance.fleet} vehicles")
    for k, route in enumerate(used, start=1):
        where = f"route {k}"
        here, t, load = depot, _tenths(depot.ready), 0
        for number in route:
            c = by_number.get(number)
            if c is None:
                problems.append(f"{where}: unknown customer {number!r}")
                continue
            if number in seen:
                problems.append(f"{where}: customer {number} is already visited by route {seen[number]}")
            seen[number] = k
            arc = _arc(here, c)
            total += arc
            start = max(t + arc, _tenths(c.ready))
            if start > _tenths(c.due):
                problems.append(f"{where}: customer {number} starts service at {start / 10:g}, "
                                f"after its due date {c.due:g}")
            load += _tenths(c.demand)
            t, here = start + _tenths(c.service), c
        arc = _arc(here, depot)
        total += arc
        if t + arc > _tenths(depot.due):
            problems.append(f"{where}: back at the depot at {(t + arc) / 10:g}, after its due date {depot.due:g}")
        if load > _tenths(instance.capacity):
            problems.append(f"{where}: load {load / 10:g} exceeds capacity {instance.capacity:g}")
    missing = [c.number for c in instance.customers if c.number not in seen]
    if missing:
        problems.append(f"{len(missing)} customers not visited: {missing[:10]}{' ...' if len(missing) > 10 else ''}")
    return Verdict(problems=problems, distance=total / 10, vehicles=len(used))
