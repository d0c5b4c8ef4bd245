"""Forgetting histograms of ``log(actual / predicted)``: the rider factors (:mod:`.speeds`) and
the ETA band (:mod:`.calibration`) read medians and 90th percentiles from them, robust to the
skew of leg times where a mean is not."""

from __future__ import annotations

import math
from collections.abc import Sequence

BINS = 81
LO, HI = -2.0, 2.0  # log(actual / predicted) range of the histograms; outside clamps to the ends
WIDTH = (HI - LO) / BINS
ZERO_BINS = (0.0,) * BINS


def bin_of(log_ratio: float) -> int:
    return int((min(HI - 1e-9, max(LO, log_ratio)) - LO) / WIDTH)


def quantile(counts: Sequence[float], q: float) -> float:
    target = q * sum(counts)
    acc = 0.0
    for i, c in enumerate(counts):
        if acc + c >= target and c > 0:
            return LO + (i + (target - acc) / c) * WIDTH
        acc += c
    return HI


def lognormal_counts(sigma: float, weight: float) -> tuple[float, ...]:
    cdf = [0.5 * (1 + math.erf((LO + i * WIDTH) / (sigma * math.sqrt(2)))) for i in range(BINS + 1)]
    return tuple(weight * (cdf[i + 1] - cdf[i]) for i in range(BINS))
