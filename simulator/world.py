"""The day's hub, riders and orders, pure and seeded."""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from schemas import events as ev

CAPACITY: dict[ev.VehicleType, tuple[float, float, int]] = {  # weight kg, volume l, units
    ev.VehicleType.BIKE: (15.0, 40.0, 12),
    ev.VehicleType.SCOOTER: (30.0, 90.0, 25),
    ev.VehicleType.CAR: (200.0, 600.0, 60),
    ev.VehicleType.VAN: (600.0, 2500.0, 150),
}
SPEED_MPS: dict[ev.VehicleType, float] = {  # what riders really drive (the planner assumes its own)
    ev.VehicleType.BIKE: 4.2, ev.VehicleType.SCOOTER: 7.5, ev.VehicleType.CAR: 8.5, ev.VehicleType.VAN: 7.2,
}
FLEET = (ev.VehicleType.SCOOTER, ev.VehicleType.SCOOTER, ev.VehicleType.CAR, ev.VehicleType.VAN, ev.VehicleType.BIKE)
SKILLS_BY_VEHICLE = {ev.VehicleType.CAR: ("fragile", "cold_chain"), ev.VehicleType.VAN: ("fragile", "heavy", "cold_chain")}


@dataclass(frozen=True, slots=True, kw_only=True)
class DayConfig:
    seed: int = 7
    orders: int = 200
    riders: int = 10
    hub_lat: float = 12.9716  # Bengaluru
    hub_lon: float = 77.5946
    radius_km: float = 6.0
    day_start: datetime = datetime(2026, 11, 24, 8, 30, tzinfo=UTC)
    window_hours: float = 3.0
    windows_until_h: float = 6.0  # last window ends this many hours after day_start + 30 min

    def __post_init__(self) -> None:
        if self.orders < 1 or self.riders < 1:
            raise ValueError(f"need at least one order and one rider, got orders={self.orders} riders={self.riders}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Day:
    config: DayConfig
    hub_id: str
    shifts: tuple[ev.RiderShiftStarted, ...]
    orders: tuple[ev.OrderCreated, ...]


def rng_for(seed: int, name: str) -> random.Random:
    return random.Random(f"{seed}/{name}")


def sim_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def offset_point(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    return lat + north_m / 111_320.0, lon + east_m / (111_320.0 * math.cos(math.radians(lat)))


def make_day(config: DayConfig) -> Day:
    hub_id = "hub-1"
    start = config.day_start
    rng = rng_for(config.seed, "world")
    shifts = []
    for i in range(config.riders):
        vehicle = FLEET[i % len(FLEET)]
        w, v, u = CAPACITY[vehicle]
        shifts.append(ev.RiderShiftStarted(
            event_id=sim_id(rng), occurred_at=start, rider_id=f"rider-{i + 1:03d}", hub_id=hub_id, vehicle_type=vehicle,
            capacity_weight_kg=w, capacity_volume_l=v, capacity_units=u, skills=SKILLS_BY_VEHICLE.get(vehicle, ()),
            shift_start=start, shift_end=start + timedelta(hours=10),
            start=ev.GeoPoint(lat=config.hub_lat, lon=config.hub_lon)))
    orders = []
    for i in range(config.orders):
        r = math.sqrt(rng.random()) * config.radius_km * 1000
        theta = rng.random() * 2 * math.pi
        lat, lon = offset_point(config.hub_lat, config.hub_lon, r * math.cos(theta), r * math.sin(theta))
        first = start + timedelta(minutes=30)
        window_start = first + timedelta(minutes=30 * rng.randrange(int((config.windows_until_h - config.window_hours) * 2) + 1))
        skills: tuple[str, ...] = ()
        roll = rng.random()
        if roll < 0.05:
            skills = ("fragile",)
        elif roll < 0.08:
            skills = ("cold_chain",)
        orders.append(ev.OrderCreated(
            event_id=sim_id(rng), occurred_at=start, order_id=f"ord-{config.seed}-{i + 1:05d}",
            tracking_id=f"TRK{rng.getrandbits(40):010X}", hub_id=hub_id, mode=ev.DeliveryMode.LAST_MILE,
            drop=ev.Location(lat=lat, lon=lon, address=f"{rng.randrange(1, 400)} Sim Street, block {i % 40}"),
            window_start=window_start, window_end=window_start + timedelta(hours=config.window_hours),
            service_time_s=rng.choice((60, 90, 120, 180)), weight_kg=round(rng.uniform(0.2, 4.0), 2),
            volume_l=round(rng.uniform(0.5, 8.0), 1), units=rng.choice((1, 1, 1, 2, 3)), required_skills=skills,
            cod_amount=rng.choice((0.0, 0.0, 0.0, 249.0, 899.0)), currency="INR", priority=0,
            instructions=rng.choice(("", "", "Leave with security", "Call on arrival"))))
    return Day(config=config, hub_id=hub_id, shifts=tuple(shifts), orders=tuple(orders))
