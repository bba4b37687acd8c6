"""Source 000's claims, each declared once (a ``prunekit.report.claims.ClaimSpec``) and decided by one function, on a
width sweep's table (one row per trained network): :func:`claims_table`, and :func:`claims` as sentences."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ...core.checks import fraction, number
from ...core.registry import MODELS
from ...report import claims as C
from ...report.catalog import source_of
from ...report.intervals import Interval, bootstrap_interval, mean_interval, side_of
from .presets import MIN_DENSE_ACCURACY
from .statistics import fit_core_scaling, fit_density_vs_width, split_untrained

__all__ = ["SOURCE", "QUOTES", "SOURCE_WIDTH_RANGE", "CLAIMS", "claims_table", "claims"]

SOURCE = source_of("03_width_invariance")
SOURCE_WIDTH_RANGE = 50.0  # the source's widest model is 50x its narrowest (0.1x to 5x)


def arch_kind(arch: str) -> str:
    """"fc", "conv" or "residual" from the model registry (``prunekit.core.registry.MODELS``); "other" for a name it
    lacks."""
    return MODELS[arch].kind if arch in MODELS else "other"


_SUMMARY = "a third-party summary of the paper (not by its authors), 'Main Findings'"
_ABSTRACT = "abstract (arXiv:2410.14461)"
QUOTES = {
    "null": C.Quote("Increasing the width of a model has little effect on the density of the pruned model relative to "
                    "the increase in absolute size of the pruned network.", _ABSTRACT),
    "flat": C.Quote("We find that the proportion of weights that can be pruned without degrading performance is largely "
                    "invariant to model size.", _ABSTRACT),
    "optimizer": C.Quote("the convolutional model exhibits a higher effective density when using the Adam optimizer, "
                         "while the fully-connected model exhibits a lower effective density when using SGD",
                         _SUMMARY, paraphrase=True),
    "init": C.Quote("Glorot initialization usually results in a lower effective density, while He initialization "
                    "results in a higher effective density. However, this difference is relatively small",
                    _SUMMARY, paraphrase=True),
}

# the claims, in the table's order; ``{ci}`` is the interval's confidence ("95%"), ``{density_fold}`` the fold a
# flat series stays within
NULL = C.ClaimSpec(SOURCE, "Null hypothesis (|ω| constant in width) rejected", QUOTES["null"],
                   "rejected: |ω| grows with width",
                   "{ci} interval of the slope of log|ω| on log|θ| > 0 in every width series (>= 3 models)")
FLAT = C.ClaimSpec(SOURCE, "Effective density roughly constant across widths", QUOTES["flat"],
                   "density roughly constant from 0.1x to 5x width",
                   "per series, {ci} interval of the density fold over a 50x width range (50^slope of log density on "
                   "log width) within {density_fold:g}x either way: holds when at least two thirds of the series are "
                   "flat and at most a third clearly not, does not hold when more than half are clearly not")
CONV_ADAM = C.ClaimSpec(SOURCE, "Conv + Adam gives a higher density than conv + SGD", QUOTES["optimizer"],
                        "conv nets trained with Adam are denser",
                        "{ci} t interval of the paired difference Adam - SGD within the conv architecture > 0")
FC_SGD = C.ClaimSpec(SOURCE, "Fully connected + SGD gives a lower density than with Adam", QUOTES["optimizer"],
                     "fully connected nets trained with SGD are sparser",
                     "{ci} t interval of the paired difference SGD - Adam < 0 within each fully connected "
                     "architecture (Adam: the optimizer the source's sentence sets SGD against)")
INIT = C.ClaimSpec(SOURCE, "Glorot gives slightly lower density than He", QUOTES["init"],
                   "Glorot slightly sparser than He",
                   "{ci} t interval of the paired difference Glorot - He < 0 (pairs equal in every other factor), and, "
                   "on the fully connected nets, {ci} bootstrap interval of |Glorot - He| / |SGD - Adam| < 1 (slight "
                   "beside the optimizer effect the source reports, itself established: its t interval excludes 0); "
                   "either wholly on the other side: does not hold")
CLAIMS = (NULL, FLAT, CONV_ADAM, FC_SGD, INIT)


def _decided(spec: C.ClaimSpec, measured: str, holds: bool | None, why: str, interval: str, context: dict) -> dict:
    """The row of a claim decided on ``holds`` (None: "cannot decide here", with ``why``)."""
    if holds is None:
        return spec.cannot_decide(measured, why, **context, interval=interval)
    return spec.row(measured, holds, **context, interval=interval)


def _series(r) -> Interval:
    return Interval(r.slope, r.ci_low, r.ci_high, int(r.n), "t")


def _null_row(spec: C.ClaimSpec, fits: pd.DataFrame, ci: str, context: dict) -> dict:
    """Rejected when the slope of log|ω| on log|θ| is above 0 in every series (at or below in one: does not hold)."""
    sides = [side_of(_series(r), 0.0) for r in fits.itertuples()]
    rejected = sum(s is True for s in sides)
    measured = (f"the slope of log|ω| on log|θ| is above 0 in {rejected} of "
                f"{C.plural(len(fits), 'width series', 'width series')} (from {fits['slope'].min():.2f} to "
                f"{fits['slope'].max():.2f}, median {fits['slope'].median():.2f}).")
    holds = True if all(s is True for s in sides) else False if any(s is False for s in sides) else None
    interval = (f"{ci} t intervals of the slopes: lowest lower end {fits['ci_low'].min():+.2f}, highest upper end "
                f"{fits['ci_high'].max():+.2f}")
    return _decided(spec, measured, holds, "a series' interval includes 0", interval, context)


def _flat_row(spec: C.ClaimSpec, df: pd.DataFrame, confidence: float, density_fold: float, ci: str,
              context: dict) -> dict:
    """Per series the fold of density over the source's 50x range of widths: flat within ``density_fold``."""
    flat_slope = math.log(density_fold) / math.log(SOURCE_WIDTH_RANGE)
    widths = fit_density_vs_width(df, confidence=confidence)
    widths = widths[widths["n"] >= 3].dropna(subset=["slope"])
    flat = [side_of(_series(r), flat_slope, holds_above=False) is True and side_of(_series(r), -flat_slope) is True
            for r in widths.itertuples()]
    steep = [bool(r.ci_low > flat_slope or r.ci_high < -flat_slope) for r in widths.itertuples()]
    folds = SOURCE_WIDTH_RANGE ** widths["slope"]
    measured = (f"over a 50x range of widths density moves by a factor {folds.median():.2f} (median over "
                f"{C.plural(len(widths), 'series', 'series')}; {folds.min():.2f} to {folds.max():.2f}); flat within "
                f"{density_fold:g}x in {sum(flat)}, clearly not in {sum(steep)}.")
    n = len(widths)
    holds = (True if n and sum(flat) >= 2 * n / 3 and sum(steep) <= n / 3 else
             False if n and sum(steep) > n / 2 else None)
    interval = ("per series " + ci + " t interval of the fold: " +
                "; ".join(f"{r.arch}/{r.optimizer}/{r.init} {SOURCE_WIDTH_RANGE ** r.ci_low:.2f} to "
                          f"{SOURCE_WIDTH_RANGE ** r.ci_high:.2f}" for r in widths.itertuples()))
    return _decided(spec, measured, holds, "the series do not agree: fewer than two thirds are decided flat (or more "
                    "than a third clearly not), and no more than half clearly not", interval, context)


def _conv_adam_row(spec: C.ClaimSpec, df: pd.DataFrame, confidence: float, context: dict) -> dict:
    """Within the conv architecture, the paired difference Adam - SGD above 0."""
    conv = df[df["arch"] == "conv"]
    if conv.empty:
        return spec.not_measured("no conv models in the table", **context)
    d = _pair_diffs(conv, "optimizer", "adam", "sgd")
    if len(d) == 0:
        return spec.not_measured("the conv models have no Adam and SGD runs paired on dataset, width, init and seed",
                                 **context)
    iv = mean_interval(d, confidence, what="paired t")
    adam, sgd = _paired_means(conv, "optimizer", "adam", "sgd")
    measured = f"conv: mean density over the {C.plural(len(d), 'pair')}: {adam:.3f} with Adam, {sgd:.3f} with SGD."
    return _decided(spec, measured, side_of(iv, 0.0), C.undecided_reason([iv], 0.0),
                    f"Adam - SGD: {iv.text('{:+.3f}')}", context)


def _fc_sgd_row(spec: C.ClaimSpec, df: pd.DataFrame, confidence: float, context: dict) -> dict:
    """Within each fully connected architecture, the paired difference SGD - Adam below 0."""
    fc = df[df["arch"].map(arch_kind) == "fc"]
    parts, sides, ivs, found = [], [], [], []
    for arch, g in fc.groupby("arch"):
        d = _pair_diffs(g, "optimizer", "sgd", "adam")
        if len(d) == 0:
            continue
        iv = mean_interval(d, confidence, what="paired t")
        sides.append(side_of(iv, 0.0, holds_above=False))
        found.append(iv)
        others = ", ".join(f"{o} {_mean(g, 'optimizer', o):.3f}" for o in sorted(set(g["optimizer"]) - {"sgd", "adam"}))
        sgd, adam = _paired_means(g, "optimizer", "sgd", "adam")
        parts.append(f"{arch}: SGD {sgd:.3f} vs Adam {adam:.3f} over {C.plural(len(d), 'pair')}"
                     + (f" (also {others}, over all its runs)" if others else ""))
        ivs.append(f"{arch} SGD - Adam: {iv.text('{:+.3f}')}")
    if fc.empty:
        return spec.not_measured("no fully connected models in the table", **context)
    if not sides:
        return spec.not_measured("no fully connected architecture has SGD and Adam runs paired on dataset, width, "
                                 "init and seed", **context)
    holds = True if all(s is True for s in sides) else False if any(s is False for s in sides) else None
    return _decided(spec, "mean density " + "; ".join(parts) + ".", holds, C.undecided_reason(found, 0.0),
                    "; ".join(ivs), context)


def _init_row(spec: C.ClaimSpec, df: pd.DataFrame, confidence: float, context: dict) -> dict:
    """Glorot - He below 0, and slight: |Glorot - He| below the SGD - Adam effect of the fully connected nets."""
    family = df["init"].map(lambda i: "glorot" if str(i).startswith("glorot") else "he" if str(i).startswith("he")
                            else str(i))
    inits = sorted(df["init"].dropna().unique())
    if not {"glorot", "he"} <= set(family):
        return spec.not_measured(f"the table has {C.plural(len(inits), 'init')} ({C.listing(inits)}); need both "
                                 "Glorot and He", **context)
    by_family = df.assign(init=family)
    d = _pair_diffs(by_family, "init", "glorot", "he")
    if len(d) == 0:
        return spec.not_measured("no Glorot and He models are paired (equal dataset, arch, width, optimizer, seed)",
                                 **context)
    iv = mean_interval(d, confidence, what="paired t")
    glorot, he = _paired_means(by_family, "init", "glorot", "he")
    measured = f"mean density over the {C.plural(len(d), 'pair')}: {glorot:.3f} with Glorot, {he:.3f} with He"
    fc = df[df["arch"].map(arch_kind) == "fc"]
    scale = np.concatenate([_pair_diffs(g, "optimizer", "sgd", "adam") for _, g in fc.groupby("arch")]) \
        if not fc.empty else np.array([])
    # "slightly" is judged on the fully connected nets alone, against their own SGD - Adam effect
    d_fc = _pair_diffs(by_family[by_family["arch"].map(arch_kind) == "fc"], "init", "glorot", "he")
    sides, found, texts = [side_of(iv, 0.0, holds_above=False)], [iv], [f"Glorot - He: {iv.text('{:+.3f}')}"]
    yardstick = mean_interval(scale, confidence, what="paired t") if len(scale) else None
    if yardstick is None or len(d_fc) == 0:
        measured += ("; no SGD and Adam pairs and Glorot and He pairs of fully connected nets to judge 'slightly' "
                     "against.")
        sides.append(None)
    elif side_of(yardstick, 0.0) is None:
        measured += (f"; the SGD - Adam effect of the fully connected nets, the yardstick of 'slightly', is not "
                     f"established here ({yardstick.text('{:+.3f}')}): 'slightly' cannot be judged")
        sides.append(None)
        texts.append(f"SGD - Adam (fully connected): {yardstick.text('{:+.3f}')}")
    else:
        ratio = bootstrap_interval([d_fc, scale], lambda a, b, axis: np.abs(np.mean(a, axis=axis))
                                   / np.maximum(np.abs(np.mean(b, axis=axis)), 1e-12),
                                   confidence=confidence, what="bootstrap over the pairs of each effect")
        measured += (f"; on the fully connected nets, the SGD - Adam effect, the difference the source presents as a "
                     f"real one: {np.mean(scale):+.3f} over {C.plural(len(scale), 'pair')} "
                     f"({yardstick.text('{:+.3f}')}), and |Glorot - He| over {C.plural(len(d_fc), 'pair')} is "
                     f"{ratio.estimate:.2f} of it")
        sides.append(side_of(ratio, 1.0, holds_above=False))
        found.append(ratio)
        texts.append(f"|Glorot - He| / |SGD - Adam| (fully connected): {ratio.text('{:.2f}')}")
    return spec.decided(measured + ".", sides, intervals=found, threshold=0.0,
                        why=None if iv.decided else "one pair gives no interval", **context,
                        interval="; ".join(texts))


def claims_table(df: pd.DataFrame, alpha: float = 0.05, density_fold: float = 2.0,
                 min_dense_accuracy: float = MIN_DENSE_ACCURACY, setup: str = "") -> pd.DataFrame:
    """The claims of source 000 (:data:`CLAIMS`) checked on ``df`` (one row per model, as ``prunekit.core.sweep``
    writes it): a ``prunekit.report.claims`` table. Every verdict is decided on a ``1 - alpha`` interval; models
    below ``min_dense_accuracy`` are left out first (:func:`split_untrained`; noted in ``df.attrs``). A width series
    is one (dataset, arch, optimizer, init).

    - null hypothesis (|ω| does not change with width) rejected: the interval of the slope of log|ω| on log|θ| is
      above 0 in every series with >= 3 models (holds), at or below 0 in one (does not hold);
    - effective density roughly constant across widths: per series, the slope ``b`` of log density on log width;
      over the source's 50x range of widths density moves by ``50**b``; a series is flat when the interval of that
      fold lies within ``density_fold`` either way, not flat when it lies wholly outside; the claim holds when at
      least two thirds of the series are flat and at most a third clearly not, does not hold when more than half
      are clearly not, and cannot decide in between (series that disagree);
    - conv + Adam denser: within the conv architecture (``arch == "conv"``), the paired difference Adam - SGD (equal
      dataset, width, init, seed) has its t interval above 0;
    - fully connected + SGD sparser: within each fully connected architecture, SGD - Adam (paired; the source's
      sentence sets SGD against Adam) has its t interval below 0, any other optimizer reported beside;
    - Glorot slightly sparser than He: the paired difference Glorot - He (equal dataset, arch, width, optimizer,
      seed) has its t interval below 0 (not lower, wholly at or above 0: does not hold), and "slightly" is decided
      against a stated scale, the effect the source presents as a real difference beside it: the SGD - Adam effect
      of the fully connected nets, when its own t interval excludes 0 (else "slightly" cannot be judged). The ratio
      |Glorot - He| / |SGD - Adam|, both on the fully connected nets (pairs resampled in a bootstrap, the two
      effects apart), below 1 is slight, wholly above 1 is not.
    A claim the table cannot decide is "not measured here", with the reason.
    """
    confidence = 1 - fraction("alpha", alpha, low_open=True, high_open=True)
    number("density_fold", density_fold, low=1.0, low_open=True)
    fraction("min_dense_accuracy", min_dense_accuracy)
    ci = f"{confidence:.0%}"
    null, flat, conv_adam, fc_sgd, init = (spec.formatted(ci=ci, density_fold=density_fold) for spec in CLAIMS)
    needed = ["dataset", "arch", "width_mult", "optimizer", "init", "seed", "params", "core_params", "density"]
    missing = C.missing_columns(df, needed + (["dense_accuracy"] if min_dense_accuracy > 0 else []))
    context = {"setup": setup, "seeds": C.seed_list(df["seed"]) if "seed" in df.columns and len(df) else ""}
    if missing or df.empty:
        why = C.lacking(missing, "table")
        return C.claims_frame(spec.not_measured(why, **context) for spec in (null, flat, conv_adam, fc_sgd, init))
    notes = []
    df, untrained = split_untrained(df, min_dense_accuracy)
    if not untrained.empty:
        which = (untrained.groupby(["arch", "width_mult"]).size().reset_index(name="n")
                 .apply(lambda r: f"{r['arch']} {r['width_mult']:g}x ({r['n']})", axis=1))
        notes.append(f"Left out as not trained (dense test accuracy below {min_dense_accuracy:.0%}, so no meaningful "
                     f"core): {len(untrained)} of {len(df) + len(untrained)} models: {', '.join(which)}.")
    fits = fit_core_scaling(df, confidence=confidence) if not df.empty else pd.DataFrame()
    fits = fits[fits["n"] >= 3].dropna(subset=["slope"]) if not fits.empty else fits
    if fits.empty:
        why = "no width series has 3 or more trained models to fit |ω| against |θ|"
        rows = [null.not_measured(why, **context), flat.not_measured(why, **context)]
    else:
        rows = [_null_row(null, fits, ci, context), _flat_row(flat, df, confidence, density_fold, ci, context)]
    rows += [_conv_adam_row(conv_adam, df, confidence, context), _fc_sgd_row(fc_sgd, df, confidence, context),
             _init_row(init, df, confidence, context)]
    table = C.claims_frame(rows)
    table.attrs["notes"] = notes
    return table


def _mean(df: pd.DataFrame, factor: str, level: str) -> float:
    return float(df.loc[df[factor] == level, "density"].mean())


_PAIR_ON = ("dataset", "arch", "width_mult", "optimizer", "init", "seed")


def _paired(df: pd.DataFrame, factor: str, level: str, reference: str) -> pd.DataFrame:
    """Density of ``level`` and ``reference`` (columns) on the rows equal in every other ``_PAIR_ON`` column."""
    pair_on = [c for c in _PAIR_ON if c != factor and c in df.columns]
    wide = df.pivot_table(index=pair_on, columns=factor, values="density", aggfunc="mean")
    if level not in wide.columns or reference not in wide.columns:
        return pd.DataFrame(columns=[level, reference], dtype=float)
    return wide[[level, reference]].dropna()


def _pair_diffs(df: pd.DataFrame, factor: str, level: str, reference: str) -> np.ndarray:
    """``density(level) - density(reference)`` of ``factor`` on rows equal in every other ``_PAIR_ON`` column."""
    pairs = _paired(df, factor, level, reference)
    return (pairs[level] - pairs[reference]).to_numpy(dtype=float)


def _paired_means(df: pd.DataFrame, factor: str, level: str, reference: str) -> tuple[float, float]:
    """Mean density of ``level`` and of ``reference`` over the same pairs as :func:`_pair_diffs` (so their
    difference is the mean paired difference)."""
    pairs = _paired(df, factor, level, reference)
    return float(pairs[level].mean()), float(pairs[reference].mean())


def claims(df: pd.DataFrame, alpha: float = 0.05, density_fold: float = 2.0,
           min_dense_accuracy: float = MIN_DENSE_ACCURACY) -> list[str]:
    """:func:`claims_table` as whole sentences (notes on left-out models first); never raises on a table that lacks
    a factor: such claims read "Not measured here: <why>"."""
    table = claims_table(df, alpha, density_fold, min_dense_accuracy)
    return list(table.attrs.get("notes", [])) + C.sentences(table)
