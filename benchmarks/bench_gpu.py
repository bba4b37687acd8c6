"""prunekit on a GPU against the CPU beside it; rows into data/results/benchmarks.csv, with the device.

1. Training samples/s of the sources' small networks: LeNet-300-100 at batch 128 and 512, the FOR.ai net at 512 (MNIST),
   the conv net at 128 (MNIST), ResNet20 on Fashion-MNIST at 28x28 at 128. On each device: prunekit's step (on CUDA
   the captured graph, prunekit.core.graphs) and the same step without the graph (the plain in-memory loop: gather,
   forward, loss, backward, fused step), measured over whole batches after a warm-up; and each device against the CPU.
2. K LeNet-300-100 trained together (MNIST at batch 128; digits at batch 32, notebook 03's quick setting), K = 1, 8,
   32: the group (prunekit.core.group: every network bitwise
   its lone run) and the stack (prunekit.core.stacked: batched products, its own numbers); total samples/s, and the
   ratio to one network's prunekit step on the same device.
3. Notebook 03's paper profile on the device (width sweep, in-process): a sample of its grid (every ``--nb03-stride``-th
   point) timed through ``width_sweep`` and extrapolated to the whole grid, against its 2-core CPU time in the README
   (23 min); ``--nb03-stride 1`` times the whole grid. CUDA only unless ``--sections`` names it.
4. The ``full`` profile's planned training per notebook on the device (``prunekit.core.estimate``, each notebook run
   headless up to its estimate cell). CUDA only unless ``--sections`` names it.

Without CUDA it measures the CPU rows of 1 and 2 and prints which rows it could not measure; with CUDA, section 2
measures the GPU only. Written for the GPU
machine's Python (torch 2.11, no Dask, no papermill) and about 200 s there; on a 2-core CPU sections 1-2 take a few
minutes. Run on a quiet machine: the figures are wall-clock throughput.

    python benchmarks/bench_gpu.py [--quick] [--seconds 1.0] [--sections 1,2,3,4] [--nb03-stride 7]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
for name in ("PRUNEKIT_CACHE", "PRUNEKIT_RESULTS", "PRUNEKIT_FIGURES"):  # nothing of a real run touched or reused
    os.environ[name] = tempfile.mkdtemp(prefix=f"bench_gpu_{name.lower()}_")
os.environ.setdefault("PRUNEKIT_QUIET", "1")
BENCHMARKS_CSV = ROOT / "data" / "results"  # rows go to the project's table, not the temporary results folder

import prunekit  # noqa: E402,F401 - first: prunekit's OpenMP settings before torch loads
import torch  # noqa: E402

from prunekit.core import graphs  # noqa: E402
from prunekit.core.config import DataConfig, ModelConfig, TrainConfig  # noqa: E402
from prunekit.core.data import Split, files_present, load_dataset  # noqa: E402
from prunekit.core.device import dataset_to, deterministic  # noqa: E402
from prunekit.core.store import build  # noqa: E402
from prunekit.core.train import make_loss, make_optimizer  # noqa: E402

NB03_PAPER_CPU_SECONDS = 23 * 60  # README, table of profiles: notebook 03, paper, 2 CPU cores
BENCH = "gpu"
MODELS = [("lenet300", "mnist", None, 128), ("lenet300", "mnist", None, 512), ("forai", "mnist", None, 512),
          ("conv", "mnist", None, 128), ("resnet20", "fashion_mnist", None, 128)]
not_measured: list[str] = []


def record(quantity: str, value: float, unit: str, device: str) -> None:
    from prunekit.report import benchmarking

    saved = os.environ["PRUNEKIT_RESULTS"]
    os.environ["PRUNEKIT_RESULTS"] = str(BENCHMARKS_CSV)
    try:
        benchmarking.record(BENCH, quantity, value, unit, device=device)
    finally:
        os.environ["PRUNEKIT_RESULTS"] = saved


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed_epochs(run_epoch, size: int, n: int, device: str, seconds: float) -> float:
    """Samples/s of ``run_epoch(batches)`` (whole batches of ``size``): a warm-up, a short calibration, then an epoch
    sized to last about ``seconds``."""
    run_epoch(min(n // size, graphs.WARMUP_STEPS + 4))  # warm-up (and, on CUDA, the first capture)
    sync(device)
    t0 = time.perf_counter()
    calib = min(n // size, 8)
    run_epoch(calib)
    sync(device)
    rate = calib * size / (time.perf_counter() - t0)
    batches = int(max(8, min(n // size, rate * seconds / size)))
    t0 = time.perf_counter()
    run_epoch(batches)
    sync(device)
    return batches * size / (time.perf_counter() - t0)


def group_rate(cfg: TrainConfig, ds, k: int, device: str, seconds: float, use_graphs: bool) -> float:
    """Total samples/s of ``k`` networks of ``cfg`` (seeds 0..k-1) trained together by GroupStep (k = 1: prunekit's
    single-network step), with or without the CUDA graph."""
    models = [build(cfg.replace(seed=s), ds).to(device) for s in range(k)]
    optimizer = make_optimizer([p for m in models for p in m.parameters()], cfg)
    step = graphs.GroupStep(models, optimizer, make_loss(cfg.loss), cfg.batch_size, device)
    step.use_graphs = use_graphs and graphs.graphs_enabled(device)
    split = ds.train
    gen = torch.Generator().manual_seed(0)

    def run_epoch(batches: int):
        sub = Split(split.x[:batches * cfg.batch_size], split.y[:batches * cfg.batch_size])
        perms = {i: torch.randperm(len(sub), generator=gen).to(device) for i in range(k)}
        step.run_epoch(sub, perms, list(range(k)))

    with deterministic(device):
        return k * _timed_epochs(run_epoch, cfg.batch_size, len(split), device, seconds)


def stack_rate(cfg: TrainConfig, ds, k: int, device: str, seconds: float) -> float:
    """Total samples/s of a stack of ``k`` networks of ``cfg`` (prunekit.core.stacked)."""
    from prunekit.core.stacked import StackedMLP, stack_epoch

    stack = StackedMLP([build(cfg.replace(seed=s), ds) for s in range(k)]).to(device)
    optimizer = make_optimizer(stack.parameters(), cfg)
    gen = torch.Generator().manual_seed(0)

    def run_epoch(batches: int):
        n = batches * cfg.batch_size
        perms = torch.stack([torch.randperm(n, generator=gen) for _ in range(k)]).to(device)
        stack_epoch(stack, optimizer, ds.train, perms, cfg.batch_size, cfg.loss)

    with deterministic(device):
        return k * _timed_epochs(run_epoch, cfg.batch_size, len(ds.train), device, seconds)


def _dataset(name: str, resize, device: str):
    if not files_present(name):
        return None
    return dataset_to(load_dataset(DataConfig(name, resize=resize)), device)


def section_training(devices: list[str], seconds: float) -> None:
    rates: dict = {}
    for arch, data, resize, batch in MODELS:
        label = f"{arch} {data}{f' {resize}x{resize}' if resize else ''} batch {batch}"
        for device in devices:
            ds = _dataset(data, resize, device)
            if ds is None:
                not_measured.append(f"training {label}: {data}'s files are not in the data folder")
                continue
            cfg = TrainConfig(data=DataConfig(data, resize=resize), model=ModelConfig(arch), batch_size=batch,
                              device=device)
            ours = group_rate(cfg, ds, 1, device, seconds, use_graphs=True)
            rates[label, device] = ours
            record(f"train {label}, prunekit step", ours, "samples/s", device)
            if device.startswith("cuda"):
                plain = group_rate(cfg, ds, 1, device, seconds, use_graphs=False)
                record(f"train {label}, plain loop", plain, "samples/s", device)
                record(f"train {label}, prunekit step / plain loop", ours / plain, "x", device)
        if ("cpu" in devices and any(d.startswith("cuda") for d in devices) and (label, "cpu") in rates
                and (label, devices[0]) in rates):
            record(f"train {label}, GPU step / CPU ({torch.get_num_threads()} threads)",
                   rates[label, devices[0]] / rates[label, "cpu"], "x", devices[0])


def section_many(devices: list[str], seconds: float, ks=(1, 8, 32)) -> None:
    for data, batch in (("mnist", 128), ("digits", 32)):  # the sources' setting; notebook 03's quick one
        for device in devices:
            ds = _dataset(data, None, device)
            if ds is None:
                not_measured.append(f"K networks together on {data}: its files are not in the data folder")
                continue
            cfg = TrainConfig(data=DataConfig(data), model=ModelConfig("lenet300"), batch_size=batch, device=device)
            one = group_rate(cfg, ds, 1, device, seconds, use_graphs=True)
            label = f"lenet300 {data} batch {batch}"
            record(f"1 x {label}, prunekit step", one, "samples/s", device)
            for k in ks:
                for engine, rate in (("group (bitwise each alone)",
                                      lambda: group_rate(cfg, ds, k, device, seconds, True)),
                                     ("stack (batched products)", lambda: stack_rate(cfg, ds, k, device, seconds))):
                    value = rate()
                    record(f"{k} x {label} together, {engine}", value, "samples/s", device)
                    record(f"{k} x {label} together, {engine} / one", value / one, "x", device)


def section_nb03(device: str, stride: int) -> None:
    from prunekit.core.data import available_datasets
    from prunekit.studies import s000_density as invariance

    settings = invariance.preset("paper")
    present, _ = available_datasets(sorted({d for ds in settings.archs.values() for d in ds}))
    configs = settings.grid({arch: [d for d in ds if d in present] for arch, ds in settings.archs.items()})
    sample = configs[::stride]
    t0 = time.perf_counter()
    sweep = invariance.width_sweep(sample, device=device, eval_subset=settings.eval_subset)
    elapsed = time.perf_counter() - t0
    if not sweep.ok:
        not_measured.append(f"notebook 03 paper: {len(sweep.failures)} sampled points failed "
                            f"({sweep.failures.iloc[0]['error']})")
    estimate = elapsed * len(configs) / max(1, len(sample))
    what = "all" if stride == 1 else f"extrapolated from {len(sample)} of"
    record(f"notebook 03 paper profile, {what} {len(configs)} points (in-process)", estimate, "s", device)
    record("notebook 03 paper profile, 2-core CPU (README) / this device", NB03_PAPER_CPU_SECONDS / estimate, "x",
           device)


def section_full(device: str) -> None:
    from prunekit.report.headless import run_notebook

    for nb in sorted((ROOT / "notebooks").glob("0[1-7]_*.ipynb")):
        try:
            ns = run_notebook(nb, {"profile": "full", "device": device}, until="expected")
        except LookupError:
            not_measured.append(f"full profile estimate of {nb.stem}: it plans no training of its own")
            continue
        except Exception as err:  # noqa: BLE001 - reported, the other notebooks go on
            not_measured.append(f"full profile estimate of {nb.stem}: {type(err).__name__}: {err}")
            continue
        expected = ns["expected"]
        record(f"full profile training estimate, {nb.stem} ({int((~expected.cached).sum())} networks)",
               expected.attrs["seconds"], "s", device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter measurements and K up to 8: a smoke run")
    parser.add_argument("--seconds", type=float, default=1.0, help="seconds per throughput measurement")
    parser.add_argument("--sections", default=None, help="comma-separated: 1 training, 2 K networks, 3 notebook 03, "
                                                          "4 full estimates (default: 1,2 and, with CUDA, 3,4)")
    parser.add_argument("--nb03-stride", type=int, default=7, help="time every n-th point of notebook 03's grid")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    devices = (["cuda"] if cuda else []) + ["cpu"]
    sections = set((args.sections or ("1,2,3,4" if cuda else "1,2")).split(","))
    seconds = 0.5 if args.quick else args.seconds
    print(f"torch {torch.__version__}; devices: {', '.join(devices)}"
          + (f" ({torch.cuda.get_device_name(0)})" if cuda else "") + f"; CPU threads {torch.get_num_threads()}")
    if not cuda:
        not_measured.append("every CUDA row (torch sees no CUDA device here): the GPU's training rates, the GPU "
                            "against the CPU, K networks on the GPU, notebook 03 on the GPU, the full profile on "
                            "one GPU")
    t0 = time.perf_counter()
    if "1" in sections:
        section_training(devices, seconds)
    if "2" in sections:  # on a GPU machine the GPU's rows (the CPU's: run with --sections 2 where there is no GPU)
        section_many(devices[:1], seconds, ks=(1, 8) if args.quick else (1, 8, 32))
    target = devices[0]
    if "3" in sections:
        section_nb03(target, max(1, args.nb03_stride))
    if "4" in sections:
        section_full(target)
    print(f"bench_gpu: {time.perf_counter() - t0:.0f} s")
    for line in not_measured:
        print(f"not measured: {line}")


if __name__ == "__main__":
    main()
