"""Tests for prunekit.pruning.scorers and the scorer plug-in of masks_from_scores / pruning_curve, each against a
computation of its own (copies of the model with a unit removed, autograd through output gates)."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import pandas as pd
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
    scores = saliency_scores(model, x, y, estimator="brute_force")
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
    scores = saliency_scores(model, x, y, estimator="first_order")
    for got, g in zip(scores, gates):  # removing unit j moves its gate from 1 to 0: dE ~ -dE/dg_j
        torch.testing.assert_close(got, -g.grad, rtol=1e-9, atol=1e-12)


def test_masks_from_brute_force_scores_prune_the_cheapest_units():
    model, (x, y) = mlp(), data()
    costs = [c for layer in removal_costs(model, x, y) for c in layer]
    params = prunable_parameters(model)
    masks = P.masks_from_scores(params, saliency_scores(model, x, y, estimator="brute_force"), 100 * 2 / 9, "global")
    assert isinstance(masks, M.UnitMasks)
    pruned = [i for i, keep in enumerate(torch.cat(masks.units).tolist()) if not keep]
    assert pruned == sorted(sorted(range(9), key=lambda i: (costs[i], i))[:2])


def test_saliency_scores_refuse_what_they_cannot_score():
    x, y = data()
    with pytest.raises(ValueError, match="sigmoid"):
        saliency_scores(mlp("sigmoid"), x, y)
    with pytest.raises(ValueError, match="estimator"):
        saliency_scores(mlp(), x, y, estimator="third_order")
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
    largest_first = lambda p, model=None, data=None: [-s for s in S.magnitude_scores(p)]  # noqa: E731
    df = CV.pruning_curve(model, split, params=params, ks=[0, 25, 60], methods=["weight"], scopes=["global"],
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
    same = CV.pruning_curve(model, split, params=params, ks=[25, 60], methods=[], scopes=["global"],
                            scorers={"magnitude": S.magnitude_scores})
    builtin = df[df.method == "weight"].set_index("k").loc[[25, 60]]
    assert same.accuracy.tolist() == builtin.accuracy.tolist()
    calls = []
    counted = lambda p, **context: calls.append(context) or S.magnitude_scores(p)  # noqa: E731
    CV.pruning_curve(model, split, params=params, ks=[10, 20], methods=[], scorers={"counted": counted})
    assert len(calls) == 1 and calls[0]["model"] is model  # scored once for both scopes, called with the context
    assert torch.equal(calls[0]["data"].x, x)
    with pytest.raises(ValueError, match="scorers"):
        CV.pruning_curve(model, split, params=params, ks=[10], scorers={"weight": S.magnitude_scores})
    with pytest.raises(ValueError, match="scores has"):
        CV.pruning_curve(model, split, params=params, ks=[10], methods=[],
                         scorers={"bad": lambda p, **_: [p[0][0].weight]})


# --------------------------------------------------------------------------------- one protocol, one registry
def bn_mlp(seed=0):
    """Flatten, (Linear, BatchNorm1d, ReLU) x 2, Linear, with batch-norm scales of its own (what bn_scale reads)."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 4),
                          nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 3)).eval()
    with torch.no_grad():
        for bn in (model[2], model[5]):
            bn.weight.uniform_(-2, 2)
    return model


def expected_scores(name, model, params, x, y):
    """Each registered scorer's scores, computed here another way: |w|, row norms by a loop, seed 0's draws, the
    batch norms' |gamma| by position, the saliencies by saliency_scores with that estimator."""
    if name == "magnitude":
        return [m.weight.detach().abs() for m, _ in params]
    if name == "l2":
        return [torch.tensor([float(row.norm()) for row in m.weight.detach()]) for m, _ in params]
    if name == "random":
        g = torch.Generator().manual_seed(0)
        return [torch.rand(m.weight.shape, generator=g, dtype=torch.float64) for m, _ in params]
    if name == "bn_scale":
        return [model[2].weight.detach().abs(), model[5].weight.detach().abs()]
    return saliency_scores(model, (x, y), estimator=name)


def test_every_registered_scorer_is_called_the_same_way():
    x, y = data()
    names = S.SCORERS.names()
    assert {"magnitude", "l2", "random", "bn_scale", "first_order", "second_order", "second_order_exact",
            "brute_force"} <= set(names)
    for name in names:
        model = bn_mlp() if name == "bn_scale" else mlp()
        params = prunable_parameters(model, example=x)
        scores = S.SCORERS[name](params, model=model, data=Split(x, y))  # the one call, whatever the scorer
        assert len(scores) == len(params), name
        for s, (m, _) in zip(scores, params):
            assert tuple(s.shape) in (tuple(m.weight.shape), (m.weight.shape[0],)), name
        for got, want in zip(scores, expected_scores(name, model, params, x, y)):
            torch.testing.assert_close(got.double(), want.double(), rtol=1e-6, atol=1e-7, msg=name)
        again = S.scores_of(name, params, model=model, data=(x, y))  # by name, as the measures call it
        assert all(torch.equal(a, b) for a, b in zip(again, scores)), name


def test_a_scorer_says_what_it_needs_before_it_scores():
    model, (x, y) = mlp(), data()
    params = prunable_parameters(model)
    with pytest.raises(ValueError, match=r"scorer='bn_scale' needs model="):
        S.SCORERS["bn_scale"](params)
    with pytest.raises(ValueError, match=r"scorer='first_order' needs data="):
        S.SCORERS["first_order"](params, model=model)
    with pytest.raises(ValueError, match="BatchNorm right after every layer"):  # a model without them
        S.bn_scale_scores(params, model=model)
    with pytest.raises(ValueError, match=r"scorer='taylor' is not allowed; allowed: magnitude, l2"):
        S.scorer("taylor")
    with pytest.raises(ValueError, match="scorer=3"):
        S.scorer(3)


def test_saliency_scores_follow_the_params_they_are_given():
    model, (x, y) = mlp(), data()
    params = prunable_parameters(model)
    both = saliency_scores(model, (x, y), estimator="first_order")
    second = saliency_scores(model, (x, y), params=params[1:], estimator="first_order")
    assert len(second) == 1 and torch.equal(second[0], both[1])
    with pytest.raises(ValueError, match="hidden layers"):
        saliency_scores(model, (x, y), params=[(model.output, "weight")])


def _curve_by_hand(model, params, split, scores, k):
    """Accuracy with masks_from_scores(params, scores, k, "global") applied by hand (unit masks: model= zeroes the
    biases too)."""
    masks = P.masks_from_scores(params, scores, k, "global")
    with M.masks_applied(params, masks, model=model):
        return evaluate(model, split)[1]


@pytest.mark.parametrize("name", ["magnitude", "l2", "first_order", "brute_force"])
def test_pruning_curve_by_a_scorers_name_equals_its_masks_by_hand(name):
    model, (x, y) = mlp(hidden=(12, 9)), data(200)
    params, split = prunable_parameters(model), Split(x, y)
    ks = [0, 20, 50]
    df = CV.pruning_curve(model, split, ks=ks, methods=[name], scopes=["global"])
    scores = expected_scores(name, model, params, x, y)
    for k in ks:
        row = df[df.k == k].iloc[0]
        assert row.method == name
        assert row.accuracy == _curve_by_hand(model, params, split, scores, k)
    unit = tuple(scores[0].shape) == (params[0][0].weight.shape[0],)
    assert (df.unit_sparsity.iloc[-1] > 0) == unit  # granularity from the scores' shape
    if name in ("magnitude", "l2"):  # the same ranking as the built-in method: the same table, its name aside
        builtin = CV.pruning_curve(model, split, ks=ks, methods=["weight" if name == "magnitude" else "unit"],
                                   scopes=["global"])
        cols = ["k", "sparsity", "unit_sparsity", "effective_sparsity", "accuracy", "loss", "form"]
        pd.testing.assert_frame_equal(df[cols], builtin[cols])


def test_every_measure_that_ranks_takes_a_scorer_by_name_or_as_a_callable():
    from prunekit.measures.density import effective_density
    from prunekit.measures.utility import magnitude_ablation
    from prunekit.pruning.retrain import magnitude_masks

    model, (x, y) = mlp(hidden=(12, 9)), data(200)
    seen = []
    warnings.simplefilter("ignore", RuntimeWarning)  # an untrained net: at chance, said so

    def smallest(params, *, model=None, data=None):  # |w| with a record of what it was given
        seen.append((model, data))
        return S.magnitude_scores(params)

    by_name = effective_density(model, (x, y), scorer="magnitude", incremental=False)
    by_fn = effective_density(model, (x, y), scorer=smallest, incremental=False)
    assert (by_name.core_params, by_name.core_accuracy) == (by_fn.core_params, by_fn.core_accuracy)
    assert seen[-1][0] is model and torch.equal(seen[-1][1].x, x)
    a, b = magnitude_masks(model, 40, "random"), magnitude_masks(model, 40, S.random_scores)
    assert a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)
    assert magnitude_masks(model, 40, "l2", data=(x, y)).units  # one score per unit: unit masks
    a = magnitude_ablation(model, (x, y), n_bands=2, ratios=[1.0], scorer="random", warn_at_chance=False)
    b = magnitude_ablation(model, (x, y), n_bands=2, ratios=[1.0], scorer=S.random_scores, warn_at_chance=False)
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(ValueError, match="one score per weight"):
        magnitude_ablation(model, (x, y), n_bands=2, scorer="l2", warn_at_chance=False)
    with pytest.raises(ValueError, match="scorer='nope'"):
        effective_density(model, (x, y), scorer="nope")


def test_a_scorer_of_the_older_form_still_works_with_a_warning():
    model, (x, y) = mlp(hidden=(12, 9)), data(200)
    params, split = prunable_parameters(model), Split(x, y)
    older = lambda p: S.magnitude_scores(p)  # noqa: E731  params only: the form before the protocol
    with pytest.warns(DeprecationWarning, match=r"scorer\(params, \*, model=None, data=None\)"):
        df = CV.pruning_curve(model, split, ks=[30], methods=[], scopes=["global"], scorers={"older": older})
    new = CV.pruning_curve(model, split, ks=[30], methods=["magnitude"], scopes=["global"])
    assert df.accuracy.tolist() == new.accuracy.tolist()


def test_a_scorer_registered_by_a_reader_is_taken_by_name_everywhere(monkeypatch):
    model, (x, y) = mlp(hidden=(12, 9)), data(200)
    params = prunable_parameters(model)

    def largest_first(params, *, model=None, data=None):
        return [-s for s in S.magnitude_scores(params)]

    entry = S.ScorerEntry("largest_first", largest_first)
    S.SCORERS.names()  # providers loaded first: the entry below is then the only new one
    monkeypatch.setitem(S.SCORERS._entries, "largest_first", entry)
    df = CV.pruning_curve(model, (x, y), ks=[25], methods=["largest_first"], scopes=["global"])
    assert df.accuracy.iloc[0] == _curve_by_hand(model, params, Split(x, y), largest_first(params), 25)
    with pytest.raises(ValueError, match="needs"):
        S.ScorerEntry("bad", largest_first, needs=("labels",))
