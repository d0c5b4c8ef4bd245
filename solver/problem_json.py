"""A routing problem as JSON, pure: the fields of :class:`solver.model.Problem` one to one.

::

    {
      "locations": [[52.52, 13.40], [52.50, 13.45]],      # (lat, lon) in degrees
      "circuity": 1.3,                                       # optional, default 1.3
      "matrix": [[0, 4200], [4100, 0]],                      # optional: metres between locations,
                                                             #   used instead of haversine * circuity
      "durations": {"van": [[0, 600], [590, 0]]},            # optional: seconds per vehicle profile
      "even_workload": false,                                # optional
      "vehicles": [{"id": "van-1", "start": 0, "end": 0, "capacity": [500],
                    "shift_start_s": 0, "shift_end_s": 28800, "speed_mps": 8.0,
                    # optional, with their defaults:
                    "skills": [], "profile": "", "fixed_cost": 0, "cost_per_km": 1, "cost_per_hour": 0,
                    "breaks": [{"id": "lunch", "earliest_start_s": 12600, "latest_start_s": 16200,
                                "duration_s": 1800}],
                    "max_trips": 1, "reload_at": null, "reload_s": 0,
                    "locked": [], "planned": [], "max_new_stops": null}],
      "jobs": [{"id": "o-1", "location": 1, "demand": [20], "window_start_s": 0,
                "window_end_s": 28800, "service_s": 300,
                # optional, with their defaults:
                "skills": [], "priority": 0, "late_cost_per_hour": null, "pickup_id": null,
                "vehicle_id": null}]
    }

``start``, ``end``, ``reload_at`` and ``location`` index ``locations``; times are integer seconds
since the problem's epoch; ``capacity`` and ``demand`` have the same number of dimensions. See
:mod:`solver.model` for what each field means.
"""

from __future__ import annotations

import re
from typing import Any

from solver.matrix import MatrixProblem
from solver.model import Break, Job, Problem, Vehicle

_BREAK = {"id", "earliest_start_s", "latest_start_s", "duration_s"}
_VEHICLE = {"id", "start", "end", "capacity", "shift_start_s", "shift_end_s", "speed_mps", "skills", "profile",
            "fixed_cost", "cost_per_km", "cost_per_hour", "breaks", "max_trips", "reload_at", "reload_s", "locked",
            "planned", "max_new_stops"}
_JOB = {"id", "location", "demand", "window_start_s", "window_end_s", "service_s", "skills", "priority",
        "late_cost_per_hour", "pickup_id", "vehicle_id"}
_PROBLEM = {"locations", "circuity", "matrix", "durations", "even_workload", "vehicles", "jobs"}


def _fields(obj: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ValueError(f"{where} must be a JSON object")
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise ValueError(f"{where} has unknown fields {unknown} (allowed: {sorted(allowed)})")
    return obj


def _list(d: dict[str, Any], key: str, where: str) -> tuple[Any, ...]:
    value = d.get(key, ())
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{where}.{key} must be a JSON array")
    return tuple(value)


def _build(cls: type, d: dict[str, Any], where: str, **converted: Any) -> Any:
    try:
        return cls(**{**d, "id": str(d["id"]), **converted})
    except KeyError as exc:
        raise ValueError(f"{where} is missing the field {exc.args[0]!r}") from None
    except TypeError as exc:
        missing = re.search(r"missing \d+ required keyword-only arguments?: '(\w+)'", str(exc))
        if missing:
            raise ValueError(f"{where} is missing the field {missing.group(1)!r}") from None
        raise ValueError(f"{where} has a field of the wrong type ({exc})") from None


def _vehicle(obj: Any, where: str) -> Vehicle:
    d = _fields(obj, _VEHICLE, where)
    breaks = tuple(_build(Break, _fields(b, _BREAK, f"{where}.breaks[{k}]"), f"{where}.breaks[{k}]")
                   for k, b in enumerate(_list(d, "breaks", where)))
    return _build(Vehicle, d, where, capacity=_list(d, "capacity", where), skills=frozenset(_list(d, "skills", where)),
                  breaks=breaks, locked=tuple(map(str, _list(d, "locked", where))),
                  planned=tuple(map(str, _list(d, "planned", where))))


def _job(obj: Any, where: str) -> Job:
    d = _fields(obj, _JOB, where)
    return _build(Job, d, where, demand=_list(d, "demand", where), skills=frozenset(_list(d, "skills", where)))


def problem_from_json(data: Any) -> Problem:
    """Build a Problem (a MatrixProblem if ``matrix`` is given). Raises ValueError on bad input."""
    d = _fields(data, _PROBLEM, "the problem")
    vehicles = tuple(_vehicle(v, f"vehicles[{i}]") for i, v in enumerate(_list(d, "vehicles", "the problem")))
    jobs = tuple(_job(j, f"jobs[{i}]") for i, j in enumerate(_list(d, "jobs", "the problem")))
    if "locations" not in d:
        raise ValueError("the problem is missing the field 'locations'")
    durations = d.get("durations") or {}
    if not isinstance(durations, dict):
        raise ValueError("durations must be a JSON object mapping a vehicle profile to a matrix of seconds")
    try:
        common: dict[str, Any] = {
            "locations": tuple(tuple(loc) for loc in d["locations"]), "jobs": jobs, "vehicles": vehicles,
            "durations": {str(k): tuple(tuple(row) for row in m) for k, m in durations.items()},
            "even_workload": bool(d.get("even_workload", False))}
        if "circuity" in d:
            common["circuity"] = float(d["circuity"])
        if d.get("matrix") is not None:
            return MatrixProblem(matrix=tuple(tuple(row) for row in d["matrix"]), **common)
        return Problem(**common)
    except TypeError as exc:
        raise ValueError(f"the problem has a field of the wrong type ({exc})") from None
