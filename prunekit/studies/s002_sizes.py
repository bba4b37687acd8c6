"""Source 002's networks of different sizes (Sec. 2.2 of "An Empirical Study of a Pruning Mechanism", ICLR 2021
submission, OpenReview doeyA2PBjdy), notebook 05.

- Sec. 2.2.1, **network size**: the 0.5x and 0.25x networks are the 1x network pruned at random at initialisation to
  that share of its weights, the kept weights rescaled to He's variance, trained with the mask held
  (:func:`size_config`); each is ablated by ratio of its own weights and by absolute number (:func:`size_comparison`,
  :func:`size_claims`).
- Sec. 2.2.2, **pruned networks**: the pretrained network with 25%, 50% or 75% of its conv weights pruned in one shot by
  global magnitude and retrained with the pretraining schedule (:func:`conv_pruned`), against a *small* network with as
  many weights trained from scratch for twice the epochs (:func:`small_config`); for the pretrained network only the
  weights above the pruning threshold are sampled into the ablated subsets (:func:`pruned_comparison`,
  :func:`pruned_table`, :func:`pruned_claims`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..report import claims as C
from ..report.intervals import bootstrap_interval, mean_interval, side_of
from ..core.store import Run, build, cached_result, data_digest, state_digest
from ..core.checks import choice, count, distinct, fraction, mapping, sequence
from ..core.device import device_name
from ..core.config import TrainConfig
from ..pruning.cycles import conv_parameters, kept_conv_weights, next_masks, same_size_config
from ..core.data import Dataset
from ..measures.imbalance import utility_std
from ..pruning.masks import Masks
from .s002_utility import SOURCE, pretrain_config
from ..core.prunable import prunable_parameters
from ..pruning.retrain import retrain, retraining_lrs
from ..core.train import evaluate
from ..measures.utility import flat_weights, random_ablation

__all__ = ["PRUNE_RATIOS", "size_config", "size_comparison", "size_claims", "conv_pruned", "small_config",
           "small_config_at", "PrunedExperiment", "pruned_experiment", "pruned_comparison", "pruned_table",
           "pruned_claims"]

PRUNE_RATIOS = (0.25, 0.5, 0.75)  # Sec. 2.2.2's shares of the conv weights pruned in one shot


def size_config(profile: str, seed: int = 0, share: float = 1.0, network: str = "resnet20",
                dataset: str | None = None) -> TrainConfig:
    """The networks of notebook 05's size comparison: ``prunekit.studies.s002_utility.pretrain_config``'s network with He
    initialisation, pruned at initialisation to ``share`` of its weights (``ModelConfig.init_density``; 1.0 is the 1x
    network, for ResNet20 the pretrained network itself)."""
    share = fraction("share", share, low_open=True)
    return pretrain_config(profile, seed, network=network, dataset=dataset).replace(init="he", init_density=share)


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
    ratios = distinct("ratios", sequence("ratios", ratios, item=lambda n, r: fraction(n, r, low_open=True)))
    models = mapping("models", models)
    n_subsets, seed = count("n_subsets", n_subsets), count("seed", seed, low=0)
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


QUOTES = {
    "proportion": C.Quote("The neural networks utilize the weights in proportion to their size.",
                          "Sec. 1, contributions"),
    "max_utility": C.Quote("larger networks use less-utilized weights by a larger portion: the maximum utility in the "
                           "sample set is higher in smaller networks", "Sec. 2.2.1", paraphrase=True),
    "small": C.Quote("And let N small be a network trained from scratch, whose number of weights is comparable to that "
                     "of N pruned, which is sufficient to achieve a similar level of loss to those of N large or N "
                     "pruned. However, N small generally performs worse, because N small does not utilize all of its "
                     "weights either.", "Sec. 2, opening"),
    "uneven": C.Quote("However, N small generally performs worse, because N small does not utilize all of its weights "
                      "either.", "Sec. 2, opening"),
}


def size_claims(ablations: pd.DataFrame | None, *, max_level: float = 0.1, setup: str = "",
                seeds: str = "") -> pd.DataFrame:
    """Source 002's two claims about network size (``prunekit.report.claims`` format), from :func:`size_comparison`'s
    ablations (one row per subset: share, by, level, subset, accuracy, utility).

    - networks use their weights in proportion to their size ("similar curves by ratio, different by absolute
      number"): for every smaller network, the mean gap between its accuracy curve and the largest network's is
      larger by number than by ratio (``D = gap_number - gap_ratio``, each gap the mean over the levels both curves
      have of |mean accuracy - the largest's|); holds when the bootstrap interval of ``D`` (subsets resampled in
      every cell) is above 0 for every smaller network, does not hold when it is below 0 for one;
    - smaller networks have subsets of higher maximum utility: by ratio at the level nearest ``max_level``, the top
      of each network's sample set, read as its 95th percentile of utility (a bootstrap cannot give an interval for
      the maximum itself: a resampled maximum never exceeds the observed one), is higher in the smaller network: the
      bootstrap interval of the difference is above 0 for every pair of neighbouring sizes (holds), below 0 for one
      (does not hold); the maxima are reported beside.
    A table that cannot decide a claim (fewer than two sizes, a missing column, no shared level, a NaN, a duplicate
    subset) gives "not measured here", with the reason.
    """
    fraction("max_level", max_level, low_open=True)

    names = ("Networks use their weights in proportion to their size (pruned at initialisation)",
             "Smaller networks have subsets of higher maximum utility")
    reports = ("similar ablation curves by ratio of each network's weights, different by absolute number",
               "the maximum utility in the sample set is higher in smaller networks")
    quotes = (QUOTES["proportion"], QUOTES["max_utility"])
    rules = ("for each smaller network, 95% bootstrap interval of (by-number gap - by-ratio gap) to the largest "
             "network's accuracy curve > 0 (gap: mean over shared levels of |mean accuracy difference|)",
             f"95% bootstrap interval of (95th-percentile utility of a network - of the next larger one), by ratio at "
             f"the level nearest {max_level:g}, > 0 for every pair of neighbouring sizes")
    context = [{"quote": q.text, "quote_where": q.location, "setup": setup, "seeds": seeds} for q in quotes]
    cols = ["share", "by", "level", "subset", "accuracy", "utility"]
    why = None
    if ablations is None or C.missing_columns(ablations, cols):
        why = C.lacking(C.missing_columns(ablations, cols) if ablations is not None else cols, "size ablations")
    elif ablations["share"].nunique() < 2:
        why = "fewer than two network sizes"
    elif ablations.duplicated(["share", "by", "level", "subset"]).any():
        why = "more than one row per share, mode, level and subset"
    elif not np.isfinite(ablations[["share", "level", "accuracy", "utility"]].to_numpy(dtype=float)).all():
        why = "a share, level, accuracy or utility that is not a finite number"
    if why is not None:
        return C.claims_frame([C.not_measured(SOURCE, n, r, why, rule, **c)
                               for n, r, rule, c in zip(names, reports, rules, context)])
    cells = {key: g["accuracy"].to_numpy(dtype=float) for key, g in ablations.groupby(["share", "by", "level"])}
    largest = float(ablations["share"].max())
    rows, intervals, parts, sides = [], {}, [], []
    for share in sorted(set(ablations["share"]) - {largest}):
        curves = {}
        for by in ("ratio", "number"):  # the largest network's curve is the same by ratio and by number
            levels = sorted(lv for (s, b, lv) in cells if s == share and b == by
                            and (largest, "ratio", lv) in cells)
            curves[by] = levels
        if not curves["ratio"] or not curves["number"]:
            intervals = None
            break
        keys = ([(share, "ratio", lv) for lv in curves["ratio"]] + [(largest, "ratio", lv) for lv in curves["ratio"]]
                + [(share, "number", lv) for lv in curves["number"]]
                + [(largest, "ratio", lv) for lv in curves["number"]])
        nr, nn = len(curves["ratio"]), len(curves["number"])

        def gap_difference(*samples, axis=-1, nr=nr, nn=nn):
            means = [np.mean(x, axis=axis) for x in samples]
            by_ratio = np.mean([np.abs(means[i] - means[nr + i]) for i in range(nr)], axis=0)
            by_number = np.mean([np.abs(means[2 * nr + i] - means[2 * nr + nn + i]) for i in range(nn)], axis=0)
            return by_number - by_ratio

        iv = bootstrap_interval([cells[k] for k in keys], gap_difference, what="bootstrap over the subsets of "
                                "every level")
        intervals[share] = iv
        means = {k: float(cells[k].mean()) for k in keys}
        gr = np.mean([abs(means[(share, "ratio", lv)] - means[(largest, "ratio", lv)]) for lv in curves["ratio"]])
        gn = np.mean([abs(means[(share, "number", lv)] - means[(largest, "ratio", lv)]) for lv in curves["number"]])
        parts.append(f"{100 * gr:.1f} / {100 * gn:.1f} points at share {share:g}")
        sides.append(side_of(iv, 0.0))
    if not intervals:
        rows.append(C.not_measured(SOURCE, names[0], reports[0], "a smaller network has no level in common with the "
                                   "largest by ratio or by number", rules[0], **context[0]))
    else:
        measured = "mean gap to the largest network's accuracy, by ratio / by number: " + ", ".join(parts) + "."
        interval = "; ".join(f"share {s:g}: {iv.text('{:+.1f}', 100, ' points')}" for s, iv in intervals.items())
        rows.append(C.decided(SOURCE, names[0], reports[0], measured, sides, rules[0], interval=interval,
                              intervals=list(intervals.values()), threshold=0.0, **context[0]))
    by_ratio = ablations[ablations["by"] == "ratio"]
    if by_ratio.empty:
        rows.append(C.not_measured(SOURCE, names[1], reports[1], "no ablation by ratio", rules[1], **context[1]))
        return C.claims_frame(rows)
    level = by_ratio["level"].iloc[int((by_ratio["level"] - max_level).abs().to_numpy().argmin())]
    at = {float(s): g["utility"].to_numpy(dtype=float)
          for s, g in by_ratio[np.isclose(by_ratio["level"], level)].groupby("share")}
    shares = sorted(at)
    if len(shares) < 2:
        rows.append(C.not_measured(SOURCE, names[1], reports[1], f"fewer than two sizes with utilities at level "
                                   f"{level:g}", rules[1], **context[1]))
        return C.claims_frame(rows)
    ivs = {(a, b): bootstrap_interval([at[a], at[b]], lambda x, y, axis: np.percentile(x, 95, axis=axis)
                                      - np.percentile(y, 95, axis=axis), what="bootstrap over subsets")
           for a, b in zip(shares[:-1], shares[1:])}
    measured = (f"utility at ratio {level:g}, 95th percentile / maximum of the sample set: "
                + ", ".join(f"{np.percentile(at[s], 95):.4f} / {at[s].max():.4f} at share {s:g}" for s in shares)
                + ".")
    interval = "; ".join(f"share {a:g} - {b:g}: {iv.text('{:+.4f}')}" for (a, b), iv in ivs.items())
    rows.append(C.decided(SOURCE, names[1], reports[1], measured, [side_of(iv, 0.0) for iv in ivs.values()],
                          rules[1], interval=interval, intervals=list(ivs.values()), threshold=0.0,
                          refute="majority", **context[1]))
    return C.claims_frame(rows)



# ------------------------------------------------------------------------------------ Sec. 2.2.2: pruned networks
def conv_pruned(run: Run, ratio: float, ds: Dataset | None = None, cache: bool = True,
                quiet: bool = True) -> tuple[Masks, nn.Module]:
    """Sec. 2.2.2's pruned network: ``run``'s network with ``round(ratio * n)`` of its ``n`` conv weights pruned in
    one shot, the smallest ``|w|`` over all conv layers together (``prunekit.pruning.cycles.next_masks``), then retrained with
    the pretraining schedule, every epoch of it from the pruned weights with the mask held (``prunekit.pruning.retrain``'s
    ``"lr_rewind"`` with ``t = T``) on ``ds`` (default: the run's data set). Returns ``(masks, retrained network)``.
    cache: keep the retrained weights in the result cache (kind ``"pruned"``, keyed by ``run.config.key()``, the
    plan, a digest of the training split and one of ``run.model``'s weights)."""
    ratio = fraction("ratio", ratio, low_open=True, high_open=True)
    cfg = run.config
    lrs = retraining_lrs(cfg, "lr_rewind", cfg.epochs)
    masks = next_masks(run.model, None, "weight", ratio)
    ds = ds or run.dataset()

    def compute():
        result = retrain(run.model, masks, ds, cfg, "lr_rewind", cfg.epochs, quiet=quiet)
        return dict(result.model.state_dict()), {}

    spec = {"pretrained": cfg.key(), "conv_magnitude": ratio, "lrs": lrs, "train_data": data_digest(ds.train),
            "pretrained_weights": state_digest(run.model), "version": 1}
    state, _ = cached_result("pruned", spec, compute) if cache else compute()
    net = copy.deepcopy(run.model)
    net.load_state_dict(state)
    return masks, net.eval()


def small_config(cfg: TrainConfig, model: nn.Module, masks: Masks) -> TrainConfig:
    """Sec. 2.2.2's small network for ``model`` pruned by ``masks``: ``cfg``'s network (He initialisation) pruned at
    random at initialisation to as many prunable weights as the pruned network uses, trained from scratch for twice
    the pretraining's epochs with its schedule's shape stretched over them (this project's reading of the source's
    "400 epochs")."""
    return same_size_config(cfg, model, kept_conv_weights(model, masks), 2 * cfg.epochs)


def small_config_at(cfg: TrainConfig, ratio: float) -> TrainConfig:
    """:func:`small_config` for :func:`conv_pruned` at ``ratio``, known before the pretrained network is: one-shot
    pruning removes ``round(ratio * n)`` of the ``n`` conv weights whichever they are (``cfg``'s network is built,
    untrained, only to count its weights)."""
    ratio = fraction("ratio", ratio, low_open=True, high_open=True)
    model = build(cfg)
    n = sum(getattr(m, a).numel() for m, a in conv_parameters(model))
    return same_size_config(cfg, model, n - round(ratio * n), 2 * cfg.epochs)


@dataclass
class PrunedExperiment:
    """Sec. 2.2.2's networks for every seed: ``runs[seed]`` (the pretrained run), ``pruned[seed][ratio]`` ((masks,
    pruned and retrained network)), ``small[seed][ratio]`` (the small network) and ``table`` (:func:`pruned_table` of
    every seed)."""

    runs: dict[int, Run]
    pruned: dict[int, dict[float, tuple[Masks, nn.Module]]]
    small: dict[int, dict[float, nn.Module]]
    table: pd.DataFrame


def pruned_experiment(profile: str, seeds: Sequence[int], prune_ratios: Sequence[float] = PRUNE_RATIOS,
                      dataset: str | None = None,
                      device: str = "cpu", quiet: bool = True) -> PrunedExperiment:
    """Sec. 2.2.2 for each of ``seeds``: the pretrained ResNet20 of ``prunekit.studies.s002_utility.pretrain_config``, its conv
    weights pruned in one shot at each ratio and retrained (:func:`conv_pruned`, cached), and the small network of
    each ratio trained from scratch (:func:`small_config_at`), with their accuracies (:func:`pruned_table`)."""
    from ..core.store import train_or_load  # looked up at each call: tests replace it with a stand-in

    seeds = distinct("seeds", sequence("seeds", seeds, item=lambda n, v: count(n, v, low=0)))
    ratios = distinct("prune_ratios", sequence("prune_ratios", prune_ratios,
                                               item=lambda n, r: fraction(n, r, low_open=True, high_open=True)))
    device = device_name(device)
    from ..core.many import train_or_load_many

    cfgs = {seed: pretrain_config(profile, seed, dataset=dataset).replace(device=device) for seed in seeds}
    # the seeds' networks, then the small ones, each set trained together (bitwise as alone), loaded below
    train_or_load_many([*cfgs.values(), *(small_config_at(c, r) for c in cfgs.values() for r in ratios)], quiet=quiet)
    runs, pruned, small, tables = {}, {}, {}, []
    for seed in seeds:
        cfg = cfgs[seed]
        run = runs[seed] = train_or_load(cfg, quiet=quiet)
        ds = run.dataset()
        pruned[seed] = {r: conv_pruned(run, r, ds, quiet=quiet) for r in ratios}
        small[seed] = {r: train_or_load(small_config_at(cfg, r), quiet=quiet).model for r in ratios}
        tables.append(pruned_table(run.model, pruned[seed], small[seed], ds, cfg.loss, seed=seed))
    return PrunedExperiment(runs, pruned, small, pd.concat(tables, ignore_index=True))


def _kept_flat(model: nn.Module, masks: Masks) -> torch.Tensor:
    """Flat indices (over ``model``'s prunable weights) of the weights ``masks`` keep; unmasked layers whole."""
    params = prunable_parameters(model)
    keeps = [masks[n].reshape(-1) if n in masks else torch.ones(getattr(m, a).numel(), dtype=torch.bool)
             for n, (m, a) in zip(Masks.names(model, params), params)]
    return torch.nonzero(torch.cat(keeps).cpu()).flatten()


def pruned_comparison(pretrained: nn.Module, pruned: Mapping[float, tuple[Masks, nn.Module]],
                      small: Mapping[float, nn.Module], x: torch.Tensor, y: torch.Tensor, levels: Iterable[float],
                      n_subsets: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Random ablation of Sec. 2.2.2's networks for each pruning ratio ``r`` of ``pruned`` (``{r: (masks, pruned and
    retrained network)}``) and ``small`` (``{r: small network}``): ``"pretrained"`` ablates subsets of the weights
    above the pruning threshold (those ``masks`` keep), ``"pruned"`` and ``"small"`` subsets of their non-zero
    prunable weights; ``level`` is the fraction of that pool ablated. Returns ``(ablations, summary)``: one row per
    subset (``prune_ratio, network, pool_weights, level, subset, n_ablated, accuracy, utility``) and one row per
    (prune_ratio, network, level) with ``accuracy_mean/min/max, utility_mean, std`` (the source's imbalance),
    ``utility_max, n``."""
    levels = sequence("levels", levels, item=lambda name, v: fraction(name, v, low_open=True))
    if len(set(levels)) != len(levels):
        raise ValueError(f"levels={levels!r} must be distinct fractions in (0, 1], at least one")
    pruned, small = mapping("pruned", pruned), mapping("small", small, nonempty=False)
    n_subsets, seed = count("n_subsets", n_subsets), count("seed", seed, low=0)
    if set(small) - set(pruned):
        raise ValueError(f"small has pruning ratios {sorted(set(small) - set(pruned))} that pruned lacks")
    frames = []
    for ratio, (masks, net) in pruned.items():
        nets = {"pretrained": (pretrained, _kept_flat(pretrained, masks)),
                "pruned": (net, torch.nonzero(flat_weights(net)).flatten().cpu())}
        if ratio in small:
            nets["small"] = (small[ratio], torch.nonzero(flat_weights(small[ratio])).flatten().cpu())
        for name, (model, pool) in nets.items():
            df = random_ablation(model, x, y, ratios=levels, n_subsets=n_subsets, seed=seed, within=pool)
            frames.append(df.rename(columns={"ratio": "level"}).assign(
                level=np.repeat(levels, n_subsets), prune_ratio=float(ratio), network=name, pool_weights=len(pool)))
    ablations = pd.concat(frames, ignore_index=True)[["prune_ratio", "network", "pool_weights", "level", "subset",
                                                      "n_ablated", "accuracy", "utility"]]
    summary = (ablations.groupby(["prune_ratio", "network", "level"], sort=True)
               .agg(accuracy_mean=("accuracy", "mean"), accuracy_min=("accuracy", "min"),
                    accuracy_max=("accuracy", "max"), utility_mean=("utility", "mean"),
                    std=("utility", utility_std), utility_max=("utility", "max"), n=("utility", "size"))
               .reset_index())
    return ablations, summary


def pruned_table(pretrained: nn.Module, pruned: Mapping[float, tuple[Masks, nn.Module]],
                 small: Mapping[float, nn.Module], ds: Dataset, loss: str = "cross_entropy",
                 seed: int = 0) -> pd.DataFrame:
    """One row per network of Sec. 2.2.2 for one training ``seed``: ``seed``, ``prune_ratio`` (NaN for the pretrained
    one), ``network`` ("pretrained", "pruned": pruned and retrained, "small": from scratch), ``conv_weights`` in use,
    ``test_accuracy`` and ``train_accuracy``."""
    if not isinstance(pretrained, nn.Module):
        raise ValueError(f"pretrained must be an nn.Module, got {type(pretrained).__name__}")
    pruned, small = mapping("pruned", pruned), mapping("small", small, nonempty=False)
    choice("loss", loss, ("cross_entropy", "sse"))
    seed = count("seed", seed, low=0)
    total = sum(getattr(m, a).numel() for m, a in conv_parameters(pretrained))
    if total == 0:
        raise ValueError("pretrained has no conv weights: Sec. 2.2.2 prunes conv layers (a ResNet20 or a conv net)")
    nets = [(np.nan, "pretrained", pretrained, total)]
    for ratio, (masks, net) in pruned.items():
        nets.append((float(ratio), "pruned", net, kept_conv_weights(pretrained, masks)))
        if ratio in small:
            used = sum(int(torch.count_nonzero(getattr(m, a))) for m, a in conv_parameters(small[ratio]))
            nets.append((float(ratio), "small", small[ratio], used))
    rows = []
    for ratio, name, net, used in nets:
        rows.append({"seed": int(seed), "prune_ratio": ratio, "network": name, "conv_weights": used,
                     "conv_density": used / total,
                     "test_accuracy": evaluate(net, ds.test, loss)[1],
                     "train_accuracy": evaluate(net, ds.train, loss)[1]})
    return pd.DataFrame(rows)


def pruned_claims(table: pd.DataFrame | None, ablations: pd.DataFrame | None, *, level: float = 0.1,
                  ceiling_gap: float = 0.01, setup: str = "", ablation_seed: int | None = None) -> pd.DataFrame:
    """Sec. 2.2.2's two claims (``prunekit.report.claims`` format), from :func:`pruned_table` rows of one or more seeds
    (``seed`` column) and :func:`pruned_comparison`'s ablations (one row per subset), decided at every pruning ratio
    that has both a pruned and a small network:

    - a small network trained from scratch does not reach the pruned-and-retrained network's test accuracy (the
      source's premise, Sec. 2: "N small generally performs worse"): the t interval over seeds of (pruned - small)
      is above 0 at every ratio (holds), below 0 at one (does not hold), else cannot decide; "cannot decide at this
      scale" when at every ratio both are within ``ceiling_gap`` of each other and of the pretrained network;
    - the small network uses its weights less evenly: this project's reading of the source's *hypothesis* for that
      premise ("N small does not utilize all of its weights either", which the source states and does not measure),
      labelled as such; read on a scale-free measure, the coefficient of variation (std / mean) of the utilities
      at the level nearest ``level`` (raw standard deviations are not comparable across networks whose utilities
      differ in size); holds when the bootstrap interval of CV(small) - CV(pruned) is above 0 at every ratio, does
      not hold when it is below 0 at more than half of the ratios and above at none (a reading the source does not
      measure, tested at several ratios at once: one interval below 0 alone may be chance); a row of kind
      "extension", decided on the ablations of the networks of ``ablation_seed`` (None: the table's first seed).
    A table that cannot decide (missing columns, no ratio with both networks, a NaN, a duplicate row) gives "not
    measured here", with the reason.
    """
    fraction("level", level, low_open=True)
    fraction("ceiling_gap", ceiling_gap)
    if ablation_seed is not None:
        ablation_seed = count("ablation_seed", ablation_seed, low=0)

    names = ("A small network trained from scratch does not reach the pruned-and-retrained network's accuracy",
             "A small network trained from scratch uses its weights less evenly than a pruned-and-retrained one "
             "(this project's reading of the source's hypothesis)")
    reports = ("a network with as many weights as the pruned one, trained from scratch, performs worse",
               "main hypothesis: the small network performs worse because it does not utilise all of its weights")
    rules = ("95% t interval over seeds of (pruned - small) test accuracy > 0 at every pruning ratio; cannot decide "
             f"when both are within {100 * ceiling_gap:g} point of each other and of the pretrained network",
             f"95% bootstrap interval over subsets of CV(small) - CV(pruned) of the utilities at the level nearest "
             f"{level:g} > 0 at every pruning ratio holds, < 0 at more than half of them (and > 0 at none) does not "
             "(CV = std / mean: scale-free)")
    seeds = C.seed_list(table["seed"]) if table is not None and "seed" in table.columns and len(table) else ""
    if ablation_seed is None:
        ablation_seed = seeds.split(", ")[0] if seeds else ""
    context = [{"quote": QUOTES["small"].text, "quote_where": QUOTES["small"].location, "setup": setup,
                "seeds": seeds},
               {"quote": QUOTES["uneven"].text, "quote_where": QUOTES["uneven"].location, "setup": setup,
                "seeds": str(ablation_seed), "kind": "extension"}]
    rows = []
    values, why = _by_ratio(table, "test_accuracy")
    if values is None:
        rows.append(C.not_measured(SOURCE, names[0], reports[0], why, rules[0], **context[0]))
    else:
        pretrained = None
        if "network" in table.columns and (table["network"] == "pretrained").any():
            pretrained = float(pd.to_numeric(table.loc[table["network"] == "pretrained", "test_accuracy"],
                                             errors="coerce").mean())
        ivs = {r: mean_interval(w["pruned"] - w["small"]) for r, w in values.items()}
        measured = ("; ".join(f"{r:.0%} of conv weights pruned: {w['pruned'].mean():.2%} pruned and retrained, "
                              f"{w['small'].mean():.2%} small" for r, w in values.items())
                    + f" (test accuracy, mean over {C.plural(max(len(w) for w in values.values()), 'seed')}"
                    + (f"; pretrained {pretrained:.2%})." if pretrained is not None else ")."))
        interval = "; ".join(f"{r:.0%}: {iv.text('{:+.2f}', 100, ' points')}" for r, iv in ivs.items())
        top = pretrained if pretrained is not None else max(max(w["pruned"].mean(), w["small"].mean())
                                                            for w in values.values())
        at_ceiling = all(abs(w["pruned"].mean() - w["small"].mean()) <= ceiling_gap
                         and min(w["pruned"].mean(), w["small"].mean()) >= top - ceiling_gap
                         for w in values.values())
        if at_ceiling:
            rows.append(C.cannot_decide(SOURCE, names[0], reports[0], measured, f"at this scale both networks are "
                                        f"within {100 * ceiling_gap:g} point of each other and of the pretrained "
                                        f"network ({100 * top:.1f}%) at every ratio: this setup leaves no room for the "
                                        "gap the source reports", rules[0], **{**context[0], "interval": interval}))
        else:
            rows.append(C.decided(SOURCE, names[0], reports[0], measured, [side_of(iv, 0.0) for iv in ivs.values()],
                                  rules[0], interval=interval, intervals=list(ivs.values()), threshold=0.0,
                                  **context[0]))
    cols = ["prune_ratio", "network", "level", "subset", "utility"]
    if ablations is None or C.missing_columns(ablations, cols) or ablations.empty:
        why = C.lacking(C.missing_columns(ablations, cols) if ablations is not None else cols, "ablations")
        rows.append(C.not_measured(SOURCE, names[1], reports[1], why, rules[1], **context[1]))
        return C.claims_frame(rows)
    t = ablations[ablations["network"].isin(["pruned", "small"])]
    if t.empty or not np.isfinite(t[["prune_ratio", "level", "utility"]].to_numpy(dtype=float)).all():
        rows.append(C.not_measured(SOURCE, names[1], reports[1], "no finite utilities of a pruned and a small "
                                   "network", rules[1], **context[1]))
        return C.claims_frame(rows)
    nearest = t["level"].iloc[int((t["level"] - level).abs().to_numpy().argmin())]
    t = t[np.isclose(t["level"], nearest)]
    cv = {}
    for r, g in t.groupby("prune_ratio"):
        u = {n: h["utility"].to_numpy(dtype=float) for n, h in g.groupby("network")}
        if set(u) == {"pruned", "small"}:
            cv[float(r)] = u
    if not cv:
        rows.append(C.not_measured(SOURCE, names[1], reports[1], "no pruning ratio with utilities of both a pruned "
                                   "and a small network", rules[1], **context[1]))
        return C.claims_frame(rows)

    def cv_difference(small, pruned, axis=-1):
        return (np.std(small, axis=axis) / np.mean(small, axis=axis)
                - np.std(pruned, axis=axis) / np.mean(pruned, axis=axis))

    ivs = {r: bootstrap_interval([u["small"], u["pruned"]], cv_difference, what="bootstrap over subsets")
           for r, u in cv.items()}
    measured = (f"coefficient of variation of the utilities at level {nearest:g}: "
                + "; ".join(f"{r:.0%} pruned: {np.std(u['pruned']) / np.mean(u['pruned']):.3f} pruned and retrained, "
                            f"{np.std(u['small']) / np.mean(u['small']):.3f} small" for r, u in cv.items())
                + " (the source's raw standard deviations: "
                + "; ".join(f"{np.std(u['pruned']):.3g} and {np.std(u['small']):.3g}" for u in cv.values()) + ").")
    interval = "; ".join(f"{r:.0%}: {iv.text('{:+.3f}')}" for r, iv in ivs.items())
    rows.append(C.decided(SOURCE, names[1], reports[1], measured, [side_of(iv, 0.0) for iv in ivs.values()],
                          rules[1], interval=interval, intervals=list(ivs.values()), threshold=0.0,
                          refute="majority", **context[1]))
    return C.claims_frame(rows)


def _by_ratio(df: pd.DataFrame | None, column: str):
    """``({prune_ratio: seeds x ["pruned", "small"] table of column}, "")`` from ``df`` (one row per seed, ratio and
    network; a table without ``seed`` is one seed), or ``(None, why)`` when the table cannot give exactly one finite
    value of each at one ratio or more."""
    cols = ["prune_ratio", "network", column]
    if df is None or C.missing_columns(df, cols) or df.empty:
        return None, C.lacking(C.missing_columns(df, cols) if df is not None else cols, "accuracy table")
    t = df[df["network"].isin(["pruned", "small"])]
    t = t if "seed" in t.columns else t.assign(seed=0)
    if t.duplicated(["seed", "prune_ratio", "network"]).any():
        return None, "more than one row per seed, pruning ratio and network"
    if not np.isfinite(pd.to_numeric(t[column], errors="coerce").to_numpy(dtype=float)).all():
        return None, f"a {column} that is not a finite number"
    out = {}
    for r, g in t.groupby("prune_ratio"):
        wide = g.pivot(index="seed", columns="network", values=column).reindex(columns=["pruned", "small"]).dropna()
        if len(wide):
            out[float(r)] = wide.astype(float)
    if not out:
        return None, "no pruning ratio with both a pruned-and-retrained and a small network"
    return out, ""
