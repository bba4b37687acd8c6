"""Notebooks run headless (prunekit.report.headless, ``python -m prunekit run-notebook``), for machines without
Jupyter: parameters injected after the parameters cell, magics left out, a failing cell named."""

import json

import pytest

from prunekit.report.headless import NotebookError, parameter_value, run_notebook


def _notebook(path, cells):
    nb = {"cells": [{"cell_type": kind, "metadata": {"tags": tags}, "source": src} for kind, tags, src in cells],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))
    return path


def test_parameters_are_injected_after_the_parameters_cell_and_magics_skipped(tmp_path):
    out = tmp_path / "out.txt"
    nb = _notebook(tmp_path / "n.ipynb", [
        ("markdown", [], "# title"),
        ("code", [], "%matplotlib inline\nimport os"),
        ("code", ["parameters"], "profile = 'quick'\nn = 1"),
        ("code", [], ["display(n)\n", f"open({str(out)!r}, 'w').write(f'{{profile}} {{n * 2}} {{os.getcwd()}}')"]),
    ])
    run_notebook(nb, {"profile": "paper", "n": 21})
    assert out.read_text() == f"paper 42 {tmp_path}"  # in the notebook's folder, as Jupyter runs it
    with pytest.raises(ValueError, match="no parameter colour"):
        run_notebook(nb, {"colour": "red"})
    bad = _notebook(tmp_path / "bad.ipynb", [("code", [], "x = 1"), ("code", [], "1 / 0")])
    with pytest.raises(NotebookError, match="bad.ipynb: code cell 1 raised ZeroDivisionError"):
        run_notebook(bad)
    with pytest.raises(ValueError, match="no cell tagged 'parameters'"):
        run_notebook(bad, {"x": 2})
    assert run_notebook(nb, {"n": 3}, until="n")["n"] == 3  # stops after the parameters cell
    with pytest.raises(LookupError, match="no cell defines 'expected'"):
        run_notebook(nb, until="expected")
    assert [parameter_value(v) for v in ("5", "0.1", "[1, 2]", "None", "cuda")] == [5, 0.1, [1, 2], None, "cuda"]


def test_bad_arguments_are_refused_before_any_cell_runs(tmp_path):
    out = tmp_path / "ran.txt"
    nb = _notebook(tmp_path / "n.ipynb", [("code", ["parameters"], "n = 1"),
                                          ("code", [], f"open({str(out)!r}, 'w').write('ran')")])
    for kwargs, name in [(dict(path=tmp_path / "missing.ipynb"), "path"), (dict(path=""), "path"),
                         (dict(path=1), "path"), (dict(path=nb, parameters=[("n", 2)]), "parameters"),
                         (dict(path=nb, until=""), "until"), (dict(path=nb, until=3), "until"),
                         (dict(path=nb, until="a b"), "until")]:
        with pytest.raises(ValueError, match=rf"^{name}="):
            run_notebook(**kwargs)
    assert not out.exists()  # no cell ran
    with pytest.raises(ValueError, match="^text="):
        parameter_value(5)
