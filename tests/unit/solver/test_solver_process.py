"""How the dispatcher uses the solver: import it without OR-Tools, run it in a spawned worker."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import solver_scenarios as sc

from solver import SolveParams, solve

ROOT = Path(__file__).resolve().parents[3]


def test_importing_the_model_does_not_load_ortools() -> None:
    code = (
        "import sys, solver.model, solver\n"
        "from solver import Problem, Vehicle, solve\n"
        "p = Problem(locations=((12.97, 77.59),), jobs=(), vehicles=(Vehicle(id='v', start=0, end=0, capacity=(1.0,),"
        " shift_start_s=0, shift_end_s=10, speed_mps=5.0),))\n"
        "assert solve(p).routes == ()\n"
        "print('ortools' in sys.modules, any(m.startswith('ortools') for m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_solve_runs_in_a_spawned_worker_process() -> None:
    problem = sc.three_stops_one_van()
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        solution = pool.submit(solve, problem, SolveParams(time_limit_s=0.2)).result(timeout=30)
    assert sorted(v.job_id for v in solution.routes[0].visits) == ["a", "b", "c"]
    assert solution.violations(problem) == []
