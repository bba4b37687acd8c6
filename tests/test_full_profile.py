"""The `full` profile's code path of every notebook that has one, in CI: the parameters and the planning cells run
with profile="full" on this machine (no CIFAR-10, no GPU), and each notebook says how long its planned training would
take here, with a LongRunWarning where that is over an hour, before it trains anything. (Notebook 03's full grid,
756 networks, is checked at the package level in test_invariance.py: planning it here would take minutes.)"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from prunekit.report.catalog import STUDIES

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
# every notebook that plans its training (prunekit.studies.protocol.training_plan), but 03: its full grid is checked
# at the package level
PLANNED = [s.notebook for s in STUDIES if "training_plan(" in (NOTEBOOKS / f"{s.notebook}.ipynb").read_text()
           and s.notebook != "03_width_invariance"]
LONG = {s.notebook for s in STUDIES if s.full_on_gpu}  # far over an hour of training on any CPU


@pytest.fixture
def both_datasets(mnist_root, fashion_root, tmp_path, monkeypatch) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "MNIST").symlink_to(mnist_root / "MNIST")
    (data / "FashionMNIST").symlink_to(fashion_root / "FashionMNIST")
    monkeypatch.setenv("PRUNEKIT_DATA", str(data))
    return data


def test_the_notebooks_that_plan_are_the_ones_that_train():
    assert PLANNED == ["01_training", "02_pruning_curves", "04_loss_surface", "05_weight_utility",
                       "06_neuron_saliency"]


@pytest.mark.parametrize("name", PLANNED)
def test_full_profile_plans_and_warns_before_training(name, both_datasets, tmp_path):
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    plan = next(i for i, c in enumerate(nb.cells) if "training_plan(" in c.source)
    assert not any(call in c.source for c in nb.cells[:plan + 1]
                   for call in ("train_or_load(", "run_setup(", "run_sweep("))      # nothing trained before it
    cells = nb.cells[:plan + 1]
    params = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    cells.insert(params + 1, nbformat.v4.new_code_cell('profile = "full"\ndevice = "cpu"'))
    nb.cells = cells
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    amount, unit = re.search(r"training planned here: about ([\d.]+) (s|min|h|days)", text).groups()
    hours = float(amount) * {"s": 1 / 3600, "min": 1 / 60, "h": 1, "days": 24}[unit]
    assert ("LongRunWarning" in text) == (hours > 1.0)                      # warned exactly when over an hour
    if name in LONG:                                                        # 200 epochs of ResNet20: days on a CPU
        assert hours > 1.0 and "it is sized for one GPU" in text
    assert not (both_datasets / "cifar-10-batches-py").exists()             # nothing was downloaded to decide
