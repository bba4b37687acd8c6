"""Wall-clock timing of a callable: the median of repeated runs after a warm-up (what the benchmarks, the inference
speed-ups and the training-time estimate measure)."""

from __future__ import annotations

import statistics
import time
from typing import Callable

from .checks import count

__all__ = ["timeit"]


def timeit(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeat`` runs (>= 1), after ``warmup`` runs (>= 0)."""
    repeat, warmup = count("repeat", repeat), count("warmup", warmup, low=0)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
