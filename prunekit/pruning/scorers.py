"""Importance scorers: one protocol, one registry.

A scorer says how important each weight (or each unit) is; low scores are pruned first. Every scorer is called the
same way (as Torch-Pruning's importance objects are)::

    scorer(params, *, model=None, data=None) -> list[torch.Tensor]

one score tensor per entry of ``params`` (the ``(module, "weight")`` pairs ranked), either weight-shaped (weight
pruning) or one score per unit, a row of the weight (unit pruning). ``model`` is the network that holds ``params``
and ``data`` what it is scored on (any form of ``prunekit.core.data.as_split``); a scorer that needs neither ignores
them. Scorers only score: ``prunekit.pruning.select.masks_from_scores(params, scores, k, scope)`` turns any of them
into masks with the exact-count and tie rules (as ``torch.nn.utils.prune``'s ``importance_scores=`` and
Torch-Pruning's ``Importance`` keep scoring apart from pruning).

:data:`SCORERS` is the one registry of scorers by name, the names the pruning curves
(``prunekit.measures.curves.pruning_curve(methods=[...])``), the effective density, the magnitude ablation, the
magnitude masks and the one-shot retraining (``scorer=``) take; each of those also takes a callable of the protocol,
and :func:`scores_of` is how all of them call one:

* ``"magnitude"`` -- :func:`magnitude_scores`, ``|w|`` (weight pruning of source 003, the magnitude pruning of sources
  000 and 002);
* ``"l2"`` -- :func:`l2_scores`, ``||W[j]||_2`` of each unit's incoming weights (unit pruning of source 003);
* ``"random"`` -- :func:`random_scores`, i.i.d. uniform scores drawn from a generator seeded 0 (a random baseline; the
  pruning curves' ``"random_weight"``/``"random_unit"`` methods draw one permutation from their ``seed`` instead);
* ``"bn_scale"`` -- :func:`bn_scale_scores`, ``|gamma|`` of the batch norm after each layer, one per channel (Network
  Slimming, the channel pruning of source 002); needs ``model``;
* ``"first_order"``, ``"second_order"``, ``"second_order_exact"``, ``"brute_force"`` -- the neuron saliencies of
  source 001 (the change of the summed cross-entropy when a hidden unit's output is set to 0), one per unit of a
  ReLU or tanh MLP; need ``model`` and ``data`` (``prunekit.measures.saliency.saliency_scores``).

A scorer of your own is one function of the protocol and one line,
``SCORERS.register(ScorerEntry("name", function, needs=("model", "data")))``.

Where the saliencies come from: they are computed by source 001's unit network in the measures layer, which the
pruning layer never imports. Their entries are registered there (``prunekit.measures.saliency``), and the registry
names that module as its second provider: like ``prunekit.core.registry.MODELS``, it imports its providers by name on
its first look-up, so ``SCORERS`` always lists every built-in scorer while no pruning code depends on measures code
(a plug-in, as a reader's own package would register its scorers). Moving the unit network into the pruning layer
instead would have split source 001's measure across two layers.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..core.checks import choice, sequence
from ..core.checks import generator as checked_generator
from ..core.registry import Registry
from .masks import Params, check_params, weight_of
from .structure import following_batchnorms

__all__ = ["SCORERS", "ScorerEntry", "scorer", "scores_of", "magnitude_scores", "l2_scores", "random_scores",
           "bn_scale_scores"]

NEEDS = ("model", "data")


@dataclass(frozen=True)
class ScorerEntry:
    """A registered scorer: ``name``, ``score`` (a callable of the protocol, ``score(params, *, model=None,
    data=None)``) and what it ``needs`` besides ``params`` (a subset of ``("model", "data")``, checked before it is
    called). The entry is itself a scorer: ``SCORERS["magnitude"](params)``."""

    name: str
    score: Callable
    needs: tuple[str, ...] = ()

    def __post_init__(self):
        if not callable(self.score):
            raise ValueError(f"score={self.score!r} must be a callable score(params, *, model=None, data=None)")
        for need in sequence("needs", self.needs, nonempty=False):
            choice("needs", need, NEEDS)

    def __call__(self, params, *, model=None, data=None) -> list[torch.Tensor]:
        missing = [n for n, v in (("model", model), ("data", data)) if n in self.needs and v is None]
        if missing:
            what = {"model": "model= (the network that holds params)", "data": "data= (what it is scored on)"}
            raise ValueError(f"scorer={self.name!r} needs {' and '.join(what[n] for n in missing)}")
        return self.score(params, model=model, data=data)


SCORERS: Registry[ScorerEntry] = Registry("scorer", ("prunekit.pruning.scorers", "prunekit.measures.saliency"))


@torch.no_grad()
def magnitude_scores(params: Params, *, model: nn.Module | None = None, data=None) -> list[torch.Tensor]:
    """``|w|`` of every weight, weight-shaped (source 003's weight pruning)."""
    return [weight_of(m, n).detach().abs().float().cpu() for m, n in check_params(params, model)]


@torch.no_grad()
def l2_scores(params: Params, *, model: nn.Module | None = None, data=None) -> list[torch.Tensor]:
    """``||W[j]||_2`` of every unit (row / output channel), one per unit (source 003's unit pruning)."""
    return [weight_of(m, n).detach().flatten(1).float().cpu().norm(p=2, dim=1)
            for m, n in check_params(params, model)]


def random_scores(params: Params, *, model: nn.Module | None = None, data=None, per_unit: bool = False,
                  generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """I.i.d. uniform scores in [0, 1), float64, weight-shaped or one per unit (``per_unit=True``), drawn in
    ``params`` order from ``generator`` (seed 0 without one: the same scores every call). (The pruning curves'
    "random_weight"/"random_unit" methods draw one permutation from their ``seed`` instead: other masks.)"""
    g = checked_generator(generator)
    shapes = [(weight_of(m, n).shape[0],) if per_unit else tuple(weight_of(m, n).shape)
              for m, n in check_params(params, model)]
    return [torch.rand(shape, generator=g, dtype=torch.float64) for shape in shapes]


@torch.no_grad()
def bn_scale_scores(params: Params, *, model: nn.Module | None = None, data=None) -> list[torch.Tensor]:
    """``|gamma|`` of the BatchNorm after each layer of ``params``, one per output channel (Network Slimming, Liu et
    al. 2017, arXiv:1708.06519: the channel pruning of source 002); ``model`` holds the layers and their batch norms
    (paired on its traced graph, ``prunekit.pruning.structure.following_batchnorms``). A layer with no BatchNorm
    right after it is refused."""
    if model is None:
        raise ValueError("model=None: bn_scale_scores reads the BatchNorm after each layer in model's forward; "
                         "give model=")
    params = check_params(params, model)
    bns = following_batchnorms(model, params)
    lacking = [f"{type(m).__name__}.{n}" for (m, n), bn in zip(params, bns) if bn is None]
    if lacking:
        raise ValueError(f"bn_scale_scores needs a BatchNorm right after every layer of params; none follows "
                         f"{', '.join(lacking)} in {type(model).__name__}'s forward")
    return [bn.weight.detach().abs().float() for bn in bns]


SCORERS.register(ScorerEntry("magnitude", magnitude_scores))
SCORERS.register(ScorerEntry("l2", l2_scores))
SCORERS.register(ScorerEntry("random", random_scores))
SCORERS.register(ScorerEntry("bn_scale", bn_scale_scores, needs=("model",)))


def scorer(name_or_fn) -> Callable:
    """The scorer ``name_or_fn`` names in :data:`SCORERS` (its entry, itself a scorer), or a callable as it is; a
    ``ValueError`` naming ``scorer`` and the registered names otherwise."""
    if callable(name_or_fn):
        return name_or_fn
    if not isinstance(name_or_fn, str):
        raise ValueError(f"scorer={name_or_fn!r} must be a name of SCORERS ({', '.join(SCORERS.names())}) or a "
                         "callable score(params, *, model=None, data=None)")
    return SCORERS.entry(name_or_fn, "scorer")


def scores_of(name_or_fn, params: Params, *, model: nn.Module | None = None, data=None) -> list[torch.Tensor]:
    """The scores of ``params`` by a scorer of :data:`SCORERS` (by name) or a callable of the protocol, called as
    ``scorer(params, model=model, data=data)``: the one way every measure calls a scorer. A callable of the older
    form, ``scorer(params)`` alone (no ``model``/``data`` keywords, no ``**kwargs``), is called so, with a
    ``DeprecationWarning``."""
    fn = scorer(name_or_fn)
    if not isinstance(fn, ScorerEntry) and not _takes_protocol(fn):
        warnings.warn(f"scorer {getattr(fn, '__name__', fn)!r} takes params only: a scorer is called as "
                      "scorer(params, *, model=None, data=None) (prunekit.pruning.scorers); the older form is "
                      "deprecated", DeprecationWarning, stacklevel=3)
        return list(fn(params))
    return list(fn(params, model=model, data=data))


def _takes_protocol(fn) -> bool:
    """Whether ``fn`` takes the keywords ``model`` and ``data`` (named, or through ``**kwargs``)."""
    try:
        found = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: assume the protocol
        return True
    names = {p.name for p in found if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    return any(p.kind == p.VAR_KEYWORD for p in found) or {"model", "data"} <= names
