"""CPU threads that stay fast when the machine is shared.

With torch's defaults, its OpenMP threads spin while they wait for each other; when other processes keep the cores
busy, a waiting thread burns the time slice its sibling needs, and training slows down 10-90x
(``benchmarks/bench_load.py``). prunekit does two things, both chosen by that benchmark:

- **A short spin.** ``GOMP_SPINCOUNT=30000`` (libgomp's default is 300,000 on an idle machine): a waiting thread spins
  briefly, then sleeps. OpenMP reads it once, when torch loads, so it must be in the environment before ``import
  torch``: ``import prunekit`` sets it when it comes first (:func:`configure_environment`), and the Jupyter kernel
  spec, the Makefile and the Dask workers (which inherit it) carry it. Importing prunekit after torch prints a
  one-line note of what to set, once.
- **As many threads as there are free cores.** prunekit's batch loops call :func:`adapt_threads`; at most every
  0.25 s it measures the CPU time that *other* processes used on this process's cores (psutil, the last second)
  and sets ``torch.set_num_threads`` to the cores left, at least 1 and at most the ceiling: the cores this process
  may use (affinity and cgroup quota, ``joblib.cpu_count``) or a thread count set by hand.

``PRUNEKIT_THREADS`` chooses: ``auto`` (the default: both of the above), a number ``n`` (``n`` threads, never
changed: bitwise-repeatable numbers on a busy machine too), or ``torch`` (torch's defaults, nothing changed).

Numbers: torch's CPU kernels give the same results for the same number of threads; with another thread count a
training run can differ in the last digits (a LeNet-sized MLP trained with Adam does, by about 3e-8). On an idle machine ``auto`` keeps the
ceiling throughout, so runs repeat bitwise; when other work took cores during a run, the training history's
``threads`` column shows the fewest threads an epoch used.
"""

from __future__ import annotations

import os
import sys
import time
import warnings

__all__ = ["SPIN_COUNT", "MODES", "mode", "usable_cores", "environment", "configure_environment", "adapt_threads",
           "thread_ceiling", "worker_environment", "fewest_threads_since"]

SPIN_COUNT = "30000"      # GOMP_SPINCOUNT: the lowest of the measured values that keeps the idle speed (0.99x)
MODES = ("auto", "<number of threads>", "torch")
INTERVAL = 0.25           # seconds between two looks at the load
WINDOW = 4                # looks averaged (one second)
_USER_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def mode() -> str | int:
    """``PRUNEKIT_THREADS``: ``"auto"`` (unset or empty), ``"torch"``, or a positive number of threads."""
    text = os.environ.get("PRUNEKIT_THREADS", "").strip().lower() or "auto"
    if text in ("auto", "torch"):
        return text
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise ValueError(f"PRUNEKIT_THREADS={text!r} is not allowed; allowed values: {', '.join(MODES)}")


def usable_cores() -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup CPU quota (``joblib.cpu_count``)."""
    from joblib import cpu_count

    return max(1, int(cpu_count()))


def environment() -> dict[str, str]:
    """The OpenMP settings prunekit's processes start with (empty under ``PRUNEKIT_THREADS=torch``); a setting the
    user made (``OMP_WAIT_POLICY``, ``GOMP_SPINCOUNT``, ``OMP_NUM_THREADS``) is theirs and left out."""
    m = mode()
    if m == "torch":
        return {}
    env = {}
    if not any(k in os.environ for k in _USER_SETTINGS):
        env["GOMP_SPINCOUNT"] = SPIN_COUNT
    if "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(m if isinstance(m, int) else usable_cores())
    return env


_noted = False


def configure_environment() -> None:
    """Put :func:`environment` into ``os.environ`` while torch has not loaded OpenMP yet (``import prunekit`` calls
    this before it imports torch); if torch came first, a one-line note of what to set, once per process."""
    global _noted
    settings = environment()
    if "torch" not in sys.modules:
        os.environ.update(settings)
        return
    if "GOMP_SPINCOUNT" in settings and not _noted:
        _noted = True
        warnings.warn("torch was imported before prunekit, so its threads spin with torch's defaults and slow down "
                      f"10-90x when other processes keep the cores busy: start Python with GOMP_SPINCOUNT={SPIN_COUNT}"
                      " (or import prunekit first); see the README, 'Busy machines'", RuntimeWarning, stacklevel=3)


class _Governor:
    """Torch's thread count from the load on this process's cores (see the module docstring)."""

    def __init__(self):
        self.next_look = 0.0
        self.last = None          # (time, busy CPU seconds on our cores, this process's CPU seconds)
        self.others: list[float] = []
        self.set_by_us = None     # the thread count this governor set last
        self.ceiling = None
        self.fewest = None        # fewest threads since the last fewest_threads_since() mark

    def _look(self):
        import psutil

        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        per_cpu = psutil.cpu_times(percpu=True)
        mine = [per_cpu[c] for c in cpus if c < len(per_cpu)] if cpus else per_cpu
        busy = sum(t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0)
                   + getattr(t, "steal", 0) for t in mine)
        own = psutil.Process().cpu_times()
        return time.monotonic(), busy, own.user + own.system, len(mine)

    def adapt(self) -> int:
        import torch

        now = time.monotonic()
        current = torch.get_num_threads()
        if now < self.next_look:
            return current
        self.next_look = now + INTERVAL
        m = mode()
        if m == "torch":
            return current
        if isinstance(m, int):  # pinned: set once, never changed by the load
            if self.ceiling is None:
                self.ceiling = m
                return self._set(m)
            return current
        if self.ceiling is None or current != self.set_by_us:  # first look, or threads set by hand: a new ceiling
            self.ceiling = current
        look = self._look()
        if self.last is None:
            self.last = look
            return self._set(current)
        seconds = look[0] - self.last[0]
        if seconds > 0:
            others = max(0.0, (look[1] - self.last[1]) - (look[2] - self.last[2])) / seconds
            self.others = (self.others + [others])[-WINDOW:]
        self.last = look
        busy = sum(self.others) / len(self.others) if self.others else 0.0
        free = look[3] - int(busy + 0.5)
        return self._set(max(1, min(self.ceiling, free)))

    def _set(self, n: int) -> int:
        import torch

        if n != torch.get_num_threads():
            torch.set_num_threads(n)
        self.set_by_us = n
        self.fewest = n if self.fewest is None else min(self.fewest, n)
        return n


_governor = _Governor()


def adapt_threads() -> int:
    """Torch's thread count for the next batch: the free cores of this process (see the module docstring); cheap
    enough to call once per batch (a clock read, and a look at the load every 0.25 s). Returns the count."""
    return _governor.adapt()


class thread_ceiling:
    """``with thread_ceiling(n):`` at most ``n`` torch threads in the block (a Dask task's share of its host), the
    previous count and ceiling restored after."""

    def __init__(self, n: int):
        from .checks import count

        self.n = count("n", n)

    def __enter__(self):
        import torch

        self.saved = torch.get_num_threads(), _governor.ceiling, _governor.set_by_us
        torch.set_num_threads(self.n)
        _governor.ceiling = _governor.set_by_us = self.n
        return self

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.saved[0])
        _governor.ceiling, _governor.set_by_us = self.saved[1], self.saved[2]


def worker_environment() -> dict[str, str]:
    """The OpenMP and prunekit settings of this process as they stand, for the processes it starts (Dask workers
    set them before they import torch)."""
    return {k: os.environ[k] for k in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "PRUNEKIT_THREADS") if k in os.environ}


def fewest_threads_since(mark: bool = False) -> int:
    """The fewest torch threads :func:`adapt_threads` used since the last call with ``mark=True`` (which starts a new
    span); torch's current count when it has not run since."""
    import torch

    fewest = _governor.fewest if _governor.fewest is not None else torch.get_num_threads()
    if mark:
        _governor.fewest = torch.get_num_threads()
    return fewest
