"""Source 001, "The Incredible Shrinking Neural Network" (Wolfe, Sharma, Drude and Raj, arXiv:1701.04465): the study.

The source's setups as presets (:data:`SETUPS`, :data:`PROFILES`), one experiment per setup (:func:`run_setup`: train
through the cache, prune serially with every estimator under Algorithms I and II), the comparison with brute force
(:func:`rank_agreement`, :func:`curve_gap`, :func:`removable_summary`) and the source's claims (:func:`claims_table`).
The estimators themselves live in ``prunekit.saliency``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from . import claims as C
from .cache import train_or_load
from .config import DataConfig, ModelConfig, TrainConfig
from .data import load_dataset
from .saliency import (
    ALGORITHMS,
    ESTIMATORS,
    UnitNet,
    _check,
    from_model,
    removable_units,
    saliencies,
    serial_prune,
)

__all__ = ["SOURCE", "SETUPS", "PROFILES", "SEEDS", "load_setup", "run_setup", "rank_agreement", "curve_gap",
           "removable_summary", "claims_table"]

SOURCE = "001 The Incredible Shrinking Neural Network"


# ----------------------------------------------------------------------------------------------------------------------
# Comparison with the oracle
# ----------------------------------------------------------------------------------------------------------------------

def rank_agreement(net: UnitNet, x: torch.Tensor, y: torch.Tensor, estimators=ESTIMATORS, seed: int = 0,
                   output_hessian: str = "diagonal") -> pd.DataFrame:
    """Spearman and Kendall rank correlation (scipy.stats) of each estimator's scores on the full net with the exact
    (brute-force) ΔE. Columns: estimator, spearman, kendall."""
    from scipy import stats  # scipy.stats is slow to import: only here

    for e in estimators:
        _check("estimator", e, ESTIMATORS)
    gen = torch.Generator().manual_seed(seed)
    oracle = saliencies(net, x, y, "brute_force").cpu().numpy()
    rows = []
    for e in estimators:
        s = oracle if e == "brute_force" else saliencies(net, x, y, e, generator=gen,
                                                          output_hessian=output_hessian).cpu().numpy()
        rows.append({"estimator": e, "spearman": float(stats.spearmanr(s, oracle).statistic),
                     "kendall": float(stats.kendalltau(s, oracle).statistic)})
    return pd.DataFrame(rows)


def curve_gap(table: pd.DataFrame, margin: float, mode: str = "range") -> pd.DataFrame:
    """Per (setup, seed, estimator, algorithm) of a tidy pruning table: units removable within ``margin`` (see
    :func:`removable_units`), as a count and fraction, their shortfall against brute force of the same algorithm, and
    the mean error gap to brute force's curve over the removal range (``mean(error - error_brute_force)``)."""
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
        sel = df.algorithm == r.algorithm
        for k in keys:
            sel &= df[k] == r[k]
        bf = df[sel & (df.estimator == "brute_force")]
        if len(bf):
            e_bf = bf._err.iloc[0]
            m = min(len(e_bf), len(r._err))
            gaps.append(float(np.mean(r._err[:m] - e_bf[:m])))
            short.append(int(bf.removable.iloc[0] - r.removable))
        else:
            gaps.append(float("nan"))
            short.append(np.nan)
    df["shortfall_vs_brute_force"] = short
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


PROFILES = {
    "quick": ("cosine_10_10", "cosine_50_50", "digits_sse", "digits_ce"),
    "paper": ("cosine_10_10", "cosine_50_50", "diamond_50_50", "random_shape_50_50", "mnist20_100", "mnist20_50_50",
              "mnist_ova0", "mnist_ova1", "mnist_ova2", "digits_sse", "digits_ce"),
}
PROFILES["full"] = PROFILES["paper"]  # the source's own setups are small: the paper profile runs them at their scale
SEEDS = {"quick": [0], "paper": [0, 1, 2], "full": [0, 1, 2, 3, 4]}  # training seeds per profile


SETUPS = _setups()


def load_setup(cfg, max_samples: int | None = None, seed: int = 0, quiet: bool = True):
    """Train (or load from ``prunekit.cache``) ``cfg``'s model; return ``(UnitNet, x, y)`` on the training split (the
    data the source sums its error over), a random ``max_samples`` of it when given."""
    run = train_or_load(cfg, quiet=quiet)
    ds = load_dataset(cfg.data)
    x, y = ds.train.x, ds.train.y
    if max_samples is not None and max_samples < len(x):
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(x), generator=g)[:max_samples]
        x, y = x[idx], y[idx]
    return from_model(run.model, loss=cfg.loss), x, y


def run_setup(cfg, setup: str = "", estimators=ESTIMATORS, algorithms=ALGORITHMS, max_samples: int | None = None,
              seed: int = 0, output_hessian: str = "diagonal", quiet: bool = True):
    """Prune ``cfg``'s trained model (see :func:`load_setup`) serially with every estimator and algorithm.
    Returns (tidy pruning table, rank agreement table, list of PruneResult); ``seed`` drives ``random`` and the
    ``max_samples`` draw, the table's ``seed`` column is the training seed ``cfg.seed``."""
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


def removable_summary(table: pd.DataFrame, margin: float, mode: str = "range") -> pd.DataFrame:
    """:func:`curve_gap` averaged over seeds: one row per (setup, estimator, algorithm) with num_units, removable,
    removable_fraction, shortfall_vs_brute_force (units), shortfall_fraction (of the units) and mean_error_gap."""
    gap = curve_gap(table, margin, mode)
    keys = [k for k in ("setup", "estimator", "algorithm") if k in gap.columns]
    out = gap.groupby(keys, sort=False)[["num_units", "removable", "removable_fraction", "shortfall_vs_brute_force",
                                         "mean_error_gap"]].mean().reset_index()
    out["shortfall_fraction"] = out["shortfall_vs_brute_force"] / out["num_units"]
    return out


def claims_table(summary: pd.DataFrame, brute_force_range: tuple[float, float] = (0.4, 0.7),
                 min_shortfall: float = 0.1) -> pd.DataFrame:
    """The claims of source 001 checked on a :func:`removable_summary` table (``prunekit.claims`` format).

    - brute force removes 40-70% of the neurons with little effect: the median over setups of brute force's removable
      fraction (Algorithm II, serial re-ranking) lies in ``brute_force_range``;
    - first- and second-order estimates do much worse than brute force: under Algorithm I and under Algorithm II,
      each Taylor estimate removes on average at least ``min_shortfall`` of the units fewer than brute force.
    A claim the summary cannot decide is "not measured here", with the reason.
    """
    lo, hi = brute_force_range
    names = ("Brute force removes 40-70% of the neurons with little effect",
             "First- and second-order estimates do much worse than brute force")
    reports = ("40-70% of the neurons removable serially, no retraining",
               "both Taylor estimates remove far fewer neurons than brute force")
    rules = (f"median over setups of brute force's removable fraction (Algorithm II) in [{lo:.0%}, {hi:.0%}]",
             f"mean shortfall against brute force >= {min_shortfall:.0%} of the units for first and second order, "
             "under Algorithm I and under Algorithm II")
    missing = C.missing_columns(summary, ["setup", "estimator", "algorithm", "removable_fraction",
                                          "shortfall_fraction"])
    if missing or summary.empty:
        why = C.lacking(missing, "summary")
        return C.claims_frame(C.not_measured(SOURCE, n, r, why, u) for n, r, u in zip(names, reports, rules))
    rows = []
    bf = summary[(summary.estimator == "brute_force") & (summary.algorithm == "II")].set_index("setup")
    if bf.empty:
        rows.append(C.not_measured(SOURCE, names[0], reports[0], "no brute-force run under Algorithm II", rules[0]))
    else:
        frac = bf["removable_fraction"]
        median = float(frac.median())
        measured = (f"brute force (Algorithm II) removes {frac.min():.0%} to {frac.max():.0%} of the hidden units "
                    f"across {len(frac)} setup{'s' if len(frac) != 1 else ''} (median {median:.0%}): "
                    + ", ".join(f"{s} {v:.0%}" for s, v in frac.items()) + ".")
        rows.append(C.claim(SOURCE, names[0], reports[0], measured, lo <= median <= hi, rules[0]))
    parts, verdicts, missing_runs = [], [], []
    for est in ("first_order", "second_order"):
        for alg in ("I", "II"):
            s = summary[(summary.estimator == est) & (summary.algorithm == alg)]["shortfall_fraction"].dropna()
            if s.empty:
                missing_runs.append(f"{est} / Algorithm {alg}")
                continue
            parts.append(f"{est.replace('_', ' ')}, Algorithm {alg}: {s.mean():.0%} of the units fewer")
            verdicts.append(s.mean() >= min_shortfall)
    if missing_runs:
        rows.append(C.not_measured(SOURCE, names[1], reports[1], "no runs (or no brute-force reference) for "
                                   + ", ".join(missing_runs), rules[1]))
    else:
        rows.append(C.claim(SOURCE, names[1], reports[1], "mean shortfall against brute force: " + "; ".join(parts)
                            + ".", all(verdicts), rules[1]))
    return C.claims_frame(rows)
