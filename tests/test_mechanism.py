"""Source 002's study layer: shared presets and the claims, decided by their stated rules on hand-made tables."""

import math

import numpy as np
import pandas as pd
import pytest

from prunekit import basins as B
from prunekit import mechanism as M
from prunekit.claims import COLUMNS


def _random(spread):
    return pd.DataFrame({"ratio": [0.05, 0.1, 0.2], "accuracy_min": [0.9, 0.9 - spread, 0.5],
                         "accuracy_max": [0.95, 0.9, 0.8]})


def _bands(drops, dense=0.95):
    return pd.DataFrame({"ratio": 1.0, "band": range(len(drops)), "accuracy_mean": [dense - d for d in drops]})


def test_presets_of_notebooks_04_and_05_are_one_model():
    a, b = M.pretrain_config("paper"), M.pretrain_config("paper", seed=0, width_mult=1.0, network="resnet20")
    assert a.key() == b.key() and a.key() == B.cycles_config("paper").key()   # 04's cycles and 05: one ResNet20
    assert (a.model.arch, a.model.init, a.model.batch_norm, a.data.name, a.data.subset, a.data.resize) == (
        "resnet20", "he_normal", True, "mnist", 10_000, 14)
    assert (a.optimizer, a.lr, a.momentum, a.weight_decay, a.schedule) == ("sgd", 0.1, 0.9, 1e-4, "step")
    assert a.checkpoints[0] == 0 and a.checkpoints[-1] == a.epochs                  # imbalance from initialisation
    mlp = M.pretrain_config("paper", network="mlp")
    assert (mlp.model.arch, mlp.data.name, mlp.optimizer) == ("lenet300", "mnist", "adam")
    assert M.pretrain_config("quick", width_mult=2.0).model.width_mult == 2 * M.SOURCE_NETWORK["quick"]["width_mult"]
    fashion = M.pretrain_config("paper", dataset="fashion_mnist")
    assert fashion.data.name == "fashion_mnist" and fashion.data.resize == 14
    assert M.pretrain_config("paper", dataset="cifar10").data.resize is None          # 32x32 colour, never shrunk
    with pytest.raises(ValueError, match="profile"):
        M.pretrain_config("huge")
    with pytest.raises(ValueError, match="network"):
        M.pretrain_config("quick", network="vgg")
    with pytest.raises(ValueError, match="dataset"):
        M.pretrain_config("quick", dataset="imagenet")


def test_the_full_profile_is_the_sources_length_and_falls_back_to_mnist(monkeypatch, tmp_path):
    """'full' trains the source's 200 epochs on the whole training set: on CIFAR-10 where its files are, else on
    MNIST at full size (decided by the files in the data folder, without loading or downloading)."""
    monkeypatch.setenv("PRUNEKIT_DATA", str(tmp_path))                    # an empty data folder: no CIFAR-10
    full = M.pretrain_config("full")
    assert (full.epochs, full.data.name, full.data.subset, full.data.resize) == (200, "mnist", None, None)
    assert M.eval_subset("full") is None and M.STUDY["full"]["n_subsets"] == 500
    batches = tmp_path / "cifar-10-batches-py"
    batches.mkdir()
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        (batches / name).write_bytes(b"")                                    # present (not loaded to decide)
    assert M.pretrain_config("full").data.name == "cifar10" and M.default_dataset("paper") == "mnist"
    assert B.CYCLE_PROFILES["full"]["retrain_epochs"] is None                          # each cycle retrains T epochs


def test_vanilla_cnn_stand_in_is_a_plain_conv_net_with_the_sources_sgd():
    cnn = M.vanilla_cnn_config("paper", seed=3)
    assert (cnn.model.arch, cnn.model.batch_norm, cnn.model.width_mult) == ("conv", False, 1.0)
    assert (cnn.optimizer, cnn.lr, cnn.momentum, cnn.weight_decay, cnn.schedule, cnn.seed) == (
        "sgd", 0.1, 0.0, 0.0, "step", 3)
    assert cnn.data == M.pretrain_config("paper").data and cnn.checkpoints == M.pretrain_config("paper").checkpoints


@pytest.mark.parametrize("kwargs,match", [
    ({"ratios": []}, "ratios"), ({"ratios": "0.1"}, "ratios"), ({"size_shares": [1.0, 1.0]}, "size_shares"),
    ({"size_ratios": [0.0]}, "size_ratios"), ({"prune_ratios": [1.0]}, "prune_ratios"),
    ({"band_ratios": [1.5]}, "band_ratios"), ({"imbalance_ratio": [float("nan")]}, "imbalance_ratio")])
def test_check_plan_names_the_bad_list(kwargs, match):
    with pytest.raises(ValueError, match=match):
        M.check_plan(below_one=["prune_ratios"], **kwargs)
    M.check_plan(below_one=["prune_ratios"], ratios=[0.1, 1.0], prune_ratios=[0.25, 0.75])  # good lists pass


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
    t = B.basin_claims(b)
    assert t["verdict"].iloc[0] == "does not hold" and "1 of 2 retraining methods" in t["measured"].iloc[0]
    assert B.basin_claims(b, barrier_tol=0.25)["verdict"].iloc[0] == "holds"
    assert B.basin_claims(b, split="test")["verdict"].iloc[0] == "holds"
    for bad in (None, b.iloc[:0], b.drop(columns="split"), b[b.split == "test"]):
        assert B.basin_claims(bad)["verdict"].iloc[0] == "not measured here"


def test_ablation_table_rows():
    rnd = pd.DataFrame({"ratio": [0.1, 0.1], "subset": [0, 1], "accuracy": [0.9, 0.8], "utility": [0.1, 0.2]})
    band = rnd.assign(band=[3, 3])
    width = rnd.assign(width_mult=[2.0, 2.0])
    t = M.ablation_table({"random": rnd, "magnitude": band, "width": width}, epochs=10, seed=1, network="mlp")
    assert len(t) == 6 and list(t["experiment"].unique()) == ["random", "magnitude", "width"]
    assert t["band"].isna().sum() == 4 and (t["epoch"] == 10).all() and (t["seed"] == 1).all()
    assert list(t["width_mult"]) == [1.0, 1.0, 1.0, 1.0, 2.0, 2.0]
    assert np.allclose(t["utility"], [0.1, 0.2] * 3)
    sized = rnd.rename(columns={"ratio": "level"}).assign(share=[0.5, 0.5], by=["number", "number"])
    pruned = sized.drop(columns=["share", "by"]).assign(prune_ratio=0.5, network="small")
    t = M.ablation_table({"random": rnd, "size": sized, "pruned": pruned}, epochs=10, seed=1, network="resnet20")
    assert list(t["network"]) == ["resnet20"] * 4 + ["small"] * 2
    assert t["prune_ratio"].isna().sum() == 4 and list(t["prune_ratio"].iloc[4:]) == [0.5, 0.5]
    t = t.iloc[:4]
    assert list(t["ratio"]) == [0.1] * 4 and list(t["share"]) == [1.0, 1.0, 0.5, 0.5]
    assert list(t["by"]) == ["ratio", "ratio", "number", "number"]





def _cycle_tables(weight_barriers=(0.01, 0.02), channel_rewind_barrier=0.3, accs=None):
    accs = accs or {("weight", "finetune"): 0.97, ("weight", "lr_rewind"): 0.98, ("weight", "small"): 0.96,
                    ("channel", "finetune"): 0.40, ("channel", "lr_rewind"): 0.90, ("channel", "small"): 0.92}
    table = pd.DataFrame([{"unit": u, "network": n, "test_accuracy": a} for (u, n), a in accs.items()])
    rows = [{"unit": "weight", "method": m, "split": "train", "loss_barrier_linear": b}
            for m, b in zip(("finetune", "lr_rewind"), weight_barriers)]
    rows += [{"unit": "channel", "method": "lr_rewind", "split": "train",
              "loss_barrier_linear": channel_rewind_barrier},
             {"unit": "weight", "method": "finetune", "split": "test", "loss_barrier_linear": 9.0}]  # other split
    return table, pd.DataFrame(rows)


def test_cycle_claims_follow_their_rules():
    table, barriers = _cycle_tables()
    got = B.cycle_claims(table, barriers)
    assert list(got.columns) == COLUMNS and list(got["verdict"]) == ["holds"] * 4
    # each rule at and across its threshold
    table, barriers = _cycle_tables(weight_barriers=(0.05, 0.0500001), channel_rewind_barrier=0.05,
                                    accs={("weight", "finetune"): 0.96, ("weight", "lr_rewind"): 0.98,
                                          ("weight", "small"): 0.96, ("channel", "finetune"): 0.80,
                                          ("channel", "lr_rewind"): 0.90})
    got = B.cycle_claims(table, barriers).set_index("claim")["verdict"]
    assert list(got) == ["does not hold", "does not hold", "does not hold", "holds"]  # 0.80 <= 0.90 - 0.10
    assert B.cycle_claims(table, barriers, collapse_gap=0.11)["verdict"].iloc[3] == "does not hold"
    assert B.cycle_claims(table, barriers, barrier_tol=0.06)["verdict"].iloc[0] == "holds"


@pytest.mark.parametrize("case", ["none", "no_columns", "weight_only", "test_split_only", "empty", "one_method",
                                  "duplicates", "nan", "extra_method"])
def test_cycle_claims_never_raise(case):
    table, barriers = _cycle_tables()
    if case == "none":
        table = barriers = None
    elif case == "no_columns":
        table, barriers = table.drop(columns="test_accuracy"), barriers.drop(columns="unit")
    elif case == "weight_only":
        table, barriers = table[table.unit == "weight"], barriers[barriers.unit == "weight"]
    elif case == "test_split_only":
        barriers = barriers[barriers.split == "test"]
    elif case == "one_method":  # only fine-tuning: the weight claims need both of the source's methods
        table = table[table.network != "lr_rewind"]
    elif case == "duplicates":  # a second channel + lr_rewind barrier and a second weight + small accuracy: those two
        # claims are not measured, the other two are
        barriers = pd.concat([barriers, barriers.iloc[[2]].assign(loss_barrier_linear=0.0)], ignore_index=True)
        table = pd.concat([table, table.iloc[[2]]], ignore_index=True)
    elif case == "nan":  # a NaN weight barrier and a NaN channel accuracy: not measured, not "does not hold"
        barriers.loc[0, "loss_barrier_linear"] = float("nan")
        table.loc[3, "test_accuracy"] = float("nan")
    elif case == "extra_method":  # a barrier of a method the claim does not name is left out (it would fail it)
        barriers = pd.concat([barriers, barriers.iloc[[0]].assign(method="weight_rewind", loss_barrier_linear=5.0)],
                             ignore_index=True)
    else:
        table, barriers = table.iloc[:0], barriers.iloc[:0]
    got = B.cycle_claims(table, barriers)
    assert list(got.columns) == COLUMNS and len(got) == 4
    measured = {"none": [], "no_columns": [], "weight_only": [0, 2], "test_split_only": [2, 3], "empty": [],
                "one_method": [0, 1], "duplicates": [0, 3], "nan": [1, 2], "extra_method": [0, 1, 2, 3]}[case]
    assert [i for i, v in enumerate(got["verdict"]) if v != "not measured here"] == measured
    assert all(m.startswith("Not measured here") for m, v in zip(got["measured"], got["verdict"])
               if v == "not measured here")


def test_cycles_config_is_the_sources_recipe():
    for profile in ("quick", "paper", "full"):
        cfg = B.cycles_config(profile, seed=2)
        assert (cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay, cfg.schedule, cfg.seed) == (
            "sgd", 0.1, 0.9, 1e-4, "step", 2)
        assert cfg.model.batch_norm and cfg.model.arch == "resnet20"
    assert B.cycles_config("paper").model.arch == "resnet20"
    with pytest.raises(ValueError, match="profile"):
        B.cycles_config("huge")


def _spread_rows(spreads: dict) -> pd.DataFrame:
    """Rows whose accuracy max - min per (network, statistics) is the given spread (3 subsets each)."""
    return pd.DataFrame([{"network": n, "statistics": s, "subset": i, "accuracy": 1.0 - v * i / 2}
                         for (n, s), v in spreads.items() for i in range(3)])


def test_spread_claims_follow_their_rules():
    df = _spread_rows({("bn", "stored"): 0.5, ("bn", "recalibrated"): 0.25, ("plain", "none"): 0.25})  # exact floats
    got = M.spread_claims(df)
    assert list(got.columns) == COLUMNS and list(got["verdict"]) == ["holds", "holds"]  # both exactly at 50%
    assert "50.0 points with stored statistics, 25.0 recalibrated" in got["measured"].iloc[0]
    df = _spread_rows({("bn", "stored"): 0.5, ("bn", "recalibrated"): 0.26, ("plain", "none"): 0.24})
    assert list(M.spread_claims(df)["verdict"]) == ["does not hold", "does not hold"]
    assert list(M.spread_claims(df, stale_share=0.4)["verdict"]) == ["holds", "does not hold"]  # .26 <= .3, .24 < .3


@pytest.mark.parametrize("spreads", [None, {}, {("bn", "stored"): 0.6}, {("plain", "none"): 0.2},
                                     {("bn", "recalibrated"): 0.1, ("plain", "none"): 0.2}])
def test_spread_claims_never_raise(spreads):
    got = M.spread_claims(None if spreads is None else _spread_rows(spreads))
    assert list(got.columns) == COLUMNS and list(got["verdict"]) == ["not measured here"] * 2


def test_spread_experiment_uses_the_same_subsets_and_both_statistics():
    import torch
    from torch import nn

    from prunekit.config import ModelConfig
    from prunekit.models import build_model

    torch.manual_seed(0)
    bn = build_model(ModelConfig(arch="conv", width_mult=0.25), (1, 8, 8), 4).eval()
    plain = build_model(ModelConfig(arch="conv", width_mult=0.25, batch_norm=False), (1, 8, 8), 4).eval()
    x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 4, (64,))
    df = M.spread_experiment({"bn": bn, "plain": plain}, x, y, ratio=0.2, n_subsets=5, seed=3)
    assert sorted(set(zip(df.network, df.statistics))) == [("bn", "recalibrated"), ("bn", "stored"), ("plain", "none")]
    assert (df.groupby(["network", "statistics"]).size() == 5).all()
    from prunekit.utility import random_ablation

    stored = random_ablation(bn, x, y, ratios=[0.2], n_subsets=5, seed=3)
    got = df[(df.network == "bn") & (df.statistics == "stored")]
    assert np.array_equal(got["accuracy"].to_numpy(), stored["accuracy"].to_numpy())
    no_bn = M.without_batch_norm(B.cycles_config("quick"))
    assert no_bn.model.batch_norm is False and (no_bn.optimizer, no_bn.lr, no_bn.schedule) == ("adam", 1e-3, "none")
    assert isinstance(bn.features[1], nn.BatchNorm2d)


def test_utility_claims_odd_tables_answer_not_measured():
    nan = float("nan")
    got = M.utility_claims(imbalance_by_epoch={})                                   # no network at all: one row
    assert len(got) == 4 and got["verdict"].iloc[2] == "not measured here"
    got = M.utility_claims(imbalance_by_epoch={"cnn": pd.DataFrame({"epoch": [0, 1, 2], "std": [nan, 0.2, 0.3]})})
    assert got["verdict"].iloc[2] == "not measured here" and "finite" in got["measured"].iloc[2]
    twice = pd.DataFrame({"epoch": [0, 0, 5, 5], "std": [0.1, 0.2, 0.3, 0.4]})    # two seeds, not averaged
    assert M.utility_claims(imbalance_by_epoch=twice)["verdict"].iloc[2] == "not measured here"
    assert M.utility_claims(_random(0.6).assign(accuracy_min=nan))["verdict"].iloc[0] == "not measured here"
    doubled = pd.concat([_random(0.6), _random(0.6)])                                # two networks concatenated
    assert M.utility_claims(doubled)["verdict"].iloc[0] == "not measured here"
    bands = _bands([0, 0, 0, 0.3])
    assert M.utility_claims(magnitude_summary=bands, dense_accuracy=nan)["verdict"].iloc[1] == "not measured here"
    assert M.utility_claims(magnitude_summary=pd.concat([bands, bands]),
                            dense_accuracy=0.95)["verdict"].iloc[1] == "not measured here"
    assert M.utility_claims(magnitude_summary=bands, dense_accuracy=0.95)["verdict"].iloc[1] == "holds"
