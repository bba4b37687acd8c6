"""Result tables and figures: tidy CSVs in ``data/results/<profile>/`` and PNG + SVG figures in ``figures/``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .checks import choice
from .device import device_type
from .models import prunable_parameters
from .paths import atomic_write, figures_dir, results_root

__all__ = ["results_dir", "save_table", "save_figure", "PROFILES", "check_profile", "history_long", "layer_weights_frame",
           "gather_claims"]

PROFILES = ("quick", "paper", "full")  # embedded digits (CI) / these 2-core machines / the sources' scale, one GPU


def check_profile(profile: str, allowed=PROFILES) -> str:
    """``profile`` if it is one of ``allowed`` (a notebook's presets: a tuple of names or a dict keyed by them),
    else a ``ValueError`` naming the allowed values."""
    allowed = tuple(allowed)
    if profile not in allowed:
        choice("profile", profile, allowed)
    return profile


def results_dir(profile: str) -> Path:
    path = results_root() / check_profile(profile)
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_table(df: pd.DataFrame, profile: str, name: str, device: str | None = None) -> Path:
    """Write ``df`` (one row per measurement) to ``data/results/<profile>/<name>.csv`` atomically, with a ``device``
    column: the type of ``device`` ("cpu" / "cuda"; None: "auto" on this machine) unless ``df`` has one already."""
    if "device" not in df.columns:
        df = df.assign(device=device_type("auto" if device is None else device))
    return atomic_write(results_dir(profile) / f"{name}.csv", lambda tmp: df.to_csv(tmp, index=False))


def save_figure(fig, name: str, formats: tuple[str, ...] = ("png", "svg"), dpi: int = 150,
                alt: str | None = None) -> list[Path]:
    """Save a matplotlib figure as ``figures/<name>.png`` and ``.svg``, as deterministic files: the same figure gives
    the same bytes (no date or software version in the metadata, a fixed salt for the SVG element ids), so a rerun
    that draws the same data changes nothing in git.

    alt: in a notebook, show the saved PNG with this alternative text (what the figure shows, for readers who cannot
    see it; HTML exports write it as the image's ``alt``) and close the figure, so it is not shown twice.
    """
    import matplotlib  # heavy to import: only when a figure is saved

    if alt is not None and (not isinstance(alt, str) or not alt.strip()):
        raise ValueError(f"alt={alt!r} must be a non-empty description of the figure, or None")
    out = figures_dir()
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        metadata = {"Date": None, "Creator": None} if fmt in ("svg", "pdf") else {"Software": None}
        with matplotlib.rc_context({"svg.hashsalt": "prunekit", "svg.fonttype": "path"}):
            paths.append(atomic_write(out / f"{name}.{fmt}", lambda tmp, fmt=fmt, md=metadata: fig.savefig(
                tmp, dpi=dpi, bbox_inches="tight", format=fmt, metadata=md)))
    if alt is not None:
        png = next((p for p in paths if p.suffix == ".png"), None)
        _show_with_alt(fig, alt, dpi, png.read_bytes() if png is not None else None)
    return paths


def _show_with_alt(fig, alt: str, dpi: int, png_bytes: bytes | None = None) -> None:
    """Display the figure (IPython only) as an HTML ``<img alt=...>`` with the PNG beside it (``alt`` also in the PNG's
    output metadata), then close it. HTML first: nbconvert's lab template and JupyterLab render it with its alt text,
    which they do not take from a bare PNG output."""
    import base64
    import html
    import io

    import matplotlib.pyplot as plt

    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # a plain script without IPython: the files are saved, nothing to show
        get_ipython = lambda: None  # noqa: E731
    if get_ipython() is not None:
        if png_bytes is None:  # not saved as PNG: render it once for the notebook
            buf = io.BytesIO()
            fig.savefig(buf, dpi=dpi, bbox_inches="tight", format="png", metadata={"Software": None})
            png_bytes = buf.getvalue()
        png = base64.b64encode(png_bytes).decode("ascii")
        img = f'<img src="data:image/png;base64,{png}" alt="{html.escape(alt, quote=True)}"/>'
        display({"text/html": img, "image/png": png, "text/plain": f"<figure: {alt}>"}, raw=True,
                metadata={"image/png": {"alt": alt}})
    plt.close(fig)


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


def gather_claims(profile: str) -> pd.DataFrame:
    """Every notebook's claims table of ``profile`` (``data/results/<profile>/<NN>_claims.csv``, written by the
    notebooks) as one table with a ``notebook`` column ("02", ...), in notebook order, written to
    ``data/results/<profile>/claims.csv``: one row per claim of the four sources. A ValueError when no notebook of
    that profile has run yet."""
    from .claims import COLUMNS

    folder = results_dir(profile)
    parts = sorted(folder.glob("[0-9][0-9]_claims.csv"))
    if not parts:
        raise ValueError(f"no claims tables in {folder}: run the notebooks first (make reproduce PROFILE={profile})")
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
