"""Utility imbalance: how unevenly a network's utility (``prunekit.measures.utility``) is spread over equal-size random subsets.

The source's measure (source 002, "An Empirical Study of a Pruning Mechanism", OpenReview doeyA2PBjdy, Def. 3): the
**standard deviation of the utilities of a sample set of N random subsets** (N = 500 in the source), reported with
the sample set's mean, minimum and maximum utility. If weights are used evenly, every random subset of a given size
removes about the same information and the spread is small; if a few weights carry the function, subsets that hit
them have much larger utility than those that miss them.

Two scale-free extras of this project, labelled as such wherever they appear: the **Gini coefficient**
``G = sum_ij |u_i - u_j| / (2 n^2 mean(u))`` in [0, 1) and the coefficient of variation ``std / mean``. They compare
networks whose utilities differ in size (widths); they are not the source's measure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..core.checks import columns

__all__ = ["IMBALANCE_MEASURES", "utility_std", "gini", "coefficient_of_variation", "utility_imbalance",
           "imbalance_table"]

IMBALANCE_MEASURES = ("std", "gini", "cv")


def _values(values) -> np.ndarray:
    u = np.asarray(values, dtype=np.float64).ravel()
    if u.size == 0:
        raise ValueError("values is empty")
    return u


def utility_std(values) -> float:
    """The source's imbalance (Def. 3): the standard deviation ``sqrt(mean((u - mean(u))^2))`` of the sample set's
    utilities (numpy's, ddof = 0: the spread of this set; 0 for one subset)."""
    return float(_values(values).std())


def gini(values) -> float:
    """Gini coefficient ``sum_ij |u_i - u_j| / (2 n^2 mean(u))`` of non-negative values (0 when all are 0)."""
    u = np.sort(_values(values))
    if (u < 0).any():
        raise ValueError("gini needs non-negative values")
    total = u.sum()
    if total == 0:
        return 0.0
    n = u.size
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * u).sum() / (n * total))


def coefficient_of_variation(values) -> float:
    """``std / mean`` (population std) of non-negative values (0 when all are 0)."""
    u = _values(values)
    m = u.mean()
    return 0.0 if m == 0 else float(u.std() / m)


def utility_imbalance(utilities, measure: str = "std") -> float:
    """Utility imbalance of equal-size random subsets: ``"std"`` (the source's, default), or this project's extras
    ``"gini"`` and ``"cv"``."""
    measures = {"std": utility_std, "gini": gini, "cv": coefficient_of_variation}
    if measure not in measures:
        raise ValueError(f"measure={measure!r} is not supported; allowed: {', '.join(map(repr, IMBALANCE_MEASURES))}")
    return measures[measure](utilities)


def imbalance_table(df: pd.DataFrame, by: str | Sequence[str]) -> pd.DataFrame:
    """Per group of ``df`` (rows of equal-size random subsets, a ``utility`` and an ``accuracy`` column): the
    source's ``std`` with the sample set's ``utility_mean``, ``utility_min`` and ``utility_max``; this project's
    extras ``gini`` and ``cv``; ``accuracy_mean`` and ``n`` (subsets)."""
    by = columns("by", by, df)
    columns("df", ["utility", "accuracy"], df)
    rows = []
    for key, g in df.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        u = g["utility"]
        rows.append({**dict(zip(by, key)), "std": utility_std(u), "utility_mean": u.mean(), "utility_min": u.min(),
                     "utility_max": u.max(), "gini": gini(u), "cv": coefficient_of_variation(u),
                     "accuracy_mean": g["accuracy"].mean(), "n": len(g)})
    return pd.DataFrame(rows)
