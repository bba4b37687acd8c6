"""Utility imbalance: how unevenly a network's utility (``prunekit.utility``) is spread over equal-size random subsets.

The measure (our choice for this project's variant of source 002): the **Gini coefficient** of the utilities of
equal-size random subsets, ``G = sum_ij |u_i - u_j| / (2 n^2 mean(u))`` in [0, 1) (0 = every subset equally useful).
Scale-free, so it compares networks whose utilities differ in size. The coefficient of variation ``std / mean`` is
given as a second measure. If weights are used evenly, every random subset of a given size removes about the same
information and the spread is small; if a few weights carry the function, subsets that hit them have much larger
utility than those that miss them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["IMBALANCE_MEASURES", "gini", "coefficient_of_variation", "utility_imbalance", "imbalance_table"]

IMBALANCE_MEASURES = ("gini", "cv")


def gini(values) -> float:
    """Gini coefficient ``sum_ij |u_i - u_j| / (2 n^2 mean(u))`` of non-negative values (0 when all are 0)."""
    u = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if u.size == 0:
        raise ValueError("values is empty")
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
    u = np.asarray(values, dtype=np.float64).ravel()
    if u.size == 0:
        raise ValueError("values is empty")
    m = u.mean()
    return 0.0 if m == 0 else float(u.std() / m)


def utility_imbalance(utilities, measure: str = "gini") -> float:
    """Utility imbalance of equal-size random subsets: ``"gini"`` (default) or ``"cv"`` of their utilities."""
    if measure == "gini":
        return gini(utilities)
    if measure == "cv":
        return coefficient_of_variation(utilities)
    raise ValueError(f"measure={measure!r} is not supported; allowed: {', '.join(map(repr, IMBALANCE_MEASURES))}")


def imbalance_table(df: pd.DataFrame, by: str | Sequence[str]) -> pd.DataFrame:
    """Per group of ``df`` (rows of equal-size random subsets): ``gini, cv, utility_mean, accuracy_mean, n``."""
    by = [by] if isinstance(by, str) else list(by)
    rows = []
    for key, g in df.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)), "gini": gini(g["utility"]), "cv": coefficient_of_variation(g["utility"]),
                     "utility_mean": g["utility"].mean(), "accuracy_mean": g["accuracy"].mean(), "n": len(g)})
    return pd.DataFrame(rows)


