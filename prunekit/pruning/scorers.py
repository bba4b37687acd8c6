"""Importance scorers: one score per weight (weight-shaped) or per unit (one per row / output channel), low scores
pruned first. Scorers only score; ``prunekit.pruning.select.masks_from_scores(params, scores, k, scope)`` turns any of
them into masks with the exact-count and tie rules (as ``torch.nn.utils.prune``'s ``importance_scores=`` and
Torch-Pruning's ``Importance`` keep scoring apart from pruning). A scorer of your own plugs in the same way, and
``prunekit.measures.curves.pruning_curve(..., scorers={name: scorer})`` draws its curve beside the built-in methods.

* :func:`magnitude_scores` -- ``|w|`` (weight pruning of source 003, the magnitude pruning of sources 000 and 002);
* :func:`l2_scores` -- ``||W[j]||_2`` of each unit's incoming weights (unit pruning of source 003);
* :func:`random_scores` -- i.i.d. uniform scores (a random baseline);
* :func:`bn_scale_scores` -- ``|gamma|`` of the batch norm after each conv, one per channel (Network Slimming, the
  channel pruning of source 002).

:data:`SCORERS` names them (one line adds a scorer); the saliencies of source 001, which need data as well as the
weights, are ``prunekit.measures.saliency.saliency_scores``. Every measure that ranks weights takes a ``scorer``
(magnitude by default): the pruning curves, effective density, magnitude ablation, one-shot and iterative pruning.
"""

from __future__ import annotations

import torch
from torch import nn

from ..core.checks import choice
from ..core.checks import generator as checked_generator
from .masks import Params, check_params, weight_of, following_batchnorms

__all__ = ["SCORERS", "scorer", "magnitude_scores", "l2_scores", "random_scores", "bn_scale_scores"]


@torch.no_grad()
def magnitude_scores(params: Params) -> list[torch.Tensor]:
    """``|w|`` of every weight, weight-shaped (source 003's weight pruning)."""
    return [weight_of(m, n).detach().abs().float().cpu() for m, n in check_params(params)]


@torch.no_grad()
def l2_scores(params: Params) -> list[torch.Tensor]:
    """``||W[j]||_2`` of every unit (row / output channel), one per unit (source 003's unit pruning)."""
    return [weight_of(m, n).detach().flatten(1).float().cpu().norm(p=2, dim=1) for m, n in check_params(params)]


def random_scores(params: Params, per_unit: bool = False, generator: torch.Generator | None = None
                  ) -> list[torch.Tensor]:
    """I.i.d. uniform scores in [0, 1), weight-shaped or one per unit (``per_unit=True``); seed 0 without a
    ``generator``. (The built-in "random_weight"/"random_unit" methods draw one permutation instead: other masks.)"""
    g = checked_generator(generator)
    shapes = [(weight_of(m, n).shape[0],) if per_unit else tuple(weight_of(m, n).shape) for m, n in check_params(params)]
    return [torch.rand(shape, generator=g, dtype=torch.float64) for shape in shapes]


@torch.no_grad()
def bn_scale_scores(params: Params, model: nn.Module) -> list[torch.Tensor]:
    """``|gamma|`` of the BatchNorm after each conv of ``params``, one per output channel (Network Slimming, Liu et al.
    2017, arXiv:1708.06519: the channel pruning of source 002); ``model`` holds the convs and their batch norms."""
    params = check_params(params)
    return [bn.weight.detach().abs().float() for bn in following_batchnorms(model, params)]


# name -> scorer; weight-shaped scores prune weights, one score per unit prunes units
SCORERS = {"magnitude": magnitude_scores, "l2": l2_scores, "random": random_scores, "bn_scale": bn_scale_scores}


def scorer(name_or_fn):
    """A scorer of :data:`SCORERS` by name, or a callable as it is; ValueError naming the allowed names otherwise."""
    if callable(name_or_fn):
        return name_or_fn
    return SCORERS[choice("scorer", name_or_fn, SCORERS)]
