"""The intervals verdicts are decided on: hand-worked t intervals, the bootstrap against the normal approximation,
and the three-way side of a threshold."""

from __future__ import annotations

import math

import numpy as np
import pytest

from prunekit.report.intervals import Interval, bootstrap_interval, mean_interval, side_of


def test_mean_interval_is_students_t_by_hand():
    """[1, 2, 3]: mean 2, sd 1, t(0.975, 2) = 4.3027, so 2 +- 4.3027 / sqrt(3) = [-0.4841, 4.4841]."""
    iv = mean_interval([1.0, 2.0, 3.0])
    assert iv.estimate == 2.0 and iv.n == 3
    assert iv.low == pytest.approx(2 - 4.302653 / math.sqrt(3), abs=1e-5)
    assert iv.high == pytest.approx(2 + 4.302653 / math.sqrt(3), abs=1e-5)
    # 90%: t(0.95, 2) = 2.919986
    assert mean_interval([1.0, 2.0, 3.0], confidence=0.9).high == pytest.approx(2 + 2.919986 / math.sqrt(3), abs=1e-5)


def test_mean_interval_edge_cases():
    one = mean_interval([0.5])
    assert one.estimate == 0.5 and not one.decided and "no interval" in one.text()
    same = mean_interval([0.2, 0.2, 0.2])  # no spread: the point itself, decided
    assert same.decided and same.low == same.high == 0.2
    empty = mean_interval([])
    assert empty.n == 0 and math.isnan(empty.estimate) and not empty.decided
    assert mean_interval([1.0, float("nan"), 3.0]).n == 2  # NaNs are left out


def test_bootstrap_interval_of_a_mean_matches_the_normal_approximation():
    """n = 2,000 normal draws: the percentile bootstrap interval of the mean is close to mean +- 1.96 sd / sqrt(n)."""
    x = np.random.default_rng(0).normal(3.0, 2.0, 2000)
    iv = bootstrap_interval([x], lambda a, axis: np.mean(a, axis=axis), n_resamples=4000)
    half = 1.96 * x.std(ddof=1) / math.sqrt(len(x))
    assert iv.estimate == pytest.approx(x.mean())
    assert iv.low == pytest.approx(x.mean() - half, rel=0.01) and iv.high == pytest.approx(x.mean() + half, rel=0.01)
    assert bootstrap_interval([x], lambda a, axis: np.mean(a, axis=axis), seed=1).low != iv.low  # a seeded draw


def test_bootstrap_interval_pairs_samples_when_asked():
    """The same subsets measured twice with a constant shift: paired, the difference of means is exactly the shift
    in every resample; unpaired, the two samples' spread widens the interval."""
    a = np.random.default_rng(1).normal(0, 1, 300)
    b = a + 0.1
    diff = lambda x, y, axis: np.mean(y, axis=axis) - np.mean(x, axis=axis)  # noqa: E731
    paired = bootstrap_interval([a, b], diff, paired=True)
    assert paired.low == pytest.approx(0.1) and paired.high == pytest.approx(0.1)
    unpaired = bootstrap_interval([a, b], diff)
    assert unpaired.low < 0 < 0.1 < unpaired.high
    assert not bootstrap_interval([np.array([1.0])], lambda v, axis: np.mean(v, axis=axis)).decided
    empty = bootstrap_interval([np.array([]), np.array([])], lambda u, v, axis: np.max(u, axis=axis))
    assert empty.n == 0 and not empty.decided  # no values: no interval, and no error


def test_a_tie_and_no_interval_cannot_decide():
    from prunekit.report.claims import decided

    tie = Interval(0.0, 0.0, 0.0, 3, "paired t")
    row = decided("s", "c", "r", "m.", [side_of(tie, 0.0)], "rule", intervals=[tie], threshold=0.0)
    assert row["verdict"] == "cannot decide here" and "a tie at the measurement's resolution" in row["measured"]
    assert decided("s", "c", "r", "m.", [], "rule")["verdict"] == "cannot decide here"  # nothing to decide on


@pytest.mark.parametrize("low, high, above, below", [
    (0.1, 0.2, True, False),      # wholly above the threshold 0
    (-0.2, -0.1, False, True),    # wholly below
    (-0.1, 0.1, None, None),      # straddles it
    (0.0, 0.1, None, False),      # touches it from above: not wholly above; wholly at or above, so not below
    (-0.1, 0.0, False, None),     # the mirror image
    (0.0, 0.0, None, None),       # exactly on it, every observation: a tie, decided neither way
])
def test_side_of_is_three_way(low, high, above, below):
    iv = Interval(0.5 * (low + high), low, high, 5, "t")
    assert side_of(iv, 0.0) is above
    assert side_of(iv, 0.0, holds_above=False) is below
    assert side_of(Interval(0.1, math.nan, math.nan, 1, "t"), 0.0) is None  # no interval: undecided
