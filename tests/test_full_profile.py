"""The `full` profile's code path of notebooks 04 and 05 in CI: their parameters and planning cells run with
profile="full" on this machine (no CIFAR-10, so MNIST at 28x28 for 200 epochs), and the notebook says how long the
planned training would take here, with a LongRunWarning, before it trains anything."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.parametrize("name", ["04_loss_surface", "05_weight_utility"])
def test_full_profile_plans_and_warns_before_training(name, mnist_env, tmp_path):
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    plan = next(i for i, c in enumerate(nb.cells) if "estimate.expect(" in c.source)
    assert "train_or_load(" not in nb.cells[plan].source.split("estimate.expect(")[0]   # nothing trained before it
    cells = nb.cells[:plan + 1]
    params = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    cells.insert(params + 1, nbformat.v4.new_code_cell('profile = "full"\ndevice = "cpu"'))
    nb.cells = cells
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "LongRunWarning" in text and "it is sized for one GPU" in text
    assert "training planned here: about" in text
    assert not (Path(mnist_env) / "cifar-10-batches-py").exists()            # nothing was downloaded to decide
