"""Training speed on a shared machine: the same training step idle and beside busy processes, with torch's defaults
and with prunekit's CPU settings (prunekit.core.runtime).

The step: LeNet-300-100 at batch 128 on MNIST-shaped inputs (prunekit's model, its fused Adam and its batch
indexing; the pixel values do not change the time). Each measurement is a fresh process with its own environment,
because OpenMP reads its settings once, when torch loads it. The benchmark starts the busy processes itself and
stops them after each load state:

- ``spin``: a single-threaded Python loop, one core's worth of work (two of them fill a 2-core machine);
- ``torch``: another torch job with torch's defaults (a matmul loop on every core, its OpenMP threads spinning);
- ``spin, mid-run``: the spin processes start after the measured process has run a second (the load arrives when its
  threads are already chosen; the timed window starts with them, so it includes prunekit's reaction).

Settings measured side by side, interleaved in rounds (median over rounds):

- ``default``: torch's defaults (``OMP_WAIT_POLICY`` and ``GOMP_SPINCOUNT`` unset, one thread per usable core);
- ``prunekit``: ``import prunekit`` before torch, which sets :func:`prunekit.core.runtime.environment`;
- with ``--candidates``, the alternatives it was chosen from: ``OMP_WAIT_POLICY=PASSIVE``, one thread, and
  ``GOMP_SPINCOUNT`` between 0 and the default.

Targets (issue "Full speed on a busy machine"): two ``spin`` processes busy, >= 0.4x the idle default; one busy,
>= 1.5x the default under the same load; idle, >= 0.9x the default. Rows go to data/results/benchmarks.csv.

    python benchmarks/bench_load.py [--quick] [--candidates] [--rounds N] [--seconds S]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

BENCH = "load"
CHILD_FLAG = "--child"
BUSY = {
    "spin": "while True: pass",
    "torch": "import torch\na = torch.randn(384, 384)\nwhile True:\n    a = torch.tanh(a @ a)",
}


def measure_step(seconds: float, late_busy: int = 0) -> float:
    """Samples/s of prunekit's training step (LeNet-300-100, batch 128, fused Adam) over ``seconds`` after warm-up;
    with ``late_busy``, that many spin processes start after one more second of training, when the timing starts."""
    if os.environ.get("BENCH_IMPORT_PRUNEKIT") == "1":
        import prunekit  # noqa: F401  (first: it sets the OpenMP environment before torch loads)
    import torch

    from prunekit.core.config import ModelConfig, TrainConfig
    from prunekit.core.data import Split, iterate_batches
    from prunekit.core.models import build_model
    from prunekit.core.train import make_loss, make_optimizer

    cfg = TrainConfig(model=ModelConfig("lenet300"), batch_size=128)
    gen = torch.Generator().manual_seed(0)
    split = Split(torch.randn(60_000, 1, 28, 28, generator=gen), torch.randint(0, 10, (60_000,), generator=gen))
    torch.manual_seed(0)
    model = build_model(cfg.model, (1, 28, 28), 10)
    optimizer = make_optimizer(model.parameters(), cfg)
    loss_fn = make_loss(cfg.loss)
    model.train()
    batches = iterate_batches(split, cfg.batch_size, shuffle=True, generator=gen)

    def step():
        nonlocal batches
        try:
            xb, yb = next(batches)
        except StopIteration:
            batches = iterate_batches(split, cfg.batch_size, shuffle=True, generator=gen)
            xb, yb = next(batches)
        loss = loss_fn(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return xb.shape[0]

    for _ in range(30):
        step()
    busy = Busy("spin", late_busy)
    if late_busy:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 1.0:
            step()
        busy.start()
    try:
        seen, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            seen += step()
        return seen / (time.perf_counter() - t0)
    finally:
        busy.stop()


def settings(candidates: bool) -> dict[str, dict[str, str]]:
    """Environment of each setting measured (``BENCH_IMPORT_PRUNEKIT=1``: prunekit chooses, on import)."""
    off = {"PRUNEKIT_THREADS": "torch"}
    out = {"default": dict(off), "prunekit": {"BENCH_IMPORT_PRUNEKIT": "1"}}
    if candidates:
        out["OMP_WAIT_POLICY=PASSIVE"] = {**off, "OMP_WAIT_POLICY": "PASSIVE"}
        out["1 thread"] = {**off, "OMP_NUM_THREADS": "1"}
        for n in (0, 1_000, 10_000, 30_000, 100_000):
            out[f"GOMP_SPINCOUNT={n}"] = {**off, "GOMP_SPINCOUNT": str(n)}
    return out


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without OpenMP/prunekit settings, plus ``extra``."""
    drop = ("OMP_", "GOMP_", "KMP_", "MKL_NUM_THREADS", "PRUNEKIT_THREADS")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    return {**env, **extra}


def child(env: dict[str, str], seconds: float, late_busy: int = 0) -> float:
    out = subprocess.run([sys.executable, __file__, CHILD_FLAG, "--seconds", str(seconds), "--late-busy",
                          str(late_busy)], env=clean_env(env), capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["samples_per_s"]


class Busy:
    """``n`` busy processes of ``kind`` for the duration of a ``with`` block (torch's defaults in the torch kind)."""

    def __init__(self, kind: str, n: int):
        self.kind, self.n, self.procs = kind, n, []

    def start(self, settle: bool = False):
        env = clean_env({"PRUNEKIT_THREADS": "torch"})
        self.procs = [subprocess.Popen([sys.executable, "-c", BUSY[self.kind]], env=env) for _ in range(self.n)]
        if settle and self.n:
            time.sleep(1.5 if self.kind == "torch" else 0.3)  # torch's import before the load is on
        return self

    def stop(self):
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()
        self.procs = []

    def __enter__(self):
        return self.start(settle=True)

    def __exit__(self, *exc):
        self.stop()


def main(quick: bool, candidates: bool, rounds: int, seconds: float) -> None:
    from prunekit.report.benchmarking import record
    from prunekit.core.runtime import usable_cores, worker_environment

    print(f"usable cores: {usable_cores()}; prunekit's settings in this process: {worker_environment()}")
    states = [("idle", None, 0, 0), ("1 spin busy", "spin", 1, 0), ("2 spin busy", "spin", 2, 0)]
    if not quick:
        states += [("1 torch busy", "torch", 1, 0), ("2 torch busy", "torch", 2, 0),
                   ("1 spin busy, mid-run", None, 0, 1), ("2 spin busy, mid-run", None, 0, 2)]
    setups = settings(candidates)
    results: dict[tuple[str, str], list[float]] = {}
    for r in range(rounds):
        for state, kind, n, late in states:
            names = list(setups)
            names = names[r % len(names):] + names[:r % len(names)]  # another order each round
            with Busy(kind or "spin", n):
                for name in names:
                    results.setdefault((name, state), []).append(child(setups[name], seconds, late))
    median = {k: statistics.median(v) for k, v in results.items()}
    idle_default = median[("default", "idle")]
    for (name, state), value in median.items():
        record(BENCH, f"{name} | {state}", value, "samples/s")
        record(BENCH, f"{name} | {state} / idle default", value / idle_default, "x")
        if name != "default":
            record(BENCH, f"{name} | {state} / default {state}", value / median[("default", state)], "x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(CHILD_FLAG, action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="spin-busy states only, one round: a smoke run")
    parser.add_argument("--candidates", action="store_true", help="also the settings prunekit's were chosen from")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (3; 1 with --quick)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per measurement (4; 1.5 with --quick)")
    parser.add_argument("--late-busy", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    seconds = args.seconds or (1.5 if args.quick else 4.0)
    if args.child:
        print(json.dumps({"samples_per_s": measure_step(seconds, args.late_busy)}))
    else:
        main(args.quick, args.candidates, args.rounds or (1 if args.quick else 3), seconds)
