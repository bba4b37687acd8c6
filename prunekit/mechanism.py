"""Source 002, "An Empirical Study of a Pruning Mechanism" (ICLR 2021 submission, OpenReview doeyA2PBjdy): the study.

Presets shared by notebooks 04 (the loss-surface plane) and 05 (weight utility), so that both use the same cached
pretrained model by construction (:func:`pretrain_config`: the source's ResNet20, or this project's MLP variant), the
stand-in for the source's "vanilla CNN" (:func:`vanilla_cnn_config`), the tidy table of notebook 05
(:func:`ablation_table`), and the source's claims on weight utility as ``prunekit.claims`` tables
(:func:`utility_claims`, :func:`spread_claims`). Network sizes (Sec. 2.2) are in ``prunekit.sizes``, notebook 04's
basin questions in ``prunekit.basins``; the mechanisms live in ``prunekit.utility``, ``prunekit.imbalance``,
``prunekit.retrain``, ``prunekit.cycles`` and ``prunekit.surface``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import claims as C
from .checks import choice, fraction
from .config import DataConfig, ModelConfig, TrainConfig
from .data import files_present
from .imbalance import imbalance_table, utility_std
from .reporting import check_profile
from .surface import has_batchnorm
from .train import state_restored
from .utility import flat_weights, random_ablation

__all__ = ["SOURCE", "NETWORKS", "SOURCE_NETWORK", "MLP_VARIANT", "STUDY", "PROFILES", "default_dataset",
           "pretrain_config", "vanilla_cnn_config", "eval_subset", "ablation_at_checkpoints", "critical_ratio",
           "width_comparison", "ablation_table", "check_plan", "utility_claims", "without_batch_norm",
           "spread_experiment", "spread_claims"]

SOURCE = "002 An Empirical Study of a Pruning Mechanism"
NETWORKS = ("resnet20", "mlp")  # the source's network, this project's MLP variant

# The source's network (its Sec. 2.2.1 and 3; the "same conclusions" run of Sec. 2.1.2): He et al.'s CIFAR ResNet20
# with batch norm and He initialisation, SGD with momentum 0.9 and weight decay 1e-4, lr 0.1 divided by 10 at 50% and
# 75% of the epochs. "quick": half width on the 8x8 digits; "paper": a 10,000-image MNIST training subset at 14x14 for
# 8 epochs (what 2 CPU cores can afford); "full": the source's 200 epochs on CIFAR-10 where its files are, else on
# MNIST at 28x28 (:func:`default_dataset`). checkpoints: the epochs imbalance-during-training is measured at;
# eval_subset: the training images utilities and accuracies are measured on (None: the whole training set, as the
# source's Def. 1 averages over it)
SOURCE_NETWORK = {
    "quick": dict(dataset="digits", width_mult=0.5, subset=None, resize=None, epochs=8,
                  checkpoints=(0, 1, 2, 4, 8), eval_subset=None),
    "paper": dict(dataset="mnist", width_mult=1.0, subset=10_000, resize=14, epochs=8,
                  checkpoints=(0, 1, 2, 4, 8), eval_subset=1_000),
    "full": dict(dataset="cifar10", width_mult=1.0, subset=None, resize=None, epochs=200,
                 checkpoints=(0, 1, 2, 5, 10, 20, 50, 100, 150, 200), eval_subset=None),
}
# This project's variant, what notebooks 04 and 05 ran before the source's network was built: an MLP (prunekit's
# 128-64 on digits, LeNet-300-100 on MNIST), Adam at lr 1e-3, constant; retrain_epochs: t of notebook 04's one-shot
# pruning (<= T - rewind epoch 1)
MLP_VARIANT = {
    "quick": dict(dataset="digits", arch="mlp", epochs=20, checkpoints=(0, 1, 2, 4, 8, 12, 16, 20),
                  eval_subset=None, retrain_epochs=10),
    "paper": dict(dataset="mnist", arch="lenet300", epochs=10, checkpoints=(0, 1, 2, 3, 5, 7, 10),
                  eval_subset=10_000, retrain_epochs=9),
    "full": dict(dataset="mnist", arch="lenet300", epochs=10, checkpoints=(0, 1, 2, 3, 5, 7, 10),
                 eval_subset=None, retrain_epochs=9),
}
# Notebook 05's measurements per profile: the random ablation's ratios and subsets per ratio (the source: 500), the
# subsets of the imbalance measure (Def. 3: N = 500), per magnitude band and ratio, per level of the size and
# pruned-network comparisons, of "why the spread", per ratio of the widths (MLP variant); prune_ratios: Sec. 2.2.2
STUDY = {
    "quick": dict(ratios=(0.05, 0.1, 0.2, 0.3, 0.5), n_subsets=50, imbalance_subsets=50, band_subsets=5,
                  size_subsets=20, spread_subsets=50, width_subsets=50, prune_ratios=(0.5,)),
    "paper": dict(ratios=(0.05, 0.1, 0.2, 0.3), n_subsets=500, imbalance_subsets=500, band_subsets=10,
                  size_subsets=50, spread_subsets=500, width_subsets=100, prune_ratios=(0.25, 0.5, 0.75)),
    "full": dict(ratios=(0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9), n_subsets=500,
                 imbalance_subsets=500, band_subsets=20, size_subsets=500, spread_subsets=500, width_subsets=500,
                 prune_ratios=(0.25, 0.5, 0.75)),
}
PROFILES = tuple(STUDY)


def default_dataset(profile: str, network: str = "resnet20") -> str:
    """The data set of ``profile``'s ``network``: its preset's, except that ``full`` falls back from CIFAR-10 to
    MNIST where CIFAR-10's files are not in the data folder (``prunekit.data.files_present``: nothing is downloaded
    to decide)."""
    name = _preset(profile, network)["dataset"]
    return "mnist" if name == "cifar10" and not files_present("cifar10") else name


def _preset(profile: str, network: str) -> dict:
    choice("network", network, NETWORKS)
    return (SOURCE_NETWORK if network == "resnet20" else MLP_VARIANT)[check_profile(profile, PROFILES)]


def pretrain_config(profile: str, seed: int = 0, width_mult: float = 1.0, network: str = "resnet20",
                    dataset: str | None = None) -> TrainConfig:
    """The pretrained network of notebooks 04 and 05 for ``profile``: ``network`` "resnet20" (the source's, with its
    recipe, :data:`SOURCE_NETWORK`) or "mlp" (this project's variant, Adam at lr 1e-3, :data:`MLP_VARIANT`), on
    ``dataset`` (None: :func:`default_dataset`), with the checkpoints imbalance-during-training needs."""
    p = _preset(profile, network)
    name = dataset if dataset is not None else default_dataset(profile, network)
    if network == "mlp":
        return TrainConfig(data=DataConfig(name=name), model=ModelConfig(arch=p["arch"], width_mult=width_mult),
                           optimizer="adam", lr=1e-3, epochs=p["epochs"], seed=seed, checkpoints=p["checkpoints"])
    small_images = name != "cifar10" and profile != "full"  # the paper profile's CPU budget: 14x14 MNIST
    return TrainConfig(data=DataConfig(name=name, subset=p["subset"], resize=p["resize"] if small_images else None),
                       model=ModelConfig(arch="resnet20", width_mult=p["width_mult"] * width_mult, init="he"),
                       optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4, epochs=p["epochs"],
                       schedule="step", seed=seed, checkpoints=p["checkpoints"])


def vanilla_cnn_config(profile: str, seed: int = 0, dataset: str | None = None) -> TrainConfig:
    """A stand-in for the source's "vanilla CNN" of Sec. 2.1.2 (its layers are in an appendix that is not
    available): prunekit's plain conv net (``arch="conv"``: two 3x3 conv blocks of 16 and 32 channels with max
    pooling, a hidden layer of 64) without batch norm, trained as the source trains it: SGD with no momentum and no
    weight decay, lr 0.1 divided by 10 at 50% and 75% of the epochs, on the data and epochs of :func:`pretrain_config`.
    """
    cfg = pretrain_config(profile, seed, dataset=dataset)
    return cfg.replace(arch="conv", width_mult=1.0, batch_norm=False, momentum=0.0, weight_decay=0.0)


def eval_subset(profile: str, network: str = "resnet20") -> int | None:
    """How many training images ``profile``'s ablations of ``network`` are measured on (None: all)."""
    return _preset(profile, network)["eval_subset"]


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


def ablation_table(experiments: dict[str, pd.DataFrame], epochs: int, seed: int, network: str) -> pd.DataFrame:
    """One row per ablated subset of every experiment of notebook 05 (``{name: utility frame}``): experiment, network
    (the frame's own, else ``network``), ratio (a size or pruned-network frame's ``level``), band, subset, accuracy,
    utility, epoch (the final one unless the frame has its own), width_mult, share (of the weights kept at
    initialisation), by ("ratio" or "number"), prune_ratio (Sec. 2.2.2's networks; NaN elsewhere), seed."""
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
    for name, values in lists.items():
        interval = "(0, 1)" if name in below_one else "(0, 1]"
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__") or not list(values):
            raise ValueError(f"{name}={values!r} must be a non-empty list of fractions in {interval}")
        values = [fraction(name, v, low_open=True, high_open=name in below_one) for v in values]
        if len(set(values)) != len(values):
            raise ValueError(f"{name}={values!r} must not repeat a value")


def utility_claims(random_summary: pd.DataFrame | None = None, magnitude_summary: pd.DataFrame | None = None,
                   dense_accuracy: float | None = None,
                   imbalance_by_epoch: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None,
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
      correlation with the epoch is positive (``imbalance_by_epoch`` may be ``{network: table}``: one row each);
    - networks use weights in proportion to their size, read on widths (this project's variant; the source's reading,
      networks pruned at initialisation, is ``prunekit.sizes.size_claims``): the critical ablation ratios of the
      widths in ``critical`` are all reached and the largest is at most ``proportional_within`` times the smallest.
    A missing table (None) or one that cannot decide its claim gives "not measured here", with the reason.
    """
    from scipy.stats import spearmanr  # scipy.stats is slow to import: only here

    names = ("Equal-size random subsets differ widely in how much they matter",
             "Accuracy drops only when large-magnitude weights are ablated",
             "Utility imbalance grows during training",
             "Networks use their weights in proportion to their size (widths, this project's variant)")
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
    elif random_summary["ratio"].duplicated().any():
        rows.append(nm(0, "more than one random-ablation row per ratio (summarise one network and seed)"))
    elif not _finite(random_summary, ["ratio", "accuracy_min", "accuracy_max"]):
        rows.append(nm(0, "a ratio or accuracy of the random-ablation summary is not a finite number"))
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
    elif magnitude_summary.duplicated(["ratio", "band"]).any():
        rows.append(nm(1, "more than one magnitude-band row per ratio and band"))
    elif not (_finite(magnitude_summary, cols) and np.isfinite(float(dense_accuracy))):
        rows.append(nm(1, "an accuracy of the magnitude bands, or the unablated one, is not a finite number"))
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

    tables = imbalance_by_epoch if isinstance(imbalance_by_epoch, Mapping) else {None: imbalance_by_epoch}
    for network, t in (tables or {None: None}).items():
        row = _imbalance_claim(t, imbalance, spearmanr, nm(2, f"no {imbalance} at two or more epochs"))
        if network is not None:
            row["claim"] += f" ({network})"
        rows.append(row)

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


def _finite(df: pd.DataFrame, columns: list[str]) -> bool:
    """Whether every value of ``columns`` is a finite number."""
    return bool(np.isfinite(df[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)).all())


def _imbalance_claim(t: pd.DataFrame | None, imbalance: str, spearmanr, unmeasured: dict) -> dict:
    """The imbalance-during-training row of :func:`utility_claims` for one network's table (or ``unmeasured``)."""
    if t is None or C.missing_columns(t, ["epoch", imbalance]) or t["epoch"].nunique() < 2:
        return unmeasured
    if t["epoch"].duplicated().any() or not _finite(t, ["epoch", imbalance]):
        return {**unmeasured, "measured": "Not measured here: more than one row per epoch, or a value that is not a "
                                          "finite number."}
    t = t.sort_values("epoch")
    first, last = float(t[imbalance].iloc[0]), float(t[imbalance].iloc[-1])
    rho = float(spearmanr(t["epoch"], t[imbalance]).correlation) if t[imbalance].nunique() > 1 else 0.0
    low = int(t[imbalance].to_numpy().argmin())
    measured = (f"{imbalance} {first:.3g} at epoch {int(t.epoch.iloc[0])} and {last:.3g} at epoch "
                f"{int(t.epoch.iloc[-1])} (lowest {t[imbalance].iloc[low]:.3g} at epoch {int(t.epoch.iloc[low])}; "
                f"Spearman rho with epoch {rho:+.2f}).")
    return C.claim(unmeasured["source"], unmeasured["claim"], unmeasured["source_reports"], measured,
                   last > first and rho > 0, unmeasured["rule"])


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
