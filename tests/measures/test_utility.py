"""Weight utility (source 002): KL from log-softmax, subset ablation (batched == loop), bands, imbalance measures."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from prunekit.measures import imbalance as IM
from prunekit.pruning import masks as M
from prunekit.studies import s002_utility as MX
from prunekit.measures import _ablation as SS
from prunekit.measures import utility as U
from prunekit.core.config import ModelConfig
from prunekit.core.models import MLP, build_model
from prunekit.core.prunable import prunable_parameters


def _tiny_mlp(seed=0, bias=True):
    torch.manual_seed(seed)
    return MLP(4, (5, 3), 3, "relu", bias=bias).eval()


def _np_forward(model, x, ablate_flat=None):
    """Independent numpy forward of an MLP with the flat subset (over prunable weights) zeroed."""
    lins = [m for m in model if isinstance(m, nn.Linear)]
    ws = [m.weight.detach().numpy().astype(np.float64).copy() for m in lins]
    bs = [m.bias.detach().numpy().astype(np.float64) if m.bias is not None else 0.0 for m in lins]
    if ablate_flat is not None:
        off = 0
        for w in ws[:-1]:  # the output layer is not prunable
            n = w.size
            w.reshape(-1)[ablate_flat[off:off + n]] = 0.0
            off += n
    h = x.reshape(len(x), -1).numpy().astype(np.float64)
    for i, (w, b) in enumerate(zip(ws, bs)):
        h = h @ w.T + b
        if i < len(ws) - 1:
            h = np.maximum(h, 0)
    return h


def _np_kl_mean(z_p, z_q):
    def logsoftmax(z):
        z = z - z.max(1, keepdims=True)
        return z - np.log(np.exp(z).sum(1, keepdims=True))
    lp, lq = logsoftmax(z_p), logsoftmax(z_q)
    return float((np.exp(lp) * (lp - lq)).sum(1).mean())


def test_kl_matches_hand_computation():
    p = torch.tensor([[0.7, 0.2, 0.1], [0.25, 0.25, 0.5]])
    q = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]])
    want = [sum(pi * math.log(pi / qi) for pi, qi in zip(pr, qr)) for pr, qr in zip(p.tolist(), q.tolist())]
    got = U.kl_divergence(p.log(), q.log())
    assert torch.allclose(got, torch.tensor(want), atol=1e-6)
    assert U.kl_divergence(p.log(), p.log()).eq(0).all()


def test_kl_finite_when_probabilities_underflow():
    # p's second class underflows to exactly 0 in float32 softmax; q assigns -inf log-prob there: term must be 0
    z_p = torch.tensor([[0.0, -200.0, 1.0]])
    log_p = torch.log_softmax(z_p, -1)
    assert log_p.exp()[0, 1] == 0
    log_q = torch.tensor([[math.log(0.5), -math.inf, math.log(0.5)]])
    kl = U.kl_divergence(log_p, log_q)
    assert torch.isfinite(kl).all() and kl.item() >= 0
    p = log_p.exp()[0]
    want = float(p[0] * (log_p[0, 0] - log_q[0, 0]) + p[2] * (log_p[0, 2] - log_q[0, 2]))
    assert kl.item() == pytest.approx(want, rel=1e-6)


def test_kl_clamps_negative_rounding():
    log_p = torch.log_softmax(torch.randn(50, 10), -1)
    log_q = log_p + 1e-7 * torch.randn(50, 10)  # not normalised: raw KL can be slightly negative
    raw = (log_p.exp() * (log_p - log_q)).sum(-1)
    assert (raw < 0).any()
    assert (U.kl_divergence(log_p, log_q) >= 0).all()


def test_utility_matches_hand_computation_on_tiny_net():
    model = _tiny_mlp()
    x = torch.randn(7, 4)
    params = prunable_parameters(model)
    n = sum(m.weight.numel() for m, _ in params)  # 4*5 + 5*3 = 35
    assert n == 35
    ablate = torch.zeros(n, dtype=torch.bool)
    ablate[[0, 3, 7, 21, 30, 34]] = True
    want = _np_kl_mean(_np_forward(model, x), _np_forward(model, x, ablate.numpy()))
    assert want > 0
    assert U.utility(model, x, subset=ablate) == pytest.approx(want, rel=1e-5)
    per_layer = list(torch.split(ablate, [20, 15]))
    per_layer = [per_layer[0].view(5, 4), per_layer[1].view(3, 5)]
    assert U.utility(model, x, subset=per_layer) == pytest.approx(want, rel=1e-5)
    for method in ("batched", "loop"):
        df = U.evaluate_subsets(model, x, None, subsets=ablate.unsqueeze(0), method=method)
        assert df["utility"].iloc[0] == pytest.approx(want, rel=1e-5)
    keep = U.ablation_masks(model, ablate)  # the same subset as name-keyed keep-masks
    assert list(keep) == [f"{name}.weight" for name, m in model.named_modules() if any(m is p for p, _ in params)]
    assert torch.equal(~torch.cat([keep[n].reshape(-1) for n in keep]), ablate)
    assert U.utility(model, x, subset=keep) == pytest.approx(want, rel=1e-5)
    with pytest.raises(ValueError, match="35 prunable weights"):
        U.ablation_masks(model, torch.zeros(34, dtype=torch.bool))
    units = M.Masks.from_units(model, params, [(0, 1)])  # a unit also loses its bias: not a weight ablation
    with pytest.raises(ValueError, match="unit masks"):
        U.utility(model, x, subset=units)


def test_empty_subset_is_exactly_zero_and_model_unchanged():
    model = _tiny_mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.randn(9, 4), torch.randint(0, 3, (9,))
    assert U.utility(model, x, subset=torch.zeros(35, dtype=torch.bool)) == 0.0
    df = U.random_ablation(model, x, y, ratios=(0.0, 0.3, 1.0), n_subsets=6)
    assert (df.loc[df.ratio == 0, "utility"] == 0.0).all()
    assert (df["utility"] >= 0).all()
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_random_subsets_exact_size_and_seeded():
    g = torch.Generator().manual_seed(3)
    s = U.random_subsets(100, 17, 5, g)
    assert s.shape == (5, 100) and (s.sum(1) == 17).all()
    assert not torch.equal(s[0], s[1])
    assert torch.equal(s, U.random_subsets(100, 17, 5, torch.Generator().manual_seed(3)))
    within = torch.arange(10, 30)
    s = U.random_subsets(100, 5, 3, g, within=within)
    assert (s.sum(1) == 5).all() and not s[:, :10].any() and not s[:, 30:].any()
    with pytest.raises(ValueError):
        U.random_subsets(10, 11, 1)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_batched_ablation_equals_per_subset_loop(arch):
    torch.manual_seed(1)
    shape = (1, 8, 8)
    model = build_model(ModelConfig(arch, hidden=(16, 8) if arch == "mlp" else None, width_mult=0.5
                                    if arch == "conv" else 1.0), shape, 10).eval()
    if arch == "conv":  # non-trivial running statistics (eval-mode BN inside vmap)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    x, y = torch.randn(40, *shape), torch.randint(0, 10, (40,))
    kw = dict(ratios=(0.1, 0.5), n_subsets=12, seed=5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    a = U.random_ablation(model, x, y, method="batched", chunk_size=5, **kw)
    b = U.random_ablation(model, x, y, method="loop", **kw)
    for k, v in model.state_dict().items():  # masked in place, restored bitwise
        assert torch.equal(v, before[k]), k
    assert len(a) == len(b) == 24
    assert np.allclose(a["utility"], b["utility"], rtol=1e-4, atol=1e-6)
    assert np.array_equal(a["accuracy"], b["accuracy"])
    assert a["utility"].std() > 0  # subsets differ
    # and each equals the straightforward per-subset computation
    subs = U.random_subsets(sum(m.weight.numel() for m, _ in prunable_parameters(model)), 20, 3,
                            torch.Generator().manual_seed(0))
    batched = U.evaluate_subsets(model, x, y, subsets=subs, method="batched")
    for i in range(3):
        assert batched["utility"].iloc[i] == pytest.approx(U.utility(model, x, subset=subs[i]), rel=1e-4, abs=1e-7)
    # the same subsets as name-keyed keep-masks (the mask model of the rest of prunekit) give the same table
    as_masks = U.evaluate_subsets(model, x, y, subsets=[U.ablation_masks(model, s) for s in subs], method="batched")
    pd.testing.assert_frame_equal(as_masks, batched)
    assert U.evaluate_subsets(model, x, y, subsets=[], method="loop").empty


def test_accuracy_ties_follow_argmax():
    # no biases: ablating every hidden weight makes all logits 0; argmax then says class 0 for every sample
    model = _tiny_mlp(bias=False)
    x = torch.randn(30, 4)
    y = torch.tensor([0, 1, 2] * 10)
    df = U.random_ablation(model, x, y, ratios=(1.0,), n_subsets=1)
    assert df["accuracy"].iloc[0] == pytest.approx(float((y == 0).float().mean()))
    with torch.no_grad():
        out = model(x)
    ref = U.random_ablation(model, x, y, ratios=(0.0,), n_subsets=1)["accuracy"].iloc[0]
    assert ref == pytest.approx(float((out.argmax(1) == y).float().mean()))


def test_magnitude_bands_and_ablation():
    model = _tiny_mlp()
    bands = U.magnitude_bands(model, 5)
    mags = U.flat_weights(model).abs()
    assert sorted(torch.cat(bands).tolist()) == list(range(35))
    assert [len(b) for b in bands] == [7] * 5
    for lo, hi in zip(bands[:-1], bands[1:]):
        assert mags[lo].max() <= mags[hi].min()
    x, y = torch.randn(20, 4), torch.randint(0, 3, (20,))
    df = U.magnitude_ablation(model, x, y, n_bands=5, ratios=(0.4, 1.0), n_subsets=3)
    assert set(df["band"]) == set(range(5))
    assert (df.loc[df.ratio == 1.0].groupby("band").size() == 1).all()
    assert (df.loc[df.ratio == 0.4, "n_ablated"] == 3).all()
    # the whole top band vs the whole bottom band, computed directly
    top = torch.zeros(35, dtype=torch.bool)
    top[bands[-1]] = True
    got = df[(df.band == 4) & (df.ratio == 1.0)]["utility"].iloc[0]
    assert got == pytest.approx(U.utility(model, x, subset=top), rel=1e-5)


def test_summarize():
    df = pd.DataFrame({"ratio": [0.1] * 4 + [0.2] * 2, "accuracy": [0.5, 0.7, 0.9, 0.1, 0.3, 0.3],
                       "utility": [1.0, 2.0, 3.0, 4.0, 0.0, 0.0]})
    s = U.summarize(df).set_index("ratio")
    assert s.loc[0.1, "accuracy_min"] == 0.1 and s.loc[0.1, "accuracy_max"] == 0.9
    assert s.loc[0.1, "utility_mean"] == 2.5 and s.loc[0.1, "utility_q50"] == 2.5
    assert s.loc[0.2, "n"] == 2


def test_gini_and_cv_against_definitions():
    rng = np.random.default_rng(0)
    u = rng.exponential(size=37)
    brute = np.abs(u[:, None] - u[None, :]).sum() / (2 * len(u) ** 2 * u.mean())
    assert IM.gini(u) == pytest.approx(brute, rel=1e-12)
    assert IM.gini(np.full(10, 3.0)) == pytest.approx(0.0, abs=1e-12)
    assert IM.gini([0, 0, 0, 5.0]) == pytest.approx(0.75)
    assert IM.gini(np.zeros(4)) == 0.0
    assert IM.coefficient_of_variation(u) == pytest.approx(u.std() / u.mean())
    assert IM.utility_imbalance(u, "cv") == pytest.approx(u.std() / u.mean())
    assert IM.utility_imbalance(u, "gini") == IM.gini(u)
    with pytest.raises(ValueError):
        IM.utility_imbalance(u, "spread")
    with pytest.raises(ValueError):
        IM.gini([-1.0, 2.0])
    t = IM.imbalance_table(pd.DataFrame({"g": [0, 0, 1, 1], "utility": [1.0, 1.0, 0.0, 2.0],
                                        "accuracy": [1, 1, 1, 1]}), "g")
    assert list(t["gini"]) == pytest.approx([0.0, 0.5])


def test_the_sources_imbalance_is_the_standard_deviation_of_the_sample_set():
    """Def. 3 of source 002: the std of the utilities of the sample set, by hand and by an own loop."""
    assert IM.utility_std([1.0, 3.0]) == pytest.approx(1.0)            # mean 2, deviations +-1
    assert IM.utility_std([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]) == pytest.approx(2.0)  # the textbook example
    assert IM.utility_std([0.25]) == 0.0 and IM.utility_std(np.full(5, 0.3)) == pytest.approx(0.0, abs=1e-15)
    u = np.random.default_rng(1).exponential(size=500)
    mean = sum(u) / len(u)
    assert IM.utility_imbalance(u) == pytest.approx((sum((v - mean) ** 2 for v in u) / len(u)) ** 0.5, rel=1e-12)
    with pytest.raises(ValueError, match="empty"):
        IM.utility_std([])
    t = IM.imbalance_table(pd.DataFrame({"g": [1, 1, 1, 0], "utility": [1.0, 3.0, 2.0, 0.5],
                                        "accuracy": [0.5, 1.0, 0.0, 1.0]}), "g")
    assert list(t["g"]) == [0, 1] and list(t["n"]) == [1, 3]
    assert list(t["std"]) == pytest.approx([0.0, (2 / 3) ** 0.5])
    assert list(t["utility_mean"]) == pytest.approx([0.5, 2.0]) and list(t["utility_min"]) == [0.5, 1.0]
    assert list(t["utility_max"]) == [0.5, 3.0] and list(t["accuracy_mean"]) == pytest.approx([1.0, 0.5])


def test_ablation_at_checkpoints_restores_model():
    model = _tiny_mlp()
    cps = {0: {k: torch.zeros_like(v) if k.endswith("weight") else v.clone() for k, v in model.state_dict().items()},
           3: {k: v.clone() for k, v in model.state_dict().items()}}
    w = model[1].weight.clone()
    x, y = torch.randn(10, 4), torch.randint(0, 3, (10,))
    df = MX.ablation_at_checkpoints(model, cps, x, y, ratios=(0.2,), n_subsets=4)
    assert torch.equal(model[1].weight, w)
    assert sorted(df["epoch"].unique()) == [0, 3]
    assert (df.loc[df.epoch == 0, "utility"] == 0).all()  # all-zero weights: ablation changes nothing
    assert (df.loc[df.epoch == 3, "utility"] > 0).any()
    with pytest.raises(ValueError):
        MX.ablation_at_checkpoints(model, {}, x, y)


def test_invalid_arguments():
    model = _tiny_mlp()
    x = torch.randn(5, 4)
    with pytest.raises(ValueError, match="method"):
        U.random_ablation(model, x, None, method="fast")
    with pytest.raises(ValueError, match="ratios"):
        U.random_ablation(model, x, None, ratios=(1.5,))
    with pytest.raises(ValueError, match="subsets"):
        U.evaluate_subsets(model, x, None, subsets=torch.zeros(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError):
        U.utility(model, x, subset=[torch.zeros(2, 2, dtype=torch.bool)])


@pytest.mark.parametrize("bias", [True, False])
def test_mlp_fast_path_equals_vmap(bias):
    torch.manual_seed(2)
    model = MLP(6, (5, 4), 3, "tanh", bias=bias).eval()
    params = prunable_parameters(model)
    keep = torch.rand(7, sum(m.weight.numel() for m, _ in params)) > 0.3
    x = torch.randn(11, 6)
    with torch.no_grad():
        fast, layout = SS._outputs_mlp(model, x, keep, params)
        ref = SS._outputs_batched(model, x, keep, params)  # [S, N, C]
    assert layout == "cns" and fast.shape == (3, 11, 7)
    assert torch.allclose(fast.permute(2, 1, 0), ref, atol=1e-6)
    # a prunable output layer (include_output=True) takes the other branch: [C, S, N]
    params = prunable_parameters(model, include_output=True)
    keep = torch.rand(7, sum(m.weight.numel() for m, _ in params)) > 0.3
    with torch.no_grad():
        fast, layout = SS._outputs_mlp(model, x, keep, params)
        ref = SS._outputs_batched(model, x, keep, params)
    assert layout == "csn" and torch.allclose(fast.permute(1, 2, 0), ref, atol=1e-6)
    y = torch.randint(0, 3, (11,))
    a = U.evaluate_subsets(model, x, y, subsets=~keep, params=params, method="batched")
    b = U.evaluate_subsets(model, x, y, subsets=~keep, params=params, method="loop")
    assert np.allclose(a["utility"], b["utility"], rtol=1e-4, atol=1e-7)
    assert np.array_equal(a["accuracy"], b["accuracy"])


def test_critical_ratio_interpolates():
    df = pd.DataFrame({"ratio": [0.1, 0.1, 0.3, 0.3, 0.5], "accuracy": [0.9, 0.8, 0.6, 0.6, 0.2], "w": 1})
    assert MX.critical_ratio(df, 0.7) == pytest.approx(0.1 + (0.85 - 0.7) / (0.85 - 0.6) * 0.2)
    assert math.isnan(MX.critical_ratio(df, 0.1))
    assert MX.critical_ratio(df, 0.95) == 0.1
    t = MX.critical_ratio(df, 0.4, by="w")
    assert t["critical_ratio"].iloc[0] == pytest.approx(0.4)


def test_width_comparison_against_direct_calls():
    torch.manual_seed(0)
    models = {1.0: MLP(4, (5, 3), 3, "relu").eval(), 2.0: MLP(4, (10, 6), 3, "relu").eval()}
    x, y = torch.randn(60, 4), torch.randint(0, 3, (60,))
    ratios = (0.1, 0.3, 0.5, 0.7, 0.9)
    ablations, summary = MX.width_comparison(models, x, y, ratios=ratios, n_subsets=6, imbalance_ratio=0.3,
                                            chance=1 / 3, seed=1)
    assert list(summary["width_mult"]) == [1.0, 2.0] and len(ablations) == 2 * len(ratios) * 6
    for w, model in models.items():
        own = U.random_ablation(model, x, y, ratios=ratios, n_subsets=6, seed=1)
        got = ablations[ablations.width_mult == w].reset_index(drop=True)
        assert np.allclose(got["utility"], own["utility"]) and np.allclose(got["accuracy"], own["accuracy"])
        row = summary.set_index("width_mult").loc[w]
        dense = float((model(x).argmax(1) == y).float().mean())
        assert row.dense_accuracy == pytest.approx(dense)
        assert row.prunable_weights == sum(m.weight.numel() for m, _ in prunable_parameters(model))
        nan_or_equal = MX.critical_ratio(own, 0.5 * (dense + 1 / 3))
        assert (math.isnan(row.critical_ratio) and math.isnan(nan_or_equal)) or row.critical_ratio == nan_or_equal
        assert row.gini == pytest.approx(IM.gini(own.loc[np.isclose(own.ratio, 0.3), "utility"]))
        assert row.critical_count == pytest.approx(row.critical_ratio * row.prunable_weights, nan_ok=True)


def test_random_ablation_within_a_pool_and_by_count():
    """within: subsets only among those weights (here the non-zero ones of a sparse net), ratios of the pool's size;
    counts: absolute numbers. Checked against evaluate_subsets on subsets drawn the same way, and by hand."""
    torch.manual_seed(3)
    model = MLP(4, (6, 5), 3, "relu").eval()
    with torch.no_grad():
        model[1].weight[:, :2] = 0                                  # 12 of 54 prunable weights are zero
    pool = torch.nonzero(U.flat_weights(model)).flatten()
    assert pool.numel() == 42
    x, y = torch.randn(50, 4), torch.randint(0, 3, (50,))
    df = U.random_ablation(model, x, y, ratios=(0.5,), n_subsets=7, seed=2, within=pool)
    assert set(df["n_ablated"]) == {21} and set(df["ratio"]) == {0.5}
    subs = U.random_subsets(54, 21, 7, torch.Generator().manual_seed(2), within=pool)
    assert not subs[:, ~torch.isin(torch.arange(54), pool)].any()   # never a weight outside the pool
    direct = U.evaluate_subsets(model, x, y, subsets=subs)
    assert np.allclose(df["utility"], direct["utility"]) and np.array_equal(df["accuracy"], direct["accuracy"])
    by_count = U.random_ablation(model, x, y, n_subsets=7, seed=2, within=pool, counts=[21, 42])
    assert list(by_count["n_ablated"].unique()) == [21, 42] and list(by_count["ratio"].unique()) == [0.5, 1.0]
    assert np.allclose(by_count["utility"][:7], df["utility"])   # same generator, same first draws
    for bad in ([43], [-1], [2.5], [True]):
        with pytest.raises(ValueError, match="counts"):
            U.random_ablation(model, x, y, n_subsets=2, within=pool, counts=bad)
    for bad in (U.flat_weights(model) != 0, torch.tensor([5, 5, 6]), torch.tensor([-1, 3]), torch.tensor([54])):
        with pytest.raises(ValueError, match="within"):
            U.random_ablation(model, x, y, n_subsets=2, within=bad, counts=[1])


def test_random_ablation_with_batch_norm_recalibrated_per_subset():
    """recalibrate=: after each ablation the BN statistics are those of the ablated net on the calibration inputs
    (own loop: a copy, the subset zeroed, one training-mode pass with momentum 1), and everything is restored."""
    import copy

    torch.manual_seed(0)
    model = build_model(ModelConfig("resnet20", width_mult=0.25), (1, 8, 8), 4).eval()
    x, y = torch.randn(30, 1, 8, 8), torch.randint(0, 4, (30,))
    calib = torch.randn(64, 1, 8, 8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    df = U.random_ablation(model, x, y, ratios=(0.2,), n_subsets=3, seed=4, recalibrate=calib)
    stored = U.random_ablation(model, x, y, ratios=(0.2,), n_subsets=3, seed=4)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not model.training
    params = prunable_parameters(model)
    subs = U.random_subsets(sum(m.weight.numel() for m, _ in params), df["n_ablated"].iloc[0], 3,
                            torch.Generator().manual_seed(4))
    with torch.no_grad():
        ref = torch.log_softmax(model(x), 1)
    for i, row in enumerate(subs):
        net = copy.deepcopy(model)
        flat = torch.cat([m.weight.detach().reshape(-1) for m, _ in prunable_parameters(net)])
        flat[row] = 0
        with torch.no_grad():
            sizes = [m.weight.numel() for m, _ in params]
            for (m, _), chunk in zip(prunable_parameters(net), torch.split(flat, sizes)):
                m.weight.copy_(chunk.view_as(m.weight))
            for bn in (m for m in net.modules() if isinstance(m, nn.BatchNorm2d)):
                bn.momentum = 1.0
            net.train()(calib)
            out = torch.log_softmax(net.eval()(x), 1)
        kl = (ref.exp() * (ref - out)).sum(1).clamp_min(0).mean()
        assert df["utility"].iloc[i] == pytest.approx(float(kl), rel=1e-4, abs=1e-6)
        assert df["accuracy"].iloc[i] == pytest.approx(float((out.argmax(1) == y).float().mean()))
    assert not np.allclose(df["utility"], stored["utility"])  # the statistics matter
