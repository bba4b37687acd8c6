"""Tests for prunekit.pruning.scorers and the scorer plug-in of masks_from_scores / pruning_curve, each against a
computation of its own (copies of the model with a unit removed, autograd through output gates)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from prunekit.measures import curves as CV
from prunekit.pruning import masks as M
from prunekit.pruning import select as P
from prunekit.pruning import scorers as S
from prunekit.core.config import ModelConfig
from prunekit.core.data import Split
from prunekit.core.models import build_model
from prunekit.core.prunable import prunable_parameters
from prunekit.core.train import evaluate
from prunekit.measures.saliency import saliency_scores


def mlp(activation="relu", hidden=(5, 4), seed=0):
    torch.manual_seed(seed)
    model = build_model(ModelConfig(arch="mlp", hidden=hidden, activation=activation), (1, 2, 3), 3).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                m.bias.uniform_(-0.5, 0.5)
    return model


def data(n=40, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 2, 3, generator=g), torch.randint(0, 3, (n,), generator=g)


def summed_loss(model, x, y) -> float:
    with torch.no_grad():
        return float(F.cross_entropy(model.double()(x.double()), y, reduction="sum"))


def removal_costs(model, x, y) -> list[list[float]]:
    """Exact change of the summed cross-entropy when each hidden unit's row and bias are zeroed: my own loop."""
    base = summed_loss(copy.deepcopy(model), x, y)
    out = []
    for li, (layer, _) in enumerate(prunable_parameters(model)):
        costs = []
        for j in range(layer.weight.shape[0]):
            net = copy.deepcopy(model)
            target = prunable_parameters(net)[li][0]
            with torch.no_grad():
                target.weight[j] = 0
                target.bias[j] = 0
            costs.append(summed_loss(net, x, y) - base)
        out.append(costs)
    return out


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_brute_force_scores_are_the_exact_removal_costs(activation):
    model, (x, y) = mlp(activation), data()
    scores = saliency_scores(model, x, y, "brute_force")
    want = removal_costs(model, x, y)
    assert [s.shape[0] for s in scores] == [5, 4]
    for got, exp in zip(scores, want):
        torch.testing.assert_close(got, torch.tensor(exp, dtype=torch.float64), rtol=1e-9, atol=1e-9)


def test_first_order_scores_equal_the_gradient_through_output_gates():
    model, (x, y) = mlp("tanh"), data()
    net = copy.deepcopy(model).double()
    hidden = [m for m, _ in prunable_parameters(net)]
    gates = [torch.ones(m.weight.shape[0], dtype=torch.float64, requires_grad=True) for m in hidden]
    acts = [m for m in net.modules() if isinstance(m, nn.Tanh)]
    hooks = [a.register_forward_hook(lambda mod, inp, out, g=g: out * g) for a, g in zip(acts, gates)]
    F.cross_entropy(net(x.double()), y, reduction="sum").backward()
    for h in hooks:
        h.remove()
    scores = saliency_scores(model, x, y, "first_order")
    for got, g in zip(scores, gates):  # removing unit j moves its gate from 1 to 0: dE ~ -dE/dg_j
        torch.testing.assert_close(got, -g.grad, rtol=1e-9, atol=1e-12)


def test_masks_from_brute_force_scores_prune_the_cheapest_units():
    model, (x, y) = mlp(), data()
    costs = [c for layer in removal_costs(model, x, y) for c in layer]
    params = prunable_parameters(model)
    masks = P.masks_from_scores(params, saliency_scores(model, x, y, "brute_force"), 100 * 2 / 9, "global")
    assert isinstance(masks, M.UnitMasks)
    pruned = [i for i, keep in enumerate(torch.cat(masks.units).tolist()) if not keep]
    assert pruned == sorted(sorted(range(9), key=lambda i: (costs[i], i))[:2])


def test_saliency_scores_refuse_what_they_cannot_score():
    x, y = data()
    with pytest.raises(ValueError, match="sigmoid"):
        saliency_scores(mlp("sigmoid"), x, y)
    with pytest.raises(ValueError, match="estimator"):
        saliency_scores(mlp(), x, y, "third_order")
    with pytest.raises(ValueError, match="output_hessian"):
        saliency_scores(mlp(), x, y, output_hessian="exact")
    torch.manual_seed(0)  # a batch norm between the layers: the saliencies would leave it out, so they refuse
    with_bn = nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3)).eval()
    with pytest.raises(ValueError, match="BatchNorm1d"):
        saliency_scores(with_bn, x, y)


def test_scores_are_ranked_in_float64():
    layer = nn.Linear(2, 1)
    scores = [torch.tensor([[1.0, 1.0 - 1e-12]], dtype=torch.float64)]  # equal in float32
    mask = P.masks_from_scores([(layer, "weight")], scores, 50)[0]
    assert mask.tolist() == [[True, False]]


def test_random_scores_shapes_and_seed():
    params = prunable_parameters(mlp())
    a, b = S.random_scores(params), S.random_scores(params)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert [tuple(s.shape) for s in a] == [(5, 6), (4, 5)]
    assert [tuple(s.shape) for s in S.random_scores(params, per_unit=True)] == [(5,), (4,)]
    c = S.random_scores(params, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(a[0], c[0])


def test_pruning_curve_takes_a_scorer_of_your_own():
    model, (x, y) = mlp(hidden=(12, 9)), data(200)
    params, split = prunable_parameters(model), Split(x, y)
    largest_first = lambda p: [-s for s in S.magnitude_scores(p)]  # noqa: E731
    df = CV.pruning_curve(model, params, split, [0, 25, 60], methods=["weight"], scopes=["global"],
                          scorers={"largest_first": largest_first})
    assert set(df.method) == {"weight", "largest_first"}
    flat = torch.cat([m.weight.detach().abs().reshape(-1) for m, _ in params])
    for k in (25, 60):  # my own masks: the round(k n / 100) largest |w| pruned
        count = round(k * flat.numel() / 100)
        keep = torch.ones_like(flat, dtype=torch.bool)
        keep[torch.argsort(-flat, stable=True)[:count]] = False
        masks = list(torch.split(keep, [m.weight.numel() for m, _ in params]))
        masks = [mk.view(m.weight.shape) for mk, (m, _) in zip(masks, params)]
        with M.masks_applied(params, masks):
            _, acc = evaluate(model, split)
        row = df[(df.method == "largest_first") & (df.k == k)].iloc[0]
        assert row.accuracy == pytest.approx(acc, abs=0)
        assert row.sparsity == pytest.approx(count / flat.numel())
    same = CV.pruning_curve(model, params, split, [25, 60], methods=[], scopes=["global"],
                            scorers={"magnitude": S.magnitude_scores})
    builtin = df[df.method == "weight"].set_index("k").loc[[25, 60]]
    assert same.accuracy.tolist() == builtin.accuracy.tolist()
    calls = []
    counted = lambda p: calls.append(1) or S.magnitude_scores(p)  # noqa: E731
    CV.pruning_curve(model, params, split, [10, 20], methods=[], scorers={"counted": counted})
    assert len(calls) == 1  # scored once for both scopes
    with pytest.raises(ValueError, match="scorers"):
        CV.pruning_curve(model, params, split, [10], scorers={"weight": S.magnitude_scores})
    with pytest.raises(ValueError, match="scores has"):
        CV.pruning_curve(model, params, split, [10], methods=[], scorers={"bad": lambda p: [p[0][0].weight]})
