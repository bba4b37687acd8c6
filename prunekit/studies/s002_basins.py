"""Source 002, "An Empirical Study of a Pruning Mechanism" (ICLR 2021 submission, OpenReview doeyA2PBjdy): notebook
04's question, does a pruned and retrained network stay in the pretrained network's loss basin?

The one-shot variant's claim (:func:`basin_claims`, on the pretrained network of ``prunekit.studies.s002_utility.pretrain_config``
shared with notebook 05), and the source's own experiment: iterative pruning cycles of a conv net with batch norm
(``prunekit.pruning.cycles``) with their presets (:data:`CYCLE_PROFILES`, :func:`cycles_config`), the analogue of the
source's Table 1 (:func:`cycles_table`) and their claims (:func:`cycle_claims`), as ``prunekit.report.claims`` tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from torch import nn

from ..report import claims as C
from ..report.intervals import mean_interval, side_of
from ..core.checks import choice, count, distinct, fraction, number, sequence, text
from ..core.device import device_name
from ..core.store import Run
from ..core.config import TrainConfig, check_profile
from ..pruning.cycles import CYCLE_METHODS, IterativePruning, conv_parameters
from ..core.data import Dataset
from ..pruning.masks import sparsity
from .s002_utility import SOURCE, pretrain_config
from ..core.train import evaluate

__all__ = ["BARRIER_TOL", "basin_claims", "Cycles", "CYCLE_PROFILES", "cycles_preset", "SOURCE_TABLE1",
           "cycles_config", "CyclesExperiment", "cycles_experiment", "cycles_table", "cycle_lines", "cycle_claims"]


BARRIER_TOL = 0.05  # nats: a line whose loss never rises more than this above its chord stays in one basin
# The source's own sentences (what the claims below decide): its contributions, Sec. 3 and Table 1
QUOTE_BASIN = C.Quote("If a pretrained network is carefully pruned and retrained, then the pruned-and-retrained "
                      "network shares the same loss basin with the pretrained network.", "Sec. 1, contributions")
QUOTE_CHANNEL = C.Quote("after five cycles of aggressive channel pruning with learning-rate rewinding the retrained "
                        "network leaves the pretrained network's basin, where weight pruning stays in it",
                        "Sec. 3, the accuracy surface of the pretrained, pruned and retrained networks",
                        paraphrase=True)
QUOTE_TABLE1 = C.Quote("validation accuracy on CIFAR-10 after five cycles (%): weight pruning + fine-tuning 90.870, "
                       "+ rewinding 91.897, small network 89.290; channel pruning + fine-tuning 43.375, + rewinding "
                       "87.138, small network 88.020", "Table 1, its numbers", paraphrase=True)


def basin_claims(barriers: pd.DataFrame | None, barrier_tol: float = BARRIER_TOL, split: str = "train",
                 same_as: Mapping[str, str] | None = None, setup: str = "", seeds: str = "") -> pd.DataFrame:
    """Source 002's basin claim (``prunekit.report.claims`` format) from notebook 04's ``prunekit.measures.surface.barrier_table``
    rows (one per method and split): a pruned-and-retrained network stays in the pretrained basin when the loss on
    the straight line between them never rises more than ``barrier_tol`` nats above the chord, on ``split``. The
    verdict counts the source's "careful" retraining, fine-tuning and learning-rate rewinding; another method (weight
    rewinding) is reported beside, as this project's extension. ``same_as`` (``prunekit.pruning.retrain.distinct_methods``):
    methods that are another method's run, counted once and named with it. The barrier of one line is exact on its
    data: no interval."""
    number("barrier_tol", barrier_tol, low=0.0)
    text("split", split)
    name = "Weight pruning with retraining stays in the pretrained basin (one-shot, this project's MLP variant)"
    reports = "the pruned-and-retrained network shares the pretrained network's basin"
    rule = (f"height of the {split} loss above the chord <= {barrier_tol:g} nats for every distinct run of the "
            "source's retraining methods (fine-tuning, learning-rate rewinding)")
    context = {"quote": QUOTE_BASIN.text, "quote_where": QUOTE_BASIN.location, "kind": "extension",
               "setup": setup or "this project's variant: one-shot global magnitude pruning of an MLP", "seeds": seeds}
    cols = ["method", "split", "loss_barrier_linear"]
    if barriers is None or C.missing_columns(barriers, cols) or barriers[barriers["split"] == split].empty:
        return C.claims_frame([C.not_measured(SOURCE, name, reports, f"no {split}-split loss barriers", rule,
                                              **context)])
    same_as = dict(same_as or {})
    b = barriers[(barriers["split"] == split) & ~barriers["method"].isin(same_as)].set_index("method")
    b = b["loss_barrier_linear"]
    if b.index.duplicated().any() or not np.isfinite(b.to_numpy(dtype=float)).all():
        return C.claims_frame([C.not_measured(SOURCE, name, reports, "more than one barrier per method, or one that "
                                              "is not a finite number", rule, **context)])
    also = {m: [o for o, first in same_as.items() if first == m] for m in b.index}
    sources = b[[m in CYCLE_METHODS or any(o in CYCLE_METHODS for o in also[m]) for m in b.index]]
    if sources.empty:
        return C.claims_frame([C.not_measured(SOURCE, name, reports, "no barrier of fine-tuning or learning-rate "
                                              "rewinding", rule, **context)])

    def part(m, v):
        return f"{m} {v:+.4f} nats" + (f" ({', '.join(also[m])}: the same run, the same learning rates from the same "
                                       "weights)" if also[m] else "")

    extra = [part(m, v) for m, v in b.items() if m not in sources.index]
    measured = (f"height above the chord: {', '.join(part(m, v) for m, v in sources.items())}; "
                f"{int((sources <= barrier_tol).sum())} of {C.plural(len(sources), 'distinct retraining run')} "
                f"{'stays' if len(sources) == 1 else 'stay'} in the basin."
                + (f" This project's extension, not counted: {', '.join(extra)}." if extra else ""))
    return C.claims_frame([C.claim(SOURCE, name, reports, measured, bool((sources <= barrier_tol).all()), rule,
                                   interval="exact: one line per retrained network, on its data", **context)])


# Section 3's iterative pruning cycles (notebook 04), on the source's network (``prunekit.studies.s002_utility.pretrain_config``
# with network="resnet20": ResNet20 with batch norm and the source's recipe, the same pretrained model as notebook 05).
# Every cycle is retrained for the pretraining's T epochs, as the source retrains 200 of 200 (so learning-rate
# rewinding replays the whole schedule from lr 0.1). seeds: Table 1's networks are trained for each (its accuracy
# claims compare networks within a few points); the plane and the line are drawn for the first; plane_subset:
# training samples the plane and the line are measured on (None: all); grid: points per axis of each plane
@dataclass(frozen=True)
class Cycles:
    """Notebook 04's pruning cycles for one profile: ``cycles``, Table 1's ``seeds``, the training samples the plane
    and the line are measured on (``plane_subset``; None: all) and the ``grid`` points per axis of each plane."""

    cycles: int
    seeds: tuple[int, ...]
    plane_subset: int | None
    grid: int


CYCLE_PROFILES = {
    "quick": Cycles(2, (0,), None, 7),
    "paper": Cycles(5, (0, 1, 2), 2_000, 9),
    "full": Cycles(5, (0, 1, 2), 10_000, 21),
}


def cycles_preset(profile: str) -> Cycles:
    """The :class:`Cycles` preset of ``profile``."""
    return CYCLE_PROFILES[check_profile(profile, CYCLE_PROFILES)]

# Table 1 of the source: validation accuracy (%) on CIFAR-10 after five cycles, and of the small network of each kind
SOURCE_TABLE1 = {("weight", "finetune"): 90.870, ("weight", "lr_rewind"): 91.897, ("weight", "small"): 89.290,
                 ("channel", "finetune"): 43.375, ("channel", "lr_rewind"): 87.138, ("channel", "small"): 88.020}


def cycles_config(profile: str, seed: int = 0, dataset: str | None = None) -> TrainConfig:
    """The pretrained network of notebook 04's pruning cycles for ``profile``: the source's ResNet20 with its recipe,
    ``prunekit.studies.s002_utility.pretrain_config(profile, seed, network="resnet20", dataset=dataset)`` (notebook 05's too)."""
    check_profile(profile, CYCLE_PROFILES)
    return pretrain_config(profile, seed, network="resnet20", dataset=dataset)


@dataclass
class CyclesExperiment:
    """Notebook 04's iterative pruning for every seed: ``pretrained[seed]`` (the cached run), ``runs[seed][(unit,
    method)]`` (``prunekit.pruning.cycles.IterativePruning``), ``small[seed][unit]`` (Table 1's small network), ``table``
    (:func:`cycles_table` of every seed) and ``cycles`` (every run's per-cycle rows, with ``seed``)."""

    config: TrainConfig  # the first seed's pretraining config
    pretrained: dict[int, Run]
    runs: dict[int, dict[tuple[str, str], IterativePruning]]
    small: dict[int, dict[str, nn.Module]]
    table: pd.DataFrame
    cycles: pd.DataFrame


def cycles_experiment(profile: str, seeds: Sequence[int] | None = None, units: Sequence[str] = ("weight", "channel"),
                      methods: Sequence[str] = CYCLE_METHODS, cycles: int | None = None, dataset: str | None = None,
                      device: str = "cpu", quiet: bool = True) -> CyclesExperiment:
    """The source's Section 3 for each of ``seeds`` (None: the profile's): the pretrained ResNet20
    (:func:`cycles_config`), ``cycles`` cycles (None: the profile's) of each unit x method, each retrained for the
    pretraining's T epochs, through the result cache (a rerun loads them; an interrupted run resumes), and the small
    network of each unit trained from scratch for as many epochs in all (``prunekit.pruning.cycles.small_config``, sized by
    the last method's pruned network)."""
    from ..core.many import train_or_load_many  # looked up at each call: tests replace it with a stand-in
    from ..pruning.cycles import check_plan, iterative_pruning, small_config  # likewise

    settings = cycles_preset(profile)
    seeds = distinct("seeds", sequence("seeds", settings.seeds if seeds is None else seeds,
                                       item=lambda n, v: count(n, v, low=0)))
    check_plan(units, methods, cycles)
    device = device_name(device)
    cycles = int(cycles or settings.cycles)
    cfgs = {seed: cycles_config(profile, seed, dataset=dataset).replace(device=device) for seed in seeds}
    # the seeds' networks trained together (bitwise as one by one), and so, after the cycles, the small ones
    pretrained = dict(zip(seeds, train_or_load_many(list(cfgs.values()), quiet=quiet)))
    runs, small, tables, rows, datasets = {}, {}, [], [], {}
    for seed in seeds:
        run, cfg = pretrained[seed], cfgs[seed]
        ds = datasets[seed] = run.dataset()
        runs[seed] = {(u, m): iterative_pruning(run.model, ds, cfg, unit=u, method=m, cycles=cycles,
                                                epochs=cfg.epochs, cache=True, quiet=quiet)
                      for u in units for m in methods}
    small_cfgs = {(seed, u): small_config(cfgs[seed], pretrained[seed].model, runs[seed][u, methods[-1]])
                  for seed in seeds for u in units}
    small_runs = dict(zip(small_cfgs, train_or_load_many(list(small_cfgs.values()), quiet=quiet)))
    for seed in seeds:
        run, cfg, ds = pretrained[seed], cfgs[seed], datasets[seed]
        small[seed] = {u: small_runs[seed, u].model for u in units}
        tables.append(cycles_table(runs[seed], small[seed], ds, cfg.loss, pretrained=run.model, seed=seed))
        rows += [r.table.assign(seed=seed) for r in runs[seed].values()]
    first = cycles_config(profile, seeds[0], dataset=dataset).replace(device=device)
    return CyclesExperiment(first, pretrained, runs, small, pd.concat(tables, ignore_index=True),
                            pd.concat(rows, ignore_index=True))


def cycles_table(results: Mapping[tuple[str, str], IterativePruning], small: Mapping[str, nn.Module],
                 ds: Dataset, loss: str = "cross_entropy", pretrained: nn.Module | None = None,
                 seed: int = 0) -> pd.DataFrame:
    """The analogue of the source's Table 1 for one seed: one row per network, ``seed``, ``unit`` ("weight" /
    "channel"; "pretrained" for the ``pretrained`` network when given), ``network`` (the retraining method, or
    "small": trained from scratch with as many weights), ``conv_density`` (share of conv weights in use),
    ``test_accuracy`` and ``train_accuracy`` of this run, and ``source_cifar10_accuracy`` (%)."""
    choice("loss", loss, ("cross_entropy", "sse"))
    seed = count("seed", seed, low=0)
    rows = []
    if pretrained is not None:
        rows.append({"unit": "pretrained", "network": "pretrained", "conv_density": 1.0,
                     "test_accuracy": evaluate(pretrained, ds.test, loss)[1],
                     "train_accuracy": evaluate(pretrained, ds.train, loss)[1]})
    for (unit, method), res in results.items():
        last = res.table.iloc[-1]
        rows.append({"unit": unit, "network": method, "conv_density": float(last["conv_density"]),
                     "test_accuracy": float(last["retrained_test_accuracy"]),
                     "train_accuracy": float(last["retrained_train_accuracy"])})
    for unit, model in small.items():
        rows.append({"unit": unit, "network": "small", "conv_density": 1.0 - sparsity(conv_parameters(model)),
                     "test_accuracy": evaluate(model, ds.test, loss)[1],
                     "train_accuracy": evaluate(model, ds.train, loss)[1]})
    out = pd.DataFrame(rows)
    out.insert(0, "seed", seed)
    out["source_cifar10_accuracy"] = [SOURCE_TABLE1.get((u, n), np.nan) for u, n in zip(out["unit"], out["network"])]
    return out


def cycle_lines(experiment: "CyclesExperiment", subset: int | None, n: int = 21, seed: int = 0) -> pd.DataFrame:
    """The straight line from each seed's pretrained network to each of its retrained networks (``experiment.runs``),
    on ``subset`` training samples of that seed's data (None: all; drawn with ``seed``), at ``n`` points (at least
    2): one ``prunekit.measures.surface.barrier_table`` row per (seed, unit, method, split), with those columns."""
    from ..core.data import random_subset
    from ..measures.surface import barrier_table, flatten, linear_path

    if subset is not None:
        count("subset", subset)
    count("n", n, low=2)
    count("seed", seed, low=0)
    rows = []
    for s, run in experiment.pretrained.items():
        splits = {"train": random_subset(run.dataset().train, subset, seed=seed)}
        start = flatten(run.model)
        for (unit, method), r in experiment.runs[s].items():
            line = linear_path(run.model, start, flatten(r.retrained), splits, n=n, loss=run.config.loss)
            rows.append(barrier_table(line).assign(seed=s, unit=unit, method=method))
    return pd.concat(rows, ignore_index=True)


def cycle_claims(table: pd.DataFrame | None, barriers: pd.DataFrame | None, *, barrier_tol: float = BARRIER_TOL,
                 split: str = "train", collapse_gap: float = 0.10, ceiling_gap: float = 0.01,
                 setup: str = "") -> pd.DataFrame:
    """Source 002's claims on iterative pruning (``prunekit.report.claims`` format), from :func:`cycles_table` (one row per
    seed, unit and network; ``unit="pretrained"`` rows give the pretrained accuracy) and the barrier rows of the line
    from each seed's pretrained network to each retrained one (:func:`cycle_lines`: columns ``seed``, ``unit``,
    ``method``, ``split``, ``loss_barrier_linear``; a table without ``seed`` is one seed), every interval Student's
    t over the seeds:

    - weight pruning with retraining stays in the pretrained basin: for every weight-cycle method the ``split`` loss
      rises at most ``barrier_tol`` nats above the chord (the interval wholly below it; wholly above for one method:
      does not hold);
    - aggressive channel pruning with rewinding leaves it, where weight pruning stays (the contrast the source
      reports): the channel + ``lr_rewind`` line rises more than ``barrier_tol`` above its chord (holds); wholly at
      or below it, the contrast is not reproduced (does not hold), the weight + ``lr_rewind`` line's height printed
      beside;
    - weight-pruned and retrained networks beat the small network trained from scratch: for fine-tuning and for
      rewinding, the interval of the paired difference (method - small) of test accuracy is above 0 (holds), below 0
      for either (does not hold), else cannot decide;
    - channel pruning with fine-tuning collapses: the interval of (rewinding - fine-tuning) test accuracy is at least
      ``collapse_gap`` (holds) or wholly below it (does not hold).
    The accuracy claims are "cannot decide at this scale" when every network compared is within ``ceiling_gap`` of
    the others and of the pretrained network: such a setup cannot show the effect, either way. The claims are the
    source's, on its CIFAR-10 setup: a run on a substitute setup gets the substitute verdicts
    (``prunekit.studies.s002_utility.as_decided_on``), whichever way it goes.
    """

    number("barrier_tol", barrier_tol, low=0.0)
    text("split", split)
    fraction("collapse_gap", collapse_gap)
    fraction("ceiling_gap", ceiling_gap)
    names = ("Weight pruning with retraining stays in the pretrained basin (iterative, conv layers)",
             "Aggressive channel pruning with rewinding leaves the pretrained basin, weight pruning does not",
             "Weight-pruned and retrained networks beat a small network of the same size trained from scratch",
             "Channel pruning with fine-tuning collapses")
    reports = ("the pruned-and-retrained ResNet20 stays in the pretrained basin after five weight-pruning cycles",
               "after five channel-pruning cycles with learning-rate rewinding the network leaves the basin",
               "CIFAR-10: 90.87% (fine-tuning) and 91.90% (rewinding) against 89.29% for the small network",
               "CIFAR-10: 43.38% with fine-tuning against 87.14% with rewinding")
    quotes = (QUOTE_BASIN, QUOTE_CHANNEL, QUOTE_TABLE1, QUOTE_TABLE1)
    rules = (f"95% t interval over seeds of the {split} loss's height above the chord <= {barrier_tol:g} nats for "
             "every weight-cycle method",
             f"95% t interval over seeds of the {split} loss's height above the chord of the channel + lr_rewind line: "
             f"wholly above {barrier_tol:g} nats holds, wholly at or below does not",
             "95% t interval over seeds of (method - small) test accuracy > 0 for fine-tuning and for rewinding; "
             f"cannot decide when every network is within {100 * ceiling_gap:g} point of the others and of the "
             "pretrained one",
             f"95% t interval over seeds of (rewinding - fine-tuning) test accuracy > {100 * collapse_gap:g} points; "
             f"cannot decide when both are within {100 * ceiling_gap:g} point of each other and of the pretrained one")
    cols = ["unit", "method", "split", "loss_barrier_linear"]
    b, b_why = None, f"no {split}-split barriers (a barrier table with columns {', '.join(cols)})"
    if barriers is not None and not C.missing_columns(barriers, cols):
        b = barriers[barriers["split"] == split]
        b = (b if "seed" in b.columns else b.assign(seed=0)).rename(columns={"method": "network",
                                                                             "loss_barrier_linear": "height"})
    acc_cols = ["unit", "network", "test_accuracy"]
    acc, acc_why = None, f"no cycles table (columns {', '.join(acc_cols)})"
    if table is not None and not C.missing_columns(table, acc_cols):
        acc = table if "seed" in table.columns else table.assign(seed=0)
    seeds = C.seed_list(acc["seed"]) if acc is not None and len(acc) else ""
    line_seeds = C.seed_list(b["seed"]) if b is not None and len(b) else ""
    context = [dict(quote=q.text, quote_where=q.location, setup=setup, seeds=line_seeds if i < 2 else seeds)
               for i, q in enumerate(quotes)]
    weight_cycles = [("weight", m) for m in CYCLE_METHODS]
    rows = []
    wide, why = _per_seed(b, weight_cycles, b_why, value="height")
    if wide is None:
        rows.append(C.not_measured(SOURCE, names[0], reports[0], why, rules[0], **context[0]))
    else:
        ivs = {k: mean_interval(wide[k]) for k in weight_cycles}
        measured = (f"height above the chord (mean over {C.plural(len(wide), 'seed')}): "
                    + ", ".join(f"{m} {iv.estimate:+.4f} nats" for (_, m), iv in ivs.items()) + ".")
        rows.append(C.decided(SOURCE, names[0], reports[0], measured,
                              [side_of(iv, barrier_tol, holds_above=False) for iv in ivs.values()], rules[0],
                              intervals=list(ivs.values()), threshold=barrier_tol,
                              interval="; ".join(f"weight {m}: {iv.text('{:+.4f}', unit=' nats')}"
                                                 for (_, m), iv in ivs.items()), **context[0]))
    key = ("channel", "lr_rewind")
    wide, why = _per_seed(b, [key], b_why, value="height")
    if wide is None:
        rows.append(C.not_measured(SOURCE, names[1], reports[1], why, rules[1], **context[1]))
    else:
        iv = mean_interval(wide[key])
        weight, _ = _per_seed(b, [("weight", "lr_rewind")], b_why, value="height")
        beside = (f"; weight pruning with rewinding: {weight[('weight', 'lr_rewind')].mean():+.4f} nats"
                  if weight is not None else "")
        side = side_of(iv, barrier_tol)
        measured = ("Not reproduced here: " if side is False else "") + (
            f"height above the chord of channel pruning with rewinding: {iv.estimate:+.4f} nats (mean over "
            f"{C.plural(len(wide), 'seed')}){beside}.")
        rows.append(C.decided(SOURCE, names[1], reports[1], measured, [side], rules[1], intervals=[iv],
                              threshold=barrier_tol, interval=f"channel lr_rewind: {iv.text('{:+.4f}', unit=' nats')}",
                              **context[1]))
    for i, compared, pairs, threshold in (
            (2, [*weight_cycles, ("weight", "small")], [(k, ("weight", "small")) for k in weight_cycles], 0.0),
            (3, [("channel", "lr_rewind"), ("channel", "finetune")],
             [(("channel", "lr_rewind"), ("channel", "finetune"))], collapse_gap)):
        wide, why = _per_seed(acc, compared, acc_why)
        if wide is None:
            rows.append(C.not_measured(SOURCE, names[i], reports[i], why, rules[i], **context[i]))
            continue
        means = wide.mean()
        measured = (", ".join(f"{_label(k)} {means[k]:.2%}" for k in compared) +
                    f" (test accuracy, mean over {C.plural(len(wide), 'seed')}")
        ceiling = _pretrained_mean(acc)
        measured += f"; pretrained {ceiling:.2%})." if ceiling is not None else ")."
        intervals = {(a, c): mean_interval(wide[a] - wide[c], what="t over seeds") for a, c in pairs}
        interval = "; ".join(f"{_label(a)} - {_label(c)}: {iv.text('{:+.2f}', 100, ' points')}"
                             for (a, c), iv in intervals.items())
        top = ceiling if ceiling is not None else float(means.max())
        if float(means.max() - means.min()) <= ceiling_gap and float(means.min()) >= top - ceiling_gap:
            rows.append(C.cannot_decide(SOURCE, names[i], reports[i], measured, f"at this scale every network "
                                        f"compared is within {100 * ceiling_gap:g} point of the others and of the "
                                        f"pretrained network ({100 * top:.1f}%): this setup leaves no room for the "
                                        "difference the source reports", rules[i], interval=interval, **context[i]))
            continue
        rows.append(C.decided(SOURCE, names[i], reports[i], measured,
                              [side_of(iv, threshold) for iv in intervals.values()], rules[i],
                              intervals=list(intervals.values()), threshold=threshold, interval=interval,
                              **context[i]))
    return C.claims_frame(rows)


def _label(key: tuple[str, str]) -> str:
    unit, network = key
    return f"{unit} {network}" if network != "small" else f"{unit} small"


def _pretrained_mean(acc: pd.DataFrame | None) -> float | None:
    """The pretrained network's mean test accuracy over seeds (``unit == "pretrained"`` rows), if the table has it."""
    if acc is None:
        return None
    p = pd.to_numeric(acc.loc[acc["unit"] == "pretrained", "test_accuracy"], errors="coerce").dropna()
    return float(p.mean()) if len(p) else None


def _per_seed(acc: pd.DataFrame | None, keys: list[tuple[str, str]], why_none: str, value: str = "test_accuracy"):
    """``(seeds x keys table of value, "")`` when every seed has exactly one finite ``value`` for each (unit, network)
    key (a seed that lacks one is left out); else ``(None, why)``."""
    if acc is None:
        return None, why_none
    t = acc.loc[pd.Series([p in keys for p in zip(acc["unit"], acc["network"])], index=acc.index, dtype=bool)]
    present = set(zip(t["unit"], t["network"]))
    for key in keys:
        label = f"{key[0]} cycles with {key[1]}" if key[1] != "small" else f"the small network of {key[0]} cycles"
        if key not in present:
            return None, f"no rows for {label}"
    if t.duplicated(["seed", "unit", "network"]).any():
        return None, "more than one row per seed, unit and network"
    wide = t.pivot_table(index="seed", columns=["unit", "network"], values=value, aggfunc="first", dropna=False)
    wide = wide.apply(pd.to_numeric, errors="coerce").reindex(columns=pd.MultiIndex.from_tuples(keys)).dropna()
    if wide.empty:
        return None, f"no seed with a finite {value.replace('_', ' ')} for every network compared"
    return wide, ""
