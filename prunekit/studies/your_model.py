"""Notebook 07, "Your model": the sources' measures on a network that is not prunekit's.

A reader names a model (an import path ``"package.module:factory"`` or a file ``"path/to/file.py:factory"``), a data
set (one of prunekit's, or a function that returns train and test data) and, optionally, a checkpoint. Without a
checkpoint the model is trained briefly on the reader's schedule through the cache (``prunekit.core.store.fit_or_load``:
keyed by a digest of its initial weights, of the data and of the schedule). Then every measure runs on the model's
default weight set (``prunekit.core.models.prunable_parameters``: the layer into the logits traced, not named), and
every table says what it covered:

- pruning curves by weights and by units, magnitude and random, without retraining (source 003's Figure 1 setup):
  :func:`pruning_curves`;
- effective density |omega| / |theta| (source 000): :func:`density_table`;
- random and magnitude ablation with the utility imbalance (the standard deviation of the KL utility, source 002):
  :func:`ablation_tables`;
- a pruned-and-retrained copy, the straight line to it and the plane through the three networks (source 002):
  :func:`prune_and_fine_tune`, :func:`surface_tables`;
- Hoyer sparsity per layer (source 000's sparsity measure): :func:`hoyer_table`.

No published claim is decided here: the reader's model is not a source's setup. The presets (:data:`PROFILES`) set
how much each measure samples; the model and the training schedule are the reader's.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import importlib.util
import re
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pandas as pd
import torch
from torch import nn

from ..core.checks import count, fraction, number, sequence
from ..core.config import DataConfig, check_profile
from ..core.data import DATASETS, Dataset, Split, as_split, load_dataset
from ..core.device import resolve_device
from ..core.prunable import (checked_labels, logits_model, output_layer, parameter_names, prunable_parameters,
                             weight_coverage)
from ..core.initialisation import plain_state_dict
from ..core.weights import RECURRENT, check_params, copy_model, is_weight, weight_key
from ..core.store import fit_or_load
from ..core.train import evaluate
from ..measures import surface as S
from ..measures.curves import pruning_curve
from ..measures.density import effective_density, hoyer_sparsity, warn_if_at_chance
from ..measures.imbalance import imbalance_table
from ..measures.utility import magnitude_ablation, random_ablation
from ..pruning.masks import weight_of
from ..pruning.retrain import fine_tune, magnitude_masks, pruned_model

__all__ = ["Preset", "PROFILES", "preset", "import_object", "build_model", "load_data", "load_checkpoint", "Setup",
           "left_out", "choose_params", "prepare", "pruning_curves", "density_table", "ablation_tables",
           "prune_and_fine_tune", "surface_tables", "hoyer_table", "FineTuned", "summary_table"]


@dataclass(frozen=True)
class Preset:
    """How much each measure samples in a profile (the model and its schedule are the reader's)."""

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


# The data set is the reader's (digits by default in every profile: the example models are made for 8x8 images);
# a profile sets the training schedule of the example models and how densely each measure samples.
KS = (0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 98, 99)
PROFILES = {
    "quick": Preset("digits", (0.05, 0.05, 0.01), 64, (0, 10, 25, 50, 60, 75, 90, 95, 98), (0.05, 0.1, 0.2, 0.4), 20,
                    5, (0.5, 1.0), 5, 0.8, 3, 7, 9, None, 512),
    "paper": Preset("digits", (0.05,) * 6 + (0.01,) * 3, 64, KS, (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5), 100, 10,
                    (0.1, 0.5, 1.0), 20, 0.8, 5, 15, 21, None, 1347),
    "full": Preset("digits", (0.05,) * 10 + (0.01,) * 5, 64, KS, (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8,
                                                                 0.9), 500, 10, (0.1, 0.5, 1.0), 50, 0.8, 5, 21, 21,
                   None, 1347),
}


def preset(profile: str, *, dataset: str | None = None, lrs=None, batch_size: int | None = None) -> Preset:
    """The profile's :class:`Preset` (``ValueError`` naming the allowed profiles), with the ``dataset``, ``lrs`` and
    ``batch_size`` given in its place (None: the profile's): the settings a run actually uses. ``dataset`` must have
    one of :func:`load_data`'s forms (checked here, nothing loaded)."""
    pre = PROFILES[check_profile(profile)]
    overrides = {}
    if dataset is not None:
        overrides["dataset"] = _data_spec(dataset)
    if lrs is not None:
        overrides["lrs"] = tuple(sequence("lrs", lrs, item=lambda n, v: number(n, v, low=0.0)))
    if batch_size is not None:
        overrides["batch_size"] = count("batch_size", batch_size)
    return dataclasses.replace(pre, **overrides)


# ------------------------------------------------------------------------------------------------ the reader's parts
def import_object(spec: str, what: str = "model"):
    """The object ``spec`` names: ``"package.module:name"`` (imported) or ``"path/to/file.py:name"`` (loaded from the
    file). ``ValueError`` naming ``what`` for a spec of another form, a missing file, module or name."""
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise ValueError(f"{what}={spec!r} must be 'package.module:name' (e.g. 'torchvision.models:resnet18') or "
                         f"'path/to/file.py:name'")
    where, name = spec.split(":")
    if where.endswith(".py"):
        path = Path(where).expanduser().resolve()
        if not path.is_file():
            raise ValueError(f"{what}={spec!r}: no file {path}")
        # a name stable across processes: a model class's module is part of its training cache key
        module_name = f"prunekit_user_{path.stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"
        loaded = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(loaded)
        sys.modules[module_name] = module  # so that pickling and dataclasses inside the file work
        loaded.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as err:
            raise ValueError(f"{what}={spec!r}: cannot import {where!r} ({err})") from err
    if not hasattr(module, name):
        raise ValueError(f"{what}={spec!r}: {where!r} has no {name!r}")
    return getattr(module, name)


def build_model(spec: str, seed: int = 0, **kwargs) -> nn.Module:
    """``factory(**kwargs)`` for the factory ``spec`` names (:func:`import_object`), built after
    ``torch.manual_seed(seed)`` (the same initial weights for the same seed), in eval mode."""
    seed = count("seed", seed, low=0)
    factory = import_object(spec, "model")
    if not callable(factory):
        raise ValueError(f"model={spec!r} names a {type(factory).__name__}, not a factory that returns a module")
    torch.manual_seed(seed)
    model = factory(**kwargs)
    if not isinstance(model, nn.Module):
        raise ValueError(f"model={spec!r} returned a {type(model).__name__}, not a torch.nn.Module")
    return model.eval()


def load_data(spec: str, root: str | os.PathLike | None = None) -> tuple[Split, Split, str]:
    """``(train, test, name)``: prunekit's data set ``spec`` (``load_dataset``), or what the function ``spec`` names
    returns (:func:`import_object`): a prunekit Dataset, or a pair ``(train, test)`` of any data form
    (``(x, y)`` tensors, a Split, a DataLoader), gathered in memory.

    An image data set of prunekit's takes a shape, ``"<name>:<C>x<H>x<W>"`` (``"digits:3x32x32"``,
    ``"mnist:3x224x224"``), for models made for other images, such as torchvision's: the images are resized (bilinear,
    antialiased, before standardisation: ``DataConfig(resize=H)``; square sizes only) and their one channel
    repeated ``C`` times (or three channels averaged into one)."""
    shaped = re.fullmatch(r"(\w+):(\d+)x(\d+)x(\d+)", _data_spec(spec))
    if shaped and shaped.group(1) in DATASETS:
        return _shaped_data(shaped.group(1), *map(int, shaped.groups()[1:]), root=root) + (spec,)
    if spec in DATASETS:
        ds = load_dataset(DataConfig(name=spec), root=root)
        return ds.train, ds.test, spec
    out = import_object(spec, "dataset")
    out = out() if callable(out) else out
    if isinstance(out, Dataset):
        return out.train, out.test, out.name
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise ValueError(f"dataset={spec!r} must return (train, test) (each (x, y) tensors, a Split or a "
                         f"DataLoader) or a prunekit Dataset; got {type(out).__name__}")
    return as_split(out[0], name="dataset train"), as_split(out[1], name="dataset test"), spec


def _data_spec(spec) -> str:
    """``spec`` if it has one of :func:`load_data`'s forms (a data set of prunekit's, with or without a shape, or an
    import path), checked without loading anything; else ``ValueError`` naming ``dataset``."""
    shaped = re.fullmatch(r"(\w+):(\d+)x(\d+)x(\d+)", spec) if isinstance(spec, str) else None
    if isinstance(spec, str) and (spec in DATASETS or (shaped and shaped.group(1) in DATASETS) or ":" in spec):
        return spec
    names = ", ".join(map(repr, DATASETS.names()))
    raise ValueError(f"dataset={spec!r} is neither one of prunekit's ({names}) nor "
                     "'package.module:function' / 'path/to/file.py:function' returning (train, test)")


def _checkpoint_path(path) -> Path:
    """``path`` as the path of an existing file, else ``ValueError`` naming ``checkpoint``."""
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise ValueError(f"checkpoint={path!r} must be the path of a state dict file")
    path = Path(path).expanduser()
    if not path.is_file():
        raise ValueError(f"checkpoint={str(path)!r}: no such file")
    return path


def _shaped_data(name: str, channels: int, height: int, width: int, root=None) -> tuple[Split, Split]:
    """Data set ``name``'s train and test splits as ``channels x height x width`` images (:func:`load_data`)."""
    if DATASETS[name].kind != "image":
        raise ValueError(f"dataset='{name}:{channels}x{height}x{width}': only image data sets take a shape; "
                         f"{name!r} is {DATASETS[name].kind} data")
    if height != width or height < 1:
        raise ValueError(f"dataset='{name}:{channels}x{height}x{width}': the images are resized to a square "
                         "(height = width, at least 1)")
    ds = load_dataset(DataConfig(name=name, resize=height), root=root)
    have = ds.input_shape[0]
    if channels == have:
        adapt = lambda x: x  # noqa: E731
    elif have == 1:
        adapt = lambda x: x.expand(-1, channels, -1, -1).contiguous()  # noqa: E731
    elif channels == 1:
        adapt = lambda x: x.mean(1, keepdim=True)  # noqa: E731
    else:
        raise ValueError(f"dataset='{name}:{channels}x{height}x{width}': {name!r} has {have} channels; it can be "
                         f"given {have} or 1 channel(s), or, with one channel, any number")
    return Split(adapt(ds.train.x), ds.train.y), Split(adapt(ds.test.x), ds.test.y)


def load_checkpoint(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load a state dict (``torch.load(weights_only=True)``; a ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper
    and ``torch.nn.utils.prune``'s ``weight_orig`` / ``weight_mask`` pairs are understood) into ``model``, strictly."""
    path = _checkpoint_path(path)
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as err:  # noqa: BLE001 - a pickle with code in it, or not a torch file at all
        found = str(err).lower()
        kind = ("holds Python objects beyond tensors" if "global" in found else "is not a plain torch state dict "
                "file (an unreadable or foreign format)")
        raise ValueError(f"checkpoint={str(path)!r} {kind}: prunekit loads only plain state dicts, with "
                         "torch.load(weights_only=True), since unpickling anything else could run code from the file; "
                         "save the model's state_dict() with torch.save and give that file") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint={str(path)!r} holds a {type(state).__name__}, not a state dict")
    try:
        model.load_state_dict(plain_state_dict(state))
    except RuntimeError as err:
        raise ValueError(f"checkpoint={str(path)!r} does not fit the model: {err}") from err
    return model.eval()


# ------------------------------------------------------------------------------------------------------------ setup
@dataclass
class Setup:
    """The reader's trained model and the data every measure uses, with what the measures cover."""

    model: nn.Module  # the logits model (``output_fn`` applied when given)
    train: Split
    test: Split  # what the measures evaluate on (``eval_samples`` of the test split)
    dataset: str
    params: list  # the weights measured: (module, "weight") pairs (the default set, or the reader's params)
    coverage: dict  # prunekit.core.models.weight_coverage
    history: pd.DataFrame | None  # the training history (None when a checkpoint was loaded)
    dense: dict = field(default_factory=dict)  # test loss and accuracy of the dense model
    schedule: dict = field(default_factory=dict)  # lrs, optimizer, batch size, seed
    left_out: list = field(default_factory=list)  # (what, parameters) the measures do not cover, largest first

    def describe(self) -> str:
        c = self.coverage
        total = c["model_parameters"]
        out = "; ".join(f"{what} {n / total:.1%}" for what, n in self.left_out) or "nothing"
        return (f"{type(self.model).__name__} on {self.dataset}: test accuracy {self.dense['accuracy']:.3f}; "
                f"the measures cover {c['weights']:,} of its {total:,} parameters "
                f"({c['share']:.1%}: {len(c['tensors'])} weight tensors); left out: {out}")


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


def _optimizer(optimizer: str | None, lr: float):
    """The optimizer factory an import path names (a class such as ``"torch.optim:AdamW"``), as a partial."""
    if optimizer is None:
        return None
    cls = import_object(optimizer, "optimizer")
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise ValueError(f"optimizer={optimizer!r} must name a torch.optim.Optimizer class (e.g. 'torch.optim:Adam')")
    return functools.partial(cls, lr=float(lr))


def prepare(model: str | nn.Module, dataset: str | None = None, *, checkpoint: str | os.PathLike | None = None,
            profile: str = "quick", model_kwargs=None, lrs: Sequence[float] | None = None,
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
    """
    pre = preset(profile)
    seed = count("seed", seed, low=0)
    if not isinstance(model, (str, nn.Module)):
        raise ValueError(f"model={model!r} must be a factory's import path or a torch.nn.Module; got "
                         f"{type(model).__name__}")
    given = lrs is not None
    lrs = list(pre.lrs if lrs is None else sequence("lrs", lrs, item=lambda n, v: number(n, v, low=0.0)))
    batch_size = count("batch_size", pre.batch_size if batch_size is None else batch_size)
    eval_samples = pre.eval_samples if eval_samples is None else count("eval_samples", eval_samples)
    factory = _optimizer(optimizer, lrs[0])  # checked before any compute
    if checkpoint is not None:
        _checkpoint_path(checkpoint)
    if isinstance(output_fn, str):
        output_fn = import_object(output_fn, "output_fn")
    device = resolve_device(device)
    train, test, name = load_data(pre.dataset if dataset is None else dataset, root=root)
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
                 left_out(net, chosen, head))


def _labelled(df: pd.DataFrame, setup: Setup) -> pd.DataFrame:
    """A table with the coverage in its attrs (the weights measured, out of the model's parameters)."""
    df.attrs["coverage"] = {k: v for k, v in setup.coverage.items() if k != "tensors"}
    df.attrs["data"] = f"{setup.dataset} test split, {len(setup.test)} samples"
    return df


# ------------------------------------------------------------------------------------------------------ the measures
def pruning_curves(setup: Setup, ks: Sequence[float] | None = None, profile: str = "quick",
                   seed: int = 0) -> pd.DataFrame:
    """Accuracy after pruning ``k``% of the weights, or of the units (rows of each weight), by magnitude and at
    random, globally and layer by layer, without retraining (``prunekit.measures.curves.pruning_curve``; source
    003's comparison of weight and unit pruning). One row per (method, scope, k)."""
    ks = list(preset(profile).ks if ks is None else sequence("ks", ks))
    seed = count("seed", seed, low=0)
    df = pruning_curve(setup.model, setup.params, setup.test, ks, seed=seed,
                       methods=("weight", "unit", "random_weight", "random_unit"), scopes=("global", "layerwise"))
    df.insert(0, "granularity", df["method"].map(lambda m: "unit" if "unit" in m else "weight"))
    df.insert(1, "criterion", df["method"].map(lambda m: "random" if m.startswith("random") else "magnitude"))
    return _labelled(df, setup)


def density_table(setup: Setup, tolerance: float = 0.05) -> pd.DataFrame:
    """Effective density |omega| / |theta| (source 000: the share of the weights left when global magnitude pruning,
    without retraining, first takes accuracy more than ``tolerance`` below the dense model's), one row, with the
    weights it covered and the model's total parameter count."""
    fraction("tolerance", tolerance, low_open=True, high_open=True)
    res = effective_density(setup.model, setup.test, tolerance, params=setup.params)
    row = {k: v for k, v in res.to_dict().items() if k in (
        "density", "core_params", "params", "total_params", "dense_accuracy", "core_accuracy", "threshold",
        "tolerance", "evaluations")}
    row["share_of_model"] = res.params / res.total_params
    return _labelled(pd.DataFrame([row]), setup)


def ablation_tables(setup: Setup, profile: str = "quick", seed: int = 0, *, ratios: Sequence[float] | None = None,
                    n_subsets: int | None = None, n_bands: int | None = None,
                    band_ratios: Sequence[float] | None = None,
                    band_subsets: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Random ablation (source 002, Fig. 1 left) and ablation by magnitude band (Fig. 1 right) on the default weight
    set: one row per subset (``accuracy``, KL ``utility``); and the utility imbalance per ratio: the standard
    deviation of the utilities of equal-size random subsets (``utility_std``, source 002's measure) with the rest of
    ``prunekit.measures.imbalance.imbalance_table``. Returns ``(random, magnitude, imbalance)``."""
    pre = preset(profile)
    seed = count("seed", seed, low=0)
    ratios = pre.ratios if ratios is None else ratios
    n_subsets = count("n_subsets", pre.n_subsets if n_subsets is None else n_subsets)
    n_bands = count("n_bands", pre.n_bands if n_bands is None else n_bands,
                    high=sum(weight_of(m, a).numel() for m, a in setup.params))
    band_ratios = pre.band_ratios if band_ratios is None else sequence("band_ratios", band_ratios, item=fraction)
    band_subsets = count("band_subsets", pre.band_subsets if band_subsets is None else band_subsets)
    x, y = setup.test.x, setup.test.y  # every setting checked before the first ablation
    rnd = random_ablation(setup.model, x, y, ratios, n_subsets, seed, params=setup.params)
    mag = magnitude_ablation(setup.model, x, y, n_bands, band_ratios, band_subsets, seed, params=setup.params)
    imbalance = imbalance_table(rnd, ["ratio", "n_ablated"]).rename(columns={"std": "utility_std", "n": "subsets"})
    return _labelled(rnd, setup), _labelled(mag, setup), _labelled(imbalance, setup)


@dataclass
class FineTuned:
    """The pruned copy and the pruned-and-retrained copy of the reader's model."""

    pruned: nn.Module
    retrained: nn.Module
    masks: object  # prunekit.pruning.masks.Masks
    history: pd.DataFrame
    sparsity: float
    lr: float = float("nan")  # the fine-tuning learning rate
    optimizer: str = ""


def prune_and_fine_tune(setup: Setup, sparsity: float | None = None, epochs: int | None = None,
                        profile: str = "quick") -> FineTuned:
    """Prune ``sparsity`` of the default weight set by global magnitude, then fine-tune a copy with the mask held
    (``prunekit.pruning.retrain.fine_tune``) for ``epochs`` at the last learning rate of the training schedule, with
    its optimizer (source 002's pruning-and-retraining phase; fine-tuning as Renda et al. 2020 define it)."""
    pre = preset(profile)
    sparsity = fraction("sparsity", pre.sparsity if sparsity is None else sparsity, high_open=True)
    epochs = count("epochs", pre.retrain_epochs if epochs is None else epochs)
    masks = magnitude_masks(setup.model, 100 * sparsity, params=setup.params)
    lr = setup.schedule["lrs"][-1]
    optimizer = setup.schedule["optimizer"]
    if setup.schedule.get("origin", "").startswith("the profile's"):
        warnings.warn(f"fine-tuning a loaded checkpoint at the profile's learning rate {lr:g} with {optimizer}: give "
                      "lrs= (and optimizer=) the model was trained with", UserWarning, stacklevel=2)
    factory = None if optimizer.startswith("SGD(") else _optimizer(optimizer, lr)
    retrained, history = fine_tune(setup.model, masks, setup.train, lrs=[lr] * epochs, optimizer=factory,
                                   batch_size=setup.schedule["batch_size"], seed=setup.schedule["seed"])
    return FineTuned(pruned_model(setup.model, masks), retrained, masks, history, sparsity, lr, optimizer)


def _recalibrated(model: nn.Module, bn_x) -> nn.Module:
    if bn_x is None:
        return model
    out = copy_model(model)
    S.recalibrate_bn(out, bn_x)
    return out.eval()


def surface_tables(setup: Setup, tuned: FineTuned, profile: str = "quick", *, grid: int | None = None,
                   path_points: int | None = None, margin: float = 0.2) -> dict[str, pd.DataFrame]:
    """The loss along the straight line from the trained to the pruned-and-retrained network, its barriers
    (``prunekit.measures.surface.barrier_table``), and the loss surface on the plane through trained, pruned and
    retrained (source 002's figure), on a sample of the training split and on the test split. A model with batch
    norm has its statistics recomputed at every point on ``bn_samples`` training samples; the plane's three points
    are checked against the three networks (recalibrated the same way) before the surface is returned.
    Returns ``{"path", "barriers", "grid", "anchors"}``."""
    pre = preset(profile)
    grid = count("grid", pre.grid if grid is None else grid, low=2)
    path_points = count("path_points", pre.path_points if path_points is None else path_points, low=2)
    number("margin", margin, low=0.0)
    n_train = min(len(setup.train), max(len(setup.test), pre.bn_samples))
    splits = {"train": Split(setup.train.x[:n_train], setup.train.y[:n_train]), "test": setup.test}
    bn_x = setup.train.x[:pre.bn_samples] if S.has_batchnorm(setup.model) else None
    w0, w1, w2 = S.flatten(setup.model), S.flatten(tuned.pruned), S.flatten(tuned.retrained)
    host = copy_model(setup.model)
    path = S.linear_path(host, w0, w2, splits, n=path_points, bn_data=bn_x)
    plane = S.Plane.through(w0, w1, w2, names=("trained", "pruned", "retrained"))
    grid_df, anchors = S.plane_surface(host, plane, splits, n=grid, margin=margin, bn_data=bn_x)
    networks = {"trained": setup.model, "pruned": tuned.pruned, "retrained": tuned.retrained}
    S.check_anchors(anchors, {k: _recalibrated(m, bn_x) for k, m in networks.items()}, splits, rtol=1e-4)
    return {name: _labelled(df, setup) for name, df in
            {"path": path, "barriers": S.barrier_table(path), "grid": grid_df, "anchors": anchors}.items()}


def hoyer_table(setup: Setup, models: dict[str, nn.Module] | None = None) -> pd.DataFrame:
    """Hoyer sparsity ``(sqrt(n) - ||w||_1 / ||w||_2) / (sqrt(n) - 1)`` (0 for equal magnitudes, 1 for one non-zero
    weight) of each weight tensor of the default weight set, and of all of them as one vector (``layer = "all"``),
    for each model of ``models`` (default: the trained one), one row per (model, layer)."""
    models = {"trained": setup.model} if models is None else models
    names = parameter_names(setup.model, setup.params)  # each model is setup.model or a copy of it: the same names
    rows = []
    for label, model in models.items():
        modules = dict(model.named_modules())
        weights = []
        for name, (_, attr) in zip(names, setup.params):
            own = modules[name.rpartition(".")[0]]
            w = weight_of(own, attr)
            weights.append(w)
            rows.append({"model": label, "layer": name, "kind": type(own).__name__, "weights": w.numel(),
                         "hoyer": hoyer_sparsity(w)})
        rows.append({"model": label, "layer": "all", "kind": "", "weights": sum(w.numel() for w in weights),
                     "hoyer": hoyer_sparsity(weights)})
    return _labelled(pd.DataFrame(rows), setup)


def summary_table(setup: Setup, density: pd.DataFrame, imbalance: pd.DataFrame, barriers: pd.DataFrame,
                  hoyer: pd.DataFrame, tuned: FineTuned) -> pd.DataFrame:
    """One row per measure: its value on the reader's model, what it means, and what it covered (the weights
    measured out of the model's parameters, and the data)."""
    c = setup.coverage
    covered = f"{c['weights']:,} of {c['model_parameters']:,} parameters ({c['share']:.1%})"
    data = f"{setup.dataset} test split, {len(setup.test)} samples"
    d = density.iloc[0]
    top = imbalance.loc[imbalance["utility_std"].idxmax()]  # the ratio where the utilities spread most
    b = barriers.set_index("split")
    h = hoyer[(hoyer["layer"] == "all")].set_index("model")["hoyer"]
    rows = [
        {"measure": "dense test accuracy", "value": setup.dense["accuracy"], "meaning": "fraction correct",
         "covers": "the whole model", "data": data},
        {"measure": "effective density", "value": d["density"],
         "meaning": f"share of the weights left when magnitude pruning first costs more than {d['tolerance']:g} accuracy "
                    "(source 000)", "covers": covered, "data": data},
        {"measure": f"utility std, largest (at ratio {top['ratio']:g})", "value": top["utility_std"],
         "meaning": f"spread (nats) of the KL utility over {int(top['subsets'])} random subsets of "
                    f"{int(top['n_ablated']):,} weights each (source 002's imbalance)", "covers": covered, "data": data},
        {"measure": f"retrained accuracy at {tuned.sparsity:.0%} sparsity",
         "value": evaluate(tuned.retrained, setup.test)[1],
         "meaning": f"global magnitude pruning, fine-tuned {len(tuned.history)} epoch(s) with the mask held, at lr "
                    f"{tuned.lr:g} with {tuned.optimizer} (schedule: {setup.schedule.get('origin', 'trained here')})",
         "covers": covered, "data": data},
    ]
    for split in ("train", "test"):
        if split in b.index:
            rows.append({"measure": f"{split} loss above the chord, trained -> retrained",
                         "value": b.loc[split, "loss_barrier_linear"],
                         "meaning": "nats; about 0 when the retrained network stays in the trained one's basin "
                                    "(source 002)", "covers": "every parameter (the straight line in weight space)",
                         "data": f"{setup.dataset} {split} split"})
    for label, value in h.items():
        rows.append({"measure": f"Hoyer sparsity, {label}", "value": value,
                     "meaning": "0 = equal magnitudes, 1 = one non-zero weight", "covers": covered, "data": "none"})
    return pd.DataFrame(rows)
