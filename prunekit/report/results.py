"""Results that know their parameters: where one notebook run writes its tables, figures and claims.

A notebook opens its results with ``results = Results.open("02_pruning_curves", globals())`` after its ``parameters``
cell: the run's parameters are the current values of the names that cell assigns (papermill's injected values
included), compared with the cell's own defaults read from the committed notebook. A run with the defaults is the
profile's own and writes to ``data/results/<profile>/`` and ``figures/<name>_<profile>.png``; a run with any other
value writes to ``data/results/<profile>+<hash>/`` and ``figures/<name>_<profile>+<hash>.png`` (the hash: of the
overridden values), never over the profile's. Beside its tables each run writes ``<notebook>.params.json``: the
notebook, the profile, every parameter, the overrides, whether it is the profile's preset, the git commit and the
files that differed from it.

The defaults a run is compared with are the *committed* notebook's (``git show HEAD:notebooks/<name>.ipynb``; the file
itself outside a git checkout): a default edited in the working copy is an override, so the run of a researcher who
edited a notebook's parameters is kept under ``<profile>+<hash>`` with exactly those edits listed, and never passes
for the preset. Other uncommitted changes to what makes the results (the package, a notebook, the pinned
requirements: :data:`RESULT_SOURCES`) are recorded (``changed``); ``make claims``, ``make readme`` and ``make report``
refuse a profile's table whose run was not its preset or was made from such a working tree
(``prunekit.report.tables.preset_runs``).
"""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..core.checks import file_name
from ..core.checks import path as checked_path
from ..core.config import check_profile
from ..core.paths import atomic_write, repo_root
from .figures import save_figure
from .tables import results_dir, save_table

__all__ = ["Results", "RESULT_SOURCES", "notebook_defaults", "committed_defaults", "run_overrides", "run_label",
           "git_commit", "uncommitted_changes", "unpublishable_changes"]

# what makes a run's results: an uncommitted change to these (a folder ends with "/") keeps a run from being published
RESULT_SOURCES = ("prunekit/", "notebooks/", "pyproject.toml", "requirements.lock")


def _notebook_path(notebook: str | Path) -> Path:
    path = checked_path("notebook", notebook)
    return path if path.suffix == ".ipynb" else repo_root() / "notebooks" / f"{path.name}.ipynb"


def notebook_defaults(notebook: str | Path) -> dict:
    """The names a notebook's ``parameters`` cell assigns, with their literal default values (``notebook``: a path,
    or a name such as ``"02_pruning_curves"`` of ``notebooks/``). A ValueError when the notebook has no such cell or
    a default that is not a literal."""
    path = _notebook_path(notebook)
    if not path.is_file():
        raise ValueError(f"notebook={str(notebook)!r} not found (looked for {path}): its parameters' defaults decide "
                         "whether a run is its profile's own")
    return _parameters_cell(json.loads(path.read_text()), path)


def _parameters_cell(nb: dict, where) -> dict:
    """The literal defaults of the cell tagged ``parameters`` of the notebook ``nb`` (JSON), ``where`` naming it."""
    source = next(("".join(c["source"]) for c in nb["cells"]
                   if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if source is None:
        raise ValueError(f"{where} has no cell tagged 'parameters'")
    defaults = {}
    for node in ast.parse(source).body:
        target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0] if isinstance(node, ast.Assign) \
            else None
        if isinstance(target, ast.Name) and node.value is not None:
            try:
                defaults[target.id] = ast.literal_eval(node.value)
            except ValueError as err:
                raise ValueError(f"{where}: the default of {target.id!r} is not a literal") from err
    return defaults


def _git(*args: str) -> str | None:
    """The output of ``git <args>`` in the repository, or None outside a git checkout (or without git)."""
    try:
        return subprocess.run(["git", *args], cwd=repo_root(), capture_output=True, text=True, check=True,
                              timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None


def committed_defaults(notebook: str | Path) -> dict | None:
    """The defaults of the notebook's ``parameters`` cell as committed (``git show HEAD:notebooks/<name>.ipynb``):
    what a preset run is compared with. None outside a git checkout or for a notebook not committed."""
    path = _notebook_path(notebook)
    try:
        relative = path.resolve().relative_to(repo_root().resolve())
    except ValueError:
        return None
    text = _git("show", f"HEAD:{relative.as_posix()}")
    return None if text is None else _parameters_cell(json.loads(text), f"HEAD:{relative.as_posix()}")


def run_overrides(parameters: dict, reference: dict) -> dict:
    """The parameters (other than ``profile``) whose value differs from ``reference`` (the preset's defaults) or
    that ``reference`` lacks, compared in JSON's terms."""
    return {k: v for k, v in parameters.items() if k != "profile"
            and (k not in reference or _canonical(v) != _canonical(reference[k]))}


def _canonical(value):
    """A parameter's value in JSON's terms (tuples as lists), for comparisons and hashes."""
    return json.loads(json.dumps(value, default=str))


def run_label(profile: str, overrides: dict) -> str:
    """``profile`` for a run with the defaults, else ``<profile>+<first 8 hex of the SHA-256 of the overrides>``."""
    check_profile(profile)
    if not overrides:
        return profile
    blob = json.dumps(_canonical(overrides), sort_keys=True, separators=(",", ":"))
    return f"{profile}+{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


def git_commit() -> str:
    """The repository's commit (with ``+dirty`` when files differ from it), or "unknown" outside a git checkout."""
    head, changed = _git("rev-parse", "HEAD"), uncommitted_changes()
    if head is None or changed is None:
        return "unknown"
    return head.strip() + ("+dirty" if changed else "")


def uncommitted_changes() -> list[str] | None:
    """The tracked files that differ from the commit (``git status``), relative to the repository; None outside a git
    checkout."""
    out = _git("status", "--porcelain", "--untracked-files=no")
    return None if out is None else sorted(line[3:].split(" -> ")[-1] for line in out.splitlines() if line.strip())


def unpublishable_changes(record: dict) -> list[str]:
    """The uncommitted changes to :data:`RESULT_SOURCES` a run's ``params.json`` records (``["unknown files"]`` for
    a run from a dirty tree recorded without the list): a run made from them is not the committed code's."""
    if not str(record.get("commit", "")).endswith("+dirty"):
        return []
    changed = record.get("changed")
    if not isinstance(changed, list):
        return ["unknown files"]
    return [f for f in changed if any(f == s or (s.endswith("/") and f.startswith(s)) for s in RESULT_SOURCES)]


@dataclass
class Results:
    """One notebook run's outputs (see the module docstring): ``label`` names its folder and figures."""

    notebook: str
    profile: str
    parameters: dict
    overrides: dict = field(default_factory=dict)

    def __post_init__(self):
        file_name("notebook", self.notebook)
        check_profile(self.profile)

    @property
    def label(self) -> str:
        return run_label(self.profile, self.overrides)

    @property
    def preset(self) -> bool:
        return not self.overrides

    @property
    def folder(self) -> Path:
        return results_dir(self.label)

    @classmethod
    def open(cls, notebook: str, namespace: dict) -> "Results":
        """The results of notebook ``notebook`` (its name in ``notebooks/``) run with the parameter values in
        ``namespace`` (a notebook's ``globals()``); writes ``<notebook>.params.json`` at once."""
        file_name("notebook", notebook)
        defaults = notebook_defaults(notebook)
        missing = [k for k in defaults if k not in namespace]
        if missing:
            raise ValueError(f"the parameters {', '.join(missing)} of {notebook} are not defined: open the results "
                             "after the parameters cell")
        parameters = {k: _canonical(namespace[k]) for k in defaults}
        if "profile" not in parameters:
            raise ValueError(f"{notebook}'s parameters cell has no 'profile'")
        committed = committed_defaults(notebook)
        overrides = run_overrides(parameters, defaults if committed is None else committed)
        results = cls(notebook, check_profile(parameters["profile"]), parameters, overrides)
        edited = sorted(k for k in defaults if committed is not None and k != "profile"
                        and (k not in committed or _canonical(defaults[k]) != _canonical(committed[k])))
        record = {"notebook": notebook, "profile": results.profile, "label": results.label, "preset": results.preset,
                  "parameters": parameters, "overrides": overrides, "edited_defaults": edited,
                  "commit": git_commit(), "changed": uncommitted_changes()}
        atomic_write(results.folder / f"{notebook}.params.json",
                     lambda tmp: tmp.write_text(json.dumps(record, indent=1, sort_keys=True)))
        changed = unpublishable_changes(record)
        if results.preset and changed:
            warnings.warn(f"{notebook} runs with the {results.profile!r} profile's parameters but from uncommitted "
                          f"changes to {', '.join(changed)}: make claims, readme and report will refuse its tables "
                          "until the changes are committed and the notebook is run again", UserWarning, stacklevel=2)
        return results

    def table(self, df: pd.DataFrame, name: str, device: str | None = None) -> Path:
        """``prunekit.report.tables.save_table`` into this run's folder (``name``: a plain file name), its ``device``
        column the run's own (the notebook's ``device`` parameter; "auto" for a notebook without one) unless
        ``device`` is given."""
        run_device = self.parameters.get("device")
        return save_table(df, self.label, file_name("name", name),
                          device=device if device is not None else run_device if isinstance(run_device, str) else None)

    def figure(self, fig, name: str, alt: str | None = None, **kwargs) -> list[Path]:
        """``prunekit.report.figures.save_figure`` as ``figures/<name>_<label>.png`` (and ``.svg``; ``name``: a plain
        file name)."""
        return save_figure(fig, f"{file_name('name', name)}_{self.label}", alt=alt, **kwargs)
