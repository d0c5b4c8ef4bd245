"""The routing problem and its solution, pure: no I/O and no solver library, so the dispatcher can
build problems and read solutions without loading a solver (which runs in a worker process).

Times are integer seconds since the problem's epoch (non-negative); distances are metres; costs
are in one money unit of the caller's choice (by default one unit per km driven, so an
unconfigured problem minimises distance). Travel times come from :meth:`Problem.travel_s` (a
per-profile duration matrix from :mod:`solver.travel`, or distance / speed rounded up), the one
function every engine and :meth:`Solution.violations` use, so a plan an engine accepts is exactly
a plan the checker accepts.

What a plan must respect, each checked by :func:`solver.checker.violations` (also
:meth:`Solution.violations`):

- capacity in every dimension (weight, volume, units...) at every point of every trip: hub
  deliveries are loaded at the start of their trip, a pickup adds its load, its drop removes it;
- hard time windows (service starts inside them) and soft ones (late service costs
  ``late_cost_per_hour``); service times; shifts (leave and be back inside them);
- skills (fragile, cold chain, heavy, age check...) and jobs pinned to a vehicle (already on board);
- pickup-and-delivery pairs: same vehicle, pickup first;
- breaks (taken inside their window, parked on the way or at a stop, never during service);
- multiple trips: back to the start hub to reload, at most ``max_trips`` trips;
- re-optimisation: ``locked`` stops first and in order; at most ``max_new_stops`` stops that were
  not in the vehicle's ``planned`` route.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from solver.geo import haversine_matrix_m


def travel_seconds(distance_m: float, speed_mps: float) -> int:
    """Whole seconds to drive ``distance_m``, rounded up so a plan is never optimistic."""
    return math.ceil(distance_m / speed_mps)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _finite_non_negative(values: Iterable[float]) -> bool:
    return all(math.isfinite(v) and v >= 0 for v in values)


@dataclass(frozen=True, slots=True, kw_only=True)
class Break:
    """A rest the rider must take: ``duration_s`` long, starting within [earliest, latest]."""

    id: str
    earliest_start_s: int
    latest_start_s: int
    duration_s: int

    def __post_init__(self) -> None:
        where = f"Break {self.id!r}"
        _check(0 <= self.earliest_start_s <= self.latest_start_s,
               f"{where}: needs 0 <= earliest_start_s ({self.earliest_start_s}) <= latest_start_s ({self.latest_start_s})")
        _check(self.duration_s > 0, f"{where}: duration_s={self.duration_s} must be > 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class Vehicle:
    id: str
    start: int  # index into Problem.locations: the rider's hub, or current position when re-planning
    end: int  # index into Problem.locations
    capacity: tuple[float, ...]  # same dimensions as Job.demand (e.g. weight_kg, volume_l, units)
    shift_start_s: int  # seconds since the problem's epoch
    shift_end_s: int
    speed_mps: float  # average road speed, used when the problem has no duration matrix for `profile`
    skills: frozenset[str] = frozenset()
    # (second since the epoch, m/s) ascending from 0: the speed of a drive that leaves from then on,
    # for the times a plan is published with (:func:`retime`); the solver optimises at speed_mps
    speed_steps: tuple[tuple[int, float], ...] = ()
    profile: str = ""  # travel-time profile ("bike", "scooter", "car", "van"): a key of Problem.durations
    fixed_cost: float = 0.0  # cost of using this vehicle at all
    cost_per_km: float = 1.0
    cost_per_hour: float = 0.0  # per hour from leaving the start to arriving at the end
    breaks: tuple[Break, ...] = ()
    max_trips: int = 1  # > 1: may return to `reload_at` between trips to load again
    reload_at: int | None = None  # location index of the hub it reloads at (default: its start)
    reload_s: int = 0  # time to reload at the hub between trips
    # Re-optimisation (see solver.reoptimise): the rider's current plan.
    locked: tuple[str, ...] = ()  # job ids that must come first, in this order (started and next stops)
    planned: tuple[str, ...] = ()  # the current route's job ids in order: warm start and stability
    max_new_stops: int | None = None  # at most this many routed jobs that are not in `planned`

    def __post_init__(self) -> None:
        where = f"Vehicle {self.id!r}"
        _check(_finite_non_negative(self.capacity), f"{where}: capacity={self.capacity} must be finite and >= 0")
        _check(self.shift_start_s >= 0, f"{where}: shift_start_s={self.shift_start_s} must be >= 0")
        _check(self.shift_start_s <= self.shift_end_s,
               f"{where}: shift_end_s={self.shift_end_s} is before shift_start_s={self.shift_start_s}")
        _check(math.isfinite(self.speed_mps) and self.speed_mps > 0, f"{where}: speed_mps={self.speed_mps} must be > 0")
        _check(all(math.isfinite(v) and v > 0 for _, v in self.speed_steps)
               and all(a[0] < b[0] for a, b in itertools.pairwise(self.speed_steps)),
               f"{where}: speed_steps must be ascending in time with speeds > 0")
        for name in ("fixed_cost", "cost_per_km", "cost_per_hour"):
            value = getattr(self, name)
            _check(math.isfinite(value) and value >= 0, f"{where}: {name}={value} must be finite and >= 0")
        _check(self.max_trips >= 1, f"{where}: max_trips={self.max_trips} must be >= 1")
        _check(self.reload_s >= 0, f"{where}: reload_s={self.reload_s} must be >= 0")
        _check(self.max_new_stops is None or self.max_new_stops >= 0,
               f"{where}: max_new_stops={self.max_new_stops} must be >= 0")
        _check(len(set(self.locked)) == len(self.locked), f"{where}: locked={self.locked} repeats a job")
        _check(len(set(self.planned)) == len(self.planned), f"{where}: planned={self.planned} repeats a job")
        _check(len({b.id for b in self.breaks}) == len(self.breaks), f"{where}: break ids are not unique")

    @property
    def hub(self) -> int:
        """Where this vehicle reloads between trips."""
        return self.start if self.reload_at is None else self.reload_at


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    id: str
    location: int  # index into Problem.locations
    demand: tuple[float, ...]  # loaded at the hub (or at the pickup, for the drop of a pair)
    window_start_s: int
    window_end_s: int  # service must start within [window_start_s, window_end_s]; waiting allowed
    service_s: int
    skills: frozenset[str] = frozenset()
    priority: int = 0  # higher = more costly to leave unassigned
    late_cost_per_hour: float | None = None  # None: hard window; else service may start late at this cost
    pickup_id: str | None = None  # this job drops what job `pickup_id` picks up: same vehicle, after it
    vehicle_id: str | None = None  # only this vehicle may serve it (the parcel is already on board)

    def __post_init__(self) -> None:
        where = f"Job {self.id!r}"
        _check(_finite_non_negative(self.demand), f"{where}: demand={self.demand} must be finite and >= 0")
        _check(self.window_start_s >= 0, f"{where}: window_start_s={self.window_start_s} must be >= 0")
        _check(self.window_start_s <= self.window_end_s,
               f"{where}: window_end_s={self.window_end_s} is before window_start_s={self.window_start_s}")
        _check(self.service_s >= 0, f"{where}: service_s={self.service_s} must be >= 0")
        _check(self.late_cost_per_hour is None or (math.isfinite(self.late_cost_per_hour) and self.late_cost_per_hour >= 0),
               f"{where}: late_cost_per_hour={self.late_cost_per_hour} must be finite and >= 0")
        _check(self.pickup_id != self.id, f"{where}: cannot be its own pickup")

    @property
    def hard_window(self) -> bool:
        return self.late_cost_per_hour is None


Matrix = tuple[tuple[int, ...], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    locations: tuple[tuple[float, float], ...]  # (lat, lon)
    jobs: tuple[Job, ...]
    vehicles: tuple[Vehicle, ...]
    circuity: float = 1.3  # road distance = haversine * circuity
    # Whole-second travel times per vehicle profile (see solver.travel); a vehicle whose profile is
    # not here drives distance / speed_mps. Not hashed: a problem is a value, not a dict key.
    durations: Mapping[str, Matrix] = field(default_factory=dict, hash=False)
    even_workload: bool = False  # spread stops evenly over the vehicles used, at some cost in distance
    # Lazily computed road distances; not part of the value (eq/hash/repr), travels with pickles.
    _distances: tuple[tuple[float, ...], ...] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.locations)
        for i, loc in enumerate(self.locations):
            _check(len(loc) == 2 and -90 <= loc[0] <= 90 and -180 <= loc[1] <= 180,
                   f"locations[{i}]={loc} is not a (lat, lon) pair in degrees")
        _check(math.isfinite(self.circuity) and self.circuity >= 1.0,
               f"circuity={self.circuity} must be >= 1 (roads are never shorter than the great circle)")
        for profile, matrix in self.durations.items():
            _check(len(matrix) == n and all(len(row) == n for row in matrix),
                   f"durations[{profile!r}] must be {n}x{n} (one row and column per location)")
            _check(all(isinstance(x, int) and x >= 0 for row in matrix for x in row),
                   f"durations[{profile!r}] must hold whole seconds >= 0")
        dims = len(self.vehicles[0].capacity) if self.vehicles else len(self.jobs[0].demand) if self.jobs else 0
        for kind, ids in (("Vehicle", [v.id for v in self.vehicles]), ("Job", [j.id for j in self.jobs])):
            seen: set[str] = set()
            for id_ in ids:
                _check(id_ not in seen, f"{kind} id={id_!r} is not unique")
                seen.add(id_)
        jobs = {j.id: j for j in self.jobs}
        vehicle_ids = {v.id for v in self.vehicles}
        for v in self.vehicles:
            for name in ("start", "end", "reload_at"):
                index = getattr(v, name)
                _check(index is None or 0 <= index < n, f"Vehicle {v.id!r}: {name}={index} is out of range for {n} locations")
            _check(len(v.capacity) == dims,
                   f"Vehicle {v.id!r}: capacity={v.capacity} has {len(v.capacity)} dimensions, expected {dims}")
            for job_id in v.locked:
                _check(job_id in jobs, f"Vehicle {v.id!r}: locked job {job_id!r} is not in the problem")
                pinned = jobs.get(job_id)
                _check(pinned is None or pinned.vehicle_id in (None, v.id),
                       f"Vehicle {v.id!r}: locked job {job_id!r} is pinned to vehicle {pinned and pinned.vehicle_id!r}")
        locked_by: dict[str, str] = {}
        for v in self.vehicles:
            for job_id in v.locked:
                _check(job_id not in locked_by, f"job {job_id!r} is locked by both {locked_by.get(job_id)!r} and {v.id!r}")
                locked_by[job_id] = v.id
        dropped_by: dict[str, str] = {}
        for j in self.jobs:
            _check(0 <= j.location < n, f"Job {j.id!r}: location={j.location} is out of range for {n} locations")
            _check(len(j.demand) == dims,
                   f"Job {j.id!r}: demand={j.demand} has {len(j.demand)} dimensions, expected {dims}")
            _check(j.vehicle_id is None or j.vehicle_id in vehicle_ids,
                   f"Job {j.id!r}: vehicle_id={j.vehicle_id!r} is not a vehicle of the problem")
            if j.pickup_id is not None:
                pickup = jobs.get(j.pickup_id)
                _check(pickup is not None, f"Job {j.id!r}: pickup_id={j.pickup_id!r} is not a job of the problem")
                assert pickup is not None
                _check(pickup.pickup_id is None, f"Job {j.id!r}: its pickup {pickup.id!r} is itself a drop")
                _check(j.pickup_id not in dropped_by,
                       f"Job {j.id!r}: pickup {j.pickup_id!r} is already dropped by {dropped_by.get(j.pickup_id)!r}")
                _check(pickup.demand == j.demand,
                       f"Job {j.id!r}: demand={j.demand} differs from its pickup's {pickup.demand}")
                _check(pickup.vehicle_id == j.vehicle_id,
                       f"Job {j.id!r}: pinned to {j.vehicle_id!r}, its pickup to {pickup.vehicle_id!r}")
                dropped_by[j.pickup_id] = j.id

    @property
    def pickups(self) -> frozenset[str]:
        """Ids of jobs that pick something up (their drop names them in ``pickup_id``)."""
        return frozenset(j.pickup_id for j in self.jobs if j.pickup_id is not None)

    def distance_matrix(self) -> tuple[tuple[float, ...], ...]:
        """Road distances in metres between all locations, computed once (symmetric)."""
        matrix = self._distances
        if matrix is None:
            matrix = tuple(map(tuple, (haversine_matrix_m(self.locations) * self.circuity).tolist()))
            object.__setattr__(self, "_distances", matrix)
        return matrix

    def distance_m(self, a: int, b: int) -> float:
        return self.distance_matrix()[a][b]

    def travel_s(self, vehicle: Vehicle, a: int, b: int) -> int:
        durations = self.durations.get(vehicle.profile) if vehicle.profile else None
        if durations is not None:
            return durations[a][b]
        return travel_seconds(self.distance_m(a, b), vehicle.speed_mps)


JOB, BREAK, RELOAD = "job", "break", "reload"


@dataclass(frozen=True, slots=True, kw_only=True)
class Visit:
    """One step of a route: a job, a break (``job_id`` is the break's id; taken parked wherever the
    rider is) or a reload at the hub between trips (``job_id`` is empty)."""

    job_id: str
    arrival_s: int  # arrival time (may be before window start: then it waits)
    start_s: int  # service (or break, or reload) start = max(arrival, window_start)
    departure_s: int
    kind: str = JOB


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    vehicle_id: str
    visits: tuple[Visit, ...]
    start_s: int
    end_s: int
    distance_m: float

    @property
    def stops(self) -> tuple[Visit, ...]:
        """The job visits only (no breaks or reloads)."""
        return tuple(v for v in self.visits if v.kind == JOB)


@dataclass(frozen=True, slots=True, kw_only=True)
class Unassigned:
    job_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Reload:
    """Marker in a visit order given to :func:`schedule_route`: go back to the hub and reload."""


Step = Job | Break | Reload


def schedule_route(problem: Problem, vehicle: Vehicle, steps: Sequence[Step]) -> Route:
    """Times for doing ``steps`` in this order, each as early as its window allows; the vehicle
    leaves just late enough not to wait at the first stop (waiting is better done at the hub than
    at a customer's door). A break starts as soon as both the rider is free and its window is
    open; the drive to the next stop takes the break's duration longer (the rider parks on the
    way). Does not check feasibility: see :meth:`Solution.violations`."""
    loc = vehicle.start
    t = vehicle.shift_start_s
    first = steps[0] if steps else None
    if isinstance(first, Job):
        t = max(t, first.window_start_s - problem.travel_s(vehicle, loc, first.location))
    start_s, distance, visits = t, 0.0, []
    rest_until, resting = t, 0  # end of the last break; break time not yet added to a drive
    for step in steps:
        if isinstance(step, Break):
            begin = max(t, rest_until, step.earliest_start_s)  # one break at a time
            visits.append(Visit(job_id=step.id, arrival_s=begin, start_s=begin, departure_s=begin + step.duration_s,
                                kind=BREAK))
            rest_until, resting = begin + step.duration_s, resting + step.duration_s
            continue
        if isinstance(step, Reload):
            where, window_start, service, job_id, kind = vehicle.hub, 0, vehicle.reload_s, "", RELOAD
        else:
            where, window_start, service, job_id, kind = step.location, step.window_start_s, step.service_s, step.id, JOB
        arrival = t + problem.travel_s(vehicle, loc, where) + resting
        begin = max(arrival, window_start, rest_until)
        t = begin + service
        distance += problem.distance_m(loc, where)
        visits.append(Visit(job_id=job_id, arrival_s=arrival, start_s=begin, departure_s=t, kind=kind))
        loc, resting = where, 0
    distance += problem.distance_m(loc, vehicle.end)
    end_s = max(t + problem.travel_s(vehicle, loc, vehicle.end) + resting, rest_until)
    return Route(vehicle_id=vehicle.id, visits=tuple(visits), start_s=start_s, end_s=end_s, distance_m=distance)


def retime(route: Route, vehicle: Vehicle) -> Route:
    """``route`` as :func:`schedule_route` timed it at ``vehicle.speed_mps``, with each drive at the
    vehicle's speed for the time it leaves (``speed_steps``): the same visits in the same order,
    for the arrivals a plan publishes. The solver prices a route at one speed, the one of the hour
    it plans in; a rider planned before the evening rush drives in it. A wait the schedule had
    (a window not open yet, a break's) still holds, shortened or used up by a later arrival.
    Without steps, or at one speed throughout, the route comes back as it was."""
    steps = vehicle.speed_steps
    if not steps or not route.visits:
        return route
    v0 = vehicle.speed_mps

    def drive(seconds: int, leave: int) -> int:
        speed = next((v for at, v in reversed(steps) if at <= leave), steps[0][1])
        return seconds if speed == v0 or seconds <= 0 else math.ceil(seconds * v0 / speed - 1e-9)

    visits: list[Visit] = []
    t_old = t_new = route.start_s  # departure from the last place, as scheduled and as re-timed
    rest_old = rest_new = route.start_s  # end of the last break
    resting = 0  # break time since the last place: schedule_route adds it to the next drive
    for v in route.visits:
        if v.kind == BREAK:
            ready_old, ready_new = max(t_old, rest_old), max(t_new, rest_new)
            begin = max(ready_new, v.start_s if v.start_s > ready_old else ready_new)  # its window's opening holds
            visits.append(Visit(job_id=v.job_id, arrival_s=begin, start_s=begin,
                                departure_s=begin + v.departure_s - v.start_s, kind=BREAK))
            rest_old, rest_new = v.departure_s, begin + v.departure_s - v.start_s
            resting += v.departure_s - v.start_s
            continue
        arrival = t_new + drive(v.arrival_s - t_old - resting, t_new) + resting
        wait_until = v.start_s if v.start_s > v.arrival_s else arrival  # a window (or break) it waited for
        begin = max(arrival, wait_until, rest_new)
        visits.append(Visit(job_id=v.job_id, arrival_s=arrival, start_s=begin,
                            departure_s=begin + v.departure_s - v.start_s, kind=v.kind))
        t_old, t_new, resting = v.departure_s, begin + v.departure_s - v.start_s, 0
    home_old = route.end_s - t_old - resting  # the drive to the end (negative: the end waited for a break)
    end = max(t_new + drive(max(0, home_old), t_new) + resting, rest_new) if home_old >= 0 else max(t_new, rest_new)
    return Route(vehicle_id=route.vehicle_id, visits=tuple(visits), start_s=route.start_s, end_s=end,
                 distance_m=route.distance_m)


@dataclass(frozen=True, slots=True, kw_only=True)
class Solution:
    routes: tuple[Route, ...]
    unassigned: tuple[Unassigned, ...]

    def distance_m(self) -> float:
        return sum(r.distance_m for r in self.routes)

    def lateness_s(self, problem: Problem) -> int:
        """Total seconds of service started after soft windows closed."""
        jobs = {j.id: j for j in problem.jobs}
        return sum(max(0, v.start_s - jobs[v.job_id].window_end_s) for r in self.routes for v in r.stops
                   if v.job_id in jobs)

    def cost(self, problem: Problem) -> float:
        """What the plan costs: per vehicle used, its fixed cost, distance and duration costs, and
        the lateness cost of soft windows. Unassigned jobs are not priced here."""
        vehicles = {v.id: v for v in problem.vehicles}
        jobs = {j.id: j for j in problem.jobs}
        total = 0.0
        for r in self.routes:
            v = vehicles[r.vehicle_id]
            if not r.visits:
                continue
            total += v.fixed_cost + v.cost_per_km * r.distance_m / 1000 + v.cost_per_hour * (r.end_s - r.start_s) / 3600
            for visit in r.stops:
                job = jobs[visit.job_id]
                if job.late_cost_per_hour:
                    total += job.late_cost_per_hour * max(0, visit.start_s - job.window_end_s) / 3600
        return total

    def violations(self, problem: Problem) -> list[str]:
        """Every rule this plan breaks (:func:`solver.checker.violations`); empty list = feasible."""
        from solver.checker import violations  # the checker imports this module

        return violations(self, problem)
