"""Iterative pruning cycles of the conv layers, by weights or by channels (source 002, section 3 and its Table 1).

Source 002 ("An Empirical Study of a Pruning Mechanism", ICLR 2021 submission, OpenReview doeyA2PBjdy) prunes a
pretrained ResNet20 over five cycles, each cycle retrained (by fine-tuning or learning-rate rewinding, as
``prunekit.pruning.retrain`` defines them) with the mask held:

- **weights** (Han et al. 2015): each cycle prunes ``rate`` (30%) of the *remaining* conv weights, the smallest
  ``|w|`` over all conv layers together;
- **channels** (Network Slimming, Liu et al. 2017, arXiv:1708.06519): each cycle prunes ``rate`` (20%) of the
  remaining prunable channels, the smallest ``|gamma|`` (the scale of the BatchNorm after the conv) over all of them.
  A channel is one unit: its conv filter, its BatchNorm scale and shift (held at 0, so the channel's output is exactly
  0) and, through that zero, the next layer's inputs from it. The prunable channels are those that feed exactly one
  next layer (:func:`slimmable_convs`). Each layer keeps at least its largest-``|gamma|`` channel: a global
  threshold could otherwise empty a layer and cut the network in two (prunekit's guard; the source states none).
  Network Slimming also trains with an L1 penalty on ``gamma``; the source names
  only the scale factors, and prunekit ranks the trained network's ``gamma`` as it is.

The pruned network of the last cycle (``W^p``, before its retraining), the retrained one (``W^r``) and the pretrained
one (``W*``) span the source's loss-surface plane (``prunekit.measures.surface.Plane.through``). A *small* network for
Table 1 has the pruned network's number of prunable weights, drawn at random at initialisation (He-rescaled,
``ModelConfig.init_density``), and trains for the pretraining plus every cycle's epochs with the same schedule shape
(:func:`small_config`: this project's reading of the source's "same total epochs and schedule").
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from ..core.checks import choice, count, distinct, fraction, sequence
from ..core.store import cached_result, data_digest, state_digest
from ..core.config import TrainConfig
from ..core.data import Dataset
from .masks import Masks
from .structure import channel_consumers, following_batchnorms
from ..core.prunable import prunable_parameters
from .scorers import bn_scale_scores, magnitude_scores
from .select import masks_for_count
from .retrain import pruned_model, retrain, retraining_lrs
from ..core.train import evaluate

__all__ = ["PRUNE_UNITS", "CYCLE_METHODS", "DEFAULT_RATES", "conv_parameters", "slimmable_convs", "next_masks",
           "kept_conv_weights", "check_plan", "IterativePruning", "iterative_pruning", "same_size_config",
           "small_config"]

PRUNE_UNITS = ("weight", "channel")
CYCLE_METHODS = ("finetune", "lr_rewind")  # the source's two retraining methods
DEFAULT_RATES = {"weight": 0.3, "channel": 0.2}  # share of what remains, pruned per cycle (the source's)


def conv_parameters(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """``[(conv, "weight"), ...]`` for every Conv2d of ``model``, in module order: what weight cycles prune."""
    return [(m, "weight") for m in model.modules() if isinstance(m, nn.Conv2d)]


def slimmable_convs(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """The conv layers whose output channels channel cycles prune: those whose channels feed exactly one next layer
    (``prunekit.pruning.structure.channel_consumers``: the model's own answer or its traced graph's; in a ResNet the
    first conv of each basic block, in prunekit's ConvNet every conv) through the BatchNorm whose scales rank them.
    A model with no such conv, or one of them without a BatchNorm after it, is refused (``ValueError``)."""
    params = [(conv, "weight") for conv, _ in channel_consumers(model)]
    if not params:
        raise ValueError(f"channel pruning works on conv nets whose channels each feed exactly one next layer (conv "
                         "-> BatchNorm -> activation or pooling -> conv, or flatten -> Linear); no conv of "
                         f"{type(model).__name__} does so in its traced forward (its output also feeds a residual sum, "
                         "a concatenation or several layers, or there is no conv): prune weights (unit='weight')")
    if any(bn is None for bn in following_batchnorms(model, params)):
        raise ValueError("channel pruning ranks channels by the scale of the BatchNorm after each conv: build the "
                         "model with batch_norm=True")
    return params


@torch.no_grad()
def next_masks(model: nn.Module, masks: Masks | None, unit: str, rate: float) -> Masks:
    """The masks of the next cycle: ``masks`` (None: nothing pruned yet) plus ``round(rate * remaining)`` more
    conv weights (smallest ``|w|``, all conv layers ranked together) or prunable channels (smallest ``|gamma|`` of
    the following BatchNorm, all of them ranked together; each layer keeps at least one). What was pruned stays
    pruned; ``masks`` must be of the same ``unit``."""
    choice("unit", unit, PRUNE_UNITS)
    rate = fraction("rate", rate, low_open=True, high_open=True)
    if unit == "weight":
        params = conv_parameters(model)
        scores = magnitude_scores(params)
    else:
        params = slimmable_convs(model)
        scores = bn_scale_scores(params, model=model)
    if masks is not None:  # pruned elements rank first, whatever their current value
        if masks.units != (unit == "channel"):
            raise ValueError(f"masks hold {'channel' if masks.units else 'weight'} masks but unit={unit!r}: pass "
                             f"the masks of earlier {unit} cycles (or None)")
        held = masks.for_params(model, params)
        held = held.units if unit == "channel" else held
        scores = [torch.where(keep.to(s.device), s, torch.full_like(s, -torch.inf)) for s, keep in zip(scores, held)]
    n = sum(s.numel() for s in scores)
    pruned = sum(int(torch.isneginf(s).sum()) for s in scores)
    count = pruned + round(rate * (n - pruned))
    if unit == "channel":  # each layer keeps its largest-|gamma| channel: a layer with none left cuts the network
        scores = [s if torch.isneginf(s).all() else s.clone().index_fill_(0, s.argmax().view(1), torch.inf)
                  for s in scores]
        count = min(count, n - sum(int(torch.isposinf(s).any()) for s in scores))
    new = masks_for_count(params, scores, count)
    return Masks.from_params(model, params, new)


def kept_conv_weights(model: nn.Module, masks: Masks) -> int:
    """Conv weights still in use under ``masks``: the kept ones, less (channel masks) a next conv's inputs from
    pruned channels, which see only zeros (a Linear after the last conv is not a conv layer: its inputs are not
    counted)."""
    convs = conv_parameters(model)
    if not masks.units:
        return sum(int(keep.sum()) for keep in masks.for_params(model, convs))
    consumers = channel_consumers(model)
    keeps = masks.for_params(model, [(conv, "weight") for conv, _ in consumers])
    used = {m: torch.ones_like(getattr(m, a), dtype=torch.bool) for m, a in convs}
    for (conv, following), channels in zip(consumers, keeps.units):
        used[conv][~channels] = False  # the pruned filters
        if following in used:  # and the next conv's weights that read them
            used[following][:, ~channels] = False
    return sum(int(u.sum()) for u in used.values())


def check_plan(units: Sequence[str], methods: Sequence[str], cycles: int | None = None) -> None:
    """Validate a notebook's plan before any compute: ``units`` among :data:`PRUNE_UNITS`, ``methods`` among
    :data:`CYCLE_METHODS` (both non-empty lists), ``cycles`` None or a positive integer."""
    for name, values, allowed in (("cycle_units", units, PRUNE_UNITS), ("cycle_methods", methods, CYCLE_METHODS)):
        try:
            values = sequence(name, values)
        except ValueError as err:
            raise ValueError(f"{err}: a non-empty list drawn from {list(allowed)}") from None
        for value in values:
            choice(name, value, allowed)
        distinct(name, values)
    if cycles is not None:
        count("cycles", cycles)


@dataclass
class IterativePruning:
    """Iterative pruning of a pretrained network: the last cycle's masks and networks, and one row per cycle."""

    unit: str  # "weight" or "channel"
    method: str  # "finetune" or "lr_rewind"
    rate: float  # share of what remained pruned per cycle
    epochs: int  # retraining epochs per cycle
    masks: Masks  # the last cycle's held masks (keyed by name, True = keep)
    pruned: nn.Module  # W^p: the last cycle's pruned network, before its retraining
    retrained: nn.Module  # W^r: after the last cycle's retraining
    table: pd.DataFrame  # per cycle: conv weights kept, accuracies of the pruned and the retrained network


def iterative_pruning(model: nn.Module, ds: Dataset, cfg: TrainConfig, unit: str = "weight",
                      method: str = "finetune", cycles: int = 5, rate: float | None = None,
                      epochs: int | None = None, finetune_lr: float | None = None,
                      quiet: bool = True, cache: bool = False) -> IterativePruning:
    """Prune ``model`` (pretrained with ``cfg``; not modified) over ``cycles`` cycles, retraining each by ``method``.

    unit: "weight" (rate 0.3 by default) or "channel" (0.2), see the module docstring; epochs: retraining epochs per
    cycle (default: the pretraining's ``T``, as the source retrains); finetune_lr: fine-tuning's fixed rate (default:
    the schedule's final one). Rows: ``cycle``, ``conv_weights`` (in use, :func:`kept_conv_weights`),
    ``conv_density`` (their share of all conv weights), ``channels_kept`` (share of prunable channels kept; channel
    cycles), then test and training accuracy of the pruned (``pruned_*``) and the retrained (``retrained_*``) network.
    cache: keep each cycle's masks, retrained weights and row in the result cache (``prunekit.core.store.cached_result``,
    kind ``"cycles"``), keyed by ``cfg.key()``, the plan, a digest of ``ds.train`` and a digest of ``model``'s weights
    (``prunekit.core.store.state_digest``), so a rerun loads them, an interrupted run resumes at its first missing
    cycle, and another model under the same config gets its own entries.
    """
    choice("unit", unit, PRUNE_UNITS)
    choice("method", method, CYCLE_METHODS)
    cycles = count("cycles", cycles)
    rate = DEFAULT_RATES[unit] if rate is None else fraction("rate", rate, low_open=True, high_open=True)
    lrs = retraining_lrs(cfg, method, epochs, finetune_lr=finetune_lr)  # validated before any compute
    if unit == "channel":
        slimmable_convs(model)
    total = sum(getattr(m, a).numel() for m, a in conv_parameters(model))
    plan = {"pretrained": cfg.key(), "unit": unit, "method": method, "rate": rate, "lrs": lrs, "version": 1}
    if cache:
        plan["train_data"] = data_digest(ds.train)  # the same model retrained on other data is another result
        plan["pretrained_weights"] = state_digest(model)  # another model under the same config is another result
    current, masks, rows = model, None, []
    for cycle in range(1, cycles + 1):
        def compute(current=current, masks=masks, cycle=cycle):
            new = next_masks(current, masks, unit, rate)
            result = retrain(current, new, ds, cfg, method, epochs, finetune_lr, quiet=quiet)
            row = _cycle_row(model, total, cycle, unit, method, new, pruned_model(current, new), result.model, ds, cfg)
            tensors = {**{f"mask.{n}": m for n, m in new.items()},
                       **{f"state.{n}": v for n, v in result.model.state_dict().items()}}
            return tensors, {"units": new.units, "row": row}
        tensors, info = (cached_result("cycles", {**plan, "cycle": cycle}, compute) if cache else compute())
        masks = Masks({n[5:]: m for n, m in tensors.items() if n.startswith("mask.")}, units=info["units"])
        pruned = pruned_model(current, masks)
        current = copy.deepcopy(model)
        current.load_state_dict({n[6:]: v for n, v in tensors.items() if n.startswith("state.")})
        current.eval()
        rows.append(info["row"])
    return IterativePruning(unit, method, rate, len(lrs), masks, pruned, current, pd.DataFrame(rows))


def _cycle_row(model, total, cycle, unit, method, masks, pruned, retrained, ds, cfg) -> dict:
    """One row of :func:`iterative_pruning`'s table."""
    kept = kept_conv_weights(model, masks)
    row = {"cycle": cycle, "unit": unit, "method": method, "conv_weights": kept, "conv_density": kept / total}
    if unit == "channel":
        units = masks.for_params(model, slimmable_convs(model)).units
        row["channels_kept"] = float(sum(int(u.sum()) for u in units)) / sum(u.numel() for u in units)
    for name, net in (("pruned", pruned), ("retrained", retrained)):
        row[f"{name}_test_accuracy"] = evaluate(net, ds.test, cfg.loss)[1]
        row[f"{name}_train_accuracy"] = evaluate(net, ds.train, cfg.loss)[1]
    return row


def same_size_config(cfg: TrainConfig, model: nn.Module, conv_weights: int, epochs: int) -> TrainConfig:
    """``cfg``'s network (He initialisation) pruned at random at initialisation to the share of prunable weights that
    ``model`` has when it uses ``conv_weights`` of its conv weights (and all its other prunable weights), trained for
    ``epochs`` epochs with ``cfg``'s schedule shape stretched over them: a small network of a pruned one's size."""
    params = prunable_parameters(model)
    total = sum(getattr(m, a).numel() for m, a in params)
    convs = sum(getattr(m, a).numel() for m, a in conv_parameters(model))
    conv_weights = count("conv_weights", conv_weights, low=1, high=convs)
    return cfg.replace(init="he", init_density=(total - convs + conv_weights) / total,
                       epochs=count("epochs", epochs), checkpoints=())


def small_config(cfg: TrainConfig, model: nn.Module, result: IterativePruning) -> TrainConfig:
    """Table 1's small network for ``result``: ``cfg``'s network (He initialisation) pruned at random at
    initialisation to the share of prunable weights the pruned network uses, trained for the pretraining's epochs
    plus every cycle's retraining epochs, with ``cfg``'s schedule shape stretched over them."""
    return same_size_config(cfg, model, int(result.table["conv_weights"].iloc[-1]),
                            cfg.epochs + len(result.table) * result.epochs)
