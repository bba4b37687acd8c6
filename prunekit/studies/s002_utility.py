"""Source 002, "An Empirical Study of a Pruning Mechanism" (ICLR 2021 submission, OpenReview doeyA2PBjdy): the study.

Presets shared by notebooks 04 (the loss-surface plane) and 05 (weight utility), so that both use the same cached
pretrained model by construction (:func:`pretrain_config`: the source's ResNet20, or this project's MLP variant), the
stand-in for the source's "vanilla CNN" (:func:`vanilla_cnn_config`), the tidy table of notebook 05
(:func:`ablation_table`), and the source's claims on weight utility as ``prunekit.report.claims`` tables
(:func:`utility_claims`, :func:`spread_claims`). Network sizes (Sec. 2.2) are in ``prunekit.studies.s002_sizes``, notebook 04's
basin questions in ``prunekit.studies.s002_basins``; the mechanisms live in ``prunekit.measures.utility``, ``prunekit.measures.imbalance``,
``prunekit.pruning.retrain``, ``prunekit.pruning.cycles`` and ``prunekit.measures.surface``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..report import claims as C
from ..report.intervals import bootstrap_interval, side_of
from ..core.checks import choice, columns, count, distinct, fraction, mapping, number, sequence, text
from ..core.config import DataConfig, ModelConfig, TrainConfig, check_profile
from ..core.data import files_present
from ..measures.imbalance import imbalance_table
from ..measures.surface import has_batchnorm
from ..core.train import state_restored
from ..measures.utility import flat_weights, random_ablation

__all__ = ["SOURCE", "SOURCE_DATASET", "SOURCE_EPOCHS", "substitute", "as_decided_on", "NETWORKS", "Network", "Study", "SOURCE_NETWORK", "MLP_VARIANT", "STUDY", "PROFILES", "study",
           "network_preset", "default_dataset",
           "pretrain_config", "vanilla_cnn_config", "eval_subset", "ablation_at_checkpoints", "critical_ratio",
           "width_comparison", "ablation_table", "check_plan", "utility_claims", "without_batch_norm",
           "spread_experiment", "spread_summary", "spread_claims"]

SOURCE = "002 An Empirical Study of a Pruning Mechanism"
NETWORKS = ("resnet20", "mlp")  # the source's network, this project's MLP variant

# The source's network (its Sec. 2.2.1 and 3; the "same conclusions" run of Sec. 2.1.2): He et al.'s CIFAR ResNet20
# with batch norm and He initialisation, SGD with momentum 0.9 and weight decay 1e-4, lr 0.1 divided by 10 at 50% and
# 75% of the epochs. "quick": half width on the 8x8 digits; "paper": half width on a 10,000-image Fashion-MNIST
# training subset at 14x14 for 8 epochs (what 2 CPU cores can afford for three seeds; Fashion-MNIST because MNIST
# saturates: at 14x14 every network of Table 1 lands within a point of 98%, too close to the ceiling to show the
# differences the source reports); "full": the source's 200 epochs on CIFAR-10 where its files are, else on
# Fashion-MNIST at 28x28 (:func:`default_dataset`). checkpoints: the epochs imbalance-during-training is measured at;
# eval_subset: the training images utilities and accuracies are measured on (None: the whole training set, as the
# source's Def. 1 averages over it)
@dataclass(frozen=True)
class Network:
    """A pretrained network's preset: its data set (``subset`` training images, resized to ``resize``), its
    ``width_mult``, its ``epochs`` T, the ``checkpoints`` kept, the training images its ablations are measured on
    (``eval_subset``; None: all, as the source's Def. 1 averages over the training set); for the MLP variant its
    ``arch`` and ``retrain_epochs`` (t of notebook 04's one-shot pruning, <= T - rewind epoch 1)."""

    dataset: str
    epochs: int
    checkpoints: tuple[int, ...]
    eval_subset: int | None
    width_mult: float = 1.0
    subset: int | None = None
    resize: int | None = None
    arch: str = "resnet20"
    retrain_epochs: int | None = None


@dataclass(frozen=True)
class Study:
    """Notebook 05's measurements for one profile: the random ablation's ``ratios`` and ``n_subsets`` per ratio (the
    source: 500), the subsets of the imbalance measure (Def. 3: N = 500), per magnitude band and ratio, per level of
    the size and pruned-network comparisons, of "why the spread", per ratio of the widths (MLP variant); Sec. 2.2.2's
    ``prune_ratios`` and its training seeds ``pruned_seeds`` (its accuracy claim compares networks within a few
    points: decided over seeds); ``spread_datasets``: the data sets "why the spread" also trains the batch-norm
    network on, beside the notebook's own (the answer moved between data sets: the comparison says why)."""

    ratios: tuple[float, ...]
    n_subsets: int
    imbalance_subsets: int
    band_subsets: int
    size_subsets: int
    spread_subsets: int
    width_subsets: int
    prune_ratios: tuple[float, ...]
    pruned_seeds: tuple[int, ...]
    spread_datasets: tuple[str, ...] = ()


SOURCE_NETWORK = {
    "quick": Network("digits", 8, (0, 1, 2, 4, 8), None, width_mult=0.5),
    "paper": Network("fashion_mnist", 8, (0, 1, 2, 4, 8), 1_000, width_mult=0.5, subset=10_000, resize=14),
    "full": Network("cifar10", 200, (0, 1, 2, 5, 10, 20, 50, 100, 150, 200), None),
}
# This project's variant, what notebooks 04 and 05 ran before the source's network was built: an MLP (prunekit's
# 128-64 on digits, LeNet-300-100 on MNIST), Adam at lr 1e-3, constant
MLP_VARIANT = {
    "quick": Network("digits", 20, (0, 1, 2, 4, 8, 12, 16, 20), None, arch="mlp", retrain_epochs=10),
    "paper": Network("mnist", 10, (0, 1, 2, 3, 5, 7, 10), 10_000, arch="lenet300", retrain_epochs=9),
    "full": Network("mnist", 10, (0, 1, 2, 3, 5, 7, 10), None, arch="lenet300", retrain_epochs=9),
}
STUDY = {
    "quick": Study((0.05, 0.1, 0.2, 0.3, 0.5), 50, 50, 5, 20, 50, 50, (0.5,), (0,)),
    "paper": Study((0.05, 0.1, 0.2, 0.3), 500, 500, 10, 50, 500, 100, (0.25, 0.5, 0.75), (0, 1, 2), ("mnist",)),
    "full": Study((0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9), 500, 500, 20, 500, 500, 500,
                  (0.25, 0.5, 0.75), (0, 1, 2), ("mnist",)),
}
PROFILES = tuple(STUDY)


SOURCE_DATASET = "cifar10"  # the source's experiments: ResNet20 on CIFAR-10, 200 epochs
SOURCE_EPOCHS = 200


def substitute(cfg: TrainConfig) -> str | None:
    """What in ``cfg`` stands in for the source's setup (ResNet20 at full width on the whole of CIFAR-10 at 32x32,
    200 epochs), in words; None when ``cfg`` is the source's setup."""
    d, m = cfg.data, cfg.model
    parts = []
    if d.name != SOURCE_DATASET:
        parts.append(f"{d.name} for {SOURCE_DATASET}")
    if d.subset:
        parts.append(f"{d.subset:,} training images")
    if d.resize:
        parts.append(f"{d.resize}x{d.resize} images")
    if m.width_mult != 1.0:
        parts.append(f"width {m.width_mult:g}")
    if cfg.epochs != SOURCE_EPOCHS:
        parts.append(f"{cfg.epochs} epochs for {SOURCE_EPOCHS}")
    return ", ".join(parts) or None


def as_decided_on(claims: pd.DataFrame, cfg: TrainConfig) -> pd.DataFrame:
    """The claims of a run on ``cfg``: as decided on the source's own setup, else with the substitute-setup verdicts
    (``prunekit.report.claims.on_substitute``: "holds here (substitute setup)" or "does not hold here (substitute
    setup)", both ways alike, counted apart). Rows of this project's own extensions are left as they are: they are
    not the source's claims."""
    return C.on_substitute(claims, substitute(cfg))


def study(profile: str) -> Study:
    """Notebook 05's :class:`Study` of ``profile``."""
    return STUDY[check_profile(profile, STUDY)]


def network_preset(profile: str, network: str = "resnet20") -> Network:
    """The :class:`Network` preset of ``profile``: the source's ResNet20 or this project's MLP variant ("mlp")."""
    choice("network", network, NETWORKS)
    return (SOURCE_NETWORK if network == "resnet20" else MLP_VARIANT)[check_profile(profile, PROFILES)]


def default_dataset(profile: str, network: str = "resnet20") -> str:
    """The data set of ``profile``'s ``network``: its preset's, except that ``full`` falls back from CIFAR-10 to
    Fashion-MNIST (at 28x28) where CIFAR-10's files are not in the data folder (``prunekit.core.data.files_present``:
    nothing is downloaded to decide)."""
    name = network_preset(profile, network).dataset
    return "fashion_mnist" if name == "cifar10" and not files_present("cifar10") else name


def pretrain_config(profile: str, seed: int = 0, width_mult: float = 1.0, network: str = "resnet20",
                    dataset: str | None = None) -> TrainConfig:
    """The pretrained network of notebooks 04 and 05 for ``profile``: ``network`` "resnet20" (the source's, with its
    recipe, :data:`SOURCE_NETWORK`) or "mlp" (this project's variant, Adam at lr 1e-3, :data:`MLP_VARIANT`), on
    ``dataset`` (None: :func:`default_dataset`), with the checkpoints imbalance-during-training needs."""
    number("width_mult", width_mult, low=0.0, low_open=True)
    p = network_preset(profile, network)
    name = dataset if dataset is not None else default_dataset(profile, network)
    if network == "mlp":
        return TrainConfig(data=DataConfig(name=name), model=ModelConfig(arch=p.arch, width_mult=width_mult),
                           optimizer="adam", lr=1e-3, epochs=p.epochs, seed=seed, checkpoints=p.checkpoints)
    small_images = name != "cifar10" and profile != "full"  # the paper profile's CPU budget: 14x14 images
    return TrainConfig(data=DataConfig(name=name, subset=p.subset, resize=p.resize if small_images else None),
                       model=ModelConfig(arch="resnet20", width_mult=p.width_mult * width_mult, init="he"),
                       optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4, epochs=p.epochs,
                       schedule="step", seed=seed, checkpoints=p.checkpoints)


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
    return network_preset(profile, network).eval_subset


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
            df = random_ablation(model, x, y, tuple(ratios), n_subsets, seed, method=method,
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


# The source's own sentences (what the claims below decide): Figure 1's caption and the contributions
QUOTES = {
    "spread": C.Quote("Note that the accuracy difference is about 60% when the ablation ratio is 0.1. This implies the "
                      "utility imbalance among the weights.", "Fig. 1 caption (left)"),
    "magnitude": C.Quote("Note that the training accuracy drops only when the weights with the large magnitude is "
                         "ablated.", "Fig. 1 caption (right)"),
    "grows": C.Quote("The utility imbalance among the weights increases during optimization.",
                     "Sec. 1, contributions"),
    "proportion": C.Quote("The neural networks utilize the weights in proportion to their size.",
                          "Sec. 1, contributions"),
}


def utility_claims(random_ablations: pd.DataFrame | None = None, magnitude_summary: pd.DataFrame | None = None,
                   dense_accuracy: float | None = None,
                   imbalance_ablations: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None,
                   critical: pd.DataFrame | None = None, *, network: str = "resnet20", spread_ratio: float = 0.1,
                   min_spread: float = 0.10, min_top_drop: float = 0.05, lower_share_holds: float = 0.05,
                   lower_share_fails: float = 0.20,
                   proportional_within: float = 1.25, setup: str = "", seeds: str = "",
                   setups: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The weight-utility claims of source 002 (``prunekit.report.claims`` format), from notebook 05's tables.

    - equal-size random subsets differ widely (the source: ~60 points of training accuracy at ratio 0.1): at the
      ratio of ``random_ablations`` (one row per subset: ratio, accuracy) nearest ``spread_ratio``, the spread of
      the middle 95% of the subsets' accuracies (97.5th - 2.5th percentile: a spread a bootstrap can give an interval
      for, where max - min cannot) has its bootstrap interval at least ``min_spread`` (holds) or wholly below it
      (does not hold); max - min, the source's reading, is reported beside;
    - accuracy drops only when large-magnitude weights go: ablating the largest ``magnitude_summary`` ratio of each
      band, the costliest band of the lower half costs at most ``lower_share_holds`` of what the top band costs
      (holds), or at least ``lower_share_fails`` of it (does not hold: small weights matter too), in between cannot
      decide; a share, not a number of points, so that a fraction of a point of evaluation noise on a band that
      costs nothing cannot decide it; cannot decide either when the top band costs less than ``min_top_drop`` (no
      drop to attribute). A whole band is one deterministic ablation;
    - utility imbalance grows during training: the standard deviation of the utilities of the same random subsets
      (the source's measure, Def. 3) is higher at the last checkpoint than at the first, by a paired bootstrap interval
      over the subsets of (last - first): above 0 holds, below 0 does not, else cannot decide
      (``imbalance_ablations``: rows epoch, subset, utility; or ``{network: rows}``, one claim row each);
    - networks use weights in proportion to their size, read on widths (this project's variant, ``network="mlp"``;
      the source's reading, networks pruned at initialisation, is ``prunekit.studies.s002_sizes.size_claims``): the critical
      ablation ratios of the widths in ``critical`` are all reached and the largest is at most
      ``proportional_within`` times the smallest (a row of kind "extension").
    ``setups``: the setup of each network of ``imbalance_ablations`` by name (its row's ``setup``; ``setup`` for a name
    not there). A missing table (None) or one that cannot decide its claim gives "not measured here", with the reason.
    """

    if dense_accuracy is not None and not (isinstance(dense_accuracy, float) and math.isnan(dense_accuracy)):
        fraction("dense_accuracy", dense_accuracy)  # NaN (a measurement that failed) gives "not measured here"
    choice("network", network, NETWORKS)
    for name, value in (("spread_ratio", spread_ratio), ("min_spread", min_spread), ("min_top_drop", min_top_drop),
                        ("lower_share_holds", lower_share_holds), ("lower_share_fails", lower_share_fails)):
        fraction(name, value, low_open=True)
    number("proportional_within", proportional_within, low=1.0)
    names = ("Equal-size random subsets differ widely in how much they matter",
             "Accuracy drops only when large-magnitude weights are ablated",
             "Utility imbalance grows during training",
             "Networks use their weights in proportion to their size (widths, this project's variant)")
    reports = ("about 60 points of training accuracy between 500 random subsets at ablation ratio 0.1",
               "ablating small weights costs nothing, large ones cost accuracy",
               "the standard deviation of the utilities of 500 random subsets (and their mean and minimum) rises "
               "during training",
               "similar ablation curves by ratio across network sizes")
    quotes = (QUOTES["spread"], QUOTES["magnitude"], QUOTES["grows"], QUOTES["proportion"])
    rules = (f"95% bootstrap interval over the subsets of the middle-95% accuracy range (97.5th - 2.5th percentile) at "
             f"the ratio nearest {spread_ratio:g}: >= {min_spread:.0%} holds, wholly below does not",
             f"cost of the costliest lower-half band as a share of the top band's cost (ablating whole bands): "
             f"<= {lower_share_holds:.0%} holds, >= {lower_share_fails:.0%} does not; the top band must cost at least "
             f"{100 * min_top_drop:g} points",
             "95% paired bootstrap interval over the subsets of std(last checkpoint) - std(first): > 0 holds, "
             "< 0 does not",
             f"critical ratios reached at every width, largest / smallest <= {proportional_within:g}")
    rows = []

    def ctx(i: int, **more) -> dict:
        return {"quote": quotes[i].text, "quote_where": quotes[i].location, "setup": setup, "seeds": seeds,
                "kind": "extension" if i == 3 else "source", **more}

    def nm(i: int, why: str) -> dict:
        return C.not_measured(SOURCE, names[i], reports[i], why, rules[i], **ctx(i))

    cols = ["ratio", "accuracy"]
    if random_ablations is None or C.missing_columns(random_ablations, cols) or random_ablations.empty:
        rows.append(nm(0, "no random ablations with a ratio and an accuracy per subset"))
    elif not _finite(random_ablations, cols):
        rows.append(nm(0, "a ratio or accuracy of the random ablations is not a finite number"))
    else:
        r0 = min(random_ablations["ratio"].unique(), key=lambda r: abs(r - spread_ratio))
        acc = random_ablations.loc[np.isclose(random_ablations["ratio"], r0), "accuracy"].to_numpy(dtype=float)
        iv = bootstrap_interval([acc], _middle_range)
        measured = (f"at ratio {r0:g} training accuracy over {C.plural(len(acc), 'random subset')} ranges from "
                    f"{acc.min():.1%} to {acc.max():.1%}, a spread of {100 * np.ptp(acc):.1f} points (the middle 95%: "
                    f"{100 * _middle_range(acc, axis=-1):.1f} points).")
        holds = side_of(iv, min_spread - 1e-12)
        interval = iv.text("{:.1f}", 100, " points")
        if holds is None:
            rows.append(C.cannot_decide(SOURCE, names[0], reports[0], measured, "the interval straddles the "
                                        "threshold", rules[0], **ctx(0, interval=interval)))
        else:
            rows.append(C.claim(SOURCE, names[0], reports[0], measured, holds, rules[0], **ctx(0, interval=interval)))

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
        worst = max(float(lower.max()), 0.0)
        share = worst / top if top > 0 else float("nan")
        measured = (f"ablating {magnitude_summary.ratio.max():.0%} of each band, the band of largest weights costs "
                    f"{100 * top:.1f} points; the lower half of the bands at most {100 * worst:.1f} points each"
                    + (f" ({share:.1%} of the top band's cost)" if top > 0 else "")
                    + " (band by band: " + ", ".join(f"{100 * d:.1f}" for d in drop) + ").")
        exact = "exact: each whole band is one ablation" if magnitude_summary.ratio.max() == 1 else \
            "means over the subsets of each band"
        if top < min_top_drop:
            rows.append(C.cannot_decide(SOURCE, names[1], reports[1], measured, f"no drop to attribute: the top band "
                                        f"costs less than {100 * min_top_drop:g} points here", rules[1],
                                        **ctx(1, interval=exact)))
        elif lower_share_holds < share < lower_share_fails:
            rows.append(C.cannot_decide(SOURCE, names[1], reports[1], measured, f"the lower half costs between "
                                        f"{lower_share_holds:.0%} and {lower_share_fails:.0%} of the top band",
                                        rules[1], **ctx(1, interval=exact)))
        else:
            rows.append(C.claim(SOURCE, names[1], reports[1], measured, bool(share <= lower_share_holds), rules[1],
                                **ctx(1, interval=exact)))

    tables = imbalance_ablations if isinstance(imbalance_ablations, Mapping) else {None: imbalance_ablations}
    for name, t in (tables or {None: None}).items():
        row = _imbalance_claim(t, names[2], reports[2], rules[2], ctx(2, setup=(setups or {}).get(name, setup)))
        if name is not None:
            row["claim"] += f" ({name})"
        rows.append(row)

    if critical is None:
        rows.append(nm(3, "the width study did not run: it is this project's variant on the MLP (network='mlp'), "
                          f"and this run studied {network}"))
    elif C.missing_columns(critical, ["width_mult", "critical_ratio"]) or len(critical) < 2:
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
        rows.append(C.claim(SOURCE, names[3], reports[3], measured, fold <= proportional_within, rules[3],
                            **ctx(3, setup=setup or "this project's variant: LeNet-300-100 at several widths",
                                  interval="interpolated between the ratios measured")))
    return C.claims_frame(rows)


def _middle_range(a, axis=-1):
    """The spread of the middle 95% of ``a``: its 97.5th minus its 2.5th percentile (numpy's linear interpolation)."""
    return np.percentile(a, 97.5, axis=axis) - np.percentile(a, 2.5, axis=axis)


def _finite(df: pd.DataFrame, columns: list[str]) -> bool:
    """Whether every value of ``columns`` is a finite number."""
    return bool(np.isfinite(df[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)).all())


def _imbalance_claim(t: pd.DataFrame | None, name: str, reports: str, rule: str, context: dict) -> dict:
    """The imbalance-during-training row of :func:`utility_claims` for one network's ablations (rows epoch,
    subset, utility: the same subsets at every checkpoint)."""
    from scipy.stats import spearmanr  # scipy.stats is slow to import: only here


    cols = ["epoch", "subset", "utility"]
    if t is None or C.missing_columns(t, cols) or t["epoch"].nunique() < 2:
        return C.not_measured(SOURCE, name, reports, "no utilities of the same subsets at two or more checkpoints",
                              rule, **context)
    if t.duplicated(["epoch", "subset"]).any() or not _finite(t, cols):
        return C.not_measured(SOURCE, name, reports, "more than one row per checkpoint and subset, or a value that "
                              "is not a finite number", rule, **context)
    wide = t.pivot(index="subset", columns="epoch", values="utility").dropna()
    if len(wide) < 2:
        return C.not_measured(SOURCE, name, reports, "fewer than two subsets measured at every checkpoint", rule,
                              **context)
    first, last = wide.columns.min(), wide.columns.max()
    stds = wide.std(ddof=0)  # the source's imbalance (prunekit.measures.imbalance.utility_std) per checkpoint
    iv = bootstrap_interval([wide[first].to_numpy(), wide[last].to_numpy()],
                            lambda a, b, axis: np.std(b, axis=axis) - np.std(a, axis=axis), paired=True,
                            what="paired bootstrap over subsets")
    rho = float(spearmanr(stds.index, stds.to_numpy()).statistic) if stds.nunique() > 1 else 0.0
    measured = (f"std of the utilities of {C.plural(len(wide), 'subset')}: {stds[first]:.3g} at epoch {int(first)}, "
                f"{stds[last]:.3g} at epoch {int(last)} (lowest {stds.min():.3g} at epoch {int(stds.idxmin())}; "
                f"Spearman rho with epoch {rho:+.2f} over {C.plural(len(stds), 'checkpoint')}).")
    interval = f"std(last) - std(first): {iv.text('{:+.3g}')}"
    holds = side_of(iv, 0.0)
    if holds is None:
        return C.cannot_decide(SOURCE, name, reports, measured, "the change lies inside the noise of the subsets "
                               "(the interval straddles 0)", rule, **{**context, "interval": interval})
    return C.claim(SOURCE, name, reports, measured, holds, rule, **{**context, "interval": interval})


def without_batch_norm(cfg: TrainConfig) -> TrainConfig:
    """``cfg``'s network without its batch-norm layers, trained with Adam (lr 1e-3, no schedule, no weight decay):
    SGD at lr 0.1 does not train a 20-layer ResNet without batch norm. This project's recipe; the source has none."""
    return cfg.replace(batch_norm=False, optimizer="adam", lr=1e-3, momentum=0.0, weight_decay=0.0, schedule="none")


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
                     "spread_middle_95": float(_middle_range(acc)), "spread_max_min": float(np.ptp(acc))})
    return pd.DataFrame(rows)


def spread_claims(df: pd.DataFrame | None, *, stale_share: float = 0.5, setup: str = "",
                  seeds: str = "") -> pd.DataFrame:
    """This project's answer to "what drives the spread?" (``prunekit.report.claims`` format, rows of kind
    "extension": the source does not ask it) from :func:`spread_experiment` rows (network, statistics, subset,
    accuracy; with a ``dataset`` column, one row of each claim per data set). One statistic is printed and decided:
    the spread of the middle 95% of the subsets' accuracies (97.5th - 2.5th percentile, which a bootstrap can give an
    interval for), and each ratio of spreads has a paired bootstrap interval over the subsets (the same subset indices
    in every network).

    - stale batch-norm statistics drive it: the spread with recalibrated statistics is at most ``1 - stale_share`` of
      the spread with stored ones (the whole interval of their ratio; wholly above: does not hold);
    - the weights alone spread it too: the network without batch norm spreads at least ``1 - stale_share`` of the
      batch-norm network's stored-statistics spread.
    """

    fraction("stale_share", stale_share, low_open=True, high_open=True)
    names = ("Stale batch-norm statistics drive the spread of random ablations",
             "Without batch norm, random ablations of equal size still differ widely")
    reports = ("about 60 points of training accuracy between 500 random subsets at ratio 0.1 (ResNet20 with batch "
               "norm, stored statistics); what drives it is not examined", "no network without batch norm")
    rules = (f"95% paired bootstrap interval of spread(recalibrated) / spread(stored) <= {1 - stale_share:.0%} "
             "(spread: of the middle 95% of the subsets' accuracies)",
             f"95% paired bootstrap interval of spread(no batch norm) / spread(batch norm, stored) >= "
             f"{1 - stale_share:.0%} (spread: of the middle 95% of the subsets' accuracies)")
    quote = QUOTES["spread"]
    context = {"quote": quote.text, "quote_where": quote.location, "kind": "extension", "seeds": seeds,
               "setup": setup or "this project's question, on the source's ResNet20"}
    cols = ["network", "statistics", "subset", "accuracy"]
    if df is None or C.missing_columns(df, cols) or df.duplicated(
            [c for c in ("dataset", "network", "statistics", "subset") if c in df.columns]).any():
        return C.claims_frame([C.not_measured(SOURCE, n, r, "no spread experiment with one row per network, "
                                              "statistics and subset", rule, **context)
                               for n, r, rule in zip(names, reports, rules)])
    groups = df.groupby("dataset", sort=False) if "dataset" in df.columns and df["dataset"].nunique() > 1 \
        else [(None, df)]
    rows = []
    for dataset, part in groups:
        label = "" if dataset is None else f" ({dataset})"
        rows += _spread_rows(part, [n + label for n in names], reports, rules, stale_share, context)
    return C.claims_frame(rows)


def _spread_rows(df: pd.DataFrame, names, reports, rules, stale_share: float, context: dict) -> list[dict]:
    """The two rows of :func:`spread_claims` for one data set's spread experiment."""
    acc = {key: g.set_index("subset")["accuracy"].astype(float) for key, g in df.groupby(["network", "statistics"])}

    def ratio(num: pd.Series, den: pd.Series):
        both = pd.concat([num, den], axis=1, join="inner").dropna().to_numpy()
        return bootstrap_interval([both[:, 0], both[:, 1]], lambda a, b, axis: _middle_range(a, axis=axis) / np.maximum(
            _middle_range(b, axis=axis), 1e-12), paired=True, what="paired bootstrap over subsets")

    def spread(key) -> str:
        return f"{100 * _middle_range(acc[key].to_numpy()):.1f} points"

    rows = []
    bn = [n for (n, s) in acc if s == "stored" and (n, "recalibrated") in acc]
    if not bn:
        rows.append(C.not_measured(SOURCE, names[0], reports[0], "no batch-norm network with both stored and "
                                   "recalibrated statistics", rules[0], **context))
    else:
        ivs = {n: ratio(acc[(n, "recalibrated")], acc[(n, "stored")]) for n in bn}
        measured = ("spread of the middle 95% of the subsets' accuracies: "
                    + "; ".join(f"{n}: {spread((n, 'stored'))} with stored statistics, "
                                f"{spread((n, 'recalibrated'))} recalibrated (ratio {ivs[n].estimate:.2f})" for n in bn)
                    + ".")
        sides = [side_of(iv, 1 - stale_share, holds_above=False) for iv in ivs.values()]
        rows.append(C.decided(SOURCE, names[0], reports[0], measured, sides, rules[0], intervals=list(ivs.values()),
                              interval="recalibrated / stored: " + "; ".join(f"{n}: {iv.text('{:.2f}')}"
                                                                            for n, iv in ivs.items()), **context))
    plain = [n for (n, s) in acc if s == "none"]
    stored = [n for (n, s) in acc if s == "stored"]
    if not plain or not stored:
        rows.append(C.not_measured(SOURCE, names[1], reports[1], "needs a network without batch norm and one with "
                                   "stored statistics", rules[1], **context))
    else:
        reference = max(stored, key=lambda n: _middle_range(acc[(n, "stored")].to_numpy()))
        ivs = {n: ratio(acc[(n, "none")], acc[(reference, "stored")]) for n in plain}
        measured = ("spread of the middle 95% of the subsets' accuracies: "
                    + ", ".join(f"{n}: {spread((n, 'none'))}" for n in plain)
                    + f" against {spread((reference, 'stored'))} with batch norm and stored statistics.")
        sides = [side_of(iv, 1 - stale_share - 1e-12) for iv in ivs.values()]
        rows.append(C.decided(SOURCE, names[1], reports[1], measured, sides, rules[1], intervals=list(ivs.values()),
                              interval="no batch norm / batch norm (stored): " + "; ".join(
                                  f"{n}: {iv.text('{:.2f}')}" for n, iv in ivs.items()), **context))
    return rows
