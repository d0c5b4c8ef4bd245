"""Small named routing scenarios around a Bengaluru hub, and a seeded city-scale instance.

Distances: 0.009 degrees of latitude is about 1 km (x1.3 road circuity); vans drive 7 m/s.
"""

from __future__ import annotations

import math
import random

from solver.model import Job, Problem, Vehicle

HUB = (12.97, 77.59)
DAY_S = 9 * 3600
KM_LAT = 1 / 111.195  # degrees of latitude per km


def north(km: float, east_km: float = 0.0) -> tuple[float, float]:
    """A point ``km`` north and ``east_km`` east of the hub."""
    return (HUB[0] + km * KM_LAT, HUB[1] + east_km * KM_LAT / math.cos(math.radians(HUB[0])))


def van(id: str, *, start: int = 0, end: int | None = None, capacity: tuple[float, ...] = (100.0, 500.0, 20.0),
        shift: tuple[int, int] = (0, DAY_S), skills: frozenset[str] = frozenset(), speed_mps: float = 7.0) -> Vehicle:
    return Vehicle(id=id, start=start, end=start if end is None else end, capacity=capacity, shift_start_s=shift[0],
                   shift_end_s=shift[1], speed_mps=speed_mps, skills=skills)


def job(id: str, location: int, *, demand: tuple[float, ...] = (5.0, 20.0, 1.0), window: tuple[int, int] = (0, DAY_S),
        service_s: int = 120, skills: frozenset[str] = frozenset(), priority: int = 0) -> Job:
    return Job(id=id, location=location, demand=demand, window_start_s=window[0], window_end_s=window[1],
               service_s=service_s, skills=skills, priority=priority)


def three_stops_one_van() -> Problem:
    return Problem(locations=(HUB, north(1), north(2), north(1, 1)),
                   jobs=(job("a", 1), job("b", 2), job("c", 3)), vehicles=(van("v1"),))


def four_units_two_vans_of_two() -> Problem:
    """Each van carries 2 units; four one-unit parcels need both vans."""
    return Problem(locations=(HUB, north(1), north(1.2), north(1.4), north(1.6)),
                   jobs=tuple(job(f"j{i}", i, demand=(1.0,)) for i in range(1, 5)),
                   vehicles=(van("v1", capacity=(2.0,)), van("v2", capacity=(2.0,))))


def line_with_windows(*, far_first: bool) -> Problem:
    """Start at the hub, end 3 km north; ``near`` (1 km) and ``far`` (2 km) lie on the way, so
    near-then-far is shortest. With ``far_first`` the far stop's window closes early."""
    far_window = (0, 600) if far_first else (0, DAY_S)
    near_window = (1800, 3600) if far_first else (0, DAY_S)
    return Problem(locations=(HUB, north(1), north(2), north(3)),
                   jobs=(job("near", 1, window=near_window), job("far", 2, window=far_window)),
                   vehicles=(van("v1", start=0, end=3),))


def cold_chain_far_van() -> Problem:
    """The plain van sits next to both stops; only the far one (5 km away) has cold chain."""
    return Problem(locations=(HUB, north(5), north(0.2), north(0.3)),
                   jobs=(job("ice", 2, skills=frozenset({"cold_chain"})), job("bread", 3)),
                   vehicles=(van("plain", start=0), van("cold", start=1, skills=frozenset({"cold_chain"}))))


def with_impossible_jobs() -> Problem:
    """One ordinary stop plus one too heavy, one needing a missing skill, one whose window closes
    before any van could get there (20 km away, 60 s window)."""
    return Problem(locations=(HUB, north(1), north(20)),
                   jobs=(job("ok", 1), job("piano", 1, demand=(300.0, 500.0, 1.0)),
                         job("acid", 1, skills=frozenset({"hazmat"})), job("rush", 2, window=(0, 60))),
                   vehicles=(van("v1"), van("v2", capacity=(250.0, 900.0, 40.0))))


def short_shift(*, vip: bool = False) -> Problem:
    """One hour of shift, three 25-minute stops: only two fit. With ``vip`` the farthest stop has
    priority, so it must be one of the two even though it costs the most to drive to."""
    return Problem(locations=(HUB, north(0.2), north(0.3), north(0.8)),
                   jobs=(job("a", 1, service_s=1500), job("b", 2, service_s=1500),
                         job("c", 3, service_s=1500, priority=5 if vip else 0)),
                   vehicles=(van("v1", shift=(0, 3600)),))


def city(seed: int = 42, jobs: int = 200, vehicles: int = 10) -> Problem:
    """``jobs`` drops within 8 km of the hub, 2 h windows inside a 9 h day, roomy vans."""
    rng = random.Random(seed)
    points = [HUB]
    for _ in range(jobs):
        r, theta = 8.0 * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
        points.append(north(r * math.cos(theta), r * math.sin(theta)))
    drops = []
    for i in range(jobs):
        opens = rng.randrange(0, DAY_S - 2 * 3600 + 1, 60)
        drops.append(job(f"o{i:03d}", i + 1, demand=(rng.uniform(0.5, 8.0), rng.uniform(1, 30), float(rng.randint(1, 3))),
                         window=(opens, opens + 2 * 3600), service_s=rng.randint(60, 240)))
    fleet = tuple(van(f"v{k:02d}", capacity=(400.0, 2000.0, 100.0)) for k in range(vehicles))
    return Problem(locations=tuple(points), jobs=tuple(drops), vehicles=fleet)
