"""Tests for prunekit.pruning.select: exact counts, ties, equality with torch.nn.utils.prune, unit zeroing, compaction, CSR."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn
from torch.nn.utils import prune as tprune

from prunekit.pruning import compaction as CP
from prunekit.measures import curves as CV
from prunekit.pruning import masks as M
from prunekit.pruning import select as P
from prunekit.core.config import ModelConfig
from prunekit.core.data import Split
from prunekit.core.models import build_model
from prunekit.core.prunable import prunable_parameters
from prunekit.core.train import evaluate


def forai(width_mult=0.05, seed=0):
    torch.manual_seed(seed)
    model = build_model(ModelConfig(arch="forai", width_mult=width_mult), (1, 8, 8), 10)
    return model.eval(), prunable_parameters(model)


def mlp(activation="relu", bias=True, hidden=(12, 9, 7), seed=0):
    torch.manual_seed(seed)
    model = build_model(ModelConfig(arch="mlp", hidden=hidden, activation=activation, bias=bias), (1, 4, 4), 5)
    with torch.no_grad():  # biases well away from 0 so a forgotten bias shows
        for m in model.modules():
            if isinstance(m, nn.Linear) and m.bias is not None:
                m.bias.uniform_(0.5, 1.0)
    return model.eval(), prunable_parameters(model)


def convnet(seed=0):
    torch.manual_seed(seed)
    model = build_model(ModelConfig(arch="conv", width_mult=0.25), (1, 8, 8), 3)
    with torch.no_grad():  # non-trivial BN statistics and affine parameters
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(0.5, 1.0)
    return model.eval(), prunable_parameters(model)


def n_pruned(masks):
    return [int((~m).sum()) for m in masks]


# ------------------------------------------------------------------------------------------------ exact counts


@pytest.mark.parametrize("k", [0, 12.5, 25, 33.3, 50, 77, 99, 100])
def test_weight_masks_prune_exactly_round_k_n(k):
    _, params = forai()
    sizes = [m.weight.numel() for m, _ in params]
    masks = P.weight_masks(params, k, "layerwise")
    assert n_pruned(masks) == [round(k * n / 100) for n in sizes]
    gmasks = P.weight_masks(params, k, "global")
    assert sum(n_pruned(gmasks)) == round(k * sum(sizes) / 100)
    for mk, (m, _) in zip(masks + gmasks, params + params):
        assert mk.dtype == torch.bool and mk.shape == m.weight.shape


@pytest.mark.parametrize("k", [0, 25, 50, 60, 97, 100])
def test_unit_masks_prune_exactly_round_k_units_whole_rows(k):
    _, params = forai()
    units = [m.weight.shape[0] for m, _ in params]
    for scope in P.SCOPES:
        masks = P.unit_masks(params, k, scope)
        rows = [int((~mk.all(dim=1)).sum()) for mk in masks]
        assert all(bool((mk.all(dim=1) | (~mk).all(dim=1)).all()) for mk in masks)  # whole rows only
        assert [int((~u).sum()) for u in masks.units] == rows
        if scope == "layerwise":
            assert rows == [round(k * u / 100) for u in units]
        else:
            assert sum(rows) == round(k * sum(units) / 100)


def test_k_zero_prunes_nothing_and_leaves_weights_alone():
    model, params = forai()
    before = [m.weight.detach().clone() for m, _ in params]
    for masks in (P.weight_masks(params, 0, "global"), P.unit_masks(params, 0, "layerwise"),
                  P.weight_masks(params, 0, "layerwise", "random")):
        assert all(bool(mk.all()) for mk in masks)
        with M.masks_applied(params, masks):
            assert all(torch.equal(m.weight, b) for (m, _), b in zip(params, before))


def test_round_half_to_even_like_torch():
    lin = nn.Linear(10, 1, bias=False)  # 10 weights, k=25 -> 2.5 -> 2 ; k=35 -> 3.5 -> 4
    assert n_pruned(P.weight_masks([(lin, "weight")], 25)) == [2]
    assert n_pruned(P.weight_masks([(lin, "weight")], 35)) == [4]


def test_float_amount_in_torch_differs_at_half_way_cases():
    # 35% of 90 weights: exactly 31.5 -> 32 here; torch's float amount 0.35 * 90 = 31.499999999999996 -> 31. This is
    # why the equality tests with torch below pass it the integer count, not the float fraction.
    lin = nn.Linear(9, 10)
    assert n_pruned(P.weight_masks([(lin, "weight")], 35)) == [32]
    tprune.l1_unstructured(lin, "weight", amount=0.35)
    assert int((lin.weight_mask == 0).sum()) == 31


# ------------------------------------------------------------------------------------------------ determinism, ties


def test_ties_broken_by_flat_index_then_layer_order():
    a, b = nn.Linear(3, 2, bias=False), nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        a.weight.fill_(1.0)
        b.weight.fill_(-1.0)  # same |w| everywhere
    params = [(a, "weight"), (b, "weight")]
    m = P.weight_masks(params, 50, "layerwise")
    assert m[0].flatten().tolist() == [False, False, False, True, True, True]
    assert m[1].flatten().tolist() == [False, False, True, True]
    g = P.weight_masks(params, 50, "global")  # 5 of 10: all of a's 6 come first
    assert g[0].flatten().tolist() == [False] * 5 + [True]
    assert bool(g[1].all())
    u = P.unit_masks(params, 50, "global")  # 4 units; a's rows have norm sqrt(3) > b's sqrt(2)
    assert u.units[0].tolist() == [True, True] and u.units[1].tolist() == [False, False]
    order = P.global_magnitude_order(params)
    assert order.tolist() == list(range(10))


def test_magnitude_masks_prune_the_smallest_and_are_deterministic():
    _, params = forai()
    m1 = P.weight_masks(params, 70, "global")
    m2 = P.weight_masks(params, 70, "global")
    assert all(torch.equal(a, b) for a, b in zip(m1, m2))
    w = torch.cat([m.weight.detach().abs().flatten() for m, _ in params])
    keep = torch.cat([mk.flatten() for mk in m1])
    assert w[~keep].max() <= w[keep].min()


def test_masks_from_order_matches_global_masks():
    _, params = forai()
    order = P.global_magnitude_order(params)
    n = sum(m.weight.numel() for m, _ in params)
    for k in (10, 90):
        a = P.masks_from_order(params, order, round(k * n / 100))
        b = P.weight_masks(params, k, "global")
        assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_random_masks_seeded_nested_and_exact():
    _, params = forai()
    g = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    a = P.weight_masks(params, 50, "global", "random", g(1))
    b = P.weight_masks(params, 50, "global", "random", g(1))
    c = P.weight_masks(params, 50, "global", "random", g(2))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))
    n = sum(m.weight.numel() for m, _ in params)
    assert sum(n_pruned(a)) == round(50 * n / 100)
    r = P.unit_masks(params, 30, "layerwise", "random", g(3))
    assert n_pruned([u for u in r.units]) == [round(30 * m.weight.shape[0] / 100) for m, _ in params]
    # a random mask is not the magnitude mask
    assert not all(torch.equal(x, y) for x, y in zip(a, P.weight_masks(params, 50, "global")))


# ------------------------------------------------------------------------------------------------ equality with torch


@pytest.mark.parametrize("k", [10, 50, 90])
def test_equal_to_torch_l1_unstructured_and_ln_structured(k):
    # torch gets the integer count round(k * n / 100): its float amount k / 100 rounds differently at some half-way
    # cases (test_float_amount_in_torch_differs_at_half_way_cases), which these tests keep away from on purpose
    model, params = forai(seed=k)
    ours_w = P.weight_masks(params, k, "layerwise")
    ours_u = P.unit_masks(params, k, "layerwise")
    for (m, _), mw, mu in zip(params, ours_w, ours_u):
        n, rows = m.weight.numel(), m.weight.shape[0]
        ref = nn.Linear(m.in_features, m.out_features, bias=False)
        with torch.no_grad():
            ref.weight.copy_(m.weight)
        tprune.l1_unstructured(ref, "weight", amount=round(k * n / 100))
        assert torch.equal(ref.weight_mask.bool(), mw)
        tprune.remove(ref, "weight")
        with torch.no_grad():
            ref.weight.copy_(m.weight)
        tprune.ln_structured(ref, "weight", amount=round(k * rows / 100), n=2, dim=0)
        assert torch.equal(ref.weight_mask.bool(), mu)


@pytest.mark.parametrize("k", [20, 75])
def test_equal_to_torch_global_unstructured(k):
    model, params = forai(seed=k)
    ours = P.weight_masks(params, k, "global")
    n = sum(m.weight.numel() for m, _ in params)
    tprune.global_unstructured(params, pruning_method=tprune.L1Unstructured, amount=round(k * n / 100))
    theirs = M.masks_from_torch_prune(params)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))


# ------------------------------------------------------------------------------------------------ unit outputs


def _hidden_outputs(model, x):
    outs = []
    hooks = [m.register_forward_hook(lambda mod, i, o: outs.append(o.detach().clone()))
             for m in model if isinstance(m, (nn.ReLU, nn.Tanh))]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return outs


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_unit_pruning_zeroes_unit_output_including_bias(activation):
    model, params = mlp(activation)
    x = torch.randn(32, 1, 4, 4)
    masks = P.unit_masks(params, 50, "layerwise")
    with M.masks_applied(params, masks):
        outs = _hidden_outputs(model, x)
    for out, keep in zip(outs, masks.units):
        assert bool((out[:, ~keep] == 0).all())
        assert bool((out[:, keep] != 0).any())
    # zeroing the rows alone would not do: the bias keeps the unit alive
    with M.masks_applied(params, list(masks)):
        outs = _hidden_outputs(model, x)
    assert not bool((outs[0][:, ~masks.units[0]] == 0).all())


def test_unit_pruning_conv_zeroes_batchnorm_channel():
    model, params = convnet()
    x = torch.randn(4, 1, 8, 8)
    masks = P.unit_masks(params, 50, "layerwise")
    with pytest.raises(ValueError, match="model="):
        with M.masks_applied(params, masks):
            pass
    convs = [m for m, _ in params if isinstance(m, nn.Conv2d)]
    bns = M.following_batchnorms(model, params)
    assert [bn is not None for bn in bns] == [isinstance(m, nn.Conv2d) for m, _ in params]
    seen = []
    hooks = [bn.register_forward_hook(lambda mod, i, o: seen.append(o.detach().clone())) for bn in bns if bn]
    with M.masks_applied(params, masks, model=model):
        with torch.no_grad():
            model(x)
    for h in hooks:
        h.remove()
    assert len(seen) == len(convs) == 2
    for out, keep in zip(seen, masks.units):
        assert bool((out[:, ~keep] == 0).all()) and bool((out[:, keep] != 0).any())


def test_masks_applied_restores_bitwise_even_on_error():
    model, params = convnet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    masks = P.unit_masks(params, 60, "global")
    with pytest.raises(RuntimeError):
        with M.masks_applied(params, masks, model=model):
            assert M.sparsity(params) > 0.3
            raise RuntimeError("boom")
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    with M.masks_applied(params, P.weight_masks(params, 90, "global"), model=model):
        assert M.sparsity(params) == pytest.approx(0.9, abs=1e-3)
    assert all(torch.equal(before[k], model.state_dict()[k]) for k in before)


def test_apply_masks_permanent_and_sparsity_measures_zeros():
    model, params = forai()
    masks = P.weight_masks(params, 40, "layerwise")
    M.apply_masks_(params, masks)
    per_layer = M.layer_sparsity(params)
    expect = [round(40 * m.weight.numel() / 100) / m.weight.numel() for m, _ in params]
    assert per_layer == pytest.approx(expect)
    assert M.mask_sparsity(params, masks)[1] == pytest.approx(expect)


# ------------------------------------------------------------------------------------------------ torch.nn.utils.prune


def test_torch_prune_round_trip_and_retraining_keeps_zeros():
    model, params = mlp()
    masks = P.unit_masks(params, 50, "layerwise")
    M.to_torch_prune(params, masks, model=model)
    back = M.masks_from_torch_prune(params)
    assert all(torch.equal(a, b) for a, b in zip(masks, back))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    model.train()
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(torch.randn(16, 1, 4, 4)), torch.randint(0, 5, (16,))).backward()
        opt.step()
    for (m, _), mk, keep in zip(params, masks, masks.units):
        assert bool((m.weight[~mk] == 0).all()) and bool((m.weight[mk] != 0).all())
        assert bool((m.bias[~keep] == 0).all())
        assert bool((m.weight_orig[~mk] != 0).any())  # the optimizer did move the hidden originals
    for m, _ in params:
        tprune.remove(m, "weight")
    assert M.sparsity(params) == pytest.approx(sum(int((~mk).sum()) for mk in masks)
                                               / sum(mk.numel() for mk in masks))


def test_masks_from_torch_prune_requires_pruned_modules():
    _, params = forai()
    with pytest.raises(ValueError, match="weight_mask"):
        M.masks_from_torch_prune(params)


# ------------------------------------------------------------------------------------------------ compaction, CSR


@pytest.mark.parametrize("scope", P.SCOPES)
@pytest.mark.parametrize("k", [0, 30, 90, 100])
def test_compact_mlp_equals_masked_net(scope, k):
    model, params = forai(width_mult=0.1)
    x = torch.randn(64, 1, 8, 8)
    masks = P.unit_masks(params, k, scope)
    with M.masks_applied(params, masks), torch.no_grad():
        ref = model(x)
    small = CP.compact_mlp(model, masks)
    assert [l.out_features for l in small.hidden_layers] == [int(u.sum()) for u in masks.units]
    with torch.no_grad():
        assert torch.allclose(small(x), ref, atol=1e-5, rtol=0)
    assert small.hidden_sizes == tuple(int(u.sum()) for u in masks.units)
    assert model.hidden_layers[0].out_features == 100  # the original is untouched


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_compact_mlp_with_bias_and_any_activation(activation):
    model, params = mlp(activation)
    x = torch.randn(16, 1, 4, 4)
    for masks in (P.unit_masks(params, 50, "global"), P.weight_masks(params, 80, "layerwise")):
        with M.masks_applied(params, masks), torch.no_grad():
            ref = model(x)
        with torch.no_grad():
            assert torch.allclose(CP.compact_mlp(model, masks)(x), ref, atol=1e-5, rtol=0)
    # a weight mask with a whole dead row: the row goes, its constant output is folded into the next bias
    masks = [torch.ones_like(m.weight, dtype=torch.bool) for m, _ in params]
    masks[0][3] = False
    with M.masks_applied(params, masks), torch.no_grad():
        ref = model(x)
    small = CP.compact_mlp(model, masks)
    with torch.no_grad():
        assert torch.allclose(small(x), ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("k", [0, 90, 99])
def test_csr_module_equals_masked_dense(k):
    for model, params in (forai(width_mult=0.1), mlp()):
        masks = P.weight_masks(params, k, "global")
        x = torch.randn(8, *((1, 8, 8) if model.hidden_layers[0].in_features == 64 else (1, 4, 4)))
        with M.masks_applied(params, masks), torch.no_grad():
            ref = model(x)
            ref1 = model(x[:1])
        sparse = CP.to_sparse_csr(model, masks, params)
        assert sum(isinstance(m, CP.CSRLinear) for m in sparse.modules()) == len(params)
        nnz = sum(m.nnz for m in sparse.modules() if isinstance(m, CP.CSRLinear))
        assert nnz == sum(int((mk & (m.weight != 0)).sum()) for (m, _), mk in zip(params, masks))
        with torch.no_grad():
            assert torch.allclose(sparse(x), ref, atol=1e-5, rtol=1e-5)
            assert torch.allclose(sparse(x[:1]), ref1, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------------ curves


def test_pruning_curve_forms_agree_and_restore_weights():
    model, params = forai(width_mult=0.1)
    g = torch.Generator().manual_seed(0)
    split = Split(torch.randn(200, 1, 8, 8, generator=g), torch.randint(0, 10, (200,), generator=g))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ks = [0, 50, 90]
    cheap = CV.pruning_curve(model, split, params=params, ks=ks, labels={"dataset": "toy", "arch": "forai", "seed": 0})
    dense = CV.pruning_curve(model, split, params=params, ks=ks, form="dense")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert len(cheap) == 4 * 2 * 3
    assert {"dataset", "arch", "seed", "method", "scope", "k", "sparsity", "accuracy", "loss"} <= set(cheap.columns)
    assert set(cheap.loc[cheap.method == "unit", "form"]) >= {"compacted"}
    assert set(dense["form"]) == {"masked_dense"}
    assert cheap["accuracy"].tolist() == pytest.approx(dense["accuracy"].tolist(), abs=1e-12)
    assert cheap["loss"].tolist() == pytest.approx(dense["loss"].tolist(), abs=1e-5)
    loss0, acc0 = evaluate(model, split)
    assert (cheap.loc[cheap.k == 0, "accuracy"] == acc0).all()
    w = cheap[(cheap.method == "weight") & (cheap.scope == "layerwise")].set_index("k")["sparsity"]
    assert w[50] == pytest.approx(0.5, abs=1e-3) and w[90] == pytest.approx(0.9, abs=1e-3)
    u = cheap[(cheap.method == "unit") & (cheap.scope == "layerwise") & (cheap.k == 50)].iloc[0]
    assert u["unit_sparsity"] == pytest.approx(0.5, abs=0.01)
    assert u["effective_sparsity"] > u["sparsity"]  # pruned units also kill the next layer's columns


def test_layer_sparsity_table_reports_per_layer():
    _, params = forai()
    t = CV.layer_sparsity_table(params, [0, 50], methods=["weight"], scopes=["layerwise", "global"])
    lw = t[(t.scope == "layerwise") & (t.k == 50)]
    assert lw["sparsity"].tolist() == pytest.approx(
        [round(50 * m.weight.numel() / 100) / m.weight.numel() for m, _ in params])
    gl = t[(t.scope == "global") & (t.k == 50)]
    assert (gl["sparsity"] * gl["size"]).sum() == pytest.approx(0.5 * gl["size"].sum(), abs=1)


# ------------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("k", [-1, 100.5, math.nan, "50", None, True, 0.8])
def test_bad_k_raises(k):
    _, params = forai()
    with pytest.raises(ValueError, match=r"k=.*(must|is out of range|did you mean k=80)"):
        P.weight_masks(params, k)
    with pytest.raises(ValueError, match=r"k=.*(must|is out of range|did you mean k=80)"):
        P.unit_masks(params, k)


def test_bad_params_and_masks_raise():
    model, params = mlp()
    with pytest.raises(ValueError, match="empty"):
        P.weight_masks([], 50)
    with pytest.raises(ValueError, match="only weight"):
        P.weight_masks([(model.hidden_layers[0], "bias")], 50)
    with pytest.raises(ValueError, match="no tensor attribute"):
        P.unit_masks([(model.hidden_layers[0], "nope")], 50)
    with pytest.raises(ValueError, match="not a module"):
        P.weight_masks(model, 50)
    with pytest.raises(ValueError, match="twice"):
        P.weight_masks(params + params[:1], 50)
    with pytest.raises(ValueError, match="scope"):
        P.weight_masks(params, 50, scope="local")
    with pytest.raises(ValueError, match="criterion"):
        P.unit_masks(params, 50, criterion="l1")
    masks = P.weight_masks(params, 50)
    bad_shape = [m.t() for m in masks]
    with pytest.raises(ValueError, match="shape"):
        with M.masks_applied(params, bad_shape):
            pass
    with pytest.raises(ValueError, match="dtype"):
        M.apply_masks_(params, [m.float() for m in masks])
    with pytest.raises(ValueError, match="one mask per"):
        M.apply_masks_(params, masks[:-1])
    with pytest.raises(ValueError, match="count"):
        P.masks_from_order(params, P.global_magnitude_order(params), -1)
    with pytest.raises(ValueError, match="MLP"):
        CP.compact_mlp(convnet()[0], masks)


# ------------------------------------------------------------------------------- scorers apart, masks keyed by name
def test_masks_from_scores_equals_the_built_in_pruners_and_torch():
    model, params = forai(seed=3)
    for scope in P.SCOPES:
        for k in (0, 35, 90):
            ours = P.masks_from_scores(params, P.magnitude_scores(params), k, scope)
            assert all(torch.equal(a, b) for a, b in zip(ours, P.weight_masks(params, k, scope)))
            units = P.masks_from_scores(params, P.l2_scores(params), k, scope)
            assert isinstance(units, M.UnitMasks)
            assert all(torch.equal(a, b) for a, b in zip(units, P.unit_masks(params, k, scope)))
    # against torch.nn.utils.prune with the integer count, layer by layer
    for (m, _), mk in zip(params, P.masks_from_scores(params, P.magnitude_scores(params), 50, "layerwise")):
        ref = nn.Linear(m.in_features, m.out_features, bias=False)
        with torch.no_grad():
            ref.weight.copy_(m.weight)
        tprune.l1_unstructured(ref, "weight", amount=round(0.5 * m.weight.numel()))
        assert torch.equal(ref.weight_mask.bool(), mk)


def test_a_custom_scorer_plugs_in_with_exact_counts_and_ties():
    lin = nn.Linear(4, 3, bias=False)
    params = [(lin, "weight")]
    scores = [torch.tensor([[5.0, 1.0, 1.0, 0.0], [1.0, 7.0, 2.0, 1.0], [3.0, 3.0, 3.0, 3.0]])]  # ties everywhere
    masks = P.masks_from_scores(params, scores, 50)            # 6 of 12 pruned: 0.0, then the five 1.0 ... by index
    assert n_pruned(masks) == [6]
    want = torch.ones(12, dtype=torch.bool)
    want[[3, 1, 2, 4, 7, 6]] = False                          # 0.0; 1.0 at flat 1, 2, 4, 7; then 2.0 at 6
    assert torch.equal(masks[0].reshape(-1), want)
    unit = P.masks_from_scores(params, [torch.tensor([2.0, 1.0, 1.0])], 34)  # round(1.02) = 1 unit: the first 1.0
    assert torch.equal(unit.units[0], torch.tensor([True, False, True]))
    for bad, match in [([torch.zeros(5)], "scores\\[0\\]"), ([], "one per parameter"),
                       ([torch.tensor([[float("nan")] * 4] * 3)], "NaN")]:
        with pytest.raises(ValueError, match=match):
            P.masks_from_scores(params, bad, 50)


def test_named_masks_round_trip_and_report(tmp_path):
    model, params = forai(seed=4)
    masks = P.weight_masks(params, 60, "global")
    named = M.Masks.from_params(model, params, masks)
    assert list(named) == [f"{i}.weight" for i, mod in enumerate(model) if any(mod is m for m, _ in params)]
    named.save(tmp_path / "masks.pt")
    back = M.Masks.load(tmp_path / "masks.pt")
    assert all(torch.equal(a, b) for a, b in zip(back.for_params(model, params), masks))
    report = back.report()
    assert list(report.columns) == ["parameter", "weights", "kept", "pruned", "sparsity"]
    assert report["pruned"].sum() == round(0.6 * sum(m.numel() for m in masks))
    assert report["sparsity"].to_list() == pytest.approx([float((~m).float().mean()) for m in masks])
    with pytest.raises(ValueError, match="no mask for"):
        M.Masks({}).for_params(model, params)
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    with pytest.raises(Exception):
        M.Masks.load(tmp_path / "bad.pt")


def test_named_unit_masks_keep_their_meaning(tmp_path):
    model, params = mlp(seed=5)
    x = torch.randn(20, 1, 4, 4)
    removed = [(0, 3), (1, 0), (1, 8), (2, 6)]
    named = M.Masks.from_units(model, params, removed)
    assert named.units and list(named) == M.Masks.names(model, params)
    named.save(tmp_path / "units.pt")
    back = M.Masks.load(tmp_path / "units.pt")
    assert back.units and all(torch.equal(back[n], named[n]) for n in named)
    with M.masks_applied(params, back, model=model):  # by name: rows, and the biases of the removed units
        got = model(x)
        hidden = [mod for mod, _ in params]
        for i, j in removed:
            assert hidden[i].weight[j].eq(0).all() and hidden[i].bias[j] == 0
    by_hand = copy.deepcopy(model)  # my own removal: zero each removed unit's row and bias
    with torch.no_grad():
        for i, j in removed:
            layer = [mod for mod, _ in prunable_parameters(by_hand)][i]
            layer.weight[j] = 0
            layer.bias[j] = 0
    torch.testing.assert_close(got, by_hand(x), rtol=0, atol=0)
    overall, per_layer = M.mask_sparsity(params, named, model=model)  # my own count: removed rows / rows
    widths = [mod.weight.shape[0] for mod, _ in params]
    gone = [sum(1 for i, _ in removed if i == layer) for layer in range(len(params))]
    assert per_layer == pytest.approx([g / w for g, w in zip(gone, widths)])
    assert overall == pytest.approx(sum(g * mod.weight.shape[1] for g, (mod, _) in zip(gone, params))
                                    / sum(mod.weight.numel() for mod, _ in params))
    with pytest.raises(ValueError, match="need model="):
        M.apply_masks_(params, named)
    with pytest.raises(ValueError, match="not a \\(layer, unit\\)"):
        M.Masks.from_units(model, params, [(3, 0)])
    rows = M.Masks({n: m.clone() for n, m in named.items()}, units=True)
    rows[next(iter(rows))][0, 0] = False  # a single weight: not a whole row
    rows[next(iter(rows))][0, 1:] = True
    with pytest.raises(ValueError, match="whole rows"):
        rows.for_params(model, params)


def test_sparse_at_init_prunes_each_layer_at_random_and_rescales_to_he():
    import math

    import torch
    from torch import nn

    from prunekit.core.config import ModelConfig
    from prunekit.core.models import build_model
    from prunekit.core.prunable import prunable_parameters
    from prunekit.core.initialisation import sparse_at_init

    torch.manual_seed(0)
    model = build_model(ModelConfig("resnet20", init="he"), (1, 28, 28), 10)
    before = [m.weight.detach().clone() for m, _ in prunable_parameters(model)]
    masks = sparse_at_init(model, 0.25, torch.Generator().manual_seed(1))
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
    same = sparse_at_init(again, 0.25, torch.Generator().manual_seed(1))
    other = sparse_at_init(build_model(ModelConfig("resnet20"), (1, 28, 28), 10), 0.25,
                             torch.Generator().manual_seed(2))
    assert all(torch.equal(masks[k], same[k]) for k in masks)
    assert not all(torch.equal(masks[k], other[k]) for k in masks)
    full = build_model(ModelConfig("mlp"), (1, 8, 8), 10)
    w = full[1].weight.detach().clone()
    assert all(bool(m.all()) for m in sparse_at_init(full, 1.0).values()) and torch.equal(full[1].weight, w)
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="share"):
            sparse_at_init(full, bad)


# --------------------------------------------------------------- BatchNorm pairing on readers' models, by the graph
class _ApartBNs(nn.Module):
    """Registers conv1, conv2, bn1, bn2: registration order would pair conv2 with bn1."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 6, 3, padding=1)
        self.bn1, self.bn2 = nn.BatchNorm2d(4), nn.BatchNorm2d(6)
        self.head = nn.Linear(6 * 8 * 8, 10)

    def forward(self, x):
        h1 = torch.relu(self.bn1(self.conv1(x)))
        return self.head(torch.relu(self.bn2(self.conv2(h1))).flatten(1))


def test_unit_masks_zero_the_batchnorm_that_reads_each_conv_in_the_forward_graph():
    torch.manual_seed(0)
    model = _ApartBNs().eval()
    with torch.no_grad():
        for bn in (model.bn1, model.bn2):
            bn.bias.uniform_(0.5, 1.0)  # a pruned channel left with its BN shift would output up to 1
    params = [(model.conv1, "weight"), (model.conv2, "weight")]
    assert M.following_batchnorms(model, params) == [model.bn1, model.bn2]
    keeps = [torch.tensor([True, False, True, False]), torch.tensor([True] * 3 + [False] * 3)]
    masks = M.UnitMasks.from_keeps(params, keeps)
    seen = {}
    model.bn1.register_forward_hook(lambda _m, _i, out: seen.__setitem__("h1", torch.relu(out)))
    with M.masks_applied(params, masks, model=model):
        model(torch.randn(8, 1, 8, 8))
    assert float(seen["h1"][:, ~keeps[0]].abs().max()) == 0.0  # conv1's pruned channels output exactly 0
    assert float(seen["h1"][:, keeps[0]].abs().max()) > 0.0


def test_an_untraceable_readers_model_is_refused_for_unit_masks():
    class Untraceable(_ApartBNs):
        def forward(self, x):
            if float(x.sum()) > 1e9:  # control flow on a value: torch.fx cannot trace it
                return x
            return super().forward(x)

    model = Untraceable()
    with pytest.raises(ValueError, match="torch.fx"):
        M.following_batchnorms(model, [(model.conv1, "weight")])
