"""Source 002's study layer: shared presets and the claims, decided by their stated rules on hand-made tables."""

import math

import numpy as np
import pandas as pd
import pytest

from prunekit import mechanism as M
from prunekit.claims import COLUMNS


def _random(spread):
    return pd.DataFrame({"ratio": [0.05, 0.1, 0.2], "accuracy_min": [0.9, 0.9 - spread, 0.5],
                         "accuracy_max": [0.95, 0.9, 0.8]})


def _bands(drops, dense=0.95):
    return pd.DataFrame({"ratio": 1.0, "band": range(len(drops)), "accuracy_mean": [dense - d for d in drops]})


def test_presets_of_notebooks_04_and_05_are_one_model():
    a, b = M.pretrain_config("paper"), M.pretrain_config("paper", seed=0, width_mult=1.0)
    assert a.key() == b.key() and a.model.arch == "lenet300" and a.data.name == "mnist"
    assert M.pretrain_config("quick", width_mult=2.0).model.width_mult == 2.0
    with pytest.raises(ValueError, match="profile"):
        M.pretrain_config("huge")


def test_utility_claims_follow_their_rules():
    epochs = pd.DataFrame({"epoch": [0, 1, 5, 10], "std": [0.08, 0.07, 0.09, 0.10]})
    crit = pd.DataFrame({"width_mult": [1.0, 2.0, 4.0], "critical_ratio": [0.80, 0.83, 0.82]})
    t = M.utility_claims(_random(0.6), _bands([0, 0, 0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.1, 0.6]), 0.95, epochs,
                         crit)
    assert list(t.columns) == COLUMNS and list(t["verdict"]) == ["holds"] * 4
    assert "spread of 60.0 points" in t["measured"].iloc[0]
    t = M.utility_claims(_random(0.007), _bands([0, 0.02, 0, 0, 0, 0.1]), 0.95,
                         epochs.assign(std=[0.1, 0.09, 0.08, 0.07]), crit.assign(critical_ratio=[0.5, 0.7, 0.9]))
    assert list(t["verdict"]) == ["does not hold"] * 4   # 0.7 points; a lower band costs 2 points; falls; 1.8x
    # near the boundaries: 10.01 points of spread holds, 9.99 does not; a top band only 5x the worst lower band does not
    t = M.utility_claims(_random(0.1001), _bands([0, 0.002, 0, 0.01]), 0.95)
    assert list(t["verdict"][:2]) == ["holds", "does not hold"]
    assert M.utility_claims(_random(0.0999))["verdict"].iloc[0] == "does not hold"
    # not monotone, but up at the end with a positive correlation: holds
    bumpy = pd.DataFrame({"epoch": [0, 1, 2, 3, 4], "std": [0.08, 0.06, 0.07, 0.09, 0.10]})
    assert M.utility_claims(imbalance_by_epoch=bumpy)["verdict"].iloc[2] == "holds"
    # this project's scale-free extras decide the same rule when asked for; the source's std is the default
    gini = bumpy.rename(columns={"std": "gini"})
    assert M.utility_claims(imbalance_by_epoch=gini, imbalance="gini")["verdict"].iloc[2] == "holds"
    assert M.utility_claims(imbalance_by_epoch=gini)["verdict"].iloc[2] == "not measured here"


@pytest.mark.parametrize("kwargs", [
    {},                                                                             # nothing measured
    {"random_summary": pd.DataFrame(columns=["ratio", "accuracy_min", "accuracy_max"])},  # empty
    {"magnitude_summary": _bands([0.1])},                                           # one band, no dense accuracy
    {"imbalance_by_epoch": pd.DataFrame({"epoch": [10], "std": [0.1]})},           # one epoch
    {"imbalance_by_epoch": pd.DataFrame({"epoch": [0, 10], "cv": [0.1, 0.2]})},     # lacks the measure
    {"critical": pd.DataFrame({"width_mult": [1.0, 2.0], "critical_ratio": [0.8, math.nan]})},  # never reached
])
def test_utility_claims_never_raise(kwargs):
    t = M.utility_claims(**kwargs)
    assert len(t) == 4 and set(t["verdict"]) == {"not measured here"}
    assert t["measured"].str.startswith("Not measured here: ").all()


def test_basin_claims():
    b = pd.DataFrame({"method": ["finetune", "lr_rewind", "finetune", "lr_rewind"],
                      "split": ["train", "train", "test", "test"], "loss_barrier_linear": [0.001, 0.2, 0.0, 0.0]})
    t = M.basin_claims(b)
    assert t["verdict"].iloc[0] == "does not hold" and "1 of 2 retraining methods" in t["measured"].iloc[0]
    assert M.basin_claims(b, barrier_tol=0.25)["verdict"].iloc[0] == "holds"
    assert M.basin_claims(b, split="test")["verdict"].iloc[0] == "holds"
    for bad in (None, b.iloc[:0], b.drop(columns="split"), b[b.split == "test"]):
        assert M.basin_claims(bad)["verdict"].iloc[0] == "not measured here"


def test_ablation_table_rows():
    rnd = pd.DataFrame({"ratio": [0.1, 0.1], "subset": [0, 1], "accuracy": [0.9, 0.8], "utility": [0.1, 0.2]})
    band = rnd.assign(band=[3, 3])
    width = rnd.assign(width_mult=[2.0, 2.0])
    t = M.ablation_table({"random": rnd, "magnitude": band, "width": width}, epochs=10, seed=1)
    assert len(t) == 6 and list(t["experiment"].unique()) == ["random", "magnitude", "width"]
    assert t["band"].isna().sum() == 4 and (t["epoch"] == 10).all() and (t["seed"] == 1).all()
    assert list(t["width_mult"]) == [1.0, 1.0, 1.0, 1.0, 2.0, 2.0]
    assert np.allclose(t["utility"], [0.1, 0.2] * 3)


def test_sparse_at_init_prunes_each_layer_at_random_and_rescales_to_he():
    import math

    import torch
    from torch import nn

    from prunekit.config import ModelConfig
    from prunekit.models import build_model, prunable_parameters

    torch.manual_seed(0)
    model = build_model(ModelConfig("resnet20", init="he"), (1, 28, 28), 10)
    before = [m.weight.detach().clone() for m, _ in prunable_parameters(model)]
    masks = M.sparse_at_init(model, 0.25, torch.Generator().manual_seed(1))
    for (m, _), w0, name in zip(prunable_parameters(model), before, masks):
        keep = masks[name]
        n = keep.numel()
        assert int((~keep).sum()) == round(0.75 * n)                       # exactly this many pruned per layer
        assert torch.equal(m.weight[~keep], torch.zeros(int((~keep).sum())))
        kept = int(keep.sum())
        torch.testing.assert_close(m.weight[keep], w0[keep] * math.sqrt(n / kept), rtol=0, atol=0)
    big = model.stages[8].conv2.weight                                       # 64 x 64 x 3 x 3, 9,216 kept
    assert big[big != 0].var().item() == pytest.approx(2 / (0.25 * 64 * 9), rel=0.1)  # He for the pruned fan-in
    assert isinstance(model.fc, nn.Linear) and bool((model.fc.weight != 0).all())    # the output layer is not pruned
    again = build_model(ModelConfig("resnet20", init="he"), (1, 28, 28), 10)
    same = M.sparse_at_init(again, 0.25, torch.Generator().manual_seed(1))
    other = M.sparse_at_init(build_model(ModelConfig("resnet20"), (1, 28, 28), 10), 0.25,
                             torch.Generator().manual_seed(2))
    assert all(torch.equal(masks[k], same[k]) for k in masks)
    assert not all(torch.equal(masks[k], other[k]) for k in masks)
    full = build_model(ModelConfig("mlp"), (1, 8, 8), 10)
    w = full[1].weight.detach().clone()
    assert all(bool(m.all()) for m in M.sparse_at_init(full, 1.0).values()) and torch.equal(full[1].weight, w)
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="share"):
            M.sparse_at_init(full, bad)
