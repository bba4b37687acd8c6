"""Source 000's measurement of one trained network (:class:`DensityPoint`) and notebook 03's sweep of them."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ...core import store
from ...core.checks import number
from ...core.config import TrainConfig
from ...core.data import files_present, load_dataset, random_subset
from ...core.sweep import config_columns, run_sweep
from ...measures.density import accuracy_threshold, check_scope, effective_density, model_hoyer_sparsity, search_steps
from .presets import TOLERANCE

__all__ = ["POINT_VERSION", "RESULT_COLUMNS", "DensityPoint", "eval_split", "width_sweep"]

POINT_VERSION = 3  # bump when DensityPoint's measurements change: old stored points are then ignored
# 2: effective density is the first crossing of an upward scan in 1% steps (was: a 10% scan, then bisection);
#    configs are identified by their non-default fields (TrainConfig.identity)
# 3: the search evaluates in batches of 256 samples on the CPU (was 4,096): the same definition, but a float rounding
#    tie can fall the other way, so points measured before are measured again

RESULT_COLUMNS = ["dataset", "arch", "width_mult", "optimizer", "init", "seed", "lr", "epochs", "params",
                  "core_params", "density", "dense_accuracy", "core_accuracy", "hoyer_init", "hoyer_trained",
                  "total_params", "pruned", "evaluations", "step", "resolution", "threshold", "tolerance", "relative",
                  "scope", "train_seconds", "measure_seconds", "threads", "device", "key", "point_key"]


def eval_split(ds, eval_subset: int | None = None):
    """The split effective density is measured on: the test split, or a fixed random subset of ``eval_subset`` of
    its samples (permutation seeded with 0, the same for every model) to make large models cheaper to measure."""
    if eval_subset is not None:
        number("eval_subset", eval_subset, low=1, integer=True)
    return random_subset(ds.test, eval_subset, seed=0)


def _init_model(run, cfg: TrainConfig, ds):
    """The model at initialisation: checkpoint epoch 0 when kept, else re-initialised from ``cfg.seed`` exactly as
    training initialised it (``prunekit.core.store.build``)."""
    if 0 in (run.checkpoints or {}):
        return run.model_at(0)
    return store.build(cfg, ds)


@dataclass(frozen=True)
class DensityPoint:
    """Source 000's measurement of one trained config, for ``prunekit.core.sweep.run_sweep``: train through the store,
    then ``params`` |θ|, ``core_params`` |ω|, ``density`` |ω|/|θ| (prunable weights;
    ``prunekit.measures.density.effective_density``), ``dense_accuracy``, ``core_accuracy`` (test split, or
    ``eval_subset`` samples of it), ``total_params``, ``evaluations``, and ``hoyer_init`` / ``hoyer_trained``: Hoyer
    sparsity of all prunable weights at initialisation (checkpoint epoch 0 when kept, else the identical seeded
    re-initialisation) and after training.

    tolerance, relative, scope, include_output, step, resolution: those of ``effective_density``."""

    tolerance: float = TOLERANCE
    relative: bool = False
    scope: str = "global"
    include_output: bool = False
    eval_subset: int | None = None
    step: float = 0.01
    resolution: float = 1e-3
    columns = RESULT_COLUMNS
    trains_config = True  # it trains exactly cfg through the store: run_sweep may train the models first, in groups

    def __post_init__(self):
        self.validate()  # a point with bad settings is refused when it is made, before any sweep

    def validate(self) -> None:
        """The settings, checked before anything is trained."""
        check_scope(self.scope)
        number("tolerance", self.tolerance, low=0.0, high=1.0, high_open=True)
        accuracy_threshold(1.0, self.tolerance, self.relative)
        search_steps(1, self.step, self.resolution)
        if self.eval_subset is not None:
            number("eval_subset", self.eval_subset, low=1, integer=True)

    def spec(self) -> dict:
        """What a point's row depends on besides its config (the stored row's name). ``step`` and ``resolution``
        enter only when they differ from their defaults, so points measured with the defaults keep their names."""
        settings = {"tolerance": float(self.tolerance), "relative": bool(self.relative),
                    "scope": check_scope(self.scope), "include_output": bool(self.include_output),
                    "version": POINT_VERSION}
        if self.eval_subset is not None:
            settings["eval_subset"] = int(self.eval_subset)
        if (float(self.step), float(self.resolution)) != (0.01, 1e-3):
            settings.update(step=float(self.step), resolution=float(self.resolution))
        return settings

    def __call__(self, cfg: TrainConfig, model_root=None) -> dict:
        t0 = time.perf_counter()
        run = store.train_or_load(cfg, quiet=True, root=model_root)
        train_seconds = time.perf_counter() - t0
        ds = load_dataset(cfg.data)
        t1 = time.perf_counter()
        ed = effective_density(run.model, eval_split(ds, self.eval_subset), tolerance=self.tolerance,
                               relative=self.relative, scope=self.scope, include_output=self.include_output,
                               step=self.step, resolution=self.resolution)
        hoyer_init = model_hoyer_sparsity(_init_model(run, cfg, ds), include_output=self.include_output)
        hoyer_trained = model_hoyer_sparsity(run.model, include_output=self.include_output)
        return {**config_columns(cfg), "params": ed.params, "core_params": ed.core_params, "density": ed.density,
                "dense_accuracy": ed.dense_accuracy, "core_accuracy": ed.core_accuracy, "hoyer_init": hoyer_init,
                "hoyer_trained": hoyer_trained, "total_params": ed.total_params, "pruned": ed.pruned,
                "evaluations": ed.evaluations, "step": ed.step, "resolution": ed.resolution,
                "threshold": ed.threshold, "tolerance": ed.tolerance, "relative": ed.relative, "scope": ed.scope,
                "train_seconds": train_seconds, "measure_seconds": time.perf_counter() - t1}

    def cost(self, cfg: TrainConfig) -> float:
        """A point's expected cost in FLOPs, to order a sweep's points (costliest first), never to report: forward
        FLOPs per sample (``torch.utils.flop_counter.FlopCounterMode``, one sample through the untrained model)
        times the samples the point runs through, 3 x epochs x training samples (forward and backward) plus 100
        passes over the measurement split (about what the effective-density search costs). 0 when the config
        cannot be built here (its point then reports why)."""
        from torch.utils.flop_counter import FlopCounterMode

        try:
            if not files_present(cfg.data.name):
                return 0.0
            ds = load_dataset(cfg.data)
            model = store.build(cfg, ds).eval()
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                model(ds.test.x[:1])
        except Exception:  # noqa: BLE001 - e.g. missing data files: the point's own task reports the error
            return 0.0
        measured = len(ds.test) if self.eval_subset is None else min(int(self.eval_subset), len(ds.test))
        return float(counter.get_total_flops()) * (3 * cfg.epochs * len(ds.train) + 100 * measured)


def width_sweep(configs, *, workers: int = 1, scheduler=None, device: str | None = None, **settings):
    """Notebook 03's sweep: :class:`DensityPoint` (``settings``: its fields) on every config, through
    ``prunekit.core.sweep.run_sweep`` (``workers``, ``scheduler``, ``device`` as there)."""
    return run_sweep(configs, DensityPoint(**settings), workers=workers, scheduler=scheduler, device=device)

