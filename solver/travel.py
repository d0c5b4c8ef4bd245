"""Travel times per vehicle profile, pure: where :attr:`solver.model.Problem.durations` comes from.

A :class:`TravelModel` turns locations into a whole-second duration matrix for one
:class:`Profile` and a departure time of day, and into a metres matrix for costs:

- :class:`HaversineTravel` (default, no data needed): great circle x the profile's circuity, at
  the profile's speed for the hour of departure;
- :class:`LearnedSpeeds`: the same prior, corrected per (H3 cell, hour) by speeds observed in
  past GPS tracks (fed by the live-tracking pipeline);
- ``infra.road_table.OsrmTable`` / ``ValhallaMatrix``: a road-network table service in production
  (HTTP, so it lives in :mod:`infra`, not here).

Time of day is an approximation: one matrix per profile for one departure hour (the hour the
plan starts, typically). Travel inside a route is not time-dependent: a van leaving at 07:30 is
timed at the 07:00 speed all morning, even when its route runs into the 08:00 rush. Re-planning
during the day (:mod:`solver.reoptimise`) picks up the speeds of the hour it runs at.

Times are rounded up to whole seconds, as :func:`solver.model.travel_seconds` does, so a plan is
never optimistic.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Protocol, runtime_checkable

import h3
import numpy as np
from h3.api import basic_int as h3_int

from solver.geo import haversine_matrix_m as model_haversine_matrix_m
from solver.model import Matrix, Vehicle

Location = tuple[float, float]  # (lat, lon) in degrees
Metres = tuple[tuple[float, ...], ...]
HOURS = 24
_RUSH_HOURS = frozenset({8, 9, 17, 18, 19})  # 08:00-10:00 and 17:00-20:00
_NIGHT_HOURS = frozenset({22, 23, 0, 1, 2, 3, 4, 5})


def hour_of_day(depart_s_of_day: float) -> int:
    """The hour (0-23) a departure ``depart_s_of_day`` seconds after local midnight falls in."""
    if not (math.isfinite(depart_s_of_day) and depart_s_of_day >= 0):
        raise ValueError(f"depart_s_of_day={depart_s_of_day} must be finite and >= 0")
    return int(depart_s_of_day // 3600) % HOURS


def _check_hour(hour: int) -> int:
    if not 0 <= hour < HOURS:
        raise ValueError(f"hour={hour} must be in 0-23")
    return hour


def day_curve(*, rush: float, night: float) -> tuple[float, ...]:
    """Hourly speed multipliers: ``rush`` 08-10 and 17-20, ``night`` 22-06, 1.0 otherwise."""
    return tuple(rush if h in _RUSH_HOURS else night if h in _NIGHT_HOURS else 1.0 for h in range(HOURS))


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """How a kind of vehicle moves through the city: off-peak daytime road speed, how much longer
    its roads are than the great circle, and how its speed changes over the day."""

    name: str
    speed_mps: float  # average road speed off-peak (10:00-17:00), stops at lights included
    circuity: float = 1.3  # road distance / great-circle distance
    hourly_factors: tuple[float, ...] = (1.0,) * HOURS  # speed multiplier for departures in hour h

    def __post_init__(self) -> None:
        where = f"Profile {self.name!r}"
        if not self.name:
            raise ValueError("Profile: name must not be empty (it is the key of Problem.durations)")
        if not (math.isfinite(self.speed_mps) and self.speed_mps > 0):
            raise ValueError(f"{where}: speed_mps={self.speed_mps} must be > 0")
        if not (math.isfinite(self.circuity) and self.circuity >= 1.0):
            raise ValueError(f"{where}: circuity={self.circuity} must be >= 1")
        if len(self.hourly_factors) != HOURS or not all(math.isfinite(f) and f > 0 for f in self.hourly_factors):
            raise ValueError(f"{where}: hourly_factors needs {HOURS} finite multipliers > 0")

    def speed_at(self, depart_s_of_day: float) -> float:
        """Road speed for a departure at this time of day."""
        return self.speed_mps * self.hourly_factors[hour_of_day(depart_s_of_day)]


# Assumptions, to be replaced by LearnedSpeeds once tracks exist (none of this is measured here):
# - speeds are European city-centre averages including stops at lights, in the range that city
#   traffic indices (e.g. TomTom Traffic Index: 20-30 km/h off-peak for cars) and courier
#   studies (e-cargo bikes 12-16 km/h door to door) report: bike 15 km/h, scooter 23 km/h,
#   car 27 km/h, van 23 km/h (slower to park and turn than a car);
# - circuity 1.25-1.35, the usual urban detour factor of road over great-circle distance
#   (Ballou et al. 2002; Boscoe et al. 2012); bikes cut through parks and contraflow lanes;
# - rush hours cost motor vehicles 25-30 % of their speed, scooters filter through traffic
#   (15 %), bikes barely notice (5 %); empty night streets are faster.
PROFILES: Mapping[str, Profile] = MappingProxyType({
    p.name: p
    for p in (
        Profile(name="bike", speed_mps=4.2, circuity=1.25, hourly_factors=day_curve(rush=0.95, night=1.05)),
        Profile(name="scooter", speed_mps=6.5, circuity=1.3, hourly_factors=day_curve(rush=0.85, night=1.15)),
        Profile(name="car", speed_mps=7.5, circuity=1.35, hourly_factors=day_curve(rush=0.7, night=1.25)),
        Profile(name="van", speed_mps=6.5, circuity=1.35, hourly_factors=day_curve(rush=0.75, night=1.2)),
    )
})


@runtime_checkable
class TravelModel(Protocol):
    """Where travel times and road distances come from."""

    def durations(self, locations: Sequence[Location], profile: Profile, depart_s_of_day: float) -> Matrix:
        """Whole seconds from every location to every other (square, zero diagonal)."""
        ...

    def distances(self, locations: Sequence[Location]) -> Metres:
        """Road metres from every location to every other (square, zero diagonal)."""
        ...


def haversine_matrix_m(locations: Sequence[Location]) -> np.ndarray:
    """Great-circle metres between all locations: :func:`solver.geo.haversine_m` in vector form
    (same formula, same radius), because 2,000 x 2,000 calls of it take seconds. Read-only."""
    return _haversine_matrix(tuple((float(lat), float(lon)) for lat, lon in locations))


@lru_cache(maxsize=1)  # a problem asks once per profile, in a row; 32 MB for 2,001 locations
def _haversine_matrix(locations: tuple[Location, ...]) -> np.ndarray:
    h = model_haversine_matrix_m(locations)
    h.setflags(write=False)
    return h


def whole_seconds(seconds: np.ndarray) -> Matrix:
    """Round a float matrix of seconds up, as :func:`solver.model.travel_seconds` does, into the
    plain ints :attr:`Problem.durations` holds.

    Cells share one int object per value (a city's trips take at most a few thousand seconds):
    30 MB for 2,001 x 2,001 instead of 145 MB with one object per cell, and faster to build."""
    whole = np.ceil(seconds).astype(np.int64)
    n = len(whole)
    if n < 2 or whole.max() > 86_400:  # itemgetter of one index gives no tuple; beyond a day: no sharing
        return tuple(map(tuple, whole.tolist()))
    ints = tuple(range(int(whole.max()) + 1))
    return tuple(operator.itemgetter(*row.tolist())(ints) for row in whole)


@dataclass(frozen=True, slots=True, kw_only=True)
class HaversineTravel:
    """Great circle x circuity at the profile's speed for the hour of departure: needs no data.

    2,001 locations take well under a second per profile (numpy; the great-circle matrix is
    computed once and shared by the profiles of one problem)."""

    circuity: float = 1.3  # for distances(): the problem's road distances (as Problem.circuity)

    def durations(self, locations: Sequence[Location], profile: Profile, depart_s_of_day: float) -> Matrix:
        road_m = haversine_matrix_m(locations) * profile.circuity
        return whole_seconds(road_m / profile.speed_at(depart_s_of_day))

    def distances(self, locations: Sequence[Location]) -> Metres:
        return tuple(map(tuple, (haversine_matrix_m(locations) * self.circuity).tolist()))


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeedObservation:
    """One measured speed, e.g. a GPS ping of a moving rider (``weight``: the seconds it stands for)."""

    profile: str
    lat: float
    lon: float
    hour: int  # local hour of day, 0-23
    speed_mps: float
    weight: float = 1.0


class LearnedSpeeds:
    """Speeds learned per (profile, H3 cell, hour) from past tracks, on top of a profile prior.

    A cell's speed is the prior shrunk toward what was observed there at that hour:
    ``(prior_weight * prior + sum(w * v)) / (prior_weight + sum(w))``, so a cell seen a few times
    barely moves and one seen often follows its data. The weighted mean of time-sampled speeds
    is the cell's space-mean speed, the one that gives travel time over a distance.

    A trip is timed along the straight line between its ends: the H3 cells on that line
    (``grid_path_cells`` at ``resolution``) each cover an equal share of the road distance
    (great circle x the profile's circuity), so the trip takes the sum of those shares at each
    cell's speed (a harmonic mean of the speeds); cells without data run at the prior. With no
    observation for the profile and hour, durations equal :class:`HaversineTravel`'s.

    Cost: one ``grid_path_cells`` per pair of distinct cells among the locations (about 10 us for
    15 cells at resolution 8 across a 20 km city), cached between calls, plus a Python sum over the
    path: 300 locations in distinct cells (45,000 pairs) took 0.8 s the first time and 0.15 s
    once the paths were cached (2-core machine). It is quadratic: for thousands of locations use a
    road table service (:mod:`infra.road_table`).

    Mutable on purpose: the live-tracking pipeline feeds it with :meth:`observe` as data arrives.
    """

    __slots__ = ("resolution", "prior_weight", "circuity", "max_cached_paths", "_sums", "_paths")

    def __init__(self, *, resolution: int = 8, prior_weight: float = 30.0, circuity: float = 1.3,
                 max_cached_paths: int = 500_000) -> None:
        if not 0 <= resolution <= 15:
            raise ValueError(f"resolution={resolution} must be an H3 resolution (0-15)")
        if not (math.isfinite(circuity) and circuity >= 1.0):
            raise ValueError(f"circuity={circuity} must be >= 1")
        if not (math.isfinite(prior_weight) and prior_weight > 0):
            raise ValueError(f"prior_weight={prior_weight} must be > 0 (it keeps unseen speeds at the prior)")
        self.resolution = resolution
        self.prior_weight = prior_weight
        self.circuity = circuity  # for distances(), as HaversineTravel
        self.max_cached_paths = max_cached_paths
        # (profile, hour) -> cell -> [sum of weights, sum of weight x speed]
        self._sums: dict[tuple[str, int], dict[int, list[float]]] = {}
        self._paths: dict[tuple[int, int], tuple[int, ...]] = {}

    @classmethod
    def from_observations(cls, observations: Iterable[SpeedObservation], *, resolution: int = 8,
                          prior_weight: float = 30.0, circuity: float = 1.3) -> LearnedSpeeds:
        learned = cls(resolution=resolution, prior_weight=prior_weight, circuity=circuity)
        for o in observations:
            cell = h3_int.latlng_to_cell(o.lat, o.lon, resolution)
            learned.observe(o.profile, cell, o.hour, o.speed_mps, o.weight)
        return learned

    def observe(self, profile: str, cell: str | int, hour: int, speed_mps: float, weight: float = 1.0) -> None:
        """Add a speed seen in ``cell`` (H3, at this model's resolution or finer) at ``hour``."""
        cell = self._cell(cell)
        _check_hour(hour)
        if not (math.isfinite(speed_mps) and speed_mps >= 0):
            raise ValueError(f"speed_mps={speed_mps} must be finite and >= 0")
        if not (math.isfinite(weight) and weight > 0):
            raise ValueError(f"weight={weight} must be > 0")
        sums = self._sums.setdefault((profile, hour), {}).setdefault(cell, [0.0, 0.0])
        sums[0] += weight
        sums[1] += weight * speed_mps

    def cell_speed_mps(self, profile: Profile, cell: str | int, hour: int) -> float:
        """The speed this model assumes in ``cell`` at ``hour``: prior shrunk toward observations."""
        prior = profile.speed_mps * profile.hourly_factors[_check_hour(hour)]
        seen = self._sums.get((profile.name, hour), {}).get(self._cell(cell))
        if seen is None:
            return prior
        return (self.prior_weight * prior + seen[1]) / (self.prior_weight + seen[0])

    def durations(self, locations: Sequence[Location], profile: Profile, depart_s_of_day: float) -> Matrix:
        hour = hour_of_day(depart_s_of_day)
        prior = profile.speed_at(depart_s_of_day)
        seconds = haversine_matrix_m(locations) * profile.circuity / prior
        seen = self._sums.get((profile.name, hour))
        if seen:
            # slowdown of each observed cell against the prior (2.0: takes twice as long)
            slowdown = {c: prior * (self.prior_weight + w) / (self.prior_weight * prior + wv)
                        for c, (w, wv) in seen.items()}
            seconds = seconds * self._path_slowdowns(locations, slowdown)
        return whole_seconds(seconds)

    def distances(self, locations: Sequence[Location]) -> Metres:
        return HaversineTravel(circuity=self.circuity).distances(locations)

    def _cell(self, cell: str | int) -> int:
        try:
            value = h3.str_to_int(cell) if isinstance(cell, str) else int(cell)
        except ValueError:
            value = 0
        if not h3_int.is_valid_cell(value):
            raise ValueError(f"cell={cell!r} is not a valid H3 cell")
        res = h3_int.get_resolution(value)
        if res < self.resolution:
            raise ValueError(f"cell={cell!r} has resolution {res}, coarser than this model's {self.resolution}")
        return h3_int.cell_to_parent(value, self.resolution) if res > self.resolution else value

    def _path(self, a: int, b: int) -> tuple[int, ...]:
        key = (a, b) if a <= b else (b, a)  # one path for both directions: symmetric times
        path = self._paths.get(key)
        if path is None:
            try:
                path = tuple(h3_int.grid_path_cells(*key))
            except h3.H3BaseException:  # across a pentagon or too far apart: time it at the prior
                path = ()
            if len(self._paths) >= self.max_cached_paths:
                self._paths.clear()
            self._paths[key] = path
        return path

    def _path_slowdowns(self, locations: Sequence[Location], slowdown: Mapping[int, float]) -> np.ndarray:
        """Mean slowdown over the cells on the line between every two locations."""
        cells = [h3_int.latlng_to_cell(lat, lon, self.resolution) for lat, lon in locations]
        distinct = sorted(set(cells))
        factor = np.ones((len(distinct), len(distinct)))
        for i, a in enumerate(distinct):
            factor[i, i] = slowdown.get(a, 1.0)
            for j in range(i + 1, len(distinct)):
                path = self._path(a, distinct[j])
                if path:
                    factor[i, j] = factor[j, i] = sum(slowdown.get(c, 1.0) for c in path) / len(path)
        position = {c: k for k, c in enumerate(distinct)}
        index = np.array([position[c] for c in cells], dtype=np.intp)
        return factor[np.ix_(index, index)]


def problem_durations(locations: Sequence[Location], vehicles: Iterable[Vehicle], model: TravelModel,
                      depart_s_of_day: float, profiles: Mapping[str, Profile] = PROFILES) -> dict[str, Matrix]:
    """:attr:`Problem.durations` for every profile the vehicles use (vehicles without a profile
    drive at their ``speed_mps`` and need no matrix)."""
    names = sorted({v.profile for v in vehicles if v.profile})
    unknown = [n for n in names if n not in profiles]
    if unknown:
        raise ValueError(f"vehicle profiles {unknown} are not among the known profiles {sorted(profiles)}")
    return {name: model.durations(locations, profiles[name], depart_s_of_day) for name in names}
