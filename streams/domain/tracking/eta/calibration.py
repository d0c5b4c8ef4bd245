"""The ETA band: per stops ahead and horizon bucket, a forgetting histogram of
``log(actual / predicted)`` over past arrivals (:class:`Calibration`, :func:`observe_arrivals`).
Its 90th percentile gives the p90, so the band follows the errors the system really makes (it
starts from a lognormal prior). The p50 is the model's time unless ``CalibrationParams.recentre``."""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from streams.domain.tracking.eta.histogram import bin_of, lognormal_counts, quantile

if TYPE_CHECKING:
    from streams.domain.tracking.eta.estimate import StopEta

HORIZON_EDGES_S = (300.0, 900.0, 1_800.0, 3_600.0, 7_200.0)  # buckets: <5 min, <15, <30, <60, <120, more
AHEAD_EDGES = (1, 2, 3, 5, 8)  # stops ahead of the rider: 0 (the leg under way), 1, 2, 3-4, 5-7, 8 and more
_H = len(HORIZON_EDGES_S) + 1
LAST_AHEAD = AHEAD_EDGES[-1]
# the first bucket of each stops-ahead count: what route_etas adds the horizon bucket to (inlined there)
AHEAD_OFFSET = tuple(bisect.bisect_right(AHEAD_EDGES, k) * _H for k in range(AHEAD_EDGES[-1] + 1))


def horizon_bucket(horizon_s: float) -> int:
    return bisect.bisect_right(HORIZON_EDGES_S, horizon_s)


def calibration_bucket(horizon_s: float, ahead: int = 0) -> int:
    """Index of the histogram for an estimate: horizon bucket within stops-ahead bucket. Errors
    depend on both: a leg is skewed (most are direct, a few detour), so the error of the stop
    under way is not that of the tenth stop at the same horizon, whose legs' detours average out."""
    return AHEAD_OFFSET[min(ahead, AHEAD_EDGES[-1])] + bisect.bisect_right(HORIZON_EDGES_S, horizon_s)


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
            counts = tuple(lognormal_counts(s, p.prior_weight) for s in p.prior_sigma) * (len(AHEAD_EDGES) + 1)
            object.__setattr__(self, "counts", counts)
            object.__setattr__(self, "q50", tuple(quantile(c, 0.5) for c in counts))
            object.__setattr__(self, "q90", tuple(quantile(c, 0.9) for c in counts))
        if not self.r50:
            object.__setattr__(self, "r50", tuple(map(math.exp, self.q50)) if self.params.recentre
                               else (1.0,) * len(self.q50))
            object.__setattr__(self, "r90", tuple(map(math.exp, self.q90)))


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
        by_bucket.setdefault(calibration_bucket(e.model_s, e.ahead), []).append(bin_of(math.log(elapsed / e.model_s)))
    if not by_bucket:
        return calibration
    keep = 1 - 1 / calibration.params.memory
    counts, q50, q90 = list(calibration.counts), list(calibration.q50), list(calibration.q90)
    for b, bins in by_bucket.items():
        new = [c * keep for c in counts[b]]
        for i in bins:
            new[i] += 1.0 / len(bins)
        counts[b] = tuple(new)
        q50[b], q90[b] = quantile(new, 0.5), quantile(new, 0.9)
    return dataclasses.replace(calibration, counts=tuple(counts), q50=tuple(q50), q90=tuple(q90),
                               r90=tuple(map(math.exp, q90)),
                               r50=tuple(map(math.exp, q50)) if calibration.params.recentre else calibration.r50)

