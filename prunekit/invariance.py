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
* :func:`claims_table` -- the paper's claims checked against a table (``prunekit.claims`` format; a claim the table
  cannot decide is "not measured here"); :func:`claims` gives them as sentences.
* :func:`width_grid` -- the grid of configs of notebook 03; plotting helpers draw its three figures.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from . import claims as C
from .checks import fraction
from .config import DataConfig, TrainConfig
from .data import available_datasets  # noqa: F401  (re-exported: notebook 03 calls it here)
from .sweep import make_grid

__all__ = ["GROUP", "WIDTHS", "PROFILES", "OPTIMIZER_SETTINGS", "width_grid", "split_untrained", "fit_core_scaling", "density_trend",
           "factor_effect", "claims", "claims_table", "plot_density_vs_width", "plot_core_vs_params", "plot_hoyer_vs_width",
           "available_datasets"]

GROUP = ["dataset", "arch", "optimizer", "init"]  # one width series = one (dataset, arch, optimizer, init)

WIDTHS = (0.1, 0.25, 0.5, 1, 2, 3, 5)
# notebook 03's grids. quick: digits, LeNet-300-100 only. paper (2 cores, at most 45 min): LeNet on a 6,000-image
# MNIST subset; conv and residual on 4,000 and 3,000 images at 14x14, batch 32 (narrow nets learn nothing at 128 in
# 2 epochs); density on a fixed 1,000-image test subset (the search's ~60-100 evaluations per network are most of the
# time: on 2,000 images the profile took 48 min); at least 2 Dask workers. full (one GPU): the source's
# reading, every architecture x optimizer x init on the whole training sets at full resolution (MNIST and
# Fashion-MNIST; CIFAR-10 too for conv and residual where its files are), trained until the training loss stops
# improving (patience: 3 epochs without a 1% gain; at most 100 epochs), density on the whole test set
PROFILES = {
    "quick": dict(archs={"lenet300": ["digits"]}, widths=[0.1, 0.5, 1, 2, 5], optimizers=["adam", "sgd"],
                  inits=["glorot", "he"], seeds=[0, 1], epochs=4, batch_size=32, subset={}, resize={},
                  eval_subset=None, min_workers=1),
    "paper": dict(archs={"lenet300": ["mnist"], "conv": ["mnist"], "resnet": ["mnist"]}, widths=list(WIDTHS),
                  optimizers={"lenet300": ["sgd", "adam", "adagrad"], "conv": ["sgd", "adam"], "resnet": ["adam"]},
                  inits={"lenet300": ["glorot", "he"], "conv": ["he"], "resnet": ["he"]}, seeds=[0, 1, 2],
                  epochs=2, batch_size={"lenet300": 128, "conv": 32, "resnet": 32},
                  subset={"lenet300": 6000, "conv": 4000, "resnet": 3000}, resize={"conv": 14, "resnet": 14},
                  eval_subset=1000, min_workers=2),
    "full": dict(archs={"lenet300": ["mnist", "fashion_mnist"], "conv": ["mnist", "fashion_mnist"],
                        "resnet": ["mnist", "fashion_mnist"]}, widths=list(WIDTHS),
                 optimizers=["sgd", "adam", "adagrad"], inits=["glorot", "he"], seeds=[0, 1, 2], epochs=100,
                 patience=3, min_improvement=0.01, batch_size=128, subset={}, resize={}, eval_subset=None,
                 min_workers=1),
}

# learning rates per optimizer (open in the source; the usual defaults, kept the same for every width)
OPTIMIZER_SETTINGS = {"sgd": {"lr": 0.05, "momentum": 0.9}, "adam": {"lr": 1e-3}, "adagrad": {"lr": 1e-2}}


def _per_arch(value, arch):
    return value.get(arch) if isinstance(value, dict) else value


def width_grid(arch_datasets: dict[str, Sequence[str]], widths: Sequence[float], optimizers, inits, seeds, *,
               epochs=5, batch_size=128, subset=None, resize=None, patience=0, min_improvement=0.01,
               optimizer_settings: dict[str, dict] | None = None) -> list[TrainConfig]:
    """Configs of the width sweep: for each arch, its data sets x widths x optimizers x inits x seeds.

    arch_datasets: e.g. ``{"lenet300": ["mnist"], "conv": ["mnist", "cifar10"]}`` (each arch at its default widths,
      scaled by ``width_mult``; an arch with no data set is skipped).
    optimizers, inits, seeds, epochs, batch_size, subset (stratified subset of each training set), resize (image
      side): one value (list) for every arch, or a dict arch -> value (a missing arch gets None = the default: no
      subset, no resize). patience, min_improvement: train until the training loss stops improving, ``epochs`` at
      most (``TrainConfig.patience``; 0 trains every epoch).
    optimizer_settings: per-optimizer overrides of :data:`OPTIMIZER_SETTINGS` (lr, momentum, ...).
    """

    settings = {**OPTIMIZER_SETTINGS, **(optimizer_settings or {})}
    out = []
    for arch, datasets in arch_datasets.items():
        if not datasets:
            continue
        opts = list(_per_arch(optimizers, arch))
        base = TrainConfig(data=DataConfig(subset=_per_arch(subset, arch), resize=_per_arch(resize, arch)),
                           epochs=_per_arch(epochs, arch), batch_size=_per_arch(batch_size, arch),
                           patience=patience, min_improvement=min_improvement).replace(arch=arch)
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
    fraction("min_dense_accuracy", min_dense_accuracy)
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

    pair_on = [c for c in pair_on if c != factor and c in df.columns]
    by = [c for c in by if c in df.columns]
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


# ------------------------------------------------------------------------------------------------------- claims
SOURCE = "000 The Propensity for Density in Feed-forward Models"
ARCH_KIND = {"lenet300": "fc", "mlp": "fc", "forai": "fc", "conv": "conv", "resnet": "conv"}


def claims_table(df: pd.DataFrame, alpha: float = 0.05, flat_slope: float = 0.2,
                 min_dense_accuracy: float = 0.0) -> pd.DataFrame:
    """The claims of source 000 checked on ``df`` (one row per model, as ``prunekit.sweep`` writes it): a
    ``prunekit.claims`` table. Rules, with their thresholds as parameters:

    - models below ``min_dense_accuracy`` are left out first (:func:`split_untrained`; noted in ``df.attrs``);
    - null hypothesis (|ω| does not change with width) rejected: the slope of log|ω| on log|θ| has p < ``alpha``
      against 0 in every width series with >= 3 models;
    - density flat across widths: ``|slope - 1| <= flat_slope`` in at least half of the series (a 50x wider model
      then changes density by at most 50**0.2 = 2.2x while |ω| grows ~50x);
    - conv + Adam densest: among conv/residual models with >= 2 optimizers, Adam has the highest mean density;
    - FC + SGD sparsest: among fully connected models with >= 2 optimizers, SGD has the lowest mean density;
    - Glorot slightly sparser than He: the mean paired difference Glorot - He (pairs equal in dataset, arch, width,
      optimizer and seed) is negative and its t-test has p < ``alpha``.
    A claim the table cannot decide is "not measured here", with the reason.
    """
    rows = []
    names = {"null": "Null hypothesis (|ω| constant in width) rejected",
             "flat": "Effective density roughly constant across widths",
             "conv_adam": "Conv + Adam gives the highest density",
             "fc_sgd": "Fully connected + SGD gives the lowest density",
             "init": "Glorot gives slightly lower density than He"}
    reports = {"null": "rejected: |ω| grows with width",
               "flat": "density roughly constant from 0.1x to 5x width",
               "conv_adam": "conv nets trained with Adam are denser",
               "fc_sgd": "fully connected nets trained with SGD are sparser",
               "init": "Glorot slightly sparser than He"}
    rules = {"null": f"slope of log|ω| on log|θ| has p < {alpha} against 0 in every width series (>= 3 models)",
             "flat": f"|slope - 1| <= {flat_slope} in at least half of the width series",
             "conv_adam": "Adam has the highest mean density of the conv/residual models (>= 2 optimizers)",
             "fc_sgd": "SGD has the lowest mean density of the fully connected models (>= 2 optimizers)",
             "init": f"mean paired difference Glorot - He < 0 with p < {alpha} (pairs equal in every other factor)"}

    def nm(key: str, why: str) -> dict:
        return C.not_measured(SOURCE, names[key], reports[key], why, rules[key])

    needed = ["dataset", "arch", "width_mult", "optimizer", "init", "seed", "params", "core_params", "density"]
    missing = C.missing_columns(df, needed + (["dense_accuracy"] if min_dense_accuracy > 0 else []))
    if missing or df.empty:
        why = C.lacking(missing, "table")
        return C.claims_frame(nm(k, why) for k in names)
    notes = []
    df, untrained = split_untrained(df, min_dense_accuracy)
    if not untrained.empty:
        which = (untrained.groupby(["arch", "width_mult"]).size().reset_index(name="n")
                 .apply(lambda r: f"{r['arch']} {r['width_mult']:g}x ({r['n']})", axis=1))
        notes.append(f"Left out as not trained (dense test accuracy below {min_dense_accuracy:.0%}, so no meaningful "
                     f"core): {len(untrained)} of {len(df) + len(untrained)} models: {', '.join(which)}.")
    fits = fit_core_scaling(df) if not df.empty else pd.DataFrame()
    fits = fits[fits["n"] >= 3].dropna(subset=["slope"]) if not fits.empty else fits
    if fits.empty:
        why = "no width series has 3 or more trained models to fit |ω| against |θ|"
        rows += [nm("null", why), nm("flat", why)]
    else:
        rejected = fits["p_zero"] < alpha
        measured = (f"rejected in {int(rejected.sum())} of {len(fits)} width series (slope of log|ω| on log|θ| from "
                    f"{fits['slope'].min():.2f} to {fits['slope'].max():.2f}, median {fits['slope'].median():.2f}): "
                    + ("the paper's rejection is reproduced." if rejected.all() else
                       "the paper's rejection is reproduced for most series, not all." if rejected.mean() >= 0.5
                       else "the paper's rejection is NOT reproduced here."))
        rows.append(C.claim(SOURCE, names["null"], reports["null"], measured, bool(rejected.all()), rules["null"]))
        flat = (fits["slope"] - 1).abs() <= flat_slope
        one_in_ci = (fits["ci_low"] <= 1) & (fits["ci_high"] >= 1)
        trend = density_trend(df)
        measured = (f"flat in {int(flat.sum())} of {len(fits)} series, slope 1 inside the CI for "
                    f"{int(one_in_ci.sum())}; over a {trend['params_fold'].median():.0f}x range of |θ| (median) mean "
                    f"density moved by a factor {trend['density_fold'].median():.2f} (median; "
                    f"{trend['density_fold'].min():.2f} to {trend['density_fold'].max():.2f}) while |ω| grew "
                    f"{trend['core_fold'].median():.1f}x: "
                    + ("density is roughly width-invariant." if flat.mean() >= 0.5 else
                       "density is NOT width-invariant here."))
        rows.append(C.claim(SOURCE, names["flat"], reports["flat"], measured, bool(flat.mean() >= 0.5),
                            rules["flat"]))
    kinds = df.assign(kind=df["arch"].map(ARCH_KIND).fillna("other"))
    for key, kind, optimizer, pick in (("conv_adam", "conv", "adam", "idxmax"), ("fc_sgd", "fc", "sgd", "idxmin")):
        g = kinds[kinds["kind"] == kind]
        means = g.groupby("optimizer")["density"].mean().dropna()
        label = "conv/residual" if kind == "conv" else "fully connected"
        if g.empty:
            rows.append(nm(key, f"no {label} models in the table"))
        elif len(means) < 2 or optimizer not in means.index:
            rows.append(nm(key, f"the {label} models have densities for "
                                f"{C.listing(means.index, none='no optimizer')} only; need {optimizer} and at least "
                                "one other"))
        else:
            top = getattr(means, pick)()
            short = "conv/residual" if kind == "conv" else "FC"
            measured = (f"mean density of the {label} models by optimizer: "
                        + ", ".join(f"{k} {v:.3f}" for k, v in means.sort_values().items())
                        + f"; the {'highest' if pick == 'idxmax' else 'lowest'} {short} density is with {top}.")
            rows.append(C.claim(SOURCE, names[key], reports[key], measured, top == optimizer, rules[key]))
    inits = sorted(df["init"].dropna().unique())
    glorot, he = [i for i in inits if i.startswith("glorot")], [i for i in inits if i.startswith("he")]
    if not (glorot and he):
        rows.append(nm("init", f"the table has {C.plural(len(inits), 'init')} ({C.listing(inits)}); "
                               "need both Glorot and He"))
    else:
        eff = factor_effect(df, "init", reference=he[0], by=())
        eff = eff[eff["init"] == glorot[0]] if not eff.empty else eff
        if eff.empty or eff["pairs"].iloc[0] == 0:
            rows.append(nm("init", "no Glorot and He models are paired (equal dataset, arch, width, optimizer, seed)"))
        else:
            e = eff.iloc[0]
            sig = bool(e["p"] < alpha) if not np.isnan(e["p"]) else False
            measured = (f"paired difference Glorot - He = {e['diff']:+.3f} (95% CI {e['ci_low']:+.3f} to "
                        f"{e['ci_high']:+.3f}, {int(e['pairs'])} pairs; mean density {e['mean_level']:.3f} vs "
                        f"{e['mean_reference']:.3f}" + ("" if e["pairs"] >= 2 else "; one pair, no test") + ").")
            rows.append(C.claim(SOURCE, names["init"], reports["init"], measured, bool(e["diff"] < 0 and sig),
                                rules["init"]))
    table = C.claims_frame(rows)
    table.attrs["notes"] = notes
    return table


def claims(df: pd.DataFrame, alpha: float = 0.05, flat_slope: float = 0.2,
           min_dense_accuracy: float = 0.0) -> list[str]:
    """:func:`claims_table` as whole sentences (notes on left-out models first); never raises on a table that lacks
    a factor: such claims read "Not measured here: <why>"."""
    table = claims_table(df, alpha, flat_slope, min_dense_accuracy)
    return list(table.attrs.get("notes", [])) + C.sentences(table)


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
