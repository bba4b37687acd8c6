"""Notebook 03's figures: density and Hoyer sparsity against width, the core against the weights (log-log)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...core.checks import choice, number
from .statistics import fit_core_scaling

__all__ = ["plot_density_vs_width", "plot_core_vs_params", "plot_hoyer_vs_width"]

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
    errorbar = _errorbar(errorbar)
    return _width_lines(df.assign(model=_label(df)), "density", "optimizer", "init",
                        "effective density |ω| / |θ|", errorbar)


def _errorbar(errorbar):
    """seaborn's ``errorbar``, checked: None, a method ("ci", "pi", "se", "sd"), a (method, level) pair or a
    function."""
    methods = ("ci", "pi", "se", "sd")
    if errorbar is None or callable(errorbar):
        return errorbar
    if isinstance(errorbar, str):
        return choice("errorbar", errorbar, methods)
    if isinstance(errorbar, (tuple, list)) and len(errorbar) == 2 and errorbar[0] in methods:
        number("errorbar[1]", errorbar[1], low=0.0, low_open=True)
        return tuple(errorbar)
    raise ValueError(f"errorbar={errorbar!r} must be None, one of {methods}, a (method, level) pair such as "
                     "('sd', 1), or a function (seaborn's errorbar)")


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
    errorbar = _errorbar(errorbar)
    d = df.assign(model=_label(df)).melt(
        id_vars=["model", "width_mult", "optimizer", "init", "seed"], value_vars=["hoyer_init", "hoyer_trained"],
        var_name="when", value_name="hoyer")
    d["when"] = d["when"].map({"hoyer_init": "at init", "hoyer_trained": "trained"})
    d["series"] = d["optimizer"] + " / " + d["init"]
    return _width_lines(d, "hoyer", "series", "when", "Hoyer sparsity of weights", errorbar)
