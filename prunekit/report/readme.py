"""The README's results section: the paper profile's claims table, where and how long it ran, headline figures.

``make readme`` (``python -m prunekit readme``) copies the paper profile's claims table
(``data/results/paper/claims.csv``) to ``docs/claims_paper.csv`` and the wall time of each executed notebook
(``data/executed/paper/``) to ``docs/run_paper.csv``, both committed, then rewrites the part of ``README.md`` between
the :data:`START` and :data:`END` markers from those two files alone (:func:`section`). A test renders the section
from the committed files again and fails when the README differs, so the README's table cannot drift from the
committed claims.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..core.checks import path
from ..core.paths import atomic_write, repo_root, results_root
from .claims import counts_text
from .site import HEADLINE_FIGURES, check_executed, environment_table, executed_dir
from .tables import preset_runs

__all__ = ["START", "END", "claims_file", "run_file", "section", "update_readme"]

START = "<!-- results:start (make readme writes this section from docs/claims_paper.csv; do not edit by hand) -->"
END = "<!-- results:end -->"
PROFILE = "paper"


def claims_file(root: str | os.PathLike | None = None) -> Path:
    """``docs/claims_paper.csv`` of the repository at ``root`` (default: this one)."""
    return (repo_root() if root is None else path("root", root)) / "docs" / f"claims_{PROFILE}.csv"


def run_file(root: str | os.PathLike | None = None) -> Path:
    """``docs/run_paper.csv`` of the repository at ``root`` (default: this one)."""
    return (repo_root() if root is None else path("root", root)) / "docs" / f"run_{PROFILE}.csv"


def _cell(text) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _substitutes(claims: pd.DataFrame) -> str:
    """" (source 000: <what stands in>; ...)": each source's substitute setups, as its rows' ``setup`` says them."""
    found = {}
    for r in claims.itertuples():
        setup = str(getattr(r, "setup", ""))
        if "substitute setup: " in setup:
            what = setup.split("substitute setup: ", 1)[1].rstrip(")")
            found.setdefault(str(r.source).split(" ", 1)[0], dict.fromkeys([]))[what] = None
    return (" (" + "; ".join(f"source {s}: {' / '.join(w)}" for s, w in found.items()) + ")") if found else ""


def section(claims: pd.DataFrame, run: pd.DataFrame) -> str:
    """The README's results section (markers included) from a claims table (``prunekit.report.tables.gather_claims``)
    and the run table (columns ``notebook``, ``wall_time_s``, ``machine``)."""
    total = float(run["wall_time_s"].sum())
    times = ", ".join(f"{r.notebook[:2]} {_minutes(r.wall_time_s)}" for r in run.itertuples())
    lines = [START, "", f"## Results of the `{PROFILE}` profile", "",
             f"Run by `make reproduce PROFILE={PROFILE}` on {run['machine'].iloc[0]}: {_minutes(total)} in all "
             f"({times}), notebooks in order (a run that finds its models already stored is faster; the table of "
             f"profiles below gives each notebook's time from an empty model store). {len(claims)} rows: "
             f"{counts_text(claims)}. "
             "Each verdict follows the rule in its notebook's claims table, on the interval shown: \"holds\" or "
             "\"does not hold\" only when the interval clears the rule's threshold, \"cannot decide here\" when it "
             "does not or when the setup cannot show the effect (the row says why). One policy for every source: a row "
             f"decided on a substitute of the source's setup{_substitutes(claims)} reads \"holds here (substitute "
             "setup)\" or \"does not hold here (substitute setup)\", whichever way it goes, and is counted apart from "
             "the rows decided on the source's own setup; the sources' own numbers are for their own setups, so "
             "compare directions. Rows of kind \"extension\" are this project's extensions, variants and questions, "
             "not claims of the sources. Each row's setup, seeds, the source's sentence (where it stands in the "
             "source, and whether it is the authors' words) and the rule are in `docs/claims_paper.csv`; "
             "`make report PROFILE=paper` builds the executed notebooks as a site.", "",
             "| notebook | source | claim | kind | the source reports | this run | interval | verdict |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in claims.itertuples():
        interval = getattr(r, "interval", "")
        interval = "" if not isinstance(interval, str) else interval
        kind = getattr(r, "kind", "source")
        lines.append(f"| {str(r.notebook).zfill(2)} | {_cell(r.source.split(' ', 1)[0])} | {_cell(r.claim)} | "
                     f"{_cell(kind if isinstance(kind, str) else 'source')} | {_cell(r.source_reports)} | "
                     f"{_cell(r.measured)} | {_cell(interval)} | **{_cell(r.verdict)}** |")
    lines.append("")
    for name, caption in HEADLINE_FIGURES.items():
        png = f"figures/{name}_{PROFILE}.png"
        if (repo_root() / png).exists():
            lines += [f"![{caption}]({png})", "", f"*{caption}.*", ""]
    return "\n".join(lines + [END])


def update_readme(root: str | os.PathLike | None = None) -> Path:
    """Copy the paper profile's claims and run times into ``docs/`` and rewrite the README's results section from
    them. A ValueError, before anything is written, when the paper profile has not been run, or when a table or an
    executed notebook is not a run of its own parameters (``prunekit.report.site.check_executed``)."""
    root = repo_root() if root is None else path("root", root)
    claims_csv = results_root() / PROFILE / "claims.csv"
    notebooks = sorted(executed_dir(PROFILE).glob("[0-9][0-9]_*.ipynb"))
    if not claims_csv.exists() or not notebooks:
        raise ValueError(f"the {PROFILE} profile has not been run here (no {claims_csv} or no executed notebooks): "
                         f"make reproduce PROFILE={PROFILE} first")
    preset_runs(PROFILE)  # a ValueError when a table was made with other parameters than the profile's
    check_executed(PROFILE, notebooks)  # and when an executed notebook (whose wall time the README shows) was
    readme = root / "README.md"
    text = readme.read_text()
    if text.count(START) != 1 or text.count(END) != 1:
        raise ValueError(f"README.md must hold the markers {START!r} and {END!r} once each")
    claims = pd.read_csv(claims_csv, dtype={"notebook": str})
    packages, runs = environment_table(notebooks)
    machine = packages.set_index("component")["version"]
    gpu = machine["GPU"]
    run = runs[["notebook", "wall_time_s"]].assign(
        machine=f"{machine['CPU']}" + (f" and {gpu}" if gpu != "none" else ", no GPU"))
    atomic_write(claims_file(root), lambda tmp: claims.to_csv(tmp, index=False))
    atomic_write(run_file(root), lambda tmp: run.to_csv(tmp, index=False))
    head, rest = text.split(START)
    _, tail = rest.split(END)
    atomic_write(readme, lambda tmp: tmp.write_text(head + section(claims, run) + tail))
    return readme
