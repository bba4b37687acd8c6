"""Source 001, "The Incredible Shrinking Neural Network" (Wolfe, Sharma, Drude and Raj, arXiv:1701.04465): the study.

The source's setups as the authors state them (:data:`SETUPS`, grouped in :data:`GROUPS`; per profile in
:data:`PRESETS`), one experiment per setup (:func:`run_setup`: train through the cache, prune serially with every
estimator under Algorithms I and II), the comparison with serial brute force (:func:`rank_agreement` per hidden
layer, :func:`curve_gap`, :func:`removable_summary`), this project's account of where the source's back-propagated
Hessian diagonal breaks (:func:`why_table`, :func:`training_course`) and the source's claims, decided per group of
setups (:func:`claims_table`). The estimators live in ``prunekit.measures.saliency``.

The source leaves the optimizer, learning rate and epochs open. Its networks are trained by back-propagation
("optimally trained", to the starting accuracies it reports), so the source's setups here are trained with plain SGD
to about those accuracies; Adam-trained copies of the two-hidden-layer setups are this project's extension
(:data:`GROUPS` ``"adam"``): on them the source's diagonal misranks the first hidden layer's units, and the exact
second derivative (``second_order_exact``) does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ..core.checks import choice, count, distinct, fraction, number, sequence, text
from ..core.device import device_name
from ..core.config import DataConfig, ModelConfig, TrainConfig, check_profile
from ..core.data import DatasetUnavailable, load_dataset
from ..core.store import train_or_load
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
from ..report import claims as C
from ..report.intervals import mean_interval, side_of

__all__ = ["SOURCE", "Setup", "SETUPS", "Group", "GROUPS", "group_of", "Preset", "PRESETS", "preset", "MARGIN",
           "NEAR", "load_setup", "run_setup", "Experiment", "check_setups", "run_experiment", "rank_agreement",
           "curve_gap", "removable_summary", "setup_table", "why_table", "training_course", "CLAIMS",
           "claims_table", "group_sentences", "estimator_colors", "plot_curves", "plot_course"]

SOURCE = "001 The Incredible Shrinking Neural Network"


# ----------------------------------------------------------------------------------------------------------------------
# Setups and their groups
# ----------------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Group:
    """A group of setups the source reports on together: its ``label``, its ``kind`` ("source": the source's own
    setups; "extension": this project's) and ``where`` the source reports it."""

    label: str
    kind: str
    where: str

    def __post_init__(self):
        text("label", self.label)
        choice("kind", self.kind, C.KINDS)
        text("where", self.where)


ICLR = "the ICLR 2017 submission (OpenReview), 'Experimental Results'"
GROUPS = {
    "shapes": Group("inside-a-shape tasks", "source", f"{ICLR}, 'Experiments on Toy Datasets'"),
    "mnist": Group("MNIST subset", "source", f"{ICLR}, 'Pruning a 1-Layer Network' and 'Pruning A 2-Layer Network'"),
    "arxiv": Group("cosine regression and one-vs-all MNIST", "source",
                   "the setups arXiv:1701.04465 adds; its abstract's claims are decided on them"),
    "adam": Group("Adam-trained inside-a-shape tasks, this project's extension", "extension",
                  "this project's extension: the source's inside-a-shape setups trained with Adam"),
    "adam_mnist": Group("Adam-trained MNIST subset, this project's extension", "extension",
                        "this project's extension: the source's two-hidden-layer MNIST setup trained with Adam"),
    "depth": Group("one hidden layer, this project's extension", "extension",
                   "this project's extension: the diamond task with one hidden layer of 100"),
    "digits": Group("scikit-learn digits, this project's extension", "extension",
                    "this project's extension: the embedded digits data set"),
}


@dataclass(frozen=True)
class Setup:
    """One setup: its ``config`` (trained through ``prunekit.core.store``), its ``group`` (a key of :data:`GROUPS`)
    and the starting ``accuracy`` the source reports for it (None where it states none)."""

    config: TrainConfig
    group: str
    accuracy: float | None = None

    def __post_init__(self):
        if not isinstance(self.config, TrainConfig):
            raise ValueError(f"config={self.config!r} must be a TrainConfig")
        choice("group", self.group, tuple(GROUPS))
        if self.accuracy is not None:
            fraction("accuracy", self.accuracy)


def _setups() -> dict[str, Setup]:
    def mlp(hidden):
        return ModelConfig(arch="mlp", hidden=hidden, activation="sigmoid")

    def sgd(data, hidden, lr, epochs, batch_size, checkpoints=()):
        return TrainConfig(data=data, model=mlp(hidden), loss="sse", optimizer="sgd", lr=lr, epochs=epochs,
                           batch_size=batch_size, checkpoints=checkpoints)

    def adam(cfg, lr, epochs, checkpoints=()):
        return cfg.replace(optimizer="adam", lr=lr, momentum=0.0, epochs=epochs, checkpoints=checkpoints)

    cosine = DataConfig(name="cosine")
    # the source scales MNIST to [0, 1] (no standardisation) and downsamples a 5,000-image subset to 20x20
    mnist20 = DataConfig(name="mnist", subset=5000, resize=20, normalize=False)
    course = (1, 5, 10, 25, 50, 100, 200, 400)  # checkpoints of the shape tasks: their training course
    s = {
        # cosine regression (arXiv version): 1 input, 1 output, two sigmoid hidden layers
        "cosine_10_10": Setup(sgd(cosine, (10, 10), 1.0, 400, 32), "arxiv"),
        "cosine_50_50": Setup(sgd(cosine, (50, 50), 1.0, 400, 32), "arxiv"),
        # MNIST subset (ICLR submission): starting accuracies 0.998 (one layer of 100) and 1.000 (two of 50)
        "mnist20_100": Setup(sgd(mnist20, (100,), 2.0, 200, 64), "mnist", 0.998),
        "mnist20_50_50": Setup(sgd(mnist20, (50, 50), 2.0, 200, 64), "mnist", 1.0),
    }
    for shape, accuracy in (("diamond", 0.992), ("random_shape", 0.986)):
        cfg = sgd(DataConfig(name=shape), (50, 50), 0.5, 400, 32, course).replace(momentum=0.9)
        s[f"{shape}_50_50"] = Setup(cfg, "shapes", accuracy)
        s[f"{shape}_50_50_adam"] = Setup(adam(cfg, 5e-3, 200, course[:-1]), "adam")
    for d in (0, 1, 2):  # one-vs-all MNIST (arXiv version): 784-100-2 on the whole training set
        s[f"mnist_ova{d}"] = Setup(sgd(DataConfig(name="mnist", one_vs_all=d, normalize=False), (100,), 2.0, 5, 128),
                                   "arxiv")
    s["mnist20_50_50_adam"] = Setup(adam(s["mnist20_50_50"].config, 1e-3, 30), "adam_mnist")
    s["diamond_100"] = Setup(s["diamond_50_50"].config.replace(hidden=(100,), checkpoints=()), "depth")
    s["diamond_100_adam"] = Setup(s["diamond_50_50_adam"].config.replace(hidden=(100,), checkpoints=()), "depth")
    digits = DataConfig(name="digits")
    s["digits_sse"] = Setup(TrainConfig(data=digits, model=mlp((100,)), loss="sse", optimizer="adam", lr=3e-3,
                                        epochs=30, batch_size=64), "digits")
    s["digits_ce"] = Setup(s["digits_sse"].config.replace(loss="cross_entropy"), "digits")
    return s


SETUPS = _setups()


def group_of(setup: str) -> str:
    """The :data:`GROUPS` key of a setup of :data:`SETUPS` ("other" for a name not there)."""
    text("setup", setup)
    return SETUPS[setup].group if setup in SETUPS else "other"


@dataclass(frozen=True)
class Preset:
    """Notebook 06's settings for one profile: the ``setups`` of :data:`SETUPS` it runs, the training ``seeds``, the
    setups whose training course :func:`training_course` follows (first seed) and at which of their checkpoints
    (``course_epochs``; None: all of them)."""

    setups: tuple[str, ...]
    seeds: tuple[int, ...]
    course: tuple[str, ...] = ()
    course_epochs: tuple[int, ...] | None = None


_SOURCE = ("diamond_50_50", "random_shape_50_50", "mnist20_100", "mnist20_50_50", "cosine_10_10", "cosine_50_50",
           "mnist_ova0", "mnist_ova1", "mnist_ova2")
_EXTENSION = ("diamond_50_50_adam", "random_shape_50_50_adam", "mnist20_50_50_adam", "diamond_100", "diamond_100_adam")
_COURSE = ("diamond_50_50", "diamond_50_50_adam", "random_shape_50_50", "random_shape_50_50_adam")
PRESETS = {"quick": Preset(("diamond_50_50", "diamond_50_50_adam", "cosine_10_10"), (0,), ("diamond_50_50_adam",),
                           (5, 25, 200)),
           "paper": Preset(_SOURCE + _EXTENSION, (0, 1, 2), _COURSE),
           "full": Preset(_SOURCE + _EXTENSION + ("digits_sse", "digits_ce"), (0, 1, 2, 3, 4), _COURSE)}
MARGIN = 0.05  # a unit is removable while the error stays within 5% of the way to the error with every unit gone
NEAR = 0.10  # an estimate is "close" to serial brute force within 10% of the units, "not nearly as good" beyond


def preset(profile: str) -> Preset:
    """The :class:`Preset` of ``profile`` ("quick", "paper" or "full")."""
    return PRESETS[check_profile(profile, PRESETS)]


def check_setups(setups, seeds) -> tuple[list[str], list[int]]:
    """``(setups, seeds)`` as lists, or ``ValueError`` for an empty one or a setup name not in :data:`SETUPS`."""
    setups = _choices("setups", setups, tuple(SETUPS))
    seeds = distinct("seeds", sequence("seeds", seeds, item=lambda n, v: count(n, v, low=0)))
    return setups, seeds


# ----------------------------------------------------------------------------------------------------------------------
# Comparison with the oracle
# ----------------------------------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------------------------------
# One experiment
# ----------------------------------------------------------------------------------------------------------------------

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


def setup_table(setups, accuracy: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per setup: its group, data, hidden layers, optimizer and schedule, the starting accuracy the source
    reports and (given :attr:`Experiment.accuracy`) the training and test accuracy reached here, mean over seeds."""
    rows = []
    for name in setups:
        s = SETUPS[name]
        c = s.config
        rows.append({"setup": name, "group": GROUPS[s.group].label, "data": c.data.name,
                     "images": c.data.subset or "all", "resize": c.data.resize, "hidden": c.model.hidden,
                     "loss": c.loss, "optimizer": c.optimizer, "lr": c.lr, "momentum": c.momentum,
                     "epochs": c.epochs, "batch_size": c.batch_size, "source_accuracy": s.accuracy})
    out = pd.DataFrame(rows)
    if accuracy is not None and len(accuracy):
        reached = accuracy.groupby("setup")[["train_accuracy", "test_accuracy"]].mean()
        out = out.join(reached, on="setup")
    return out


# ----------------------------------------------------------------------------------------------------------------------
# Where the source's diagonal breaks (this project's extension)
# ----------------------------------------------------------------------------------------------------------------------

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
    ``epochs``; training seed ``seed``), at each checkpoint, the training accuracy, the rank agreement (Spearman) of ``second_order`` and ``second_order_exact``
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
        for epoch in chosen:
            net = from_model(run.model_at(epoch), loss=cfg.loss)
            oracle = saliencies(net, x, y, "brute_force")
            first = slice(0, net.widths[0])
            row = {"setup": name, "optimizer": cfg.optimizer, "epoch": epoch,
                   "train_accuracy": float(history.loc[epoch, "train_accuracy"]) if epoch in history.index
                   else np.nan}
            for est in ("second_order", "second_order_exact"):
                s = saliencies(net, x, y, est)
                row[f"spearman_first_layer_{est}"] = float(stats.spearmanr(s[first], oracle[first]).statistic)
            for est in ("brute_force", "second_order", "second_order_exact"):
                row[f"removable_{est}"] = serial_prune(net, x, y, est, "II").removable(margin, mode) / net.num_units
            rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------------------------
# Claims
# ----------------------------------------------------------------------------------------------------------------------

_ABSTRACT_METHOD = C.Quote("Our proposed algorithm worked well compared to a first-order method, but not nearly as "
                           "well as the brute-force method.", "abstract")
_ABSTRACT_SERIAL = C.Quote("We discovered that there is a straightforward way, however expensive, to serially prune "
                           "40-70% of the neurons in a trained network with minimal effect on the learning "
                           "representation and without any re-training.", "abstract")
_TOY = C.Quote("What is interesting to note is that from some other experiments conducted on toy datasets "
               "(predicting whether a given point would lie inside a given shape on the Cartesian plane), the "
               "performance of the 2nd-order method was found to be exceptionally good and produced results very "
               "close to the brute force method. The 1st-order method, as expected, performed poorly here as well.",
               f"{ICLR}, 'Experiments on Toy Datasets'")
_MNIST = C.Quote("As can be seen from the experiments on MNIST, even though the 2nd-order approximation criterion is "
                 "consistently better than 1st-order, it's performance is not nearly as good as brute force based "
                 "ranking, especially beyond the first layer.", f"{ICLR}, 'Experiments on Toy Datasets', opening")
_ONE_LAYER = C.Quote("Using the Brute Force ranking criteria, almost 60% of the neurons in the network can be pruned "
                     "away without any major loss in performance. [...] Perhaps a more important observation here is "
                     "that even with a more complex network, it is possible to remove up to 40% of the neurons with no "
                     "major loss in performance which is clearly illustrated by the brute force curve.",
                     f"{ICLR}, 'Pruning a 1-Layer Network' and 'Pruning A 2-Layer Network', Iterative Re-Ranking")

_BF_RULE = ("95% t interval over seeds of serial brute force's removable fraction (Algorithm II; mean over the "
            "group's setups) >= 40%")
_NEAR_RULE = (f"per setup, 95% t interval over seeds of the estimate's shortfall against serial brute force "
              f"(Algorithm II, fraction of the units): wholly below {NEAR:.0%} is close, wholly at or above is not; "
              "holds when every setup is on the claim's side, does not hold when most are on the other and none on "
              "the claim's")
_BETTER_RULE = ("per setup, 95% t interval over seeds of (second order - first order) removable fraction (Algorithm "
                "II) > 0; holds when every setup agrees, does not hold when most are wholly < 0 and none > 0")


def _spec(claim: str, quote: C.Quote, reports: str, rule: str, kind: str = "source") -> C.ClaimSpec:
    return C.ClaimSpec(SOURCE, claim, quote, reports, rule, kind)


# (group, claim kind, spec): "brute_force" decides on serial brute force's removable fraction, "close" / "far" on an
# estimate's shortfall against it (the estimate named in the spec's claim), "better" on second against first order
CLAIMS = (
    ("shapes", "brute_force", _spec("Brute force removes 40-70% of the neurons with little effect", _ABSTRACT_SERIAL,
                                    "40-70% of the neurons removable serially, no retraining", _BF_RULE)),
    ("shapes", "close:second_order", _spec("The second-order estimate comes very close to brute force", _TOY,
                                           "the second-order method exceptionally good, very close to brute force",
                                           _NEAR_RULE)),
    ("shapes", "better", _spec("The second-order estimate does better than the first-order one", _TOY,
                               "the first-order method performs poorly", _BETTER_RULE)),
    ("mnist", "brute_force", _spec("Brute force removes 40-70% of the neurons with little effect", _ONE_LAYER,
                                   "almost 60% (one hidden layer) and up to 40% (two) removable without major loss",
                                   _BF_RULE)),
    ("mnist", "far:second_order:deep", _spec(
        "The second-order estimate does not nearly as well as brute force beyond one hidden layer", _MNIST,
        "the second-order method not nearly as good as brute force, especially beyond the first layer",
        _NEAR_RULE + "; decided on the setups with more than one hidden layer")),
    ("mnist", "better", _spec("The second-order estimate does consistently better than the first-order one", _MNIST,
                              "the second-order criterion consistently better than the first-order one",
                              _BETTER_RULE)),
    ("arxiv", "brute_force", _spec("Brute force removes 40-70% of the neurons with little effect", _ABSTRACT_SERIAL,
                                   "40-70% of the neurons removable serially, no retraining", _BF_RULE)),
    ("arxiv", "far:second_order", _spec("The second-order estimate does not nearly as well as brute force",
                                        _ABSTRACT_METHOD, "the proposed (second-order) method not nearly as good as "
                                        "brute force", _NEAR_RULE)),
    ("arxiv", "better", _spec("The second-order estimate does better than the first-order one", _ABSTRACT_METHOD,
                              "the proposed (second-order) method works well compared to a first-order method",
                              _BETTER_RULE)),
    ("adam", "close:second_order", _spec("The second-order estimate comes very close to brute force", _TOY,
                                         "the second-order method exceptionally good, very close to brute force",
                                         _NEAR_RULE, "extension")),
    ("adam", "close:second_order_exact", _spec(
        "The second-order estimate with the exact second derivative comes very close to brute force", _TOY,
        "(the source's diagonal replaced by the exact second derivative, this project's extension)", _NEAR_RULE,
        "extension")),
)


def _setup_intervals(g: pd.DataFrame, estimator: str, column: str) -> dict[str, object]:
    """``{setup: t interval over seeds}`` of ``column`` for ``estimator`` under Algorithm II."""
    rows = g[(g.estimator == estimator) & (g.algorithm == "II")]
    return {s: mean_interval(v[column].dropna()) for s, v in rows.groupby("setup", sort=False)
            if v[column].notna().any()}


def _brute_force_row(spec: C.ClaimSpec, g: pd.DataFrame, context: dict) -> dict:
    bf = g[(g.estimator == "brute_force") & (g.algorithm == "II")]
    if bf.empty or bf["removable_fraction"].dropna().empty:
        return spec.not_measured("no brute-force run under Algorithm II", **context)
    per_seed = bf.groupby("seed")["removable_fraction"].mean()
    iv = mean_interval(per_seed)
    by_setup = bf.groupby("setup", sort=False)["removable_fraction"].mean()
    measured = (f"serial brute force removes {iv.estimate:.0%} of the hidden units (mean over "
                f"{C.plural(len(by_setup), 'setup')} and {C.plural(iv.n, 'seed')}; by setup: "
                + ", ".join(f"{s} {v:.0%}" for s, v in by_setup.items()) + ").")
    return spec.decided(measured, [side_of(iv, 0.4 - 1e-12)], intervals=[iv],
                        interval=f"removable fraction: {iv.text('{:.0%}')}", **context)


def _near_row(spec: C.ClaimSpec, g: pd.DataFrame, estimator: str, close: bool, deep_only: bool,
              context: dict) -> dict:
    """The estimate's shortfall against serial brute force, setup by setup: "close" claims hold when every setup's
    interval lies below :data:`NEAR`, "far" claims when every one lies at or above it."""
    setups = [s for s in dict.fromkeys(g["setup"])
              if not deep_only or len(SETUPS[s].config.model.hidden if s in SETUPS else (0, 0)) > 1]
    ivs = _setup_intervals(g[g.setup.isin(setups)], estimator, "shortfall_fraction")
    if not ivs:
        return spec.not_measured(f"no {estimator} run under Algorithm II with a serial brute-force reference"
                                 + (" on a setup with more than one hidden layer" if deep_only else ""), **context)
    sides = [side_of(iv, NEAR, holds_above=False) if close else side_of(iv, NEAR - 1e-12) for iv in ivs.values()]
    also = _setup_intervals(g, "first_order", "shortfall_fraction")
    measured = (f"{estimator.replace('_', ' ')} removes fewer units than serial brute force by "
                + "; ".join(f"{s} {iv.estimate:.0%}" for s, iv in ivs.items())
                + " of the units (Algorithm II, mean over seeds)"
                + ("; first order: " + "; ".join(f"{s} {iv.estimate:.0%}" for s, iv in also.items()) if also and
                   estimator != "first_order" else "") + ".")
    interval = "; ".join(f"{s}: {iv.text('{:+.0%}')}" for s, iv in ivs.items())
    return spec.decided(measured, sides, intervals=list(ivs.values()), threshold=NEAR, refute="majority",
                        interval=f"shortfall: {interval}", **context)


def _better_row(spec: C.ClaimSpec, g: pd.DataFrame, context: dict) -> dict:
    ii = g[g.algorithm == "II"].pivot_table(index=["setup", "seed"], columns="estimator",
                                            values="removable_fraction")
    if not {"first_order", "second_order"} <= set(ii.columns):
        return spec.not_measured("no first- and second-order runs under Algorithm II", **context)
    diff = (ii["second_order"] - ii["first_order"]).dropna()
    if diff.empty:
        return spec.not_measured("no first- and second-order runs of the same setup and seed", **context)
    ivs = {s: mean_interval(v) for s, v in diff.groupby(level="setup", sort=False)}
    means = ii.groupby(level="setup", sort=False)[["second_order", "first_order"]].mean()
    measured = ("removable under Algorithm II, second / first order: "
                + "; ".join(f"{s} {r.second_order:.0%} / {r.first_order:.0%}" for s, r in means.iterrows()) + ".")
    return spec.decided(measured, [side_of(iv, 0.0) for iv in ivs.values()], intervals=list(ivs.values()),
                        threshold=0.0, refute="majority",
                        interval="second - first order: " + "; ".join(f"{s}: {iv.text('{:+.0%}')}"
                                                                      for s, iv in ivs.items()), **context)


def claims_table(gaps: pd.DataFrame) -> pd.DataFrame:
    """The claims of source 001 (``prunekit.report.claims`` format), decided per group of setups (:data:`GROUPS`,
    :data:`CLAIMS`) on :func:`curve_gap`'s table (one row per setup, seed, estimator and algorithm), under Algorithm
    II (the source's Algorithm I is "intentionally naive", for comparison only). Each claim of a group present in
    the table gets one row, its interval Student's t over the training seeds:

    - brute force removes 40-70% of the neurons with little effect: serial brute force's removable fraction, mean
      over the group's setups, at least 40% (the interval's lower end; wholly below: does not hold);
    - an estimate comes very close to brute force (or does not nearly as well): setup by setup, its shortfall against
      serial brute force below :data:`NEAR` of the units (or at or above it); every setup on the claim's side holds,
      most on the other side (none on the claim's) does not hold, else cannot decide;
    - the second-order estimate does better than the first-order one: setup by setup, the difference of their
      removable fractions above 0, the same way.
    Groups of this project's extension (Adam-trained networks) are rows of kind "extension". A claim the table
    cannot decide is "not measured here", with the reason.
    """
    cols = ["setup", "seed", "estimator", "algorithm", "removable_fraction", "shortfall_fraction"]
    missing = C.missing_columns(gaps, cols)
    present = [] if missing else list(dict.fromkeys(gaps["setup"].map(group_of)))
    rows = []
    for group, how, spec in CLAIMS:
        if missing or gaps.empty:
            if group in ("shapes", "mnist", "arxiv"):
                rows.append(spec.labelled(GROUPS[group].label).not_measured(C.lacking(missing, "table")))
            continue
        if group not in present:
            continue
        g = gaps[gaps["setup"].map(group_of) == group]
        spec = spec.labelled(GROUPS[group].label)
        context = {"seeds": C.seed_list(g["seed"]),
                   "setup": f"{GROUPS[group].where}: " + ", ".join(dict.fromkeys(g["setup"]))
                   + "; SGD-trained (the optimizer is open in the source)" * (GROUPS[group].kind == "source")}
        if how == "brute_force":
            rows.append(_brute_force_row(spec, g, context))
        elif how == "better":
            rows.append(_better_row(spec, g, context))
        else:
            side, estimator, *deep = how.split(":")
            rows.append(_near_row(spec, g, estimator, side == "close", bool(deep), context))
    return C.claims_frame(rows)


# ----------------------------------------------------------------------------------------------------------------------
# Figures and the source's sentences per group
# ----------------------------------------------------------------------------------------------------------------------

def group_sentences(group: str) -> list[str]:
    """The source's sentences the claims of ``group`` rest on (distinct, in order), each with where it stands, as
    Markdown quotes: what a figure of that group is to be read against. ``group``: a key of :data:`GROUPS`."""
    choice("group", group, tuple(GROUPS))
    seen = dict.fromkeys((spec.quote.text, spec.quote.location) for g, _, spec in CLAIMS if g == group)
    return [f"> {text}\n>\n> — {location}" for text, location in seen]


def estimator_colors() -> dict:
    """One colour per estimator of ``ESTIMATORS``, the same in every figure of the notebook."""
    import seaborn as sns  # heavy to import: only where a figure is drawn

    return dict(zip(ESTIMATORS, sns.color_palette(n_colors=len(ESTIMATORS))))


def plot_curves(curves: pd.DataFrame, setups, value: str = "error"):
    """The source's figures for ``setups``: ``value`` ("error", on a log axis, or "accuracy") against the fraction of
    hidden units removed, one line per estimator, one row per setup, Algorithms I and II side by side; with several
    seeds, the mean and a band from the lowest to the highest seed (positive, so it can be drawn on a log axis).
    Returns the figure."""
    import seaborn as sns  # heavy to import: only where a figure is drawn

    choice("value", value, ("error", "accuracy"))
    data = curves[curves.setup.isin(list(setups))].dropna(subset=[value])
    g = sns.relplot(data=data, x="fraction_removed", y=value, hue="estimator", hue_order=list(ESTIMATORS),
                    palette=estimator_colors(),
                    row="setup", row_order=[s for s in setups if s in set(data.setup)], col="algorithm",
                    kind="line", errorbar=("pi", 100), height=2.6, aspect=1.5,
                    facet_kws={"sharey": "row" if value == "error" else True})
    if value == "error":
        g.set(yscale="log")
    g.set_axis_labels("fraction of hidden units removed", "mean training error (per sample)" if value == "error"
                      else "training accuracy")
    g.set_titles("{row_name} — Algorithm {col_name}")
    return g.figure


def plot_course(course: pd.DataFrame):
    """:func:`training_course` as two panels against the training epoch (log axis): the first hidden layer's rank
    agreement with the exact ΔE of the source's diagonal and of the exact second derivative, and the fraction of the
    units each estimate and serial brute force remove; one line style per setup. Returns the figure."""
    import matplotlib.pyplot as plt  # heavy to import: only where a figure is drawn
    import seaborn as sns

    long = course.melt(id_vars=["setup", "optimizer", "epoch"], var_name="measure")
    rank = long[long.measure.str.startswith("spearman_first_layer_")].assign(
        estimator=lambda d: d.measure.str.replace("spearman_first_layer_", "", regex=False))
    removed = long[long.measure.str.startswith("removable_")].assign(
        estimator=lambda d: d.measure.str.replace("removable_", "", regex=False))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    colors = estimator_colors()
    sns.lineplot(data=rank, x="epoch", y="value", hue="estimator", style="setup", marker="o", ax=axes[0],
                 palette=colors)
    axes[0].set(xscale="log", ylim=(-1.05, 1.05), xlabel="training epoch",
                ylabel="Spearman with the exact ΔE, first hidden layer")
    sns.lineplot(data=removed, x="epoch", y="value", hue="estimator", style="setup", marker="o", ax=axes[1],
                 palette=colors)
    axes[1].set(xscale="log", ylim=(-0.02, 1.02), xlabel="training epoch",
                ylabel="fraction of hidden units removable (Algorithm II)")
    fig.tight_layout()
    return fig
