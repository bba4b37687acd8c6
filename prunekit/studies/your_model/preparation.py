"""Notebook 07's presets (:class:`Preset`, :data:`PRESETS`, :func:`preset`) and the reader's model prepared for the
measures (:func:`prepare`: a :class:`Setup` that carries its preset), with what the measures cover
(:func:`choose_params`, :func:`left_out`)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Sequence

import pandas as pd
import torch
from torch import nn

from ...core.checks import count, fraction, number, sequence
from ...core.config import check_profile
from ...core.data import Split
from ...core.device import resolve_device
from ...core.prunable import checked_labels, logits_model, output_layer, prunable_parameters, weight_coverage
from ...core.store import fit_or_load
from ...core.train import evaluate
from ...core.weights import RECURRENT, check_params, is_weight, weight_key
from ...measures.density import warn_if_at_chance
from ..protocol import StudyPreset
from .reader import build_model, checkpoint_path, data_spec, import_object, load_checkpoint, load_data, optimizer_factory

__all__ = ["Preset", "PRESETS", "preset", "Setup", "left_out", "choose_params", "prepare"]


@dataclass(frozen=True)
class Preset(StudyPreset):
    """How much each measure samples in a profile (the model and its schedule are the reader's); every setting is
    checked when the preset is made, so the values a notebook gives in the profile's place (:meth:`with_overrides`)
    are checked before anything is loaded or trained. ``dataset`` must have one of
    ``prunekit.studies.your_model.load_data``'s forms (checked, nothing loaded)."""

    dataset: str  # the default data set
    lrs: tuple[float, ...]  # training schedule when no checkpoint is given (SGD, momentum 0.9, unless optimizer=)
    batch_size: int
    ks: tuple[float, ...]  # pruning curves: % of the weights (or units) pruned
    ratios: tuple[float, ...]  # random ablation: fraction of the weights ablated
    n_subsets: int  # random ablation: subsets per ratio (source 002 draws 500)
    n_bands: int  # magnitude ablation: bands by |w|
    band_ratios: tuple[float, ...]
    band_subsets: int
    sparsity: float  # the pruned-and-retrained copy: fraction of the weights pruned (global magnitude)
    retrain_epochs: int  # its fine-tuning epochs, at the schedule's last learning rate
    grid: int  # the plane: points per axis
    path_points: int  # the straight line: points
    eval_samples: int | None  # samples of the test split the measures evaluate on (None: all of it)
    bn_samples: int  # training samples on which batch-norm statistics are recomputed at each point of the plane
    profile: str = ""  # the profile it is the preset of (with the reader's settings in its place)

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 - a frozen dataclass
        set_("dataset", data_spec(self.dataset))
        set_("lrs", tuple(sequence("lrs", self.lrs, item=lambda n, v: number(n, v, low=0.0))))
        for name in ("batch_size", "n_subsets", "n_bands", "band_subsets", "retrain_epochs", "bn_samples"):
            set_(name, count(name, getattr(self, name)))
        set_("sparsity", fraction("sparsity", self.sparsity, high_open=True))
        set_("grid", count("grid", self.grid, low=2))
        set_("path_points", count("path_points", self.path_points, low=2))
        if self.eval_samples is not None:
            set_("eval_samples", count("eval_samples", self.eval_samples))


# The data set is the reader's (digits by default in every profile: the example models are made for 8x8 images);
# a profile sets the training schedule of the example models and how densely each measure samples.
KS = (0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 98, 99)
PRESETS = {name: dataclasses.replace(p, profile=name) for name, p in {
    "quick": Preset("digits", (0.05, 0.05, 0.01), 64, (0, 10, 25, 50, 60, 75, 90, 95, 98), (0.05, 0.1, 0.2, 0.4), 20,
                    5, (0.5, 1.0), 5, 0.8, 3, 7, 9, None, 512),
    "paper": Preset("digits", (0.05,) * 6 + (0.01,) * 3, 64, KS, (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5), 100, 10,
                    (0.1, 0.5, 1.0), 20, 0.8, 5, 15, 21, None, 1347),
    "full": Preset("digits", (0.05,) * 10 + (0.01,) * 5, 64, KS, (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8,
                                                                 0.9), 500, 10, (0.1, 0.5, 1.0), 50, 0.8, 5, 21, 21,
                   None, 1347),
}.items()}


def preset(profile: str) -> Preset:
    """The profile's :class:`Preset` (``ValueError`` naming the allowed profiles); a run's own settings go in its
    place with :meth:`Preset.with_overrides` (``dataset``, ``lrs``, ``batch_size``, ``sparsity``, ...)."""
    return PRESETS[check_profile(profile, PRESETS)]


@dataclass
class Setup:
    """The reader's trained model and the data every measure uses, with what the measures cover, and the
    :class:`Preset` the measures read how much to sample from (``preset``: the profile's, with the run's own
    settings in its place; given by keyword)."""

    model: nn.Module  # the logits model (``output_fn`` applied when given)
    train: Split
    test: Split  # what the measures evaluate on (``eval_samples`` of the test split)
    dataset: str
    params: list  # the weights measured: (module, "weight") pairs (the default set, or the reader's params)
    coverage: dict  # prunekit.core.prunable.weight_coverage
    history: pd.DataFrame | None  # the training history (None when a checkpoint was loaded)
    dense: dict = field(default_factory=dict)  # test loss and accuracy of the dense model
    schedule: dict = field(default_factory=dict)  # lrs, optimizer, batch size, seed
    left_out: list = field(default_factory=list)  # (what, parameters) the measures do not cover, largest first
    preset: Preset = field(kw_only=True)  # how much each measure samples: the measures read it, no profile again

    def __post_init__(self):
        if not isinstance(self.preset, Preset):
            raise ValueError(f"preset={self.preset!r} must be a Preset (prunekit.studies.your_model.preset(profile))")

    def describe(self) -> str:
        c = self.coverage
        total = c["model_parameters"]
        out = "; ".join(f"{what} {n / total:.1%}" for what, n in self.left_out) or "nothing"
        return (f"{type(self.model).__name__} on {self.dataset}: test accuracy {self.dense['accuracy']:.3f}; "
                f"the measures cover {c['weights']:,} of its {total:,} parameters "
                f"({c['share']:.1%}: {len(c['tensors'])} weight tensors); left out: {out}; sampled as the "
                f"{self.preset.profile or 'given'} preset sets")


def left_out(model: nn.Module, params, head: nn.Module | None = None) -> list[tuple[str, int]]:
    """What the weights ``params`` leave out of ``model``'s parameters, grouped and largest first: ``[(what, number
    of parameters), ...]``, where ``what`` names the layer into the logits (``head``), a recurrent layer, another
    weight of a kind the default set does not hold (a learned position table), or all other biases and normalisation
    parameters together (a recurrent layer's biases are counted with it)."""
    measured = set()
    for m, a in params:
        key = weight_key(m, a)  # a Parameter, or a parametrization list holding its originals
        measured |= {id(p) for p in key.parameters()} if isinstance(key, nn.Module) else {id(key)}
    groups: dict[str, int] = {}
    seen = set()
    for path, module in model.named_modules():
        for attr, p in module.named_parameters(recurse=False):
            if id(p) in measured or id(p) in seen:
                continue
            seen.add(id(p))
            name = f"{path}.{attr}".lstrip(".")
            if head is not None and (module is head or any(module is m for m in head.modules())):
                what = f"{name} (the layer into the logits)" if p.dim() >= 2 else "biases and normalisation"
            elif isinstance(module, RECURRENT):  # its weights and biases together
                what = f"{path} ({type(module).__name__}: recurrent weights are not a default kind)"
            elif p.dim() < 2:
                what = "biases and normalisation"
            else:
                what = f"{name} ({type(module).__name__}: not a default kind)"
            groups[what] = groups.get(what, 0) + p.numel()
    return sorted(groups.items(), key=lambda kv: -kv[1])


def choose_params(model: nn.Module, net: nn.Module, params=None, include_output: bool = False,
                  example: torch.Tensor | None = None) -> list:
    """The weights the measures cover, as ``(module, attribute)`` pairs of ``net`` (``model`` or its logits view):
    the default set (``prunable_parameters``; ``include_output=True`` adds the layer into the logits), or ``params``,
    a list of ``model``'s parameter names (``["rnn.weight_ih_l0", "head.weight"]``, as ``model.state_dict()``
    names them) or the import path of a function ``model -> [(module, "weight"), ...]``. Checked before any
    compute."""
    if params is None:
        return prunable_parameters(net, include_output=bool(include_output), example=example)
    if include_output:
        raise ValueError("include_output=True adds the layer into the logits to the default weight set; with "
                         "params= the weights are those named: name the head's weight in params instead")
    if isinstance(params, str):
        chosen = import_object(params, "params")
        chosen = chosen(model) if callable(chosen) else chosen
    elif isinstance(params, (list, tuple)) and params and all(isinstance(p, str) for p in params):
        modules = dict(model.named_modules())
        chosen = []
        for name in params:
            path, _, attr = name.rpartition(".")
            if path not in modules or not is_weight(modules[path], attr):
                have = [n for n, p in model.named_parameters() if p.dim() >= 2]
                raise ValueError(f"params: {name!r} names no weight of {type(model).__name__}; its weights are "
                                 f"{', '.join(have[:12])}{', ...' if len(have) > 12 else ''}")
            chosen.append((modules[path], attr))
    else:
        chosen = params
    return check_params(chosen, net)


def prepare(model: str | nn.Module, dataset: str | None = None, *, checkpoint: str | os.PathLike | None = None,
            profile: str = "quick", settings: Preset | None = None, model_kwargs=None,
            lrs: Sequence[float] | None = None,
            optimizer: str | None = None, batch_size: int | None = None, seed: int = 0, output_fn=None,
            eval_samples: int | None = None, device: str = "auto", root: str | os.PathLike | None = None,
            params=None, include_output: bool = False) -> Setup:
    """The reader's model, trained (or loaded from ``checkpoint``), and its data: a :class:`Setup`.

    model: a factory's spec (:func:`build_model`, called with ``model_kwargs`` after ``torch.manual_seed(seed)``)
      or a module. dataset: :func:`load_data`'s spec (None: the profile's, digits; ``"digits:3x32x32"`` resizes and
      repeats channels for image models). Without a checkpoint the model is trained with
      ``prunekit.core.store.fit_or_load`` on ``lrs`` (one learning rate per epoch; the profile's by default) with SGD
      (momentum 0.9) or ``optimizer`` (an import path of a ``torch.optim`` class), batches of ``batch_size``, shuffled
      from ``seed``; a second run with the same model, data and schedule loads the trained weights.
    output_fn: the logits of a model whose forward returns a dict or a tuple: a module-level function, or its import
      path (as ``model``). eval_samples: the first samples of the test split the measures use (None: the profile's).
      With a checkpoint, ``lrs`` and ``optimizer`` are the schedule the pruned copy is fine-tuned with (its last
      learning rate): give the ones the model was trained with, or the profile's are used, with a warning then.
    device: where the model is trained and measured ("auto": CUDA when torch sees a GPU, else the CPU).
    params, include_output: the weights measured (:func:`choose_params`): parameter names or an import path, or the
      default set, with the layer into the logits when ``include_output``. They, the labels (class indices in
      ``[0, number of logits)``, any integer dtype) and the inputs (no NaN) are checked before any training.
    settings: the :class:`Preset` the run samples with (notebook 07's: the profile's with its parameters in place);
      None: ``preset(profile)``. ``dataset``, ``lrs``, ``batch_size`` and ``eval_samples`` given here go in its
      place; the :class:`Setup` carries the result, and every measure of it reads how much to sample from there.
    """
    pre = preset(profile) if settings is None else settings
    if not isinstance(pre, Preset):
        raise ValueError(f"settings={settings!r} must be a Preset (prunekit.studies.your_model.preset(profile))")
    seed = count("seed", seed, low=0)
    if not isinstance(model, (str, nn.Module)):
        raise ValueError(f"model={model!r} must be a factory's import path or a torch.nn.Module; got "
                         f"{type(model).__name__}")
    given = lrs is not None
    pre = pre.with_overrides(dataset=dataset, lrs=lrs, batch_size=batch_size, eval_samples=eval_samples)
    lrs, batch_size, eval_samples = list(pre.lrs), pre.batch_size, pre.eval_samples
    factory = optimizer_factory(optimizer, lrs[0])  # checked before any compute
    if checkpoint is not None:
        checkpoint_path(checkpoint)
    if isinstance(output_fn, str):
        output_fn = import_object(output_fn, "output_fn")
    device = resolve_device(device)
    train, test, name = load_data(pre.dataset, root=root)
    if isinstance(model, str):
        model = build_model(model, seed, **dict(model_kwargs or {}))
    elif not isinstance(model, nn.Module):
        raise ValueError(f"model must be a factory's import path or a torch.nn.Module; got {type(model).__name__}")
    model.to(device)
    net = logits_model(model, output_fn)
    train = Split(train.x, checked_labels(net, train.x, train.y, name="dataset (train)"))  # before any training
    test = Split(test.x, checked_labels(net, test.x, test.y, name="dataset (test)"))
    if eval_samples is not None:
        test = Split(test.x[:eval_samples], test.y[:eval_samples])
    chosen = choose_params(model, net, params, include_output, test.x[:2])
    history = None
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    else:
        history = fit_or_load(model, train, lrs=lrs, optimizer=factory, batch_size=batch_size, seed=seed,
                              output_fn=output_fn)
    net.eval()
    loss, acc = evaluate(net, test)
    warn_if_at_chance(acc, test.y, f"{type(model).__name__} on {name}")
    try:
        head = output_layer(net, test.x[:2])
    except ValueError:  # no layer into the logits to tell apart: nothing is called so
        head = None
    return Setup(net, train, test, name, chosen, weight_coverage(net, chosen), history,
                 {"loss": loss, "accuracy": acc},
                 {"lrs": lrs, "optimizer": optimizer or "SGD(momentum=0.9)", "batch_size": batch_size, "seed": seed,
                  "origin": "trained here" if checkpoint is None else "given with the checkpoint" if given
                  else "the profile's (the checkpoint's own schedule was not given)"},
                 left_out(net, chosen, head), preset=pre)
