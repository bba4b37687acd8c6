"""Training throughput: prunekit's in-memory trainer vs the conventional torchvision + DataLoader pipeline.

Measured in one run, on MNIST:
- the machine's fp32 matmul throughput (GFLOP/s);
- prunekit's training throughput (samples/s, and achieved GFLOP/s = 6 x parameters x samples/s) for LeNet-300-100 at
  batch 128 and for the FOR.ai net at batch 128 and 512;
- the same models trained the conventional way: torchvision MNIST with ToTensor + Normalize, a shuffling DataLoader,
  a non-fused Adam.

Targets: LeNet-300-100 at batch 128 >= 3x the conventional samples/s and >= 50% of the matmul figure; FOR.ai net
>= 40% of the matmul figure at batch 128 and >= 70% at batch 512.

    python benchmarks/bench_training.py [--quick]
"""

from __future__ import annotations

import argparse
import time

import torch

from prunekit.report.benchmarking import matmul_gflops, record
from prunekit.core.store import build
from prunekit.core.config import DataConfig, ModelConfig, TrainConfig
from prunekit.core.data import iterate_batches, load_dataset
from prunekit.core.prunable import count_parameters
from prunekit.core.paths import data_dir
from prunekit.core.train import make_loss, make_optimizer


def prunekit_throughput(cfg: TrainConfig, ds, samples: int) -> float:
    """Samples/s of prunekit's training step (the loop of prunekit.core.train.train) over ``samples`` samples."""
    model = build(cfg, ds)
    optimizer = make_optimizer(model.parameters(), cfg)
    loss_fn = make_loss(cfg.loss)
    gen = torch.Generator().manual_seed(0)
    model.train()

    def steps(n):
        seen = 0
        while seen < n:
            for xb, yb in iterate_batches(ds.train, cfg.batch_size, shuffle=True, generator=gen):
                loss = loss_fn(model(xb), yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                seen += xb.shape[0]
                if seen >= n:
                    return seen

    steps(cfg.batch_size * 5)  # warm-up
    t0 = time.perf_counter()
    n = steps(samples)
    return n / (time.perf_counter() - t0)


def conventional_throughput(cfg: TrainConfig, ds, samples: int) -> float:
    """Samples/s of the textbook pipeline: torchvision MNIST + ToTensor/Normalize + DataLoader + torch.optim.Adam."""
    import torchvision
    from torch.utils.data import DataLoader
    from torchvision import transforms

    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    data = torchvision.datasets.MNIST(str(data_dir()), train=True, download=True, transform=tf)
    loader = DataLoader(data, batch_size=cfg.batch_size, shuffle=True)
    model = build(cfg, ds)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()

    def steps(n):
        seen = 0
        while seen < n:
            for xb, yb in loader:
                loss = loss_fn(model(xb), yb)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                seen += xb.shape[0]
                if seen >= n:
                    return seen

    steps(cfg.batch_size * 5)
    t0 = time.perf_counter()
    n = steps(samples)
    return n / (time.perf_counter() - t0)


def main(quick: bool = False) -> None:
    bench = "training"
    peak = matmul_gflops()
    record(bench, "machine fp32 matmul (1024^3)", peak, "GFLOP/s")
    ds = load_dataset(DataConfig("mnist"))
    samples = 4_000 if quick else 30_000
    for arch, batch in (("lenet300", 128), ("forai", 128), ("forai", 512)):
        cfg = TrainConfig(data=DataConfig("mnist"), model=ModelConfig(arch), batch_size=batch, epochs=1)
        params = count_parameters(build(cfg, ds))
        ours = prunekit_throughput(cfg, ds, samples)
        gflops = 6 * params * ours / 1e9
        record(bench, f"prunekit {arch} batch {batch}", ours, "samples/s")
        record(bench, f"prunekit {arch} batch {batch} achieved", gflops, "GFLOP/s")
        record(bench, f"prunekit {arch} batch {batch} fraction of matmul", gflops / peak, "ratio")
        conv = conventional_throughput(cfg, ds, samples // (4 if arch == "lenet300" else 1))
        record(bench, f"conventional {arch} batch {batch}", conv, "samples/s")
        record(bench, f"speed-up {arch} batch {batch} vs conventional", ours / conv, "x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer samples: a smoke run")
    main(parser.parse_args().quick)
