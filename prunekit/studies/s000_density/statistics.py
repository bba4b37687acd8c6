"""Statistics of source 000's width sweep (one row per trained network, :class:`~.point.DensityPoint`).

* :func:`fit_core_scaling` -- ordinary least squares of ``log10 |ω|`` on ``log10 |θ|`` per group, with a t-based
  confidence interval of the slope. Slope 0 = the core does not grow with the width (the paper's null hypothesis);
  slope 1 = the core grows like the model (effective density invariant to width). ``p_zero`` / ``p_one`` are the
  two-sided p-values of slope = 0 and slope = 1.
* :func:`density_trend` -- how much the mean density moves across widths (max/min ratio of the per-width means, the
  fold change of |θ| over the same widths).
* :func:`factor_effect` -- paired effect of a factor (optimizer, init) on density: differences between levels of the
  factor on otherwise identical configs (same dataset, arch, width, seed, ...), with a t confidence interval.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from ...core.checks import distinct, fraction, sequence, text
from ...core.checks import columns as checked_columns
from .presets import GROUP

__all__ = ["split_untrained", "fit_loglog", "fit_core_scaling", "fit_density_vs_width", "density_trend",
           "factor_effect"]

def _ols(x: np.ndarray, y: np.ndarray, confidence: float) -> dict:
    from scipy import stats

    n = len(x)
    out = {"n": n, "slope": np.nan, "intercept": np.nan, "slope_se": np.nan, "ci_low": np.nan, "ci_high": np.nan,
           "r2": np.nan, "p_zero": np.nan, "p_one": np.nan}
    if n < 2 or np.ptp(x) == 0:
        return out
    fit = stats.linregress(x, y)
    out.update(slope=fit.slope, intercept=fit.intercept, r2=fit.rvalue ** 2)
    if n >= 3:
        se = fit.stderr
        t = stats.t.ppf(0.5 + confidence / 2, n - 2)
        out.update(slope_se=se, ci_low=fit.slope - t * se, ci_high=fit.slope + t * se)
        if se > 0:
            out.update(p_zero=2 * stats.t.sf(abs(fit.slope) / se, n - 2),
                       p_one=2 * stats.t.sf(abs(fit.slope - 1) / se, n - 2))
        else:
            out.update(p_zero=0.0 if fit.slope != 0 else 1.0, p_one=0.0 if fit.slope != 1 else 1.0)
    return out


def split_untrained(df: pd.DataFrame, min_dense_accuracy: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(learned, untrained)``: rows whose dense model reached ``min_dense_accuracy`` (test accuracy), and the rest.

    A model that has not learned the task has no meaningful core: near chance, pruning every weight keeps its
    accuracy within the tolerance. Such rows stay in the results table but are left out of the fits and verdicts.
    """
    fraction("min_dense_accuracy", min_dense_accuracy)
    if min_dense_accuracy <= 0 and "dense_accuracy" not in df.columns:
        return df, df.iloc[:0]
    ok = df["dense_accuracy"] >= min_dense_accuracy
    return df[ok], df[~ok]


def fit_loglog(df: pd.DataFrame, x: str, y: str, by: Sequence[str] = GROUP, confidence: float = 0.95) -> pd.DataFrame:
    """Per group: OLS ``log10(y) = intercept + slope * log10(x)`` over its rows (rows with ``x`` or ``y`` <= 0 are left
    out: log undefined). Columns: by..., n, slope, intercept, slope_se, ci_low, ci_high (the ``confidence`` interval of
    the slope, t with n - 2 degrees of freedom), r2, p_zero (H0: slope = 0), p_one (H0: slope = 1)."""
    x, y = checked_columns("x", x, df)[0], checked_columns("y", y, df)[0]
    by = checked_columns("by", by, df, nonempty=False)
    fraction("confidence", confidence, low_open=True, high_open=True)
    rows = []
    for key, g in df.groupby(by, sort=True) if by else [((), df)]:
        g = g[(g[y] > 0) & (g[x] > 0)]
        key = key if isinstance(key, tuple) else (key,)
        res = _ols(np.log10(g[x].to_numpy(float)), np.log10(g[y].to_numpy(float)), confidence)
        rows.append({**dict(zip(by, key)), **res})
    return pd.DataFrame(rows)


def fit_core_scaling(df: pd.DataFrame, by: Sequence[str] = ("dataset", "arch", "optimizer", "init"),
                     confidence: float = 0.95) -> pd.DataFrame:
    """Per group: OLS ``log10(core_params) = intercept + slope * log10(params)`` over every model (widths x seeds).

    Columns: those of :func:`fit_loglog` and params_fold (largest / smallest |θ| of the group). slope 0 = the core
    size does not change with width (the source's null hypothesis); slope 1 = density invariant. Rows with
    core_params <= 0 are left out (log undefined).
    """
    by = checked_columns("by", by, df, nonempty=False)
    checked_columns("df", ["params", "core_params"], df)
    fraction("confidence", confidence, low_open=True, high_open=True)
    rows = []
    for key, g in df.groupby(by, sort=True) if by else [((), df)]:
        key = key if isinstance(key, tuple) else (key,)
        fit = fit_loglog(g, "params", "core_params", (), confidence).iloc[0].to_dict()
        g = g[(g["core_params"] > 0) & (g["params"] > 0)]
        fit["params_fold"] = g["params"].max() / g["params"].min() if len(g) else np.nan
        rows.append({**dict(zip(by, key)), **fit})
    return pd.DataFrame(rows)


def fit_density_vs_width(df: pd.DataFrame, by: Sequence[str] = GROUP, confidence: float = 0.95) -> pd.DataFrame:
    """Per width series: OLS ``log10(density) = intercept + slope * log10(width_mult)`` (:func:`fit_loglog`); density
    moves by ``F**slope`` over an F-fold range of widths (0: width-invariant)."""
    return fit_loglog(df, "width_mult", "density", by, confidence)


def density_trend(df: pd.DataFrame, by: Sequence[str] = ("dataset", "arch", "optimizer", "init")) -> pd.DataFrame:
    """Per group: mean density over seeds at each width, then its range across widths.

    Columns: by..., widths, density_mean (over everything), density_min / density_max (of the per-width means),
    density_fold (max / min), params_fold (|θ| of the widest / narrowest), core_fold (mean |ω| of the widest /
    narrowest width).
    """
    by = checked_columns("by", by, df)
    checked_columns("df", ["width_mult", "density", "params", "core_params"], df)
    rows = []
    for key, g in df.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        w = g.groupby("width_mult").agg(density=("density", "mean"), params=("params", "mean"),
                                       core=("core_params", "mean")).sort_index()
        rows.append({**dict(zip(by, key)), "widths": len(w), "density_mean": g["density"].mean(),
                     "density_min": w["density"].min(), "density_max": w["density"].max(),
                     "density_fold": w["density"].max() / w["density"].min() if w["density"].min() > 0 else np.inf,
                     "params_fold": w["params"].iloc[-1] / w["params"].iloc[0],
                     "core_fold": w["core"].iloc[-1] / w["core"].iloc[0] if w["core"].iloc[0] > 0 else np.inf})
    return pd.DataFrame(rows)


def factor_effect(df: pd.DataFrame, factor: str, reference: str, value: str = "density",
                  pair_on: Sequence[str] = ("dataset", "arch", "width_mult", "optimizer", "init", "seed"),
                  by: Sequence[str] = ("dataset", "arch"), confidence: float = 0.95) -> pd.DataFrame:
    """Paired effect of ``factor`` on ``value``: ``value(level) - value(reference)`` on configs equal in ``pair_on``.

    Returns one row per (by..., level != reference): pairs, mean_level, mean_reference, diff (mean paired
    difference), ci_low / ci_high (t interval), p (two-sided paired t-test; NaN with fewer than 2 pairs).
    """
    from scipy import stats

    factor, value = checked_columns("factor", factor, df)[0], checked_columns("value", value, df)[0]
    if reference not in set(df[factor]):
        raise ValueError(f"reference={reference!r} is not a level of {factor!r}; its levels: "
                         f"{', '.join(map(repr, sorted(set(df[factor]), key=str)))}")
    fraction("confidence", confidence, low_open=True, high_open=True)
    pair_on = [c for c in distinct("pair_on", sequence("pair_on", pair_on, item=text)) if c != factor
               and c in df.columns]
    by = [c for c in distinct("by", sequence("by", by, nonempty=False, item=text)) if c in df.columns]
    columns = [*by, factor, "reference", "pairs", "mean_level", "mean_reference", "diff", "ci_low", "ci_high", "p"]
    if df.empty or factor not in df.columns or value not in df.columns or not pair_on:
        return pd.DataFrame(columns=columns)
    wide = df.pivot_table(index=pair_on, columns=factor, values=value, aggfunc="mean")
    if reference not in wide.columns:
        return pd.DataFrame(columns=columns)
    wide = wide.reset_index()
    rows = []
    for level in [c for c in wide.columns if c not in pair_on and c != reference]:
        groups = wide.groupby(by, sort=True) if by else [((), wide)]
        for key, g in groups:
            key = key if isinstance(key, tuple) else (key,)
            d = (g[level] - g[reference]).dropna()
            row = {**dict(zip(by, key)), factor: level, "reference": reference, "pairs": len(d),
                   "mean_level": g.loc[d.index, level].mean(), "mean_reference": g.loc[d.index, reference].mean(),
                   "diff": d.mean() if len(d) else np.nan, "ci_low": np.nan, "ci_high": np.nan, "p": np.nan}
            if len(d) >= 2:
                se = d.std(ddof=1) / math.sqrt(len(d))
                t = stats.t.ppf(0.5 + confidence / 2, len(d) - 1)
                row.update(ci_low=d.mean() - t * se, ci_high=d.mean() + t * se)
                if se > 1e-12 * max(1.0, abs(d.mean())):
                    row["p"] = stats.ttest_1samp(d, 0.0).pvalue
                else:  # every pair differs by the same amount
                    row["p"] = 0.0 if d.mean() != 0 else 1.0
            if len(d):
                rows.append(row)
    return pd.DataFrame(rows, columns=columns)

