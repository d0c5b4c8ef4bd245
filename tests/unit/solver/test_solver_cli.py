"""`milestream solve` and `milestream bench solver` on tiny inputs (in-process, short time limits)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import solomon_tiny as tiny

from benchmarks import solomon
from benchmarks import solver as bench
from benchmarks.verify import verify
from infra.cli import main

KEYS = ["vehicles", "distance", "routes", "unassigned"]


@pytest.fixture
def tiny_file(tmp_path: Path) -> Path:
    path = tmp_path / "TINY8.txt"
    path.write_bytes(tiny.text().encode())
    return path


def test_solve_json_prints_a_plan_that_verifies(tiny_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["solve", str(tiny_file), "--time-limit", "0.3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == KEYS
    assert out["unassigned"] == []
    verdict = verify(solomon.parse(tiny.text()), out["routes"])
    assert verdict.problems == []
    assert (out["vehicles"], out["distance"]) == (verdict.vehicles, verdict.distance)
    assert sorted(n for r in out["routes"] for n in r) == list(range(1, 9))  # Solomon customer numbers


def test_solve_prints_routes_with_customer_numbers(tiny_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["solve", str(tiny_file), "--time-limit", "0.2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("TINY8: 8 customers, fleet 3 x capacity 30")
    assert "route 1: " in out


def test_solve_a_json_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({
        "locations": [[52.52, 13.40], [52.53, 13.41], [52.51, 13.42]],
        "matrix": [[0, 1000, 2000], [1000, 0, 1500], [2000, 1500, 0]],
        "vehicles": [{"id": "van", "start": 0, "end": 0, "capacity": [10], "shift_start_s": 0,
                      "shift_end_s": 3600, "speed_mps": 10}],
        "jobs": [{"id": "a", "location": 1, "demand": [4], "window_start_s": 0, "window_end_s": 3600, "service_s": 60},
                 {"id": "b", "location": 2, "demand": [9], "window_start_s": 0, "window_end_s": 3600, "service_s": 60}],
    }))
    assert main(["solve", str(path), "--time-limit", "0.2", "--json"]) == 1  # b does not fit alongside a
    out = json.loads(capsys.readouterr().out)
    assert list(out) == KEYS and out["vehicles"] == 1 and len(out["unassigned"]) == 1
    assert out["distance"] == {"a": 2000, "b": 4000}[out["routes"][0][0]]


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    ("just some text\n", "neither a JSON problem nor a Solomon instance"),
    ("{not json", "is not valid JSON"),
    ('{"locations": [], "trucks": []}', "unknown fields ['trucks']"),
    ('{"jobs": []}', "missing the field 'locations'"),
    ('{"locations": [[0, 0]], "vehicles": [{"id": "v"}]}', "missing"),
])
def test_solve_bad_file_is_one_sentence_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   content: str | None, message: str) -> None:
    path = tmp_path / "input"
    if content is not None:
        path.write_text(content)
    code = main(["solve", str(path), "--time-limit", "0.1"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    (tmp_path / "solomon").mkdir()
    (tmp_path / "solomon" / "TINY8.txt").write_bytes(tiny.text().encode())
    (tmp_path / "solomon_bks.csv").write_text("instance,vehicles,distance,source,convention\n"
                                              "TINY8,3,130.0,test,dist_double_lit\nTINY8,3,125.0,test,dist_trunc1\n")
    return tmp_path


def test_bench_json(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "solver", "--data-dir", str(data_dir), "--time-limit", "0.2", "--peers", "", "--json"])
    captured = capsys.readouterr()
    assert code == 0
    out = json.loads(captured.out)
    [row] = out["instances"]
    assert row["bks"] == {"vehicles": 3, "distance": 125.0}
    ours = row["results"]["milestream"]
    assert ours["feasible"] and ours["gap_pct"] == pytest.approx(100 * (ours["distance"] - 125) / 125)
    [summary] = out["solvers"]
    assert summary["solver"] == "milestream" and summary["time_ratio"] == 1.0 and summary["feasible"] == 1
    assert summary["mean_gap"] == pytest.approx(ours["gap_pct"]) and out["ours_versus"] == {}
    assert ours["time_limit"] == 0.2 and out["match_vroom"] is False
    assert "[1/1] TINY8: milestream" in captured.err


def test_bench_table_and_a_missing_peer_is_skipped(data_dir: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(bench.PEERS, "ghost", "no_such_module_for_milestream_tests")
    code = main(["bench", "solver", "--data-dir", str(data_dir), "--time-limit", "0.2", "--peers", "ghost"])
    captured = capsys.readouterr()
    assert code == 0
    assert "peer ghost skipped: its package is not installed" in captured.err
    assert "TINY8" in captured.out and "median gap%" in captured.out and "ghost" not in captured.out


@pytest.mark.parametrize("args, message", [
    (["--peers", "nosuch"], "unknown peer 'nosuch'"),
    (["--instances", "C999"], "no instance files for C999"),
    (["--time-limit", "0"], "--time-limit 0 must be a positive number of seconds"),
])
def test_bench_bad_arguments(data_dir: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    assert main(["bench", "solver", "--data-dir", str(data_dir), *args]) == 2
    assert message in capsys.readouterr().err


def test_bench_without_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "solver", "--data-dir", str(tmp_path)]) == 2
    assert "no benchmark data in" in capsys.readouterr().err


def test_match_vroom_needs_the_vroom_peer(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "solver", "--data-dir", str(data_dir), "--peers", "", "--match-vroom"]) == 2
    assert "--match-vroom needs the vroom peer" in capsys.readouterr().err


def test_bench_reopt_json_reports_locks_kept(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "reopt", "--runs", "1", "--stops", "12", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["locked_moved"] == 0 and out["violations"] == 0


def test_bench_scale_json_on_a_small_city(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "scale", "--orders", "40", "--riders", "4", "--hubs", "2", "--budget", "3",
                 "--processes", "1", "--engine", "ortools", "--json"])
    out = json.loads(capsys.readouterr().out)
    [case] = out["cases"]
    assert code == 0 and case["feasible"] and out["orders"] == 40


def test_solve_text_shows_breaks_and_reloads_json_keeps_job_ids(capsys: pytest.CaptureFixture[str]) -> None:
    # A bike carrying 2: a pickup-and-drop pair, three hub parcels (one with a soft window), a lunch break.
    path = Path(__file__).with_name("pair_break_two_trips.json")
    assert main(["solve", str(path), "--time-limit", "0.5"]) == 0
    text = capsys.readouterr().out
    assert "[reload]" in text and "[break lunch]" in text
    assert main(["solve", str(path), "--time-limit", "0.5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    [route] = out["routes"]
    assert sorted(route) == ["d", "h1", "h2", "h3", "p"] and route.index("p") < route.index("d")
