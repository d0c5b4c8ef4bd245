"""Rider tracking, pure: latest position, distance travelled, H3 cell, and arrival at stops.

Arrival at a stop = pings inside the stop's H3 neighbourhood and within a radius (widened by
the fix's reported accuracy, up to a cap) for at least a dwell time, measured on device time.
The next few remaining stops are watched, so one missed arrival (a GPS gap) does not stall
the rest of the route.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

import h3

from schemas import events as ev
from solver.model import haversine_m


@dataclass(frozen=True, slots=True, kw_only=True)
class ArrivalParams:
    h3_resolution: int = 9  # ~175 m hexagon edge
    ring: int = 1  # neighbourhood of the stop's cell that counts as "near"
    radius_m: float = 60.0
    max_accuracy_bonus_m: float = 40.0  # a fuzzy fix widens the radius up to this much
    worst_accuracy_m: float = 150.0  # fixes worse than this are not used for arrival
    dwell_s: float = 20.0
    lookahead: int = 3
    max_speed_mps: float = 45.0  # faster segments are GPS jumps: not added to distance


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackedStop:
    order_id: str
    lat: float
    lon: float
    near_cells: frozenset[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class RiderTrack:
    rider_id: str
    last_time: datetime | None = None
    lat: float = 0.0
    lon: float = 0.0
    cell: str = ""
    distance_m: float = 0.0
    route_id: str | None = None
    next_stop: int = 0
    dwell_stop: int = -1
    dwell_since: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Arrival:
    order_id: str
    route_id: str
    at: datetime
    lat: float
    lon: float
    source_ping_id: str


def route_stops(route: ev.RoutePlanned, params: ArrivalParams = ArrivalParams()) -> tuple[TrackedStop, ...]:
    """The geofences of a route's stops, computed once per route (kept apart from the track,
    which changes on every ping)."""
    return tuple(
        TrackedStop(order_id=s.order_id, lat=s.lat, lon=s.lon,
                    near_cells=frozenset(h3.grid_disk(h3.latlng_to_cell(s.lat, s.lon, params.h3_resolution), params.ring)))
        for s in route.stops
    )


def start_route(track: RiderTrack, route_id: str) -> RiderTrack:
    return dataclasses.replace(track, route_id=route_id, next_stop=0, dwell_stop=-1, dwell_since=None)


def on_ping(track: RiderTrack, stops: tuple[TrackedStop, ...], ping: ev.GpsPing,
            params: ArrivalParams = ArrivalParams()) -> tuple[RiderTrack, list[Arrival]]:
    """Fold one ping in. Duplicate and out-of-order pings leave the track unchanged (same object)."""
    if track.last_time is not None and ping.device_time <= track.last_time:
        return track, []
    cell = h3.latlng_to_cell(ping.lat, ping.lon, params.h3_resolution)
    distance = track.distance_m
    if track.last_time is not None:
        step = haversine_m((track.lat, track.lon), (ping.lat, ping.lon))
        dt = (ping.device_time - track.last_time).total_seconds()
        jitter = min(ping.accuracy_m if ping.accuracy_m is not None else 10.0, 50.0)
        if step > jitter and step <= params.max_speed_mps * dt:
            distance += step
    moved = dataclasses.replace(track, last_time=ping.device_time, lat=ping.lat, lon=ping.lon, cell=cell, distance_m=distance)
    return _detect_arrival(moved, stops, ping, cell, params)


def _detect_arrival(track: RiderTrack, stops: tuple[TrackedStop, ...], ping: ev.GpsPing, cell: str,
                    params: ArrivalParams) -> tuple[RiderTrack, list[Arrival]]:
    if track.route_id is None or track.next_stop >= len(stops):
        return track, []
    accuracy = ping.accuracy_m if ping.accuracy_m is not None else 0.0
    if accuracy > params.worst_accuracy_m:
        return track, []
    radius = params.radius_m + min(accuracy, params.max_accuracy_bonus_m)
    inside = -1
    for i in range(track.next_stop, min(len(stops), track.next_stop + params.lookahead)):
        stop = stops[i]
        if cell in stop.near_cells and haversine_m((ping.lat, ping.lon), (stop.lat, stop.lon)) <= radius:
            inside = i
            break
    if inside < 0:
        if track.dwell_stop < 0:
            return track, []
        return dataclasses.replace(track, dwell_stop=-1, dwell_since=None), []
    if track.dwell_stop != inside or track.dwell_since is None:
        track = dataclasses.replace(track, dwell_stop=inside, dwell_since=ping.device_time)
    assert track.dwell_since is not None
    if (ping.device_time - track.dwell_since).total_seconds() < params.dwell_s:
        return track, []
    stop = stops[inside]
    arrival = Arrival(order_id=stop.order_id, route_id=track.route_id, at=track.dwell_since, lat=ping.lat, lon=ping.lon,
                      source_ping_id=ping.event_id)
    return dataclasses.replace(track, next_stop=inside + 1, dwell_stop=-1, dwell_since=None), [arrival]
