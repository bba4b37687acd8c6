"""Iterative pruning cycles (source 002, section 3): weight and channel masks against the test's own rankings, held
masks through retraining, the conv-weight count, the small network's config, and bad input before compute."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from prunekit.studies import s002_basins as B
from prunekit.pruning import cycles as Cy
from prunekit.core.store import fit
from prunekit.core.config import DataConfig, ModelConfig, TrainConfig
from prunekit.pruning.masks import Masks, UnitMasks
from prunekit.core.models import build_model
from prunekit.core.prunable import prunable_parameters


def _net(arch: str, seed: int = 0, batch_norm: bool = True) -> nn.Module:
    torch.manual_seed(seed)
    model = build_model(ModelConfig(arch=arch, width_mult=0.5, batch_norm=batch_norm), (1, 8, 8), 10)
    with torch.no_grad():  # distinct BatchNorm scales, some negative (ranked by |gamma|)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.randn(m.num_features))
    return model.eval()


def test_weight_cycles_prune_the_smallest_remaining_conv_weights():
    model = _net("conv")
    convs = [m.weight.detach() for m in model.modules() if isinstance(m, nn.Conv2d)]
    flat = torch.cat([w.reshape(-1) for w in convs])
    n = flat.numel()
    first = Cy.next_masks(model, None, "weight", 0.3)
    assert set(first) == {n for n, p in model.named_parameters() if p.dim() == 4}  # conv layers only
    keep1 = torch.cat([first[name].reshape(-1) for name in first])
    expected = torch.ones(n, dtype=torch.bool)
    expected[flat.abs().argsort(stable=True)[:round(0.3 * n)]] = False
    assert torch.equal(keep1, expected)
    # second cycle on the *unpruned* model: the held weights stay pruned although they are not 0 there
    second = Cy.next_masks(model, first, "weight", 0.3)
    keep2 = torch.cat([second[name].reshape(-1) for name in second])
    assert not (keep2 & ~keep1).any()
    remaining = int(keep1.sum())
    assert int((~keep2).sum()) == round(0.3 * n) + round(0.3 * remaining)
    survivors = flat.abs()[keep1]
    newly = flat.abs()[keep1 & ~keep2]
    assert newly.max() <= survivors[keep2[keep1]].min()  # the smallest of what remained


def test_channel_cycles_rank_batchnorm_scales_globally_and_remove_the_channel():
    model = _net("conv")
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    gammas = torch.cat([bn.weight.detach().abs() for bn in bns])
    masks = Cy.next_masks(model, None, "channel", 0.25)
    assert masks.units
    units = masks.for_params(model, Cy.slimmable_convs(model)).units
    got = torch.cat(units)
    expected = torch.ones_like(got)
    expected[gammas.argsort(stable=True)[:round(0.25 * gammas.numel())]] = False
    assert torch.equal(got, expected)
    # the pruned model: filter, BN scale and shift are 0, so the next layer's inputs from the channel see 0: zeroing
    # those inputs as well (what compaction would remove) changes no output
    from prunekit.pruning.retrain import pruned_model

    pruned = pruned_model(model, masks)
    x = torch.randn(16, 1, 8, 8)
    with torch.no_grad():
        out = pruned(x)
        cut = pruned_model(model, masks)
        convs = [m for m in cut.features if isinstance(m, nn.Conv2d)]
        cut.features[4].weight[:, ~units[0]] = 0  # the second conv's inputs from the first conv's pruned channels
        hw = cut.classifier[1].in_features // convs[-1].out_channels
        dead = (~units[1]).repeat_interleave(hw)  # the Linear's inputs from the last conv's pruned channels
        cut.classifier[1].weight[:, dead] = 0
        assert torch.allclose(cut(x), out, atol=1e-6)
    for bn, keep in zip([pruned.features[1], pruned.features[5]], units):
        assert (bn.weight[~keep] == 0).all() and (bn.bias[~keep] == 0).all()


def test_channel_cycles_keep_one_channel_per_layer():
    model = _net("conv")
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():  # the first layer's scales are all below the second's: a global threshold would empty it
        bns[0].weight.copy_(torch.linspace(0.01, 0.02, bns[0].num_features))
        bns[1].weight.copy_(torch.linspace(1.0, 2.0, bns[1].num_features))
    masks = None
    for _ in range(12):
        masks = Cy.next_masks(model, masks, "channel", 0.5)
        units = masks.for_params(model, Cy.slimmable_convs(model)).units
        assert all(int(u.sum()) >= 1 for u in units)
    first, second = units
    assert int(first.sum()) == 1 and bool(first[-1])  # the largest |gamma| of the first layer stays
    assert int(second.sum()) == 1 and bool(second[-1])
    # one cycle of 50% of 8 + 16 channels: the 12 smallest scales are the first layer's 8 and 4 of the second; the
    # floor keeps the first layer's largest and prunes one more of the second instead, still 12 in all
    once = Cy.next_masks(model, None, "channel", 0.5).for_params(model, Cy.slimmable_convs(model)).units
    n = sum(u.numel() for u in once)
    assert sum(int((~u).sum()) for u in once) == round(0.5 * n)
    assert int(once[0].sum()) == 1 and int(once[1].sum()) == 16 - 5


def test_next_masks_refuses_masks_of_the_other_unit():
    model = _net("conv")
    weight_masks = Cy.next_masks(model, None, "weight", 0.3)
    with pytest.raises(ValueError, match="unit='channel'"):
        Cy.next_masks(model, weight_masks, "channel", 0.2)
    channel_masks = Cy.next_masks(model, None, "channel", 0.2)
    with pytest.raises(ValueError, match="unit='weight'"):
        Cy.next_masks(model, channel_masks, "weight", 0.3)


def test_resnet_channel_cycles_touch_only_each_blocks_first_conv():
    model = _net("resnet20")
    slim = Cy.slimmable_convs(model)
    assert [m for m, _ in slim] == [b.conv1 for b in model.stages]
    masks = Cy.next_masks(model, None, "channel", 0.2)
    assert set(masks) == {f"stages.{i}.conv1.weight" for i in range(len(model.stages))}


def test_kept_conv_weights_against_a_hand_count():
    model = _net("conv")
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    c1, c2 = convs
    # prune channels 0 and 1 of the first conv and channel 0 of the second: the second conv loses its filter 0 and
    # its inputs 0 and 1; the overlap (filter 0's inputs 0 and 1) counts once
    masks = Masks.from_units(model, [(c1, "weight"), (c2, "weight")], [(0, 0), (0, 1), (1, 0)])
    used1 = torch.ones_like(c1.weight, dtype=torch.bool)
    used1[:2] = False
    used2 = torch.ones_like(c2.weight, dtype=torch.bool)
    used2[0] = False
    used2[:, :2] = False
    assert Cy.kept_conv_weights(model, masks) == int(used1.sum() + used2.sum())
    weights = Cy.next_masks(model, None, "weight", 0.5)
    total = c1.weight.numel() + c2.weight.numel()
    assert Cy.kept_conv_weights(model, weights) == total - round(0.5 * total)


def test_iterative_pruning_holds_masks_and_reports_each_cycle():
    cfg = TrainConfig(data=DataConfig(name="digits"), model=ModelConfig(arch="conv", width_mult=0.5), optimizer="sgd",
                      lr=0.05, momentum=0.9, epochs=2, schedule="step")
    run = fit(cfg, quiet=True)
    ds = run.dataset()
    before = {k: v.clone() for k, v in run.model.state_dict().items()}
    total = sum(m.weight.numel() for m in run.model.modules() if isinstance(m, nn.Conv2d))
    res = Cy.iterative_pruning(run.model, ds, cfg, unit="weight", method="lr_rewind", cycles=2, epochs=1)
    assert all(torch.equal(v, before[k]) for k, v in run.model.state_dict().items())  # the pretrained net untouched
    kept = total
    for cycle in (1, 2):
        kept -= round(0.3 * kept)
        row = res.table.iloc[cycle - 1]
        assert row["cycle"] == cycle and row["conv_weights"] == kept and row["conv_density"] == kept / total
    for name, keep in res.masks.items():
        w = dict(res.retrained.named_parameters())[name]
        assert (w[~keep] == 0).all() and (dict(res.pruned.named_parameters())[name][~keep] == 0).all()
    small = Cy.small_config(cfg, run.model, res)
    params = prunable_parameters(run.model)
    n_all = sum(m.weight.numel() for m, _ in params)
    assert small.model.init_density == pytest.approx((n_all - total + kept) / n_all)
    assert small.epochs == cfg.epochs + 2 * 1 and small.model.init == "he_normal"  # pretraining + 2 cycles of 1

    small_run = fit(small, quiet=True)
    table = B.cycles_table({("weight", "lr_rewind"): res}, {"weight": small_run.model}, ds)
    assert list(table["network"]) == ["lr_rewind", "small"]
    assert table["test_accuracy"].iloc[0] == res.table["retrained_test_accuracy"].iloc[-1]
    assert table["conv_density"].iloc[0] == kept / total
    assert abs(table["conv_density"].iloc[1] - small.model.init_density) < 0.01  # random layerwise, exact counts
    assert list(table["source_cifar10_accuracy"]) == [91.897, 89.290]

    chan = Cy.iterative_pruning(run.model, ds, cfg, unit="channel", method="finetune", cycles=1, epochs=1)
    units = chan.masks.for_params(chan.retrained, Cy.slimmable_convs(chan.retrained))
    assert isinstance(units, UnitMasks)
    for bn, keep in zip([chan.retrained.features[1], chan.retrained.features[5]], units.units):
        assert (bn.weight[~keep] == 0).all() and (bn.bias[~keep] == 0).all()  # held through retraining
    assert 0 < chan.table["channels_kept"].iloc[0] < 1


def test_bad_input_before_compute():
    cfg = TrainConfig(data=DataConfig(name="digits"), model=ModelConfig(arch="conv", width_mult=0.5), epochs=2)
    model = _net("conv")
    for kwargs, match in [(dict(unit="filter"), "unit"), (dict(method="weight_rewind"), "method"),
                          (dict(cycles=0), "cycles"), (dict(rate=1.0), "rate"), (dict(epochs=0), "epochs")]:
        with pytest.raises(ValueError, match=match):
            Cy.iterative_pruning(model, None, cfg, **kwargs)
    with pytest.raises(ValueError, match="batch_norm"):
        Cy.iterative_pruning(_net("conv", batch_norm=False), None, cfg, unit="channel")
    mlp = build_model(ModelConfig(arch="mlp"), (1, 8, 8), 10)
    with pytest.raises(ValueError, match="conv nets"):
        Cy.slimmable_convs(mlp)


def test_check_plan():
    Cy.check_plan(["weight", "channel"], ["finetune", "lr_rewind"], 5)
    Cy.check_plan(["channel"], ["lr_rewind"], None)
    for args, match in [((["weights"], ["finetune"]), "cycle_units"), (([], ["finetune"]), "cycle_units"),
                        (("weight", ["finetune"]), "cycle_units"), ((["weight"], ["weight_rewind"]), "cycle_methods"),
                        ((["weight"], ["finetune"], 0), "cycles")]:
        with pytest.raises(ValueError, match=match):
            Cy.check_plan(*args)


def test_cached_cycles_reload_and_resume_at_the_first_missing_cycle(monkeypatch, tmp_path):
    """cache=True stores each cycle (masks, retrained weights, row) under the pretrained config's key and the plan: a
    rerun retrains nothing and gives the same networks; with cycle 2's entry gone (an interrupted run) only cycle 2
    is retrained; a corrupt entry is retrained with a warning."""
    import json

    cfg = TrainConfig(data=DataConfig(name="digits"), model=ModelConfig(arch="conv", width_mult=0.5), optimizer="sgd",
                      lr=0.05, momentum=0.9, epochs=2, schedule="step")
    run = fit(cfg, quiet=True)
    ds = run.dataset()
    first = Cy.iterative_pruning(run.model, ds, cfg, unit="weight", method="lr_rewind", cycles=2, epochs=1, cache=True)
    calls = []
    real = Cy.retrain
    monkeypatch.setattr(Cy, "retrain", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = Cy.iterative_pruning(run.model, ds, cfg, unit="weight", method="lr_rewind", cycles=2, epochs=1, cache=True)
    assert calls == []
    assert all(torch.equal(a, b) for a, b in zip(first.retrained.state_dict().values(),
                                                 again.retrained.state_dict().values()))
    assert all(torch.equal(first.pruned.state_dict()[k], v) for k, v in again.pruned.state_dict().items())
    assert first.table.equals(again.table) and dict(first.masks).keys() == dict(again.masks).keys()
    entries = sorted((tmp_path / "models" / "cycles").glob("[0-9a-f]*"), key=lambda p: json.loads(
        (p / "meta.json").read_text())["spec"]["cycle"])
    assert len(entries) == 2
    (entries[1] / "meta.json").unlink()                                 # cycle 2 never finished
    resumed = Cy.iterative_pruning(run.model, ds, cfg, unit="weight", method="lr_rewind", cycles=2, epochs=1,
                                   cache=True)
    assert len(calls) == 1 and resumed.table.equals(first.table)       # CPU training is deterministic
    (entries[0] / "tensors.pt").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="corrupt"):
        Cy.iterative_pruning(run.model, ds, cfg, unit="weight", method="lr_rewind", cycles=1, epochs=1, cache=True)
    assert len(calls) == 2
    # another plan (rate) is another entry, not a reuse
    Cy.iterative_pruning(run.model, ds, cfg, unit="weight", method="lr_rewind", cycles=1, rate=0.5, epochs=1,
                         cache=True)
    assert len(calls) == 3
    # another model under the same (config) name is another entry: it never gets the first model's weights
    other = copy.deepcopy(run.model)
    with torch.no_grad():
        for p in other.parameters():
            p.mul_(-1.0)
    theirs = Cy.iterative_pruning(other, ds, cfg, unit="weight", method="lr_rewind", cycles=1, epochs=1, cache=True)
    assert len(calls) == 4
    mine, yours = first.retrained.state_dict(), theirs.retrained.state_dict()
    assert any(not torch.equal(mine[k], yours[k]) for k in mine)
