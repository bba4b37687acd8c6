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
