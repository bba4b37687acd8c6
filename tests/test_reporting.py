"""Reporting: result tables written atomically, figures as deterministic files."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from prunekit.reporting import save_figure  # noqa: E402


def _figure():
    fig, ax = plt.subplots(figsize=(3, 2))
    x = np.linspace(0, 1, 20)
    ax.plot(x, x ** 2, label="data")
    ax.fill_between(x, x ** 2 - 0.1, x ** 2 + 0.1, alpha=0.3)
    ax.set(xlabel="x (units)", ylabel="y (units)")
    ax.legend()
    return fig


def test_the_same_figure_gives_the_same_bytes(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNEKIT_FIGURES", str(tmp_path / "a"))
    first = [p.read_bytes() for p in save_figure(_figure(), "f")]
    monkeypatch.setenv("PRUNEKIT_FIGURES", str(tmp_path / "b"))
    second = [p.read_bytes() for p in save_figure(_figure(), "f")]   # a new figure object, drawn again
    assert [len(b) > 1000 for b in first] == [True, True]
    assert first == second
    assert b"<dc:date>" not in first[1]
    plt.close("all")
