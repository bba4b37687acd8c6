"""Width invariance of the effective density (source 000, "The Propensity for Density in Feed-forward Models").

Analysis of a sweep table (:func:`prunekit.core.sweep.run_sweep`, one row per trained model):

* :func:`fit_core_scaling` -- ordinary least squares of ``log10 |ω|`` on ``log10 |θ|`` per group, with a t-based
  confidence interval of the slope. Slope 0 = the core does not grow with the width (the paper's null hypothesis);
  slope 1 = the core grows like the model (effective density invariant to width). ``p_zero`` / ``p_one`` are the
  two-sided p-values of slope = 0 and slope = 1.
* :func:`density_trend` -- how much the mean density moves across widths (max/min ratio of the per-width means, the
  fold change of |θ| over the same widths).
* :func:`factor_effect` -- paired effect of a factor (optimizer, init) on density: differences between levels of the
  factor on otherwise identical configs (same dataset, arch, width, seed, ...), with a t confidence interval.
* :func:`claims_table` -- the paper's claims checked against a table (``prunekit.report.claims`` format; a claim the table
  cannot decide is "not measured here"); :func:`claims` gives them as sentences.
* :func:`width_grid` -- the grid of configs of notebook 03; plotting helpers draw its three figures.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ..report import claims as C
from ..report.intervals import Interval, bootstrap_interval, mean_interval, side_of
from ..core.checks import choice, distinct, fraction, mapping, number, sequence, text
from ..core.checks import columns as checked_columns
from ..core.config import DataConfig, TrainConfig, check_profile
from ..core.registry import MODELS
from ..core import store
from ..core.data import files_present, load_dataset, random_subset
from ..core.sweep import config_columns, make_grid, run_sweep
from ..measures.density import check_scope, accuracy_threshold, effective_density, model_hoyer_sparsity, search_steps

__all__ = ["GROUP", "WIDTHS", "Preset", "PRESETS", "preset", "MIN_DENSE_ACCURACY", "TOLERANCE", "OPTIMIZER_SETTINGS", "POINT_VERSION", "RESULT_COLUMNS", "DensityPoint",
           "eval_split", "width_sweep", "width_grid", "split_untrained", "fit_loglog",
           "fit_core_scaling", "fit_density_vs_width", "density_trend",
           "factor_effect", "substitute", "grid_setup", "claims", "claims_table", "plot_density_vs_width", "plot_core_vs_params",
           "plot_hoyer_vs_width"]

GROUP = ["dataset", "arch", "optimizer", "init"]  # one width series = one (dataset, arch, optimizer, init)

WIDTHS = (0.1, 0.25, 0.5, 1, 2, 3, 5)
TOLERANCE = 0.05  # the core: pruned until accuracy drops by 5 points (the source's "5%")
MIN_DENSE_ACCURACY = 0.5  # a model below this test accuracy has not learned the task: it has no meaningful core
# notebook 03's grids. quick: digits, LeNet-300-100 only. paper (2 cores, at most 45 min): LeNet on a 6,000-image
# MNIST subset; conv and residual on 4,000 and 3,000 images at 14x14, batch 32 (narrow nets learn nothing at 128 in
# 2 epochs); density on a fixed 1,000-image test subset (the search's ~60-100 evaluations per network are most of the
# time: on 2,000 images the profile took 48 min); at least 2 Dask workers. full (one GPU): the source's
# reading, every architecture x optimizer x init on the whole training sets at full resolution (MNIST and
# Fashion-MNIST; CIFAR-10 too for conv and residual where its files are), trained until the training loss stops
# improving (patience: 3 epochs without a 1% gain; at most 100 epochs), density on the whole test set
@dataclass(frozen=True)
class Preset:
    """Notebook 03's width sweep for one profile: ``archs`` (arch -> its data sets), the ``widths``, the
    ``optimizers``, ``inits``, ``seeds``, ``epochs``, ``batch_size``, training ``subset`` and image ``resize`` (each one
    value for every arch or a dict arch -> value), ``patience`` / ``min_improvement`` (train until the loss stops
    improving; 0 trains every epoch), ``eval_subset`` (test images density is measured on; None: all) and
    ``min_workers`` (Dask workers at least)."""

    archs: dict
    widths: tuple[float, ...]
    optimizers: object
    inits: object
    seeds: tuple[int, ...]
    epochs: object
    batch_size: object
    subset: dict
    resize: dict
    eval_subset: int | None
    min_workers: int
    patience: int = 0
    min_improvement: float = 0.01

    def grid(self, archs: dict | None = None) -> list:
        """The configs of :func:`width_grid` for ``archs`` (arch -> data sets; None: the preset's)."""
        return width_grid(self.archs if archs is None else archs, self.widths, self.optimizers, self.inits,
                          self.seeds, epochs=self.epochs, batch_size=self.batch_size, subset=self.subset,
                          resize=self.resize, patience=self.patience, min_improvement=self.min_improvement)


PRESETS = {
    "quick": Preset(archs={"lenet300": ["digits"]}, widths=(0.1, 0.5, 1, 2, 5), optimizers=["adam", "sgd"],
                    inits=["glorot", "he"], seeds=(0, 1), epochs=4, batch_size=32, subset={}, resize={},
                    eval_subset=None, min_workers=1),
    "paper": Preset(archs={"lenet300": ["mnist"], "conv": ["mnist"], "resnet": ["mnist"]}, widths=WIDTHS,
                    optimizers={"lenet300": ["sgd", "adam", "adagrad"], "conv": ["sgd", "adam"], "resnet": ["adam"]},
                    inits={"lenet300": ["glorot", "he"], "conv": ["he"], "resnet": ["he"]}, seeds=(0, 1, 2),
                    epochs=2, batch_size={"lenet300": 128, "conv": 32, "resnet": 32},
                    subset={"lenet300": 6000, "conv": 4000, "resnet": 3000}, resize={"conv": 14, "resnet": 14},
                    eval_subset=1000, min_workers=2),
    "full": Preset(archs={"lenet300": ["mnist", "fashion_mnist"], "conv": ["mnist", "fashion_mnist"],
                          "resnet": ["mnist", "fashion_mnist"]}, widths=WIDTHS,
                   optimizers=["sgd", "adam", "adagrad"], inits=["glorot", "he"], seeds=(0, 1, 2), epochs=100,
                   patience=3, min_improvement=0.01, batch_size=128, subset={}, resize={}, eval_subset=None,
                   min_workers=1),
}


def preset(profile: str) -> Preset:
    """The :class:`Preset` of ``profile`` ("quick", "paper" or "full")."""
    return PRESETS[check_profile(profile, PRESETS)]


# learning rates per optimizer (open in the source; the usual defaults, kept the same for every width)
OPTIMIZER_SETTINGS = {"sgd": {"lr": 0.05, "momentum": 0.9}, "adam": {"lr": 1e-3}, "adagrad": {"lr": 1e-2}}


def _per_arch(value, arch):
    return value.get(arch) if isinstance(value, dict) else value


def width_grid(arch_datasets: dict[str, Sequence[str]], widths: Sequence[float], optimizers, inits, seeds, *,
               epochs=5, batch_size=128, subset=None, resize=None, patience=0, min_improvement=0.01,
               optimizer_settings: dict[str, dict] | None = None) -> list[TrainConfig]:
    """Configs of the width sweep: for each arch, its data sets x widths x optimizers x inits x seeds.

    arch_datasets: e.g. ``{"lenet300": ["mnist"], "conv": ["mnist", "cifar10"]}`` (each arch at its default widths,
      scaled by ``width_mult``; an arch with no data set is skipped).
    optimizers, inits, seeds, epochs, batch_size, subset (stratified subset of each training set), resize (image
      side): one value (list) for every arch, or a dict arch -> value (a missing arch gets None = the default: no
      subset, no resize). patience, min_improvement: train until the training loss stops improving, ``epochs`` at
      most (``TrainConfig.patience``; 0 trains every epoch).
    optimizer_settings: per-optimizer overrides of :data:`OPTIMIZER_SETTINGS` (lr, momentum, ...).
    """

    widths = distinct("widths", sequence("widths", widths, item=lambda n, v: number(n, v, low=0.0, low_open=True)))
    settings = {**OPTIMIZER_SETTINGS, **(optimizer_settings or {})}
    out = []
    for arch, datasets in mapping("arch_datasets", arch_datasets).items():
        if not datasets:
            continue
        opts = list(_per_arch(optimizers, arch))
        base = TrainConfig(data=DataConfig(subset=_per_arch(subset, arch), resize=_per_arch(resize, arch)),
                           epochs=_per_arch(epochs, arch), batch_size=_per_arch(batch_size, arch),
                           patience=patience, min_improvement=min_improvement).replace(arch=arch)
        out += make_grid(base, dataset=list(datasets), width_mult=list(widths), optimizer=opts,
                         init=list(_per_arch(inits, arch)), seed=list(_per_arch(seeds, arch)),
                         overrides={"optimizer": {k: v for k, v in settings.items() if k in opts}})
    return out


# ------------------------------------------------------------------------------------------------ the sweep's point
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


# --------------------------------------------------------------------------------------------------- statistics
def _ols(x: np.ndarray, y: np.ndarray, confidence: float) -> dict:
    from scipy import stats

    n = len(x)
    out = {"n": n, "slope": np.nan, "intercept": np.nan, "slope_se": np.nan, "ci_low": np.nan, "ci_high": np.nan,
           "r2": np.nan, "p_zero": np.nan, "p_one": np.nan}
    if n < 2 or np.ptp(x) == 0:
        return out
    fit = stats.linregress(x, y)
    out.update(slope=fit.slope, intercept=fit.intercept, r2=fit.rvalue ** 2)
    if n >= 3:
        se = fit.stderr
        t = stats.t.ppf(0.5 + confidence / 2, n - 2)
        out.update(slope_se=se, ci_low=fit.slope - t * se, ci_high=fit.slope + t * se)
        if se > 0:
            out.update(p_zero=2 * stats.t.sf(abs(fit.slope) / se, n - 2),
                       p_one=2 * stats.t.sf(abs(fit.slope - 1) / se, n - 2))
        else:
            out.update(p_zero=0.0 if fit.slope != 0 else 1.0, p_one=0.0 if fit.slope != 1 else 1.0)
    return out


def split_untrained(df: pd.DataFrame, min_dense_accuracy: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(learned, untrained)``: rows whose dense model reached ``min_dense_accuracy`` (test accuracy), and the rest.

    A model that has not learned the task has no meaningful core: near chance, pruning every weight keeps its
    accuracy within the tolerance. Such rows stay in the results table but are left out of the fits and verdicts.
    """
    fraction("min_dense_accuracy", min_dense_accuracy)
    if min_dense_accuracy <= 0 and "dense_accuracy" not in df.columns:
        return df, df.iloc[:0]
    ok = df["dense_accuracy"] >= min_dense_accuracy
    return df[ok], df[~ok]


def fit_loglog(df: pd.DataFrame, x: str, y: str, by: Sequence[str] = GROUP, confidence: float = 0.95) -> pd.DataFrame:
    """Per group: OLS ``log10(y) = intercept + slope * log10(x)`` over its rows (rows with ``x`` or ``y`` <= 0 are left
    out: log undefined). Columns: by..., n, slope, intercept, slope_se, ci_low, ci_high (the ``confidence`` interval of
    the slope, t with n - 2 degrees of freedom), r2, p_zero (H0: slope = 0), p_one (H0: slope = 1)."""
    x, y = checked_columns("x", x, df)[0], checked_columns("y", y, df)[0]
    by = checked_columns("by", by, df, nonempty=False)
    fraction("confidence", confidence, low_open=True, high_open=True)
    rows = []
    for key, g in df.groupby(by, sort=True) if by else [((), df)]:
        g = g[(g[y] > 0) & (g[x] > 0)]
        key = key if isinstance(key, tuple) else (key,)
        res = _ols(np.log10(g[x].to_numpy(float)), np.log10(g[y].to_numpy(float)), confidence)
        rows.append({**dict(zip(by, key)), **res})
    return pd.DataFrame(rows)


def fit_core_scaling(df: pd.DataFrame, by: Sequence[str] = ("dataset", "arch", "optimizer", "init"),
                     confidence: float = 0.95) -> pd.DataFrame:
    """Per group: OLS ``log10(core_params) = intercept + slope * log10(params)`` over every model (widths x seeds).

    Columns: those of :func:`fit_loglog` and params_fold (largest / smallest |θ| of the group). slope 0 = the core
    size does not change with width (the source's null hypothesis); slope 1 = density invariant. Rows with
    core_params <= 0 are left out (log undefined).
    """
    by = checked_columns("by", by, df, nonempty=False)
    checked_columns("df", ["params", "core_params"], df)
    fraction("confidence", confidence, low_open=True, high_open=True)
    rows = []
    for key, g in df.groupby(by, sort=True) if by else [((), df)]:
        key = key if isinstance(key, tuple) else (key,)
        fit = fit_loglog(g, "params", "core_params", (), confidence).iloc[0].to_dict()
        g = g[(g["core_params"] > 0) & (g["params"] > 0)]
        fit["params_fold"] = g["params"].max() / g["params"].min() if len(g) else np.nan
        rows.append({**dict(zip(by, key)), **fit})
    return pd.DataFrame(rows)


def fit_density_vs_width(df: pd.DataFrame, by: Sequence[str] = GROUP, confidence: float = 0.95) -> pd.DataFrame:
    """Per width series: OLS ``log10(density) = intercept + slope * log10(width_mult)`` (:func:`fit_loglog`); density
    moves by ``F**slope`` over an F-fold range of widths (0: width-invariant)."""
    return fit_loglog(df, "width_mult", "density", by, confidence)


def density_trend(df: pd.DataFrame, by: Sequence[str] = ("dataset", "arch", "optimizer", "init")) -> pd.DataFrame:
    """Per group: mean density over seeds at each width, then its range across widths.

    Columns: by..., widths, density_mean (over everything), density_min / density_max (of the per-width means),
    density_fold (max / min), params_fold (|θ| of the widest / narrowest), core_fold (mean |ω| of the widest /
    narrowest width).
    """
    by = checked_columns("by", by, df)
    checked_columns("df", ["width_mult", "density", "params", "core_params"], df)
    rows = []
    for key, g in df.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        w = g.groupby("width_mult").agg(density=("density", "mean"), params=("params", "mean"),
                                       core=("core_params", "mean")).sort_index()
        rows.append({**dict(zip(by, key)), "widths": len(w), "density_mean": g["density"].mean(),
                     "density_min": w["density"].min(), "density_max": w["density"].max(),
                     "density_fold": w["density"].max() / w["density"].min() if w["density"].min() > 0 else np.inf,
                     "params_fold": w["params"].iloc[-1] / w["params"].iloc[0],
                     "core_fold": w["core"].iloc[-1] / w["core"].iloc[0] if w["core"].iloc[0] > 0 else np.inf})
    return pd.DataFrame(rows)


def factor_effect(df: pd.DataFrame, factor: str, reference: str, value: str = "density",
                  pair_on: Sequence[str] = ("dataset", "arch", "width_mult", "optimizer", "init", "seed"),
                  by: Sequence[str] = ("dataset", "arch"), confidence: float = 0.95) -> pd.DataFrame:
    """Paired effect of ``factor`` on ``value``: ``value(level) - value(reference)`` on configs equal in ``pair_on``.

    Returns one row per (by..., level != reference): pairs, mean_level, mean_reference, diff (mean paired
    difference), ci_low / ci_high (t interval), p (two-sided paired t-test; NaN with fewer than 2 pairs).
    """
    from scipy import stats

    factor, value = checked_columns("factor", factor, df)[0], checked_columns("value", value, df)[0]
    if reference not in set(df[factor]):
        raise ValueError(f"reference={reference!r} is not a level of {factor!r}; its levels: "
                         f"{', '.join(map(repr, sorted(set(df[factor]), key=str)))}")
    fraction("confidence", confidence, low_open=True, high_open=True)
    pair_on = [c for c in distinct("pair_on", sequence("pair_on", pair_on, item=text)) if c != factor
               and c in df.columns]
    by = [c for c in distinct("by", sequence("by", by, nonempty=False, item=text)) if c in df.columns]
    columns = [*by, factor, "reference", "pairs", "mean_level", "mean_reference", "diff", "ci_low", "ci_high", "p"]
    if df.empty or factor not in df.columns or value not in df.columns or not pair_on:
        return pd.DataFrame(columns=columns)
    wide = df.pivot_table(index=pair_on, columns=factor, values=value, aggfunc="mean")
    if reference not in wide.columns:
        return pd.DataFrame(columns=columns)
    wide = wide.reset_index()
    rows = []
    for level in [c for c in wide.columns if c not in pair_on and c != reference]:
        groups = wide.groupby(by, sort=True) if by else [((), wide)]
        for key, g in groups:
            key = key if isinstance(key, tuple) else (key,)
            d = (g[level] - g[reference]).dropna()
            row = {**dict(zip(by, key)), factor: level, "reference": reference, "pairs": len(d),
                   "mean_level": g.loc[d.index, level].mean(), "mean_reference": g.loc[d.index, reference].mean(),
                   "diff": d.mean() if len(d) else np.nan, "ci_low": np.nan, "ci_high": np.nan, "p": np.nan}
            if len(d) >= 2:
                se = d.std(ddof=1) / math.sqrt(len(d))
                t = stats.t.ppf(0.5 + confidence / 2, len(d) - 1)
                row.update(ci_low=d.mean() - t * se, ci_high=d.mean() + t * se)
                if se > 1e-12 * max(1.0, abs(d.mean())):
                    row["p"] = stats.ttest_1samp(d, 0.0).pvalue
                else:  # every pair differs by the same amount
                    row["p"] = 0.0 if d.mean() != 0 else 1.0
            if len(d):
                rows.append(row)
    return pd.DataFrame(rows, columns=columns)


# ------------------------------------------------------------------------------------------------------- claims
SOURCE = "000 The Propensity for Density in Feed-forward Models"


def arch_kind(arch: str) -> str:
    """"fc", "conv" or "residual" from the model registry (``prunekit.core.registry.MODELS``); "other" for a name it
    lacks."""
    return MODELS[arch].kind if arch in MODELS else "other"


_SUMMARY = "a summary of the paper published beside its abstract, 'Main Findings'"
QUOTES = {
    "null": C.Quote("Increasing the width of a model has little effect on the density of the pruned model relative to "
                    "the increase in absolute size of the pruned network.", "abstract"),
    "flat": C.Quote("We find that the proportion of weights that can be pruned without degrading performance is largely "
                    "invariant to model size.", "abstract"),
    "optimizer": C.Quote("the convolutional model exhibits a higher effective density when using the Adam optimizer, "
                         "while the fully-connected model exhibits a lower effective density when using SGD",
                         _SUMMARY, paraphrase=True),
    "init": C.Quote("Glorot initialization usually results in a lower effective density, while He initialization "
                    "results in a higher effective density. However, this difference is relatively small",
                    _SUMMARY, paraphrase=True),
}
SOURCE_WIDTH_RANGE = 50.0  # the source's widest model is 50x its narrowest (0.1x to 5x)


def claims_table(df: pd.DataFrame, alpha: float = 0.05, density_fold: float = 2.0,
                 min_dense_accuracy: float = MIN_DENSE_ACCURACY, setup: str = "") -> pd.DataFrame:
    """The claims of source 000 checked on ``df`` (one row per model, as ``prunekit.core.sweep`` writes it): a
    ``prunekit.report.claims`` table. Every verdict is decided on a ``1 - alpha`` interval; models below
    ``min_dense_accuracy`` are left out first (:func:`split_untrained`; noted in ``df.attrs``). A width series is one
    (dataset, arch, optimizer, init).

    - null hypothesis (|ω| does not change with width) rejected: the interval of the slope of log|ω| on log|θ| is
      above 0 in every series with >= 3 models (holds), at or below 0 in one (does not hold);
    - effective density roughly constant across widths: per series, the slope ``b`` of log density on log width;
      over the source's 50x range of widths density moves by ``50**b``; a series is flat when the interval of that
      fold lies within ``density_fold`` either way, not flat when it lies wholly outside; the claim holds when at
      least two thirds of the series are flat and at most a third clearly not, does not hold when more than half
      are clearly not, and cannot decide in between (series that disagree);
    - conv + Adam denser: within the conv architecture (``arch == "conv"``), the paired difference Adam - SGD (equal
      dataset, width, init, seed) has its t interval above 0;
    - fully connected + SGD sparser: within each fully connected architecture, SGD - Adam (paired; the source's
      sentence sets SGD against Adam) has its t interval below 0, any other optimizer reported beside;
    - Glorot slightly sparser than He: the paired difference Glorot - He (equal dataset, arch, width, optimizer,
      seed) has its t interval below 0 (not lower, wholly at or above 0: does not hold), and "slightly" is decided
      against a stated scale, the effect the source presents as a real difference beside it: the SGD - Adam effect
      of the fully connected nets. The ratio |Glorot - He| / |SGD - Adam| (pairs resampled in a bootstrap, the two
      effects apart) below 1 is slight, wholly above 1 is not.
    A claim the table cannot decide is "not measured here", with the reason.
    """

    confidence = 1 - fraction("alpha", alpha, low_open=True, high_open=True)
    flat_slope = math.log(number("density_fold", density_fold, low=1.0, low_open=True)) / math.log(SOURCE_WIDTH_RANGE)
    fraction("min_dense_accuracy", min_dense_accuracy)
    rows = []
    names = {"null": "Null hypothesis (|ω| constant in width) rejected",
             "flat": "Effective density roughly constant across widths",
             "conv_adam": "Conv + Adam gives a higher density than conv + SGD",
             "fc_sgd": "Fully connected + SGD gives a lower density than with Adam",
             "init": "Glorot gives slightly lower density than He"}
    reports = {"null": "rejected: |ω| grows with width",
               "flat": "density roughly constant from 0.1x to 5x width",
               "conv_adam": "conv nets trained with Adam are denser",
               "fc_sgd": "fully connected nets trained with SGD are sparser",
               "init": "Glorot slightly sparser than He"}
    quotes = {"null": QUOTES["null"], "flat": QUOTES["flat"], "conv_adam": QUOTES["optimizer"],
              "fc_sgd": QUOTES["optimizer"], "init": QUOTES["init"]}
    ci = f"{confidence:.0%}"
    rules = {"null": f"{ci} interval of the slope of log|ω| on log|θ| > 0 in every width series (>= 3 models)",
             "flat": f"per series, {ci} interval of the density fold over a 50x width range (50^slope of log density "
                     f"on log width) within {density_fold:g}x either way: holds when at least two thirds of the series "
                     "are flat and at most a third clearly not, does not hold when more than half are clearly not",
             "conv_adam": f"{ci} t interval of the paired difference Adam - SGD within the conv architecture > 0",
             "fc_sgd": f"{ci} t interval of the paired difference SGD - Adam < 0 within each fully connected "
                       "architecture (Adam: the optimizer the source's sentence sets SGD against)",
             "init": f"{ci} t interval of the paired difference Glorot - He < 0 (pairs equal in every other factor), "
                     f"and {ci} bootstrap interval of |Glorot - He| / |SGD - Adam of the fully connected nets| < 1 "
                     "(slight beside the optimizer effect the source reports); either wholly on the other side: does "
                     "not hold"}

    def ctx(key: str, **more) -> dict:
        return {"quote": quotes[key].text, "quote_where": quotes[key].location, "setup": setup, "seeds": seeds,
                **more}

    def nm(key: str, why: str) -> dict:
        return C.not_measured(SOURCE, names[key], reports[key], why, rules[key], **ctx(key))

    def decided(key: str, measured: str, holds: bool | None, why: str, interval: str) -> dict:
        if holds is None:
            return C.cannot_decide(SOURCE, names[key], reports[key], measured, why, rules[key],
                                   **ctx(key, interval=interval))
        return C.claim(SOURCE, names[key], reports[key], measured, holds, rules[key], **ctx(key, interval=interval))

    needed = ["dataset", "arch", "width_mult", "optimizer", "init", "seed", "params", "core_params", "density"]
    missing = C.missing_columns(df, needed + (["dense_accuracy"] if min_dense_accuracy > 0 else []))
    seeds = C.seed_list(df["seed"]) if "seed" in df.columns and len(df) else ""
    if missing or df.empty:
        why = C.lacking(missing, "table")
        return C.claims_frame(nm(k, why) for k in names)
    notes = []
    df, untrained = split_untrained(df, min_dense_accuracy)
    if not untrained.empty:
        which = (untrained.groupby(["arch", "width_mult"]).size().reset_index(name="n")
                 .apply(lambda r: f"{r['arch']} {r['width_mult']:g}x ({r['n']})", axis=1))
        notes.append(f"Left out as not trained (dense test accuracy below {min_dense_accuracy:.0%}, so no meaningful "
                     f"core): {len(untrained)} of {len(df) + len(untrained)} models: {', '.join(which)}.")
    fits = fit_core_scaling(df, confidence=confidence) if not df.empty else pd.DataFrame()
    fits = fits[fits["n"] >= 3].dropna(subset=["slope"]) if not fits.empty else fits
    if fits.empty:
        why = "no width series has 3 or more trained models to fit |ω| against |θ|"
        rows += [nm("null", why), nm("flat", why)]
    else:
        sides = [side_of(Interval(r.slope, r.ci_low, r.ci_high, int(r.n), "t"), 0.0) for r in fits.itertuples()]
        rejected = sum(s is True for s in sides)
        measured = (f"the slope of log|ω| on log|θ| is above 0 in {rejected} of "
                    f"{C.plural(len(fits), 'width series', 'width series')} (from {fits['slope'].min():.2f} to "
                    f"{fits['slope'].max():.2f}, median {fits['slope'].median():.2f}).")
        holds = True if all(s is True for s in sides) else False if any(s is False for s in sides) else None
        interval = (f"{ci} t intervals of the slopes: lowest lower end {fits['ci_low'].min():+.2f}, highest upper end "
                    f"{fits['ci_high'].max():+.2f}")
        rows.append(decided("null", measured, holds, "a series' interval includes 0", interval))
        widths = fit_density_vs_width(df, confidence=confidence)
        widths = widths[widths["n"] >= 3].dropna(subset=["slope"])
        flat = [side_of(Interval(r.slope, r.ci_low, r.ci_high, int(r.n), "t"), flat_slope, holds_above=False) is True
                and side_of(Interval(r.slope, r.ci_low, r.ci_high, int(r.n), "t"), -flat_slope) is True
                for r in widths.itertuples()]
        steep = [bool(r.ci_low > flat_slope or r.ci_high < -flat_slope) for r in widths.itertuples()]
        folds = SOURCE_WIDTH_RANGE ** widths["slope"]
        measured = (f"over a 50x range of widths density moves by a factor {folds.median():.2f} (median over "
                    f"{C.plural(len(widths), 'series', 'series')}; {folds.min():.2f} to {folds.max():.2f}); flat "
                    "within "
                    f"{density_fold:g}x in {sum(flat)}, clearly not in {sum(steep)}.")
        n = len(widths)
        holds = (True if n and sum(flat) >= 2 * n / 3 and sum(steep) <= n / 3 else
                 False if n and sum(steep) > n / 2 else None)
        interval = ("per series " + ci + " t interval of the fold: " +
                    "; ".join(f"{r.arch}/{r.optimizer}/{r.init} {SOURCE_WIDTH_RANGE ** r.ci_low:.2f} to "
                              f"{SOURCE_WIDTH_RANGE ** r.ci_high:.2f}" for r in widths.itertuples()))
        rows.append(decided("flat", measured, holds, "the series do not agree: fewer than two thirds are decided "
                            "flat (or more than a third clearly not), and no more than half clearly not", interval))
    # optimizers, compared within one architecture (paired on every other factor)
    conv = df[df["arch"] == "conv"]
    d = _pair_diffs(conv, "optimizer", "adam", "sgd") if not conv.empty else np.array([])
    if conv.empty:
        rows.append(nm("conv_adam", "no conv models in the table"))
    elif len(d) == 0:
        rows.append(nm("conv_adam", "the conv models have no Adam and SGD runs paired on dataset, width, init and "
                                    "seed"))
    else:
        iv = mean_interval(d, confidence, what="paired t")
        adam, sgd = _paired_means(conv, "optimizer", "adam", "sgd")
        measured = f"conv: mean density over the {C.plural(len(d), 'pair')}: {adam:.3f} with Adam, {sgd:.3f} with SGD."
        rows.append(decided("conv_adam", measured, side_of(iv, 0.0), C.undecided_reason([iv], 0.0),
                            f"Adam - SGD: {iv.text('{:+.3f}')}"))
    fc = df[df["arch"].map(arch_kind) == "fc"]
    parts, sides, ivs, found = [], [], [], []
    for arch, g in fc.groupby("arch"):
        d = _pair_diffs(g, "optimizer", "sgd", "adam")
        if len(d) == 0:
            continue
        iv = mean_interval(d, confidence, what="paired t")
        sides.append(side_of(iv, 0.0, holds_above=False))
        found.append(iv)
        others = ", ".join(f"{o} {_mean(g, 'optimizer', o):.3f}" for o in sorted(set(g["optimizer"]) - {"sgd", "adam"}))
        sgd, adam = _paired_means(g, "optimizer", "sgd", "adam")
        parts.append(f"{arch}: SGD {sgd:.3f} vs Adam {adam:.3f} over {C.plural(len(d), 'pair')}"
                     + (f" (also {others}, over all its runs)" if others else ""))
        ivs.append(f"{arch} SGD - Adam: {iv.text('{:+.3f}')}")
    if fc.empty:
        rows.append(nm("fc_sgd", "no fully connected models in the table"))
    elif not sides:
        rows.append(nm("fc_sgd", "no fully connected architecture has SGD and Adam runs paired on dataset, width, "
                                 "init and seed"))
    else:
        holds = True if all(s is True for s in sides) else False if any(s is False for s in sides) else None
        rows.append(decided("fc_sgd", "mean density " + "; ".join(parts) + ".", holds,
                            C.undecided_reason(found, 0.0), "; ".join(ivs)))
    family = df["init"].map(lambda i: "glorot" if str(i).startswith("glorot") else "he" if str(i).startswith("he")
                            else str(i))
    inits = sorted(df["init"].dropna().unique())
    if not {"glorot", "he"} <= set(family):
        rows.append(nm("init", f"the table has {C.plural(len(inits), 'init')} ({C.listing(inits)}); "
                               "need both Glorot and He"))
    else:
        by_family = df.assign(init=family)
        d = _pair_diffs(by_family, "init", "glorot", "he")
        if len(d) == 0:
            rows.append(nm("init", "no Glorot and He models are paired (equal dataset, arch, width, optimizer, seed)"))
        else:
            iv = mean_interval(d, confidence, what="paired t")
            glorot, he = _paired_means(by_family, "init", "glorot", "he")
            measured = f"mean density over the {C.plural(len(d), 'pair')}: {glorot:.3f} with Glorot, {he:.3f} with He"
            scale = np.concatenate([_pair_diffs(g, "optimizer", "sgd", "adam") for _, g in fc.groupby("arch")]) \
                if not fc.empty else np.array([])
            sides, found, texts = [side_of(iv, 0.0, holds_above=False)], [iv], [f"Glorot - He: {iv.text('{:+.3f}')}"]
            if len(scale) == 0:
                measured += "; no SGD and Adam pairs of fully connected nets to judge 'slightly' against."
                sides.append(None)
            else:
                ratio = bootstrap_interval([d, scale], lambda a, b, axis: np.abs(np.mean(a, axis=axis))
                                           / np.maximum(np.abs(np.mean(b, axis=axis)), 1e-12),
                                           confidence=confidence, what="bootstrap over the pairs of each effect")
                measured += (f"; the SGD - Adam effect of the fully connected nets, the difference the source "
                             f"presents as a real one: {np.mean(scale):+.3f} over {C.plural(len(scale), 'pair')}; "
                             f"|Glorot - He| is {ratio.estimate:.2f} of it")
                sides.append(side_of(ratio, 1.0, holds_above=False))
                found.append(ratio)
                texts.append(f"|Glorot - He| / |SGD - Adam|: {ratio.text('{:.2f}')}")
            rows.append(C.decided(SOURCE, names["init"], reports["init"], measured + ".", sides, rules["init"],
                                  intervals=found, threshold=0.0, why=None if iv.decided else "one pair gives no "
                                  "interval", **ctx("init", interval="; ".join(texts))))
    table = C.claims_frame(rows)
    table.attrs["notes"] = notes
    return table


def substitute(configs: Sequence[TrainConfig]) -> str | None:
    """What in a width sweep stands in for the source's setup, in words (None when nothing does): the source trains
    its models fully on whole data sets (which ones, and for how long, it leaves open: prunekit's reading, the
    ``full`` profile, is the whole training sets at full resolution until the training loss stops improving), so
    training subsets, downsized images and a fixed handful of epochs are a substitute."""
    configs = sequence("configs", configs, item=_config)
    parts = []
    subsets = sorted({(c.model.arch, c.data.subset) for c in configs if c.data.subset})
    if subsets:
        parts.append("training subsets (" + ", ".join(f"{a} {n:,} images" for a, n in subsets) + ")")
    resized = sorted({(c.model.arch, c.data.resize) for c in configs if c.data.resize})
    if resized:
        parts.append("downsized images (" + ", ".join(f"{a} {r}x{r}" for a, r in resized) + ")")
    fixed = sorted({c.epochs for c in configs if c.patience == 0})
    if fixed:
        parts.append(f"{'/'.join(map(str, fixed))} epochs of training, not until the training loss stops improving")
    return "; ".join(parts) or None
def _config(name: str, cfg) -> TrainConfig:
    if not isinstance(cfg, TrainConfig):
        raise ValueError(f"{name}={cfg!r} must be a TrainConfig")
    return cfg


def grid_setup(configs: Sequence[TrainConfig], tolerance: float = 0.05, relative: bool = False,
               scope: str = "global") -> str:
    """The width sweep in words, for a claims table's ``setup``: the architectures with their data, the widths and
    epochs, and the core's definition."""
    configs = sequence("configs", configs, nonempty=False, item=_config)
    number("tolerance", tolerance, low=0.0, high=1.0, high_open=True)
    check_scope(scope)
    archs = {}
    for c in configs:
        d = c.data
        data = d.name + (f" ({d.subset:,} images" + (f", {d.resize}x{d.resize})" if d.resize else ")") if d.subset
                         else f" ({d.resize}x{d.resize})" if d.resize else "")
        archs.setdefault(c.model.arch, set()).add(data)
    widths = sorted({c.model.width_mult for c in configs})
    epochs = sorted({c.epochs for c in configs})
    drop = f"{100 * tolerance:g}% of the dense accuracy" if relative else f"{100 * tolerance:g} points"
    return ("; ".join(f"{a} on {', '.join(sorted(d))}" for a, d in archs.items())
            + f"; widths {widths[0]:g}x to {widths[-1]:g}x; {'/'.join(map(str, epochs))} epochs; core: {scope} "
            f"magnitude pruning to a {drop} accuracy drop, no retraining") if configs else ""


def _mean(df: pd.DataFrame, factor: str, level: str) -> float:
    return float(df.loc[df[factor] == level, "density"].mean())


_PAIR_ON = ("dataset", "arch", "width_mult", "optimizer", "init", "seed")


def _paired(df: pd.DataFrame, factor: str, level: str, reference: str) -> pd.DataFrame:
    """Density of ``level`` and ``reference`` (columns) on the rows equal in every other ``_PAIR_ON`` column."""
    pair_on = [c for c in _PAIR_ON if c != factor and c in df.columns]
    wide = df.pivot_table(index=pair_on, columns=factor, values="density", aggfunc="mean")
    if level not in wide.columns or reference not in wide.columns:
        return pd.DataFrame(columns=[level, reference], dtype=float)
    return wide[[level, reference]].dropna()


def _pair_diffs(df: pd.DataFrame, factor: str, level: str, reference: str) -> np.ndarray:
    """``density(level) - density(reference)`` of ``factor`` on rows equal in every other ``_PAIR_ON`` column."""
    pairs = _paired(df, factor, level, reference)
    return (pairs[level] - pairs[reference]).to_numpy(dtype=float)


def _paired_means(df: pd.DataFrame, factor: str, level: str, reference: str) -> tuple[float, float]:
    """Mean density of ``level`` and of ``reference`` over the same pairs as :func:`_pair_diffs` (so their
    difference is the mean paired difference)."""
    pairs = _paired(df, factor, level, reference)
    return float(pairs[level].mean()), float(pairs[reference].mean())


def claims(df: pd.DataFrame, alpha: float = 0.05, density_fold: float = 2.0,
           min_dense_accuracy: float = MIN_DENSE_ACCURACY) -> list[str]:
    """:func:`claims_table` as whole sentences (notes on left-out models first); never raises on a table that lacks
    a factor: such claims read "Not measured here: <why>"."""
    table = claims_table(df, alpha, density_fold, min_dense_accuracy)
    return list(table.attrs.get("notes", [])) + C.sentences(table)


# -------------------------------------------------------------------------------------------------------- plots
def _label(df: pd.DataFrame) -> pd.Series:
    return df["dataset"] + " / " + df["arch"]


def _width_ticks(grid, widths) -> None:
    from matplotlib.ticker import FixedLocator, NullLocator

    ticks = sorted(float(w) for w in set(widths))
    for ax in grid.axes.flat:
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([f"{w:g}" for w in ticks])


def plot_density_vs_width(df: pd.DataFrame, errorbar=("sd", 1)):
    """Effective density vs width multiplier (log x), one panel per dataset/arch, hue optimizer, style init;
    lines are means over seeds and bands +-1 standard deviation. Returns the seaborn FacetGrid."""
    errorbar = _errorbar(errorbar)
    return _width_lines(df.assign(model=_label(df)), "density", "optimizer", "init",
                        "effective density |ω| / |θ|", errorbar)


def _errorbar(errorbar):
    """seaborn's ``errorbar``, checked: None, a method ("ci", "pi", "se", "sd"), a (method, level) pair or a
    function."""
    methods = ("ci", "pi", "se", "sd")
    if errorbar is None or callable(errorbar):
        return errorbar
    if isinstance(errorbar, str):
        return choice("errorbar", errorbar, methods)
    if isinstance(errorbar, (tuple, list)) and len(errorbar) == 2 and errorbar[0] in methods:
        number("errorbar[1]", errorbar[1], low=0.0, low_open=True)
        return tuple(errorbar)
    raise ValueError(f"errorbar={errorbar!r} must be None, one of {methods}, a (method, level) pair such as "
                     "('sd', 1), or a function (seaborn's errorbar)")


def _width_lines(d: pd.DataFrame, y: str, hue: str, style: str, ylabel: str, errorbar):
    """Lines of ``y`` against the width multiplier (log x), one panel per model, bands over seeds."""
    import seaborn as sns

    g = sns.relplot(data=d, x="width_mult", y=y, hue=hue, style=style, col="model", kind="line",
                    markers=True, errorbar=errorbar, facet_kws={"sharey": False}, height=3.2, aspect=1.1)
    g.set(xscale="log")
    _width_ticks(g, d["width_mult"])
    g.set_axis_labels("width multiplier (x default)", ylabel)
    g.set_titles("{col_name}")
    return g


def plot_core_vs_params(df: pd.DataFrame, fits: pd.DataFrame | None = None):
    """|ω| vs |θ| on log-log axes per dataset/arch, one colour per optimizer/init series, with the fitted line and
    the slope (95% CI) in the legend; dotted guides: slope 1 (density invariant) and 0 (constant core)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fits = fit_core_scaling(df) if fits is None else fits
    models = sorted(_label(df).unique())
    fig, axes = plt.subplots(1, len(models), figsize=(4.6 * len(models), 4.0), squeeze=False)
    palette = sns.color_palette("tab10")
    for ax, model in zip(axes[0], models):
        dataset, arch = model.split(" / ")
        sub = df[(df["dataset"] == dataset) & (df["arch"] == arch)]
        for i, ((opt, init), g) in enumerate(sub.groupby(["optimizer", "init"], sort=True)):
            f = fits[(fits["dataset"] == dataset) & (fits["arch"] == arch) & (fits["optimizer"] == opt)
                     & (fits["init"] == init)]
            label = f"{opt}/{init}"
            if not f.empty and not np.isnan(f["slope"].iloc[0]):
                r = f.iloc[0]
                label += f": slope {r['slope']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"
                xs = np.array([g["params"].min(), g["params"].max()], float)
                ax.plot(xs, 10 ** (r["intercept"] + r["slope"] * np.log10(xs)), color=palette[i % 10], lw=1.2)
            ax.scatter(g["params"], g["core_params"], s=14, color=palette[i % 10], label=label, alpha=0.8)
        lo, hi = sub["params"].min(), sub["params"].max()
        mid = np.sqrt(lo * hi)
        anchor = sub["core_params"].median()
        xs = np.array([lo, hi], float)
        ax.plot(xs, anchor * xs / mid, ":", color="grey", lw=1, label="slope 1 (density invariant)")
        ax.plot(xs, [anchor, anchor], "--", color="grey", lw=1, label="slope 0 (null: constant core)")
        ax.set(xscale="log", yscale="log", xlabel="|θ| (prunable weights)", ylabel="|ω| (core weights)", title=model)
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def plot_hoyer_vs_width(df: pd.DataFrame, errorbar=("sd", 1)):
    """Hoyer sparsity of the prunable weights vs width, at initialisation and after training (bands over seeds)."""
    errorbar = _errorbar(errorbar)
    d = df.assign(model=_label(df)).melt(
        id_vars=["model", "width_mult", "optimizer", "init", "seed"], value_vars=["hoyer_init", "hoyer_trained"],
        var_name="when", value_name="hoyer")
    d["when"] = d["when"].map({"hoyer_init": "at init", "hoyer_trained": "trained"})
    d["series"] = d["optimizer"] + " / " + d["init"]
    return _width_lines(d, "hoyer", "series", "when", "Hoyer sparsity of weights", errorbar)
