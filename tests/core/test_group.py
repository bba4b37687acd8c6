"""Networks trained together (prunekit.core.group, many.fit_many / train_or_load_many) against the same networks
trained one by one (store.fit / train_or_load): bitwise, on the CPU, for every family of the registry's models.

Torch's CPU kernels repeat bitwise for a fixed number of threads (prunekit.core.runtime), so the comparisons run on
one pinned thread; the equality does not depend on which count (the same kernels run on the same tensors either way).
"""

import pandas as pd
import pytest
import torch

from prunekit.core import group as G
from prunekit.core.config import DataConfig, ModelConfig, TrainConfig
from prunekit.core.runtime import thread_ceiling
from prunekit.core.many import fit_many, train_or_load_many
from prunekit.core.store import entry_path, fit, train_or_load

BASE = TrainConfig(data=DataConfig("digits"), model=ModelConfig("mlp", hidden=(32, 16)), epochs=2, batch_size=64)
TIMING = ["seconds", "threads"]


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv("PRUNEKIT_THREADS", "1")
    with thread_ceiling(1):
        yield


def assert_same_run(a, b):
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    pd.testing.assert_frame_equal(a.history.drop(columns=TIMING), b.history.drop(columns=TIMING), check_exact=True)
    assert sorted(a.checkpoints) == sorted(b.checkpoints)
    for epoch, sd in a.checkpoints.items():
        for k, v in sd.items():
            assert torch.equal(v, b.checkpoints[epoch][k]), (epoch, k)


MIXED = [BASE.replace(seed=0, init="glorot"), BASE.replace(seed=1, init="glorot"), BASE.replace(seed=0, init="he"),
         BASE.replace(model=ModelConfig("lenet300", width_mult=0.1), seed=2, checkpoints=(0, 1)),
         BASE.replace(model=ModelConfig("conv", width_mult=0.25), seed=3),
         BASE.replace(model=ModelConfig("resnet", width_mult=0.25), seed=4),
         BASE.replace(init_density=0.5, init="he", seed=5)]  # a mask held through training


@pytest.mark.parametrize("settings", [dict(optimizer="adam"),
                                      dict(optimizer="sgd", lr=0.05, momentum=0.9, schedule="cosine"),
                                      dict(optimizer="adagrad", lr=0.02, schedule="step", weight_decay=1e-4)],
                         ids=["adam", "sgd-cosine", "adagrad-step"])
def test_a_group_trains_every_network_bitwise_as_alone(settings):
    cfgs = [c.replace(**settings) for c in MIXED]
    together = fit_many(cfgs, quiet=True)
    for cfg, run in zip(cfgs, together):
        assert run.key == cfg.key()
        assert_same_run(run, fit(cfg, quiet=True))
    # each network its own init and order: the two seeds of one config differ, as their lone runs do
    assert not torch.equal(together[0].model.state_dict()["1.weight"], together[1].model.state_dict()["1.weight"])


def test_a_network_that_stops_early_leaves_the_group_and_the_others_go_on():
    cfgs = [BASE.replace(epochs=3, patience=1, min_improvement=0.9), BASE.replace(epochs=3, seed=1)]
    together = fit_many(cfgs, quiet=True)
    assert [len(r.history) for r in together] == [2, 3]  # no 90% gain in epoch 2: the first stops there
    for cfg, run in zip(cfgs, together):
        assert_same_run(run, fit(cfg, quiet=True))


def test_one_network_of_a_group_is_its_lone_run_whoever_its_companions_are():
    """Catches a group that draws one network's batches or init from another's seed or position: the same config
    trained first, last and beside other companions gives the same weights."""
    cfg = BASE.replace(seed=7)
    a = fit_many([cfg, BASE.replace(seed=8)], quiet=True)[0]
    b = fit_many([BASE.replace(seed=9, init="he"), BASE.replace(model=ModelConfig("lenet300", width_mult=0.1)), cfg], quiet=True)[-1]
    assert_same_run(a, b)


def test_group_indices_group_only_what_shares_a_step():
    shared = [BASE, BASE.replace(seed=1), BASE.replace(init="he"), BASE.replace(model=ModelConfig("conv")),
              BASE.replace(width_mult=2), BASE.replace(checkpoints=(1,)), BASE.replace(patience=2)]
    apart = [BASE.replace(lr=2e-3), BASE.replace(batch_size=32), BASE.replace(epochs=3), BASE.replace(optimizer="sgd"),
             BASE.replace(momentum=0.5), BASE.replace(weight_decay=1e-4), BASE.replace(schedule="cosine"),
             BASE.replace(data_seed=1), BASE.replace(subset=500), BASE.replace(dataset="cosine", loss="sse"),
             BASE.replace(loss="sse"), BASE.replace(device="cuda")]
    groups = G.group_indices(shared + apart)
    assert groups[0] == list(range(len(shared)))
    assert sorted(groups[1:]) == [[i] for i in range(len(shared), len(shared) + len(apart))]
    assert G.group_indices(shared, max_group=3) == [[0, 1, 2], [3, 4, 5], [6]]
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="max_group"):
            G.group_indices(shared, max_group=bad)


def test_train_group_refuses_what_it_cannot_train_exactly():
    from torch import nn

    from prunekit.core.data import load_dataset
    from prunekit.core.store import build

    ds = load_dataset(BASE.data)
    with pytest.raises(ValueError, match="cannot share a training step"):
        G.train_group([build(BASE, ds), build(BASE, ds)], ds, [BASE, BASE.replace(lr=0.1)])
    with pytest.raises(ValueError, match="one config per model"):
        G.train_group([build(BASE, ds)], ds, [BASE, BASE])
    dropout = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.Dropout(0.5), nn.Linear(8, 10))
    with pytest.raises(ValueError, match="random layers"):
        G.train_group([build(BASE, ds), dropout], ds, [BASE, BASE.replace(seed=1)])


def test_cache_entries_are_shared_with_train_or_load_both_ways(tmp_path, monkeypatch):
    from prunekit.core import many

    alone = train_or_load(BASE.replace(seed=3), root=tmp_path)  # trained one by one first
    cfgs = [BASE, BASE.replace(seed=1), BASE.replace(seed=3), BASE, BASE.replace(lr=3e-3)]
    calls = []
    real = many.fit_many
    monkeypatch.setattr(many, "fit_many", lambda cs, *a, **k: calls.append([c.seed for c in cs]) or real(cs, *a, **k))
    runs = train_or_load_many(cfgs, root=tmp_path)
    assert calls == [[0, 1]]  # seed 3 loaded, the lr=3e-3 config alone (train_or_load), the duplicate once
    assert runs[0] is runs[3] and runs[2].cached and not runs[0].cached
    assert_same_run(runs[2], alone)
    for cfg, run in zip(cfgs, runs):
        assert run.path == entry_path(cfg, tmp_path) and (run.path / "meta.json").exists()
        loaded = train_or_load(cfg, root=tmp_path)
        assert loaded.cached
        assert_same_run(loaded, run)
    assert_same_run(runs[1], fit(BASE.replace(seed=1), quiet=True))
    again = train_or_load_many(cfgs, root=tmp_path)
    assert all(r.cached for r in again) and calls == [[0, 1]]


def test_an_interrupted_group_resumes_one_by_one_bitwise(tmp_path, monkeypatch):
    cfgs = [BASE.replace(epochs=3, seed=s, optimizer="sgd", lr=0.05, momentum=0.9, schedule="cosine")
            for s in (0, 1)]
    real = G.save_progress
    saved = []

    def interrupt_after_first_epoch(path, *args):
        real(path, *args)
        saved.append(path)
        if len(saved) == len(cfgs):
            raise KeyboardInterrupt

    monkeypatch.setattr(G, "save_progress", interrupt_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_or_load_many(cfgs, root=tmp_path)
    monkeypatch.setattr(G, "save_progress", real)
    for cfg in cfgs:
        assert (entry_path(cfg, tmp_path) / "progress.pt").exists()
        resumed = train_or_load_many([cfg], root=tmp_path)[0]  # alone: train_or_load resumes the saved state
        assert not (entry_path(cfg, tmp_path) / "progress.pt").exists()
        assert_same_run(resumed, fit(cfg, quiet=True))


def test_a_diverging_network_leaves_its_group_and_is_reported(tmp_path):
    calm = BASE.replace(model=ModelConfig("mlp", hidden=(16,), activation="sigmoid"), optimizer="sgd", lr=3.0)
    wild = calm.replace(model=ModelConfig("mlp", hidden=(64, 64, 64), init="he"))
    with pytest.raises(FloatingPointError, match="diverged"):
        fit(wild, quiet=True)
    out = fit_many([wild, calm], quiet=True)
    assert isinstance(out[0], FloatingPointError) and "epoch 1" in str(out[0])
    assert_same_run(out[1], fit(calm, quiet=True))
    with pytest.raises(FloatingPointError, match="1 of 2 configs failed"):
        train_or_load_many([wild, calm], root=tmp_path)
    assert (entry_path(calm, tmp_path) / "meta.json").exists()  # the other one is stored
    assert not (entry_path(wild, tmp_path) / "meta.json").exists()
    runs = train_or_load_many([wild, calm], root=tmp_path, skip_failures=True)
    assert runs[0] is None and runs[1].cached


def test_split_optimizer_state_renumbers_each_networks_parameters():
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(2, 1, bias=False)
    joint = torch.optim.SGD([*a.parameters(), *b.parameters()], lr=0.1, momentum=0.9)
    (a.weight.sum() + b.weight.sum() + a.bias.sum()).backward()
    joint.step()
    alone = torch.optim.SGD(b.parameters(), lr=0.1, momentum=0.9)
    parts = G.split_optimizer_state(joint.state_dict(), [2, 1])
    assert list(parts[0]["state"]) == [0, 1] and list(parts[1]["state"]) == [0]
    assert torch.equal(parts[1]["state"][0]["momentum_buffer"], joint.state_dict()["state"][2]["momentum_buffer"])
    alone.load_state_dict(parts[1])  # the form an optimizer of its own takes
    assert parts[1]["param_groups"][0]["params"] == [0] and parts[0]["param_groups"][0]["params"] == [0, 1]


def test_the_cpu_groups_only_networks_whose_step_is_cheap(tmp_path, monkeypatch):
    from prunekit.core import many

    cheap = BASE  # digits, a 32-16 MLP, batch 64: about 0.6 MFLOP a step
    dear = BASE.replace(model=ModelConfig("mlp", hidden=(512, 512)), subset=128, batch_size=128)  # 0.23 GFLOP
    assert G.step_flops(cheap) == pytest.approx(3 * 2 * (64 * 32 + 32 * 16 + 16 * 10) * 64, rel=0.05)
    assert G.pays_to_group(cheap) and not G.pays_to_group(dear) and G.pays_to_group(dear.replace(device="cuda"))
    sizes = []
    real = many.fit_many
    monkeypatch.setattr(many, "fit_many", lambda cs, *a, **k: sizes.append(len(cs)) or real(cs, *a, **k))
    cfgs = [cheap, cheap.replace(seed=1), dear, dear.replace(seed=1)]
    runs = train_or_load_many(cfgs, root=tmp_path)
    assert sizes == [2] and all(r.path.exists() for r in runs)  # the dear pair trained one by one
    train_or_load_many([c.replace(epochs=3) for c in cfgs], root=tmp_path, only_where_faster=False)
    assert sizes == [2, 2, 2]
