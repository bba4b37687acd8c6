"""How long a notebook's training will take here, said before it starts.

A profile sized for one GPU (``full``: the sources' epochs and data) takes days on a laptop's CPU. A notebook lists the
networks it trains through the model cache and the retraining it does outside it, and :func:`expect` measures each
distinct network's training speed on the device at hand (a few optimizer steps on random inputs of the data set's
shape at the config's batch size) and multiplies it by the images to train. Networks already in the model cache cost
nothing; retraining (pruned networks, cycles) is always counted, though a rerun may find it in the result cache. It
warns (:class:`LongRunWarning`) when the total exceeds ``warn_after`` seconds. Evaluation (ablations, planes) comes on
top; a config that stops when its training loss stops improving (``patience``) is counted at its maximum of epochs.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterable

import pandas as pd
import torch
import torch.nn.functional as F

from .checks import count, number, sequence
from .config import TrainConfig
from .data import load_dataset
from .device import device_type, resolve_device
from .models import build_model
from .store import entry_path
from .timing import timeit

__all__ = ["LongRunWarning", "training_rate", "expect", "duration"]


class LongRunWarning(UserWarning):
    """The planned training is expected to take longer than the caller's limit on this device."""


def duration(seconds: float) -> str:
    """A duration for people: "40 s", "12 min", "3.2 h", "2.1 days" (``seconds`` >= 0)."""
    seconds = float(number("seconds", seconds, low=0.0))
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def training_rate(cfg: TrainConfig, input_shape: tuple[int, ...], num_classes: int, steps: int = 3) -> float:
    """Training images per second of ``cfg``'s network on ``cfg.device``: the median of ``steps`` timed SGD steps
    (forward, cross-entropy, backward, update; ``prunekit.core.timing.timeit``, the device synchronised) on random
    inputs of ``input_shape`` at ``cfg.batch_size``, after one warm-up step. The global random state is kept."""

    number("steps", steps, low=1, integer=True)
    input_shape = tuple(sequence("input_shape", input_shape, item=count))
    num_classes = count("num_classes", num_classes)
    device = resolve_device(cfg.device, "TrainConfig.device")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(cfg.model, input_shape, num_classes).to(device).train()
        x = torch.randn(cfg.batch_size, *input_shape, device=device)
        y = torch.randint(0, num_classes, (cfg.batch_size,), device=device)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)

        def step():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)

        seconds = timeit(step, repeat=steps, warmup=1)
    return cfg.batch_size / seconds


def expect(pretraining: Iterable[TrainConfig], retraining: Iterable[tuple[TrainConfig, int]] = (), *,
           warn_after: float = 3600.0, label: str = "this notebook") -> pd.DataFrame:
    """The training time a notebook plans, on each config's device: every network of ``pretraining`` (configs
    trained through the model cache; one already there, or named twice, costs nothing) and every ``(cfg, epochs)``
    of ``retraining`` (epochs of ``cfg``'s network trained outside it: pruned networks retrained, cycles). One row
    per item: ``kind``, ``arch``, ``dataset``, ``epochs``, ``images`` (epochs x training samples), ``cached``,
    ``images_per_s`` (:func:`training_rate`, measured once per distinct network), ``seconds``, ``device``; the total
    is ``table.attrs["seconds"]``. Warns (:class:`LongRunWarning`) when it exceeds ``warn_after`` seconds."""

    number("warn_after", warn_after, low=0.0)
    items = [("pretraining", cfg, getattr(cfg, "epochs", 0)) for cfg in sequence("pretraining", pretraining,
                                                                                   nonempty=False)]
    for i, item in enumerate(sequence("retraining", retraining, nonempty=False)):
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise ValueError(f"retraining[{i}]={item!r} must be a (TrainConfig, epochs) pair")
        items.append(("retraining", *item))
    rows, rates, seen = [], {}, set()
    for kind, cfg, epochs in items:
        if not isinstance(cfg, TrainConfig):
            raise ValueError(f"{kind}={cfg!r} must hold TrainConfigs, got a {type(cfg).__name__}")
        number("epochs", epochs, low=0, integer=True)
        ds = load_dataset(cfg.data)
        cached = kind == "pretraining" and (cfg.key() in seen or (entry_path(cfg) / "meta.json").exists())
        seen.add(cfg.key())
        # one measurement per architecture and width: the initialisation (and pruning at initialisation) barely
        # changes a step's cost
        key = (dataclasses.replace(cfg.model, init="default", init_density=1.0), ds.input_shape, ds.num_classes,
               cfg.batch_size, cfg.device)
        if not cached and key not in rates:
            rates[key] = training_rate(cfg, ds.input_shape, ds.num_classes)
        rate = rates.get(key, float("nan"))
        images = int(epochs) * len(ds.train)
        rows.append({"kind": kind, "arch": cfg.model.arch, "dataset": cfg.data.name, "epochs": int(epochs),
                     "images": images, "cached": cached, "images_per_s": rate,
                     "seconds": 0.0 if cached else images / rate, "device": device_type(cfg.device)})
    table = pd.DataFrame(rows, columns=["kind", "arch", "dataset", "epochs", "images", "cached", "images_per_s",
                                        "seconds", "device"])
    total = float(table["seconds"].sum())
    table.attrs["seconds"] = total
    if total > warn_after:
        devices = ", ".join(sorted(set(table["device"])))
        advice = ("it is sized for one GPU: run it on one, or choose a smaller profile"
                  if "cuda" not in devices else "it resumes from the cache if it is interrupted")
        images = int(table.loc[~table["cached"], "images"].sum())
        warnings.warn(f"{label} plans {images:,} training images: about {duration(total)} of training on {devices} "
                      f"at the speed measured just now, before any evaluation; {advice}", LongRunWarning,
                      stacklevel=2)
    return table
