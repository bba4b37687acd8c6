"""Benchmark of prunekit.pruning.select (source 003): pruning-curve cost and inference speed-ups of pruned FOR.ai nets.

1. A full pruning curve (10 k values x weight and unit pruning, layerwise ranking) of the FOR.ai net
   (784-1000-1000-500-200-10, ReLU, no biases) on MNIST's 10,000 test images:
   * prunekit (``pruning_curve``: one sort per method, masks applied in place, unit points evaluated on the compacted
     net) vs the conventional way (at every point: deepcopy the model, torch.nn.utils.prune l1_unstructured /
     ln_structured(n=2, dim=0) on each layer, evaluate the masked dense model).  Target: >= 1.5x faster.
   * overhead: prunekit's curve with every point evaluated as the masked dense net vs the same number of plain dense
     evaluations.  Target: <= 1.1x their time.
2. Inference speed-ups at batch 1 and 256: compacted net at 50% and 90% unit sparsity, sparse CSR at 90/95/99% weight
   sparsity, each vs the dense net and vs its ideal FLOP ratio.  Reported as measured.

The net is trained briefly (1 epoch of Adam on a 10,000-image stratified subset of MNIST's train split, through the
cache) so the weight magnitudes are realistic; timings do not depend on how well it is trained.

    python benchmarks/bench_pruning.py           # full run (minutes)
    python benchmarks/bench_pruning.py --quick   # smoke run: 2,000 test images, 4 k values, few repeats
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from torch.nn.utils import prune as torch_prune

from prunekit.measures import curves
from prunekit.core.timing import timeit
from prunekit.report.benchmarking import matmul_gflops, record
from prunekit.core.store import train_or_load
from prunekit.core.config import DataConfig, ModelConfig, TrainConfig
from prunekit.core.data import Split, load_dataset
from prunekit.core.prunable import prunable_parameters
from prunekit.core.train import evaluate

BENCH = "pruning"
KS = [0, 25, 50, 60, 70, 80, 90, 95, 97, 99]


def conventional_curve(model, split, ks):
    """The usual way: a fresh deepcopy per point, torch.nn.utils.prune per layer, evaluate the masked dense model."""
    rows = []
    for method in ("weight", "unit"):
        for k in ks:
            m = copy.deepcopy(model)
            for module, name in prunable_parameters(m):
                if method == "weight":
                    torch_prune.l1_unstructured(module, name, amount=k / 100)
                else:
                    torch_prune.ln_structured(module, name, amount=k / 100, n=2, dim=0)
            loss, acc = evaluate(m, split)
            rows.append((method, k, acc, loss))
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: fewer images, k values and repeats")
    args = ap.parse_args(argv)
    quick = args.quick
    ks = [0, 50, 90, 99] if quick else KS
    n_test = 2000 if quick else 10000
    repeat = 3 if quick else 20
    bench = BENCH + ("_quick" if quick else "")

    cfg = TrainConfig(data=DataConfig(name="mnist", subset=2000 if quick else 10000),
                      model=ModelConfig(arch="forai"), optimizer="adam", lr=1e-3, epochs=1, batch_size=128, seed=0)
    run = train_or_load(cfg)
    model = run.model.eval()
    params = prunable_parameters(model)
    test = load_dataset(cfg.data).test
    split = Split(test.x[:n_test], test.y[:n_test])
    record(bench, "machine_matmul_throughput", matmul_gflops(), "GFLOP/s")
    record(bench, "test_images", len(split), "images")
    record(bench, "dense_test_accuracy", evaluate(model, split)[1], "fraction")

    # 1a. prunekit vs conventional, whole curve (weight + unit, layerwise)
    t0 = time.perf_counter()
    ours = curves.pruning_curve(model, split, ks=ks, params=params, methods=["weight", "unit"], scopes=["layerwise"])
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = conventional_curve(model, split, ks)
    t_conv = time.perf_counter() - t0
    diff = max(abs(a - r[2]) for a, r in zip(ours["accuracy"], theirs))
    record(bench, "curve_prunekit_seconds", t_ours, "s")
    record(bench, "curve_conventional_seconds", t_conv, "s")
    record(bench, "curve_speedup_vs_conventional", t_conv / t_ours, "x (target >= 1.5)")
    record(bench, "curve_max_accuracy_difference", diff, "fraction")

    # 1b. overhead of the sweep machinery: every point dense vs the same number of plain dense evaluations
    # (each side timed 3 times, interleaved, best run kept: the usual timeit convention against machine noise)
    n_points = 2 * len(ks)
    t_sweep = t_plain = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        curves.pruning_curve(model, split, ks=ks, params=params, methods=["weight", "unit"], scopes=["layerwise"],
                             form="dense")
        t_sweep = min(t_sweep, time.perf_counter() - t0)
        t0 = time.perf_counter()
        for _ in range(n_points):
            evaluate(model, split)
        t_plain = min(t_plain, time.perf_counter() - t0)
    record(bench, "dense_sweep_seconds", t_sweep, "s")
    record(bench, "plain_dense_evaluations_seconds", t_plain, "s")
    record(bench, "dense_sweep_overhead_ratio", t_sweep / t_plain, "x (target <= 1.1)")

    # 2. inference speed-ups
    for batch in (1, 256):
        x = test.x[:batch]
        with torch.inference_mode():
            dense_s = timeit(lambda: model(x), repeat=repeat, warmup=2)
        record(bench, f"dense_forward_b{batch}", dense_s * 1e3, "ms")
        for form, kk in (("compacted", [50, 90]), ("csr", [90, 95, 99])):
            t = curves.inference_speedups(model, x, ks=kk, params=params, forms=[form], repeat=repeat, warmup=2)
            for _, r in t.iterrows():
                tag = f"{form}_{'unit' if form == 'compacted' else 'weight'}{int(r['k'])}_b{batch}"
                record(bench, f"{tag}_forward", r["seconds"] * 1e3, "ms")
                record(bench, f"{tag}_speedup_vs_dense", r["speedup"], "x")
                record(bench, f"{tag}_ideal_flop_ratio", r["flop_ratio"], "x")
                record(bench, f"{tag}_fraction_of_ideal", r["speedup"] / r["flop_ratio"], "fraction")


if __name__ == "__main__":
    main()
