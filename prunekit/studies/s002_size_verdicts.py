"""Source 002's claims about networks of different sizes (Sec. 2.2, notebook 05), each declared once (a
``prunekit.report.claims.ClaimSpec``) and decided by one function: :func:`size_claims` (Sec. 2.2.1, networks pruned at
initialisation) and :func:`pruned_claims` (Sec. 2.2.2, pruned-and-retrained against small networks). The
experiments that make their tables are in ``prunekit.studies.s002_sizes``, which gives these functions too."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.checks import count, fraction
from ..report import claims as C
from ..report.intervals import bootstrap_interval, mean_interval, side_of
from .s002_utility import SOURCE

__all__ = ["QUOTES", "PROPORTION", "MAX_UTILITY", "SMALL_WORSE", "SMALL_UNEVEN", "size_claims", "pruned_claims"]

QUOTES = {
    "proportion": C.Quote("The neural networks utilize the weights in proportion to their size.",
                          "Sec. 1, contributions"),
    "max_utility": C.Quote("larger networks use less-utilized weights by a larger portion: the maximum utility in the "
                           "sample set is higher in smaller networks", "Sec. 2.2.1", paraphrase=True),
    "small": C.Quote("And let N small be a network trained from scratch, whose number of weights is comparable to that "
                     "of N pruned, which is sufficient to achieve a similar level of loss to those of N large or N "
                     "pruned. However, N small generally performs worse, because N small does not utilize all of its "
                     "weights either.", "Sec. 2, opening"),
    "uneven": C.Quote("However, N small generally performs worse, because N small does not utilize all of its weights "
                      "either.", "Sec. 2, opening"),
}

PROPORTION = C.ClaimSpec(SOURCE, "Networks use their weights in proportion to their size (pruned at initialisation)",
                         QUOTES["proportion"],
                         "similar ablation curves by ratio of each network's weights, different by absolute number",
                         "for each smaller network, 95% bootstrap interval of (by-number gap - by-ratio gap) to the "
                         "largest network's accuracy curve > 0 (gap: mean over shared levels of |mean accuracy "
                         "difference|)")
MAX_UTILITY = C.ClaimSpec(SOURCE, "Smaller networks have subsets of higher maximum utility", QUOTES["max_utility"],
                          "the maximum utility in the sample set is higher in smaller networks",
                          "95% bootstrap interval of (95th-percentile utility of a network - of the next larger one), "
                          "by ratio at the level nearest {max_level:g}, > 0 for every pair of neighbouring sizes")
SMALL_WORSE = C.ClaimSpec(SOURCE, "A small network trained from scratch does not reach the pruned-and-retrained "
                          "network's accuracy", QUOTES["small"],
                          "a network with as many weights as the pruned one, trained from scratch, performs worse",
                          "95% t interval over seeds of (pruned - small) test accuracy > 0 at every pruning ratio "
                          "holds; < 0 at more than half of the ratios and > 0 at none does not hold (the source says "
                          "'generally'); cannot decide when both are within {ceiling_points:g} point of each other "
                          "and of the pretrained network")
SMALL_UNEVEN = C.ClaimSpec(SOURCE, "A small network trained from scratch uses its weights less evenly than a "
                           "pruned-and-retrained one (this project's reading of the source's hypothesis)",
                           QUOTES["uneven"], "main hypothesis: the small network performs worse because it does not "
                           "utilise all of its weights",
                           "95% bootstrap interval over subsets of CV(small) - CV(pruned) of the utilities at the "
                           "level nearest {level:g} > 0 at every pruning ratio holds, < 0 at more than half of them "
                           "(and > 0 at none) does not (CV = std / mean: scale-free)", kind="extension")


def _size_table_why(ablations: pd.DataFrame | None) -> str | None:
    """Why a size-ablation table cannot decide either claim (None when it can)."""
    cols = ["share", "by", "level", "subset", "accuracy", "utility"]
    if ablations is None or C.missing_columns(ablations, cols):
        return C.lacking(C.missing_columns(ablations, cols) if ablations is not None else cols, "size ablations")
    if ablations["share"].nunique() < 2:
        return "fewer than two network sizes"
    if ablations.duplicated(["share", "by", "level", "subset"]).any():
        return "more than one row per share, mode, level and subset"
    if not np.isfinite(ablations[["share", "level", "accuracy", "utility"]].to_numpy(dtype=float)).all():
        return "a share, level, accuracy or utility that is not a finite number"
    return None


def _proportion_row(spec: C.ClaimSpec, ablations: pd.DataFrame, context: dict) -> dict:
    """For every smaller network, its accuracy curve's gap to the largest network's larger by number than by ratio
    (a bootstrap interval of the difference of the gaps above 0)."""
    cells = {key: g["accuracy"].to_numpy(dtype=float) for key, g in ablations.groupby(["share", "by", "level"])}
    largest = float(ablations["share"].max())
    intervals, parts, sides = {}, [], []
    for share in sorted(set(ablations["share"]) - {largest}):
        curves = {}
        for by in ("ratio", "number"):  # the largest network's curve is the same by ratio and by number
            curves[by] = sorted(lv for (s, b, lv) in cells if s == share and b == by
                                and (largest, "ratio", lv) in cells)
        if not curves["ratio"] or not curves["number"]:
            intervals = None
            break
        keys = ([(share, "ratio", lv) for lv in curves["ratio"]] + [(largest, "ratio", lv) for lv in curves["ratio"]]
                + [(share, "number", lv) for lv in curves["number"]]
                + [(largest, "ratio", lv) for lv in curves["number"]])
        nr, nn = len(curves["ratio"]), len(curves["number"])

        def gap_difference(*samples, axis=-1, nr=nr, nn=nn):
            means = [np.mean(x, axis=axis) for x in samples]
            by_ratio = np.mean([np.abs(means[i] - means[nr + i]) for i in range(nr)], axis=0)
            by_number = np.mean([np.abs(means[2 * nr + i] - means[2 * nr + nn + i]) for i in range(nn)], axis=0)
            return by_number - by_ratio

        iv = bootstrap_interval([cells[k] for k in keys], gap_difference, what="bootstrap over the subsets of "
                                "every level")
        intervals[share] = iv
        means = {k: float(cells[k].mean()) for k in keys}
        gr = np.mean([abs(means[(share, "ratio", lv)] - means[(largest, "ratio", lv)]) for lv in curves["ratio"]])
        gn = np.mean([abs(means[(share, "number", lv)] - means[(largest, "ratio", lv)]) for lv in curves["number"]])
        parts.append(f"{100 * gr:.1f} / {100 * gn:.1f} points at share {share:g}")
        sides.append(side_of(iv, 0.0))
    if not intervals:
        return spec.not_measured("a smaller network has no level in common with the largest by ratio or by number",
                                 **context)
    measured = "mean gap to the largest network's accuracy, by ratio / by number: " + ", ".join(parts) + "."
    interval = "; ".join(f"share {s:g}: {iv.text('{:+.1f}', 100, ' points')}" for s, iv in intervals.items())
    return spec.decided(measured, sides, interval=interval, intervals=list(intervals.values()), threshold=0.0,
                        **context)


def _max_utility_row(spec: C.ClaimSpec, ablations: pd.DataFrame, max_level: float, context: dict) -> dict:
    """By ratio at the level nearest ``max_level``, the 95th percentile of the utilities higher in the smaller of
    every pair of neighbouring sizes."""
    by_ratio = ablations[ablations["by"] == "ratio"]
    if by_ratio.empty:
        return spec.not_measured("no ablation by ratio", **context)
    level = by_ratio["level"].iloc[int((by_ratio["level"] - max_level).abs().to_numpy().argmin())]
    at = {float(s): g["utility"].to_numpy(dtype=float)
          for s, g in by_ratio[np.isclose(by_ratio["level"], level)].groupby("share")}
    shares = sorted(at)
    if len(shares) < 2:
        return spec.not_measured(f"fewer than two sizes with utilities at level {level:g}", **context)
    ivs = {(a, b): bootstrap_interval([at[a], at[b]], lambda x, y, axis: np.percentile(x, 95, axis=axis)
                                      - np.percentile(y, 95, axis=axis), what="bootstrap over subsets")
           for a, b in zip(shares[:-1], shares[1:])}
    measured = (f"utility at ratio {level:g}, 95th percentile / maximum of the sample set: "
                + ", ".join(f"{np.percentile(at[s], 95):.4f} / {at[s].max():.4f} at share {s:g}" for s in shares)
                + ".")
    interval = "; ".join(f"share {a:g} - {b:g}: {iv.text('{:+.4f}')}" for (a, b), iv in ivs.items())
    return spec.decided(measured, [side_of(iv, 0.0) for iv in ivs.values()], interval=interval,
                        intervals=list(ivs.values()), threshold=0.0, refute="majority", **context)


def size_claims(ablations: pd.DataFrame | None, *, max_level: float = 0.1, setup: str = "",
                seeds: str = "") -> pd.DataFrame:
    """Source 002's two claims about network size (``prunekit.report.claims`` format), from
    ``prunekit.studies.s002_sizes.size_comparison``'s ablations (one row per subset: share, by, level, subset,
    accuracy, utility).

    - networks use their weights in proportion to their size (:data:`PROPORTION`: "similar curves by ratio,
      different by absolute number"): for every smaller network, the mean gap between its accuracy curve and the
      largest network's is larger by number than by ratio (``D = gap_number - gap_ratio``, each gap the mean over the
      levels both curves have of |mean accuracy - the largest's|); holds when the bootstrap interval of ``D``
      (subsets resampled in every cell) is above 0 for every smaller network, does not hold when it is below 0 for
      one;
    - smaller networks have subsets of higher maximum utility (:data:`MAX_UTILITY`): by ratio at the level nearest
      ``max_level``, the top of each network's sample set, read as its 95th percentile of utility (a bootstrap cannot
      give an interval for the maximum itself: a resampled maximum never exceeds the observed one), is higher in the
      smaller network: the bootstrap interval of the difference is above 0 for every pair of neighbouring sizes
      (holds), below 0 for one (does not hold); the maxima are reported beside.
    A table that cannot decide a claim (fewer than two sizes, a missing column, no shared level, a NaN, a duplicate
    subset) gives "not measured here", with the reason.
    """
    fraction("max_level", max_level, low_open=True)
    proportion, max_utility = PROPORTION, MAX_UTILITY.formatted(max_level=max_level)
    context = {"setup": setup, "seeds": seeds}
    why = _size_table_why(ablations)
    if why is not None:
        return C.claims_frame([spec.not_measured(why, **context) for spec in (proportion, max_utility)])
    return C.claims_frame([_proportion_row(proportion, ablations, context),
                           _max_utility_row(max_utility, ablations, max_level, context)])


def _small_worse_row(spec: C.ClaimSpec, table: pd.DataFrame | None, ceiling_gap: float, context: dict) -> dict:
    """(pruned - small) test accuracy above 0 at every ratio, over seeds; cannot decide at the ceiling."""
    values, why = _by_ratio(table, "test_accuracy")
    if values is None:
        return spec.not_measured(why, **context)
    pretrained = None
    if "network" in table.columns and (table["network"] == "pretrained").any():
        pretrained = float(pd.to_numeric(table.loc[table["network"] == "pretrained", "test_accuracy"],
                                         errors="coerce").mean())
    ivs = {r: mean_interval(w["pruned"] - w["small"]) for r, w in values.items()}
    measured = ("; ".join(f"{r:.0%} of conv weights pruned: {w['pruned'].mean():.2%} pruned and retrained, "
                          f"{w['small'].mean():.2%} small" for r, w in values.items())
                + f" (test accuracy, mean over {C.plural(max(len(w) for w in values.values()), 'seed')}"
                + (f"; pretrained {pretrained:.2%})." if pretrained is not None else ")."))
    interval = "; ".join(f"{r:.0%}: {iv.text('{:+.2f}', 100, ' points')}" for r, iv in ivs.items())
    top = pretrained if pretrained is not None else max(max(w["pruned"].mean(), w["small"].mean())
                                                        for w in values.values())
    at_ceiling = all(abs(w["pruned"].mean() - w["small"].mean()) <= ceiling_gap
                     and min(w["pruned"].mean(), w["small"].mean()) >= top - ceiling_gap
                     for w in values.values())
    if at_ceiling:
        return spec.cannot_decide(measured, f"at this scale both networks are within {100 * ceiling_gap:g} point of "
                                  f"each other and of the pretrained network ({100 * top:.1f}%) at every ratio: this "
                                  "setup leaves no room for the gap the source reports", **context, interval=interval)
    return spec.decided(measured, [side_of(iv, 0.0) for iv in ivs.values()], interval=interval,
                        intervals=list(ivs.values()), threshold=0.0, refute="majority", **context)


def _small_uneven_row(spec: C.ClaimSpec, ablations: pd.DataFrame | None, level: float, context: dict) -> dict:
    """CV(small) - CV(pruned) of the utilities at the level nearest ``level`` above 0 at every ratio."""
    cols = ["prune_ratio", "network", "level", "subset", "utility"]
    if ablations is None or C.missing_columns(ablations, cols) or ablations.empty:
        why = C.lacking(C.missing_columns(ablations, cols) if ablations is not None else cols, "ablations")
        return spec.not_measured(why, **context)
    t = ablations[ablations["network"].isin(["pruned", "small"])]
    if t.empty or not np.isfinite(t[["prune_ratio", "level", "utility"]].to_numpy(dtype=float)).all():
        return spec.not_measured("no finite utilities of a pruned and a small network", **context)
    nearest = t["level"].iloc[int((t["level"] - level).abs().to_numpy().argmin())]
    t = t[np.isclose(t["level"], nearest)]
    cv = {}
    for r, g in t.groupby("prune_ratio"):
        u = {n: h["utility"].to_numpy(dtype=float) for n, h in g.groupby("network")}
        if set(u) == {"pruned", "small"}:
            cv[float(r)] = u
    if not cv:
        return spec.not_measured("no pruning ratio with utilities of both a pruned and a small network", **context)

    def cv_difference(small, pruned, axis=-1):
        return (np.std(small, axis=axis) / np.mean(small, axis=axis)
                - np.std(pruned, axis=axis) / np.mean(pruned, axis=axis))

    ivs = {r: bootstrap_interval([u["small"], u["pruned"]], cv_difference, what="bootstrap over subsets")
           for r, u in cv.items()}
    measured = (f"coefficient of variation of the utilities at level {nearest:g}: "
                + "; ".join(f"{r:.0%} pruned: {np.std(u['pruned']) / np.mean(u['pruned']):.3f} pruned and retrained, "
                            f"{np.std(u['small']) / np.mean(u['small']):.3f} small" for r, u in cv.items())
                + " (the source's raw standard deviations: "
                + "; ".join(f"{np.std(u['pruned']):.3g} and {np.std(u['small']):.3g}" for u in cv.values()) + ").")
    interval = "; ".join(f"{r:.0%}: {iv.text('{:+.3f}')}" for r, iv in ivs.items())
    return spec.decided(measured, [side_of(iv, 0.0) for iv in ivs.values()], interval=interval,
                        intervals=list(ivs.values()), threshold=0.0, refute="majority", **context)


def pruned_claims(table: pd.DataFrame | None, ablations: pd.DataFrame | None, *, level: float = 0.1,
                  ceiling_gap: float = 0.01, setup: str = "", ablation_seed: int | None = None) -> pd.DataFrame:
    """Sec. 2.2.2's two claims (``prunekit.report.claims`` format), from ``prunekit.studies.s002_sizes.pruned_table``
    rows of one or more seeds (``seed`` column) and ``pruned_comparison``'s ablations (one row per subset), decided
    at every pruning ratio that has both a pruned and a small network:

    - a small network trained from scratch does not reach the pruned-and-retrained network's test accuracy
      (:data:`SMALL_WORSE`, the source's premise, Sec. 2: "N small generally performs worse"): the t interval over
      seeds of (pruned - small) is above 0 at every ratio (holds), below 0 at more than half of the ratios and above
      at none (does not hold: the source says "generally", so one ratio alone does not refute it), else cannot
      decide; "cannot decide at this scale" when at every ratio both are within ``ceiling_gap`` of each other and of
      the pretrained network;
    - the small network uses its weights less evenly (:data:`SMALL_UNEVEN`): this project's reading of the source's
      *hypothesis* for that premise ("N small does not utilize all of its weights either", which the source states
      and does not measure), labelled as such; read on a scale-free measure, the coefficient of variation (std /
      mean) of the utilities at the level nearest ``level`` (raw standard deviations are not comparable across
      networks whose utilities differ in size); holds when the bootstrap interval of CV(small) - CV(pruned) is above
      0 at every ratio, does not hold when it is below 0 at more than half of the ratios and above at none (a reading
      the source does not measure, tested at several ratios at once: one interval below 0 alone may be chance); a
      row of kind "extension", decided on the ablations of the networks of ``ablation_seed`` (None: the table's first
      seed).
    A table that cannot decide (missing columns, no ratio with both networks, a NaN, a duplicate row) gives "not
    measured here", with the reason.
    """
    fraction("level", level, low_open=True)
    fraction("ceiling_gap", ceiling_gap)
    if ablation_seed is not None:
        ablation_seed = count("ablation_seed", ablation_seed, low=0)
    seeds = C.seed_list(table["seed"]) if table is not None and "seed" in table.columns and len(table) else ""
    if ablation_seed is None:
        ablation_seed = seeds.split(", ")[0] if seeds else ""
    return C.claims_frame([
        _small_worse_row(SMALL_WORSE.formatted(ceiling_points=100 * ceiling_gap), table, ceiling_gap,
                         {"setup": setup, "seeds": seeds}),
        _small_uneven_row(SMALL_UNEVEN.formatted(level=level), ablations, level,
                          {"setup": setup, "seeds": str(ablation_seed)})])


def _by_ratio(df: pd.DataFrame | None, column: str):
    """``({prune_ratio: seeds x ["pruned", "small"] table of column}, "")`` from ``df`` (one row per seed, ratio and
    network; a table without ``seed`` is one seed), or ``(None, why)`` when the table cannot give exactly one finite
    value of each at one ratio or more."""
    cols = ["prune_ratio", "network", column]
    if df is None or C.missing_columns(df, cols) or df.empty:
        return None, C.lacking(C.missing_columns(df, cols) if df is not None else cols, "accuracy table")
    t = df[df["network"].isin(["pruned", "small"])]
    t = t if "seed" in t.columns else t.assign(seed=0)
    if t.duplicated(["seed", "prune_ratio", "network"]).any():
        return None, "more than one row per seed, pruning ratio and network"
    if not np.isfinite(pd.to_numeric(t[column], errors="coerce").to_numpy(dtype=float)).all():
        return None, f"a {column} that is not a finite number"
    out = {}
    for r, g in t.groupby("prune_ratio"):
        wide = g.pivot(index="seed", columns="network", values=column).reindex(columns=["pruned", "small"]).dropna()
        if len(wide):
            out[float(r)] = wide.astype(float)
    if not out:
        return None, "no pruning ratio with both a pruned-and-retrained and a small network"
    return out, ""
