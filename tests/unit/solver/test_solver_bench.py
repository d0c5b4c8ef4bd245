"""The solver benchmark's bookkeeping: run order, parallel runs, VROOM-matched limits, summaries."""

from __future__ import annotations

from pathlib import Path

import pytest
import solomon_tiny as tiny

from benchmarks import solver as bench
from benchmarks.solomon import Bks, Instance
from benchmarks.solver import OURS, VROOM, Run

BKS = {"TINY8": Bks("TINY8", 3, 125.0, "test", "dist_trunc1")}


@pytest.fixture
def paths(tmp_path: Path) -> list[Path]:
    """TINY8, then a copy with a looser fleet (no best-known solution)."""
    out = []
    for name, fleet in (("TINY8", 3), ("LOOSE8", 5)):
        path = tmp_path / f"{name}.txt"
        path.write_bytes(tiny.text(name=name, fleet=fleet).encode())
        out.append(path)
    return out


def _one_route(instance: Instance, time_limit: float, seed: int = 0) -> list[list[int]]:
    """A fake VROOM that loads every customer on one vehicle: over capacity."""
    return [[c.number for c in instance.customers]]


def _one_each(instance: Instance, time_limit: float, seed: int = 0) -> list[list[int]]:
    """A fake VROOM that sends one vehicle per customer: feasible when the fleet is large enough."""
    return [[c.number] for c in instance.customers]


def test_runs_come_in_instance_then_solver_order_and_are_verified(paths: list[Path]) -> None:
    lines: list[str] = []
    runs = bench.bench(paths, BKS, 0.2, [OURS], progress=lines.append)
    assert [(r.instance, r.solver) for r in runs] == [("TINY8", OURS), ("LOOSE8", OURS)]
    assert all(r.ok for r in runs)
    assert runs[0].gap is not None and runs[0].gap >= 0 and runs[1].gap is None  # no best-known for LOOSE8
    assert [line.split(":")[0] for line in lines] == ["[1/2] TINY8", "[2/2] LOOSE8"]


def test_parallel_runs_keep_the_order(paths: list[Path]) -> None:
    lines: list[str] = []
    runs = bench.bench(paths * 2, BKS, 0.2, [OURS], progress=lines.append, jobs=2)
    assert [r.instance for r in runs] == ["TINY8", "LOOSE8", "TINY8", "LOOSE8"]
    assert all(r.ok for r in runs)
    assert [line.split(":")[0] for line in lines] == ["[1/4] TINY8", "[2/4] LOOSE8", "[3/4] TINY8", "[4/4] LOOSE8"]


def test_matching_vroom_gives_the_others_vroom_wall_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ROOMY8.txt"
    path.write_bytes(tiny.text(name="ROOMY8", fleet=8).encode())
    monkeypatch.setitem(bench.RUNNERS, VROOM, _one_each)
    ours, vroom = bench.bench([path], {}, 5.0, [OURS, VROOM], match_vroom=True)
    assert vroom.ok and vroom.time_limit == 5.0
    assert ours.ok and ours.time_limit == vroom.seconds < 5.0


def test_a_failed_vroom_run_leaves_the_others_the_full_limit(paths: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(bench.RUNNERS, VROOM, _one_route)
    ours, vroom = bench.bench(paths[:1], BKS, 0.3, [OURS, VROOM], match_vroom=True)
    assert not vroom.ok and any("capacity" in p for p in vroom.problems)  # verify() catches the fake plan
    assert ours.ok and ours.time_limit == 0.3


def test_bad_options_are_refused(paths: list[Path]) -> None:
    with pytest.raises(ValueError, match="jobs=0"):
        bench.bench(paths, BKS, 0.2, [OURS], jobs=0)
    with pytest.raises(ValueError, match="vroom peer"):
        bench.bench(paths, BKS, 0.2, [OURS], match_vroom=True)


def _run(solver: str, instance: str, distance: float, gap: float | None, seconds: float, ok: bool = True) -> Run:
    return Run(solver, instance, 3, distance, seconds, [] if ok else ["late"], gap)


def test_summary_and_its_plain_data() -> None:
    runs = [_run(OURS, "A", 101.0, 1.0, 2.0), _run(VROOM, "A", 103.0, 3.0, 1.0),
            _run(OURS, "B", 102.0, 2.0, 2.0), _run(VROOM, "B", 102.0, 2.0, 1.0),
            _run(OURS, "C", 110.0, 10.0, 2.0), _run(VROOM, "C", 0.0, None, 1.0, ok=False)]
    ours, vroom = bench.summarize(runs, [OURS, VROOM])
    assert (ours.feasible, ours.mean_gap, ours.median_gap, ours.max_gap) == (3, pytest.approx(13 / 3), 2.0, 10.0)
    assert (vroom.feasible, vroom.mean_gap, vroom.time_ratio, vroom.vehicles) == (2, 2.5, 0.5, 6)
    assert vroom.mean_gap_ratio == pytest.approx(2.5 / (13 / 3))
    data = bench.summary_dict(runs, [OURS, VROOM])
    assert [s["solver"] for s in data["solvers"]] == [OURS, VROOM]
    assert data["ours_versus"][VROOM] == {"instances": 2, "ours_better": 1, "ties": 1, "mean_gap_difference": -1.0}
