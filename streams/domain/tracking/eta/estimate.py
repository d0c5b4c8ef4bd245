"""The estimate: p50 and p90 arrival at the remaining stops of a route (:func:`route_etas`), when
to recompute and when to emit, and one rider's ETA state on a route (:class:`RiderEta`).

Legs run at the learned speeds x the fleet leg factor x the rider's factor (:mod:`.speeds`); the
leg under way is timed with the vehicle type's *typical* (median) leg factor instead, as the
rider's position already says how far is left; :class:`Pace` is this route so far, clipped per
leg and shrunk toward 0, for travel and service. A rider who arrives before a window opens waits
for it (as :func:`solver.model.schedule_route` plans it) before the service and the next leg. The
band comes from :mod:`.calibration`.

Times are float seconds (POSIX) and positions ``(lat, lon)``; the agent converts events at the
edge. :func:`eta_route` does the H3 lookups once per route and :func:`due` keeps the estimate off
most pings.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from h3.api import basic_int as h3_int

from schemas import events as ev
from solver.geo import EARTH_RADIUS_M, haversine_m
from solver.travel import HOURS
from streams.domain.tracking.eta.calibration import AHEAD_OFFSET, HORIZON_EDGES_S, LAST_AHEAD, Calibration
from streams.domain.tracking.eta.speeds import (
    EMPTY,
    NO_DATA,
    LegSample,
    Position,
    ServiceSample,
    SpeedModel,
    SpeedParams,
)

SAME_PLACE_M = 30.0  # stops closer than this are one visit (two pickups at a store): served together
_SLOT_S = 300.0  # estimates kept for calibration: one per 5 min of horizon (the edges are whole slots)...
_FINE_S = 600.0  # ...and one per minute below 10 min, where the relative error changes fast


@dataclass(frozen=True, slots=True, kw_only=True)
class EtaStop:
    order_id: str
    lat: float
    lon: float
    service_s: float
    pickup: bool = False  # a pickup stop: a leg of the route, but no ETA is published for it
    window_start_s: float = 0.0  # the rider waits if early (0: no window)
    window_end_s: float = math.inf  # the promised latest arrival
    leg_m: float = 0.0  # great circle from the stop before (for the first: from the route's start)
    leg_cells: tuple[int, ...] = ()  # cells of points along that leg
    cell: int = 0
    visit_s: float = 0.0  # service of this stop and of the stops just before it at the same place (served together)


@dataclass(frozen=True, slots=True, kw_only=True)
class EtaRoute:
    """A planned route as the ETA needs it, built once per route (H3 lookups done here)."""

    route_id: str
    rider_id: str
    vehicle_type: str
    stops: tuple[EtaStop, ...]


def eta_route(route: ev.RoutePlanned, vehicle_type: str, windows: Mapping[str, tuple[float, float]],
              params: SpeedParams = SpeedParams()) -> EtaRoute:
    """``windows``: stop -> (start, end) in POSIX seconds, keyed by the stop's fence id (the order
    id of a drop, ``<order id>/pickup`` of a pickup); stops without one get no waiting and no promise."""
    stops: list[EtaStop] = []
    prev: Position | None = (route.start.lat, route.start.lon)  # where the route starts (the hub)
    visit_s = 0.0
    for s in route.stops:
        here = (s.lat, s.lon)
        pickup = s.kind is ev.StopKind.PICKUP
        start, end = windows.get(f"{s.order_id}/pickup" if pickup else s.order_id, (0.0, math.inf))
        leg_m, cells = 0.0, ()
        if prev is not None:
            leg_m = haversine_m(prev, here)
            n = max(1, min(6, round(leg_m / 1000 * params.leg_samples_per_km)))
            cells = tuple(h3_int.latlng_to_cell(prev[0] + (s.lat - prev[0]) * f, prev[1] + (s.lon - prev[1]) * f,
                                                params.resolution) for f in ((k + 0.5) / n for k in range(n)))
        visit_s = (visit_s if stops and leg_m < SAME_PLACE_M else 0.0) + float(s.service_time_s)
        stops.append(EtaStop(order_id=s.order_id, lat=s.lat, lon=s.lon, service_s=float(s.service_time_s),
                             pickup=pickup, window_start_s=start, window_end_s=end, leg_m=leg_m, leg_cells=cells,
                             cell=h3_int.latlng_to_cell(s.lat, s.lon, params.resolution), visit_s=visit_s))
        prev = here
    return EtaRoute(route_id=route.route_id, rider_id=route.rider_id, vehicle_type=str(vehicle_type),
                    stops=tuple(stops))


@dataclass(frozen=True, slots=True, kw_only=True)
class Pace:
    """How this rider compares with the fleet model on this route so far, shrunk toward 0 by
    ``weight_s`` expected seconds.

    Travel: mean of ``log(actual / typical)`` per leg, each clipped to +-``clip_log``, against the
    typical (median) leg of the vehicle type and rider: a detour is an outlier that says nothing
    about pace (the fleet factor already expects some), and unclipped it would make every later
    leg of the route slower. Service: a ratio of sums (see :func:`.speeds._ratio_log`)."""

    travel: tuple[float, float] = (0.0, 0.0)  # (sum of expected seconds x clipped log ratio, expected seconds)
    service: tuple[float, float] = (0.0, 0.0)  # (actual seconds, expected seconds)
    weight_s: float = 1_800.0
    clip_log: float = 0.3

    def travel_log(self) -> float:
        return self.travel[0] / (self.weight_s + self.travel[1])

    def service_log(self) -> float:
        return math.log((self.weight_s + self.service[0]) / (self.weight_s + self.service[1]))

    def with_travel(self, model_s: float, actual_s: float) -> Pace:
        s, w = self.travel
        x = min(self.clip_log, max(-self.clip_log, math.log(actual_s / model_s)))
        return dataclasses.replace(self, travel=(s + model_s * x, w + model_s))

    def with_service(self, expected_s: float, actual_s: float) -> Pace:
        a, m = self.service
        return dataclasses.replace(self, service=(a + actual_s, m + expected_s))


class StopEta(NamedTuple):
    """One estimate (a value made 20 at a time on the hot path: a tuple is 3x cheaper to build
    than a frozen dataclass)."""

    order_id: str
    index: int  # in the route's stops
    from_s: float  # when the estimate was made
    model_s: float  # seconds to arrival the model predicted, before calibration
    p50_s: float
    p90_s: float
    ahead: int = 0  # stops between the rider and this one (0: the leg under way)


_new_tuple = tuple.__new__  # StopEta from its fields in order, without the named tuple's Python-level __new__


def route_etas(route: EtaRoute, next_stop: int, position: Position, now_s: float, model: SpeedModel,
               pace: Pace = Pace(), calibration: Calibration = Calibration(),
               at_stop_until_s: float | None = None) -> list[StopEta]:
    """p50 and p90 arrival at every stop from ``next_stop`` on, for a rider at ``position`` now.

    Legs run at the learned speeds of the hour they start in, x the fleet leg factor (the mean
    leg; the typical one for the leg under way) x the rider's factor and travel pace; each stop
    before adds its service time (x fleet and rider service factors) after waiting for its window
    to open. ``StopEta.ahead`` counts the stops in between, for the calibration. ``at_stop_until_s``: the rider is still
    serving a stop and leaves at that time (the agent's estimate), not now."""
    stops = route.stops
    if next_stop >= len(stops):
        return []
    vehicle = route.vehicle_type
    rider = model.rider_log.get(route.rider_id, 0.0) + pace.travel_log()
    travel_factor = math.exp(model.leg_log_factor(vehicle, now_s) + rider)
    service_factor = math.exp(model.service_log_factor(now_s) + pace.service_log())
    r50, r90 = calibration.r50, calibration.r90
    profile, hour_log, by_cell, by_cell_hour = model.profiles[vehicle], model.hour_log, model.cell_coef, model.cell_hour_coef
    offset = model.params.utc_offset_s
    first = stops[next_stop]
    # the leg under way: from the rider's position, at the typical leg factor
    metres = haversine_m(position, (first.lat, first.lon))
    cells: tuple[int, ...] = (h3_int.latlng_to_cell(position[0], position[1], model.params.resolution), first.cell)
    factor = math.exp(model.typical_log.get(vehicle, 0.0) + rider)
    t = now_s if at_stop_until_s is None else max(now_s, at_stop_until_s)
    last_hour, k, g, cell_hour = -1, 0.0, 0.0, EMPTY  # per hour of departure: legs mostly share one
    out: list[StopEta] = []
    for i in range(next_stop, len(stops)):
        s = stops[i]
        if i > next_stop:
            metres, cells, factor = s.leg_m, s.leg_cells, travel_factor
        hour = int((t + offset) // 3600) % HOURS
        if hour != last_hour:  # seconds per great-circle metre at the prior, and the hour's learned terms
            last_hour, k = hour, profile.circuity / (profile.speed_mps * profile.hourly_factors[hour])
            g, cell_hour = hour_log.get((vehicle, hour), 0.0), by_cell_hour[hour]
        slowness = 0.0
        for cell in cells:  # inlined SpeedModel.slowdown: this loop is the hot path
            a_c, m_c = by_cell.get(cell, NO_DATA)
            a_ch, m_ch = cell_hour.get(cell, NO_DATA)
            slowness += math.exp(-(a_ch * (a_c * g + m_c) + m_ch))
        t += metres * k * slowness / len(cells) * factor
        ahead = t - now_s
        j = i - next_stop
        b = AHEAD_OFFSET[j if j < LAST_AHEAD else LAST_AHEAD] + bisect.bisect_right(HORIZON_EDGES_S, ahead)
        out.append(_new_tuple(StopEta, (s.order_id, i, now_s, ahead, now_s + ahead * r50[b], now_s + ahead * r90[b], j)))
        t = max(t, s.window_start_s) + s.service_s * service_factor
    return out


def leg_seconds(model: SpeedModel, route: EtaRoute, index: int, at_s: float) -> float:
    """Speed-model seconds of the planned leg to stop ``index`` (from the stop before or the start), leaving at
    ``at_s``, before any factor: what :func:`learn_legs` compares whole legs with, so that the
    factors learned apply to later legs as :func:`route_etas` times them."""
    s = route.stops[index]
    if not s.leg_cells:
        return 0.0
    vehicle, hour = route.vehicle_type, model.hour(at_s)
    profile = model.profiles[vehicle]
    k = profile.circuity / (profile.speed_mps * profile.hourly_factors[hour])
    return s.leg_m * k * sum(model.slowdown(vehicle, c, hour) for c in s.leg_cells) / len(s.leg_cells)



# ---------------------------------------------------------------------------------------------
# When to recompute, when to emit


@dataclass(frozen=True, slots=True, kw_only=True)
class EmitParams:
    min_move_s: float = 60.0  # p50 moves by at least max(this, share x time remaining)
    share_of_remaining: float = 0.1
    every_s: float = 30.0  # due(): recompute at most this often...
    moved_m: float = 250.0  # ...unless the rider moved this far since the last one


def should_emit(previous: StopEta | None, new: StopEta, window_end_s: float = math.inf,
                params: EmitParams = EmitParams()) -> bool:
    """Emit the first estimate, a p50 that moved beyond max(60 s, 10 % of the time remaining), or a
    p90 that crossed the promised window end either way (what the delay-risk alert watches)."""
    if previous is None:
        return True
    remaining = max(0.0, new.p50_s - new.from_s)
    if abs(new.p50_s - previous.p50_s) > max(params.min_move_s, params.share_of_remaining * remaining):
        return True
    return (previous.p90_s > window_end_s) != (new.p90_s > window_end_s)


# ---------------------------------------------------------------------------------------------
# One rider on one route


@dataclass(frozen=True, slots=True, kw_only=True)
class RiderEta:
    """A rider's ETA state on a route: progress, pace, what was emitted, and the estimates kept
    to be scored against the real arrivals (one per stop and horizon bucket). :func:`update`,
    :func:`arrived` and :func:`departed` build it field by field (cheaper than ``dataclasses.replace``):
    a new field must be passed there too."""

    route: EtaRoute
    next_stop: int = 0
    pace: Pace = Pace()
    leg_from_s: float = 0.0  # left the previous stop (or started the route)
    leg_model_s: float = 0.0  # the leg's speed-model seconds when it started (0: not yet known; UNSEEN)
    leg_plan_s: float = 0.0  # ...and as a planner times it (SpeedModel.plan_seconds)
    at_stop_since_s: float | None = None  # arrived at stop next_stop - 1, not yet departed
    computed_at_s: float = -math.inf
    computed_at: Position = (0.0, 0.0)
    emitted: Mapping[int, StopEta] = field(default_factory=dict)  # stop index -> last emitted
    scored: tuple[StopEta, ...] = ()  # estimates waiting for their stop's arrival
    scored_keys: frozenset[tuple[int, int, int]] = frozenset()  # (stop index, stops ahead, 5 min slot) kept


# Squared metres per squared degree of (lat, lon) as a plane: an upper bound of the great-circle
# distance (a degree of longitude is never longer than one of latitude), so a point nearer than
# ``moved_m`` by this bound is nearer by :func:`haversine_m` too.
_M2_PER_DEG2 = (EARTH_RADIUS_M * math.pi / 180) ** 2


UNSEEN = -1.0  # ``leg_model_s`` of a leg whose start nobody saw: it is timed, never learned


def start_route(route: EtaRoute, now_s: float, *, seen: bool = True) -> RiderEta:
    """The route's first leg starts at ``now_s``. ``seen=False``: the route reached a rider already
    under way (a re-plan); its first leg runs from a planned start the rider has left behind, so
    its time says nothing about speeds (learned, such legs make the fleet look far faster than it is)."""
    return RiderEta(route=route, leg_from_s=now_s, leg_model_s=0.0 if seen else UNSEEN)


def due(state: RiderEta, now_s: float, position: Position, params: EmitParams = EmitParams()) -> bool:
    """Recompute only every ``every_s`` or after a real move; arrivals and departures reset the
    clock, so a stop completed is reflected on the next ping."""
    if state.next_stop >= len(state.route.stops):
        return False
    if now_s - state.computed_at_s >= params.every_s:
        return True
    at = state.computed_at
    moved = params.moved_m
    d_lat, d_lon = position[0] - at[0], position[1] - at[1]
    if (d_lat * d_lat + d_lon * d_lon) * _M2_PER_DEG2 < 0.99 * moved * moved:
        return False  # surely nearer (see _M2_PER_DEG2): most pings, without the trigonometry
    return haversine_m(at, position) >= moved


def update(state: RiderEta, now_s: float, position: Position, model: SpeedModel, calibration: Calibration,
           params: EmitParams = EmitParams(), not_before_s: float = 0.0) -> tuple[RiderEta, list[StopEta]]:
    """Recompute the remaining stops' ETAs; return the ones to emit as ``EtaUpdated``.
    ``not_before_s``: the rider goes on no earlier (the end of the break it is on)."""
    route, next_stop, pace = state.route, state.next_stop, state.pace
    stops = route.stops
    leaves = None
    if state.at_stop_since_s is not None and next_stop > 0:
        done = stops[next_stop - 1]  # with the stops served with it at the same place
        expected = done.visit_s * math.exp(model.service_log_factor(now_s) + pace.service_log())
        leaves = max(state.at_stop_since_s, done.window_start_s) + expected
    if not_before_s > now_s:
        leaves = not_before_s if leaves is None else not_before_s + max(0.0, leaves - now_s)  # service left
    etas = route_etas(route, next_stop, position, now_s, model, pace, calibration, leaves)
    emitted, keys = state.emitted, state.scored_keys
    move_s, share = params.min_move_s, params.share_of_remaining
    out = []
    new_scored = []
    new_keys = []
    for e in etas:  # should_emit inlined (20 calls per update were a third of its cost), and the keys to score
        _, index, from_s, model_s, p50_s, p90_s, ahead = e
        before = emitted.get(index)
        if before is None:
            out.append(e)
        else:
            remaining = share * (p50_s - from_s) if p50_s > from_s else 0.0
            if abs(p50_s - before.p50_s) > (remaining if remaining > move_s else move_s):
                out.append(e)
            else:
                end = stops[index].window_end_s
                if (before.p90_s > end) != (p90_s > end):
                    out.append(e)
        # kept to be scored: one estimate per stop, stops ahead and 5 min slot of horizon (the horizon
        # buckets' edges are whole slots), so calibration sees estimates spread as they are used
        key = (index, ahead, int(model_s // 60.0) if model_s < _FINE_S else int(model_s // _SLOT_S) + 10)
        if key not in keys:
            new_scored.append(e)
            new_keys.append(key)
    if out:
        emitted = dict(emitted)
        for e in out:
            emitted[e.index] = e
    leg_model_s, leg_plan_s = state.leg_model_s, state.leg_plan_s
    if leg_model_s == 0.0 and leaves is None and etas:  # first estimate of this leg: its model time
        # stop to stop, as later legs are timed (the departure is seen late, away from the stop)
        leg_model_s = leg_seconds(model, route, next_stop, state.leg_from_s)
        leg_plan_s = model.plan_seconds(route.vehicle_type, stops[next_stop].leg_m, state.leg_from_s)
    # the constructor, not dataclasses.replace: a third of the cost of an update that emits nothing
    return RiderEta(route=route, next_stop=next_stop, pace=pace, leg_from_s=state.leg_from_s, leg_model_s=leg_model_s,
                    leg_plan_s=leg_plan_s, at_stop_since_s=state.at_stop_since_s, computed_at_s=now_s, computed_at=position, emitted=emitted,
                    scored=state.scored + tuple(new_scored) if new_scored else state.scored,
                    scored_keys=keys.union(new_keys) if new_keys else keys), out


def arrived(state: RiderEta, index: int, at_s: float, model: SpeedModel
            ) -> tuple[RiderEta, list[StopEta], LegSample | None]:
    """The rider reached stop ``index`` (the geofence said so): returns the estimates to score with
    :func:`observe_arrival` and the leg for :func:`learn_legs` (with the rider, for the rider's
    factor); the route's travel pace learns how this leg compared with the typical one."""
    if index < state.next_stop or index >= len(state.route.stops):
        return state, [], None
    to_score = [e for e in state.scored if e.index == index]
    leg = None
    pace = state.pace
    actual = at_s - state.leg_from_s
    if index == state.next_stop and state.leg_model_s > 0 and actual > 0:
        leg = LegSample(vehicle_type=state.route.vehicle_type, at_s=at_s, model_s=state.leg_model_s, actual_s=actual,
                        rider_id=state.route.rider_id, plan_s=state.leg_plan_s)
        typical = state.leg_model_s * math.exp(model.typical_log.get(state.route.vehicle_type, 0.0)
                                               + model.rider_log.get(state.route.rider_id, 0.0))
        pace = pace.with_travel(typical, actual)
    return RiderEta(route=state.route, next_stop=index + 1, pace=pace, leg_from_s=at_s, leg_model_s=0.0,
                    at_stop_since_s=at_s, computed_at_s=-math.inf, computed_at=state.computed_at,
                    emitted={k: v for k, v in state.emitted.items() if k > index},
                    scored=tuple(e for e in state.scored if e.index > index),
                    scored_keys=frozenset(k for k in state.scored_keys if k[0] > index)), to_score, leg


def paused(state: RiderEta, start_s: float, end_s: float) -> RiderEta:
    """The rider took a break from ``start_s`` to ``end_s``: the part of it within the leg or stay
    under way is neither travel nor service, so that leg (or stay) is timed as if it started that
    much later (else the fleet would learn breaks as slow legs)."""
    leg = max(0.0, end_s - max(start_s, state.leg_from_s))
    since = state.at_stop_since_s
    stay = 0.0 if since is None else max(0.0, end_s - max(start_s, since))
    if leg == 0.0 and stay == 0.0:
        return state
    return dataclasses.replace(state, leg_from_s=state.leg_from_s + leg,
                               at_stop_since_s=None if since is None else since + stay)


def departed(state: RiderEta, at_s: float, model: SpeedModel) -> tuple[RiderEta, ServiceSample | None]:
    """The rider left the stop it arrived at: the service time is learned (rider pace here, fleet
    factor via :func:`learn_services`) and the next leg starts now."""
    if state.at_stop_since_s is None or state.next_stop == 0:
        return state, None
    done = state.route.stops[state.next_stop - 1]
    started = max(state.at_stop_since_s, done.window_start_s)
    actual = at_s - started
    sample = None
    pace = state.pace
    planned = done.visit_s  # stops at one place are served in one stay
    if planned > 0 and actual > 0:
        sample = ServiceSample(at_s=at_s, planned_s=planned, actual_s=actual)
        pace = pace.with_service(planned * math.exp(model.service_log_factor(at_s)), actual)
    return RiderEta(route=state.route, next_stop=state.next_stop, pace=pace, leg_from_s=at_s, leg_model_s=0.0,
                    at_stop_since_s=None, computed_at_s=-math.inf, computed_at=state.computed_at,
                    emitted=state.emitted, scored=state.scored, scored_keys=state.scored_keys), sample

