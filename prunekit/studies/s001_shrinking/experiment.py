"""Source 001's experiment (notebook 06): each setup trained through the cache and pruned serially with every
estimator under Algorithms I and II (:func:`run_setup`, :func:`run_experiment`), the comparison with serial brute
force (:func:`rank_agreement` per hidden layer, :func:`curve_gap`, :func:`removable_summary`) and this project's
account of where the source's back-propagated Hessian diagonal breaks (:func:`why_table`, :func:`training_course`).
The estimators live in ``prunekit.measures.saliency``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ...core.checks import choice, count, distinct, number, sequence, text
from ...core.config import TrainConfig
from ...core.data import DatasetUnavailable, load_dataset
from ...core.device import device_name
from ...core.store import train_or_load
from ...measures.saliency import (
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
from .setups import MARGIN, SETUPS, check_setups, stated_accuracy

__all__ = ["rank_agreement", "curve_gap", "removable_summary", "load_setup", "run_setup", "Experiment",
           "run_experiment", "why_table", "training_course"]


def rank_agreement(net: UnitNet, x: torch.Tensor, y: torch.Tensor, estimators: Sequence[str] = ESTIMATORS,
                   seed: int = 0, output_hessian: str = "diagonal") -> pd.DataFrame:
    """Spearman and Kendall rank correlation (scipy.stats) of each estimator's scores on the full net with the exact
    (brute-force) ΔE, over all hidden units (``layer`` "all") and within each hidden layer (``layer`` "1" is the
    first, next to the inputs). Columns: estimator, layer, spearman, kendall (NaN for a layer of one unit)."""
    from scipy import stats  # scipy.stats is slow to import: only here

    estimators = _choices("estimators", estimators, ESTIMATORS)
    choice("output_hessian", output_hessian, OUTPUT_HESSIANS)
    gen = torch.Generator().manual_seed(count("seed", seed, low=0))
    oracle = saliencies(net, x, y, "brute_force").cpu().numpy()
    bounds = np.cumsum([0, *net.widths])
    parts = [("all", slice(0, int(bounds[-1])))]
    if len(net.widths) > 1:
        parts += [(str(l + 1), slice(int(bounds[l]), int(bounds[l + 1]))) for l in range(len(net.widths))]
    rows = []
    for e in estimators:
        s = oracle if e == "brute_force" else saliencies(net, x, y, e, generator=gen,
                                                          output_hessian=output_hessian).cpu().numpy()
        for layer, part in parts:
            a, b = s[part], oracle[part]
            constant = a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0
            rows.append({"estimator": e, "layer": layer,
                         "spearman": np.nan if constant else float(stats.spearmanr(a, b).statistic),
                         "kendall": np.nan if constant else float(stats.kendalltau(a, b).statistic)})
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



def load_setup(cfg: TrainConfig, max_samples: int | None = None, seed: int = 0, quiet: bool = True, epoch=None):
    """Train (or load from ``prunekit.core.store``) ``cfg``'s model; return ``(UnitNet, x, y, run)`` on the training
    split (the data the source sums its error over), a random ``max_samples`` of it when given; ``epoch``: the
    network at that checkpoint of ``cfg.checkpoints`` instead of the trained one."""
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
    model = run.model if epoch is None else run.model_at(epoch)
    return from_model(model, loss=cfg.loss), x, y, run


def run_setup(cfg: TrainConfig, setup: str = "", estimators=ESTIMATORS, algorithms=ALGORITHMS,
              max_samples: int | None = None, seed: int = 0, output_hessian: str = "diagonal", quiet: bool = True):
    """Prune ``cfg``'s trained model (see :func:`load_setup`) serially with every estimator and algorithm.
    Returns (tidy pruning table, rank agreement table, list of PruneResult, the run); ``seed`` drives ``random`` and
    the ``max_samples`` draw, the table's ``seed`` column is the training seed ``cfg.seed``."""
    text("setup", setup, empty=True)
    estimators, algorithms = _choices("estimators", estimators, ESTIMATORS), _choices("algorithms", algorithms,
                                                                                     ALGORITHMS)
    choice("output_hessian", output_hessian, OUTPUT_HESSIANS)
    if max_samples is not None:
        count("max_samples", max_samples)
    count("seed", seed, low=0)
    net, x, y, run = load_setup(cfg, max_samples, seed, quiet)
    results, frames = [], []
    for alg in algorithms:
        for est in estimators:
            r = serial_prune(net, x, y, est, alg, seed=seed, output_hessian=output_hessian)
            results.append(r)
            frames.append(r.to_frame(setup=setup, seed=cfg.seed))
    ranks = rank_agreement(net, x, y, estimators, seed=seed, output_hessian=output_hessian)
    ranks.insert(0, "setup", setup)
    ranks.insert(1, "seed", cfg.seed)
    return pd.concat(frames, ignore_index=True), ranks, results, run


@dataclass
class Experiment:
    """Notebook 06's experiment: ``curves`` (the pruning tables of every setup and seed, one row per unit removed),
    ``ranks`` (rank agreement with brute force, per hidden layer), ``accuracy`` (each network's final training and
    test accuracy), ``hessian_checks`` (the first seed's Hessian diagonal against autograd, per setup), ``skipped``
    (setup -> why its data are missing) and ``log`` (one line per setup and seed)."""

    curves: pd.DataFrame
    ranks: pd.DataFrame
    accuracy: pd.DataFrame
    hessian_checks: pd.DataFrame
    skipped: dict[str, str]
    log: list[str]


def run_experiment(setups, seeds, device: str = "auto", max_samples: int | None = None,
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
    curves, ranks, accuracy, checks, skipped, log = [], [], [], [], {}, []
    for name in setups:
        for seed in seeds:
            cfg = SETUPS[name].config.replace(seed=seed, device=device)
            try:
                table, rank, _, run = run_setup(cfg, name, max_samples=max_samples, seed=seed,
                                                output_hessian=output_hessian)
            except DatasetUnavailable as err:
                skipped[name] = str(err)
                break
            curves.append(table)
            ranks.append(rank)
            last = run.history.iloc[-1]
            accuracy.append({"setup": name, "seed": seed, "train_accuracy": float(last.get("train_accuracy", np.nan)),
                             "test_accuracy": float(last.get("test_accuracy", np.nan)),
                             "train_loss": float(last["train_loss"])})
            if seed == seeds[0]:
                net, x, y, _ = load_setup(cfg, max_samples, seed)
                check = hessian_diagonal_check(net, x, y, max_samples=32, output_hessian=output_hessian)
                check.insert(0, "setup", name)
                checks.append(check)
            base = table[table.units_removed == 0].iloc[0]
            log.append(f"{name} seed {seed}: {int(table.units_removed.max())} hidden units, unpruned error "
                       f"{base.error:.4g}, training accuracy {base.accuracy:.3f}")
    if not curves:
        raise RuntimeError(f"no setup could run, every data set is missing: {skipped}")
    return Experiment(pd.concat(curves, ignore_index=True), pd.concat(ranks, ignore_index=True),
                      pd.DataFrame(accuracy), pd.concat(checks, ignore_index=True), skipped, log)



def why_table(gaps: pd.DataFrame, ranks: pd.DataFrame) -> pd.DataFrame:
    """The evidence of where the source's back-propagated diagonal breaks, one row per setup (means over seeds):
    its optimizer and hidden layers, the rank agreement (Spearman) with the exact ΔE of the source's
    ``second_order``, of ``second_order_exact`` and of ``first_order`` within the first hidden layer, and the units
    each removes under Algorithm II (``removable_*``, fractions) beside serial brute force's."""
    rows = []
    first = ranks[ranks["layer"].isin(["1"]) | (ranks["layer"] == "all")]
    for setup, g in gaps[gaps.algorithm == "II"].groupby("setup", sort=False):
        cfg = SETUPS[setup].config if setup in SETUPS else None
        r = first[first.setup == setup]
        layer = "1" if (r["layer"] == "1").any() else "all"  # one hidden layer: "all" is the first layer
        spear = r[r.layer == layer].groupby("estimator")["spearman"].mean()
        removable = g.groupby("estimator")["removable_fraction"].mean()
        rows.append({"setup": setup, "optimizer": cfg.optimizer if cfg else "", "hidden": cfg.model.hidden if cfg
                     else (), **{f"spearman_first_layer_{e}": spear.get(e, np.nan) for e in
                                 ("second_order", "second_order_exact", "first_order")},
                     **{f"removable_{e}": removable.get(e, np.nan) for e in
                        ("brute_force", "second_order", "second_order_exact", "first_order")}})
    return pd.DataFrame(rows)


def training_course(setups, seed: int = 0, device: str = "auto", margin: float = MARGIN, mode: str = "range",
                    epochs=None) -> pd.DataFrame:
    """The source's estimates along training: for each setup (its config's ``checkpoints``, or those of them in
    ``epochs``; training seed ``seed``), at each checkpoint, the training accuracy, whether it has reached the
    accuracy the source states for the task (``learned``: :func:`.setups.stated_accuracy`; None where it states
    none), the rank agreement (Spearman) of ``second_order`` and ``second_order_exact``
    with the exact ΔE within the first hidden layer, and the fraction of the units serial brute force,
    ``second_order`` and ``second_order_exact`` remove under Algorithm II within ``margin``. One row per (setup,
    epoch)."""
    from scipy import stats  # scipy.stats is slow to import: only here

    setups = _choices("setups", setups, tuple(SETUPS))
    seed = count("seed", seed, low=0)
    device = device_name(device)
    number("margin", margin, low=0.0)
    choice("mode", mode, MARGIN_MODES)
    rows = []
    for name in setups:
        cfg = SETUPS[name].config.replace(seed=seed, device=device)
        chosen = cfg.checkpoints if epochs is None else tuple(e for e in cfg.checkpoints if e in set(epochs))
        if not chosen:
            raise ValueError(f"setup {name!r} keeps no checkpoints{'' if epochs is None else ' among ' + str(epochs)}"
                             f" (it keeps {list(cfg.checkpoints)}): its training course cannot be followed")
        _, x, y, run = load_setup(cfg)
        history = run.history.set_index("epoch")
        stated = stated_accuracy(name)
        for epoch in chosen:
            net = from_model(run.model_at(epoch), loss=cfg.loss)
            oracle = saliencies(net, x, y, "brute_force")
            first = slice(0, net.widths[0])
            accuracy = (float(history.loc[epoch, "train_accuracy"]) if epoch in history.index
                        and "train_accuracy" in history.columns else np.nan)
            row = {"setup": name, "optimizer": cfg.optimizer, "epoch": epoch, "train_accuracy": accuracy,
                   "learned": bool(accuracy >= stated) if stated is not None and accuracy == accuracy else None}
            for est in ("second_order", "second_order_exact"):
                s = saliencies(net, x, y, est)
                row[f"spearman_first_layer_{est}"] = float(stats.spearmanr(s[first], oracle[first]).statistic)
            for est in ("brute_force", "second_order", "second_order_exact"):
                row[f"removable_{est}"] = serial_prune(net, x, y, est, "II").removable(margin, mode) / net.num_units
            rows.append(row)
    return pd.DataFrame(rows)
