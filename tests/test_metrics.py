"""Tests of prunekit.metrics: Hoyer sparsity against hand-worked values, effective density against a linear scan."""

import math

import numpy as np
import pytest
import torch

from prunekit.config import TrainConfig
from prunekit.metrics import (
    EffectiveDensity,
    accuracy_threshold,
    effective_density,
    first_crossing,
    hoyer_by_layer,
    hoyer_sparsity,
    linear_scan_crossing,
    model_hoyer_sparsity,
    pruned_accuracy,
)


# ------------------------------------------------------------------------------------------------------ Hoyer
@pytest.mark.parametrize("x, expected", [
    ([1.0, 1.0, 1.0, 1.0], 0.0),                                      # equal magnitudes
    ([-2.0, 2.0, 2.0, -2.0], 0.0),                                    # signs do not matter
    ([0.0, 0.0, 3.0, 0.0], 1.0),                                      # one non-zero
    ([[0.0, -7.0], [0.0, 0.0]], 1.0),                                 # any shape, flattened
    ([3.0, 4.0], (math.sqrt(2) - 7 / 5) / (math.sqrt(2) - 1)),        # l1 = 7, l2 = 5 -> 0.0343146
    ([1.0, 2.0, 3.0, 4.0], 2 - 10 / math.sqrt(30)),                   # sqrt(n) = 2, l1 = 10, l2 = sqrt(30) -> 0.174258
    ([1.0, 1.0, 0.0, 0.0], (2 - math.sqrt(2)) / 1),                   # two equal non-zeros of four -> 0.585786
])
def test_hoyer_hand_worked(x, expected):
    assert hoyer_sparsity(torch.tensor(x)) == pytest.approx(expected, abs=1e-12)


def test_hoyer_hand_worked_numbers_written_out():
    # the same values written as decimals, in case the formula above and the code shared a mistake
    assert hoyer_sparsity(torch.tensor([3.0, 4.0])) == pytest.approx(0.0343146, abs=1e-7)
    assert hoyer_sparsity(torch.tensor([1.0, 2.0, 3.0, 4.0])) == pytest.approx(0.1742581, abs=1e-7)


def test_hoyer_degenerate_inputs():
    assert hoyer_sparsity(torch.tensor([5.0])) == 1.0       # n == 1: at most one non-zero
    assert hoyer_sparsity(torch.tensor([0.0])) == 1.0
    assert hoyer_sparsity(torch.zeros(3, 4)) == 1.0         # all zero: no non-zero at all
    with pytest.raises(ValueError, match="at least one element"):
        hoyer_sparsity(torch.tensor([]))
    with pytest.raises(ValueError, match="at least one element"):
        hoyer_sparsity([])
    assert math.isnan(hoyer_sparsity(torch.tensor([1.0, float("nan")])))


def test_hoyer_matches_numpy_and_is_scale_invariant():
    rng = np.random.default_rng(0)
    for n in (2, 10, 1000):
        x = rng.standard_normal(n) * rng.integers(0, 2, n)  # about half zeros
        x[0] = 1.0
        ref = (np.sqrt(n) - np.abs(x).sum() / np.sqrt((x ** 2).sum())) / (np.sqrt(n) - 1)
        t = torch.tensor(x, dtype=torch.float32)
        assert hoyer_sparsity(t) == pytest.approx(ref, rel=1e-6)
        assert hoyer_sparsity(-4.0 * t) == pytest.approx(hoyer_sparsity(t), rel=1e-12)  # exact in float32
    # sparser vectors score higher
    assert hoyer_sparsity(torch.tensor([1.0, 0.1, 0.1, 0.1])) > hoyer_sparsity(torch.tensor([1.0, 0.5, 0.5, 0.5]))


def test_hoyer_list_is_concatenation():
    a, b = torch.tensor([[1.0, 0.0], [0.0, 0.0]]), torch.tensor([2.0, 0.0, 0.0])
    assert hoyer_sparsity([a, b]) == pytest.approx(hoyer_sparsity(torch.tensor([1.0, 0, 0, 0, 2.0, 0, 0])))


def test_hoyer_by_layer_and_model():
    torch.manual_seed(0)
    from prunekit.models import build_model
    from prunekit.config import ModelConfig

    model = build_model(ModelConfig(arch="mlp", hidden=(6, 5)), (1, 2, 2), 3)
    with torch.no_grad():
        model[1].weight.fill_(0.5)          # 6x4, equal magnitudes
        model[3].weight.zero_()
        model[3].weight[2, 1] = -4.0        # 5x6, one non-zero
    layers = hoyer_by_layer(model)
    assert list(layers) == ["1.weight", "3.weight"]      # output layer excluded by default
    assert layers["1.weight"] == pytest.approx(0.0)
    assert layers["3.weight"] == pytest.approx(1.0)
    assert len(hoyer_by_layer(model, include_output=True)) == 3
    both = np.concatenate([np.full(24, 0.5), np.r_[-4.0, np.zeros(29)]])
    ref = (np.sqrt(54) - np.abs(both).sum() / np.linalg.norm(both)) / (np.sqrt(54) - 1)
    assert model_hoyer_sparsity(model) == pytest.approx(ref)


# ----------------------------------------------------------------------------------------------- first crossing
def test_first_crossing_monotone_exact():
    for n in (1, 7, 999, 1000, 1999, 2500):
        for true in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            k, evals = first_crossing(lambda k: k <= true, n)
            step = max(1, math.floor(1e-3 * n))
            assert true - step < k <= true, (n, true, k)
            assert evals <= 19


def test_first_crossing_budget_and_resolution_large_n():
    rng = np.random.default_rng(1)
    n = 1_234_567
    step = math.floor(1e-3 * n)
    for true in rng.integers(0, n, 30):
        k, evals = first_crossing(lambda k: k <= true, n)
        assert true - step < k <= true
        assert evals + 1 <= 20   # + the dense evaluation
        k_lin, evals_lin = linear_scan_crossing(lambda k: k <= true, n, step)
        assert abs(k - k_lin) <= step
    with pytest.raises(RuntimeError, match="max_evaluations"):
        first_crossing(lambda k: k <= 500_000, n, max_evaluations=10)


def test_first_crossing_returns_first_not_a_later_crossing():
    # accuracy dips below the threshold after 300 and recovers on [500, 800]: the first crossing is 300 (a plain
    # bisection on [0, n] would test 500, pass, and answer 800)
    passes = lambda k: k <= 300 or 500 <= k <= 800  # noqa: E731
    assert first_crossing(passes, 1000)[0] == 300
    assert linear_scan_crossing(passes, 1000, 1)[0] == 300
    # everything passes / nothing passes
    assert first_crossing(lambda k: True, 1000)[0] == 1000
    assert first_crossing(lambda k: k == 0, 1000)[0] == 0


def test_accuracy_threshold():
    assert accuracy_threshold(0.9) == pytest.approx(0.85)
    assert accuracy_threshold(0.9, 0.05, relative=True) == pytest.approx(0.855)
    with pytest.raises(ValueError, match="tolerance"):
        accuracy_threshold(0.9, 1.5)


# --------------------------------------------------------------------------------------------- effective density
@pytest.fixture(scope="module")
def trained():
    from prunekit.cache import fit
    from prunekit.data import load_dataset

    # accuracy vs pruned weights of this model crosses the threshold several times (sample noise: 450 test images),
    # at 5064 first, then recovers and crosses again at 5070 and 5148, so the test checks "first crossing" for real
    cfg = TrainConfig(epochs=5, lr=1e-2, batch_size=32, seed=0).replace(arch="mlp", hidden=(64, 32))
    run = fit(cfg, quiet=True)
    return run.model, load_dataset(cfg.data)


def _accuracy_with_smallest_zeroed(model, split, k, include_output=False):
    """Independent pruning: zero the k smallest |w| over all hidden weights (numpy argsort, stable), evaluate."""
    from prunekit.models import prunable_parameters

    params = prunable_parameters(model, include_output=include_output)
    saved = [m.weight.detach().clone() for m, _ in params]
    flat = np.concatenate([w.numpy().ravel() for w in saved])
    keep = np.ones(flat.size, bool)
    keep[np.argsort(np.abs(flat), kind="stable")[:k]] = False
    off = 0
    with torch.no_grad():
        for (m, _), w in zip(params, saved):
            m.weight.copy_(w * torch.from_numpy(keep[off:off + w.numel()].reshape(w.shape)))
            off += w.numel()
        model.eval()
        acc = (model(split.x).argmax(1) == split.y).double().mean().item()
        for (m, _), w in zip(params, saved):
            m.weight.copy_(w)
    return acc


def test_pruned_accuracy_matches_independent_pruning(trained):
    model, ds = trained
    n = sum(m.weight.numel() for m, _ in __import__("prunekit.models").models.prunable_parameters(model))
    fracs = [0.0, 0.3, 0.6, 0.9, 0.99]
    ours = pruned_accuracy(model, ds, fracs)
    ref = [_accuracy_with_smallest_zeroed(model, ds.test, round(f * n)) for f in fracs]
    assert ours == pytest.approx(ref, abs=1e-9)
    assert ours[0] > 0.8 and ours[-1] < ours[0] - 0.2  # the model learned something, and pruning 99% hurts


def test_effective_density_agrees_with_fine_linear_scan(trained):
    model, ds = trained
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ed = effective_density(model, ds, tolerance=0.05)
    assert isinstance(ed, EffectiveDensity)
    for k, v in model.state_dict().items():        # weights restored exactly
        assert torch.equal(v, before[k])
    n = ed.params
    assert n == 64 * 64 + 64 * 32                   # |θ| = prunable weights (hidden layers, no biases, no output)
    assert ed.core_params == n - ed.pruned and ed.density == pytest.approx(ed.core_params / n)
    assert ed.evaluations <= 20
    step = max(1, math.floor(1e-3 * n))
    dense = _accuracy_with_smallest_zeroed(model, ds.test, 0)
    assert ed.dense_accuracy == pytest.approx(dense)
    threshold = dense - 0.05
    k_lin, evals_lin = linear_scan_crossing(
        lambda k: _accuracy_with_smallest_zeroed(model, ds.test, k) >= threshold, n, step)
    assert abs(ed.pruned - k_lin) <= step
    assert evals_lin > ed.evaluations
    # a linear scan in 1% steps jumps over the narrow dip at 5064..5070 and stops later: the search is finer
    step1 = round(0.01 * n)
    k_1pct, _ = linear_scan_crossing(lambda k: _accuracy_with_smallest_zeroed(model, ds.test, k) >= threshold, n, step1)
    assert ed.pruned <= k_1pct + step1
    assert 0.0 < ed.density < 1.0
    assert ed.core_accuracy >= threshold
    assert ed.pruned < ed.failed_at <= ed.pruned + step
    assert _accuracy_with_smallest_zeroed(model, ds.test, ed.failed_at) < threshold


def test_effective_density_relative_and_scope(trained):
    model, ds = trained
    absolute = effective_density(model, ds, tolerance=0.05)
    rel = effective_density(model, ds, tolerance=0.05, relative=True)
    assert rel.threshold == pytest.approx(rel.dense_accuracy * 0.95)
    assert rel.threshold > absolute.threshold       # dense accuracy < 1: 5% relative is stricter than 5 points
    assert rel.pruned <= absolute.pruned + max(1, math.floor(1e-3 * absolute.params))
    loose = effective_density(model, ds, tolerance=0.3)
    assert loose.pruned > absolute.pruned
    layer = effective_density(model, ds, scope="layer")  # alias of "layerwise"
    assert layer.scope == "layerwise" and layer.core_params == layer.params - layer.pruned
    assert layer.core_accuracy >= layer.threshold
    with pytest.raises(ValueError, match="scope"):
        effective_density(model, ds, scope="neuron")
    with pytest.raises(ValueError, match="data"):
        effective_density(model, "not data")
