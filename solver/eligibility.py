"""Which vehicles could serve each job on its own, pure (no solver library). Shared by both engines.

Run before solving so that a job no vehicle could ever serve is reported with the precise
cause (skills, capacity, its window, its pin or lock, its pair) instead of the solver's generic
"dropped", and so the solver only sees vehicles that can serve a job: a smaller, easier model.

The screen is a relaxation: a vehicle listed for a job may still be unable to fit it next to its
other stops, never the reverse. Rules it applies, per job and vehicle:

- skills and capacity (demand fits the empty vehicle; one trip's worth is the most a job needs);
- reach: from the start to the job within its window (only its start when the window is soft),
  served, and back at the end before the shift ends; for a pickup-and-delivery pair, start ->
  pickup -> drop -> end in that order, and both ends on the same vehicle;
- a vehicle whose breaks cannot all fit in its shift serves nothing (a used route takes them all);
- a job pinned to a vehicle (``vehicle_id``) or locked by one is only for that vehicle.

Capacities and demands are compared on the same integer scale the solvers use (demand rounded
up, capacity rounded down), so "fits" here means fits there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from solver.model import Job, Problem, Unassigned, Vehicle

# Why a job that some vehicle could serve on its own is left out of a plan (every engine says it).
NO_ROOM = "not served within capacity/time limits: no room left on the vehicles that could serve it"
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


def breaks_fit(vehicle: Vehicle) -> bool:
    """Each break can start inside both its window and the shift, and end before the shift does."""
    return all(max(b.earliest_start_s, vehicle.shift_start_s) <= min(b.latest_start_s, vehicle.shift_end_s - b.duration_s)
               for b in vehicle.breaks)


def _serve(problem: Problem, vehicle: Vehicle, at: int, t: int, job: Job) -> int | None:
    """When the vehicle, free at location ``at`` at time ``t``, is done serving ``job``
    (None: its hard window is already closed)."""
    begin = max(t + problem.travel_s(vehicle, at, job.location), job.window_start_s)
    if job.hard_window and begin > job.window_end_s:
        return None
    return begin + job.service_s


def reaches(problem: Problem, vehicle: Vehicle, *visits: Job) -> bool:
    """The vehicle can go from its start through ``visits`` in order, each within its window (a
    soft window only has to be open), and still be at its end location before its shift ends."""
    at, t = vehicle.start, vehicle.shift_start_s
    for job in visits:
        done = _serve(problem, vehicle, at, t, job)
        if done is None:
            return False
        at, t = job.location, done
    return t + problem.travel_s(vehicle, at, vehicle.end) <= vehicle.shift_end_s


def _skills(skills: frozenset[str]) -> str:
    return "{" + ", ".join(map(repr, sorted(skills))) + "}"


def _why_not(problem: Problem, job: Job, candidates: list[Vehicle], skilled: list[Vehicle],
             fitting: list[Vehicle]) -> str:
    if not problem.vehicles:
        return "no vehicles in the problem"
    if not candidates:
        return "no vehicle can fit its breaks into its shift"
    if not skilled:
        return f"no vehicle has skills {_skills(job.skills)}"
    if not fitting:
        among = f" with skills {_skills(job.skills)}" if job.skills else ""
        return f"demand {job.demand} exceeds the capacity of every vehicle{among}"
    earliest = min(earliest_arrival_s(problem, v, job) for v in fitting)
    window = f"window [{job.window_start_s}s, {job.window_end_s}s]"
    if job.hard_window and earliest > job.window_end_s:
        return f"{window} cannot be reached by any vehicle (earliest arrival {earliest}s)"
    return f"{window} cannot be served by any vehicle and still end its shift at its end location in time"


def _only_for(problem: Problem) -> dict[str, str]:
    """Job id -> the one vehicle that may serve it: its pin, or the vehicle that locked it."""
    only = {j.id: j.vehicle_id for j in problem.jobs if j.vehicle_id is not None}
    for v in problem.vehicles:
        only.update(dict.fromkeys(v.locked, v.id))
    return only


def _alone(problem: Problem, usable: list[tuple[int, Vehicle]], job: Job,
           only: str | None) -> tuple[tuple[int, ...], str]:
    """(vehicles that could serve ``job`` on its own, the cause when there are none)."""
    candidates = [(i, v) for i, v in usable if only is None or v.id == only]
    skilled = [(i, v) for i, v in candidates if job.skills <= v.skills]
    fitting = [(i, v) for i, v in skilled if fits(job, v)]
    reaching = tuple(i for i, v in fitting if reaches(problem, v, job))
    if reaching:
        return reaching, ""
    reason = _why_not(problem, job, [v for _, v in candidates], [v for _, v in skilled], [v for _, v in fitting])
    if only is not None and problem.vehicles:
        reason = f"only vehicle {only!r} may serve it (pinned or locked): {reason.replace('any vehicle', 'it')}"
    return (), reason


def screen(problem: Problem) -> Eligibility:
    """Per job, the vehicles that could serve it alone (a pair: both ends, pickup first); the
    others unassigned with their cause."""
    usable = [(i, v) for i, v in enumerate(problem.vehicles) if breaks_fit(v)]
    only = _only_for(problem)
    allowed: dict[str, tuple[int, ...]] = {}
    reasons: dict[str, str] = {}
    for job in problem.jobs:
        vehicles, reason = _alone(problem, usable, job, only.get(job.id))
        if vehicles:
            allowed[job.id] = vehicles
        else:
            reasons[job.id] = reason
    jobs = {j.id: j for j in problem.jobs}
    for drop in problem.jobs:
        if drop.pickup_id is None:
            continue
        pickup = jobs[drop.pickup_id]
        if drop.id in reasons or pickup.id in reasons:
            cause = reasons.get(pickup.id) or reasons[drop.id]
            failed = pickup.id if pickup.id in reasons else drop.id
            for end in (pickup.id, drop.id):
                allowed.pop(end, None)
                reasons.setdefault(end, f"its pair cannot be served: {failed!r}: {cause}")
            continue
        both = tuple(i for i in allowed[pickup.id]
                     if i in allowed[drop.id] and reaches(problem, problem.vehicles[i], pickup, drop))
        if both:
            allowed[pickup.id] = allowed[drop.id] = both
        else:
            for end in (pickup.id, drop.id):
                del allowed[end]
                reasons[end] = (f"pair {pickup.id!r} -> {drop.id!r}: no vehicle can serve both, the pickup first, "
                                f"within their windows and its shift")
    unassigned = tuple(Unassigned(job_id=j.id, reason=reasons[j.id]) for j in problem.jobs if j.id in reasons)
    return Eligibility(allowed=allowed, unassigned=unassigned)
