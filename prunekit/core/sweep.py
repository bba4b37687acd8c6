"""Sweeps over training configs: one tidy DataFrame row per config, from a measurement of your choice.

A grid (:func:`make_grid`) is the Cartesian product of axes such as dataset x arch x width_mult x optimizer x init x
seed, each point built from a base :class:`prunekit.core.config.TrainConfig` with ``cfg.replace(...)``.
:func:`run_sweep` hands every config to a ``measure``: any picklable callable ``measure(cfg, model_root=None) ->
row`` (it trains through the result store and measures; a study's point, e.g. source 000's
``prunekit.studies.s000_density.DensityPoint``) with ``measure.spec()`` (a dict: what the row depends on besides
the config; it names the stored row), ``measure.columns`` (the row's columns) and optionally ``measure.cost(cfg)``
(an expected cost, to start the costliest points first on Dask), ``measure.validate()`` (checks before anything
runs) and ``measure.trains_config = True`` (it trains exactly ``cfg`` through ``prunekit.core.store.train_or_load``).

Models trained together: for a measure that ``trains_config``, the models of the points still to run are trained
first, in groups that share a training step (``prunekit.core.many.train_or_load_many``, ``group_training=True``, the
default): one loop per group, each network bitwise the model its point would train alone, stored under its config's
key, so the points then load them. The numbers are the same; the points' ``train_seconds`` become load times.

Execution:

- in-process (``workers=1``, the default);
- on a Dask ``LocalCluster`` of ``workers`` processes with one thread each (``workers > 1``), the costliest points
  first, so that no long point starts last while the other workers idle;
- on an existing cluster: ``scheduler="tcp://host:8786"`` (started with ``dask scheduler`` and ``dask worker
  tcp://host:8786 --nworkers 4 --nthreads 1`` on each machine), or ``scheduler=<cluster object>`` / a
  ``distributed.Client``, e.g. on Slurm with dask-jobqueue::

      from dask_jobqueue import SLURMCluster
      cluster = SLURMCluster(cores=8, processes=8, memory="32GB", walltime="02:00:00")
      cluster.scale(jobs=4)
      run_sweep(configs, measure, scheduler=cluster)

  Workers must import the same ``prunekit`` and share the file system holding the caches (``PRUNEKIT_CACHE``).

Each task runs on at most the cores of its worker (``threads``, or by default the host's cores -
``SLURM_CPUS_PER_TASK`` when set - divided by the Dask workers on that host and by their threads), fewer while other
work keeps the cores busy (``prunekit.core.runtime``); its row's ``threads`` is the fewest it ran on. A LocalCluster's
workers start with prunekit's OpenMP settings. A finished point's row is stored under a hash of its config and the
measure's spec in ``<cache>/sweep_points/<hash>.json`` (written to a temporary file and renamed, so it is atomic): an
interrupted sweep resumes where it stopped. A point that fails is reported in ``SweepResult.failures`` (its config,
the error and the traceback) while the other points' rows are kept. A tqdm bar counts finished points.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import itertools
import json
import os
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from .checks import count, number, sequence
from .checks import path as checked_path
from .config import TrainConfig, train_configs
from .device import device_name, device_type
from .paths import atomic_write, cache_dir
from .runtime import fewest_threads_since, thread_ceiling, usable_cores, worker_environment

__all__ = ["make_grid", "config_columns", "point_key", "run_sweep", "SweepResult", "points_dir", "read_point", "training_groups",
           "write_point"]

# ---------------------------------------------------------------------------------------------------- grid
def make_grid(base: TrainConfig, axes: Mapping[str, Sequence] | None = None, *,
              overrides: Mapping[str, Mapping[Any, Mapping[str, Any]]] | None = None,
              init_checkpoint: bool = False, **axes_kw) -> list[TrainConfig]:
    """Cartesian product of ``axes`` (any ``cfg.replace`` keys, e.g. ``arch``, ``width_mult``, ``optimizer``,
    ``init``, ``seed``, ``dataset``), in the order given, the last axis varying fastest.

    overrides: per-value settings, e.g. ``{"optimizer": {"sgd": {"lr": 0.05, "momentum": 0.9}}, "arch": {"resnet":
      {"epochs": 3}}}``; applied after the axis values, in the order of ``overrides``.
    init_checkpoint: add epoch 0 to ``checkpoints`` so the weights at initialisation are stored with the model (not
      needed for Hoyer at init, which re-initialises from the seed exactly as training did; off by default so the
      models are shared with other notebooks' caches).
    Duplicate configs are dropped (first kept).
    """
    all_axes = dict(axes or {})
    for k, v in axes_kw.items():
        if k in all_axes:
            raise ValueError(f"axis {k!r} given twice")
        all_axes[k] = v
    for k, v in all_axes.items():
        if isinstance(v, (str, bytes)) or not isinstance(v, Iterable):
            raise ValueError(f"axis {k!r} must be a sequence of values, got {v!r}")
    names = list(all_axes)
    values = [list(all_axes[k]) for k in names]
    for k, v in zip(names, values):
        if not v:
            raise ValueError(f"axis {k!r} has no values")
    overrides = overrides or {}
    for k in overrides:
        if k not in names:
            raise ValueError(f"overrides key {k!r} is not an axis; axes: {', '.join(names)}")
    out, seen = [], set()
    for combo in itertools.product(*values):
        point = dict(zip(names, combo))
        cfg = base.replace(**point)
        for axis, table in overrides.items():
            extra = table.get(point[axis])
            if extra:
                cfg = cfg.replace(**extra)
        if init_checkpoint and 0 not in cfg.checkpoints:
            cfg = cfg.replace(checkpoints=(0, *cfg.checkpoints))
        k = cfg.key()
        if k not in seen:
            seen.add(k)
            out.append(cfg)
    return out


def config_columns(cfg: TrainConfig) -> dict:
    """The grid columns of a config (the identifying part of a result row)."""
    return {"dataset": cfg.data.name, "arch": cfg.model.arch, "width_mult": float(cfg.model.width_mult),
            "optimizer": cfg.optimizer, "init": cfg.model.init, "seed": int(cfg.seed), "lr": float(cfg.lr),
            "epochs": int(cfg.epochs)}


def point_key(cfg: TrainConfig, measure) -> str:
    """SHA-256 naming a point's stored row: the config's identity plus ``measure.spec()``."""
    settings = {"config": cfg.identity(), **measure.spec()}
    blob = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


# --------------------------------------------------------------------------------------------------- points
def points_dir(root: str | os.PathLike | None = None) -> Path:
    """Where points' rows are stored: ``root``, or ``<cache>/sweep_points``."""
    if root is not None:
        return checked_path("root", root)

    return cache_dir() / "sweep_points"


def _row_digest(row: dict) -> str:
    return hashlib.sha256(json.dumps(row, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def read_point(path: Path) -> dict | None:
    """A stored row, or None when it is missing or unreadable; a row that does not match its checksum, or that was
    stored before the checksum existed (nothing then shows it is the row measured), is None too, with a warning that
    names it (it is measured again)."""
    path = checked_path("path", path)
    try:
        with open(path) as f:
            stored = json.load(f)
    except (OSError, ValueError):  # missing or unreadable (never half-written: writes are atomic)
        return None
    if not (isinstance(stored, dict) and set(stored) == {"row", "sha256"}):
        warnings.warn(f"sweep point {path} has no checksum (stored before checksums existed, or altered): its row "
                      "cannot be verified; measuring it again", stacklevel=2)
        return None
    if stored["sha256"] != _row_digest(stored["row"]):
        warnings.warn(f"sweep point {path} does not match its checksum; measuring it again", stacklevel=2)
        return None
    return stored["row"]


def write_point(path: Path, row: dict) -> None:
    """Store a row atomically (a temporary file, then a rename), with the SHA-256 of its canonical JSON."""
    path = checked_path("path", path)
    row = json.loads(json.dumps(row))  # as it will read back
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps({"row": row, "sha256": _row_digest(row)},
                                                             sort_keys=True)))


def _expected_costs(configs: Sequence[TrainConfig], measure) -> list[float]:
    """``measure.cost`` of each config (0 without one), computed once per distinct (data, model, epochs)."""
    cost = getattr(measure, "cost", None)
    memo: dict = {}
    out = []
    for cfg in configs:
        key = (cfg.data, cfg.model, cfg.epochs)
        if key not in memo:
            memo[key] = float(cost(cfg)) if cost is not None else 0.0
        out.append(memo[key])
    return out


def _priorities(costs: Mapping[int, float]) -> dict[int, int]:
    """Dask priorities (higher runs first) of points ``{index: expected cost}``: the costliest first, so that a sweep
    does not end with one long point running while the other workers idle; equal costs in index order. All are
    <= 0 (Dask's default), so that on a shared cluster no point jumps ahead of other clients' work. The mapping is
    in that order too: submitted in it, the first points to reach idle workers are the costliest."""
    ranked = sorted(costs, key=lambda i: (-costs[i], i))
    return {i: -rank for rank, i in enumerate(ranked)}


def _default_threads(workers_per_host: Mapping[str, int] | None) -> int:
    """Cores of this Dask worker: host cores (or SLURM_CPUS_PER_TASK) / workers on the host / threads per worker."""
    cores = int(os.environ.get("SLURM_CPUS_PER_TASK", 0)) or usable_cores()
    nthreads, nworkers = 1, 1
    try:
        from distributed import get_worker

        w = get_worker()
        nthreads = max(1, int(w.state.nthreads))
        host = w.address.split("://")[-1].rsplit(":", 1)[0]
        if workers_per_host:
            nworkers = int(workers_per_host.get(host, 1))
    except (ImportError, ValueError, AttributeError):
        pass
    return max(1, cores // (nworkers * nthreads))


def run_point(cfg: TrainConfig, measure, *, model_root=None, points_root=None, use_point_cache: bool = True,
              threads: int | None = None) -> dict:
    """One point: its stored row, else ``measure(cfg, model_root=...)`` on at most ``threads`` torch threads, plus
    ``threads`` (the fewest it ran on), ``device``, ``key`` (the config's) and ``point_key``; stored unless
    ``use_point_cache=False``."""
    pkey = point_key(cfg, measure)
    path = points_dir(points_root) / f"{pkey}.json"
    if use_point_cache:
        row = read_point(path)
        if row is not None:
            return row
    with thread_ceiling(threads) if threads is not None else contextlib.nullcontext():
        fewest_threads_since(mark=True)
        row = dict(measure(cfg, model_root=model_root))
        row["threads"] = fewest_threads_since()
    row.update(device=device_type(cfg.device), key=cfg.key(), point_key=pkey)
    if use_point_cache:
        write_point(path, row)
    return row


def _pretrain_task(cfg_dicts: list[dict], model_root, threads: int | None, workers_per_host: dict | None,
                   on_dask: bool = False) -> dict:
    """Dask/in-process task: train (or load) one group's models together, on the threads a point would get; never
    raises (a failure is left to the points, which train alone and report it)."""
    from .many import train_or_load_many

    try:
        cfgs = [TrainConfig.from_dict(d) for d in cfg_dicts]
        if threads is None and on_dask:
            threads = _default_threads(workers_per_host)
        with thread_ceiling(threads) if threads is not None else contextlib.nullcontext():
            train_or_load_many(cfgs, quiet=True, root=model_root, skip_failures=True)
        return {"ok": len(cfgs)}
    except Exception as exc:  # noqa: BLE001 - the points report it
        return {"error": f"{type(exc).__name__}: {exc}"}


def training_groups(configs: Sequence[TrainConfig], max_group: int = 32) -> list[list[TrainConfig]]:
    """The configs whose models can train together (``prunekit.core.group.group_indices``) and for which that is
    faster (``prunekit.core.group.pays_to_group``: always on CUDA, cheap steps on the CPU), groups of two or more,
    each config once."""
    from .group import group_indices, pays_to_group

    configs = train_configs("configs", configs, nonempty=False)
    max_group = count("max_group", max_group)  # before pays_to_group builds a model
    unique = [c for c in {c.key(): c for c in configs}.values() if not c.stack and pays_to_group(c)]
    return [[unique[i] for i in g] for g in group_indices(unique, max_group) if len(g) > 1]


def _task(cfg_dict: dict, measure, options: dict, threads: int | None, workers_per_host: dict | None,
          on_dask: bool = False) -> dict:
    """Dask/in-process task: never raises, returns {"ok": row} or {"error": ..., "traceback": ...}."""
    try:
        cfg = TrainConfig.from_dict(cfg_dict)
        if threads is None and on_dask:
            threads = _default_threads(workers_per_host)
        return {"ok": run_point(cfg, measure, threads=threads, **options)}
    except Exception as exc:  # noqa: BLE001 - reported per point
        return {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}


@dataclass
class SweepResult:
    """``results``: one row per finished point (grid order); ``failures``: config columns + error + traceback."""

    results: pd.DataFrame
    failures: pd.DataFrame = field(default_factory=pd.DataFrame)
    seconds: float = 0.0
    mode: str = "in-process"

    @property
    def ok(self) -> bool:
        return self.failures.empty

    def raise_if_failed(self) -> "SweepResult":
        if not self.ok:
            first = self.failures.iloc[0]
            raise RuntimeError(f"{len(self.failures)} sweep point(s) failed; first: {first['error']}\n"
                               f"{first['traceback']}")
        return self


def _client_for(workers: int, scheduler, threads):
    """(client, cluster-to-close-or-None, mode)."""
    from distributed import Client, LocalCluster

    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               env=worker_environment())  # prunekit's OpenMP settings, before torch loads
        return Client(cluster), cluster, f"dask LocalCluster({workers} workers)"
    if isinstance(scheduler, Client):
        return scheduler, None, f"dask {scheduler.scheduler.address}"
    client = Client(scheduler)  # an address string or a cluster object (LocalCluster, SLURMCluster, ...)
    return client, None, f"dask {client.scheduler.address}"


def run_sweep(configs: Sequence[TrainConfig], measure, *, workers: int = 1, scheduler=None, threads: int | None = None,
              model_root=None, points_root=None, use_point_cache: bool = True, progress: bool = True,
              desc: str = "sweep", device: str | None = None, group_training: bool = True) -> SweepResult:
    """Run ``measure`` on every config; returns a :class:`SweepResult` whose ``results`` rows follow the order of
    ``configs`` (columns ``measure.columns``).

    workers: 1 -> in-process; > 1 -> a Dask LocalCluster with that many worker processes (1 thread each), closed at
      the end. On Dask the points are started costliest first (``measure.cost``); rows keep the configs' order.
      scheduler: address string, cluster object or ``distributed.Client`` of an existing cluster (overrides
      ``workers``; the cluster is left running).
    threads: torch threads per point (default: in-process, torch's current setting; on Dask, the worker's cores).
    model_root / points_root: model store and point-row folders (defaults: ``$PRUNEKIT_CACHE`` and
      ``$PRUNEKIT_CACHE/sweep_points``). use_point_cache=False recomputes (and does not store) every point.
    device: train and measure every point there ("auto", "cpu", "cuda", "cuda:<index>"; ``TrainConfig.device``);
      None keeps each config's own. Rows carry a ``device`` column (the device type: part of the point's identity).
    group_training: for a measure that ``trains_config``, train the models of the points to run first, in groups
      (module docstring): the same models, sooner. False trains each in its own point.
    """
    from tqdm import tqdm

    number("workers", workers, low=1, integer=True)
    if not callable(measure) or not hasattr(measure, "spec") or not hasattr(measure, "columns"):
        raise ValueError("measure must be callable as measure(cfg, model_root=...) and have spec() and columns "
                         "(e.g. prunekit.studies.s000_density.DensityPoint)")
    if hasattr(measure, "validate"):
        measure.validate()  # before anything is trained
    configs = sequence("configs", configs)
    for i, c in enumerate(configs):
        if not isinstance(c, TrainConfig):
            raise ValueError(f"configs[{i}]={c!r} must be a TrainConfig, got a {type(c).__name__}")
    keys = [c.key() for c in configs]
    repeated = next((i for i, k in enumerate(keys) if k in keys[:i]), None)
    if repeated is not None:
        raise ValueError(f"configs[{repeated}] repeats configs[{keys.index(keys[repeated])}]: its row would appear "
                         "twice (prunekit.core.sweep.make_grid drops duplicates)")
    if threads is not None:
        threads = count("threads", threads)
    if device is not None:
        configs = [c.replace(device=device_name(device)) for c in configs]
    options = dict(model_root=None if model_root is None else str(model_root),
                   points_root=str(points_dir(points_root)), use_point_cache=use_point_cache)
    t0 = time.perf_counter()
    outcomes: list[dict | None] = [None] * len(configs)
    todo = []
    for i, cfg in enumerate(configs):  # resume: points already stored are not submitted at all
        row = read_point(points_dir(points_root) / f"{point_key(cfg, measure)}.json") if use_point_cache else None
        if row is not None:
            outcomes[i] = {"ok": row}
        else:
            todo.append(i)
    bar = tqdm(total=len(configs), initial=len(configs) - len(todo), desc=desc, unit="point", disable=not progress,
               file=sys.stderr)
    mode = "in-process"
    groups = []
    if todo and group_training and getattr(measure, "trains_config", False):
        groups = [[c.to_dict() for c in g] for g in training_groups([configs[i] for i in todo])]
    try:
        if todo and scheduler is None and workers == 1:
            for group in groups:
                _pretrain_task(group, options["model_root"], threads, None)
            for i in todo:
                outcomes[i] = _task(configs[i].to_dict(), measure, options, threads, None)
                bar.update(1)
        elif todo:
            from distributed import as_completed

            costs = dict(zip(todo, _expected_costs([configs[i] for i in todo], measure)))  # before the cluster
            client, cluster, mode = _client_for(workers, scheduler, threads)
            try:
                info = client.scheduler_info(n_workers=-1) if _accepts_n_workers(client) else client.scheduler_info()
                per_host: dict[str, int] = {}
                for addr in info.get("workers", {}):
                    host = addr.split("://")[-1].rsplit(":", 1)[0]
                    per_host[host] = per_host.get(host, 0) + 1
                pretrained = [client.submit(_pretrain_task, group, options["model_root"], threads, per_host, True,
                                            key=f"sweep-group-{j}", pure=False) for j, group in enumerate(groups)]
                for fut in pretrained:  # every group stored before the points load them
                    fut.result()
                    fut.release()
                futures = {client.submit(_task, configs[i].to_dict(), measure, options, threads, per_host, True,
                                         key=f"sweep-point-{i}-{configs[i].key()[:16]}", pure=False,
                                         priority=priority): i
                           for i, priority in _priorities(costs).items()}
                for fut in as_completed(futures):
                    i = futures.pop(fut)
                    try:
                        outcomes[i] = fut.result()
                    except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker: the point is reported
                        outcomes[i] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
                    fut.release()  # its result is read: the cluster need not keep it (nor warn at shutdown)
                    bar.update(1)
            finally:
                if cluster is not None:
                    client.shutdown()
                    cluster.close()
    finally:
        bar.close()
    rows, failures = [], []
    for cfg, out in zip(configs, outcomes):
        if out is None:
            continue
        if "ok" in out:
            rows.append({"device": device_type(cfg.device), **out["ok"]})  # points stored before the column: cfg's
        else:
            failures.append({**config_columns(cfg), "key": cfg.key(), "config": json.dumps(cfg.to_dict()),
                             "error": out["error"], "traceback": out["traceback"]})
    columns = list(measure.columns)
    results = pd.DataFrame(rows, columns=columns) if rows else pd.DataFrame(columns=columns)
    fails = pd.DataFrame(failures)
    if failures:
        warnings.warn(f"{len(failures)} of {len(configs)} sweep points failed (see SweepResult.failures); first: "
                      f"{failures[0]['error']}", RuntimeWarning, stacklevel=2)
    return SweepResult(results=results, failures=fails, seconds=time.perf_counter() - t0, mode=mode)


def _accepts_n_workers(client) -> bool:
    try:
        return "n_workers" in inspect.signature(client.scheduler_info).parameters
    except (TypeError, ValueError):
        return False
