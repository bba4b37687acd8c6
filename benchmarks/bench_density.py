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
    """16 configs (8 widths x 2 optimizers) in-process vs on a 2-worker LocalCluster (1 thread per worker).

    The cluster's start-up (worker processes importing torch) is timed apart from the sweep on the warm cluster, so
    both the end-to-end and the steady-state speed-up are reported. Points train on a 6,000-image MNIST subset
    (digits when MNIST is missing) so that a point costs about a second, as in a real width sweep.
    """
    from distributed import LocalCluster

    from prunekit.data import DatasetUnavailable, load_dataset
    from prunekit.sweep import make_grid, run_sweep

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
    bench_sweep(args.quick)


if __name__ == "__main__":  # required: Dask worker processes re-import this file
    main()
