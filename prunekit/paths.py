"""Where prunekit keeps data sets, trained models, result tables and figures.

Everything lives under the repository by default (``data/`` is git-ignored); environment variables move each part:
``PRUNEKIT_DATA`` (data sets, default ``data/datasets``), ``PRUNEKIT_CACHE`` (trained models and sweep points,
default ``data/models``), ``PRUNEKIT_RESULTS`` (tables, default ``data/results``), ``PRUNEKIT_FIGURES`` (default
``figures``). Outside a checkout the defaults are relative to the current directory.
"""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    here = Path(__file__).resolve().parents[1]
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
