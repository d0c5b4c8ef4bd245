"""Geofences, pure: arrival at and departure from stops and hubs (custom zones are in
:mod:`streams.domain.tracking.zones`).

Why not a plain "inside the radius for N seconds" rule: city GPS is off by 30-50 m, so a single
radius fires early, late or twice (Traccar users have asked for debounced geofences since 2016).
Here each fence has

- separate **enter and exit radii** (hysteresis): arrival needs fixes inside the smaller one,
  departure needs fixes beyond the larger one, so jitter at an edge never flips the state;
- **accuracy gating and widening**: fixes worse than ``worst_accuracy_m`` are no evidence either
  way; the others widen the radii by their reported accuracy, capped per fence below half the gap
  to the nearest other fence of the route (stops can be 150 m apart: no fix counts for two);
- **dwell with evidence**: arrival needs ``min_fixes`` stopped fixes inside spanning ``dwell_s``
  (``ahead_dwell_s`` for any stop but the next in route order), most of the fixes since entry
  inside, and the filtered (accuracy-weighted mean) position inside the enter radius, which keeps
  out red-light waits (none within 60 m of a door) under 30-50 m noise. A fix whose device speed
  says the rider is moving (above ``stopped_speed_mps``, 1 m/s: a standing phone reports well
  under it, a bike crawling through traffic at 2-3 m/s well over) is no dwell evidence;
- **backdating**: ``Arrival.at`` is the first fix of the entry that led to the arrival, not the
  end of the dwell, so the reported time is not late by the dwell; departure is the last fix
  inside the enter radius before the rider was seen beyond the exit radius;
- **robust departure**: ``depart_fixes`` consecutive fixes beyond the exit radius spanning
  ``depart_s``, so one multipath outlier during a long stop does not end it.

Stops are watched in route order with a lookahead (a missed arrival does not stall the route);
a stop arrives at most once. Several stops at one place (two pickups at a store, a pickup at
the hub) are each arrived at: the next one in order after its dwell, the ones behind it as soon
as they are next. Stops skipped by an arrival further ahead stay watched: if that
arrival was a false one, the rider's real visit to them still counts. The route's hub is always watched and can be arrived at again after
each departure (reloads, end of shift).

Cost: fences are indexed by H3 cell (cells within the widest enter radius, precomputed per route),
so a ping far from every fence costs one ``latlng_to_cell`` and one dict lookup and returns the
same state object (as does one near a fence but outside its enter radius, with nothing going on). Distances are a local equirectangular approximation in metres (error well
under 0.1% within a few km, far below GPS noise; :func:`solver.geo.haversine_m` is ~4x dearer
and not needed at this scale), compared squared. Times are device times in epoch seconds.
Caching ``latlng_to_cell`` by rounded coordinates was measured slower than the call itself.

Hot state (the rider's, per fence) is a ``NamedTuple``: immutable like the frozen
dataclasses elsewhere but about 5x cheaper to build, and a new one is built on every ping at a fence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import NamedTuple

import h3
from h3.api import basic_int as h3_int

from schemas import events as ev
from schemas.events import FenceKind  # the kinds are the wire enums
from solver.geo import M_PER_DEG, haversine_matrix_m


@dataclass(frozen=True, slots=True, kw_only=True)
class GeofenceParams:
    """Defaults tuned for 30 m (1 sigma per axis) GPS noise and a fix every ~10 s."""

    h3_resolution: int = 9  # index cells (~174 m edge): a few cells cover a fence
    stop_enter_radius_m: float = 50.0
    stop_exit_radius_m: float = 120.0
    hub_enter_radius_m: float = 100.0  # a depot yard is bigger than a doorstep
    hub_exit_radius_m: float = 200.0
    accuracy_bonus_cap_m: float = 60.0  # radii widen by the fix's accuracy, up to this
    worst_accuracy_m: float = 100.0  # worse fixes are no evidence either way
    unknown_accuracy_m: float = 20.0  # assumed when the device does not say
    dwell_s: float = 5.0  # from the first to the last stopped fix inside (a stay can be 20 s with gaps)
    ahead_dwell_s: float = 20.0  # the same for any stop but the next in route order: more evidence
    min_fixes: int = 2  # stopped fixes inside needed for an arrival (one more without device speed)
    min_inside_share: float = 0.6  # of the fixes since entry, this share inside and stopped
    reset_fixes: int = 2  # consecutive fixes outside the enter radius end an entry
    max_gap_s: float = 180.0  # an entry with no fix for longer starts again
    stopped_speed_mps: float = 1.0  # device speed above this = moving, not dwelling: a standing phone
    # reports well under it, a bike crawling past in traffic (2-3 m/s) well over
    fitted_speed_mps: float = 3.0  # without device speed: a fitted velocity above this = passing through
    depart_fixes: int = 3  # consecutive fixes beyond the exit radius...
    depart_s: float = 15.0  # ...spanning at least this long
    lookahead: int = 3  # next stops watched, so a missed arrival does not stall the route


@dataclass(frozen=True, slots=True, kw_only=True)
class Fence:
    fence_id: str  # stop_fence_id of a stop, hub id of a hub
    kind: FenceKind
    lat: float
    lon: float
    enter_radius_m: float
    exit_radius_m: float
    m_per_deg_lon: float  # local scale for the equirectangular distance
    bonus_cap_m: float  # accuracy widening cap: below half the gap to the nearest other fence


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteFences:
    """A route's fences, built once per route: stops in route order, then the hub (if any)."""

    route_id: str
    fences: tuple[Fence, ...]
    stop_count: int
    resolution: int
    by_cell: Mapping[int, tuple[int, ...]]  # H3 cell -> indexes into ``fences``


class AtFence(NamedTuple):
    """A rider arrived at a fence and not yet departed. Rebuilt on every ping at the fence, so
    kept small (built positionally: ~0.6 us, where ``_replace`` on a wide tuple costs ~2 us)."""

    index: int
    last_in_at: datetime  # last fix inside the enter radius: the departure time
    last_s: float  # last fix seen (ordering guard)
    misses: int  # consecutive fixes beyond the exit radius
    miss_s: float  # first fix of the current misses


class Entering(NamedTuple):
    """A rider inside a fence's enter radius, not yet arrived; only fences with something going
    on have a state."""

    index: int
    entry_at: datetime  # first fix of the entry (arrival time once arrived)
    entry_s: float
    last_in_at: datetime  # last fix inside the enter radius
    last_s: float  # last fix seen at this fence (ordering guard)
    seen: int  # fixes since entry not known to be moving
    fixes: int  # of which inside: the dwell evidence ("counted" fixes)
    blind: int  # counted fixes without a device speed
    misses: int  # consecutive fixes outside the enter radius
    # accuracy-weighted sums over the counted fixes, in metres from the fence centre and seconds
    # from entry: the filtered position, and a least-squares velocity when the device gives none
    sw: float = 0.0
    sx: float = 0.0
    sy: float = 0.0
    st: float = 0.0
    stt: float = 0.0
    stx: float = 0.0
    sty: float = 0.0
    acc_sum: float = 0.0
    still_s: float = 0.0  # first counted fix: the dwell runs from here...
    still_until_s: float = 0.0  # ...to the last counted one (a red light seen once is no dwell)


class RiderFences(NamedTuple):
    """A rider's progress on the route. A NamedTuple, not a frozen dataclass: a new one is built on
    every ping that changes a fence state (a third of all pings), ~5x cheaper."""

    rider_id: str
    route_id: str | None = None
    next_stop: int = 0  # one past the furthest stop arrived at; stops before it not arrived at are skipped
    arrived: int = 0  # bit i set: stop i has arrived (a stop arrives at most once)
    active: tuple[Entering | AtFence, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Arrival:
    rider_id: str
    route_id: str
    fence_id: str
    kind: FenceKind
    at: datetime  # first fix of the entry that led to the arrival
    lat: float  # filtered position
    lon: float
    confidence: float  # 0..1 score from fixes, inside share, depth and accuracy (not calibrated)
    source_ping_id: str  # the ping that confirmed it


@dataclass(frozen=True, slots=True, kw_only=True)
class Departure:
    rider_id: str
    route_id: str
    fence_id: str
    kind: FenceKind
    at: datetime  # last fix inside the enter radius
    confidence: float
    source_ping_id: str


FenceEvent = Arrival | Departure


PICKUP_SUFFIX = "/pickup"


def stop_fence_id(stop: ev.PlannedStop) -> str:
    """A drop's fence is its order id; a pickup's is ``<order id>/pickup``: one order has both stops
    on a hyperlocal route, and each is arrived at once."""
    return stop.order_id + PICKUP_SUFFIX if stop.kind is ev.StopKind.PICKUP else stop.order_id


def _cells_within(lat: float, lon: float, radius_m: float, resolution: int) -> set[int]:
    """Every cell that can contain a point within ``radius_m`` (cell centre within radius + edge)."""
    edge = h3.average_hexagon_edge_length(resolution, "m")
    reach = radius_m + 1.2 * edge  # hexagon circumradius = edge; 20% for distortion
    m_lon = M_PER_DEG * math.cos(math.radians(lat))
    centre = h3_int.latlng_to_cell(lat, lon, resolution)
    cells = set()
    for cell in h3_int.grid_disk(centre, int(reach / (1.5 * edge)) + 2):
        clat, clon = h3_int.cell_to_latlng(cell)
        if ((clat - lat) * M_PER_DEG) ** 2 + ((clon - lon) * m_lon) ** 2 <= reach * reach:
            cells.add(cell)
    return cells


def _fence(fence_id: str, kind: FenceKind, lat: float, lon: float, enter: float, exit_: float,
           bonus_cap: float) -> Fence:
    if not 0 < enter < exit_:
        raise ValueError(f"fence {fence_id}: need 0 < enter radius ({enter}) < exit radius ({exit_})")
    return Fence(fence_id=fence_id, kind=kind, lat=lat, lon=lon, enter_radius_m=enter, exit_radius_m=exit_,
                 m_per_deg_lon=M_PER_DEG * math.cos(math.radians(lat)), bonus_cap_m=bonus_cap)


def route_fences(route: ev.RoutePlanned, params: GeofenceParams = GeofenceParams()) -> RouteFences:
    """The fences of a route's stops and hub (the route's start), with their H3 index.

    Each fence's accuracy widening is capped so that its widest enter radius stays within half
    the gap to the nearest other fence of the route: stops can be 150 m apart, and a fix between
    two of them must not count for both (it would let a rider waiting at one arrive at the other)."""
    points = [(s.lat, s.lon) for s in route.stops] + [(route.start.lat, route.start.lon)]
    enters = [params.stop_enter_radius_m] * len(route.stops) + [params.hub_enter_radius_m]
    gaps = haversine_matrix_m(points)
    gaps[range(len(points)), range(len(points))] = math.inf
    caps = [max(0.0, min(params.accuracy_bonus_cap_m, 0.5 * float(g) - e)) for g, e in zip(gaps.min(axis=1), enters,
                                                                                         strict=True)]
    fences = [_fence(stop_fence_id(s), FenceKind.STOP, s.lat, s.lon, params.stop_enter_radius_m,
                     params.stop_exit_radius_m, caps[i]) for i, s in enumerate(route.stops)]
    fences.append(_fence(route.hub_id, FenceKind.HUB, route.start.lat, route.start.lon, params.hub_enter_radius_m,
                         params.hub_exit_radius_m, caps[-1]))
    by_cell: dict[int, list[int]] = {}
    for i, f in enumerate(fences):
        for cell in _cells_within(f.lat, f.lon, f.enter_radius_m + f.bonus_cap_m, params.h3_resolution):
            by_cell.setdefault(cell, []).append(i)
    return RouteFences(route_id=route.route_id, fences=tuple(fences), stop_count=len(route.stops),
                       resolution=params.h3_resolution,
                       by_cell=MappingProxyType({c: tuple(ix) for c, ix in by_cell.items()}))


_new_tuple = tuple.__new__  # a NamedTuple from all its fields in order, without the argument parsing (~3x cheaper)


def start_route(rider: RiderFences, route_id: str) -> RiderFences:
    """A new route: progress and fence states start over."""
    return RiderFences(rider_id=rider.rider_id, route_id=route_id)


def on_ping(rider: RiderFences, route: RouteFences, ping: ev.GpsPing,
            params: GeofenceParams = GeofenceParams()) -> tuple[RiderFences, tuple[FenceEvent, ...]]:
    """Fold one ping in. Returns the same state object when the ping changes nothing (far from
    every fence, near one but outside its enter radius, gated out, out of order, or no route)."""
    route_id = rider.route_id
    if route_id != route.route_id:
        return rider, ()
    acc = ping.accuracy_m
    if acc is None:
        acc = params.unknown_accuracy_m
    elif acc > params.worst_accuracy_m:
        return rider, ()
    lat, lon = ping.lat, ping.lon
    candidates = route.by_cell.get(h3_int.latlng_to_cell(lat, lon, route.resolution), ())
    active = rider.active
    if not candidates and not active:
        return rider, ()
    fences = route.fences
    cap = params.accuracy_bonus_cap_m
    bonus = acc if acc < cap else cap
    if not active:  # fast exit for most pings between stops: no candidate's enter radius holds the fix
        for i in candidates:
            f = fences[i]
            dx = (lon - f.lon) * f.m_per_deg_lon
            dy = (lat - f.lat) * M_PER_DEG
            enter = f.enter_radius_m + (bonus if bonus < f.bonus_cap_m else f.bonus_cap_m)
            if dx * dx + dy * dy <= enter * enter:
                break
        else:
            return rider, ()
    at = ping.device_time
    t = at.timestamp()
    speed = ping.speed_mps
    stopped = speed is None or speed <= params.stopped_speed_mps
    weight = 1.0 / (acc * acc if acc > 5.0 else 25.0)
    stop_count = route.stop_count
    next_stop = rider.next_stop
    arrived = rider.arrived
    window_end = next_stop + params.lookahead
    events: list[FenceEvent] = []
    kept: list[Entering | AtFence] = []
    tracked = 0  # bit i set: fence i has a state, so candidate i need not start one

    for st in active:
        if t <= st.last_s:
            return rider, ()  # duplicate or out of order (upstream hygiene should have dropped it): nothing changes
        i = st.index
        f = fences[i]
        dx = (lon - f.lon) * f.m_per_deg_lon
        dy = (lat - f.lat) * M_PER_DEG
        d2 = dx * dx + dy * dy
        enter = f.enter_radius_m + (bonus if bonus < f.bonus_cap_m else f.bonus_cap_m)
        if type(st) is AtFence:  # the common case (a rider at a stop or the hub): rebuilt without argument parsing
            tracked |= 1 << i
            exit_ = f.exit_radius_m + bonus
            if d2 > exit_ * exit_:
                misses = st.misses + 1
                miss_s = t if misses == 1 else st.miss_s
                if misses >= params.depart_fixes and t - miss_s >= params.depart_s:
                    events.append(Departure(rider_id=rider.rider_id, route_id=route_id, fence_id=f.fence_id,
                                            kind=f.kind, at=st.last_in_at,
                                            confidence=_departure_confidence(misses, params),
                                            source_ping_id=ping.event_id))
                    continue
                kept.append(_new_tuple(AtFence, (i, st.last_in_at, t, misses, miss_s)))
            else:
                kept.append(_new_tuple(AtFence, (i, at if d2 <= enter * enter else st.last_in_at, t, 0, 0.0)))
            continue
        # entering
        if t - st.last_s > params.max_gap_s:
            continue  # gone quiet: may start afresh below
        tracked |= 1 << i
        if d2 <= enter * enter:
            st = _counted(st, at, t, dx, dy, acc, weight, speed is None) if stopped else \
                st._replace(last_in_at=at, last_s=t, misses=0)  # passing through: neither for nor against
        else:
            misses = st.misses + 1
            if misses >= params.reset_fixes:
                continue
            st = st._replace(last_s=t, seen=st.seen + stopped, misses=misses)
        arrival = _arrival(st, f, rider, route_id, ping, params, i != next_stop and i < stop_count)
        if arrival is None:
            kept.append(st)
            continue
        events.append(arrival)
        kept.append(AtFence(i, at, t, 0, 0.0))
        if i < stop_count:
            arrived |= 1 << i
            if i >= next_stop:
                next_stop = i + 1

    for i in candidates:
        if tracked >> i & 1 or (i < stop_count and (i >= window_end or arrived >> i & 1)):
            continue  # skipped stops are still watched: a false arrival ahead must not cost their real visit
        f = fences[i]
        dx = (lon - f.lon) * f.m_per_deg_lon
        dy = (lat - f.lat) * M_PER_DEG
        enter = f.enter_radius_m + (bonus if bonus < f.bonus_cap_m else f.bonus_cap_m)
        if dx * dx + dy * dy > enter * enter:
            continue
        st = Entering(index=i, entry_at=at, entry_s=t, last_in_at=at, last_s=t, seen=0, fixes=0, blind=0, misses=0)
        if stopped:
            st = _counted(st, at, t, dx, dy, acc, weight, speed is None)
        arrival = _arrival(st, f, rider, route_id, ping, params, i != next_stop and i < stop_count)
        if arrival is not None:
            events.append(arrival)
            st = AtFence(i, at, t, 0, 0.0)
            if i < stop_count:
                arrived |= 1 << i
                if i >= next_stop:
                    next_stop = i + 1
        kept.append(st)

    if not kept and not active:
        return rider, ()  # inside a fence already arrived at or beyond the lookahead
    return _new_tuple(RiderFences, (rider.rider_id, route_id, next_stop, arrived, tuple(kept))), tuple(events)


def _counted(st: Entering, at: datetime, t: float, dx: float, dy: float, acc: float, w: float,
             blind: bool) -> Entering:
    """``st`` with one more stopped fix inside the enter radius."""
    tau = t - st.entry_s
    return Entering(st.index, st.entry_at, st.entry_s, at, t, st.seen + 1, st.fixes + 1, st.blind + blind, 0,
                    st.sw + w, st.sx + w * dx, st.sy + w * dy, st.st + w * tau, st.stt + w * tau * tau,
                    st.stx + w * tau * dx, st.sty + w * tau * dy, st.acc_sum + acc,
                    st.still_s if st.fixes else t, t)


def _arrival(st: Entering, f: Fence, rider: RiderFences, route_id: str, ping: ev.GpsPing,
             params: GeofenceParams, ahead: bool) -> Arrival | None:
    """Arrival once enough stopped fixes inside span the dwell (a longer one when ``ahead``: not the
    next stop in route order), most fixes are inside, and the filtered position is inside the
    enter radius. Without the device's speed, one more fix and a fitted velocity below
    ``fitted_speed_mps`` stand in for it (a slow drive-through is otherwise a dwell)."""
    n = st.fixes
    if n < params.min_fixes or n < params.min_inside_share * st.seen \
            or st.still_until_s - st.still_s < (params.ahead_dwell_s if ahead else params.dwell_s):
        return None
    sw = st.sw
    if st.blind:
        if n <= params.min_fixes:
            return None
        den = sw * st.stt - st.st * st.st
        vx, vy = (sw * st.stx - st.st * st.sx) / den, (sw * st.sty - st.st * st.sy) / den
        if vx * vx + vy * vy > params.fitted_speed_mps * params.fitted_speed_mps:
            return None
    mx, my = st.sx / sw, st.sy / sw
    mean_acc = st.acc_sum / n
    stderr = min(mean_acc, f.bonus_cap_m) / math.sqrt(n)
    limit = f.enter_radius_m  # deep enough that a red-light wait 60 m off a door is no visit
    depth2 = mx * mx + my * my
    if depth2 > limit * limit:
        return None
    depth = 1.0 - math.sqrt(depth2) / limit
    confidence = (1.0 - 0.5 ** n) * (n / st.seen) * (0.5 + 0.5 * depth) * f.enter_radius_m / (f.enter_radius_m + stderr)
    return Arrival(rider_id=rider.rider_id, route_id=route_id, fence_id=f.fence_id, kind=f.kind, at=st.entry_at,
                   lat=f.lat + my / M_PER_DEG, lon=f.lon + mx / f.m_per_deg_lon,
                   confidence=round(min(1.0, max(0.0, confidence)), 3), source_ping_id=ping.event_id)


def _departure_confidence(misses: int, params: GeofenceParams) -> float:
    """More consecutive fixes beyond the exit radius than required = surer."""
    return round(1.0 - 0.5 ** (1 + misses - params.depart_fixes) * 0.5, 3)
