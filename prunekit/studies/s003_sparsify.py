"""Source 003, "Sparsifying Neural Networks" (a blog post answering the FOR.ai pruning challenge), notebook 02: the
study's :class:`Preset` (the challenge net and the networks to train), the plateau of a pruning curve, when pruning
saves time, and the source's claims (:data:`CLAIMS`) checked against them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from ..core.checks import choice, distinct, fraction, percentage, sequence, text
from ..core.config import DataConfig, ModelConfig, TrainConfig, check_profile
from ..core.data import available_datasets
from ..report import claims as C
from ..report.catalog import source_of
from ..report.intervals import mean_interval, side_of
from .protocol import StudyPreset

__all__ = ["SOURCE", "TOLERANCE", "Preset", "PRESETS", "preset", "SETUPS", "challenge_config", "SOURCE_PLATEAU",
           "plateau_summary", "plateau_report", "plateau_ends", "global_unit_note", "speed_summary", "QUOTE",
           "QUOTE_SPEED", "CLAIMS", "claims_table", "speed_claims", "K_GRID"]

TOLERANCE = 0.01  # accuracy "holds" while it stays within 1 point of the dense net's


SETUPS = ("prunekit", "blog")  # prunekit's inputs (standardised) or the blog's own code's (raw 0-255 pixels)
# k (%): the source's grid {0, 25, 50, 60, ..., 99} with steps of 5 around both plateaus, where the claims are decided
K_GRID = (0, 25, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85, 90, 95, 97, 99)


@dataclass(frozen=True)
class Preset(StudyPreset):
    """Notebook 02's settings for one profile: ``datasets`` (this project's standardised setup), ``blog_datasets``
    (where the blog's own setup also runs: its code trained on Fashion-MNIST), the challenge net's ``width_mult``
    and ``epochs``, the training ``seeds`` and ``timing_repeat`` (repeats of each inference timing)."""

    datasets: tuple[str, ...]
    blog_datasets: tuple[str, ...]
    width_mult: float
    epochs: int
    seeds: tuple[int, ...]
    timing_repeat: int

    def challenge_config(self, dataset: str, seed: int, setup: str = "prunekit") -> TrainConfig:
        """The FOR.ai challenge net (1000-1000-500-200, ReLU, no biases) as the blog's code trains it: Adam, lr
        1e-3, batch 32, the preset's epochs and width. setup "prunekit": inputs standardised with the training
        split's statistics; "blog": the raw 0-255 pixels the blog's code fed it (``DataConfig(raw_pixels=True)``)."""
        choice("setup", setup, SETUPS)
        data = DataConfig(name=dataset) if setup == "prunekit" else DataConfig(name=dataset, normalize=False,
                                                                               raw_pixels=True)
        return TrainConfig(data=data, model=ModelConfig(arch="forai", width_mult=self.width_mult),
                           optimizer="adam", lr=1e-3, epochs=self.epochs, batch_size=32, seed=seed)

    def runs(self, setups: Sequence[str] = SETUPS) -> tuple[list[tuple[str, str, int]], dict[str, str]]:
        """``(runs, skipped)``: the ``(setup, dataset, seed)`` of every network notebook 02 trains for ``setups``
        (the preset's ``datasets`` in prunekit's setup, its ``blog_datasets`` in the blog's), those whose data are
        here, and ``{dataset: why}`` of the data sets that are not (``prunekit.core.data.available_datasets``)."""
        setups = distinct("setups", sequence("setups", setups, item=lambda n, v: choice(n, v, SETUPS)))
        present, skipped = available_datasets(sorted(set(self.datasets) | set(self.blog_datasets)))
        runs = [(setup, d, seed) for setup in setups
                for d in (self.datasets if setup == "prunekit" else self.blog_datasets) if d in present
                for seed in self.seeds]
        return runs, skipped


# quick: digits and a quarter-width net (CI); paper: the challenge net on MNIST and Fashion-MNIST, 3 seeds; full: the
# longest training the challenge's answers report (20 epochs) and 5 seeds
PRESETS = {
    "quick": Preset(("digits",), ("digits",), 0.25, 10, (0, 1), 3),
    "paper": Preset(("mnist", "fashion_mnist"), ("fashion_mnist",), 1.0, 5, (0, 1, 2), 20),
    "full": Preset(("mnist", "fashion_mnist"), ("fashion_mnist",), 1.0, 20, (0, 1, 2, 3, 4), 50),
}


def preset(profile: str) -> Preset:
    """The :class:`Preset` of ``profile`` ("quick", "paper" or "full")."""
    return PRESETS[check_profile(profile, PRESETS)]


def challenge_config(profile: str, dataset: str, seed: int, setup: str = "prunekit") -> TrainConfig:
    """:meth:`Preset.challenge_config` of ``profile``'s preset."""
    return preset(profile).challenge_config(dataset, seed, setup)


SOURCE = source_of("02_pruning_curves")

# ----------------------------------------------------------------------------------------------------------------
# summaries against the source's claims
# ----------------------------------------------------------------------------------------------------------------

# source 003: "This threshold value was around 70-75% sparsity in weight pruning and just under 50% sparsity in the
# unit pruning" (k up to which accuracy holds, in %)
SOURCE_PLATEAU = {"weight": (70.0, 75.0), "unit": (40.0, 50.0)}


def _by(by) -> list[str]:
    """The grouping columns asked for (distinct names; those a table lacks are left out by the caller)."""
    return distinct("by", sequence("by", by, item=text))


def plateau_summary(curve, tolerance: float = TOLERANCE, by: Sequence[str] = ("setup", "dataset", "method", "scope")):
    """Per group, the largest k up to which accuracy holds: the mean accuracy (over seeds) stays within
    ``tolerance`` (a fraction: 0.01 = 1 point) of the dense (k = 0) accuracy at this k *and every smaller k*.

    Returns a DataFrame with the ``by`` columns, dense_accuracy, holds_to_k, accuracy_there, sparsity_there,
    next_k (the first k where it fails, NaN if none) and accuracy_next.
    """
    fraction("tolerance", tolerance)
    by = [c for c in _by(by) if c in curve.columns]
    mean = curve.groupby(by + ["k"], as_index=False)[["accuracy", "sparsity"]].mean()
    rows = []
    for key, g in mean.groupby(by):
        g = g.sort_values("k")
        if not (g["k"] == 0).any():
            raise ValueError("the curve needs a k = 0 (dense) point for each group to measure the plateau")
        dense = float(g.loc[g["k"] == 0, "accuracy"].iloc[0])
        ok = (g["accuracy"] >= dense - tolerance).to_numpy()
        n_ok = len(ok) if ok.all() else int(ok.argmin())
        last, nxt = g.iloc[n_ok - 1], (g.iloc[n_ok] if n_ok < len(g) else None)
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)), "dense_accuracy": dense, "holds_to_k": float(last["k"]),
                     "accuracy_there": float(last["accuracy"]), "sparsity_there": float(last["sparsity"]),
                     "next_k": float(nxt["k"]) if nxt is not None else math.nan,
                     "accuracy_next": float(nxt["accuracy"]) if nxt is not None else math.nan})
    return pd.DataFrame(rows)


def plateau_report(summary, tolerance: float = TOLERANCE) -> str:
    """Sentences comparing ``plateau_summary`` (magnitude methods) with the source's claims, from the numbers."""
    fraction("tolerance", tolerance)
    lines = []
    if not {"method", "holds_to_k", "next_k", "accuracy_next", "dense_accuracy", "accuracy_there"} <= set(summary):
        return "Not measured here: the summary lacks the plateau columns of plateau_summary."
    for _, r in summary.iterrows():
        method = r["method"]
        if method not in SOURCE_PLATEAU:
            continue
        lo, hi = SOURCE_PLATEAU[method]
        k = r["holds_to_k"]
        verdict = ("agrees with" if lo <= k <= hi else "goes further than" if k > hi else "falls short of")
        where = f"{r.get('dataset', '?')}, {method} pruning, {r.get('scope', '?')} ranking"
        points, dense = C.plural(100 * tolerance, "point"), f"{100 * r['dense_accuracy']:.1f}%"
        after = (f"; at k = {r['next_k']:g}% it falls to {100 * r['accuracy_next']:.1f}%"
                 if not math.isnan(r["next_k"]) else "")
        if k == 0 and math.isnan(r["next_k"]):
            held = "only the dense network was evaluated (no pruned level)"
        elif k == 0:
            held = f"accuracy falls more than {points} below the dense {dense} at the first level pruned{after}"
        else:
            held = (f"accuracy stays within {points} of the dense {dense} up to k = {k:g}% "
                    f"({100 * r['accuracy_there']:.1f}%){after}")
        lines.append(f"{where}: {held}. This {verdict} the source's {lo:.0f}-{hi:.0f}% for {method} pruning.")
    return "\n".join(lines) if lines else "Not measured here: no weight or unit (magnitude) pruning in the summary."



def global_unit_note(layers: pd.DataFrame, k: float = 25.0) -> str:
    """Why global unit ranking falls early, in this run's numbers (from ``prunekit.measures.curves.layer_sparsity_table``):
    with one L2 threshold over layers of different fan-in, the layer whose units have the smallest norms loses far
    more than k% of its units. Returns a sentence, or "" when the table has no global unit row at ``k``."""
    k = percentage("k", k)
    g = layers[(layers["method"] == "unit") & (layers["scope"] == "global") & np.isclose(layers["k"], k)]
    if g.empty:
        return ""
    worst = g.loc[g["sparsity"].idxmax()]
    return (f"Global unit ranking at k = {k:g}% removes {worst['sparsity']:.0%} of {worst['layer_name']} "
            f"(the layers hold {', '.join(f'{s:.0%}' for s in g.sort_values('layer')['sparsity'])} of their units "
            "pruned): one L2 threshold over layers of different fan-in takes the units with the smallest norms, and "
            "those sit mostly in one layer, so the network loses most of a layer long before k reaches the "
            "source's plateau.")


def speed_summary(timing: pd.DataFrame) -> pd.DataFrame:
    """When pruning saves time, from ``prunekit.measures.curves.inference_speedups`` rows: one row per (``batch_size``,
    ``form``) with ``saves_from_k`` (the smallest pruned k from which the form is faster than the dense net at that k
    and at every larger k measured; NaN if it never is), ``speedup_there`` and ``flop_ratio_there`` at that k, and
    the largest ``best_speedup`` measured with its ``best_k``. A k without a finite speed-up is left out."""
    missing = C.missing_columns(timing, ["batch_size", "form", "k", "speedup", "flop_ratio"])
    if missing:
        raise ValueError(f"timing lacks the columns {', '.join(missing)} of prunekit.measures.curves.inference_speedups")
    rows = []
    for (batch, form), g in timing[timing["k"] > 0].groupby(["batch_size", "form"], sort=True):
        g = g.groupby("k", as_index=False)[["speedup", "flop_ratio"]].median().sort_values("k")
        g = g[np.isfinite(g["speedup"].to_numpy(dtype=float))]  # a k whose timing failed says nothing
        if g.empty:
            continue
        faster = (g["speedup"] > 1.0).to_numpy()
        slow = np.flatnonzero(~faster)  # faster from the k after the last slower one, if the largest k is faster
        start = g.iloc[int(slow[-1]) + 1 if slow.size else 0] if faster[-1] else None
        best = g.loc[g["speedup"].idxmax()]
        rows.append({"batch_size": int(batch), "form": form,
                     "saves_from_k": float(start["k"]) if start is not None else math.nan,
                     "speedup_there": float(start["speedup"]) if start is not None else math.nan,
                     "flop_ratio_there": float(start["flop_ratio"]) if start is not None else math.nan,
                     "best_speedup": float(best["speedup"]), "best_k": float(best["k"])})
    return pd.DataFrame(rows, columns=["batch_size", "form", "saves_from_k", "speedup_there", "flop_ratio_there",
                                       "best_speedup", "best_k"])


QUOTE = C.Quote("This threshold value was around 70-75% sparsity in weight pruning and just under 50% sparsity in the "
                "unit pruning, leading to weight pruning being an overall more effective method than unit pruning.",
                "the blog post, 'Percent Sparsity vs. Percent Accuracy'")
QUOTE_SPEED = C.Quote("Here, I explore the effects of different ways of \"pruning\" a network, save on matrix "
                      "operations, and evaluate the maximum amount of sacrifice we can afford to make on accuracy.",
                      "the blog post, opening")
SOURCE_SETUP = ("blog", "global")  # the blog's own code: raw-pixel inputs, one ranking over the four hidden layers
DECIDING_K = {"weight": 70.0, "unit": 45.0}  # where "around 70-75%" and "just under 50%" are decided


def plateau_ends(curve: pd.DataFrame, tolerance: float = TOLERANCE,
                 by: Sequence[str] = ("setup", "dataset", "method", "scope")) -> pd.DataFrame:
    """Per group and ``seed``: ``dense_accuracy`` (k = 0), ``holds_to_k`` (the largest k whose accuracy is within
    ``tolerance`` of that seed's dense accuracy at that k and every smaller k) and ``next_k`` (the first k where it
    is not; NaN if none). A group without a finite dense accuracy has NaN ends."""
    fraction("tolerance", tolerance)
    by = [c for c in _by(by) if c in curve.columns]
    keys = by + (["seed"] if "seed" in curve.columns else [])
    rows = []
    for key, g in curve.groupby(keys, sort=True):
        g = g.groupby("k", as_index=False)["accuracy"].mean().sort_values("k")
        key = key if isinstance(key, tuple) else (key,)
        dense = float(g.loc[g["k"] == 0, "accuracy"].iloc[0]) if (g["k"] == 0).any() else math.nan
        if not math.isfinite(dense):  # no dense point (or a NaN one): no plateau to measure
            rows.append({**dict(zip(keys, key)), "dense_accuracy": dense, "holds_to_k": math.nan,
                         "next_k": math.nan})
            continue
        ok = (g["accuracy"] >= dense - tolerance - 1e-12).to_numpy()
        n_ok = len(ok) if ok.all() else int(ok.argmin())
        rows.append({**dict(zip(keys, key)), "dense_accuracy": dense, "holds_to_k": float(g["k"].iloc[n_ok - 1]),
                     "next_k": float(g["k"].iloc[n_ok]) if n_ok < len(g) else math.nan})
    return pd.DataFrame(rows)


# the claims, in the table's order (each decided per group of setup, data set and ranking); ``{k}`` is the k (%) the
# claim is decided at, ``{points}`` the tolerance and ``{fail}`` the drop a failure needs, in points
WEIGHT_PLATEAU = C.ClaimSpec(SOURCE, "Weight pruning keeps accuracy to about 70-75% sparsity", QUOTE,
                             "accuracy holds to about 70-75% weight sparsity",
                             "95% t interval over seeds of the accuracy drop at k = {k:g}% (weight magnitude): within "
                             "{points} of dense holds, wholly above {fail} does not")
UNIT_PLATEAU = C.ClaimSpec(SOURCE, "Unit pruning keeps accuracy to just under 50% sparsity", QUOTE,
                           "accuracy holds to just under 50% unit sparsity",
                           "95% t interval over seeds of the accuracy drop at k = {k:g}% (unit L2): within {points} of "
                           "dense holds, wholly above {fail} does not")
WEIGHT_LONGER = C.ClaimSpec(SOURCE, "Weight pruning keeps accuracy longer than unit pruning", QUOTE,
                            "weight pruning is the more effective",
                            "95% t interval over seeds of (weight plateau end - unit plateau end) > 0; a plateau ends "
                            "at the largest k held within {points} at it and every smaller k")
SAVES_TIME = C.ClaimSpec(SOURCE, "Pruning saves time on matrix operations", QUOTE_SPEED,
                         "pruning the network is meant to save on matrix operations",
                         "at the largest batch size, compacted units or CSR weights faster than dense from some k on, "
                         "by at least {band:.0%} (medians of repeated timings); every form at least {band:.0%} slower: "
                         "does not hold")
CLAIMS = (WEIGHT_PLATEAU, UNIT_PLATEAU, WEIGHT_LONGER, SAVES_TIME)


def _plateau_row(spec: C.ClaimSpec, g: pd.DataFrame, e: pd.DataFrame, method: str, k: float, tolerance: float,
                 fail_drop: float, context: dict) -> dict:
    """Accuracy holds to ``k``: the t interval over seeds of the drop at ``k`` within ``tolerance`` (holds) or wholly
    above ``fail_drop`` (does not hold), of ``method``'s curve in one group ``g`` (``e``: its plateau ends)."""
    points, fail = f"{100 * tolerance:g} point{'' if 100 * tolerance == 1 else 's'}", f"{100 * fail_drop:g} points"
    m = g[g.method == method]
    if m.empty or not (m["k"] == k).any() or not (m["k"] == 0).any():
        return spec.not_measured(f"no {method}-pruning accuracy at k = 0 and k = {k:g}% in this group", **context)
    per_seed = m.groupby(["seed", "k"])["accuracy"].mean().unstack("k").dropna(subset=[0.0, k])
    if per_seed.empty:
        return spec.not_measured(f"no seed with a finite {method}-pruning accuracy at k = 0 and k = {k:g}%",
                                 **context)
    drop = per_seed[0.0] - per_seed[k]
    iv = mean_interval(drop)
    me = e[e.method == method]
    measured = (f"{method} pruning at k = {k:g}%: accuracy {100 * per_seed[k].mean():.1f}% against "
                f"{100 * per_seed[0.0].mean():.1f}% dense (mean over {C.plural(len(drop), 'seed')}); the plateau ends "
                "at k = " + ", ".join(f"{v:g}%" for v in me["holds_to_k"]) + " by seed.")
    within, beyond = side_of(iv, tolerance + 1e-12, holds_above=False), side_of(iv, fail_drop)
    holds = True if within is True else False if beyond is True else None
    interval = f"drop at k = {k:g}%: {iv.text('{:+.2f}', 100, ' points')}"
    if holds is None:
        why = (C.undecided_reason([iv]) if not iv.decided else
               f"the interval reaches between the {points} tolerance and the {fail} a failure needs")
        return spec.cannot_decide(measured, why, **context, interval=interval)
    return spec.row(measured, holds, **context, interval=interval)


def _longer_row(spec: C.ClaimSpec, e: pd.DataFrame, context: dict) -> dict:
    """Weight pruning's plateau ends later than unit pruning's: the t interval over seeds of the difference above
    0; equal ends in every seed are a tie at the grid's resolution."""
    w = e[e.method == "weight"].set_index("seed")["holds_to_k"].dropna()
    u = e[e.method == "unit"].set_index("seed")["holds_to_k"].dropna()
    both = pd.concat([w, u], axis=1, keys=["weight", "unit"]).dropna()
    if both.empty:
        return spec.not_measured("no seed with both weight and unit pruning curves", **context)
    iv = mean_interval(both["weight"] - both["unit"])
    measured = (f"plateau ends by seed: weight k = {', '.join(f'{v:g}%' for v in both['weight'])}; unit k = "
                f"{', '.join(f'{v:g}%' for v in both['unit'])}.")
    interval = f"weight - unit: {iv.text('{:+.1f}', 1, ' points of k')}"
    if iv.decided and iv.low == iv.high == 0:
        return spec.cannot_decide(measured, "the two plateaus end at the same k in every seed: a tie at the k grid's "
                                  "resolution", **context, interval=interval)
    holds = side_of(iv, 0.0)
    if holds is None:
        return spec.cannot_decide(measured, C.undecided_reason([iv]), **context, interval=interval)
    return spec.row(measured, holds, **context, interval=interval)


def claims_table(curve: pd.DataFrame, tolerance: float = TOLERANCE, deciding_k: dict | None = None,
                 fail_drop: float = 0.03) -> pd.DataFrame:
    """The claims of source 003 (:data:`CLAIMS`, ``prunekit.report.claims`` format), decided on a pruning-curve table
    with one row per (setup, dataset, method, scope, seed, k) and its accuracy
    (``prunekit.measures.curves.pruning_curve``).

    The claims are decided on the source's own setup (the blog's code: ``setup="blog"``, global ranking); every other
    (setup, dataset, scope) group gets rows of its own, labelled as this project's extensions. In each group, with
    ``drop(k)`` = a seed's dense accuracy minus its accuracy at k:

    - weight pruning keeps accuracy to about 70-75% sparsity: the t interval over seeds of ``drop(70)`` (magnitude
      weight pruning) is within ``tolerance`` (holds) or wholly above ``fail_drop`` (does not hold; the source's
      plateau has "a consistently negative derivative", so a drop between the two is not decided);
    - unit pruning keeps it to just under 50%: the same at k = 45 (unit L2 pruning);
    - weight pruning keeps accuracy longer than unit pruning: the t interval over seeds of the difference of their
      plateau ends (largest k held within ``tolerance`` at it and every smaller k) is above 0; below 0 does not hold;
      equal plateaus in every seed are a tie at the grid's resolution (cannot decide).
    A claim the table cannot decide (no such group, no k = 70 or 45 in the grid) is "not measured here".
    """
    fraction("tolerance", tolerance)
    fraction("fail_drop", fail_drop, low_open=True)
    at = {**DECIDING_K, **(deciding_k or {})}
    points, fail = f"{100 * tolerance:g} point{'' if 100 * tolerance == 1 else 's'}", f"{100 * fail_drop:g} points"
    plateaus = {method: spec.formatted(k=at[method], points=points, fail=fail)
                for method, spec in (("weight", WEIGHT_PLATEAU), ("unit", UNIT_PLATEAU))}
    longer = WEIGHT_LONGER.formatted(points=points)
    missing = C.missing_columns(curve, ["method", "k", "accuracy"])
    if missing or curve.empty:
        why = C.lacking(missing, "curve")
        return C.claims_frame(spec.not_measured(why) for spec in (*plateaus.values(), longer))
    curve = curve.assign(**{c: v for c, v in (("setup", "prunekit"), ("dataset", "?"), ("scope", "global"),
                                              ("seed", 0)) if c not in curve.columns})
    ends = plateau_ends(curve, tolerance)
    groups = list(curve.groupby(["setup", "dataset", "scope"], sort=True).groups)
    groups.sort(key=lambda g: (g[0], g[2]) != SOURCE_SETUP)  # the source's own setup first
    rows = []
    for setup, dataset, scope in groups:
        own = (setup, scope) == SOURCE_SETUP
        label = f"this project's extension: {setup} inputs, {dataset}, {scope} ranking"
        described = (f"the blog's own: raw-pixel {dataset}, global ranking over the four hidden layers, the FOR.ai net"
                     if own else f"this project's extension: {'standardised' if setup == 'prunekit' else 'raw-pixel'} "
                     f"{dataset}, {scope} ranking, the FOR.ai net")
        g = curve[(curve.setup == setup) & (curve.dataset == dataset) & (curve.scope == scope)]
        e = ends[(ends.setup == setup) & (ends.dataset == dataset) & (ends.scope == scope)]
        context = {"setup": described, "seeds": C.seed_list(g["seed"])}
        specs = {m: s if own else s.labelled(label, kind="extension") for m, s in (*plateaus.items(), ("longer", longer))}
        rows += [_plateau_row(specs[m], g, e, m, at[m], tolerance, fail_drop, context) for m in ("weight", "unit")]
        rows.append(_longer_row(specs["longer"], e, context))
    return C.claims_frame(rows)


def speed_claims(speed: pd.DataFrame | None, setup: str = "", band: float = 0.05) -> pd.DataFrame:
    """The blog's reason for pruning, that it "saves on matrix operations" (:data:`SAVES_TIME`), checked on a
    :func:`speed_summary` table (``prunekit.report.claims`` format): at the largest batch size measured, a form that
    removes work (compacted unit pruning, CSR weight pruning) is faster than the dense net from some k on, by more
    than the timing noise ``band`` (its best speed-up >= 1 + band): holds; every such form at best ``1 - band`` as
    fast: does not hold; in between: cannot decide. Masking alone cannot save time and does not count."""
    fraction("band", band, low_open=True, high_open=True)
    spec = SAVES_TIME.formatted(band=band)
    context = {"setup": setup or "the FOR.ai net, timed on this machine", "seeds": "0"}
    cols = ["batch_size", "form", "saves_from_k", "speedup_there", "flop_ratio_there", "best_speedup"]
    if speed is None or C.missing_columns(speed, cols) or speed.empty:
        why = C.lacking(C.missing_columns(speed, cols) if speed is not None else cols, "speed summary")
        return C.claims_frame([spec.not_measured(why, **context)])
    top = speed[speed["batch_size"] == speed["batch_size"].max()].set_index("form")
    forms = [f for f in ("compacted", "csr") if f in top.index]
    if not forms or top.index.duplicated().any():
        why = "the speed summary needs one compacted or csr row (each once) at its largest batch size"
        return C.claims_frame([spec.not_measured(why, **context)])
    parts, saves, slower = [], [], []
    for form in forms:
        r = top.loc[form]
        label = {"compacted": "compacted units", "csr": "CSR weights"}[form]
        parts.append(f"{label} never faster than dense (best {r['best_speedup']:.2f}x)" if math.isnan(r["saves_from_k"])
                     else f"{label} faster from k = {r['saves_from_k']:g}% ({r['speedup_there']:.2f}x there, FLOP "
                     f"ratio {r['flop_ratio_there']:.2f}x; best {r['best_speedup']:.2f}x)")
        saves.append(not math.isnan(r["saves_from_k"]) and r["best_speedup"] >= 1 + band)
        slower.append(r["best_speedup"] <= 1 - band)
    measured = f"at batch {int(top['batch_size'].iloc[0])}: " + "; ".join(parts) + "."
    interval = f"medians of repeated timings at each k; a {band:.0%} band for timing noise"
    if any(saves) or all(slower):
        return C.claims_frame([spec.row(measured, any(saves), **context, interval=interval)])
    return C.claims_frame([spec.cannot_decide(measured, f"no form saves more than the {band:.0%} timing noise, and "
                                              "not every form is that much slower", **context, interval=interval)])
