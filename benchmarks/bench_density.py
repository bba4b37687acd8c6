"""Benchmarks of the width-invariance study (source 000).

1. ``density_search``: the effective-density search (``prunekit.measures.density.effective_density``: an upward scan in
   steps of 1% of the prunable weights, stopped at the first failing level, then bisection inside that step to 0.1%)
   against two baselines measured in the same run on the same model and evaluation split:

   - the *old bisection* prunekit used before (a coarse scan in 10% steps, then bisection to 0.1% inside the first
     failing coarse step), which can pass over a dip below the threshold and over-prune;
   - a *plain linear scan* at the same 1% step with plain evaluations (masks applied, full forward pass), which
     defines the right answer at that step.

   Reported: model evaluations, seconds, the answers (weights pruned), the ratio of the search's time to each
   baseline's, and whether the search equals the linear scan's answer (it must, up to the bisection inside the step).
   Also the incremental evaluator's time per 1% level with the whole split as one block against blocks of 2,000
   samples (its default), best of 3 interleaved rounds.
2. ``search_batch``: the plain evaluator's time per pruning level (``Pruner.accuracy`` at 1% of the weights) for
   the conv net and the ResNet of notebook 03 (untrained: the time does not depend on the weights) on 2,000 MNIST
   test images at 14x14 (digits 8x8 when MNIST is missing), in batches of 4,096 (prunekit's evaluation batch before:
   here all 2,000 images in one batch) against the search's CPU batch (``search_batch_size``), best of 3 interleaved
   rounds, and whether both give the same accuracy.
3. ``density_sweep``: a sweep of small configs (>= 8) on a 2-worker Dask LocalCluster (processes, 1 thread each)
   against the same sweep in-process (torch using every core): wall time (cluster start-up included), speed-up and
   parallel efficiency (speed-up / workers). Both train from empty caches.

Rows go to data/results/benchmarks.csv through ``prunekit.report.benchmarking.record``.
``python benchmarks/bench_density.py [--quick]``
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time

import torch

from prunekit.report.benchmarking import matmul_gflops, record
from prunekit.core.config import DataConfig, TrainConfig
from prunekit.measures.density import accuracy_threshold, effective_density, search_steps
from prunekit.measures._density_eval import IncrementalMLP, Pruner


def old_bisection(passes, n: int, coarse: float = 0.1, resolution: float = 1e-3) -> tuple[int, int]:
    """The search prunekit used before: scan at ``round(i * coarse * n)`` to the first failure, then bisect on
    [last pass, first fail] to ``max(1, floor(resolution * n))``. Returns (weights pruned, evaluations)."""
    r = max(1, math.floor(resolution * n))
    lo, hi, i, evaluations = 0, None, 1, 0
    while hi is None:
        k = min(n, round(i * coarse * n))
        if k > lo:
            evaluations += 1
            if passes(k):
                lo = k
            else:
                hi = k
        if hi is None and k >= n:
            return n, evaluations
        i += 1
    while hi - lo > r:
        mid = (lo + hi) // 2
        evaluations += 1
        lo, hi = (mid, hi) if passes(mid) else (lo, mid)
    return lo, evaluations


def plain_linear_scan(passes, n: int, step: int) -> tuple[int, int]:
    """``k = step, 2 step, ...`` until the first failure: (last passing k, evaluations)."""
    lo, evaluations = 0, 0
    while lo < n:
        k = min(n, lo + step)
        evaluations += 1
        if not passes(k):
            return lo, evaluations
        lo = k
    return lo, evaluations


def bench_search(quick: bool) -> None:
    from prunekit.core.store import train_or_load
    from prunekit.core.data import DatasetUnavailable, load_dataset

    name = "density_search"
    record(name, "matmul throughput (all threads)", matmul_gflops(512), "GFLOP/s")
    cfgs = [TrainConfig(epochs=5, lr=1e-2, batch_size=32).replace(arch="lenet300")]
    if not quick:
        cfgs.append(TrainConfig(data=DataConfig(name="mnist", subset=10000), epochs=2).replace(arch="lenet300"))
    for cfg in cfgs:
        try:
            ds = load_dataset(cfg.data)
        except DatasetUnavailable as err:
            print(f"skipped {cfg.data.name}: {str(err).splitlines()[0]}")
            continue
        model = train_or_load(cfg, quiet=True).model.eval()
        tag = f"{cfg.data.name}/{cfg.model.arch} ({len(ds.test):,} test images)"
        Pruner(model, ds.test).accuracy(0)  # warm-up, so that no method pays first-call costs
        methods = ("search", "old bisection", "plain 1% scan")
        rounds = 1 if quick else 5
        timings: dict[str, tuple[float, int, int]] = {}
        for _ in range(rounds):  # the methods interleaved round by round, so that drift on a shared machine is
            for method in methods:  # spread over all of them; each keeps its best round
                t0 = time.perf_counter()
                if method == "search":
                    ed = effective_density(model, ds.test)
                    answer, evals = ed.pruned, ed.evaluations
                else:  # each baseline pays the same ranking and dense evaluation as the search
                    pruner = Pruner(model, ds.test)
                    threshold = accuracy_threshold(pruner.accuracy(0))
                    passes = lambda k: pruner.accuracy(k) >= threshold  # noqa: E731
                    if method == "old bisection":
                        answer, evals = old_bisection(passes, pruner.n)
                    else:
                        answer, evals = plain_linear_scan(passes, pruner.n, search_steps(pruner.n)[0])
                    evals += 1
                seconds = time.perf_counter() - t0
                if method not in timings or seconds < timings[method][0]:
                    timings[method] = (seconds, answer, evals)
        n = ed.params
        step, resolution = search_steps(n)
        record(name, f"{tag} prunable weights", n, "weights")
        for method, (seconds, answer, evals) in timings.items():
            record(name, f"{tag} {method}: evaluations", evals, "evaluations")
            record(name, f"{tag} {method}: time (best of {rounds} interleaved rounds)", seconds, "s")
            record(name, f"{tag} {method}: weights pruned", answer, "weights")
            record(name, f"{tag} {method}: density", 1 - answer / n, "fraction")
            record(name, f"{tag} {method}: time per evaluation", 1000 * seconds / evals, "ms")
        t_search = timings["search"][0]
        record(name, f"{tag} search time / old bisection time", t_search / timings["old bisection"][0], "x")
        record(name, f"{tag} search time / plain 1% scan time", t_search / timings["plain 1% scan"][0], "x")
        if not quick:  # the incremental evaluator's blocks of samples: one block against blocks of 2,000
            per_level = {}
            for _ in range(3):
                for chunk in (len(ds.test), 2000):
                    with IncrementalMLP(model, ds.test, chunk=chunk) as fast:
                        t0 = time.perf_counter()
                        levels = range(step, n - step, step)
                        for k in levels:
                            fast.accuracy(k)
                        per_level[chunk] = min(per_level.get(chunk, math.inf),
                                               (time.perf_counter() - t0) / len(levels))
            for chunk, seconds in per_level.items():
                record(name, f"{tag} incremental evaluator, blocks of {chunk:,} samples: time per 1% level",
                       1000 * seconds, "ms")
            record(name, f"{tag} blocks of 2,000 / one block: time per level",
                   per_level[2000] / per_level[len(ds.test)], "x")
        scan = timings["plain 1% scan"][1]
        record(name, f"{tag} search answer in the plain scan's failing step", float(scan <= ed.pruned < scan + step),
               "bool")
        record(name, f"{tag} old bisection over-prunes by", (timings["old bisection"][1] - scan) / n, "fraction of |θ|")


def bench_batch(quick: bool) -> None:
    from prunekit.core.store import build
    from prunekit.core.data import DatasetUnavailable, load_dataset
    from prunekit.measures._density_eval import search_batch_size
    from prunekit.core.sweep import eval_split

    name = "search_batch"
    record(name, "matmul throughput (all threads)", matmul_gflops(512), "GFLOP/s")
    try:
        data = DataConfig("mnist", resize=14)
        ds = load_dataset(data)
    except DatasetUnavailable:
        data = DataConfig("digits")
        ds = load_dataset(data)
    split = eval_split(ds, 2000)
    batch = search_batch_size(torch.device("cpu"))
    for arch, width in [("conv", 1.0), ("resnet", 1.0)] + ([] if quick else [("conv", 5.0), ("resnet", 5.0)]):
        model = build(TrainConfig(data=data).replace(arch=arch, width_mult=width), ds).eval()
        tag = f"{data.name} {tuple(ds.input_shape)}/{arch} {width:g}x ({len(split.x):,} images)"
        pruners = {size: Pruner(model, split, batch_size=size) for size in (4096, batch)}
        k = round(0.01 * pruners[batch].n)
        for pruner in pruners.values():  # warm-up: neither pays first-call costs
            pruner.accuracy(0)
        best, accuracy = {}, {}
        for _ in range(1 if quick else 3):
            for size, pruner in pruners.items():
                t0 = time.perf_counter()
                accuracy[size] = pruner.accuracy(k)
                best[size] = min(best.get(size, math.inf), time.perf_counter() - t0)
        for size, seconds in best.items():
            record(name, f"{tag} batch size {size:,}: time per level", 1000 * seconds, "ms")
        record(name, f"{tag} batch size 4,096 / {batch}: time per level", best[4096] / best[batch], "x")
        record(name, f"{tag} same accuracy in both", float(accuracy[4096] == accuracy[batch]), "bool")


def bench_sweep(quick: bool) -> None:
    """16 configs (8 widths x 2 optimizers) in-process vs on a 2-worker LocalCluster (1 thread per worker).

    The cluster's start-up (worker processes importing torch) is timed apart from the sweep on the warm cluster, so
    both the end-to-end and the steady-state speed-up are reported. Points train on a 6,000-image MNIST subset
    (digits when MNIST is missing) so that a point costs about a second, as in a real width sweep.
    """
    from distributed import LocalCluster

    from prunekit.core.data import DatasetUnavailable, load_dataset
    from prunekit.core.sweep import make_grid, run_sweep

    name = "density_sweep"
    try:
        load_dataset(DataConfig("mnist"))
        base = TrainConfig(data=DataConfig("mnist", subset=6000), epochs=2 if quick else 3, lr=1e-3)
    except DatasetUnavailable:
        base = TrainConfig(epochs=2 if quick else 5, lr=1e-2, batch_size=32)
    base = base.replace(arch="lenet300")
    widths = [0.25, 0.5, 1.0, 2.0] if quick else [0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 3.0, 5.0]
    cfgs = make_grid(base, width_mult=widths, optimizer=["adam", "sgd"])
    record(name, f"points ({base.data.name})", len(cfgs), "configs")
    record(name, "matmul throughput (all threads)", matmul_gflops(512), "GFLOP/s")
    opts = dict(progress=False, eval_subset=2000)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run_sweep(cfgs, model_root=os.path.join(tmp, "a", "models"), points_root=os.path.join(tmp, "a", "points"),
                  workers=1, **opts).raise_if_failed()
        t_in = time.perf_counter() - t0
        t0 = time.perf_counter()
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        t_start = time.perf_counter() - t0
        try:
            t0 = time.perf_counter()
            run_sweep(cfgs, model_root=os.path.join(tmp, "b", "models"),
                      points_root=os.path.join(tmp, "b", "points"), scheduler=cluster, **opts).raise_if_failed()
            t_warm = time.perf_counter() - t0
        finally:
            cluster.close()
    record(name, "in-process wall time", t_in, "s")
    record(name, "LocalCluster(2) start-up", t_start, "s")
    record(name, "LocalCluster(2) sweep on the warm cluster", t_warm, "s")
    for label, t in (("end to end", t_start + t_warm), ("warm cluster", t_warm)):
        record(name, f"speed-up vs in-process, {label}", t_in / t, "x")
        record(name, f"parallel efficiency, {label} (speed-up / 2)", t_in / t / 2, "fraction")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small models on digits only (seconds)")
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}, cores: {len(os.sched_getaffinity(0))}")
    bench_search(args.quick)
    bench_batch(args.quick)
    bench_sweep(args.quick)


if __name__ == "__main__":  # required: Dask worker processes re-import this file
    main()
