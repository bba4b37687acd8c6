"""The notebooks as committed: the prunekit kernel, no outputs, one tagged parameters cell, and exactly the bytes
Jupyter writes, so that opening and saving one without running it changes nothing."""

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_as_jupyter_writes_it(path):
    raw = path.read_text()
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    nbformat.validate(nb)
    assert nbformat.writes(nb) + "\n" == raw      # what nbformat.write (and so Jupyter's save) produces
    assert nb.metadata["kernelspec"]["name"] == "prunekit"
    assert nb.metadata["kernelspec"]["display_name"] == "Python (prunekit)"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "commit notebooks without outputs"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is code[0]
    assert "def " not in "".join(c.source for c in code) and "class " not in "".join(c.source for c in code)


README = Path(__file__).resolve().parents[1] / "README.md"
TIME_CLAIMS = ("about a minute", "under a minute", "in seconds", "~1 min")


def _time_statement(text: str) -> str:
    lines = [line for line in text.splitlines() if line.startswith("**Time**")]
    assert len(lines) == 1, f"expected one '**Time**' statement, found {len(lines)}"
    return lines[0]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_one_statement_of_the_profiles_times_everywhere(path):
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    readme = README.read_text()
    assert _time_statement(nb.cells[0].source) == _time_statement(readme)  # the same words in README and notebook
    for text in [c.source for c in nb.cells] + [readme]:
        flat = " ".join(text.split())
        assert not [t for t in TIME_CLAIMS if t in flat], "a second statement of a profile's time"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_kernel_language_info_is_what_the_kernel_reports(path):
    """JupyterLab writes the kernel's language_info into the notebook when it connects; committing exactly that keeps
    a freshly opened notebook from being marked as changed."""
    info = nbformat.read(path, as_version=nbformat.NO_CONVERT).metadata["language_info"]
    assert info["name"] == "python" and info["pygments_lexer"] == "ipython3"
    assert set(info) == {"codemirror_mode", "file_extension", "mimetype", "name", "nbconvert_exporter",
                         "pygments_lexer", "version"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_first_cell_links_to_the_rendered_paper_run(path):
    first = nbformat.read(path, as_version=nbformat.NO_CONVERT).cells[0].source
    assert f"](../data/report/paper/{path.stem}.html)" in first


def test_the_notebooks_thresholds_are_the_studies_own():
    """Every threshold is defined once, in its study: a notebook's default (a literal, for papermill) equals it."""
    from prunekit.report.results import notebook_defaults
    from prunekit.studies import s000_density, s001_shrinking, s002_basins, s003_sparsify

    assert notebook_defaults("02_pruning_curves")["tolerance"] == s003_sparsify.TOLERANCE
    assert notebook_defaults("03_width_invariance")["tolerance"] == s000_density.TOLERANCE
    assert notebook_defaults("03_width_invariance")["min_dense_accuracy"] == s000_density.MIN_DENSE_ACCURACY
    assert notebook_defaults("04_loss_surface")["barrier_tol"] == s002_basins.BARRIER_TOL
    assert notebook_defaults("06_neuron_saliency")["margin"] == s001_shrinking.MARGIN


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_papermill_reads_every_parameter(path):
    """``papermill --help-notebook`` (and ``-p``) see every assignment of the parameters cell: a line papermill cannot
    parse (an ``=`` inside its comment) is dropped from the help without an error."""
    import ast

    from papermill.translators import PythonTranslator

    cell = next(c for c in nbformat.read(path, as_version=4).cells if "parameters" in c.metadata.get("tags", []))
    assigned = [n.target.id if isinstance(n, ast.AnnAssign) else n.targets[0].id
                for n in ast.parse(cell.source).body if isinstance(n, (ast.Assign, ast.AnnAssign))]
    assert [p.name for p in PythonTranslator.inspect(cell)] == assigned


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_preset_resolves_the_profiles_defaults(path):
    """A parameter whose default is the profile's (None) is put in the preset's place by ``with_overrides``, once,
    as a setting the study's Preset has (not ``x or study.x`` by hand, nor a name the preset would refuse); no table
    is given ``device=``: the run's parameters hold it."""
    import ast
    import dataclasses
    import importlib
    import re

    from prunekit.report.catalog import study
    from prunekit.report.results import notebook_defaults

    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    code = "\n".join(line for c in nb.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])
                     for line in c.source.splitlines() if not line.startswith("%"))  # IPython's magics are no Python
    defaults = notebook_defaults(path)
    calls = [n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and n.func.attr == "with_overrides"]
    row = study(path.stem)
    if calls:
        (call,) = calls
        fields = {f.name for f in dataclasses.fields(importlib.import_module(row.modules[0]).Preset)}
        for kw in call.keywords:
            assert kw.arg in fields and isinstance(kw.value, ast.Name) and defaults.get(kw.value.id, 0) is None, kw.arg
    assert not re.search(r"\b(\w+) or \w+\.\1\b", code), "a default resolved by hand"
    assert not re.search(r"results\.table\([^\n]*device=", code), "a table given device=: the run holds it"
