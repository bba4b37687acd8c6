"""Where the computation runs: one device, chosen once, and deterministic on a GPU.

``device="auto"`` is CUDA when torch sees a GPU, else the CPU; ``"cpu"``, ``"cuda"`` and ``"cuda:<index>"`` name one.
The data set is moved to the device once (:func:`dataset_to`) and batches are indexed there; every study function
works on the device of the model it is given (:func:`model_device`).

A model trained on a GPU is not the CPU's model (other kernels, other rounding), so ``TrainConfig.device`` holds the
device a model is trained on and its *type* (``"cpu"`` / ``"cuda"``) is part of the cache key. On CUDA, training runs
under :func:`deterministic`: ``torch.use_deterministic_algorithms(True)`` with cuBLAS's fixed workspace
(``CUBLAS_WORKSPACE_CONFIG=:4096:8``, set when prunekit is imported, before cuBLAS starts), so the same config and
seed on the same GPU give bitwise-identical weights.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import replace
from typing import Iterator

import torch
from torch import nn

from .checks import choice_message

__all__ = ["DEVICES", "device_name", "resolve_device", "device_type", "model_device", "modes_restored", "dataset_to", "deterministic",
           "cuda_available", "available_here"]

DEVICES = ("auto", "cpu", "cuda", "cuda:<index>")

# cuBLAS is deterministic only with a fixed workspace; it reads this once, when its first handle is created.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def cuda_available() -> bool:
    return torch.cuda.is_available()


def available_here(device: str | torch.device) -> bool:
    """Whether this machine has ``device``'s type (the CPU always; CUDA when torch sees a GPU)."""
    return device_type(device) != "cuda" or cuda_available()


def device_name(device: str | torch.device, name: str = "device") -> str:
    """``device`` as a canonical string ("cpu", "cuda", "cuda:1"), "auto" resolved on this machine; ValueError
    naming ``name`` and the allowed values for anything else. CUDA need not be present (see :func:`resolve_device`)."""
    text = str(device).strip().lower() if isinstance(device, (str, torch.device)) else None
    if text == "auto":
        return "cuda" if cuda_available() else "cpu"
    kind, sep, index = (text or "").partition(":")
    if text == "cpu" or (kind == "cuda" and (not sep or index.isdigit())):
        return text
    raise ValueError(choice_message(name, device, DEVICES))


def resolve_device(device: str | torch.device = "auto", name: str = "device") -> torch.device:
    """The ``torch.device`` to compute on for ``device`` ("auto", "cpu", "cuda", "cuda:<index>"): ValueError before
    any compute for anything else, or for CUDA on a machine without it."""
    text = device_name(device, name)
    if text == "cpu":
        return torch.device("cpu")
    if not cuda_available():
        raise ValueError(f"{name}={device!r}: torch sees no CUDA device on this machine; use {name}='auto' or 'cpu'")
    index = torch.device(text).index
    if index is not None and index >= torch.cuda.device_count():
        raise ValueError(f"{name}={device!r} is out of range; allowed CUDA indices on this machine: "
                         f"0..{torch.cuda.device_count() - 1}")
    return torch.device(text)


def device_type(device: str | torch.device) -> str:
    """``"cpu"`` or ``"cuda"``: the part of a device that decides which kernels, and so which numbers, a run gets."""
    return device_name(device).partition(":")[0]


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (or buffer); the CPU for a model without either."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


@contextlib.contextmanager
def modes_restored(model: nn.Module) -> Iterator[nn.Module]:
    """Restore every submodule's own train/eval flag on exit (a model in train mode may hold a BatchNorm frozen in
    eval mode: ``model.train(was_training)`` alone would unfreeze it)."""
    flags = [(m, m.training) for m in model.modules()]
    try:
        yield model
    finally:
        for m, flag in flags:
            m.training = flag


def dataset_to(ds, device: str | torch.device):
    """The data set with every split's tensors on ``device`` (the same object when they are there already)."""
    device = resolve_device(device)

    def move(split):
        if split is None or (split.x.device == device and split.y.device == device):
            return split
        return replace(split, x=split.x.to(device), y=split.y.to(device))

    moved = {name: move(getattr(ds, name)) for name in ("train", "test", "val")}
    if all(moved[n] is getattr(ds, n) for n in moved):
        return ds
    return replace(ds, **moved)


@contextlib.contextmanager
def deterministic(device: str | torch.device) -> Iterator[None]:
    """On CUDA: deterministic kernels for the block (``torch.use_deterministic_algorithms(True, warn_only=True)``,
    cuDNN without benchmarking), the previous settings restored after. Where torch has no deterministic kernel (the
    backward of ``AdaptiveAvgPool2d``, used by the ResNet) it warns: those runs are not bitwise repeatable. On the
    CPU, nothing changes (its kernels are deterministic for a fixed number of threads)."""
    if device_type(device) != "cuda":
        yield
        return
    was = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    bench = torch.backends.cudnn.benchmark
    torch.use_deterministic_algorithms(True, warn_only=True)  # an op without a deterministic CUDA kernel (the
    torch.backends.cudnn.benchmark = False                    # ResNet's adaptive pooling backward) warns, not fails
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was[0], warn_only=was[1])
        torch.backends.cudnn.benchmark = bench
