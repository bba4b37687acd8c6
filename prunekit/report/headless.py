"""A notebook run as a plain script: for machines without Jupyter or papermill (such as a GPU machine with only torch's
stack), where ``make test-gpu`` still runs every notebook.

:func:`run_notebook` executes the code cells in order in one namespace, in the notebook's folder (as Jupyter does),
with the given parameters assigned right after the cell tagged ``parameters`` (as papermill injects them); IPython
magics (``%matplotlib inline``) are left out, ``display`` prints, and figures go to matplotlib's Agg backend. A failing
cell raises :class:`NotebookError` naming it. Outputs are not written back into the notebook: use papermill
(``make reproduce``) for executed copies.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import time
from pathlib import Path

from ..core.checks import path as checked_path, text as checked_text

__all__ = ["NotebookError", "run_notebook", "parameter_value"]


class NotebookError(RuntimeError):
    """A cell of a notebook run headless raised."""


def parameter_value(text: str):
    """A ``-p NAME VALUE`` value: a Python literal (``5``, ``0.1``, ``[1, 2]``, ``None``, ``True``) or else the text."""
    checked_text("text", text, empty=True)
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _code(cell) -> str:
    src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
    lines = ["pass" if line.lstrip().startswith(("%", "!")) or "get_ipython()" in line else line
             for line in src.splitlines()]
    return "\n".join(lines)


def run_notebook(path: str | os.PathLike, parameters: dict | None = None, until: str | None = None) -> float | dict:
    """Execute the notebook at ``path`` headless with ``parameters`` (module docstring); returns the seconds it
    took. ValueError for a parameter the notebook's parameters cell does not define. With ``until`` (a name), it stops
    after the first cell that defines that name and returns the namespace (``LookupError`` if no cell does).
    ``ValueError`` before any cell runs for a path that is no file, parameters that are no dict, or an ``until`` that
    is no name."""
    path = checked_path("path", path).resolve()
    if not path.is_file():
        raise ValueError(f"path={str(path)!r}: no such notebook file")
    if parameters is not None and not isinstance(parameters, dict):
        raise ValueError(f"parameters={parameters!r} must be a dict of name: value")
    if until is not None and not (isinstance(until, str) and until.isidentifier()):
        raise ValueError(f"until={until!r} must be a variable's name")
    nb = json.loads(path.read_text())
    cells = [c for c in nb["cells"] if c.get("cell_type") == "code"]
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    parameters = dict(parameters or {})
    if parameters and not tagged:
        raise ValueError(f"{path.name} has no cell tagged 'parameters' to take {sorted(parameters)}")
    os.environ.setdefault("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": "__main__", "display": print}
    t0 = time.perf_counter()
    with contextlib.chdir(path.parent) if hasattr(contextlib, "chdir") else _chdir(path.parent):
        for i, cell in enumerate(cells):
            try:
                exec(compile(_code(cell), f"{path.name}[cell {i}]", "exec"), namespace)  # noqa: S102 - the notebook
            except Exception as err:
                raise NotebookError(f"{path.name}: code cell {i} raised {type(err).__name__}: {err}") from err
            if tagged and i == tagged[0]:
                unknown = sorted(set(parameters) - set(namespace))
                if unknown:
                    raise ValueError(f"{path.name} has no parameter {', '.join(unknown)}; its parameters cell "
                                     f"defines: {', '.join(k for k in namespace if not k.startswith('_'))}")
                namespace.update(parameters)
            if until is not None and until in namespace:
                return namespace
    if until is not None:
        raise LookupError(f"{path.name}: no cell defines {until!r}")
    return time.perf_counter() - t0


@contextlib.contextmanager
def _chdir(folder: Path):
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)
