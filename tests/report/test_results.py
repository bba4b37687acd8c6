"""prunekit.report.results: a run knows its parameters, and a run with other parameters never writes over the
profile's own tables, figures or README."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_notebook_defaults_are_the_parameters_cells_literals(tmp_path):
    from prunekit.report.results import notebook_defaults

    d = notebook_defaults("02_pruning_curves")
    assert d["profile"] == "quick" and d["tolerance"] == 0.01 and d["setups"] == ["prunekit", "blog"]
    nb = tmp_path / "x.ipynb"
    nb.write_text(json.dumps({"cells": [{"cell_type": "code", "metadata": {"tags": ["parameters"]},
                                         "source": ["profile = 'quick'\n", "n = len([1])\n"]}]}))
    with pytest.raises(ValueError, match="'n' is not a literal"):
        notebook_defaults(nb)
    nb.write_text(json.dumps({"cells": [{"cell_type": "code", "metadata": {}, "source": "a = 1"}]}))
    with pytest.raises(ValueError, match="no cell tagged 'parameters'"):
        notebook_defaults(nb)
    with pytest.raises(ValueError, match="not found"):
        notebook_defaults("99_nothing")


def test_run_label_hashes_the_overrides_only():
    from prunekit.report.results import run_label

    assert run_label("paper", {}) == "paper"
    a, b = run_label("paper", {"seeds": [0]}), run_label("paper", {"seeds": [1]})
    expected = hashlib.sha256(b'{"seeds":[0]}').hexdigest()[:8]
    assert a == f"paper+{expected}" and a != b
    assert run_label("paper", {"x": 1, "seeds": [0]}) == run_label("paper", {"seeds": [0], "x": 1})  # key order
    assert run_label("paper", {"s": (0, 1)}) == run_label("paper", {"s": [0, 1]})  # a tuple is its JSON list
    with pytest.raises(ValueError, match="profile"):
        run_label("huge", {})


def test_open_records_the_parameters_and_refuses_a_run_before_its_parameters(tmp_path):
    from prunekit.report.results import Results, notebook_defaults
    from prunekit.report.tables import preset_runs

    namespace = dict(notebook_defaults("06_neuron_saliency"), profile="paper")
    own = Results.open("06_neuron_saliency", namespace)
    assert own.label == "paper" and own.preset
    other = Results.open("06_neuron_saliency", {**namespace, "seeds": [0]})
    assert other.label.startswith("paper+") and other.overrides == {"seeds": [0]}
    record = json.loads((other.folder / "06_neuron_saliency.params.json").read_text())
    assert record["preset"] is False and record["parameters"]["seeds"] == [0] and record["commit"]
    assert list(preset_runs("paper")) == ["06"]
    with pytest.raises(ValueError, match="not the 'paper' profile's own"):
        _fake_override_in("paper", record)
    with pytest.raises(ValueError, match="are not defined"):
        Results.open("06_neuron_saliency", {"profile": "paper"})


def _fake_override_in(profile: str, record: dict) -> None:
    """An override run's params.json copied into the profile's own folder (an old-style overwrite)."""
    from prunekit.report.tables import preset_runs, results_dir

    (results_dir(profile) / "06_neuron_saliency.params.json").write_text(json.dumps(record))
    preset_runs(profile)


@pytest.mark.slow
def test_a_papermill_run_with_other_parameters_leaves_the_profile_and_the_readme_untouched(tmp_path, preset_run):
    import papermill as pm

    from prunekit.report.claims import claim, claims_frame
    from prunekit.report.tables import gather_claims, results_dir, save_table

    save_table(claims_frame([claim("003 blog", "c", "r", "m", True, "rule")]), "paper", "01_claims")
    preset_run("paper", "01_training")
    gather_claims("paper")
    paper = results_dir("paper")
    before, readme = _snapshot(paper), (REPO / "README.md").read_bytes()
    figures_before = sorted(p.name for p in (tmp_path / "figures").glob("*")) if (tmp_path / "figures").exists() else []

    out = tmp_path / "executed.ipynb"
    pm.execute_notebook(str(REPO / "notebooks" / "01_training.ipynb"), str(out), kernel_name="python3",
                        parameters={"profile": "paper", "dataset": "digits", "arch": "mlp", "epochs": 1},
                        progress_bar=False, cwd=str(tmp_path))

    assert _snapshot(paper) == before and (REPO / "README.md").read_bytes() == readme
    runs = [p for p in paper.parent.iterdir() if p.name.startswith("paper+")]
    assert len(runs) == 1 and (runs[0] / "01_training.csv").is_file()
    record = json.loads((runs[0] / "01_training.params.json").read_text())
    assert record["overrides"] == {"dataset": "digits", "arch": "mlp", "epochs": 1} and not record["preset"]
    figures = sorted(p.name for p in (tmp_path / "figures").glob("*.png"))
    assert figures and all(f"_{runs[0].name}." in f for f in figures if f not in figures_before)
    assert list(gather_claims("paper")["claim"]) == ["c"]  # the profile's claims are still its own run's
