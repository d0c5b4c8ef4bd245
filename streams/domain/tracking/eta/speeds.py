"""Learned travel speeds and fleet factors, the model's knowledge of the city (each layer
corrects the one before, in log space so they multiply):

1. **Prior**: great circle x the vehicle's circuity at its :class:`solver.travel.Profile` speed for
   the hour (per vehicle type, hourly factors).
2. **Speeds per H3 cell (res 7) and hour** (:class:`SpeedModel`, :func:`learn_speeds`): observed
   segment speeds (two accepted consecutive fixes) as log ratios to the prior, fitted as
   ``vehicle-hour + cell + cell-hour`` terms, each shrunk toward the prior by a weight in seconds of
   driving and forgotten with a half-life, so a cell without new data drifts back to its prior.
3. **Fleet factors** (:func:`learn_legs`, :func:`learn_services`): what segment speeds cannot see
   (roads longer than the assumed circuity, chords that cut corners, parking, lights, detours,
   dwell at the door), from whole legs per vehicle type and from service durations. Ratios of
   sums, i.e. means: leg times are skewed (most legs are direct, one in four or five detours), and
   a later stop's ETA sums many of them, so a median would make every later stop too early.
4. **Rider** (:attr:`SpeedModel.rider_log`, from day to day): the median of the rider's legs
   against the vehicle type's median, shrunk toward 0 (medians: a detour is no pace).

For planners, :func:`travel_times` sums this up per vehicle type as 24 hourly great-circle speeds
of whole legs and a service factor (``TravelTimesLearned``); its legs are learned against the
planner's own speeds (:attr:`SpeedModel.plan_legs`), not against the cells a planner never sees.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from h3.api import basic_int as h3_int

from solver.geo import haversine_m
from solver.travel import HOURS, PROFILES, Profile
from streams.domain.tracking.eta.histogram import ZERO_BINS, bin_of, quantile

Position = tuple[float, float]  # (lat, lon) in degrees
Entry = tuple[float, float, float]  # (decayed sum of weight x log ratio, decayed sum of weights, last update s)
Coef = tuple[float, float]  # (a, m): shrunk estimate = a x parent + m, a = k / (k + w), m = s / (k + w)
NO_DATA: Coef = (1.0, 0.0)  # the coefficient of a cell never seen: the level above, unchanged
EMPTY: Mapping = MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeedParams:
    resolution: int = 7  # H3 cells of ~5 km2: a neighbourhood, where congestion differs
    utc_offset_s: float = 0.0  # local time of the city, for hours of the day (no DST switch)
    half_life_s: float = 3 * 86_400.0  # old observations count half after this
    hour_weight_s: float = 1_800.0  # prior weights, in seconds of driving observed
    cell_weight_s: float = 600.0
    cell_hour_weight_s: float = 1_200.0
    leg_weight_s: float = 3_600.0
    plan_hour_weight_s: float = 3_600.0  # an hour's planner legs: shrunk toward all hours' by these seconds
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
    plan_s: float = 0.0  # what a planner reading TravelTimesLearned times it at before the factor (0: unknown)


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
    cell_hours: tuple[Mapping[int, Entry], ...] = (EMPTY,) * HOURS  # hour -> cell
    hour_log: Mapping[tuple[str, int], float] = field(default_factory=dict)  # shrunk mean log ratio
    cell_coef: Mapping[int, Coef] = field(default_factory=dict)
    cell_hour_coef: tuple[Mapping[int, Coef], ...] = (EMPTY,) * HOURS
    legs: Mapping[str, Entry] = field(default_factory=dict)  # vehicle type
    service: Entry = (0.0, 0.0, 0.0)
    # log(actual / speed-model seconds) of whole legs, histograms per vehicle type and per rider
    # (decayed by rider_memory_legs), and per rider the shrunk difference of their medians
    leg_hists: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    rider_hists: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    rider_log: Mapping[str, float] = field(default_factory=dict)
    typical_log: Mapping[str, float] = field(default_factory=dict)  # vehicle type -> median log ratio, shrunk
    leg_count: Mapping[str, int] = field(default_factory=dict)  # vehicle type -> whole legs learned
    # (vehicle type, hour the leg left) -> decayed sums of actual and of planner seconds (plan_s)
    plan_legs: Mapping[tuple[str, int], Entry] = field(default_factory=dict)

    def hour(self, at_s: float) -> int:
        return int((at_s + self.params.utc_offset_s) // 3600) % HOURS

    def prior_mps(self, vehicle_type: str, hour: int) -> float:
        p = self.profiles[vehicle_type]
        return p.speed_mps * p.hourly_factors[hour]

    def slowdown(self, vehicle_type: str, cell: int, hour: int) -> float:
        """Prior speed / learned speed in ``cell`` at ``hour`` (2.0: takes twice as long)."""
        a_c, m_c = self.cell_coef.get(cell, NO_DATA)
        a_ch, m_ch = self.cell_hour_coef[hour].get(cell, NO_DATA)
        return math.exp(-(a_ch * (a_c * self.hour_log.get((vehicle_type, hour), 0.0) + m_c) + m_ch))

    def speed_mps(self, vehicle_type: str, lat: float, lon: float, at_s: float) -> float:
        """The speed this model expects at a place and time (what tests and dashboards read)."""
        hour = self.hour(at_s)
        cell = h3_int.latlng_to_cell(lat, lon, self.params.resolution)
        return self.prior_mps(vehicle_type, hour) / self.slowdown(vehicle_type, cell, hour)

    def leg_log_factor(self, vehicle_type: str, now_s: float) -> float:
        return _ratio_log(self.legs.get(vehicle_type), self.params.leg_weight_s, now_s, self.params.half_life_s)

    def plan_hour_log(self, vehicle_type: str, hour: int, now_s: float) -> float:
        """The planner's vehicle-hour term: the hour's evidence shrunk toward the vehicle's over all
        hours, which is shrunk toward the prior. A city slower than the prior at the hours seen so
        far is slower at the hours not seen yet too (later today, when a plan made now drives),
        in the prior's hourly shape; ``hour_log`` (the tracker's, for the hour it is in) shrinks
        toward the prior alone."""
        p = self.params
        s_all = w_all = 0.0
        for (v, _), (s, w, t) in self.hours.items():
            if v == vehicle_type:
                d = 0.5 ** (max(0.0, now_s - t) / p.half_life_s)
                s_all, w_all = s_all + s * d, w_all + w * d
        level = s_all / (p.hour_weight_s + w_all)
        entry = self.hours.get((vehicle_type, hour))
        if entry is None:
            return level
        s, w, t = entry
        d = 0.5 ** (max(0.0, now_s - t) / p.half_life_s)
        return (s * d + p.hour_weight_s * level) / (w * d + p.hour_weight_s)

    def plan_seconds(self, vehicle_type: str, metres: float, at_s: float) -> float:
        """A leg of ``metres`` great circle leaving at ``at_s`` as a planner times it from
        :func:`travel_times` before the leg factor: the vehicle-hour speed, no cells."""
        hour = self.hour(at_s)
        p = self.profiles[vehicle_type]
        return metres * p.circuity / (p.speed_mps * p.hourly_factors[hour] * math.exp(self.plan_hour_log(vehicle_type, hour, at_s)))

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
    typical_log, leg_count = dict(model.typical_log), dict(model.leg_count)
    plan_legs = dict(model.plan_legs)
    keep = 1.0 - 1.0 / p.rider_memory_legs
    for x in samples:
        if not (x.model_s > 0 and x.actual_s > 0):
            continue
        legs[x.vehicle_type] = _merge(legs.get(x.vehicle_type), x.actual_s, x.model_s, x.at_s, p.half_life_s)
        if x.plan_s > 0:
            key = (x.vehicle_type, model.hour(x.at_s - x.actual_s))
            plan_legs[key] = _merge(plan_legs.get(key), x.actual_s, x.plan_s, x.at_s, p.half_life_s)
        leg_count[x.vehicle_type] = leg_count.get(x.vehicle_type, 0) + 1
        if not x.rider_id:
            continue
        b = bin_of(math.log(x.actual_s / x.model_s))
        for table, key in ((leg_hists, x.vehicle_type), (rider_hists, x.rider_id)):
            counts = [c * keep for c in table.get(key, ZERO_BINS)]
            counts[b] += 1.0
            table[key] = tuple(counts)
        fleet = leg_hists[x.vehicle_type]
        n = sum(fleet)
        typical_log[x.vehicle_type] = (n / (n + p.rider_weight_legs)) * quantile(fleet, 0.5)
        mine = rider_hists[x.rider_id]
        n = sum(mine)
        rider_log[x.rider_id] = (n / (n + p.rider_weight_legs)) * (
            quantile(mine, 0.5) - quantile(leg_hists[x.vehicle_type], 0.5))
    return dataclasses.replace(model, legs=legs, leg_hists=leg_hists, rider_hists=rider_hists, rider_log=rider_log,
                               typical_log=typical_log, leg_count=leg_count, plan_legs=plan_legs)


def learn_services(model: SpeedModel, samples: Iterable[ServiceSample]) -> SpeedModel:
    """Fleet service factor: how long stops really take against their planned service time
    (decayed sums, see :func:`_ratio_log`)."""
    service = model.service
    for x in samples:
        if x.planned_s > 0 and x.actual_s > 0:
            service = _merge(service, x.actual_s, x.planned_s, x.at_s, model.params.half_life_s)
    return dataclasses.replace(model, service=service)



class TravelTimes(NamedTuple):
    """What the model knows of a vehicle type's whole legs, city-wide, for planners
    (``TravelTimesLearned``)."""

    leg_speed_mps: tuple[float, ...]  # great-circle metres per second of a leg starting in UTC hour h
    service_factor: float  # actual service time / planned
    legs: int  # whole legs learned (0: the values are the prior)
    rider_factors: tuple[tuple[str, float], ...] = ()  # (rider, leg time / the type's typical), by rider


def travel_times(model: SpeedModel, vehicle_type: str, now_s: float, riders: Iterable[str] = ()) -> TravelTimes:
    """A vehicle type's learned travel as a planner reads it: per UTC hour, the prior profile
    speed / circuity (a great-circle speed) with the planner's vehicle-hour term
    (:meth:`SpeedModel.plan_hour_log`), divided by how much
    longer whole legs leaving in that hour took than that speed said (:attr:`SpeedModel.plan_legs`,
    a ratio of sums: a plan sums legs, see :func:`_ratio_log`; an hour with few legs leans on all
    hours'). Learned against the planner's own arithmetic, not the tracker's cell model: a matrix
    without cells inherits none of what the cells explain (bikes timed by congestion learned from
    cars), and the legs carry what segment speeds cannot see (lights, corners, parking). ``riders``
    (of this type) with a learned pace come with it: riders differ, and a plan for a slow rider
    should know."""
    p = model.params
    profile = model.profiles[vehicle_type]
    d = {key: 0.5 ** (max(0.0, now_s - t) / p.half_life_s) for key, (_, _, t) in model.plan_legs.items()
         if key[0] == vehicle_type}
    actual = sum(model.plan_legs[k][0] * w for k, w in d.items())
    planned = sum(model.plan_legs[k][1] * w for k, w in d.items())
    pooled = (p.leg_weight_s + actual) / (p.leg_weight_s + planned)
    speeds = []
    for h in range(HOURS):
        hour = model.hour(h * 3600.0 + 1800.0)  # the model's (local) hour of UTC hour h
        learned = model.plan_hour_log(vehicle_type, hour, now_s)
        prior = profile.speed_mps * profile.hourly_factors[hour] / profile.circuity
        a, m, _ = model.plan_legs.get((vehicle_type, hour), (0.0, 0.0, 0.0))
        w = d.get((vehicle_type, hour), 0.0)
        ratio = (p.plan_hour_weight_s * pooled + a * w) / (p.plan_hour_weight_s + m * w)
        speeds.append(round(prior * math.exp(learned) / ratio, 4))
    paces = tuple(sorted((r, round(math.exp(model.rider_log[r]), 3)) for r in set(riders) if r in model.rider_log))
    return TravelTimes(tuple(speeds), round(math.exp(model.service_log_factor(now_s)), 4),
                       model.leg_count.get(vehicle_type, 0), paces)


def travel_times_moved(before: TravelTimes, after: TravelTimes, share: float) -> bool:
    """True when a speed of some hour, the service factor or a rider's pace moved by more than
    ``share`` of its last published value, or a rider's pace is new: what makes a new
    ``TravelTimesLearned`` worth a planner's re-read."""
    if abs(after.service_factor - before.service_factor) > share * before.service_factor:
        return True
    paces = dict(before.rider_factors)
    if any(r not in paces or abs(f - paces[r]) > share * paces[r] for r, f in after.rider_factors):
        return True
    return any(abs(a - b) > share * b for a, b in zip(after.leg_speed_mps, before.leg_speed_mps, strict=True))
