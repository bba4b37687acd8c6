"""Benchmark of prunekit.measures.saliency: the whole of brute-force Algorithm II (source 001).

Brute-force Algorithm II removes, at every step, the unit whose removal raises the error least, found by trying every
remaining unit: O(K²) evaluations for K hidden units. Compared in one run on MNIST 400-100-10 (5,000-image stratified
subset downsampled to 20x20, sigmoid hidden layer, squared error with sigmoid outputs):

* prunekit: ``saliency.serial_prune(net, x, y, "brute_force", "II")``: the first layer's pre-activations are computed
  once; each step evaluates all candidates at once as ``z - h_j w_{:,j}`` ([candidates, N, 10] logits), float32 like the naive loop.
* the naive loop: for every candidate, zero its outgoing weights in the nn.Module (its output contributes 0), run
  the full forward pass, compute the error, restore the weights (float32).

Target: prunekit >= 10x faster. The net is a fixed random initialisation (timings do not depend on training).

    python benchmarks/bench_saliency.py           # full run (the naive loop takes minutes)
    python benchmarks/bench_saliency.py --quick   # smoke run: 500 images, 30 hidden units
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from prunekit.measures import saliency
from prunekit.report.benchmarking import matmul_gflops, record
from prunekit.core.config import DataConfig, ModelConfig
from prunekit.core.data import load_dataset
from prunekit.core.models import build_model
from prunekit.core.train import make_loss

BENCH = "saliency"


@torch.inference_mode()
def naive_algorithm_ii(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: str = "sse"):
    """Greedy brute force the plain way: zero one unit's output (its outgoing weights), forward, restore."""
    loss_fn = make_loss(loss)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    units = [(l, j) for l in range(len(linears) - 1) for j in range(linears[l].out_features)]
    removed, errors = [], [float(loss_fn(model(x), y))]
    alive = list(units)
    while alive:
        best = None
        for l, j in alive:
            w = linears[l + 1].weight
            saved = w[:, j].clone()
            w[:, j] = 0
            e = float(loss_fn(model(x), y))
            w[:, j] = saved
            if best is None or e < best[0]:
                best = (e, (l, j))
        l, j = best[1]
        linears[l + 1].weight[:, j] = 0
        alive.remove((l, j))
        removed.append((l, j))
        errors.append(best[0])
    return removed, errors


def main(quick: bool) -> None:
    n, hidden = (500, 30) if quick else (5000, 100)
    ds = load_dataset(DataConfig(name="mnist", subset=5000, resize=20))
    x, y = ds.train.x[:n], ds.train.y[:n]
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="mlp", hidden=(hidden,), activation="sigmoid"), ds.input_shape, 10)
    model.eval()
    net = saliency.from_model(model, loss="sse", dtype=torch.float32)  # same precision as the naive loop
    tag = f"mnist400-{hidden}-10, N={n}"

    record(BENCH, "machine fp32 matmul", matmul_gflops(), "GFLOP/s")
    t0 = time.perf_counter()
    res = saliency.serial_prune(net, x, y, "brute_force", "II")
    t_fast = time.perf_counter() - t0
    record(BENCH, f"prunekit brute-force Alg. II ({tag})", t_fast, "s")

    t0 = time.perf_counter()
    order, errors = naive_algorithm_ii(model, x, y)
    t_naive = time.perf_counter() - t0
    record(BENCH, f"naive loop brute-force Alg. II ({tag})", t_naive, "s")
    record(BENCH, f"speed-up prunekit vs naive ({tag}; target >= 10)", t_naive / t_fast, "x")

    # sanity: same greedy path (different summation orders may break near-ties differently)
    same = 0
    for a, b in zip(res.order, order):
        if a != b:
            break
        same += 1
    gap = max(abs(a - b) for a, b in zip(res.error[:same + 1], errors[:same + 1]))
    record(BENCH, f"identical removal steps before first divergence ({tag})", same, "steps")
    record(BENCH, f"max |error difference| on the shared path ({tag})", gap, "error")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 500 images, 30 hidden units")
    main(parser.parse_args().quick)
