"""Result tables: tidy CSVs in ``data/results/<label>/`` (``label``: a profile, or ``<profile>+<hash>`` for a run with
other parameters, ``prunekit.report.results``), and every notebook's claims gathered into one table."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from ..core.checks import file_name
from ..core.config import PROFILES, check_profile
from ..core.device import device_type
from ..core.prunable import prunable_parameters
from ..core.paths import atomic_write, results_root
from .claims import COLUMNS

__all__ = ["check_label", "results_dir", "save_table", "history_long", "layer_weights_frame", "gather_claims",
           "preset_runs"]


def check_label(label: str) -> str:
    """``label`` if it names a run's folder: a profile, or ``<profile>+<8 hex digits>`` (``run_label``); else a
    ``ValueError`` (a label never leads out of ``data/results``)."""
    match = re.fullmatch(r"([a-z]+)(\+[0-9a-f]{8})?", label) if isinstance(label, str) else None
    if match is None or match.group(1) not in PROFILES:
        raise ValueError(f"label={label!r} must be a profile ({', '.join(PROFILES)}) or '<profile>+<8 hex digits>' "
                         "(prunekit.report.results.run_label)")
    return label


def results_dir(label: str) -> Path:
    """``data/results/<label>/`` (``$PRUNEKIT_RESULTS``), created: ``label`` is a profile or ``<profile>+<hash>``."""
    path = results_root() / check_label(label)
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_table(df: pd.DataFrame, label: str, name: str, device: str | None = None) -> Path:
    """Write ``df`` (one row per measurement) to ``data/results/<label>/<name>.csv`` atomically, with a ``device``
    column: the type of ``device`` ("cpu" / "cuda"; None: "auto" on this machine) unless ``df`` has one already.
    ``name`` is a plain file name (``prunekit.core.checks.file_name``: it stays in the folder)."""
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    file_name("name", name)
    check_label(label)
    if "device" not in df.columns:
        df = df.assign(device=device_type("auto" if device is None else device))
    return atomic_write(results_dir(label) / f"{name}.csv", lambda tmp: df.to_csv(tmp, index=False))


def history_long(history: pd.DataFrame) -> pd.DataFrame:
    """A training history (one row per epoch) in long form: epoch, split (train/val/test), metric, value."""
    cols = [c for c in history.columns if c.split("_", 1)[0] in ("train", "val", "test")]
    long = history.melt(id_vars="epoch", value_vars=cols, var_name="column", value_name="value")
    long[["split", "metric"]] = long["column"].str.split("_", n=1, expand=True)
    return long.drop(columns="column")


def layer_weights_frame(model, include_output: bool = True) -> pd.DataFrame:
    """One row per weight of each Linear/Conv2d layer: layer (name and shape), magnitude |w|."""

    frames = []
    names = {m: n for n, m in model.named_modules()}
    for module, attr in prunable_parameters(model, include_output=include_output):
        w = getattr(module, attr).detach().abs().flatten().cpu().numpy()
        label = f"{names[module] or 'model'}: {type(module).__name__} {tuple(getattr(module, attr).shape)}"
        frames.append(pd.DataFrame({"layer": label, "magnitude": w}))
    return pd.concat(frames, ignore_index=True)


def preset_runs(profile: str) -> dict[str, dict]:
    """``{notebook: its params.json}`` of the runs in ``data/results/<profile>/``, after checking that each was made
    with the profile's own parameters from committed code (``prunekit.report.results``): a ValueError names a table
    without its parameters, made with others, or made from a working tree with uncommitted changes to what makes the
    results (``prunekit.report.results.RESULT_SOURCES``), so that nothing publishes another run as the profile's."""
    from .results import unpublishable_changes  # results imports this module
    folder = results_dir(check_profile(profile))
    runs = {}
    for path in sorted(folder.glob("[0-9][0-9]_*.params.json")):
        params = json.loads(path.read_text())
        if not params.get("preset") or params.get("profile") != profile:
            raise ValueError(f"{path} records a run with parameters that are not the {profile!r} profile's own "
                             f"(overrides: {params.get('overrides')}); rerun the notebook with its defaults "
                             f"(make reproduce PROFILE={profile}) before publishing")
        changed = unpublishable_changes(params)
        if changed:
            raise ValueError(f"{path} records a run made from a working tree with uncommitted changes to "
                             f"{', '.join(changed)} (commit {params.get('commit')}): its results may not be the "
                             f"committed code's; commit or undo the changes, then rerun the notebook (make reproduce "
                             f"PROFILE={profile}) before publishing")
        runs[path.name[:2]] = params
    for claims in sorted(folder.glob("[0-9][0-9]_claims.csv")):
        if claims.name[:2] not in runs:
            raise ValueError(f"{claims} has no <notebook>.params.json beside it: the parameters that made it are "
                             f"unknown; rerun the notebook (make reproduce PROFILE={profile})")
    return runs


def gather_claims(profile: str) -> pd.DataFrame:
    """Every notebook's claims table of ``profile`` (``data/results/<profile>/<NN>_claims.csv``, written by the
    notebooks) as one table with a ``notebook`` column ("02", ...), in notebook order, written to
    ``data/results/<profile>/claims.csv``: one row per claim of the four sources. A ValueError when no notebook of
    that profile has run yet, or when a table was not made with the profile's own parameters (:func:`preset_runs`)."""
    folder = results_dir(check_profile(profile))
    parts = sorted(folder.glob("[0-9][0-9]_claims.csv"))
    if not parts:
        raise ValueError(f"no claims tables in {folder}: run the notebooks first (make reproduce PROFILE={profile})")
    preset_runs(profile)
    frames = []
    for path in parts:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)  # text columns: "0" stays a seed list, "" stays ""
        missing = [c for c in COLUMNS if c not in df.columns]
        if missing:
            raise ValueError(f"{path} is not a claims table: it lacks {', '.join(missing)}")
        frames.append(df.assign(notebook=path.name[:2]))
    table = pd.concat(frames, ignore_index=True)
    table = table[["notebook", *COLUMNS, *[c for c in table.columns if c not in COLUMNS and c != "notebook"]]]
    atomic_write(folder / "claims.csv", lambda tmp: table.to_csv(tmp, index=False))
    return table
