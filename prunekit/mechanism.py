"""Source 002, "An Empirical Study of a Pruning Mechanism" (ICLR 2021 submission, OpenReview doeyA2PBjdy): the study.

Presets shared by notebooks 04 (the loss-surface plane) and 05 (weight utility), so that both use the same cached
pretrained model by construction (:func:`pretrain_config`); the tidy table of notebook 05 (:func:`ablation_table`);
and the source's claims on weight utility as ``prunekit.claims`` tables: :func:`utility_claims` and
:func:`size_claims` (notebook 05). Notebook 04's basin questions are in ``prunekit.basins``; the mechanisms live in
``prunekit.utility``, ``prunekit.imbalance``, ``prunekit.retrain``, ``prunekit.cycles`` and ``prunekit.surface``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import claims as C
from .checks import fraction
from .config import DataConfig, ModelConfig, TrainConfig
from .imbalance import imbalance_table, utility_std
from .reporting import check_profile
from .surface import has_batchnorm
from .train import state_restored
from .utility import flat_weights, random_ablation

__all__ = ["SOURCE", "PROFILES", "pretrain_config", "size_config", "ablation_at_checkpoints", "critical_ratio",
           "width_comparison", "size_comparison", "size_claims", "ablation_table", "utility_claims",
           "without_batch_norm", "spread_experiment", "spread_claims"]

SOURCE = "002 An Empirical Study of a Pruning Mechanism"

# this project's variant of the source's setups (the source trains a CNN and ResNet20 on CIFAR-10): the pretrained
# network of both notebooks, with the checkpoints the imbalance-during-training curve and weight rewinding need
# retrain_epochs: t of notebook 04 (<= T - rewind epoch 1); eval_subset: training samples the ablations and the train
# split of the plane are measured on (None: all); width_subsets: random subsets per ratio in notebook 05's widths;
# spread_subsets: random subsets per network and statistics in notebook 05's "why the spread"
PROFILES = {
    "quick": dict(dataset="digits", arch="mlp", epochs=20, checkpoints=(0, 1, 2, 4, 8, 12, 16, 20),
                  retrain_epochs=10, eval_subset=None, width_subsets=50, spread_subsets=100),
    "paper": dict(dataset="mnist", arch="lenet300", epochs=10, checkpoints=(0, 1, 2, 3, 5, 7, 10),
                  retrain_epochs=9, eval_subset=10_000, width_subsets=100, spread_subsets=500),
}


def pretrain_config(profile: str, seed: int = 0, width_mult: float = 1.0) -> TrainConfig:
    """The pretrained network of notebooks 04 and 05 for ``profile`` (Adam, lr 1e-3, the profile's epochs)."""
    p = PROFILES[check_profile(profile)]
    return TrainConfig(data=DataConfig(name=p["dataset"]), model=ModelConfig(arch=p["arch"], width_mult=width_mult),
                       optimizer="adam", lr=1e-3, epochs=p["epochs"], seed=seed, checkpoints=p["checkpoints"])


def size_config(profile: str, seed: int = 0, share: float = 1.0) -> TrainConfig:
    """The networks of notebook 05's size comparison: :func:`pretrain_config`'s network with He initialisation, pruned
    at initialisation to ``share`` of its weights (``ModelConfig.init_density``; 1.0 is the 1x network)."""
    return pretrain_config(profile, seed).replace(init="he", init_density=share)


def ablation_at_checkpoints(model: nn.Module, checkpoints: dict[int, dict], x: torch.Tensor, y: torch.Tensor | None,
                            ratios: Iterable[float] = (0.1,), n_subsets: int = 500, seed: int = 0,
                            method: str = "auto") -> pd.DataFrame:
    """Random ablation of the model at each checkpoint (``{epoch: state_dict}``); rows gain an ``epoch`` column.

    The same subsets (same ``seed``) are drawn at every epoch, so the comparison across epochs is paired. The model's
    own weights are restored afterwards.
    """
    if not checkpoints:
        raise ValueError("checkpoints is empty: train with TrainConfig(checkpoints=(0, 1, ...))")
    frames = []
    with state_restored(model):
        for epoch in sorted(checkpoints):
            model.load_state_dict(checkpoints[epoch])
            df = random_ablation(model, x, y, tuple(ratios), n_subsets, seed, method=method)
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

    if by is None:
        return one(df)
    by = [by] if isinstance(by, str) else list(by)
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


def size_comparison(models: Mapping[float, nn.Module], x: torch.Tensor, y: torch.Tensor, ratios: Iterable[float],
                    n_subsets: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Source 002's comparison of network sizes (Sec. 2.2.1) for ``{share: model}``: one architecture pruned at
    initialisation to ``share`` of its weights (``ModelConfig(init_density=share)``; 1.0 = the 1x network) and trained.

    Each network is ablated by random subsets of its own weights (its non-zero prunable weights, ``P_s`` of them: every
    Linear/Conv weight but the layer into the logits, which is not pruned at initialisation either),
    two ways: ``by="ratio"`` ablates ``round(r * P_s)`` weights; ``by="number"`` ablates ``round(r * P_ref)``, with
    ``P_ref`` the weights of the network with the largest share (the source counts in units of the 1x network),
    wherever that is at most ``P_s``. ``level`` is ``r`` in both.
    Returns ``(ablations, summary)``: one row per subset (``share, by, level, own_weights, n_ablated, accuracy,
    utility``), and one row per (share, by, level): ``accuracy_mean/min/max``, ``utility_mean``, ``std`` (the source's
    imbalance), ``utility_max``, ``n``.
    """
    ratios = [fraction("ratios", r, low_open=True) for r in ratios]
    if not ratios or len(set(ratios)) != len(ratios):
        raise ValueError(f"ratios={ratios!r} must be distinct fractions in (0, 1], at least one")
    if len(models) < 1:
        raise ValueError("models must map at least one share to a model")
    own = {float(s): torch.nonzero(flat_weights(m)).flatten() for s, m in models.items()}
    reference = own[max(own)].numel()
    frames = []
    for share, model in models.items():
        pool = own[float(share)]
        for by, counts in (("ratio", [round(r * pool.numel()) for r in ratios]),
                           ("number", [round(r * reference) for r in ratios])):
            levels = [(r, c) for r, c in zip(ratios, counts) if c <= pool.numel()]
            if not levels:
                continue
            df = random_ablation(model, x, y, n_subsets=n_subsets, seed=seed, within=pool,
                                 counts=[c for _, c in levels])
            frames.append(df.assign(level=np.repeat([r for r, _ in levels], n_subsets), share=float(share), by=by,
                                    own_weights=pool.numel()))
    ablations = pd.concat(frames, ignore_index=True)[["share", "by", "level", "own_weights", "subset", "n_ablated",
                                                      "accuracy", "utility"]]
    summary = (ablations.groupby(["share", "by", "level"], sort=True)
               .agg(accuracy_mean=("accuracy", "mean"), accuracy_min=("accuracy", "min"),
                    accuracy_max=("accuracy", "max"), utility_mean=("utility", "mean"),
                    std=("utility", utility_std), utility_max=("utility", "max"),
                    n=("utility", "size"))
               .reset_index())
    return ablations, summary


def size_claims(summary: pd.DataFrame | None, *, similar_within: float = 0.05, number_factor: float = 2.0,
                max_level: float = 0.1) -> pd.DataFrame:
    """Source 002's two claims about network size (``prunekit.claims`` format), from :func:`size_comparison`'s summary.

    - networks use their weights in proportion to their size: for every smaller network, its mean accuracy differs
      from the largest one's by at most ``similar_within`` on average over the levels of its by-ratio curve, and by at
      least ``number_factor`` times that on average over the levels of its by-number curve (a level above its own
      number of weights has no by-number point);
    - smaller networks have subsets of higher maximum utility: by ratio at the level nearest ``max_level``, the
      maximum utility of the sample set is higher the smaller the network (strictly, from share to share).
    A summary that cannot decide a claim (fewer than two sizes, a missing column, no shared level, a NaN, more than
    one row per share, mode and level) gives "not measured here", with the reason.
    """
    names = ("Networks use their weights in proportion to their size (pruned at initialisation)",
             "Smaller networks have subsets of higher maximum utility")
    reports = ("similar ablation curves by ratio of each network's weights, different by absolute number",
               "the maximum utility in the sample set is higher in smaller networks")
    rules = (f"for each smaller network: mean |accuracy - largest's| <= {similar_within:.0%} over its by-ratio levels, "
             f"and >= {number_factor:g}x that over its by-number levels",
             f"utility_max by ratio at the level nearest {max_level:g} falls as the share grows")
    cols = ["share", "by", "level", "accuracy_mean", "utility_max"]
    why = None
    if summary is None or C.missing_columns(summary, cols):
        why = C.lacking(C.missing_columns(summary, cols) if summary is not None else cols, "size summary")
    elif summary["share"].nunique() < 2:
        why = "fewer than two network sizes"
    elif summary.duplicated(["share", "by", "level"]).any():
        why = "more than one row per share, mode and level (average seeds first)"
    if why is not None:
        return C.claims_frame([C.not_measured(SOURCE, n, r, why, rule) for n, r, rule in zip(names, reports, rules)])
    rows = []
    largest = summary["share"].max()
    acc = summary.pivot_table(index="level", columns=["by", "share"], values="accuracy_mean", dropna=False)
    gaps = {}
    for share in sorted(set(summary["share"]) - {largest}):
        gap = []
        for by in ("ratio", "number"):  # the largest network's curve is the same by ratio and by number
            if (by, share) not in acc.columns or ("ratio", largest) not in acc.columns:
                break
            t = acc[[(by, share), ("ratio", largest)]].dropna()
            if t.empty:
                break
            gap.append(float((t[(by, share)] - t[("ratio", largest)]).abs().mean()))
        if len(gap) == 2:
            gaps[share] = tuple(gap)
    if len(gaps) < summary["share"].nunique() - 1:
        rows.append(C.not_measured(SOURCE, names[0], reports[0], "a smaller network has no level in common with the "
                                   "largest by ratio or by number", rules[0]))
    else:
        holds = all(r <= similar_within and n >= number_factor * r for r, n in gaps.values())
        measured = ("mean gap to the largest network's accuracy, by ratio / by number: "
                    + ", ".join(f"{100 * r:.1f} / {100 * n:.1f} points at share {s:g}" for s, (r, n) in gaps.items())
                    + ".")
        rows.append(C.claim(SOURCE, names[0], reports[0], measured, holds, rules[0]))
    by_ratio = summary[summary["by"] == "ratio"]
    if by_ratio.empty:
        rows.append(C.not_measured(SOURCE, names[1], reports[1], "no ablation by ratio", rules[1]))
        return C.claims_frame(rows)
    level = by_ratio["level"].iloc[int((by_ratio["level"] - max_level).abs().to_numpy().argmin())]
    at = by_ratio[np.isclose(by_ratio["level"], level)].set_index("share")["utility_max"].sort_index()
    if len(at) < 2 or at.isna().any():
        rows.append(C.not_measured(SOURCE, names[1], reports[1], f"fewer than two sizes with a maximum utility at "
                                   f"level {level:g}", rules[1]))
    else:
        falls = bool((np.diff(at.to_numpy()) < 0).all())
        measured = (f"maximum utility at ratio {level:g}: " + ", ".join(f"{u:.4f} at share {s:g}"
                                                                       for s, u in at.items()) + ".")
        rows.append(C.claim(SOURCE, names[1], reports[1], measured, falls, rules[1]))
    return C.claims_frame(rows)


def ablation_table(experiments: dict[str, pd.DataFrame], epochs: int, seed: int) -> pd.DataFrame:
    """One row per ablated subset of every experiment of notebook 05 (``{name: utility frame}``): experiment, ratio
    (a :func:`size_comparison` frame's ``level``), band, subset, accuracy, utility, epoch (the final one unless the
    frame has its own), width_mult, share (of the weights kept at initialisation), by ("ratio" or "number"), seed."""
    frames = []
    for name, df in experiments.items():
        frames.append(pd.DataFrame({
            "experiment": name, "ratio": df["ratio"] if "ratio" in df else df["level"],
            "band": df["band"] if "band" in df else np.nan,
            "subset": df["subset"], "accuracy": df["accuracy"], "utility": df["utility"],
            "epoch": df["epoch"] if "epoch" in df else epochs,
            "width_mult": df["width_mult"] if "width_mult" in df else 1.0,
            "share": df["share"] if "share" in df else 1.0, "by": df["by"] if "by" in df else "ratio", "seed": seed}))
    return pd.concat(frames, ignore_index=True)


def utility_claims(random_summary: pd.DataFrame | None = None, magnitude_summary: pd.DataFrame | None = None,
                   dense_accuracy: float | None = None, imbalance_by_epoch: pd.DataFrame | None = None,
                   critical: pd.DataFrame | None = None, *, spread_ratio: float = 0.1, min_spread: float = 0.10,
                   lower_band_max_drop: float = 0.01, top_band_factor: float = 5.0,
                   proportional_within: float = 1.25, imbalance: str = "std") -> pd.DataFrame:
    """The weight-utility claims of source 002 (``prunekit.claims`` format), from notebook 05's tables.

    - equal-size random subsets differ widely (the source: ~60 points of training accuracy at ratio 0.1): at the
      ratio of ``random_summary`` nearest ``spread_ratio``, accuracy max - min >= ``min_spread`` (a fraction);
    - accuracy drops only when large-magnitude weights go: ablating the largest ``magnitude_summary`` ratio of each
      band, the top band costs the most, every band of the lower half at most ``lower_band_max_drop``, and the top
      band more than ``top_band_factor`` times the worst lower band (at least 0.002);
    - utility imbalance grows during training: the last epoch's ``imbalance`` column (``"std"``, the source's
      measure, by default; ``"gini"`` or ``"cv"`` for this project's extras) exceeds the first's and its Spearman
      correlation with the epoch is positive;
    - networks use weights in proportion to their size: the critical ablation ratios of the widths in ``critical``
      are all reached and the largest is at most ``proportional_within`` times the smallest.
    A missing table (None) or one that cannot decide its claim gives "not measured here", with the reason.
    """
    from scipy.stats import spearmanr  # scipy.stats is slow to import: only here

    names = ("Equal-size random subsets differ widely in how much they matter",
             "Accuracy drops only when large-magnitude weights are ablated",
             "Utility imbalance grows during training",
             "Networks use their weights in proportion to their size")
    reports = ("about 60 points of training accuracy between 500 random subsets at ablation ratio 0.1",
               "ablating small weights costs nothing, large ones cost accuracy",
               "the standard deviation of the utilities of 500 random subsets (and their mean and minimum) rises "
               "during training",
               "similar ablation curves by ratio across network sizes")
    rules = (f"accuracy max - min >= {min_spread:.0%} at the ratio nearest {spread_ratio:g}",
             f"top band costs most, lower-half bands <= {lower_band_max_drop:.0%} each, top band > "
             f"{top_band_factor:g}x the worst lower band",
             f"{imbalance} at the last epoch > at the first, Spearman rho with epoch > 0",
             f"critical ratios reached at every width, largest / smallest <= {proportional_within:g}")
    rows = []

    def nm(i: int, why: str) -> dict:
        return C.not_measured(SOURCE, names[i], reports[i], why, rules[i])

    if random_summary is None or C.missing_columns(random_summary, ["ratio", "accuracy_min", "accuracy_max"]) \
            or random_summary.empty:
        rows.append(nm(0, "no random-ablation summary with ratio, accuracy_min and accuracy_max"))
    else:
        at = random_summary.set_index("ratio")
        r0 = min(at.index, key=lambda r: abs(r - spread_ratio))
        spread = float(at.loc[r0, "accuracy_max"] - at.loc[r0, "accuracy_min"])
        measured = (f"at ratio {r0:g} training accuracy over the random subsets ranges from "
                    f"{at.loc[r0, 'accuracy_min']:.1%} to {at.loc[r0, 'accuracy_max']:.1%}, a spread of "
                    f"{100 * spread:.1f} points.")
        rows.append(C.claim(SOURCE, names[0], reports[0], measured, spread >= min_spread, rules[0]))

    cols = ["ratio", "band", "accuracy_mean"]
    if magnitude_summary is None or dense_accuracy is None or C.missing_columns(magnitude_summary, cols) \
            or magnitude_summary["band"].nunique() < 2:
        rows.append(nm(1, "no magnitude-band summary with at least two bands and the unablated accuracy"))
    else:
        whole = magnitude_summary[magnitude_summary.ratio == magnitude_summary.ratio.max()].set_index("band")
        drop = (dense_accuracy - whole["accuracy_mean"]).sort_index()
        lower, top = drop.iloc[: len(drop) // 2], float(drop.iloc[-1])
        holds = bool(top == drop.max() and lower.max() <= lower_band_max_drop
                     and top > top_band_factor * max(float(lower.max()), 0.002))
        measured = (f"ablating {magnitude_summary.ratio.max():.0%} of each band, the band of largest weights costs "
                    f"{100 * top:.1f} points; the lower half of the bands at most {100 * lower.max():.1f} points each "
                    "(band by band: " + ", ".join(f"{100 * d:.1f}" for d in drop) + ").")
        rows.append(C.claim(SOURCE, names[1], reports[1], measured, holds, rules[1]))

    if imbalance_by_epoch is None or C.missing_columns(imbalance_by_epoch, ["epoch", imbalance]) \
            or imbalance_by_epoch["epoch"].nunique() < 2:
        rows.append(nm(2, f"no {imbalance} at two or more epochs"))
    else:
        t = imbalance_by_epoch.sort_values("epoch")
        first, last = float(t[imbalance].iloc[0]), float(t[imbalance].iloc[-1])
        rho = float(spearmanr(t["epoch"], t[imbalance]).correlation) if t[imbalance].nunique() > 1 else 0.0
        low = int(t[imbalance].to_numpy().argmin())
        measured = (f"{imbalance} {first:.3g} at epoch {int(t.epoch.iloc[0])} and {last:.3g} at epoch "
                    f"{int(t.epoch.iloc[-1])} (lowest {t[imbalance].iloc[low]:.3g} at epoch {int(t.epoch.iloc[low])}; "
                    f"Spearman rho with epoch {rho:+.2f}).")
        rows.append(C.claim(SOURCE, names[2], reports[2], measured, last > first and rho > 0, rules[2]))

    if critical is None or C.missing_columns(critical, ["width_mult", "critical_ratio"]) or len(critical) < 2:
        rows.append(nm(3, "fewer than two widths with a critical ratio"))
    elif critical["critical_ratio"].isna().any():
        rows.append(nm(3, "at some width accuracy never fell to the critical level within the ratios tried "
                          "(extend the ratios)"))
    else:
        cr = critical.set_index("width_mult")["critical_ratio"].sort_index()
        fold = float(cr.max() / cr.min())
        measured = ("critical ablation ratio " + ", ".join(f"{v:.3f} at x{w:g}" for w, v in cr.items())
                    + f"; largest / smallest {fold:.2f}"
                    + (", wider nets tolerate a larger fraction." if cr.iloc[-1] > cr.iloc[0] else "."))
        rows.append(C.claim(SOURCE, names[3], reports[3], measured, fold <= proportional_within, rules[3]))
    return C.claims_frame(rows)


def without_batch_norm(cfg: TrainConfig) -> TrainConfig:
    """``cfg``'s network without its batch-norm layers, trained with Adam (lr 1e-3, no schedule, no weight decay):
    SGD at lr 0.1 does not train a 20-layer ResNet without batch norm. This project's recipe; the source has none."""
    return cfg.replace(batch_norm=False, optimizer="adam", lr=1e-3, momentum=0.0, weight_decay=0.0, schedule="none")


def spread_experiment(models: Mapping[str, nn.Module], x: torch.Tensor, y: torch.Tensor, ratio: float = 0.1,
                      n_subsets: int = 500, seed: int = 0) -> pd.DataFrame:
    """What drives the spread of accuracy over equal-size random ablations? Each network of ``models`` (``{name:
    net}``, the same architecture) loses the same ``n_subsets`` random subsets of ``ratio`` of its prunable weights
    (``prunekit.utility.random_ablation``); a network with batch norm is evaluated twice, with the running statistics
    it stored in training (``statistics="stored"``, as the source evaluates) and with statistics recomputed on ``x``
    after each ablation (``"recalibrated"``); one without has ``"none"``. One row per (network, statistics, subset)."""
    frames = []
    for name, model in models.items():
        variants = [("stored", None), ("recalibrated", x)] if has_batchnorm(model) else [("none", None)]
        for statistics, calibration in variants:
            df = random_ablation(model, x, y, ratios=[ratio], n_subsets=n_subsets, seed=seed, recalibrate=calibration)
            frames.append(df.assign(network=name, statistics=statistics))
    return pd.concat(frames, ignore_index=True)


def spread_claims(df: pd.DataFrame | None, *, stale_share: float = 0.5) -> pd.DataFrame:
    """This project's answer to "what drives the spread?" (``prunekit.claims`` format) from
    :func:`spread_experiment` rows: the spread is accuracy max - min over the subsets of one (network, statistics).

    - stale batch-norm statistics drive it: recalibrating removes at least ``stale_share`` of the stored-statistics
      spread (for every batch-norm network);
    - the weights alone spread it too: the network without batch norm spreads at least ``1 - stale_share`` of the
      batch-norm network's stored-statistics spread.
    """
    names = ("Stale batch-norm statistics drive the spread of random ablations",
             "Without batch norm, random ablations of equal size still differ widely")
    reports = ("about 60 points of training accuracy between 500 random subsets at ratio 0.1 (ResNet20 with batch "
               "norm, stored statistics); what drives it is not examined", "no network without batch norm")
    rules = (f"spread with recalibrated statistics <= {1 - stale_share:.0%} of the spread with stored ones",
             f"spread without batch norm >= {1 - stale_share:.0%} of the stored-statistics spread with batch norm")
    cols = ["network", "statistics", "accuracy"]
    spread = {}
    if df is not None and not C.missing_columns(df, cols):
        g = df.groupby(["network", "statistics"])["accuracy"]
        spread = (g.max() - g.min()).to_dict()
    stored = {n: v for (n, s), v in spread.items() if s == "stored"}
    rows = []
    pairs = [(n, v, spread[(n, "recalibrated")]) for n, v in stored.items() if (n, "recalibrated") in spread]
    if not pairs:
        rows.append(C.not_measured(SOURCE, names[0], reports[0], "no batch-norm network with both stored and "
                                   "recalibrated statistics", rules[0]))
    else:
        measured = "; ".join(f"{n}: {100 * s:.1f} points with stored statistics, {100 * r:.1f} recalibrated"
                             for n, s, r in pairs) + "."
        rows.append(C.claim(SOURCE, names[0], reports[0], measured,
                            all(r <= (1 - stale_share) * s for _, s, r in pairs), rules[0]))
    plain = {n: v for (n, s), v in spread.items() if s == "none"}
    if not plain or not stored:
        rows.append(C.not_measured(SOURCE, names[1], reports[1], "needs a network without batch norm and one with "
                                   "stored statistics", rules[1]))
    else:
        reference = max(stored.values())
        measured = (", ".join(f"{n}: {100 * v:.1f} points" for n, v in plain.items()) +
                    f" against {100 * reference:.1f} with batch norm and stored statistics.")
        rows.append(C.claim(SOURCE, names[1], reports[1], measured,
                            all(v >= (1 - stale_share) * reference for v in plain.values()), rules[1]))
    return C.claims_frame(rows)
