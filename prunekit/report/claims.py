"""One format for the sources' claims: a tidy table with one row per claim.

Columns (:data:`COLUMNS`): ``source`` (which study), ``claim`` (the claim in a few words), ``quote`` (the source's own
sentence), ``source_reports`` (what the source reports, in short), ``setup`` (the setup that decided the row: the
source's own, or this project's extension, said so), ``seeds`` (the training seeds behind it), ``measured`` (what this
run measured, as a sentence built from its numbers), ``interval`` (the interval the verdict was decided on, with how it
was made; empty where the measurement is exact), ``verdict`` (one of :data:`VERDICTS`) and ``rule`` (the rule that
decided the verdict, with its thresholds, in the source's terms).

Verdicts: "holds" and "does not hold" only when the interval clears the rule's threshold on one side; "cannot decide
here" when it straddles it, or when the setup cannot show the effect (``measured`` says why); "not measured here" when
the table lacks what the claim needs (a factor, a level, a column; ``measured`` says what). A claims function never
raises on such a table.
"""

from __future__ import annotations

from typing import Iterable

import pandas as pd

from ..core.checks import choice, count as checked_count, number, sequence, text as checked_text

__all__ = ["COLUMNS", "VERDICTS", "HOLDS", "DOES_NOT_HOLD", "CANNOT_DECIDE", "NOT_MEASURED", "claim", "not_measured",
           "cannot_decide", "decided", "undecided_reason", "verdict_of", "claims_frame", "sentences",
           "missing_columns", "lacking", "plural",
           "listing", "seed_list"]

HOLDS, DOES_NOT_HOLD, CANNOT_DECIDE, NOT_MEASURED = "holds", "does not hold", "cannot decide here", "not measured here"
VERDICTS = (HOLDS, DOES_NOT_HOLD, CANNOT_DECIDE, NOT_MEASURED)
COLUMNS = ["source", "claim", "quote", "source_reports", "setup", "seeds", "measured", "interval", "verdict", "rule"]


def plural(count: float, singular: str, plural_form: str | None = None, digits: int = 0) -> str:
    """``count`` with its noun in the right number: "1 point", "2 points", "0.5 points", "1 optimizer"."""
    number("count", count)
    checked_text("singular", singular)
    digits = checked_count("digits", digits, low=0)
    if digits:
        text = f"{count:,.{digits}f}"
    else:
        text = f"{int(count):,}" if float(count).is_integer() else f"{count:g}"
    word = singular if float(text.replace(",", "")) == 1 else (plural_form or singular + "s")
    return f"{text} {word}"


def listing(items: Iterable, none: str = "none") -> str:
    """Items as prose: "a", "a and b", "a, b and c" (``none`` when empty)."""
    items = [str(i) for i in sequence("items", items, nonempty=False)]
    if not items:
        return none
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def verdict_of(holds: bool | None) -> str:
    """The verdict of a decision: True "holds", False "does not hold", None "cannot decide here"."""
    return CANNOT_DECIDE if holds is None else HOLDS if holds else DOES_NOT_HOLD


def claim(source: str, name: str, source_reports: str, measured: str, holds: bool | None | str, rule: str, *,
          quote: str = "", setup: str = "", seeds: str = "", interval: str = "") -> dict:
    """One row. ``holds``: True, False, or None when the interval does not decide (verdict "cannot decide here");
    or a verdict of :data:`VERDICTS` itself."""
    if not (holds is None or isinstance(holds, bool) or holds in VERDICTS):
        raise ValueError(f"holds={holds!r} must be True, False, None or a verdict of {VERDICTS}")
    verdict = holds if isinstance(holds, str) else verdict_of(holds)
    return {"source": source, "claim": name, "quote": quote, "source_reports": source_reports, "setup": setup,
            "seeds": seeds, "measured": measured, "interval": interval, "verdict": verdict, "rule": rule}


def not_measured(source: str, name: str, source_reports: str, why: str, rule: str, **context) -> dict:
    """A row for a claim this table lacks what it needs for; ``why`` says what is missing."""
    return claim(source, name, source_reports, f"Not measured here: {why}.", NOT_MEASURED, rule, **context)


def cannot_decide(source: str, name: str, source_reports: str, measured: str, why: str, rule: str,
                  **context) -> dict:
    """A row for a claim this setup cannot show or the interval does not decide: ``measured``, then ``why``."""
    text = f"{measured} Cannot decide here: {why}." if measured else f"Cannot decide here: {why}."
    return claim(source, name, source_reports, text, CANNOT_DECIDE, rule, **context)


def not_refuted_off_setup(table: pd.DataFrame, why: str) -> pd.DataFrame:
    """``table`` with every "does not hold" row turned into "cannot decide here" (its measurement kept, then
    ``why``): for claims measured on a substitute of the source's setup, where a result against the claim may belong
    to the substitute (an easier data set, a shorter schedule) rather than refute the source. Rows that hold stay."""
    out = table.copy()
    against = out["verdict"] == DOES_NOT_HOLD
    out.loc[against, "measured"] = [f"{m} Cannot decide here: {why}." for m in out.loc[against, "measured"]]
    out.loc[against, "verdict"] = CANNOT_DECIDE
    return out


def undecided_reason(intervals=(), threshold: float | None = None) -> str:
    """Why intervals do not decide: one observation gives none, every observation sits on the threshold (a tie), or
    one straddles it."""
    intervals = sequence("intervals", intervals, nonempty=False, item=_interval)
    if threshold is not None:
        number("threshold", threshold)
    if any(not iv.decided for iv in intervals):
        return "a single seed (or subset) gives no interval: more seeds would give one"
    if threshold is not None and any(iv.low == iv.high == threshold for iv in intervals):
        return "a tie at the measurement's resolution: every observation sits on the rule's threshold"
    return "an interval straddles the rule's threshold"


def decided(source: str, name: str, source_reports: str, measured: str, sides: list[bool | None], rule: str, *,
            why: str | None = None, intervals=(), threshold: float | None = None, refute: str = "any",
            **context) -> dict:
    """A row decided on intervals (``prunekit.report.intervals.side_of`` of each): "holds" when every interval is on the
    claim's side; "does not hold" when one is wholly on the other side (``refute="any"``: a claim the source makes
    of every case) or when more than half are and none is on the claim's side (``refute="majority"``: for a reading
    of the source that several intervals test at once, where one of them alone may be chance); else "cannot decide
    here" with ``why`` (by default :func:`undecided_reason` of ``intervals`` and the rule's ``threshold``). No
    interval at all cannot decide either."""
    sides = sequence("sides", sides, nonempty=False, item=_side)
    choice("refute", refute, ("any", "majority"))
    intervals = sequence("intervals", intervals, nonempty=False, item=_interval)
    if threshold is not None:
        number("threshold", threshold)
    against = sum(s is False for s in sides)
    refuted = against > 0 if refute == "any" else (against > len(sides) / 2 and not any(s is True for s in sides))
    holds = None if not sides else True if all(s is True for s in sides) else False if refuted else None
    if holds is None:
        why = why or ("no interval to decide on" if not sides else undecided_reason(intervals, threshold))
        return cannot_decide(source, name, source_reports, measured, why, rule, **context)
    return claim(source, name, source_reports, measured, holds, rule, **context)


def _side(name: str, side):
    """A side of ``side_of``: True, False or None, else a ``ValueError``."""
    if not (side is None or isinstance(side, bool)):
        raise ValueError(f"{name}={side!r} must be True, False or None (prunekit.report.intervals.side_of)")
    return side


def _row(name: str, row):
    """A claims row (a dict, :func:`claim`), else a ``ValueError``."""
    if not isinstance(row, dict):
        raise ValueError(f"{name}={row!r} must be a dict (a row made by claim)")
    return row


def _interval(name: str, iv):
    """An interval (``prunekit.report.intervals.Interval``: ``decided``, ``low``, ``high``), else a ``ValueError``."""
    if not all(hasattr(iv, a) for a in ("decided", "low", "high")):
        raise ValueError(f"{name}={iv!r} must be an Interval (prunekit.report.intervals)")
    return iv


def seed_list(seeds: Iterable[int]) -> str:
    """Seeds as a column value: "0, 1, 2" (sorted, distinct)."""
    seeds = sequence("seeds", seeds, nonempty=False, item=lambda n, v: checked_count(n, v, low=0))
    return ", ".join(str(s) for s in sorted(set(seeds)))


def claims_frame(rows: Iterable[dict]) -> pd.DataFrame:
    """The rows as a table with exactly :data:`COLUMNS` (a column a row lacks is empty)."""
    rows = sequence("rows", rows, nonempty=False, item=_row)
    frame = pd.DataFrame(rows, columns=COLUMNS).fillna({c: "" for c in COLUMNS if c != "verdict"})
    bad = set(frame["verdict"]) - set(VERDICTS)
    if bad:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {sorted(bad)}")
    return frame


def sentences(table: pd.DataFrame) -> list[str]:
    """Each row as one whole sentence: ``"<claim> (the source: ...): <measured> Verdict: <verdict>."``."""
    return [f"{r.claim} (the source: {r.source_reports}): {r.measured} Verdict: {r.verdict}."
            for r in table.itertuples()]


def missing_columns(df: pd.DataFrame, columns: Iterable[str]) -> list[str]:
    """The ``columns`` that ``df`` lacks, in order (an empty list when it has them all)."""
    return [c for c in sequence("columns", columns, nonempty=False) if c not in df.columns]


def lacking(missing: list[str], what: str = "table") -> str:
    """Why a claim is not measured: "the table lacks the column x" / "the columns x and y", or "the table is empty"."""
    missing = sequence("missing", missing, nonempty=False)
    if not missing:
        return f"the {what} is empty"
    return f"the {what} lacks the {'column' if len(missing) == 1 else 'columns'} {listing(missing)}"
