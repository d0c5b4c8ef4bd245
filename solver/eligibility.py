"""Which vehicles could serve each job on its own, pure (no OR-Tools).

Run before solving so that a job no vehicle could ever serve is reported with the precise
cause (skills, capacity, or its window) instead of the solver's generic "dropped", and so the
solver only sees vehicles that can serve a job: a smaller, easier model.

Capacities and demands are compared on the same integer scale the solver uses (demand rounded
up, capacity rounded down), so "fits" here means fits there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from solver.model import Job, Problem, Unassigned, Vehicle

SCALE = 1000  # capacity units are kept to 1/1000 (grams for kg, millilitres for litres)


def scaled_demand(x: float) -> int:
    # round() first so that 0.1 * 1000 = 100.00000000000001 is not rounded up to 101
    return math.ceil(round(x * SCALE, 6))


def scaled_capacity(x: float) -> int:
    return math.floor(round(x * SCALE, 6))


@dataclass(frozen=True, slots=True, kw_only=True)
class Eligibility:
    allowed: Mapping[str, tuple[int, ...]]  # job id -> indices into problem.vehicles, never empty
    unassigned: tuple[Unassigned, ...]  # jobs no vehicle can serve, with the cause


def fits(job: Job, vehicle: Vehicle) -> bool:
    return all(scaled_demand(d) <= scaled_capacity(c) for d, c in zip(job.demand, vehicle.capacity, strict=True))


def earliest_arrival_s(problem: Problem, vehicle: Vehicle, job: Job) -> int:
    return vehicle.shift_start_s + problem.travel_s(vehicle, vehicle.start, job.location)


def reaches(problem: Problem, vehicle: Vehicle, job: Job) -> bool:
    """The vehicle can go straight from its start to the job within its window, serve it and
    still be at its end location before its shift ends."""
    begin = max(earliest_arrival_s(problem, vehicle, job), job.window_start_s)
    back = begin + job.service_s + problem.travel_s(vehicle, job.location, vehicle.end)
    return begin <= job.window_end_s and back <= vehicle.shift_end_s


def _skills(skills: frozenset[str]) -> str:
    return "{" + ", ".join(map(repr, sorted(skills))) + "}"


def _why_not(problem: Problem, job: Job, skilled: list[Vehicle], fitting: list[Vehicle]) -> str:
    if not problem.vehicles:
        return "no vehicles in the problem"
    if not skilled:
        return f"no vehicle has skills {_skills(job.skills)}"
    if not fitting:
        among = f" with skills {_skills(job.skills)}" if job.skills else ""
        return f"demand {job.demand} exceeds the capacity of every vehicle{among}"
    earliest = min(earliest_arrival_s(problem, v, job) for v in fitting)
    window = f"window [{job.window_start_s}s, {job.window_end_s}s]"
    if earliest > job.window_end_s:
        return f"{window} cannot be reached by any vehicle (earliest arrival {earliest}s)"
    return f"{window} cannot be served by any vehicle and still end its shift at its end location in time"


def screen(problem: Problem) -> Eligibility:
    """Per job, the vehicles that could serve it alone; the others unassigned with their cause."""
    allowed: dict[str, tuple[int, ...]] = {}
    unassigned: list[Unassigned] = []
    indexed = list(enumerate(problem.vehicles))
    for job in problem.jobs:
        skilled = [(i, v) for i, v in indexed if job.skills <= v.skills]
        fitting = [(i, v) for i, v in skilled if fits(job, v)]
        reaching = tuple(i for i, v in fitting if reaches(problem, v, job))
        if reaching:
            allowed[job.id] = reaching
        else:
            reason = _why_not(problem, job, [v for _, v in skilled], [v for _, v in fitting])
            unassigned.append(Unassigned(job_id=job.id, reason=reason))
    return Eligibility(allowed=allowed, unassigned=tuple(unassigned))
