"""Intervals that verdicts are decided on: a t interval of a mean over seeds (or pairs), a bootstrap interval of any
statistic over resampled subsets (both from scipy.stats), and the three-way verdict an interval gives against a rule's
threshold.

A comparative claim "holds" only when the whole interval is on the claim's side of the threshold, "does not hold" only
when the whole interval is on the other side, and "cannot decide here" otherwise (too few seeds, too much spread).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..core.checks import count, fraction, number, sequence, text

__all__ = ["Interval", "mean_interval", "bootstrap_interval", "side_of"]

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """An estimate with its ``confidence`` interval [low, high] over ``n`` observations, and how it was made."""

    estimate: float
    low: float
    high: float
    n: int
    method: str
    confidence: float = CONFIDENCE

    @property
    def decided(self) -> bool:
        """Whether both ends are numbers (one observation gives no interval)."""
        return math.isfinite(self.low) and math.isfinite(self.high)

    def text(self, fmt: str = "{:+.3f}", scale: float = 1.0, unit: str = "") -> str:
        """``"+0.050 [95% CI +0.029 to +0.072; paired t, n = 63]"``; ``scale`` multiplies (100 for points), ``unit``
        follows the estimate and the interval's upper end."""
        text("fmt", fmt)
        scale = number("scale", scale, low=0.0, low_open=True)

        def f(v: float) -> str:
            return fmt.format(scale * v) if math.isfinite(v) else "n/a"

        if not self.decided:
            return f"{f(self.estimate)}{unit} [no interval: {self.method}, n = {self.n}]"
        return (f"{f(self.estimate)}{unit} [{self.confidence:.0%} CI {f(self.low)} to {f(self.high)}{unit}; "
                f"{self.method}, n = {self.n}]")


def _real(name: str, value) -> float:
    """A real number (NaN allowed: it is left out), else a ``ValueError`` naming it."""
    import numbers

    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}={value!r} must be a number")
    return float(value)


def _array(name: str, values) -> np.ndarray:
    """``values`` as a float array (one sample of a bootstrap), else a ``ValueError`` naming it."""
    if isinstance(values, (str, bytes)):
        raise ValueError(f"{name}={values!r} must be an array of numbers")
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={values!r} must be an array of numbers") from None


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE, what: str = "t over seeds") -> Interval:
    """The mean of ``values`` with Student's t interval (``scipy.stats.t``): the interval of a mean over seeds, or of
    paired differences. NaN values are left out; one value gives no interval (NaN ends); values that are all equal
    give the point itself (a zero-width interval)."""
    from scipy import stats

    fraction("confidence", confidence, low_open=True, high_open=True)
    x = np.asarray(sequence("values", values, nonempty=False, item=_real), dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0, what, confidence)
    mean = float(x.mean())
    if x.size == 1:
        return Interval(mean, math.nan, math.nan, 1, what, confidence)
    if np.ptp(x) == 0:  # no spread: the point itself (not a rounding error's width)
        return Interval(float(x[0]), float(x[0]), float(x[0]), int(x.size), what, confidence)
    sem = float(stats.sem(x))
    low, high = stats.t.interval(confidence, x.size - 1, loc=mean, scale=sem)
    return Interval(mean, float(low), float(high), int(x.size), what, confidence)


def bootstrap_interval(samples: Sequence[np.ndarray], statistic: Callable[..., np.ndarray], *,
                       confidence: float = CONFIDENCE, n_resamples: int = 2000, seed: int = 0, paired: bool = False,
                       what: str = "bootstrap over subsets") -> Interval:
    """``statistic(*samples)`` with a percentile bootstrap interval (``scipy.stats.bootstrap``): each sample is
    resampled with replacement (together, row by row, when ``paired``). ``statistic`` takes the samples and an
    ``axis`` keyword (vectorised, as scipy asks). A sample with fewer than two values gives no interval. The interval
    is widened, where needed, to contain the estimate itself. Use it for statistics a bootstrap can estimate (means,
    quantiles inside the sample, ratios of them), not for the sample's extremes: a resampled maximum never exceeds
    the observed one."""
    from scipy import stats

    fraction("confidence", confidence, low_open=True, high_open=True)
    n_resamples, seed = count("n_resamples", n_resamples), count("seed", seed, low=0)
    samples = [_array(f"samples[{i}]", s) for i, s in enumerate(sequence("samples", samples))]
    n = min((s.size for s in samples), default=0)
    if n < 2:
        estimate = float(statistic(*samples, axis=-1)) if n == 1 else math.nan
        return Interval(estimate, math.nan, math.nan, int(n), what, confidence)
    estimate = float(statistic(*samples, axis=-1))
    if not math.isfinite(estimate):
        return Interval(estimate, math.nan, math.nan, int(n), what, confidence)
    if all(np.ptp(s) == 0 for s in samples):
        return Interval(estimate, estimate, estimate, int(n), what, confidence)
    res = stats.bootstrap(samples, statistic, n_resamples=n_resamples, confidence_level=confidence,
                          method="percentile", paired=paired, vectorized=True,
                          rng=np.random.default_rng(seed))
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return Interval(estimate, min(low, estimate), max(high, estimate), int(n), what, confidence)


def side_of(interval: Interval, threshold: float = 0.0, holds_above: bool = True) -> bool | None:
    """True when the whole interval is on the claim's side of ``threshold`` (above it with ``holds_above``, else
    below), False when the whole interval is on the other side (touching the threshold counts as the other side),
    None when it straddles the threshold, when there is no interval, or when it is the threshold itself (a tie at the
    measurement's resolution: every observation equal to it)."""
    number("threshold", threshold)
    if not isinstance(interval, Interval):
        raise ValueError(f"interval must be an Interval (mean_interval, bootstrap_interval), got "
                         f"{type(interval).__name__}")
    if not interval.decided or interval.low == interval.high == threshold:
        return None
    low, high = interval.low, interval.high
    if holds_above:
        return True if low > threshold else False if high <= threshold else None
    return True if high < threshold else False if low >= threshold else None
