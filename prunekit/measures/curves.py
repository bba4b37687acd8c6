"""Pruning curves: accuracy after pruning k% by each method and scope, without retraining, evaluated in the cheapest
exact form; the per-layer sparsity reached; and measured inference speed-ups of the pruned forms (source 003).
"""

from __future__ import annotations

import time
from typing import Callable, Mapping, Sequence

import pandas as pd
import torch
from torch import nn

from ..core.timing import timeit
from ..core.checks import choice, count, distinct, percentage, sequence, text
from ..pruning.compaction import mlp_layout, compact_mlp, flop_count, to_sparse_csr
from ..pruning.masks import (
    Params,
    UnitMasks,
    check_params,
    check_unit_params,
    weight_of,
    mask_sparsity,
    masks_applied,
)
from ..pruning.select import (
    METHODS,
    SCOPES,
    Ranking,
    unit_ranking,
    weight_masks_from_keeps,
    weight_ranking,
    scores_ranking,
)
from ..core.data import Split, as_split
from ..core.prunable import checked_labels, weight_coverage
from ..pruning.scorers import SCORERS, scores_of
from .protocol import measure_params, older_positional
from ..core.device import model_device
from ..core.train import eval_mode, evaluate

__all__ = ["pruning_curve", "layer_sparsity_table", "inference_speedups"]


# ----------------------------------------------------------------------------------------------------------------
# pruning curves
# ----------------------------------------------------------------------------------------------------------------


def _ranking_for(params, method: str, scope: str, seed: int,
                 scores: Mapping[str, list]) -> tuple[Ranking, str]:
    """The ranking of one method and scope, and its granularity ("weight" or "unit"): a built-in method's own
    (:data:`prunekit.pruning.select.METHODS`), or the ranking of a scorer's ``scores``, computed once per method."""
    choice("scope", scope, SCOPES)
    if method in scores:
        ranking, units = scores_ranking(params, scores[method], scope)
        return ranking, "unit" if units else "weight"
    choice("method", method, tuple(METHODS))
    granularity, criterion = METHODS[method]
    g = torch.Generator().manual_seed(int(seed)) if criterion == "random" else None
    if granularity == "weight":
        return weight_ranking(params, scope, criterion, g), granularity
    return unit_ranking(params, scope, criterion, g), granularity


def _masks_for(params, granularity: str, ranking: Ranking, k: float):
    keeps = ranking.keeps(k)
    if granularity == "weight":
        return weight_masks_from_keeps(params, keeps)
    return UnitMasks.from_keeps(params, keeps)


def _is_compactable(model: nn.Module, params) -> bool:
    try:
        hidden, _, _ = mlp_layout(model)
    except ValueError:
        return False
    ids = {id(l) for l in hidden}
    return all(id(m) in ids and n == "weight" for m, n in params)


def _choices(name: str, values, allowed) -> list:
    """A non-empty list of distinct values of ``allowed`` (a ``ValueError`` naming ``name`` otherwise)."""
    return distinct(name, sequence(name, values, item=lambda n, v: choice(n, v, tuple(allowed))))


def check_ks(ks, name: str = "ks") -> list[float]:
    """``ks`` as a non-empty list of distinct percentages in [0, 100] (``prunekit.core.checks.percentage``: a k below
    1 is refused as a likely fraction), else a ``ValueError`` naming ``name``."""
    return distinct(name, sequence(name, ks, item=percentage))


def _k_value(k: float) -> int | float:
    """k as tables show it: an integer percentage when it is one (50, not 50.0)."""
    return int(k) if float(k).is_integer() else float(k)


@older_positional(older_order=("params", "data", "ks", "methods", "scopes", "seed"), renamed={"split": "data"})
def pruning_curve(model: nn.Module, data, *, ks: Sequence[float], params: Params | None = None,
                  methods: Sequence[str] = ("weight", "unit", "random_weight", "random_unit"),
                  scopes: Sequence[str] = ("layerwise", "global"), seed: int = 0,
                  loss: str = "cross_entropy", batch_size: int = 4096, form: str = "cheapest",
                  labels: dict | None = None, scorers: Mapping[str, Callable] | None = None):
    """Accuracy and loss of ``model`` on ``data`` pruned to each k% of ``ks`` (no retraining), as a tidy DataFrame.
    ``data``: ``(x, y)`` tensors, a Split, a prunekit Dataset (its test split) or an iterable of ``(x, y)`` batches.
    ``params``: the ``(module, "weight")`` pairs pruned (default: ``prunable_parameters``, the layer into the logits
    traced on ``data`` when the model names none). The older call ``pruning_curve(model, params, split, ks)`` works
    for one release, with a ``DeprecationWarning``.

    Labels of any integer dtype are class indices (float labels only as ``loss="sse"`` regression targets); labels
    outside ``[0, number of logits)``, NaN inputs, ``params`` of another model and unit methods on recurrent weights
    are refused before any point is evaluated.

    ``methods``: the built-in ones, "weight" (``|w|``), "unit" (the L2 norm of each unit's weights), "random_weight"
    and "random_unit" (one random permutation, drawn from ``seed``); or any scorer of
    ``prunekit.pruning.scorers.SCORERS`` by name ("magnitude", "l2", "bn_scale", the saliencies "first_order",
    "second_order", "second_order_exact", "brute_force", ...), pruning weights or units as its scores are
    weight-shaped or one per unit; ``scorers={name: scorer}`` adds scorers of your own (callables of the protocol
    ``scorer(params, *, model=None, data=None)``) under names of your choice, appended to ``methods``. A scorer is
    called once, on the unpruned model and ``data``, whatever the scopes; every scorer is called before any point is
    evaluated. ``scopes`` from {"layerwise", "global"}.

    Each (method, scope) is ranked once (one sort); the masks for every k are prefixes of that order (low scores
    pruned first, ties by index, as ``prunekit.pruning.select.masks_from_scores``). Each point is evaluated with
    ``prunekit.core.train.evaluate`` in its cheapest exact form (``form="cheapest"``): unit-pruned MLPs as the
    compacted dense net (``compact_mlp``), everything else as the masked dense net in place (``masks_applied``, weights
    restored afterwards, no deepcopy); points that prune nothing reuse the dense evaluation. With ``form="dense"``
    every point is evaluated as the masked dense net.

    Columns: the ``labels`` (e.g. dataset, arch, seed), method, scope, k, sparsity (measured fraction of zero prunable
    weights of the masked net), unit_sparsity (fraction of units pruned; whole zero rows for weight methods),
    effective_sparsity (fraction of prunable weights removed or dead: for unit pruning it also counts the next
    layer's columns of pruned units), accuracy (fraction), loss, form, seconds (evaluation time of the point).
    ``df.attrs["coverage"]``: the weights ranked, out of the model's parameters
    (``prunekit.core.prunable.weight_coverage``).
    """
    ks = check_ks(ks)
    scopes = _choices("scopes", scopes, SCOPES)
    scorers = dict(scorers or {})
    for name, fn in scorers.items():
        if name in METHODS or not callable(fn):
            raise ValueError(f"scorers[{name!r}] must be a callable under a name other than the built-in methods "
                             f"{', '.join(METHODS)}")
    allowed = (*METHODS, *(n for n in SCORERS.names() if n not in METHODS), *scorers)
    methods = distinct("methods", sequence("methods", methods, nonempty=not scorers,
                                           item=lambda n, v: choice(n, v, allowed)))
    methods = methods + [n for n in scorers if n not in methods]
    seed, batch_size = count("seed", seed, low=0), count("batch_size", batch_size)
    choice("form", form, ("cheapest", "dense"))
    choice("loss", loss, ("cross_entropy", "sse"))
    split = as_split(data, name="data")  # (x, y), a Split, a Dataset (its test split) or a DataLoader
    params = measure_params(model, split, params)
    if loss == "cross_entropy" or not split.y.is_floating_point():  # class labels (sse also takes float targets)
        split = Split(split.x, checked_labels(model, split.x, split.y, name="data"))
    scores = {}  # every scorer's scores, before any point is evaluated
    for method in methods:
        if method not in METHODS:
            scores[method] = scores_of(scorers.get(method, method), params, model=model, data=split)
    units = [m for m in methods if (METHODS[m][0] == "unit" if m in METHODS else
                                    scores_ranking(params, scores[m], scopes[0])[1])]
    if units:
        check_unit_params(params)  # recurrent weights have no units: refused before any point is evaluated
    compactable = _is_compactable(model, params)
    n_total = sum(weight_of(m, n).numel() for m, n in params)
    base_zero = [(weight_of(m, n) == 0) for m, n in params]
    dense_result = None
    rows = []
    for method in methods:
        for scope in scopes:
            ranking, granularity = _ranking_for(params, method, scope, seed, scores)
            for k in ks:
                masks = _masks_for(params, granularity, ranking, k)
                pruned_any = any(not bool(mk.all()) for mk in masks)
                zeros = sum(int(((~mk) | z).sum()) for mk, z in zip(masks, base_zero))
                rows_zero = [~mk.reshape(mk.shape[0], -1).any(dim=1) for mk in masks]
                unit_sp = sum(int(r.sum()) for r in rows_zero) / sum(r.numel() for r in rows_zero)
                t0 = time.perf_counter()
                if form == "cheapest" and not pruned_any and dense_result is not None:
                    lo, acc, how = dense_result[0], dense_result[1], "reused_dense"
                elif form == "cheapest" and granularity == "unit" and compactable:
                    small = compact_mlp(model, masks, params)
                    lo, acc = evaluate(small, split, loss=loss, batch_size=batch_size)
                    how = "compacted"
                else:
                    with masks_applied(params, masks, model=model):
                        lo, acc = evaluate(model, split, loss=loss, batch_size=batch_size)
                    how = "masked_dense"
                    if not pruned_any:
                        dense_result = (lo, acc)
                seconds = time.perf_counter() - t0
                eff = _effective_sparsity(model, params, masks, compactable) if granularity == "unit" \
                    else zeros / n_total
                rows.append({**(labels or {}), "method": method, "scope": scope, "k": _k_value(k),
                             "sparsity": zeros / n_total, "unit_sparsity": unit_sp, "effective_sparsity": eff,
                             "accuracy": float(acc), "loss": float(lo), "form": how, "seconds": seconds})
    df = pd.DataFrame(rows)
    df.attrs["coverage"] = weight_coverage(model, params)  # the weights ranked, out of the model's parameters
    return df


def _effective_sparsity(model, params, masks, compactable: bool) -> float:
    """Fraction of the prunable weights removed by unit pruning, counting the next prunable layer's input columns of
    pruned units (dead weights) as removed.  Falls back to the mask sparsity when the layout is unknown."""
    sizes = [mk.numel() for mk in masks]
    if not compactable or not isinstance(masks, UnitMasks):
        return sum(int((~mk).sum()) for mk in masks) / sum(sizes)
    hidden, _, _ = mlp_layout(model)
    keep_by = {id(m): kp for (m, _), kp in zip(params, masks.units)}
    alive = 0
    prev = None
    for lin in hidden:
        out_keep = keep_by.get(id(lin))
        rows = int(out_keep.sum()) if out_keep is not None else lin.weight.shape[0]
        cols = lin.weight.shape[1] if prev is None else prev
        if id(lin) in keep_by:
            alive += rows * cols
        prev = rows
    return 1.0 - alive / sum(sizes)


def layer_sparsity_table(params: Params, ks: Sequence[float],
                         methods: Sequence[str] = ("weight", "unit", "random_weight", "random_unit"),
                         scopes: Sequence[str] = ("layerwise", "global"), seed: int = 0,
                         layer_names: Sequence[str] | None = None, labels: dict | None = None):
    """Per-layer sparsity actually reached (fraction of zero weights with the masks applied), tidy DataFrame with
    columns labels..., method, scope, k, layer (index), layer_name, size, sparsity.  No evaluation, cheap."""
    ks = check_ks(ks)
    methods, scopes = _choices("methods", methods, METHODS), _choices("scopes", scopes, SCOPES)
    seed = count("seed", seed, low=0)
    params = check_params(params)
    names = [f"layer{i}" for i in range(len(params))] if layer_names is None else distinct(
        "layer_names", sequence("layer_names", layer_names, item=text))
    if len(names) != len(params):
        raise ValueError(f"layer_names={names!r} has {len(names)} names for {len(params)} params")
    rows = []
    for method in methods:
        for scope in scopes:
            ranking, granularity = _ranking_for(params, method, scope, seed, {})
            for k in ks:
                masks = _masks_for(params, granularity, ranking, k)
                _, per_layer = mask_sparsity(params, masks)
                for i, (sp, mk) in enumerate(zip(per_layer, masks)):
                    rows.append({**(labels or {}), "method": method, "scope": scope, "k": _k_value(k), "layer": i,
                                 "layer_name": names[i], "size": mk.numel(), "sparsity": sp})
    return pd.DataFrame(rows)


@older_positional(older_order=("params", "data", "ks", "forms", "scope", "repeat", "warmup", "labels"),
                  renamed={"x": "data"})
def inference_speedups(model: nn.Module, data, *, ks: Sequence[float], params: Params | None = None,
                       forms: Sequence[str] = ("masked_dense", "compacted", "csr"), scope: str = "layerwise",
                       repeat: int = 5, warmup: int = 1, labels: dict | None = None):
    """Measured inference time of ``model`` on one batch of inputs pruned to each k%, vs the dense net.

    data: the batch, a tensor of inputs ``x`` or any form of ``prunekit.core.data.as_split`` (its inputs); params:
    the pairs pruned (default ``prunekit.core.prunable.prunable_parameters``, traced on the batch). The older call
    ``inference_speedups(model, params, x, ks)`` works for one release, with a ``DeprecationWarning``.
    Forms: "masked_dense" (weight masks applied in place, same dense matmuls), "compacted" (unit pruning, smaller
    dense MLP), "csr" (weight pruning, ``to_sparse_csr``).  Columns: labels..., form, method, scope, k, batch_size,
    seconds (median), dense_seconds, speedup (dense / form), flop_ratio (dense MACs / MACs of the form: the ideal
    speed-up).  Uses ``prunekit.core.timing.timeit``.  A form slower than dense shows as speedup < 1.
    """
    ks = check_ks(ks)
    forms = _choices("forms", forms, ("masked_dense", "compacted", "csr"))
    choice("scope", scope, SCOPES)
    repeat, warmup = count("repeat", repeat), count("warmup", warmup, low=0)
    x = data if isinstance(data, torch.Tensor) else as_split(data, name="data").x
    params = measure_params(model, x, params)
    x = x.to(model_device(model))
    sync = (lambda: torch.cuda.synchronize(x.device)) if x.is_cuda else (lambda: None)  # time kernels, not launches
    with eval_mode(model):  # the model's train/eval mode is restored afterwards
        dense_flops = flop_count(model)

        def run(m):
            with torch.inference_mode():
                m(x)
            sync()

        dense_s = timeit(lambda: run(model), repeat=repeat, warmup=warmup)
        w_rank = weight_ranking(params, scope, "magnitude")
        u_rank = unit_ranking(params, scope, "l2")
        rows = []
        for k in ks:
            for form in forms:
                if form == "compacted":
                    if not _is_compactable(model, params):
                        continue
                    masks = UnitMasks.from_keeps(params, u_rank.keeps(k))
                    net = compact_mlp(model, masks, params)
                    method = "unit"
                    flops = flop_count(net)
                    s = timeit(lambda: run(net), repeat=repeat, warmup=warmup)
                elif form == "csr":
                    masks = weight_masks_from_keeps(params, w_rank.keeps(k))
                    net = to_sparse_csr(model, masks, params)
                    method = "weight"
                    flops = flop_count(net)
                    s = timeit(lambda: run(net), repeat=repeat, warmup=warmup)
                else:
                    masks = weight_masks_from_keeps(params, w_rank.keeps(k))
                    method = "weight"
                    with masks_applied(params, masks, model=model):
                        flops = flop_count(model)
                        s = timeit(lambda: run(model), repeat=repeat, warmup=warmup)
                rows.append({**(labels or {}), "form": form, "method": method, "scope": scope, "k": _k_value(k),
                             "batch_size": int(x.shape[0]), "seconds": s, "dense_seconds": dense_s,
                             "speedup": dense_s / s, "flop_ratio": dense_flops / max(flops, 1)})
    return pd.DataFrame(rows)


