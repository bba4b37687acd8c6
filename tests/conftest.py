"""Shared fixtures: isolated cache/results/figure folders, and MNIST and Fashion-MNIST copied from the data folder
into a temporary one."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import prunekit  # noqa: F401  (first: it sets the OpenMP environment before torch loads, prunekit.core.runtime)
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
DATA_ROOTS = [Path(p) for p in (os.environ.get("PRUNEKIT_DATA"), REPO / "data" / "datasets") if p]
MNIST_SOURCES = [p / "MNIST" / "raw" for p in DATA_ROOTS]
FASHION_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte")


@pytest.fixture(autouse=True)
def _isolated_outputs(tmp_path, monkeypatch):
    """Every test writes its cache, results and figures into its own temporary folder."""
    monkeypatch.setenv("PRUNEKIT_CACHE", str(tmp_path / "models"))
    monkeypatch.setenv("PRUNEKIT_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("PRUNEKIT_FIGURES", str(tmp_path / "figures"))
    monkeypatch.setenv("PRUNEKIT_QUIET", "1")
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory) -> Path:
    """A data folder holding the original MNIST files (copied, never written in place)."""
    src = next((p for p in MNIST_SOURCES if len(list(p.glob("*-ubyte.gz"))) == 4), None)
    if src is None:
        pytest.skip("MNIST raw files not found in $PRUNEKIT_DATA/MNIST/raw or data/datasets/MNIST/raw")
    root = tmp_path_factory.mktemp("datasets")
    (root / "MNIST" / "raw").mkdir(parents=True)
    for f in src.glob("*-ubyte.gz"):
        shutil.copy(f, root / "MNIST" / "raw" / f.name)
    return root


@pytest.fixture
def mnist_env(mnist_root, monkeypatch) -> Path:
    """PRUNEKIT_DATA pointing at the temporary MNIST folder."""
    monkeypatch.setenv("PRUNEKIT_DATA", str(mnist_root))
    return mnist_root


@pytest.fixture(scope="session")
def fashion_root(tmp_path_factory) -> Path:
    """A data folder holding the four unpacked Fashion-MNIST files (``.ci/run`` unpacks Debian's copies; copied here,
    never written in place)."""
    src = next((p / "FashionMNIST" / "raw" for p in DATA_ROOTS
                if all((p / "FashionMNIST" / "raw" / f).is_file() for f in FASHION_FILES)), None)
    if src is None:
        pytest.skip("Fashion-MNIST's unpacked files not found in $PRUNEKIT_DATA/FashionMNIST/raw or "
                    "data/datasets/FashionMNIST/raw (.ci/run unpacks them)")
    root = tmp_path_factory.mktemp("fashion")
    (root / "FashionMNIST" / "raw").mkdir(parents=True)
    for f in FASHION_FILES:
        shutil.copy(src / f, root / "FashionMNIST" / "raw" / f)
    return root


def _record_preset_run(profile: str, notebook: str) -> None:
    import json

    from prunekit.report.tables import results_dir

    (results_dir(profile) / f"{notebook}.params.json").write_text(json.dumps(
        {"notebook": notebook, "profile": profile, "label": profile, "preset": True, "parameters": {},
         "overrides": {}, "commit": "test"}))


@pytest.fixture(scope="session")
def preset_run():
    """``preset_run(profile, notebook)`` records ``notebook`` as run with ``profile``'s own parameters (the
    params.json a notebook writes through ``prunekit.report.results.Results``), for tests that write a profile's
    tables by hand."""
    return _record_preset_run

