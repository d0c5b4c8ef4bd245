"""Benchmark the solver on Solomon VRPTW instances against best-known solutions and peer solvers.

Everything is in the DIMACS convention (see :mod:`solver.solomon`): the gap is to the
``dist_trunc1`` best-known distance. Every plan, ours and the peers', is checked by
:func:`solver.verify.verify` from the instance data. Peers (PyVRP, VROOM via pyvroom) are optional
benchmark extras (``pip install milestream[bench]``): a peer whose package is missing is skipped
with a message, never an error. Each peer gets the same wall-clock limit and one thread, and sees the
same integer data as our solver (every distance, time and demand in tenths of a Solomon unit).

This is a benchmark, not a test: it takes ``time_limit`` per instance and solver.
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from solver import SolveParams, solomon, solve
from solver.solomon import SCALE, Bks, Instance, truncated_tenths
from solver.verify import verify

OURS = "milestream"
PEERS = {"pyvrp": "pyvrp", "vroom": "vroom"}  # peer name -> module it needs


@dataclass(frozen=True, slots=True)
class Run:
    solver: str
    instance: str
    vehicles: int
    distance: float  # recomputed by verify(), Solomon units, truncated arcs
    seconds: float  # wall time of the whole call, building the model included
    problems: list[str] = field(default_factory=list)  # from verify(); empty = feasible
    gap: float | None = None  # % above the best-known distance

    @property
    def ok(self) -> bool:
        return not self.problems


def missing_peer(name: str) -> str | None:
    """Why ``name`` cannot run here (None if it can)."""
    if name not in PEERS:
        return f"unknown peer {name!r} (known: {', '.join(PEERS)})"
    if importlib.util.find_spec(PEERS[name]) is None:
        return f"peer {name} skipped: its package is not installed (pip install 'milestream[bench]')"
    return None


def _ints(instance: Instance) -> tuple[list[list[int]], list[solomon.Customer]]:
    nodes = list(instance.nodes())
    return [[truncated_tenths(a, b) for b in nodes] for a in nodes], nodes


def _t(x: float) -> int:
    return round(x * SCALE)


def run_ours(instance: Instance, time_limit: float, seed: int = 0) -> list[list[int]]:
    problem, numbers = solomon.to_problem(instance)
    routes, _ = solomon.plan(solve(problem, SolveParams(time_limit_s=time_limit, seed=seed)), numbers)
    return routes


def run_pyvrp(instance: Instance, time_limit: float, seed: int = 0) -> list[list[int]]:
    from pyvrp import Model
    from pyvrp.stop import MaxRuntime

    matrix, nodes = _ints(instance)
    m = Model()
    depot_c = instance.depot
    locations = [m.add_location(_t(c.x), _t(c.y)) for c in nodes]
    depot = m.add_depot(locations[0], tw_early=_t(depot_c.ready), tw_late=_t(depot_c.due))
    m.add_vehicle_type(num_available=instance.fleet, capacity=_t(instance.capacity), start_depot=depot,
                       end_depot=depot, tw_early=_t(depot_c.ready), tw_late=_t(depot_c.due))
    for c, loc in zip(nodes[1:], locations[1:], strict=True):
        m.add_client(loc, delivery=_t(c.demand), service_duration=_t(c.service), tw_early=_t(c.ready),
                     tw_late=_t(c.due))
    for a, la in enumerate(locations):
        for b, lb in enumerate(locations):
            if a != b:
                m.add_edge(la, lb, distance=matrix[a][b], duration=matrix[a][b])
    result = m.solve(stop=MaxRuntime(time_limit), seed=seed, display=False)
    # A client activity's idx counts clients from 0, in the order added.
    return [[nodes[1 + a.idx].number for a in route if a.is_client()] for route in result.best.routes()]


def run_vroom(instance: Instance, time_limit: float, seed: int = 0) -> list[list[int]]:
    import numpy as np
    import vroom

    matrix, nodes = _ints(instance)
    depot = instance.depot
    problem = vroom.Input()
    problem.set_durations_matrix(profile="car", matrix_input=np.array(matrix, dtype=np.uint32))  # cost = duration
    problem.add_vehicle([vroom.Vehicle(k + 1, start=0, end=0, capacity=[_t(instance.capacity)],
                                       time_window=vroom.TimeWindow(_t(depot.ready), _t(depot.due)))
                         for k in range(instance.fleet)])
    problem.add_job([vroom.Job(i, location=i, delivery=[_t(c.demand)], default_service=_t(c.service),
                               time_windows=[vroom.TimeWindow(_t(c.ready), _t(c.due))])
                     for i, c in enumerate(nodes) if i > 0])
    solution = problem.solve(exploration_level=5, nb_threads=1, timeout=timedelta(seconds=time_limit)).to_dict()
    return [[nodes[s["id"]].number for s in r["steps"] if s["type"] == "job"] for r in solution["routes"]]


RUNNERS: dict[str, Callable[[Instance, float, int], list[list[int]]]] = {
    OURS: run_ours, "pyvrp": run_pyvrp, "vroom": run_vroom}


def run(solver_name: str, instance: Instance, time_limit: float, bks: Bks | None, seed: int = 0) -> Run:
    started = time.perf_counter()
    try:
        routes = RUNNERS[solver_name](instance, time_limit, seed)
    except Exception as exc:  # a peer crashing is a result to report, not a reason to stop the benchmark
        return Run(solver_name, instance.name, 0, 0.0, time.perf_counter() - started,
                   [f"{type(exc).__name__}: {exc}"])
    seconds = time.perf_counter() - started
    verdict = verify(instance, routes)
    gap = 100 * (verdict.distance - bks.distance) / bks.distance if bks and verdict.ok else None
    return Run(solver_name, instance.name, verdict.vehicles, verdict.distance, seconds, verdict.problems, gap)


@dataclass(frozen=True, slots=True)
class Summary:
    solver: str
    instances: int
    feasible: int
    mean_gap: float | None  # over feasible runs with a best-known solution
    median_gap: float | None
    total_seconds: float
    time_ratio: float | None  # total wall time / ours


def summarize(runs: Iterable[Run], solvers: list[str]) -> list[Summary]:
    runs = list(runs)
    totals = {s: sum(r.seconds for r in runs if r.solver == s) for s in solvers}
    out = []
    for s in solvers:
        mine = [r for r in runs if r.solver == s]
        gaps = [r.gap for r in mine if r.gap is not None]
        ours = totals.get(OURS) or 0.0
        out.append(Summary(s, len(mine), sum(r.ok for r in mine), statistics.fmean(gaps) if gaps else None,
                           statistics.median(gaps) if gaps else None, totals[s],
                           totals[s] / ours if ours > 0 else None))
    return out


def bench(paths: list[Path], bks: dict[str, Bks], time_limit: float, solvers: list[str], seed: int = 0,
          progress: Callable[[str], None] = lambda _: None) -> list[Run]:
    runs: list[Run] = []
    for k, path in enumerate(paths, start=1):
        instance = solomon.read(path)
        line = []
        for s in solvers:
            r = run(s, instance, time_limit, bks.get(instance.name), seed)
            runs.append(r)
            gap = f"{r.gap:+.2f}%" if r.gap is not None else "-"
            line.append(f"{s} {r.vehicles}v {r.distance:.1f} {gap} {r.seconds:.1f}s" + ("" if r.ok else " INFEASIBLE"))
        progress(f"[{k}/{len(paths)}] {instance.name}: " + " | ".join(line))
    return runs
