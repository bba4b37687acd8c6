"""The device, chosen once: names checked before any compute, the device type in the cache key, GPU-trained models
loadable on a CPU-only machine, a ``device`` column in every saved table.

The comparisons of each study function on CUDA against the CPU are in ``test_cuda.py`` (skipped without a GPU)."""

import json
import shutil
import warnings

import pandas as pd
import pytest
import torch

from prunekit.core import device as D
from prunekit.core.store import entry_path, seal_meta, train_or_load
from prunekit.core.config import DataConfig, ModelConfig, TrainConfig
from prunekit.report.tables import save_table

SMALL = TrainConfig(data=DataConfig("digits"), model=ModelConfig("mlp", hidden=(16,)), epochs=1, batch_size=64)
NO_CUDA = not torch.cuda.is_available()


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "cuda:-1", "", "tpu:0", 3, None, "cpu:0"])
def test_bad_device_names_are_refused_naming_the_allowed_values(bad):
    with pytest.raises(ValueError, match="device=.*allowed values: 'auto', 'cpu', 'cuda', 'cuda:<index>'"):
        D.resolve_device(bad)
    with pytest.raises(ValueError, match="device="):
        TrainConfig(device=bad)


def test_names_are_canonical_and_auto_follows_the_machine(monkeypatch):
    assert D.device_name(" CPU ") == "cpu" and D.device_name(torch.device("cuda", 1)) == "cuda:1"
    assert D.device_type("cuda:3") == "cuda" and D.device_type("cpu") == "cpu"
    monkeypatch.setattr(D, "cuda_available", lambda: False)
    assert D.resolve_device("auto") == torch.device("cpu") and TrainConfig(device="auto").device == "cpu"
    monkeypatch.setattr(D, "cuda_available", lambda: True)
    assert D.device_name("auto") == "cuda" and TrainConfig(device="auto").device == "cuda"


@pytest.mark.skipif(not NO_CUDA, reason="needs a machine without CUDA")
def test_cuda_on_a_machine_without_it_is_refused_before_any_training(tmp_path):
    with pytest.raises(ValueError, match="no CUDA device"):
        D.resolve_device("cuda")
    with pytest.raises(ValueError, match="not in the cache and torch sees no CUDA device"):
        train_or_load(SMALL.replace(device="cuda"), root=tmp_path)
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_the_device_type_is_part_of_the_key_and_the_cpu_keeps_the_old_keys():
    cpu, cuda, cuda1 = SMALL, SMALL.replace(device="cuda"), SMALL.replace(device="cuda:1")
    assert "device" not in cpu.identity()  # every key cached before the field existed is unchanged
    assert cuda.identity()["device"] == "cuda" and cuda.key() == cuda1.key()  # which GPU is not identity
    assert cuda.key() != cpu.key()
    assert TrainConfig.from_dict(json.loads(json.dumps(cuda1.to_dict()))) == cuda1


def test_a_gpu_trained_entry_loads_on_a_cpu_only_machine(tmp_path, monkeypatch):
    """An entry whose config names CUDA (as a GPU machine writes it) is loaded onto the CPU here."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cpu_run = train_or_load(SMALL, root=tmp_path)
    gpu_cfg = SMALL.replace(device="cuda")
    src, dst = entry_path(SMALL, tmp_path), entry_path(gpu_cfg, tmp_path)
    shutil.copytree(src, dst)
    meta = json.loads((dst / "meta.json").read_text())
    meta["config"], meta["device"] = gpu_cfg.to_dict(), {"type": "cuda", "name": "a GPU"}
    (dst / "meta.json").write_text(json.dumps(seal_meta(meta)))  # as a GPU machine would have written it
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a mismatch would warn and retrain: it must load
        run = train_or_load(gpu_cfg, root=tmp_path)
    assert run.cached and run.config.device == "cuda"
    assert all(p.device.type == "cpu" for p in run.model.parameters())
    for k, v in cpu_run.model.state_dict().items():
        assert torch.equal(run.model.state_dict()[k], v), k


def test_cache_entries_record_the_device_they_were_trained_on(tmp_path):
    train_or_load(SMALL, root=tmp_path)
    meta = json.loads((entry_path(SMALL, tmp_path) / "meta.json").read_text())
    assert meta["device"]["type"] == "cpu" and meta["device"]["name"]


def test_saved_tables_have_a_device_column(tmp_path):
    path = save_table(pd.DataFrame({"k": [0, 50]}), "quick", "t", device="cpu")
    assert list(pd.read_csv(path)["device"]) == ["cpu", "cpu"]
    path = save_table(pd.DataFrame({"k": [0], "device": ["cuda"]}), "quick", "u", device="cpu")
    assert list(pd.read_csv(path)["device"]) == ["cuda"]  # a table that says where it was computed keeps it
    with pytest.raises(ValueError, match="device="):
        save_table(pd.DataFrame({"k": [0]}), "quick", "v", device="gpu")


def test_dataset_to_moves_every_split_once():
    from prunekit.core.data import load_dataset
    ds = load_dataset("digits")
    assert D.dataset_to(ds, "cpu") is ds  # already there: the same object, nothing copied
    assert D.model_device(torch.nn.Linear(2, 2)) == torch.device("cpu")
    assert D.model_device(torch.nn.ReLU()) == torch.device("cpu")


def test_deterministic_is_a_no_op_on_the_cpu_and_restores_the_setting():
    before = torch.are_deterministic_algorithms_enabled()
    with D.deterministic("cpu"):
        assert torch.are_deterministic_algorithms_enabled() == before
    assert torch.are_deterministic_algorithms_enabled() == before


def test_benchmark_rows_carry_the_device_and_an_old_table_gains_the_column(tmp_path, monkeypatch, capsys):
    from prunekit.report import benchmarking
    monkeypatch.setenv("PRUNEKIT_RESULTS", str(tmp_path))
    (tmp_path / "benchmarks.csv").write_text("benchmark,quantity,value,unit,threads,timestamp\n"
                                             "b,q,1.0,s,2,2026-01-01T00:00:00\n")
    benchmarking.record("b", "q", 2.0, "s", device="cuda:0")
    table = pd.read_csv(tmp_path / "benchmarks.csv")
    assert list(table["device"]) == ["cpu", "cuda"] and list(table["value"]) == [1.0, 2.0]
    assert list(table.columns) == list(benchmarking.COLUMNS)


def test_a_corrupt_gpu_entry_is_kept_on_a_machine_that_cannot_retrain_it(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    train_or_load(SMALL, root=tmp_path)
    gpu_cfg = SMALL.replace(device="cuda")
    dst = entry_path(gpu_cfg, tmp_path)
    shutil.copytree(entry_path(SMALL, tmp_path), dst)  # config still says cpu: a mismatching entry
    with pytest.raises(ValueError, match="cannot be loaded .* no CUDA device here to retrain it"):
        train_or_load(gpu_cfg, root=tmp_path)
    assert (dst / "meta.json").exists() and (dst / "model.pt").exists()  # nothing deleted
