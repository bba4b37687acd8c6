"""Prune, then retrain with the mask held (source 002, section 3: the pruning-and-retraining phase).

A pretrained model is pruned by global magnitude (``prunekit.pruning.weight_masks(..., scope="global")``) to a target
sparsity, then retrained with ``torch.nn.utils.prune`` masks attached (``prunekit.pruning.to_torch_prune``: the
pruned weights stay exactly 0 through every step), in one of the three standard ways:

- ``"finetune"``: from the pruned weights, a small fixed learning rate (``finetune_lr``, default ``cfg.lr / 10``,
  schedule "none") (Han et al. 2015);
- ``"lr_rewind"``: from the pruned weights, the original learning rate and schedule replayed over the retraining
  epochs (Renda, Frankle & Carbin 2020);
- ``"weight_rewind"``: the surviving weights reset to an early checkpoint of the original run (``rewind_epoch``),
  then trained with the original learning rate and schedule (Frankle et al. 2020, lottery-ticket rewinding).

The retraining trajectory (plain weights, pruned entries 0, after each epoch; epoch 0 = the start of retraining) is
kept for the loss-surface plane (``prunekit.surface``). The source does not fix the retraining methods, epochs or
learning rates: these are parameters.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import pandas as pd
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from .config import TrainConfig
from .data import Dataset
from .models import prunable_parameters
from .pruning import apply_masks_, to_torch_prune, weight_masks
from .train import evaluate, train

__all__ = ["RETRAIN_METHODS", "Retrained", "magnitude_masks", "pruned_model", "plain_state_dict", "retrain",
           "prune_and_retrain", "retrain_table"]

RETRAIN_METHODS = ("finetune", "lr_rewind", "weight_rewind")


@dataclass
class Retrained:
    """A pruned-and-retrained model with how it got there."""

    method: str
    model: nn.Module  # plain module (the mask made permanent: pruned weights are exactly 0)
    masks: list[torch.Tensor]  # True = kept, aligned with prunable_parameters(model)
    config: TrainConfig  # the retraining config
    history: pd.DataFrame  # one row per retraining epoch (prunekit.train.train)
    trajectory: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)  # epoch -> plain state_dict
    test_loss: float = float("nan")
    test_accuracy: float = float("nan")


def _check_sparsity(sparsity: float) -> float:
    sparsity = float(sparsity)
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be a fraction in [0, 1), got {sparsity}")
    return sparsity


def magnitude_masks(model: nn.Module, sparsity: float) -> list[torch.Tensor]:
    """Global magnitude masks (True = keep) pruning the fraction ``sparsity`` of the prunable weights."""
    return weight_masks(prunable_parameters(model), 100.0 * _check_sparsity(sparsity), scope="global",
                        criterion="magnitude")


def pruned_model(model: nn.Module, masks) -> nn.Module:
    """A copy of ``model`` with the masks applied permanently (the original is not touched)."""
    out = copy.deepcopy(model)
    apply_masks_(prunable_parameters(out), masks, model=out)
    return out


def plain_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state_dict with ``torch.nn.utils.prune`` reparametrisations folded: ``w = w_orig * w_mask``."""
    out = {}
    for k, v in state.items():
        if k.endswith("_mask") and k[:-5] + "_orig" in state:
            continue
        if k.endswith("_orig") and k[:-5] + "_mask" in state:
            out[k[:-5]] = (v * state[k[:-5] + "_mask"]).detach().clone()
        else:
            out[k] = v.detach().clone()
    return out


def retrain(model: nn.Module, masks, ds: Dataset, cfg: TrainConfig, method: str, epochs: int | None = None,
            finetune_lr: float | None = None, rewind_state: dict | None = None, seed: int | None = None,
            quiet: bool = True) -> Retrained:
    """Retrain ``model`` (the pretrained, unpruned model; not modified) pruned by ``masks``, holding the mask.

    cfg: the pretraining config (its optimizer, lr and schedule are reused); epochs: retraining epochs (default
    ``cfg.epochs``); finetune_lr: the fixed rate of "finetune" (default ``cfg.lr / 10``); rewind_state: the early
    state_dict "weight_rewind" resets to (required for it); seed: shuffling seed (default ``cfg.seed``).
    """
    if method not in RETRAIN_METHODS:
        raise ValueError(f"method={method!r} is not supported; allowed: {', '.join(map(repr, RETRAIN_METHODS))}")
    epochs = cfg.epochs if epochs is None else int(epochs)
    if epochs < 1:
        raise ValueError(f"epochs={epochs} must be >= 1")
    net = copy.deepcopy(model)
    if method == "weight_rewind":
        if rewind_state is None:
            raise ValueError("method='weight_rewind' needs rewind_state (an early checkpoint's state_dict)")
        net.load_state_dict(plain_state_dict(rewind_state))
    overrides = {"epochs": epochs, "checkpoints": ()}
    if seed is not None:
        overrides["seed"] = int(seed)
    if method == "finetune":
        lr = cfg.lr / 10 if finetune_lr is None else float(finetune_lr)
        overrides.update(lr=lr, schedule="none")
    rcfg = cfg.replace(**overrides)

    params = prunable_parameters(net)
    apply_masks_(params, masks, model=net)  # pruned entries of weight_orig start at 0 too
    to_torch_prune(params, masks, model=net)
    trajectory = {0: plain_state_dict(net.state_dict())}

    def record(epoch: int, m: nn.Module) -> None:
        trajectory[epoch] = plain_state_dict(m.state_dict())

    history, _ = train(net, ds, rcfg, quiet=quiet, callback=record)
    for module, name in params:
        torch_prune.remove(module, name)
    # torch_prune.remove re-registers each weight after its bias: load into a copy of the original model instead,
    # so parameters come in the original order (flat vectors of all models line up for prunekit.surface)
    out = copy.deepcopy(model)
    out.load_state_dict(net.state_dict())
    net = out.eval()
    loss, acc = evaluate(net, ds.test, cfg.loss)
    history.insert(0, "method", method)
    return Retrained(method, net, [m.clone() for m in masks], rcfg, history, trajectory, loss, acc)


def prune_and_retrain(model: nn.Module, ds: Dataset, cfg: TrainConfig, sparsity: float,
                      checkpoints: dict[int, dict] | None = None, methods=RETRAIN_METHODS,
                      epochs: int | None = None, finetune_lr: float | None = None, rewind_epoch: int = 1,
                      quiet: bool = True) -> tuple[nn.Module, list[torch.Tensor], dict[str, Retrained]]:
    """Prune ``model`` by global magnitude to ``sparsity``, then retrain it each way in ``methods``.

    checkpoints: the pretraining run's ``{epoch: state_dict}`` (``run.checkpoints``), needed for "weight_rewind",
    which resets to ``checkpoints[rewind_epoch]``. Returns ``(pruned model, masks, {method: Retrained})``.
    """
    masks = magnitude_masks(model, sparsity)
    pruned = pruned_model(model, masks)
    out = {}
    for method in methods:
        rewind = None
        if method == "weight_rewind":
            if not checkpoints or rewind_epoch not in checkpoints:
                raise ValueError(f"weight_rewind needs checkpoints[{rewind_epoch}]: train with "
                                 f"TrainConfig(checkpoints=(0, {rewind_epoch}, ...)); have "
                                 f"{sorted(checkpoints or {})}")
            rewind = checkpoints[rewind_epoch]
        out[method] = retrain(model, masks, ds, cfg, method, epochs, finetune_lr, rewind, quiet=quiet)
    return pruned, masks, out


def retrain_table(model: nn.Module, pruned: nn.Module, results: dict[str, Retrained], ds: Dataset,
                  loss: str = "cross_entropy") -> pd.DataFrame:
    """Test loss and accuracy of the pretrained, pruned and each retrained model (one row each)."""
    rows = []
    for name, net in [("pretrained", model), ("pruned", pruned)] + [(k, r.model) for k, r in results.items()]:
        lo, acc = evaluate(net, ds.test, loss)
        tr_lo, tr_acc = evaluate(net, ds.train, loss)
        rows.append({"model": name, "test_loss": lo, "test_accuracy": acc, "train_loss": tr_lo,
                     "train_accuracy": tr_acc})
    return pd.DataFrame(rows)
