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
  per-vehicle count of stops not in its ``planned`` route, capped. Warm start from the planned
  routes when they are feasible.
- Every other job sits in its own disjunction with a penalty larger than any insertion cost,
  growing with priority, so the solver drops a job only when it cannot be fitted, never to save
  cost, and a drop never makes the model infeasible.

Times in the returned routes are recomputed by :func:`solver.model.schedule_route` from the
visit order, with each break put where the solver took it; the solver's times bound them (earliest
times are never later), so they stay feasible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from solver.eligibility import Eligibility, scaled_capacity, scaled_demand
from solver.model import Break, Job, Problem, Reload, Route, Solution, Step, Unassigned, Vehicle, schedule_route
from solver.params import SolveParams

DROPPED = "not served within capacity/time limits: no room left on the vehicles that could serve it"
COST_SCALE = 36_000  # solver cost units per money unit
PER_SECOND = COST_SCALE / 3600  # a cost per hour, in solver units per second


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
    clock = _time(problem, routing, nodes, metres, vehicles, job_index, horizon)
    breaks = _breaks(routing, manager, nodes, vehicles, clock)
    _loads(problem, routing, nodes, vehicles, job_index, reload_index)
    _pairs(routing, clock, jobs, job_index)
    _stability(routing, nodes, vehicles)
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
    start = _planned_routes(routing, vehicles, jobs, job_index, allowed)
    assignment = routing.SolveFromAssignmentWithParameters(start, search) if start is not None else None
    if assignment is None:
        assignment = routing.SolveWithParameters(search)

    routes: list[Route] = []
    dropped = f"solver found no solution (routing status {routing.status()})"
    if assignment is not None:
        dropped = DROPPED
        for m, v in enumerate(vehicles):
            steps = _steps(routing, manager, assignment, nodes, clock, m, breaks[m])
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
          vehicles: Sequence[Vehicle], job_index: Sequence[int], horizon: int) -> pywrapcp.RoutingDimension:
    at = np.asarray(nodes.locations)
    service = np.asarray(nodes.service, dtype=np.int64)[:, None]
    by_key: dict[tuple[str, object], int] = {}
    for v in vehicles:
        key = _travel_key(problem, v)
        if key in by_key:
            continue
        if key[0] == "profile":
            travel = np.asarray(problem.durations[v.profile], dtype=np.int64)[np.ix_(at, at)]
        else:
            travel = np.ceil(metres / v.speed_mps).astype(np.int64)  # = travel_seconds, element-wise
        by_key[key] = routing.RegisterTransitMatrix((service + travel).tolist())
    routing.AddDimensionWithVehicleTransits([by_key[_travel_key(problem, v)] for v in vehicles], horizon, horizon,
                                            False, "time")
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
    return clock


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


def _stability(routing: pywrapcp.RoutingModel, nodes: _Nodes, vehicles: Sequence[Vehicle]) -> None:
    """At most ``max_new_stops`` routed jobs not in the vehicle's planned route."""
    if all(v.max_new_stops is None for v in vehicles):
        return
    others = [0] * (len(nodes.locations) - len(nodes.jobs))
    by_plan: dict[frozenset[str] | None, int] = {}
    for v in vehicles:
        key = None if v.max_new_stops is None else frozenset(v.planned)
        if key not in by_plan:
            new = [0] * len(nodes.jobs) if key is None else [int(j.id not in key) for j in nodes.jobs]
            by_plan[key] = routing.RegisterUnaryTransitVector(new + others)
    evaluators = [by_plan[None if v.max_new_stops is None else frozenset(v.planned)] for v in vehicles]
    caps = [len(nodes.jobs) if v.max_new_stops is None else v.max_new_stops for v in vehicles]
    routing.AddDimensionWithVehicleTransitAndCapacity(evaluators, 0, caps, True, "new_stops")


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


def _planned_routes(routing: pywrapcp.RoutingModel, vehicles: Sequence[Vehicle], jobs: Sequence[Job],
                    job_index: Sequence[int], allowed: dict[str, list[int]]) -> pywrapcp.Assignment | None:
    """The vehicles' planned routes as a first solution (jobs no longer routable left out), or
    None when there are none or they break a rule."""
    if not any(v.planned for v in vehicles):
        return None
    index = {j.id: job_index[n] for n, j in enumerate(jobs)}
    seen: set[str] = set()
    routes = []
    for m, v in enumerate(vehicles):
        route = [j for j in v.planned if j in index and m in allowed[j] and j not in seen]
        seen.update(route)
        routes.append([index[j] for j in route])
    return routing.ReadAssignmentFromRoutes(routes, True)


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
