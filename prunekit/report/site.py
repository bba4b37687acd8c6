"""A static site of one profile's executed notebooks, readable without running anything (``make report``).

``build_report(profile)`` turns ``data/executed/<profile>/NN_*.ipynb`` into ``data/report/<profile>/``:

- ``index.html``: the claims table of all four sources (``data/results/<profile>/claims.csv``, ``make claims``): claim,
  what the source reports, what this run measured, the verdict, and a link to the notebook section that shows it;
  then the headline figures;
- one page per notebook (``NN_name.html``): nbconvert's ``lab`` template, as JupyterLab shows the executed notebook;
- ``environment.html``: package versions, the machine, the wall time of each notebook and its seeds;
- ``api/``: the API reference, generated from the package's docstrings by pdoc (:func:`build_api_reference`).

Why nbconvert with its lab template: it is installed with JupyterLab already, works offline, renders an executed
notebook as JupyterLab shows it (figures, tables, the alt text prunekit writes) without running anything, and its pages
are plain files that need no server. Jupyter Book or Quarto would add a documentation build system for seven pages.
MathJax comes from the ``jupyter-server-mathjax`` package and is copied beside the pages, so formulas render offline.
Nothing is executed here, and a page whose notebook has not changed since it was written is not converted again.
Why pdoc for the API reference: one package with no configuration, it reads the docstrings' reStructuredText as they
are written, builds the whole package in about ten seconds on these machines, and its pages are static files too
(Sphinx autodoc would add a conf.py and a build tree; mkdocstrings a MkDocs site).
"""

from __future__ import annotations

import ast
import hashlib
import html
import json
import os
import platform
import re
import shutil
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import pandas as pd

from ..core.paths import atomic_write, figures_dir, repo_root, results_root
from ..core.checks import file_name, sequence, text
from ..core.checks import path as checked_path
from ..core.config import check_profile
from .catalog import headline_figures
from .claims import counts_text
from .results import committed_defaults, notebook_defaults, run_overrides
from .tables import preset_runs

__all__ = ["HEADLINE_FIGURES", "report_dir", "executed_dir", "check_executed", "build_report", "build_api_reference",
           "notebook_page", "seeds_of", "environment_table"]

API_PACKAGES = ("prunekit", "prunekit.core", "prunekit.pruning", "prunekit.measures", "prunekit.studies",
                "prunekit.report", "!prunekit.measures._.*")  # private engines stay out of the reference

# the figures the index shows first (each study's, prunekit.report.catalog.STUDIES), as figures/<name>_<profile>.png
HEADLINE_FIGURES = headline_figures()
PACKAGES = ("torch", "torchvision", "numpy", "pandas", "scipy", "scikit-learn", "matplotlib", "seaborn", "dask",
            "papermill", "nbconvert", "jupyterlab")
VERDICT_CLASS = {"holds": "holds", "does not hold": "fails", "holds here (substitute setup)": "holds",
                 "does not hold here (substitute setup)": "fails", "cannot decide here": "undecided",
                 "not measured here": "unmeasured"}
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; color: #1f2328; line-height: 1.45; }
nav { margin-bottom: 1.5rem; } nav a { margin-right: 1rem; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { border: 1px solid #d0d7de; padding: 0.35rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
.verdict { font-weight: 600; white-space: nowrap; }
.holds { color: #1a7f37; } .fails { color: #cf222e; } .undecided { color: #9a6700; } .unmeasured { color: #6e7781; }
figure { margin: 1.5rem 0; } figure img { max-width: 100%; border: 1px solid #d0d7de; }
figcaption { color: #57606a; font-size: 0.9rem; }
"""


def report_dir(profile: str) -> Path:
    """``data/report/<profile>/`` in the repository."""
    return repo_root() / "data" / "report" / check_profile(profile)


def executed_dir(profile: str) -> Path:
    """``data/executed/<profile>/`` in the repository, where ``make reproduce`` writes the executed notebooks."""
    return repo_root() / "data" / "executed" / check_profile(profile)


def check_executed(profile: str, notebooks: Sequence[str | os.PathLike]) -> None:
    """A ValueError naming the first executed notebook that is not a run of ``profile``'s own parameters, checked as
    the tables are (``prunekit.report.tables.preset_runs``): the values papermill injected (its metadata) over the
    defaults of the executed copy's ``parameters`` cell must be the committed notebook's defaults
    (``prunekit.report.results.committed_defaults``) with ``profile``; a notebook executed otherwise than by papermill
    has parameters nobody recorded and is refused too."""
    check_profile(profile)
    for where in sequence("notebooks", notebooks, nonempty=False):
        where = checked_path("notebooks", where)
        papermill = json.loads(where.read_text()).get("metadata", {}).get("papermill")
        if not isinstance(papermill, dict) or not isinstance(papermill.get("parameters"), dict):
            raise ValueError(f"{where} was not executed by papermill, so the parameters it ran with are unknown: "
                             f"rerun it (make reproduce PROFILE={profile}) before publishing")
        ran = {**notebook_defaults(where), **papermill["parameters"]}
        reference = committed_defaults(where.stem)
        overrides = run_overrides(ran, notebook_defaults(where.stem) if reference is None else reference)
        if ran.get("profile") != profile or overrides:
            raise ValueError(f"{where} is a run with parameters that are not the {profile!r} profile's own (profile="
                             f"{ran.get('profile')!r}, overrides: {overrides}): rerun it with its defaults (make "
                             f"reproduce PROFILE={profile}) before publishing")


def notebook_page(name: str) -> str:
    """The page of notebook ``name`` ("05_weight_utility" or its file name) in the site."""
    return f"{Path(file_name('name', Path(text('name', name)).name)).stem}.html"


def seeds_of(nb) -> dict:
    """The seeds an executed notebook ran with: every parameter whose name contains "seed", its value as papermill
    injected it or, if not injected, the default of the ``parameters`` cell (``None`` there means the profile's)."""
    values = {}
    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
            for node in ast.parse(cell.source).body:
                target = node.target if isinstance(node, ast.AnnAssign) else (
                    node.targets[0] if isinstance(node, ast.Assign) else None)
                if isinstance(target, ast.Name) and "seed" in target.id and node.value is not None:
                    values[target.id] = ast.literal_eval(node.value)
    injected = nb.metadata.get("papermill", {}).get("parameters", {})
    values.update({k: v for k, v in injected.items() if "seed" in k})
    return values


def environment_table(notebooks: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(packages, runs)``: the installed version of each package in :data:`PACKAGES` (and Python, prunekit, the
    platform and CPU), and one row per executed notebook: its wall time (papermill's), start, profile, device and
    seeds."""
    import nbformat
    import torch

    notebooks = [checked_path(f"notebooks[{i}]", nb) for i, nb in enumerate(sequence("notebooks", notebooks,
                                                                                       nonempty=False))]
    rows = [{"component": "python", "version": platform.python_version()}]
    for name in ("prunekit", *PACKAGES):
        try:
            rows.append({"component": name, "version": metadata.version(name)})
        except metadata.PackageNotFoundError:
            rows.append({"component": name, "version": "not installed"})
    cpu = _cpu_model()
    rows += [{"component": "platform", "version": platform.platform()},
             {"component": "CPU", "version": f"{cpu}, {os.cpu_count()} logical cores"},
             {"component": "GPU", "version": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"}]
    runs = []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        pm = nb.metadata.get("papermill", {})
        params = {**pm.get("default_parameters", {}), **pm.get("parameters", {})}
        duration = pm.get("duration")
        profile = params.get("profile") or _default_profile(nb)
        runs.append({"notebook": path.stem, "wall_time_s": round(float(duration), 1) if duration else None,
                     "started": (pm.get("start_time") or "")[:19].replace("T", " "),
                     "profile": profile, "device": params.get("device"),
                     "parameters with seed": ", ".join(f"{k}={v}" for k, v in seeds_of(nb).items()) or "-",
                     "seeds in its tables": _table_seeds(path.stem[:2], profile)})
    return pd.DataFrame(rows), pd.DataFrame(runs)


def _default_profile(nb) -> str | None:
    return _parameter(nb, "profile")


def _parameter(nb, name: str):
    """The default of ``name`` in the notebook's ``parameters`` cell (None if it has none)."""
    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
            for node in ast.parse(cell.source).body:
                target = node.target if isinstance(node, ast.AnnAssign) else (
                    node.targets[0] if isinstance(node, ast.Assign) else None)
                if isinstance(target, ast.Name) and target.id == name and node.value is not None:
                    return ast.literal_eval(node.value)
    return None


def _table_seeds(number: str, profile: str | None) -> str:
    """The training seeds found in the ``seed`` column of the notebook's result tables of ``profile``."""
    seeds = set()
    if profile:
        for csv in (results_root() / profile).glob(f"{number}_*.csv"):
            try:
                head = pd.read_csv(csv, nrows=0).columns
                if "seed" in head:
                    seeds |= set(pd.read_csv(csv, usecols=["seed"])["seed"].dropna().astype(int))
            except (OSError, ValueError):
                continue
    return ", ".join(map(str, sorted(seeds))) or "-"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _write(path: Path, text: str) -> None:
    """Write a page atomically, readable by everyone (a web server serving the folder, say)."""
    atomic_write(path, lambda tmp: tmp.write_text(text))
    path.chmod(0o644)


def _page(title: str, body: str, profile: str) -> str:
    nav = (f'<nav><a href="index.html">Claims and figures</a><a href="environment.html">Environment</a>'
           f'<a href="api/prunekit.html">API reference</a>'
           f'<span>profile <code>{html.escape(profile)}</code></span></nav>')
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"/><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head>\n<body>\n{nav}\n<h1>{html.escape(title)}</h1>\n{body}\n</body>\n</html>\n")


def _package_hash() -> str:
    """SHA-256 of every ``.py`` file of the package (path and bytes), to rebuild the reference only when it changed."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def build_api_reference(out: str | os.PathLike) -> Path:
    """The API reference of the whole package in ``out`` (``out/prunekit.html`` and one page per module), generated
    by pdoc from the docstrings; skipped when ``out`` already holds the reference of the same source. Returns the
    package's page."""
    import pdoc
    import pdoc.render

    out = Path(out)
    stamp, page = out / ".source-sha256", out / "prunekit.html"
    source = _package_hash()
    if page.exists() and stamp.exists() and stamp.read_text() == source:
        return page
    if out.exists():
        shutil.rmtree(out)
    pdoc.render.configure(docformat="restructuredtext", footer_text="prunekit API reference")
    pdoc.pdoc(*API_PACKAGES, output_directory=out)
    stamp.write_text(source)
    return page


def _last_heading(page: str) -> str:
    """The id of the last h2 of a notebook page: every notebook ends with its claims section."""
    ids = re.findall(r'<h2 id="([^"]+)"', page)
    return ids[-1] if ids else ""


def _convert(src: Path, out: Path) -> str:
    """Write ``src`` (an executed notebook) as ``out`` with nbconvert's lab template, unless ``out`` is newer; returns
    the page. Local MathJax; no require.js (nothing on the page needs it, and offline it could not load)."""
    if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
        return out.read_text()
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", mathjax_url="mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full")
    body, _ = exporter.from_notebook_node(nbformat.read(src, as_version=4))
    body = re.sub(r'<script src="[^"]*require\.min\.js"></script>', "", body)
    # a notebook's link to its own rendered page (its first cell) means nothing inside the site: keep the text only
    body = re.sub(r'<a href="\.\./data/report/[^"]*">(.*?)</a>', r"\1", body)
    body = body.replace("<title>Notebook</title>", f"<title>{html.escape(src.stem)}</title>", 1)
    nav = ('<nav style="padding:0.5rem 1rem;font-family:sans-serif"><a href="index.html">Claims and figures</a> '
           '&middot; <a href="environment.html">Environment</a></nav>')
    body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + nav, body, count=1)
    _write(out, body)
    return body


def build_report(profile: str, executed: str | os.PathLike | None = None,
                 out: str | os.PathLike | None = None) -> Path:
    """Build the site of ``profile`` in ``out`` (default :func:`report_dir`) from the notebooks executed in
    ``executed`` (default :func:`executed_dir`) and the profile's claims table; returns the index path. A ValueError,
    before anything is written, when no notebook has been executed or the claims table is missing (``make
    reproduce`` and ``make claims`` make them), or when a table or an executed notebook is not a run of the profile's
    own parameters (:func:`check_executed`)."""
    import jupyter_server_mathjax

    check_profile(profile)
    executed = Path(executed) if executed is not None else executed_dir(profile)
    notebooks = sorted(executed.glob("[0-9][0-9]_*.ipynb"))
    claims_csv = results_root() / profile / "claims.csv"
    if not notebooks:
        raise ValueError(f"no executed notebooks in {executed}: run make reproduce PROFILE={profile}")
    if not claims_csv.exists():
        raise ValueError(f"no claims table {claims_csv}: run make claims PROFILE={profile}")
    preset_runs(profile)  # a ValueError when a table was made with other parameters than the profile's
    check_executed(profile, notebooks)  # and when an executed notebook was
    out = Path(out) if out is not None else report_dir(profile)
    out.mkdir(parents=True, exist_ok=True)
    mathjax = out / "mathjax"
    if not (mathjax / "MathJax.js").exists():
        shutil.copytree(Path(jupyter_server_mathjax.__file__).parent / "static", mathjax, dirs_exist_ok=True)
    anchors = {nb.stem: _last_heading(_convert(nb, out / notebook_page(nb.name))) for nb in notebooks}

    claims = pd.read_csv(claims_csv, dtype={"notebook": str})
    pages = {n[:2]: n for n in anchors}
    rows = []
    for r in claims.itertuples():
        page = pages.get(str(r.notebook).zfill(2))
        where = (f'<a href="{notebook_page(page)}#{html.escape(anchors[page], quote=True)}">{html.escape(page)}</a>'
                 if page else html.escape(str(r.notebook)))
        interval = getattr(r, "interval", "")
        interval = interval if isinstance(interval, str) else ""
        kind = getattr(r, "kind", "source")
        kind = kind if isinstance(kind, str) else "source"
        rows.append(f"<tr><td>{html.escape(str(r.source))}</td><td>{html.escape(str(r.claim))}</td>"
                    f"<td>{html.escape(kind)}</td>"
                    f"<td>{html.escape(str(r.source_reports))}</td><td>{html.escape(str(r.measured))}</td>"
                    f"<td>{html.escape(interval)}</td>"
                    f'<td class="verdict {VERDICT_CLASS.get(r.verdict, "")}">{html.escape(str(r.verdict))}</td>'
                    f"<td>{where}</td></tr>")
    summary = counts_text(claims)
    figures = []
    (out / "figures").mkdir(exist_ok=True)
    for name, caption in HEADLINE_FIGURES.items():
        png = figures_dir() / f"{name}_{profile}.png"
        if png.exists():
            shutil.copy2(png, out / "figures" / png.name)
            figures.append(f'<figure><img src="figures/{png.name}" alt="{html.escape(caption, quote=True)}"/>'
                           f"<figcaption>{html.escape(caption)} (<code>{png.name}</code>)</figcaption></figure>")
    links = "".join(f'<li><a href="{notebook_page(n)}">{html.escape(n)}</a></li>' for n in anchors)
    body = (f"<p>Checked on this run of the <code>{profile}</code> profile: {html.escape(summary)}. Each verdict "
            f"follows the rule stated in the notebook's claims table, on the interval shown (\"cannot decide here\" "
            f"when it straddles the rule's threshold or the setup cannot show the effect; \"here (substitute "
            f"setup)\" when this run stands in for the source's setup, whichever way it goes); the link opens the "
            f"section that shows it.</p>\n<table><thead><tr><th>source</th><th>claim</th><th>kind</th>"
            f"<th>the source reports</th><th>this run</th><th>interval</th><th>verdict</th><th>notebook</th></tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table>\n"
            f"<h2>Headline figures</h2>\n{''.join(figures) or '<p>No figures of this profile.</p>'}\n"
            f"<h2>Notebooks</h2>\n<ul>{links}</ul>\n")
    _write(out / "index.html", _page(f"prunekit: the {profile} profile", body, profile))
    packages, runs = environment_table(notebooks)
    env = (f"<h2>Notebooks</h2>{runs.to_html(index=False, na_rep='-', border=0)}"
           f"<h2>Software and machine</h2>{packages.to_html(index=False, border=0)}")
    _write(out / "environment.html", _page("Environment", env, profile))
    build_api_reference(out / "api")
    return out / "index.html"
