"""Benchmark helpers: tidy rows into ``data/results/benchmarks.csv`` and the machine's own matmul throughput.

Every benchmark reports ratios against a baseline measured in the same run, and against :func:`matmul_gflops`.
"""

from __future__ import annotations

import csv
import datetime as _dt
import os
import torch

from ..core.checks import count, number
from ..core.device import device_type
from ..core.paths import atomic_write, results_root
from ..core.timing import timeit

__all__ = ["record", "matmul_gflops", "benchmarks_csv"]

COLUMNS = ("benchmark", "quantity", "value", "unit", "threads", "device", "timestamp")


def benchmarks_csv():
    """The benchmarks table; a table written before the ``device`` column gains it (its rows were CPU runs)."""
    path = results_root() / "benchmarks.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.stat().st_size:
        with open(path, newline="") as f:
            header = next(csv.reader(f), [])
        if "device" not in header:
            import pandas as pd

            old = pd.read_csv(path).assign(device="cpu").reindex(columns=list(COLUMNS))
            atomic_write(path, lambda tmp: old.to_csv(tmp, index=False))
    return path


def record(benchmark: str, quantity: str, value: float, unit: str, device: str = "cpu") -> dict:
    """Append one tidy row (benchmark, quantity, value, unit, the device it ran on) and print it."""
    value = float(number("value", value))
    row = {"benchmark": benchmark, "quantity": quantity, "value": float(value), "unit": unit,
           "threads": torch.get_num_threads(), "device": device_type(device),
           "timestamp": _dt.datetime.now().isoformat(timespec="seconds")}
    path = benchmarks_csv()
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            w.writeheader()
        w.writerow(row)
        f.flush()
        os.fsync(f.fileno())
    print(f"{benchmark:<28} {quantity:<44} {value:>12.4g} {unit}")
    return row


def matmul_gflops(n: int = 1024, repeat: int = 7) -> float:
    """The machine's fp32 matmul throughput (GFLOP/s) for n x n @ n x n with torch's current thread count."""
    n, repeat = count("n", n), count("repeat", repeat)
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    per_call = timeit(lambda: [torch.mm(a, b, out=out) for _ in range(10)], repeat=repeat, warmup=2) / 10
    return 2 * n ** 3 / per_call / 1e9
