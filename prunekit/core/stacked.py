"""A stack of fully connected networks trained in the kernels of one (``TrainConfig.stack``).

K networks of one architecture (prunekit's ``MLP``: the same widths, activation and bias; K seeds) have their
weights stacked, ``W[K, out, in]``, and every layer runs as one batched product for all of them
(``torch.baddbmm``): K networks cost about the kernels of one, which is what pays on a GPU, where one network's
kernels are too small to fill it. Each network keeps its own initialisation (``prunekit.core.store.build`` from its
seed), its own shuffle order (drawn from its seed by the same CPU generator calls as ``prunekit.core.train.train``),
its own loss (the batch mean of its samples), and its own update: the fused optimizers act elementwise on the
stacked tensors, and the loss of the stack is the sum of the networks' losses, so no gradient mixes networks.

The numbers are not the lone runs': a batched product sums in another order than ``torch.addmm``, and which order
can depend on the stack (on the CPU with torch 2.14, ``torch.bmm`` of 100x10 layers at batch 128 gave other bits for
K = 1, 2, 8 and 32, and for tiny layers other bits for another position in the stack). So a stacked model is stored
under its own key (``stack`` is part of the config) and a stack always trains whole, with the same members in the
same order (the sorted seeds), which makes it repeatable. How far it lands from the lone runs is a stated tolerance,
tested (tests/core/test_stacked.py): SGD epochs within float32 rounding of the lone run's weights (1e-5); a short
Adam training within 3 points of test accuracy.

A network whose training loss stops improving (``patience``) keeps the weights and history of the epoch it stopped
at (its slice of the stack still computes, unused); a network that diverges is reported, the others go on. An
interrupted stack trains again from the start (no progress file).
"""

from __future__ import annotations

import math
import time

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .checks import choice, count, distinct, sequence
from .config import TrainConfig, train_configs
from .data import Dataset
from .device import dataset_to, deterministic, model_device
from .models import MLP
from .runtime import adapt_threads, fewest_threads_since
from .train import diverged, make_optimizer, make_scheduler, quiet_default, stopped_improving

__all__ = ["members", "StackedMLP", "stack_epoch", "train_stack"]

_ACTIVATIONS = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}


def members(cfg: TrainConfig) -> list[TrainConfig]:
    """The configs of ``cfg``'s stack, in stack order (its seeds, ascending): ``cfg`` with each seed of ``stack``."""
    if not cfg.stack:
        raise ValueError("this config has no stack (TrainConfig.stack=()): it trains on its own")
    return [cfg.replace(seed=s) for s in cfg.stack]


class StackedMLP(nn.Module):
    """K prunekit ``MLP`` of one architecture as one module: ``weights[l]`` is ``[K, out, in]``, ``biases[l]``
    ``[K, out]``; ``forward(x[K, B, ...]) -> logits[K, B, C]``, network ``k`` on its own batch ``x[k]``."""

    def __init__(self, models: list[MLP]):
        super().__init__()
        models = distinct("models", sequence("models", models, item=_mlp))
        first = models[0]
        layers = [[m for m in model if isinstance(m, nn.Linear)] for model in models]
        shapes = {tuple((layer.weight.shape, layer.bias is not None) for layer in ls) for ls in layers}
        if len(shapes) != 1 or len({m.activation for m in models}) != 1:
            raise ValueError("the networks of a stack must have one architecture (widths, activation, bias)")
        self.activation = first.activation
        self.weights = nn.ParameterList(nn.Parameter(torch.stack([ls[i].weight.detach() for ls in layers]))
                                        for i in range(len(layers[0])))
        self.biases = nn.ParameterList(nn.Parameter(torch.stack([ls[i].bias.detach() for ls in layers]))
                                       for i in range(len(layers[0])) if layers[0][i].bias is not None)
        self.has_bias = layers[0][0].bias is not None
        self.names = [[name for name, m in model.named_children() if isinstance(m, nn.Linear)] for model in models][0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(2)
        act = _ACTIVATIONS[self.activation]
        last = len(self.weights) - 1
        for i, w in enumerate(self.weights):
            wt = w.transpose(1, 2)
            h = torch.baddbmm(self.biases[i].unsqueeze(1), h, wt) if self.has_bias else torch.bmm(h, wt)
            if i < last:
                h = act(h)
        return h

    def state_dict_of(self, k: int) -> dict[str, torch.Tensor]:
        """Network ``k``'s weights as its own ``MLP``'s state_dict (copies); ``k`` in ``[0, K)``."""
        k = count("k", k, low=0, high=self.weights[0].shape[0] - 1)
        out = {}
        for i, name in enumerate(self.names):
            out[f"{name}.weight"] = self.weights[i][k].detach().clone()
            if self.has_bias:
                out[f"{name}.bias"] = self.biases[i][k].detach().clone()
        return out


def _mlp(name: str, value) -> MLP:
    if not isinstance(value, MLP):
        raise ValueError(f"{name}: a stack holds prunekit MLPs only (Flatten -> Linear -> activation ... -> Linear), "
                         f"not a {type(value).__name__}")
    return value


def _losses(out: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """Each network's batch-mean loss, ``[K]``, from ``out[K, B, C]`` and targets ``y[K, B]`` (``make_loss``'s)."""
    k, b, c = out.shape
    if loss == "cross_entropy":
        return F.cross_entropy(out.reshape(k * b, c), y.reshape(k * b), reduction="none").view(k, b).mean(1)
    t = F.one_hot(y, c).to(out.dtype) if y.dtype == torch.long else y.reshape(out.shape).to(out.dtype)
    return 0.5 * (torch.sigmoid(out) - t).pow(2).sum(2).mean(1)


def _correct(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if y.dtype != torch.long:
        return out.new_zeros(out.shape[0], dtype=torch.long)
    return (out.argmax(2) == y).sum(1)


@torch.no_grad()
def _evaluate(stack: StackedMLP, split, loss: str, batch_size: int = 2048) -> list[tuple[float, float]]:
    """``(mean loss, accuracy)`` of every network of the stack on ``split`` (``evaluate``'s quantities)."""
    k = stack.weights[0].shape[0]
    total, correct = torch.zeros(k, dtype=torch.float64, device=split.x.device), 0
    for i in range(0, len(split), batch_size):
        adapt_threads()
        xb, yb = split.x[i:i + batch_size], split.y[i:i + batch_size]
        out = stack(xb.unsqueeze(0).expand(k, *xb.shape))
        ys = yb.unsqueeze(0).expand(k, *yb.shape)
        total += _losses(out, ys, loss).double() * xb.shape[0]
        correct = correct + _correct(out, ys)
    n = max(1, len(split))
    accuracy = [float(c) / n for c in correct.tolist()] if split.y.dtype == torch.long else [math.nan] * k
    return [(float(t) / n, a) for t, a in zip(total.tolist(), accuracy)]


def stack_epoch(stack: StackedMLP, optimizer, split, perms: torch.Tensor, size: int, loss: str):
    """One epoch of the stack over ``split``, network ``k`` taking its batches in the order ``perms[k]``; returns
    each network's summed (batch loss x batch size) and correct count, ``[K]`` tensors on the device."""
    size = count("size", size)  # the batch size
    choice("loss", loss, ("cross_entropy", "sse"))
    if not isinstance(perms, torch.Tensor) or perms.dim() != 2 or perms.shape[0] != stack.weights[0].shape[0]:
        raise ValueError(f"perms must be a [K, N] tensor of batch orders, one row per network of the stack "
                         f"(K = {stack.weights[0].shape[0]})")
    k_all = perms.shape[0]
    total_loss = torch.zeros(k_all, device=perms.device)
    total_correct = torch.zeros(k_all, dtype=torch.long, device=perms.device)
    for i in range(0, perms.shape[1], size):
        adapt_threads()
        idx = perms[:, i:i + size]
        xb, yb = split.x[idx], split.y[idx]
        out = stack(xb)
        losses = _losses(out, yb, loss)
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()  # the sum: each network's loss gets gradient 1, no gradient mixes networks
        optimizer.step()
        with torch.no_grad():
            total_loss += losses.detach() * idx.shape[1]
            total_correct += _correct(out, yb)
    return total_loss, total_correct


def train_stack(models: list[MLP], ds: Dataset, cfgs: list[TrainConfig], quiet: bool | None = None) -> list:
    """Train the stack of ``models`` (built as ``prunekit.core.store.build`` builds ``cfgs[k]``, on one device) as
    the configs say (module docstring); returns per network ``(history, checkpoints, state_dict)`` or the error that
    stopped it. The history has ``train``'s columns; ``seconds`` is the stack's epoch time divided by K."""
    models = distinct("models", sequence("models", models, item=_mlp))
    cfgs = train_configs("cfgs", cfgs)
    if len(cfgs) != len(models):
        raise ValueError(f"cfgs=[{len(cfgs)} configs] for {len(models)} models: one config per network of the "
                         "stack")
    device = model_device(models[0])
    ds = dataset_to(ds, device)
    with deterministic(device):
        return _train_stack(StackedMLP(models).to(device), ds, cfgs, quiet, device)


def _train_stack(stack, ds, cfgs, quiet, device):
    from tqdm.auto import tqdm

    quiet = quiet_default() if quiet is None else quiet
    cfg0, k_all, n = cfgs[0], len(cfgs), len(ds.train)
    optimizer = make_optimizer(stack.parameters(), cfg0)
    scheduler = make_scheduler(optimizer, cfg0)
    gens = [torch.Generator().manual_seed(c.seed) for c in cfgs]
    rows: list[list[dict]] = [[] for _ in cfgs]
    checkpoints: list[dict] = [{0: stack.state_dict_of(k)} if 0 in c.checkpoints else {} for k, c in enumerate(cfgs)]
    final: list = [None] * k_all
    active = list(range(k_all))
    for epoch in tqdm(range(1, cfg0.epochs + 1), desc=f"epochs (stack of {k_all})", disable=quiet, leave=False):
        t0 = time.perf_counter()
        fewest_threads_since(mark=True)
        lr = optimizer.param_groups[0]["lr"]
        perms = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(device)  # as iterate_batches draws
        total_loss, total_correct = stack_epoch(stack, optimizer, ds.train, perms, cfg0.batch_size, cfg0.loss)
        if scheduler is not None:
            scheduler.step()
        evals = {name: _evaluate(stack, split, cfg0.loss) for name, split in (("val", ds.val), ("test", ds.test))
                 if split is not None}
        train_loss, train_correct = total_loss.tolist(), total_correct.tolist()
        seconds, threads = (time.perf_counter() - t0) / k_all, fewest_threads_since()
        for k in list(active):
            row = {"epoch": epoch, "lr": lr, "train_loss": train_loss[k] / n,
                   "train_accuracy": train_correct[k] / n if ds.task == "classification" else math.nan}
            for name, values in evals.items():
                row[f"{name}_loss"], row[f"{name}_accuracy"] = values[k]
            row.update(seconds=seconds, threads=threads)
            cfg = cfgs[k]
            if not math.isfinite(row["train_loss"]):
                final[k] = diverged(row, cfg)
                active.remove(k)
                continue
            rows[k].append(row)
            if epoch in cfg.checkpoints:
                checkpoints[k][epoch] = stack.state_dict_of(k)
            if cfg.patience > 0 and stopped_improving([r["train_loss"] for r in rows[k]], cfg.patience,
                                                      cfg.min_improvement):
                final[k] = stack.state_dict_of(k)  # its weights now; its slice computes on, unused
                active.remove(k)
        if not active:
            break
    for k in active:
        final[k] = stack.state_dict_of(k)
    return [f if isinstance(f, Exception) else (pd.DataFrame(rows[k]), checkpoints[k], f)
            for k, f in enumerate(final)]
