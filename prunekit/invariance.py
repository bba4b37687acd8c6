"""Width invariance of the effective density (source 000, "The Propensity for Density in Feed-forward Models").

Analysis of a sweep table (:func:`prunekit.sweep.run_sweep`, one row per trained model):

* :func:`fit_core_scaling` -- ordinary least squares of ``log10 |ω|`` on ``log10 |θ|`` per group, with a t-based
  confidence interval of the slope. Slope 0 = the core does not grow with the width (the paper's null hypothesis);
  slope 1 = the core grows like the model (effective density invariant to width). ``p_zero`` / ``p_one`` are the
  two-sided p-values of slope = 0 and slope = 1.
* :func:`density_trend` -- how much the mean density moves across widths (max/min ratio of the per-width means, the
  fold change of |θ| over the same widths).
* :func:`factor_effect` -- paired effect of a factor (optimizer, init) on density: differences between levels of the
  factor on otherwise identical configs (same dataset, arch, width, seed, ...), with a t confidence interval.
* :func:`claims` -- the paper's claims checked against a table, as sentences built from the numbers.
* :func:`width_grid` -- the grid of configs of notebook 03; plotting helpers draw its three figures.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from .config import DataConfig, TrainConfig

__all__ = ["GROUP", "OPTIMIZER_SETTINGS", "width_grid", "split_untrained", "fit_core_scaling", "density_trend",
           "factor_effect", "claims", "plot_density_vs_width", "plot_core_vs_params", "plot_hoyer_vs_width",
           "available_datasets"]

GROUP = ["dataset", "arch", "optimizer", "init"]  # one width series = one (dataset, arch, optimizer, init)

# learning rates per optimizer (open in the source; the usual defaults, kept the same for every width)
OPTIMIZER_SETTINGS = {"sgd": {"lr": 0.05, "momentum": 0.9}, "adam": {"lr": 1e-3}, "adagrad": {"lr": 1e-2}}


def available_datasets(names: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """(names whose files are present, {name: reason} for those that cannot be loaded offline)."""
    from .data import DatasetUnavailable, load_dataset

    ok, missing = [], {}
    for name in names:
        try:
            load_dataset(DataConfig(name=name))
            ok.append(name)
        except DatasetUnavailable as err:
            missing[name] = str(err).splitlines()[0]
    return ok, missing


def _per_arch(value, arch):
    return value.get(arch) if isinstance(value, dict) else value


def width_grid(arch_datasets: dict[str, Sequence[str]], widths: Sequence[float], optimizers, inits, seeds, *,
               epochs=5, batch_size=128, subset=None, resize=None,
               optimizer_settings: dict[str, dict] | None = None) -> list[TrainConfig]:
    """Configs of the width sweep: for each arch, its data sets x widths x optimizers x inits x seeds.

    arch_datasets: e.g. ``{"lenet300": ["mnist"], "conv": ["mnist", "cifar10"]}`` (each arch at its default widths,
      scaled by ``width_mult``; an arch with no data set is skipped).
    optimizers, inits, seeds, epochs, batch_size, subset (stratified subset of each training set), resize (image
      side): one value (list) for every arch, or a dict arch -> value (a missing arch gets None = the default: no
      subset, no resize).
    optimizer_settings: per-optimizer overrides of :data:`OPTIMIZER_SETTINGS` (lr, momentum, ...).
    """
    from .sweep import make_grid

    settings = {**OPTIMIZER_SETTINGS, **(optimizer_settings or {})}
    out = []
    for arch, datasets in arch_datasets.items():
        if not datasets:
            continue
        opts = list(_per_arch(optimizers, arch))
        base = TrainConfig(data=DataConfig(subset=_per_arch(subset, arch), resize=_per_arch(resize, arch)),
                           epochs=_per_arch(epochs, arch), batch_size=_per_arch(batch_size, arch)).replace(arch=arch)
        out += make_grid(base, dataset=list(datasets), width_mult=list(widths), optimizer=opts,
                         init=list(_per_arch(inits, arch)), seed=list(_per_arch(seeds, arch)),
                         overrides={"optimizer": {k: v for k, v in settings.items() if k in opts}})
    return out


# --------------------------------------------------------------------------------------------------- statistics
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
    if not 0.0 <= min_dense_accuracy <= 1.0:
        raise ValueError(f"min_dense_accuracy={min_dense_accuracy!r} is out of range; allowed: 0 to 1")
    ok = df["dense_accuracy"] >= min_dense_accuracy
    return df[ok], df[~ok]


def fit_core_scaling(df: pd.DataFrame, by: Sequence[str] = ("dataset", "arch", "optimizer", "init"),
                     confidence: float = 0.95) -> pd.DataFrame:
    """Per group: OLS ``log10(core_params) = intercept + slope * log10(params)`` over every model (widths x seeds).

    Columns: by..., n, slope, intercept, slope_se, ci_low, ci_high (the ``confidence`` interval of the slope, t with
    n - 2 degrees of freedom), r2, p_zero (H0: slope = 0, the core size does not change with width), p_one (H0:
    slope = 1, density invariant), params_fold (largest / smallest |θ| of the group). Rows with core_params <= 0
    are left out (log undefined).
    """
    by = list(by)
    rows = []
    for key, g in df.groupby(by, sort=True) if by else [((), df)]:
        g = g[(g["core_params"] > 0) & (g["params"] > 0)]
        key = key if isinstance(key, tuple) else (key,)
        res = _ols(np.log10(g["params"].to_numpy(float)), np.log10(g["core_params"].to_numpy(float)), confidence)
        res["params_fold"] = g["params"].max() / g["params"].min() if len(g) else np.nan
        rows.append({**dict(zip(by, key)), **res})
    return pd.DataFrame(rows)


def density_trend(df: pd.DataFrame, by: Sequence[str] = ("dataset", "arch", "optimizer", "init")) -> pd.DataFrame:
    """Per group: mean density over seeds at each width, then its range across widths.

    Columns: by..., widths, density_mean (over everything), density_min / density_max (of the per-width means),
    density_fold (max / min), params_fold (|θ| of the widest / narrowest), core_fold (mean |ω| of the widest /
    narrowest width).
    """
    by = list(by)
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

    pair_on = [c for c in pair_on if c != factor]
    by = list(by)
    wide = df.pivot_table(index=pair_on, columns=factor, values=value, aggfunc="mean")
    if reference not in wide.columns:
        return pd.DataFrame()
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
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------------- claims
def claims(df: pd.DataFrame, alpha: float = 0.05, flat_slope: float = 0.2,
           min_dense_accuracy: float = 0.0) -> list[str]:
    """The claims of source 000 checked on ``df``, one sentence each, built from this table's numbers.

    - models below ``min_dense_accuracy`` are left out (see :func:`split_untrained`), and the first sentence says which;
    - null hypothesis (|ω| does not change with width) rejected when the slope's CI excludes 0 (p_zero < alpha);
    - density "flat across widths" when the log-log slope is within ``flat_slope`` of 1 (a 50x wider model then
      changes density by at most 50**0.2 = 2.2x while |ω| grows ~50x);
    - the optimizer and init effects as paired differences of density.
    """
    out = []
    df, untrained = split_untrained(df, min_dense_accuracy)
    if not untrained.empty:
        which = (untrained.groupby(["arch", "width_mult"]).size().reset_index(name="n")
                 .apply(lambda r: f"{r['arch']} {r['width_mult']:g}x ({r['n']})", axis=1))
        out.append(f"Left out as not trained (dense test accuracy below {min_dense_accuracy:.0%}, so no meaningful "
                   f"core): {len(untrained)} of {len(df) + len(untrained)} models: {', '.join(which)}.")
    fits = fit_core_scaling(df)
    fits = fits[fits["n"] >= 3]
    if fits.empty:
        return ["Not enough models per width series (need >= 3) to fit |ω| against |θ|."]
    rejected = fits["p_zero"] < alpha
    out.append(
        f"Null hypothesis (|ω| constant in width): rejected in {int(rejected.sum())} of {len(fits)} width series "
        f"(slope of log|ω| on log|θ| from {fits['slope'].min():.2f} to {fits['slope'].max():.2f}, median "
        f"{fits['slope'].median():.2f}; p < {alpha} when the {int(100 * (1 - alpha))}% CI excludes 0). "
        + ("The paper's rejection is reproduced." if rejected.all() else
           "The paper's rejection is reproduced for most series." if rejected.mean() >= 0.5 else
           "The paper's rejection is NOT reproduced here."))
    flat = (fits["slope"] - 1).abs() <= flat_slope
    one_in_ci = (fits["ci_low"] <= 1) & (fits["ci_high"] >= 1)
    trend = density_trend(df)
    out.append(
        f"Density flat across widths (|slope - 1| <= {flat_slope}): {int(flat.sum())} of {len(fits)} series; slope 1 "
        f"inside the CI for {int(one_in_ci.sum())}. Over a {trend['params_fold'].median():.0f}x range of |θ| "
        f"(median), mean density moved by a factor {trend['density_fold'].median():.2f} (median; from "
        f"{trend['density_fold'].min():.2f} to {trend['density_fold'].max():.2f}) while |ω| grew "
        f"{trend['core_fold'].median():.1f}x. "
        + ("Density is roughly width-invariant, as the paper claims." if flat.mean() >= 0.5 else
           "Density is NOT width-invariant here (the paper claims it is)."))
    for arch, g in df.groupby("arch", sort=True):
        if g["optimizer"].nunique() < 2:
            continue
        means = g.groupby("optimizer")["density"].mean().sort_values()
        out.append(f"{arch}: mean density by optimizer " + ", ".join(f"{k} {v:.3f}" for k, v in means.items())
                   + f" (highest {means.index[-1]}, lowest {means.index[0]}).")
    arch_kind = {"lenet300": "fc", "mlp": "fc", "forai": "fc", "conv": "conv", "resnet": "conv"}
    opt_means = df.assign(kind=df["arch"].map(arch_kind)).groupby(["kind", "optimizer"])["density"].mean()
    if ("conv", "adam") in opt_means.index and opt_means.loc["conv"].size > 1:
        top = opt_means.loc["conv"].idxmax()
        out.append(f"Paper: conv + Adam gives the highest density -> here the highest conv/residual density is with "
                   f"{top} ({opt_means.loc['conv'].max():.3f}; Adam {opt_means.loc[('conv', 'adam')]:.3f}): "
                   + ("holds." if top == "adam" else "does not hold."))
    if ("fc", "sgd") in opt_means.index and opt_means.loc["fc"].size > 1:
        low = opt_means.loc["fc"].idxmin()
        out.append(f"Paper: fully connected + SGD gives the lowest density -> here the lowest FC density is with "
                   f"{low} ({opt_means.loc['fc'].min():.3f}; SGD {opt_means.loc[('fc', 'sgd')]:.3f}): "
                   + ("holds." if low == "sgd" else "does not hold."))
    inits = sorted(df["init"].unique())
    glorot = [i for i in inits if i.startswith("glorot")]
    he = [i for i in inits if i.startswith("he")]
    if glorot and he:
        eff = factor_effect(df, "init", reference=he[0], by=())
        eff = eff[eff["init"] == glorot[0]]
        if not eff.empty and eff["pairs"].iloc[0] > 0:
            e = eff.iloc[0]
            sig = e["p"] < alpha if not np.isnan(e["p"]) else False
            out.append(f"Paper: Glorot gives slightly lower density than He -> paired difference Glorot - He = "
                       f"{e['diff']:+.3f} (95% CI {e['ci_low']:+.3f} to {e['ci_high']:+.3f}, {int(e['pairs'])} pairs, "
                       f"mean density {e['mean_level']:.3f} vs {e['mean_reference']:.3f}): "
                       + ("holds" if e["diff"] < 0 and sig else "same sign, not significant" if e["diff"] < 0
                          else "does not hold") + ".")
    return out


# -------------------------------------------------------------------------------------------------------- plots
def _label(df: pd.DataFrame) -> pd.Series:
    return df["dataset"] + " / " + df["arch"]


def _width_ticks(grid, widths) -> None:
    from matplotlib.ticker import FixedLocator, NullLocator

    ticks = sorted(float(w) for w in set(widths))
    for ax in grid.axes.flat:
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([f"{w:g}" for w in ticks])


def plot_density_vs_width(df: pd.DataFrame, errorbar=("sd", 1)):
    """Effective density vs width multiplier (log x), one panel per dataset/arch, hue optimizer, style init;
    lines are means over seeds and bands +-1 standard deviation. Returns the seaborn FacetGrid."""
    return _width_lines(df.assign(model=_label(df)), "density", "optimizer", "init",
                        "effective density |ω| / |θ|", errorbar)


def _width_lines(d: pd.DataFrame, y: str, hue: str, style: str, ylabel: str, errorbar):
    """Lines of ``y`` against the width multiplier (log x), one panel per model, bands over seeds."""
    import seaborn as sns

    g = sns.relplot(data=d, x="width_mult", y=y, hue=hue, style=style, col="model", kind="line",
                    markers=True, errorbar=errorbar, facet_kws={"sharey": False}, height=3.2, aspect=1.1)
    g.set(xscale="log")
    _width_ticks(g, d["width_mult"])
    g.set_axis_labels("width multiplier (x default)", ylabel)
    g.set_titles("{col_name}")
    return g


def plot_core_vs_params(df: pd.DataFrame, fits: pd.DataFrame | None = None):
    """|ω| vs |θ| on log-log axes per dataset/arch, one colour per optimizer/init series, with the fitted line and
    the slope (95% CI) in the legend; dotted guides: slope 1 (density invariant) and 0 (constant core)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fits = fit_core_scaling(df) if fits is None else fits
    models = sorted(_label(df).unique())
    fig, axes = plt.subplots(1, len(models), figsize=(4.6 * len(models), 4.0), squeeze=False)
    palette = sns.color_palette("tab10")
    for ax, model in zip(axes[0], models):
        dataset, arch = model.split(" / ")
        sub = df[(df["dataset"] == dataset) & (df["arch"] == arch)]
        for i, ((opt, init), g) in enumerate(sub.groupby(["optimizer", "init"], sort=True)):
            f = fits[(fits["dataset"] == dataset) & (fits["arch"] == arch) & (fits["optimizer"] == opt)
                     & (fits["init"] == init)]
            label = f"{opt}/{init}"
            if not f.empty and not np.isnan(f["slope"].iloc[0]):
                r = f.iloc[0]
                label += f": slope {r['slope']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"
                xs = np.array([g["params"].min(), g["params"].max()], float)
                ax.plot(xs, 10 ** (r["intercept"] + r["slope"] * np.log10(xs)), color=palette[i % 10], lw=1.2)
            ax.scatter(g["params"], g["core_params"], s=14, color=palette[i % 10], label=label, alpha=0.8)
        lo, hi = sub["params"].min(), sub["params"].max()
        mid = np.sqrt(lo * hi)
        anchor = sub["core_params"].median()
        xs = np.array([lo, hi], float)
        ax.plot(xs, anchor * xs / mid, ":", color="grey", lw=1, label="slope 1 (density invariant)")
        ax.plot(xs, [anchor, anchor], "--", color="grey", lw=1, label="slope 0 (null: constant core)")
        ax.set(xscale="log", yscale="log", xlabel="|θ| (prunable weights)", ylabel="|ω| (core weights)", title=model)
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def plot_hoyer_vs_width(df: pd.DataFrame, errorbar=("sd", 1)):
    """Hoyer sparsity of the prunable weights vs width, at initialisation and after training (bands over seeds)."""
    d = df.assign(model=_label(df)).melt(
        id_vars=["model", "width_mult", "optimizer", "init", "seed"], value_vars=["hoyer_init", "hoyer_trained"],
        var_name="when", value_name="hoyer")
    d["when"] = d["when"].map({"hoyer_init": "at init", "hoyer_trained": "trained"})
    d["series"] = d["optimizer"] + " / " + d["init"]
    return _width_lines(d, "hoyer", "series", "when", "Hoyer sparsity of weights", errorbar)
