"""Source 002's networks of different sizes (Sec. 2.2 of "An Empirical Study of a Pruning Mechanism", ICLR 2021
submission, OpenReview doeyA2PBjdy), notebook 05.

- Sec. 2.2.1, **network size**: the 0.5x and 0.25x networks are the 1x network pruned at random at initialisation to
  that share of its weights, the kept weights rescaled to He's variance, trained with the mask held
  (:func:`pruned_at_init`); each is ablated by ratio of its own weights and by absolute number
  (:func:`size_comparison`, :func:`size_claims`).
- Sec. 2.2.2, **pruned networks**: the pretrained network with 25%, 50% or 75% of its conv weights pruned in one shot by
  global magnitude and retrained with the pretraining schedule (:func:`conv_pruned`), against a *small* network with as
  many weights trained from scratch for twice the epochs (:func:`from_scratch_config`); for the pretrained network
  only the weights above the pruning threshold are sampled into the ablated subsets (:func:`pruned_comparison`,
  :func:`pruned_table`, :func:`pruned_claims`).

The claims (:func:`size_claims`, :func:`pruned_claims`) are declared and decided in
``prunekit.studies.s002_size_verdicts``, and given here too.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..core.checks import choice, count, distinct, fraction, mapping, sequence
from ..core.config import TrainConfig, train_configs
from ..core.data import Dataset
from ..core.prunable import prunable_parameters
from ..core.store import Run, build, cached_result, data_digest, state_digest
from ..core.train import evaluate
from ..measures.imbalance import utility_std
from ..measures.utility import flat_weights, random_ablation
from ..pruning.cycles import conv_parameters, kept_conv_weights, next_masks, same_size_config
from ..pruning.masks import Masks
from ..pruning.retrain import retrain, retraining_lrs
from .s002_size_verdicts import QUOTES, pruned_claims, size_claims
from .s002_utility import pretrain_config

__all__ = ["PRUNE_RATIOS", "size_config", "pruned_at_init", "size_comparison", "size_claims", "conv_pruned",
           "from_scratch_config", "from_scratch_config_at", "PrunedExperiment", "pruned_experiment",
           "pruned_comparison", "pruned_table", "pruned_claims", "QUOTES"]

PRUNE_RATIOS = (0.25, 0.5, 0.75)  # Sec. 2.2.2's shares of the conv weights pruned in one shot


def pruned_at_init(cfg: TrainConfig, share: float) -> TrainConfig:
    """The networks of notebook 05's size comparison: ``cfg``'s network (the pretrained network,
    ``prunekit.studies.s002_utility.Network.config``) with He initialisation, pruned at initialisation to ``share`` of
    its weights (``ModelConfig.init_density``; 1.0 is the 1x network, for ResNet20 the pretrained network itself)."""
    if not isinstance(cfg, TrainConfig):
        raise ValueError(f"cfg={cfg!r} must be a TrainConfig (the pretrained network's)")
    share = fraction("share", share, low_open=True)
    return cfg.replace(init="he", init_density=share)


def size_config(profile: str, seed: int = 0, share: float = 1.0, network: str = "resnet20",
                dataset: str | None = None) -> TrainConfig:
    """:func:`pruned_at_init` of ``prunekit.studies.s002_utility.pretrain_config(profile, seed, network=network,
    dataset=dataset)``."""
    share = fraction("share", share, low_open=True)
    return pruned_at_init(pretrain_config(profile, seed, network=network, dataset=dataset), share)


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


def from_scratch_config(cfg: TrainConfig, model: nn.Module, masks: Masks) -> TrainConfig:
    """Sec. 2.2.2's small network for ``model`` pruned by ``masks``: ``cfg``'s network (He initialisation) pruned at
    random at initialisation to as many prunable weights as the pruned network uses, trained from scratch for twice
    the pretraining's epochs with its schedule's shape stretched over them (this project's reading of the source's
    "400 epochs")."""
    return same_size_config(cfg, model, kept_conv_weights(model, masks), 2 * cfg.epochs)


def from_scratch_config_at(cfg: TrainConfig, ratio: float) -> TrainConfig:
    """:func:`from_scratch_config` for :func:`conv_pruned` at ``ratio``, known before the pretrained network is: one-shot
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


def pruned_experiment(configs: Sequence[TrainConfig], prune_ratios: Sequence[float] = PRUNE_RATIOS,
                      quiet: bool = True) -> PrunedExperiment:
    """Sec. 2.2.2 for each pretrained network of ``configs`` (one per training seed, the seeds distinct: the ResNet20
    of ``prunekit.studies.s002_utility.Network.config`` on its device): its conv weights pruned in one shot at each
    ratio and retrained (:func:`conv_pruned`, cached), and the small network of each ratio trained from scratch
    (:func:`from_scratch_config_at`), with their accuracies (:func:`pruned_table`)."""
    from ..core.many import train_or_load_many
    from ..core.store import train_or_load  # looked up at each call: tests replace it with a stand-in

    configs = train_configs("configs", configs)
    seeds = [c.seed for c in configs]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"configs={configs!r} repeat a training seed ({seeds}): give one config per seed")
    ratios = distinct("prune_ratios", sequence("prune_ratios", prune_ratios,
                                               item=lambda n, r: fraction(n, r, low_open=True, high_open=True)))
    cfgs = dict(zip(seeds, configs))
    # the seeds' networks, then the small ones, each set trained together (bitwise as alone), loaded below
    train_or_load_many([*cfgs.values(), *(from_scratch_config_at(c, r) for c in cfgs.values() for r in ratios)],
                       quiet=quiet)
    runs, pruned, small, tables = {}, {}, {}, []
    for seed in seeds:
        cfg = cfgs[seed]
        run = runs[seed] = train_or_load(cfg, quiet=quiet)
        ds = run.dataset()
        pruned[seed] = {r: conv_pruned(run, r, ds, quiet=quiet) for r in ratios}
        small[seed] = {r: train_or_load(from_scratch_config_at(cfg, r), quiet=quiet).model for r in ratios}
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
