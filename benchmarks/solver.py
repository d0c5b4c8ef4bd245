"""Benchmark the solver on Solomon VRPTW instances against best-known solutions and peer solvers.

Everything is in the DIMACS convention (see :mod:`benchmarks.solomon`): the gap is to the
``dist_trunc1`` best-known distance. Every plan, ours and the peers', is checked by
:func:`benchmarks.verify.verify` from the instance data. Peers (PyVRP, VROOM via pyvroom) are optional
benchmark extras (``pip install milestream[bench]``): a peer whose package is missing is skipped
with a message, never an error. Each peer gets the same wall-clock limit and one thread, and sees the
same integer data as our solver (every distance, time and demand in tenths of a Solomon unit).
Our solver sends this class to its PyVRP engine (:mod:`solver.engines`), so the PyVRP peer shows
what our model mapping costs or gains against PyVRP used directly.

This is a benchmark, not a test: it takes ``time_limit`` per instance and solver. Runs may go in
parallel (``jobs``): each (instance, solver) run is a process of its own with one thread, so on a
machine with ``jobs`` free cores the runs do not slow each other down; the results and the
progress lines come in the same order whatever the parallelism.

With ``match_vroom`` VROOM runs first on each instance (to its own end, ``time_limit`` at most) and
every other solver then gets VROOM's measured wall time as its time limit: the question is then
who finds the better plan in the same time.
"""

from __future__ import annotations

import importlib
import importlib.util
import statistics
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path

from benchmarks import solomon
from benchmarks.solomon import SCALE, Bks, Instance, truncated_tenths
from benchmarks.verify import verify
from solver import SolveParams, solve

OURS = "milestream"
VROOM = "vroom"
PEERS = {"pyvrp": "pyvrp", VROOM: "vroom"}  # peer name -> module it needs


@dataclass(frozen=True, slots=True)
class Run:
    solver: str
    instance: str
    vehicles: int
    distance: float  # recomputed by verify(), Solomon units, truncated arcs
    seconds: float  # wall time of the whole call, building the model included
    problems: list[str] = field(default_factory=list)  # from verify(); empty = feasible
    gap: float | None = None  # % above the best-known distance
    time_limit: float = 0.0  # the limit it was given (VROOM's wall time, with match_vroom)

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


def run_ours(instance: Instance, time_limit: float, seed: int = 0, engine: str = "auto") -> list[list[int]]:
    problem, numbers = solomon.to_problem(instance)
    routes, _ = solomon.plan(solve(problem, SolveParams(time_limit_s=time_limit, seed=seed, engine=engine)), numbers)
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


def run(solver_name: str, instance: Instance, time_limit: float, bks: Bks | None, seed: int = 0,
        engine: str = "auto") -> Run:
    started = time.perf_counter()
    try:
        if solver_name == OURS:
            routes = run_ours(instance, time_limit, seed, engine)
        else:
            routes = RUNNERS[solver_name](instance, time_limit, seed)
    except Exception as exc:  # a peer crashing is a result to report, not a reason to stop the benchmark
        return Run(solver_name, instance.name, 0, 0.0, time.perf_counter() - started,
                   [f"{type(exc).__name__}: {exc}"], time_limit=time_limit)
    seconds = time.perf_counter() - started
    verdict = verify(instance, routes)
    gap = 100 * (verdict.distance - bks.distance) / bks.distance if bks and verdict.ok else None
    return Run(solver_name, instance.name, verdict.vehicles, verdict.distance, seconds, verdict.problems, gap,
               time_limit)


@dataclass(frozen=True, slots=True)
class Summary:
    solver: str
    instances: int
    feasible: int
    mean_gap: float | None  # over feasible runs with a best-known solution
    median_gap: float | None
    total_seconds: float
    time_ratio: float | None  # total wall time / ours
    max_gap: float | None = None
    vehicles: int = 0  # over feasible runs
    mean_gap_ratio: float | None = None  # mean gap / ours (below 1: closer to the best-known than ours)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def summarize(runs: Iterable[Run], solvers: list[str]) -> list[Summary]:
    runs = list(runs)
    totals = {s: sum(r.seconds for r in runs if r.solver == s) for s in solvers}
    gaps = {s: [r.gap for r in runs if r.solver == s and r.gap is not None] for s in solvers}
    ours_time, ours_gap = totals.get(OURS) or 0.0, statistics.fmean(gaps[OURS]) if gaps.get(OURS) else None
    out = []
    for s in solvers:
        mine = [r for r in runs if r.solver == s]
        g = gaps[s]
        mean = statistics.fmean(g) if g else None
        out.append(Summary(s, len(mine), sum(r.ok for r in mine), mean, statistics.median(g) if g else None,
                           totals[s], totals[s] / ours_time if ours_time > 0 else None, max(g) if g else None,
                           sum(r.vehicles for r in mine if r.ok),
                           mean / ours_gap if mean is not None and ours_gap else None))
    return out


def summary_dict(runs: Iterable[Run], solvers: list[str]) -> dict[str, object]:
    """The summary as plain data (for ``--json``): per solver, and how ours compares with each peer
    on the instances both solved."""
    runs = list(runs)
    by = {(r.instance, r.solver): r for r in runs}
    versus = {}
    for s in solvers:
        if s == OURS:
            continue
        both = [(by[i, OURS], by[i, s]) for i, x in by if x == OURS and (i, s) in by
                and by[i, OURS].gap is not None and by[i, s].gap is not None]
        versus[s] = {"instances": len(both),
                     "ours_better": sum(o.distance < p.distance for o, p in both),
                     "ties": sum(o.distance == p.distance for o, p in both),
                     "mean_gap_difference": statistics.fmean(o.gap - p.gap for o, p in both) if both else None}
    return {"solvers": [x.to_dict() for x in summarize(runs, solvers)], "ours_versus": versus}


def _warm_up() -> None:
    """Import the solvers before any run is timed (a worker process starts cold)."""
    for module in ("solver._pyvrp", "solver._ortools", *PEERS.values()):
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)


class _Serial(Executor):
    """Runs each task when it is submitted, in this process: ``jobs=1`` without a process pool."""

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def bench(paths: list[Path], bks: dict[str, Bks], time_limit: float, solvers: list[str], seed: int = 0,
          progress: Callable[[str], None] = lambda _: None, jobs: int = 1, match_vroom: bool = False,
          engine: str = "auto") -> list[Run]:
    """Every solver on every instance; the runs in instance order, then solver order.

    ``jobs``: at most this many runs at once, each in its own single-threaded process (1: one
    after the other, in this process). ``match_vroom``: VROOM runs first on each instance and the
    other solvers get its wall time as their limit (``solvers`` must include VROOM).
    ``engine``: our solver's engine (``auto``, ``ortools`` or ``pyvrp``)."""
    if jobs < 1:
        raise ValueError(f"jobs={jobs} must be >= 1")
    if match_vroom and VROOM not in solvers:
        raise ValueError("matching VROOM's wall time needs the vroom peer")
    instances = [solomon.read(p) for p in paths]
    first = [VROOM] if match_vroom else solvers
    later = [s for s in solvers if s not in first]
    results: dict[tuple[int, str], Run] = {}
    reported = 0

    def report() -> None:  # progress lines in instance order, as soon as an instance is complete
        nonlocal reported
        while reported < len(instances) and all((reported, s) in results for s in solvers):
            line = []
            for s in solvers:
                r = results[reported, s]
                gap = f"{r.gap:+.2f}%" if r.gap is not None else "-"
                line.append(f"{s} {r.vehicles}v {r.distance:.1f} {gap} {r.seconds:.1f}s"
                            + ("" if r.ok else " INFEASIBLE"))
            progress(f"[{reported + 1}/{len(instances)}] {instances[reported].name}: " + " | ".join(line))
            reported += 1

    if jobs == 1:
        _warm_up()
    pool: Executor = _Serial() if jobs == 1 else ProcessPoolExecutor(max_workers=jobs, initializer=_warm_up)
    order = {s: n for n, s in enumerate(solvers)}
    ready = [(k, order[s], time_limit) for k in range(len(instances)) for s in first]  # earliest instance first
    pending: dict[Future, tuple[int, int]] = {}
    with pool:
        while ready or pending:
            ready.sort(reverse=True)
            while ready and len(pending) < jobs:
                k, n, limit = ready.pop()
                instance = instances[k]
                pending[pool.submit(run, solvers[n], instance, limit, bks.get(instance.name), seed, engine)] = (k, n)
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in done:
                k, n = pending.pop(future)
                r = results[k, solvers[n]] = future.result()
                if match_vroom and solvers[n] == VROOM:  # the others get what VROOM took (all if it failed)
                    ready += [(k, order[s], r.seconds if r.ok else time_limit) for s in later]
            report()
    return [results[k, s] for k in range(len(instances)) for s in solvers]
