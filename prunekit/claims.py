"""One format for the sources' claims: a tidy table with one row per claim.

Columns: ``source`` (which study), ``claim`` (the claim in a few words), ``source_reports`` (what the source reports),
``measured`` (what this run measured, as a sentence built from its numbers), ``verdict`` (one of :data:`VERDICTS`) and
``rule`` (the rule that decided the verdict, with its thresholds). A claim that a table cannot decide -- a factor it
lacks, a single level of it, no paired rows, too few points for a fit -- gets the verdict ``"not measured here"`` and
``measured`` says why; a claims function never raises on such a table.
"""

from __future__ import annotations

from typing import Iterable

import pandas as pd

__all__ = ["COLUMNS", "VERDICTS", "HOLDS", "DOES_NOT_HOLD", "NOT_MEASURED", "claim", "not_measured", "claims_frame",
           "sentences", "missing_columns", "lacking", "plural", "listing"]

HOLDS, DOES_NOT_HOLD, NOT_MEASURED = "holds", "does not hold", "not measured here"
VERDICTS = (HOLDS, DOES_NOT_HOLD, NOT_MEASURED)
COLUMNS = ["source", "claim", "source_reports", "measured", "verdict", "rule"]


def plural(count: float, singular: str, plural_form: str | None = None, digits: int = 0) -> str:
    """``count`` with its noun in the right number: "1 point", "2 points", "0.5 points", "1 optimizer"."""
    if digits:
        text = f"{count:,.{digits}f}"
    else:
        text = f"{int(count):,}" if float(count).is_integer() else f"{count:g}"
    word = singular if float(text.replace(",", "")) == 1 else (plural_form or singular + "s")
    return f"{text} {word}"


def listing(items: Iterable, none: str = "none") -> str:
    """Items as prose: "a", "a and b", "a, b and c" (``none`` when empty)."""
    items = [str(i) for i in items]
    if not items:
        return none
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def claim(source: str, name: str, source_reports: str, measured: str, holds: bool | None, rule: str) -> dict:
    """One row; ``holds=None`` means the table could not decide (verdict "not measured here")."""
    verdict = NOT_MEASURED if holds is None else HOLDS if holds else DOES_NOT_HOLD
    return {"source": source, "claim": name, "source_reports": source_reports, "measured": measured,
            "verdict": verdict, "rule": rule}


def not_measured(source: str, name: str, source_reports: str, why: str, rule: str) -> dict:
    """A row for a claim this table cannot decide; ``why`` says what is missing."""
    return claim(source, name, source_reports, f"Not measured here: {why}.", None, rule)


def claims_frame(rows: Iterable[dict]) -> pd.DataFrame:
    """The rows as a table with exactly :data:`COLUMNS`."""
    frame = pd.DataFrame(list(rows), columns=COLUMNS)
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
    return [c for c in columns if c not in df.columns]


def lacking(missing: list[str], what: str = "table") -> str:
    """Why a claim is not measured: "the table lacks the column x" / "the columns x and y", or "the table is empty"."""
    if not missing:
        return f"the {what} is empty"
    return f"the {what} lacks the {'column' if len(missing) == 1 else 'columns'} {listing(missing)}"
