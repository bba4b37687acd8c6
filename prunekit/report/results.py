"""Results that know their parameters: where one notebook run writes its tables, figures and claims.

A notebook opens its results with ``results = Results.open("02_pruning_curves", globals())`` after its ``parameters``
cell: the run's parameters are the current values of the names that cell assigns (papermill's injected values
included), compared with the cell's own defaults read from the committed notebook. A run with the defaults is the
profile's own and writes to ``data/results/<profile>/`` and ``figures/<name>_<profile>.png``; a run with any other
value writes to ``data/results/<profile>+<hash>/`` and ``figures/<name>_<profile>+<hash>.png`` (the hash: of the
overridden values), never over the profile's. Beside its tables each run writes ``<notebook>.params.json``: the
notebook, the profile, every parameter, the overrides, whether it is the profile's preset and the git commit.
``make claims``, ``make readme`` and ``make report`` refuse a profile's table whose run was not its preset
(``prunekit.report.tables.preset_runs``).
"""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..core.config import check_profile
from ..core.paths import atomic_write, repo_root
from .figures import save_figure
from .tables import results_dir, save_table

__all__ = ["Results", "notebook_defaults", "run_label", "git_commit"]


def notebook_defaults(notebook: str | Path) -> dict:
    """The names a notebook's ``parameters`` cell assigns, with their literal default values (``notebook``: a path,
    or a name such as ``"02_pruning_curves"`` of ``notebooks/``). A ValueError when the notebook has no such cell or
    a default that is not a literal."""
    path = Path(notebook)
    if path.suffix != ".ipynb":
        path = repo_root() / "notebooks" / f"{path.name}.ipynb"
    if not path.is_file():
        raise ValueError(f"notebook {str(notebook)!r} not found (looked for {path}): its parameters' defaults decide "
                         "whether a run is its profile's own")
    cells = json.loads(path.read_text())["cells"]
    source = next(("".join(c["source"]) for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])),
                  None)
    if source is None:
        raise ValueError(f"{path} has no cell tagged 'parameters'")
    defaults = {}
    for node in ast.parse(source).body:
        target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0] if isinstance(node, ast.Assign) \
            else None
        if isinstance(target, ast.Name) and node.value is not None:
            try:
                defaults[target.id] = ast.literal_eval(node.value)
            except ValueError as err:
                raise ValueError(f"{path}: the default of {target.id!r} is not a literal") from err
    return defaults


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
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo_root(), capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo_root(),
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@dataclass
class Results:
    """One notebook run's outputs (see the module docstring): ``label`` names its folder and figures."""

    notebook: str
    profile: str
    parameters: dict
    overrides: dict = field(default_factory=dict)

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
        defaults = notebook_defaults(notebook)
        missing = [k for k in defaults if k not in namespace]
        if missing:
            raise ValueError(f"the parameters {', '.join(missing)} of {notebook} are not defined: open the results "
                             "after the parameters cell")
        parameters = {k: _canonical(namespace[k]) for k in defaults}
        if "profile" not in parameters:
            raise ValueError(f"{notebook}'s parameters cell has no 'profile'")
        overrides = {k: v for k, v in parameters.items() if k != "profile" and v != _canonical(defaults[k])}
        results = cls(notebook, check_profile(parameters["profile"]), parameters, overrides)
        record = {"notebook": notebook, "profile": results.profile, "label": results.label, "preset": results.preset,
                  "parameters": parameters, "overrides": overrides, "commit": git_commit()}
        atomic_write(results.folder / f"{notebook}.params.json",
                     lambda tmp: tmp.write_text(json.dumps(record, indent=1, sort_keys=True)))
        return results

    def table(self, df: pd.DataFrame, name: str, device: str | None = None) -> Path:
        """``prunekit.report.tables.save_table`` into this run's folder."""
        return save_table(df, self.label, name, device=device)

    def figure(self, fig, name: str, alt: str | None = None, **kwargs) -> list[Path]:
        """``prunekit.report.figures.save_figure`` as ``figures/<name>_<label>.png`` (and ``.svg``)."""
        return save_figure(fig, f"{name}_{self.label}", alt=alt, **kwargs)
