"""The plan checker, pure: is a solution feasible for its problem? Shares no scheduling code with
the engines (only :meth:`solver.model.Problem.travel_s` and ``distance_m``), so a plan an engine
hands out is checked against the rules of :mod:`solver.model` as written, not as the engine
understood them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from solver.model import BREAK, JOB, RELOAD, Job, Problem, Route, Solution, Vehicle

_CAPACITY_TOLERANCE = 1e-9  # relative: float sums of demands may overshoot by an ulp or so


def violations(solution: Solution, problem: Problem) -> list[str]:
    """Independent feasibility check of every rule of :mod:`solver.model`: recompute times
    along each route from the problem, the load at every point, windows, shifts, skills,
    pairs, breaks, trips, locks and stability; each job at most once, every job either routed
    or in unassigned. Empty list = feasible.

    Reported times may be later than the earliest possible (a rider may leave later or wait),
    never earlier: a visit's arrival must be reachable from the previous departure."""
    out: list[str] = []
    jobs = {j.id: j for j in problem.jobs}
    vehicles = {v.id: v for v in problem.vehicles}
    pickups = problem.pickups
    routed: dict[str, str] = {}
    position: dict[str, int] = {}
    used_vehicles: set[str] = set()
    for route in solution.routes:
        where = f"route {route.vehicle_id!r}"
        vehicle = vehicles.get(route.vehicle_id)
        if vehicle is None:
            out.append(f"{where}: unknown vehicle")
            continue
        if route.vehicle_id in used_vehicles:
            out.append(f"{where}: vehicle has more than one route")
        used_vehicles.add(route.vehicle_id)
        out.extend(_route_violations(problem, vehicle, route, jobs, pickups))
        for k, visit in enumerate(route.stops):
            job = jobs.get(visit.job_id)
            if job is None:
                continue
            if job.id in routed:
                out.append(f"{where}: job {job.id!r} is already served by route {routed[job.id]!r}")
            routed[job.id], position[job.id] = route.vehicle_id, k
    for job in problem.jobs:
        if job.pickup_id is None:
            continue
        drop_on, pick_on = routed.get(job.id), routed.get(job.pickup_id)
        if drop_on != pick_on:
            out.append(f"pair {job.pickup_id!r} -> {job.id!r}: pickup on {pick_on!r}, drop on {drop_on!r}")
        elif drop_on is not None and position[job.pickup_id] > position[job.id]:
            out.append(f"pair {job.pickup_id!r} -> {job.id!r}: dropped before it is picked up")
    for v in problem.vehicles:
        missing = [j for j in v.locked if routed.get(j) != v.id]
        if missing:
            out.append(f"route {v.id!r}: locked jobs {missing} are not on it")
    unassigned: set[str] = set()
    for u in solution.unassigned:
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


def _route_violations(problem: Problem, vehicle: Vehicle, route: Route, jobs: Mapping[str, Job],
                      pickups: frozenset[str]) -> list[str]:
    out: list[str] = []
    where = f"route {route.vehicle_id!r}"
    breaks = {b.id: b for b in vehicle.breaks}
    if route.start_s < vehicle.shift_start_s:
        out.append(f"{where}: starts at {route.start_s}s, before its shift starts at {vehicle.shift_start_s}s")
    stops = [v.job_id for v in route.stops]
    if tuple(stops[:len(vehicle.locked)]) != vehicle.locked:
        out.append(f"{where}: must start with its locked stops {list(vehicle.locked)}, starts with "
                   f"{stops[:len(vehicle.locked)]}")
    if vehicle.max_new_stops is not None:
        new = [j for j in stops if j not in vehicle.planned]
        if len(new) > vehicle.max_new_stops:
            out.append(f"{where}: {len(new)} stops not in its planned route, at most {vehicle.max_new_stops} allowed")
    loc, t, distance = vehicle.start, route.start_s, 0.0
    rest_until, resting = t, 0
    taken: set[str] = set()
    trips: list[list[Job]] = [[]]
    for visit in route.visits:
        if visit.kind == BREAK:
            rest = breaks.get(visit.job_id)
            at = f"{where}: break {visit.job_id!r}"
            if rest is None:
                out.append(f"{at} is not one of the vehicle's breaks")
                continue
            if visit.job_id in taken:
                out.append(f"{at} is taken twice")
            taken.add(visit.job_id)
            if visit.start_s < max(t, rest_until):
                out.append(f"{at} starts at {visit.start_s}s, before the rider is free at {max(t, rest_until)}s")
            if not rest.earliest_start_s <= visit.start_s <= rest.latest_start_s:
                out.append(f"{at} starts at {visit.start_s}s, outside [{rest.earliest_start_s}s, {rest.latest_start_s}s]")
            if visit.departure_s < visit.start_s + rest.duration_s:
                out.append(f"{at} ends at {visit.departure_s}s, before its {rest.duration_s}s are over")
            rest_until, resting = max(rest_until, visit.start_s + rest.duration_s), resting + rest.duration_s
            continue
        if visit.kind == RELOAD:
            target, window, service, at, job = vehicle.hub, (0, None), vehicle.reload_s, f"{where}: reload", None
            trips.append([])
        elif visit.kind == JOB:
            job = jobs.get(visit.job_id)
            if job is None:
                out.append(f"{where}: unknown job {visit.job_id!r}")
                continue
            at = f"{where}: job {job.id!r}"
            if not job.skills <= vehicle.skills:
                out.append(f"{at} needs skills {sorted(job.skills - vehicle.skills)} the vehicle lacks")
            if job.vehicle_id is not None and job.vehicle_id != vehicle.id:
                out.append(f"{at} is pinned to vehicle {job.vehicle_id!r}")
            target, service = job.location, job.service_s
            window = (job.window_start_s, job.window_end_s if job.hard_window else None)
            trips[-1].append(job)
        else:
            out.append(f"{where}: visit of unknown kind {visit.kind!r}")
            continue
        earliest = t + problem.travel_s(vehicle, loc, target) + resting
        if visit.arrival_s < earliest:
            out.append(f"{at} arrives at {visit.arrival_s}s, but cannot get there before {earliest}s")
        if visit.start_s < max(visit.arrival_s, window[0], rest_until):
            out.append(f"{at} starts at {visit.start_s}s, before arrival, its window opens ({window[0]}s) "
                       f"or the break ends ({rest_until}s)")
        if window[1] is not None and visit.start_s > window[1]:
            out.append(f"{at} starts service late: at {visit.start_s}s, its window ends at {window[1]}s")
        if visit.departure_s < visit.start_s + service:
            out.append(f"{at} departs at {visit.departure_s}s, before its {service}s service is done")
        distance += problem.distance_m(loc, target)
        loc, t, resting = target, max(visit.departure_s, visit.start_s + service), 0
    distance += problem.distance_m(loc, vehicle.end)
    back = max(t + problem.travel_s(vehicle, loc, vehicle.end) + resting, rest_until)
    if route.end_s < back:
        out.append(f"{where}: ends at {route.end_s}s, but cannot be back before {back}s")
    if max(route.end_s, back) > vehicle.shift_end_s:
        out.append(f"{where}: ends at {max(route.end_s, back)}s, after its shift ends at {vehicle.shift_end_s}s")
    missed = [b.id for b in vehicle.breaks if b.id not in taken and route.visits]
    if missed:
        out.append(f"{where}: breaks {missed} are not taken")
    if len(trips) > vehicle.max_trips:
        out.append(f"{where}: {len(trips)} trips, at most {vehicle.max_trips} allowed")
    out.extend(_load_violations(where, vehicle, trips, pickups))
    if not math.isclose(route.distance_m, distance, rel_tol=1e-6, abs_tol=1e-3):
        out.append(f"{where}: distance_m={route.distance_m:.1f}, but the stops are {distance:.1f} m apart")
    return out


def _load_violations(where: str, vehicle: Vehicle, trips: list[list[Job]], pickups: frozenset[str]) -> list[str]:
    """Walk the load trip by trip: hub deliveries are on board from the trip's start, pickups add,
    drops of pairs remove; items picked up stay on board across a reload until dropped."""
    out: list[str] = []
    dims = len(vehicle.capacity)
    carried = [0.0] * dims  # picked up, not yet dropped
    for k, trip in enumerate(trips, start=1):
        hub_goods = [0.0] * dims
        for job in trip:
            if job.pickup_id is None and job.id not in pickups:
                hub_goods = [x + d for x, d in zip(hub_goods, job.demand, strict=True)]
        load = [c + h for c, h in zip(carried, hub_goods, strict=True)]
        out.extend(_over(where, f"trip {k} leaves the hub with", load, vehicle.capacity))
        for job in trip:
            if job.id in pickups:
                load = [x + d for x, d in zip(load, job.demand, strict=True)]
                carried = [x + d for x, d in zip(carried, job.demand, strict=True)]
                out.extend(_over(where, f"after picking up {job.id!r} it carries", load, vehicle.capacity))
            else:
                load = [x - d for x, d in zip(load, job.demand, strict=True)]
                if job.pickup_id is not None:
                    carried = [x - d for x, d in zip(carried, job.demand, strict=True)]
    return out


def _over(where: str, what: str, load: Sequence[float], capacity: Sequence[float]) -> list[str]:
    return [f"{where}: {what} {x:g}, over its capacity {cap:g} in dimension {dim}"
            for dim, (x, cap) in enumerate(zip(load, capacity, strict=True))
            if x > cap + _CAPACITY_TOLERANCE * max(1.0, cap)]
