"""Prune, then retrain with the mask held: three methods, masks exact through training, trajectory kept."""

from __future__ import annotations

import pytest
import torch

from prunekit.pruning import retrain as R
from prunekit.measures import surface as S
from prunekit.core.store import fit
from prunekit.core.config import TrainConfig
from prunekit.core.prunable import prunable_parameters
from prunekit.core.initialisation import plain_state_dict


def magnitude_masks(model, fraction):
    """The held masks in ``prunable_parameters`` order (``R.magnitude_masks`` takes k% and keys them by name)."""
    return R.magnitude_masks(model, 100 * fraction).for_params(model, prunable_parameters(model))


@pytest.fixture(scope="module")
def pretrained():
    cfg = TrainConfig(epochs=3, checkpoints=(0, 1), lr=3e-3).replace(hidden=(16,))
    run = fit(cfg, quiet=True)
    return run, run.dataset()


def test_magnitude_masks_and_pruned_copy(pretrained):
    run, _ = pretrained
    masks = magnitude_masks(run.model, 0.75)
    n = sum(m.numel() for m in masks)
    assert sum(int((~m).sum()) for m in masks) == round(0.75 * n)
    before = S.flatten(run.model)
    pruned = R.pruned_model(run.model, masks)
    assert torch.equal(S.flatten(run.model), before)
    for (mod, _), mk in zip(prunable_parameters(pruned), masks):
        assert (mod.weight[~mk] == 0).all()
    with pytest.raises(ValueError):
        R.magnitude_masks(run.model, 100.0)


@pytest.mark.parametrize("method", R.RETRAIN_METHODS)
def test_retrain_holds_mask_and_keeps_trajectory(pretrained, method):
    run, ds = pretrained
    masks = magnitude_masks(run.model, 0.8)
    before = S.flatten(run.model)
    rewind = run.checkpoints[1] if method == "weight_rewind" else None
    res = R.retrain(run.model, masks, ds, run.config, method, epochs=2, rewind_state=rewind,
                    rewind_epoch=1 if method == "weight_rewind" else None)
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
    # schedule "none": every epoch of the original run, and so of every recipe, is at cfg.lr (Renda et al. 2020)
    assert res.lrs == [run.config.lr] * 2 and list(res.history["lr"]) == res.lrs
    assert 0 <= res.test_accuracy <= 1


def test_prune_and_retrain_all_methods(pretrained):
    run, ds = pretrained
    pruned, masks, results = R.prune_and_retrain(run.model, ds, run.config, 50, run.checkpoints, epochs=1)
    assert set(results) == set(R.RETRAIN_METHODS)
    table = R.retrain_table(run.model, pruned, results, ds)
    assert list(table["model"]) == ["pretrained", "pruned", *R.RETRAIN_METHODS]
    with pytest.raises(ValueError, match="checkpoints"):
        R.prune_and_retrain(run.model, ds, run.config, 50, None, methods=("weight_rewind",), epochs=1)
    with pytest.raises(ValueError, match="method"):
        R.retrain(run.model, masks, ds, run.config, "rewind")


def test_methods_that_are_one_run_are_trained_once_and_said_so(pretrained):
    """Constant-rate pretraining: fine-tuning (t epochs at lr(T)) and lr rewinding (the last t epochs of the schedule)
    get the same rates from the same pruned weights, so the same weights bitwise: one run, counted once."""
    run, ds = pretrained
    _, _, results = R.prune_and_retrain(run.model, ds, run.config, 50, run.checkpoints, epochs=1)
    assert results["finetune"].same_as is None and results["lr_rewind"].same_as == "finetune"
    assert results["weight_rewind"].same_as is None  # another starting point
    alone = R.retrain(run.model, results["finetune"].masks, ds, run.config, "lr_rewind", epochs=1)
    assert all(torch.equal(a, b) for a, b in zip(alone.model.state_dict().values(),
                                                 results["finetune"].model.state_dict().values()))
    distinct, same = R.distinct_methods(results)
    assert list(distinct) == ["finetune", "weight_rewind"] and same == {"lr_rewind": "finetune"}
    step = run.config.replace(schedule="step", epochs=4)  # a schedule that decays: the two differ
    _, _, results = R.prune_and_retrain(run.model, ds, step, 50, methods=("finetune", "lr_rewind"), epochs=2)
    assert R.distinct_methods(results)[1] == {}


def test_held_masks_are_keyed_by_name_and_equal_the_positional_ones(pretrained):
    run, ds = pretrained
    named = R.magnitude_masks(run.model, 70)
    assert set(named) == {"1.weight"} and not named.units
    params = prunable_parameters(run.model)
    weights = torch.cat([m.weight.detach().abs().reshape(-1) for m, _ in params])
    pruned = torch.argsort(weights, stable=True)[:round(0.7 * weights.numel())]  # my own global magnitude ranking
    want = torch.ones_like(weights, dtype=torch.bool)
    want[pruned] = False
    assert torch.equal(named["1.weight"].reshape(-1), want)
    by_name = R.retrain(run.model, named, ds, run.config, "finetune", epochs=1)
    assert isinstance(by_name.masks, type(named)) and torch.equal(by_name.masks["1.weight"], named["1.weight"])
    for state in by_name.trajectory.values():  # held by name: the pruned weights stay 0, the others train
        assert state["1.weight"][~named["1.weight"]].eq(0).all()
    assert (by_name.model[1].weight[named["1.weight"]] != run.model[1].weight[named["1.weight"]]).float().mean() > 0.9
    with pytest.raises(ValueError, match="k="):
        R.magnitude_masks(run.model, -1)


def test_plain_state_dict_folds_prune_reparametrisation():
    state = {"a.weight_orig": torch.tensor([1.0, 2.0]), "a.weight_mask": torch.tensor([0.0, 1.0]),
             "a.bias": torch.tensor([3.0])}
    plain = plain_state_dict(state)
    assert set(plain) == {"a.weight", "a.bias"}
    assert torch.equal(plain["a.weight"], torch.tensor([0.0, 2.0]))


@pytest.fixture(scope="module", params=["cosine", "step"])
def scheduled(request):
    """An 8-epoch run with a decaying schedule, its recorded per-epoch learning rates, and checkpoints to rewind to."""
    cfg = TrainConfig(epochs=8, lr=3e-3, schedule=request.param, checkpoints=(2,)).replace(hidden=(16,))
    run = fit(cfg, quiet=True)
    return run, run.dataset(), list(run.history["lr"])


def test_schedule_hand_worked():
    # cosine over 8 epochs from 0.003: lr(e) = 0.003 (1 + cos(pi (e - 1) / 8)) / 2, so the last three epochs run at
    # 0.000926, 0.000439, 0.000114; "step" divides by 10 after epochs 4 and 6 (50% and 75% of 8)
    from prunekit.core.train import schedule_lrs

    cos = schedule_lrs(TrainConfig(epochs=8, lr=3e-3, schedule="cosine"))
    assert cos[0] == pytest.approx(3e-3) and cos[-3:] == pytest.approx([0.000926, 0.000439, 0.000114], abs=1e-6)
    assert schedule_lrs(TrainConfig(epochs=8, lr=1.0, schedule="step")) == pytest.approx(
        [1, 1, 1, 1, 0.1, 0.1, 0.01, 0.01])


@pytest.mark.parametrize("method, epochs, original_epochs", [
    ("finetune", 3, [8, 8, 8]),            # t epochs at the original run's final rate
    ("lr_rewind", 3, [6, 7, 8]),           # the original schedule's last t epochs
    ("weight_rewind", None, [3, 4, 5, 6, 7, 8]),  # from epoch t_r = 2: epochs 3..8 (T - t_r by default)
    ("weight_rewind", 3, [3, 4, 5]),
])
def test_retraining_replays_the_original_schedule(scheduled, method, epochs, original_epochs):
    run, ds, original = scheduled  # original[e - 1]: the rate the trainer recorded for epoch e of the original run
    masks = magnitude_masks(run.model, 0.6)
    res = R.retrain(run.model, masks, ds, run.config, method, epochs=epochs,
                    rewind_state=run.checkpoints[2] if method == "weight_rewind" else None,
                    rewind_epoch=2 if method == "weight_rewind" else None)
    want = [original[e - 1] for e in original_epochs]
    assert list(res.history["lr"]) == pytest.approx(want, rel=1e-12)
    assert res.lrs == pytest.approx(want, rel=1e-12)
    # the mask is held after every epoch: pruned weights exactly 0 in every state of the trajectory
    names = [name for name, p in run.model.named_parameters() if p.dim() > 1][:len(masks)]
    for epoch, state in res.trajectory.items():
        for name, mask in zip(names, masks):
            assert state[name][~mask].eq(0).all(), (epoch, name)
    if method == "weight_rewind":  # starts from the rewound weights, masked
        assert torch.equal(res.trajectory[0][names[0]], run.checkpoints[2][names[0]] * masks[0])


def test_retraining_lengths_are_checked_before_training(scheduled):
    run, ds, _ = scheduled
    masks = magnitude_masks(run.model, 0.5)
    for kwargs, match in [(dict(method="lr_rewind", epochs=9), "lr_rewind"),
                          (dict(method="weight_rewind", epochs=7, rewind_epoch=2,
                                rewind_state=run.checkpoints[2]), "weight_rewind"),
                          (dict(method="weight_rewind", rewind_state=run.checkpoints[2]), "rewind_epoch"),
                          (dict(method="weight_rewind", rewind_epoch=2), "rewind_state"),
                          (dict(method="finetune", epochs=0), "epochs"),
                          (dict(method="finetune", finetune_lr=-1.0), "finetune_lr")]:
        with pytest.raises(ValueError, match=match):
            R.retrain(run.model, masks, ds, run.config, **kwargs)
