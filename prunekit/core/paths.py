"""Where prunekit keeps data sets, trained models, result tables and figures.

Everything lives under the repository by default (``data/`` is git-ignored); environment variables move each part:
``PRUNEKIT_DATA`` (data sets, default ``data/datasets``), ``PRUNEKIT_CACHE`` (trained models and sweep points,
default ``data/models``), ``PRUNEKIT_RESULTS`` (tables, default ``data/results``), ``PRUNEKIT_FIGURES`` (default
``figures``). Outside a checkout the defaults are relative to the current directory.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def repo_root() -> Path:
    here = Path(__file__).resolve().parents[2]
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def _dir(env: str, default: str) -> Path:
    value = os.environ.get(env)
    return Path(value).expanduser() if value else repo_root() / default


def data_dir() -> Path:
    return _dir("PRUNEKIT_DATA", "data/datasets")


def cache_dir() -> Path:
    return _dir("PRUNEKIT_CACHE", "data/models")


def results_root() -> Path:
    return _dir("PRUNEKIT_RESULTS", "data/results")


def figures_dir() -> Path:
    return _dir("PRUNEKIT_FIGURES", "figures")


def atomic_write(path, write) -> Path:
    """Write ``path`` by calling ``write(tmp)`` on a temporary file beside it, then renaming it into place: readers see
    the old file or the new one, never half of one. If ``write`` fails, the temporary file is removed and ``path`` is
    left as it was. The one way files are written in prunekit (models, tables, figures, sweep points)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
