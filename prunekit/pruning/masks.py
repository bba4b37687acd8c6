"""Masks: validate them, apply them in place (restorably or for good), hand them to torch, report their sparsity.

A mask is a bool tensor shaped like its weight, ``True`` = keep, one per ``(module, "weight")`` pair of ``params``
(``prunekit.core.prunable.prunable_parameters(model)``), as in ``torch.nn.utils.prune``. A :class:`UnitMasks` is such a list
whose rows are kept or pruned whole; applying it also silences the pruned units' biases and following BatchNorm.
How masks are *computed* lives in ``prunekit.pruning.select``.
"""

from __future__ import annotations

import contextlib
from typing import Iterable, Iterator, Sequence

import pandas as pd
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from ..core.paths import atomic_write
from ..core.weights import RECURRENT, MaskedWeights, check_params, is_weight, read_weight, refresh, storage, users
from .structure import following_batchnorms

__all__ = ["Params", "UnitMasks", "Masks", "resolve", "masks_applied", "apply_masks_", "to_torch_prune",
           "masks_from_torch_prune", "sparsity", "layer_sparsity", "mask_sparsity",
           "refresh_masked_weights", "weight_of", "check_params", "check_unit_params",
           "unit_companions"]

Params = Sequence[tuple[nn.Module, str]]


class UnitMasks(list):
    """A list of weight-shaped bool masks (whole rows kept or pruned) that remembers it prunes *units*.

    ``units[i]`` is the 1-D keep vector of layer i (one entry per row: an output neuron of a Linear, an output
    channel of a Conv, a row of an attention's input projection, an Embedding's row).  Applying unit masks
    (``masks_applied``, ``apply_masks_``, ``to_torch_prune``) also zeroes what goes with each pruned row
    (:func:`unit_companions`): its bias entry (an attention's ``in_proj_bias`` entry), the bias entry of every other
    module that uses the same tied weight and, when ``model`` is given, the weight and bias of the BatchNorm right
    after the layer, so that the unit's pre-activation is exactly 0 and its output is ``act(0)`` = 0 for ReLU and
    tanh. Recurrent weights (``nn.GRU``, ``nn.LSTM``, ``nn.RNN``) are refused: a row of ``weight_ih_l0`` is one gate
    of one hidden unit, not a unit (:func:`check_unit_params`).
    """

    def __init__(self, masks: Iterable[torch.Tensor], units: Iterable[torch.Tensor]):
        super().__init__(masks)
        self.units = list(units)

    @classmethod
    def from_keeps(cls, params: "Params", keeps) -> "UnitMasks":
        """Weight-shaped masks from one 1-D keep vector per entry of ``params`` (whole rows kept or pruned)."""
        check_unit_params(params)
        masks, units = [], []
        for (m, n), kp in zip(params, keeps):
            w = weight_of(m, n)
            kp = kp.to(w.device)
            units.append(kp)
            masks.append(kp.view(-1, *([1] * (w.dim() - 1))).expand(w.shape).clone())
        return cls(masks, units)


class Masks(dict):
    """Masks keyed by parameter name (``"<module path>.weight"``, as ``model.named_parameters()`` names it), bool,
    True = keep: the form masks are stored, reported and exchanged in (OpenLTH keys its masks the same way).
    ``units=True`` marks unit masks (whole rows; applying them also zeroes biases and the following BatchNorm).

    Every function of this module that applies masks takes a ``Masks`` as well as a positional list (then with
    ``model=``, which resolves the names). ``Masks.from_params(model, params, masks)`` names a positional list;
    ``masks.for_params(model, params)`` gives it back in ``params`` order (a :class:`UnitMasks` for unit masks);
    ``save`` / ``load`` write and read them atomically (``torch.load(weights_only=True)``; a file without the unit
    flag loads as weight masks); ``report()`` is a tidy table of what is pruned where.
    """

    def __init__(self, masks=(), units: bool | None = None):
        super().__init__(masks)
        self.units = bool(masks.units if units is None and isinstance(masks, Masks) else units)

    def copy(self) -> "Masks":
        return Masks(self)

    @staticmethod
    def names(model: nn.Module, params: Params) -> list[str]:
        where = {id(m): n for n, m in model.named_modules()}
        out = []
        for module, attr in check_params(params):
            if id(module) not in where:
                raise ValueError(f"params holds a {type(module).__name__} that is not part of model")
            out.append(f"{where[id(module)]}.{attr}".lstrip("."))
        return out

    @classmethod
    def from_params(cls, model: nn.Module, params: Params, masks) -> "Masks":
        if isinstance(masks, Masks):
            masks = masks.for_params(model, params)
        units = isinstance(masks, UnitMasks)
        masks = _check_masks(check_params(params), masks)
        return cls({name: m.detach().bool().cpu().clone() for name, m in zip(cls.names(model, params), masks)},
                   units=units)

    @classmethod
    def from_units(cls, model: nn.Module, params: Params, removed) -> "Masks":
        """Unit masks with the units ``removed`` pruned: ``(i, j)`` = row ``j`` of ``params[i]`` (e.g. the first m
        entries of ``prunekit.measures.saliency.PruneResult.order`` for an MLP, whose hidden layers are its params)."""
        params = check_params(params)
        keeps = [torch.ones(weight_of(m, n).shape[0], dtype=torch.bool, device=weight_of(m, n).device) for m, n in params]
        for item in removed:
            i, j = item
            if not (0 <= i < len(keeps) and 0 <= j < keeps[i].numel()):
                raise ValueError(f"removed unit {item!r} is not a (layer, unit) of params: layers have "
                                 f"{[k.numel() for k in keeps]} units")
            keeps[i][j] = False
        return cls.from_params(model, params, UnitMasks.from_keeps(params, keeps))

    def for_params(self, model: nn.Module, params: Params) -> list[torch.Tensor]:
        params = check_params(params)
        names = self.names(model, params)
        missing = [n for n in names if n not in self]
        if missing:
            raise ValueError(f"no mask for {', '.join(missing)}; have {', '.join(self) or 'none'}")
        masks = [self[n].to(weight_of(m, a).device) for n, (m, a) in zip(names, params)]
        masks = _check_masks(params, masks)
        if not self.units:
            return masks
        keeps = [mk.reshape(mk.shape[0], -1).all(1) for mk in masks]
        if any(not torch.equal(mk.reshape(mk.shape[0], -1).any(1), kp) for mk, kp in zip(masks, keeps)):
            raise ValueError("Masks(units=True) must keep or prune whole rows")
        return UnitMasks(masks, keeps)

    def params(self, model: nn.Module) -> list[tuple[nn.Module, str]]:
        """The ``(module, attribute)`` pairs these masks name, found in ``model``, in the model's module order."""
        modules = dict(model.named_modules())
        order = {name: i for i, name in enumerate(modules)}
        found = []
        for name in self:
            path, _, attr = name.rpartition(".")
            module = modules.get(path)
            if module is None or not is_weight(module, attr):
                raise ValueError(f"mask {name!r} names no parameter of this {type(model).__name__}")
            found.append((order[path], attr, module))
        return [(module, attr) for _, attr, module in sorted(found, key=lambda t: (t[0], t[1]))]

    def report(self):
        """One row per parameter: parameter, weights, kept, pruned, sparsity (fraction pruned)."""
        rows = [{"parameter": n, "weights": m.numel(), "kept": int(m.sum()), "pruned": int((~m).sum()),
                 "sparsity": float((~m).sum()) / max(1, m.numel())} for n, m in self.items()]
        return pd.DataFrame(rows, columns=["parameter", "weights", "kept", "pruned", "sparsity"])

    def save(self, path) -> None:
        state = {n: m.detach().cpu().clone() for n, m in self.items()}  # stored on the CPU: loadable anywhere
        state[_UNITS_KEY] = torch.tensor(self.units)
        atomic_write(path, lambda tmp: torch.save(state, tmp))

    @classmethod
    def load(cls, path) -> "Masks":
        state = torch.load(path, weights_only=True, map_location="cpu")
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) and v.dtype == torch.bool
                                                  for v in state.values()):
            raise ValueError(f"{path} does not hold masks (a dict of bool tensors)")
        units = state.pop(_UNITS_KEY, torch.tensor(False))
        return cls(state, units=bool(units))


_UNITS_KEY = "__units__"  # the unit flag's entry in a saved file (not a parameter name: those hold a dot)


def resolve(params: Params, masks, model: nn.Module | None = None) -> list[torch.Tensor]:
    """Positional masks for ``params``: a list as given (checked), or a :class:`Masks` looked up by name in
    ``model``. Unit masks stay :class:`UnitMasks`."""
    params = check_params(params)
    if isinstance(masks, Masks):
        if model is None:
            raise ValueError("masks keyed by parameter name (Masks) need model= to find the parameters' names")
        return masks.for_params(model, params)
    checked = _check_masks(params, masks)  # on the weights' devices
    if isinstance(masks, UnitMasks):
        return UnitMasks(checked, [u.to(m.device) for u, m in zip(masks.units, checked)])
    return checked


weight_of = read_weight  # the weight as the forward pass uses it (prunekit.core.weights.read_weight)
refresh_masked_weights = refresh  # recompute a module's torch.nn.utils.prune weights now (prunekit.core.weights)


def check_unit_params(params) -> None:
    """Refuse unit masks on recurrent weights: a row of an ``nn.GRU``/``nn.LSTM``/``nn.RNN`` weight is one gate of
    one hidden unit, and its biases (``bias_ih``, ``bias_hh``) would stay; weight masks are defined for them."""
    rnn = [f"{type(m).__name__}.{n}" for m, n in params if isinstance(m, RECURRENT)]
    if rnn:
        raise ValueError(f"unit pruning of recurrent weights ({', '.join(rnn)}) is not defined here: a row of a "
                         "GRU/LSTM weight is one gate of one hidden unit, not a unit; use weight pruning for them "
                         "(methods 'weight', 'random_weight', weight Masks), or leave them out of params=")


def _check_masks(params, masks) -> list[torch.Tensor]:
    if masks is None or isinstance(masks, torch.Tensor):
        raise ValueError("masks must be a list of bool tensors, one per entry of params")
    masks = list(masks)
    if len(masks) != len(params):
        raise ValueError(f"got {len(masks)} masks for {len(params)} params: need exactly one mask per parameter")
    for i, ((module, name), m) in enumerate(zip(params, masks)):
        w = weight_of(module, name)
        if not isinstance(m, torch.Tensor):
            raise ValueError(f"masks[{i}] must be a bool tensor, got {type(m).__name__}")
        if m.dtype != torch.bool:
            raise ValueError(f"masks[{i}] must have dtype torch.bool (True = keep), got {m.dtype}")
        if tuple(m.shape) != tuple(w.shape):
            raise ValueError(f"masks[{i}] has shape {tuple(m.shape)} but {type(module).__name__}.{name} has shape "
                             f"{tuple(w.shape)}: a mask must have the shape of its weight")
    return [m.to(weight_of(module, name).device) for (module, name), m in zip(params, masks)]


def unit_keeps(masks) -> list[torch.Tensor] | None:
    return list(masks.units) if isinstance(masks, UnitMasks) else None


# ----------------------------------------------------------------------------------------------------------------
# applying masks
# ----------------------------------------------------------------------------------------------------------------


def unit_companions(params, masks, model=None) -> list[tuple[nn.Module, str, torch.Tensor]]:
    """What unit masks also zero, as ``(owner, attribute, keep)`` with ``keep`` shaped like that tensor (True = keep):
    each pruned row's bias entry (``bias``; an attention's ``in_proj_bias`` for ``in_proj_weight`` and the
    ``q/k/v_proj_weight`` thirds of it), the bias entry of every other module that uses the same tied weight, and,
    with ``model``, the following BatchNorm's weight and bias entries. Empty for weight masks."""
    keeps = unit_keeps(masks)
    if keeps is None:
        return []
    check_unit_params(params)
    if model is None and any(isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) for m, _ in params):
        raise ValueError("unit masks on conv layers need model= so the BatchNorm after each conv can be zeroed too "
                         "(otherwise the pruned channel's output is BN's shift, not 0)")
    found: dict[tuple[int, str], list] = {}  # one entry per tensor: q, k and v share in_proj_bias

    def add(owner, attr, keep, part=None):
        if owner is None or not is_weight(owner, attr):
            return
        size = read_weight(owner, attr).shape
        if part is not None:  # keep covers one third of in_proj_bias
            full = torch.ones(size, dtype=torch.bool, device=keep.device)
            full[part * keep.numel():(part + 1) * keep.numel()] = keep
            keep = full
        if tuple(size) != tuple(keep.shape):
            return
        entry = found.setdefault((id(owner), attr), [owner, attr, keep])
        entry[2] = entry[2] & keep.to(entry[2].device)

    bns = following_batchnorms(model, params) if model is not None else [None] * len(params)
    for (module, name), keep, bn in zip(params, keeps, bns):
        if isinstance(module, nn.MultiheadAttention):
            parts = {"in_proj_weight": None, "q_proj_weight": 0, "k_proj_weight": 1, "v_proj_weight": 2}
            add(module, "in_proj_bias", keep, parts.get(name))
        else:
            for user, attr in users(model, module, name):
                add(user, "bias" if attr == "weight" else f"{attr}_bias", keep)
        add(bn, "weight", keep)
        add(bn, "bias", keep)
    return [tuple(entry) for entry in found.values()]


@contextlib.contextmanager
def masks_applied(params: Params, masks, model: nn.Module | None = None) -> Iterator[None]:
    """Zero the masked weights for the duration of the block, then restore them bitwise.

    Cheap (one copy of each pruned tensor, no deepcopy of the model), for evaluation sweeps::

        with masks_applied(params, weight_masks(params, 90)):
            loss, acc = evaluate(model, ds.test)

    The weights the forward pass uses are masked (``prunekit.core.weights.MaskedWeights``): under
    torch.nn.utils.prune the stored original, the masked weight recomputed at once; a parametrized weight by an
    appended keep-mask parametrization; a tied Parameter once, for every module that uses it. Unit masks
    (``UnitMasks``) also zero what goes with each unit (:func:`unit_companions`). ``model`` (when given) must hold
    every module of ``params``. Do not train inside the block (use ``to_torch_prune`` for that).
    """
    params = check_params(params, model)
    masks = resolve(params, masks, model)
    companions = unit_companions(params, masks, model)
    entries = list(params) + [(owner, attr) for owner, attr, _ in companions]
    with MaskedWeights(entries, model) as masked:
        masked.apply(list(masks) + [keep for _, _, keep in companions])
        yield


@torch.no_grad()
def apply_masks_(params: Params, masks, model: nn.Module | None = None) -> None:
    """Zero the masked weights in place, permanently (unit masks: what goes with each unit too). Under
    torch.nn.utils.prune the stored original is zeroed and the masked weight recomputed; a parametrized weight is
    refused (``prunekit.core.weights.storage``: no value of its originals is the masked weight)."""
    params = check_params(params, model)
    masks = resolve(params, masks, model)
    targets = [(m, n, mk) for (m, n), mk in zip(params, masks)] + unit_companions(params, masks, model)
    tensors = [storage(m, n) for m, n, _ in targets]  # a parametrized weight refused before anything is written
    for (m, n, keep), t in zip(targets, tensors):
        t.masked_fill_(~keep.to(t.device), 0.0)
        for user, attr in users(model, m, n):
            refresh(user)


def to_torch_prune(params: Params, masks, model: nn.Module | None = None) -> None:
    """Attach the masks with ``torch.nn.utils.prune.custom_from_mask`` so retraining keeps them (weight_orig,
    weight_mask, forward pre-hook), on every module of ``model`` that uses a masked tensor (tied weights). Unit masks
    also mask what goes with each unit (:func:`unit_companions`: biases, the following BatchNorm, given ``model``).
    Undo with ``torch.nn.utils.prune.remove(module, "weight")`` (makes the zeros permanent). A parametrized weight
    (weight_norm, spectral_norm) is refused: its originals cannot hold a masked weight
    (``prunekit.core.weights.storage`` says how to fold it first).

    A ``MultiheadAttention`` reads ``out_proj.weight`` without calling ``out_proj``'s forward, so the hook there
    would never refresh it (and a second backward pass would fail); with ``model`` given, the attention module
    refreshes it before each of its forward passes (a ``model`` is then required).
    """
    params = check_params(params, model)
    masks = resolve(params, masks, model)
    for m, n in params:
        storage(m, n)  # a parametrized weight refused before any hook is attached
    companions = unit_companions(params, masks, model)
    held = [(user, attr, mk) for (m, n), mk in zip(params, masks) for user, attr in users(model, m, n)]
    _refresh_bypassed_layers([(user, attr) for user, attr, _ in held], model)
    for user, attr, mk in held:
        torch_prune.custom_from_mask(user, attr, mk.to(read_weight(user, attr).device))
    for owner, attr, keep in companions:
        torch_prune.custom_from_mask(owner, attr, keep.to(read_weight(owner, attr).device))


def _refresh_bypassed_layers(params, model: nn.Module | None) -> None:
    """Make every MultiheadAttention whose ``out_proj`` is masked refresh it before each of its forward passes."""
    masked = {id(m) for m, _ in params}
    owners = [] if model is None else [a for a in model.modules()
                                       if isinstance(a, nn.MultiheadAttention) and id(a.out_proj) in masked]
    if model is None and any(type(m).__name__ == "NonDynamicallyQuantizableLinear" for m, _ in params):
        raise ValueError("masking a MultiheadAttention's out_proj needs model= (the attention module reads its weight "
                         "without calling its forward, so the mask must be refreshed from the attention module)")
    for attention in owners:
        if not getattr(attention, "_prunekit_refreshes_out_proj", False):
            attention.register_forward_pre_hook(lambda mod, _args: refresh(mod.out_proj))
            attention._prunekit_refreshes_out_proj = True


def masks_from_torch_prune(params: Params) -> list[torch.Tensor]:
    """The bool masks (True = keep) that torch.nn.utils.prune holds on each ``(module, "weight")``."""
    params = check_params(params)
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
    params = check_params(params)
    zeros = sum(int((weight_of(m, n) == 0).sum()) for m, n in params)
    total = sum(weight_of(m, n).numel() for m, n in params)
    return zeros / total


@torch.no_grad()
def layer_sparsity(params: Params) -> list[float]:
    """Measured fraction of exactly-zero entries of each weight in ``params``."""
    params = check_params(params)
    return [float((weight_of(m, n) == 0).float().mean()) for m, n in params]


@torch.no_grad()
def mask_sparsity(params: Params, masks, model: nn.Module | None = None) -> tuple[float, list[float]]:
    """(overall, per-layer) fraction of zeros the weights would have with ``masks`` applied, without applying them
    (counts pruned entries and entries that are already 0); ``model`` resolves a :class:`Masks`."""
    params = check_params(params)
    mask_list = resolve(params, masks, model)
    zeros = [int(((~mk) | (weight_of(m, n) == 0)).sum()) for (m, n), mk in zip(params, mask_list)]
    sizes = [mk.numel() for mk in mask_list]
    return sum(zeros) / sum(sizes), [z / s for z, s in zip(zeros, sizes)]
