"""A routing problem as JSON, pure: the fields of :class:`solver.model.Problem` one to one.

::

    {
      "locations": [[52.52, 13.40], [52.50, 13.45]],      # (lat, lon) in degrees
      "circuity": 1.3,                                       # optional, default 1.3
      "matrix": [[0, 4200], [4100, 0]],                      # optional: metres between locations,
                                                             #   used instead of haversine * circuity
      "vehicles": [{"id": "van-1", "start": 0, "end": 0, "capacity": [500],
                    "shift_start_s": 0, "shift_end_s": 28800, "speed_mps": 8.0,
                    "skills": [], "fixed_cost": 0}],         # skills, fixed_cost optional
      "jobs": [{"id": "o-1", "location": 1, "demand": [20], "window_start_s": 0,
                "window_end_s": 28800, "service_s": 300,
                "skills": [], "priority": 0}]                # skills, priority optional
    }

``start``, ``end`` and ``location`` index ``locations``; times are integer seconds since the
problem's epoch; ``capacity`` and ``demand`` have the same number of dimensions.
"""

from __future__ import annotations

from typing import Any

from solver.matrix import MatrixProblem
from solver.model import Job, Problem, Vehicle

_VEHICLE = {"id", "start", "end", "capacity", "shift_start_s", "shift_end_s", "speed_mps", "skills", "fixed_cost"}
_JOB = {"id", "location", "demand", "window_start_s", "window_end_s", "service_s", "skills", "priority"}
_PROBLEM = {"locations", "circuity", "matrix", "vehicles", "jobs"}


def _fields(obj: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ValueError(f"{where} must be a JSON object")
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise ValueError(f"{where} has unknown fields {unknown} (allowed: {sorted(allowed)})")
    return obj


def _build(cls: type, obj: Any, fields: set[str], where: str, tuples: tuple[str, ...]) -> Any:
    d = _fields(obj, fields, where)
    try:
        return cls(**{**d, "id": str(d["id"]), **{k: tuple(d[k]) for k in tuples},
                      "skills": frozenset(d.get("skills", ()))})
    except KeyError as exc:
        raise ValueError(f"{where} is missing the field {exc.args[0]!r}") from None
    except TypeError as exc:
        raise ValueError(f"{where} has a field of the wrong type or is missing one ({exc})") from None


def problem_from_json(data: Any) -> Problem:
    """Build a Problem (a MatrixProblem if ``matrix`` is given). Raises ValueError on bad input."""
    d = _fields(data, _PROBLEM, "the problem")
    vehicles = tuple(_build(Vehicle, v, _VEHICLE, f"vehicles[{i}]", ("capacity",))
                     for i, v in enumerate(d.get("vehicles", [])))
    jobs = tuple(_build(Job, j, _JOB, f"jobs[{i}]", ("demand",)) for i, j in enumerate(d.get("jobs", [])))
    if "locations" not in d:
        raise ValueError("the problem is missing the field 'locations'")
    try:
        common: dict[str, Any] = {"locations": tuple(tuple(loc) for loc in d["locations"]), "jobs": jobs,
                                  "vehicles": vehicles}
        if "circuity" in d:
            common["circuity"] = float(d["circuity"])
        if d.get("matrix") is not None:
            return MatrixProblem(matrix=tuple(tuple(row) for row in d["matrix"]), **common)
        return Problem(**common)
    except TypeError as exc:
        raise ValueError(f"the problem has a field of the wrong type ({exc})") from None
