"""Prune, then retrain with the mask held: three methods, masks exact through training, trajectory kept."""

from __future__ import annotations

import pytest
import torch

from prunekit import retrain as R
from prunekit import surface as S
from prunekit.cache import fit
from prunekit.config import TrainConfig
from prunekit.models import prunable_parameters


@pytest.fixture(scope="module")
def pretrained():
    cfg = TrainConfig(epochs=3, checkpoints=(0, 1), lr=3e-3).replace(hidden=(16,))
    run = fit(cfg, quiet=True)
    return run, run.dataset()


def test_magnitude_masks_and_pruned_copy(pretrained):
    run, _ = pretrained
    masks = R.magnitude_masks(run.model, 0.75)
    n = sum(m.numel() for m in masks)
    assert sum(int((~m).sum()) for m in masks) == round(0.75 * n)
    before = S.flatten(run.model)
    pruned = R.pruned_model(run.model, masks)
    assert torch.equal(S.flatten(run.model), before)
    for (mod, _), mk in zip(prunable_parameters(pruned), masks):
        assert (mod.weight[~mk] == 0).all()
    with pytest.raises(ValueError):
        R.magnitude_masks(run.model, 1.0)


@pytest.mark.parametrize("method", R.RETRAIN_METHODS)
def test_retrain_holds_mask_and_keeps_trajectory(pretrained, method):
    run, ds = pretrained
    masks = R.magnitude_masks(run.model, 0.8)
    before = S.flatten(run.model)
    rewind = run.checkpoints[1] if method == "weight_rewind" else None
    res = R.retrain(run.model, masks, ds, run.config, method, epochs=2, rewind_state=rewind)
    assert torch.equal(S.flatten(run.model), before)  # the pretrained model is untouched
    assert sorted(res.trajectory) == [0, 1, 2]
    # parameters in the original order, so flat vectors line up
    assert [n for n, _ in res.model.named_parameters()] == [n for n, _ in run.model.named_parameters()]
    for (mod, _), mk in zip(prunable_parameters(res.model), masks):
        assert (mod.weight[~mk] == 0).all()
        assert (mod.weight[mk] != 0).float().mean() > 0.9
    names = [n for n, _ in run.model.named_parameters()]
    for state in res.trajectory.values():
        assert set(state) >= set(names)
        assert state["1.weight"][~masks[0]].eq(0).all()
    assert torch.equal(S.state_vector(run.model, res.trajectory[2]), S.flatten(res.model))
    start = S.state_vector(run.model, res.trajectory[0])
    if method == "weight_rewind":
        want = run.checkpoints[1]["1.weight"] * masks[0]
    else:
        want = run.model[1].weight.detach() * masks[0]
    assert torch.equal(res.trajectory[0]["1.weight"], want)
    assert not torch.equal(start, S.flatten(res.model))  # it trained
    if method == "finetune":
        assert res.config.lr == pytest.approx(run.config.lr / 10) and res.config.schedule == "none"
    else:
        assert res.config.lr == run.config.lr
    assert 0 <= res.test_accuracy <= 1


def test_prune_and_retrain_all_methods(pretrained):
    run, ds = pretrained
    pruned, masks, results = R.prune_and_retrain(run.model, ds, run.config, 0.5, run.checkpoints, epochs=1)
    assert set(results) == set(R.RETRAIN_METHODS)
    table = R.retrain_table(run.model, pruned, results, ds)
    assert list(table["model"]) == ["pretrained", "pruned", *R.RETRAIN_METHODS]
    with pytest.raises(ValueError, match="checkpoints"):
        R.prune_and_retrain(run.model, ds, run.config, 0.5, None, methods=("weight_rewind",), epochs=1)
    with pytest.raises(ValueError, match="method"):
        R.retrain(run.model, masks, ds, run.config, "rewind")


def test_plain_state_dict_folds_prune_reparametrisation():
    state = {"a.weight_orig": torch.tensor([1.0, 2.0]), "a.weight_mask": torch.tensor([0.0, 1.0]),
             "a.bias": torch.tensor([3.0])}
    plain = R.plain_state_dict(state)
    assert set(plain) == {"a.weight", "a.bias"}
    assert torch.equal(plain["a.weight"], torch.tensor([0.0, 2.0]))
