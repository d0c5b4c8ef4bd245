"""Search parameters: plain data, so they pickle to the solver's worker process."""

from __future__ import annotations

import math
from dataclasses import dataclass

ENGINES = ("auto", "ortools", "pyvrp")


@dataclass(frozen=True, slots=True, kw_only=True)
class SolveParams:
    time_limit_s: float = 5.0  # search time; building the model comes on top (milliseconds for hundreds of jobs)
    seed: int = 0  # reseeds the search's random generator; results under a time limit still depend on timing
    engine: str = "auto"  # "auto": the best engine that supports every constraint of the problem (solver.engines)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.time_limit_s) and self.time_limit_s > 0):
            raise ValueError(f"time_limit_s={self.time_limit_s} must be > 0")
        if self.engine not in ENGINES:
            raise ValueError(f"engine={self.engine!r} must be one of {', '.join(ENGINES)}")
