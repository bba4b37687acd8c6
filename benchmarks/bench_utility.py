"""Benchmarks of weight-utility ablation and of the loss-surface plane (source 002).

1. Random ablation, small net on digits (per-call overhead dominates): batched subsets (prunekit.measures.utility) vs the naive
   way (deepcopy, zero, evaluate, per subset). Target: >= 5x faster.
2. Random ablation, LeNet-300-100 on the 10,000 MNIST test images: subsets masked in place vs plain evaluations of
   the dense model, as many. Target: <= 1.2x. (Timing does not depend on the weights' values: the model is untrained.)
3. A 21x21 plane (train + test) on a model without batch norm vs as many plain evaluations. Target: <= 1.3x.
   Batch-norm recalibration cost reported separately (ConvNet on digits).

Rows go to data/results/benchmarks.csv via prunekit.report.benchmarking.record. ``--quick`` shrinks every size.
"""

from __future__ import annotations

import argparse
import copy

import torch
import torch.nn.functional as F

from prunekit.measures import surface as S
from prunekit.measures import utility as U
from prunekit.core.timing import timeit
from prunekit.report.benchmarking import record
from prunekit.core.store import build, train_or_load
from prunekit.core.config import TrainConfig
from prunekit.core.data import DatasetUnavailable, load_dataset
from prunekit.core.prunable import prunable_parameters
from prunekit.core.train import evaluate, predict

BENCH = "utility"


def naive_ablation(model, x, y, subsets):
    """The naive way: per subset, deepcopy the model, zero the subset, evaluate (accuracy and KL utility)."""
    params = prunable_parameters(model)
    sizes = [m.weight.numel() for m, _ in params]
    ref = F.log_softmax(predict(model, x), -1)
    out = []
    for row in subsets:
        m = copy.deepcopy(model)
        with torch.no_grad():
            for (mod, _), part in zip(prunable_parameters(m), torch.split(row, sizes)):
                mod.weight[part.view_as(mod.weight)] = 0.0
        z = predict(m, x)
        acc = float((z.argmax(1) == y).float().mean())
        out.append((acc, float(U.kl_divergence(ref, F.log_softmax(z, -1)).mean())))
    return out


def bench_small(quick: bool, repeat: int) -> None:
    cfg = TrainConfig(epochs=5).replace(hidden=(32,))
    run = train_or_load(cfg, quiet=True)
    ds = run.dataset()
    x, y = ds.test.x, ds.test.y
    n_sub = 100 if quick else 500
    n_w = sum(m.weight.numel() for m, _ in prunable_parameters(run.model))
    subsets = U.random_subsets(n_w, round(0.1 * n_w), n_sub, torch.Generator().manual_seed(0))
    fast = U.evaluate_subsets(run.model, x, y, subsets)
    naive = naive_ablation(run.model, x, y, subsets[:5])
    assert abs(fast["utility"].iloc[0] - naive[0][1]) < 1e-4 and fast["accuracy"].iloc[0] == naive[0][0]
    t_fast = timeit(lambda: U.evaluate_subsets(run.model, x, y, subsets), repeat=repeat)
    t_naive = timeit(lambda: naive_ablation(run.model, x, y, subsets), repeat=repeat)
    tag = f"small_mlp32_digits_{n_sub}_subsets"
    record(BENCH, f"{tag}_naive_seconds", t_naive, "s")
    record(BENCH, f"{tag}_batched_seconds", t_fast, "s")
    record(BENCH, f"{tag}_speedup", t_naive / t_fast, "x (target >= 5)")


def bench_lenet(quick: bool, repeat: int) -> None:
    cfg = TrainConfig(epochs=1).replace(name="mnist", arch="lenet300")
    try:
        ds = load_dataset(cfg.data)
    except (DatasetUnavailable, FileNotFoundError, RuntimeError) as err:
        print(f"skipping the LeNet-300-100 benchmark: MNIST unavailable ({err})")
        return
    model = build(cfg, ds).eval()
    x, y = ds.test.x, ds.test.y
    n_sub = 20 if quick else 500
    n_w = sum(m.weight.numel() for m, _ in prunable_parameters(model))
    subsets = U.random_subsets(n_w, round(0.1 * n_w), n_sub, torch.Generator().manual_seed(0))
    repeat = max(repeat, 3)  # two ~equal timings on a shared machine: take medians even in --quick
    t_fast = timeit(lambda: U.evaluate_subsets(model, x, y, subsets), repeat=repeat)
    t_plain = timeit(lambda: [evaluate(model, ds.test) for _ in range(n_sub)], repeat=repeat)
    tag = f"lenet300_mnist10k_{n_sub}_subsets"
    record(BENCH, f"{tag}_ablation_seconds", t_fast, "s")
    record(BENCH, f"{tag}_plain_eval_seconds", t_plain, "s")
    record(BENCH, f"{tag}_ratio_to_plain", t_fast / t_plain, "x (target <= 1.2)")


def bench_plane(quick: bool, repeat: int) -> None:
    cfg = TrainConfig(epochs=5)
    run = train_or_load(cfg, quiet=True)
    ds = run.dataset()
    splits = {"train": ds.train, "test": ds.test}
    torch.manual_seed(0)
    w0 = S.flatten(run.model)
    w1 = w0 * (torch.rand_like(w0) > 0.5)
    w2 = w1 + 0.01 * torch.randn_like(w1)
    plane = S.Plane.through(w0, w1, w2)
    n = 11 if quick else 21
    host = copy.deepcopy(run.model)
    t_plane = timeit(lambda: S.plane_surface(host, splits, plane=plane, n=n), repeat=repeat)
    points = n * n + 3  # the grid and the three anchors
    t_plain = timeit(lambda: [evaluate(run.model, s) for _ in range(points) for s in splits.values()],
                     repeat=repeat)
    tag = f"plane_{n}x{n}_mlp_digits"
    record(BENCH, f"{tag}_seconds", t_plane, "s")
    record(BENCH, f"{tag}_plain_eval_seconds", t_plain, "s")
    record(BENCH, f"{tag}_ratio_to_plain", t_plane / t_plain, "x (target <= 1.3)")

    # batch norm: the same plane size on a ConvNet, with statistics recomputed at every point
    ccfg = TrainConfig(epochs=1).replace(arch="conv", width_mult=0.5)
    conv = build(ccfg, ds).eval()
    c0 = S.flatten(conv)
    cplane = S.Plane.through(c0, c0 * (torch.rand_like(c0) > 0.5), c0 + 0.01 * torch.randn_like(c0))
    nb = 5 if quick else 11
    t_bn_plane = timeit(lambda: S.plane_surface(conv, splits, plane=cplane, n=nb), repeat=1)
    t_eval = timeit(lambda: [evaluate(conv, s) for s in splits.values()], repeat=repeat)
    t_recal = timeit(lambda: S.recalibrate_bn(conv, ds.train.x), repeat=repeat)
    record(BENCH, f"plane_{nb}x{nb}_conv_bn_seconds_per_point", t_bn_plane / (nb * nb + 3), "s")
    record(BENCH, "conv_bn_plain_eval_seconds_per_point", t_eval, "s")
    record(BENCH, "conv_bn_recalibration_seconds_per_point", t_recal, "s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a few seconds)")
    args = parser.parse_args()
    repeat = 1 if args.quick else 3
    bench_small(args.quick, repeat)
    bench_lenet(args.quick, repeat)
    bench_plane(args.quick, repeat)


if __name__ == "__main__":
    main()
