"""The OR-Tools engine: the only module that imports ortools. It supports every rule of
:mod:`solver.model`, all combinable in one model.

Nodes: one per routable job, then ``max_trips - 1`` optional reload nodes per multi-trip vehicle
(at its hub, only it may visit them, free to skip), then one per distinct depot location.
Matrices are built with numpy and registered once per distinct value (no Python callbacks), so
2,000 jobs x 80 vehicles builds in seconds.

- Cost, in units of 1/36,000 money (so 0.1 money per hour is a whole number per second): arcs
  cost ``cost_per_km`` per km (one matrix per distinct rate: an unconfigured problem minimises
  distance), ``fixed_cost`` per vehicle used, ``cost_per_hour`` on the route's span, soft
  windows ``late_cost_per_hour`` above their end, and even workload a soft cap on stops.
- Time: a dimension whose transit is service (or reload) at the origin + travel from
  :meth:`Problem.travel_s` (one matrix per distinct profile or speed), slack for waiting and
  breaks; windows and shifts are ranges on its cumuls (soft windows: up to the horizon); breaks
  are interval variables that may not overlap a visit (``SetBreakIntervalsOfVehicle``).
- Load, per capacity dimension, exactly as the checker counts it (hub deliveries on board from
  their trip's start, a pickup adds, its drop removes, picked-up goods stay on board over a
  reload). Hub deliveries only: a classic accumulating dimension that a reload resets (as in the
  OR-Tools cvrp_reload sample). Pairs only: +demand at the pickup, -demand at the drop. Both: a
  "remaining hub goods" dimension that must reach zero at every reload and at the end (so it
  starts each trip at exactly the trip's hub goods), and the load dimension (-hub delivery,
  +pickup, -drop, vehicle capacity) whose start and reload top-ups are tied to it.
- Pairs: same vehicle, pickup before drop. Pinned and locked jobs: only their vehicle may serve
  them; locked jobs are chained from the start in order and cannot be dropped. Stability: a
  count of stops not in the ``planned`` route, capped per vehicle (one transit for all vehicles
  of a count: OR-Tools 9.15 fails outright on per-vehicle unary transits when jobs must be
  dropped). Warm start from what the planned routes can still do (a late rider keeps the stops it
  still makes, in order; the search inserts the rest); a small re-plan also searches from
  scratch for half the time and the better plan wins. When no search finds anything, the locked
  stops alone are the start, so a feasible locked prefix always gives a plan.
- Every other job sits in its own disjunction with a penalty larger than any insertion cost,
  growing with priority, so the solver drops a job only when it cannot be fitted, never to save
  cost, and a drop never makes the model infeasible.

Times in the returned routes are recomputed by :func:`solver.model.schedule_route` from the
visit order, with each break put where the solver took it; the solver's times bound them (earliest
times are never later), so they stay feasible.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from solver.eligibility import NO_ROOM, Eligibility, scaled_capacity, scaled_demand
from solver.model import Break, Job, Problem, Reload, Route, Solution, Step, Unassigned, Vehicle, schedule_route
from solver.params import SolveParams

COST_SCALE = 36_000  # solver cost units per money unit
PER_SECOND = COST_SCALE / 3600  # a cost per hour, in solver units per second
# A re-plan with at most this many jobs per second of search time also searches from scratch for
# half the time (both searches converge; the fresh one reorders a late route more freely); a
# larger one spends it all from the warm start (tuned on benchmarks.reopt: 30 and 60 jobs
# gain at 0.15 s, 120 lose).
SPLIT_JOBS_PER_S = 500


@dataclass(frozen=True, slots=True)
class _Nodes:
    """The model's nodes: jobs, reload nodes (each owned by one model vehicle), depots."""

    jobs: list[Job]
    reload_owner: list[int]  # model vehicle index per reload node
    locations: list[int]  # problem location per node
    service: list[int]  # seconds spent at the node: job service or the owner's reload time

    def is_reload(self, node: int) -> bool:
        return len(self.jobs) <= node < len(self.jobs) + len(self.reload_owner)


def solve(problem: Problem, eligible: Eligibility, params: SolveParams) -> Solution:
    jobs = [j for j in problem.jobs if j.id in eligible.allowed]
    fleet = sorted({i for j in jobs for i in eligible.allowed[j.id]})  # only vehicles some job could use
    vehicles = [problem.vehicles[i] for i in fleet]
    slot = {p: m for m, p in enumerate(fleet)}  # problem vehicle index -> model vehicle index
    allowed = {j.id: [slot[i] for i in eligible.allowed[j.id]] for j in jobs}
    usable = [0] * len(vehicles)
    for j in jobs:
        for m in allowed[j.id]:
            usable[m] += 1

    reload_owner = [m for m, v in enumerate(vehicles) for _ in range(min(v.max_trips, usable[m]) - 1)]
    depots = sorted({loc for v in vehicles for loc in (v.start, v.end)})
    depot_node = {loc: len(jobs) + len(reload_owner) + k for k, loc in enumerate(depots)}
    nodes = _Nodes(jobs=jobs, reload_owner=reload_owner,
                   locations=[j.location for j in jobs] + [vehicles[m].hub for m in reload_owner] + depots,
                   service=[j.service_s for j in jobs] + [vehicles[m].reload_s for m in reload_owner] + [0] * len(depots))
    manager = pywrapcp.RoutingIndexManager(
        len(nodes.locations), len(vehicles), [depot_node[v.start] for v in vehicles], [depot_node[v.end] for v in vehicles])
    routing = pywrapcp.RoutingModel(manager)
    job_index = [manager.NodeToIndex(n) for n in range(len(jobs))]
    reload_index = [manager.NodeToIndex(len(jobs) + k) for k in range(len(reload_owner))]

    metres = _node_distances(problem, nodes)
    arc_cost = _costs(routing, metres, vehicles)
    horizon = max(max(v.shift_end_s for v in vehicles), max(j.window_end_s for j in jobs))
    clock, transits = _time(problem, routing, nodes, metres, vehicles, job_index, horizon)
    breaks = _breaks(routing, manager, nodes, vehicles, clock)
    _loads(problem, routing, nodes, vehicles, job_index, reload_index)
    _pairs(routing, clock, jobs, job_index)
    _stability(routing, nodes, vehicles, allowed)
    even_cost = _even_workload(problem, routing, nodes, vehicles, arc_cost)

    locked = {job_id for v in vehicles for job_id in v.locked}
    position = {j.id: n for n, j in enumerate(jobs)}
    for m, v in enumerate(vehicles):
        chain = [job_index[position[j]] for j in v.locked if j in position]
        for before, after in zip([routing.Start(m), *chain], chain, strict=False):
            routing.NextVar(before).SetValue(after)
    for k, m in enumerate(reload_owner):
        routing.VehicleVar(reload_index[k]).SetValues([-1, m])
        routing.AddDisjunction([reload_index[k]], 0)

    # A penalty above any insertion cost: a detour of two arcs, opening a vehicle, a whole shift of
    # time cost, the job's own lateness and an extra stop over the even-workload cap.
    late = max((j.late_cost_per_hour or 0.0 for j in jobs), default=0.0)
    unit = (2 * arc_cost + max(round(v.fixed_cost * COST_SCALE) for v in vehicles)
            + round((max(v.cost_per_hour for v in vehicles) + late) * PER_SECOND) * horizon + even_cost + 1)
    lowest = min(j.priority for j in jobs)
    for n, job in enumerate(jobs):
        index = job_index[n]
        if len(allowed[job.id]) < len(vehicles):  # -1 keeps "unperformed" possible
            routing.VehicleVar(index).SetValues([-1, *allowed[job.id]])
        if job.id not in locked:
            routing.AddDisjunction([index], unit * (1 + job.priority - lowest))

    search = pywrapcp.DefaultRoutingSearchParameters()
    search.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    search.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    search.time_limit.FromMilliseconds(max(1, round(params.time_limit_s * 1000)))
    routing.CloseModelWithParameters(search)
    routing.solver().ReSeed(params.seed)
    began = time.monotonic()

    def search_from(start: pywrapcp.Assignment | None, share: float) -> tuple[int, list[list[Step]]] | None:
        """Search from ``start`` (None: the first-solution heuristic) for ``share`` of the time
        limit, or what is left of it: (objective, each vehicle's steps), None if nothing found."""
        left_s = params.time_limit_s - (time.monotonic() - began)
        search.time_limit.FromMilliseconds(max(1, round(min(left_s, share * params.time_limit_s) * 1000)))
        found = (routing.SolveWithParameters(search) if start is None
                 else routing.SolveFromAssignmentWithParameters(start, search) or start)
        if found is None:
            return None
        return found.ObjectiveValue(), [_steps(routing, manager, found, nodes, clock, m, breaks[m])
                                        for m in range(len(vehicles))]

    start = None
    if any(v.planned for v in vehicles):
        start = _read_routes(routing, job_index,
                             _planned_routes(problem, nodes, vehicles, allowed, transits, depot_node, horizon))
    plans = []
    if start is not None and len(jobs) <= SPLIT_JOBS_PER_S * params.time_limit_s:
        plans.append(search_from(None, 0.5))  # small: a fresh plan too, it may reorder a late route better
    plans.append(search_from(start, 1.0))
    if not any(plans):  # never "no solution" while the locked stops alone make one: search on from them
        start = _read_routes(routing, job_index, [[position[j] for j in v.locked if j in position] for v in vehicles])
        plans.append(search_from(start, 1.0) if start is not None else None)
    best = min((p for p in plans if p is not None), default=None, key=lambda p: p[0])

    routes: list[Route] = []
    dropped = f"solver found no solution (routing status {routing.status()})"
    if best is not None:
        dropped = NO_ROOM
        for v, steps in zip(vehicles, best[1], strict=True):
            if any(isinstance(s, Job) for s in steps):
                routes.append(schedule_route(problem, v, steps))
    served = {visit.job_id for r in routes for visit in r.stops}
    unassigned = {u.job_id: u for u in eligible.unassigned}
    unassigned |= {j.id: Unassigned(job_id=j.id, reason=dropped) for j in jobs if j.id not in served}
    return Solution(routes=tuple(routes),
                    unassigned=tuple(unassigned[j.id] for j in problem.jobs if j.id in unassigned))


def _node_distances(problem: Problem, nodes: _Nodes) -> np.ndarray:
    at = np.asarray(nodes.locations)
    return np.asarray(problem.distance_matrix(), dtype=np.float64)[np.ix_(at, at)]


def _costs(routing: pywrapcp.RoutingModel, metres: np.ndarray, vehicles: Sequence[Vehicle]) -> int:
    """Arc costs per vehicle (one matrix per distinct cost per km), fixed costs; returns the
    costliest arc."""
    by_rate: dict[float, int] = {}
    longest = 0
    for m, v in enumerate(vehicles):
        if v.cost_per_km not in by_rate:
            cost = np.rint(metres * (v.cost_per_km * COST_SCALE / 1000)).astype(np.int64)
            longest = max(longest, int(cost.max()))
            by_rate[v.cost_per_km] = routing.RegisterTransitMatrix(cost.tolist())
        routing.SetArcCostEvaluatorOfVehicle(by_rate[v.cost_per_km], m)
        routing.SetFixedCostOfVehicle(round(v.fixed_cost * COST_SCALE), m)
    return longest


def _travel_key(problem: Problem, vehicle: Vehicle) -> tuple[str, object]:
    """Vehicles with equal keys have equal travel times (see Problem.travel_s)."""
    if vehicle.profile and vehicle.profile in problem.durations:
        return ("profile", vehicle.profile)
    return ("speed", vehicle.speed_mps)


def _time(problem: Problem, routing: pywrapcp.RoutingModel, nodes: _Nodes, metres: np.ndarray,
          vehicles: Sequence[Vehicle], job_index: Sequence[int],
          horizon: int) -> tuple[pywrapcp.RoutingDimension, list[list[list[int]]]]:
    """The time dimension, and per model vehicle its node-to-node transit (service at the origin
    + travel), for checking a warm start."""
    at = np.asarray(nodes.locations)
    service = np.asarray(nodes.service, dtype=np.int64)[:, None]
    by_key: dict[tuple[str, object], tuple[int, list[list[int]]]] = {}
    for v in vehicles:
        key = _travel_key(problem, v)
        if key in by_key:
            continue
        if key[0] == "profile":
            travel = np.asarray(problem.durations[v.profile], dtype=np.int64)[np.ix_(at, at)]
        else:
            travel = np.ceil(metres / v.speed_mps).astype(np.int64)  # = travel_seconds, element-wise
        transit = (service + travel).tolist()
        by_key[key] = (routing.RegisterTransitMatrix(transit), transit)
    keys = [_travel_key(problem, v) for v in vehicles]
    routing.AddDimensionWithVehicleTransits([by_key[k][0] for k in keys], horizon, horizon, False, "time")
    clock = routing.GetDimensionOrDie("time")
    for index, job in zip(job_index, nodes.jobs, strict=True):
        cumul = clock.CumulVar(index)
        if job.hard_window:
            cumul.SetRange(job.window_start_s, job.window_end_s)
        else:
            cumul.SetRange(job.window_start_s, horizon)
            clock.SetCumulVarSoftUpperBound(index, job.window_end_s, round((job.late_cost_per_hour or 0.0) * PER_SECOND))
    for m, v in enumerate(vehicles):
        clock.CumulVar(routing.Start(m)).SetRange(v.shift_start_s, v.shift_end_s)
        clock.CumulVar(routing.End(m)).SetRange(v.shift_start_s, v.shift_end_s)
        clock.SetSpanCostCoefficientForVehicle(round(v.cost_per_hour * PER_SECOND), m)
    return clock, [by_key[k][1] for k in keys]


def _breaks(routing: pywrapcp.RoutingModel, manager: pywrapcp.RoutingIndexManager, nodes: _Nodes,
            vehicles: Sequence[Vehicle], clock: pywrapcp.RoutingDimension) -> list[list[tuple[Break, pywrapcp.IntervalVar]]]:
    """Per model vehicle, (Break, interval variable) pairs. A break fits inside the shift (the
    screen drops vehicles whose breaks cannot) and may not overlap a visit's service."""
    out: list[list[tuple[Break, pywrapcp.IntervalVar]]] = [[] for _ in vehicles]
    if not any(v.breaks for v in vehicles):
        return out
    solver = routing.solver()
    visit = [nodes.service[manager.IndexToNode(i)] for i in range(routing.Size())]
    for m, v in enumerate(vehicles):
        for b in v.breaks:
            earliest = max(b.earliest_start_s, v.shift_start_s)
            latest = min(b.latest_start_s, v.shift_end_s - b.duration_s)
            out[m].append((b, solver.FixedDurationIntervalVar(earliest, latest, b.duration_s, False, f"{v.id}/{b.id}")))
        if out[m]:
            clock.SetBreakIntervalsOfVehicle([interval for _, interval in out[m]], m, visit)
    return out


def _loads(problem: Problem, routing: pywrapcp.RoutingModel, nodes: _Nodes, vehicles: Sequence[Vehicle],
           job_index: Sequence[int], reload_index: Sequence[int]) -> None:
    """One load model per capacity dimension that has any demand (see the module docstring)."""
    pickups = problem.pickups
    solver = routing.solver()
    others = len(nodes.locations) - len(nodes.jobs)  # reload and depot nodes
    reloads = set(reload_index)
    for dim in range(len(vehicles[0].capacity)):
        caps = [scaled_capacity(v.capacity[dim]) for v in vehicles]
        top = max(caps)
        hub = [0 if j.pickup_id is not None or j.id in pickups else scaled_demand(j.demand[dim]) for j in nodes.jobs]
        pair = [0 if j.pickup_id is None and j.id not in pickups else scaled_demand(j.demand[dim]) for j in nodes.jobs]
        sign = [1 if j.id in pickups else -1 for j in nodes.jobs]
        slack = top if reloads else 0
        if not any(pair):
            if any(hub):  # goods loaded at the hub only: count what was delivered this trip, reset at reloads
                transit = hub + [-top] * len(reload_index) + [0] * (others - len(reload_index))
                routing.AddDimensionWithVehicleCapacity(routing.RegisterUnaryTransitVector(transit), slack, caps, True,
                                                        f"load_{dim}")
            continue
        moves = [s * d for s, d in zip(sign, pair, strict=True)]
        if not any(hub):  # pairs only: what was picked up and not yet dropped, kept over reloads
            routing.AddDimensionWithVehicleCapacity(routing.RegisterUnaryTransitVector(moves + [0] * others), 0, caps,
                                                    True, f"load_{dim}")
            continue
        remaining = [-d for d in hub] + [0] * others
        load = [m - h for m, h in zip(moves, hub, strict=True)] + [0] * others
        routing.AddDimension(routing.RegisterUnaryTransitVector(remaining), slack, top, False, f"hub_goods_{dim}")
        routing.AddDimensionWithVehicleCapacity(routing.RegisterUnaryTransitVector(load), slack, caps, False,
                                                f"load_{dim}")
        rest, carried = routing.GetDimensionOrDie(f"hub_goods_{dim}"), routing.GetDimensionOrDie(f"load_{dim}")
        for m in range(len(vehicles)):
            rest.CumulVar(routing.End(m)).SetValue(0)
            solver.Add(carried.CumulVar(routing.Start(m)) == rest.CumulVar(routing.Start(m)))
        for index in reload_index:
            rest.CumulVar(index).SetValue(0)
            solver.Add(carried.SlackVar(index) == rest.SlackVar(index))
        if reloads:  # only a reload loads goods
            for index in range(routing.Size()):
                if index not in reloads:
                    rest.SlackVar(index).SetValue(0)
                    carried.SlackVar(index).SetValue(0)


def _pairs(routing: pywrapcp.RoutingModel, clock: pywrapcp.RoutingDimension, jobs: Sequence[Job],
           job_index: Sequence[int]) -> None:
    index = {j.id: job_index[n] for n, j in enumerate(jobs)}
    solver = routing.solver()
    for drop in jobs:
        if drop.pickup_id is None:
            continue
        pickup, delivery = index[drop.pickup_id], index[drop.id]  # the screen keeps pairs whole
        routing.AddPickupAndDelivery(pickup, delivery)
        solver.Add(routing.VehicleVar(pickup) == routing.VehicleVar(delivery))
        solver.Add(clock.CumulVar(pickup) <= clock.CumulVar(delivery))


def _stability(routing: pywrapcp.RoutingModel, nodes: _Nodes, vehicles: Sequence[Vehicle],
               allowed: dict[str, list[int]]) -> None:
    """At most ``max_new_stops`` routed jobs not in the vehicle's planned route: a count of new
    stops per vehicle, capped.

    Every count dimension has one transit for all vehicles: OR-Tools 9.15 finds no first solution
    at all (routing status 3) when a dimension has per-vehicle unary transits and some job must be
    dropped (google/or-tools#5283). Capped vehicles share a count whenever they agree on every job
    they may serve (new or planned), so a re-plan whose jobs are on board of their riders needs one."""
    capped = [m for m, v in enumerate(vehicles) if v.max_new_stops is not None]
    if not capped:
        return
    serves: list[list[int]] = [[] for _ in vehicles]  # per model vehicle, the job nodes it may serve
    for n, j in enumerate(nodes.jobs):
        for m in allowed[j.id]:
            serves[m].append(n)
    counts: list[tuple[set[int], set[int], list[int]]] = []  # (nodes counted 1, nodes counted 0, vehicles)
    for m in capped:
        planned = set(vehicles[m].planned)
        new = {n for n in serves[m] if nodes.jobs[n].id not in planned}
        kept = set(serves[m]) - new
        shared = next((c for c in counts if not (new & c[1] or kept & c[0])), None)
        if shared is None:
            counts.append((new, kept, [m]))
        else:
            shared[0].update(new)
            shared[1].update(kept)
            shared[2].append(m)
    others = [0] * (len(nodes.locations) - len(nodes.jobs))
    for k, (new, _, members) in enumerate(counts):
        transit = [int(n in new) for n in range(len(nodes.jobs))] + others
        caps = [len(nodes.jobs)] * len(vehicles)
        for m in members:
            caps[m] = vehicles[m].max_new_stops or 0
        routing.AddDimensionWithVehicleCapacity(routing.RegisterUnaryTransitVector(transit), 0, caps, True,
                                                f"new_stops_{k}")


def _even_workload(problem: Problem, routing: pywrapcp.RoutingModel, nodes: _Nodes, vehicles: Sequence[Vehicle],
                   arc_cost: int) -> int:
    """A soft cap of ceil(jobs / vehicles) stops per vehicle; each stop over it costs as much as
    the costliest arc, so a stop moves to another vehicle unless that costs more. Returns the
    cost of one stop over the cap (0 when the problem does not ask for even workload)."""
    if not problem.even_workload:
        return 0
    ones = [1] * len(nodes.jobs) + [0] * (len(nodes.locations) - len(nodes.jobs))
    routing.AddDimension(routing.RegisterUnaryTransitVector(ones), 0, len(nodes.jobs), True, "stops")
    stops = routing.GetDimensionOrDie("stops")
    target = math.ceil(len(nodes.jobs) / len(vehicles))
    coefficient = max(arc_cost, 1)
    for m in range(len(vehicles)):
        stops.SetCumulVarSoftUpperBound(routing.End(m), target, coefficient)
    return coefficient


def _planned_routes(problem: Problem, nodes: _Nodes, vehicles: Sequence[Vehicle], allowed: dict[str, list[int]],
                    transits: Sequence[Sequence[Sequence[int]]], depot_node: dict[int, int],
                    horizon: int) -> list[list[int]]:
    """Per model vehicle, the job nodes of its planned route it can still do in that order, as a
    warm start: its locked stops, then each planned stop kept if the route so far still meets
    every hard window, the shift and the capacity of one trip with it (a pair only whole). A
    rider running late keeps the stops it still makes and the search re-inserts the others,
    instead of the whole plan being thrown away. Breaks are left to OR-Tools to check."""
    position = {j.id: n for n, j in enumerate(nodes.jobs)}
    pickups = problem.pickups
    drop_of = {j.pickup_id: position[j.id] for j in nodes.jobs if j.pickup_id is not None}
    paired = [j.pickup_id is not None or j.id in pickups for j in nodes.jobs]
    dims = range(len(vehicles[0].capacity))
    hub = [[0 if paired[n] else scaled_demand(j.demand[d]) for d in dims] for n, j in enumerate(nodes.jobs)]
    change = [[(1 if j.id in pickups else -1) * scaled_demand(j.demand[d]) for d in dims] for j in nodes.jobs]

    def doable(m: int, route: Sequence[int]) -> bool:
        v, transit = vehicles[m], transits[m]
        at, t = depot_node[v.start], v.shift_start_s
        for n in route:
            job = nodes.jobs[n]
            t = max(t + transit[at][n], job.window_start_s)
            if t > (job.window_end_s if job.hard_window else horizon):
                return False
            at = n
        if t + transit[at][depot_node[v.end]] > v.shift_end_s:
            return False
        for d in dims:
            cap = scaled_capacity(v.capacity[d])
            load = sum(hub[n][d] for n in route)
            if load > cap:
                return False
            for n in route:
                load += change[n][d]
                if load > cap:
                    return False
        return True

    taken: set[int] = set()
    routes = []
    for m, v in enumerate(vehicles):
        locked = [position[j] for j in v.locked if j in position]
        candidates = [position[j] for j in v.planned
                      if j in position and j not in v.locked and m in allowed[j] and position[j] not in taken]
        left_out: set[int] = set()
        while True:
            route = list(locked)
            for n in candidates:
                job = nodes.jobs[n]
                if n in left_out or (job.pickup_id is not None and position[job.pickup_id] not in route):
                    continue
                if job.id in pickups and drop_of[job.id] not in candidates:
                    continue
                if doable(m, [*route, n]):
                    route.append(n)
            orphans = {n for n in route if nodes.jobs[n].id in pickups and drop_of[nodes.jobs[n].id] not in route}
            if not orphans - set(locked):  # a pickup whose drop did not fit goes, and the rest is redone
                break
            left_out |= orphans - set(locked)
        taken.update(route)
        routes.append(route)
    return routes


def _read_routes(routing: pywrapcp.RoutingModel, job_index: Sequence[int],
                 routes: Sequence[Sequence[int]]) -> pywrapcp.Assignment | None:
    """Routes of job nodes as a first solution, or None when they break a rule."""
    return routing.ReadAssignmentFromRoutes([[job_index[n] for n in route] for route in routes], True)


def _steps(routing: pywrapcp.RoutingModel, manager: pywrapcp.RoutingIndexManager, assignment: pywrapcp.Assignment,
           nodes: _Nodes, clock: pywrapcp.RoutingDimension, m: int, breaks: Sequence[tuple[Break, pywrapcp.IntervalVar]]) -> list[Step]:
    """Vehicle ``m``'s visits in order, each break placed after the visits that end before it
    starts (the solver never lets a break overlap a visit)."""
    visits: list[Step] = []
    done_s: list[int] = []  # when each step's visit ends
    index = assignment.Value(routing.NextVar(routing.Start(m)))
    while not routing.IsEnd(index):
        node = manager.IndexToNode(index)
        visits.append(Reload() if nodes.is_reload(node) else nodes.jobs[node])
        done_s.append(assignment.Value(clock.CumulVar(index)) + nodes.service[node])
        index = assignment.Value(routing.NextVar(index))
    taken = sorted(((assignment.StartValue(interval), b) for b, interval in breaks), key=lambda t: t[0])
    out: list[Step] = []
    for k, step in enumerate([*visits, None]):
        out.extend(b for start_s, b in taken if sum(d <= start_s for d in done_s) == k)
        if step is not None:
            out.append(step)
    return out
