"""Solomon VRPTW instances (classic text format) and their best-known solutions, pure.

The DIMACS 2021 convention is used throughout: every arc is the Euclidean distance truncated to one
decimal, ``floor(10 * d) / 10``, for both cost and travel time (one distance unit per time unit);
a customer's due date is the latest *start* of service (arriving earlier means waiting); every
route must be back at the depot by the depot's due date; the fleet is at most ``VEHICLE NUMBER``
vehicles of the given capacity.

:func:`to_problem` builds a :class:`~solver.matrix.MatrixProblem` in *tenths* of a Solomon unit
(:data:`SCALE`), so every distance and time is a whole number and the solver, which works in whole
seconds and whole metres, handles the one-decimal values exactly. Divide its distances by
:data:`SCALE` to get Solomon units back.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from solver.matrix import MatrixProblem
from solver.model import Job, Solution, Vehicle

SCALE = 10  # model units per Solomon unit: one decimal, made integer
CONVENTION = "dist_trunc1"  # the solomon_bks.csv rows that follow the convention above


@dataclass(frozen=True, slots=True)
class Customer:
    number: int  # the Solomon customer number; 0 is the depot
    x: float
    y: float
    demand: float
    ready: float  # earliest start of service
    due: float  # latest start of service
    service: float


@dataclass(frozen=True, slots=True)
class Instance:
    name: str
    fleet: int  # VEHICLE NUMBER: an upper bound on vehicles used
    capacity: float
    depot: Customer  # its ready/due are the planning horizon
    customers: tuple[Customer, ...]  # in file order (customer numbers 1..n for the classic files)

    def nodes(self) -> tuple[Customer, ...]:
        return (self.depot, *self.customers)


@dataclass(frozen=True, slots=True)
class Bks:
    instance: str
    vehicles: int
    distance: float
    source: str
    convention: str


def truncated_tenths(a: Customer, b: Customer) -> int:
    """``floor(10 * euclidean(a, b))``: the DIMACS arc in tenths, exact for integer coordinates."""
    dx, dy = a.x - b.x, a.y - b.y
    if float(dx).is_integer() and float(dy).is_integer():
        return math.isqrt(int(100 * (dx * dx + dy * dy)))
    return math.floor(10 * math.hypot(dx, dy))


def truncated_distance(a: Customer, b: Customer) -> float:
    """The DIMACS arc in Solomon units: Euclidean distance truncated to one decimal."""
    return truncated_tenths(a, b) / SCALE


def parse(text: str, name: str | None = None) -> Instance:
    """Parse the classic Solomon text format. Raises ValueError (one sentence) if it is not one."""
    lines = text.splitlines()
    words = [line.split() for line in lines]
    title = next((w[0] for w in words if w), None)
    try:
        at = next(i for i, w in enumerate(words) if w[:1] == ["NUMBER"] and "CAPACITY" in w)
        fleet_row = next(w for w in words[at + 1:] if w)
        fleet, capacity = int(fleet_row[0]), float(fleet_row[1])
        header = next(i for i, w in enumerate(words) if w[:2] == ["CUST", "NO."])
    except (StopIteration, ValueError, IndexError):
        raise ValueError("no 'NUMBER CAPACITY' fleet line or no 'CUST NO.' table header") from None
    rows: list[Customer] = []
    for lineno, w in enumerate(words[header + 1:], start=header + 2):
        if not w:
            continue
        if len(w) != 7:
            raise ValueError(f"line {lineno}: expected 7 columns in the customer table, found {len(w)}")
        try:
            number = int(w[0])
            x, y, demand, ready, due, service = map(float, w[1:])
        except ValueError:
            raise ValueError(f"line {lineno}: customer table values must be numbers") from None
        rows.append(Customer(number, x, y, demand, ready, due, service))
    if len(rows) < 1 or rows[0].number != 0:
        raise ValueError("the customer table must start with the depot, customer number 0")
    numbers = [c.number for c in rows]
    if len(set(numbers)) != len(numbers):
        raise ValueError("customer numbers in the table are not unique")
    if fleet < 1 or capacity < 0:
        raise ValueError(f"fleet {fleet} must be >= 1 and capacity {capacity:g} >= 0")
    return Instance(name=name or title or "?", fleet=fleet, capacity=capacity, depot=rows[0], customers=tuple(rows[1:]))


def read(path: str | Path) -> Instance:
    path = Path(path)
    return parse(path.read_text(encoding="utf-8", errors="replace"), name=None)


def job_id(number: int) -> str:
    return str(number)


def to_problem(instance: Instance) -> tuple[MatrixProblem, dict[str, int]]:
    """The instance as a problem in tenths of a unit, and the map job id -> Solomon customer number."""
    nodes = instance.nodes()
    matrix = tuple(tuple(float(truncated_tenths(a, b)) for b in nodes) for a in nodes)

    def tenths(x: float) -> int:
        return round(x * SCALE)

    depot = instance.depot
    vehicles = tuple(
        Vehicle(id=f"v{k + 1}", start=0, end=0, capacity=(instance.capacity,), shift_start_s=tenths(depot.ready),
                shift_end_s=tenths(depot.due), speed_mps=1.0)
        for k in range(instance.fleet))
    jobs = tuple(
        Job(id=job_id(c.number), location=i, demand=(c.demand,), window_start_s=tenths(c.ready),
            window_end_s=tenths(c.due), service_s=tenths(c.service))
        for i, c in enumerate(instance.customers, start=1))
    problem = MatrixProblem(locations=((0.0, 0.0),) * len(nodes), matrix=matrix, jobs=jobs, vehicles=vehicles)
    return problem, {j.id: c.number for j, c in zip(jobs, instance.customers, strict=True)}


def plan(solution: Solution, numbers: Mapping[str, int]) -> tuple[list[list[int]], list[int]]:
    """(routes as customer numbers in visit order, unassigned customer numbers) of a solution."""
    routes = [[numbers[v.job_id] for v in r.stops] for r in solution.routes if r.stops]
    return routes, [numbers[u.job_id] for u in solution.unassigned]


def read_bks(path: str | Path, convention: str = CONVENTION) -> dict[str, Bks]:
    """Best-known solutions by instance name, only the rows of ``convention``."""
    with open(path, newline="", encoding="utf-8") as f:
        return {r["instance"]: Bks(r["instance"], int(r["vehicles"]), float(r["distance"]), r["source"],
                                   r["convention"])
                for r in csv.DictReader(f) if r["convention"] == convention}


def instance_files(directory: str | Path, names: Iterable[str] | None = None) -> list[Path]:
    """``NAME.txt`` files in ``directory`` (all, sorted, or the named ones in the given order)."""
    directory = Path(directory)
    if names is None:
        return sorted(directory.glob("*.txt"))
    return [directory / f"{n.strip().upper()}.txt" for n in names if n.strip()]

