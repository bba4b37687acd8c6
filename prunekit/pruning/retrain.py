"""Prune, then retrain with the mask held (source 002, section 3: the pruning-and-retraining phase).

A pretrained model is pruned by global magnitude (``prunekit.pruning.select.weight_masks(..., scope="global")``): k% of its
prunable weights, as everywhere in prunekit; the held masks are ``prunekit.pruning.masks.Masks`` (keyed by name). It is then
retrained with ``torch.nn.utils.prune`` masks attached (``prunekit.pruning.masks.to_torch_prune``: the pruned weights stay
exactly 0 through every step), in one of the three ways compared by Renda, Frankle & Carbin,
"Comparing Rewinding and Fine-tuning in Neural Network Pruning" (ICLR 2020, arXiv:2003.02389). With ``T`` the
original run's epochs, ``lr(e)`` the learning rate of its epoch ``e`` (1-based, :func:`prunekit.core.train.schedule_lrs`)
and ``t`` the retraining epochs:

- ``"finetune"``: from the pruned weights, ``t`` epochs at the original run's final learning rate ``lr(T)``;
- ``"lr_rewind"``: from the pruned weights, ``t`` epochs replaying the last ``t`` epochs of the original schedule,
  ``lr(T - t + 1), ..., lr(T)`` (so ``t <= T``);
- ``"weight_rewind"``: the unpruned weights reset to their values after epoch ``t_r`` (``rewind_epoch``) of the
  original run, then the original schedule replayed from there, ``lr(t_r + 1), ...``: ``T - t_r`` epochs by default
  (Frankle et al. 2020, lottery-ticket rewinding).

The retraining trajectory (plain weights, pruned entries 0, after each epoch; epoch 0 = the start of retraining) is
kept for the loss-surface plane (``prunekit.measures.surface``). The source does not fix the retraining method or its length:
these are parameters.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd
import torch
from torch import nn

from ..core.checks import choice, count, distinct, number, percentage, sequence
from ..core.config import TrainConfig
from ..core.data import Dataset, Split, as_split, train_part
from ..core.prunable import checked_labels
from ..core.initialisation import plain_state_dict
from ..core.weights import copy_model, folded_copy, storage
from .masks import Masks, apply_masks_, check_params, resolve, to_torch_prune
from ..core.prunable import prunable_parameters
from .scorers import scorer as resolve_scorer
from .scorers import scores_of
from .select import masks_from_scores
from ..core.train import evaluate, fit_model, fit_settings, schedule_lrs, train

__all__ = ["RETRAIN_METHODS", "Retrained", "retraining_lrs", "magnitude_masks", "pruned_model",
           "retrain", "prune_and_retrain", "distinct_methods", "retrain_table", "fine_tune"]

RETRAIN_METHODS = ("finetune", "lr_rewind", "weight_rewind")


@dataclass
class Retrained:
    """A pruned-and-retrained model with how it got there."""

    method: str
    model: nn.Module  # plain module (the mask made permanent: pruned weights are exactly 0)
    masks: Masks  # the held masks, keyed by parameter name, True = kept
    config: TrainConfig  # the retraining config
    history: pd.DataFrame  # one row per retraining epoch (prunekit.core.train.train); its "lr" column is lrs
    trajectory: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)  # epoch -> plain state_dict
    test_loss: float = float("nan")
    test_accuracy: float = float("nan")
    lrs: list[float] = field(default_factory=list)  # the learning rate of each retraining epoch
    same_as: str | None = None  # another method whose run this is: the same starting weights and learning rates


def magnitude_masks(model: nn.Module, k: float, scorer="magnitude", *, params=None,
                    example: torch.Tensor | None = None, data=None) -> Masks:
    """Global masks (``Masks``, keyed by name, True = keep) pruning the k% lowest-scored prunable weights
    (``round(k * n / 100)`` of them, ``prunekit.pruning.select.masks_from_scores(..., scope="global")``; ties by
    index); 0 <= k < 100. ``scorer``: a name of ``prunekit.pruning.scorers.SCORERS`` or a callable
    ``scorer(params, *, model=None, data=None)`` (``"magnitude"``, ``|w|``, by default), called on ``model`` and
    ``data``; a scorer with one score per unit prunes k% of the units (unit masks). params: the ``(module,
    "weight")`` pairs ranked (default ``prunable_parameters``, the layer into the logits traced on ``example`` inputs,
    or on ``data``'s, when the model names none)."""
    k = percentage("k", k, high_open=True)
    scorer = resolve_scorer(scorer)
    if params is not None:
        params = check_params(params, model)
    else:
        if example is None and data is not None:
            example = as_split(data, name="data", max_samples=2).x
        params = prunable_parameters(model, example=example)
    scores = scores_of(scorer, params, model=model, data=data)
    return Masks.from_params(model, params, masks_from_scores(params, scores, k, scope="global"))


def pruned_model(model: nn.Module, masks) -> nn.Module:
    """A copy of ``model`` with the masks applied permanently (the original is not touched; a parametrized weight is
    refused, ``prunekit.core.weights.storage``)."""
    out = copy_model(model)
    params = masks.params(out) if isinstance(masks, Masks) else prunable_parameters(out)  # a Masks: what it names
    apply_masks_(params, masks, model=out)
    return out


def retraining_lrs(cfg: TrainConfig, method: str, epochs: int | None = None, rewind_epoch: int | None = None,
                   finetune_lr: float | None = None) -> list[float]:
    """The learning rate of each retraining epoch for ``method``, from the original run's schedule (``cfg``).

    finetune: ``[lr(T)] * t`` (or ``finetune_lr``); lr_rewind: ``lr(T - t + 1..T)``; weight_rewind:
    ``lr(t_r + 1..t_r + t)``. ``t`` defaults to ``T`` (finetune, lr_rewind) or ``T - t_r`` (weight_rewind).
    """
    if method not in RETRAIN_METHODS:
        raise ValueError(f"method={method!r} is not supported; allowed: {', '.join(map(repr, RETRAIN_METHODS))}")
    original = schedule_lrs(cfg)
    total = len(original)
    if epochs is not None:
        epochs = count("epochs", epochs)  # 2.7, NaN, "3" or True: an error naming epochs, never a silent 2
    if finetune_lr is not None:
        number("finetune_lr", finetune_lr, low=0.0, low_open=True)
    if method == "weight_rewind":
        if rewind_epoch is None:
            raise ValueError(f"rewind_epoch=None: weight_rewind needs an epoch of the original run in [0, {total - 1}]")
        rewind_epoch = count("rewind_epoch", rewind_epoch, low=0, high=total - 1)
        epochs = total - rewind_epoch if epochs is None else epochs
        if not 1 <= epochs <= total - rewind_epoch:
            raise ValueError(f"epochs={epochs} must be in [1, {total - rewind_epoch}] for weight_rewind from epoch "
                             f"{rewind_epoch} of a {total}-epoch schedule (it replays epochs {rewind_epoch + 1}.."
                             f"{total})")
        return original[rewind_epoch:rewind_epoch + epochs]
    epochs = total if epochs is None else epochs
    if method == "lr_rewind":
        if not 1 <= epochs <= total:
            raise ValueError(f"epochs={epochs} must be in [1, {total}] for lr_rewind (it replays the last epochs of "
                             f"the {total}-epoch schedule)")
        return original[total - epochs:]
    if epochs < 1:
        raise ValueError(f"epochs={epochs} must be >= 1")
    lr = original[-1] if finetune_lr is None else float(finetune_lr)
    if not lr > 0:
        raise ValueError(f"finetune_lr={finetune_lr!r} must be > 0")
    return [lr] * epochs


def retrain(model: nn.Module, masks, ds: Dataset, cfg: TrainConfig, method: str, epochs: int | None = None,
            finetune_lr: float | None = None, rewind_state: dict | None = None, seed: int | None = None,
            quiet: bool = True, rewind_epoch: int | None = None) -> Retrained:
    """Retrain ``model`` (the pretrained, unpruned model; not modified) pruned by ``masks``, holding the mask.

    cfg: the pretraining config (its optimizer and schedule define the learning rates, :func:`retraining_lrs`);
    epochs: retraining epochs ``t`` (defaults above); finetune_lr: overrides fine-tuning's ``lr(T)``; rewind_state
    and rewind_epoch: the state_dict after epoch ``t_r`` of the original run and ``t_r`` (both required for
    "weight_rewind"); seed: shuffling seed (default ``cfg.seed``).
    """
    lrs = retraining_lrs(cfg, method, epochs, rewind_epoch, finetune_lr)  # validates before any copy or compute
    if seed is not None:
        seed = count("seed", seed, low=0)
    if method == "weight_rewind" and rewind_state is None:
        raise ValueError("method='weight_rewind' needs rewind_state (the state_dict after epoch rewind_epoch)")
    net = copy.deepcopy(model)
    if method == "weight_rewind":
        net.load_state_dict(plain_state_dict(rewind_state))
    overrides = {"epochs": len(lrs), "checkpoints": (), "patience": 0}  # every retraining epoch runs
    if seed is not None:
        overrides["seed"] = seed
    rcfg = cfg.replace(**overrides)

    params = masks.params(net) if isinstance(masks, Masks) else prunable_parameters(net)  # what the masks name
    masks = Masks.from_params(net, params, resolve(params, masks, net))  # a list or a Masks; checked before compute
    apply_masks_(params, masks, model=net)  # pruned entries of weight_orig start at 0 too
    to_torch_prune(params, masks, model=net)
    trajectory = {0: plain_state_dict(net.state_dict())}

    def record(epoch: int, m: nn.Module) -> None:
        trajectory[epoch] = plain_state_dict(m.state_dict())

    history, _ = train(net, ds, rcfg, quiet=quiet, callback=record, lrs=lrs)
    # the masks made permanent (w = w_orig * mask, unit masks' BatchNorm companions too) in a copy of the original
    # model, so parameters come in the original order (flat vectors of all models line up for prunekit.measures.surface)
    out = copy.deepcopy(model)
    out.load_state_dict(plain_state_dict(net.state_dict()))
    net = out.eval()
    loss, acc = evaluate(net, ds.test, cfg.loss)
    history.insert(0, "method", method)
    return Retrained(method, net, masks, rcfg, history, trajectory, loss, acc, lrs)


def prune_and_retrain(model: nn.Module, ds: Dataset, cfg: TrainConfig, k: float,
                      checkpoints: dict[int, dict] | None = None, methods=RETRAIN_METHODS,
                      epochs: int | None = None, finetune_lr: float | None = None, rewind_epoch: int = 1,
                      quiet: bool = True, *, scorer="magnitude") -> tuple[nn.Module, Masks, dict[str, Retrained]]:
    """Prune k% of ``model``'s prunable weights by global magnitude (or by ``scorer``, a name of
    ``prunekit.pruning.scorers.SCORERS`` or a callable of that protocol, scored on ``ds.train``:
    :func:`magnitude_masks`), then retrain it each way in ``methods``.

    checkpoints: the pretraining run's ``{epoch: state_dict}`` (``run.checkpoints``), needed for "weight_rewind",
    which resets to ``checkpoints[rewind_epoch]``. epochs: ``t`` for every method (None: each method's default, see
    :func:`retraining_lrs`). Returns ``(pruned model, masks, {method: Retrained})``.

    Two methods that start from the same weights with the same learning rates are one run (fine-tuning and
    learning-rate rewinding after a constant-rate pretraining): it is trained once, and the later method's entry is
    that run with ``same_as`` naming the first (:func:`distinct_methods`).
    """
    methods = distinct("methods", sequence("methods", methods, item=lambda n, v: choice(n, v, RETRAIN_METHODS)))
    rewind_epoch = count("rewind_epoch", rewind_epoch, low=0)
    scorer = resolve_scorer(scorer)
    for method in methods:  # every schedule checked before anything is pruned or trained
        retraining_lrs(cfg, method, epochs, rewind_epoch if method == "weight_rewind" else None, finetune_lr)
        if method == "weight_rewind" and (not checkpoints or rewind_epoch not in checkpoints):
            raise ValueError(f"rewind_epoch={rewind_epoch}: weight_rewind needs checkpoints[{rewind_epoch}]: train "
                             f"with TrainConfig(checkpoints=(0, {rewind_epoch}, ...)); have "
                             f"{sorted(checkpoints or {})}")
    masks = magnitude_masks(model, k, scorer, data=ds.train)
    pruned = pruned_model(model, masks)
    out, runs = {}, {}
    for method in methods:
        rewind = checkpoints[rewind_epoch] if method == "weight_rewind" else None
        at = rewind_epoch if method == "weight_rewind" else None
        run = ("rewound" if at is not None else "pruned", at,
               tuple(retraining_lrs(cfg, method, epochs, at, finetune_lr)))
        if run in runs:
            out[method] = dataclasses.replace(out[runs[run]], method=method, same_as=runs[run])
            continue
        runs[run] = method
        out[method] = retrain(model, masks, ds, cfg, method, epochs, finetune_lr, rewind, quiet=quiet,
                              rewind_epoch=at)
    return pruned, masks, out


def distinct_methods(results: dict[str, Retrained]) -> tuple[dict[str, Retrained], dict[str, str]]:
    """``(distinct, same_as)``: the results that are runs of their own, and ``{method: the method whose run it
    is}`` for the others."""
    same = {m: r.same_as for m, r in results.items() if r.same_as is not None}
    return {m: r for m, r in results.items() if m not in same}, same


def retrain_table(model: nn.Module, pruned: nn.Module, results: dict[str, Retrained], ds: Dataset,
                  loss: str = "cross_entropy") -> pd.DataFrame:
    """Test loss and accuracy of the pretrained, pruned and each retrained model (one row each)."""
    choice("loss", loss, ("cross_entropy", "sse"))
    rows = []
    for name, net in [("pretrained", model), ("pruned", pruned)] + [(k, r.model) for k, r in results.items()]:
        lo, acc = evaluate(net, ds.test, loss)
        tr_lo, tr_acc = evaluate(net, ds.train, loss)
        rows.append({"model": name, "test_loss": lo, "test_accuracy": acc, "train_loss": tr_lo,
                     "train_accuracy": tr_acc})
    return pd.DataFrame(rows)


def fine_tune(model: nn.Module, masks, data, *, params=None, lrs: Sequence[float] | None = None, optimizer=None,
              epochs: int | None = None,
              batch_size: int = 128, seed: int = 0, loss: str = "cross_entropy", output_fn=None,
              trajectory: bool = False, quiet: bool | None = None):
    """Retrain a copy of ``model`` pruned by ``masks`` on the reader's own schedule, the mask held at every step;
    ``model`` is not modified. Returns ``(retrained model, history)`` (and the trajectory when ``trajectory=True``:
    ``{epoch: plain state_dict}``, epoch 0 = pruned).

    masks: a ``Masks`` (keyed by name: the weights it names) or one keep-mask per entry of ``params`` (default
    ``prunable_parameters``). The schedule (``lrs`` per epoch and/or an ``optimizer`` factory with ``epochs``), data
    and ``output_fn``: as ``prunekit.core.train.fit_model``. The masks are held by ``torch.nn.utils.prune``
    (``to_torch_prune``, which refreshes attention ``out_proj`` weights too) and made permanent at the end: pruned
    weights are exactly 0, in a plain module whose parameters come in ``model``'s order.

    Held on every module that uses a masked tensor (tied weights: one Parameter in two modules). A model that already
    carries torch.nn.utils.prune masks keeps them through training too, and comes back with all of them made
    permanent (``torch.nn.utils.prune.remove``). A parametrized weight (weight_norm, spectral_norm) is refused before
    any compute: its originals cannot hold a masked weight (``prunekit.core.weights.storage`` says how to fold it).
    Labels of in-memory data (``(x, y)``, a Split, a Dataset) are checked as class labels and converted to int64.
    """
    fit_settings(lrs=lrs, optimizer=optimizer, epochs=epochs, batch_size=batch_size, seed=seed, loss=loss,
                 output_fn=output_fn)  # the schedule and options checked before any copy or compute
    if not isinstance(masks, Masks):  # named on the reader's model, checked before any copy or compute
        if params is None:
            params = prunable_parameters(model, example=as_split(data, name="data", max_samples=2).x,
                                         output_fn=output_fn)
        params = check_params(params, model)
        masks = Masks.from_params(model, params, resolve(params, masks, model))
    for module, name in masks.params(model):
        storage(module, name)  # a parametrized weight refused before any copy or compute
    data = _checked_data(model, data, loss, output_fn)
    net = copy_model(model)
    params = masks.params(net)
    apply_masks_(params, masks, model=net)
    to_torch_prune(params, masks, model=net)
    states = {0: plain_state_dict(net.state_dict())}

    def record(epoch: int, m: nn.Module) -> None:
        if trajectory:
            states[epoch] = plain_state_dict(m.state_dict())

    history = fit_model(net, data, lrs=lrs, optimizer=optimizer, epochs=epochs, batch_size=batch_size, seed=seed,
                        loss=loss, output_fn=output_fn, callback=record, quiet=quiet)
    out = folded_copy(model)  # the reader's own prune masks, if any, made permanent: a plain module
    out.load_state_dict(plain_state_dict(net.state_dict()))
    out.eval()
    return (out, history, states) if trajectory else (out, history)


def _checked_data(model: nn.Module, data, loss: str, output_fn):
    """In-memory training data (``(x, y)``, a Split, a Dataset's train split) with its class labels checked and
    converted (``prunekit.core.prunable.checked_labels``); other forms (a DataLoader) as they are."""
    part = train_part(data)
    if not (isinstance(part, Split) or (isinstance(part, (tuple, list)) and len(part) == 2
                                        and all(isinstance(t, torch.Tensor) for t in part))):
        return data
    split = as_split(part, name="data")
    if loss != "cross_entropy" and split.y.is_floating_point():  # regression targets (loss="sse")
        return split
    return Split(split.x, checked_labels(model, split.x, split.y, output_fn=output_fn))
