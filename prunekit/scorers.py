"""Importance scorers: one score per weight (weight-shaped) or per unit (one per row / output channel), low scores
pruned first. Scorers only score; ``prunekit.pruning.masks_from_scores(params, scores, k, scope)`` turns any of
them into masks with the exact-count and tie rules (as ``torch.nn.utils.prune``'s ``importance_scores=`` and
Torch-Pruning's ``Importance`` keep scoring apart from pruning). A scorer of your own plugs in the same way, and
``prunekit.curves.pruning_curve(..., scorers={name: scorer})`` draws its curve beside the built-in methods.

* :func:`magnitude_scores` -- ``|w|`` (weight pruning of source 003, the magnitude pruning of sources 000 and 002);
* :func:`l2_scores` -- ``||W[j]||_2`` of each unit's incoming weights (unit pruning of source 003);
* :func:`random_scores` -- i.i.d. uniform scores (a random baseline);
* :func:`saliency_scores` -- the first/second-order Taylor estimates or the exact (brute-force) change of the summed
  loss when a hidden unit's output is set to 0 (source 001), for fully connected ReLU/tanh nets.
"""

from __future__ import annotations

import torch
from torch import nn

from .checks import choice
from .checks import generator as checked_generator
from .masks import Params, _check_params, _weight
from .models import prunable_parameters
from .saliency import ESTIMATORS, OUTPUT_HESSIANS, from_model, saliencies

__all__ = ["magnitude_scores", "l2_scores", "random_scores", "saliency_scores"]


@torch.no_grad()
def magnitude_scores(params: Params) -> list[torch.Tensor]:
    """``|w|`` of every weight, weight-shaped (source 003's weight pruning)."""
    return [_weight(m, n).detach().abs().float().cpu() for m, n in _check_params(params)]


@torch.no_grad()
def l2_scores(params: Params) -> list[torch.Tensor]:
    """``||W[j]||_2`` of every unit (row / output channel), one per unit (source 003's unit pruning)."""
    return [_weight(m, n).detach().flatten(1).float().cpu().norm(p=2, dim=1) for m, n in _check_params(params)]


def random_scores(params: Params, per_unit: bool = False, generator: torch.Generator | None = None
                  ) -> list[torch.Tensor]:
    """I.i.d. uniform scores in [0, 1), weight-shaped or one per unit (``per_unit=True``); seed 0 without a
    ``generator``. (The built-in "random_weight"/"random_unit" methods draw one permutation instead: other masks.)"""
    g = checked_generator(generator)
    shapes = [(_weight(m, n).shape[0],) if per_unit else tuple(_weight(m, n).shape) for m, n in _check_params(params)]
    return [torch.rand(shape, generator=g, dtype=torch.float64) for shape in shapes]


def saliency_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor, estimator: str = "second_order", *,
                    loss: str = "cross_entropy", output_hessian: str = "diagonal",
                    generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """Per-unit saliencies of ``model``'s hidden layers on ``(x, y)``, one tensor per entry of
    ``prunable_parameters(model)``: the change of the loss summed over the samples when the unit's output is set to
    0, estimated to first or second order (Taylor) or computed exactly ("brute_force"); or "l2_norm" / "random"
    (``prunekit.saliency.saliencies``, float64).

    The scores line up with ``prunable_parameters(model)`` (pass those params to ``masks_from_scores``).
    For a ReLU or tanh net, setting a unit's output to 0 is what its unit mask does (row and bias zeroed), so these
    scores rank exactly the removals that ``masks_from_scores`` then applies. A sigmoid unit with zeroed row and bias
    still outputs 0.5, so sigmoid nets are refused (use ``prunekit.saliency.serial_prune``, which removes outputs).
    """
    choice("estimator", estimator, ESTIMATORS)
    choice("output_hessian", output_hessian, OUTPUT_HESSIANS)
    allowed = (nn.Sequential, nn.Flatten, nn.Linear, nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Identity, nn.ModuleList)
    odd = sorted({type(m).__name__ for m in model.modules() if not isinstance(m, allowed)
                  and not (hasattr(m, "hidden_layers") and hasattr(m, "output"))})
    if odd:
        raise ValueError(f"saliency_scores needs a plain MLP (Flatten, Linear, activation, ..., Linear); model also "
                         f"holds {', '.join(odd)}, which the saliencies would leave out")
    net = from_model(model, loss=loss)
    if net.activation == "sigmoid":
        raise ValueError("saliency_scores needs a ReLU or tanh net: a sigmoid unit with its row and bias masked "
                         "outputs 0.5, not the 0 these saliencies assume (use prunekit.saliency.serial_prune)")
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if [m for m, _ in prunable_parameters(model)] != linears[:-1]:
        raise ValueError("saliency_scores needs an MLP whose prunable parameters are exactly its hidden layers, in "
                         "order (prunekit.models.prunable_parameters(model))")
    device = net.weights[0].device
    scores = saliencies(net, x.to(device), y.to(device), estimator, generator=generator,
                        output_hessian=output_hessian)
    return list(torch.split(scores, net.widths))
