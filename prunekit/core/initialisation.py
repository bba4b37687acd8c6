"""Initialisation and the masks held in training: init schemes, random pruning at initialisation (source 002's smaller
networks), holding masks through training with ``torch.nn.utils.prune`` and folding them out of a state_dict.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from .checks import fraction, pruned_count
from .checks import generator as checked_generator
from .prunable import parameter_names, prunable_parameters

__all__ = ["init_weights", "sparse_at_init", "hold_masks", "plain_state_dict"]


def init_weights(model: nn.Module, scheme: str) -> None:
    """Re-initialise Linear/Conv2d weights (biases to 0): Glorot & Bengio's (2010, eq. 16) normalised initialisation,
    ``Var(w) = 2 / (fan_in + fan_out)`` (uniform on ``±sqrt(6 / (fan_in + fan_out))``, or normal), or He et al.'s
    (2015), ``Var(w) = 2 / fan_in``. Glorot has no gain, as in ``torch.nn.init.xavier_*``'s default and Keras'
    ``glorot_uniform``, whatever the activation; He's gain is ReLU's.

    Draws from torch's global generator: seed it (``torch.manual_seed``) for reproducibility.
    """
    fns = {
        "glorot_uniform": lambda w: nn.init.xavier_uniform_(w, gain=1.0),
        "glorot_normal": lambda w: nn.init.xavier_normal_(w, gain=1.0),
        "he_uniform": lambda w: nn.init.kaiming_uniform_(w, nonlinearity="relu"),
        "he_normal": lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"),
    }
    if scheme == "default":
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.reset_parameters()
        return
    if scheme not in fns:
        raise ValueError(f"init={scheme!r} is not supported; allowed: 'default', {', '.join(map(repr, fns))}")
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            fns[scheme](m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)



def sparse_at_init(model: nn.Module, share: float, generator: torch.Generator | None = None,
                   include_output: bool = False) -> dict[str, torch.Tensor]:
    """Source 002's smaller networks (Sec. 2.2.1, ``ModelConfig.init_density``): ``model``, freshly initialised,
    randomly pruned at initialisation to ``share`` of its prunable weights, in place; returns the keep masks (True =
    kept) by parameter name, to hold in training (:func:`hold_masks`).

    Every prunable layer ``l`` loses exactly ``round((1 - share) * n_l)`` weights (``prunekit.core.checks.
    pruned_count``) drawn uniformly at random (one ``torch.randperm`` per layer, in layer order, from ``generator``);
    they are set to 0 and the ``kept_l`` others are multiplied by ``sqrt(n_l / kept_l)``, which turns He-normal
    weights (variance 2 / fan_in; ``ModelConfig(init="he")``) into He-normal weights for the pruned layer's fan-in
    (variance 2 / (kept share * fan_in)); weights of another initialisation are scaled by the same factor (and are then
    not He's). The units and feature maps stay those of the full network: it is smaller in weights, not narrower.
    The prunable weights are every Linear/Conv weight but the layer into the logits (``include_output=True`` prunes
    that one too).
    """
    share = fraction("share", share, low_open=True)
    g = checked_generator(generator)
    params = prunable_parameters(model, include_output=include_output)
    orders = [torch.randperm(getattr(m, a).numel(), generator=g) for m, a in params]
    masks, empty = {}, []
    with torch.no_grad():
        for (module, attr), name, order in zip(params, parameter_names(model, params), orders):
            w = getattr(module, attr)
            keep = torch.ones(w.numel(), dtype=torch.bool)
            keep[order[:pruned_count(100.0 * (1.0 - share), w.numel())]] = False
            keep = keep.view(w.shape).to(w.device)
            w.masked_fill_(~keep, 0.0)
            kept = int(keep.sum())
            if kept:
                w.mul_(math.sqrt(keep.numel() / kept))
            else:
                empty.append(f"{name} ({w.numel()} weights)")
            masks[name] = keep
    if empty:
        warnings.warn(f"share={share:g} (ModelConfig.init_density) keeps no weight of {', '.join(empty)}: such a "
                      "layer passes nothing on, and the network cannot learn through it", RuntimeWarning, stacklevel=2)
    return masks


def hold_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Hold ``{parameter name: keep mask}`` through training with ``torch.nn.utils.prune.custom_from_mask``: every
    forward uses ``w = w_orig * mask`` (fold it with :func:`plain_state_dict`)."""
    modules = dict(model.named_modules())
    for name, keep in masks.items():
        owner, _, attr = name.rpartition(".")
        module = modules[owner]
        torch_prune.custom_from_mask(module, attr, keep.to(getattr(module, attr).device))


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

