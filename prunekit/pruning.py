"""Pruning masks: compute them, apply them, hand them to torch, compact the pruned net (source 003).

Source 003 ("Sparsifying Neural Networks", the FOR.ai pruning challenge) prunes a trained ``ReLU(xW)`` network
without retraining in two ways, for a sparsity k%:

* **weight pruning** -- zero the k% of weights with the smallest ``|w|``;
* **unit pruning** -- zero the k% of units (output neurons; a *column* of W in the source's ``ReLU(xW)``, a *row* of
  PyTorch's ``[out, in]`` weight, an output channel of a conv layer) with the smallest L2 norm ``||W[j, :]||_2``.

The layer into the logits is never pruned (callers pass ``prunekit.models.prunable_parameters(model)``).

Conventions (as ``torch.nn.utils.prune``): masks are computed apart from where they are applied; a mask is a bool
tensor shaped like the weight, ``True`` = keep.  ``params`` is always a list of ``(module, "weight")`` pairs.

* Exact counts: k% of n elements prunes exactly ``round(k * n / 100)`` (Python's round, half to even, as torch's
  ``prune`` does for a float amount); k = 0 prunes nothing.  (The source's own code pruned one element too many.)
* Scopes: ``"layerwise"`` prunes k% of each layer; ``"global"`` ranks all prunable weights (or all units) together.
* Deterministic ties: elements are ordered by ``(score, flat index)`` with a stable sort, the flat index running over
  the layers in ``params`` order, each layer in row-major order.  Among equal scores the lower index is pruned first.
* Random baselines draw one permutation from a ``torch.Generator`` (seed 0 when none is given), so masks for growing
  k are nested, like the magnitude masks.
"""

from __future__ import annotations

import contextlib
import copy
import math
import numbers
import time
import warnings
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

__all__ = [
    "SCOPES",
    "WEIGHT_CRITERIA",
    "UNIT_CRITERIA",
    "METHODS",
    "UnitMasks",
    "weight_masks",
    "unit_masks",
    "global_magnitude_order",
    "masks_from_order",
    "masks_applied",
    "apply_masks_",
    "to_torch_prune",
    "masks_from_torch_prune",
    "sparsity",
    "layer_sparsity",
    "mask_sparsity",
    "following_batchnorms",
    "compact_mlp",
    "CSRLinear",
    "to_sparse_csr",
    "flop_count",
    "pruning_curve",
    "layer_sparsity_table",
    "inference_speedups",
    "SOURCE_PLATEAU",
    "plateau_summary",
    "plateau_report",
]

SCOPES = ("layerwise", "global")
WEIGHT_CRITERIA = ("magnitude", "random")
UNIT_CRITERIA = ("l2", "random")
# method name in pruning curves -> (granularity, criterion)
METHODS = {
    "weight": ("weight", "magnitude"),
    "unit": ("unit", "l2"),
    "random_weight": ("weight", "random"),
    "random_unit": ("unit", "random"),
}

Params = Sequence[tuple[nn.Module, str]]


class UnitMasks(list):
    """A list of weight-shaped bool masks (whole rows kept or pruned) that remembers it prunes *units*.

    ``units[i]`` is the 1-D keep vector of layer i (one entry per output neuron / channel).  Applying unit masks
    (``masks_applied``, ``apply_masks_``, ``to_torch_prune``) also zeroes the pruned units' bias entries and, when
    ``model`` is given, the weight and bias of the BatchNorm right after the layer, so that the unit's
    pre-activation is exactly 0 and its output is ``act(0)`` = 0 for ReLU and tanh.
    """

    def __init__(self, masks: Iterable[torch.Tensor], units: Iterable[torch.Tensor]):
        super().__init__(masks)
        self.units = list(units)


# ----------------------------------------------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------------------------------------------


def _check_k(k) -> float:
    if isinstance(k, bool) or not isinstance(k, numbers.Real):
        raise ValueError(f"k must be a number in [0, 100] (a percentage), got {k!r}")
    k = float(k)
    if math.isnan(k) or not 0.0 <= k <= 100.0:
        raise ValueError(f"k must be a percentage in [0, 100], got {k!r}")
    return k


def _count(k: float, n: int) -> int:
    """Number of elements pruned for k% of n: exactly round(k * n / 100)."""
    return min(n, int(round(k * n / 100.0)))


def _check_choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")


def _weight(module: nn.Module, name: str) -> torch.Tensor:
    """The effective weight (for a module under torch.nn.utils.prune: weight_orig * weight_mask)."""
    return getattr(module, name)


def _storage(module: nn.Module, name: str) -> torch.Tensor:
    """The tensor to write to in place (``<name>_orig`` when torch.nn.utils.prune is attached)."""
    orig = getattr(module, name + "_orig", None)
    return orig if orig is not None else getattr(module, name)


def _check_params(params) -> list[tuple[nn.Module, str]]:
    if isinstance(params, nn.Module):
        raise ValueError("params must be a list of (module, 'weight') pairs, e.g. "
                         "prunekit.models.prunable_parameters(model), not a module")
    try:
        params = list(params)
    except TypeError:
        raise ValueError(f"params must be a list of (module, 'weight') pairs, got {type(params).__name__}") from None
    if not params:
        raise ValueError("params is empty: there is nothing to prune (pass prunekit.models.prunable_parameters(model))")
    seen = set()
    for i, item in enumerate(params):
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], nn.Module)
                and isinstance(item[1], str)):
            raise ValueError(f"params[{i}] must be a (module, 'weight') pair, got {item!r}")
        module, name = item
        w = getattr(module, name, None)
        if not isinstance(w, torch.Tensor):
            raise ValueError(f"params[{i}]: {type(module).__name__} has no tensor attribute {name!r}")
        if w.dim() < 2:
            raise ValueError(f"params[{i}]: {type(module).__name__}.{name} has shape {tuple(w.shape)}; only weight "
                             "matrices / conv kernels (2-D or more) are prunable, not biases or norm parameters")
        if not w.is_floating_point():
            raise ValueError(f"params[{i}]: {type(module).__name__}.{name} is not a floating point tensor")
        key = (id(module), name)
        if key in seen:
            raise ValueError(f"params[{i}]: {type(module).__name__}.{name} appears twice in params")
        seen.add(key)
    return [(m, n) for m, n in params]


def _check_masks(params, masks) -> list[torch.Tensor]:
    if masks is None or isinstance(masks, torch.Tensor):
        raise ValueError("masks must be a list of bool tensors, one per entry of params")
    masks = list(masks)
    if len(masks) != len(params):
        raise ValueError(f"got {len(masks)} masks for {len(params)} params: need exactly one mask per parameter")
    for i, ((module, name), m) in enumerate(zip(params, masks)):
        w = _weight(module, name)
        if not isinstance(m, torch.Tensor):
            raise ValueError(f"masks[{i}] must be a bool tensor, got {type(m).__name__}")
        if m.dtype != torch.bool:
            raise ValueError(f"masks[{i}] must have dtype torch.bool (True = keep), got {m.dtype}")
        if tuple(m.shape) != tuple(w.shape):
            raise ValueError(f"masks[{i}] has shape {tuple(m.shape)} but {type(module).__name__}.{name} has shape "
                             f"{tuple(w.shape)}: a mask must have the shape of its weight")
    return masks


def _unit_keeps(masks) -> list[torch.Tensor] | None:
    return list(masks.units) if isinstance(masks, UnitMasks) else None


# ----------------------------------------------------------------------------------------------------------------
# rankings: sort once, masks for any k cheaply
# ----------------------------------------------------------------------------------------------------------------


def _stable_order(scores: torch.Tensor) -> torch.Tensor:
    """Indices sorting ``scores`` ascending, ties by index (the order of (score, index) pairs).

    Non-negative float32 scores (|w|, norms) sort as integers: their bit patterns are order-preserving, so the
    unique int64 key ``bits << 32 | index`` gives the same order as a stable sort, about 2x faster.
    """
    if scores.dtype == torch.float32 and scores.numel() < 2**31 and bool((scores >= 0).all()):
        key = (scores.view(torch.int32).to(torch.int64) << 32) | torch.arange(scores.numel())
        return torch.sort(key).indices
    return torch.sort(scores, stable=True).indices


def _generator(generator: torch.Generator | None) -> torch.Generator:
    if generator is None:
        return torch.Generator().manual_seed(0)
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    return generator


@dataclass
class _Ranking:
    """Pruning order over the elements (weights or units) of several layers.

    ``orders`` are ascending-score index tensors: one per layer (layerwise) or one over the concatenation (global).
    ``ranks`` (computed once, lazily) are their inverse permutations: element i is pruned at count c iff
    ``rank[i] < c``, so a mask for any k is one comparison instead of a scatter.
    """

    sizes: list[int]
    scope: str
    orders: list[torch.Tensor]
    _ranks: list[torch.Tensor] | None = None

    @property
    def ranks(self) -> list[torch.Tensor]:
        if self._ranks is None:
            self._ranks = []
            for order in self.orders:
                rank = torch.empty_like(order)
                rank[order] = torch.arange(order.numel())
                self._ranks.append(rank)
        return self._ranks

    def counts(self, k: float) -> list[int]:
        """Elements pruned per layer at k%."""
        k = _check_k(k)
        if self.scope == "layerwise":
            return [_count(k, n) for n in self.sizes]
        keep = self.keeps(k)
        return [int((~kp).sum()) for kp in keep]

    def keeps(self, k: float) -> list[torch.Tensor]:
        """Flat 1-D keep vectors (True = keep), one per layer, for k%."""
        k = _check_k(k)
        if self.scope == "layerwise":
            return [rank >= _count(k, n) for n, rank in zip(self.sizes, self.ranks)]
        return self.keeps_for_count(_count(k, sum(self.sizes)))

    def keeps_for_count(self, m: int) -> list[torch.Tensor]:
        """Global scope only: keep vectors pruning exactly the m first elements of the order."""
        return list(torch.split(self.ranks[0] >= m, self.sizes))


def _rank(scores: list[torch.Tensor], scope: str, random: bool, generator) -> _Ranking:
    sizes = [int(s.numel()) for s in scores]
    if random:
        g = _generator(generator)
        if scope == "layerwise":
            orders = [torch.randperm(n, generator=g) for n in sizes]
        else:
            orders = [torch.randperm(sum(sizes), generator=g)]
    elif scope == "layerwise":
        orders = [_stable_order(s) for s in scores]
    else:
        orders = [_stable_order(torch.cat(scores))]
    return _Ranking(sizes, scope, orders)


@torch.no_grad()
def _weight_ranking(params, scope: str, criterion: str, generator=None) -> _Ranking:
    params = _check_params(params)
    _check_choice("scope", scope, SCOPES)
    _check_choice("criterion", criterion, WEIGHT_CRITERIA)
    scores = [_weight(m, n).detach().reshape(-1).abs().float().cpu() for m, n in params]
    return _rank(scores, scope, criterion == "random", generator)


@torch.no_grad()
def _unit_ranking(params, scope: str, criterion: str, generator=None) -> _Ranking:
    params = _check_params(params)
    _check_choice("scope", scope, SCOPES)
    _check_choice("criterion", criterion, UNIT_CRITERIA)
    scores = [_weight(m, n).detach().flatten(1).float().cpu().norm(p=2, dim=1) for m, n in params]
    return _rank(scores, scope, criterion == "random", generator)


def _weight_masks_from_keeps(params, keeps) -> list[torch.Tensor]:
    return [kp.view(_weight(m, n).shape).to(_weight(m, n).device) for (m, n), kp in zip(params, keeps)]


def _unit_masks_from_keeps(params, keeps) -> UnitMasks:
    masks = []
    units = []
    for (m, n), kp in zip(params, keeps):
        w = _weight(m, n)
        kp = kp.to(w.device)
        units.append(kp)
        masks.append(kp.view(-1, *([1] * (w.dim() - 1))).expand(w.shape).clone())
    return UnitMasks(masks, units)


# ----------------------------------------------------------------------------------------------------------------
# public mask constructors
# ----------------------------------------------------------------------------------------------------------------


def weight_masks(params: Params, k: float, scope: str = "layerwise", criterion: str = "magnitude",
                 generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """Weight-pruning masks: prune the k% of weights with the smallest ``|w|`` (or random ones).

    ``scope="layerwise"``: round(k * n_l / 100) weights of each layer l; ``"global"``: round(k * N / 100) of all
    N prunable weights ranked together.  Ties: by (|w|, flat index).  Returns weight-shaped bool masks, True = keep.
    """
    ranking = _weight_ranking(params, scope, criterion, generator)
    params = _check_params(params)
    return _weight_masks_from_keeps(params, ranking.keeps(k))


def unit_masks(params: Params, k: float, scope: str = "layerwise", criterion: str = "l2",
               generator: torch.Generator | None = None) -> UnitMasks:
    """Unit-pruning masks: prune the k% of units with the smallest L2 norm ``||W[j]||_2`` (or random ones).

    A unit is an output neuron (row of ``W[out, in]``; the source's column of W in ``ReLU(xW)``) or an output
    channel of a conv layer.  ``"layerwise"``: round(k * u_l / 100) units of each layer; ``"global"``:
    round(k * U / 100) of all U units ranked together.  Returns a ``UnitMasks`` (a list of weight-shaped bool masks
    with whole rows False; ``.units`` holds the per-layer 1-D keep vectors).  Applying it zeroes the rows, the
    matching bias entries and (given ``model``) the BatchNorm weight and bias after the layer, so the unit's output
    is exactly 0 for ReLU/tanh nets.
    """
    ranking = _unit_ranking(params, scope, criterion, generator)
    params = _check_params(params)
    return _unit_masks_from_keeps(params, ranking.keeps(k))


def global_magnitude_order(params: Params) -> torch.Tensor:
    """Flat indices into the concatenation of all prunable weights (``params`` order, each flattened row-major),
    ascending ``|w|``, ties by index.  ``masks_from_order(params, order, m)`` prunes the m smallest for any m."""
    return _weight_ranking(params, "global", "magnitude").orders[0]


def masks_from_order(params: Params, order: torch.Tensor, count: int) -> list[torch.Tensor]:
    """Masks pruning the first ``count`` weights of ``order`` (flat indices over the concatenated params)."""
    params = _check_params(params)
    sizes = [int(_weight(m, n).numel()) for m, n in params]
    total = sum(sizes)
    if not isinstance(order, torch.Tensor) or order.dim() != 1 or order.numel() != total:
        raise ValueError(f"order must be a 1-D index tensor over all {total} prunable weights "
                         "(see global_magnitude_order)")
    if isinstance(count, bool) or not isinstance(count, numbers.Integral) or not 0 <= count <= total:
        raise ValueError(f"count must be an integer in [0, {total}], got {count!r}")
    ranking = _Ranking(sizes, "global", [order])
    return _weight_masks_from_keeps(params, ranking.keeps_for_count(int(count)))


# ----------------------------------------------------------------------------------------------------------------
# applying masks
# ----------------------------------------------------------------------------------------------------------------


_BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def following_batchnorms(model: nn.Module, params: Params) -> list[nn.Module | None]:
    """For each prunable layer, the BatchNorm that directly follows it in ``model`` (or None).

    "Directly follows" = the next leaf module in registration order is a BatchNorm with as many features as the
    layer has output units (the conv -> BN -> ReLU pattern of prunekit's ConvNet and ResNet blocks).
    """
    leaves = [m for m in model.modules() if not list(m.children())]
    position = {id(m): i for i, m in enumerate(leaves)}
    out = []
    for module, name in params:
        i = position.get(id(module))
        bn = leaves[i + 1] if i is not None and i + 1 < len(leaves) else None
        units = _weight(module, name).shape[0]
        out.append(bn if isinstance(bn, _BN_TYPES) and bn.num_features == units else None)
    return out


def _unit_companions(params, masks, model) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(tensor, 1-D keep) pairs that unit masks also zero: biases and following BatchNorm weight/bias."""
    keeps = _unit_keeps(masks)
    if keeps is None:
        return []
    if model is None and any(isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) for m, _ in params):
        raise ValueError("unit masks on conv layers need model= so the BatchNorm after each conv can be zeroed too "
                         "(otherwise the pruned channel's output is BN's shift, not 0)")
    out = []
    bns = following_batchnorms(model, params) if model is not None else [None] * len(params)
    for (module, _), keep, bn in zip(params, keeps, bns):
        for owner, attr in ((module, "bias"), (bn, "weight"), (bn, "bias")):
            if owner is None:
                continue
            t = getattr(owner, attr + "_orig", None)
            t = t if t is not None else getattr(owner, attr, None)
            if isinstance(t, torch.Tensor) and t.shape[:1] == keep.shape:
                out.append((t, keep.to(t.device)))
    return out


@contextlib.contextmanager
def masks_applied(params: Params, masks, model: nn.Module | None = None) -> Iterator[None]:
    """Zero the masked weights in place for the duration of the block, then restore them bitwise.

    Cheap (one copy of each pruned tensor, no deepcopy of the model), for evaluation sweeps::

        with masks_applied(params, weight_masks(params, 90)):
            loss, acc = evaluate(model, ds.test)

    Unit masks (``UnitMasks``) also zero the pruned units' biases and, with ``model``, the following BatchNorm's
    weight and bias (see ``UnitMasks``).  Do not train inside the block (use ``to_torch_prune`` for that).
    """
    params = _check_params(params)
    mask_list = _check_masks(params, masks)
    targets = [(_storage(m, n), ~mk) for (m, n), mk in zip(params, mask_list)]
    targets += [(t, ~kp) for t, kp in _unit_companions(params, masks, model)]
    saved = []
    with torch.no_grad():
        try:
            for t, pruned in targets:
                saved.append((t, t.detach().clone()))
                t.masked_fill_(pruned, 0.0)
            yield
        finally:
            for t, orig in saved:
                t.copy_(orig)


@torch.no_grad()
def apply_masks_(params: Params, masks, model: nn.Module | None = None) -> None:
    """Zero the masked weights in place, permanently (unit masks: biases and following BatchNorm too)."""
    params = _check_params(params)
    mask_list = _check_masks(params, masks)
    for (m, n), mk in zip(params, mask_list):
        _storage(m, n).masked_fill_(~mk, 0.0)
    for t, kp in _unit_companions(params, masks, model):
        t.masked_fill_(~kp, 0.0)


def to_torch_prune(params: Params, masks, model: nn.Module | None = None) -> None:
    """Attach the masks with ``torch.nn.utils.prune.custom_from_mask`` so retraining keeps them (weight_orig,
    weight_mask, forward pre-hook).  Unit masks also mask the bias and the following BatchNorm (given ``model``).
    Undo with ``torch.nn.utils.prune.remove(module, "weight")`` (makes the zeros permanent)."""
    params = _check_params(params)
    mask_list = _check_masks(params, masks)
    for (m, n), mk in zip(params, mask_list):
        torch_prune.custom_from_mask(m, n, mk.to(_weight(m, n).device))
    if _unit_keeps(masks) is not None:
        if model is None and any(isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) for m, _ in params):
            raise ValueError("unit masks on conv layers need model= so the BatchNorm after each conv is masked too")
        bns = following_batchnorms(model, params) if model is not None else [None] * len(params)
        for (module, _), keep, bn in zip(params, masks.units, bns):
            for owner, attr in ((module, "bias"), (bn, "weight"), (bn, "bias")):
                if owner is not None and isinstance(getattr(owner, attr, None), torch.Tensor):
                    torch_prune.custom_from_mask(owner, attr, keep.to(getattr(owner, attr).device))


def masks_from_torch_prune(params: Params) -> list[torch.Tensor]:
    """The bool masks (True = keep) that torch.nn.utils.prune holds on each ``(module, "weight")``."""
    params = _check_params(params)
    out = []
    for i, (m, n) in enumerate(params):
        mk = getattr(m, n + "_mask", None)
        if not isinstance(mk, torch.Tensor):
            raise ValueError(f"params[{i}]: {type(m).__name__}.{n} has no torch.nn.utils.prune mask "
                             f"(no {n}_mask buffer); attach one with to_torch_prune or torch.nn.utils.prune first")
        out.append(mk.detach().bool().clone())
    return out


@torch.no_grad()
def sparsity(params: Params) -> float:
    """Measured fraction of exactly-zero entries over all weights in ``params`` (effective weights)."""
    params = _check_params(params)
    zeros = sum(int((_weight(m, n) == 0).sum()) for m, n in params)
    total = sum(_weight(m, n).numel() for m, n in params)
    return zeros / total


@torch.no_grad()
def layer_sparsity(params: Params) -> list[float]:
    """Measured fraction of exactly-zero entries of each weight in ``params``."""
    params = _check_params(params)
    return [float((_weight(m, n) == 0).float().mean()) for m, n in params]


@torch.no_grad()
def mask_sparsity(params: Params, masks) -> tuple[float, list[float]]:
    """(overall, per-layer) fraction of zeros the weights would have with ``masks`` applied, without applying them
    (counts pruned entries and entries that are already 0)."""
    params = _check_params(params)
    mask_list = _check_masks(params, masks)
    zeros = [int(((~mk) | (_weight(m, n) == 0)).sum()) for (m, n), mk in zip(params, mask_list)]
    sizes = [mk.numel() for mk in mask_list]
    return sum(zeros) / sum(sizes), [z / s for z, s in zip(zeros, sizes)]


# ----------------------------------------------------------------------------------------------------------------
# compaction and sparse formats
# ----------------------------------------------------------------------------------------------------------------


def _structural_copy(model: nn.Module, replace: dict[int, nn.Module]) -> nn.Module:
    """A copy of ``model`` whose modules listed in ``replace`` (by id) are swapped for the given ones.

    No tensor data is copied: every parameter and buffer of the modules kept is shared with ``model`` (they are
    pre-seeded in deepcopy's memo), so only the module objects are new.  Attributes such as ``hidden_layers`` that
    list modules point at the replacements.
    """
    memo: dict[int, object] = dict(replace)
    for t in list(model.parameters()) + list(model.buffers()):
        memo[id(t)] = t
    return copy.deepcopy(model, memo)


def _dense_linear(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    """nn.Linear holding the given tensors (built on the meta device: no wasted random init)."""
    with warnings.catch_warnings():  # a fully pruned layer has zero units: "Initializing zero-element tensors"
        warnings.simplefilter("ignore", UserWarning)
        lin = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device="meta")
    lin.weight = nn.Parameter(weight.contiguous(), requires_grad=False)
    if bias is not None:
        lin.bias = nn.Parameter(bias.contiguous(), requires_grad=False)
    return lin


def _mlp_layout(model: nn.Module) -> tuple[list[nn.Linear], nn.Linear, list[list[nn.Module]]]:
    """Hidden linears, output linear and, per hidden linear, the elementwise modules applied after it."""
    if not (isinstance(model, nn.Sequential) and hasattr(model, "hidden_layers") and hasattr(model, "output")):
        raise ValueError("compaction needs a prunekit.models.MLP (nn.Sequential of Flatten, Linear, Act, ..., Linear "
                         f"with .hidden_layers and .output), got {type(model).__name__}")
    hidden = list(model.hidden_layers)
    children = list(model.children())
    linears = [c for c in children if isinstance(c, nn.Linear)]
    if linears != hidden + [model.output]:
        raise ValueError("the model's nn.Linear children must be its hidden_layers followed by its output layer")
    after = []
    for i, lin in enumerate(hidden):
        j = next(idx for idx, c in enumerate(children) if c is lin)
        nxt = next(idx for idx, c in enumerate(children) if c is linears[i + 1])
        after.append(children[j + 1: nxt])
    return hidden, model.output, after


@torch.no_grad()
def compact_mlp(model: nn.Module, masks, params: Params | None = None) -> nn.Module:
    """Rebuild a pruned MLP as a smaller dense MLP with the same outputs (up to float rounding).

    A hidden unit whose whole row is masked is removed: its row of ``W_l`` (and bias entry) and the matching column
    of ``W_{l+1}`` are dropped.  Its output was the constant ``act(pre)`` with ``pre = 0`` for unit masks (bias
    pruned too) or ``pre = b_j`` for weight masks; a non-zero constant (e.g. sigmoid(0) = 0.5) is folded into the
    next layer's bias, so the compact net equals ``masks_applied(params, masks)`` on the original.  Weights masked
    inside kept rows stay as zeros.  ``params`` defaults to ``model.hidden_layers`` weights (= prunable_parameters).
    The original model is not modified; weights are new tensors (index_select), not shared.
    """
    hidden, output, after = _mlp_layout(model)
    if params is None:
        params = [(lin, "weight") for lin in hidden]
    params = _check_params(params)
    mask_list = _check_masks(params, masks)
    unit = isinstance(masks, UnitMasks)
    by_module = {id(m): mk for (m, n), mk in zip(params, mask_list)}
    allowed = {id(l) for l in hidden} | {id(output)}
    for m, n in params:
        if id(m) not in allowed or n != "weight":
            raise ValueError("compact_mlp: every param must be the weight of a hidden or output Linear of the model")

    replace: dict[int, nn.Module] = {}
    in_keep = None  # kept input columns of the current layer (None = all)
    carry = None  # contribution of removed units to the next layer's pre-activation: [out_next]
    for i, lin in enumerate(hidden + [output]):
        w = _weight(lin, "weight").detach()
        b = lin.bias.detach() if lin.bias is not None else None
        mk = by_module.get(id(lin))
        if mk is not None:
            w = w.masked_fill(~mk, 0.0)
        if i < len(hidden) and mk is not None:
            dead = ~mk.reshape(mk.shape[0], -1).any(dim=1)
        else:
            dead = torch.zeros(w.shape[0], dtype=torch.bool, device=w.device)
        if unit and b is not None and mk is not None:
            b = b.masked_fill(dead, 0.0)
        new_b = b.clone() if b is not None else None
        if carry is not None:
            if new_b is None:
                new_b = carry.to(w.dtype)
            else:
                new_b = new_b + carry.to(w.dtype)
        keep_rows = (~dead).nonzero().squeeze(1)
        new_w = w.index_select(0, keep_rows)
        if in_keep is not None:
            new_w = new_w.index_select(1, in_keep)
        if new_b is not None:
            new_b = new_b.index_select(0, keep_rows)
        replace[id(lin)] = _dense_linear(new_w, new_b)
        # constant outputs of the dead units, pushed into the next layer
        carry = None
        if i < len(hidden) and bool(dead.any()):
            pre = torch.zeros(1, w.shape[0], dtype=w.dtype, device=w.device)
            if b is not None:
                pre[0] = b
            const = pre
            for mod in after[i]:
                const = mod(const)
            const = const[0].masked_fill(~dead, 0.0)
            if bool((const != 0).any()):
                nxt = _weight((hidden + [output])[i + 1], "weight").detach()
                nmk = by_module.get(id((hidden + [output])[i + 1]))
                if nmk is not None:
                    nxt = nxt.masked_fill(~nmk, 0.0)
                carry = nxt[:, dead] @ const[dead]
        in_keep = keep_rows
    small = _structural_copy(model, replace)
    if hasattr(small, "hidden_sizes"):  # prunekit.models.MLP metadata: the new widths
        small.hidden_sizes = tuple(int(l.out_features) for l in small.hidden_layers)
    return small


class CSRLinear(nn.Module):
    """``y = x W^T + b`` with W stored as a torch sparse CSR tensor (computed as ``(W_csr @ x^T)^T``)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None):
        super().__init__()
        if weight.dim() != 2:
            raise ValueError(f"CSRLinear needs a 2-D weight, got shape {tuple(weight.shape)}")
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]
        with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state"
            warnings.simplefilter("ignore", UserWarning)
            self.weight = weight.detach().to_sparse_csr()
        self.bias = None if bias is None else bias.detach().clone()

    @property
    def nnz(self) -> int:
        return int(self.weight.values().numel())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        y = torch.sparse.mm(self.weight, x2.t()).t()
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, nnz={self.nnz}"


@torch.no_grad()
def to_sparse_csr(model: nn.Module, masks=None, params: Params | None = None) -> nn.Module:
    """A copy of ``model`` whose prunable nn.Linear layers run as sparse CSR matmuls (``CSRLinear``).

    ``params`` defaults to ``prunekit.models.prunable_parameters(model)`` (the output layer stays dense); with
    ``masks`` the masked weights are left out of the CSR tensors (the model itself is not modified).  Conv layers
    stay dense.  Outputs equal the (masked) dense model's up to float summation order.
    """
    if params is None:
        params = _default_params(model)
    params = _check_params(params)
    mask_list = _check_masks(params, masks) if masks is not None else [None] * len(params)
    unit = _unit_keeps(masks) if masks is not None else None
    replace: dict[int, nn.Module] = {}
    for i, ((m, n), mk) in enumerate(zip(params, mask_list)):
        if not isinstance(m, nn.Linear):
            continue
        w = _weight(m, n).detach()
        b = m.bias.detach() if m.bias is not None else None
        if mk is not None:
            w = w.masked_fill(~mk, 0.0)
        if unit is not None and b is not None:
            b = b.masked_fill(~unit[i], 0.0)
        replace[id(m)] = CSRLinear(w, b)
    return _structural_copy(model, replace)


def _default_params(model: nn.Module) -> list[tuple[nn.Module, str]]:
    from prunekit.models import prunable_parameters

    return prunable_parameters(model, include_output=False)


def flop_count(model: nn.Module) -> int:
    """Multiply-accumulates of one sample through the Linear / CSRLinear layers of ``model``: the non-zero weights
    (dense layers count their non-zero entries, so masked-dense and compacted nets give their ideal cost)."""
    total = 0
    for m in model.modules():
        if isinstance(m, CSRLinear):
            total += m.nnz
        elif isinstance(m, nn.Linear):
            total += int((m.weight != 0).sum())
    return total


# ----------------------------------------------------------------------------------------------------------------
# pruning curves
# ----------------------------------------------------------------------------------------------------------------


def _ranking_for(params, method: str, scope: str, seed: int) -> _Ranking:
    _check_choice("method", method, tuple(METHODS))
    _check_choice("scope", scope, SCOPES)
    granularity, criterion = METHODS[method]
    g = torch.Generator().manual_seed(int(seed)) if criterion == "random" else None
    if granularity == "weight":
        return _weight_ranking(params, scope, criterion, g)
    return _unit_ranking(params, scope, criterion, g)


def _masks_for(params, method: str, ranking: _Ranking, k: float):
    keeps = ranking.keeps(k)
    if METHODS[method][0] == "weight":
        return _weight_masks_from_keeps(params, keeps)
    return _unit_masks_from_keeps(params, keeps)


def _is_compactable(model: nn.Module, params) -> bool:
    try:
        hidden, _, _ = _mlp_layout(model)
    except ValueError:
        return False
    ids = {id(l) for l in hidden}
    return all(id(m) in ids and n == "weight" for m, n in params)


def pruning_curve(model: nn.Module, params: Params, split, ks: Sequence[float],
                  methods: Sequence[str] = ("weight", "unit", "random_weight", "random_unit"),
                  scopes: Sequence[str] = ("layerwise", "global"), seed: int = 0, *,
                  loss: str = "cross_entropy", batch_size: int = 4096, form: str = "cheapest",
                  labels: dict | None = None):
    """Accuracy and loss of ``model`` on ``split`` pruned to each k% (no retraining), as a tidy DataFrame.

    Each (method, scope) is ranked once (one sort); the masks for every k are prefixes of that order.  Each point is
    evaluated with ``prunekit.train.evaluate`` in its cheapest exact form (``form="cheapest"``): unit-pruned MLPs as
    the compacted dense net (``compact_mlp``), everything else as the masked dense net in place (``masks_applied``,
    weights restored afterwards, no deepcopy); points that prune nothing reuse the dense evaluation.  With
    ``form="dense"`` every point is evaluated as the masked dense net.

    ``methods`` from {"weight", "unit", "random_weight", "random_unit"}; ``scopes`` from {"layerwise", "global"};
    ``seed`` seeds the random baselines.  Columns: the ``labels`` (e.g. dataset, arch, seed), method, scope, k,
    sparsity (measured fraction of zero prunable weights of the masked net), unit_sparsity (fraction of units
    pruned; whole zero rows for weight methods), effective_sparsity (fraction of prunable weights removed or dead:
    for unit pruning it also counts the next layer's columns of pruned units), accuracy (fraction), loss, form,
    seconds (evaluation time of the point).
    """
    import pandas as pd
    from prunekit.train import evaluate

    params = _check_params(params)
    _check_choice("form", form, ("cheapest", "dense"))
    ks = [_check_k(k) for k in ks]
    for m in methods:
        _check_choice("method", m, tuple(METHODS))
    for s in scopes:
        _check_choice("scope", s, SCOPES)
    compactable = _is_compactable(model, params)
    n_total = sum(_weight(m, n).numel() for m, n in params)
    base_zero = [(_weight(m, n) == 0) for m, n in params]
    dense_result = None
    rows = []
    for method in methods:
        granularity = METHODS[method][0]
        for scope in scopes:
            ranking = _ranking_for(params, method, scope, seed)
            for k in ks:
                masks = _masks_for(params, method, ranking, k)
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
                rows.append({**(labels or {}), "method": method, "scope": scope, "k": k,
                             "sparsity": zeros / n_total, "unit_sparsity": unit_sp, "effective_sparsity": eff,
                             "accuracy": float(acc), "loss": float(lo), "form": how, "seconds": seconds})
    return pd.DataFrame(rows)


def _effective_sparsity(model, params, masks, compactable: bool) -> float:
    """Fraction of the prunable weights removed by unit pruning, counting the next prunable layer's input columns of
    pruned units (dead weights) as removed.  Falls back to the mask sparsity when the layout is unknown."""
    sizes = [mk.numel() for mk in masks]
    if not compactable or not isinstance(masks, UnitMasks):
        return sum(int((~mk).sum()) for mk in masks) / sum(sizes)
    hidden, _, _ = _mlp_layout(model)
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
    import pandas as pd

    params = _check_params(params)
    ks = [_check_k(k) for k in ks]
    names = list(layer_names) if layer_names is not None else [f"layer{i}" for i in range(len(params))]
    if len(names) != len(params):
        raise ValueError(f"layer_names has {len(names)} names for {len(params)} params")
    rows = []
    for method in methods:
        for scope in scopes:
            ranking = _ranking_for(params, method, scope, seed)
            for k in ks:
                masks = _masks_for(params, method, ranking, k)
                _, per_layer = mask_sparsity(params, masks)
                for i, (sp, mk) in enumerate(zip(per_layer, masks)):
                    rows.append({**(labels or {}), "method": method, "scope": scope, "k": k, "layer": i,
                                 "layer_name": names[i], "size": mk.numel(), "sparsity": sp})
    return pd.DataFrame(rows)


def inference_speedups(model: nn.Module, params: Params, x: torch.Tensor, ks: Sequence[float],
                       forms: Sequence[str] = ("masked_dense", "compacted", "csr"), scope: str = "layerwise",
                       repeat: int = 5, warmup: int = 1, labels: dict | None = None):
    """Measured inference time of ``model`` on the batch ``x`` pruned to each k%, vs the dense net.

    Forms: "masked_dense" (weight masks applied in place, same dense matmuls), "compacted" (unit pruning, smaller
    dense MLP), "csr" (weight pruning, ``to_sparse_csr``).  Columns: labels..., form, method, scope, k, batch_size,
    seconds (median), dense_seconds, speedup (dense / form), flop_ratio (dense MACs / MACs of the form: the ideal
    speed-up).  Uses ``prunekit.benchmarking.timeit``.  A form slower than dense shows as speedup < 1.
    """
    import pandas as pd
    from prunekit.benchmarking import timeit

    params = _check_params(params)
    ks = [_check_k(k) for k in ks]
    model.eval()
    dense_flops = flop_count(model)

    def run(m):
        with torch.inference_mode():
            m(x)

    dense_s = timeit(lambda: run(model), repeat=repeat, warmup=warmup)
    w_rank = _weight_ranking(params, scope, "magnitude")
    u_rank = _unit_ranking(params, scope, "l2")
    rows = []
    for k in ks:
        for form in forms:
            _check_choice("form", form, ("masked_dense", "compacted", "csr"))
            if form == "compacted":
                if not _is_compactable(model, params):
                    continue
                masks = _unit_masks_from_keeps(params, u_rank.keeps(k))
                net = compact_mlp(model, masks, params)
                method = "unit"
                flops = flop_count(net)
                s = timeit(lambda: run(net), repeat=repeat, warmup=warmup)
            elif form == "csr":
                masks = _weight_masks_from_keeps(params, w_rank.keeps(k))
                net = to_sparse_csr(model, masks, params)
                method = "weight"
                flops = flop_count(net)
                s = timeit(lambda: run(net), repeat=repeat, warmup=warmup)
            else:
                masks = _weight_masks_from_keeps(params, w_rank.keeps(k))
                method = "weight"
                with masks_applied(params, masks, model=model):
                    flops = flop_count(model)
                    s = timeit(lambda: run(model), repeat=repeat, warmup=warmup)
            rows.append({**(labels or {}), "form": form, "method": method, "scope": scope, "k": k,
                         "batch_size": int(x.shape[0]), "seconds": s, "dense_seconds": dense_s,
                         "speedup": dense_s / s, "flop_ratio": dense_flops / max(flops, 1)})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------------------
# summaries against the source's claims
# ----------------------------------------------------------------------------------------------------------------

# source 003: "This threshold value was around 70-75% sparsity in weight pruning and just under 50% sparsity in the
# unit pruning" (k up to which accuracy holds, in %)
SOURCE_PLATEAU = {"weight": (70.0, 75.0), "unit": (40.0, 50.0)}


def plateau_summary(curve, tolerance: float = 0.01, by: Sequence[str] = ("dataset", "method", "scope")):
    """Per group, the largest k up to which accuracy holds: the mean accuracy (over seeds) stays within
    ``tolerance`` (a fraction: 0.01 = 1 point) of the dense (k = 0) accuracy at this k *and every smaller k*.

    Returns a DataFrame with the ``by`` columns, dense_accuracy, holds_to_k, accuracy_there, sparsity_there,
    next_k (the first k where it fails, NaN if none) and accuracy_next.
    """
    import pandas as pd

    if not 0 <= tolerance <= 1:
        raise ValueError(f"tolerance must be a fraction in [0, 1], got {tolerance!r}")
    by = [c for c in by if c in curve.columns]
    mean = curve.groupby(by + ["k"], as_index=False)[["accuracy", "sparsity"]].mean()
    rows = []
    for key, g in mean.groupby(by):
        g = g.sort_values("k")
        if not (g["k"] == 0).any():
            raise ValueError("the curve needs a k = 0 (dense) point for each group to measure the plateau")
        dense = float(g.loc[g["k"] == 0, "accuracy"].iloc[0])
        ok = (g["accuracy"] >= dense - tolerance).to_numpy()
        n_ok = len(ok) if ok.all() else int(ok.argmin())
        last, nxt = g.iloc[n_ok - 1], (g.iloc[n_ok] if n_ok < len(g) else None)
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)), "dense_accuracy": dense, "holds_to_k": float(last["k"]),
                     "accuracy_there": float(last["accuracy"]), "sparsity_there": float(last["sparsity"]),
                     "next_k": float(nxt["k"]) if nxt is not None else math.nan,
                     "accuracy_next": float(nxt["accuracy"]) if nxt is not None else math.nan})
    return pd.DataFrame(rows)


def plateau_report(summary, tolerance: float = 0.01) -> str:
    """Sentences comparing ``plateau_summary`` (magnitude methods) with the source's claims, from the numbers."""
    lines = []
    for _, r in summary.iterrows():
        method = r["method"]
        if method not in SOURCE_PLATEAU:
            continue
        lo, hi = SOURCE_PLATEAU[method]
        k = r["holds_to_k"]
        verdict = ("agrees with" if lo <= k <= hi else "goes further than" if k > hi else "falls short of")
        where = f"{r.get('dataset', '?')}, {method} pruning, {r.get('scope', '?')} ranking"
        after = (f"; at k = {r['next_k']:.0f}% it falls to {100 * r['accuracy_next']:.1f}%"
                 if not math.isnan(r["next_k"]) else "")
        lines.append(f"{where}: accuracy stays within {100 * tolerance:.0f} point(s) of the dense "
                     f"{100 * r['dense_accuracy']:.1f}% up to k = {k:.0f}% "
                     f"({100 * r['accuracy_there']:.1f}%){after}. This {verdict} the source's "
                     f"{lo:.0f}-{hi:.0f}% for {method} pruning.")
    return "\n".join(lines)
