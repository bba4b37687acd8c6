"""The one measure signature, ``measure(model, data, *, params=None, ...)``, and the older calls that keep working for
one release: each older call warns and gives exactly what the new call gives."""

from __future__ import annotations

import copy
import inspect
import warnings

import pandas as pd
import pytest
import torch
from torch import nn

from prunekit.core.data import Split
from prunekit.core.prunable import prunable_parameters
from prunekit.measures import curves as CV
from prunekit.measures import density as D
from prunekit.measures import surface as SU
from prunekit.measures import utility as U
from prunekit.measures.protocol import measure_params
from prunekit.measures.saliency import saliency_scores

MEASURES = [D.effective_density, D.pruned_accuracy, D.hoyer_by_layer, D.model_hoyer_sparsity, CV.pruning_curve,
            CV.inference_speedups, U.utility, U.evaluate_subsets, U.random_ablation, U.magnitude_ablation,
            saliency_scores]
SURFACE = [SU.evaluate_point, SU.plane_surface, SU.linear_path]  # the whole weight vector: no params


def tiny(seed=0):
    """A trained-looking tiny MLP (no model.output: its head is traced) and 120 labelled samples it fits better than
    chance."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(120, 8, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 3))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval(), x, y


@pytest.mark.parametrize("measure", MEASURES + SURFACE, ids=lambda f: f.__name__)
def test_every_measure_takes_model_then_data_and_everything_else_by_keyword(measure):
    parameters = list(inspect.signature(measure).parameters.values())
    assert [p.name for p in parameters[:2]] == ["model", "data"]
    assert all(p.kind == p.POSITIONAL_OR_KEYWORD for p in parameters[:2])
    assert all(p.kind == p.KEYWORD_ONLY for p in parameters[2:]), [p.name for p in parameters[2:]]
    if measure in MEASURES:
        assert inspect.signature(measure).parameters["params"].default is None


def test_the_default_weights_are_traced_on_the_data():
    model, x, y = tiny()
    want = [(model[0], "weight"), (model[2], "weight")]  # the head, model[4], traced and left out
    for data in (x, (x, y), Split(x, y)):
        assert measure_params(model, data) == want
    assert measure_params(model, (x, y), [(model[2], "weight")]) == [(model[2], "weight")]
    with pytest.raises(ValueError, match="example"):
        measure_params(model)  # nothing to trace on


def _quiet(call):
    """``call()`` with any warning an error: the new form never warns."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return call()


def _older(call):
    """``call()`` of an older form: it must warn that it is deprecated."""
    with pytest.warns(DeprecationWarning, match="deprecated"):
        return call()


def test_the_older_pruning_curve_call_warns_and_gives_the_identical_table():
    model, x, y = tiny()
    params = prunable_parameters(model, example=x)
    split = Split(x, y)
    new = _quiet(lambda: CV.pruning_curve(model, split, ks=[0, 30, 70], params=params, methods=["weight", "unit",
                                          "random_unit"], scopes=["layerwise", "global"], seed=3))
    old = _older(lambda: CV.pruning_curve(model, params, split, [0, 30, 70], ["weight", "unit", "random_unit"],
                                          ["layerwise", "global"], 3))
    renamed = _older(lambda: CV.pruning_curve(model, params=params, split=split, ks=[0, 30, 70],
                                              methods=["weight", "unit", "random_unit"], seed=3))
    for df in (old, renamed):
        pd.testing.assert_frame_equal(df.drop(columns="seconds"), new.drop(columns="seconds"))
    default = _quiet(lambda: CV.pruning_curve(model, (x, y), ks=[0, 30, 70], methods=["weight", "unit",
                                              "random_unit"], seed=3))  # params traced on the data
    pd.testing.assert_frame_equal(default.drop(columns="seconds"), new.drop(columns="seconds"))
    with pytest.raises(TypeError, match="by position"):
        CV.pruning_curve(model, split, [0, 30])  # the new order takes ks by keyword only
    with pytest.raises(TypeError, match="split= and data="):
        CV.pruning_curve(model, split=split, data=split, ks=[0])


def test_older_positional_options_warn_and_give_the_same_results():
    model, x, y = tiny()
    pairs = [  # (older call, new call)
        (lambda: U.random_ablation(model, x, y, [0.2], 6, 1),
         lambda: U.random_ablation(model, x, y, ratios=[0.2], n_subsets=6, seed=1)),
        (lambda: U.magnitude_ablation(model, x, y, 2, [0.5], 3, 1),
         lambda: U.magnitude_ablation(model, (x, y), n_bands=2, ratios=[0.5], n_subsets=3, seed=1)),
        (lambda: U.evaluate_subsets(model, x, y, torch.ones(2, 16 * 8 + 12 * 16, dtype=torch.bool)),
         lambda: U.evaluate_subsets(model, (x, y), subsets=torch.ones(2, 16 * 8 + 12 * 16, dtype=torch.bool))),
        (lambda: U.utility(model, x, torch.ones(16 * 8 + 12 * 16, dtype=torch.bool)),
         lambda: U.utility(model, x, subset=torch.ones(16 * 8 + 12 * 16, dtype=torch.bool))),
        (lambda: D.effective_density(model, (x, y), 0.1).density,
         lambda: D.effective_density(model, (x, y), tolerance=0.1).density),
        (lambda: D.pruned_accuracy(model, (x, y), [0.3, 0.6]),
         lambda: D.pruned_accuracy(model, (x, y), fractions=[0.3, 0.6])),
        (lambda: saliency_scores(model, x, y, "first_order"),
         lambda: saliency_scores(model, (x, y), estimator="first_order")),
    ]
    for older, new in pairs:
        got, want = _older(older), _quiet(new)
        if isinstance(want, pd.DataFrame):
            pd.testing.assert_frame_equal(got, want)
        elif isinstance(want, list) and want and isinstance(want[0], torch.Tensor):
            assert all(torch.equal(a, b) for a, b in zip(got, want))
        else:
            assert got == want
    _quiet(lambda: U.random_ablation(model, x, y, ratios=[0.2], n_subsets=2))  # inputs with targets: no warning
    with pytest.raises(TypeError, match="multiple values for argument 'ratios'"):
        U.random_ablation(model, x, y, [0.2], ratios=[0.3])
    with pytest.raises(TypeError, match="at most 3 older positional"):
        D.effective_density(model, (x, y), 0.1, False, "global", True)


def test_the_older_surface_calls_warn_and_give_the_same_tables():
    model, x, y = tiny()
    data = {"test": Split(x, y)}
    w0 = SU.flatten(model)
    w1, w2 = w0.clone(), w0.clone()
    w1[:40] += 0.3
    w2[40:90] -= 0.3
    plane = SU.Plane.through(w0, w1, w2)
    grid, anchors = _quiet(lambda: SU.plane_surface(model, data, plane=plane, n=2))
    old_grid, old_anchors = _older(lambda: SU.plane_surface(model, plane, data, n=2))
    pd.testing.assert_frame_equal(old_grid, grid)
    pd.testing.assert_frame_equal(old_anchors, anchors)
    path = _quiet(lambda: SU.linear_path(model, (x, y), w_a=w0, w_b=w1, n=3))
    pd.testing.assert_frame_equal(_older(lambda: SU.linear_path(model, w0, w1, (x, y), n=3)), path)
    pd.testing.assert_frame_equal(_older(lambda: SU.linear_path(model, w_a=w0, w_b=w1, splits=(x, y), n=3)), path)
    point = _quiet(lambda: SU.evaluate_point(model, data, vec=w2))
    assert _older(lambda: SU.evaluate_point(model, w2, data)) == point
    networks = {}
    for name, (a, b) in plane.coords.items():  # the three networks themselves, as the plane reconstructs them
        networks[name] = copy.deepcopy(model)
        SU.write_vector_(networks[name], plane.point(a, b))
    assert SU.check_anchors(anchors, networks, data) == len(anchors)  # data: the same word, the same position


def test_the_older_inference_speedups_call_warns_and_measures_the_same_forms():
    model, x, _ = tiny()
    params = prunable_parameters(model, example=x)
    kw = dict(ks=[50], forms=("masked_dense", "csr"), repeat=1, warmup=0)
    new = _quiet(lambda: CV.inference_speedups(model, x, params=params, **kw))
    old = _older(lambda: CV.inference_speedups(model, params, x, **kw))
    timing = ["seconds", "dense_seconds", "speedup"]
    pd.testing.assert_frame_equal(old.drop(columns=timing), new.drop(columns=timing))
