"""A :class:`~solver.model.Problem` whose distances come from an explicit matrix, pure.

Use it when distances are given rather than computed from (lat, lon): benchmark instances on a
plane (Solomon) or a matrix from a road-routing service. ``matrix[a][b]`` is the distance from
location ``a`` to ``b`` in the problem's distance unit; travel time is still ``distance / speed``
rounded up by :func:`solver.model.travel_seconds`, so a matrix of whole numbers with speed 1 gives
exact integer travel times (the Solomon adapter works in tenths of a unit for that reason).

``locations`` are not used for distances here; they only have to be valid (lat, lon) pairs, one
per matrix row (``(0.0, 0.0)`` placeholders are fine). ``circuity`` is ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from solver.model import Problem


@dataclass(frozen=True, slots=True, kw_only=True)
class MatrixProblem(Problem):
    matrix: tuple[tuple[float, ...], ...]  # distance from location a to location b (need not be symmetric)

    def __post_init__(self) -> None:
        rows = tuple(tuple(float(x) for x in row) for row in self.matrix)
        n = len(self.locations)
        if len(rows) != n or any(len(row) != n for row in rows):
            raise ValueError(f"matrix must be {n}x{n} (one row and column per location)")
        for a, row in enumerate(rows):
            for b, x in enumerate(row):
                if not (math.isfinite(x) and x >= 0):
                    raise ValueError(f"matrix[{a}][{b}]={x} must be finite and >= 0")
        object.__setattr__(self, "matrix", rows)
        Problem.__post_init__(self)  # zero-argument super() does not work in a slots dataclass

    def distance_matrix(self) -> tuple[tuple[float, ...], ...]:
        return self.matrix
