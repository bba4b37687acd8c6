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


def test_open_records_the_parameters_and_refuses_a_run_before_its_parameters(tmp_path, monkeypatch):
    from prunekit.report import results as R
    from prunekit.report.results import Results, notebook_defaults
    from prunekit.report.tables import preset_runs

    monkeypatch.setattr(R, "git_commit", lambda: "abc")          # as from a clean checkout, whatever this one's state
    monkeypatch.setattr(R, "uncommitted_changes", lambda: [])

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


# ------------------------------------------------------------------------------ edited notebooks and uncommitted code
def _repository(tmp_path, monkeypatch):
    """A git repository holding a notebook ``09_probe`` (parameters ``profile``, ``seed``), a package file and a README,
    committed; ``repo_root`` points at it."""
    import subprocess

    from prunekit.report import results as R

    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    (repo / "prunekit").mkdir()
    nb = {"cells": [{"cell_type": "code", "metadata": {"tags": ["parameters"]}, "outputs": [], "execution_count": None,
                     "source": ["profile = 'quick'\n", "seed = 0\n"]}], "metadata": {}, "nbformat": 4,
          "nbformat_minor": 5}
    (repo / "notebooks" / "09_probe.ipynb").write_text(json.dumps(nb))
    (repo / "prunekit" / "code.py").write_text("x = 1\n")
    (repo / "README.md").write_text("readme\n")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "probe"]):
        subprocess.run(["git", "-c", "user.name=probe", "-c", "user.email=probe@example.org", *args], cwd=repo,
                       check=True, capture_output=True)
    monkeypatch.setattr(R, "repo_root", lambda: repo)
    return repo, nb


def test_a_default_edited_in_the_working_copy_is_an_override_not_the_preset(tmp_path, monkeypatch):
    """A researcher who edits a notebook's defaults keeps the run, under <profile>+<hash> with the edits as its
    overrides; it never passes for the preset (which the committed notebook's defaults define)."""
    from prunekit.report.results import Results
    from prunekit.report.tables import preset_runs

    repo, nb = _repository(tmp_path, monkeypatch)
    nb["cells"][0]["source"] = ["profile = 'quick'\n", "seed = 5\n"]          # edited, not committed
    (repo / "notebooks" / "09_probe.ipynb").write_text(json.dumps(nb))
    run = Results.open("09_probe", {"profile": "quick", "seed": 5})
    assert not run.preset and run.overrides == {"seed": 5} and run.label.startswith("quick+")
    record = json.loads((run.folder / "09_probe.params.json").read_text())
    assert record["edited_defaults"] == ["seed"] and record["overrides"] == {"seed": 5}
    assert record["commit"].endswith("+dirty") and record["changed"] == ["notebooks/09_probe.ipynb"]
    assert not (tmp_path / "results" / "quick" / "09_probe.params.json").exists()
    with pytest.warns(UserWarning, match="uncommitted changes to notebooks/09_probe.ipynb"):
        own = Results.open("09_probe", {"profile": "quick", "seed": 0})      # the committed default, edited notebook
    assert own.preset
    with pytest.raises(ValueError, match=r"uncommitted changes to notebooks/09_probe.ipynb"):
        preset_runs("quick")


def test_a_run_from_uncommitted_code_is_refused_where_a_preset_run_is_required(tmp_path, monkeypatch, capsys):
    from prunekit.__main__ import main
    from prunekit.report.claims import claim, claims_frame
    from prunekit.report.results import Results
    from prunekit.report.tables import gather_claims, preset_runs, save_table

    repo, _ = _repository(tmp_path, monkeypatch)
    (repo / "README.md").write_text("edited\n")                                # does not make results: publishable
    assert Results.open("09_probe", {"profile": "quick", "seed": 0}).preset
    save_table(claims_frame([claim("003 blog", "c", "r", "m", True, "rule")]), "quick", "09_claims")
    assert list(preset_runs("quick")) == ["09"] and list(gather_claims("quick")["claim"]) == ["c"]
    (repo / "prunekit" / "code.py").write_text("x = 2\n")                      # the code that makes the results
    with pytest.warns(UserWarning, match="from uncommitted changes to prunekit/code.py: make claims"):
        Results.open("09_probe", {"profile": "quick", "seed": 0})
    for publish in (lambda: preset_runs("quick"), lambda: gather_claims("quick"),
                    lambda: main(["claims", "--profile", "quick"])):
        with pytest.raises(ValueError, match=r"uncommitted changes to prunekit/code.py \(commit [0-9a-f]{40}\+dirty\)"):
            publish()


def test_names_that_become_paths_stay_in_their_folders(tmp_path):
    import matplotlib.pyplot as plt
    import pandas as pd

    from prunekit.report.figures import save_figure
    from prunekit.report.results import Results
    from prunekit.report.tables import results_dir, save_table

    df = pd.DataFrame({"x": [1]})
    run = Results("02_pruning_curves", "quick", {"profile": "quick"})
    fig = plt.figure()
    probes = [("label", lambda: results_dir("quick+/../..")), ("label", lambda: save_table(df, "quick/../..", "t")),
              ("name", lambda: save_table(df, "quick", "../..")), ("name", lambda: run.table(df, "../../escaped")),
              ("name", lambda: run.figure(fig, "../../escaped")), ("name", lambda: save_figure(fig, "../escaped")),
              ("notebook", lambda: Results.open("../../02_pruning_curves", {"profile": "quick"}))]
    for parameter, probe in probes:
        with pytest.raises(ValueError, match=f"{parameter}="):
            probe()
    plt.close(fig)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not [p for p in written if "escaped" in p.name or p.suffix == ".csv"], written


def test_the_claims_command_prints_where_it_wrote(tmp_path, capsys, preset_run, monkeypatch):
    from prunekit.__main__ import main
    from prunekit.report.claims import claim, claims_frame
    from prunekit.report.tables import save_table

    monkeypatch.setenv("PRUNEKIT_RESULTS", str(tmp_path / "elsewhere"))
    save_table(claims_frame([claim("s", "c", "r", "m", True, "rule")]), "quick", "05_claims")
    preset_run("quick", "05_weight_utility")
    assert main(["claims", "--profile", "quick"]) == 0
    assert f"-> {tmp_path / 'elsewhere' / 'quick' / 'claims.csv'}" in capsys.readouterr().out


def test_a_table_takes_its_device_from_the_run(monkeypatch):
    """A notebook does not pass ``device=`` to each table: the run's ``device`` parameter is the column's, and a
    ``device`` given to the call still wins."""
    import pandas as pd
    import torch

    from prunekit.report import results as R
    from prunekit.report.results import Results, notebook_defaults

    monkeypatch.setattr(R, "git_commit", lambda: "abc")
    monkeypatch.setattr(R, "uncommitted_changes", lambda: [])
    run = Results.open("06_neuron_saliency", dict(notebook_defaults("06_neuron_saliency"), device="cuda:1"))
    assert run.parameters["device"] == "cuda:1"  # a run's parameter (no CUDA is needed to write its name)
    assert set(pd.read_csv(run.table(pd.DataFrame({"a": [1]}), "t"))["device"]) == {"cuda"}
    assert set(pd.read_csv(run.table(pd.DataFrame({"a": [1]}), "u", device="cpu"))["device"]) == {"cpu"}
    bare = Results("06_neuron_saliency", "quick", {"profile": "quick"})  # a run without a device parameter: "auto"
    auto = "cuda" if torch.cuda.is_available() else "cpu"
    assert set(pd.read_csv(bare.table(pd.DataFrame({"a": [1]}), "v"))["device"]) == {auto}
