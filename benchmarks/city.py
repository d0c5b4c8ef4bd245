"""A seeded, realistic city day for benchmarks and tests, pure.

A 25 x 25 km city around Bengaluru's centre. Orders cluster in neighbourhoods (plus a thin
background everywhere); riders work from hubs spread over the city, each hub staffed in
proportion to the orders around it, on bicycles, scooters, cars and vans of very different
capacity (kg, litres, parcels), speed and cost. Small vehicles carry a handful of parcels, so they
go back to their hub to reload (``max_trips``); vans carry a hundred but drive slowly. A share of
orders needs a skill (fragile, cold chain, heavy, age check) that only some riders have; every hub
has at least one rider with each skill. About 40% of orders are booked in 2-hour slots, the rest
any time in the day; shifts last 8 to 10 hours, starting between 07:00 and 10:00.

Times count from 07:00 (the epoch). The fleet is sized so that a good plan serves almost every
order: roughly 25 orders per rider over a day, and every order has a rider at its nearest hub who
can carry it (a rare combination of skills is taught to the best-suited rider there). No breaks
and only hard windows, so every engine (PyVRP included, see :mod:`solver.engines`) accepts it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace

from solver.eligibility import fits
from solver.model import Job, Problem, Vehicle

CENTRE = (12.97, 77.59)  # Bengaluru
SIDE_KM = 25.0
HOUR = 3600
DAY_S = 13 * HOUR  # 07:00 to 20:00
KM_LAT = 1 / 111.195  # degrees of latitude per km
SKILLS = ("fragile", "cold_chain", "heavy", "age_check")


@dataclass(frozen=True, slots=True, kw_only=True)
class VehicleKind:
    """One kind of vehicle in the fleet; ``skills`` gives each skill's share of its riders."""

    name: str
    share: float  # of the fleet
    capacity: tuple[float, float, float]  # kg, litres, parcels
    speed_mps: float  # average in city traffic
    fixed_cost: float  # per day used (INR)
    cost_per_km: float
    cost_per_hour: float
    max_trips: int
    reload_s: int
    skills: tuple[tuple[str, float], ...]


KINDS = (
    VehicleKind(name="bike", share=0.35, capacity=(12.0, 40.0, 10.0), speed_mps=4.2, fixed_cost=250.0,
                cost_per_km=1.0, cost_per_hour=90.0, max_trips=4, reload_s=600,
                skills=(("fragile", 0.3), ("age_check", 0.3))),
    VehicleKind(name="scooter", share=0.30, capacity=(25.0, 90.0, 18.0), speed_mps=6.1, fixed_cost=350.0,
                cost_per_km=2.5, cost_per_hour=100.0, max_trips=3, reload_s=600,
                skills=(("fragile", 0.5), ("cold_chain", 0.4), ("age_check", 0.3))),
    VehicleKind(name="car", share=0.20, capacity=(150.0, 600.0, 45.0), speed_mps=5.6, fixed_cost=700.0,
                cost_per_km=7.0, cost_per_hour=150.0, max_trips=2, reload_s=900,
                skills=(("fragile", 1.0), ("heavy", 1.0), ("cold_chain", 0.2), ("age_check", 0.3))),
    VehicleKind(name="van", share=0.15, capacity=(600.0, 3000.0, 110.0), speed_mps=5.0, fixed_cost=1100.0,
                cost_per_km=11.0, cost_per_hour=180.0, max_trips=1, reload_s=1200,
                skills=(("fragile", 1.0), ("heavy", 1.0), ("cold_chain", 0.5), ("age_check", 0.3))),
)


def point(east_km: float, north_km: float) -> tuple[float, float]:
    """(lat, lon) of a point ``east_km`` east and ``north_km`` north of the centre."""
    return (CENTRE[0] + north_km * KM_LAT, CENTRE[1] + east_km * KM_LAT / math.cos(math.radians(CENTRE[0])))


def _clip(x: float) -> float:
    return max(-SIDE_KM / 2, min(SIDE_KM / 2, x))


def hub_sites(hubs: int, rng: random.Random) -> list[tuple[float, float]]:
    """(east, north) km of each hub: the first near the centre, the others on a ring 7.5 km out."""
    sites = [(rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5))]
    for k in range(hubs - 1):
        angle = math.pi / 4 + 2 * math.pi * k / (hubs - 1)
        sites.append((7.5 * math.cos(angle) + rng.uniform(-1, 1), 7.5 * math.sin(angle) + rng.uniform(-1, 1)))
    return sites


def order_sites(orders: int, rng: random.Random) -> list[tuple[float, float]]:
    """(east, north) km of each order: 85% in ~30 neighbourhoods of varied size and popularity,
    denser towards the centre, 15% anywhere in the city."""
    hoods = [(_clip(rng.gauss(0, 6)), _clip(rng.gauss(0, 6)), rng.uniform(0.5, 1.5)) for _ in range(30)]
    weights = [rng.lognormvariate(0, 0.6) for _ in hoods]
    sites = []
    for _ in range(orders):
        if rng.random() < 0.85:
            x, y, spread = rng.choices(hoods, weights)[0]
            sites.append((_clip(rng.gauss(x, spread)), _clip(rng.gauss(y, spread))))
        else:
            sites.append((rng.uniform(-SIDE_KM / 2, SIDE_KM / 2), rng.uniform(-SIDE_KM / 2, SIDE_KM / 2)))
    return sites


def _shares(total: int, weights: list[float]) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainders), at least 1 each if possible."""
    raw = [total * w / sum(weights) for w in weights]
    counts = [math.floor(x) for x in raw]
    for k in sorted(range(len(raw)), key=lambda k: counts[k] - raw[k])[:total - sum(counts)]:
        counts[k] += 1
    for k in range(len(counts)):  # a hub without riders: take one from the best-staffed
        if counts[k] == 0 and max(counts) > 1:
            counts[k], counts[counts.index(max(counts))] = 1, max(counts) - 1
    return counts


def _order(k: int, location: int, rng: random.Random) -> Job:
    skills = set()
    roll = rng.random()
    if roll < 0.04:  # furniture, appliances: cars and vans only
        skills.add("heavy")
        weight, volume = rng.uniform(25, 80), rng.uniform(80, 300)
    elif roll < 0.10:  # groceries
        skills.add("cold_chain")
        weight, volume = rng.uniform(2, 8), rng.uniform(5, 25)
    else:
        weight = min(10.0, rng.lognormvariate(math.log(1.2), 0.8))
        volume = max(0.5, min(40.0, weight * rng.uniform(2, 5)))
    if rng.random() < 0.10:
        skills.add("fragile")
    if rng.random() < 0.04:
        skills.add("age_check")
    parcels = rng.choices((1.0, 2.0, 3.0), (0.78, 0.17, 0.05))[0]
    if rng.random() < 0.4:
        opens = rng.randint(1, 10) * HOUR  # a 2-hour slot from 08:00-10:00 to 17:00-19:00
        window = (opens, opens + 2 * HOUR)
    else:
        window = (0, DAY_S)
    return Job(id=f"o{k:04d}", location=location, demand=(round(weight, 2), round(volume, 1), parcels),
               window_start_s=window[0], window_end_s=window[1], service_s=rng.randint(120, 300),
               skills=frozenset(skills), priority=1 if rng.random() < 0.05 else 0)


def _riders(hub: int, count: int, rng: random.Random) -> list[Vehicle]:
    """``count`` riders at ``hub``: kinds in fleet proportions, each skill to its share of a kind
    (at least one rider of the hub per skill)."""
    kinds = [kind for kind, n in zip(KINDS, _shares(count, [k.share for k in KINDS]), strict=True) for _ in range(n)]
    skills: list[set[str]] = [set() for _ in kinds]
    for kind in KINDS:
        mine = [i for i, k in enumerate(kinds) if k is kind]
        for skill, share in kind.skills:
            for i in rng.sample(mine, round(share * len(mine))):
                skills[i].add(skill)
    for skill in SKILLS:
        if not any(skill in s for s in skills):  # the biggest vehicle learns it
            skills[max(range(len(kinds)), key=lambda i: (kinds[i].capacity, -i))].add(skill)
    riders = []
    for n, (kind, skill) in enumerate(zip(kinds, skills, strict=True), start=1):
        start = rng.randint(0, 3) * HOUR
        end = min(DAY_S, start + rng.choice((8, 9, 10)) * HOUR)
        riders.append(Vehicle(
            id=f"h{hub}-{kind.name}-{n:02d}", start=hub, end=hub, capacity=kind.capacity, shift_start_s=start,
            shift_end_s=end, speed_mps=kind.speed_mps, skills=frozenset(skill), profile=kind.name,
            fixed_cost=kind.fixed_cost, cost_per_km=kind.cost_per_km, cost_per_hour=kind.cost_per_hour,
            max_trips=kind.max_trips, reload_s=kind.reload_s))
    return riders


def city_day(orders: int = 2000, riders: int = 80, hubs: int = 1, seed: int = 0) -> Problem:
    """One day of ``orders`` deliveries by ``riders`` riders from ``hubs`` hubs. Locations: the
    hubs first (index = hub number), then one per order in order."""
    if hubs < 1 or riders < hubs or orders < 0:
        raise ValueError(f"city_day needs hubs >= 1 and riders >= hubs (got hubs={hubs}, riders={riders}), orders >= 0")
    rng = random.Random(seed)
    hub_xy = hub_sites(hubs, rng)
    order_xy = order_sites(orders, rng)
    nearest = [min(range(hubs), key=lambda h: math.dist(xy, hub_xy[h])) for xy in order_xy]
    staff = _shares(riders, [nearest.count(h) + 1 for h in range(hubs)])
    fleet = [v for h in range(hubs) for v in _riders(h, staff[h], rng)]
    jobs = [_order(k, hubs + k, rng) for k in range(orders)]
    for job, hub in zip(jobs, nearest, strict=True):  # rare skill combinations: a rider learns the missing one
        mine = ([i for i, v in enumerate(fleet) if v.start == hub and fits(job, v)]
                or [i for i, v in enumerate(fleet) if fits(job, v)])
        if mine and not any(job.skills <= fleet[i].skills for i in mine):
            i = max(mine, key=lambda i: (len(job.skills & fleet[i].skills), fleet[i].capacity, -i))
            fleet[i] = replace(fleet[i], skills=fleet[i].skills | job.skills)
    return Problem(locations=tuple(point(*xy) for xy in hub_xy + order_xy), jobs=tuple(jobs), vehicles=tuple(fleet))

