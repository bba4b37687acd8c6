"""Source 001's claims (:data:`CLAIMS`), each declared once (a ``prunekit.report.claims.ClaimSpec``) for a group of
setups and decided by one function, on :func:`~.experiment.curve_gap`'s table: :func:`claims_table`."""

from __future__ import annotations

import dataclasses
import functools

import pandas as pd

from ...report import claims as C
from ...report.intervals import mean_interval, side_of
from .setups import GROUPS, ICLR, NEAR, SETUPS, SOURCE, group_of

__all__ = ["CLAIMS", "claims_table"]


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


def _near_row(spec: C.ClaimSpec, g: pd.DataFrame, context: dict, *, estimator: str, close: bool,
              deep_only: bool) -> dict:
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


def _near(estimator: str, close: bool, deep_only: bool = False):
    """The decision of "``estimator`` comes very close to brute force" (``close``) or "does not nearly as well"
    (on the setups with more than one hidden layer only, when ``deep_only``): :func:`_near_row`."""
    return functools.partial(_near_row, estimator=estimator, close=close, deep_only=deep_only)


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


# the claims of each group of setups: (group, decide, spec); ``decide(spec, g, context)`` writes the row of the group's
# part ``g`` of the table: serial brute force's removable fraction, an estimate's shortfall against it (:func:`_near`)
# or second against first order
BRUTE_FORCE = _spec("Brute force removes 40-70% of the neurons with little effect", _ABSTRACT_SERIAL,
                    "40-70% of the neurons removable serially, no retraining", _BF_RULE)
CLOSE_TOY = _spec("The second-order estimate comes very close to brute force", _TOY,
                  "the second-order method exceptionally good, very close to brute force", _NEAR_RULE)
BETTER_TOY = _spec("The second-order estimate does better than the first-order one", _TOY,
                   "the first-order method performs poorly", _BETTER_RULE)
BRUTE_FORCE_MNIST = _spec("Brute force removes 40-70% of the neurons with little effect", _ONE_LAYER,
                          "almost 60% (one hidden layer) and up to 40% (two) removable without major loss", _BF_RULE)
FAR_DEEP = _spec("The second-order estimate does not nearly as well as brute force beyond one hidden layer", _MNIST,
                 "the second-order method not nearly as good as brute force, especially beyond the first layer",
                 _NEAR_RULE + "; decided on the setups with more than one hidden layer")
BETTER_MNIST = _spec("The second-order estimate does consistently better than the first-order one", _MNIST,
                     "the second-order criterion consistently better than the first-order one", _BETTER_RULE)
FAR = _spec("The second-order estimate does not nearly as well as brute force", _ABSTRACT_METHOD,
            "the proposed (second-order) method not nearly as good as brute force", _NEAR_RULE)
BETTER = _spec("The second-order estimate does better than the first-order one", _ABSTRACT_METHOD,
               "the proposed (second-order) method works well compared to a first-order method", _BETTER_RULE)
CLOSE_EXACT = _spec("The second-order estimate with the exact second derivative comes very close to brute force", _TOY,
                    "(the source's diagonal replaced by the exact second derivative, this project's extension)",
                    _NEAR_RULE, "extension")
CLAIMS = (
    ("shapes", _brute_force_row, BRUTE_FORCE),
    ("shapes", _near("second_order", close=True), CLOSE_TOY),
    ("shapes", _better_row, BETTER_TOY),
    ("mnist", _brute_force_row, BRUTE_FORCE_MNIST),
    ("mnist", _near("second_order", close=False, deep_only=True), FAR_DEEP),
    ("mnist", _better_row, BETTER_MNIST),
    ("arxiv", _brute_force_row, BRUTE_FORCE),
    ("arxiv", _near("second_order", close=False), FAR),
    ("arxiv", _better_row, BETTER),
    ("adam", _near("second_order", close=True), dataclasses.replace(CLOSE_TOY, kind="extension")),
    ("adam", _near("second_order_exact", close=True), CLOSE_EXACT),
)


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
    for group, decide, spec in CLAIMS:
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
        rows.append(decide(spec, g, context))
    return C.claims_frame(rows)
