"""Source 001, "The Incredible Shrinking Neural Network" (Wolfe, Sharma, Drude and Raj, arXiv:1701.04465): the study.

The source's setups as presets (:data:`SETUPS`, grouped per profile in :data:`PRESETS`), one experiment per setup (:func:`run_setup`: train
through the cache, prune serially with every estimator under Algorithms I and II), the comparison with brute force
(:func:`rank_agreement`, :func:`curve_gap`, :func:`removable_summary`) and the source's claims (:func:`claims_table`).
The estimators themselves live in ``prunekit.measures.saliency``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ..report import claims as C
from ..report.intervals import mean_interval, side_of
from ..core.checks import choice, count, distinct, fraction, number, sequence, text
from ..core.device import device_name
from ..core.store import train_or_load
from ..core.config import DataConfig, ModelConfig, TrainConfig, check_profile
from ..core.data import DatasetUnavailable, load_dataset
from ..measures.saliency import (
    ALGORITHMS,
    ESTIMATORS,
    MARGIN_MODES,
    OUTPUT_HESSIANS,
    UnitNet,
    from_model,
    hessian_diagonal_check,
    removable_units,
    saliencies,
    serial_prune,
)

__all__ = ["SOURCE", "SETUPS", "Preset", "PRESETS", "preset", "MARGIN", "load_setup", "run_setup", "Experiment", "check_setups", "run_experiment", "rank_agreement", "curve_gap",
           "removable_summary", "task_kind", "claims_table"]

SOURCE = "001 The Incredible Shrinking Neural Network"


# ----------------------------------------------------------------------------------------------------------------------
# Comparison with the oracle
# ----------------------------------------------------------------------------------------------------------------------

def rank_agreement(net: UnitNet, x: torch.Tensor, y: torch.Tensor, estimators: Sequence[str] = ESTIMATORS,
                   seed: int = 0, output_hessian: str = "diagonal") -> pd.DataFrame:
    """Spearman and Kendall rank correlation (scipy.stats) of each estimator's scores on the full net with the exact
    (brute-force) ΔE. Columns: estimator, spearman, kendall."""
    from scipy import stats  # scipy.stats is slow to import: only here

    estimators = _choices("estimators", estimators, ESTIMATORS)
    choice("output_hessian", output_hessian, OUTPUT_HESSIANS)
    gen = torch.Generator().manual_seed(count("seed", seed, low=0))
    oracle = saliencies(net, x, y, "brute_force").cpu().numpy()
    rows = []
    for e in estimators:
        s = oracle if e == "brute_force" else saliencies(net, x, y, e, generator=gen,
                                                          output_hessian=output_hessian).cpu().numpy()
        rows.append({"estimator": e, "spearman": float(stats.spearmanr(s, oracle).statistic),
                     "kendall": float(stats.kendalltau(s, oracle).statistic)})
    return pd.DataFrame(rows)


def _choices(name: str, values, allowed) -> list:
    """A non-empty list of distinct values of ``allowed`` (a ``ValueError`` naming ``name`` otherwise)."""
    return distinct(name, sequence(name, values, item=lambda n, v: choice(n, v, allowed)))


def curve_gap(table: pd.DataFrame, margin: float, mode: str = "range") -> pd.DataFrame:
    """Per (setup, seed, estimator, algorithm) of a tidy pruning table: units removable within ``margin`` (see
    :func:`removable_units`), as a count and fraction, and the comparison with *serial* brute force (brute force
    under Algorithm II, the source's "brute-force serial pruning", on the same setup and seed):
    ``shortfall_vs_brute_force`` (units it removes fewer; NaN without that run), ``shortfall_fraction`` (of the
    units) and the mean error gap to its curve over the removal range (``mean(error - error_brute_force)``)."""
    number("margin", margin, low=0.0)
    choice("mode", mode, MARGIN_MODES)
    keys = [k for k in ("setup", "seed") if k in table.columns]
    rows = []
    for key, g in table.groupby(keys + ["estimator", "algorithm"], sort=False):
        g = g.sort_values("units_removed")
        rows.append(dict(zip(keys + ["estimator", "algorithm"], key),
                         num_units=int(round(g.units_removed.iloc[-1] / g.fraction_removed.iloc[-1]))
                         if g.fraction_removed.iloc[-1] > 0 else 0,
                         removable=removable_units(g.error.to_numpy(), margin, mode),
                         _err=g.error.to_numpy()))
    df = pd.DataFrame(rows)
    df["removable_fraction"] = df.removable / df.num_units
    gaps, short = [], []
    for _, r in df.iterrows():
        sel = (df.algorithm == "II") & (df.estimator == "brute_force")
        for k in keys:
            sel &= df[k] == r[k]
        bf = df[sel]
        if len(bf):
            e_bf = bf._err.iloc[0]
            m = min(len(e_bf), len(r._err))
            gaps.append(float(np.mean(r._err[:m] - e_bf[:m])))
            short.append(int(bf.removable.iloc[0] - r.removable))
        else:
            gaps.append(float("nan"))
            short.append(np.nan)
    df["shortfall_vs_brute_force"] = short
    df["shortfall_fraction"] = df["shortfall_vs_brute_force"] / df["num_units"]
    df["mean_error_gap"] = gaps
    return df.drop(columns="_err")


# ----------------------------------------------------------------------------------------------------------------------
# Setups (presets) and one experiment
# ----------------------------------------------------------------------------------------------------------------------

def _setups() -> dict:

    def mlp(hidden, activation="sigmoid"):
        return ModelConfig(arch="mlp", hidden=hidden, activation=activation)

    cosine = DataConfig(name="cosine")
    # the source scales MNIST to [0, 1] (no standardisation) and downsamples a 5,000-image subset to 20x20
    mnist20 = DataConfig(name="mnist", subset=5000, resize=20, normalize=False)
    digits = DataConfig(name="digits")
    # Optimiser, lr and epochs are open in the source: Adam (fast, robust for sigmoid + squared error) with a larger
    # step on the tiny regression nets. All of them are ordinary TrainConfig fields: override with cfg.replace(...).
    s = {
        "cosine_10_10": TrainConfig(data=cosine, model=mlp((10, 10)), loss="sse", optimizer="adam", lr=1e-2,
                                    epochs=100, batch_size=32),
        "cosine_50_50": TrainConfig(data=cosine, model=mlp((50, 50)), loss="sse", optimizer="adam", lr=5e-3,
                                    epochs=100, batch_size=32),
        "mnist20_100": TrainConfig(data=mnist20, model=mlp((100,)), loss="sse", optimizer="adam", lr=1e-3,
                                   epochs=30, batch_size=64),
        "mnist20_50_50": TrainConfig(data=mnist20, model=mlp((50, 50)), loss="sse", optimizer="adam", lr=1e-3,
                                     epochs=30, batch_size=64),
        "digits_sse": TrainConfig(data=digits, model=mlp((100,)), loss="sse", optimizer="adam", lr=3e-3,
                                  epochs=30, batch_size=64),
        "digits_ce": TrainConfig(data=digits, model=mlp((100,)), loss="cross_entropy", optimizer="adam", lr=3e-3,
                                 epochs=30, batch_size=64),
    }
    for shape in ("diamond", "random_shape"):  # "is this point inside a shape": 2 inputs, 2 outputs, 50 + 50 sigmoid
        s[f"{shape}_50_50"] = TrainConfig(data=DataConfig(name=shape), model=mlp((50, 50)), loss="sse",
                                          optimizer="adam", lr=5e-3, epochs=200, batch_size=32)
    for d in (0, 1, 2):
        s[f"mnist_ova{d}"] = TrainConfig(data=DataConfig(name="mnist", one_vs_all=d, normalize=False),
                                         model=mlp((100,)), loss="sse",
                                         optimizer="adam", lr=1e-3, epochs=5, batch_size=128)
    return s


@dataclass(frozen=True)
class Preset:
    """Notebook 06's settings for one profile: the ``setups`` of :data:`SETUPS` it runs and the training ``seeds``."""

    setups: tuple[str, ...]
    seeds: tuple[int, ...]


_ALL = ("cosine_10_10", "cosine_50_50", "diamond_50_50", "random_shape_50_50", "mnist20_100", "mnist20_50_50",
        "mnist_ova0", "mnist_ova1", "mnist_ova2", "digits_sse", "digits_ce")
# the source's own setups are small: the paper profile runs them at their scale; full adds seeds
PRESETS = {"quick": Preset(("cosine_10_10", "cosine_50_50", "digits_sse", "digits_ce"), (0,)),
           "paper": Preset(_ALL, (0, 1, 2)),
           "full": Preset(_ALL, (0, 1, 2, 3, 4))}
MARGIN = 0.05  # a unit is removable while the error stays within 5% of the way to the error with every unit gone


def preset(profile: str) -> Preset:
    """The :class:`Preset` of ``profile`` ("quick", "paper" or "full")."""
    return PRESETS[check_profile(profile, PRESETS)]


SETUPS = _setups()


def load_setup(cfg, max_samples: int | None = None, seed: int = 0, quiet: bool = True):
    """Train (or load from ``prunekit.core.store``) ``cfg``'s model; return ``(UnitNet, x, y)`` on the training split (the
    data the source sums its error over), a random ``max_samples`` of it when given."""
    if max_samples is not None:
        max_samples = count("max_samples", max_samples)
    seed = count("seed", seed, low=0)
    run = train_or_load(cfg, quiet=quiet)
    ds = load_dataset(cfg.data)
    x, y = ds.train.x, ds.train.y
    if max_samples is not None and max_samples < len(x):
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(x), generator=g)[:max_samples]
        x, y = x[idx], y[idx]
    return from_model(run.model, loss=cfg.loss), x, y


def run_setup(cfg, setup: str = "", estimators: Sequence[str] = ESTIMATORS, algorithms: Sequence[str] = ALGORITHMS,
              max_samples: int | None = None, seed: int = 0, output_hessian: str = "diagonal", quiet: bool = True):
    """Prune ``cfg``'s trained model (see :func:`load_setup`) serially with every estimator and algorithm.
    Returns (tidy pruning table, rank agreement table, list of PruneResult); ``seed`` drives ``random`` and the
    ``max_samples`` draw, the table's ``seed`` column is the training seed ``cfg.seed``."""
    text("setup", setup, empty=True)
    estimators, algorithms = _choices("estimators", estimators, ESTIMATORS), _choices("algorithms", algorithms,
                                                                                     ALGORITHMS)
    choice("output_hessian", output_hessian, OUTPUT_HESSIANS)
    if max_samples is not None:
        count("max_samples", max_samples)
    count("seed", seed, low=0)
    net, x, y = load_setup(cfg, max_samples, seed, quiet)
    results, frames = [], []
    for alg in algorithms:
        for est in estimators:
            r = serial_prune(net, x, y, est, alg, seed=seed, output_hessian=output_hessian)
            results.append(r)
            frames.append(r.to_frame(setup=setup, seed=cfg.seed))
    ranks = rank_agreement(net, x, y, estimators, seed=seed, output_hessian=output_hessian)
    ranks.insert(0, "setup", setup)
    ranks.insert(1, "seed", cfg.seed)
    return pd.concat(frames, ignore_index=True), ranks, results


@dataclass
class Experiment:
    """Notebook 06's experiment: ``curves`` (the pruning tables of every setup and seed, one row per unit removed),
    ``ranks`` (rank agreement with brute force), ``hessian_checks`` (the first seed's Hessian diagonal against
    autograd, per setup), ``skipped`` (setup -> why its data are missing) and ``log`` (one line per setup and seed)."""

    curves: pd.DataFrame
    ranks: pd.DataFrame
    hessian_checks: pd.DataFrame
    skipped: dict[str, str]
    log: list[str]


def check_setups(setups: Sequence[str], seeds: Sequence[int]) -> tuple[list[str], list[int]]:
    """``(setups, seeds)`` as lists, or ``ValueError`` for an empty one or a setup name not in :data:`SETUPS`."""
    setups = _choices("setups", setups, tuple(SETUPS))
    seeds = distinct("seeds", sequence("seeds", seeds, item=lambda n, v: count(n, v, low=0)))
    return setups, seeds


def run_experiment(setups: Sequence[str], seeds: Sequence[int], device: str = "auto", max_samples: int | None = None,
                   output_hessian: str = "diagonal") -> Experiment:
    """Run :func:`run_setup` on every setup of :data:`SETUPS` in ``setups`` for every training seed in ``seeds``
    (the seed also drives the ``random`` estimator and the ``max_samples`` draw) and check the second-order
    estimator's Hessian diagonal on each setup's first seed. A setup whose data are missing is skipped (reported in
    ``skipped``); unknown setup names and an empty plan raise ``ValueError`` before any training."""
    setups, seeds = check_setups(setups, seeds)
    device = device_name(device)
    if max_samples is not None:
        count("max_samples", max_samples)
    choice("output_hessian", output_hessian, OUTPUT_HESSIANS)
    curves, ranks, checks, skipped, log = [], [], [], {}, []
    for name in setups:
        for seed in seeds:
            cfg = SETUPS[name].replace(seed=seed, device=device)
            try:
                table, rank, _ = run_setup(cfg, name, max_samples=max_samples, seed=seed, output_hessian=output_hessian)
            except DatasetUnavailable as err:
                skipped[name] = str(err)
                break
            curves.append(table)
            ranks.append(rank)
            if seed == seeds[0]:
                net, x, y = load_setup(cfg, max_samples, seed)
                check = hessian_diagonal_check(net, x, y, max_samples=32, output_hessian=output_hessian)
                check.insert(0, "setup", name)
                checks.append(check)
            base = table[table.units_removed == 0].iloc[0]
            log.append(f"{name} seed {seed}: {int(table.units_removed.max())} hidden units, unpruned error "
                       f"{base.error:.4g}, accuracy {base.accuracy:.3f}")
    if not curves:
        raise RuntimeError(f"no setup could run, every data set is missing: {skipped}")
    return Experiment(pd.concat(curves, ignore_index=True), pd.concat(ranks, ignore_index=True),
                      pd.concat(checks, ignore_index=True), skipped, log)


def removable_summary(table: pd.DataFrame, margin: float, mode: str = "range") -> pd.DataFrame:
    """:func:`curve_gap` averaged over seeds: one row per (setup, estimator, algorithm) with num_units, removable,
    removable_fraction, shortfall_vs_brute_force (units, against serial brute force), shortfall_fraction (of the
    units) and mean_error_gap."""
    gap = curve_gap(table, margin, mode)
    keys = [k for k in ("setup", "estimator", "algorithm") if k in gap.columns]
    out = gap.groupby(keys, sort=False)[["num_units", "removable", "removable_fraction", "shortfall_vs_brute_force",
                                         "mean_error_gap"]].mean().reset_index()
    out["shortfall_fraction"] = out["shortfall_vs_brute_force"] / out["num_units"]
    return out


QUOTE = ("Our proposed algorithm worked well compared to a first-order method, but not nearly as well as the "
         "brute-force method. [...] We discovered that there is a straightforward way, however expensive, to serially "
         "prune 40-70% of the neurons in a trained network with minimal effect on the learning representation and "
         "without any re-training.")
TOY_DATA = ("cosine", "diamond", "random_shape")  # the source's toy tasks: regression, and "inside a shape"


def task_kind(setup: str) -> str:
    """``"toy tasks"`` (cosine regression, inside-a-shape) or ``"image classification"`` for a setup of
    :data:`SETUPS` (a name not there is classified by its prefix)."""
    text("setup", setup)
    name = SETUPS[setup].data.name if setup in SETUPS else setup.split("_")[0]
    return "toy tasks" if name in TOY_DATA else "image classification"


def claims_table(gaps: pd.DataFrame, brute_force_min: float = 0.4, min_shortfall: float = 0.1,
                 close: float = 0.05) -> pd.DataFrame:
    """The claims of source 001 (``prunekit.report.claims`` format), decided on :func:`curve_gap`'s table (one row per
    setup, seed, estimator and algorithm), for the toy tasks and the image-classification tasks apart
    (:func:`task_kind`). Per seed, each number is the mean over the group's setups; the interval is Student's t over
    seeds:

    - brute force removes 40-70% of the neurons with little effect: serial brute force (Algorithm II) removes at
      least ``brute_force_min`` of the hidden units within the margin (the interval's lower end; wholly below it:
      does not hold);
    - the source's method, the second-order estimate, does "not nearly as well" as brute force: under Algorithm I and
      under Algorithm II its shortfall against serial brute force is at least ``min_shortfall`` of the units (both
      intervals above it: holds); within ``close`` of brute force under one algorithm (its interval wholly below
      ``close``): does not hold; anything between: cannot decide (the first-order estimate is reported beside);
    - the second-order estimate does better than the first-order one: under each algorithm, it removes more units
      (the interval of the difference above 0).
    A claim the table cannot decide is "not measured here", with the reason.
    """

    for name, value in (("brute_force_min", brute_force_min), ("min_shortfall", min_shortfall), ("close", close)):
        fraction(name, value)
    names = ("Brute force removes 40-70% of the neurons with little effect",
             "The second-order estimate (the source's method) does much worse than brute force",
             "The second-order estimate does better than the first-order one")
    reports = ("40-70% of the neurons removable serially, no retraining",
               "the proposed (second-order) method removes far fewer neurons than brute force",
               "the proposed (second-order) method works well compared to a first-order method")
    rules = (f"95% t interval over seeds of serial brute force's removable fraction (mean over the group's setups) "
             f">= {brute_force_min:.0%}",
             f"95% t interval over seeds of the second-order estimate's shortfall against serial brute force >= "
             f"{min_shortfall:.0%} of the units under Algorithm I and under Algorithm II; wholly below "
             f"{close:.0%} under either: does not hold",
             "95% t interval over seeds of (second order - first order) removable fraction > 0 under each algorithm")
    cols = ["setup", "seed", "estimator", "algorithm", "removable_fraction", "shortfall_fraction"]
    missing = C.missing_columns(gaps, cols)
    if missing or gaps.empty:
        why = C.lacking(missing, "table")
        return C.claims_frame(C.not_measured(SOURCE, n, r, why, u, quote=QUOTE) for n, r, u in zip(names, reports,
                                                                                                     rules))
    gaps = gaps.assign(kind=gaps["setup"].map(task_kind))
    rows = []
    for kind, g in gaps.groupby("kind", sort=False):
        setups = list(dict.fromkeys(g["setup"]))
        context = {"quote": QUOTE, "seeds": C.seed_list(g["seed"]),
                   "setup": f"the source's {kind}: " + ", ".join(setups)}
        label = f" ({kind})"
        per_seed = g.groupby(["estimator", "algorithm", "seed"])[["removable_fraction", "shortfall_fraction"]].mean()

        def series(est, alg, col):
            return per_seed.loc[(est, alg), col] if (est, alg) in per_seed.index.droplevel("seed") else None

        bf = series("brute_force", "II", "removable_fraction")
        if bf is None or bf.dropna().empty:
            rows.append(C.not_measured(SOURCE, names[0] + label, reports[0], "no brute-force run under Algorithm II",
                                       rules[0], **context))
        else:
            iv = mean_interval(bf.dropna())
            measured = (f"serial brute force removes {iv.estimate:.0%} of the hidden units (mean over "
                        f"{C.plural(len(setups), 'setup')} and {C.plural(iv.n, 'seed')}; by setup: "
                        + ", ".join(f"{s} {v:.0%}" for s, v in g[(g.estimator == "brute_force") & (g.algorithm == "II")]
                                    .groupby("setup", sort=False)["removable_fraction"].mean().items()) + ").")
            rows.append(C.decided(SOURCE, names[0] + label, reports[0], measured,
                                  [side_of(iv, brute_force_min - 1e-12)], rules[0], intervals=[iv],
                                  interval=f"removable fraction: {iv.text('{:.0%}')}", **context))
        parts, sides, ivs, missing_runs, found, near = [], [], [], [], [], []
        for est in ("second_order", "first_order"):
            for alg in ("I", "II"):
                sh = series(est, alg, "shortfall_fraction")
                if sh is None or sh.dropna().empty:
                    if est == "second_order":
                        missing_runs.append(f"{est} / Algorithm {alg}")
                    continue
                iv = mean_interval(sh.dropna())
                part = f"{est.replace('_', ' ')}, Algorithm {alg}: {iv.estimate:.0%} of the units fewer"
                parts.append(part)
                if est != "second_order":
                    continue
                ivs.append(f"second order {alg}: {iv.text('{:+.0%}')}")
                much, within = side_of(iv, min_shortfall - 1e-12), side_of(iv, close, holds_above=False)
                sides.append(True if much is True else False if within is True else None)
                found.append(iv)
                if within is True:
                    near.append(part)
        if missing_runs:
            rows.append(C.not_measured(SOURCE, names[1] + label, reports[1], "no runs (or no serial brute-force "
                                       "reference) for " + ", ".join(missing_runs), rules[1], **context))
        else:
            measured = ("shortfall against serial brute force: " + "; ".join(parts) + "."
                        + (f" Within {close:.0%} of brute force: " + "; ".join(near) + "." if near else ""))
            rows.append(C.decided(SOURCE, names[1] + label, reports[1], measured, sides, rules[1],
                                  interval="; ".join(ivs), intervals=found, **context))
        parts, sides, ivs, found = [], [], [], []
        for alg in ("I", "II"):
            first, second = (series(e, alg, "removable_fraction") for e in ("first_order", "second_order"))
            if first is None or second is None:
                continue
            d = (second - first).dropna()
            if d.empty:
                continue
            iv = mean_interval(d)
            parts.append(f"Algorithm {alg}: second order {second.mean():.0%}, first order {first.mean():.0%}")
            ivs.append(f"Algorithm {alg}: {iv.text('{:+.0%}')}")
            sides.append(side_of(iv, 0.0))
            found.append(iv)
        if not sides:
            rows.append(C.not_measured(SOURCE, names[2] + label, reports[2], "no first- and second-order runs under "
                                       "the same algorithm", rules[2], **context))
        else:
            rows.append(C.decided(SOURCE, names[2] + label, reports[2], "removable: " + "; ".join(parts) + ".", sides,
                                  rules[2], interval="second - first order: " + "; ".join(ivs), intervals=found,
                                  threshold=0.0, **context))
    return C.claims_frame(rows)

