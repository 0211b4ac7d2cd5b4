"""Metrics as pure functions over arrays and DataFrames; each documents its formula."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Interval:
    """A mean with a two-sided confidence interval."""

    mean: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        if self.n < 2:
            return f"{self.mean:.3g}"
        return f"{self.mean:.3g} ± {(self.high - self.low) / 2:.2g}"


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean with a Student-t confidence interval (episodes are independent draws).

    With fewer than two values, or no spread, the interval collapses to the mean.
    """
    data = [float(v) for v in values if v is not None and not math.isnan(v)]
    n = len(data)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = sum(data) / n
    if n < 2:
        return Interval(mean, mean, mean, n)
    from scipy import stats

    sd = math.sqrt(sum((x - mean) ** 2 for x in data) / (n - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)
