"""Pruning masks: scores in, masks out (source 003's weight and unit pruning, and the random baselines).

Source 003 ("Sparsifying Neural Networks", the FOR.ai pruning challenge) prunes a trained ``ReLU(xW)`` network
without retraining in two ways, for a sparsity k%:

* **weight pruning** -- zero the k% of weights with the smallest ``|w|``;
* **unit pruning** -- zero the k% of units (output neurons; a *column* of W in the source's ``ReLU(xW)``, a *row* of
  PyTorch's ``[out, in]`` weight, an output channel of a conv layer) with the smallest L2 norm ``||W[j, :]||_2``.

The layer into the logits is never pruned (callers pass ``prunekit.core.prunable.prunable_parameters(model)``). Applying
masks lives in ``prunekit.pruning.masks``, compaction and CSR in ``prunekit.pruning.compaction``, curves in ``prunekit.measures.curves``.

Conventions (as ``torch.nn.utils.prune``): masks are computed apart from where they are applied; a mask is a bool
tensor shaped like the weight, ``True`` = keep.  ``params`` is always a list of ``(module, "weight")`` pairs.

* Exact counts: k% of n elements prunes exactly ``round(k * n / 100)`` (Python's round, half to even); k = 0 prunes
  nothing.  (The source's own code pruned one element too many.)  torch's ``l1_unstructured(amount=k / 100)``
  computes ``round(amount * n)`` with the float ``amount``, which differs at some half-way cases: ``Linear(9, 10)`` at
  k = 35 gives 35 * 90 / 100 = 31.5 -> 32 here, but 0.35 * 90 = 31.499999999999996 -> 31 in torch.  Pass torch an
  integer amount (``round(k * n / 100)``) to get the same masks.
* Scopes: ``"layerwise"`` prunes k% of each layer; ``"global"`` ranks all prunable weights (or all units) together.
* Deterministic ties: elements are ordered by ``(score, flat index)`` with a stable sort, the flat index running over
  the layers in ``params`` order, each layer in row-major order.  Among equal scores the lower index is pruned first.
* Random baselines draw one permutation from a ``torch.Generator`` (seed 0 when none is given), so masks for growing
  k are nested, like the magnitude masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core.checks import choice, count as checked_count, number, percentage, pruned_count
from ..core.checks import generator as checked_generator
from .masks import Params, UnitMasks, check_params, weight_of
from .scorers import l2_scores, magnitude_scores

__all__ = ["SCOPES", "WEIGHT_CRITERIA", "UNIT_CRITERIA", "METHODS", "magnitude_scores", "l2_scores",
           "masks_from_scores", "masks_for_count", "scores_ranking", "weight_masks", "unit_masks",
           "global_magnitude_order",
           "score_order", "masks_from_order"]

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


# ----------------------------------------------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------------------------------------------


def check_k(k) -> float:
    try:
        return float(number("k", k, low=0.0, high=100.0))
    except ValueError as err:
        raise ValueError(f"k must be a percentage in [0, 100]: {err}") from None


# ----------------------------------------------------------------------------------------------------------------
# rankings: sort once, masks for any k cheaply
# ----------------------------------------------------------------------------------------------------------------


def _stable_order(scores: torch.Tensor) -> torch.Tensor:
    """Indices sorting ``scores`` ascending, ties by index (the order of (score, index) pairs).

    Non-negative float32 scores (|w|, norms) sort as integers: their bit patterns are order-preserving, so the
    unique int64 key ``bits << 32 | index`` gives the same order as a stable sort, about 2x faster.
    """
    if scores.dtype == torch.float32 and scores.numel() < 2**31 and bool((scores >= 0).all()):
        key = (scores.view(torch.int32).to(torch.int64) << 32) | torch.arange(scores.numel(), device=scores.device)
        return torch.sort(key).indices
    return torch.sort(scores, stable=True).indices


@dataclass
class Ranking:
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
                rank[order] = torch.arange(order.numel(), device=order.device)
                self._ranks.append(rank)
        return self._ranks

    def counts(self, k: float) -> list[int]:
        """Elements pruned per layer at k%."""
        k = check_k(k)
        if self.scope == "layerwise":
            return [pruned_count(k, n) for n in self.sizes]
        keep = self.keeps(k)
        return [int((~kp).sum()) for kp in keep]

    def keeps(self, k: float) -> list[torch.Tensor]:
        """Flat 1-D keep vectors (True = keep), one per layer, for k%."""
        k = check_k(k)
        if self.scope == "layerwise":
            return [rank >= pruned_count(k, n) for n, rank in zip(self.sizes, self.ranks)]
        return self.keeps_forpruned_count(pruned_count(k, sum(self.sizes)))

    def keeps_forpruned_count(self, m: int) -> list[torch.Tensor]:
        """Global scope only: keep vectors pruning exactly the m first elements of the order."""
        return list(torch.split(self.ranks[0] >= m, self.sizes))


def _rank(scores: list[torch.Tensor], scope: str, random: bool, generator) -> Ranking:
    sizes = [int(s.numel()) for s in scores]
    if random:
        g = checked_generator(generator)
        if scope == "layerwise":
            orders = [torch.randperm(n, generator=g) for n in sizes]
        else:
            orders = [torch.randperm(sum(sizes), generator=g)]
    elif scope == "layerwise":
        orders = [_stable_order(s) for s in scores]
    else:
        orders = [_stable_order(torch.cat(scores))]
    return Ranking(sizes, scope, orders)


# ----------------------------------------------------------------------------------------------------------------
# scores to masks (the scorers live in prunekit.pruning.scorers; low scores are pruned first)
# ----------------------------------------------------------------------------------------------------------------


def masks_from_scores(params: Params, scores, k: float, scope: str = "layerwise") -> list[torch.Tensor]:
    """Masks pruning the k% lowest-scored elements: the one place scores turn into masks.

    ``scores``: one tensor per entry of ``params``, either weight-shaped (weight pruning: list of bool masks) or one
    score per unit (unit pruning: a :class:`UnitMasks`). Exactly ``round(k * n / 100)`` elements per layer
    ("layerwise") or over all layers ("global"); ties by (score, flat index), the lower index pruned first; scores
    are ranked in float32 when they all are, else in float64. Any scorer plugs in: magnitude
    (:func:`magnitude_scores`), unit L2 (:func:`l2_scores`), any scorer of ``prunekit.pruning.scorers.SCORERS``
    (the Taylor and brute-force saliencies of source 001 among them), your own.
    """
    k = percentage("k", k)
    params = check_params(params)
    ranking, units = scores_ranking(params, scores, scope)
    keeps = ranking.keeps(k)
    return UnitMasks.from_keeps(params, keeps) if units else weight_masks_from_keeps(params, keeps)


def masks_for_count(params: Params, scores, count: int) -> list[torch.Tensor]:
    """Masks pruning exactly the ``count`` lowest-scored elements of all layers ranked together (ties by index):
    :func:`masks_from_scores` with ``scope="global"`` for a number of elements rather than a percentage."""
    params = check_params(params)
    ranking, units = scores_ranking(params, scores, "global")
    keeps = ranking.keeps_forpruned_count(checked_count("count", count, low=0, high=sum(ranking.sizes)))
    return UnitMasks.from_keeps(params, keeps) if units else weight_masks_from_keeps(params, keeps)


def scores_ranking(params: Params, scores, scope: str) -> tuple[Ranking, bool]:
    """Validate ``scores`` against ``params`` and rank them once: ``(ranking, True if the scores are per unit)``."""
    params = check_params(params)
    choice("scope", scope, SCOPES)
    if isinstance(scores, torch.Tensor):
        raise ValueError("scores must be a list of tensors, one per entry of params, not one tensor")
    scores = list(scores)
    if len(scores) != len(params):
        raise ValueError(f"scores has {len(scores)} entries for {len(params)} params: need one per parameter")
    weights = [weight_of(m, n) for m, n in params]
    units = [isinstance(s, torch.Tensor) and tuple(s.shape) == (w.shape[0],) and tuple(s.shape) != tuple(w.shape)
             for s, w in zip(scores, weights)]
    for i, (s, w) in enumerate(zip(scores, weights)):
        if not isinstance(s, torch.Tensor) or not (tuple(s.shape) == tuple(w.shape) or units[i]):
            raise ValueError(f"scores[{i}] must be a tensor shaped like the weight {tuple(w.shape)} or with one score "
                             f"per unit ({w.shape[0]},), got {getattr(s, 'shape', type(s).__name__)}")
        if torch.isnan(s).any():
            raise ValueError(f"scores[{i}] contains NaN")
    if len(set(units)) != 1:
        raise ValueError("scores must be all weight-shaped or all per-unit, not a mix")
    # float32 scores keep float32 (and _stable_order's fast path); any other dtype is ranked in float64
    dtype = torch.float32 if all(s.dtype == torch.float32 for s in scores) else torch.float64
    flat = [s.detach().reshape(-1).to(device="cpu", dtype=dtype) for s in scores]
    return _rank(flat, scope, False, None), units[0]


@torch.no_grad()
def weight_ranking(params, scope: str, criterion: str, generator=None) -> Ranking:
    params = check_params(params)
    choice("scope", scope, SCOPES)
    choice("criterion", criterion, WEIGHT_CRITERIA)
    return _rank([s.reshape(-1) for s in magnitude_scores(params)], scope, criterion == "random", generator)


@torch.no_grad()
def unit_ranking(params, scope: str, criterion: str, generator=None) -> Ranking:
    params = check_params(params)
    choice("scope", scope, SCOPES)
    choice("criterion", criterion, UNIT_CRITERIA)
    return _rank(l2_scores(params), scope, criterion == "random", generator)


def weight_masks_from_keeps(params, keeps) -> list[torch.Tensor]:
    return [kp.view(weight_of(m, n).shape).to(weight_of(m, n).device) for (m, n), kp in zip(params, keeps)]


# ----------------------------------------------------------------------------------------------------------------
# public mask constructors
# ----------------------------------------------------------------------------------------------------------------


def weight_masks(params: Params, k: float, scope: str = "layerwise", criterion: str = "magnitude",
                 generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """Weight-pruning masks: prune the k% of weights with the smallest ``|w|`` (or random ones).

    ``scope="layerwise"``: round(k * n_l / 100) weights of each layer l; ``"global"``: round(k * N / 100) of all
    N prunable weights ranked together.  Ties: by (|w|, flat index).  Returns weight-shaped bool masks, True = keep.
    """
    k = percentage("k", k)
    ranking = weight_ranking(params, scope, criterion, generator)
    params = check_params(params)
    return weight_masks_from_keeps(params, ranking.keeps(k))


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
    k = percentage("k", k)
    ranking = unit_ranking(params, scope, criterion, generator)
    params = check_params(params)
    return UnitMasks.from_keeps(params, ranking.keeps(k))


def global_magnitude_order(params: Params) -> torch.Tensor:
    """Flat indices into the concatenation of all prunable weights (``params`` order, each flattened row-major),
    ascending ``|w|``, ties by index.  ``masks_from_order(params, order, m)`` prunes the m smallest for any m."""
    return weight_ranking(params, "global", "magnitude").orders[0]


def score_order(params: Params, scores) -> torch.Tensor:
    """:func:`global_magnitude_order` for any scorer's weight-shaped ``scores`` (one tensor per entry of ``params``):
    flat indices, ascending score, ties by index."""
    ranking, units = scores_ranking(params, scores, "global")
    if units:
        raise ValueError("score_order ranks weights: the scorer gave one score per unit, not weight-shaped scores")
    return ranking.orders[0]


def masks_from_order(params: Params, order: torch.Tensor, count: int) -> list[torch.Tensor]:
    """Masks pruning the first ``count`` weights of ``order`` (flat indices over the concatenated params)."""
    params = check_params(params)
    sizes = [int(weight_of(m, n).numel()) for m, n in params]
    total = sum(sizes)
    if not isinstance(order, torch.Tensor) or order.dim() != 1 or order.numel() != total:
        raise ValueError(f"order must be a 1-D index tensor over all {total} prunable weights "
                         "(see global_magnitude_order)")
    count = checked_count("count", count, low=0, high=total)
    ranking = Ranking(sizes, "global", [order])
    return weight_masks_from_keeps(params, ranking.keeps_forpruned_count(int(count)))
