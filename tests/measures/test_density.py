"""Tests of prunekit.measures.density: Hoyer sparsity against hand-worked values, effective density against a linear scan."""

import math

import numpy as np
import pytest
import torch

from prunekit.core.config import TrainConfig
from prunekit.core.prunable import prunable_parameters
from prunekit.measures.density import (
    EffectiveDensity,
    accuracy_threshold,
    effective_density,
    first_crossing,
    hoyer_by_layer,
    hoyer_sparsity,
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
    from prunekit.core.models import build_model
    from prunekit.core.config import ModelConfig

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
def _reference_crossing(passes, n, step, resolution):
    """The definition, written out independently: every level k = s, 2s, ... up to the first failure f, then every
    single level of [f - s, f] (no bisection): returns (first failing level inside that step, f)."""
    s = max(1, round(step * n))
    levels = list(range(s, n, s)) + [n]
    f = next((k for k in levels if not passes(k)), None)
    if f is None:
        return None, None
    first_fail_inside = next(k for k in range(max(0, f - s) + 1, f + 1) if not passes(k))
    return first_fail_inside, f


def test_first_crossing_monotone_exact():
    for n in (1, 7, 999, 1000, 1999, 2500):
        for true in sorted({0, 1, n // 3, n // 2, n - 1, n}):
            c = first_crossing(lambda k: k <= true, n)
            r = max(1, math.floor(1e-3 * n))
            assert true - r < c.k <= true, (n, true, c)
            if true == n:
                assert c.failed_at is None
            else:
                assert c.k <= true < c.failed_at <= c.k + r
            s = max(1, round(0.01 * n))
            assert c.evaluations <= math.ceil(min(n, true + s) / s) + math.ceil(math.log2(s / r)) + 1


def test_first_crossing_catches_a_dip_narrower_than_the_old_coarse_step():
    # fails on [2345, 2600) only, passes again until 7000: a 10% coarse scan (1000, 2000, 3000, ...) never lands in
    # the dip and answered ~7000; the 1% scan lands at 2400 and the bisection finds the dip's first failing level
    n = 10_000
    passes = lambda k: k < 2345 or 2600 <= k < 7000  # noqa: E731
    c = first_crossing(passes, n)
    assert 2345 - 10 <= c.k < 2345 <= c.failed_at <= c.k + 10   # resolution: 0.1% of 10,000 = 10 weights
    assert (c.k, c.failed_at) == (2343, 2350)                   # bisection of [2300, 2400]: 2350 F, 2325 P, 2337 P, 2343 P
    first_fail, f = _reference_crossing(passes, n, 0.01, 1e-3)
    assert (first_fail, f) == (2345, 2400)
    assert c.evaluations == 24 + math.ceil(math.log2(100 / 10))  # 24 scan levels, then bisection of a 100-wide step


def test_first_crossing_dip_narrower_than_step_is_by_definition_not_seen():
    # a dip of 30 weights (< the 100-weight step) between two passing scan levels is not part of the definition
    passes = lambda k: not (2310 <= k < 2340) and k < 5000  # noqa: E731
    c = first_crossing(passes, 10_000)
    assert 4990 <= c.k < 5000 <= c.failed_at
    assert first_crossing(passes, 10_000, step=0.001, resolution=1e-4).k == 2309  # a finer step sees it


@pytest.mark.parametrize("n", [1, 2, 3, 17, 100, 1001])
def test_first_crossing_against_reference_on_random_curves(n):
    rng = np.random.default_rng(n)
    for trial in range(30):
        fails = set(rng.choice(np.arange(1, n + 1), size=rng.integers(0, n + 1), replace=False).tolist())
        passes = lambda k: k not in fails  # noqa: E731  a non-monotone pass/fail pattern
        step, resolution = [(0.1, 0.01), (0.01, 1e-3), (0.25, 0.25)][trial % 3]
        c = first_crossing(passes, n, step=step, resolution=resolution)
        s = max(1, round(step * n))
        r = min(s, max(1, math.floor(resolution * n)))
        first_fail, f = _reference_crossing(passes, n, step, resolution)
        if f is None:
            assert c == (n, None, math.ceil(n / s))
            continue
        # the answer lies inside the first failing step of the scan, passes, and is bracketed to the resolution
        assert max(0, f - s) <= c.k < c.failed_at <= f
        assert c.failed_at - c.k <= r
        assert c.k == 0 or passes(c.k)
        assert not passes(c.failed_at)
        assert c.evaluations <= math.ceil(f / s) + math.ceil(math.log2(s / r)) + (f == n and n % s != 0)


def test_first_crossing_edge_cases_and_bad_input():
    assert first_crossing(lambda k: True, 1000) == (1000, None, 100)      # everything passes: 100 scan levels
    c = first_crossing(lambda k: False, 1000)                            # the first 1% level fails already
    assert c.k == 0 and 0 < c.failed_at <= 1
    assert first_crossing(lambda k: pytest.fail("called"), 0) == (0, None, 0)  # nothing to prune
    assert first_crossing(lambda k: False, 1) == (0, 1, 1)
    for bad in (dict(step=0), dict(step=1.5), dict(resolution=0), dict(step=0.01, resolution=0.02),
                dict(step=True)):
        with pytest.raises(ValueError, match="step|resolution"):
            first_crossing(lambda k: True, 100, **bad)
    with pytest.raises(ValueError, match="n="):
        first_crossing(lambda k: True, -1)


def test_accuracy_threshold():
    assert accuracy_threshold(0.9) == pytest.approx(0.85)
    assert accuracy_threshold(0.9, 0.05, relative=True) == pytest.approx(0.855)
    with pytest.raises(ValueError, match="tolerance"):
        accuracy_threshold(0.9, 1.5)


# --------------------------------------------------------------------------------------------- effective density
@pytest.fixture(scope="module")
def trained():
    from prunekit.core.store import fit
    from prunekit.core.data import load_dataset

    # accuracy vs pruned weights of this model crosses the threshold several times (sample noise: 450 test images),
    # at 5064 first, then recovers and crosses again at 5070 and 5148, so the test checks "first crossing" for real
    cfg = TrainConfig(epochs=5, lr=1e-2, batch_size=32, seed=0).replace(arch="mlp", hidden=(64, 32))
    run = fit(cfg, quiet=True)
    return run.model, load_dataset(cfg.data)


def _accuracy_with_smallest_zeroed(model, split, k, include_output=False, scope="global"):
    """Independent pruning: zero the k smallest |w| over all hidden weights (numpy argsort, stable), or in each layer
    l its round(k * n_l / n) smallest ("layerwise"), evaluate with a plain forward pass, restore."""
    from prunekit.core.prunable import prunable_parameters

    params = prunable_parameters(model, include_output=include_output)
    saved = [m.weight.detach().clone() for m, _ in params]
    if scope == "global":
        flat = np.concatenate([w.numpy().ravel() for w in saved])
        keep = np.ones(flat.size, bool)
        keep[np.argsort(np.abs(flat), kind="stable")[:k]] = False
    else:
        n = sum(w.numel() for w in saved)
        keeps = []
        for w in saved:
            kl = np.ones(w.numel(), bool)
            kl[np.argsort(np.abs(w.numpy().ravel()), kind="stable")[:round(k * w.numel() / n)]] = False
            keeps.append(kl)
        keep = np.concatenate(keeps)
    off = 0
    with torch.no_grad():
        for (m, _), w in zip(params, saved):
            m.weight.copy_(w * torch.from_numpy(keep[off:off + w.numel()].reshape(w.shape)))
            off += w.numel()
        model.eval()
        acc = (model(split.x).argmax(1) == split.y).double().mean().item()
        for (m, _), w in zip(params, saved):
            m.weight.copy_(w)
    return acc, int((~keep).sum())


def test_pruned_accuracy_matches_independent_pruning(trained):
    model, ds = trained
    n = sum(m.weight.numel() for m, _ in prunable_parameters(model))
    fracs = [0.0, 0.3, 0.6, 0.9, 0.99]
    ours = pruned_accuracy(model, ds, fractions=fracs)
    ref = [_accuracy_with_smallest_zeroed(model, ds.test, round(f * n))[0] for f in fracs]
    assert ours == pytest.approx(ref, abs=1e-9)
    assert ours[0] > 0.8 and ours[-1] < ours[0] - 0.2  # the model learned something, and pruning 99% hurts


def test_pruned_accuracy_of_a_conv_net_in_the_searchs_batches_matches_independent_pruning():
    """A conv net with batch norm, evaluated by the search in its CPU batches (256 samples: on the 450 test images a
    full batch and a shorter one), against one forward pass over the whole split with the weights zeroed
    independently (numpy argsort); conv kernels are pruned in the same global ranking as the linear layers."""
    from prunekit.core.store import fit
    from prunekit.core.data import load_dataset
    from prunekit.measures._density_eval import Pruner, search_batch_size

    cfg = TrainConfig(epochs=2, lr=1e-2, batch_size=32, seed=0).replace(arch="conv", width_mult=0.5)
    model, ds = fit(cfg, quiet=True).model, load_dataset(cfg.data)
    assert search_batch_size(torch.device("cpu")) == 256 < len(ds.test) < 512
    assert search_batch_size(torch.device("cuda", 0)) == 4096
    calls = []  # the batch of every forward pass the evaluator runs
    hook = model.register_forward_pre_hook(lambda m, args: calls.append(args[0].shape[0]))
    fracs = [0.0, 0.2, 0.5, 0.8]
    try:
        ours = pruned_accuracy(model, ds, fractions=fracs)
    finally:
        hook.remove()
    assert calls == [2] + [256, len(ds.test) - 256] * len(fracs)  # 2: the labels checked against the logits first
    n = Pruner(model, ds.test).n
    ref = [_accuracy_with_smallest_zeroed(model, ds.test, round(f * n))[0] for f in fracs]
    assert ours == pytest.approx(ref, abs=1e-9)
    assert ours[0] > 0.5 and ours[-1] < ours[0]  # it learned something, and pruning most of it hurts
    for bad in (0, 2.5):
        with pytest.raises(ValueError, match="batch_size"):
            Pruner(model, ds.test, batch_size=bad)


def _reference_effective_density(model, split, tolerance, relative, scope, step=0.01):
    """The definition with independent pruning: plain evaluations at k = s, 2s, ... to the first failure f."""
    n = sum(m.weight.numel() for m, _ in prunable_parameters(model))
    dense = _accuracy_with_smallest_zeroed(model, split, 0)[0]
    threshold = dense * (1 - tolerance) if relative else dense - tolerance
    s = max(1, round(step * n))
    levels = list(range(s, n, s)) + [n]
    accs = {k: _accuracy_with_smallest_zeroed(model, split, k, scope=scope)[0] for k in levels}
    f = next((k for k in levels if accs[k] < threshold), None)
    return n, s, threshold, f, accs


@pytest.mark.parametrize("relative", [False, True])
@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_effective_density_equals_independent_scan_then_bracket(trained, relative, scope):
    model, ds = trained
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ed = effective_density(model, ds, tolerance=0.05, relative=relative, scope=scope)
    for k, v in model.state_dict().items():        # weights restored exactly
        assert torch.equal(v, before[k])
    n, s, threshold, f, accs = _reference_effective_density(model, ds.test, 0.05, relative, scope)
    assert isinstance(ed, EffectiveDensity) and ed.params == n == 64 * 64 + 64 * 32  # hidden layers, no output
    assert ed.threshold == pytest.approx(threshold)
    assert f is not None and f > s
    r = max(1, math.floor(1e-3 * n))
    sizes = [m.weight.numel() for m, _ in prunable_parameters(model)]
    count = (lambda k: k) if scope == "global" else (lambda k: sum(round(k * size / n) for size in sizes))
    # the answer lies in the first failing step of the independent scan, passes, and its bracket fails
    assert count(f - s) <= ed.pruned < ed.failed_at <= count(f)
    levels = {count(k): k for k in range(f, f - s - 1, -1)}   # search level behind each pruned count in that step
    acc_core, pruned_core = _accuracy_with_smallest_zeroed(model, ds.test, levels[ed.pruned], scope=scope)
    assert pruned_core == ed.pruned and ed.core_params == n - ed.pruned
    assert ed.core_accuracy == pytest.approx(acc_core, abs=1e-12) and acc_core >= threshold
    acc_fail, _ = _accuracy_with_smallest_zeroed(model, ds.test, levels[ed.failed_at], scope=scope)
    assert acc_fail < threshold
    if scope == "global":
        assert ed.failed_at - ed.pruned <= r
    assert ed.density == pytest.approx((n - ed.pruned) / n)
    assert ed.evaluations <= f // s + math.ceil(math.log2(s / r)) + 3   # scan + bisection + dense + 2 confirmations
    assert ed.step == 0.01 and ed.resolution == 1e-3


@pytest.fixture(scope="module")
def dipping():
    """A digits MLP 64-128-64-10 after 2 epochs (seed 0) whose accuracy curve fails at a 1% level and passes again at
    several higher ones; and the same net with seed 1, the case the old search got wrong by 78 weights."""
    from prunekit.core.store import fit
    from prunekit.core.data import load_dataset

    runs = {seed: fit(TrainConfig(epochs=2, seed=seed), quiet=True) for seed in (0, 1)}
    return {seed: run.model.eval() for seed, run in runs.items()}, load_dataset(TrainConfig().data)


def test_effective_density_first_crossing_on_a_dipping_curve(dipping):
    models, ds = dipping
    model = models[0]
    ed = effective_density(model, ds)
    n, s, threshold, f, accs = _reference_effective_density(model, ds.test, 0.05, False, "global")
    assert n == 16_384
    assert any(accs[k] >= threshold for k in accs if k > f), "the curve passes again above its first failing level"
    assert f - s <= ed.pruned < ed.failed_at <= f
    # the old search (10% coarse steps, then bisection inside the first failing coarse step) over-prunes here:
    # its coarse levels all pass up to the one it bisects, which lies beyond the first failure f
    coarse = [round(i * 0.1 * n) for i in range(1, 11)]
    first_coarse_fail = next(k for k in coarse if _accuracy_with_smallest_zeroed(model, ds.test, k)[0] < threshold)
    assert first_coarse_fail - round(0.1 * n) > f  # the old bisection started above the true first crossing


def test_effective_density_dip_narrower_than_step(dipping):
    """Seed 1: accuracy is below the threshold at 9,469 pruned weights, between two passing 1% scan levels (9,348
    and 9,512, 164 weights apart). By definition the 1% scan does not see it (nor, here, a 0.1% scan: the dip is
    narrower still); the answer is the first crossing at the scan's step, as documented."""
    models, ds = dipping
    model = models[1]
    dense = _accuracy_with_smallest_zeroed(model, ds.test, 0)[0]
    threshold = dense - 0.05
    assert _accuracy_with_smallest_zeroed(model, ds.test, 9469)[0] < threshold
    assert all(_accuracy_with_smallest_zeroed(model, ds.test, k)[0] >= threshold for k in (9348, 9512))
    ed = effective_density(model, ds)
    assert ed.pruned > 9512 and _accuracy_with_smallest_zeroed(model, ds.test, ed.failed_at)[0] < threshold


def test_effective_density_incremental_equals_plain(trained):
    from prunekit.measures._density_eval import IncrementalMLP, Pruner

    model, ds = trained
    for scope in ("global", "layerwise"):
        plain = Pruner(model, ds.test, scope=scope)
        s = round(0.01 * plain.n)
        levels = list(range(0, plain.n + 1, s))
        shuffled = [levels[i] for i in torch.randperm(len(levels), generator=torch.Generator().manual_seed(0))]
        for chunk in (2000, 97):  # one block of samples; blocks of 97 and a shorter last one
            with IncrementalMLP(model, ds.test, scope=scope, chunk=chunk) as fast:
                assert len(fast.blocks) == -(-len(ds.test) // chunk)
                assert fast.dense_accuracy == plain.accuracy(0)
                for k in levels + shuffled[:20]:  # up the scan, then down and up again as a bisection moves
                    assert fast.accuracy(k) == plain.accuracy(k), (scope, chunk, k)
                with pytest.raises(ValueError, match="k=-1"):
                    fast.accuracy(-1)
        a = effective_density(model, ds, scope=scope, incremental=True)
        b = effective_density(model, ds, scope=scope, incremental=False)
        assert (a.pruned, a.failed_at, a.core_accuracy) == (b.pruned, b.failed_at, b.core_accuracy)
        assert a.evaluations == b.evaluations + 2  # the two plain confirmations of the bracket


def test_effective_density_bad_input_before_compute(trained):
    model, ds = trained
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loose = effective_density(model, ds, tolerance=0.3)
    assert loose.pruned > effective_density(model, ds, tolerance=0.05).pruned
    for kwargs, match in [(dict(scope="neuron"), "scope"), (dict(step=0), "step"), (dict(resolution=0.5), "resolution"),
                          (dict(tolerance=1.5), "tolerance")]:
        with pytest.raises(ValueError, match=match):
            effective_density(model, ds, **kwargs)
    with pytest.raises(ValueError, match="data"):
        effective_density(model, "not data")
    from prunekit.core.config import ModelConfig
    from prunekit.core.models import build_model

    conv = build_model(ModelConfig("conv"), (1, 8, 8), 10)
    with pytest.raises(ValueError, match="incremental=True"):
        effective_density(conv, ds, incremental=True)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_incremental_evaluator_edge_cases_equal_the_plain_one():
    """Found in review: units whose weights are all pruned (no bias: logits tie at exactly 0), in-place activations,
    and torch.nn.utils.prune hooks (the incremental path is not used for a hooked model; the plain one is)."""
    from torch import nn

    from prunekit.core.data import Split
    from prunekit.pruning.masks import to_torch_prune
    from prunekit.core.models import MLP
    from prunekit.core.prunable import prunable_parameters
    from prunekit.measures._density_eval import IncrementalMLP, Pruner

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(300, 1, 4, 5, generator=g), torch.randint(0, 4, (300,), generator=g)
    torch.manual_seed(1)
    no_bias = MLP(20, (32,), 4, bias=False).eval()
    inplace = MLP(20, (16,), 4).eval()
    inplace[2] = nn.ReLU(inplace=True)
    for model in (no_bias, inplace):
        plain = Pruner(model, Split(x, y), include_output=True)
        for chunk in (2000, 64):
            with IncrementalMLP(model, Split(x, y), include_output=True, chunk=chunk) as fast:
                assert fast.dense_accuracy == plain.accuracy(0)
                for k in (plain.n, plain.n // 2, plain.n - 1, plain.n, 0, plain.n // 3):  # to the end, down, up again
                    assert fast.accuracy(k) == plain.accuracy(k), (model, chunk, k)
    with pytest.raises(ValueError, match="chunk"):
        IncrementalMLP(no_bias, Split(x, y), chunk=0)
    hooked = MLP(20, (16, 12), 4)
    to_torch_prune(prunable_parameters(hooked), [torch.ones_like(m.weight, dtype=torch.bool)
                                                 for m, _ in prunable_parameters(hooked)])
    assert not IncrementalMLP.applies(hooked, prunable_parameters(hooked))
    a = effective_density(hooked, (x, y), tolerance=0.02, include_output=True)
    b = effective_density(hooked, (x, y), tolerance=0.02, include_output=True, incremental=False)
    assert (a.pruned, a.failed_at, a.evaluations) == (b.pruned, b.failed_at, b.evaluations)
    with pytest.raises(ValueError, match="hooks"):
        effective_density(hooked, (x, y), incremental=True)


def test_entries_csr_holds_the_named_entries_on_the_weights_device():
    """On CUDA the incremental evaluator built its CSR delta from a ranking on the CPU and values on the GPU
    ("Values and crow_indices need to be on the same device"). The delta is now built on the weight's device; the
    ``meta`` device stands in for a second device here (a CPU index naming entries of a weight elsewhere)."""
    from prunekit.measures._density_eval import entries_csr

    w = torch.arange(1.0, 13.0).reshape(3, 4)
    idx = torch.tensor([9, 0, 3, 4])  # unsorted; rows 0, 0, 1, 2; none in a row of its own order
    d = entries_csr(w, idx)
    expected = torch.zeros(3, 4)
    expected.view(-1)[idx] = w.view(-1)[idx]
    assert torch.equal(d.to_dense(), expected)
    assert d.crow_indices().tolist() == [0, 2, 3, 4] and d.col_indices().tolist() == [0, 3, 0, 1]
    assert entries_csr(w, idx[:0]).to_dense().abs().sum() == 0  # no entry: an empty matrix of the weight's shape
    on_meta = entries_csr(torch.empty(3, 4, device="meta"), idx)  # the CPU ranking, a weight on another device
    assert on_meta.device.type == "meta" and on_meta.crow_indices().device.type == "meta"


def test_incremental_evaluator_keeps_its_indices_beside_the_weights(trained):
    from prunekit.measures._density_eval import IncrementalMLP

    model, ds = trained
    for scope in ("global", "layerwise"):
        with IncrementalMLP(model, ds.test, scope=scope) as fast:
            device = fast.w1.device
            assert fast.row_pruned.device == device
            assert all(t.device == device for t in fast.by_layer)
            assert scope == "layerwise" or all(t.device == device for t in fast.places)
