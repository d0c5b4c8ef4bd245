"""The JSON problem format: every model field, and clear errors for bad input."""

from __future__ import annotations

from typing import Any

import pytest

from solver.matrix import MatrixProblem
from solver.model import Break
from solver.problem_json import problem_from_json


def _full() -> dict[str, Any]:
    return {
        "locations": [[12.97, 77.59], [12.98, 77.60], [12.99, 77.61]],
        "durations": {"bike": [[0, 300, 600], [300, 0, 300], [600, 300, 0]]},
        "even_workload": True,
        "vehicles": [{"id": "b1", "start": 0, "end": 0, "capacity": [10, 40], "shift_start_s": 0,
                      "shift_end_s": 28800, "speed_mps": 4.2, "skills": ["cold_chain"], "profile": "bike",
                      "fixed_cost": 5, "cost_per_km": 0.4, "cost_per_hour": 9,
                      "breaks": [{"id": "lunch", "earliest_start_s": 12600, "latest_start_s": 16200,
                                  "duration_s": 1800}],
                      "max_trips": 3, "reload_at": 0, "reload_s": 300, "locked": ["p"], "planned": ["p", "d"],
                      "max_new_stops": 2}],
        "jobs": [{"id": "p", "location": 1, "demand": [1, 2], "window_start_s": 0, "window_end_s": 3600,
                  "service_s": 60},
                 {"id": "d", "location": 2, "demand": [1, 2], "window_start_s": 0, "window_end_s": 7200,
                  "service_s": 60, "pickup_id": "p", "late_cost_per_hour": 12.5, "priority": 2}],
    }


def test_every_field_reaches_the_model() -> None:
    problem = problem_from_json(_full())
    (bike,) = problem.vehicles
    assert bike.breaks == (Break(id="lunch", earliest_start_s=12600, latest_start_s=16200, duration_s=1800),)
    assert (bike.profile, bike.max_trips, bike.reload_at, bike.reload_s) == ("bike", 3, 0, 300)
    assert (bike.locked, bike.planned, bike.max_new_stops) == (("p",), ("p", "d"), 2)
    assert (bike.fixed_cost, bike.cost_per_km, bike.cost_per_hour, bike.skills) == (5, 0.4, 9, frozenset({"cold_chain"}))
    drop = problem.jobs[1]
    assert (drop.pickup_id, drop.late_cost_per_hour, drop.priority, drop.hard_window) == ("p", 12.5, 2, False)
    assert problem.pickups == frozenset({"p"}) and problem.even_workload
    assert problem.travel_s(bike, 0, 2) == 600  # from the profile's matrix, not distance / speed


def test_explicit_matrix_gives_a_matrix_problem_with_durations() -> None:
    data = _full() | {"matrix": [[0, 1000, 2000], [1000, 0, 1000], [2000, 1000, 0]]}
    problem = problem_from_json(data)
    assert isinstance(problem, MatrixProblem) and problem.distance_m(0, 2) == 2000
    assert problem.travel_s(problem.vehicles[0], 0, 1) == 300


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["vehicles"][0]["breaks"][0].pop("duration_s"), "vehicles[0].breaks[0] is missing the field"),
    (lambda d: d["vehicles"][0]["breaks"][0].update(minutes=3), "unknown fields ['minutes']"),
    (lambda d: d["vehicles"][0].update(breaks={"id": "x"}), "vehicles[0].breaks must be a JSON array"),
    (lambda d: d["jobs"][1].update(pickup_id="nope"), "pickup_id='nope' is not a job of the problem"),
    (lambda d: d["jobs"][1].update(demand=[2, 2]), "differs from its pickup's"),
    (lambda d: d["vehicles"][0].update(locked=["zz"]), "locked job 'zz' is not in the problem"),
    (lambda d: d["vehicles"][0].update(max_trips=0), "max_trips=0 must be >= 1"),
    (lambda d: d.update(durations={"bike": [[0, 1], [1, 0]]}), "durations['bike'] must be 3x3"),
    (lambda d: d.update(durations=[1]), "durations must be a JSON object"),
    (lambda d: d["jobs"][1].update(vehicle_id="ghost"), "vehicle_id='ghost' is not a vehicle"),
])
def test_bad_input_is_a_clear_error(edit: Any, message: str) -> None:
    data = _full()
    edit(data)
    with pytest.raises(ValueError) as caught:
        problem_from_json(data)
    assert message in str(caught.value)
