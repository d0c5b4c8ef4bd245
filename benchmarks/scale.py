"""Benchmark planning at city scale: a seeded city day (:func:`benchmarks.city.city_day`, by default
2,000 orders and 80 riders of mixed vehicles) from one hub and from five, planned by
:func:`solver.decompose.solve_large` within a wall-clock budget that includes building the
problem, then checked by :meth:`Solution.violations` against the whole problem.

The target: a feasible plan within 60 s on two cores (one worker process per core). The check
itself is timed apart: it computes the full distance matrix of the day, which no part needs.

This is a benchmark, not a test: it takes about ``budget_s`` per hub count.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.city import city_day
from solver.decompose import PART_JOBS, solve_large
from solver.model import RELOAD
from solver.params import SolveParams

TARGET_S = 60.0


def _kind(reason: str) -> str:
    """A reason with its numbers blanked, so that reasons of the same kind count together."""
    return re.sub(r"\d+(\.\d+)?", "#", reason)


def run_case(*, orders: int, riders: int, hubs: int, seed: int, budget_s: float, processes: int, engine: str,
             part_jobs: int = PART_JOBS, progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Build, plan and check one city day; the figures as a plain dict (JSON-ready)."""
    started = time.perf_counter()
    problem = city_day(orders=orders, riders=riders, hubs=hubs, seed=seed)
    built_s = time.perf_counter() - started
    params = SolveParams(time_limit_s=budget_s, seed=seed, engine=engine)
    solution = solve_large(problem, params, processes, part_jobs=part_jobs, wall_budget_s=budget_s - built_s,
                           progress=lambda line: progress(f"{hubs} hub(s): {line}"))
    wall_s = time.perf_counter() - started
    checked = time.perf_counter()
    problems = solution.violations(problem)
    verify_s = time.perf_counter() - checked
    used = [r for r in solution.routes if r.stops]
    by_id = {v.id: v for v in problem.vehicles}
    return {
        "hubs": hubs,
        "jobs": len(problem.jobs),
        "vehicles": len(problem.vehicles),
        "routed": sum(len(r.stops) for r in used),
        "unassigned": len(solution.unassigned),
        "unassigned_reasons": dict(Counter(_kind(u.reason) for u in solution.unassigned).most_common()),
        "vehicles_used": len(used),
        "vehicles_used_by_kind": dict(Counter(by_id[r.vehicle_id].profile for r in used).most_common()),
        "trips": sum(1 + sum(v.kind == RELOAD for v in r.visits) for r in used),
        "distance_km": round(solution.distance_m() / 1000, 1),
        "cost": round(solution.cost(problem), 1),
        "build_s": round(built_s, 2),
        "wall_s": round(wall_s, 2),
        "verify_s": round(verify_s, 2),
        "feasible": not problems,
        "within_target": wall_s < TARGET_S,
        "violations": problems[:10],
    }


def run(*, orders: int = 2000, riders: int = 80, hubs: Sequence[int] = (1, 5), seed: int = 1, budget_s: float = 55.0,
        processes: int = 2, engine: str = "auto", part_jobs: int = PART_JOBS,
        progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """One case per hub count in ``hubs``; ``budget_s`` is each case's wall budget, building included."""
    cases = [run_case(orders=orders, riders=riders, hubs=h, seed=seed, budget_s=budget_s, processes=processes,
                      engine=engine, part_jobs=part_jobs, progress=progress) for h in hubs]
    return {"orders": orders, "riders": riders, "seed": seed, "budget_s": budget_s, "processes": processes,
            "engine": engine, "part_jobs": part_jobs, "target_s": TARGET_S, "cases": cases}


def report(result: dict[str, Any]) -> list[str]:
    """The figures of :func:`run` as lines for a terminal."""
    lines = [f"city day: {result['orders']} orders, {result['riders']} riders, seed {result['seed']}, engine "
             f"{result['engine']}, {result['processes']} processes, budget {result['budget_s']:g}s "
             f"(target: feasible in < {result['target_s']:g}s)"]
    for c in result["cases"]:
        kinds = ", ".join(f"{k} {n}" for k, n in c["vehicles_used_by_kind"].items())
        lines += [
            f"{c['hubs']} hub(s): {c['jobs']} jobs, {c['vehicles']} vehicles",
            f"  routed {c['routed']} ({100 * c['routed'] / max(1, c['jobs']):.1f}%), unassigned {c['unassigned']}",
            *(f"    {n} x {reason}" for reason, n in c["unassigned_reasons"].items()),
            f"  vehicles used {c['vehicles_used']} ({kinds}), {c['trips']} trips",
            f"  distance {c['distance_km']:.1f} km, cost {c['cost']:.1f}",
            f"  wall {c['wall_s']:.1f}s (building {c['build_s']:.2f}s), check {c['verify_s']:.1f}s, "
            f"feasible {'yes' if c['feasible'] else 'NO'}, within target {'yes' if c['within_target'] else 'NO'}",
            *(f"    violation: {v}" for v in c["violations"]),
        ]
    return lines
