"""A rider driving a planned route, as a timeline of what the rider's phone reports, and which
stops of a (re-)planned route the rider app drives given what the ledger and the rider already
know (:func:`triage`). Pure."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from schemas import events as ev
from simulator.world import offset_point, rng_for, sim_id
from solver.geo import haversine_m

FAILURE_REASONS = ("customer_not_available", "address_not_found")


@dataclass(frozen=True, slots=True, kw_only=True)
class DriveParams:
    ping_interval_s: float = 10.0
    noise_m: float = 8.0  # GPS error, 1 sigma per axis
    gap_probability: float = 0.01  # chance a ping starts a signal gap
    gap_s: tuple[float, float] = (30.0, 120.0)
    duplicate_probability: float = 0.01  # device re-sends a fix
    failure_probability: float = 0.08
    wrong_otp_probability: float = 0.05
    speed_factor: tuple[float, float] = (0.75, 1.1)


@dataclass(frozen=True, slots=True)
class Ping:
    ping: ev.GpsPing
    lat: float  # where the rider really is (the ping carries the phone's error)
    lon: float


@dataclass(frozen=True, slots=True)
class Handover:
    """At the door: deliver (with POD) or fail with a reason."""

    at: datetime
    order_id: str
    lat: float
    lon: float
    delivered: bool
    reason: str = ""
    wrong_otp_first: bool = False


@dataclass(frozen=True, slots=True)
class BackAtHub:
    at: datetime
    lat: float
    lon: float


Step = Ping | Handover | BackAtHub


def step_time(step: Step) -> datetime:
    return step.ping.device_time if isinstance(step, Ping) else step.at


def position_at(before: tuple[datetime, float, float], step: Step, at: datetime) -> tuple[float, float]:
    """Where the rider is at ``at``, between the last step (time, lat, lon) and the next one: a
    re-plan that interrupts the drive starts from here."""
    t0, lat0, lon0 = before
    t1 = step_time(step)
    f = 1.0 if t1 <= t0 else min(1.0, max(0.0, (at - t0) / (t1 - t0)))
    return lat0 + (step.lat - lat0) * f, lon0 + (step.lon - lon0) * f


def drive(route: ev.RoutePlanned, vehicle_speed_mps: float, start_at: datetime, seed: int,
          params: DriveParams = DriveParams(), *, origin: tuple[float, float] | None = None,
          home: tuple[float, float] | None = None) -> Iterator[Step]:
    """Drive the route's stops from ``origin`` (the route's start unless given) and back to
    ``home`` (likewise): a re-planned route starts where the rider is, but ends at the hub."""
    rng = rng_for(seed, f"drive/{route.route_id}")
    device_id = f"dev-{route.rider_id}"
    t = start_at
    lat, lon = origin or (route.start.lat, route.start.lon)
    gap_until: datetime | None = None

    def fix(at: datetime, plat: float, plon: float, speed: float, heading: float) -> Iterator[Step]:
        nonlocal gap_until
        if gap_until is not None and at < gap_until:
            return
        if rng.random() < params.gap_probability:
            gap_until = at + timedelta(seconds=rng.uniform(*params.gap_s))
            return
        nlat, nlon = offset_point(plat, plon, rng.gauss(0, params.noise_m), rng.gauss(0, params.noise_m))
        ping = ev.GpsPing(event_id=sim_id(rng), occurred_at=at + timedelta(milliseconds=rng.randrange(50, 900)),
                          rider_id=route.rider_id, device_id=device_id, device_time=at, lat=nlat, lon=nlon,
                          speed_mps=round(speed, 2), heading_deg=round(heading, 1),
                          accuracy_m=round(abs(rng.gauss(params.noise_m * 1.2, 2.0)) + 3, 1),
                          battery_pct=round(max(5.0, 95 - (at - start_at).total_seconds() / 600), 1))
        yield Ping(ping, plat, plon)
        if rng.random() < params.duplicate_probability:
            yield Ping(ping, plat, plon)

    def travel(to_lat: float, to_lon: float) -> Iterator[Step]:
        nonlocal t, lat, lon
        dist = haversine_m((lat, lon), (to_lat, to_lon))
        speed = vehicle_speed_mps * rng.uniform(*params.speed_factor)
        duration = dist / speed
        heading = math.degrees(math.atan2(to_lon - lon, to_lat - lat)) % 360
        steps = max(1, int(duration // params.ping_interval_s))
        for i in range(1, steps + 1):
            f = i / steps
            yield from fix(t + timedelta(seconds=duration * f), lat + (to_lat - lat) * f, lon + (to_lon - lon) * f,
                           speed, heading)
        t += timedelta(seconds=duration)
        lat, lon = to_lat, to_lon

    def wait(seconds: float) -> Iterator[Step]:
        nonlocal t
        end = t + timedelta(seconds=seconds)
        while t + timedelta(seconds=params.ping_interval_s) <= end:
            t += timedelta(seconds=params.ping_interval_s)
            yield from fix(t, lat, lon, 0.0, 0.0)
        t = end

    for stop in route.stops:
        yield from travel(stop.lat, stop.lon)
        order_rng = rng_for(seed, f"handover/{stop.order_id}")
        fails = order_rng.random() < params.failure_probability
        yield from wait(stop.service_time_s * order_rng.uniform(0.8, 1.5) * (0.5 if fails else 1.0))
        yield Handover(at=t, order_id=stop.order_id, lat=lat, lon=lon, delivered=not fails,
                       reason=order_rng.choice(FAILURE_REASONS) if fails else "",
                       wrong_otp_first=order_rng.random() < params.wrong_otp_probability)
    back = home or (route.start.lat, route.start.lon)
    yield from travel(*back)
    yield BackAtHub(at=t, lat=lat, lon=lon)


def new_event_id(seed: int, *parts: str) -> str:
    """Simulator-made ids for rider-app submissions, stable under a seed."""
    return sim_id(rng_for(seed, "/".join(parts)))


SETTLED = frozenset({ev.OrderStatus.DELIVERED, ev.OrderStatus.RETURNED_TO_HUB, ev.OrderStatus.CANCELLED})
ON_BOARD = frozenset({ev.OrderStatus.OUT_FOR_DELIVERY, ev.OrderStatus.ARRIVED})


class Triage(NamedTuple):
    """A route's stops as the rider app sees them."""

    visit: tuple[ev.PlannedStop, ...]  # to drive, in the route's order
    send_out: tuple[str, ...]  # visited and still only assigned: out for delivery when the ride starts
    waiting: tuple[str, ...]  # this rider's assignment is not in the ledger yet
    skipped: tuple[str, ...]  # handed over already, settled, or in another rider's box


def triage(stops: tuple[ev.PlannedStop, ...], rider_id: str, status: Mapping[str, ev.OrderStatus],
           holder: Mapping[str, str], handed: Collection[str], out: Collection[str]) -> Triage:
    """Which stops of a route to drive. A re-plan is computed from what dispatch knew a moment
    ago: a stop this rider already delivered or failed is never visited again, nor one settled
    or out with another rider (the move to this rider is rejected: it lost the race). ``status``
    and ``holder`` (the rider of the last accepted assignment) are the order ledger as read so far;
    ``handed`` and ``out`` are what this rider's app did."""
    visit: list[ev.PlannedStop] = []
    send_out: list[str] = []
    waiting: list[str] = []
    skipped: list[str] = []
    for stop in stops:
        order_id = stop.order_id
        now = status.get(order_id)
        mine = holder.get(order_id) == rider_id
        if order_id in handed or now in SETTLED:
            skipped.append(order_id)
        elif mine and (now is ev.OrderStatus.ASSIGNED or now in ON_BOARD):
            visit.append(stop)
            if now is ev.OrderStatus.ASSIGNED and order_id not in out:
                send_out.append(order_id)
        elif now in ON_BOARD or (mine and now is ev.OrderStatus.FAILED):
            skipped.append(order_id)
        else:  # new, unknown yet, or assigned to (or failed by) another rider: ours is on its way
            waiting.append(order_id)
    return Triage(visit=tuple(visit), send_out=tuple(send_out), waiting=tuple(waiting), skipped=tuple(skipped))
