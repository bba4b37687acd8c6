"""A training step without Python overhead on CUDA: the step captured once in a CUDA graph, replayed for every batch.

A step of the sources' small networks is a few small kernels; on a GPU, launching them from Python takes longer than
running them. :class:`GroupStep` runs an epoch of one network (``prunekit.core.train.train``) or of a group
(``prunekit.core.group.train_group``) so: the batch indices go into a fixed buffer, and one captured graph gathers the
batch, runs every network's forward, loss, backward and fused optimizer step, and adds the loss and the correct
count into sums kept on the device (read once per epoch). The graph replays the kernels the eager step launches, on
the same tensors, so its numbers are the eager step's (tests/core/test_cuda_fast.py compares them bitwise).

- Static shapes: a captured step takes full batches only; the last, shorter batch of an epoch runs eagerly.
- Capture needs warm state (the optimizer's buffers, cuBLAS's handles): the first steps of the first epoch run
  eagerly, on a side stream as torch asks.
- The learning rate is a number inside the fused optimizer's kernels, so the step is captured again at the start of
  every epoch (a scheduler's or ``lrs``' rate, a callback's change of the model, a network that left the group are
  all picked up there).
- Adam's ``capturable`` flag is set only while capturing (its fused kernel does not read it: the numbers are the
  same, and its step counts are on the device either way).
- Any failure to capture (an op that synchronises with the host, an unsupported layer) is a warning, and the epoch
  goes on eagerly from the same step; so does the rest of training.
- ``PRUNEKIT_CUDA_GRAPHS=0`` turns graphs off (the eager step everywhere). The CPU always runs the eager step.

Not measured here (no GPU where this was written): the speed, and that capture succeeds on every model of the
registry; see the README's GPU section and ``benchmarks/bench_gpu.py``.
"""

from __future__ import annotations

import os
import warnings

import torch

from .checks import count
from .runtime import adapt_threads

__all__ = ["graphs_enabled", "GroupStep"]

WARMUP_STEPS = 3  # eager steps before the first capture (torch's examples use 3 to 11)


def graphs_enabled(device) -> bool:
    """Whether training on ``device`` captures its step in a CUDA graph: on CUDA, unless ``PRUNEKIT_CUDA_GRAPHS`` is
    ``0`` (or ``false``/``off``)."""
    flag = os.environ.get("PRUNEKIT_CUDA_GRAPHS", "1").strip().lower()
    return torch.device(device).type == "cuda" and flag not in ("0", "false", "off", "no")


class GroupStep:
    """The training step of ``models`` (one or several networks sharing ``optimizer``), run one epoch at a time by
    :meth:`run_epoch`: eagerly, or replayed from a CUDA graph (module docstring). :meth:`close` when done."""

    def __init__(self, models, optimizer, loss_fn, size: int, device):
        self.models, self.optimizer, self.loss_fn = list(models), optimizer, loss_fn
        self.size = count("size", size)  # the batch size
        self.device = torch.device(device)
        self.use_graphs = graphs_enabled(self.device)
        self.warm = 0  # warm-up steps taken on the side stream (capture waits for WARMUP_STEPS)
        self.graph = None
        self.captures = 0  # graphs captured (for tests and benchmarks)

    # ------------------------------------------------------------------------------------------- one step
    def _step(self, split, idxs: dict, totals: dict) -> None:
        """Every active network's forward and loss on ``split[idxs[k]]``, one backward, one optimizer step, and the
        loss x batch size and correct count added into ``totals[k]``."""
        outs, losses, labels = [], [], []
        for k, idx in idxs.items():
            xb, yb = split.x[idx], split.y[idx]
            out = self.models[k](xb)
            outs.append(out)
            losses.append(self.loss_fn(out, yb))
            labels.append(yb)
        self.optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(losses)  # each loss seeded with 1, as loss.backward() seeds it
        self.optimizer.step()
        with torch.no_grad():
            for k, out, loss, yb in zip(idxs, outs, losses, labels):
                totals[k][0].add_(loss.detach() * yb.shape[0])
                totals[k][1].add_(_correct(out, yb))

    def run_epoch(self, split, perms: dict, active) -> dict:
        """One epoch over ``split`` for the networks ``active`` (indices into ``models``), network ``k`` taking its
        batches in the order ``perms[k]`` (a permutation on the device). Returns ``{k: (summed loss x batch size,
        correct count)}``, tensors on the device."""
        totals = {k: (torch.zeros((), device=self.device), torch.zeros((), dtype=torch.long, device=self.device))
                  for k in active}
        n, size = len(split), self.size
        starts = list(range(0, n, size))
        i = 0
        if self.use_graphs and n >= size:
            while i < len(starts) and self.warm < WARMUP_STEPS and starts[i] + size <= n:
                self._warm_step(split, {k: perms[k][starts[i]:starts[i] + size] for k in active}, totals)
                i += 1
            if self.warm >= WARMUP_STEPS and i < len(starts) and starts[i] + size <= n:
                i = self._replay(split, perms, active, totals, starts, i)
        for start in starts[i:]:  # eagerly: the CPU, graphs off or failed, the last short batch
            adapt_threads()
            self._step(split, {k: perms[k][start:start + size] for k in active}, totals)
        return totals

    # ---------------------------------------------------------------------------------------------- graphs
    def _warm_step(self, split, idxs, totals) -> None:
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            self._step(split, idxs, totals)
        self.warm += 1
        torch.cuda.current_stream(self.device).wait_stream(side)

    def _replay(self, split, perms, active, totals, starts, i) -> int:
        """Capture the step for this epoch, then replay it for every full batch from ``starts[i]``; returns the index
        of the first batch left to run eagerly."""
        static = {k: perms[k][:self.size].clone() for k in active}  # valid indices; overwritten before each replay
        try:
            self.graph = self._capture(split, static, totals)
        except Exception as err:  # noqa: BLE001 - any failure: warn and train eagerly
            self.graph, self.use_graphs = None, False
            self.optimizer.zero_grad(set_to_none=True)  # the capture's gradients were never computed
            warnings.warn(f"CUDA graph capture of the training step failed ({type(err).__name__}: {err}); training "
                          "goes on without graphs (the same numbers, slower). PRUNEKIT_CUDA_GRAPHS=0 skips the "
                          "attempt", RuntimeWarning, stacklevel=3)
            return i
        n, size = len(split), self.size
        while i < len(starts) and starts[i] + size <= n:
            for k in active:
                static[k].copy_(perms[k][starts[i]:starts[i] + size])
            self.graph.replay()
            i += 1
        return i

    def _capture(self, split, static, totals):
        graph = torch.cuda.CUDAGraph()
        self.optimizer.zero_grad(set_to_none=True)  # gradients allocated in the graph's memory, rewritten each replay
        flags = [group.get("capturable") for group in self.optimizer.param_groups]
        for group in self.optimizer.param_groups:
            if "capturable" in group:
                group["capturable"] = True  # Adam checks it while capturing; its fused kernel does not read it
        try:
            with torch.cuda.graph(graph):
                self._step(split, static, totals)  # recorded, not run
        finally:
            for group, flag in zip(self.optimizer.param_groups, flags):
                if flag is not None:
                    group["capturable"] = flag
        self.captures += 1
        return graph

    def close(self) -> None:
        """Let go of the graph; the gradients of the last step are copied out of its memory first."""
        if self.graph is not None:
            for group in self.optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.grad = p.grad.clone()
            self.graph = None


def _correct(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    from .train import correct_count  # here: prunekit.core.train imports this module when it trains on CUDA

    return correct_count(out, y)
