"""Reporting: result tables written atomically, figures as deterministic files."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from prunekit.report.figures import save_figure  # noqa: E402


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


def test_a_figure_shown_with_alt_text_carries_it_in_the_output(tmp_path, monkeypatch):
    import base64

    import IPython
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())  # as inside a kernel
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append((obj, kw)))
    fig = _figure()
    alt = 'y = x² against x, with a "band"'
    paths = save_figure(fig, "g", formats=("png",), alt=alt)
    data, kw = shown[0]
    assert kw["raw"] and kw["metadata"]["image/png"]["alt"] == alt
    assert base64.b64decode(data["image/png"])[:8] == b"\x89PNG\r\n\x1a\n" and paths[0].exists()
    assert 'alt="y = x² against x, with a &quot;band&quot;"' in data["text/html"]  # escaped, whole
    assert data["image/png"] in data["text/html"]
    assert not plt.fignum_exists(fig.number)  # closed: the inline backend does not show it a second time
    with pytest.raises(ValueError, match="alt="):
        save_figure(_figure(), "h", alt="  ")
    plt.close("all")


def test_every_notebook_figure_has_alt_text():
    import ast
    import json
    from pathlib import Path

    for path in sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            src = "".join(cell["source"])
            if cell["cell_type"] != "code" or "results.figure(" not in src:
                continue
            calls = [n for n in ast.walk(ast.parse(src.replace("%matplotlib inline", "")))
                     if isinstance(n, ast.Call) and getattr(n.func, "attr", None) == "figure"
                     and getattr(n.func.value, "id", None) == "results"]
            assert calls and all(any(k.arg == "alt" for k in c.keywords) for c in calls), path.name


def test_gather_claims_makes_one_table_in_notebook_order(tmp_path, preset_run):
    import pandas as pd

    from prunekit.report.claims import claim, claims_frame
    from prunekit.report.tables import gather_claims, save_table

    with pytest.raises(ValueError, match="run the notebooks first"):
        gather_claims("paper")
    a = claims_frame([claim("003 blog", "c1", "r", "m", True, "rule")])
    b = claims_frame([claim("000 density", "c2", "r", "m", False, "rule"), claim("000 density", "c3", "r", "m", None,
                                                                                  "rule", seeds="0, 1")])
    save_table(b, "paper", "03_claims")
    save_table(a, "paper", "02_claims")
    save_table(pd.DataFrame({"x": [1]}), "paper", "02_pruning_curves")      # not a claims table: ignored by name
    with pytest.raises(ValueError, match="no <notebook>.params.json"):     # made with unknown parameters
        gather_claims("paper")
    preset_run("paper", "02_pruning_curves")
    preset_run("paper", "03_width_invariance")
    t = gather_claims("paper")
    assert list(t["notebook"]) == ["02", "03", "03"] and list(t["claim"]) == ["c1", "c2", "c3"]
    assert list(t["verdict"]) == ["holds", "does not hold", "cannot decide here"] and t["seeds"].iloc[2] == "0, 1"
    on_disk = pd.read_csv(tmp_path / "results" / "paper" / "claims.csv", dtype=str, keep_default_na=False)
    assert on_disk.equals(t.astype({"notebook": str}))
    save_table(pd.DataFrame({"claim": ["x"]}), "paper", "04_claims")
    preset_run("paper", "04_loss_surface")
    with pytest.raises(ValueError, match="lacks"):
        gather_claims("paper")


def test_python_m_prunekit_claims(tmp_path, capsys, preset_run):
    from prunekit.__main__ import main
    from prunekit.report.claims import claim, claims_frame
    from prunekit.report.tables import save_table

    save_table(claims_frame([claim("s", "c", "r", "m", True, "rule")]), "quick", "05_claims")
    preset_run("quick", "05_weight_utility")
    assert main(["claims", "--profile", "quick"]) == 0
    assert "1 claim of 1 notebook (1 holds)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["claims", "--profile", "huge"])
