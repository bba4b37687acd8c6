"""Notebook 05's measurements beyond the measures themselves: the same subsets ablated at every checkpoint
(:func:`ablation_at_checkpoints`), the critical ratio and the comparison of widths (this project's MLP variant),
"why the spread" (:func:`spread_experiment`, :func:`spread_summary`), the notebook's tidy table
(:func:`ablation_table`) and the check of its lists (:func:`check_plan`). The mechanisms live in
``prunekit.measures.utility`` and ``prunekit.measures.imbalance``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ...core.checks import choice, columns, count, distinct, fraction, mapping, sequence, text
from ...core.train import state_restored
from ...measures.imbalance import imbalance_table
from ...measures.surface import has_batchnorm
from ...measures.utility import flat_weights, random_ablation

__all__ = ["ablation_at_checkpoints", "critical_ratio", "width_comparison", "ablation_table", "check_plan",
           "spread_experiment", "spread_summary"]


def middle_range(a, axis=-1):
    """The spread of the middle 95% of ``a``: its 97.5th minus its 2.5th percentile (numpy's linear interpolation)."""
    return np.percentile(a, 97.5, axis=axis) - np.percentile(a, 2.5, axis=axis)


def ablation_at_checkpoints(model: nn.Module, checkpoints: dict[int, dict], x: torch.Tensor, y: torch.Tensor | None,
                            ratios: Iterable[float] = (0.1,), n_subsets: int = 500, seed: int = 0,
                            method: str = "auto") -> pd.DataFrame:
    """Random ablation of the model at each checkpoint (``{epoch: state_dict}``); rows gain an ``epoch`` column.

    The same subsets (same ``seed``) are drawn at every epoch, so the comparison across epochs is paired. The model's
    own weights are restored afterwards.
    """
    ratios = distinct("ratios", sequence("ratios", ratios, item=fraction))
    n_subsets, seed = count("n_subsets", n_subsets), count("seed", seed, low=0)
    choice("method", method, ("auto", "batched", "loop"))
    if not checkpoints:
        raise ValueError("checkpoints is empty: train with TrainConfig(checkpoints=(0, 1, ...))")
    frames = []
    with state_restored(model):
        for epoch in sorted(checkpoints):
            model.load_state_dict(checkpoints[epoch])
            df = random_ablation(model, (x, y), ratios=tuple(ratios), n_subsets=n_subsets, seed=seed, method=method,
                                 warn_at_chance=False)  # the untrained checkpoints are measured on purpose
            df.insert(0, "epoch", int(epoch))
            frames.append(df)
    return pd.concat(frames, ignore_index=True)


def critical_ratio(df: pd.DataFrame, level: float, by: str | Sequence[str] | None = None) -> pd.DataFrame | float:
    """The ablation ratio at which the mean accuracy (over subsets) first falls below ``level``.

    Linear interpolation between the last ratio above and the first below ``level``; NaN if it never falls below
    (and the smallest ratio if it starts below). With ``by``, one row per group (``by`` columns, ``critical_ratio``).
    """
    def one(g: pd.DataFrame) -> float:
        m = g.groupby("ratio")["accuracy"].mean().sort_index()
        r, a = m.index.to_numpy(dtype=float), m.to_numpy(dtype=float)
        below = np.nonzero(a < level)[0]
        if below.size == 0:
            return float("nan")
        i = int(below[0])
        if i == 0:
            return float(r[0])
        return float(r[i - 1] + (a[i - 1] - level) / (a[i - 1] - a[i]) * (r[i] - r[i - 1]))

    fraction("level", level)
    columns("df", ["ratio", "accuracy"], df)
    if by is None:
        return one(df)
    by = columns("by", by, df)
    rows = []
    for key, g in df.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)), "critical_ratio": one(g)})
    return pd.DataFrame(rows)


def width_comparison(models: Mapping[float, nn.Module], x: torch.Tensor, y: torch.Tensor,
                     ratios: Iterable[float], n_subsets: int, imbalance_ratio: float, chance: float,
                     seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Random ablation of the same task's models at several widths (``{width_mult: model}``).

    Returns ``(ablations, summary)``. ablations: the :func:`random_ablation` rows with ``width_mult`` and the model's
    ``dense_accuracy``. summary, one row per width: ``prunable_weights``, ``dense_accuracy``, ``critical_ratio`` (the
    ratio where mean accuracy falls halfway from dense to ``chance``), the utilities' ``std`` (the source's
    imbalance), ``utility_max``, ``gini`` and ``cv`` (this project's scale-free extras) at ``imbalance_ratio``, and
    ``critical_count = critical_ratio * prunable_weights``.
    """
    models = mapping("models", models)
    ratios = distinct("ratios", sequence("ratios", ratios, item=fraction))
    n_subsets, seed = count("n_subsets", n_subsets), count("seed", seed, low=0)
    imbalance_ratio = fraction("imbalance_ratio", imbalance_ratio, low_open=True)
    chance = fraction("chance", chance)
    frames = []
    for w, model in models.items():
        df = random_ablation(model, x, y, ratios=ratios, n_subsets=n_subsets, seed=seed)
        df.insert(0, "width_mult", float(w))
        df["dense_accuracy"] = float(random_ablation(model, x, y, ratios=[0.0], n_subsets=1)["accuracy"].iloc[0])
        frames.append(df)
    ablations = pd.concat(frames, ignore_index=True)
    imbalance = imbalance_table(ablations[np.isclose(ablations.ratio, imbalance_ratio)], "width_mult")
    rows = []
    for w, g in ablations.groupby("width_mult"):
        dense = g["dense_accuracy"].iloc[0]
        rows.append({"width_mult": w, "prunable_weights": flat_weights(models[w]).numel(), "dense_accuracy": dense,
                     "critical_ratio": critical_ratio(g, 0.5 * (dense + chance))})
    summary = pd.DataFrame(rows).merge(imbalance[["width_mult", "std", "utility_max", "gini", "cv"]], on="width_mult")
    summary["critical_count"] = summary["critical_ratio"] * summary["prunable_weights"]
    return ablations, summary


def ablation_table(experiments: dict[str, pd.DataFrame], epochs: int, seed: int, network: str) -> pd.DataFrame:
    """One row per ablated subset of every experiment of notebook 05 (``{name: utility frame}``): experiment, network
    (the frame's own, else ``network``), ratio (a size or pruned-network frame's ``level``), band, subset, accuracy,
    utility, epoch (the final one unless the frame has its own), width_mult, share (of the weights kept at
    initialisation), by ("ratio" or "number"), prune_ratio (Sec. 2.2.2's networks; NaN elsewhere), seed."""
    epochs, seed, network = count("epochs", epochs), count("seed", seed, low=0), text("network", network)
    frames = []
    for name, df in experiments.items():
        def col(column, default, df=df):
            return df[column] if column in df else default

        frames.append(pd.DataFrame({
            "experiment": name, "network": col("network", network), "ratio": col("ratio", col("level", np.nan)),
            "band": col("band", np.nan), "subset": df["subset"], "accuracy": df["accuracy"],
            "utility": df["utility"], "epoch": col("epoch", epochs), "width_mult": col("width_mult", 1.0),
            "share": col("share", 1.0), "by": col("by", "ratio"), "prune_ratio": col("prune_ratio", np.nan),
            "seed": seed}))
    return pd.concat(frames, ignore_index=True)


def check_plan(below_one: Sequence[str] = (), **lists) -> None:
    """Validate notebook 05's lists before any compute: each keyword names a non-empty list of distinct fractions
    in (0, 1] (``size_shares=[1.0, 0.5]``, ``ratios=[0.1, 0.2]``...), in (0, 1) for the names in ``below_one``; a
    ValueError names the first that is not."""
    below_one = sequence("below_one", below_one, nonempty=False, item=text)
    for name, values in lists.items():
        interval = "(0, 1)" if name in below_one else "(0, 1]"
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__") or not list(values):
            raise ValueError(f"{name}={values!r} must be a non-empty list of fractions in {interval}")
        values = [fraction(name, v, low_open=True, high_open=name in below_one) for v in values]
        if len(set(values)) != len(values):
            raise ValueError(f"{name}={values!r} must not repeat a value")



def spread_experiment(models: Mapping[str, nn.Module], x: torch.Tensor, y: torch.Tensor, ratio: float = 0.1,
                      n_subsets: int = 500, seed: int = 0, dataset: str = "") -> pd.DataFrame:
    """What drives the spread of accuracy over equal-size random ablations? Each network of ``models`` (``{name:
    net}``, the same architecture) loses the same ``n_subsets`` random subsets of ``ratio`` of its prunable weights
    (``prunekit.measures.utility.random_ablation``); a network with batch norm is evaluated twice, with the running statistics
    it stored in training (``statistics="stored"``, as the source evaluates) and with statistics recomputed on ``x``
    after each ablation (``"recalibrated"``); one without has ``"none"``. One row per (network, statistics, subset),
    with the network's unablated accuracy (``dense_accuracy``) and ``dataset`` (the data the networks learned)."""
    models = mapping("models", models)
    ratio = fraction("ratio", ratio, low_open=True)
    n_subsets, seed = count("n_subsets", n_subsets), count("seed", seed, low=0)
    text("dataset", dataset, empty=True)
    frames = []
    for name, model in models.items():
        dense = float(random_ablation(model, x, y, ratios=[0.0], n_subsets=1)["accuracy"].iloc[0])
        variants = [("stored", None), ("recalibrated", x)] if has_batchnorm(model) else [("none", None)]
        for statistics, calibration in variants:
            df = random_ablation(model, x, y, ratios=[ratio], n_subsets=n_subsets, seed=seed, recalibrate=calibration)
            frames.append(df.assign(network=name, statistics=statistics, dense_accuracy=dense, dataset=dataset))
    return pd.concat(frames, ignore_index=True)


def spread_summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, network, statistics) of :func:`spread_experiment`: the unablated accuracy, the mean
    accuracy after the ablations and its drop from the unablated one, and the spread the claims decide on: of the
    middle 95% of the subsets' accuracies (97.5th - 2.5th percentile); max - min beside it."""
    keys = [k for k in ("dataset", "network", "statistics") if k in df.columns]
    rows = []
    for key, g in df.groupby(keys, sort=False):
        acc = g["accuracy"].to_numpy(dtype=float)
        dense = float(g["dense_accuracy"].iloc[0]) if "dense_accuracy" in g else np.nan
        rows.append({**dict(zip(keys, key if isinstance(key, tuple) else (key,))), "subsets": len(acc),
                     "dense_accuracy": dense, "mean_accuracy": float(acc.mean()), "mean_drop": dense - acc.mean(),
                     "spread_middle_95": float(middle_range(acc)), "spread_max_min": float(np.ptp(acc))})
    return pd.DataFrame(rows)


