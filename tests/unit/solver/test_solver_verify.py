"""The independent Solomon plan checker: accepts a good plan, catches each kind of violation."""

from __future__ import annotations

import pytest
import solomon_tiny as tiny

from benchmarks import solomon
from benchmarks.verify import verify

GOOD = [[1, 2, 3], [4, 5, 6], [8, 7]]
# 10+10+10+22.3 (sqrt 500 = 22.36 truncated) twice, then 10 + 9.0 (sqrt 82) + 1.4 (sqrt 2)
GOOD_DISTANCE = 125.0


@pytest.fixture(scope="module")
def instance() -> solomon.Instance:
    return solomon.parse(tiny.text())


def test_accepts_a_feasible_plan_and_sums_truncated_arcs(instance: solomon.Instance) -> None:
    verdict = verify(instance, GOOD)
    assert verdict.ok and verdict.problems == []
    assert (verdict.distance, verdict.vehicles) == (GOOD_DISTANCE, 3)


def test_waiting_is_allowed_and_empty_routes_do_not_count(instance: solomon.Instance) -> None:
    verdict = verify(instance, [[], *GOOD, []])  # route [8, 7] arrives at 7 at 29 and waits until 200
    assert verdict.ok and verdict.vehicles == 3


@pytest.mark.parametrize("routes, expected", [
    ([[1, 2, 3], [4, 5, 6, 8], [7]], "route 2: load 45 exceeds capacity 30"),
    ([[1, 2, 3], [5, 6], [8, 7, 4]], "route 3: customer 4 starts service at 221, after its due date 100"),
    ([[1, 2, 3], [4, 5, 6], [8], [7]], "4 routes, but the fleet has only 3 vehicles"),
    ([[1, 2, 3], [4, 5, 6], [8]], "1 customers not visited: [7]"),
    ([[1, 2, 3], [4, 5, 6], [8, 7, 99]], "route 3: unknown customer 99"),
    ([[1, 2, 3], [4, 5, 6], [8, 7, 7]], "route 3: customer 7 is already visited by route 3"),
])
def test_catches_each_violation(instance: solomon.Instance, routes: list[list[int]], expected: str) -> None:
    assert expected in verify(instance, routes).problems


def test_late_return_to_the_depot_uses_truncated_times() -> None:
    rows = [(0, 50, 50, 0, 0, 211, 0), *tiny.ROWS[1:]]  # route [8, 7] is back at 211.4 (211.46 in double)
    late = verify(solomon.parse(tiny.text(rows=rows)), GOOD)
    assert late.problems == ["route 3: back at the depot at 211.4, after its due date 211"]
    rows[0] = (0, 50, 50, 0, 0, 211.4, 0)
    assert verify(solomon.parse(tiny.text(rows=rows)), GOOD).ok


def test_start_exactly_at_the_due_date_is_on_time() -> None:
    rows = [*tiny.ROWS]
    rows[4] = (4, 40, 50, 10, 0, 10, 10)  # depot -> 4 is 10 units: service starts at its due date
    assert verify(solomon.parse(tiny.text(rows=rows)), GOOD).ok
    rows[4] = (4, 40, 50, 10, 0, 9.9, 10)
    assert verify(solomon.parse(tiny.text(rows=rows)), GOOD).problems == [
        "route 2: customer 4 starts service at 10, after its due date 9.9"]
