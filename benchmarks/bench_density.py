"""Benchmarks of issue 4 (width invariance, source 000).

1. ``density_search``: the effective-density search (coarse 10% scan + bisection to 0.1%,
   ``prunekit.metrics.effective_density``) against a linear scan in 1% steps: model evaluations, wall time, and
   whether both find the same answer within one 1% step.
2. ``density_sweep``: a sweep of small configs (>= 8) on a 2-worker Dask LocalCluster (processes, 1 thread each)
   against the same sweep in-process (torch using every core): wall time (cluster start-up included), speed-up and
   parallel efficiency (speed-up / workers). Both train from empty caches.

Rows go to data/results/benchmarks.csv through ``prunekit.benchmarking.record``.
``python benchmarks/bench_density.py [--quick]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from prunekit.benchmarking import matmul_gflops, record
from prunekit.config import DataConfig, TrainConfig
from prunekit.metrics import _Pruner, accuracy_threshold, effective_density, linear_scan_crossing


def bench_search(quick: bool) -> None:
    from prunekit.cache import train_or_load
    from prunekit.data import DatasetUnavailable, load_dataset

    name = "density_search"
    cfgs = [TrainConfig(epochs=5, lr=1e-2, batch_size=32).replace(arch="lenet300")]
    if not quick:
        cfgs.append(TrainConfig(data=DataConfig(name="mnist", subset=10000), epochs=2).replace(arch="lenet300"))
    for cfg in cfgs:
        try:
            ds = load_dataset(cfg.data)
        except DatasetUnavailable as err:
            print(f"skipped {cfg.data.name}: {str(err).splitlines()[0]}")
            continue
        model = train_or_load(cfg, quiet=True).model
        tag = f"{cfg.data.name}/{cfg.model.arch}"
        _Pruner(model, ds.test).accuracy(0)  # warm-up, so that neither method pays first-call costs
        t0 = time.perf_counter()
        ed = effective_density(model, ds.test)
        t_search = time.perf_counter() - t0

        t0 = time.perf_counter()  # the scan pays the same ranking and dense evaluation as the search
        pruner = _Pruner(model, ds.test)
        dense = pruner.accuracy(0)
        threshold = accuracy_threshold(dense)
        step = max(1, round(0.01 * pruner.n))
        k_lin, evals_lin = linear_scan_crossing(lambda k: pruner.accuracy(k) >= threshold, pruner.n, step)
        t_linear = time.perf_counter() - t0
        evals_lin += 1  # the dense evaluation
        record(name, f"{tag} prunable weights", pruner.n, "weights")
        record(name, f"{tag} search evaluations", ed.evaluations, "evaluations")
        record(name, f"{tag} linear 1% scan evaluations", evals_lin, "evaluations")
        record(name, f"{tag} search time", t_search, "s")
        record(name, f"{tag} linear 1% scan time", t_linear, "s")
        record(name, f"{tag} speed-up of search", t_linear / t_search, "x")
        record(name, f"{tag} search density", ed.density, "fraction")
        record(name, f"{tag} linear scan density", 1 - k_lin / pruner.n, "fraction")
        record(name, f"{tag} |difference| in 1% steps", abs(ed.pruned - k_lin) / step, "steps")
        record(name, f"{tag} same answer within one step", float(abs(ed.pruned - k_lin) <= step), "bool")


def bench_sweep(quick: bool) -> None:
    from prunekit.sweep import make_grid, run_sweep

    name = "density_sweep"
    epochs = 2 if quick else 5
    base = TrainConfig(epochs=epochs, lr=1e-2, batch_size=32).replace(arch="lenet300")
    widths = [0.25, 0.5, 1.0, 2.0] if quick else [0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 0.75]
    cfgs = make_grid(base, width_mult=widths, optimizer=["adam", "sgd"])
    record(name, "points", len(cfgs), "configs")
    record(name, "matmul throughput (all threads)", matmul_gflops(512), "GFLOP/s")
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, kw in [("in-process", {"workers": 1}), ("LocalCluster 2 workers", {"workers": 2})]:
            t0 = time.perf_counter()
            res = run_sweep(cfgs, model_root=os.path.join(tmp, label, "models"),
                            points_root=os.path.join(tmp, label, "points"), progress=False, **kw)
            times[label] = time.perf_counter() - t0
            res.raise_if_failed()
            record(name, f"{label} wall time", times[label], "s")
    speedup = times["in-process"] / times["LocalCluster 2 workers"]
    record(name, "speed-up (in-process / 2 workers)", speedup, "x")
    record(name, "parallel efficiency (speed-up / 2)", speedup / 2, "fraction")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small models on digits only (seconds)")
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}, cores: {len(os.sched_getaffinity(0))}")
    bench_search(args.quick)
    bench_sweep(args.quick)


if __name__ == "__main__":  # required: Dask worker processes re-import this file
    main()
