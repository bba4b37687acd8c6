"""Every bad input is refused early by name: the probes a careful tester tried, each a ValueError that names the
parameter (or, for a network that would learn nothing, a warning), before any compute."""

from __future__ import annotations

import math

import pytest
import torch

from prunekit.core.checks import count, number, sequence
from prunekit.core.config import DataConfig, ModelConfig, TrainConfig
from prunekit.core.data import load_dataset
from prunekit.core.models import build_model, sparse_at_init
from prunekit.measures import surface
from prunekit.measures.utility import magnitude_ablation, random_ablation
from prunekit.pruning.cycles import check_plan, iterative_pruning
from prunekit.pruning.retrain import retraining_lrs
from prunekit.studies import s002_sizes

NAN, INF = math.nan, math.inf
CFG = TrainConfig(data=DataConfig("digits"), model=ModelConfig("conv", width_mult=0.25), epochs=3)


@pytest.fixture(scope="module")
def conv():
    torch.manual_seed(0)
    ds = load_dataset(CFG.data)
    return build_model(CFG.model, ds.input_shape, ds.num_classes).eval(), ds


def _never(*args, **kwargs):
    raise AssertionError("computed before the input was checked")


PROBES = {  # name: (call(conv, ds), the error's message)
    "cycles NaN": (lambda m, ds: check_plan(["weight"], ["finetune"], cycles=NAN), "cycles=nan must be a finite"),
    "cycles inf": (lambda m, ds: check_plan(["weight"], ["finetune"], cycles=INF), "cycles=inf must be a finite"),
    "cycles 2.5": (lambda m, ds: check_plan(["weight"], ["finetune"], cycles=2.5), "cycles=2.5 must be an integer"),
    "methods None": (lambda m, ds: check_plan(["weight"], None), "cycle_methods=None must be a list"),
    "units a string": (lambda m, ds: check_plan("weight", ["finetune"]), "cycle_units='weight' must be a list"),
    "iterative epochs 2.7": (lambda m, ds: iterative_pruning(m, ds, CFG, epochs=2.7), "epochs=2.7 must be an integer"),
    "iterative cycles NaN": (lambda m, ds: iterative_pruning(m, ds, CFG, cycles=NAN), "cycles=nan must be a finite"),
    "finetune_lr inf": (lambda m, ds: iterative_pruning(m, ds, CFG, finetune_lr=INF),
                        "finetune_lr=inf must be a finite"),
    "finetune_lr 0": (lambda m, ds: retraining_lrs(CFG, "finetune", finetune_lr=0.0), "finetune_lr=0.0 is out of"),
    "retrain epochs True": (lambda m, ds: retraining_lrs(CFG, "lr_rewind", epochs=True), "epochs=True must be a"),
    "rewind_epoch NaN": (lambda m, ds: retraining_lrs(CFG, "weight_rewind", rewind_epoch=NAN),
                         "rewind_epoch=nan must be a finite"),
    "train epochs NaN": (lambda m, ds: CFG.replace(epochs=NAN), "epochs=nan must be a finite"),
    "grid n NaN": (lambda m, ds: surface.Plane.through(torch.zeros(3), torch.tensor([1., 0, 0]),
                                                       torch.tensor([0., 1, 0])).grid(n=NAN), "n=nan must be a finite"),
    "size share 1.5": (lambda m, ds: s002_sizes.size_config("quick", share=1.5), "share=1.5 is out of range"),
    "pruned_comparison {}": (lambda m, ds: s002_sizes.pruned_comparison(m, {}, {}, ds.test.x, ds.test.y, [0.1], 5),
                             "pruned={} is empty"),
    "pruned_table {}": (lambda m, ds: s002_sizes.pruned_table(m, {}, {}, ds), "pruned={} is empty"),
    "pruned_table not a model": (lambda m, ds: s002_sizes.pruned_table({}, {}, {}, ds),
                                 "pretrained must be an nn.Module"),
    "ratios []": (lambda m, ds: random_ablation(m, ds.test.x, ds.test.y, ratios=[]), r"ratios=\[\] is empty"),
    "ratios a number": (lambda m, ds: random_ablation(m, ds.test.x, ds.test.y, ratios=0.1),
                        r"ratios=0.1 must be a list \(for example \[0.1\]\)"),
    "ratios NaN": (lambda m, ds: random_ablation(m, ds.test.x, ds.test.y, ratios=[NAN]), r"ratios\[0\]=nan must be"),
    "n_subsets 2.5": (lambda m, ds: random_ablation(m, ds.test.x, ds.test.y, n_subsets=2.5),
                      "n_subsets=2.5 must be an integer"),
    "n_subsets NaN": (lambda m, ds: random_ablation(m, ds.test.x, ds.test.y, n_subsets=NAN),
                      "n_subsets=nan must be a finite"),
    "n_subsets '5'": (lambda m, ds: random_ablation(m, ds.test.x, ds.test.y, n_subsets="5"),
                      "n_subsets='5' must be a number"),
    "n_subsets True": (lambda m, ds: random_ablation(m, ds.test.x, ds.test.y, n_subsets=True),
                       "n_subsets=True must be a number"),
    "n_bands 0": (lambda m, ds: magnitude_ablation(m, ds.test.x, ds.test.y, n_bands=0), "n_bands=0 is out of range"),
}


@pytest.mark.parametrize("probe", list(PROBES))
def test_a_bad_input_is_refused_by_name_before_any_compute(probe, conv, monkeypatch):
    call, message = PROBES[probe]
    import prunekit.measures.utility as utility
    import prunekit.pruning.retrain as retrain

    monkeypatch.setattr(utility, "AblationEngine", _never)   # no ablation starts
    monkeypatch.setattr(retrain, "train", _never)             # no retraining starts
    with pytest.raises(ValueError, match=message):
        call(*conv)


def test_a_density_that_leaves_a_layer_empty_is_warned_about():
    model = build_model(ModelConfig("mlp", hidden=(16, 8)), (1, 8, 8), 10)
    with pytest.warns(RuntimeWarning, match=r"share=1e-09 \(ModelConfig.init_density\) keeps no weight of .*"
                                            r"\(1024 weights\)"):
        masks = sparse_at_init(model, 1e-9)
    assert all(not bool(m.any()) for m in masks.values())


def test_the_helpers_against_hand_written_cases():
    assert count("n", 3.0) == 3 and isinstance(count("n", 3.0), int) and number("x", 0.5, low=0) == 0.5
    for bad, text in ((NAN, "finite"), (INF, "finite"), (-INF, "finite"), (2.5, "integer"), ("5", "number"),
                      (True, "number"), (None, "number"), (0, "out of range")):
        with pytest.raises(ValueError, match=f"n={bad!r}.*{text}"):
            count("n", bad)
    assert sequence("r", (0.1, 0.2)) == [0.1, 0.2] and sequence("r", [], nonempty=False) == []
    assert sequence("r", range(2), item=lambda name, v: count(name, v, low=0)) == [0, 1]
    for bad in (None, "ab", 3, {"a": 1}, torch.ones(2)):
        with pytest.raises(ValueError, match="must be a list"):
            sequence("r", bad)
    with pytest.raises(ValueError, match=r"r\[1\]=-1 is out of range"):
        sequence("r", [0, -1], item=lambda name, v: count(name, v, low=0))
