import math

import pytest

from prunekit.core.config import DataConfig, ModelConfig, TrainConfig


@pytest.mark.parametrize("kwargs, field", [
    (dict(width_mult=0), "width_mult"),
    (dict(width_mult=-1.0), "width_mult"),
    (dict(width_mult=math.nan), "width_mult"),
    (dict(arch="transformer"), "arch"),
    (dict(init="orthogonal"), "init"),
    (dict(activation="gelu"), "activation"),
    (dict(hidden=(10, 0)), "hidden"),
])
def test_model_config_rejects_bad_values(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ModelConfig(**kwargs)


@pytest.mark.parametrize("kwargs, field", [
    (dict(epochs=0), "epochs"),
    (dict(lr=0.0), "lr"),
    (dict(lr=math.nan), "lr"),
    (dict(lr=-0.1), "lr"),
    (dict(optimizer="rmsprop"), "optimizer"),
    (dict(batch_size=0), "batch_size"),
    (dict(schedule="linear"), "schedule"),
    (dict(loss="hinge"), "loss"),
    (dict(checkpoints=(0, 99), epochs=5), "checkpoints"),
])
def test_train_config_rejects_bad_values(kwargs, field):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**kwargs)


def test_error_lists_allowed_values():
    with pytest.raises(ValueError, match="'sgd', 'adam', 'adagrad'"):
        TrainConfig(optimizer="lbfgs")
    with pytest.raises(ValueError, match="'digits'"):
        DataConfig(name="imagenet")


def test_data_config_validation():
    with pytest.raises(ValueError, match="val_fraction"):
        DataConfig(val_fraction=1.0)
    with pytest.raises(ValueError, match="subset"):
        DataConfig(subset=0)
    with pytest.raises(ValueError, match="one_vs_all"):
        DataConfig(classes=(0, 1), one_vs_all=1)


def test_aliases_are_canonicalised_and_hash_is_stable():
    a = TrainConfig(model=ModelConfig(init="he"))
    b = TrainConfig(model=ModelConfig(init="he_normal"))
    assert a == b and a.key() == b.key()
    assert a.key() != a.replace(seed=1).key()
    assert len(a.key()) == 64


def test_replace_routes_fields_and_roundtrips():
    cfg = TrainConfig().replace(width_mult=2.0, optimizer="sgd", dataset="mnist", subset=100, data_seed=3)
    assert cfg.model.width_mult == 2.0 and cfg.optimizer == "sgd"
    assert cfg.data.name == "mnist" and cfg.data.subset == 100 and cfg.data.seed == 3
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown config field 'colour'"):
        cfg.replace(colour="red")
    with pytest.raises(ValueError, match="width_mult"):
        cfg.replace(width_mult=0)


# ------------------------------------------------------------------------------------------------ config identity
# pinned keys: a change that moves them orphans every cached model and sweep point, so it must be deliberate
GOLDEN_DEFAULT = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"  # sha256 of "{}"
GOLDEN_LENET = "3e9f402a8056e46a7168b45b177770d6886945e7e7b0d6fcf1b68300166fa7b7"
GOLDEN_CONV = "e4d0422f55b9c645e497801606d376ea2390ca2d975ceaa1f40860e3c2b5311a"


def test_key_hashes_only_non_default_fields():
    import hashlib
    import json

    assert TrainConfig().identity() == {}
    cfg = TrainConfig(data=DataConfig("mnist", subset=6000), lr=0.05, momentum=0.9, optimizer="sgd",
                      checkpoints=(0, 1)).replace(arch="lenet300", width_mult=3)
    assert cfg.identity() == {"data": {"name": "mnist", "subset": 6000}, "lr": 0.05, "momentum": 0.9,
                              "optimizer": "sgd", "checkpoints": [0, 1],
                              "model": {"arch": "lenet300", "width_mult": 3.0}}
    blob = json.dumps(cfg.identity(), sort_keys=True, separators=(",", ":"))
    assert cfg.key() == hashlib.sha256(blob.encode()).hexdigest()
    # ints given for float fields are the same config
    assert cfg.key() == cfg.replace(width_mult=3.0, lr=0.05).key()
    assert TrainConfig(lr=1).key() == TrainConfig(lr=1.0).key() != TrainConfig().key()


def test_golden_keys():
    assert TrainConfig().key() == GOLDEN_DEFAULT
    assert TrainConfig(data=DataConfig("mnist"), epochs=5).replace(arch="lenet300").key() == GOLDEN_LENET
    conv = TrainConfig(data=DataConfig("digits", subset=500, seed=1), model=ModelConfig("conv", width_mult=0.5,
                       init="he"), optimizer="sgd", lr=0.05, momentum=0.9, schedule="step", checkpoints=(0, 2))
    assert conv.key() == GOLDEN_CONV


def test_a_new_field_with_a_default_keeps_every_key():
    import dataclasses

    Grown = dataclasses.make_dataclass("Grown", [("label_smoothing", float, dataclasses.field(default=0.0))],
                                       bases=(TrainConfig,), frozen=True)
    base = TrainConfig(data=DataConfig("mnist"), epochs=5).replace(arch="lenet300")
    grown = Grown(data=base.data, model=base.model, epochs=5)
    assert grown.key() == base.key()
    assert Grown(label_smoothing=0.1).key() != TrainConfig().key()


def test_the_default_folders_are_the_repositorys_wherever_python_starts(tmp_path, monkeypatch):
    from pathlib import Path

    from prunekit.core import paths

    monkeypatch.chdir(tmp_path)
    for env in ("PRUNEKIT_DATA", "PRUNEKIT_CACHE"):
        monkeypatch.delenv(env, raising=False)
    root = Path(__file__).resolve().parents[2]
    assert paths.repo_root() == root and (root / "pyproject.toml").is_file()
    assert paths.data_dir() == root / "data" / "datasets" and paths.cache_dir() == root / "data" / "models"
