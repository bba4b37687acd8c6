"""Source 003, "Sparsifying Neural Networks" (a blog post answering the FOR.ai pruning challenge): the plateau of a
pruning curve and the source's claims checked against it.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from . import claims as C
from .checks import choice
from .config import DataConfig, ModelConfig, TrainConfig
from .reporting import check_profile

__all__ = ["SOURCE", "PROFILES", "SETUPS", "challenge_config", "SOURCE_PLATEAU", "plateau_summary", "plateau_report",
           "speed_summary", "claims_table", "speed_claims"]

# quick: digits and a quarter-width net (CI); paper: the challenge net on MNIST and Fashion-MNIST, 3 seeds; full: the
# longest training the challenge's answers report (20 epochs) and 5 seeds.
# blog_datasets: where the blog's own setup also runs (its code trained on Fashion-MNIST)
PROFILES = {
    "quick": dict(datasets=["digits"], blog_datasets=["digits"], width_mult=0.25, epochs=10, seeds=[0, 1],
                  timing_repeat=3),
    "paper": dict(datasets=["mnist", "fashion_mnist"], blog_datasets=["fashion_mnist"], width_mult=1.0, epochs=5,
                  seeds=[0, 1, 2], timing_repeat=20),
    "full": dict(datasets=["mnist", "fashion_mnist"], blog_datasets=["fashion_mnist"], width_mult=1.0, epochs=20,
                 seeds=[0, 1, 2, 3, 4], timing_repeat=50),
}
SETUPS = ("prunekit", "blog")  # prunekit's inputs (standardised) or the blog's own code's (raw 0-255 pixels)


def challenge_config(profile: str, dataset: str, seed: int, setup: str = "prunekit") -> TrainConfig:
    """The FOR.ai challenge net (1000-1000-500-200, ReLU, no biases) as the blog's code trains it: Adam, lr 1e-3,
    batch 32, the profile's epochs and width. setup "prunekit": inputs standardised with the training split's
    statistics; "blog": the raw 0-255 pixels the blog's code fed it (``DataConfig(raw_pixels=True)``)."""
    p = PROFILES[check_profile(profile, PROFILES)]
    choice("setup", setup, SETUPS)
    data = DataConfig(name=dataset) if setup == "prunekit" else DataConfig(name=dataset, normalize=False,
                                                                           raw_pixels=True)
    return TrainConfig(data=data, model=ModelConfig(arch="forai", width_mult=p["width_mult"]),
                       optimizer="adam", lr=1e-3, epochs=p["epochs"], batch_size=32, seed=seed)

SOURCE = "003 Sparsifying Neural Networks"

# ----------------------------------------------------------------------------------------------------------------
# summaries against the source's claims
# ----------------------------------------------------------------------------------------------------------------

# source 003: "This threshold value was around 70-75% sparsity in weight pruning and just under 50% sparsity in the
# unit pruning" (k up to which accuracy holds, in %)
SOURCE_PLATEAU = {"weight": (70.0, 75.0), "unit": (40.0, 50.0)}


def plateau_summary(curve, tolerance: float = 0.01, by: Sequence[str] = ("setup", "dataset", "method", "scope")):
    """Per group, the largest k up to which accuracy holds: the mean accuracy (over seeds) stays within
    ``tolerance`` (a fraction: 0.01 = 1 point) of the dense (k = 0) accuracy at this k *and every smaller k*.

    Returns a DataFrame with the ``by`` columns, dense_accuracy, holds_to_k, accuracy_there, sparsity_there,
    next_k (the first k where it fails, NaN if none) and accuracy_next.
    """
    if not 0 <= tolerance <= 1:
        raise ValueError(f"tolerance must be a fraction in [0, 1], got {tolerance!r}")
    by = [c for c in by if c in curve.columns]
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


def plateau_report(summary, tolerance: float = 0.01) -> str:
    """Sentences comparing ``plateau_summary`` (magnitude methods) with the source's claims, from the numbers."""
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



def speed_summary(timing: pd.DataFrame) -> pd.DataFrame:
    """When pruning saves time, from ``prunekit.curves.inference_speedups`` rows: one row per (``batch_size``,
    ``form``) with ``saves_from_k`` (the smallest pruned k from which the form is faster than the dense net at that k
    and at every larger k measured; NaN if it never is), ``speedup_there`` and ``flop_ratio_there`` at that k, and
    the largest ``best_speedup`` measured with its ``best_k``. A k without a finite speed-up is left out."""
    missing = C.missing_columns(timing, ["batch_size", "form", "k", "speedup", "flop_ratio"])
    if missing:
        raise ValueError(f"timing lacks the columns {', '.join(missing)} of prunekit.curves.inference_speedups")
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


def claims_table(summary, weight_min_k: float = 70.0, unit_range: tuple[float, float] = (25.0, 50.0),
                 tolerance: float = 0.01):
    """The claims of source 003 checked on a :func:`plateau_summary` table (``prunekit.claims`` format).

    - weight pruning keeps accuracy to about 70-75% sparsity: the weight-magnitude plateau (largest k with mean
      accuracy within ``tolerance`` of dense at that k and every smaller one) reaches ``weight_min_k`` in every
      (setup, dataset, scope) group;
    - unit pruning keeps it to just under 50%: the unit-L2 plateau lies in ``[unit_range[0], unit_range[1])`` in
      every group (with the source's k grid 0, 25, 50, ...: holds at 25%, fails at 50%);
    - weight pruning keeps accuracy longer than unit pruning: a higher plateau in every group with both.
    A claim the summary cannot decide is "not measured here", with the reason.
    """
    names = ("Weight pruning keeps accuracy to about 70-75% sparsity",
             "Unit pruning keeps accuracy to just under 50% sparsity",
             "Weight pruning keeps accuracy longer than unit pruning")
    reports = ("accuracy holds to about 70-75% weight sparsity", "accuracy holds to just under 50% unit sparsity",
               "weight pruning is the more effective")
    points = 100 * tolerance
    tol = f"mean accuracy within {points:g} point{'' if points == 1 else 's'} of dense"
    rules = (f"{tol} up to k >= {weight_min_k:g}% in every (setup, dataset, scope) group",
             f"{tol} up to a k in [{unit_range[0]:g}%, {unit_range[1]:g}%) in every group",
             "the weight plateau is higher than the unit plateau in every group with both")
    missing = C.missing_columns(summary, ["method", "holds_to_k"])
    if missing or summary.empty:
        why = C.lacking(missing, "summary")
        return C.claims_frame(C.not_measured(SOURCE, n, r, why, u) for n, r, u in zip(names, reports, rules))
    keys = [c for c in ("setup", "dataset", "scope") if c in summary.columns]
    groups = {}
    for key, g in (summary.groupby(keys) if keys else [((), summary)]):
        key = key if isinstance(key, tuple) else (key,)
        groups[", ".join(f"{k}" for k in key) or "all"] = g.set_index("method")["holds_to_k"]

    def per_group(method: str) -> dict[str, float]:
        return {name: float(g[method]) for name, g in groups.items() if method in g.index}

    rows = []
    for i, (method, test) in enumerate((("weight", lambda k: k >= weight_min_k),
                                        ("unit", lambda k: unit_range[0] <= k < unit_range[1]))):
        found = per_group(method)
        if not found:
            rows.append(C.not_measured(SOURCE, names[i], reports[i], f"no {method} pruning curve in the summary",
                                       rules[i]))
            continue
        measured = f"{method} pruning holds to " + "; ".join(f"k = {k:.0f}% ({g})" for g, k in found.items()) + "."
        rows.append(C.claim(SOURCE, names[i], reports[i], measured, all(test(k) for k in found.values()),
                            rules[i]))
    weight, unit = per_group("weight"), per_group("unit")
    both = [g for g in weight if g in unit]
    if not both:
        rows.append(C.not_measured(SOURCE, names[2], reports[2], "no group has both weight and unit pruning",
                                   rules[2]))
    else:
        measured = "; ".join(f"{g}: weight to k = {weight[g]:.0f}%, unit to k = {unit[g]:.0f}%" for g in both) + "."
        rows.append(C.claim(SOURCE, names[2], reports[2], measured, all(weight[g] > unit[g] for g in both),
                            rules[2]))
    return C.claims_frame(rows)



def speed_claims(speed: pd.DataFrame | None) -> pd.DataFrame:
    """The blog's reason for pruning, that it "saves on matrix operations", checked on a :func:`speed_summary` table
    (``prunekit.claims`` format): at the largest batch size measured, both forms that remove work, compacted unit
    pruning and CSR weight pruning, are faster than the dense net from some k on. Masking alone cannot save time
    and does not count."""
    name = "Pruning saves time on matrix operations"
    reports = "pruning the network is meant to save on matrix operations"
    rule = "at the largest batch size, compacted units and CSR weights are both faster than dense from some k on"
    cols = ["batch_size", "form", "saves_from_k", "speedup_there", "flop_ratio_there"]
    if speed is None or C.missing_columns(speed, cols) or speed.empty:
        why = C.lacking(C.missing_columns(speed, cols) if speed is not None else cols, "speed summary")
        return C.claims_frame([C.not_measured(SOURCE, name, reports, why, rule)])
    top = speed[speed["batch_size"] == speed["batch_size"].max()].set_index("form")
    forms = [f for f in ("compacted", "csr") if f in top.index]
    if len(forms) < 2 or top.index.duplicated().any():
        why = "the speed summary needs one compacted and one csr row at its largest batch size"
        return C.claims_frame([C.not_measured(SOURCE, name, reports, why, rule)])
    parts = []
    for form in forms:
        r = top.loc[form]
        label = {"compacted": "compacted units", "csr": "CSR weights"}[form]
        parts.append(f"{label} never faster than dense" if math.isnan(r["saves_from_k"]) else
                     f"{label} faster from k = {r['saves_from_k']:g}% ({r['speedup_there']:.2f}x there, FLOP ratio "
                     f"{r['flop_ratio_there']:.2f}x)")
    measured = f"at batch {int(top['batch_size'].iloc[0])}: " + "; ".join(parts) + "."
    holds = all(not math.isnan(top.loc[f, "saves_from_k"]) for f in forms)
    return C.claims_frame([C.claim(SOURCE, name, reports, measured, holds, rule)])
