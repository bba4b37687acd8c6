"""Many networks trained together, each exactly as :func:`prunekit.core.train.train` trains it alone.

Configs that share a training step (:func:`step_key`: the same data, batch size, epochs, optimizer and its settings,
schedule, loss and device; the model, seed, checkpoints and early stopping may differ) are trained in one loop
(:func:`train_group`): at every step each network indexes its own batch (its own shuffle order, drawn from its own
seed by the same CPU generator calls as ``train``), runs its own forward pass and loss, then one ``backward`` over all
the losses (each seeded with 1, as ``loss.backward()`` seeds it) and one fused optimizer step over every network's
parameters. Every kernel a network sees is the kernel it sees alone, on the same tensors: the fused optimizers
(SGD, Adam, Adagrad) update each parameter tensor elementwise on its own, so sharing one call changes no number.
The weights and the history's numbers are therefore bitwise those of training the networks one by one, on any device
and for any architecture (tests/core/test_group.py checks MLPs, conv nets, ResNets, masks held and early stopping on
the CPU; tests/core/test_cuda_fast.py on CUDA), and the models are stored under the configs' own keys
(``prunekit.core.many.train_or_load_many``).

What it saves is overhead: one Python loop, one ``backward`` and one optimizer call per step for all the networks
(and, on CUDA, one captured graph per step, ``prunekit.core.graphs``). It does not batch the arithmetic: batched
kernels round differently (``torch.bmm`` is not ``torch.addmm``), see ``prunekit.core.stacked`` for that engine.

A network that stops early (``patience``) or diverges leaves the group at the end of that epoch (its parameters get
no gradient after, so the fused step skips them); the others go on. ``seconds`` in a grouped history is the group's
epoch time divided by the networks it trained that epoch.
"""

from __future__ import annotations

import functools
import math
import os
import time
from pathlib import Path
from typing import Sequence

import pandas as pd
import torch
from torch import nn

from .checks import count, sequence
from .config import TrainConfig, train_configs
from .data import Dataset
from .device import dataset_to, deterministic, device_type, model_device
from .graphs import GroupStep
from .runtime import fewest_threads_since
from .train import (diverged, epoch_row, make_loss, make_optimizer, make_scheduler, quiet_default, save_progress,
                    stopped_improving)

__all__ = ["step_key", "group_indices", "train_group", "split_optimizer_state", "step_flops", "pays_to_group",
           "CPU_GROUP_FLOPS"]

# TrainConfig fields a network of a group may have of its own; every other field must be shared by the group
OWN_FIELDS = ("model", "seed", "checkpoints", "patience", "min_improvement")


def step_key(cfg: TrainConfig) -> str:
    """What configs must share to train in one loop: the canonical JSON of ``cfg`` without its own fields
    (:data:`OWN_FIELDS`: the model, seed, checkpoints, early stopping), the device by its full name."""
    import json

    shared = {k: v for k, v in cfg.to_dict().items() if k not in OWN_FIELDS}
    return json.dumps(shared, sort_keys=True, default=str)


# On the CPU a group saves Python's overhead per step (a fraction of a millisecond per network), which pays only where
# a network's step costs about as little. Measured on 2 busy cores (rough, total samples/s of a group over one network
# alone): LeNet-300-100, 8 together, 1.5x on digits at batch 32 (10 MFLOP a step), 0.96x on MNIST at batch 128 (200
# MFLOP; 32 together 0.64x); 6 together on 14x14 MNIST at batch 32: the conv net at width 0.25 1.3x (4 MFLOP), at 0.5
# 0.7-1.2x (15 MFLOP), at 1 1.1x (52 MFLOP), ResNet-8 at 0.25 1.4x (32 MFLOP), LeNet at 0.25, batch 128, 1.0x (47
# MFLOP). So the CPU groups only networks whose training step is below this many FLOPs.
CPU_GROUP_FLOPS = 50e6


def step_flops(cfg: TrainConfig) -> float:
    """FLOPs of one training step of ``cfg``'s network: 3 x its forward FLOPs (forward and backward) per sample
    (``torch.utils.flop_counter.FlopCounterMode``, one sample through the untrained model) x the batch size."""
    return _step_flops(cfg.data, cfg.model, cfg.batch_size)


@functools.lru_cache(maxsize=256)
def _step_flops(data, model, batch_size: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    from .data import load_dataset
    from .models import build_model

    ds = load_dataset(data)
    net = build_model(model, ds.input_shape, ds.num_classes).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(torch.zeros(1, *ds.input_shape))
    return 3.0 * float(counter.get_total_flops()) * batch_size


def pays_to_group(cfg: TrainConfig) -> bool:
    """Whether training ``cfg`` in a group is faster than alone: always on CUDA (launch overhead paces small
    networks there), on the CPU when its step is cheaper than :data:`CPU_GROUP_FLOPS`. False for a config whose
    network cannot be built here (it trains alone, and its training reports why)."""
    if device_type(cfg.device) == "cuda":
        return True
    try:
        return step_flops(cfg) < CPU_GROUP_FLOPS
    except Exception:  # noqa: BLE001 - e.g. a conv net on 1x1 inputs, missing data files: left to train alone
        return False


def group_indices(configs: Sequence[TrainConfig], max_group: int = 32) -> list[list[int]]:
    """Indices of ``configs`` in groups that can share a step (:func:`step_key`), each at most ``max_group`` long,
    in the order of their first config; a config alone is a group of one (a config given twice: two indices)."""
    configs = train_configs("configs", configs, nonempty=False)
    max_group = count("max_group", max_group)
    by_key: dict[str, list[int]] = {}
    for i, cfg in enumerate(configs):
        by_key.setdefault(step_key(cfg), []).append(i)
    return [members[i:i + max_group] for members in by_key.values() for i in range(0, len(members), max_group)]


def split_optimizer_state(state: dict, counts: Sequence[int]) -> list[dict]:
    """The state_dict of one optimizer over the parameters of several networks (``counts[k]`` of network ``k``, in
    order, one param group) cut into the state_dicts each network's own optimizer would have: its parameters
    renumbered from 0, the same group settings. ``counts`` must add up to the optimizer's parameters."""
    counts = sequence("counts", counts, item=lambda n, v: count(n, v, low=0))
    if not (isinstance(state, dict) and isinstance(state.get("param_groups"), list) and len(state["param_groups"]) == 1
            and isinstance(state.get("state"), dict)):
        raise ValueError("state must be an optimizer's state_dict() with one param group")
    (group,) = state["param_groups"]
    if sum(counts) != len(group["params"]):
        raise ValueError(f"counts={counts!r} adds up to {sum(counts)} parameters; the optimizer holds "
                         f"{len(group['params'])}")
    out, start = [], 0
    for size in counts:
        own = {i - start: v for i, v in state["state"].items() if start <= i < start + size}
        out.append({"state": own, "param_groups": [{**group, "params": list(range(size))}]})
        start += size
    return out


def _module(name: str, value) -> nn.Module:
    if not isinstance(value, nn.Module):
        raise ValueError(f"{name}={value!r} must be a torch.nn.Module, got a {type(value).__name__}")
    return value


def _check_group(models, cfgs) -> torch.device:
    if len({id(m) for m in models}) != len(models):
        raise ValueError("models=[...] holds one model twice: each network of a group is trained once")
    if len(models) != len(cfgs):
        raise ValueError(f"cfgs=[{len(cfgs)} configs] for {len(models)} models: train_group needs one config per "
                         "model")
    keys = {step_key(c) for c in cfgs}
    if len(keys) != 1:
        raise ValueError("cfgs=[...]: these configs cannot share a training step (they differ in more than the "
                         "model, seed, checkpoints and early stopping); group them with "
                         "prunekit.core.group.group_indices")
    devices = {model_device(m) for m in models}
    if len(devices) != 1:
        raise ValueError(f"the models of a group must be on one device, got {sorted(map(str, devices))}")
    for m in models:
        random_layers = [type(x).__name__ for x in m.modules() if isinstance(x, nn.modules.dropout._DropoutNd)]
        if random_layers:  # they would draw from the global generator in another order than one by one
            raise ValueError(f"a model with random layers ({', '.join(random_layers)}) cannot be trained in a group; "
                             "train it with prunekit.core.train.train")
    return devices.pop()


def train_group(models: Sequence[nn.Module], ds: Dataset, cfgs: Sequence[TrainConfig], quiet: bool | None = None,
                progress_paths: Sequence[os.PathLike | None] | None = None) -> list:
    """Train ``models[k]`` in place as ``cfgs[k]`` says, all in one loop (module docstring); returns, per network,
    ``(history, checkpoints)`` as :func:`prunekit.core.train.train` returns them, or the error that stopped it
    (a ``FloatingPointError`` when its loss diverged; the others train on).

    progress_paths: per network, where its training state is saved after each epoch, in the form ``train`` resumes
    from (an interrupted group resumes one by one); removed when its training ends. A group never resumes: start
    networks with saved progress with ``train``.
    """
    models = sequence("models", models, item=_module)
    cfgs = train_configs("cfgs", cfgs)
    device = _check_group(models, cfgs)
    paths = [None] * len(models)
    if progress_paths is not None:
        paths = [None if p is None else Path(p) for p in sequence("progress_paths", progress_paths)]
        if len(paths) != len(models):
            raise ValueError(f"progress_paths={progress_paths!r} needs one entry per model (None for none), got "
                             f"{len(paths)} for {len(models)} models")
        given = [p for p in paths if p is not None]
        if len(set(given)) != len(given):
            raise ValueError(f"progress_paths={progress_paths!r} names one file twice: each network needs its own")
    ds = dataset_to(ds, device)
    with deterministic(device):
        return _train_group(list(models), ds, list(cfgs), quiet, paths, device)


def _train_group(models, ds, cfgs, quiet, paths, device):
    quiet = quiet_default() if quiet is None else quiet
    cfg0, n, size = cfgs[0], len(ds.train), cfgs[0].batch_size
    params = [[p for p in m.parameters() if p.requires_grad] for m in models]
    optimizer = make_optimizer([p for ps in params for p in ps], cfg0)  # one param group, network after network
    scheduler = make_scheduler(optimizer, cfg0)
    loss_fn = make_loss(cfg0.loss)
    gens = [torch.Generator().manual_seed(c.seed) for c in cfgs]
    rows: list[list[dict]] = [[] for _ in models]
    checkpoints: list[dict] = [{} for _ in models]
    outcome: list = [None] * len(models)
    for k, (m, c) in enumerate(zip(models, cfgs)):
        if 0 in c.checkpoints:
            checkpoints[k][0] = {key: v.detach().clone() for key, v in m.state_dict().items()}
    active = list(range(len(models)))
    step = GroupStep(models, optimizer, loss_fn, size, device)

    from tqdm.auto import tqdm

    for epoch in tqdm(range(1, cfg0.epochs + 1), desc=f"epochs ({len(models)} networks)", disable=quiet,
                      leave=False):
        t0 = time.perf_counter()
        fewest_threads_since(mark=True)
        for k in active:
            models[k].train()
        lr = optimizer.param_groups[0]["lr"]
        perms = {k: torch.randperm(n, generator=gens[k]).to(device) for k in active}  # as iterate_batches draws
        totals = step.run_epoch(ds.train, perms, active)  # {k: (summed loss x batch size, correct)}, on the device
        if scheduler is not None:
            scheduler.step()
        epoch_rows = {k: epoch_row(models[k], ds, cfgs[k], epoch, lr, *totals[k]) for k in active}
        seconds, threads = (time.perf_counter() - t0) / len(active), fewest_threads_since()
        optimizer_states = None
        for k in list(active):
            row = {**epoch_rows[k], "seconds": seconds, "threads": threads}
            cfg = cfgs[k]
            if not math.isfinite(row["train_loss"]):
                outcome[k] = diverged(row, cfg)
                active.remove(k)
                continue
            rows[k].append(row)
            if epoch in cfg.checkpoints:
                checkpoints[k][epoch] = {key: v.detach().clone() for key, v in models[k].state_dict().items()}
            stop = cfg.patience > 0 and stopped_improving([r["train_loss"] for r in rows[k]], cfg.patience,
                                                          cfg.min_improvement)
            if paths[k] is not None and epoch < cfg.epochs and not stop:
                if optimizer_states is None:
                    optimizer_states = split_optimizer_state(optimizer.state_dict(), [len(p) for p in params])
                save_progress(paths[k], models[k], optimizer_states[k], scheduler, gens[k], rows[k], checkpoints[k],
                              epoch)
            if stop:
                active.remove(k)
        if not active:
            break
    step.close()
    for k in range(len(models)):
        if paths[k] is not None:
            paths[k].unlink(missing_ok=True)
        if outcome[k] is None:
            outcome[k] = (pd.DataFrame(rows[k]), checkpoints[k])
    return outcome

