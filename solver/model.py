"""The routing problem and its solution, pure: no I/O and no OR-Tools, so the dispatcher can build
problems and read solutions without loading the solver (which runs in a worker process).

Times are integer seconds since the problem's epoch (non-negative); distances are metres.
Travel times are rounded *up* to whole seconds, by the same function here and in the solver,
so a plan the solver accepts is exactly a plan :meth:`Solution.violations` accepts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)
_CAPACITY_TOLERANCE = 1e-9  # relative: float sums of demands may overshoot by an ulp or so


def haversine_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in metres between two (lat, lon) points in degrees."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def travel_seconds(distance_m: float, speed_mps: float) -> int:
    """Whole seconds to drive ``distance_m``, rounded up so a plan is never optimistic."""
    return math.ceil(distance_m / speed_mps)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _finite_non_negative(values: Iterable[float]) -> bool:
    return all(math.isfinite(v) and v >= 0 for v in values)


@dataclass(frozen=True, slots=True, kw_only=True)
class Vehicle:
    id: str
    start: int  # index into Problem.locations
    end: int  # index into Problem.locations
    capacity: tuple[float, ...]  # same dimensions as Job.demand (e.g. weight_kg, volume_l, units)
    shift_start_s: int  # seconds since the problem's epoch
    shift_end_s: int
    speed_mps: float  # average road speed of this vehicle
    skills: frozenset[str] = frozenset()
    fixed_cost: float = 0.0  # in metres of driving: what using this vehicle at all is worth avoiding

    def __post_init__(self) -> None:
        where = f"Vehicle {self.id!r}"
        _check(_finite_non_negative(self.capacity), f"{where}: capacity={self.capacity} must be finite and >= 0")
        _check(self.shift_start_s >= 0, f"{where}: shift_start_s={self.shift_start_s} must be >= 0")
        _check(self.shift_start_s <= self.shift_end_s,
               f"{where}: shift_end_s={self.shift_end_s} is before shift_start_s={self.shift_start_s}")
        _check(math.isfinite(self.speed_mps) and self.speed_mps > 0, f"{where}: speed_mps={self.speed_mps} must be > 0")
        _check(math.isfinite(self.fixed_cost) and self.fixed_cost >= 0,
               f"{where}: fixed_cost={self.fixed_cost} must be finite and >= 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    id: str
    location: int  # index into Problem.locations
    demand: tuple[float, ...]
    window_start_s: int
    window_end_s: int  # arrival must be within [window_start_s, window_end_s]; waiting allowed
    service_s: int
    skills: frozenset[str] = frozenset()
    priority: int = 0  # higher = more costly to leave unassigned

    def __post_init__(self) -> None:
        where = f"Job {self.id!r}"
        _check(_finite_non_negative(self.demand), f"{where}: demand={self.demand} must be finite and >= 0")
        _check(self.window_start_s >= 0, f"{where}: window_start_s={self.window_start_s} must be >= 0")
        _check(self.window_start_s <= self.window_end_s,
               f"{where}: window_end_s={self.window_end_s} is before window_start_s={self.window_start_s}")
        _check(self.service_s >= 0, f"{where}: service_s={self.service_s} must be >= 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    locations: tuple[tuple[float, float], ...]  # (lat, lon)
    jobs: tuple[Job, ...]
    vehicles: tuple[Vehicle, ...]
    circuity: float = 1.3  # road distance = haversine * circuity
    # Lazily computed road distances; not part of the value (eq/hash/repr), travels with pickles.
    _distances: tuple[tuple[float, ...], ...] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.locations)
        for i, loc in enumerate(self.locations):
            _check(len(loc) == 2 and -90 <= loc[0] <= 90 and -180 <= loc[1] <= 180,
                   f"locations[{i}]={loc} is not a (lat, lon) pair in degrees")
        _check(math.isfinite(self.circuity) and self.circuity >= 1.0,
               f"circuity={self.circuity} must be >= 1 (roads are never shorter than the great circle)")
        dims = len(self.vehicles[0].capacity) if self.vehicles else len(self.jobs[0].demand) if self.jobs else 0
        for v in self.vehicles:
            for name in ("start", "end"):
                index = getattr(v, name)
                _check(0 <= index < n, f"Vehicle {v.id!r}: {name}={index} is out of range for {n} locations")
            _check(len(v.capacity) == dims,
                   f"Vehicle {v.id!r}: capacity={v.capacity} has {len(v.capacity)} dimensions, expected {dims}")
        for j in self.jobs:
            _check(0 <= j.location < n, f"Job {j.id!r}: location={j.location} is out of range for {n} locations")
            _check(len(j.demand) == dims,
                   f"Job {j.id!r}: demand={j.demand} has {len(j.demand)} dimensions, expected {dims}")
        for kind, ids in (("Vehicle", [v.id for v in self.vehicles]), ("Job", [j.id for j in self.jobs])):
            seen: set[str] = set()
            for id_ in ids:
                _check(id_ not in seen, f"{kind} id={id_!r} is not unique")
                seen.add(id_)

    def distance_matrix(self) -> tuple[tuple[float, ...], ...]:
        """Road distances in metres between all locations, computed once (symmetric)."""
        matrix = self._distances
        if matrix is None:
            locs, n = self.locations, len(self.locations)
            rows = [[0.0] * n for _ in range(n)]
            for a in range(n):
                for b in range(a + 1, n):
                    rows[a][b] = rows[b][a] = haversine_m(locs[a], locs[b]) * self.circuity
            matrix = tuple(map(tuple, rows))
            object.__setattr__(self, "_distances", matrix)
        return matrix

    def distance_m(self, a: int, b: int) -> float:
        return self.distance_matrix()[a][b]

    def travel_s(self, vehicle: Vehicle, a: int, b: int) -> int:
        return travel_seconds(self.distance_m(a, b), vehicle.speed_mps)


@dataclass(frozen=True, slots=True, kw_only=True)
class Visit:
    job_id: str
    arrival_s: int  # arrival time (may be before window start: then it waits)
    start_s: int  # service start = max(arrival, window_start)
    departure_s: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    vehicle_id: str
    visits: tuple[Visit, ...]
    start_s: int
    end_s: int
    distance_m: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Unassigned:
    job_id: str
    reason: str


def schedule_route(problem: Problem, vehicle: Vehicle, jobs: Sequence[Job]) -> Route:
    """Times for visiting ``jobs`` in this order: each stop as early as its window allows, and the
    vehicle leaves just late enough not to wait at the first stop (waiting is better done at the
    depot than at a customer's door). Does not check feasibility: see :meth:`Solution.violations`."""
    loc = vehicle.start
    t = vehicle.shift_start_s
    if jobs:
        t = max(t, jobs[0].window_start_s - problem.travel_s(vehicle, loc, jobs[0].location))
    start_s, distance, visits = t, 0.0, []
    for job in jobs:
        arrival = t + problem.travel_s(vehicle, loc, job.location)
        begin = max(arrival, job.window_start_s)
        t = begin + job.service_s
        distance += problem.distance_m(loc, job.location)
        visits.append(Visit(job_id=job.id, arrival_s=arrival, start_s=begin, departure_s=t))
        loc = job.location
    distance += problem.distance_m(loc, vehicle.end)
    end_s = t + problem.travel_s(vehicle, loc, vehicle.end)
    return Route(vehicle_id=vehicle.id, visits=tuple(visits), start_s=start_s, end_s=end_s, distance_m=distance)


@dataclass(frozen=True, slots=True, kw_only=True)
class Solution:
    routes: tuple[Route, ...]
    unassigned: tuple[Unassigned, ...]

    def distance_m(self) -> float:
        return sum(r.distance_m for r in self.routes)

    def violations(self, problem: Problem) -> list[str]:
        """Independent feasibility check: recompute times along each route from the problem,
        check capacity per dimension, time windows, shift windows, skills, each job at most once,
        every job either routed or in unassigned. Empty list = feasible.

        Reported times may be later than the earliest possible (a rider may leave later or wait),
        never earlier: a visit's arrival must be reachable from the previous departure."""
        out: list[str] = []
        jobs = {j.id: j for j in problem.jobs}
        vehicles = {v.id: v for v in problem.vehicles}
        routed: dict[str, str] = {}
        used_vehicles: set[str] = set()
        for route in self.routes:
            where = f"route {route.vehicle_id!r}"
            vehicle = vehicles.get(route.vehicle_id)
            if vehicle is None:
                out.append(f"{where}: unknown vehicle")
                continue
            if route.vehicle_id in used_vehicles:
                out.append(f"{where}: vehicle has more than one route")
            used_vehicles.add(route.vehicle_id)
            if route.start_s < vehicle.shift_start_s:
                out.append(f"{where}: starts at {route.start_s}s, before its shift starts at {vehicle.shift_start_s}s")
            load = [0.0] * len(vehicle.capacity)
            loc, t, distance = vehicle.start, route.start_s, 0.0
            for visit in route.visits:
                job = jobs.get(visit.job_id)
                if job is None:
                    out.append(f"{where}: unknown job {visit.job_id!r}")
                    continue
                at = f"{where}: job {job.id!r}"
                if job.id in routed:
                    out.append(f"{at} is already served by route {routed[job.id]!r}")
                routed[job.id] = route.vehicle_id
                if not job.skills <= vehicle.skills:
                    out.append(f"{at} needs skills {sorted(job.skills - vehicle.skills)} the vehicle lacks")
                earliest = t + problem.travel_s(vehicle, loc, job.location)
                if visit.arrival_s < earliest:
                    out.append(f"{at} arrives at {visit.arrival_s}s, but cannot get there before {earliest}s")
                if visit.start_s < max(visit.arrival_s, job.window_start_s):
                    out.append(f"{at} starts service at {visit.start_s}s, before arrival or its window opens "
                               f"at {job.window_start_s}s")
                if visit.arrival_s > job.window_end_s:
                    out.append(f"{at} arrives late: at {visit.arrival_s}s, its window ends at {job.window_end_s}s")
                elif visit.start_s > job.window_end_s:
                    out.append(f"{at} starts service at {visit.start_s}s, after its window ends at {job.window_end_s}s")
                if visit.departure_s < visit.start_s + job.service_s:
                    out.append(f"{at} departs at {visit.departure_s}s, before its {job.service_s}s service is done")
                load = [x + d for x, d in zip(load, job.demand, strict=True)]
                distance += problem.distance_m(loc, job.location)
                loc, t = job.location, max(visit.departure_s, visit.start_s + job.service_s)
            distance += problem.distance_m(loc, vehicle.end)
            back = t + problem.travel_s(vehicle, loc, vehicle.end)
            if route.end_s < back:
                out.append(f"{where}: ends at {route.end_s}s, but cannot be back before {back}s")
            if max(route.end_s, back) > vehicle.shift_end_s:
                out.append(f"{where}: ends at {max(route.end_s, back)}s, after its shift ends at {vehicle.shift_end_s}s")
            for dim, (x, cap) in enumerate(zip(load, vehicle.capacity, strict=True)):
                if x > cap + _CAPACITY_TOLERANCE * max(1.0, cap):
                    out.append(f"{where}: load {x:g} exceeds capacity {cap:g} in dimension {dim}")
            if not math.isclose(route.distance_m, distance, rel_tol=1e-6, abs_tol=1e-3):
                out.append(f"{where}: distance_m={route.distance_m:.1f}, but the stops are {distance:.1f} m apart")
        unassigned: set[str] = set()
        for u in self.unassigned:
            if u.job_id not in jobs:
                out.append(f"unassigned: unknown job {u.job_id!r}")
            elif u.job_id in unassigned:
                out.append(f"unassigned: job {u.job_id!r} is listed twice")
            elif u.job_id in routed:
                out.append(f"unassigned: job {u.job_id!r} is also served by route {routed[u.job_id]!r}")
            unassigned.add(u.job_id)
        accounted = routed.keys() | unassigned
        out.extend(f"job {j!r} is neither routed nor unassigned" for j in jobs if j not in accounted)
        return out
