import math

import pytest

from prunekit.config import DataConfig, ModelConfig, TrainConfig


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
