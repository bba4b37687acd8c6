"""Source 001's claims (:data:`CLAIMS`), each declared once (a ``prunekit.report.claims.ClaimSpec``) for the group of
setups the source reports it on, and decided by one function on the serial-pruning curves: :func:`claims_table`.

Each claim is decided setup by setup, under Algorithm II (the source's Algorithm I is "intentionally naive ... for
comparison only"), on a t interval over the training seeds, and the group's verdict is "holds" when every setup is on
the claim's side and "does not hold" when most are on the other side and none on the claim's:

- units removable within the margin are a count: the interval of a count's share is computed with a spread of at least
  one unit, the resolution of the measurement (three seeds that agree exactly are not a zero-width interval);
- a verdict read on removable units must be the same at half and at twice the margin (:data:`.setups.MARGINS`), else
  it depends on the margin, and cannot be decided;
- "better than the first-order estimate" is read on the whole error curve (the mean error difference over the
  removals, as a share of the error's range), from where the source says it holds;
- runs that did not train to what the source starts from (:func:`.setups.quality_gate`) are left out, and said so;
  a group the project runs on a substitute setup gets the substitute verdicts (``on_substitute``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ...core.checks import choice, number
from ...measures.saliency import MARGIN_MODES
from ...report import claims as C
from ...report.intervals import Interval
from .experiment import curve_gap
from .setups import ARXIV, GROUPS, ICLR, MARGIN, NEAR, SETUPS, SHARE_SLACK, SOURCE, group_of

__all__ = ["CLAIMS", "claims_table"]

_ABSTRACT = "abstract (OpenReview, ICLR 2017 submission)"
_ABSTRACT_METHOD = C.Quote("Our proposed algorithm worked well compared to a first-order method, but not nearly as "
                           "well as the brute-force method.", _ABSTRACT)
_ABSTRACT_SERIAL = C.Quote("We discovered that there is a straightforward way, however expensive, to serially prune "
                           "40-70% of the neurons in a trained network with minimal effect on the learning "
                           "representation and without any re-training.", _ABSTRACT)
_TOY = C.Quote("What is interesting to note is that from some other experiments conducted on toy datasets "
               "(predicting whether a given point would lie inside a given shape on the Cartesian plane), the "
               "performance of the 2nd-order method was found to be exceptionally good and produced results very "
               "close to the brute force method. The 1st-order method, as expected, performed poorly here as well.",
               f"{ICLR}, 'Experiments on Toy Datasets'")
_MNIST = C.Quote("As can be seen from the experiments on MNIST, even though the 2nd-order approximation criterion is "
                 "consistently better than 1st-order, it's performance is not nearly as good as brute force based "
                 "ranking, especially beyond the first layer.", f"{ICLR}, 'Experiments on Toy Datasets', opening")
_MNIST_SHARE = C.Quote("Using the Brute Force ranking criteria, almost 60% of the neurons in the network can be pruned "
                       "away without any major loss in performance. [...] it is possible to remove up to 40% of the "
                       "neurons with no major loss in performance which is clearly illustrated by the brute force "
                       "curve.", f"{ICLR}, 'Pruning a 1-Layer Network' and 'Pruning A 2-Layer Network', Iterative "
                       "Re-Ranking")
_MNIST_BETTER = C.Quote("The other noteworthy observation here is that the 2nd order Taylor Series approximation of "
                        "the error performs consistently better than its 1st order version. [...] we see an overall "
                        "better performance with 2nd order method vs. 1st order, except for the first 20% of the "
                        "neurons", f"{ICLR}, 'Pruning a 1-Layer Network' and 'Pruning A 2-Layer Network', Iterative "
                        "Re-Ranking")
_COSINE = C.Quote("In the left graph, we see that the brute-force method shows a graceful degradation, and the error "
                  "only begins to rise sharply after 50% of the total neurons have been removed. [...] The brute force "
                  "method, in sharp contrast, shows little to no increase in error at all until 90% of the neurons in "
                  "the network have been obliterated. Clearly first and second order methods have some value in that "
                  "they do not make completely arbitrary choices, but the brute force method is far better at this "
                  "task.", f"{ARXIV}, 'Example Regression Problem'")
_OVA = C.Quote("The brute force method, in stark contrast, actually improves in the first few iterations, and remains "
               "essentially flat until around the 60% mark [...] the network never drops below its starting error "
               "until it crosses the 80% mark [...] though still a poor performance overall, the first order method "
               "vastly outperforms the second order method.",
               f"{ARXIV}, 'Investigation of Pruning Performance With Imperfect Starting Conditions', digits 0, 1, 2")

_SETUP_WISE = ("holds when every setup is on the claim's side, does not hold when most are on the other side and none "
               "on the claim's; read at margins 2.5%, 5% and 10% of the error's range, the same verdict at each or "
               "cannot decide")
_AT_LEAST_RULE = (f"per setup, 95% t interval over seeds of serial brute force's removable share (Algorithm II; a "
                  f"spread of at least one unit) >= 40%; {_SETUP_WISE}")
_SHARE_RULE = ("per setup, 95% t interval over seeds of serial brute force's removable share (Algorithm II; a spread "
               f"of at least one unit) >= the share the source reports for it less {SHARE_SLACK:.0%} points (its "
               f"numbers are read off curves: 'almost', 'around'); wholly below is against; {_SETUP_WISE}")
_CLOSE_RULE = (f"per setup, 95% t interval over seeds of the estimate's shortfall against serial brute force "
               f"(Algorithm II, share of the units, a spread of at least one unit): wholly below {NEAR:.0%} is close, "
               f"wholly at or above is not; {_SETUP_WISE}")
_BETTER_RULE = ("per setup, 95% t interval over seeds of the mean error of second order minus first order (Algorithm "
                "II, over the removals from the stated start, as a share of the error's range from none to all "
                "removed) < 0; holds when every setup agrees, does not hold when most are wholly > 0 and none < 0")


def _spec(claim: str, quote: C.Quote, reports: str, rule: str, kind: str = "source") -> C.ClaimSpec:
    return C.ClaimSpec(SOURCE, claim, quote, reports, rule, kind)


# --------------------------------------------------------------------------------------------------- intervals
def _count_interval(values: pd.Series, units: int) -> Interval:
    """Student's t interval over seeds of a share of ``units`` counted units, its standard deviation taken as at
    least one unit (the measurement's resolution)."""
    from scipy import stats

    x = values.dropna().to_numpy(dtype=float)
    if x.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0, "t over seeds")
    mean = float(x.mean())
    if x.size == 1:
        return Interval(mean, math.nan, math.nan, 1, "t over seeds")
    sd = max(float(x.std(ddof=1)), 1.0 / max(units, 1))
    half = float(stats.t.ppf(0.975, x.size - 1)) * sd / math.sqrt(x.size)
    return Interval(mean, mean - half, mean + half, int(x.size), "t over seeds, spread at least one unit")


def _at_least(iv: Interval, low: float) -> bool | None:
    """True when the interval lies at or above ``low``, False when wholly below it, None otherwise."""
    if not iv.decided:
        return None
    return True if iv.low >= low else False if iv.high < low else None


def _setup_wise(sides: list[bool | None]) -> bool | None:
    """Every setup on the claim's side: True; most against and none for: False; else None."""
    return C.holds_of(sides, refute="majority")


def _why_undecided(sides: list[bool | None], ivs: list[tuple[str, Interval]]) -> str:
    """Why setup-wise sides do not decide: a setup without an interval, setups on both sides, or setups whose
    intervals straddle the rule's threshold (each named)."""
    named = [setup for setup, _ in ivs]
    if not sides:
        return "no setup of the group was measured"
    single = [n for n, (_, iv) in zip(named, ivs) if not iv.decided]
    if single:
        return f"{C.listing(single)}: a single seed gives no interval (more seeds would give one)"
    on = [n for n, side in zip(named, sides) if side is True]
    against = [n for n, side in zip(named, sides) if side is False]
    open_ = [n for n, side in zip(named, sides) if side is None]
    if on and against:
        return (f"the setups disagree: {C.listing(on)} on the claim's side, {C.listing(against)} on the other"
                + (f", {C.listing(open_)} undecided" if open_ else ""))
    side = (f" ({C.listing(on)} on the claim's side)" if on else f" ({C.listing(against)} on the other side)"
            if against else "")
    return (f"the interval{'s' if len(open_) > 1 else ''} of {C.listing(open_)} straddle{'' if len(open_) > 1 else 's'}"
            f" the rule's threshold{side}")


# ------------------------------------------------------------------------------ claims read on removable units
def _units(gaps: pd.DataFrame, setup: str) -> int:
    return int(gaps.loc[gaps.setup == setup, "num_units"].iloc[0])


def _brute_force(gaps: pd.DataFrame) -> tuple[list, str, str, list]:
    """Serial brute force's removable share, setup by setup, against the share the source reports for it (at least
    that share less :data:`.setups.SHARE_SLACK`), or at least 40%, its abstract's lower end, where it reports none."""
    bf = gaps[(gaps.estimator == "brute_force") & (gaps.algorithm == "II")]
    sides, parts, texts, ivs = [], [], [], []
    stated = any(SETUPS[s].removable is not None for s in bf.setup.unique() if s in SETUPS)
    for setup, g in bf.groupby("setup", sort=False):
        share = SETUPS[setup].removable if setup in SETUPS else None
        if share is None and stated:
            parts.append(f"{setup} {g.removable_fraction.mean():.0%} (no share stated by the source)")
            continue
        low = 0.4 if share is None else share - SHARE_SLACK
        iv = _count_interval(g.removable_fraction, _units(gaps, setup))
        sides.append(_at_least(iv, low))
        ivs.append((setup, iv))
        parts.append(f"{setup} {iv.estimate:.0%}" + (f" (the source: about {share:.0%})" if share is not None else ""))
        texts.append(f"{setup}: {iv.text('{:.0%}')}")
    if not ivs:
        return [], "no serial brute force curve (Algorithm II) of a setup with a share to read against", "", []
    measured = "serial brute force removes " + "; ".join(parts) + " of the hidden units (mean over seeds)."
    return sides, measured, "removable share: " + "; ".join(texts), ivs


def _near(gaps: pd.DataFrame, estimator: str, close: bool, deep_only: bool) -> tuple[list, str, str, list]:
    """``estimator``'s shortfall against serial brute force, setup by setup: close (below :data:`NEAR`) or not."""
    rows = gaps[(gaps.estimator == estimator) & (gaps.algorithm == "II")]
    if deep_only:
        rows = rows[[len(SETUPS[s].config.model.hidden) > 1 if s in SETUPS else True for s in rows.setup]]
    sides, parts, texts, ivs = [], [], [], []
    for setup, g in rows.groupby("setup", sort=False):
        iv = _count_interval(g.shortfall_fraction, _units(gaps, setup))
        if not iv.decided:
            sides.append(None)
        elif close:
            sides.append(True if iv.high < NEAR else False if iv.low >= NEAR else None)
        else:
            sides.append(True if iv.low >= NEAR else False if iv.high < NEAR else None)
        ivs.append((setup, iv))
        parts.append(f"{setup} {iv.estimate:.0%}")
        texts.append(f"{setup}: {iv.text('{:+.0%}')}")
    first = gaps[(gaps.estimator == "first_order") & (gaps.algorithm == "II")].groupby("setup", sort=False)
    if not ivs:
        return [], f"no {estimator} and serial brute force curves (Algorithm II) of the same setup", "", []
    measured = (f"{estimator.replace('_', ' ')} removes fewer units than serial brute force by "
                + "; ".join(parts) + " of the units (Algorithm II, mean over seeds)"
                + ("" if estimator == "first_order" else "; first order: " + "; ".join(
                    f"{s} {g.shortfall_fraction.mean():.0%}" for s, g in first)) + ".")
    return sides, measured, "shortfall: " + "; ".join(texts), ivs


# ------------------------------------------------------------------------------------- claims read on the curves
def _curve_difference(curves: pd.DataFrame, setup: str, seed, start: float) -> float:
    """Mean error of second minus first order under Algorithm II over the removals beyond ``start`` (a share of the
    units), divided by the error's range from no unit removed to every one (NaN without both curves)."""
    c = curves[(curves.setup == setup) & (curves.seed == seed) & (curves.algorithm == "II")]
    by = {e: g.sort_values("units_removed") for e, g in c.groupby("estimator")}
    if not {"first_order", "second_order"} <= set(by):
        return math.nan
    first, second = (by[e].set_index("fraction_removed")["error"] for e in ("first_order", "second_order"))
    both = pd.concat([first, second], axis=1, keys=["first", "second"], join="inner").dropna()
    window = both[both.index > start]  # the unpruned point (equal on both curves) and the first removals left out
    span = float(max(both["first"].iloc[-1], both["second"].iloc[-1]) - both["first"].iloc[0])
    if window.empty or not span > 0:
        return math.nan
    return float((window["second"] - window["first"]).mean()) / span


def _better(curves: pd.DataFrame, starts) -> tuple[list, str, str, list]:
    """Second against first order on the error curves, setup by setup (from ``starts(setup)`` on)."""
    from ...report.intervals import mean_interval, side_of

    sides, parts, texts, ivs = [], [], [], []
    for setup in dict.fromkeys(curves.setup):
        start = starts(setup)
        d = pd.Series([_curve_difference(curves, setup, s, start) for s in sorted(curves[curves.setup == setup]
                                                                                   .seed.unique())])
        if d.dropna().empty:
            continue
        iv = mean_interval(d)
        sides.append(side_of(iv, 0.0, holds_above=False))
        ivs.append((setup, iv))
        parts.append(f"{setup} {iv.estimate:+.1%}" + (f" (from {start:.0%} of the units removed)" if start else ""))
        texts.append(f"{setup}: {iv.text('{:+.1%}')}")
    if not ivs:
        return [], "no second_order and first_order curves (Algorithm II) of the same setup and seed", "", []
    measured = ("mean error of second minus first order over the removals, as a share of the error's range: "
                + "; ".join(parts) + ".")
    return sides, measured, "second - first order: " + "; ".join(texts), ivs


def _from_twenty_percent_when_deep(setup: str) -> float:
    """The source's 2-layer MNIST result holds "except for the first 20% of the neurons"."""
    return 0.2 if setup in SETUPS and len(SETUPS[setup].config.model.hidden) > 1 else 0.0


# -------------------------------------------------------------------------------------------------- the claims
BRUTE_FORCE_AT_LEAST = _spec("Brute force removes at least 40% of the neurons with little effect", _ABSTRACT_SERIAL,
                             "40-70% of the neurons removable serially, no retraining", _AT_LEAST_RULE)
BRUTE_FORCE_MNIST = _spec("Brute force removes at least the share of the neurons the source reports", _MNIST_SHARE,
                          "almost 60% (one hidden layer) and up to 40% (two) removable without major loss",
                          _SHARE_RULE)
BRUTE_FORCE_COSINE = _spec("Brute force removes at least the share of the neurons the source reports", _COSINE,
                           "the error rises only after 50% (10 + 10) and 90% (50 + 50) of the neurons are removed",
                           _SHARE_RULE)
BRUTE_FORCE_OVA = _spec("Brute force removes at least the share of the neurons the source reports", _OVA,
                        "the error stays flat to about 60% (digit 0) and below its start to 80% (digit 1)",
                        _SHARE_RULE)
CLOSE_TOY = _spec("The second-order estimate comes very close to brute force", _TOY,
                  "the second-order method exceptionally good, very close to brute force", _CLOSE_RULE)
BETTER_TOY = _spec("The second-order estimate does better than the first-order one", _TOY,
                   "the first-order method performs poorly", _BETTER_RULE)
FAR_DEEP = _spec("The second-order estimate does not do nearly as well as brute force beyond one hidden layer", _MNIST,
                 "the second-order method not nearly as good as brute force, especially beyond the first layer",
                 _CLOSE_RULE.replace("close, wholly at or above is not", "not nearly as good (the claim), wholly "
                                     "below is close") + "; decided on the setups with more than one hidden layer")
BETTER_MNIST = _spec("The second-order estimate does better than the first-order one", _MNIST_BETTER,
                     "consistently better (one hidden layer); better except for the first 20% of the neurons (two)",
                     _BETTER_RULE + "; from 20% of the units removed for two hidden layers, as the source says")
FAR = _spec("The second-order estimate does not do nearly as well as brute force", _COSINE,
            "brute force far better at this task than first and second order",
            _CLOSE_RULE.replace("close, wholly at or above is not", "not nearly as good (the claim), wholly below is "
                                "close"))
FAR_OVA = _spec("The second-order estimate does not do nearly as well as brute force", _OVA,
                "first and second order fail early where brute force stays flat", FAR.rule)
CLOSE_EXACT = _spec("The second-order estimate with the exact second derivative comes very close to brute force", _TOY,
                    "(the source's diagonal replaced by the exact second derivative, this project's extension)",
                    _CLOSE_RULE, "extension")
# (group, spec, decide): ``decide(curves, gaps)`` -> (sides, measured, interval, [(setup, Interval)]), one side per
# setup (``side_of``'s True, False or None); ``gaps`` is None for a claim read on the curves alone, else it is decided
# at every margin of MARGINS
CLAIMS = (
    ("shapes", BRUTE_FORCE_AT_LEAST, lambda c, g: _brute_force(g)),
    ("shapes", CLOSE_TOY, lambda c, g: _near(g, "second_order", True, False)),
    ("shapes", BETTER_TOY, lambda c, g: _better(c, lambda s: 0.0)),
    ("mnist", BRUTE_FORCE_MNIST, lambda c, g: _brute_force(g)),
    ("mnist", FAR_DEEP, lambda c, g: _near(g, "second_order", False, True)),
    ("mnist", BETTER_MNIST, lambda c, g: _better(c, _from_twenty_percent_when_deep)),
    ("cosine", BRUTE_FORCE_COSINE, lambda c, g: _brute_force(g)),
    ("cosine", FAR, lambda c, g: _near(g, "second_order", False, False)),
    ("ova", BRUTE_FORCE_OVA, lambda c, g: _brute_force(g)),
    ("ova", FAR_OVA, lambda c, g: _near(g, "second_order", False, False)),
    ("adam", C.ClaimSpec(SOURCE, CLOSE_TOY.claim, _TOY, CLOSE_TOY.reports, _CLOSE_RULE, "extension"),
     lambda c, g: _near(g, "second_order", True, False)),
    ("adam", CLOSE_EXACT, lambda c, g: _near(g, "second_order_exact", True, False)),
)
_ON_CURVES = {BETTER_TOY.claim, BETTER_MNIST.claim}  # read on the error curves: no margin


def claims_table(curves: pd.DataFrame, margin: float = MARGIN, mode: str = "range",
                 excluded: pd.DataFrame | None = None) -> pd.DataFrame:
    """The claims of source 001 (``prunekit.report.claims`` format) from notebook 06's pruning curves (one row per
    setup, seed, estimator, algorithm and units removed), decided per group of setups (:data:`CLAIMS`; the module
    docstring says how): claims read on removable units at ``margin / 2``, ``margin`` and ``2 margin`` (``mode``:
    ``prunekit.measures.saliency.removable_units``), the rows' numbers at ``margin``. ``excluded``: (setup, seed)
    runs left out (:func:`.setups.quality_gate`), named in the rows they would have entered. Groups of this
    project's extension give rows of kind "extension". A claim the table cannot decide is "not measured here"."""
    number("margin", margin, low=0.0, low_open=True)
    choice("mode", mode, MARGIN_MODES)
    if excluded is not None:
        lacks = C.missing_columns(excluded, ["setup", "seed", "why"])
        if lacks:
            raise ValueError(f"excluded must be quality_gate's table (setup, seed, why): it lacks {lacks}")
    cols = ["setup", "seed", "estimator", "algorithm", "units_removed", "fraction_removed", "error"]
    missing = C.missing_columns(curves, cols)
    if missing or curves.empty:
        return C.claims_frame(spec.labelled(GROUPS[group].label).not_measured(C.lacking(missing, "table"))
                              for group, spec, _ in CLAIMS if GROUPS[group].kind == "source"
                              and group in ("shapes", "mnist"))
    left_out = {}
    if excluded is not None and len(excluded):
        for r in excluded.itertuples():
            left_out.setdefault(r.setup, []).append(f"{r.setup} seed {r.seed} ({r.why})")
            curves = curves[~((curves.setup == r.setup) & (curves.seed == r.seed))]
    margins = sorted({margin / 2, margin, 2 * margin})
    gaps = {m: curve_gap(curves, m, mode) for m in margins}
    rows = []
    for group, spec, decide in CLAIMS:
        in_group = curves["setup"].map(group_of) == group
        if not in_group.any():
            continue
        c = curves[in_group]
        on_curves = spec.claim in _ON_CURVES
        spec = spec.labelled(GROUPS[group].label)
        names = list(dict.fromkeys(c["setup"]))
        notes = [n for s in names for n in left_out.get(s, [])]
        context = {"seeds": C.seed_list(c["seed"]),
                   "setup": f"{GROUPS[group].where}: " + ", ".join(names)
                   + "; SGD-trained (the optimizer is open in the source)" * (GROUPS[group].kind == "source")}
        suffix = f" Left out: {C.listing(notes)}." if notes else ""
        if on_curves:
            sides, measured, interval, ivs = decide(c, None)
            row = (_row(spec, sides, measured + suffix, interval, ivs, context) if ivs
                   else spec.not_measured(measured, **context))
        else:
            decided = {m: decide(c, gaps[m][gaps[m]["setup"].map(group_of) == group]) for m in margins}
            sides, measured, interval, ivs = decided[margin]
            verdicts = {m: _setup_wise(d[0]) for m, d in decided.items()}
            if not ivs:
                row = spec.not_measured(measured, **context)
            elif len(set(verdicts.values())) > 1:
                said = ", ".join(f"{C.verdict_of(v)} at {m:.1%}" for m, v in verdicts.items())
                row = spec.cannot_decide(measured + suffix, f"the verdict depends on the margin ({said})",
                                         interval=interval, **context)
            else:
                row = _row(spec, sides, measured + suffix, interval, ivs, context)
        rows.append(row)
    table = C.claims_frame(rows)
    substitutes = {SETUPS[s].group: SETUPS[s].substitute for s in SETUPS if SETUPS[s].substitute}
    for group, why in substitutes.items():  # the groups run on a substitute of the source's setup
        mask = table["claim"].str.endswith(f"({GROUPS[group].label})")
        if mask.any():
            table.loc[mask] = C.on_substitute(table.loc[mask], why)
    return table


def _row(spec: C.ClaimSpec, sides: list, measured: str, interval: str, ivs: list, context: dict) -> dict:
    holds = _setup_wise(sides)
    if holds is None:
        return spec.cannot_decide(measured, _why_undecided(sides, ivs), interval=interval, **context)
    return spec.row(measured, holds, interval=interval, **context)
