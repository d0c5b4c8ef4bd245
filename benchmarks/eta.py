"""``milestream bench eta``, pure compute (no Kafka): simulated days with ground truth replayed
through the tracking pipeline, scored against what really happened.

The pipeline is the worker's own :class:`streams.domain.tracking.tracker.Tracker`, per ping in delivery order
(hygiene -> geofence -> ETA, ``update`` when ``due``). The system learns
from its own past data only: segment speeds from its accepted fixes, legs and service times from
its own arrivals and departures, the band from its own past errors. Warm-up days run first in the
same city (same :class:`simulator.truth.TrueSpeeds` seed, other day seeds), then the measured day;
learning goes on online during it. The model is never shown the truth.

Definitions (what the printed figures mean):

- **Noise**: ``sigma_m`` of :class:`simulator.truth.GpsNoise`, the RMS radial error (2D Gaussian,
  ``sigma / sqrt(2)`` per axis), plus its outliers, gaps, resends and late pings. ETA figures are
  measured at ``eta_noise_m`` (30 m); arrivals at each of ``noise_levels``.
- **Scored pairs**: every ``sample_every_s`` (60 s) of a rider's device time, on an accepted ping,
  from the rider's true departure from the hub, each remaining stop whose true arrival is after
  the sample and at most ``horizon_s`` (2 h) ahead. ETA and baseline are scored on the same pairs.
- **ETA**: the estimate the model computes at that moment (``eta.update`` from the rider's state,
  nothing withheld); ``displayed_mae_s`` scores what the customer sees instead (the last
  ``EtaUpdated`` emitted for the stop, stale by up to the emit threshold).
- **Error** = p50 - true arrival. ``eta_mae_s`` = mean |error|; ``eta_p90_abs_err_s`` = 90th
  percentile of |error|; ``within_5min`` = share with |error| <= 300 s.
- **Naive baseline** (the issue's, ``baseline_mae_s``, the target's denominator: ``mae_ratio``):
  straight-line (great-circle) distance from the rider's current position to the next stop, then
  stop to stop up to the scored one, at ONE constant speed per vehicle type that a naive system
  would configure, the nominal off-peak speed of its :data:`solver.travel.PROFILES` entry
  (``naive_mps``), nothing fitted and no service times.
- **Strong baseline** (``strong_baseline_mae_s``, ``strong_mae_ratio``; for honesty, it is no
  target): the same straight lines at the best constant speed per vehicle type in hindsight
  (straight-line metres over driving seconds of the warm-up days' true legs), plus the planned
  service time of each stop in between; ``baseline_travel_only_mae_s`` is it without service.
- **Band**: ``band_coverage`` = share of actual arrivals at or before the p90, i.e. inside the band
  that runs from the p50 up to the p90 or anywhere earlier. The target "85-95 %" centres on 90 %,
  which is what a p90 promises; the share strictly between p50 and p90 of an honest median is
  about 40 % by construction, so it is reported apart (``share_between_p50_p90``), as is the share
  before the p50 (~50 % when the median is unbiased). The baseline has no band.
- **Arrivals**: a detected arrival counts when it is for a stop (or hub) of the rider with a true
  visit such that true arrival - 120 s <= detected time <= true departure, each visit matched once
  (a second detection of one visit is a false one). Precision = matched / detected, recall =
  matched / true visits; the hub at shift start (the rider was already there) is left out of both.
  ``median_delay_s`` = median |detected - true arrival| of matched ones; ``median_delay_signed_s``
  keeps the sign (negative: reported early, which backdating allows).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from schemas import events as ev
from simulator.truth import GroundTruthDay, StopVisit, TrueSpeeds, truth_day
from solver.geo import haversine_m
from solver.travel import PROFILES
from streams.domain.tracking import eta
from streams.domain.tracking.tracker import Fleet, Tracker

Progress = Callable[[str], None]

EARLY_MATCH_S = 120.0  # a detection this long before the true arrival still counts
SAMPLE_EVERY_S = 60.0
HORIZON_S = 7_200.0
FIVE_MIN_S = 300.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Learned:
    """What the system carries from one day to the next."""

    model: eta.SpeedModel = eta.SpeedModel()
    calibration: eta.Calibration = eta.Calibration()


class _Scoring:
    """Bench bookkeeping for one rider: when scoring starts (the truth's departure from the hub,
    used only for that) and when the last sample was taken."""

    __slots__ = ("last_sample_s", "left_hub_s", "vehicle")

    def __init__(self, vehicle: str, left_hub_s: float) -> None:
        self.vehicle = vehicle
        self.left_hub_s = left_hub_s
        self.last_sample_s = -math.inf


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    """One scored moment for one stop: what each predictor said."""

    rider_id: str
    index: int
    at_s: float
    p50_s: float
    p90_s: float
    shown_p50_s: float  # the last emitted EtaUpdated (nan: none shown yet)
    baseline_s: float  # strong baseline (hindsight speed + service)
    baseline_travel_s: float  # strong baseline's speed, no service
    naive_s: float = math.nan  # the naive baseline (profile speed, no service)
    next_stop: int = -1  # the rider's next stop at the moment (diagnostics: how many stops ahead)
    model_s: float = math.nan  # the model's seconds to arrival before calibration


@dataclass(frozen=True, slots=True, kw_only=True)
class Detection:
    rider_id: str
    fence_id: str
    is_hub: bool
    at_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Replay:
    learned: Learned
    samples: tuple[Sample, ...]
    detections: tuple[Detection, ...]
    accepted: int


def baseline_speeds(days: Sequence[GroundTruthDay]) -> dict[str, float]:
    """Per vehicle type, straight-line metres over driving seconds of all true legs: the best
    constant speed in hindsight for the naive baseline."""
    metres: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for day in days:
        vehicle = {r.rider_id: str(r.vehicle_type) for r in day.riders}
        prev: dict[str, StopVisit] = {}
        for v in sorted(day.visits, key=lambda v: (v.rider_id, v.arrival_s)):
            p = prev.get(v.rider_id)
            prev[v.rider_id] = v
            if p is None or v.arrival_s <= p.departure_s:
                continue
            k = vehicle[v.rider_id]
            metres[k] = metres.get(k, 0.0) + haversine_m((p.lat, p.lon), (v.lat, v.lon))
            seconds[k] = seconds.get(k, 0.0) + v.arrival_s - p.departure_s
    return {k: metres[k] / seconds[k] for k in metres if seconds[k] > 0}


def baseline_etas(route: eta.EtaRoute, next_stop: int, position: tuple[float, float], now_s: float,
                  speed_mps: float) -> tuple[list[float], list[float]]:
    """Naive arrival times at every stop from ``next_stop``: straight lines at ``speed_mps`` via the
    stops before, with and without their planned service times."""
    with_service: list[float] = []
    travel_only: list[float] = []
    here, t, travel = position, now_s, now_s
    for i in range(next_stop, len(route.stops)):
        s = route.stops[i]
        leg = haversine_m(here, (s.lat, s.lon)) if i == next_stop else s.leg_m
        if i > next_stop:
            t += route.stops[i - 1].service_s
        t += leg / speed_mps
        travel += leg / speed_mps
        with_service.append(t)
        travel_only.append(travel)
        here = (s.lat, s.lon)
    return with_service, travel_only


def naive_speeds() -> dict[str, float]:
    """Per vehicle type, the speed a naive system would configure: the nominal off-peak road
    speed of its travel profile, not fitted to anything."""
    return {name: p.speed_mps for name, p in PROFILES.items()}


def replay(day: GroundTruthDay, learned: Learned, *, baseline_mps: Mapping[str, float] | None = None,
           naive_mps: Mapping[str, float] | None = None, score: bool = False) -> Replay:
    """Run a day's pings through the worker's own :class:`streams.domain.tracking.tracker.Tracker` (hygiene ->
    geofence -> ETA, learning as the worker does); with ``score``, take :class:`Sample` s for
    scoring (``baseline_mps`` needed; ``naive_mps`` defaults to :func:`naive_speeds`)."""
    left_hub = {v.rider_id: v.departure_s for v in day.visits if v.is_hub and v.sequence < 0}
    tracker = Tracker(fleet=Fleet(model=learned.model, calibration=learned.calibration))
    for rd in day.riders:
        tracker.on_route(rd.route)
    scoring = {rd.rider_id: _Scoring(str(rd.vehicle_type), left_hub[rd.rider_id]) for rd in day.riders}
    samples: list[Sample] = []
    detections: list[Detection] = []
    for obs in day.pings:
        ping = obs.ping
        accepted = tracker.stats["accepted"]
        for out in tracker.on_ping(ping, received_s=obs.received_s):
            e = out[1]
            if isinstance(e, ev.ArrivedAtStop):
                detections.append(Detection(rider_id=e.rider_id, fence_id=e.fence_id,
                                            is_hub=e.kind is not ev.FenceKind.STOP, at_s=e.arrived_at.timestamp()))
        if not score or tracker.stats["accepted"] == accepted:
            continue
        r, sc = tracker.riders[ping.rider_id], scoring[ping.rider_id]
        t = ping.device_time.timestamp()
        state, route = r.eta, r._eta_route  # noqa: SLF001 - the bench reads the tracker's own state
        if state is None or route is None or t - sc.last_sample_s < SAMPLE_EVERY_S or t < sc.left_hub_s \
                or state.next_stop >= len(route.stops):
            continue
        sc.last_sample_s = t
        assert baseline_mps is not None
        naive_mps = naive_mps or naive_speeds()
        pos = (ping.lat, ping.lon)
        model, calibration = tracker.fleet.model, tracker.fleet.calibration
        # the full current estimate: update() against nothing emitted returns every stop
        _, full = eta.update(dataclasses.replace(state, emitted={}), t, pos, model, calibration)
        base, base_travel = baseline_etas(route, state.next_stop, pos, t, baseline_mps[sc.vehicle])
        _, naive = baseline_etas(route, state.next_stop, pos, t, naive_mps[sc.vehicle])
        shown = state.emitted
        for e, b, bt, nv in zip(full, base, base_travel, naive, strict=True):
            s = shown.get(e.index)
            samples.append(Sample(rider_id=ping.rider_id, index=e.index, at_s=t, p50_s=e.p50_s, p90_s=e.p90_s,
                                  shown_p50_s=s.p50_s if s is not None else math.nan, baseline_s=b,
                                  baseline_travel_s=bt, naive_s=nv, next_stop=state.next_stop, model_s=e.model_s))
    fleet = tracker.fleet
    if day.pings:
        fleet.learn(day.pings[-1].received_s)
        fleet.model = eta.refresh(fleet.model, day.pings[-1].received_s)
    return Replay(learned=Learned(model=fleet.model, calibration=fleet.calibration), samples=tuple(samples),
                  detections=tuple(detections), accepted=tracker.stats["accepted"])


def score_etas(day: GroundTruthDay, samples: Sequence[Sample], horizon_s: float = HORIZON_S) -> dict[str, float]:
    """ETA and baseline figures over the (stop, moment) pairs with the true arrival ahead, within
    ``horizon_s``."""
    truth = {(v.rider_id, v.sequence): v.arrival_s for v in day.visits if not v.is_hub}
    rows = []
    for s in samples:
        actual = truth.get((s.rider_id, s.index))
        if actual is not None and s.at_s < actual <= s.at_s + horizon_s:
            rows.append((actual, s.p50_s, s.p90_s, s.shown_p50_s, s.baseline_s, s.baseline_travel_s, s.naive_s))
    if not rows:
        raise ValueError("no scored ETA pairs: the day is too short or nothing was estimated")
    actual, p50, p90, shown, base, travel, naive = np.array(rows).T
    err, base_err, naive_err = p50 - actual, base - actual, naive - actual
    shown_err = (shown - actual)[~np.isnan(shown)]
    return {
        "pairs": len(rows),
        "eta_mae_s": float(np.mean(np.abs(err))),
        "eta_p90_abs_err_s": float(np.percentile(np.abs(err), 90)),
        "within_5min": float(np.mean(np.abs(err) <= FIVE_MIN_S)),
        "eta_median_err_s": float(np.median(err)),
        "band_coverage": float(np.mean(actual <= p90)),
        "share_before_p90": float(np.mean(actual <= p90)),
        "share_between_p50_p90": float(np.mean((actual >= p50) & (actual <= p90))),
        "share_before_p50": float(np.mean(actual < p50)),
        "displayed_mae_s": float(np.mean(np.abs(shown_err))) if shown_err.size else math.nan,
        "baseline_mae_s": float(np.mean(np.abs(naive_err))),
        "baseline_p90_abs_err_s": float(np.percentile(np.abs(naive_err), 90)),
        "baseline_within_5min": float(np.mean(np.abs(naive_err) <= FIVE_MIN_S)),
        "baseline_median_err_s": float(np.median(naive_err)),
        "strong_baseline_mae_s": float(np.mean(np.abs(base_err))),
        "strong_baseline_p90_abs_err_s": float(np.percentile(np.abs(base_err), 90)),
        "strong_baseline_within_5min": float(np.mean(np.abs(base_err) <= FIVE_MIN_S)),
        "strong_baseline_median_err_s": float(np.median(base_err)),
        "baseline_travel_only_mae_s": float(np.mean(np.abs(travel - actual))),
    }


def score_arrivals(visits: Sequence[StopVisit], detections: Sequence[Detection],
                   early_s: float = EARLY_MATCH_S) -> dict[str, float]:
    """Precision, recall and delay of detected arrivals against the true visits (see the module
    docstring); the hub at shift start is in neither count."""
    by_fence: dict[tuple[str, str], list[StopVisit]] = {}
    for v in visits:
        by_fence.setdefault((v.rider_id, v.stop_id), []).append(v)
    used: set[tuple[str, str, float]] = set()
    matched, counted, delays = 0, 0, []
    for d in sorted(detections, key=lambda d: d.at_s):
        hit = None
        for v in by_fence.get((d.rider_id, d.fence_id), ()):
            key = (v.rider_id, v.stop_id, v.arrival_s)
            if key not in used and v.arrival_s - early_s <= d.at_s <= v.departure_s:
                hit = v
                used.add(key)
                break
        if hit is not None and hit.is_hub and hit.sequence < 0:
            continue  # the shift started here: nothing to detect
        counted += 1
        if hit is not None:
            matched += 1
            delays.append(d.at_s - hit.arrival_s)
    true_visits = sum(1 for v in visits if not (v.is_hub and v.sequence < 0))
    return {
        "precision": matched / counted if counted else 0.0,
        "recall": matched / true_visits if true_visits else 0.0,
        "median_delay_s": float(np.median(np.abs(delays))) if delays else math.nan,
        "median_delay_signed_s": float(np.median(delays)) if delays else math.nan,
        "detected": counted,
        "true_visits": true_visits,
        "matched": matched,
    }


def run(seed: int = 7, riders: int = 10, stops: int = 30, noise_levels: Sequence[float] = (10, 30, 50), *,
        eta_noise_m: float = 30.0, warmup_days: int = 2, city_seed: int = 2026,
        progress: Progress | None = None) -> dict:
    """The benchmark: ``warmup_days`` days of learning, then the measured day (seed ``seed``) at
    ``eta_noise_m`` for the ETA figures and at each of ``noise_levels`` for arrivals. Every replay
    of the measured day starts from the same warmed-up state."""
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    speeds = TrueSpeeds(seed=city_seed)
    learned = Learned()
    warm_days = []
    for k in range(warmup_days):
        day = truth_day(seed + 1000 * (k + 1), riders, stops, eta_noise_m, speeds=speeds)
        warm_days.append(day)
        learned = replay(day, learned).learned
        say(f"warm-up day {k + 1}/{warmup_days}: {len(day.pings)} pings, {len(day.visits)} visits")
    base_days = warm_days or [truth_day(seed + 1000, riders, stops, eta_noise_m, speeds=speeds)]
    baseline_mps = baseline_speeds(base_days)

    levels = sorted({*(float(n) for n in noise_levels), float(eta_noise_m)})
    arrivals: dict[str, dict[str, float]] = {}
    result: dict = {}
    pings = 0
    for noise in levels:
        day = truth_day(seed, riders, stops, noise, speeds=speeds)
        pings += len(day.pings)
        scored = noise == float(eta_noise_m)
        rep = replay(day, learned, baseline_mps=baseline_mps, score=scored)
        if scored:
            result.update(score_etas(day, rep.samples))
        if noise in {float(n) for n in noise_levels}:
            arrivals[f"{noise:g}"] = score_arrivals(day.visits, rep.detections)
        say(f"measured day at {noise:g} m noise: {len(day.pings)} pings, {rep.accepted} accepted")
    result["mae_ratio"] = result["eta_mae_s"] / result["baseline_mae_s"]
    result["strong_mae_ratio"] = result["eta_mae_s"] / result["strong_baseline_mae_s"]
    result["arrivals"] = arrivals
    result.update(seed=seed, city_seed=city_seed, riders=riders, stops=stops, warmup_days=warmup_days,
                  eta_noise_m=eta_noise_m, baseline_mps={k: round(v, 3) for k, v in sorted(baseline_mps.items())},
                  naive_mps={k: round(v, 3) for k, v in sorted(naive_speeds().items())},
                  measured_pings=pings, elapsed_s=round(time.perf_counter() - started, 2))
    return result


def report(result: Mapping) -> list[str]:
    """Human-readable lines, with each target's verdict."""
    r = result

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    ratio = r["mae_ratio"]
    lines = [
        f"bench eta: seed {r['seed']}, city {r['city_seed']}, {r['riders']} riders x {r['stops']} stops, "
        f"{r['warmup_days']} warm-up day(s), {r['elapsed_s']:.1f} s",
        f"ETA at {r['eta_noise_m']:g} m GPS noise (RMS radius), {r['pairs']} (stop, moment) pairs, "
        f"every {SAMPLE_EVERY_S:g} s up to {HORIZON_S / 3600:g} h ahead:",
        f"  {'':24}{'model':>10}{'naive':>10}{'strong':>10}",
        f"  {'MAE':24}{r['eta_mae_s']:>9.0f}s{r['baseline_mae_s']:>9.0f}s{r['strong_baseline_mae_s']:>9.0f}s",
        f"  {'p90 absolute error':24}{r['eta_p90_abs_err_s']:>9.0f}s{r['baseline_p90_abs_err_s']:>9.0f}s"
        f"{r['strong_baseline_p90_abs_err_s']:>9.0f}s",
        f"  {'within +-5 min of p50':24}{r['within_5min']:>10.1%}{r['baseline_within_5min']:>10.1%}"
        f"{r['strong_baseline_within_5min']:>10.1%}",
        f"  {'median error (bias)':24}{r['eta_median_err_s']:>9.0f}s{r['baseline_median_err_s']:>9.0f}s"
        f"{r['strong_baseline_median_err_s']:>9.0f}s",
        f"  MAE ratio to the naive baseline {ratio:.2f} (the issue's target <= 0.60: {verdict(ratio <= 0.6)}); "
        f"to the strong baseline {r['strong_mae_ratio']:.2f} (no target, for honesty)",
        f"  shown to customers (last EtaUpdated) MAE {r['displayed_mae_s']:.0f} s; strong baseline without service "
        f"times MAE {r['baseline_travel_only_mae_s']:.0f} s",
        f"  band: {r['band_coverage']:.1%} of arrivals at or before p90 (target 85-95%: "
        f"{verdict(0.85 <= r['band_coverage'] <= 0.95)}); {r['share_between_p50_p90']:.1%} between p50 and p90, "
        f"{r['share_before_p50']:.1%} before p50",
        "  naive baseline (the issue's): straight line via the stops at the vehicle profile's nominal speed ("
        + ", ".join(f"{k} {v:.2f} m/s" for k, v in r["naive_mps"].items()) + "), no service times",
        "  strong baseline: straight line via the stops at the best constant speed per vehicle in hindsight ("
        + ", ".join(f"{k} {v:.2f} m/s" for k, v in r["baseline_mps"].items()) + ") + planned service times",
        "Arrivals (match: right stop, true arrival - 120 s .. true departure; hub at shift start excluded):",
        f"  {'noise':>7}{'precision':>11}{'recall':>9}{'|delay| p50':>13}{'signed p50':>12}{'detected':>10}"
        f"{'visits':>8}",
    ]
    for level, a in r["arrivals"].items():
        lines.append(f"  {level + ' m':>7}{a['precision']:>11.3f}{a['recall']:>9.3f}{a['median_delay_s']:>12.0f}s"
                     f"{a['median_delay_signed_s']:>11.0f}s{a['detected']:>10}{a['true_visits']:>8}")
    at30 = r["arrivals"].get("30")
    if at30 is not None:
        ok = at30["precision"] >= 0.98 and at30["recall"] >= 0.98 and at30["median_delay_s"] < 45
        lines.append(f"  at 30 m: precision and recall >= 0.98, median delay < 45 s: {verdict(ok)}")
    return lines


__all__ = ["Detection", "Learned", "Replay", "Sample", "baseline_etas", "baseline_speeds", "naive_speeds", "replay",
           "report", "run",
           "score_arrivals", "score_etas"]
