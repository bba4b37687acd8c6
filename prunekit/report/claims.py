"""One format for the sources' claims: a tidy table with one row per claim, and one way to declare a claim.

Columns (:data:`COLUMNS`): ``source`` (which study), ``claim`` (the claim in a few words), ``kind`` ("source": a claim
the source makes; "extension": this project's extension, variant or question, counted apart), ``quote`` (the source's
own sentence, or a paraphrase marked as one), ``quote_where`` (where in the source it stands: abstract, section,
table or figure, and whether it is the authors' words), ``source_reports`` (what the source reports, in short),
``setup`` (the setup that decided the row: the source's own, a substitute for it, or this project's extension, said
so), ``seeds`` (the training seeds behind it), ``measured`` (what this run measured, as a sentence built from its
numbers), ``interval`` (the interval the verdict was decided on, with how it was made; empty where the measurement is
exact), ``verdict`` (one of :data:`VERDICTS`) and ``rule`` (the rule that decided the verdict, with its thresholds, in
the source's terms).

Verdicts: "holds" and "does not hold" only when the interval clears the rule's threshold on one side; "cannot decide
here" when it straddles it, or when the setup cannot show the effect (``measured`` says why); "not measured here" when
the table lacks what the claim needs (a factor, a level, a column; ``measured`` says what). A claims function never
raises on such a table. One policy for every source: a row decided on a *substitute* of the source's setup (other
data, a smaller scale) gets "holds here (substitute setup)" or "does not hold here (substitute setup)"
(:func:`on_substitute`), whichever way it goes, and is counted apart from the rows decided on the source's own setup.

A claim is declared once, as a :class:`ClaimSpec` (the source's sentence as a :class:`Quote`, what the source reports,
the rule; a rule that depends on a threshold the caller chooses is a template, :meth:`ClaimSpec.formatted`), and
decided by one function of its study, which writes the row with the spec's methods (:meth:`ClaimSpec.decided`,
:meth:`ClaimSpec.row`, :meth:`ClaimSpec.cannot_decide`, :meth:`ClaimSpec.not_measured`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterable

import pandas as pd

from ..core.checks import choice, count as checked_count, number, sequence, text as checked_text

__all__ = ["COLUMNS", "VERDICTS", "KINDS", "HOLDS", "DOES_NOT_HOLD", "HOLDS_SUBSTITUTE", "DOES_NOT_HOLD_SUBSTITUTE",
           "CANNOT_DECIDE", "NOT_MEASURED", "Quote", "ClaimSpec", "claim", "not_measured", "cannot_decide", "decided", "holds_of",
           "undecided_reason", "verdict_of", "on_substitute", "claims_frame", "sentences", "missing_columns",
           "lacking", "plural", "listing", "seed_list", "verdict_counts", "counts_text"]

HOLDS, DOES_NOT_HOLD, CANNOT_DECIDE, NOT_MEASURED = "holds", "does not hold", "cannot decide here", "not measured here"
HOLDS_SUBSTITUTE = "holds here (substitute setup)"
DOES_NOT_HOLD_SUBSTITUTE = "does not hold here (substitute setup)"
VERDICTS = (HOLDS, DOES_NOT_HOLD, HOLDS_SUBSTITUTE, DOES_NOT_HOLD_SUBSTITUTE, CANNOT_DECIDE, NOT_MEASURED)
KINDS = ("source", "extension")  # a claim of the source / this project's extension, variant or question
COLUMNS = ["source", "claim", "kind", "quote", "quote_where", "source_reports", "setup", "seeds", "measured",
           "interval", "verdict", "rule"]


@dataclass(frozen=True)
class Quote:
    """The sentence of the source a claim rests on: ``text``, ``where`` it stands in the source ("abstract",
    "Sec. 4.3", "Table 1", "Fig. 1 caption"), and whether it is a ``paraphrase`` (of text not quoted here, or of a
    summary of the source) rather than the authors' own words."""

    text: str
    where: str
    paraphrase: bool = False

    def __post_init__(self):  # a Quote needs its text and where it stands in the source
        checked_text("text", self.text)
        checked_text("where", self.where)

    @property
    def location(self) -> str:
        """``where``, and whose words: "Sec. 3 (paraphrase, not the authors' words)"."""
        whose = "paraphrase, not the authors' words" if self.paraphrase else "the authors' words"
        return f"{self.where} ({whose})"


@dataclass(frozen=True)
class ClaimSpec:
    """One claim, declared once: the ``source`` (its id and title), the ``claim`` in a few words, the source's
    :class:`Quote`, what the source ``reports`` in short, the ``rule`` that decides it, and its ``kind`` ("source" or
    "extension"). Its methods write the claims-table row of each outcome."""

    source: str
    claim: str
    quote: Quote
    reports: str
    rule: str
    kind: str = "source"

    def __post_init__(self):
        for name in ("source", "claim", "reports", "rule"):
            checked_text(name, getattr(self, name))
        if not isinstance(self.quote, Quote):
            raise ValueError(f"quote={self.quote!r} must be a Quote (the source's sentence and where it stands)")
        choice("kind", self.kind, KINDS)

    def labelled(self, label: str, *, kind: str | None = None, rule: str | None = None) -> "ClaimSpec":
        """The same claim for one group of setups: ``"<claim> (<label>)"`` (and another ``kind`` or ``rule``)."""
        checked_text("label", label)
        if kind is not None:
            choice("kind", kind, KINDS)
        if rule is not None:
            checked_text("rule", rule)
        return dataclasses.replace(self, claim=f"{self.claim} ({label})", kind=kind or self.kind,
                                   rule=rule or self.rule)

    def formatted(self, **values) -> "ClaimSpec":
        """The same claim with its rule's fields filled: a rule that depends on a threshold the caller chooses is
        declared as a template (``"... >= {min_spread:.0%}"``, ``str.format`` fields) and filled with the values of
        one call. ``ValueError`` when the template names a value not given."""
        try:
            rule = self.rule.format(**values)
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(f"rule={self.rule!r} cannot be filled with {sorted(values)}: {err!r}") from None
        return dataclasses.replace(self, rule=rule)

    def _context(self, context: dict) -> dict:
        return {"quote": self.quote.text, "quote_where": self.quote.location, "kind": self.kind, **context}

    def row(self, measured: str, holds: bool | None | str, **context) -> dict:
        """The row of a decided claim (``holds``: True, False, None or a verdict, as :func:`claim` takes it)."""
        return claim(self.source, self.claim, self.reports, measured, holds, self.rule, **self._context(context))

    def not_measured(self, why: str, **context) -> dict:
        return not_measured(self.source, self.claim, self.reports, why, self.rule, **self._context(context))

    def cannot_decide(self, measured: str, why: str, **context) -> dict:
        return cannot_decide(self.source, self.claim, self.reports, measured, why, self.rule,
                             **self._context(context))

    def decided(self, measured: str, sides: list[bool | None], **options) -> dict:
        """:func:`decided` for this claim (``intervals``, ``threshold``, ``refute``, ``why`` and the context)."""
        keys = ("why", "intervals", "threshold", "refute")
        decide = {k: options.pop(k) for k in keys if k in options}
        return decided(self.source, self.claim, self.reports, measured, sides, self.rule, **decide,
                       **self._context(options))


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
          quote: str = "", quote_where: str = "", setup: str = "", seeds: str = "", interval: str = "",
          kind: str = "source") -> dict:
    """One row. ``holds``: True, False, or None when the interval does not decide (verdict "cannot decide here");
    or a verdict of :data:`VERDICTS` itself. ``kind``: "source" or "extension" (:data:`KINDS`)."""
    if not (holds is None or isinstance(holds, bool) or holds in VERDICTS):
        raise ValueError(f"holds={holds!r} must be True, False, None or a verdict of {VERDICTS}")
    verdict = holds if isinstance(holds, str) else verdict_of(holds)
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not supported; allowed values: {', '.join(map(repr, KINDS))}")
    return {"source": source, "claim": name, "kind": kind, "quote": quote, "quote_where": quote_where,
            "source_reports": source_reports, "setup": setup, "seeds": seeds, "measured": measured,
            "interval": interval, "verdict": verdict, "rule": rule}


def not_measured(source: str, name: str, source_reports: str, why: str, rule: str, **context) -> dict:
    """A row for a claim this table lacks what it needs for; ``why`` says what is missing."""
    return claim(source, name, source_reports, f"Not measured here: {why}.", NOT_MEASURED, rule, **context)


def cannot_decide(source: str, name: str, source_reports: str, measured: str, why: str, rule: str,
                  **context) -> dict:
    """A row for a claim this setup cannot show or the interval does not decide: ``measured``, then ``why``."""
    text = f"{measured} Cannot decide here: {why}." if measured else f"Cannot decide here: {why}."
    return claim(source, name, source_reports, text, CANNOT_DECIDE, rule, **context)


def on_substitute(table: pd.DataFrame, why: str | None) -> pd.DataFrame:
    """``table`` decided on a substitute of the source's setup (``why``: what stands in for what; None: the source's
    own setup, the table is returned as it is): on the rows of the source's claims (kind "source"), "holds" becomes
    "holds here (substitute setup)" and "does not hold" "does not hold here (substitute setup)", both ways alike, and
    the row's ``setup`` says what the substitute is. Such rows are counted apart from the rows decided on the source's
    own setup (:func:`verdict_counts`): a substitute (an easier data set, a shorter schedule) can show a result the
    source's setup would not, for the claim as against it. Rows of this project's extensions are left as they are."""
    if why is None:
        return table
    out = table.copy()
    source = (out["kind"] == "source") if "kind" in out.columns else pd.Series(True, index=out.index)
    out.loc[source, "verdict"] = out.loc[source, "verdict"].replace({HOLDS: HOLDS_SUBSTITUTE,
                                                                     DOES_NOT_HOLD: DOES_NOT_HOLD_SUBSTITUTE})
    out.loc[source, "setup"] = [f"{s} (substitute setup: {why})" if s else f"substitute setup: {why}"
                                for s in out.loc[source, "setup"]]
    return out


def verdict_counts(table: pd.DataFrame) -> dict[str, dict[str, int]]:
    """``{kind: {verdict: count}}`` of a claims table, the kinds and verdicts in their order (absent ones left
    out): the sources' own claims counted apart from this project's extensions."""
    kinds = table["kind"] if "kind" in table.columns else pd.Series("source", index=table.index)
    out = {}
    for kind in KINDS:
        verdicts = table.loc[kinds == kind, "verdict"].value_counts()
        counts = {v: int(verdicts[v]) for v in VERDICTS if v in verdicts.index}
        if counts:
            out[kind] = counts
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


def holds_of(sides, refute: str = "any") -> bool | None:
    """The verdict of several sides (``prunekit.report.intervals.side_of``: True, False or None each): True when
    every one is True; False when one is False (``refute="any"``) or when more than half are False and none is True
    (``refute="majority"``); else None. No side at all: None."""
    sides = sequence("sides", sides, nonempty=False, item=_side)
    choice("refute", refute, ("any", "majority"))
    against = sum(s is False for s in sides)
    refuted = against > 0 if refute == "any" else (against > len(sides) / 2 and not any(s is True for s in sides))
    return None if not sides else True if all(s is True for s in sides) else False if refuted else None


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
    holds = holds_of(sides, refute)
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


def counts_text(table: pd.DataFrame) -> str:
    """The verdicts of a claims table in words, the sources' own claims apart from this project's extensions, and
    the source's setup apart from a substitute: "26 claims of the sources (3 holds, 10 holds here (substitute setup),
    ...) and 17 of this project's extensions (11 holds, ...)"."""
    counts = verdict_counts(table)
    parts = []
    for kind, label in (("source", "claim of the sources"), ("extension", "row of this project's extensions")):
        if kind in counts:
            n = sum(counts[kind].values())
            what = plural(n, label, label.replace("claim", "claims").replace("row of", "rows of"))
            parts.append(f"{what} (" + ", ".join(f"{c} {v}" for v, c in counts[kind].items()) + ")")
    return listing(parts, none="no claims")


def claims_frame(rows: Iterable[dict]) -> pd.DataFrame:
    """The rows as a table with exactly :data:`COLUMNS` (a column a row lacks is empty)."""
    rows = sequence("rows", rows, nonempty=False, item=_row)
    frame = pd.DataFrame(rows, columns=COLUMNS).fillna({c: "" for c in COLUMNS if c not in ("verdict", "kind")})
    frame["kind"] = frame["kind"].fillna("source")
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
