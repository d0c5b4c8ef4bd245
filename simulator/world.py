"""The day's hubs, riders and orders, pure and seeded, and what customers do at the door
(:func:`attempt_outcome`). :func:`make_day` is the short demo day: one hub, every order created
at the start; :mod:`simulator.continuous` makes a whole operating day."""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

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
class Site:
    """A hub or a store."""

    site_id: str
    hub_id: str  # a store's hub; a hub's own id
    lat: float
    lon: float


FAILURE_WEIGHTS: tuple[tuple[ev.FailureReason, float], ...] = (
    (ev.FailureReason.CUSTOMER_NOT_AVAILABLE, 0.45), (ev.FailureReason.ADDRESS_NOT_FOUND, 0.14),
    (ev.FailureReason.NO_ACCESS, 0.12), (ev.FailureReason.COD_NOT_READY, 0.09), (ev.FailureReason.REFUSED, 0.08),
    (ev.FailureReason.DAMAGED, 0.04), (ev.FailureReason.OTHER, 0.08),
)
OTHER_FAILURES = ("gate closed for a private function", "dog in the yard, customer not answering",
                  "building evacuated")


@dataclass(frozen=True, slots=True, kw_only=True)
class Behaviour:
    """What customers do at the door and after a failed attempt (hidden from the system)."""

    failure_rate: float = 0.08  # first attempts
    retry_failure_rate: float = 0.2  # later attempts (the customer now expects the rider)
    wrong_otp_rate: float = 0.05
    slot_reply_min: tuple[float, float] = (3.0, 15.0)  # asked for a slot, the customer answers this long after
    slot_offset_min: tuple[float, float] = (60.0, 120.0)  # the slot opens this long after the answer
    slot_length_min: float = 90.0
    slots_end: datetime | None = None  # no slot ends later (keeps the day's work within its shifts)

    def __post_init__(self) -> None:
        for name in ("failure_rate", "retry_failure_rate", "wrong_otp_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}={getattr(self, name)} must be in [0, 1]")


@dataclass(frozen=True, slots=True, kw_only=True)
class Day:
    config: Any  # DayConfig, or simulator.continuous.ContinuousConfig: both have seed and day_start
    hub_id: str  # the first hub
    shifts: tuple[ev.RiderShiftStarted, ...]
    orders: tuple[ev.OrderCreated, ...]  # each produced at its occurred_at
    hubs: tuple[Site, ...] = ()
    stores: tuple[Site, ...] = ()
    incidents: tuple[Any, ...] = ()  # simulator.continuous incidents, played by the runner
    behaviour: Behaviour = Behaviour()

    @property
    def seed(self) -> int:
        return int(self.config.seed)

    @property
    def start(self) -> datetime:
        """The first moment anything happens: the simulated clock starts here."""
        return min([*(s.occurred_at for s in self.shifts), *(o.occurred_at for o in self.orders)])


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
    return Day(config=config, hub_id=hub_id, shifts=tuple(shifts), orders=tuple(orders),
               hubs=(Site(site_id=hub_id, hub_id=hub_id, lat=config.hub_lat, lon=config.hub_lon),))


def attempt_outcome(seed: int, order_id: str, attempt: int, behaviour: Behaviour) -> tuple[ev.FailureReason, str] | None:
    """How delivery attempt ``attempt`` (1 = first) of an order ends: None (delivered) or the
    failure reason with the rider's words. Fixed per (seed, order, attempt), whoever the rider."""
    rng = rng_for(seed, f"door/{order_id}/{attempt}")
    rate = behaviour.failure_rate if attempt <= 1 else behaviour.retry_failure_rate
    fails, pick, words = rng.random(), rng.random(), rng.choice(OTHER_FAILURES)
    if fails >= rate:
        return None
    total = sum(w for _, w in FAILURE_WEIGHTS)
    acc, reason = 0.0, FAILURE_WEIGHTS[-1][0]
    for candidate, weight in FAILURE_WEIGHTS:
        acc += weight / total
        if pick < acc:
            reason = candidate
            break
    return reason, (words if reason is ev.FailureReason.OTHER else reason.value.replace("_", " "))


def customer_slot(seed: int, order_id: str, asked_at: datetime, behaviour: Behaviour) -> tuple[datetime, datetime, datetime]:
    """The customer asked for a slot after a failed attempt: (when they answer, slot start, slot end)."""
    rng = rng_for(seed, f"slot/{order_id}/{asked_at.isoformat()}")
    answer = asked_at + timedelta(minutes=rng.uniform(*behaviour.slot_reply_min))
    start = answer + timedelta(minutes=rng.uniform(*behaviour.slot_offset_min))
    start = start.replace(second=0, microsecond=0) + timedelta(minutes=(-start.minute) % 15)
    end = start + timedelta(minutes=behaviour.slot_length_min)
    if behaviour.slots_end is not None and end > behaviour.slots_end:
        end = max(behaviour.slots_end, answer + timedelta(minutes=60))
        start = min(start, end - timedelta(minutes=45))
    return answer, start, end
