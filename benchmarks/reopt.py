"""Benchmark re-optimisation (:mod:`solver.reoptimise`) on a rider's day in Bengaluru, not a test.

Each run is one seeded scenario. A rider's day is planned first, the usual way: ``stops`` drops
within 3 km of the centre of their area (one area around the hub for one rider; for several,
areas 3 km out from the hub in different directions, overlapping), 2-5 minutes' service, 70% of
them with a two-hour slot (on the half hour, containing the planned time), the rest any time in a
ten-hour shift; scooters at 6 m/s on roads 1.3x the straight line. Then, at a random time between
10% and 40% through the first rider's day (about 25-35 of 40 stops still to do), each rider is wherever the plan has them: serving a stop (it
is the started one), waiting at one, or between two (position interpolated); everything before
is completed and everything they have left is on board. Three things happen:

- a future stop is cancelled (not one of the next two of its rider);
- an urgent order comes in, within 1 km of a stop still to do, to be served within 45 minutes
  (priority 3: worth up to three ordinary stops; with several riders any of them may take it);
- a rider (the first) is 10 minutes behind.

Timed: the whole :func:`solver.reoptimise.reoptimise` call (build, solve, schedule), after one
untimed warm-up call that loads the engine. Checked per run: ``violations()``, locked stops kept
in place, the urgent order served, how many stops changed (:func:`solver.reoptimise.diff`) and how
many ended unassigned.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from solver import SolveParams, engines, solve
from solver.model import Job, Problem, Route, Solution, Vehicle, schedule_route
from solver.reoptimise import TIME_LIMIT_S, Changes, Policy, Rider, Situation, build, diff, plan_of, reoptimise

HUB = (12.97, 77.59)  # Bengaluru
SHIFT_S = 10 * 3600  # epoch 08:00, riders back by 18:00
SLOT_S = 2 * 3600
URGENT_WITHIN_S = 45 * 60
URGENT_PRIORITY = 3
DELAY_S = 10 * 60
AREA_KM = 3.0
PLAN_LIMIT_S = 0.3  # search time of each rider's morning plan
_KM_LAT = 1 / 111.195  # degrees of latitude per km


def _offset(origin: tuple[float, float], north_km: float, east_km: float) -> tuple[float, float]:
    return (origin[0] + north_km * _KM_LAT, origin[1] + east_km * _KM_LAT / math.cos(math.radians(origin[0])))


def _around(rng: random.Random, centre: tuple[float, float], km: float) -> tuple[float, float]:
    r, theta = km * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
    return _offset(centre, r * math.cos(theta), r * math.sin(theta))


def _scooter(id: str) -> Vehicle:
    return Vehicle(id=id, start=0, end=0, capacity=(150.0, 60.0), shift_start_s=0, shift_end_s=SHIFT_S, speed_mps=6.0)


def day_plan(seed: int, stops: int = 40, riders: int = 1) -> tuple[Problem, Solution]:
    """The morning's problem and its plan: each rider's stops planned for that rider alone, then
    slots drawn around the planned times, so the plan keeps every slot."""
    rng = random.Random(seed)
    locations: list[tuple[float, float]] = [HUB]
    orders: dict[str, list[str]] = {}
    jobs: list[Job] = []
    fleet = tuple(_scooter(f"r{k + 1}") for k in range(riders))
    for k, v in enumerate(fleet):
        angle = 2 * math.pi * k / riders
        centre = HUB if riders == 1 else _offset(HUB, AREA_KM * math.cos(angle), AREA_KM * math.sin(angle))
        first = len(locations)
        locations += [_around(rng, centre, AREA_KM) for _ in range(stops)]
        mine = [Job(id=f"{v.id}-{i:02d}", location=first + i, demand=(round(rng.uniform(0.3, 4.0), 1), 1.0),
                    window_start_s=0, window_end_s=SHIFT_S, service_s=rng.randint(120, 300)) for i in range(stops)]
        alone = Problem(locations=tuple(locations), jobs=tuple(mine), vehicles=(v,))
        route = solve(alone, SolveParams(time_limit_s=PLAN_LIMIT_S, seed=seed)).routes[0]
        planned_at = {visit.job_id: visit.start_s for visit in route.stops}
        orders[v.id] = [visit.job_id for visit in route.stops]
        for job in mine:
            if rng.random() < 0.7:
                opens = max(0, (planned_at[job.id] - rng.randrange(0, SLOT_S - 1800)) // 1800 * 1800)
                job = Job(id=job.id, location=job.location, demand=job.demand, window_start_s=opens,
                          window_end_s=min(SHIFT_S, opens + SLOT_S), service_s=job.service_s)
            jobs.append(job)
    problem = Problem(locations=tuple(locations), jobs=tuple(jobs), vehicles=fleet)
    by_id = {j.id: j for j in jobs}
    routes = tuple(schedule_route(problem, v, [by_id[j] for j in orders[v.id]]) for v in fleet)
    return problem, Solution(routes=routes, unassigned=())


def _where(problem: Problem, route: Route, now_s: int) -> tuple[tuple[float, float], str | None, int]:
    """(position, stop being served or None, how many stops are done) of a rider at ``now_s``."""
    jobs = {j.id: j for j in problem.jobs}
    here, left = problem.locations[0], route.start_s
    for k, visit in enumerate(route.stops):
        there = problem.locations[jobs[visit.job_id].location]
        if now_s < visit.arrival_s:
            share = (now_s - left) / max(1, visit.arrival_s - left)
            return (here[0] + share * (there[0] - here[0]), here[1] + share * (there[1] - here[1])), None, k
        if now_s < visit.start_s:
            return there, None, k  # waiting for the slot to open
        if now_s < visit.departure_s:
            return there, visit.job_id, k
        here, left = there, visit.departure_s
    return here, None, len(route.stops)


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    situation: Situation
    changes: Changes
    urgent: str  # id of the urgent new order


def scenario(seed: int, stops: int = 40, riders: int = 1) -> Scenario:
    """The day of :func:`day_plan` at a random moment, and the three changes."""
    problem, plan = day_plan(seed, stops, riders)
    rng = random.Random(seed + 1_000_003)
    first = plan.routes[0]
    now = rng.randint(first.start_s + (first.end_s - first.start_s) // 10,
                      first.start_s + 4 * (first.end_s - first.start_s) // 10)
    orders = plan_of(plan)
    out, completed, ahead = [], set(), {}
    for route in plan.routes:
        position, started, done = _where(problem, route, now)
        order = orders[route.vehicle_id]
        completed |= set(order[:done])
        ahead[route.vehicle_id] = order[done + 2:]  # beyond the stops that will be locked
        out.append(Rider(vehicle_id=route.vehicle_id, position=position, started=started,
                         on_board=frozenset(order[done:])))
    cancel_from = rng.choice([v for v in ahead if ahead[v]])
    near = rng.choice([j for order in ahead.values() for j in order])
    location = len(problem.locations)
    point = _around(rng, problem.locations[next(j.location for j in problem.jobs if j.id == near)], 1.0)
    urgent = Job(id="urgent", location=location, demand=(1.0, 1.0), window_start_s=now,
                 window_end_s=now + URGENT_WITHIN_S, service_s=120, priority=URGENT_PRIORITY)
    changes = Changes(cancelled=frozenset({rng.choice(ahead[cancel_from])}), new_jobs=(urgent,),
                      new_locations=(point,), delays_s={plan.routes[0].vehicle_id: DELAY_S})
    situation = Situation(problem=problem, plan=orders, now_s=now, riders=tuple(out), completed=frozenset(completed))
    return Scenario(situation=situation, changes=changes, urgent=urgent.id)


def run(case: Scenario, params: SolveParams, policy: Policy = Policy()) -> dict[str, Any]:
    """One re-plan of ``case``: its wall time and what it did."""
    started = time.perf_counter()
    solution = reoptimise(case.situation, case.changes, policy, params)
    ms = 1000 * (time.perf_counter() - started)
    problem = build(case.situation, case.changes, policy)  # the same problem again, untimed, to check
    changes = diff(problem, solution)
    served = {v.job_id for r in solution.routes for v in r.stops}
    new = {r.vehicle_id: [v.job_id for v in r.stops] for r in solution.routes}
    locked_moved = sum(sum(1 for k, j in enumerate(v.locked) if new.get(v.id, [])[k:k + 1] != [j])
                       for v in problem.vehicles)
    return {"ms": round(ms, 1), "engine": engines.choose(problem, params.engine),
            "jobs": len(problem.jobs), "locked": sum(len(v.locked) for v in problem.vehicles),
            "locked_moved": locked_moved, "violations": solution.violations(problem),
            "urgent_served": case.urgent in served, "unassigned": [u.job_id for u in solution.unassigned],
            "added": sum(len(c.added) for c in changes), "removed": sum(len(c.removed) for c in changes),
            "moved": sum(len(c.moved) for c in changes), "changed": sum(c.changed for c in changes)}


def _p90(values: list[float]) -> float:
    """Nearest-rank 90th percentile: a value that was measured."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def bench(runs: int = 21, stops: int = 40, riders: int = 1, time_limit_s: float = TIME_LIMIT_S, seed: int = 0,
          progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """``runs`` scenarios (seeds ``seed`` ...), each re-planned once; per-run figures and a summary."""
    params = SolveParams(time_limit_s=time_limit_s, seed=seed)
    warm = scenario(seed, stops, riders)
    started = time.perf_counter()
    run(warm, params)  # loads the engine: a dispatcher's worker has it loaded already
    warm_ms = 1000 * (time.perf_counter() - started)
    out = []
    for k in range(runs):
        case = scenario(seed + k, stops, riders)
        r = run(case, params)
        out.append(r)
        progress(f"[{k + 1}/{runs}] seed {seed + k}: {r['ms']:.0f} ms, {r['jobs']} jobs, {r['locked']} locked, "
                 f"{r['changed']} changed, urgent {'served' if r['urgent_served'] else 'NOT served'}, "
                 f"{len(r['unassigned'])} unassigned" + (f", VIOLATIONS {r['violations']}" if r['violations'] else ""))
    ms = [r["ms"] for r in out]
    return {
        "riders": riders, "stops_per_rider": stops, "runs": runs, "time_limit_s": time_limit_s, "seed": seed,
        "engine": out[0]["engine"] if out else None, "first_call_ms": round(warm_ms, 1),
        "median_ms": statistics.median(ms) if ms else None, "p90_ms": _p90(ms) if ms else None,
        "max_ms": max(ms, default=None), "median_jobs": statistics.median(r["jobs"] for r in out) if out else None,
        "locked_moved": sum(r["locked_moved"] for r in out),
        "violations": sum(len(r["violations"]) for r in out),
        "urgent_served": sum(r["urgent_served"] for r in out),
        "unassigned": sum(len(r["unassigned"]) for r in out),
        "mean_changed": statistics.fmean(r["changed"] for r in out) if out else None,
        "runs_detail": out,
    }


def summary_lines(result: dict[str, Any]) -> list[str]:
    """The figures of :func:`bench` for a terminal."""
    r = result
    return [
        f"re-optimisation: {r['riders']} rider(s) x {r['stops_per_rider']} stops (median {r['median_jobs']:g} jobs "
        f"left to plan), cancel + urgent order + {DELAY_S // 60} min delay, {r['runs']} runs, "
        f"search {r['time_limit_s']:g} s, engine {r['engine']}",
        f"wall time per call (build + solve + schedule): median {r['median_ms']:.0f} ms, p90 {r['p90_ms']:.0f} ms, "
        f"max {r['max_ms']:.0f} ms (first call, loading the engine: {r['first_call_ms']:.0f} ms)",
        f"locked stops moved: {r['locked_moved']}; violations: {r['violations']}; urgent order served: "
        f"{r['urgent_served']}/{r['runs']}; unassigned: {r['unassigned']}; stops changed per run: "
        f"{r['mean_changed']:.1f} (added + removed + out of order)",
    ]
