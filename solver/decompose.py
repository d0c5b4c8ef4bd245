"""Plans too large for one search (thousands of orders): split the day the way a dispatcher
would, solve the parts in parallel worker processes, merge, and give the leftovers a second chance.

A search's effort grows much faster than the number of stops, and one search uses one core; a
city day of 2,000 orders is instead cut into parts of about ``part_jobs`` orders:

1. every rider belongs to its hub (:attr:`Vehicle.hub`, where it reloads);
2. every order goes to a hub with riders able to carry it (skills, size), the nearest one while
   that hub has room in proportion to what its riders can carry; orders with only one good hub
   choose first (regret), so balancing moves only borderline orders;
3. a hub's orders are cut into sectors around it, equal in load (routes from a hub are petals, so
   a sector holds whole routes), and the hub's riders are dealt to the sectors: first so that each
   sector has a rider for every kind of order in it, then by capacity in proportion to its load;
4. the parts are solved by :func:`solver.solve` in parallel ("spawn" worker processes);
5. orders a part left unserved get a second chance in one more solve with the riders that still
   have room: vehicles no part used, and used ones with trips and shift left, which reload at the
   hub and go out again (their route gets a reload stop between the two plans).

A part is the original problem restricted to its jobs and vehicles with locations re-indexed in
their original order, so every distance and travel time is computed exactly as in the whole
problem and a part's plan is, bit for bit, a plan of the whole problem.
"""

from __future__ import annotations

import math
import multiprocessing
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace

from solver import solve
from solver.eligibility import NO_ROOM, fits, screen
from solver.geo import haversine_m
from solver.matrix import MatrixProblem
from solver.model import RELOAD, Job, Problem, Route, Solution, Unassigned, Vehicle, Visit
from solver.params import SolveParams

PART_JOBS = 250  # a part's size: big enough for good routes, small enough for a few seconds' search
SMALL_JOBS = 300  # up to this many jobs, one search
_STOP_M = 1500.0  # guessed drive between consecutive stops, to turn a shift into a number of stops
_MIN_CONTINUATION_S = 1800  # a used vehicle goes out again only with at least this much shift left
_OVERHEAD_S = 3.0  # worker start-up, model building and merging, within a wall budget
_MIN_PART_S = 0.2  # the least search time a part or the second chance gets
# The engines' cause for a job that fits some vehicle alone but found no room (same words).

Unit = tuple[Job, ...]  # jobs that go to the same part: one job, or a pickup and its drop


@dataclass(frozen=True, slots=True, kw_only=True)
class Part:
    hub: int  # location index of the hub whose riders serve it
    jobs: tuple[Job, ...]
    vehicles: tuple[Vehicle, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Split:
    parts: tuple[Part, ...]
    unassigned: tuple[Unassigned, ...]  # jobs no vehicle of the problem can carry, with the cause


def subproblem(problem: Problem, jobs: Sequence[Job], vehicles: Sequence[Vehicle]) -> Problem:
    """``problem`` with only ``jobs`` and ``vehicles``; locations (and duration or distance
    matrices) re-indexed keeping their original order, so distances and times are identical."""
    kept = sorted({j.location for j in jobs}
                  | {i for v in vehicles for i in (v.start, v.end, v.reload_at) if i is not None})
    new = {old: k for k, old in enumerate(kept)}
    changes: dict[str, object] = {
        "locations": tuple(problem.locations[i] for i in kept),
        "jobs": tuple(replace(j, location=new[j.location]) for j in jobs),
        "vehicles": tuple(replace(v, start=new[v.start], end=new[v.end],
                                  reload_at=None if v.reload_at is None else new[v.reload_at]) for v in vehicles),
        "durations": {p: tuple(tuple(m[a][b] for b in kept) for a in kept) for p, m in problem.durations.items()},
    }
    if isinstance(problem, MatrixProblem):
        changes["matrix"] = tuple(tuple(problem.matrix[a][b] for b in kept) for a in kept)
    return replace(problem, **changes)


def _units(jobs: Sequence[Job]) -> list[Unit]:
    """``jobs`` grouped: a pickup with its drop, every other job alone (a drop whose pickup is not
    among ``jobs`` is left out)."""
    drops = {j.pickup_id: j for j in jobs if j.pickup_id is not None}
    return [(j, drops[j.id]) if j.id in drops else (j,) for j in jobs if j.pickup_id is None]


def _apart(problem: Problem, a: int, b: int) -> float:
    """Road metres between two locations, without computing the whole distance matrix."""
    if isinstance(problem, MatrixProblem):
        return problem.matrix[a][b]
    return haversine_m(problem.locations[a], problem.locations[b]) * problem.circuity


def _angle(problem: Problem, hub: int, location: int) -> float:
    (lat0, lon0), (lat, lon) = problem.locations[hub], problem.locations[location]
    return math.atan2(lat - lat0, (lon - lon0) * math.cos(math.radians(lat0)))


class _Stops:
    """About how many stops a rider makes in a day, to share orders out in proportion to riders:
    a trip carries as many typical (median) orders as fit, and takes the drive out to the orders
    and back plus, per stop, its service and a short hop to the next one."""

    def __init__(self, jobs: Sequence[Job]) -> None:
        self.typical = [statistics.median(j.demand[d] for j in jobs) for d in range(len(jobs[0].demand))]
        self.service = statistics.fmean(j.service_s for j in jobs)

    def per_day(self, v: Vehicle, reach_m: float) -> float:
        """Stops of ``v`` in its shift when its orders lie ``reach_m`` from its hub on average."""
        shift = v.shift_end_s - v.shift_start_s
        stop_s = self.service + _STOP_M / v.speed_mps
        per_trip = min([math.inf] + [c / t for c, t in zip(v.capacity, self.typical, strict=True) if t > 0])
        if per_trip == math.inf:
            return shift / stop_s
        trip_s = 2 * reach_m / v.speed_mps + v.reload_s + per_trip * stop_s
        return per_trip * min(v.max_trips, shift / trip_s)


def split(problem: Problem, part_jobs: int = PART_JOBS) -> Split:
    """Cut ``problem`` into parts of about ``part_jobs`` jobs with the riders to serve them (see
    the module docstring). Every job is in exactly one part or unassigned; a vehicle is in at most
    one part (vehicles in none are left for the second chance)."""
    if not problem.jobs:
        return Split(parts=(), unassigned=())
    vehicles = problem.vehicles
    locked_by = {job_id: v.id for v in vehicles for job_id in v.locked}
    index = {v.id: i for i, v in enumerate(vehicles)}
    kinds: dict[tuple[frozenset[str], tuple[float, ...]], list[int]] = {}
    for i, v in enumerate(vehicles):
        kinds.setdefault((v.skills, v.capacity), []).append(i)

    def able(unit: Unit) -> frozenset[int]:
        return frozenset(i for (skills, _), members in kinds.items()
                         if all(j.skills <= skills and fits(j, vehicles[members[0]]) for j in unit) for i in members)

    units = _units(problem.jobs)
    bound: dict[int, int] = {}  # unit -> the vehicle it must ride (pinned or locked)
    for u, unit in enumerate(units):
        for j in unit:
            owner = j.vehicle_id or locked_by.get(j.id)
            if owner is not None:
                bound[u] = index[owner]
    can = [able(unit) for unit in units]
    impossible = [u for u in range(len(units)) if not can[u] and u not in bound]

    hubs = sorted({v.hub for v in vehicles})
    home: dict[int, int] = {u: vehicles[i].hub for u, i in bound.items()}
    near: dict[int, list[tuple[float, int]]] = {}
    for u in range(len(units)):
        if u not in bound and can[u]:
            near[u] = sorted((_apart(problem, units[u][0].location, h), h) for h in {vehicles[i].hub for i in can[u]})
    reach = {h: statistics.fmean([d for options in near.values() for d, g in options[:1] if g == h] or [_STOP_M])
             for h in hubs}
    stops = _Stops(problem.jobs)
    hub_stops = {h: sum(stops.per_day(v, reach[h]) for v in vehicles if v.hub == h) for h in hubs}
    total = sum(len(units[u]) for u in (*home, *near))
    quota = {h: 1.1 * total * hub_stops[h] / (sum(hub_stops.values()) or 1.0) for h in hubs}
    used = dict.fromkeys(hubs, 0)
    for u, h in home.items():
        used[h] += len(units[u])

    def regret(u: int) -> float:
        options = near[u]
        return options[1][0] - options[0][0] if len(options) > 1 else math.inf

    for u in sorted(near, key=regret, reverse=True):  # orders with one good hub choose first
        h = next((h for _, h in near[u] if used[h] + len(units[u]) <= quota[h]), near[u][0][1])
        home[u], used[h] = h, used[h] + len(units[u])

    parts: list[Part] = []
    for h in hubs:
        mine = [u for u in sorted(home) if home[u] == h]
        fleet = [i for i, v in enumerate(vehicles) if v.hub == h]
        if mine:
            parts.extend(_hub_parts(problem, h, units, mine, fleet, can, bound, stops, part_jobs))
    return Split(parts=tuple(parts), unassigned=_impossible(problem, [units[u] for u in impossible]))


def _hub_parts(problem: Problem, hub: int, units: list[Unit], mine: list[int], fleet: list[int],
               can: list[frozenset[int]], bound: dict[int, int], stops: _Stops, part_jobs: int) -> list[Part]:
    """A hub's units cut into sectors around it, each with its share of the hub's riders."""
    jobs = sum(len(units[u]) for u in mine)
    k = max(1, min(len(fleet), math.ceil(jobs / part_jobs)))
    sectors = _sectors(problem, hub, units, mine, k)
    crew: list[set[int]] = [set() for _ in sectors]
    free = set(fleet)
    capacity = {i: stops.per_day(problem.vehicles[i], _STOP_M) for i in fleet}
    for s in range(k):  # a vehicle with pinned or locked jobs rides with the first of them
        for u in list(sectors[s]):
            if u in bound:
                owner = next((t for t in range(k) if bound[u] in crew[t]), s)
                crew[owner].add(bound[u])
                free.discard(bound[u])
                if owner != s:
                    sectors[s].remove(u)
                    sectors[owner].append(u)
    # First every kind of order of each sector gets a rider able to carry it (rarest kind first,
    # one rider per sector per round, so the sectors share the versatile riders), then the others
    # go by capacity in proportion to each sector's load.
    everyone = frozenset(fleet)
    needs = [sorted({can[u] & everyone for u in sector} - {everyone}, key=lambda g: (len(g), sorted(g)))
             for sector in sectors]
    dealing = True
    while dealing:
        dealing = False
        for s, need in enumerate(needs):
            missing = [g for g in need if not g & crew[s]]
            if not missing:
                continue
            options = missing[0] & free
            if options:
                pick = max(options, key=lambda i: (sum(i in g for g in missing), capacity[i], -i))
                crew[s].add(pick)
                free.discard(pick)
            else:
                need.remove(missing[0])  # nobody left for it: those orders move to a sector that has one
            dealing = True
    vehicles = problem.vehicles
    loads = [sum(len(units[u]) for u in sector) for sector in sectors]
    reach = [statistics.fmean([_apart(problem, hub, units[u][0].location) for u in sector] or [_STOP_M])
             for sector in sectors]
    ratio = sum(loads) / (sum(stops.per_day(vehicles[i], statistics.fmean(reach)) for i in fleet) or 1.0)
    for i in sorted(free, key=lambda i: (-capacity[i], i)):  # far sectors need more riders for as many stops
        s = max(range(k), key=lambda s: loads[s] - ratio * sum(stops.per_day(vehicles[x], reach[s]) for x in crew[s]))
        crew[s].add(i)

    def nearest(s: int, ok: Callable[[int], bool]) -> int | None:
        return min((t for t in range(k) if ok(t)), key=lambda t: min(abs(t - s), k - abs(t - s)), default=None)

    for s in range(k):  # orders nobody in their sector can carry go to the nearest sector that can
        for u in list(sectors[s]):
            t = nearest(s, lambda t, u=u: bool(can[u] & crew[t])) if u not in bound else None
            if t is not None and t != s and not can[u] & crew[s]:
                sectors[s].remove(u)
                sectors[t].append(u)
    for s in range(k):  # a sector left without riders joins the nearest one with riders
        t = nearest(s, lambda t: bool(crew[t]))
        if not crew[s] and t is not None:
            sectors[t].extend(sectors[s])
            sectors[s] = []
    return [Part(hub=hub, jobs=tuple(j for u in sorted(sector) for j in units[u]),
                 vehicles=tuple(vehicles[i] for i in sorted(crew[s])))
            for s, sector in enumerate(sectors) if sector]


def _sectors(problem: Problem, hub: int, units: list[Unit], members: list[int], k: int) -> list[list[int]]:
    """``members`` cut into ``k`` angular sectors around ``hub`` of about equal load, the cuts
    starting at the widest empty angle."""
    if k == 1 or len(members) <= 1:
        return [list(members)] + [[] for _ in range(k - 1)]
    by_angle = sorted(members, key=lambda u: (_angle(problem, hub, units[u][0].location), u))
    angles = [_angle(problem, hub, units[u][0].location) for u in by_angle]
    gaps = [(angles[(n + 1) % len(angles)] - angles[n]) % (2 * math.pi) for n in range(len(angles))]
    first = (max(range(len(gaps)), key=gaps.__getitem__) + 1) % len(by_angle)
    by_angle = by_angle[first:] + by_angle[:first]
    loads = [len(units[u]) for u in by_angle]
    total, before = sum(loads), 0
    sectors: list[list[int]] = [[] for _ in range(k)]
    for u, load in zip(by_angle, loads, strict=True):
        sectors[min(k - 1, int((before + load / 2) / total * k))].append(u)
        before += load
    return sectors


def _causes(problem: Problem, units: Sequence[Unit]) -> dict[str, str]:
    """Why a job of ``units`` could not be served by any vehicle of the whole fleet even alone,
    from :func:`solver.eligibility.screen` on just those jobs (plans and locks do not change the
    cause); jobs that some vehicle could serve alone are not in the answer."""
    if not units:
        return {}
    fleet = [replace(v, locked=(), planned=(), max_new_stops=None) for v in problem.vehicles]
    mini = subproblem(problem, [j for unit in units for j in unit], fleet)
    return {u.job_id: u.reason for u in screen(mini).unassigned}


def _impossible(problem: Problem, units: list[Unit]) -> tuple[Unassigned, ...]:
    """Jobs no vehicle can carry, with the precise cause."""
    reasons = _causes(problem, units)
    out = []
    for unit in units:
        for j in unit:
            partner = next((x.id for x in unit if x.id != j.id), None)
            out.append(Unassigned(job_id=j.id, reason=reasons.get(
                j.id, f"no vehicle can carry both it and its pair partner {partner!r}")))
    return tuple(out)


def _continuation(vehicle: Vehicle, route: Route) -> Vehicle | None:
    """The vehicle going out again after ``route``: from its hub once reloaded, with the trips and
    shift it has left and no fixed cost (it is already paid for); None if it cannot."""
    trips = 1 + sum(v.kind == RELOAD for v in route.visits)
    leaves = route.end_s + vehicle.reload_s
    if (trips >= vehicle.max_trips or vehicle.end != vehicle.hub or vehicle.breaks or vehicle.max_new_stops is not None
            or vehicle.shift_end_s - leaves < _MIN_CONTINUATION_S):
        return None
    return replace(vehicle, start=vehicle.hub, reload_at=None, shift_start_s=leaves, max_trips=vehicle.max_trips - trips,
                   fixed_cost=0.0, locked=(), planned=())


def _then(first: Route, more: Route) -> Route:
    """``first``, back at the hub, a reload, then ``more`` (planned for the continuation)."""
    reload = Visit(job_id="", arrival_s=first.end_s, start_s=first.end_s, departure_s=more.start_s, kind=RELOAD)
    return Route(vehicle_id=first.vehicle_id, visits=first.visits + (reload,) + more.visits, start_s=first.start_s,
                 end_s=more.end_s, distance_m=first.distance_m + more.distance_m)


def _second_chance(problem: Problem, routes: dict[str, Route], left: list[Job], params: SolveParams,
                   most: int) -> dict[str, Route]:
    """Solve up to ``most`` left-over jobs (highest priority first) with the vehicles that have
    room; returns the routes, extended."""
    fleet: list[Vehicle] = []
    for v in problem.vehicles:  # locked stops stay with their part's plan
        route = routes.get(v.id)
        extra = _continuation(v, route) if route is not None else None if v.locked else v
        if extra is not None:
            fleet.append(extra)
    riders = {v.id for v in fleet}
    locked = {job_id for v in problem.vehicles for job_id in v.locked}
    pickups = problem.pickups
    units = [u for u in _units(left)
             if all(j.vehicle_id in (None, *riders) and j.id not in locked for j in u)
             and (len(u) == 2 or u[0].id not in pickups)]
    units = sorted(units, key=lambda u: -max(j.priority for j in u))[:max(1, most)]
    jobs = [j for u in units for j in u]
    if not jobs or not fleet:
        return routes
    solution = solve(subproblem(problem, jobs, fleet), params)
    out = dict(routes)
    for r in solution.routes:
        if r.visits:
            out[r.vehicle_id] = _then(routes[r.vehicle_id], r) if r.vehicle_id in routes else r
    return out


def _solve_parts(problems: list[Problem], params: SolveParams, processes: int, say: Callable[[str], None],
                 until: float | None) -> list[Solution]:
    """Each part solved, the longest first, in up to ``processes`` worker processes. With a
    deadline (``time.perf_counter()`` value) a part's search time is set when it starts: the time
    left shared among the waves still to run, so a part that overran shortens the ones after it."""
    queue = sorted(range(len(problems)), key=lambda k: -len(problems[k].jobs))
    out: list[Solution | None] = [None] * len(problems)
    workers = max(1, min(processes, len(problems)))

    def limited() -> SolveParams:
        if until is None:
            return params
        waves = math.ceil(len(queue) / workers)
        return replace(params, time_limit_s=max(_MIN_PART_S, (until - time.perf_counter()) / waves))

    def done(k: int, solution: Solution) -> None:
        out[k] = solution
        served = sum(len(r.stops) for r in solution.routes)
        say(f"part {k + 1}/{len(problems)}: {served}/{len(problems[k].jobs)} jobs routed by "
            f"{sum(1 for r in solution.routes if r.visits)}/{len(problems[k].vehicles)} vehicles")

    if workers == 1:
        while queue:
            this = limited()
            k = queue.pop(0)
            done(k, solve(problems[k], this))
        return [s for s in out if s is not None]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        running: dict[Future[Solution], int] = {}
        while queue or running:
            while queue and len(running) < workers:
                this = limited()
                k = queue.pop(0)
                running[pool.submit(solve, problems[k], this)] = k
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                done(running.pop(future), future.result())
    return [s for s in out if s is not None]


def solve_large(problem: Problem, params: SolveParams = SolveParams(), processes: int = 2, *,
                part_jobs: int = PART_JOBS, small_jobs: int = SMALL_JOBS, wall_budget_s: float | None = None,
                progress: Callable[[str], None] | None = None) -> Solution:
    """Plan ``problem`` like :func:`solver.solve`, split into parts solved in ``processes`` worker
    processes when it has more than ``small_jobs`` jobs. Each part (and the second chance) gets
    ``params.time_limit_s`` of search; with ``wall_budget_s`` that limit is instead chosen so the
    whole call takes about ``wall_budget_s`` seconds. ``progress`` receives one line per step."""
    started = time.perf_counter()

    def say(line: str) -> None:
        if progress is not None:
            progress(f"{time.perf_counter() - started:5.1f}s {line}")

    def left() -> float:
        return wall_budget_s - (time.perf_counter() - started) if wall_budget_s is not None else math.inf

    if len(problem.jobs) <= small_jobs:
        limit = min(params.time_limit_s, max(_MIN_PART_S, left() - 1.0))
        return solve(problem, replace(params, time_limit_s=limit))
    cut = split(problem, part_jobs)
    if not cut.parts:
        return Solution(routes=(), unassigned=cut.unassigned)
    problems = [subproblem(problem, p.jobs, p.vehicles) for p in cut.parts]
    waves = math.ceil(len(problems) / max(1, processes))
    part_s, until = params.time_limit_s, None
    if wall_budget_s is not None:  # half a wave's time is kept for the second chance
        part_s = max(_MIN_PART_S, (left() - _OVERHEAD_S) / (waves + 0.5))
        until = time.perf_counter() + part_s * waves + _OVERHEAD_S / 2
    say(f"split {len(problem.jobs)} jobs, {len(problem.vehicles)} vehicles into {len(problems)} parts "
        f"({min(len(p.jobs) for p in problems)}-{max(len(p.jobs) for p in problems)} jobs) over "
        f"{len({p.hub for p in cut.parts})} hubs; {len(cut.unassigned)} jobs no vehicle can carry; "
        f"{part_s:.1f}s per part on {processes} processes")
    solutions = _solve_parts(problems, replace(params, time_limit_s=part_s), processes, say, until)
    routes = {r.vehicle_id: r for s in solutions for r in s.routes if r.visits}
    reasons = {u.job_id: u.reason for s in solutions for u in s.unassigned}
    if reasons:
        again_s = min(part_s / 2 if wall_budget_s is not None else params.time_limit_s, max(_MIN_PART_S, left() - 1.0))
        unserved = [j for j in problem.jobs if j.id in reasons]
        routes = _second_chance(problem, routes, unserved, replace(params, time_limit_s=again_s), small_jobs)
        served = {v.job_id for r in routes.values() for v in r.stops}
        say(f"second chance: {sum(j.id in served for j in unserved)} of {len(unserved)} left-over jobs routed")
        reasons = {job_id: reason for job_id, reason in reasons.items() if job_id not in served}
        # A part's or the second chance's cause speaks of its own few vehicles: say it for the whole fleet.
        alone = [u for u in _units([j for j in problem.jobs if j.id in reasons]) if len(u) == 1 and not u[0].vehicle_id]
        causes = _causes(problem, alone)
        reasons |= {u[0].id: causes.get(u[0].id, NO_ROOM) for u in alone}
    reasons |= {u.job_id: u.reason for u in cut.unassigned}
    return Solution(routes=tuple(routes[v.id] for v in problem.vehicles if v.id in routes),
                    unassigned=tuple(Unassigned(job_id=j.id, reason=reasons[j.id])
                                     for j in problem.jobs if j.id in reasons))
