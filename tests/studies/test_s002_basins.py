"""Source 002's basins study (prunekit.studies.s002_basins): the pruning cycles' presets and recipe, and the basin and
cycle claims, decided by their stated rules on hand-made tables."""

import pandas as pd
import pytest

from prunekit.pruning import cycles as Cy
from prunekit.report.claims import COLUMNS
from prunekit.studies import s002_basins as B


def test_basin_claims():
    b = pd.DataFrame({"method": ["finetune", "lr_rewind", "finetune", "lr_rewind"],
                      "split": ["train", "train", "test", "test"], "loss_barrier_linear": [0.001, 0.2, 0.0, 0.0]})
    t = B.basin_claims(b)
    assert t["verdict"].iloc[0] == "does not hold" and "1 of 2 distinct retraining runs" in t["measured"].iloc[0]
    assert B.basin_claims(b, barrier_tol=0.25)["verdict"].iloc[0] == "holds"
    assert B.basin_claims(b, split="test")["verdict"].iloc[0] == "holds"
    for bad in (None, b.iloc[:0], b.drop(columns="split"), b[b.split == "test"]):
        assert B.basin_claims(bad)["verdict"].iloc[0] == "not measured here"


def test_basin_claims_count_one_run_once():
    """Fine-tuning and lr rewinding after a constant-rate pretraining are one run: counted once, named with it."""
    b = pd.DataFrame({"method": ["finetune", "lr_rewind", "weight_rewind"], "split": "train",
                      "loss_barrier_linear": [0.0, 0.0, 0.01]})
    t = B.basin_claims(b, same_as={"lr_rewind": "finetune"})
    measured = t["measured"].iloc[0]
    assert t["verdict"].iloc[0] == "holds" and "1 of 1 distinct retraining run stays in the basin" in measured
    assert "finetune +0.0000 nats (lr_rewind: the same run" in measured and measured.count("lr_rewind") == 1
    # weight rewinding is not one of the source's methods: reported, never counted
    assert "This project's extension, not counted: weight_rewind +0.0100 nats" in measured
    high = b.assign(loss_barrier_linear=[0.0, 0.0, 0.5])
    assert B.basin_claims(high, same_as={"lr_rewind": "finetune"})["verdict"].iloc[0] == "holds"
    assert B.basin_claims(b[b.method == "weight_rewind"])["verdict"].iloc[0] == "not measured here"


def _cycle_tables(weight_barriers=(0.01, 0.02), channel_rewind_barrier=0.3, accs=None, pretrained=None,
                  barrier_noise=0.001):
    """Table 1 rows for seeds 0, 1, 2: each network's accuracy plus (-0.001, 0, +0.001) by seed; and each seed's
    barriers, the given heights plus (-1, 0, +1) x ``barrier_noise`` by seed."""
    accs = accs or {("weight", "finetune"): 0.87, ("weight", "lr_rewind"): 0.88, ("weight", "small"): 0.85,
                    ("channel", "finetune"): 0.40, ("channel", "lr_rewind"): 0.86, ("channel", "small"): 0.86}
    if pretrained is not None:
        accs = {**accs, ("pretrained", "pretrained"): pretrained}
    table = pd.DataFrame([{"seed": s, "unit": u, "network": n, "test_accuracy": a + 0.001 * (s - 1)}
                          for (u, n), a in accs.items() for s in range(3)])
    rows = []
    for s in range(3):
        heights = [("weight", m, b) for m, b in zip(("finetune", "lr_rewind"), weight_barriers)]
        heights.append(("channel", "lr_rewind", channel_rewind_barrier))
        rows += [{"seed": s, "unit": u, "method": m, "split": "train", "loss_barrier_linear": b + barrier_noise * (s - 1)}
                 for u, m, b in heights]
        rows.append({"seed": s, "unit": "weight", "method": "finetune", "split": "test", "loss_barrier_linear": 9.0})
    return table, pd.DataFrame(rows)


def test_cycle_claims_follow_their_rules():
    table, barriers = _cycle_tables()
    got = B.cycle_claims(table, barriers, setup="a test")
    assert list(got.columns) == COLUMNS and list(got["verdict"]) == ["holds"] * 4
    assert (got["seeds"] == "0, 1, 2").all() and (got["setup"] == "a test").all()
    # hand-worked: the channel line's heights 0.299, 0.300, 0.301: mean 0.3, sd 0.001, 95% t interval
    # 0.3 +- 4.303 * 0.001 / sqrt(3) = [0.2975, 0.3025]
    assert "+0.2975 to +0.3025 nats" in got["interval"].iloc[1]
    # every seed exactly at the tolerance is a tie (cannot decide); just above it in every seed leaves the basin
    table, barriers = _cycle_tables(weight_barriers=(0.05, 0.0500001), channel_rewind_barrier=0.05, barrier_noise=0)
    got = B.cycle_claims(table, barriers)
    assert list(got["verdict"][:2]) == ["does not hold", "cannot decide here"]
    assert "a tie" in got["measured"].iloc[1]
    assert B.cycle_claims(table, barriers, barrier_tol=0.06)["verdict"].iloc[0] == "holds"
    # the channel line stays in the basin too: the contrast the source reports is not reproduced, both numbers said
    table, barriers = _cycle_tables(channel_rewind_barrier=0.03)
    row = B.cycle_claims(table, barriers).iloc[1]
    assert row["verdict"] == "does not hold" and row["measured"].startswith("Not reproduced here: ")
    assert "+0.0300 nats" in row["measured"] and "weight pruning with rewinding: +0.0200 nats" in row["measured"]
    # the channel line leaves, but weight pruning with rewinding leaves too: no contrast, and no refutation of "can"
    row = B.cycle_claims(*_cycle_tables(weight_barriers=(0.01, 0.2))).iloc[1]
    assert row["verdict"] == "cannot decide here" and "weight pruning with rewinding leaves too" in row["measured"]
    assert "weight lr_rewind: +0.2000 nats" in row["interval"]
    # the weight line straddles the tolerance (0.04, 0.05, 0.06 nats): the contrast cannot be told
    row = B.cycle_claims(*_cycle_tables(weight_barriers=(0.01, 0.05), barrier_noise=0.01)).iloc[1]
    assert row["verdict"] == "cannot decide here" and "straddles" in row["measured"]
    # one seed gives no interval: cannot decide, whichever side the line is on
    one = B.cycle_claims(table[table.seed == 0], barriers[barriers.seed == 0])
    assert list(one["verdict"]) == ["cannot decide here"] * 4


def test_cycle_accuracy_claims_are_decided_on_seeds():
    """Hand-worked t interval: rewinding - fine-tuning = 0.10 in every seed but one at 0.12 -> mean 0.1067, sd 0.01155,
    95% interval 0.1067 +- 4.303 * 0.01155 / sqrt(3) = [0.078, 0.135]: it straddles the 10-point collapse gap."""
    table, barriers = _cycle_tables(accs={("weight", "finetune"): 0.86, ("weight", "lr_rewind"): 0.87,
                                          ("weight", "small"): 0.85, ("channel", "finetune"): 0.70,
                                          ("channel", "lr_rewind"): 0.80})
    table.loc[(table.unit == "channel") & (table.network == "lr_rewind") & (table.seed == 2), "test_accuracy"] += 0.02
    got = B.cycle_claims(table, barriers)
    assert got["verdict"].iloc[3] == "cannot decide here" and "+7.80 to +13.54 points" in got["interval"].iloc[3]
    small = {("weight", "finetune"): 0.84, ("weight", "lr_rewind"): 0.87, ("weight", "small"): 0.85,
             ("channel", "finetune"): 0.84, ("channel", "lr_rewind"): 0.86}
    got = B.cycle_claims(*_cycle_tables(accs=small))
    assert list(got["verdict"][2:]) == ["does not hold", "does not hold"]  # fine-tuning below small; 2 points
    collapse = {**small, ("weight", "finetune"): 0.86, ("channel", "finetune"): 0.40}
    assert B.cycle_claims(*_cycle_tables(accs=collapse))["verdict"].iloc[3] == "holds"


def test_networks_at_the_tasks_ceiling_cannot_decide():
    """MNIST at 14x14: every network within a point of the others and of the pretrained one cannot show a
    difference of several points."""
    near = {("weight", "finetune"): 0.9774, ("weight", "lr_rewind"): 0.9828, ("weight", "small"): 0.9812,
            ("channel", "finetune"): 0.9759, ("channel", "lr_rewind"): 0.9810}
    got = B.cycle_claims(*_cycle_tables(accs=near, pretrained=0.9836))
    assert list(got["verdict"][2:]) == ["cannot decide here"] * 2
    assert got["measured"].str.contains("at this scale").sum() == 2 and "pretrained 98.36%" in got["measured"].iloc[2]
    got = B.cycle_claims(*_cycle_tables(accs=near, pretrained=0.9950))  # a higher ceiling: not at it
    assert "at this scale" not in got["measured"].iloc[2]


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
    elif case == "duplicates":  # a second channel + lr_rewind barrier and a second weight + small row of one seed:
        # those two claims are not measured, the other two are
        extra = barriers[(barriers.unit == "channel") & (barriers.seed == 0)].assign(loss_barrier_linear=0.0)
        barriers = pd.concat([barriers, extra], ignore_index=True)
        table = pd.concat([table, table[(table.network == "small") & (table.unit == "weight")].iloc[[0]]],
                          ignore_index=True)
    elif case == "nan":  # a NaN weight barrier and a NaN channel accuracy in every seed: not measured, not "does not hold"
        barriers.loc[(barriers.unit == "weight") & (barriers.method == "finetune") & (barriers.split == "train"),
                     "loss_barrier_linear"] = float("nan")
        table.loc[(table.unit == "channel") & (table.network == "finetune"), "test_accuracy"] = float("nan")
    elif case == "extra_method":  # a barrier of a method the claim does not name is left out (it would fail it)
        barriers = pd.concat([barriers, barriers[barriers.method == "finetune"].assign(method="weight_rewind",
                                                                                      loss_barrier_linear=5.0)],
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


def test_every_cycle_retrains_the_whole_schedule(monkeypatch):
    """The source retrains each cycle for 200 of its 200 epochs, so learning-rate rewinding returns to lr 0.1: each
    profile's cycles are retrained for the pretraining's T epochs (the paper profile once replayed 3 of 8, the tail
    0.01, 0.001, 0.001, which never rewinds)."""
    from prunekit.pruning.retrain import retraining_lrs

    seen = []

    class _Run:
        def __init__(self, cfg):
            self.config, self.model = cfg, None

        def dataset(self):
            return None

    monkeypatch.setattr("prunekit.core.many.train_or_load_many", lambda cfgs, quiet=True: [_Run(c) for c in cfgs])
    monkeypatch.setattr(Cy, "iterative_pruning", lambda model, ds, cfg, **kw: seen.append((cfg, kw)) or None)
    class Planned(Exception):
        pass

    def stop(*args):
        raise Planned

    monkeypatch.setattr(Cy, "small_config", stop)
    for profile in ("quick", "paper", "full"):
        seen.clear()
        with pytest.raises(Planned):  # stopped after the cycles' plan, before any small network
            study = B.preset(profile).with_overrides(cycle_seeds=[0])
            B.cycles_experiment(study.cycle_configs(), study.n_cycles)
        assert len(seen) == 4 and {kw["cycles"] for _, kw in seen} == {B.PRESETS[profile].n_cycles}
        for cfg, kw in seen:
            assert kw["epochs"] == cfg.epochs
            lrs = retraining_lrs(cfg, "lr_rewind", kw["epochs"])
            assert lrs[0] == cfg.lr == 0.1 and lrs[-1] == pytest.approx(0.001)  # the whole schedule, from 0.1


def test_the_one_shot_planes_reproduce_their_networks_and_the_lines_are_the_measures(tmp_path):
    """oneshot_surface (notebook 04's one-shot sections): every plane's three points are checked against the networks'
    own metrics, each trajectory epoch is projected, and each line is ``linear_path`` from the pretrained to the
    retrained network (barriers: ``barrier_table`` of it), whatever the shared host's weights were before."""
    import torch

    from prunekit.core.config import DataConfig, ModelConfig, TrainConfig
    from prunekit.core.store import train_or_load
    from prunekit.measures import surface as S
    from prunekit.pruning import retrain as R

    cfg = TrainConfig(data=DataConfig("digits"), model=ModelConfig("mlp", hidden=(16,)), epochs=2, checkpoints=(0, 1, 2))
    run = train_or_load(cfg, quiet=True)
    ds = run.dataset()
    splits = {"train": ds.train, "test": ds.test}
    pruned, masks, retrained = R.prune_and_retrain(run.model, ds, cfg, 60, run.checkpoints,
                                                   methods=["finetune", "weight_rewind"], epochs=1)
    out = B.oneshot_surface(run.model, pruned, masks, retrained, splits, grid=3, path_points=3)
    assert out.checks > 0 and set(out.planes) == set(retrained) == set(out.surface["method"])
    assert len(out.surface) == 2 * 3 * 3 * 2 and set(out.anchors["point"]) == {"pretrained", "pruned", "retrained"}
    assert len(out.trajectory) == sum(len(r.trajectory) for r in retrained.values())
    for method, res in retrained.items():
        direct = S.linear_path(R.pruned_model(run.model, masks), S.flatten(run.model), S.flatten(res.model), splits,
                               n=3)
        mine = out.paths[out.paths.method == method].drop(columns="method").reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, direct)
        pd.testing.assert_frame_equal(out.barriers[out.barriers.method == method].drop(columns="method")
                                      .reset_index(drop=True), S.barrier_table(direct))
    with pytest.raises(ValueError, match="grid"):
        B.oneshot_surface(run.model, pruned, masks, retrained, splits, grid=1)
    assert all(torch.equal(a, b) for a, b in zip(run.model.state_dict().values(),
                                                 train_or_load(cfg, quiet=True).model.state_dict().values()))
