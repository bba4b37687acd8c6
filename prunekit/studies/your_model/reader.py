"""The reader's parts for notebook 07: a model named by an import path or a file (:func:`import_object`,
:func:`build_model`), a data set (:func:`load_data`: one of prunekit's, shaped for another model's inputs, or a
function returning train and test data) and a checkpoint (:func:`load_checkpoint`: a plain state dict only)."""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import os
import re
import sys
from pathlib import Path

import torch
from torch import nn

from ...core.checks import count
from ...core.config import DataConfig
from ...core.data import DATASETS, Dataset, Split, as_split, load_dataset
from ...core.initialisation import plain_state_dict

__all__ = ["import_object", "build_model", "load_data", "load_checkpoint"]


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
    shaped = re.fullmatch(r"(\w+):(\d+)x(\d+)x(\d+)", data_spec(spec))
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


def data_spec(spec) -> str:
    """``spec`` if it has one of :func:`load_data`'s forms (a data set of prunekit's, with or without a shape, or an
    import path), checked without loading anything; else ``ValueError`` naming ``dataset``."""
    shaped = re.fullmatch(r"(\w+):(\d+)x(\d+)x(\d+)", spec) if isinstance(spec, str) else None
    if isinstance(spec, str) and (spec in DATASETS or (shaped and shaped.group(1) in DATASETS) or ":" in spec):
        return spec
    names = ", ".join(map(repr, DATASETS.names()))
    raise ValueError(f"dataset={spec!r} is neither one of prunekit's ({names}) nor "
                     "'package.module:function' / 'path/to/file.py:function' returning (train, test)")


def checkpoint_path(path) -> Path:
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
    path = checkpoint_path(path)
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


def optimizer_factory(optimizer: str | None, lr: float):
    """The optimizer factory an import path names (a class such as ``"torch.optim:AdamW"``), as a partial."""
    if optimizer is None:
        return None
    cls = import_object(optimizer, "optimizer")
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise ValueError(f"optimizer={optimizer!r} must name a torch.optim.Optimizer class (e.g. 'torch.optim:Adam')")
    return functools.partial(cls, lr=float(lr))
