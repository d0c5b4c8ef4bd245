"""ETAs for the remaining stops of a route, pure: p50 and p90 arrival times that learn from the
fleet's own tracks and arrivals.

What an estimate is made of (each layer corrects the one before, all in log space so they
multiply):

1. **Prior**: great circle x the vehicle's circuity at its :class:`solver.travel.Profile` speed for
   the hour (per vehicle type, hourly factors).
2. **Speeds learned per H3 cell (res 7) and hour** (:class:`SpeedModel`, :func:`learn_speeds`):
   observed segment speeds (two accepted consecutive fixes) as log ratios to the prior, fitted
   as ``vehicle-hour + cell + cell-hour`` terms, each shrunk toward zero (the prior) by a weight in
   seconds of driving and forgotten with a half-life, so a cell without new data drifts back
   to its prior. A leg is timed as the harmonic mean of the speeds at a few points along it.
3. **Fleet factors** (:func:`learn_legs`, :func:`learn_services`): what segment speeds cannot see
   (real roads longer than the assumed circuity, chords that cut corners, parking, lights, detours,
   dwell at the door), learned from whole legs (departure to arrival, against the planned leg's
   speed-model time) per vehicle type and from service durations. Ratios of sums, i.e. means:
   leg times are skewed (most legs are direct, one in four or five detours and takes several times
   as long), and a later stop's ETA sums many of them; a mean of log ratios (their median) made
   every later stop too early and the calibration had to undo it per horizon.
4. **The leg under way** is timed with the vehicle type's *typical* (median) leg factor instead:
   the rider's position already says how far is left.
5. **Rider** (:attr:`SpeedModel.rider_log`, from day to day): the median of the rider's legs
   against the vehicle type's median, shrunk toward 0 (medians: a detour is no pace); and
   :class:`Pace`, this route so far, clipped per leg and shrunk toward 0, for travel and service.
6. **Band** (:class:`Calibration`, :func:`observe_arrival`): per stops ahead and horizon bucket, a
   forgetting histogram of ``log(actual / predicted)`` over past arrivals; its 90th percentile gives
   the p90, so the band follows the errors the system really makes (starts from a lognormal prior).
   The p50 is the model's time (the median can re-centre it, ``CalibrationParams.recentre``).

Waiting: a rider who arrives before a window opens waits for it (as
:func:`solver.model.schedule_route` plans it) before the service and the next leg.

Times are float seconds (POSIX) and positions ``(lat, lon)``; the agent converts events at the
edge. Cost: :func:`route_etas` for 20 remaining stops is a few tens of microseconds (one H3 lookup
for the rider's cell; leg cells are cached per route by :func:`eta_route`), and :func:`due` keeps
it off most pings.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from h3.api import basic_int as h3_int

from schemas import events as ev
from solver.geo import EARTH_RADIUS_M, haversine_m
from solver.travel import HOURS, PROFILES, Profile

Position = tuple[float, float]  # (lat, lon) in degrees
Entry = tuple[float, float, float]  # (decayed sum of weight x log ratio, decayed sum of weights, last update s)
Coef = tuple[float, float]  # (a, m): shrunk estimate = a x parent + m, a = k / (k + w), m = s / (k + w)
_NO_DATA: Coef = (1.0, 0.0)
_EMPTY: Mapping = MappingProxyType({})


# ---------------------------------------------------------------------------------------------
# Learned speeds


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeedParams:
    resolution: int = 7  # H3 cells of ~5 km2: a neighbourhood, where congestion differs
    utc_offset_s: float = 0.0  # local time of the city, for hours of the day (no DST switch)
    half_life_s: float = 3 * 86_400.0  # old observations count half after this
    hour_weight_s: float = 1_800.0  # prior weights, in seconds of driving observed
    cell_weight_s: float = 600.0
    cell_hour_weight_s: float = 1_200.0
    leg_weight_s: float = 3_600.0
    service_weight_s: float = 1_800.0
    min_segment_s: float = 2.0
    max_segment_s: float = 120.0  # longer gaps: the path between fixes is unknown
    moving_mps: float = 1.0  # slower: stopped (dwell, queue); not a travel speed
    max_speed_ratio: float = 4.0  # faster than 4x the prior: a GPS jump
    leg_samples_per_km: float = 1.0  # points along a leg timed at their cell's speed (1-6 per leg)
    rider_weight_legs: float = 20.0  # a rider's own factor is shrunk toward the fleet by this many legs
    rider_memory_legs: float = 300.0  # each new leg ages the rider's (and vehicle's) histogram by 1/memory


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeedSample:
    """One travel segment between two accepted fixes: the speed in the cell of its midpoint."""

    vehicle_type: str
    cell: int
    at_s: float
    speed_mps: float
    weight_s: float  # the seconds it stands for


@dataclass(frozen=True, slots=True, kw_only=True)
class LegSample:
    """A whole leg, departure to arrival, against what the speeds alone predicted."""

    vehicle_type: str
    at_s: float
    model_s: float
    actual_s: float
    rider_id: str = ""  # learns the rider's own factor too (empty: the fleet's only)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceSample:
    """Time spent at a stop against its planned service time."""

    at_s: float
    planned_s: float
    actual_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeedModel:
    """The fleet's travel knowledge: profile priors plus what was learned (immutable; the learn
    functions return a new model sharing what they did not touch, so a batch costs a copy of the
    cell table and of one hour's, not of the whole history).

    Each level is a mean of observed log ratios shrunk toward the level above: vehicle-hour
    toward the prior (0), the cell (all hours, all vehicles) toward the vehicle-hour, the
    cell-hour toward the cell. Evidence (``hours``, ``cells``, ``cell_hours``: decayed sums) is kept
    apart from the coefficients read on the hot path (``hour_log``, ``*_coef``), which are brought up
    to date for the keys a batch touched, and for all keys by :func:`refresh` (run it now and
    then, e.g. hourly: that is when unseen cells drift back to their prior)."""

    params: SpeedParams = SpeedParams()
    profiles: Mapping[str, Profile] = field(default_factory=lambda: PROFILES)
    hours: Mapping[tuple[str, int], Entry] = field(default_factory=dict)  # (vehicle type, hour)
    cells: Mapping[int, Entry] = field(default_factory=dict)  # cell, all hours
    cell_hours: tuple[Mapping[int, Entry], ...] = (_EMPTY,) * HOURS  # hour -> cell
    hour_log: Mapping[tuple[str, int], float] = field(default_factory=dict)  # shrunk mean log ratio
    cell_coef: Mapping[int, Coef] = field(default_factory=dict)
    cell_hour_coef: tuple[Mapping[int, Coef], ...] = (_EMPTY,) * HOURS
    legs: Mapping[str, Entry] = field(default_factory=dict)  # vehicle type
    service: Entry = (0.0, 0.0, 0.0)
    # log(actual / speed-model seconds) of whole legs, histograms per vehicle type and per rider
    # (decayed by rider_memory_legs), and per rider the shrunk difference of their medians
    leg_hists: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    rider_hists: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    rider_log: Mapping[str, float] = field(default_factory=dict)
    typical_log: Mapping[str, float] = field(default_factory=dict)  # vehicle type -> median log ratio, shrunk

    def hour(self, at_s: float) -> int:
        return int((at_s + self.params.utc_offset_s) // 3600) % HOURS

    def prior_mps(self, vehicle_type: str, hour: int) -> float:
        p = self.profiles[vehicle_type]
        return p.speed_mps * p.hourly_factors[hour]

    def slowdown(self, vehicle_type: str, cell: int, hour: int) -> float:
        """Prior speed / learned speed in ``cell`` at ``hour`` (2.0: takes twice as long)."""
        a_c, m_c = self.cell_coef.get(cell, _NO_DATA)
        a_ch, m_ch = self.cell_hour_coef[hour].get(cell, _NO_DATA)
        return math.exp(-(a_ch * (a_c * self.hour_log.get((vehicle_type, hour), 0.0) + m_c) + m_ch))

    def speed_mps(self, vehicle_type: str, lat: float, lon: float, at_s: float) -> float:
        """The speed this model expects at a place and time (what tests and dashboards read)."""
        hour = self.hour(at_s)
        cell = h3_int.latlng_to_cell(lat, lon, self.params.resolution)
        return self.prior_mps(vehicle_type, hour) / self.slowdown(vehicle_type, cell, hour)

    def leg_log_factor(self, vehicle_type: str, now_s: float) -> float:
        return _ratio_log(self.legs.get(vehicle_type), self.params.leg_weight_s, now_s, self.params.half_life_s)

    def service_log_factor(self, now_s: float) -> float:
        return _ratio_log(self.service, self.params.service_weight_s, now_s, self.params.half_life_s)


def _ratio_log(entry: Entry | None, prior_weight: float, now_s: float, half_life_s: float) -> float:
    """log(actual seconds / model seconds) as a ratio of decayed sums, shrunk toward 1 by
    ``prior_weight`` model seconds. A ratio of sums, not a mean of log ratios: leg and service
    times are skewed (detours, a long wait at one door), and an ETA sums many of them, so it
    needs their mean; a mean of logs is their median and times every later stop too early."""
    if entry is None:
        return 0.0
    actual, model, t = entry
    d = 0.5 ** (max(0.0, now_s - t) / half_life_s)
    return math.log((prior_weight + actual * d) / (prior_weight + model * d))


def _estimate(entry: Entry | None, prior_weight: float, now_s: float, half_life_s: float) -> float:
    """Mean log ratio shrunk toward 0 (the prior), with forgotten weight flowing back to the prior."""
    if entry is None:
        return 0.0
    s, w, t = entry
    d = 0.5 ** (max(0.0, now_s - t) / half_life_s)
    return s * d / (prior_weight + w * d)


def _coef(entry: Entry, prior_weight: float, now_s: float, half_life_s: float) -> Coef:
    s, w, t = entry
    d = 0.5 ** (max(0.0, now_s - t) / half_life_s)
    return prior_weight / (prior_weight + w * d), s * d / (prior_weight + w * d)


def _merge(entry: Entry | None, s: float, w: float, t: float, half_life_s: float) -> Entry:
    if entry is None:
        return (s, w, t)
    s0, w0, t0 = entry
    d = 0.5 ** (max(0.0, t - t0) / half_life_s)
    return (s0 * d + s, w0 * d + w, max(t, t0))


def segment_sample(model: SpeedModel, vehicle_type: str, a: Position, a_s: float, b: Position, b_s: float,
                   accuracy_m: float = 0.0) -> SpeedSample | None:
    """The travel speed between two accepted consecutive fixes, or None when it says nothing about
    road speed: too short or too long a gap, stopped (dwell), a GPS jump, or a move smaller than
    the fixes' uncertainty."""
    p = model.params
    dt = b_s - a_s
    if not p.min_segment_s <= dt <= p.max_segment_s:
        return None
    metres = haversine_m(a, b)
    speed = metres / dt
    mid = (a_s + b_s) / 2
    if speed < p.moving_mps or metres < 2 * accuracy_m:
        return None
    if speed > p.max_speed_ratio * model.prior_mps(vehicle_type, model.hour(mid)):
        return None
    cell = h3_int.latlng_to_cell((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, p.resolution)
    return SpeedSample(vehicle_type=vehicle_type, cell=cell, at_s=mid, speed_mps=speed, weight_s=dt)


def learn_speeds(model: SpeedModel, samples: Iterable[SpeedSample]) -> SpeedModel:
    """Fold a batch of segment speeds in: each one counts, as ``log(speed / prior)`` weighted by
    its seconds, for its vehicle-hour, its cell and its cell-hour."""
    p = model.params
    hours: dict[tuple[str, int], list[float]] = {}
    cells: dict[int, list[float]] = {}
    cell_hours: dict[tuple[int, int], list[float]] = {}
    for x in samples:
        hour = model.hour(x.at_s)
        wx = x.weight_s * math.log(x.speed_mps / model.prior_mps(x.vehicle_type, hour))
        for table, key in ((hours, (x.vehicle_type, hour)), (cells, x.cell), (cell_hours, (hour, x.cell))):
            acc = table.get(key)
            if acc is None:
                table[key] = [wx, x.weight_s, x.at_s]
            else:
                acc[0] += wx
                acc[1] += x.weight_s
                acc[2] = max(acc[2], x.at_s)
    if not hours:
        return model
    now_s = max(t for _, _, t in hours.values())
    new_hours, hour_log = dict(model.hours), dict(model.hour_log)
    for key, (s, w, t) in hours.items():
        new_hours[key] = entry = _merge(new_hours.get(key), s, w, t, p.half_life_s)
        hour_log[key] = _estimate(entry, p.hour_weight_s, now_s, p.half_life_s)
    new_cells, cell_coef = dict(model.cells), dict(model.cell_coef)
    for key, (s, w, t) in cells.items():
        new_cells[key] = entry = _merge(new_cells.get(key), s, w, t, p.half_life_s)
        cell_coef[key] = _coef(entry, p.cell_weight_s, now_s, p.half_life_s)
    by_hour, coef_by_hour = list(model.cell_hours), list(model.cell_hour_coef)
    copied: set[int] = set()
    for (hour, cell), (s, w, t) in cell_hours.items():
        if hour not in copied:
            by_hour[hour], coef_by_hour[hour] = dict(by_hour[hour]), dict(coef_by_hour[hour])
            copied.add(hour)
        by_hour[hour][cell] = entry = _merge(by_hour[hour].get(cell), s, w, t, p.half_life_s)  # type: ignore[index]
        coef_by_hour[hour][cell] = _coef(entry, p.cell_hour_weight_s, now_s, p.half_life_s)  # type: ignore[index]
    return dataclasses.replace(model, hours=new_hours, cells=new_cells, cell_hours=tuple(by_hour),
                               hour_log=hour_log, cell_coef=cell_coef, cell_hour_coef=tuple(coef_by_hour))


def refresh(model: SpeedModel, now_s: float) -> SpeedModel:
    """Age every learned coefficient to ``now_s``: what has not been seen for a few half-lives is
    back at the prior. Linear in the table (milliseconds for a city): run it off the hot path."""
    p = model.params
    return dataclasses.replace(
        model, hour_log={k: _estimate(e, p.hour_weight_s, now_s, p.half_life_s) for k, e in model.hours.items()},
        cell_coef={k: _coef(e, p.cell_weight_s, now_s, p.half_life_s) for k, e in model.cells.items()},
        cell_hour_coef=tuple({k: _coef(e, p.cell_hour_weight_s, now_s, p.half_life_s) for k, e in h.items()}
                             for h in model.cell_hours))


def learn_legs(model: SpeedModel, samples: Iterable[LegSample]) -> SpeedModel:
    """Fleet travel factor per vehicle type from whole legs: decayed sums of actual and of
    speed-model seconds (see :func:`_ratio_log`). Legs with a ``rider_id`` also learn the rider's
    own factor: the median of the rider's ``log(actual / model)`` minus the vehicle type's, shrunk
    by ``rider_weight_legs``. Medians, because one leg in four or five may be a detour: a mean
    would make a rider slow for having had detours; the fleet factor already expects them.

    Why a rider factor at all: rider pace lasts from day to day, and segment speeds are chords
    over 30 s or more, which cut corners the more the faster the rider goes, so the speed model
    is biased per rider in a way only whole legs show."""
    p = model.params
    legs = dict(model.legs)
    leg_hists, rider_hists, rider_log = dict(model.leg_hists), dict(model.rider_hists), dict(model.rider_log)
    typical_log = dict(model.typical_log)
    keep = 1.0 - 1.0 / p.rider_memory_legs
    for x in samples:
        if not (x.model_s > 0 and x.actual_s > 0):
            continue
        legs[x.vehicle_type] = _merge(legs.get(x.vehicle_type), x.actual_s, x.model_s, x.at_s, p.half_life_s)
        if not x.rider_id:
            continue
        b = int((min(_HI - 1e-9, max(_LO, math.log(x.actual_s / x.model_s))) - _LO) / _WIDTH)
        for table, key in ((leg_hists, x.vehicle_type), (rider_hists, x.rider_id)):
            counts = [c * keep for c in table.get(key, _ZERO_BINS)]
            counts[b] += 1.0
            table[key] = tuple(counts)
        fleet = leg_hists[x.vehicle_type]
        n = sum(fleet)
        typical_log[x.vehicle_type] = (n / (n + p.rider_weight_legs)) * _quantile(fleet, 0.5)
        mine = rider_hists[x.rider_id]
        n = sum(mine)
        rider_log[x.rider_id] = (n / (n + p.rider_weight_legs)) * (
            _quantile(mine, 0.5) - _quantile(leg_hists[x.vehicle_type], 0.5))
    return dataclasses.replace(model, legs=legs, leg_hists=leg_hists, rider_hists=rider_hists, rider_log=rider_log,
                               typical_log=typical_log)


def learn_services(model: SpeedModel, samples: Iterable[ServiceSample]) -> SpeedModel:
    """Fleet service factor: how long stops really take against their planned service time
    (decayed sums, see :func:`_ratio_log`)."""
    service = model.service
    for x in samples:
        if x.planned_s > 0 and x.actual_s > 0:
            service = _merge(service, x.actual_s, x.planned_s, x.at_s, model.params.half_life_s)
    return dataclasses.replace(model, service=service)


# ---------------------------------------------------------------------------------------------
# Calibration of the band

HORIZON_EDGES_S = (300.0, 900.0, 1_800.0, 3_600.0, 7_200.0)  # buckets: <5 min, <15, <30, <60, <120, more
_SLOT_S = 300.0  # estimates kept for calibration: one per 5 min of horizon (the edges are whole slots)...
_FINE_S = 600.0  # ...and one per minute below 10 min, where the relative error changes fast
_BINS = 81
_LO, _HI = -2.0, 2.0  # log(actual / predicted) range of the histograms; outside clamps to the ends
_WIDTH = (_HI - _LO) / _BINS
_ZERO_BINS = (0.0,) * _BINS


AHEAD_EDGES = (1, 2, 3, 5, 8)  # stops ahead of the rider: 0 (the leg under way), 1, 2, 3-4, 5-7, 8 and more
_H = len(HORIZON_EDGES_S) + 1
_LAST_AHEAD = AHEAD_EDGES[-1]
_AHEAD_OFFSET = tuple(bisect.bisect_right(AHEAD_EDGES, k) * _H for k in range(AHEAD_EDGES[-1] + 1))


def horizon_bucket(horizon_s: float) -> int:
    return bisect.bisect_right(HORIZON_EDGES_S, horizon_s)


def calibration_bucket(horizon_s: float, ahead: int = 0) -> int:
    """Index of the histogram for an estimate: horizon bucket within stops-ahead bucket. Errors
    depend on both: a leg is skewed (most are direct, a few detour), so the error of the stop
    under way is not that of the tenth stop at the same horizon, whose legs' detours average out."""
    return _AHEAD_OFFSET[min(ahead, AHEAD_EDGES[-1])] + bisect.bisect_right(HORIZON_EDGES_S, horizon_s)


def _quantile(counts: Sequence[float], q: float) -> float:
    target = q * sum(counts)
    acc = 0.0
    for i, c in enumerate(counts):
        if acc + c >= target and c > 0:
            return _LO + (i + (target - acc) / c) * _WIDTH
        acc += c
    return _HI


def _lognormal_counts(sigma: float, weight: float) -> tuple[float, ...]:
    cdf = [0.5 * (1 + math.erf((_LO + i * _WIDTH) / (sigma * math.sqrt(2)))) for i in range(_BINS + 1)]
    return tuple(weight * (cdf[i + 1] - cdf[i]) for i in range(_BINS))


@dataclass(frozen=True, slots=True, kw_only=True)
class CalibrationParams:
    prior_sigma: tuple[float, ...] = (0.45, 0.3, 0.25, 0.22, 0.2, 0.2)  # per horizon bucket, before data
    prior_weight: float = 20.0  # the prior counts as this many arrivals
    # arrivals: each one ages the histograms of the buckets it has estimates in by 1/memory. The
    # model keeps learning, so the errors of a younger model must fade: bench eta (10 riders, 300
    # arrivals a day), seeds 7, 3, 11: 90.2, 94.0, 92.7 % at or before p90 at 100; 91.8, 95.2,
    # 95.9 % at 300 (chosen on those seeds; a fleet with more arrivals may want more)
    memory: float = 100.0
    # move the p50 by the histogram's median too; off: the model's own time is the p50. Once the
    # model's legs and services were unbiased, re-centring mostly chased day-to-day detour noise
    # (bench eta, seeds 7, 3, 11: MAE +11 %, +5 %, -1 %)
    recentre: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Calibration:
    """Per stops-ahead and horizon bucket (:func:`calibration_bucket`), the distribution of
    ``log(actual / predicted)`` seconds to arrival.

    p90 = now + predicted x exp(90th percentile): the band from errors really observed at that
    horizon, so coverage tracks 90 % whatever the error model. With ``params.recentre``, p50 =
    now + predicted x exp(median) as well; by default the p50 is the model's time."""

    params: CalibrationParams = CalibrationParams()
    counts: tuple[tuple[float, ...], ...] = ()
    q50: tuple[float, ...] = ()
    q90: tuple[float, ...] = ()
    r50: tuple[float, ...] = ()  # exp(q50), exp(q90): the multipliers the hot path applies
    r90: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not self.counts:
            p = self.params
            counts = tuple(_lognormal_counts(s, p.prior_weight) for s in p.prior_sigma) * (len(AHEAD_EDGES) + 1)
            object.__setattr__(self, "counts", counts)
            object.__setattr__(self, "q50", tuple(_quantile(c, 0.5) for c in counts))
            object.__setattr__(self, "q90", tuple(_quantile(c, 0.9) for c in counts))
        if not self.r50:
            object.__setattr__(self, "r50", tuple(map(math.exp, self.q50)) if self.params.recentre
                               else (1.0,) * len(self.q50))
            object.__setattr__(self, "r90", tuple(map(math.exp, self.q90)))


# ---------------------------------------------------------------------------------------------
# Routes and estimates


@dataclass(frozen=True, slots=True, kw_only=True)
class EtaStop:
    order_id: str
    lat: float
    lon: float
    service_s: float
    window_start_s: float = 0.0  # the rider waits if early (0: no window)
    window_end_s: float = math.inf  # the promised latest arrival
    leg_m: float = 0.0  # great circle from the stop before (for the first: from the route's start)
    leg_cells: tuple[int, ...] = ()  # cells of points along that leg
    cell: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class EtaRoute:
    """A planned route as the ETA needs it, built once per route (H3 lookups done here)."""

    route_id: str
    rider_id: str
    vehicle_type: str
    stops: tuple[EtaStop, ...]


def eta_route(route: ev.RoutePlanned, vehicle_type: str, windows: Mapping[str, tuple[float, float]],
              params: SpeedParams = SpeedParams()) -> EtaRoute:
    """``windows``: order id -> (start, end) in POSIX seconds, from the orders (RoutePlanned does
    not carry them); orders without one get no waiting and no promise."""
    stops: list[EtaStop] = []
    prev: Position | None = (route.start.lat, route.start.lon)  # where the route starts (the hub)
    for s in route.stops:
        here = (s.lat, s.lon)
        start, end = windows.get(s.order_id, (0.0, math.inf))
        leg_m, cells = 0.0, ()
        if prev is not None:
            leg_m = haversine_m(prev, here)
            n = max(1, min(6, round(leg_m / 1000 * params.leg_samples_per_km)))
            cells = tuple(h3_int.latlng_to_cell(prev[0] + (s.lat - prev[0]) * f, prev[1] + (s.lon - prev[1]) * f,
                                                params.resolution) for f in ((k + 0.5) / n for k in range(n)))
        stops.append(EtaStop(order_id=s.order_id, lat=s.lat, lon=s.lon, service_s=float(s.service_time_s),
                             window_start_s=start, window_end_s=end, leg_m=leg_m, leg_cells=cells,
                             cell=h3_int.latlng_to_cell(s.lat, s.lon, params.resolution)))
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
    leg of the route slower. Service: a ratio of sums (see :func:`_ratio_log`)."""

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
    last_hour, k, g, cell_hour = -1, 0.0, 0.0, _EMPTY  # per hour of departure: legs mostly share one
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
            a_c, m_c = by_cell.get(cell, _NO_DATA)
            a_ch, m_ch = cell_hour.get(cell, _NO_DATA)
            slowness += math.exp(-(a_ch * (a_c * g + m_c) + m_ch))
        t += metres * k * slowness / len(cells) * factor
        ahead = t - now_s
        j = i - next_stop
        b = _AHEAD_OFFSET[j if j < _LAST_AHEAD else _LAST_AHEAD] + bisect.bisect_right(HORIZON_EDGES_S, ahead)
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


def observe_arrival(calibration: Calibration, predicted: StopEta, actual_s: float) -> Calibration:
    """Fold the error of one past estimate into its bucket (estimates made at or after the
    arrival say nothing and are ignored). For all the estimates kept for one arrival, prefer
    :func:`observe_arrivals`: it weighs the arrival once per bucket, not once per estimate."""
    return observe_arrivals(calibration, (predicted,), actual_s)


def observe_arrivals(calibration: Calibration, predicted: Iterable[StopEta], actual_s: float) -> Calibration:
    """Fold the errors of the estimates kept for one arrival (:func:`arrived` returns them): each
    bucket they fall in ages once (``params.memory`` counts arrivals) and its estimates share one
    arrival's weight. An arrival far down the route has many estimates in one bucket (one per stops
    ahead and 5 min slot), all with nearly the same error: counted one by one, a handful of
    arrivals would fill the histogram and set the band."""
    by_bucket: dict[int, list[int]] = {}
    for e in predicted:
        elapsed = actual_s - e.from_s
        if e.model_s <= 0 or elapsed <= 0:
            continue
        x = min(_HI - 1e-9, max(_LO, math.log(elapsed / e.model_s)))
        by_bucket.setdefault(calibration_bucket(e.model_s, e.ahead), []).append(int((x - _LO) / _WIDTH))
    if not by_bucket:
        return calibration
    keep = 1 - 1 / calibration.params.memory
    counts, q50, q90 = list(calibration.counts), list(calibration.q50), list(calibration.q90)
    for b, bins in by_bucket.items():
        new = [c * keep for c in counts[b]]
        for i in bins:
            new[i] += 1.0 / len(bins)
        counts[b] = tuple(new)
        q50[b], q90[b] = _quantile(new, 0.5), _quantile(new, 0.9)
    return dataclasses.replace(calibration, counts=tuple(counts), q50=tuple(q50), q90=tuple(q90),
                               r90=tuple(map(math.exp, q90)),
                               r50=tuple(map(math.exp, q50)) if calibration.params.recentre else calibration.r50)


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
    leg_model_s: float = 0.0  # the leg's speed-model seconds when it started (0: not yet known)
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


def start_route(route: EtaRoute, now_s: float) -> RiderEta:
    return RiderEta(route=route, leg_from_s=now_s)


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
           params: EmitParams = EmitParams()) -> tuple[RiderEta, list[StopEta]]:
    """Recompute the remaining stops' ETAs; return the ones to emit as ``EtaUpdated``."""
    route, next_stop, pace = state.route, state.next_stop, state.pace
    stops = route.stops
    leaves = None
    if state.at_stop_since_s is not None and next_stop > 0:
        done = stops[next_stop - 1]
        expected = done.service_s * math.exp(model.service_log_factor(now_s) + pace.service_log())
        leaves = max(state.at_stop_since_s, done.window_start_s) + expected
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
    leg_model_s = state.leg_model_s
    if leg_model_s == 0.0 and leaves is None and etas:  # first estimate of this leg: its model time
        # stop to stop, as later legs are timed (the departure is seen late, away from the stop)
        leg_model_s = leg_seconds(model, route, next_stop, state.leg_from_s)
    # the constructor, not dataclasses.replace: a third of the cost of an update that emits nothing
    return RiderEta(route=route, next_stop=next_stop, pace=pace, leg_from_s=state.leg_from_s, leg_model_s=leg_model_s,
                    at_stop_since_s=state.at_stop_since_s, computed_at_s=now_s, computed_at=position, emitted=emitted,
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
                        rider_id=state.route.rider_id)
        typical = state.leg_model_s * math.exp(model.typical_log.get(state.route.vehicle_type, 0.0)
                                               + model.rider_log.get(state.route.rider_id, 0.0))
        pace = pace.with_travel(typical, actual)
    return RiderEta(route=state.route, next_stop=index + 1, pace=pace, leg_from_s=at_s, leg_model_s=0.0,
                    at_stop_since_s=at_s, computed_at_s=-math.inf, computed_at=state.computed_at,
                    emitted={k: v for k, v in state.emitted.items() if k > index},
                    scored=tuple(e for e in state.scored if e.index > index),
                    scored_keys=frozenset(k for k in state.scored_keys if k[0] > index)), to_score, leg


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
    if done.service_s > 0 and actual > 0:
        sample = ServiceSample(at_s=at_s, planned_s=done.service_s, actual_s=actual)
        pace = pace.with_service(done.service_s * math.exp(model.service_log_factor(at_s)), actual)
    return RiderEta(route=state.route, next_stop=state.next_stop, pace=pace, leg_from_s=at_s, leg_model_s=0.0,
                    at_stop_since_s=None, computed_at_s=-math.inf, computed_at=state.computed_at,
                    emitted=state.emitted, scored=state.scored, scored_keys=state.scored_keys), sample
