"""Tests of prunekit.measures.saliency (source 001) on tiny nets, against independent computations (autograd Hessians, finite
differences, explicit removal in the nn.Module, a naive greedy loop)."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from prunekit.measures import saliency as S
from prunekit.measures.saliency import estimators as SE
from prunekit.measures.saliency.network import Forward

ACT = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}


def make_mlp(sizes, activation="sigmoid", seed=0, scale=1.0):
    """Equivalent of prunekit.core.models.MLP: Flatten, Linear, Act, ..., Linear (float64)."""
    torch.manual_seed(seed)
    layers = [nn.Flatten()]
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(ACT[activation]())
    model = nn.Sequential(*layers).double()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    return model


def make_data(n, d, k, seed=0, regression=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 1, d, generator=g, dtype=torch.float64)
    if regression:
        return x, torch.rand(n, k, generator=g, dtype=torch.float64)
    return x, torch.randint(0, k, (n,), generator=g)


def reference_error(model, x, y, loss):
    """Total (summed) error of an nn.Module, written independently of prunekit."""
    z = model(x)
    if loss == "sse":
        t = y if y.is_floating_point() else nn.functional.one_hot(y, z.shape[1]).double()
        return float(0.5 * ((torch.sigmoid(z) - t) ** 2).sum().detach())
    return float(nn.functional.cross_entropy(z, y, reduction="sum"))


def linears(model):
    return [m for m in model if isinstance(m, nn.Linear)]


def remove_units(model, units):
    """Explicit removal: zero the outgoing weights of each (layer, unit) so its output contributes nothing."""
    lin = linears(model)
    with torch.no_grad():
        for l, j in units:
            lin[l + 1].weight[:, j] = 0


def masked_error(net, x, y, masks):
    err, _ = S.evaluate(net, x, y, masks)
    return err * len(x)


# ----------------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("loss,output_hessian", [("sse", "diagonal"), ("cross_entropy", "full")])
def test_second_order_diagonal_is_exact_at_last_hidden_layer(activation, loss, output_hessian):
    model = make_mlp([5, 6, 4, 3], activation, seed=1, scale=1.5)
    x, y = make_data(7, 5, 3, seed=2)
    net = S.from_model(model, loss=loss)
    outs, grads, hess = S.output_derivatives(net, x, y, output_hessian=output_hessian)
    o_last = outs[-1].detach()
    xs, t = S.prepare_data(net, x, y)
    w, b = net.weights[-1], net.biases[-1]

    def error(o):
        z = o @ w.T + b
        if loss == "sse":
            return 0.5 * ((torch.sigmoid(z) - t) ** 2).sum()
        return -(t * torch.log_softmax(z, -1)).sum()

    h = torch.autograd.functional.hessian(error, o_last)  # [N, h, N, h]
    n, width = o_last.shape
    diag = h.reshape(n * width, n * width).diagonal().reshape(n, width)
    torch.testing.assert_close(hess[-1], diag)
    g = torch.autograd.functional.jacobian(error, o_last)
    torch.testing.assert_close(grads[-1], g)
    assert diag.abs().max() > 1e-3  # non-trivial


def test_cross_entropy_diagonal_recipe_drops_softmax_cross_terms():
    """output_hessian="diagonal" uses ∂²E/∂z_k² = p_k(1-p_k) only: it exceeds the exact diagonal by
    (Σ_i p_i w_ij)² - Σ_i p_i² w_ij² (documented)."""
    model = make_mlp([4, 5, 3], "sigmoid", seed=3, scale=2.0)
    x, y = make_data(6, 4, 3, seed=4)
    net = S.from_model(model, loss="cross_entropy")
    _, _, h_diag = S.output_derivatives(net, x, y, output_hessian="diagonal")
    exact = S.exact_hessian_diagonal(net, x, y, layer=0)
    xs, _ = S.prepare_data(net, x, y)
    p = torch.softmax(model(x), -1).detach()
    w = net.weights[-1]
    correction = (p @ w) ** 2 - (p * p) @ (w * w)
    torch.testing.assert_close(h_diag[0], exact + correction)
    assert correction.abs().max() > 1e-3


@pytest.mark.parametrize("loss", ["sse", "cross_entropy"])
def test_deeper_layers_drop_off_diagonal_terms(loss):
    """At the first of two hidden layers the recursion equals Σ_i [∂²E/∂x_i²]_exact w_ij² (diagonal of the next
    layer's true Hessian) and differs from the true diagonal, which also has the cross terms."""
    model = make_mlp([4, 5, 6, 3], "sigmoid", seed=5, scale=2.0)
    x, y = make_data(4, 4, 3, seed=6)
    oh = "full" if loss == "cross_entropy" else "diagonal"
    net = S.from_model(model, loss=loss)
    outs, _, hess = S.output_derivatives(net, x, y, output_hessian=oh)
    xs, t = S.prepare_data(net, x, y)
    w1, b1 = net.weights[1], net.biases[1]
    w2, b2 = net.weights[2], net.biases[2]

    def error_x(pre):  # error as a function of layer-2 pre-activations
        z = torch.sigmoid(pre) @ w2.T + b2
        if loss == "sse":
            return 0.5 * ((torch.sigmoid(z) - t) ** 2).sum()
        return -(t * torch.log_softmax(z, -1)).sum()

    pre1 = (outs[0] @ w1.T + b1).detach()
    hx = torch.autograd.functional.hessian(error_x, pre1)
    n, width = pre1.shape
    hx_diag = hx.reshape(n * width, n * width).diagonal().reshape(n, width)
    torch.testing.assert_close(hess[0], hx_diag @ (w1 * w1))
    exact = S.exact_hessian_diagonal(net, x, y, layer=0)
    assert not torch.allclose(hess[0], exact, rtol=1e-3, atol=1e-6)
    # but at the last hidden layer the recursion is exact
    torch.testing.assert_close(hess[1], S.exact_hessian_diagonal(net, x, y, layer=1))


@pytest.mark.parametrize("loss", ["sse", "cross_entropy"])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_first_and_second_order_match_finite_differences_of_unit_scale(loss, activation):
    """With O_j scaled by m_j, dE/dm_j = Σ_n O ∂E/∂O, so first order = -dE/dm; at the last hidden layer
    d²E/dm_j² = Σ_n O² ∂²E/∂O² exactly, so second order = -dE/dm + 1/2 d²E/dm²."""
    model = make_mlp([3, 4, 5, 3], activation, seed=7, scale=1.5)
    x, y = make_data(20, 3, 3, seed=8)
    net = S.from_model(model, loss=loss)
    first = S.saliencies(net, x, y, "first_order")
    oh = "full" if loss == "cross_entropy" else "diagonal"
    second = S.saliencies(net, x, y, "second_order", output_hessian=oh)
    eps = 1e-4
    for u, (l, j) in enumerate(net.unit_index()):
        def err(scale):
            masks = net.full_masks()
            masks[l][j] = scale
            return masked_error(net, x, y, masks)
        e0, ep, em = err(1.0), err(1 + eps), err(1 - eps)
        d1 = (ep - em) / (2 * eps)
        assert first[u].item() == pytest.approx(-d1, rel=1e-5, abs=1e-8)
        if l == len(net.widths) - 1:
            d2 = (ep - 2 * e0 + em) / eps ** 2
            assert second[u].item() == pytest.approx(-d1 + 0.5 * d2, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("loss", ["sse", "cross_entropy"])
def test_brute_force_equals_explicit_removal(loss):
    model = make_mlp([4, 6, 5, 3], "sigmoid", seed=9)
    x, y = make_data(30, 4, 3, seed=10)
    net = S.from_model(model, loss=loss)
    bf = S.saliencies(net, x, y, "brute_force")
    base = reference_error(model, x, y, loss)
    for u, unit in enumerate(net.unit_index()):
        m = make_mlp([4, 6, 5, 3], "sigmoid", seed=9)
        remove_units(m, [unit])
        assert bf[u].item() == pytest.approx(reference_error(m, x, y, loss) - base, rel=1e-9, abs=1e-12)
    # chunked candidate batches give the same numbers
    xs, t = S.prepare_data(net, x, y)
    fw = Forward(net, xs)
    torch.testing.assert_close(SE._brute_force(net, fw, t, chunk_elements=1), bf)


def test_regression_targets_and_make_loss_sse():
    model = make_mlp([1, 5, 5, 1], "sigmoid", seed=11)
    x, y = make_data(25, 1, 1, seed=12, regression=True)
    net = S.from_model(model, loss="sse")
    err, acc = S.evaluate(net, x, y)
    assert err == pytest.approx(reference_error(model, x, y, "sse") / 25, rel=1e-12)
    assert math.isnan(acc)
    import prunekit.core.train as train
    loss_fn = train.make_loss("sse")
    assert err == pytest.approx(float(loss_fn(model(x), y)), rel=1e-6)


def naive_algorithm_ii(model, x, y, loss, steps):
    """Greedy brute force the slow way: try each remaining unit in the nn.Module, keep the best removal."""
    lin = linears(model)
    units = [(l, j) for l in range(len(lin) - 1) for j in range(lin[l].out_features)]
    order, errors = [], [reference_error(model, x, y, loss) / len(x)]
    for _ in range(steps):
        best = None
        for unit in units:
            if unit in order:
                continue
            saved = lin[unit[0] + 1].weight[:, unit[1]].clone()
            remove_units(model, [unit])
            e = reference_error(model, x, y, loss)
            with torch.no_grad():
                lin[unit[0] + 1].weight[:, unit[1]] = saved
            if best is None or e < best[0]:
                best = (e, unit)
        remove_units(model, [best[1]])
        order.append(best[1])
        errors.append(best[0] / len(x))
    return order, np.array(errors)


@pytest.mark.parametrize("sizes", [[4, 6, 3], [4, 5, 4, 3]])
def test_algorithm_ii_brute_force_equals_naive_greedy_loop(sizes):
    model = make_mlp(sizes, "sigmoid", seed=13)
    x, y = make_data(40, 4, 3, seed=14)
    net = S.from_model(model, loss="sse")
    res = S.serial_prune(net, x, y, "brute_force", "II")
    order, errors = naive_algorithm_ii(model, x, y, "sse", steps=net.num_units)
    assert res.order == order
    np.testing.assert_allclose(res.error, errors, rtol=1e-10)
    assert len(res.error) == net.num_units + 1
    assert res.fraction_removed[-1] == 1.0


@pytest.mark.parametrize("estimator", S.ESTIMATORS)
def test_algorithm_i_follows_initial_ranking_and_curves_are_consistent(estimator):
    model = make_mlp([4, 6, 5, 3], "tanh", seed=15)
    x, y = make_data(30, 4, 3, seed=16)
    net = S.from_model(model, loss="cross_entropy")
    res = S.serial_prune(net, x, y, estimator, "I", seed=3)
    index = net.unit_index()
    expected = [index[u] for u in np.argsort(res.initial_scores, kind="stable")]
    assert res.order == expected
    if estimator != "random":
        np.testing.assert_allclose(res.initial_scores, S.saliencies(net, x, y, estimator).numpy())
    # error / accuracy curve equals evaluating the net with the first k units masked
    for k in (0, 3, 7, net.num_units):
        masks = net.full_masks()
        for l, j in res.order[:k]:
            masks[l][j] = 0
        err, acc = S.evaluate(net, x, y, masks)
        assert res.error[k] == pytest.approx(err, rel=1e-10)
        assert res.accuracy[k] == pytest.approx(acc)
    assert sorted(res.order) == sorted(index)


def test_algorithm_ii_reranks_and_matches_saliencies_of_the_masked_net():
    model = make_mlp([4, 6, 5, 3], "sigmoid", seed=17, scale=2.0)
    x, y = make_data(50, 4, 3, seed=18)
    net = S.from_model(model, loss="sse")
    res = S.serial_prune(net, x, y, "second_order", "II", max_removed=5)
    assert len(res.order) == 5 and len(res.error) == 6
    masks = net.full_masks()
    index = net.unit_index()
    for l, j in res.order:
        s = S.saliencies(net, x, y, "second_order", masks=masks)
        assert index[int(torch.argmin(s))] == (l, j)
        masks[l][j] = 0
    s = S.saliencies(net, x, y, "second_order", masks=masks)
    assert torch.isinf(s[[index.index(u) for u in res.order]]).all()
    # l2_norm does not depend on the masks: II and I give the same order
    r1 = S.serial_prune(net, x, y, "l2_norm", "I")
    r2 = S.serial_prune(net, x, y, "l2_norm", "II")
    assert r1.order == r2.order
    norms = torch.cat([w.norm(dim=1) for w in net.weights[:-1]])
    assert r1.order[0] == index[int(torch.argmin(norms))]


def test_brute_force_algorithm_ii_never_worse_at_first_step_and_random_is_seeded():
    model = make_mlp([4, 8, 3], "sigmoid", seed=19)
    x, y = make_data(60, 4, 3, seed=20)
    net = S.from_model(model, loss="sse")
    bf = S.serial_prune(net, x, y, "brute_force", "II")
    for est in ("first_order", "second_order", "l2_norm", "random"):
        r = S.serial_prune(net, x, y, est, "II", seed=1)
        assert r.error[1] >= bf.error[1] - 1e-12
    a = S.serial_prune(net, x, y, "random", "I", seed=1)
    b = S.serial_prune(net, x, y, "random", "I", seed=1)
    c = S.serial_prune(net, x, y, "random", "I", seed=2)
    assert a.order == b.order and a.order != c.order


def test_removable_units():
    err = [1.0, 0.9, 1.05, 1.2, 1.0, 3.0]
    assert S.removable_units(err, 0.1) == 2
    assert S.removable_units(err, 0.25) == 4
    assert S.removable_units(err, 5.0) == 5
    assert S.removable_units(err, 0.1, mode="relative") == 2
    assert S.removable_units([2.0, 2.3, 2.5, 4.0], 0.2, mode="relative") == 1
    assert S.removable_units(err, 0.1, mode="range") == 4  # rise allowed: 0.1 * (3.0 - 1.0) = 0.2
    assert S.removable_units(err, 0.05, mode="range") == 2
    assert S.removable_units([1.0, 1.5], 0.1) == 0
    assert S.removable_units([0.7], 0.1) == 0  # nothing to remove
    # an untrained net: removing every unit lowers the error; "range" then allows no rise (it was -1 before)
    assert S.removable_units([1.0, 1.02, 0.9, 0.8], 0.05, mode="range") == 0
    assert S.removable_units([1.0, 0.95, 0.9, 1.01, 0.8], 0.05, mode="range") == 2
    with pytest.raises(ValueError, match="mode"):
        S.removable_units(err, 0.1, mode="percent")
    with pytest.raises(ValueError, match="margin"):
        S.removable_units(err, -0.1)
    with pytest.raises(ValueError, match="error"):
        S.removable_units([], 0.1)


def test_invalid_arguments_raise():
    model = make_mlp([4, 5, 3])
    x, y = make_data(5, 4, 3)
    net = S.from_model(model, loss="sse")
    with pytest.raises(ValueError, match="estimator"):
        S.saliencies(net, x, y, "third_order")
    with pytest.raises(ValueError, match="algorithm"):
        S.serial_prune(net, x, y, "random", "III")
    with pytest.raises(ValueError, match="loss"):
        S.from_model(model, loss="mse")
    with pytest.raises(ValueError, match="output_hessian"):
        S.saliencies(net, x, y, "second_order", output_hessian="block")
    with pytest.raises(ValueError, match="MLP"):
        S.from_model(nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 3), nn.Sigmoid(), nn.Linear(3, 2)), "sse")
    with pytest.raises(ValueError, match="MLP"):  # right counts, wrong order
        S.from_model(nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3), nn.ReLU(), nn.ReLU(), nn.Linear(3, 2)), "sse")


def test_hessian_diagonal_check_reports_exact_last_layer_and_error_deeper():
    model = make_mlp([3, 6, 6, 2], "sigmoid", seed=23, scale=2.0)
    x, y = make_data(10, 3, 2, seed=24)
    net = S.from_model(model, loss="sse")
    df = S.hessian_diagonal_check(net, x, y)
    assert list(df.depth_from_output) == [2, 1]
    assert df.relative_error.iloc[1] < 1e-10
    assert df.relative_error.iloc[0] > 1e-4


def test_float32_brute_force_matches_float64():
    model = make_mlp([6, 12, 3], "sigmoid", seed=25)
    x, y = make_data(500, 6, 3, seed=26)
    b64 = S.saliencies(S.from_model(model, "sse", dtype=torch.float64), x, y, "brute_force")
    b32 = S.saliencies(S.from_model(model, "sse", dtype=torch.float32), x, y, "brute_force")
    assert b32.dtype == torch.float32
    torch.testing.assert_close(b32.double(), b64, rtol=1e-4, atol=1e-4 * float(b64.abs().max()))


def test_documented_cross_entropy_gap_at_the_last_hidden_layer():
    """The figure quoted in the saliency docs and notebook 06: a random 3-5-4-3 sigmoid net with cross-entropy, 64
    samples; the default diagonal is 23% off at the last hidden layer (against autograd), "full" is exact there."""
    torch.manual_seed(0)
    shapes = [(5, 3), (4, 5), (3, 4)]
    ws = [torch.randn(*s, dtype=torch.float64) for s in shapes]
    bs = [torch.randn(s[0], dtype=torch.float64) for s in shapes]
    net = S.UnitNet(ws, bs, activation="sigmoid", loss="cross_entropy")
    x, y = torch.randn(64, 3, dtype=torch.float64), torch.randint(0, 3, (64,))
    last = lambda t: t.set_index("depth_from_output").loc[1, "relative_error"]  # noqa: E731
    assert last(S.hessian_diagonal_check(net, x, y, output_hessian="diagonal")) == pytest.approx(0.233, abs=5e-4)
    assert last(S.hessian_diagonal_check(net, x, y, output_hessian="full")) < 1e-12


# ------------------------------------------------------------------------------------ source 001's claims, never raising


@pytest.mark.parametrize("loss", ["sse", "cross_entropy"])
def test_to_model_is_the_masked_forward_pass(loss):
    """The modules from to_model give the logits of the masked forward pass (float64, so to the last bits of a
    different summation order), and evaluate agrees with an independent loop over the samples."""
    model = make_mlp([4, 6, 5, 3], "tanh", seed=21)
    x, y = make_data(40, 4, 3, seed=22)
    net = S.from_model(model, loss=loss)
    masks = net.full_masks()
    masks[0][[1, 4]] = 0
    masks[1][2] = 0
    xs, t = S.prepare_data(net, x, y)
    torch.testing.assert_close(S.to_model(net, masks)(xs), Forward(net, xs, masks).logits, rtol=1e-12, atol=1e-12)
    err, acc = S.evaluate(net, x, y, masks)
    removed = [(0, 1), (0, 4), (1, 2)]
    remove_units(model, removed)
    errors, correct = [], 0
    for xi, yi in zip(x, y):  # one sample at a time through the original modules, units removed by hand
        z = model(xi[None])[0].double()
        if loss == "sse":
            errors.append(0.5 * float(((torch.sigmoid(z) - torch.nn.functional.one_hot(yi, 3)) ** 2).sum()))
        else:
            errors.append(-float(torch.log_softmax(z, 0)[yi]))
        correct += int(z.argmax() == yi)
    assert err == pytest.approx(sum(errors) / len(errors), rel=1e-10)
    assert acc == correct / len(y)
    with pytest.raises(ValueError, match="one vector per hidden layer"):
        S.to_model(net, masks[:1])


# ------------------------------------------------------------------------ readers' models: checked, or refused
class _BNMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.bn, self.act, self.fc2 = nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3)

    def forward(self, x):
        return self.fc2(self.act(self.bn(self.fc1(x))))


class _ResidualMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.act, self.out = nn.Linear(4, 6), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 3)

    def forward(self, x):
        h = self.act(self.fc1(x))
        return self.out(h + self.act(self.fc2(h)))


class _Reordered(nn.Module):
    """Registers its layers in another order than it runs them."""

    def __init__(self):
        super().__init__()
        self.second, self.act, self.first = nn.Linear(6, 3), nn.ReLU(), nn.Linear(4, 6)

    def forward(self, x):
        return self.second(self.act(self.first(x)))


class _PlainMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def test_from_model_checks_a_readers_model_or_refuses_it():
    torch.manual_seed(0)
    x, y = make_data(32, 4, 3)
    x = x.float().flatten(1)  # the readers' models take float32 vectors
    for model, why in ((_BNMLP(), "BatchNorm1d"), (_ResidualMLP(), "does not compute the model's outputs"),
                       (_Reordered(), "does not compute the model's outputs")):
        model.eval()
        with pytest.raises(ValueError, match=why):
            S.from_model(model, "cross_entropy", example=x)
        with pytest.raises(ValueError, match="example"):  # a forward of its own is never trusted unchecked
            S.from_model(model, "cross_entropy")
    plain = _PlainMLP()
    net = S.from_model(plain, "cross_entropy", example=x)
    torch.testing.assert_close(S.to_model(net)(x.double()), plain(x).double(), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="BatchNorm1d"):
        S.saliency_scores(_BNMLP().eval(), x, y)


def test_from_model_has_no_default_loss():
    with pytest.raises(TypeError):
        S.from_model(make_mlp([4, 5, 3]))  # sse and cross-entropy rank units differently: the caller chooses


def test_a_half_precision_mlp_is_checked_at_its_own_precision():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).to(torch.bfloat16)
    x = torch.randn(16, 4, dtype=torch.bfloat16)
    net = S.from_model(model, "cross_entropy", example=x)  # bf16 rounding is not a wrong network
    assert net.widths == [8]


def gain_error(model, x, y, loss, gains):
    """Total error of an nn.Sequential MLP whose hidden units' outputs are multiplied by ``gains`` (one per hidden unit,
    layer after layer), written here with plain torch ops: E(α) of the gain derivation."""
    lin = linears(model)
    act = next(m for m in model if not isinstance(m, (nn.Flatten, nn.Linear)))
    h, offset = x.flatten(1), 0
    for layer in lin[:-1]:
        h = act(layer(h))
        h = h * gains[offset:offset + layer.out_features]
        offset += layer.out_features
    z = lin[-1](h)
    if loss == "sse":
        t = nn.functional.one_hot(y, z.shape[1]).double()
        return 0.5 * ((torch.sigmoid(z) - t) ** 2).sum()
    return nn.functional.cross_entropy(z, y, reduction="sum")


@pytest.mark.parametrize("loss", ["sse", "cross_entropy"])
@pytest.mark.parametrize("sizes", [[3, 5, 4, 3], [3, 4, 5, 3, 2]])
def test_exact_second_order_is_the_gain_expansion_by_autograd(loss, sizes):
    """second_order_exact = -E'(1) + 1/2 E''(1) of each unit's gain, both from torch.autograd.functional (the
    gradient and the Hessian of E(α) at α = 1, written in the test); and where the source's recursion drops cross
    terms (below the last hidden layer) it differs from second_order, so the test would catch a copy of it."""
    model = make_mlp(sizes, "sigmoid", seed=11, scale=2.0)
    x, y = make_data(30, 3, sizes[-1], seed=12)
    net = S.from_model(model, loss=loss)
    ones = torch.ones(net.num_units, dtype=torch.float64)
    grad = torch.autograd.functional.jacobian(lambda a: gain_error(model, x, y, loss, a), ones)
    hess = torch.autograd.functional.hessian(lambda a: gain_error(model, x, y, loss, a), ones)
    want = -grad + 0.5 * hess.diagonal()
    got = S.saliencies(net, x, y, "second_order_exact")
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10)
    deep = slice(0, sum(net.widths[:-1]))  # every hidden layer but the last
    diagonal = S.saliencies(net, x, y, "second_order", output_hessian="full")
    assert (got[deep] - diagonal[deep]).abs().max() > 1e-3


def test_exact_second_order_equals_the_source_recursion_where_that_is_exact():
    """One hidden layer with squared error: the recursion is exact (the source's own remark), so both agree."""
    model = make_mlp([4, 7, 3], "sigmoid", seed=3, scale=1.5)
    x, y = make_data(25, 4, 3, seed=4)
    net = S.from_model(model, loss="sse")
    torch.testing.assert_close(S.saliencies(net, x, y, "second_order_exact"), S.saliencies(net, x, y, "second_order"),
                               rtol=1e-10, atol=1e-12)


def test_exact_second_order_on_a_masked_net_and_in_blocks_of_samples():
    """Removed units score +inf; the others are the gain expansion of the net with those units' outputs at 0; blocks
    of a few samples give the same numbers as one block."""
    model = make_mlp([3, 5, 4, 3], "tanh", seed=5, scale=1.5)
    x, y = make_data(17, 3, 3, seed=6)
    net = S.from_model(model, loss="sse")
    masks = net.full_masks()
    masks[0][1] = 0
    masks[1][2] = 0
    got = S.saliencies(net, x, y, "second_order_exact", masks=masks)
    gains0 = torch.cat(masks)
    ones = torch.ones(net.num_units, dtype=torch.float64)
    f = lambda a: gain_error(model, x, y, "sse", a * gains0)  # noqa: E731
    want = -torch.autograd.functional.jacobian(f, ones) + 0.5 * torch.autograd.functional.hessian(f, ones).diagonal()
    alive = gains0 == 1
    assert torch.isinf(got[~alive]).all()
    torch.testing.assert_close(got[alive], want[alive], rtol=1e-9, atol=1e-10)
    whole = S.exact_hessian(net, x, y, masks)
    blocks = S.exact_hessian(net, x, y, masks, chunk_elements=1)
    for a, b in zip(whole, blocks):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("activation, sizes, loss", [
    ("relu", [3, 5, 4, 3], "cross_entropy"),     # ReLU: σ'' = 0 away from the kink, the gain expansion still exact
    ("sigmoid", [3, 1, 4, 2], "cross_entropy"),  # a hidden layer of one unit
    ("tanh", [3, 4, 1, 3], "sse"),               # the last hidden layer of one unit
])
def test_exact_second_order_on_relu_and_one_unit_layers_with_masks(activation, sizes, loss):
    """The gain expansion -E'(1) + 1/2 E''(1) by autograd on the net with some units removed (their gain held at 0):
    the same numbers from second_order_exact, +inf on the removed units, for ReLU and for layers of a single unit."""
    model = make_mlp(sizes, activation, seed=21, scale=1.5)
    x, y = make_data(23, 3, sizes[-1], seed=22)
    net = S.from_model(model, loss=loss)
    masks = net.full_masks()
    wide = max(range(len(masks)), key=lambda i: masks[i].numel())
    masks[wide][0] = 0  # one unit of the widest layer removed (a layer of one unit keeps it)
    gains0 = torch.cat(masks)
    ones = torch.ones(net.num_units, dtype=torch.float64)
    f = lambda a: gain_error(model, x, y, loss, a * gains0)  # noqa: E731
    want = -torch.autograd.functional.jacobian(f, ones) + 0.5 * torch.autograd.functional.hessian(f, ones).diagonal()
    got = S.saliencies(net, x, y, "second_order_exact", masks=masks)
    alive = gains0 == 1
    assert torch.isinf(got[~alive]).all() and int((~alive).sum()) == 1
    torch.testing.assert_close(got[alive], want[alive], rtol=1e-9, atol=1e-10)
