"""Every bad input is refused early by name: the probes a careful tester tried, each a ValueError that names the
parameter (or, for a network that would learn nothing, a warning), before any compute."""

from __future__ import annotations

import math

import pytest
import torch

from prunekit.core.checks import count, number, sequence
from prunekit.core.config import DataConfig, ModelConfig, TrainConfig
from prunekit.core.data import load_dataset
from prunekit.core.models import build_model
from prunekit.core.initialisation import sparse_at_init
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


# ------------------------------------------------------------------------ bad inputs once found, each refused before compute
def _first_three(out):
    """A reader's output_fn that keeps 3 of 10 logits."""
    return out[:, :3]


def _mlp():
    from prunekit.core.models import build_model as build

    torch.manual_seed(0)
    return build(ModelConfig("mlp", hidden=(8,)), (1, 8, 8), 10).eval()


def _your_setup(model, ds):
    import pandas as pd

    from prunekit.core.prunable import prunable_parameters
    from prunekit.studies import your_model

    setup = your_model.Setup(model, ds.train, ds.test, "digits", prunable_parameters(model), {}, None,
                             {"loss": 1.0, "accuracy": 0.5}, {"lrs": [0.05], "optimizer": "SGD(momentum=0.9)",
                                                             "batch_size": 64, "seed": 0},
                             preset=your_model.preset("quick"))  # a setup carries the preset its measures read
    return setup, your_model.FineTuned(model, model, None, pd.DataFrame(), 0.5)


def _issue_probes():
    from prunekit.core.prunable import prunable_parameters
    from prunekit.core.store import fit_or_load
    from prunekit.core.train import fit_model
    from prunekit.measures.curves import pruning_curve
    from prunekit.measures.density import effective_density
    from prunekit.measures.utility import evaluate_subsets
    from prunekit.pruning.retrain import magnitude_masks
    from prunekit.studies import your_model

    def curve(m, ds, **kw):
        return pruning_curve(m, prunable_parameters(m), ds.test, **{"ks": [50], **kw})

    n = sum(p.numel() for mod, _ in prunable_parameters(_mlp()) for p in [mod.weight])
    return {  # name: (call(model, ds), the error's message)
        "ks repeated": (lambda m, ds: curve(m, ds, ks=[50, 50]), r"ks=\[50.0, 50.0\] repeats 50.0"),
        "ks empty": (lambda m, ds: curve(m, ds, ks=[]), r"ks=\[\] is empty"),
        "ks a string": (lambda m, ds: curve(m, ds, ks="50"), r"ks='50' must be a list"),
        "methods empty": (lambda m, ds: curve(m, ds, methods=[]), r"methods=\[\] is empty"),
        "scopes repeated": (lambda m, ds: curve(m, ds, scopes=["global", "global"]), r"scopes=.* repeats 'global'"),
        "float subsets": (lambda m, ds: evaluate_subsets(m, ds.test, subsets=torch.rand(2, n)),
                          r"subsets must be a boolean \[S, P\] tensor"),
        "float subsets in a list": (lambda m, ds: evaluate_subsets(m, ds.test, subsets=[torch.rand(n)]),
                                    "subsets must be boolean"),
        "fit_or_load seed 1.5": (lambda m, ds: fit_or_load(m, ds, lrs=[0.1], seed=1.5),
                                 "seed=1.5 must be an integer"),
        "fit_or_load momentum NaN": (lambda m, ds: fit_or_load(m, ds, lrs=[0.1], momentum=NAN),
                                     "momentum=nan must be a finite number"),
        "magnitude_ablation seed -1": (lambda m, ds: magnitude_ablation(m, ds.test, seed=-1),
                                       r"seed=-1 is out of range; allowed: \[0, inf\]"),
        "magnitude_ablation seed 1.5": (lambda m, ds: magnitude_ablation(m, ds.test, seed=1.5),
                                        "seed=1.5 must be an integer"),
        "n_bands a million": (lambda m, ds: magnitude_ablation(m, ds.test, n_bands=10**6),
                              rf"n_bands=1000000 is out of range; allowed: \[1, {n}\]"),
        "effective_density tolerance -0.1": (lambda m, ds: effective_density(m, ds.test, tolerance=-0.1),
                                             r"tolerance=-0.1 is out of range"),
        "magnitude_masks k 0.8": (lambda m, ds: magnitude_masks(m, 0.8), "k=0.8 is a percentage .* did you mean k=80"),
        "prune_and_fine_tune sparsity 80": (lambda m, ds: your_model.prune_and_fine_tune(_your_setup(m, ds)[0], 80),
                                            r"sparsity=80 .*did you mean sparsity=0.8"),
        "surface_tables grid 1": (lambda m, ds: your_model.surface_tables(*_your_setup(m, ds), grid=1),
                                  r"grid=1 is out of range; allowed: \[2, inf\]"),
        "prepare an unknown data set": (lambda m, ds: your_model.prepare(m, "nonexistent"),
                                        r"dataset='nonexistent' is neither one of prunekit's \('digits', 'mnist',"),
        "output_fn of 3 logits (fit_model)": (lambda m, ds: fit_model(m, ds, lrs=[0.1], output_fn=_first_three),
                                              "output_fn='_first_three' gives 3 logits per sample, but the labels go "
                                              "up to 9: it needs at least 10"),
        "output_fn of 3 logits (fit_or_load)": (lambda m, ds: fit_or_load(m, ds, lrs=[0.1], output_fn=_first_three),
                                                "output_fn='_first_three' gives 3 logits per sample"),
    }


@pytest.mark.parametrize("probe", list(_issue_probes()))
def test_the_issues_bad_inputs_are_refused_by_name_before_any_compute(probe, monkeypatch):
    """Each bad input once found is a ValueError naming the parameter, raised before any model is trained or evaluated
    (the output_fn probe alone runs its one forward pass of two samples, in eval mode: the logits it checks)."""
    call, message = _issue_probes()[probe]
    model, ds = _mlp(), load_dataset("digits")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    import prunekit.core.train as train

    monkeypatch.setattr(train, "_fit_epochs", _never)                 # no training step
    forwards = []
    hook = torch.nn.modules.module.register_module_forward_pre_hook(lambda mod, args: forwards.append(mod))
    try:
        with pytest.raises(ValueError, match=message) as err:
            call(model, ds)
    finally:
        hook.remove()
    assert not forwards or "output_fn" in probe, f"evaluated before refusing: {err.value}"
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_malicious_or_foreign_checkpoint_names_checkpoint_and_not_torchs_advice(tmp_path):
    import os as os_module

    from prunekit.studies.your_model import load_checkpoint

    class Exploit:
        def __reduce__(self):
            return (os_module.system, ("touch " + str(tmp_path / "pwned"),))

    bad = tmp_path / "bad.pt"
    torch.save({"state_dict": {"w": torch.ones(1)}, "payload": Exploit()}, bad)
    foreign = tmp_path / "notes.pt"
    foreign.write_text("not a checkpoint")
    for path, kind in ((bad, "holds Python objects beyond tensors"), (foreign, "is not a plain torch state dict")):
        with pytest.raises(ValueError, match=f"checkpoint='{path}' {kind}") as err:
            load_checkpoint(_mlp(), path)
        assert "weights_only set to False" not in str(err.value) and "weights_only=False" not in str(err.value)
        assert err.value.__suppress_context__                 # torch's advice is not chained either
    assert not (tmp_path / "pwned").exists()
