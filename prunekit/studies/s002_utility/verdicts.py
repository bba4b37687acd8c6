"""Source 002's claims on weight utility (notebook 05), each declared once (a ``prunekit.report.claims.ClaimSpec``)
and decided by one function: :func:`utility_claims` (the random and magnitude ablations, imbalance during training,
the widths of this project's variant) and :func:`spread_claims` (this project's "why the spread")."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ...core.checks import choice, fraction, number
from ...report import claims as C
from ...report.intervals import bootstrap_interval, side_of
from .experiments import middle_range
from .networks import NETWORKS, SOURCE

__all__ = ["QUOTES", "SPREAD", "MAGNITUDE", "GROWS", "PROPORTION_WIDTHS", "STALE_STATISTICS", "WEIGHTS_SPREAD",
           "utility_claims", "spread_claims"]

# The source's own sentences (what the claims below decide): Figure 1's caption and the contributions
QUOTES = {
    "spread": C.Quote("Note that the accuracy difference is about 60% when the ablation ratio is 0.1. This implies the "
                      "utility imbalance among the weights.", "Fig. 1 caption (left)"),
    "magnitude": C.Quote("Note that the training accuracy drops only when the weights with the large magnitude is "
                         "ablated.", "Fig. 1 caption (right)"),
    "grows": C.Quote("The utility imbalance among the weights increases during optimization.",
                     "Sec. 1, contributions"),
    "proportion": C.Quote("The neural networks utilize the weights in proportion to their size.",
                          "Sec. 1, contributions"),
}

# the claims of utility_claims, in its table's order (rules: templates of its thresholds)
SPREAD = C.ClaimSpec(SOURCE, "Equal-size random subsets differ widely in how much they matter", QUOTES["spread"],
                     "about 60 points of training accuracy between 500 random subsets at ablation ratio 0.1",
                     "on one trained network, 95% bootstrap interval over its subsets (not over seeds) of the "
                     "middle-95% accuracy range (97.5th - 2.5th percentile) at the ratio nearest {spread_ratio:g}: "
                     ">= {min_spread:.0%} holds, wholly below does not")
MAGNITUDE = C.ClaimSpec(SOURCE, "Accuracy drops only when large-magnitude weights are ablated", QUOTES["magnitude"],
                        "ablating small weights costs nothing, large ones cost accuracy",
                        "cost of the costliest lower-half band as a share of the top band's cost (ablating whole "
                        "bands): <= {lower_share_holds:.0%} holds, >= {lower_share_fails:.0%} does not; the top band "
                        "must cost at least {min_top_points:g} points")
GROWS = C.ClaimSpec(SOURCE, "Utility imbalance grows during training", QUOTES["grows"],
                    "the standard deviation of the utilities of 500 random subsets (and their mean and minimum) rises "
                    "during training",
                    "95% paired bootstrap interval over the subsets of std(last checkpoint) - std(first): > 0 holds, "
                    "< 0 does not")
PROPORTION_WIDTHS = C.ClaimSpec(SOURCE, "Networks use their weights in proportion to their size (widths, this "
                                "project's variant)", QUOTES["proportion"],
                                "similar ablation curves by ratio across network sizes",
                                "critical ratios reached at every width, largest / smallest <= {proportional_within:g}",
                                kind="extension")
# the claims of spread_claims: this project's question, on the source's sentence about the spread
STALE_STATISTICS = C.ClaimSpec(SOURCE, "Stale batch-norm statistics drive the spread of random ablations",
                               QUOTES["spread"], "about 60 points of training accuracy between 500 random subsets at "
                               "ratio 0.1 (ResNet20 with batch norm, stored statistics); what drives it is not examined",
                               "on one trained network of each kind, 95% paired bootstrap interval over its subsets "
                               "(not over seeds) of spread(recalibrated) / spread(stored) <= {kept:.0%} (spread: of "
                               "the middle 95% of the subsets' accuracies)", kind="extension")
WEIGHTS_SPREAD = C.ClaimSpec(SOURCE, "Without batch norm, random ablations of equal size still differ widely",
                             QUOTES["spread"], "no network without batch norm",
                             "on one trained network of each kind, 95% paired bootstrap interval over its subsets "
                             "(not over seeds) of spread(no batch norm) / spread(batch norm, stored) >= {kept:.0%} "
                             "(spread: of the middle 95% of the subsets' accuracies)", kind="extension")


def _finite(df: pd.DataFrame, columns: list[str]) -> bool:
    """Whether every value of ``columns`` is a finite number."""
    return bool(np.isfinite(df[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)).all())


def _spread_row(spec: C.ClaimSpec, random_ablations: pd.DataFrame | None, spread_ratio: float, min_spread: float,
                context: dict) -> dict:
    """The middle-95% range of the accuracies at the ratio nearest ``spread_ratio``, at least ``min_spread``."""
    cols = ["ratio", "accuracy"]
    if random_ablations is None or C.missing_columns(random_ablations, cols) or random_ablations.empty:
        return spec.not_measured("no random ablations with a ratio and an accuracy per subset", **context)
    if not _finite(random_ablations, cols):
        return spec.not_measured("a ratio or accuracy of the random ablations is not a finite number", **context)
    r0 = min(random_ablations["ratio"].unique(), key=lambda r: abs(r - spread_ratio))
    acc = random_ablations.loc[np.isclose(random_ablations["ratio"], r0), "accuracy"].to_numpy(dtype=float)
    iv = bootstrap_interval([acc], middle_range)
    measured = (f"at ratio {r0:g} training accuracy over {C.plural(len(acc), 'random subset')} ranges from "
                f"{acc.min():.1%} to {acc.max():.1%}, a spread of {100 * np.ptp(acc):.1f} points (the middle 95%: "
                f"{100 * middle_range(acc, axis=-1):.1f} points).")
    holds = side_of(iv, min_spread - 1e-12)
    interval = iv.text("{:.1f}", 100, " points")
    if holds is None:
        return spec.cannot_decide(measured, "the interval straddles the threshold", **context, interval=interval)
    return spec.row(measured, holds, **context, interval=interval)


def _magnitude_row(spec: C.ClaimSpec, magnitude_summary: pd.DataFrame | None, dense_accuracy: float | None,
                   min_top_drop: float, lower_share_holds: float, lower_share_fails: float, context: dict) -> dict:
    """The costliest lower-half band, as a share of the top band's cost: at most ``lower_share_holds`` holds."""
    cols = ["ratio", "band", "accuracy_mean"]
    if magnitude_summary is None or dense_accuracy is None or C.missing_columns(magnitude_summary, cols) \
            or magnitude_summary["band"].nunique() < 2:
        return spec.not_measured("no magnitude-band summary with at least two bands and the unablated accuracy",
                                 **context)
    if magnitude_summary.duplicated(["ratio", "band"]).any():
        return spec.not_measured("more than one magnitude-band row per ratio and band", **context)
    if not (_finite(magnitude_summary, cols) and np.isfinite(float(dense_accuracy))):
        return spec.not_measured("an accuracy of the magnitude bands, or the unablated one, is not a finite number",
                                 **context)
    whole = magnitude_summary[magnitude_summary.ratio == magnitude_summary.ratio.max()].set_index("band")
    drop = (dense_accuracy - whole["accuracy_mean"]).sort_index()
    lower, top = drop.iloc[: len(drop) // 2], float(drop.iloc[-1])
    worst = max(float(lower.max()), 0.0)
    share = worst / top if top > 0 else float("nan")
    measured = (f"ablating {magnitude_summary.ratio.max():.0%} of each band, the band of largest weights costs "
                f"{100 * top:.1f} points; the lower half of the bands at most {100 * worst:.1f} points each"
                + (f" ({share:.1%} of the top band's cost)" if top > 0 else "")
                + " (band by band: " + ", ".join(f"{100 * d:.1f}" for d in drop) + ").")
    exact = "exact: each whole band is one ablation" if magnitude_summary.ratio.max() == 1 else \
        "means over the subsets of each band"
    if top < min_top_drop:
        return spec.cannot_decide(measured, f"no drop to attribute: the top band costs less than "
                                  f"{100 * min_top_drop:g} points here", **context, interval=exact)
    if lower_share_holds < share < lower_share_fails:
        return spec.cannot_decide(measured, f"the lower half costs between {lower_share_holds:.0%} and "
                                  f"{lower_share_fails:.0%} of the top band", **context, interval=exact)
    return spec.row(measured, bool(share <= lower_share_holds), **context, interval=exact)


def _grows_row(spec: C.ClaimSpec, t: pd.DataFrame | None, context: dict) -> dict:
    """The imbalance-during-training row for one network's ablations (rows epoch, subset, utility: the same subsets
    at every checkpoint): std of the utilities at the last checkpoint above that at the first."""
    from scipy.stats import spearmanr  # scipy.stats is slow to import: only here

    cols = ["epoch", "subset", "utility"]
    if t is None or C.missing_columns(t, cols) or t["epoch"].nunique() < 2:
        return spec.not_measured("no utilities of the same subsets at two or more checkpoints", **context)
    if t.duplicated(["epoch", "subset"]).any() or not _finite(t, cols):
        return spec.not_measured("more than one row per checkpoint and subset, or a value that is not a finite "
                                 "number", **context)
    wide = t.pivot(index="subset", columns="epoch", values="utility").dropna()
    if len(wide) < 2:
        return spec.not_measured("fewer than two subsets measured at every checkpoint", **context)
    first, last = wide.columns.min(), wide.columns.max()
    stds = wide.std(ddof=0)  # the source's imbalance (prunekit.measures.imbalance.utility_std) per checkpoint
    iv = bootstrap_interval([wide[first].to_numpy(), wide[last].to_numpy()],
                            lambda a, b, axis: np.std(b, axis=axis) - np.std(a, axis=axis), paired=True,
                            what="paired bootstrap over subsets")
    rho = float(spearmanr(stds.index, stds.to_numpy()).statistic) if stds.nunique() > 1 else 0.0
    measured = (f"std of the utilities of {C.plural(len(wide), 'subset')}: {stds[first]:.3g} at epoch {int(first)}, "
                f"{stds[last]:.3g} at epoch {int(last)} (lowest {stds.min():.3g} at epoch {int(stds.idxmin())}; "
                f"Spearman rho with epoch {rho:+.2f} over {C.plural(len(stds), 'checkpoint')}).")
    interval = f"std(last) - std(first): {iv.text('{:+.3g}')}"
    holds = side_of(iv, 0.0)
    if holds is None:
        return spec.cannot_decide(measured, "the change lies inside the noise of the subsets (the interval straddles "
                                  "0)", **context, interval=interval)
    return spec.row(measured, holds, **context, interval=interval)


def _widths_row(spec: C.ClaimSpec, critical: pd.DataFrame | None, network: str, proportional_within: float,
                context: dict) -> dict:
    """The critical ratios of the widths all reached, the largest at most ``proportional_within`` times the
    smallest."""
    if critical is None:
        return spec.not_measured("the width study did not run: it is this project's variant on the MLP "
                                 f"(network='mlp'), and this run studied {network}", **context)
    if C.missing_columns(critical, ["width_mult", "critical_ratio"]) or len(critical) < 2:
        return spec.not_measured("fewer than two widths with a critical ratio", **context)
    if critical["critical_ratio"].isna().any():
        return spec.not_measured("at some width accuracy never fell to the critical level within the ratios tried "
                                 "(extend the ratios)", **context)
    cr = critical.set_index("width_mult")["critical_ratio"].sort_index()
    fold = float(cr.max() / cr.min())
    measured = ("critical ablation ratio " + ", ".join(f"{v:.3f} at x{w:g}" for w, v in cr.items())
                + f"; largest / smallest {fold:.2f}"
                + (", wider nets tolerate a larger fraction." if cr.iloc[-1] > cr.iloc[0] else "."))
    return spec.row(measured, fold <= proportional_within,
                    **{**context, "setup": context["setup"] or "this project's variant: LeNet-300-100 at several "
                       "widths"}, interval="interpolated between the ratios measured")


def utility_claims(random_ablations: pd.DataFrame | None = None, magnitude_summary: pd.DataFrame | None = None,
                   dense_accuracy: float | None = None,
                   imbalance_ablations: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None,
                   critical: pd.DataFrame | None = None, *, network: str = "resnet20", spread_ratio: float = 0.1,
                   min_spread: float = 0.10, min_top_drop: float = 0.05, lower_share_holds: float = 0.05,
                   lower_share_fails: float = 0.20,
                   proportional_within: float = 1.25, setup: str = "", seeds: str = "",
                   setups: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The weight-utility claims of source 002 (``prunekit.report.claims`` format), from notebook 05's tables.

    - equal-size random subsets differ widely (:data:`SPREAD`; the source: ~60 points of training accuracy at ratio
      0.1): at the ratio of ``random_ablations`` (one row per subset: ratio, accuracy) nearest ``spread_ratio``, the
      spread of the middle 95% of the subsets' accuracies (97.5th - 2.5th percentile: a spread a bootstrap can give
      an interval for, where max - min cannot) has its bootstrap interval at least ``min_spread`` (holds) or wholly
      below it (does not hold); max - min, the source's reading, is reported beside;
    - accuracy drops only when large-magnitude weights go (:data:`MAGNITUDE`): ablating the largest
      ``magnitude_summary`` ratio of each band, the costliest band of the lower half costs at most
      ``lower_share_holds`` of what the top band costs (holds), or at least ``lower_share_fails`` of it (does not
      hold: small weights matter too), in between cannot decide; a share, not a number of points, so that a
      fraction of a point of evaluation noise on a band that costs nothing cannot decide it; cannot decide either
      when the top band costs less than ``min_top_drop`` (no drop to attribute). A whole band is one deterministic
      ablation;
    - utility imbalance grows during training (:data:`GROWS`): the standard deviation of the utilities of the same
      random subsets (the source's measure, Def. 3) is higher at the last checkpoint than at the first, by a paired
      bootstrap interval over the subsets of (last - first): above 0 holds, below 0 does not, else cannot decide
      (``imbalance_ablations``: rows epoch, subset, utility; or ``{network: rows}``, one claim row each);
    - networks use weights in proportion to their size, read on widths (:data:`PROPORTION_WIDTHS`, this project's
      variant, ``network="mlp"``; the source's reading, networks pruned at initialisation, is
      ``prunekit.studies.s002_sizes.size_claims``): the critical ablation ratios of the widths in ``critical`` are
      all reached and the largest is at most ``proportional_within`` times the smallest (a row of kind "extension").
    ``setups``: the setup of each network of ``imbalance_ablations`` by name (its row's ``setup``; ``setup`` for a name
    not there). A missing table (None) or one that cannot decide its claim gives "not measured here", with the reason.
    """
    if dense_accuracy is not None and not (isinstance(dense_accuracy, float) and math.isnan(dense_accuracy)):
        fraction("dense_accuracy", dense_accuracy)  # NaN (a measurement that failed) gives "not measured here"
    choice("network", network, NETWORKS)
    for name, value in (("spread_ratio", spread_ratio), ("min_spread", min_spread), ("min_top_drop", min_top_drop),
                        ("lower_share_holds", lower_share_holds), ("lower_share_fails", lower_share_fails)):
        fraction(name, value, low_open=True)
    number("proportional_within", proportional_within, low=1.0)
    context = {"setup": setup, "seeds": seeds}
    rows = [_spread_row(SPREAD.formatted(spread_ratio=spread_ratio, min_spread=min_spread), random_ablations,
                        spread_ratio, min_spread, context),
            _magnitude_row(MAGNITUDE.formatted(lower_share_holds=lower_share_holds,
                                               lower_share_fails=lower_share_fails, min_top_points=100 * min_top_drop),
                           magnitude_summary, dense_accuracy, min_top_drop, lower_share_holds, lower_share_fails,
                           context)]
    tables = imbalance_ablations if isinstance(imbalance_ablations, Mapping) else {None: imbalance_ablations}
    for name, t in (tables or {None: None}).items():
        spec = GROWS if name is None else GROWS.labelled(name)
        rows.append(_grows_row(spec, t, {**context, "setup": (setups or {}).get(name, setup)}))
    rows.append(_widths_row(PROPORTION_WIDTHS.formatted(proportional_within=proportional_within), critical, network,
                            proportional_within, context))
    return C.claims_frame(rows)


def _stale_row(spec: C.ClaimSpec, acc: dict, stale_share: float, context: dict) -> dict:
    """Recalibrated statistics keep at most ``1 - stale_share`` of the spread with stored ones."""
    bn = [n for (n, s) in acc if s == "stored" and (n, "recalibrated") in acc]
    if not bn:
        return spec.not_measured("no batch-norm network with both stored and recalibrated statistics", **context)
    ivs = {n: _spread_ratio(acc[(n, "recalibrated")], acc[(n, "stored")]) for n in bn}
    measured = ("spread of the middle 95% of the subsets' accuracies: "
                + "; ".join(f"{n}: {_spread(acc, (n, 'stored'))} with stored statistics, "
                            f"{_spread(acc, (n, 'recalibrated'))} recalibrated (ratio {ivs[n].estimate:.2f})"
                            for n in bn) + ".")
    sides = [side_of(iv, 1 - stale_share, holds_above=False) for iv in ivs.values()]
    return spec.decided(measured, sides, intervals=list(ivs.values()),
                        interval="recalibrated / stored: " + "; ".join(f"{n}: {iv.text('{:.2f}')}"
                                                                      for n, iv in ivs.items()), **context)


def _weights_row(spec: C.ClaimSpec, acc: dict, stale_share: float, context: dict) -> dict:
    """The network without batch norm spreads at least ``1 - stale_share`` of the batch-norm network's spread."""
    plain = [n for (n, s) in acc if s == "none"]
    stored = [n for (n, s) in acc if s == "stored"]
    if not plain or not stored:
        return spec.not_measured("needs a network without batch norm and one with stored statistics", **context)
    reference = max(stored, key=lambda n: middle_range(acc[(n, "stored")].to_numpy()))
    ivs = {n: _spread_ratio(acc[(n, "none")], acc[(reference, "stored")]) for n in plain}
    measured = ("spread of the middle 95% of the subsets' accuracies: "
                + ", ".join(f"{n}: {_spread(acc, (n, 'none'))}" for n in plain)
                + f" against {_spread(acc, (reference, 'stored'))} with batch norm and stored statistics.")
    sides = [side_of(iv, 1 - stale_share - 1e-12) for iv in ivs.values()]
    return spec.decided(measured, sides, intervals=list(ivs.values()),
                        interval="no batch norm / batch norm (stored): " + "; ".join(
                            f"{n}: {iv.text('{:.2f}')}" for n, iv in ivs.items()), **context)


def _spread(acc: dict, key) -> str:
    return f"{100 * middle_range(acc[key].to_numpy()):.1f} points"


def _spread_ratio(num: pd.Series, den: pd.Series):
    """The paired bootstrap interval of spread(num) / spread(den) over the subsets both have."""
    both = pd.concat([num, den], axis=1, join="inner").dropna().to_numpy()
    return bootstrap_interval([both[:, 0], both[:, 1]], lambda a, b, axis: middle_range(a, axis=axis) / np.maximum(
        middle_range(b, axis=axis), 1e-12), paired=True, what="paired bootstrap over subsets")


def spread_claims(df: pd.DataFrame | None, *, stale_share: float = 0.5, setup: str = "",
                  seeds: str = "") -> pd.DataFrame:
    """This project's answer to "what drives the spread?" (``prunekit.report.claims`` format, rows of kind
    "extension": the source does not ask it) from :func:`~.experiments.spread_experiment` rows (network, statistics,
    subset, accuracy; with a ``dataset`` column, one row of each claim per data set). One statistic is printed and
    decided: the spread of the middle 95% of the subsets' accuracies (97.5th - 2.5th percentile, which a bootstrap can
    give an interval for), and each ratio of spreads has a paired bootstrap interval over the subsets (the same subset
    indices in every network).

    - stale batch-norm statistics drive it (:data:`STALE_STATISTICS`): the spread with recalibrated statistics is at
      most ``1 - stale_share`` of the spread with stored ones (the whole interval of their ratio; wholly above: does
      not hold);
    - the weights alone spread it too (:data:`WEIGHTS_SPREAD`): the network without batch norm spreads at least
      ``1 - stale_share`` of the batch-norm network's stored-statistics spread.
    """
    fraction("stale_share", stale_share, low_open=True, high_open=True)
    specs = [spec.formatted(kept=1 - stale_share) for spec in (STALE_STATISTICS, WEIGHTS_SPREAD)]
    context = {"seeds": seeds, "setup": setup or "this project's question, on the source's ResNet20"}
    cols = ["network", "statistics", "subset", "accuracy"]
    if df is None or C.missing_columns(df, cols) or df.duplicated(
            [c for c in ("dataset", "network", "statistics", "subset") if c in df.columns]).any():
        return C.claims_frame([spec.not_measured("no spread experiment with one row per network, statistics and "
                                                 "subset", **context) for spec in specs])
    groups = df.groupby("dataset", sort=False) if "dataset" in df.columns and df["dataset"].nunique() > 1 \
        else [(None, df)]
    rows = []
    for dataset, part in groups:
        stale, weights = specs if dataset is None else [spec.labelled(dataset) for spec in specs]
        acc = {key: g.set_index("subset")["accuracy"].astype(float)
               for key, g in part.groupby(["network", "statistics"])}
        rows += [_stale_row(stale, acc, stale_share, context),
                 _weights_row(weights, acc, stale_share, context)]
    return C.claims_frame(rows)
