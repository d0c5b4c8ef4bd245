"""The simulator's ground truth, pure: how riders really move, what their phones really report, and
when they really arrived. The tracking model is told none of it, so benchmarks can score it.

- :class:`TrueSpeeds`, the hidden speed field: a base speed per vehicle type x a time-of-day curve
  x a zone factor per H3 cell (felt fully by cars, less by bikes) x the rider's pace x a per-leg
  draw. Its curve is deliberately not :data:`solver.travel.PROFILES`' (smooth peaks at 09:45, 13:15
  and 18:45 of their own depth, where the planner assumes flat rush hours 08-10 and 17-20), and its
  zones are unknown to the model: learning them from pings is the ETA's job.
- :func:`drive_leg`: the true track of one leg on a street grid (a staircase of blocks, circuity
  about 4/pi = 1.27 on average), speed re-evaluated every few tens of metres, red-light waits at
  corners away from doors, sampled at the phone's ping clock.
- :class:`GpsNoise`: what the phone reports of a true track: Gaussian error of a chosen RMS
  radius, multipath outliers, an ``accuracy_m`` that tracks the real error only partly, signal
  gaps, resent fixes and late (out-of-order) delivery.
- :func:`truth_day`: a whole seeded day (riders, plans, true visits, drive-bys, observed pings)
  without Kafka, for ``milestream bench eta``.

Seeds: the city (zones, riders' paces) comes from ``TrueSpeeds.seed`` and stays the same from one
day to the next, so a model can learn it; everything else comes from the day's seed. The phone's
random draws do not depend on the noise settings, so one seed at 10, 30 and 50 m gives the same
day, the same gaps and resends, and errors that differ only in size.

Cost: a day of 10 riders x 30 stops at a 5 s ping clock (~25,000 pings) takes about 0.7 s, most
of it building the ``GpsPing`` events (~17 us per fix with noise applied).

Times are epoch seconds (floats), as in :mod:`streams.domain.tracking.eta` and :mod:`streams.domain.tracking.geofence`; the local
hour is ``(t + utc_offset_s) // 3600 % 24``.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
from h3.api import basic_int as h3_int

from schemas import events as ev
from simulator.world import FLEET, offset_point, rng_for
from solver.geo import haversine_m
from solver.travel import PROFILES

Position = tuple[float, float]  # (lat, lon) in degrees
M_PER_DEG = 111_320.0  # as world.offset_point, so local metres convert back exactly
_RAYLEIGH_68 = math.sqrt(-2.0 * math.log(0.32))  # 68 % radius of a 2D Gaussian, in per-axis sigmas


# ---------------------------------------------------------------------------------------------
# The hidden speed field

_BASE_MPS: Mapping[str, float] = MappingProxyType({  # off-peak cruising speed between corners
    ev.VehicleType.BIKE: 4.4, ev.VehicleType.SCOOTER: 7.2, ev.VehicleType.CAR: 8.3, ev.VehicleType.VAN: 7.0,
})
_RUSH_DEPTH: Mapping[str, float] = MappingProxyType({  # speed lost at the worst of the morning peak
    ev.VehicleType.BIKE: 0.08, ev.VehicleType.SCOOTER: 0.3, ev.VehicleType.CAR: 0.5, ev.VehicleType.VAN: 0.42,
})
_ZONE_EXPOSURE: Mapping[str, float] = MappingProxyType({  # how much of a zone's congestion a vehicle feels
    ev.VehicleType.BIKE: 0.4, ev.VehicleType.SCOOTER: 0.7, ev.VehicleType.CAR: 1.0, ev.VehicleType.VAN: 1.0,
})


@dataclass(frozen=True, slots=True, kw_only=True)
class TrueSpeeds:
    """How fast riders really go: ``speed_at`` is the truth the ETA model has to learn.

    ``rushes`` are (peak local hour, width in hours, share of the vehicle's ``rush_depth``):
    Gaussian dips, so the slowdown fades in and out instead of switching on the hour. Zones are
    H3 cells at ``zone_resolution`` (res 7: ~5 km2, a neighbourhood): a share of them congested
    (30-40 % slower), a share fast (arterials), the rest near 1. ``pace_sigma``: spread of the
    riders' own speed multipliers (lognormal around 1, fixed per rider); ``leg_sigma``: of the
    per-leg draw (traffic on that leg that day). A vehicle feels a zone's factor to the power of
    its ``zone_exposure``: bikes slip through the jams that stop vans."""

    seed: int = 2026  # the city
    base_mps: Mapping[str, float] = field(default_factory=lambda: _BASE_MPS)
    rush_depth: Mapping[str, float] = field(default_factory=lambda: _RUSH_DEPTH)
    zone_exposure: Mapping[str, float] = field(default_factory=lambda: _ZONE_EXPOSURE)
    rushes: tuple[tuple[float, float, float], ...] = ((9.75, 0.9, 1.0), (13.25, 0.6, 0.3), (18.75, 1.2, 0.8))
    zone_resolution: int = 7
    slow_zone_share: float = 0.25
    slow_zone_factor: tuple[float, float] = (0.6, 0.7)
    fast_zone_share: float = 0.2
    fast_zone_factor: tuple[float, float] = (1.1, 1.25)
    normal_zone_factor: tuple[float, float] = (0.9, 1.05)
    pace_sigma: float = 0.12
    leg_sigma: float = 0.1
    utc_offset_s: float = 0.0  # must match the model's (streams.domain.tracking.eta.SpeedParams.utc_offset_s)
    # memos of pure functions of the fields (not init: a replaced copy starts afresh)
    _zones: dict[int, float] = field(default_factory=dict, init=False, compare=False, repr=False)
    _paces: dict[str, float] = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.slow_zone_share < 0 or self.fast_zone_share < 0 or self.slow_zone_share + self.fast_zone_share > 1:
            raise ValueError("zone shares must be >= 0 and add up to at most 1")
        if any(d < 0 or d >= 1 for d in self.rush_depth.values()) or any(s <= 0 for s in self.base_mps.values()):
            raise ValueError("base speeds must be > 0 and rush depths in [0, 1)")

    def time_factor(self, vehicle: str, t_s: float) -> float:
        """Speed multiplier at epoch time ``t_s`` (1.0 off-peak)."""
        h = ((t_s + self.utc_offset_s) % 86_400.0) / 3600.0
        dip = 0.0
        for peak, width, share in self.rushes:
            d = min(abs(h - peak), 24.0 - abs(h - peak))
            dip += share * math.exp(-0.5 * (d / width) ** 2)
        return 1.0 - self.rush_depth[vehicle] * min(dip, 1.0)

    def zone_factor(self, lat: float, lon: float) -> float:
        """Speed multiplier of the zone (H3 cell) a point lies in, for a fully exposed vehicle (a car)."""
        cell = h3_int.latlng_to_cell(lat, lon, self.zone_resolution)
        f = self._zones.get(cell)
        if f is None:
            rng = rng_for(self.seed, f"zone/{cell}")
            u = rng.random()
            lo, hi = (self.slow_zone_factor if u < self.slow_zone_share
                      else self.fast_zone_factor if u < self.slow_zone_share + self.fast_zone_share
                      else self.normal_zone_factor)
            f = self._zones[cell] = rng.uniform(lo, hi)
        return f

    def pace(self, rider: str) -> float:
        """The rider's own speed multiplier (> 1: faster than most), the same every day."""
        p = self._paces.get(rider)
        if p is None:
            p = self._paces[rider] = rng_for(self.seed, f"pace/{rider}").lognormvariate(0.0, self.pace_sigma)
        return p

    def speed_at(self, vehicle: str, lat: float, lon: float, t_s: float, rider: str) -> float:
        """True road speed in m/s, before the per-leg draw."""
        zone = self.zone_factor(lat, lon) ** self.zone_exposure[vehicle]
        return self.base_mps[vehicle] * self.time_factor(vehicle, t_s) * zone * self.pace(rider)


# ---------------------------------------------------------------------------------------------
# True trajectories


class TrueFix(NamedTuple):
    """Where the rider really was at a ping of the phone's clock."""

    t_s: float
    lat: float
    lon: float
    speed_mps: float
    heading_deg: float | None  # None when standing still


class Knot(NamedTuple):
    """A corner of the true track: between two knots the position is linear in time."""

    t_s: float
    lat: float
    lon: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RoadParams:
    grid_bearing_deg: float = 17.0  # the street grid's orientation
    block_m: float = 180.0  # typical distance between turns
    piece_m: float = 40.0  # speed is evaluated afresh every this many metres
    light_wait_prob: float = 0.1  # at each corner
    light_wait_s: tuple[float, float] = (5.0, 30.0)
    door_clearance_m: float = 60.0  # no red lights this close to a door: stopping near a door is a visit


@dataclass(frozen=True, slots=True, kw_only=True)
class Leg:
    depart_s: float
    arrive_s: float
    road_m: float
    straight_m: float
    knots: tuple[Knot, ...]  # from (depart_s, start) to (arrive_s, end)
    fixes: tuple[TrueFix, ...]  # at the ping clock's times in [first ping, arrive_s)
    next_ping_s: float  # the first ping time at or after arrival

    @property
    def circuity(self) -> float:
        return self.road_m / self.straight_m if self.straight_m > 0 else 1.0


def _to_local(origin: Position, p: Position) -> tuple[float, float]:
    """(east, north) metres from ``origin``: the inverse of :func:`simulator.world.offset_point`."""
    return (p[1] - origin[1]) * M_PER_DEG * math.cos(math.radians(origin[0])), (p[0] - origin[0]) * M_PER_DEG


def _staircase(a: tuple[float, float], b: tuple[float, float], road: RoadParams,
               rng: random.Random) -> list[tuple[float, float]]:
    """Corners of a path from ``a`` to ``b`` along the street grid (both local metres), ``a`` excluded."""
    bearing = math.radians(road.grid_bearing_deg)
    eu = (math.sin(bearing), math.cos(bearing))  # along the avenues (east, north)
    ev_ = (math.cos(bearing), -math.sin(bearing))  # along the cross streets
    dx, dy = b[0] - a[0], b[1] - a[1]
    u, v = dx * eu[0] + dy * eu[1], dx * ev_[0] + dy * ev_[1]
    n = max(1, round(max(abs(u), abs(v)) / road.block_m))
    wu = [rng.uniform(0.5, 1.5) for _ in range(n)]
    wv = [rng.uniform(0.5, 1.5) for _ in range(n)]
    u_first = rng.random() < 0.5
    su, sv = sum(wu), sum(wv)
    x, y = a
    corners = []
    for i in range(n):
        moves = ((u * wu[i] / su, eu), (v * wv[i] / sv, ev_))
        for length, axis in (moves if u_first else moves[::-1]):
            if abs(length) >= 0.5:
                x, y = x + length * axis[0], y + length * axis[1]
                corners.append((x, y))
    corners[-1:] = [b]  # land exactly on b (float sums drift by nanometres)
    return corners


def _fixes_between(t0: float, t1: float, p0: tuple[float, float], p1: tuple[float, float], speed: float,
                   heading: float | None, ping_s: float, interval: float, origin: Position,
                   out: list[TrueFix]) -> float:
    """Append the fixes of the ping clock in [t0, t1) on the straight move p0 -> p1; next ping time."""
    span = t1 - t0
    while ping_s < t1:
        if ping_s >= t0:
            f = (ping_s - t0) / span if span > 0 else 0.0
            lat, lon = offset_point(origin[0], origin[1], p0[1] + (p1[1] - p0[1]) * f, p0[0] + (p1[0] - p0[0]) * f)
            out.append(TrueFix(ping_s, lat, lon, speed, heading))
        ping_s += interval
    return ping_s


def drive_leg(speeds: TrueSpeeds, vehicle: str, rider: str, start: Position, end: Position, depart_s: float,
              rng: random.Random, *, via: Sequence[Position] = (), doors: Sequence[Position] = (),
              next_ping_s: float | None = None, ping_interval_s: float = 5.0, road: RoadParams = RoadParams()) -> Leg:
    """The true drive from ``start`` to ``end`` (through ``via``, e.g. past another customer's door),
    leaving at ``depart_s``: its knots, its arrival time, and the true fixes at the ping clock
    (``next_ping_s``, then every ``ping_interval_s``; by default from ``depart_s``).

    Speed is ``speeds.speed_at`` at the middle of each piece of at most ``road.piece_m``, at the
    time the rider enters it, x one lognormal draw for the whole leg."""
    if ping_interval_s <= 0:
        raise ValueError(f"ping_interval_s={ping_interval_s} must be > 0")
    leg_factor = rng.lognormvariate(0.0, speeds.leg_sigma) if speeds.leg_sigma > 0 else 1.0
    origin = start
    waypoints = [_to_local(origin, p) for p in (*via, end)]
    doors_local = [_to_local(origin, d) for d in doors]
    clear2 = road.door_clearance_m ** 2
    corners: list[tuple[float, float]] = []
    last = (0.0, 0.0)
    for w in waypoints:
        corners += _staircase(last, w, road, rng)
        last = w
    t = depart_s
    ping_s = depart_s if next_ping_s is None else next_ping_s
    knots = [Knot(t, start[0], start[1])]
    fixes: list[TrueFix] = []
    road_m = 0.0
    p = (0.0, 0.0)
    for k, corner in enumerate(corners):
        dx, dy = corner[0] - p[0], corner[1] - p[1]
        length = math.hypot(dx, dy)
        if length > 0:
            heading = math.degrees(math.atan2(dx, dy)) % 360.0
            pieces = max(1, math.ceil(length / road.piece_m))
            for i in range(pieces):
                a = (p[0] + dx * i / pieces, p[1] + dy * i / pieces)
                b = (p[0] + dx * (i + 1) / pieces, p[1] + dy * (i + 1) / pieces)
                mid_lat, mid_lon = offset_point(origin[0], origin[1], (a[1] + b[1]) / 2, (a[0] + b[0]) / 2)
                speed = speeds.speed_at(vehicle, mid_lat, mid_lon, t, rider) * leg_factor
                t1 = t + (length / pieces) / speed
                ping_s = _fixes_between(t, t1, a, b, speed, heading, ping_s, ping_interval_s, origin, fixes)
                t = t1
                lat, lon = offset_point(origin[0], origin[1], b[1], b[0])
                knots.append(Knot(t, lat, lon))
            road_m += length
        p = corner
        wait_draw, wait_s = rng.random(), rng.uniform(*road.light_wait_s)
        if (k < len(corners) - 1 and wait_draw < road.light_wait_prob
                and all((p[0] - d[0]) ** 2 + (p[1] - d[1]) ** 2 > clear2 for d in doors_local)):
            ping_s = _fixes_between(t, t + wait_s, p, p, 0.0, None, ping_s, ping_interval_s, origin, fixes)
            t += wait_s
            knots.append(Knot(t, knots[-1].lat, knots[-1].lon))
    knots[-1] = Knot(t, end[0], end[1])
    return Leg(depart_s=depart_s, arrive_s=t, road_m=road_m, straight_m=haversine_m(start, end), knots=tuple(knots),
               fixes=tuple(fixes), next_ping_s=ping_s)


def stand(at: Position, from_s: float, until_s: float, next_ping_s: float, ping_interval_s: float,
          out: list[TrueFix]) -> float:
    """Append the fixes of a rider standing at ``at`` over [from_s, until_s); next ping time."""
    return _fixes_between(from_s, until_s, (0.0, 0.0), (0.0, 0.0), 0.0, None, next_ping_s, ping_interval_s, at, out)


# ---------------------------------------------------------------------------------------------
# What the phone reports


class ObservedPing(NamedTuple):
    """One delivered ping with the truth behind it (the model reads only ``ping``)."""

    ping: ev.GpsPing
    received_s: float  # when it reached the backend (``ping.occurred_at``); the stream's order
    true_lat: float
    true_lon: float
    error_m: float  # distance from the true position
    outlier: bool  # a multipath jump
    resent: bool  # a second copy of a ping already sent
    late: bool  # held back: delivered after newer pings


@dataclass(frozen=True, slots=True, kw_only=True)
class GpsNoise:
    """What a phone makes of the truth.

    ``sigma_m`` is the RMS radial error (a 2D Gaussian with ``sigma_m / sqrt(2)`` per axis, a
    Rayleigh radius). ``accuracy_m`` as phones report it: a 68 % radius estimate that is
    ``accuracy_weight`` the real error of this fix and the rest a lognormal guess around the 68 %
    radius, so it tells good fixes from bad only partly; outliers (``outlier_m`` off, multipath
    in street canyons) report a matching accuracy only with ``outlier_reported_prob``. Each fix
    may start a signal gap (nothing sent for ``gap_s``), be sent twice (the copy arrives
    ``resend_delay_s`` later), or be held back by ``late_pings`` ping intervals so newer pings
    overtake it. Device speed (Doppler) has its own small noise and survives outliers."""

    sigma_m: float = 10.0
    outlier_prob: float = 0.005
    outlier_m: tuple[float, float] = (80.0, 250.0)
    accuracy_weight: float = 0.5
    accuracy_spread: float = 0.3  # lognormal sigma of the accuracy guess
    accuracy_floor_m: float = 3.0
    outlier_reported_prob: float = 0.5
    speed_noise_mps: float = 0.5
    gap_prob: float = 0.005
    gap_s: tuple[float, float] = (20.0, 120.0)
    duplicate_prob: float = 0.01
    resend_delay_s: tuple[float, float] = (0.5, 20.0)
    out_of_order_prob: float = 0.01
    late_pings: tuple[float, float] = (1.3, 4.0)  # delay of a held-back ping, in ping intervals
    latency_s: tuple[float, float] = (0.05, 0.9)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.sigma_m) and self.sigma_m >= 0):
            raise ValueError(f"sigma_m={self.sigma_m} must be finite and >= 0")
        for name in ("outlier_prob", "gap_prob", "duplicate_prob", "out_of_order_prob", "accuracy_weight",
                     "outlier_reported_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}={getattr(self, name)} must be in [0, 1]")
        if self.late_pings[0] <= 1.0:
            raise ValueError(f"late_pings={self.late_pings} must start above 1 interval, or nothing overtakes")

    def observe(self, fixes: Sequence[TrueFix], rng: random.Random, *, rider_id: str, id_prefix: str,
                ping_interval_s: float) -> list[ObservedPing]:
        """The pings a phone delivers for ``fixes`` (in ping-clock order), in delivery order.

        Every fix draws the same random numbers whatever the settings, so runs at two noise
        levels differ only in the size of the errors."""
        axis = self.sigma_m / math.sqrt(2.0)
        r68 = axis * _RAYLEIGH_68
        device_id = f"dev-{rider_id}"
        out: list[ObservedPing] = []
        gap_until = -math.inf
        gauss, uniform, rand = rng.gauss, rng.uniform, rng.random
        for k, fix in enumerate(fixes):
            gx, gy, ga = gauss(0.0, 1.0), gauss(0.0, 1.0), gauss(0.0, 1.0)
            u_gap, u_out, u_honest, u_dup, u_late, gs = rand(), rand(), rand(), rand(), rand(), gauss(0.0, 1.0)
            gap_len, out_r, out_dir = uniform(*self.gap_s), uniform(*self.outlier_m), uniform(0.0, 2.0 * math.pi)
            latency, resend, late_by = uniform(*self.latency_s), uniform(*self.resend_delay_s), uniform(*self.late_pings)
            t = fix.t_s
            if t < gap_until:
                continue
            if u_gap < self.gap_prob:
                gap_until = t + gap_len
                continue
            north, east = gx * axis, gy * axis
            base_err = math.hypot(north, east)
            accuracy = (1.0 - self.accuracy_weight) * r68 * math.exp(self.accuracy_spread * ga) \
                + self.accuracy_weight * base_err
            outlier = u_out < self.outlier_prob
            if outlier:
                north += out_r * math.cos(out_dir)
                east += out_r * math.sin(out_dir)
                if u_honest < self.outlier_reported_prob:
                    accuracy = math.hypot(north, east) * (0.8 + 0.7 * u_honest / max(self.outlier_reported_prob, 1e-9))
            lat, lon = offset_point(fix.lat, fix.lon, north, east)
            moving = fix.speed_mps > 0
            speed = max(0.0, fix.speed_mps + self.speed_noise_mps * gs) if moving else abs(0.3 * self.speed_noise_mps * gs)
            late = u_late < self.out_of_order_prob
            # whole milliseconds, as phones stamp fixes and Avro carries timestamps
            received = round(t + latency + (late_by * ping_interval_s if late else 0.0), 3)
            device_time = datetime.fromtimestamp(round(t, 3), UTC)
            ping = ev.GpsPing(event_id=f"{id_prefix}-{k}", occurred_at=datetime.fromtimestamp(received, UTC),
                              rider_id=rider_id, device_id=device_id, device_time=device_time, lat=lat, lon=lon,
                              speed_mps=round(speed, 2),
                              heading_deg=None if fix.heading_deg is None else round(fix.heading_deg, 1),
                              accuracy_m=round(max(self.accuracy_floor_m, accuracy), 1))
            err = math.hypot(north, east)
            out.append(ObservedPing(ping, received, fix.lat, fix.lon, err, outlier, False, late))
            if u_dup < self.duplicate_prob:
                copy_at = round(received + resend, 3)
                out.append(ObservedPing(dataclasses.replace(ping, occurred_at=datetime.fromtimestamp(copy_at, UTC)),
                                        copy_at, fix.lat, fix.lon, err, outlier, True, late))
        out.sort(key=lambda o: o.received_s)
        return out


# ---------------------------------------------------------------------------------------------
# A whole day


@dataclass(frozen=True, slots=True, kw_only=True)
class StopVisit:
    """A true stay at a stop or at the hub: the arrival the geofence should report, and the departure."""

    rider_id: str
    route_id: str
    stop_id: str  # order id, or hub id
    is_hub: bool
    sequence: int  # position in the route; -1 for the hub at the start, len(stops) at the end
    lat: float  # the stop's address (the rider parks a few metres off it)
    lon: float
    arrival_s: float  # at the hub at the start: when the shift began (the rider was there already)
    departure_s: float  # at the hub at the end: the end of the shift (the phone stops there)
    planned_service_s: float
    failed: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class DriveBy:
    """The rider passed within ``DayParams.drive_by_m`` of a fence of its route without stopping: an
    arrival reported here is a false one."""

    rider_id: str
    route_id: str
    stop_id: str
    is_hub: bool
    enter_s: float
    exit_s: float
    closest_m: float
    closest_s: float
    before_visit: bool  # the stop was still ahead (a fence the geofence is watching)


@dataclass(frozen=True, slots=True, kw_only=True)
class RiderDay:
    rider_id: str
    vehicle_type: ev.VehicleType
    route: ev.RoutePlanned  # what the model is told
    start_s: float
    end_s: float
    road_m: float
    pace: float


@dataclass(frozen=True, slots=True, kw_only=True)
class GroundTruthDay:
    seed: int
    noise: GpsNoise
    speeds: TrueSpeeds
    riders: tuple[RiderDay, ...]
    visits: tuple[StopVisit, ...]
    drive_bys: tuple[DriveBy, ...]
    pings: tuple[ObservedPing, ...]  # every rider's, in delivery order


@dataclass(frozen=True, slots=True, kw_only=True)
class DayParams:
    ping_interval_s: float = 5.0
    day_start: datetime = datetime(2026, 11, 24, 7, 30, tzinfo=UTC)
    start_spread_s: float = 5_400.0  # riders leave over 90 min, across the morning peak
    hub: Position = (12.9716, 77.5946)
    hub_id: str = "hub-1"
    first_stop_m: tuple[float, float] = (800.0, 2_500.0)
    stop_spacing_m: tuple[float, float] = (250.0, 900.0)
    min_stop_gap_m: float = 150.0  # between any two fences of a route: every stay near one is its visit
    max_radius_m: float = 6_000.0
    pass_by_prob: float = 0.25  # a leg goes past the door of one of the next stops
    pass_by_m: tuple[float, float] = (5.0, 40.0)
    park_m: tuple[float, float] = (0.0, 15.0)  # where the rider stands from the geocoded address
    load_s: tuple[float, float] = (120.0, 300.0)  # at the hub before leaving
    unload_s: tuple[float, float] = (60.0, 180.0)
    service_times_s: tuple[int, ...] = (60, 90, 120, 180)  # planned, as world.make_day
    service_sigma: float = 0.35  # true service = planned x lognormal
    failure_prob: float = 0.05
    failed_s: tuple[float, float] = (25.0, 60.0)  # a failed attempt is short
    drive_by_m: float = 50.0
    road: RoadParams = RoadParams()
    gps: GpsNoise = GpsNoise()  # truth_day's noise_m replaces its sigma_m


def _place_stops(params: DayParams, rng: random.Random, heading: float, count: int) -> list[Position]:
    """A rider's stops as a wandering walk out of the hub, no two fences closer than ``min_stop_gap_m``."""
    hub = params.hub
    placed: list[tuple[float, float]] = []  # local metres from the hub (east, north)
    x, y = 0.0, 0.0
    for k in range(count):
        for attempt in range(200):
            step = rng.uniform(*(params.first_stop_m if k == 0 else params.stop_spacing_m)) * (1 + attempt / 50)
            heading += rng.uniform(-1.0, 1.0) * (1 + attempt / 20)
            nx, ny = x + step * math.sin(heading), y + step * math.cos(heading)
            if math.hypot(nx, ny) > params.max_radius_m:
                heading = math.atan2(-x, -y)
                continue
            if all(math.hypot(nx - px, ny - py) >= params.min_stop_gap_m for px, py in [(0.0, 0.0), *placed]):
                break
        else:
            raise RuntimeError("could not place a stop: loosen min_stop_gap_m or widen max_radius_m")
        placed.append((nx, ny))
        x, y = nx, ny
    return [offset_point(hub[0], hub[1], n, e) for e, n in placed]


def _plan(rider_id: str, route_id: str, vehicle: ev.VehicleType, params: DayParams, stops: Sequence[Position],
          order_ids: Sequence[str], services: Sequence[int], start_s: float, utc_offset_s: float,
          seed: int) -> ev.RoutePlanned:
    """What dispatch told the rider: stop times from the planner's own profile (not the truth)."""
    profile = PROFILES[vehicle]
    t = start_s + sum(params.load_s) / 2
    planned_start = t
    here, distance = params.hub, 0.0
    planned = []
    for pos, order_id, service in zip(stops, order_ids, services, strict=True):
        road = haversine_m(here, pos) * profile.circuity
        t += road / profile.speed_at((t + utc_offset_s) % 86_400.0)
        distance += road
        planned.append(ev.PlannedStop(order_id=order_id, kind=ev.StopKind.DROP, lat=pos[0], lon=pos[1],
                                      planned_arrival=datetime.fromtimestamp(t, UTC), service_time_s=service))
        t += service
        here = pos
    road = haversine_m(here, params.hub) * profile.circuity
    t += road / profile.speed_at((t + utc_offset_s) % 86_400.0)
    return ev.RoutePlanned(
        event_id=f"plan-{seed}-{rider_id}", occurred_at=datetime.fromtimestamp(start_s, UTC), rider_id=rider_id,
        route_id=route_id, hub_id=params.hub_id, stops=tuple(planned),
        start=ev.GeoPoint(lat=params.hub[0], lon=params.hub[1]), planned_start=datetime.fromtimestamp(planned_start, UTC),
        planned_end=datetime.fromtimestamp(t, UTC), distance_m=round(distance + road, 1))


def _drive_bys(knots: Sequence[Knot], fences: Sequence[tuple[str, bool, Position]], visits: Sequence[StopVisit],
               radius_m: float, rider_id: str, route_id: str) -> list[DriveBy]:
    """Every pass within ``radius_m`` of a fence outside that fence's visits, solved exactly on the
    knots (position is linear in time between them), for all fences at once."""
    origin = fences[-1][2]
    cos0 = math.cos(math.radians(origin[0]))
    kn = np.asarray(knots, dtype=float)
    t, x, y = kn[:, 0], (kn[:, 2] - origin[1]) * M_PER_DEG * cos0, (kn[:, 1] - origin[0]) * M_PER_DEG
    cx = np.array([(f[2][1] - origin[1]) * M_PER_DEG * cos0 for f in fences])
    cy = np.array([(f[2][0] - origin[0]) * M_PER_DEG for f in fences])
    dx, dy = np.diff(x)[:, None], np.diff(y)[:, None]
    fx, fy = x[:-1, None] - cx[None, :], y[:-1, None] - cy[None, :]
    a, b, c = dx * dx + dy * dy, fx * dx + fy * dy, fx * fx + fy * fy - radius_m * radius_m
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.sqrt(np.maximum(b * b - a * c, 0.0))
        s0 = np.where(a > 0, (-b - root) / a, np.where(c <= 0, 0.0, 2.0))
        s1 = np.where(a > 0, (-b + root) / a, np.where(c <= 0, 1.0, -1.0))
        s_near = np.where(a > 0, np.clip(-b / a, 0.0, 1.0), 0.0)
    s0, s1 = np.maximum(s0, 0.0), np.minimum(s1, 1.0)
    hit = (s0 <= s1) & ((b * b - a * c >= 0) | (a == 0))
    near2 = c + radius_m * radius_m + 2 * b * s_near + a * s_near * s_near
    dt = np.diff(t)[:, None]
    t_in, t_out, t_near = t[:-1, None] + s0 * dt, t[:-1, None] + s1 * dt, t[:-1, None] + s_near * dt
    stays: dict[str, list[tuple[float, float]]] = {}
    for v in visits:
        stays.setdefault(v.stop_id, []).append((v.arrival_s, v.departure_s))
    first_arrival = {sid: min(a for a, _ in spans) for sid, spans in stays.items()}
    found = []
    for j, (fence_id, is_hub, _) in enumerate(fences):
        rows = np.flatnonzero(hit[:, j])
        passes: list[list[float]] = []  # [enter, exit, closest distance^2, closest time]
        for i in rows:
            if passes and t_in[i, j] - passes[-1][1] <= 1e-6:
                p = passes[-1]
                p[1] = t_out[i, j]
                if near2[i, j] < p[2]:
                    p[2], p[3] = near2[i, j], t_near[i, j]
            else:
                passes.append([t_in[i, j], t_out[i, j], near2[i, j], t_near[i, j]])
        for enter, leave, d2, at in passes:
            if any(enter <= dep and leave >= arr for arr, dep in stays.get(fence_id, ())):
                continue
            found.append(DriveBy(rider_id=rider_id, route_id=route_id, stop_id=fence_id, is_hub=is_hub,
                                 enter_s=float(enter), exit_s=float(leave), closest_m=math.sqrt(max(float(d2), 0.0)),
                                 closest_s=float(at), before_visit=float(enter) < first_arrival.get(fence_id, math.inf)))
    return found


def truth_day(seed: int, riders: int = 10, stops_per_rider: int = 30, noise_m: float = 30.0, *,
              params: DayParams = DayParams(), speeds: TrueSpeeds = TrueSpeeds()) -> GroundTruthDay:
    """A simulated day with its ground truth: plans, true visits and drive-bys, and the pings the
    phones delivered under ``noise_m`` of RMS GPS error. Pure and deterministic per seed."""
    if riders < 1 or stops_per_rider < 1:
        raise ValueError(f"need at least one rider and one stop, got riders={riders} stops={stops_per_rider}")
    gps = dataclasses.replace(params.gps, sigma_m=noise_m)
    interval = params.ping_interval_s
    hub = params.hub
    day0 = params.day_start.timestamp()
    rider_days: list[RiderDay] = []
    visits: list[StopVisit] = []
    drive_bys: list[DriveBy] = []
    pings: list[ObservedPing] = []
    for i in range(riders):
        rider_id, vehicle = f"rider-{i + 1:03d}", FLEET[i % len(FLEET)]
        route_id = f"route-{seed}-{rider_id}"
        plan_rng, drive_rng = rng_for(seed, f"truth-plan/{rider_id}"), rng_for(seed, f"truth-drive/{rider_id}")
        start_s = day0 + plan_rng.uniform(0.0, params.start_spread_s)
        stops = _place_stops(params, plan_rng, 2 * math.pi * i / riders + plan_rng.uniform(-0.3, 0.3), stops_per_rider)
        order_ids = [f"ord-{seed}-{i + 1:03d}-{k + 1:02d}" for k in range(stops_per_rider)]
        services = [plan_rng.choice(params.service_times_s) for _ in stops]
        route = _plan(rider_id, route_id, vehicle, params, stops, order_ids, services, start_s, speeds.utc_offset_s, seed)
        doors = [*stops, hub]
        fixes: list[TrueFix] = []
        rider_visits: list[StopVisit] = []
        leave = start_s + drive_rng.uniform(*params.load_s)
        knots = [Knot(start_s, hub[0], hub[1]), Knot(leave, hub[0], hub[1])]
        next_ping = stand(hub, start_s, leave, start_s, interval, fixes)
        rider_visits.append(StopVisit(rider_id=rider_id, route_id=route_id, stop_id=params.hub_id, is_hub=True,
                                      sequence=-1, lat=hub[0], lon=hub[1], arrival_s=start_s, departure_s=leave,
                                      planned_service_s=0.0))
        here, t, road_m = hub, leave, 0.0
        for k, (stop, order_id, service) in enumerate(zip(stops, order_ids, services, strict=True)):
            park_r, park_dir = drive_rng.uniform(*params.park_m), drive_rng.uniform(0.0, 2 * math.pi)
            park = offset_point(stop[0], stop[1], park_r * math.cos(park_dir), park_r * math.sin(park_dir))
            pass_draw, ahead = drive_rng.random(), drive_rng.randrange(1, 4)
            by_r, by_dir = drive_rng.uniform(*params.pass_by_m), drive_rng.uniform(0.0, 2 * math.pi)
            via: tuple[Position, ...] = ()
            if pass_draw < params.pass_by_prob and k + ahead < len(stops):
                door = stops[k + ahead]
                via = (offset_point(door[0], door[1], by_r * math.cos(by_dir), by_r * math.sin(by_dir)),)
            leg = drive_leg(speeds, vehicle, rider_id, here, park, t, drive_rng, via=via, doors=doors,
                            next_ping_s=next_ping, ping_interval_s=interval, road=params.road)
            fixes += leg.fixes
            knots += leg.knots[1:]
            road_m += leg.road_m
            failed = drive_rng.random() < params.failure_prob
            stay_s = drive_rng.uniform(*params.failed_s) if failed else min(
                4.0 * service, max(20.0, service * drive_rng.lognormvariate(0.05, params.service_sigma)))
            t = leg.arrive_s + stay_s
            next_ping = stand(park, leg.arrive_s, t, leg.next_ping_s, interval, fixes)
            knots.append(Knot(t, park[0], park[1]))
            rider_visits.append(StopVisit(rider_id=rider_id, route_id=route_id, stop_id=order_id, is_hub=False,
                                          sequence=k, lat=stop[0], lon=stop[1], arrival_s=leg.arrive_s, departure_s=t,
                                          planned_service_s=float(service), failed=failed))
            here = park
        leg = drive_leg(speeds, vehicle, rider_id, here, hub, t, drive_rng, doors=doors, next_ping_s=next_ping,
                        ping_interval_s=interval, road=params.road)
        fixes += leg.fixes
        knots += leg.knots[1:]
        road_m += leg.road_m
        end_s = leg.arrive_s + drive_rng.uniform(*params.unload_s)
        stand(hub, leg.arrive_s, end_s, leg.next_ping_s, interval, fixes)
        knots.append(Knot(end_s, hub[0], hub[1]))
        rider_visits.append(StopVisit(rider_id=rider_id, route_id=route_id, stop_id=params.hub_id, is_hub=True,
                                      sequence=stops_per_rider, lat=hub[0], lon=hub[1], arrival_s=leg.arrive_s,
                                      departure_s=end_s, planned_service_s=0.0))
        fences = [*((oid, False, s) for oid, s in zip(order_ids, stops, strict=True)), (params.hub_id, True, hub)]
        drive_bys += _drive_bys(knots, fences, rider_visits, params.drive_by_m, rider_id, route_id)
        visits += rider_visits
        pings += gps.observe(fixes, rng_for(seed, f"truth-gps/{rider_id}"), rider_id=rider_id,
                             id_prefix=f"gps-{seed}-{rider_id}", ping_interval_s=interval)
        rider_days.append(RiderDay(rider_id=rider_id, vehicle_type=vehicle, route=route, start_s=start_s, end_s=end_s,
                                   road_m=road_m, pace=speeds.pace(rider_id)))
    pings.sort(key=lambda o: o.received_s)
    drive_bys.sort(key=lambda d: (d.rider_id, d.enter_s))
    return GroundTruthDay(seed=seed, noise=gps, speeds=speeds, riders=tuple(rider_days), visits=tuple(visits),
                          drive_bys=tuple(drive_bys), pings=tuple(pings))


__all__ = [
    "DayParams", "DriveBy", "GpsNoise", "GroundTruthDay", "Knot", "Leg", "ObservedPing", "RiderDay", "RoadParams",
    "StopVisit", "TrueFix", "TrueSpeeds", "drive_leg", "stand", "truth_day",
]
