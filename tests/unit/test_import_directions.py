"""Imports point one way: pure modules never load a framework, a driver or ``infra``, and
``projections`` never imports ``streams``. Each pure module is imported in a fresh interpreter
and its ``sys.modules`` inspected."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

PURE_MODULES = [
    "schemas", "schemas.events", "schemas.codec", "schemas.rules", "schemas.topics",
    "streams.lifecycle", "streams.otp", "streams.tracker", "streams.dispatch", "streams.ids",
    "streams.hygiene", "streams.eta", "streams.geofence", "streams.replan", "streams.alerts", "streams.notify",
    "projections.rows", "projections.kpi",
    "simulator.world", "simulator.driving", "simulator.truth",
]
FORBIDDEN = ("faust", "aiokafka", "confluent_kafka", "clickhouse_connect", "chdb", "ortools", "infra")

PROBE = """
import importlib, json, sys
name, forbidden = sys.argv[1], sys.argv[2].split(",")
try:
    importlib.import_module(name)
except BaseException as exc:
    print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
    raise SystemExit(0)
loaded = sorted({m for m in sys.modules for f in forbidden if m == f or m.startswith(f + ".")})
print(json.dumps({"loaded": loaded}))
"""


def _spawn(module: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", PROBE, module, ",".join(FORBIDDEN)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def probes() -> dict[str, dict[str, Any]]:
    """Every probe starts at once (each in its own fresh interpreter), then we collect."""
    procs = {m: _spawn(m) for m in [*PURE_MODULES, "infra.settings"]}
    results: dict[str, dict[str, Any]] = {}
    for module, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        lines = out.strip().splitlines()
        results[module] = json.loads(lines[-1]) if lines else {"error": f"no output; stderr: {err[-2000:]}"}
    return results


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_module_loads_no_framework_driver_or_infra(probes: dict[str, dict[str, Any]], module: str) -> None:
    result = probes[module]
    assert "error" not in result, f"importing {module} failed: {result['error']}"
    assert result["loaded"] == [], f"importing {module} loaded {result['loaded']}"


def test_the_probe_does_see_a_forbidden_import(probes: dict[str, dict[str, Any]]) -> None:
    """Control: importing infra itself shows up, so an empty list above means something."""
    assert "infra" in probes["infra.settings"]["loaded"]


def _imported_names(path: Path) -> set[str]:
    return _names_in(path.read_text(), str(path))


def _names_in(source: str, filename: str = "<src>") -> set[str]:
    tree = ast.parse(source, filename=filename)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _touches(names: set[str], package: str) -> set[str]:
    return {n for n in names if n == package or n.startswith(package + ".")}


@pytest.mark.parametrize("path", sorted((ROOT / "projections").rglob("*.py")), ids=lambda p: p.name)
def test_projections_never_import_streams(path: Path) -> None:
    bad = _touches(_imported_names(path), "streams")
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", sorted((ROOT / "schemas").glob("*.py")), ids=lambda p: p.name)
def test_schemas_import_nothing_of_ours_but_schemas(path: Path) -> None:
    names = _imported_names(path)
    ours = ("streams", "projections", "solver", "simulator", "infra")
    bad = {n for pkg in ours for n in _touches(names, pkg)}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_ast_scan_finds_imports_it_should() -> None:
    """Control: the scanner sees both import forms, including lazy ones inside functions."""
    source = "import streams.tracking\nfrom streams import lifecycle\ndef f():\n    import streams\n"
    assert _touches(_names_in(source), "streams") == {"streams.tracking", "streams", "streams.lifecycle"}
    assert _touches(_names_in("import streamsx\nfrom schemas import streams_like\n"), "streams") == set()
