"""The PyVRP backend: the only module that imports pyvrp. It serves the classes
:func:`solver.engines.pyvrp_unsupported` accepts (no breaks, soft windows, caps on route changes,
even workload or locks).

Model: one PyVRP location per depot (each distinct start, end and reload hub; a reload hub is its
own depot so its reload time is not charged at the start or end of a route) and one per job node,
even when jobs share an address, so arcs into one job can be priced apart from arcs into another.
Identical vehicles share a vehicle type. Each vehicle type gets a profile: its travel times
(:meth:`Problem.travel_s`, the same numbers the checker uses) with every arc into a job it may
not serve (skills, capacity, reach, a pin to another vehicle) made longer than the whole horizon,
so any plan using one is time-infeasible. Pickup-and-delivery pairs are PyVRP shipments (PyVRP
keeps a shipment inside one trip, stricter than our model). Every job is optional with a prize
above any detour, growing with priority as in the OR-Tools model, so a job is dropped only when
it cannot be fitted.

Costs are integers: per metre, per second and fixed, in a unit chosen so that the cheapest
non-zero rate is 1000 units (or, when every vehicle only pays the same per-km rate, one unit per
whole metre: an unconfigured problem minimises distance exactly, Solomon tenths included).

The search is :func:`pyvrp.solve` with one change: its penalties for excess load and lateness
are in the scale of this problem's costs (see :func:`pyvrp_solve`).

Times in the returned routes come from :func:`solver.model.schedule_route`. A plan PyVRP reports
infeasible, or one the checker rejects, is never returned: the problem goes to OR-Tools instead.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from pyvrp import (
    Client,
    Depot,
    IteratedLocalSearch,
    Location,
    PenaltyManager,
    PenaltyParams,
    ProblemData,
    RandomNumberGenerator,
    Result,
    Shipment,
    VehicleType,
)
from pyvrp import Solution as PyvrpSolution
from pyvrp import (
    SolveParams as PyvrpParams,
)
from pyvrp.search import LocalSearch, PerturbationManager, compute_neighbours
from pyvrp.stop import MaxRuntime, StoppingCriterion

from solver.eligibility import NO_ROOM, Eligibility, scaled_capacity, scaled_demand
from solver.model import Job, Problem, Reload, Route, Solution, Step, Unassigned, Vehicle, schedule_route
from solver.params import SolveParams

_MIN_SEARCH_S = 0.05  # search time left when building the model ate the whole limit


def _allowed(problem: Problem, eligible: Eligibility) -> tuple[dict[str, frozenset[int]], dict[str, str]]:
    """Per job, the vehicles that may serve it: eligible, the pinned one only, and for a pair the
    vehicles both ends may use. Jobs left with none get a reason."""
    index = {v.id: i for i, v in enumerate(problem.vehicles)}
    allowed: dict[str, frozenset[int]] = {}
    reasons: dict[str, str] = {}
    for job in problem.jobs:
        if job.id not in eligible.allowed:
            continue
        ok = frozenset(eligible.allowed[job.id])
        if job.vehicle_id is not None:
            ok &= {index[job.vehicle_id]}
            if not ok:
                reasons[job.id] = f"pinned to vehicle {job.vehicle_id!r}, which cannot serve it"
                continue
        allowed[job.id] = ok
    for drop in problem.jobs:
        if drop.pickup_id is None:
            continue
        pickup = drop.pickup_id
        if drop.id in allowed and pickup in allowed:
            both = allowed[drop.id] & allowed[pickup]
            if both:
                allowed[drop.id] = allowed[pickup] = both
                continue
            reasons[drop.id] = reasons[pickup] = f"no vehicle can serve both {pickup!r} and {drop.id!r} of the pair"
        elif drop.id in allowed or pickup in allowed:
            served, other = (drop.id, pickup) if drop.id in allowed else (pickup, drop.id)
            reasons[served] = f"the other end of its pair, {other!r}, cannot be served"
        allowed.pop(drop.id, None)
        allowed.pop(pickup, None)
    return allowed, reasons


def _type_key(v: Vehicle) -> Vehicle:
    """What makes two vehicles interchangeable for PyVRP: everything but their names and plans."""
    return replace(v, id="", planned=())


@dataclass(frozen=True, slots=True, kw_only=True)
class _Rates:
    """Integer cost per metre and per second, fixed cost, in one common money unit."""

    per_m: int
    per_s: int
    fixed: int


def _rates(vehicles: Sequence[Vehicle]) -> list[_Rates]:
    per_m = [v.cost_per_km / 1000 for v in vehicles]
    per_s = [v.cost_per_hour / 3600 for v in vehicles]
    if not any(per_s) and len(set(per_m)) == 1 and per_m[0] > 0:
        unit = per_m[0]  # distance only: one unit per metre, exactly
    else:
        nonzero = [r for r in per_m + per_s if r > 0]
        unit = min(nonzero) / 1000 if nonzero else 1e-3
    return [_Rates(per_m=round(m / unit), per_s=round(s / unit), fixed=round(v.fixed_cost / unit))
            for m, s, v in zip(per_m, per_s, vehicles, strict=True)]


def _load_units(jobs: Sequence[Job], dims: int) -> list[int]:
    """Per dimension, the largest unit every scaled demand is a whole multiple of: loads in parcels
    rather than thousandths keep PyVRP's numbers small, and the model exact (a sum of demands fits
    a capacity exactly when it fits the capacity rounded down to the unit)."""
    return [math.gcd(*(scaled_demand(j.demand[d]) for j in jobs)) or 1 for d in range(dims)]


def solve(problem: Problem, eligible: Eligibility, params: SolveParams) -> Solution:
    started = time.perf_counter()
    allowed, reasons = _allowed(problem, eligible)
    unassigned = {u.job_id: u for u in eligible.unassigned}
    unassigned |= {job_id: Unassigned(job_id=job_id, reason=why) for job_id, why in reasons.items()}
    routes: tuple[Route, ...] = ()
    if allowed:
        model = _Model(problem, allowed)
        left = params.time_limit_s - (time.perf_counter() - started)
        result = pyvrp_solve(model.data, model.penalties, model.penalty_params,
                             MaxRuntime(max(_MIN_SEARCH_S, left)), params.seed)
        if not result.best.is_feasible():
            return _fallback(problem, eligible, params, started)
        routes = model.routes(result.best)
        served = {v.job_id for r in routes for v in r.stops}
        unassigned |= {j: Unassigned(job_id=j, reason=NO_ROOM) for j in allowed if j not in served}
    solution = Solution(routes=routes,
                        unassigned=tuple(unassigned[j.id] for j in problem.jobs if j.id in unassigned))
    if solution.violations(problem):  # a mismatch between the two models: never hand out such a plan
        return _fallback(problem, eligible, params, started)
    return solution


def pyvrp_solve(data: ProblemData, penalties: tuple[list[float], float, float], bounds: PenaltyParams,
                stop: StoppingCriterion, seed: int) -> Result:
    """:func:`pyvrp.solve`, but with penalties in the scale of this problem's costs. PyVRP starts
    every penalty at 50 000 per unit and adapts it by a few per cent per 500 candidate plans,
    capped at 100 000: right for costs in kilometres and loads in parcels, but with costs in
    metres a short search never comes down far enough to cross overloaded plans (it misses
    moves such as opening a second trip), and with costs in thousandths a penalty never grows
    past a job's prize, so the search settles on an overloaded plan."""
    params = PyvrpParams(penalty=bounds)
    rng = RandomNumberGenerator(seed=seed)
    search = LocalSearch(data, rng, compute_neighbours(data, params.neighbourhood),
                         PerturbationManager(params.perturbation))
    for op in params.operators:
        if op.supports(data):
            search.add_operator(op(data))
    manager = PenaltyManager(penalties, bounds)
    start = search(PyvrpSolution.make_random(data, rng), manager.max_cost_evaluator(), exhaustive=True)
    return IteratedLocalSearch(data, manager, search, start, params.ils).run(stop, collect_stats=False)


_FALLBACK_SHARE = 0.2  # OR-Tools gets at least this share of the limit again: a rare path, slightly over budget


def _fallback(problem: Problem, eligible: Eligibility, params: SolveParams, started: float) -> Solution:
    """OR-Tools re-solves with the time left, so the whole call stays near the caller's limit
    (a decomposed day gives every part a deadline)."""
    from solver import _ortools

    left = params.time_limit_s - (time.perf_counter() - started)
    return _ortools.solve(problem, eligible, replace(params, time_limit_s=max(_FALLBACK_SHARE * params.time_limit_s,
                                                                              left)))


class _Model:
    """The PyVRP data for a problem, and the way back from PyVRP routes to ours."""

    def __init__(self, problem: Problem, allowed: dict[str, frozenset[int]]) -> None:
        self.problem = problem
        jobs = [j for j in problem.jobs if j.id in allowed]
        by_id = {j.id: j for j in jobs}
        pickups = problem.pickups
        self.clients = [j for j in jobs if j.pickup_id is None and j.id not in pickups]
        self.shipments = [(by_id[j.pickup_id], j) for j in jobs if j.pickup_id is not None]
        fleet = sorted({i for ok in allowed.values() for i in ok})
        pinned_to = {j.vehicle_id for j in jobs if j.vehicle_id is not None}

        # Vehicle types: identical vehicles share one, unless a job is pinned to one of them.
        groups: dict[object, list[int]] = {}
        for i in fleet:
            v = problem.vehicles[i]
            groups.setdefault(v.id if v.id in pinned_to else _type_key(v), []).append(i)
        self.types = list(groups.values())
        leads = [problem.vehicles[g[0]] for g in self.types]

        # Depots: each distinct start/end location, then each reload hub (with its reload time).
        ends = sorted({loc for v in leads for loc in (v.start, v.end)})
        reloads = sorted({(v.hub, v.reload_s) for v in leads if v.max_trips > 1})
        depot_at = {loc: k for k, loc in enumerate(ends)}
        reload_at = {key: len(ends) + k for k, key in enumerate(reloads)}
        where = ends + [hub for hub, _ in reloads]  # problem location of each PyVRP location
        depots = [Depot(location=k) for k in range(len(ends))]
        depots += [Depot(location=len(ends) + k, service_duration=s) for k, (_, s) in enumerate(reloads)]

        node_of: dict[str, int] = {}  # job id -> PyVRP location index
        for j in self.clients:
            node_of[j.id] = len(where)
            where.append(j.location)
        for p, d in self.shipments:
            node_of[p.id], node_of[d.id] = len(where), len(where) + 1
            where += [p.location, d.location]
        locations = [Location(x=0, y=0) for _ in where]  # coordinates unused: every arc is given

        rates = _rates(leads)
        units = _load_units(jobs, len(leads[0].capacity))
        ix = np.ix_(where, where)
        metres = np.asarray(problem.distance_matrix(), dtype=np.float64)[ix]
        distance = np.rint(metres).astype(np.int64)
        np.fill_diagonal(distance, 0)
        horizon = max(max(v.shift_end_s for v in leads), max(j.window_end_s for j in jobs))
        never = horizon + 1  # longer than any shift: an arc that makes a plan time-infeasible

        travel: dict[object, np.ndarray] = {}  # per travel-time behaviour
        profiles: dict[tuple[object, frozenset[int]], int] = {}
        durations: list[np.ndarray] = []
        vehicle_types: list[VehicleType] = []
        slot = {}  # problem vehicle index -> its type index
        for t, (group, v, r) in enumerate(zip(self.types, leads, rates, strict=True)):
            for i in group:
                slot[i] = t
            behaviour = v.profile if v.profile in problem.durations else v.speed_mps
            if behaviour not in travel:
                if isinstance(behaviour, str):
                    seconds = np.asarray(problem.durations[behaviour], dtype=np.int64)[ix]
                else:
                    seconds = np.ceil(metres / behaviour).astype(np.int64)
                np.fill_diagonal(seconds, 0)
                travel[behaviour] = seconds
            barred = frozenset(node_of[j] for j in node_of if group[0] not in allowed[j])
            key = (behaviour, barred)
            if key not in profiles:
                seconds = travel[behaviour].copy()
                if barred:
                    seconds[:, sorted(barred)] = never
                    np.fill_diagonal(seconds, 0)
                profiles[key] = len(durations)
                durations.append(seconds)
            reload_depots = [reload_at[v.hub, v.reload_s]] if v.max_trips > 1 else []
            vehicle_types.append(VehicleType(
                num_available=len(group), capacity=[scaled_capacity(c) // u for c, u in zip(v.capacity, units, strict=True)],
                start_depot=depot_at[v.start], end_depot=depot_at[v.end], fixed_cost=r.fixed,
                tw_early=v.shift_start_s, tw_late=v.shift_end_s, unit_distance_cost=r.per_m,
                unit_duration_cost=r.per_s, profile=profiles[key], reload_depots=reload_depots,
                max_reloads=v.max_trips - 1 if reload_depots else 0, name=v.id))

        # A prize above any insertion cost (three arcs when a reload comes with it, the whole
        # horizon of waiting, opening a vehicle).
        longest = int(distance.max())
        unit = max(3 * longest * r.per_m + horizon * r.per_s + r.fixed for r in rates) + 1
        lowest = min(j.priority for j in jobs)

        def prize(job: Job) -> int:
            return unit * (1 + job.priority - lowest)

        def load(demand: tuple[float, ...]) -> list[int]:
            return [scaled_demand(x) // u for x, u in zip(demand, units, strict=True)]

        clients = [Client(location=node_of[j.id], delivery=load(j.demand),
                          service_duration=j.service_s, tw_early=j.window_start_s, tw_late=j.window_end_s,
                          prize=prize(j), required=False, name=j.id) for j in self.clients]
        shipments = [Shipment(pickup_location=node_of[p.id], delivery_location=node_of[d.id],
                              pickup_tw_early=p.window_start_s, pickup_tw_late=p.window_end_s,
                              pickup_service_duration=p.service_s, delivery_tw_early=d.window_start_s,
                              delivery_tw_late=d.window_end_s, delivery_service_duration=d.service_s,
                              amount=load(d.demand), prize=prize(p) + prize(d),
                              required=False, name=d.id) for p, d in self.shipments]
        # Penalties in the scale of this problem's costs: PyVRP's defaults (a unit of excess load or
        # a second late starts at 50 000, never above 100 000) assume costs in small units. A unit of
        # excess load starts at about an average arc per average parcel; a second late at PyVRP's
        # start times the cost of a metre (lower ones, tried, sent the search too far into late
        # plans); and any penalty may grow past the largest prize, so no job is worth a violation.
        per_metre = max(1.0, statistics.fmean(r.per_m + r.per_s for r in rates))
        arc = float(distance.mean()) * per_metre or 1.0
        loads = [c.delivery for c in clients] + [s.amount for s in shipments]
        per_load = [arc / max(1.0, statistics.fmean(x[d] for x in loads)) for d in range(len(units))]
        bounds = PenaltyParams()
        late = (bounds.min_penalty + bounds.max_penalty) / 2 * per_metre
        self.penalties = (per_load, late, late)
        self.penalty_params = replace(bounds, max_penalty=max(bounds.max_penalty * per_metre,
                                                              10.0 * max(unit * (1 + j.priority - lowest) for j in jobs)))
        self.data = ProblemData(locations, clients, depots, vehicle_types, [distance] * len(durations), durations,
                                [], shipments)

    def routes(self, best: object) -> tuple[Route, ...]:
        """Our routes for PyVRP's solution: each PyVRP route goes to the next unused vehicle of its type."""
        taken = [0] * len(self.types)
        out = []
        for pv in best.routes():  # type: ignore[attr-defined]
            t = pv.vehicle_type()
            vehicle = self.problem.vehicles[self.types[t][taken[t]]]
            taken[t] += 1
            steps: list[Step] = []
            activities = list(pv)
            for a in activities[1:-1]:  # the start and end depots are implied
                if a.is_depot():
                    if steps and not isinstance(steps[-1], Reload):  # no empty trips
                        steps.append(Reload())
                elif a.is_client():
                    steps.append(self.clients[a.idx])
                else:
                    pickup, drop = self.shipments[a.idx]
                    steps.append(pickup if a.is_pickup() else drop)
            if steps and isinstance(steps[-1], Reload):
                steps.pop()
            if steps:
                out.append(schedule_route(self.problem, vehicle, steps))
        return tuple(out)
