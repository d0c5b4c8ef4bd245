"""The OR-Tools backend: the only module that imports ortools.

Model: one node per routable job, then one per distinct depot location (vehicles may share a
start or end). Arc cost is road distance in whole metres. Time is a dimension whose transit is
service at the origin + travel (one precomputed matrix per distinct speed), with slack for
waiting; job windows and vehicle shifts are ranges on its cumul variables. Each demand dimension
is a capacity dimension on the scaled integer values of :mod:`solver.eligibility`. Every job sits
in its own disjunction with a penalty larger than any detour, so the solver drops a job only when
it cannot be fitted, never to save distance, and a drop never makes the model infeasible.

Times in the returned routes are recomputed by :func:`solver.model.schedule_route` from the
visit order; the solver's cumul values bound them (earliest times are never later), so they
stay feasible.
"""

from __future__ import annotations

from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from solver.eligibility import Eligibility, scaled_capacity, scaled_demand
from solver.model import Problem, Route, Solution, Unassigned, schedule_route, travel_seconds
from solver.params import SolveParams

DROPPED = "not served within capacity/time limits: no room left on the vehicles that could serve it"


def solve(problem: Problem, eligible: Eligibility, params: SolveParams) -> Solution:
    jobs = [j for j in problem.jobs if j.id in eligible.allowed]
    fleet = sorted({i for j in jobs for i in eligible.allowed[j.id]})  # only vehicles some job could use
    vehicles = [problem.vehicles[i] for i in fleet]
    slot = {p: m for m, p in enumerate(fleet)}  # problem vehicle index -> model vehicle index

    depots = sorted({loc for v in vehicles for loc in (v.start, v.end)})
    depot_node = {loc: len(jobs) + k for k, loc in enumerate(depots)}
    node_loc = [j.location for j in jobs] + depots
    service = [j.service_s for j in jobs] + [0] * len(depots)
    manager = pywrapcp.RoutingIndexManager(
        len(node_loc), len(vehicles), [depot_node[v.start] for v in vehicles], [depot_node[v.end] for v in vehicles])
    routing = pywrapcp.RoutingModel(manager)

    dist = problem.distance_matrix()
    node_dist = [[dist[a][b] for b in node_loc] for a in node_loc]
    arc_m = [[round(d) for d in row] for row in node_dist]
    routing.SetArcCostEvaluatorOfAllVehicles(routing.RegisterTransitMatrix(arc_m))

    time_by_speed: dict[float, int] = {}
    for v in vehicles:
        if v.speed_mps not in time_by_speed:
            matrix = [[s + travel_seconds(d, v.speed_mps) for d in row] for s, row in zip(service, node_dist, strict=True)]
            time_by_speed[v.speed_mps] = routing.RegisterTransitMatrix(matrix)
    horizon = max(max(v.shift_end_s for v in vehicles), max(j.window_end_s for j in jobs))
    routing.AddDimensionWithVehicleTransits([time_by_speed[v.speed_mps] for v in vehicles], horizon, horizon, False, "time")
    clock = routing.GetDimensionOrDie("time")
    for node, job in enumerate(jobs):
        clock.CumulVar(manager.NodeToIndex(node)).SetRange(job.window_start_s, job.window_end_s)
    for m, v in enumerate(vehicles):
        clock.CumulVar(routing.Start(m)).SetRange(v.shift_start_s, v.shift_end_s)
        clock.CumulVar(routing.End(m)).SetRange(v.shift_start_s, v.shift_end_s)
        routing.SetFixedCostOfVehicle(round(v.fixed_cost), m)

    for dim in range(len(jobs[0].demand)):
        demand = [scaled_demand(j.demand[dim]) for j in jobs] + [0] * len(depots)
        if any(demand):
            routing.AddDimensionWithVehicleCapacity(
                routing.RegisterUnaryTransitVector(demand), 0, [scaled_capacity(v.capacity[dim]) for v in vehicles],
                True, f"capacity_{dim}")

    # A penalty above any insertion cost (a detour is at most two arcs, plus opening a vehicle).
    unit = 2 * max(max(row) for row in arc_m) + max(round(v.fixed_cost) for v in vehicles) + 1
    lowest = min(j.priority for j in jobs)
    for node, job in enumerate(jobs):
        index = manager.NodeToIndex(node)
        allowed = [slot[i] for i in eligible.allowed[job.id]]
        if len(allowed) < len(vehicles):  # -1 keeps "unperformed" possible
            routing.VehicleVar(index).SetValues([-1, *allowed])
        routing.AddDisjunction([index], unit * (1 + job.priority - lowest))

    search = pywrapcp.DefaultRoutingSearchParameters()
    search.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    search.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    search.time_limit.FromMilliseconds(max(1, round(params.time_limit_s * 1000)))
    routing.solver().ReSeed(params.seed)
    assignment = routing.SolveWithParameters(search)

    routes: list[Route] = []
    dropped = f"solver found no solution (routing status {routing.status()})"
    if assignment is not None:
        dropped = DROPPED
        for m, v in enumerate(vehicles):
            order = []
            index = assignment.Value(routing.NextVar(routing.Start(m)))
            while not routing.IsEnd(index):
                order.append(jobs[manager.IndexToNode(index)])
                index = assignment.Value(routing.NextVar(index))
            if order:
                routes.append(schedule_route(problem, v, order))
    served = {visit.job_id for r in routes for visit in r.visits}
    unassigned = {u.job_id: u for u in eligible.unassigned}
    unassigned |= {j.id: Unassigned(job_id=j.id, reason=dropped) for j in jobs if j.id not in served}
    return Solution(routes=tuple(routes),
                    unassigned=tuple(unassigned[j.id] for j in problem.jobs if j.id in unassigned))
