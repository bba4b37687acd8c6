"""One accessor for the weights of any model: read a weight as the forward pass uses it, mask it, write it in place,
and know every module that shares it. Every measure and every mask of prunekit goes through it.

A weight ``(module, name)`` is one of:

- **plain**: a tensor attribute (a ``Parameter``, usually), read and written as it is. A Parameter that several
  modules hold (tied weights) is one weight: :func:`weight_key` is the Parameter itself, so it is listed, ranked and
  written once, and :func:`users` names every module that reads it;
- **held by torch.nn.utils.prune**: the forward pass uses ``<name>_orig * <name>_mask``, recomputed by a forward
  pre-hook. It is read as that product and written into ``<name>_orig``; the module's ``<name>`` is then recomputed
  at once (:func:`refresh`), since a ``MultiheadAttention`` reads its ``out_proj.weight`` without calling
  ``out_proj``'s forward, where the hook would have run;
- **parametrized** (``torch.nn.utils.parametrize``: ``parametrizations.weight_norm``, ``spectral_norm``, ...): the
  forward pass uses what the parametrization computes from its original(s). It is read as that, with the
  parametrization in eval mode (reading a weight never runs spectral_norm's power iteration), and masked *exactly* by
  a keep-mask parametrization appended for the duration (``w_effective * keep``), then removed. It is never written:
  no value of the originals gives a masked effective weight in general (weight_norm's ``g v / ||v||`` has no
  direction left for a row pruned whole; spectral_norm divides by the masked weight's own spectral norm), so making a
  mask permanent (:func:`storage`, and with it fine-tuning with the mask held) refuses, naming the way out:
  ``torch.nn.utils.parametrize.remove_parametrizations(module, name, leave_parametrized=True)`` first.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils import prune as torch_prune

from .checks import text
from .device import modes_restored

__all__ = ["is_weight", "is_parametrized", "is_pruned", "weight_key", "read_weight", "storage", "users", "refresh",
           "refresh_all", "copy_model", "folded_copy", "check_params", "MaskedWeights", "RECURRENT"]

RECURRENT = (nn.RNNBase,)  # nn.RNN, nn.GRU, nn.LSTM: their weights are not a default kind


def is_parametrized(module: nn.Module, name: str) -> bool:
    """``module.<name>`` is computed by a ``torch.nn.utils.parametrize`` parametrization. (Like :func:`is_pruned` and
    :func:`is_weight`, a predicate: False for a name the module holds nothing under; ``name`` must be a non-empty
    string.)"""
    return parametrize.is_parametrized(module, text("name", name))


def is_pruned(module: nn.Module, name: str) -> bool:
    """``module.<name>`` is held by torch.nn.utils.prune (``<name>_orig`` and ``<name>_mask``)."""
    text("name", name)
    return isinstance(getattr(module, name + "_orig", None), torch.Tensor) and isinstance(
        getattr(module, name + "_mask", None), torch.Tensor)


def is_weight(module: nn.Module, name: str) -> bool:
    """``module.<name>`` is a tensor, found without computing it (a parametrized weight is not evaluated)."""
    return is_parametrized(module, name) or isinstance(getattr(module, name, None), torch.Tensor)


def _weight_name(module: nn.Module, name) -> str:
    """``name`` if ``module.<name>`` is a tensor (:func:`is_weight`), else ``ValueError`` naming the tensors it has."""
    if not (is_weight(module, name) or is_pruned(module, name)):
        have = [n for n, _ in module.named_parameters(recurse=False)] + [n for n, _ in module.named_buffers(
            recurse=False)] + list(getattr(module, "parametrizations", {}))
        raise ValueError(f"name={name!r} is no tensor of this {type(module).__name__}; its tensors: "
                         f"{', '.join(dict.fromkeys(have)) or 'none'}")
    return name


def weight_key(module: nn.Module, name: str) -> object:
    """The object that *is* the weight, the same however many modules hold it: the Parameter (tied weights share
    it), ``<name>_orig`` under torch.nn.utils.prune, the parametrization list of a parametrized weight.
    ``ValueError`` for a name that is no tensor of ``module`` (so do :func:`read_weight`, :func:`storage` and
    :func:`users`)."""
    _weight_name(module, name)
    if is_parametrized(module, name):
        return module.parametrizations[name]
    if is_pruned(module, name):
        return getattr(module, name + "_orig")
    return getattr(module, name)


def read_weight(module: nn.Module, name: str) -> torch.Tensor:
    """The weight as the forward pass uses it, computed now: ``<name>_orig * <name>_mask`` under torch.nn.utils.prune
    (the attribute itself is refreshed only by a forward pass), the parametrization's output (in eval mode) for a
    parametrized weight, the attribute otherwise."""
    _weight_name(module, name)
    if is_parametrized(module, name):
        chain = module.parametrizations[name]
        with modes_restored(chain):
            chain.eval()
            return getattr(module, name)
    if is_pruned(module, name):
        return getattr(module, name + "_orig") * getattr(module, name + "_mask")
    return getattr(module, name)


def storage(module: nn.Module, name: str) -> torch.Tensor:
    """The tensor that holds a weight, to write in place (``<name>_orig`` under torch.nn.utils.prune). A parametrized
    weight has none: ``ValueError`` naming the way out."""
    _weight_name(module, name)
    if is_parametrized(module, name):
        raise ValueError(f"{type(module).__name__}.{name} is computed by a parametrization "
                         f"({', '.join(type(p).__name__ for p in module.parametrizations[name])}): a pruned effective "
                         "weight cannot be written into its originals (weight_norm's g * v / ||v|| has no direction "
                         "for a row pruned whole; spectral_norm rescales by the pruned weight's own norm), so a mask "
                         "cannot be made permanent or held in training. Fold it first: torch.nn.utils.parametrize."
                         f"remove_parametrizations(module, {name!r}, leave_parametrized=True) gives a plain weight "
                         "with the same function; or leave it out of params=")
    if is_pruned(module, name):
        return getattr(module, name + "_orig")
    return getattr(module, name)


def users(model: nn.Module | None, module: nn.Module, name: str) -> list[tuple[nn.Module, str]]:
    """Every ``(module, attribute)`` of ``model`` that holds the same tensor as ``module.<name>`` (tied weights),
    ``(module, name)`` first; just ``[(module, name)]`` without a model or for a parametrized weight."""
    out = [(module, _weight_name(module, name))]
    if model is None or is_parametrized(module, name):
        return out
    key = weight_key(module, name)
    for other in model.modules():
        for attr, p in other._parameters.items():
            if p is key and not (other is module and attr in (name, name + "_orig")):
                out.append((other, attr[:-5] if attr.endswith("_orig") and is_pruned(other, attr[:-5]) else attr))
    return out


def refresh(module: nn.Module) -> None:
    """Recompute ``module``'s torch.nn.utils.prune tensors now (``w = w_orig * mask``), as its own forward would."""
    for hook in list(module._forward_pre_hooks.values()):
        if isinstance(hook, torch_prune.BasePruningMethod):
            hook(module, None)


def refresh_all(model: nn.Module) -> None:
    """:func:`refresh` every module of ``model``."""
    for module in model.modules():
        refresh(module)


def copy_model(model: nn.Module) -> nn.Module:
    """``copy.deepcopy(model)``, also of a model under torch.nn.utils.prune: its masked weights (tensors computed with
    autograd, which deepcopy refuses) are recomputed without autograd first, with the same values."""
    with torch.no_grad():
        refresh_all(model)
    return copy.deepcopy(model)


def folded_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` computing the same function with its torch.nn.utils.prune masks made permanent
    (``torch.nn.utils.prune.remove``: ``<name> = <name>_orig * <name>_mask`` as a Parameter, in ``<name>_orig``'s
    place among the parameters). Parametrizations are kept."""
    out = copy_model(model)
    for module in out.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, torch_prune.BasePruningMethod):
                torch_prune.remove(module, hook._tensor_name)
    return out


def check_params(params, model: nn.Module | None = None) -> list[tuple[nn.Module, str]]:
    """``params`` as a list of ``(module, attribute)`` pairs, each a floating weight of 2 or more dimensions, each
    tensor once (a tied Parameter listed through two modules is refused), and, with ``model``, each module one of
    ``model``'s. ``ValueError`` naming the entry and the way out otherwise."""
    if isinstance(params, nn.Module):
        raise ValueError("params must be a list of (module, 'weight') pairs, e.g. "
                         "prunekit.core.prunable.prunable_parameters(model), not a module")
    try:
        params = list(params)
    except TypeError:
        raise ValueError(f"params must be a list of (module, 'weight') pairs, got {type(params).__name__}") from None
    if not params:
        raise ValueError("params is empty: there is nothing to prune (pass prunekit.core.prunable.prunable_parameters("
                         "model), or name the weights: params=[(model.layer, 'weight'), ...])")
    seen, keys = set(), {}
    ours = None if model is None else {id(m) for m in model.modules()}
    for i, item in enumerate(params):
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], nn.Module)
                and isinstance(item[1], str)):
            raise ValueError(f"params[{i}] must be a (module, 'weight') pair, got {item!r}")
        module, name = item
        if not is_weight(module, name):
            raise ValueError(f"params[{i}]: {type(module).__name__} has no tensor attribute {name!r}")
        if ours is not None and id(module) not in ours:
            raise ValueError(f"params[{i}]: this {type(module).__name__} is not a module of the "
                             f"{type(model).__name__} measured (params computed on another model, e.g. before a "
                             "copy.deepcopy?): compute them on the model you measure, "
                             "prunekit.core.prunable.prunable_parameters(model)")
        w = getattr(module, name + "_orig") if is_pruned(module, name) else read_weight(module, name)  # its shape
        if w.dim() < 2:
            raise ValueError(f"params[{i}]: {type(module).__name__}.{name} has shape {tuple(w.shape)}; only weight "
                             "matrices / conv kernels (2-D or more) are prunable, not biases or norm parameters")
        if not w.is_floating_point():
            raise ValueError(f"params[{i}]: {type(module).__name__}.{name} is not a floating point tensor")
        if (id(module), name) in seen:
            raise ValueError(f"params[{i}]: {type(module).__name__}.{name} appears twice in params")
        key = id(weight_key(module, name))
        if key in keys:
            raise ValueError(f"params[{i}]: {type(module).__name__}.{name} is the tensor of params[{keys[key]}] "
                             "(tied weights: one Parameter in two modules); list it once (it is masked in every "
                             "module that uses it)")
        seen.add((id(module), name))
        keys[key] = i
    return [(m, n) for m, n in params]


class _KeepMask(nn.Module):
    """A parametrization ``w -> where(keep, w, 0)`` (appended to a parametrized weight while it is masked)."""

    def __init__(self, keep: torch.Tensor):
        super().__init__()
        self.register_buffer("keep", keep)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return torch.where(self.keep, w, torch.zeros((), dtype=w.dtype, device=w.device))


class MaskedWeights:
    """Keep-masks on the weights of ``entries`` (``(module, attribute)`` pairs: weights, or the biases and norm
    parameters that go with a unit): :meth:`apply` makes each one ``where(keep, w, 0)`` of its value when the object
    was made, as often as needed; :meth:`restore` (or leaving the ``with`` block) puts every tensor back bitwise and
    removes what was added. Plain and pruned weights are written in place (pruned ones recomputed at once, see the
    module's docstring); parametrized ones are masked by an appended parametrization. ``model`` also refreshes every
    module that shares a pruned tensor. Do not train while it is applied.
    """

    def __init__(self, entries, model: nn.Module | None = None):
        self.slots: list[tuple[str, object, object]] = []
        hooked: dict[int, nn.Module] = {}
        for module, name in entries:
            if is_parametrized(module, name):
                w = read_weight(module, name)
                keep = torch.ones(w.shape, dtype=torch.bool, device=w.device)
                chain = module.parametrizations[name]
                with modes_restored(chain):
                    chain.eval()
                    parametrize.register_parametrization(module, name, _KeepMask(keep), unsafe=True)
                self.slots.append(("parametrized", chain, chain[-1].keep))
                continue
            t = storage(module, name)
            self.slots.append(("stored", t, t.detach().clone()))
            for user, attr in users(model, module, name):
                if is_pruned(user, attr):
                    hooked[id(user)] = user
        self.hooked = list(hooked.values())
        self.open = True

    @torch.no_grad()
    def apply(self, keeps) -> None:
        """Mask each entry with its keep-mask (bool, broadcastable to the tensor; True = keep)."""
        for (kind, t, saved), keep in zip(self.slots, keeps):
            if kind == "parametrized":
                saved.copy_(keep.expand_as(saved))
            else:
                torch.where(keep.to(saved.device), saved, torch.zeros((), dtype=saved.dtype, device=saved.device),
                            out=t.data)
        for module in self.hooked:
            refresh(module)

    @torch.no_grad()
    def restore(self) -> None:
        """Every tensor back bitwise, the appended parametrizations removed (idempotent)."""
        if not self.open:
            return
        for kind, t, saved in self.slots:
            if kind == "parametrized":
                del t[-1]
            else:
                t.data.copy_(saved)
        for module in self.hooked:
            refresh(module)
        self.open = False

    def __enter__(self) -> "MaskedWeights":
        return self

    def __exit__(self, *exc) -> None:
        self.restore()
