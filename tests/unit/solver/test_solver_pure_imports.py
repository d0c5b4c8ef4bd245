"""The solver's pure and bench modules load no engine (OR-Tools, PyVRP), no peer solver and no infra."""

from __future__ import annotations

import json
import subprocess
import sys

MODULES = ["solver.matrix", "benchmarks.solomon", "benchmarks.verify", "solver.problem_json", "benchmarks.solver", "solver.engines",
           "solver.reoptimise", "benchmarks.reopt", "benchmarks.city", "solver.decompose", "benchmarks.scale",
           "solver.travel"]
FORBIDDEN = ("ortools", "pyvrp", "vroom", "infra")


def test_new_solver_modules_import_lightly() -> None:
    probe = (f"import importlib, json, sys\nfor m in {MODULES!r}: importlib.import_module(m)\n"
             f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN!r}))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30, check=True).stdout
    assert json.loads(out) == []
