"""The one shape of a study (prunekit.studies.protocol): every study of the catalog has its Preset, PRESETS and
preset(profile); a preset takes a notebook's values in the profile's place, checked, and refuses a name it lacks."""

from __future__ import annotations

import dataclasses
import importlib

import pytest

from prunekit.core.config import PROFILES
from prunekit.report.catalog import STUDIES
from prunekit.studies.protocol import StudyPreset, training_plan

PRESET_MODULES = [row.modules[0] for row in STUDIES if row.modules]


@pytest.mark.parametrize("name", PRESET_MODULES)
def test_every_study_has_one_preset_per_profile(name):
    module = importlib.import_module(name)
    assert issubclass(module.Preset, StudyPreset) and dataclasses.is_dataclass(module.Preset)
    assert module.Preset.__dataclass_params__.frozen
    assert set(module.PRESETS) == set(PROFILES)
    for profile in PROFILES:
        pre = module.preset(profile)
        assert pre is module.PRESETS[profile] and isinstance(pre, module.Preset)
        assert pre.with_overrides() == pre                                   # nothing given: the profile's own
        assert pre.with_overrides(**{f.name: None for f in dataclasses.fields(pre)}) == pre   # None keeps it
    with pytest.raises(ValueError, match="profile"):
        module.preset("huge")
    with pytest.raises(ValueError, match="no_such_setting=1 is not a setting of .*Preset; its settings: "):
        module.preset("quick").with_overrides(no_such_setting=1)


def test_a_value_given_in_the_profiles_place_is_checked_there():
    from prunekit.studies import s001_shrinking, s002_basins, s002_utility

    assert s002_utility.preset("paper").with_overrides(ratios=[0.5], n_subsets=7).ratios == (0.5,)
    with pytest.raises(ValueError, match="prune_ratios"):
        s002_utility.preset("quick").with_overrides(prune_ratios=[1.0])      # Sec. 2.2.2 prunes fewer than all
    with pytest.raises(ValueError, match="n_subsets"):
        s002_utility.preset("quick").with_overrides(n_subsets=0)
    assert s002_utility.preset("quick").with_overrides(spread_datasets=["mnist", "mnist"]).spread_datasets == (
        "mnist",)
    with pytest.raises(ValueError, match="cycle_seeds"):
        s002_basins.preset("quick").with_overrides(cycle_seeds=[0, 0])
    with pytest.raises(ValueError, match="setups"):
        s001_shrinking.preset("quick").with_overrides(setups=["no_such_setup"])
    assert s001_shrinking.preset("quick").with_overrides(seeds=[2, 1]).seeds == (2, 1)


def test_the_networks_are_shared_by_notebooks_04_and_05():
    from prunekit.studies import s002_basins, s002_utility

    for profile in PROFILES:
        four, five = s002_basins.preset(profile), s002_utility.preset(profile)
        assert four.resnet20 == five.network("resnet20") and four.mlp == five.network("mlp")
        assert [c.key() for c in four.cycle_configs()] == [s002_utility.pretrain_config(profile, s).key()
                                                           for s in four.cycle_seeds]


def test_the_training_plan_says_how_long_before_anything_trains(capsys, tmp_path, monkeypatch):
    from prunekit.core.config import DataConfig, ModelConfig, TrainConfig
    from prunekit.core.store import train_or_load

    cfg = TrainConfig(data=DataConfig("digits"), model=ModelConfig("mlp", hidden=(8,)), epochs=1)
    train_or_load(cfg, quiet=True)
    plan = training_plan([cfg, cfg.replace(seed=1)], [(cfg, 2)], label="a test")
    assert list(plan["kind"]) == ["pretraining", "pretraining", "retraining"]
    assert list(plan["cached"]) == [True, False, False]
    out = capsys.readouterr().out
    assert out.startswith("training planned here: about ") and out.rstrip().endswith("(1 of 3 networks already trained)")
    with pytest.raises(ValueError, match="label"):
        training_plan([cfg], label="")
