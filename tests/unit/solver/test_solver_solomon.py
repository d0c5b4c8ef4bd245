"""Solomon instances: parsing, the DIMACS truncation convention, the matrix problem and BKS rows."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import solomon_tiny as tiny

from benchmarks import solomon
from benchmarks.solomon import Customer
from solver import SolveParams, solve
from solver.matrix import MatrixProblem
from solver.model import Job, Vehicle, schedule_route

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "benchmarks" / "vrptw"


def test_parse_c101() -> None:
    inst = solomon.read(DATA / "solomon" / "C101.txt")
    assert (inst.name, inst.fleet, inst.capacity) == ("C101", 25, 200)
    assert len(inst.customers) == 100 and [c.number for c in inst.customers] == list(range(1, 101))
    assert (inst.depot.number, inst.depot.x, inst.depot.y, inst.depot.ready, inst.depot.due) == (0, 40, 50, 0, 1236)
    assert inst.customers[0] == Customer(1, 45, 68, 10, 912, 967, 90)


def test_read_bks_keeps_only_the_dimacs_rows() -> None:
    bks = solomon.read_bks(DATA / "solomon_bks.csv")
    assert len(bks) == 56 and {b.convention for b in bks.values()} == {"dist_trunc1"}
    assert (bks["C101"].vehicles, bks["C101"].distance) == (10, 827.3)


def test_parse_the_tiny_crlf_file() -> None:
    inst = solomon.parse(tiny.text())
    assert (inst.name, inst.fleet, inst.capacity, len(inst.customers)) == ("TINY8", 3, 30, 8)
    assert inst.customers[6] == Customer(7, 51, 51, 5, 200, 250, 10)


@pytest.mark.parametrize("text, match", [
    ("hello\nworld\n", "NUMBER CAPACITY"),
    (tiny.text(rows=[tiny.ROWS[0], (1, 60, 50, "ten", 0, 100, 10)]), "must be numbers"),
    (tiny.text(rows=[(0, 1, 2, 3)]), "7 columns"),
    (tiny.text(rows=tiny.ROWS[1:]), "depot"),
    (tiny.text(rows=[*tiny.ROWS, tiny.ROWS[1]]), "not unique"),
])
def test_parse_rejects_malformed_text(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        solomon.parse(text)


@pytest.mark.parametrize("a, b, expected", [
    ((0, 0), (1, 1), 1.4),  # sqrt(2) = 1.414...
    ((0, 0), (3, 4), 5.0),  # exact values stay exact
    ((50, 50), (70, 60), 22.3),  # sqrt(500) = 22.36...: truncated, not rounded
    ((51, 51), (50, 60), 9.0),  # sqrt(82) = 9.055...
    ((0, 0), (0.5, 0), 0.5),
])
def test_arcs_are_truncated_to_one_decimal(a: tuple[float, float], b: tuple[float, float], expected: float) -> None:
    ca, cb = Customer(0, *a, 0, 0, 0, 0), Customer(1, *b, 0, 0, 0, 0)
    assert solomon.truncated_distance(ca, cb) == expected == solomon.truncated_distance(cb, ca)
    assert solomon.truncated_tenths(ca, cb) == round(expected * 10)


def test_to_problem_works_in_tenths() -> None:
    inst = solomon.parse(tiny.text())
    problem, numbers = solomon.to_problem(inst)
    assert isinstance(problem, MatrixProblem)
    assert numbers == {str(n): n for n in range(1, 9)}
    assert len(problem.vehicles) == 3
    v = problem.vehicles[0]
    assert (v.shift_start_s, v.shift_end_s, v.capacity, v.speed_mps) == (0, 4000, (30,), 1.0)
    job = problem.jobs[2]  # customer 3: ready 30, due 200, service 10
    assert (job.location, job.window_start_s, job.window_end_s, job.service_s, job.demand) == (3, 300, 2000, 100, (10,))
    assert problem.distance_m(0, 3) == 223  # 22.3 in tenths
    assert problem.travel_s(v, 0, 3) == 223  # travel time = distance, exactly
    route = schedule_route(problem, v, [problem.jobs[7], problem.jobs[6]])  # 8 then 7
    assert (route.end_s, route.distance_m) == (2114, 204)  # back at 211.4 after 20.4 units


def test_matrix_problem_validates_and_pickles() -> None:
    jobs = (Job(id="a", location=1, demand=(1,), window_start_s=0, window_end_s=100, service_s=0),)
    vehicles = (Vehicle(id="v", start=0, end=0, capacity=(1,), shift_start_s=0, shift_end_s=100, speed_mps=1),)
    p = MatrixProblem(locations=((0.0, 0.0),) * 2, matrix=[[0, 7], [9, 0]], jobs=jobs, vehicles=vehicles)
    assert p.distance_matrix() == ((0.0, 7.0), (9.0, 0.0)) and p.distance_m(1, 0) == 9.0  # asymmetric is fine
    assert pickle.loads(pickle.dumps(p)) == p
    with pytest.raises(ValueError, match="2x2"):
        MatrixProblem(locations=((0.0, 0.0),) * 2, matrix=[[0]], jobs=jobs, vehicles=vehicles)
    with pytest.raises(ValueError, match=r"matrix\[0\]\[1\]"):
        MatrixProblem(locations=((0.0, 0.0),) * 2, matrix=[[0, -1], [1, 0]], jobs=jobs, vehicles=vehicles)
    with pytest.raises(ValueError, match="out of range"):  # the Problem checks still run
        MatrixProblem(locations=((0.0, 0.0),), matrix=[[0]], jobs=jobs, vehicles=vehicles)


def test_the_solver_is_exact_on_one_decimal_times() -> None:
    """Back at the depot at exactly 211.4 is on time for a depot due date of 211.4 (in tenths: 2114)."""
    rows = [(0, 50, 50, 0, 0, 400, 0), (8, 50, 60, 15, 0, 390, 10), (7, 51, 51, 5, 200, 250, 10)]
    problem, numbers = solomon.to_problem(solomon.parse(tiny.text(rows=rows, fleet=1)))
    problem = MatrixProblem(locations=problem.locations, matrix=problem.matrix, jobs=problem.jobs,
                            vehicles=(Vehicle(id="v", start=0, end=0, capacity=(30,), shift_start_s=0,
                                              shift_end_s=2114, speed_mps=1.0),))
    solution = solve(problem, SolveParams(time_limit_s=0.2))
    assert solomon.plan(solution, numbers) == ([[8, 7]], [])
    assert solution.violations(problem) == []
