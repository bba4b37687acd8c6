"""Figures: PNG and SVG files in ``figures/`` that repeat bytewise, shown in a notebook with their alternative text."""

from __future__ import annotations

from pathlib import Path

from ..core.checks import choice, count, file_name, sequence
from ..core.paths import atomic_write, figures_dir

__all__ = ["save_figure"]


def save_figure(fig, name: str, formats: tuple[str, ...] = ("png", "svg"), dpi: int = 150,
                alt: str | None = None) -> list[Path]:
    """Save a matplotlib figure as ``figures/<name>.png`` and ``.svg`` (``formats``: of png, svg, pdf; ``name``: a
    plain file name, ``prunekit.core.checks.file_name``), as deterministic files: the same figure gives
    the same bytes (no date or software version in the metadata, a fixed salt for the SVG element ids), so a rerun
    that draws the same data changes nothing in git.

    alt: in a notebook, show the saved PNG with this alternative text (what the figure shows, for readers who cannot
    see it; HTML exports write it as the image's ``alt``) and close the figure, so it is not shown twice.
    """
    import matplotlib  # heavy to import: only when a figure is saved

    file_name("name", name)  # the figure stays in figures/
    formats = sequence("formats", formats, item=lambda n, v: choice(n, v, ("png", "svg", "pdf")))
    if len(set(formats)) != len(formats):
        raise ValueError(f"formats={formats!r} names a format twice")
    dpi = count("dpi", dpi)
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
