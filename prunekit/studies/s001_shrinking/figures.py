"""Notebook 06's figures, and the source's sentences each group's figures are read against."""

from __future__ import annotations

import pandas as pd

from ...core.checks import choice
from ...measures.saliency import ESTIMATORS
from .setups import GROUPS
from .verdicts import CLAIMS

__all__ = ["group_sentences", "estimator_colors", "plot_curves", "plot_course"]


def group_sentences(group: str) -> list[str]:
    """The source's sentences the claims of ``group`` rest on (distinct, in order), each with where it stands, as
    Markdown quotes: what a figure of that group is to be read against. ``group``: a key of :data:`GROUPS`."""
    choice("group", group, tuple(GROUPS))
    seen = dict.fromkeys((spec.quote.text, spec.quote.location) for g, spec, _ in CLAIMS if g == group)
    return [f"> {text}\n>\n> — {location}" for text, location in seen]


def estimator_colors() -> dict:
    """One colour per estimator of ``ESTIMATORS``, the same in every figure of the notebook."""
    import seaborn as sns  # heavy to import: only where a figure is drawn

    return dict(zip(ESTIMATORS, sns.color_palette(n_colors=len(ESTIMATORS))))


def plot_curves(curves: pd.DataFrame, setups, value: str = "error"):
    """The source's figures for ``setups``: ``value`` ("error", on a log axis, or "accuracy") against the fraction of
    hidden units removed, one line per estimator, one row per setup, Algorithms I and II side by side; with several
    seeds, the mean and a band from the lowest to the highest seed (positive, so it can be drawn on a log axis).
    Returns the figure."""
    import seaborn as sns  # heavy to import: only where a figure is drawn

    choice("value", value, ("error", "accuracy"))
    data = curves[curves.setup.isin(list(setups))].dropna(subset=[value])
    g = sns.relplot(data=data, x="fraction_removed", y=value, hue="estimator", hue_order=list(ESTIMATORS),
                    palette=estimator_colors(),
                    row="setup", row_order=[s for s in setups if s in set(data.setup)], col="algorithm",
                    kind="line", errorbar=("pi", 100), height=2.6, aspect=1.5,
                    facet_kws={"sharey": "row" if value == "error" else True})
    if value == "error":
        g.set(yscale="log")
    g.set_axis_labels("fraction of hidden units removed", "mean training error (per sample)" if value == "error"
                      else "training accuracy")
    g.set_titles("{row_name} — Algorithm {col_name}")
    return g.figure


def plot_course(course: pd.DataFrame):
    """:func:`training_course` as two panels against the training epoch (log axis): the first hidden layer's rank
    agreement with the exact ΔE of the source's diagonal and of the exact second derivative, and the fraction of the
    units each estimate and serial brute force remove; one line style per setup. Returns the figure."""
    import matplotlib.pyplot as plt  # heavy to import: only where a figure is drawn
    import seaborn as sns

    ids = [c for c in ("setup", "optimizer", "epoch", "train_accuracy", "learned") if c in course.columns]
    long = course.melt(id_vars=ids, var_name="measure")
    rank = long[long.measure.str.startswith("spearman_first_layer_")].assign(
        estimator=lambda d: d.measure.str.replace("spearman_first_layer_", "", regex=False))
    removed = long[long.measure.str.startswith("removable_")].assign(
        estimator=lambda d: d.measure.str.replace("removable_", "", regex=False))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    colors = estimator_colors()
    sns.lineplot(data=rank, x="epoch", y="value", hue="estimator", style="setup", marker="o", ax=axes[0],
                 palette=colors)
    axes[0].set(xscale="log", ylim=(-1.05, 1.05), xlabel="training epoch",
                ylabel="Spearman with the exact ΔE, first hidden layer")
    sns.lineplot(data=removed, x="epoch", y="value", hue="estimator", style="setup", marker="o", ax=axes[1],
                 palette=colors)
    axes[1].set(xscale="log", ylim=(-0.02, 1.02), xlabel="training epoch",
                ylabel="fraction of hidden units removable (Algorithm II)")
    fig.tight_layout()
    return fig
