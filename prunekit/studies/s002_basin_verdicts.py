"""Source 002's claims on the loss basin (notebook 04), each declared once (a ``prunekit.report.claims.ClaimSpec``)
and decided by one function: :func:`basin_claims` (the one-shot variant on this project's MLP) and
:func:`cycle_claims` (the source's iterative cycles and Table 1). The experiments that make their tables are in
``prunekit.studies.s002_basins``, which gives these functions too."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..core.checks import fraction, number, text
from ..pruning.cycles import CYCLE_METHODS
from ..report import claims as C
from ..report.intervals import mean_interval, side_of
from .s002_utility import SOURCE

__all__ = ["BARRIER_TOL", "QUOTE_BASIN", "QUOTE_CHANNEL", "QUOTE_TABLE1", "BASIN_ONESHOT", "BASIN_CYCLES",
           "CHANNEL_LEAVES", "BEATS_SMALL", "CHANNEL_COLLAPSES", "basin_claims", "cycle_claims"]

BARRIER_TOL = 0.05  # nats: a line whose loss never rises more than this above its chord stays in one basin
# The source's own sentences (what the claims below decide): its contributions, Sec. 3 and Table 1
QUOTE_BASIN = C.Quote("If a pretrained network is carefully pruned and retrained, then the pruned-and-retrained "
                      "network shares the same loss basin with the pretrained network.", "Sec. 1, contributions")
QUOTE_CHANNEL = C.Quote("weight pruning with retraining stays in the pretrained basin; aggressive channel pruning with "
                        "learning-rate rewinding can leave it",
                        "Sec. 3, the accuracy surface of the pretrained, pruned and retrained networks",
                        paraphrase=True)
QUOTE_TABLE1 = C.Quote("validation accuracy on CIFAR-10 after five cycles (%): weight pruning + fine-tuning 90.870, "
                       "+ rewinding 91.897, small network 89.290; channel pruning + fine-tuning 43.375, + rewinding "
                       "87.138, small network 88.020", "Table 1, its numbers", paraphrase=True)

# the claims (rules: templates of the split, the tolerance and the gaps, in nats and points)
BASIN_ONESHOT = C.ClaimSpec(SOURCE, "Weight pruning with retraining stays in the pretrained basin (one-shot, this "
                            "project's MLP variant)", QUOTE_BASIN,
                            "the pruned-and-retrained network shares the pretrained network's basin",
                            "height of the {split} loss above the chord <= {barrier_tol:g} nats for every distinct "
                            "run of the source's retraining methods (fine-tuning, learning-rate rewinding)",
                            kind="extension")
BASIN_CYCLES = C.ClaimSpec(SOURCE, "Weight pruning with retraining stays in the pretrained basin (iterative, conv "
                           "layers)", QUOTE_BASIN,
                           "the pruned-and-retrained ResNet20 stays in the pretrained basin after five weight-pruning "
                           "cycles",
                           "95% t interval over seeds of the {split} loss's height above the chord <= {barrier_tol:g} "
                           "nats for every weight-cycle method")
CHANNEL_LEAVES = C.ClaimSpec(SOURCE, "Aggressive channel pruning with rewinding can leave the pretrained basin, "
                             "weight pruning does not", QUOTE_CHANNEL,
                             "after five channel-pruning cycles with learning-rate rewinding the network can leave the "
                             "basin, where weight pruning stays",
                             "95% t intervals over seeds of the {split} loss's height above the chord: holds when the "
                             "channel + lr_rewind line's is wholly above {barrier_tol:g} nats and the weight + "
                             "lr_rewind line's wholly at or below it; does not hold (not reproduced) when the channel "
                             "line's is wholly at or below it; else cannot decide")
BEATS_SMALL = C.ClaimSpec(SOURCE, "Weight-pruned and retrained networks beat a small network of the same size trained "
                          "from scratch", QUOTE_TABLE1,
                          "CIFAR-10: 90.87% (fine-tuning) and 91.90% (rewinding) against 89.29% for the small network",
                          "95% t interval over seeds of (method - small) test accuracy > 0 for fine-tuning and for "
                          "rewinding; cannot decide when every network is within {ceiling_points:g} point of the "
                          "others and of the pretrained one")
CHANNEL_COLLAPSES = C.ClaimSpec(SOURCE, "Channel pruning with fine-tuning collapses", QUOTE_TABLE1,
                                "CIFAR-10: 43.38% with fine-tuning against 87.14% with rewinding",
                                "95% t interval over seeds of (rewinding - fine-tuning) test accuracy > "
                                "{collapse_points:g} points; cannot decide when both are within {ceiling_points:g} "
                                "point of each other and of the pretrained one")


def basin_claims(barriers: pd.DataFrame | None, barrier_tol: float = BARRIER_TOL, split: str = "train",
                 same_as: Mapping[str, str] | None = None, setup: str = "", seeds: str = "") -> pd.DataFrame:
    """Source 002's basin claim (:data:`BASIN_ONESHOT`, ``prunekit.report.claims`` format) from notebook 04's
    ``prunekit.measures.surface.barrier_table`` rows (one per method and split): a pruned-and-retrained network stays
    in the pretrained basin when the loss on the straight line between them never rises more than ``barrier_tol``
    nats above the chord, on ``split``. The verdict counts the source's "careful" retraining, fine-tuning and
    learning-rate rewinding; another method (weight rewinding) is reported beside, as this project's extension.
    ``same_as`` (``prunekit.pruning.retrain.distinct_methods``): methods that are another method's run, counted once
    and named with it. The barrier of one line is exact on its data: no interval."""
    number("barrier_tol", barrier_tol, low=0.0)
    text("split", split)
    spec = BASIN_ONESHOT.formatted(split=split, barrier_tol=barrier_tol)
    context = {"setup": setup or "this project's variant: one-shot global magnitude pruning of an MLP",
               "seeds": seeds}
    cols = ["method", "split", "loss_barrier_linear"]
    if barriers is None or C.missing_columns(barriers, cols) or barriers[barriers["split"] == split].empty:
        return C.claims_frame([spec.not_measured(f"no {split}-split loss barriers", **context)])
    same_as = dict(same_as or {})
    b = barriers[(barriers["split"] == split) & ~barriers["method"].isin(same_as)].set_index("method")
    b = b["loss_barrier_linear"]
    if b.index.duplicated().any() or not np.isfinite(b.to_numpy(dtype=float)).all():
        return C.claims_frame([spec.not_measured("more than one barrier per method, or one that is not a finite "
                                                 "number", **context)])
    also = {m: [o for o, first in same_as.items() if first == m] for m in b.index}
    sources = b[[m in CYCLE_METHODS or any(o in CYCLE_METHODS for o in also[m]) for m in b.index]]
    if sources.empty:
        return C.claims_frame([spec.not_measured("no barrier of fine-tuning or learning-rate rewinding", **context)])

    def part(m, v):
        return f"{m} {v:+.4f} nats" + (f" ({', '.join(also[m])}: the same run, the same learning rates from the same "
                                       "weights)" if also[m] else "")

    extra = [part(m, v) for m, v in b.items() if m not in sources.index]
    measured = (f"height above the chord: {', '.join(part(m, v) for m, v in sources.items())}; "
                f"{int((sources <= barrier_tol).sum())} of {C.plural(len(sources), 'distinct retraining run')} "
                f"{'stays' if len(sources) == 1 else 'stay'} in the basin."
                + (f" This project's extension, not counted: {', '.join(extra)}." if extra else ""))
    return C.claims_frame([spec.row(measured, bool((sources <= barrier_tol).all()), **context,
                                    interval="exact: one line per retrained network, on its data")])


def _stays_row(spec: C.ClaimSpec, b: pd.DataFrame | None, b_why: str, barrier_tol: float, context: dict) -> dict:
    """Every weight-cycle method's line rises at most ``barrier_tol`` above its chord (t intervals over seeds)."""
    weight_cycles = [("weight", m) for m in CYCLE_METHODS]
    wide, why = _per_seed(b, weight_cycles, b_why, value="height")
    if wide is None:
        return spec.not_measured(why, **context)
    ivs = {k: mean_interval(wide[k]) for k in weight_cycles}
    measured = (f"height above the chord (mean over {C.plural(len(wide), 'seed')}): "
                + ", ".join(f"{m} {iv.estimate:+.4f} nats" for (_, m), iv in ivs.items()) + ".")
    return spec.decided(measured, [side_of(iv, barrier_tol, holds_above=False) for iv in ivs.values()],
                        intervals=list(ivs.values()), threshold=barrier_tol,
                        interval="; ".join(f"weight {m}: {iv.text('{:+.4f}', unit=' nats')}"
                                           for (_, m), iv in ivs.items()), **context)


def _leaves_row(spec: C.ClaimSpec, b: pd.DataFrame | None, b_why: str, barrier_tol: float, context: dict) -> dict:
    """The contrast: the channel + lr_rewind line rises more than ``barrier_tol`` above its chord while the weight +
    lr_rewind line does not (holds); the channel line stays at or below it (does not hold: not reproduced here)."""
    channel, weight = ("channel", "lr_rewind"), ("weight", "lr_rewind")
    wide, why = _per_seed(b, [channel], b_why, value="height")
    if wide is None:
        return spec.not_measured(why, **context)
    iv = mean_interval(wide[channel])
    stays, _ = _per_seed(b, [weight], b_why, value="height")
    w_iv = mean_interval(stays[weight]) if stays is not None else None
    side, w_side = side_of(iv, barrier_tol), side_of(w_iv, barrier_tol) if w_iv is not None else None
    beside = (f"; weight pruning with rewinding: {w_iv.estimate:+.4f} nats" if w_iv is not None
              else "; no weight pruning with rewinding line to contrast")
    measured = ("Not reproduced here: " if side is False else "") + (
        f"height above the chord of channel pruning with rewinding: {iv.estimate:+.4f} nats (mean over "
        f"{C.plural(len(wide), 'seed')}){beside}.")
    interval = f"channel lr_rewind: {iv.text('{:+.4f}', unit=' nats')}" + (
        f"; weight lr_rewind: {w_iv.text('{:+.4f}', unit=' nats')}" if w_iv is not None else "")
    if side is True and w_side is not False:  # the channel line leaves: the contrast needs the weight line to stay
        why = ("weight pruning with rewinding leaves too: the contrast the source draws is not there"
               if w_side is True else "no weight pruning with rewinding line to contrast" if w_iv is None
               else C.undecided_reason([w_iv], barrier_tol))
        return spec.cannot_decide(measured, why, interval=interval, **context)
    return spec.decided(measured, [side], intervals=[iv], threshold=barrier_tol, interval=interval, **context)


def _accuracy_row(spec: C.ClaimSpec, acc: pd.DataFrame | None, acc_why: str, compared: list, pairs: list,
                  threshold: float, ceiling_gap: float, context: dict) -> dict:
    """The paired differences of test accuracy of ``pairs`` above ``threshold`` (t intervals over seeds); "cannot
    decide at this scale" when every network ``compared`` is within ``ceiling_gap`` of the others and of the
    pretrained one."""
    wide, why = _per_seed(acc, compared, acc_why)
    if wide is None:
        return spec.not_measured(why, **context)
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
        return spec.cannot_decide(measured, f"at this scale every network compared is within {100 * ceiling_gap:g} "
                                  f"point of the others and of the pretrained network ({100 * top:.1f}%): this setup "
                                  "leaves no room for the difference the source reports", interval=interval, **context)
    return spec.decided(measured, [side_of(iv, threshold) for iv in intervals.values()],
                        intervals=list(intervals.values()), threshold=threshold, interval=interval, **context)


def cycle_claims(table: pd.DataFrame | None, barriers: pd.DataFrame | None, *, barrier_tol: float = BARRIER_TOL,
                 split: str = "train", collapse_gap: float = 0.10, ceiling_gap: float = 0.01,
                 setup: str = "") -> pd.DataFrame:
    """Source 002's claims on iterative pruning (``prunekit.report.claims`` format), from :func:`cycles_table` (one row
    per seed, unit and network; ``unit="pretrained"`` rows give the pretrained accuracy) and the barrier rows of the
    line from each seed's pretrained network to each retrained one (:func:`cycle_lines`: columns ``seed``, ``unit``,
    ``method``, ``split``, ``loss_barrier_linear``; a table without ``seed`` is one seed), every interval Student's
    t over the seeds:

    - weight pruning with retraining stays in the pretrained basin (:data:`BASIN_CYCLES`): for every weight-cycle
      method the ``split`` loss rises at most ``barrier_tol`` nats above the chord (the interval wholly below it;
      wholly above for one method: does not hold);
    - aggressive channel pruning with rewinding can leave it, where weight pruning stays (:data:`CHANNEL_LEAVES`, the
      contrast the source reports): the channel + ``lr_rewind`` line rises more than ``barrier_tol`` above its chord
      and the weight + ``lr_rewind`` line does not (holds); the channel line wholly at or below it: not reproduced
      (does not hold); a weight line that leaves too, or straddles: cannot decide;
    - weight-pruned and retrained networks beat the small network trained from scratch (:data:`BEATS_SMALL`): for
      fine-tuning and for rewinding, the interval of the paired difference (method - small) of test accuracy is
      above 0 (holds), below 0 for either (does not hold), else cannot decide;
    - channel pruning with fine-tuning collapses (:data:`CHANNEL_COLLAPSES`): the interval of (rewinding -
      fine-tuning) test accuracy is at least ``collapse_gap`` (holds) or wholly below it (does not hold).
    The accuracy claims are "cannot decide at this scale" when every network compared is within ``ceiling_gap`` of
    the others and of the pretrained network: such a setup cannot show the effect, either way. The claims are the
    source's, on its CIFAR-10 setup: a run on a substitute setup gets the substitute verdicts
    (``prunekit.studies.s002_utility.as_decided_on``), whichever way it goes.
    """
    number("barrier_tol", barrier_tol, low=0.0)
    text("split", split)
    fraction("collapse_gap", collapse_gap)
    fraction("ceiling_gap", ceiling_gap)
    values = dict(split=split, barrier_tol=barrier_tol, ceiling_points=100 * ceiling_gap,
                  collapse_points=100 * collapse_gap)
    stays, leaves, beats, collapses = (spec.formatted(**values) for spec in (BASIN_CYCLES, CHANNEL_LEAVES, BEATS_SMALL,
                                                                            CHANNEL_COLLAPSES))
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
    lines = {"setup": setup, "seeds": C.seed_list(b["seed"]) if b is not None and len(b) else ""}
    networks = {"setup": setup, "seeds": C.seed_list(acc["seed"]) if acc is not None and len(acc) else ""}
    weight_cycles = [("weight", m) for m in CYCLE_METHODS]
    rewind, finetune = ("channel", "lr_rewind"), ("channel", "finetune")
    return C.claims_frame([
        _stays_row(stays, b, b_why, barrier_tol, lines),
        _leaves_row(leaves, b, b_why, barrier_tol, lines),
        _accuracy_row(beats, acc, acc_why, [*weight_cycles, ("weight", "small")],
                      [(k, ("weight", "small")) for k in weight_cycles], 0.0, ceiling_gap, networks),
        _accuracy_row(collapses, acc, acc_why, [rewind, finetune], [(rewind, finetune)], collapse_gap, ceiling_gap,
                      networks)])


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
