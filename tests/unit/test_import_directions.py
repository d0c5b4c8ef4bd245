"""Imports point one way, checked by folder, not by a hand-kept list:

- every module under ``streams/domain/``, ``schemas/`` and the pure parts of ``solver/``,
  ``projections/`` and ``simulator/`` loads no framework, driver or ``infra`` (each imported in a
  fresh interpreter, its ``sys.modules`` inspected);
- nothing imports ``infra`` but the entry points (``infra/`` itself and ``__main__`` modules);
- ``schemas`` imports nothing of ours; ``projections`` never imports ``streams``; the domain never
  imports the stream edges.
"""

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
PACKAGES = ("schemas", "streams", "projections", "solver", "simulator", "infra", "benchmarks")
FORBIDDEN = ("faust", "aiokafka", "kafka", "confluent_kafka", "clickhouse_connect", "chdb", "ortools", "pyvrp", "infra")
# Modules that do I/O or drive an engine on purpose, inside otherwise pure folders.
EDGES_IN_PURE_FOLDERS = {"solver/_ortools.py", "solver/_pyvrp.py", "solver/__init__.py", "solver/engines.py",
                         "solver/decompose.py", "solver/reoptimise.py", "projections/writer.py",
                         "projections/store.py", "projections/ddl.py", "projections/__main__.py",
                         "simulator/runner.py"}
PURE_FOLDERS = ("schemas", "streams/domain", "solver", "projections", "simulator")


def _module(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _pure_files() -> list[Path]:
    files = [p for folder in PURE_FOLDERS for p in sorted((ROOT / folder).rglob("*.py"))]
    return [p for p in files if str(p.relative_to(ROOT)) not in EDGES_IN_PURE_FOLDERS]


PURE_MODULES = [_module(p) for p in _pure_files()]

PROBE = """
import importlib, json, sys
forbidden = sys.argv[1].split(",")
out = {}
for name in sys.argv[2:]:
    before = set(sys.modules)
    try:
        importlib.import_module(name)
    except BaseException as exc:
        out[name] = {"error": f"{type(exc).__name__}: {exc}"}
        continue
    out[name] = {"loaded": sorted({m for m in sys.modules for f in forbidden if m == f or m.startswith(f + ".")})}
print(json.dumps(out))
"""


def _probe(modules: list[str]) -> dict[str, dict[str, Any]]:
    """One fresh interpreter per module, a few at a time (a shared one would hide who loaded what)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    results: dict[str, dict[str, Any]] = {}
    procs = [(m, subprocess.Popen([sys.executable, "-c", PROBE, ",".join(FORBIDDEN), m], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)) for m in modules]
    for module, proc in procs:
        out, err = proc.communicate(timeout=120)
        lines = out.strip().splitlines()
        results.update(json.loads(lines[-1]) if lines else {module: {"error": f"no output; stderr: {err[-2000:]}"}})
    return results


@pytest.fixture(scope="module")
def probes() -> dict[str, dict[str, Any]]:
    return _probe([*PURE_MODULES, "infra.settings"])


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_module_loads_no_framework_driver_or_infra(probes: dict[str, dict[str, Any]], module: str) -> None:
    result = probes[module]
    assert "error" not in result, f"importing {module} failed: {result['error']}"
    assert result["loaded"] == [], f"importing {module} loaded {result['loaded']}"


def test_the_probe_does_see_a_forbidden_import(probes: dict[str, dict[str, Any]]) -> None:
    """Control: importing infra itself shows up, so an empty list above means something."""
    assert "infra" in probes["infra.settings"]["loaded"]


def test_the_domain_folder_is_found() -> None:
    """Control: the folder walk finds the domain's modules (a renamed folder would empty the rules)."""
    assert {"streams.domain.orders.lifecycle", "streams.domain.tracking.tracker",
            "streams.domain.dispatch.replan"} <= set(PURE_MODULES)


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


def _files(*folders: str) -> list[Path]:
    return [p for f in folders for p in sorted((ROOT / f).rglob("*.py"))]


def _ids(p: Path) -> str:
    return str(p.relative_to(ROOT))


@pytest.mark.parametrize("path", [p for p in _files(*PACKAGES) if p.parts[len(ROOT.parts)] != "infra"
                                  and p.name != "__main__.py"], ids=_ids)
def test_only_entry_points_import_infra(path: Path) -> None:
    bad = _touches(_names_in(path.read_text(), str(path)), "infra")
    assert not bad, f"{_ids(path)} imports {sorted(bad)}: settings and clients are passed in by the entry points"


@pytest.mark.parametrize("path", _files("projections"), ids=_ids)
def test_projections_never_import_streams(path: Path) -> None:
    bad = _touches(_names_in(path.read_text(), str(path)), "streams")
    assert not bad, f"{_ids(path)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", _files("schemas"), ids=_ids)
def test_schemas_import_nothing_of_ours_but_schemas(path: Path) -> None:
    names = _names_in(path.read_text(), str(path))
    bad = {n for pkg in PACKAGES if pkg != "schemas" for n in _touches(names, pkg)}
    assert not bad, f"{_ids(path)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", _files("streams/domain"), ids=_ids)
def test_the_domain_never_imports_the_edges(path: Path) -> None:
    names = _names_in(path.read_text(), str(path))
    # streams.errors is the package's one exception root (pure, no imports of its own)
    bad = ({n for n in _touches(names, "streams") if not n.startswith(("streams.domain", "streams.errors"))}
           | _touches(names, "benchmarks"))
    assert not bad, f"{_ids(path)} imports {sorted(bad)}"


def test_ast_scan_finds_imports_it_should() -> None:
    """Control: the scanner sees both import forms, including lazy ones inside functions."""
    source = "import streams.tracking\nfrom streams import lifecycle\ndef f():\n    import streams\n"
    assert _touches(_names_in(source), "streams") == {"streams.tracking", "streams", "streams.lifecycle"}
    assert _touches(_names_in("import streamsx\nfrom schemas import streams_like\n"), "streams") == set()
