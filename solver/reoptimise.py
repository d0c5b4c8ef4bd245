"""Re-optimisation of plans already being driven, pure: from where the riders are now, what they
carry and what changed, build the problem the solver re-plans (:func:`build`), solve it
(:func:`reoptimise`) and say what moved (:func:`diff`).

What the re-planned problem keeps and changes, rider by rider:

- completed and cancelled stops are gone (cancelling either stop of a pickup-and-drop pair
  cancels the order, so both); new orders are added; changed windows replace the old ones;
- a rider on the road starts at their current position (a new location), at their clock:
  ``max(now, shift start)`` plus any delay reported for them (a vehicle still at its start keeps
  it); the shift end and end location stay; a shift already over is left empty;
- the stop being served (``started``) and the next ``lock_next`` stops of the plan keep their
  place (the rider is there or on the way, the customer was told). The one being served stays
  servable even if its window closed meanwhile (its service began inside it); a next stop whose
  hard window can no longer be met, driven from here, is not locked: it is re-planned or reported;
  nor is one the rider would reach more than :data:`LOCK_EARLY_S` before its window opens (locked,
  it would hold the rider at that door, and every stop after it, until then);
- parcels on board (and the stop being served) are pinned to their rider; a drop whose pickup is
  done becomes a plain delivery of what the rider carries;
- breaks already taken, or whose window has closed, are gone;
- stability: each route that has a plan may take at most ``max(3, ceil(10% of its remaining
  stops))`` stops that were not on it (:class:`Policy`). Three lets a route take an urgent order
  and a pair or two from a neighbour; ten per cent grows with long routes. The remaining plan is
  also the solver's warm start, so kept stops tend to keep their order too.

The default search time (:data:`TIME_LIMIT_S`) keeps a 40-stop re-plan, building and scheduling
included, under 300 ms (see :mod:`benchmarks.reopt`).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from solver import solve
from solver.model import Break, Job, Matrix, Problem, Solution, Vehicle, Visit, schedule_route
from solver.params import SolveParams

TIME_LIMIT_S = 0.15  # search time of a re-plan: the dispatcher answers within 300 ms

Plan = Mapping[str, Sequence[str]]  # vehicle id -> job ids in the order the rider does them
Location = tuple[float, float]  # (lat, lon)
# Travel times for a problem's locations, per vehicle profile: Problem.durations (see solver.travel).
Travel = Callable[[Sequence[Location], Sequence[Vehicle]], Mapping[str, Matrix]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Rider:
    """One rider as they are now."""

    vehicle_id: str
    position: tuple[float, float]  # (lat, lon) now
    started: str | None = None  # the stop being served now: stays first
    on_board: frozenset[str] = frozenset()  # parcels in the box: only this rider can deliver them
    breaks_taken: frozenset[str] = frozenset()  # break ids already taken today


@dataclass(frozen=True, slots=True, kw_only=True)
class Situation:
    """The plan being driven and where it stands at ``now_s``."""

    problem: Problem  # what the plan was made for
    plan: Plan  # see plan_of() to take it from a Solution
    now_s: int
    riders: tuple[Rider, ...]  # riders out on the road; a vehicle not listed is still at its start
    completed: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class Changes:
    """What happened since the plan was made."""

    cancelled: frozenset[str] = frozenset()
    new_jobs: tuple[Job, ...] = ()  # location indexes the problem's locations followed by new_locations
    new_locations: tuple[tuple[float, float], ...] = ()
    delays_s: Mapping[str, int] = field(default_factory=dict)  # vehicle id -> seconds behind its clock
    windows: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # job id -> new (start, end)


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """How much of the plan must stay: locks and stability."""

    lock_next: int = 1  # stops after the started one that keep their place
    min_new_stops: int | None = 3  # None: no stability limit
    new_stops_share: float = 0.1  # of the route's remaining planned stops

    def __post_init__(self) -> None:
        if self.lock_next < 0:
            raise ValueError(f"lock_next={self.lock_next} must be >= 0")
        if self.min_new_stops is not None and self.min_new_stops < 0:
            raise ValueError(f"min_new_stops={self.min_new_stops} must be >= 0")
        if not (math.isfinite(self.new_stops_share) and self.new_stops_share >= 0):
            raise ValueError(f"new_stops_share={self.new_stops_share} must be finite and >= 0")

    def max_new_stops(self, planned: int) -> int | None:
        """The stability limit of a route with ``planned`` remaining stops (None: no limit; a
        rider without a plan has nothing to keep stable)."""
        if self.min_new_stops is None or planned == 0:
            return None
        return max(self.min_new_stops, math.ceil(self.new_stops_share * planned))


def plan_of(solution: Solution) -> dict[str, tuple[str, ...]]:
    """Each rider's job ids in visit order."""
    return {r.vehicle_id: tuple(v.job_id for v in r.stops) for r in solution.routes}


def build(situation: Situation, changes: Changes = Changes(), policy: Policy = Policy(),
          travel: Travel | None = None) -> Problem:
    """The problem that re-plans ``situation`` after ``changes``. ``travel`` times the legs over
    the new list of locations (the riders' positions are new); without it vehicles drive at their
    ``speed_mps``. Raises ValueError (one sentence) when the situation contradicts itself or the
    problem."""
    base = situation.problem
    if type(base) is not Problem:
        raise ValueError(f"re-optimisation needs distances from (lat, lon), not a {type(base).__name__}: "
                         "its matrix does not reach the riders' current positions")
    if base.durations and travel is None:
        raise ValueError("the problem has travel-time matrices: pass travel= to time the legs from the riders' "
                         "current positions")
    jobs = {j.id: j for j in base.jobs}
    vehicles = {v.id: v for v in base.vehicles}
    riders = {r.vehicle_id: r for r in situation.riders}
    _check_ids(situation, changes, jobs, vehicles)

    every = (*base.jobs, *changes.new_jobs)
    gone = situation.completed | _whole_orders(changes.cancelled, every)
    pinned = {job_id: r.vehicle_id for r in situation.riders  # on board, or being picked up
              for job_id in (r.on_board | ({r.started} if r.started else set()))}
    pinned |= {j.id: pinned[j.pickup_id] for j in every if j.pickup_id in pinned and j.id not in pinned}
    kept: list[Job] = []
    for job in every:
        if job.id in gone:
            continue
        if job.pickup_id in situation.completed:
            job = replace(job, pickup_id=None)  # picked up: now a parcel on board like any other
        elif job.pickup_id is not None and job.id in pinned and job.pickup_id not in pinned:
            raise ValueError(f"job {job.id!r} is on board of {pinned[job.id]!r} but its pickup "
                             f"{job.pickup_id!r} is not completed")
        if job.id in pinned:
            job = replace(job, vehicle_id=pinned[job.id])
        if job.id in changes.windows:
            start, end = changes.windows[job.id]
            job = replace(job, window_start_s=start, window_end_s=end)
        kept.append(job)

    locations = (*base.locations, *changes.new_locations)
    at = {r.vehicle_id: len(locations) + k for k, r in enumerate(situation.riders)}
    locations = (*locations, *(r.position for r in situation.riders))
    durations = travel(locations, base.vehicles) if travel else {}
    # A vehicle whose shift is over by now keeps an empty one: it can serve nothing.
    clock = {v.id: min(max(situation.now_s, v.shift_start_s) + changes.delays_s.get(v.id, 0), v.shift_end_s)
             for v in base.vehicles}
    remaining = {j.id: j for j in kept}
    fleet = []
    for v in base.vehicles:
        planned = tuple(j for j in situation.plan.get(v.id, ()) if j in remaining)
        rider = riders.get(v.id)
        moved = replace(v, start=at[v.id] if rider else v.start, shift_start_s=clock[v.id],
                        breaks=_breaks_left(v, rider, clock[v.id]), planned=planned,
                        max_new_stops=policy.max_new_stops(len(planned)), locked=())
        if rider is not None:
            head = (rider.started,) if rider.started else ()
            ahead = [remaining[j] for j in (*head, *(j for j in planned if j not in head))][:len(head) + policy.lock_next]
            visits = _drive(locations, durations, base.circuity, moved, ahead)
            asap = _drive(locations, durations, base.circuity, moved, [replace(j, window_start_s=0) for j in ahead])
            if rider.started:  # being served: its window stretches to when the plan has the rider there
                job = remaining[rider.started]
                remaining[job.id] = replace(job, window_end_s=max(job.window_end_s, visits[0].start_s))
            moved = replace(moved, locked=_on_time(ahead, visits, asap, rider.started))
        fleet.append(moved)
    return Problem(locations=locations, jobs=tuple(remaining.values()), vehicles=tuple(fleet),
                   circuity=base.circuity, durations=durations, even_workload=base.even_workload)


def reoptimise(situation: Situation, changes: Changes = Changes(), policy: Policy = Policy(),
               params: SolveParams = SolveParams(time_limit_s=TIME_LIMIT_S), travel: Travel | None = None) -> Solution:
    """Re-plan ``situation`` after ``changes``: :func:`build`, then :func:`solver.solve`."""
    return solve(build(situation, changes, policy, travel), params)


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteChange:
    """How one rider's route changed against the plan it had (the problem's ``planned``)."""

    vehicle_id: str
    added: tuple[str, ...]  # on the new route, not in the plan
    removed: tuple[str, ...]  # in the plan, not on the new route (another rider's, or unassigned)
    moved: tuple[str, ...]  # on both, out of their planned order: the fewest stops whose move explains it
    locks_kept: bool  # the locked stops open the new route, in order

    @property
    def changed(self) -> int:
        return len(self.added) + len(self.removed) + len(self.moved)


def diff(before: Problem, after: Solution) -> tuple[RouteChange, ...]:
    """Per vehicle of ``before`` (a problem from :func:`build`), what ``after`` changed."""
    routes = plan_of(after)
    out = []
    for v in before.vehicles:
        new = routes.get(v.id, ())
        old = v.planned
        on_both = set(old) & set(new)
        out.append(RouteChange(
            vehicle_id=v.id, added=tuple(j for j in new if j not in on_both),
            removed=tuple(j for j in old if j not in on_both),
            moved=_out_of_order([j for j in old if j in on_both], [j for j in new if j in on_both]),
            locks_kept=new[:len(v.locked)] == v.locked))
    return tuple(out)


def _out_of_order(old: Sequence[str], new: Sequence[str]) -> tuple[str, ...]:
    """Stops of ``new`` outside a longest subsequence it shares with ``old`` (same stops in both)."""
    rank = {j: k for k, j in enumerate(old)}
    seq = [rank[j] for j in new]
    tails: list[int] = []  # tails[k]: index in seq of the smallest end of an increasing run of length k + 1
    ends: list[int] = []  # seq[tails[k]], for bisect
    parent = [-1] * len(seq)
    for i, x in enumerate(seq):
        k = bisect.bisect_left(ends, x)
        parent[i] = tails[k - 1] if k else -1
        if k == len(tails):
            tails.append(i)
            ends.append(x)
        else:
            tails[k], ends[k] = i, x
    keep = set()
    i = tails[-1] if tails else -1
    while i >= 0:
        keep.add(i)
        i = parent[i]
    return tuple(j for i, j in enumerate(new) if i not in keep)


def _check_ids(situation: Situation, changes: Changes, jobs: Mapping[str, Job], vehicles: Mapping[str, Vehicle]) -> None:
    def known(ids: Iterable[str], what: str, among: Mapping[str, object]) -> None:
        for id_ in ids:
            if id_ not in among:
                raise ValueError(f"{what} {id_!r} is not in the problem")

    known(situation.plan, "planned vehicle", vehicles)
    known((j for order in situation.plan.values() for j in order), "planned job", jobs)
    known((r.vehicle_id for r in situation.riders), "rider", vehicles)
    known(situation.completed, "completed job", jobs)
    known(changes.delays_s, "delayed vehicle", vehicles)
    every = {**jobs, **{j.id: j for j in changes.new_jobs}}
    known(changes.cancelled, "cancelled job", every)
    known(changes.windows, "job with a new window", every)
    if len(situation.riders) != len({r.vehicle_id for r in situation.riders}):
        raise ValueError("riders: a vehicle is listed twice")
    for r in situation.riders:
        known(r.on_board, f"rider {r.vehicle_id!r}: on-board job", every)
        if r.started is not None:
            known((r.started,), f"rider {r.vehicle_id!r}: started job", every)
            if r.started in situation.completed | changes.cancelled:
                raise ValueError(f"rider {r.vehicle_id!r}: started job {r.started!r} is completed or cancelled")
    clash = [j.id for j in changes.new_jobs if j.id in jobs]
    if clash:
        raise ValueError(f"new jobs {clash} already exist in the problem")


def _whole_orders(cancelled: frozenset[str], jobs: Sequence[Job]) -> frozenset[str]:
    """``cancelled`` plus the other stop of each cancelled pickup-and-drop pair."""
    out = set(cancelled)
    for j in jobs:
        if j.pickup_id is not None and (j.id in cancelled or j.pickup_id in cancelled):
            out |= {j.id, j.pickup_id}
    return frozenset(out)


def _breaks_left(vehicle: Vehicle, rider: Rider | None, clock_s: int) -> tuple[Break, ...]:
    """Breaks not taken yet whose window has not closed (one that closed untaken cannot be planned)."""
    taken = rider.breaks_taken if rider else frozenset()
    return tuple(b for b in vehicle.breaks if b.id not in taken and b.latest_start_s >= clock_s)


def _drive(locations: Sequence[Location], durations: Mapping[str, Matrix], circuity: float, vehicle: Vehicle,
           jobs: Sequence[Job]) -> tuple[Visit, ...]:
    """The visits of ``vehicle`` doing ``jobs`` in order, no breaks, timed on a problem of just
    those locations (the same travel times, without a distance matrix of the whole city)."""
    used = [vehicle.start, vehicle.end, *(j.location for j in jobs)]
    local = {loc: k for k, loc in enumerate(dict.fromkeys(used))}
    legs = Problem(locations=tuple(locations[loc] for loc in local), jobs=(), vehicles=(), circuity=circuity,
                   durations={p: tuple(tuple(m[a][b] for b in local) for a in local) for p, m in durations.items()})
    rider = replace(vehicle, start=local[vehicle.start], end=local[vehicle.end], breaks=(), reload_at=None)
    stops = [replace(j, location=local[j.location], pickup_id=None, vehicle_id=None) for j in jobs]
    return schedule_route(legs, rider, stops).visits


LOCK_EARLY_S = 900  # a next stop reached longer than this before its window opens is not locked


def _on_time(ahead: Sequence[Job], visits: Sequence[Visit], asap: Sequence[Visit], started: str | None
             ) -> tuple[str, ...]:
    """The stops of ``ahead`` (``visits``: driven in order; ``asap``: the same with no window
    holding the rider back) up to the first one driven to too late for its hard window, or whose
    window opens long after the rider could be there (the one being served has begun: always kept)."""
    locked: list[str] = []
    for job, visit, soonest in zip(ahead, visits, asap, strict=True):
        if job.id != started and (job.hard_window and visit.start_s > job.window_end_s
                                  or job.window_start_s - soonest.arrival_s > LOCK_EARLY_S):
            break
        locked.append(job.id)
    return tuple(locked)
