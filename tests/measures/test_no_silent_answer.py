"""The silent answers found on readers' models, one test each (each failed before its fix), and property-based checks
(hypothesis) of masking on random small MLPs and CNNs, plain, pruned with torch.nn.utils.prune, or parametrized.

The references are written here: the mask applied by hand to a plain copy, accuracy and KL by hand.
"""

from __future__ import annotations

import copy
import functools

import pytest
import torch
import torch.nn.functional as F
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import parametrizations
from torch.nn.utils import prune as torch_prune

from prunekit.core.data import load_dataset
from prunekit.core.prunable import prunable_parameters, weight_coverage
from prunekit.measures.curves import pruning_curve
from prunekit.measures.density import effective_density, hoyer_by_layer
from prunekit.measures.surface import linear_path, flatten
from prunekit.measures.utility import evaluate_subsets, random_ablation, utility
from prunekit.pruning.masks import UnitMasks, masks_applied
from prunekit.pruning.retrain import fine_tune, magnitude_masks


class MLP(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.fc1, self.fc2, self.head = nn.Linear(64, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, 10)

    def forward(self, x):
        return self.head(F.relu(self.fc2(F.relu(self.fc1(x.flatten(1))))))


def fit(model, x, y, steps=80, lr=0.02):
    torch.manual_seed(0)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    for step in range(steps):
        i = torch.arange(step * 64, step * 64 + 64) % len(x)
        opt.zero_grad()
        F.cross_entropy(model(x[i]), y[i]).backward()
        opt.step()
    return model.eval()


@torch.no_grad()
def accuracy(model, x, y) -> float:
    return float((model.eval()(x).argmax(1) == y).double().mean())


@pytest.fixture(scope="module")
def digits():
    ds = load_dataset("digits")
    return (ds.train.x[:640], ds.train.y[:640]), (ds.test.x[:200], ds.test.y[:200])


@pytest.fixture(scope="module")
def mlp(digits):
    torch.manual_seed(0)
    return fit(MLP(), *digits[0])


# ------------------------------------------------------------------------------ 1. weight parametrizations
def weight_normed(mlp):
    model = copy.deepcopy(mlp)
    model.fc1 = parametrizations.weight_norm(model.fc1)
    model.fc2 = parametrizations.weight_norm(model.fc2)
    return model


def test_weight_norm_default_set_is_stable_and_its_effective_weight_is_pruned(mlp, digits):
    """Before: masks went into the temporary tensor ``module.weight`` returns (a flat curve at the dense accuracy up
    to k = 99) and the default set, deduplicated by the id() of those temporaries, listed one or two layers."""
    model = weight_normed(mlp)
    x, y = digits[1]
    for _ in range(5):
        assert [m for m, _ in prunable_parameters(model, example=x)] == [model.fc1, model.fc2]
    params = prunable_parameters(model, example=x)
    df = pruning_curve(model, (x, y), params=params, ks=[90, 99], methods=["weight"], scopes=["global"])
    plain = copy.deepcopy(mlp)  # weight_norm computes the same weights: prune them by hand
    weights = [plain.fc1.weight, plain.fc2.weight]
    order = torch.cat([w.detach().abs().reshape(-1) for w in weights]).argsort(stable=True)
    for row in df.itertuples():
        ref = copy.deepcopy(plain)
        flat = torch.ones(order.numel(), dtype=torch.bool)
        flat[order[:round(row.k * order.numel() / 100)]] = False
        with torch.no_grad():
            ref.fc1.weight.mul_(flat[:64 * 32].view(32, 64))
            ref.fc2.weight.mul_(flat[64 * 32:].view(32, 32))
        assert row.accuracy == pytest.approx(accuracy(ref, x, y), abs=1e-9)
    assert df.accuracy.iloc[-1] < 0.5 < accuracy(model, x, y)  # 99% pruned: it is really pruned


def test_weight_norm_at_fine_tuning_is_refused_with_the_way_out(mlp, digits):
    model = weight_normed(mlp)
    masks = magnitude_masks(model, 50, example=digits[1][0])
    with pytest.raises(ValueError, match="remove_parametrizations") as err:
        fine_tune(model, masks, digits[0], lrs=[0.01])
    assert "parametrization" in str(err.value)


# ------------------------------------------------------------------------------------------- 2. tied weights
class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.a, self.b, self.head = nn.Linear(64, 24), nn.Linear(24, 24), nn.Linear(24, 24), nn.Linear(24, 10)
        self.b.weight = self.a.weight

    def forward(self, x):
        return self.head(F.relu(self.b(F.relu(self.a(F.relu(self.fc1(x.flatten(1))))))))


def test_fine_tune_holds_a_tied_mask_in_every_module_that_uses_it(digits):
    """Before: the mask was held on the first module only; the second trained the raw Parameter (3,209 of 3,277
    masked entries non-zero afterwards)."""
    torch.manual_seed(0)
    model = fit(Tied(), *digits[0], steps=30)
    params = [(model.a, "weight")]
    keep = [torch.rand(24, 24) > 0.5]
    out, _ = fine_tune(model, keep, digits[0], params=params, lrs=[0.05, 0.05], batch_size=64)
    assert out.b.weight is out.a.weight  # still tied
    assert float(out.a.weight.detach()[~keep[0]].abs().max()) == 0.0
    assert bool((out.a.weight.detach()[keep[0]] != model.a.weight.detach()[keep[0]]).any())  # trained
    with pytest.raises(ValueError, match="tied"):  # one tensor listed through both modules
        with masks_applied([(model.a, "weight"), (model.b, "weight")], [torch.ones(24, 24, dtype=torch.bool)] * 2):
            pass


# ----------------------------------------------------------- 3. a model already pruned, attention included
class Attention(nn.Module):
    def __init__(self, d=16):
        super().__init__()
        self.embed = nn.Linear(8, d)
        self.attn = nn.MultiheadAttention(d, 2, batch_first=True)
        self.head = nn.Linear(d, 10)

    def forward(self, x):
        h = self.embed(x.reshape(len(x), 8, 8))
        return self.head(self.attn(h, h, h, need_weights=False)[0].mean(1))


def folded(model):
    """The same weights as plain Parameters: torch.nn.utils.prune.remove on a copy."""
    with torch.no_grad():
        for m in model.modules():
            for hook in m._forward_pre_hooks.values():
                if isinstance(hook, torch_prune.BasePruningMethod):
                    hook(m, None)
    out = copy.deepcopy(model)
    for m in out.modules():
        for hook in list(m._forward_pre_hooks.values()):
            if isinstance(hook, torch_prune.BasePruningMethod):
                torch_prune.remove(m, hook._tensor_name)
    return out


def test_a_pre_pruned_attention_is_measured_on_the_weights_it_uses(digits):
    """Before: density, curves and utility wrote into out_proj.weight_orig while MultiheadAttention read the stale
    out_proj.weight (zeroing every out_proj weight left the accuracy where it was); utility() and evaluate_subsets
    disagreed; fine_tune failed with "Missing key(s) ... weight_orig"."""
    torch.manual_seed(0)
    model = fit(Attention(), *digits[0], steps=100)
    torch_prune.l1_unstructured(model.attn.out_proj, "weight", amount=0.3)
    torch_prune.l1_unstructured(model.embed, "weight", amount=0.3)
    plain = folded(model)
    x, y = digits[1]
    out_proj = [(model.attn.out_proj, "weight")]
    everything = torch.ones(1, 16 * 16, dtype=torch.bool)  # ablate all of out_proj
    got = evaluate_subsets(model, (x, y), subsets=everything, params=out_proj)
    want = evaluate_subsets(plain, (x, y), subsets=everything, params=[(plain.attn.out_proj, "weight")])
    assert float(got.accuracy[0]) == pytest.approx(float(want.accuracy[0]), abs=1e-6)
    assert float(want.accuracy[0]) < accuracy(plain, x, y) - 0.2
    assert utility(model, x, subset=everything[0], params=out_proj) == pytest.approx(float(got.utility[0]), rel=1e-4)
    a = effective_density(model, (x, y), step=0.05, resolution=0.01)
    b = effective_density(plain, (x, y), step=0.05, resolution=0.01)
    assert (a.density, a.core_accuracy) == (b.density, b.core_accuracy)
    masks = magnitude_masks(model, 50, example=x)
    tuned, _ = fine_tune(model, masks, digits[0], lrs=[0.01], batch_size=64)
    assert not any(n.endswith("_orig") for n, _ in tuned.named_parameters())  # plain, every mask made permanent
    for name, keep in masks.items():
        assert float(tuned.get_parameter(name).detach()[~keep].abs().max()) == 0.0


# --------------------------------------------------------------------------------------------------- 4. labels
MEASURES = {
    "effective_density": lambda m, x, y: effective_density(m, (x, y), step=0.1, resolution=0.05),
    "pruning_curve": lambda m, x, y: pruning_curve(m, (x, y), params=prunable_parameters(m, example=x), ks=[50],
                                                   methods=["weight"], scopes=["global"]),
    "random_ablation": lambda m, x, y: random_ablation(m, (x, y), ratios=[0.2], n_subsets=2),
    "evaluate_subsets": lambda m, x, y: evaluate_subsets(m, (x, y), subsets=torch.ones(1, 64 * 32 + 32 * 32,
                                                                                        dtype=torch.bool)),
    "linear_path": lambda m, x, y: linear_path(m, (x, y), w_a=flatten(m), w_b=flatten(m) * 0.5, n=2),
    "fine_tune": lambda m, x, y: fine_tune(m, magnitude_masks(m, 50, example=x), (x, y), lrs=[0.01]),
}


def results(out):
    if isinstance(out, tuple):  # fine_tune: the retrained model's weights
        return [p.detach() for p in out[0].parameters()]
    if hasattr(out, "to_dict") and not hasattr(out, "columns"):
        out = out.to_dict()
        out.pop("seconds")
        return out
    return out.drop(columns=[c for c in ("seconds", "form") if c in out.columns]).to_dict("list")


@pytest.mark.parametrize("measure", MEASURES)
def test_labels_of_any_integer_dtype_are_class_indices(measure, mlp, digits):
    """Before: int32 labels gave density 0.0 and dense accuracy 0.0 (with a "train it first" warning), ablation
    accuracies NaN."""
    x, y = digits[1]
    want = MEASURES[measure](mlp, x, y)
    for dtype in (torch.int32, torch.int16, torch.uint8):
        got = MEASURES[measure](mlp, x, y.to(dtype))
        if isinstance(got, tuple):
            assert all(torch.equal(a, b) for a, b in zip(results(got), results(want)))
        else:
            assert results(got) == results(want)


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("labels, words", [("float", "not class indices"), ("ten", "outside \\[0, 10\\)"),
                                           ("minus_one", "outside \\[0, 10\\)")])
def test_float_and_out_of_range_labels_are_refused_before_compute(measure, labels, words, mlp, digits):
    """Before: float labels gave density 0.0; labels 10 or -1 were counted wrong by effective_density (0.853 instead
    of 0.949) and crashed curves and ablations after their compute."""
    x, y = digits[1]
    bad = {"float": y.float(), "ten": torch.where(y == 3, 10, y), "minus_one": torch.where(y == 3, -1, y)}[labels]
    batches = []
    hook = mlp.register_forward_pre_hook(lambda _m, args: batches.append(len(args[0])))
    try:
        with pytest.raises(ValueError, match=words):
            MEASURES[measure](mlp, x, bad)
    finally:
        hook.remove()
    assert batches and max(batches) <= 2  # only the probes of two samples (the layer into the logits, the classes)


# ------------------------------------------------------------------------------------------ 5. (notebook 07)
# fit_or_load's key and a plain attribute: tests/studies/test_your_model.py


# -------------------------------------------------------------------------------------- 6. frozen parameters
def test_frozen_parameters_are_counted_one_way(mlp, digits):
    """Before: EffectiveDensity.total_params counted trainable parameters, weight_coverage all of them (notebook 07's
    share_of_model came out 2.55)."""
    model = copy.deepcopy(mlp)
    model.fc1.requires_grad_(False)
    model.fc2.requires_grad_(False)
    res = effective_density(model, digits[1], step=0.1, resolution=0.05)
    cover = weight_coverage(model, prunable_parameters(model, example=digits[1][0]))
    total = sum(p.numel() for p in mlp.parameters())
    assert res.total_params == cover["model_parameters"] == total
    assert res.params / res.total_params == cover["share"] <= 1


# -------------------------------------------------------------------------- 7. unit pruning: biases go with it
def test_unit_pruning_of_attention_in_proj_rows_zeroes_their_bias_and_refuses_recurrent_weights():
    """Before: in_proj_bias stayed non-zero (48 of 48) and GRU units kept bias_ih."""
    torch.manual_seed(0)
    model = Attention()
    with torch.no_grad():
        model.attn.in_proj_bias.uniform_(0.5, 1.0)
    params = [(model.attn, "in_proj_weight")]
    keep = torch.arange(48) % 2 == 0
    with masks_applied(params, UnitMasks.from_keeps(params, [keep]), model=model):
        assert float(model.attn.in_proj_bias[~keep].abs().max()) == 0.0
        assert float(model.attn.in_proj_weight[~keep].abs().max()) == 0.0
        assert bool((model.attn.in_proj_bias[keep] != 0).all())
    assert bool((model.attn.in_proj_bias != 0).all())  # restored
    gru = nn.GRU(8, 16)
    with pytest.raises(ValueError, match="unit pruning of recurrent weights") as err:
        UnitMasks.from_keeps([(gru, "weight_ih_l0")], [torch.ones(48, dtype=torch.bool)])
    assert "weight pruning" in str(err.value)


# ----------------------------------------------------------------------------- 8. params of another model
@pytest.mark.parametrize("measure", ["effective_density", "pruning_curve", "random_ablation", "utility", "hoyer",
                                     "weight_coverage", "fine_tune"])
def test_params_of_another_model_are_refused(measure, mlp, digits):
    """Before: effective_density answered 0.0000 instead of 0.2130; curves and ablations raised KeyError: <id>."""
    x, y = digits[1]
    other = copy.deepcopy(mlp)
    params = prunable_parameters(mlp, example=x)  # computed on the original
    calls = {
        "effective_density": lambda: effective_density(other, (x, y), params=params),
        "pruning_curve": lambda: pruning_curve(other, (x, y), params=params, ks=[50]),
        "random_ablation": lambda: random_ablation(other, (x, y), ratios=[0.1], n_subsets=2, params=params),
        "utility": lambda: utility(other, x, subset=torch.ones(64 * 32 + 32 * 32, dtype=torch.bool), params=params),
        "hoyer": lambda: hoyer_by_layer(other, params=params),
        "weight_coverage": lambda: weight_coverage(other, params),
        "fine_tune": lambda: fine_tune(other, [torch.ones(32, 64, dtype=torch.bool),
                                               torch.ones(32, 32, dtype=torch.bool)], (x, y), params=params, lrs=[0.01]),
    }
    with pytest.raises(ValueError, match="not a (module|part) of"):
        calls[measure]()


# --------------------------------------------------------------------------------------------- 9. NaN inputs
@pytest.mark.parametrize("measure", ["effective_density", "pruning_curve", "random_ablation", "utility"])
def test_nan_inputs_are_refused_naming_the_samples(measure, mlp, digits):
    """Before: NaN inputs gave density 0.0 and utility NaN with only the at-chance warning."""
    x, y = digits[1]
    x = x.clone()
    x[5, 0, 2, 3] = float("nan")
    if measure == "utility":
        call = lambda: utility(mlp, x, subset=torch.ones(64 * 32 + 32 * 32, dtype=torch.bool))  # noqa: E731
    else:
        call = functools.partial(MEASURES[measure], mlp, x, y)
    with pytest.raises(ValueError, match="NaN in 1 of 200 samples"):
        call()


# ------------------------------------------------------------------- refused where it could work, or confusingly
def test_squeezenet_head_is_found_through_relu_and_pooling():
    torch.manual_seed(0)
    model = torchvision.models.squeezenet1_1(num_classes=10).eval()
    params = prunable_parameters(model, example=torch.randn(2, 3, 64, 64))
    assert model.classifier[1] not in [m for m, _ in params]
    assert len(params) == sum(1 for m in model.modules() if isinstance(m, nn.Conv2d)) - 1


def test_an_empty_default_set_names_the_recurrent_weights_to_choose():
    class GRUNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn, self.head = nn.GRU(8, 16, batch_first=True), nn.Linear(16, 10)

        def forward(self, x):
            return self.head(self.rnn(x.reshape(len(x), 8, 8))[0][:, -1])

    with pytest.raises(ValueError, match="recurrent weights \\(GRU\\) are not a default kind") as err:
        prunable_parameters(GRUNet(), example=torch.randn(2, 64))
    assert "params=[(model.rnn, 'weight_ih_l0'), (model.rnn, 'weight_hh_l0')]" in str(err.value)


# ------------------------------------------------------------------ properties: masking on random small models
def small_model(kind: str, widths, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    if kind == "cnn":
        c1, c2 = widths
        return nn.Sequential(nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(),
                             nn.Flatten(), nn.Linear(c2 * 64, 10))
    layers, width = [nn.Flatten()], 64
    for w in widths:
        layers += [nn.Linear(width, w), nn.Tanh()]
        width = w
    return nn.Sequential(*layers, nn.Linear(width, 10))


def held(model: nn.Module, how: str) -> nn.Module:
    """The same function with its weight layers plain, pruned with torch.nn.utils.prune (a random mask, hooks kept)
    or weight-normed."""
    model = copy.deepcopy(model)
    for i, m in enumerate(model):
        if isinstance(m, (nn.Linear, nn.Conv2d)) and how == "pruned":
            torch_prune.random_unstructured(m, "weight", amount=0.2)
        elif isinstance(m, (nn.Linear, nn.Conv2d)) and how == "weight_norm":
            model[i] = parametrizations.weight_norm(m)
    return model.eval()


@settings(max_examples=12, deadline=None, derandomize=True)
@given(kind=st.sampled_from(["mlp", "cnn"]), widths=st.lists(st.integers(1, 6), min_size=2, max_size=2),
       how=st.sampled_from(["plain", "pruned", "weight_norm"]), share=st.floats(0.0, 1.0), seed=st.integers(0, 99))
def test_masking_any_small_model_equals_masking_its_plain_copy_by_hand(kind, widths, how, share, seed):
    model = held(small_model(kind, widths, seed), how)
    x = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
    params = prunable_parameters(model, include_output=True)
    plain = folded(model)  # prune hooks made permanent
    for m in list(plain):
        if hasattr(m, "parametrizations"):  # weight_norm: its weight computed, made plain (on its own class)
            cls = type(m)
            m.__class__ = type(cls.__name__, cls.__bases__, dict(cls.__dict__))
            torch.nn.utils.parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
    g = torch.Generator().manual_seed(seed + 1)
    keeps = [torch.rand(m.weight.shape, generator=g) >= share for m in plain if hasattr(m, "weight")]
    with torch.no_grad():
        for m, keep in zip([m for m in plain if hasattr(m, "weight")], keeps):
            m.weight[~keep] = 0
        want = plain(x)
        before = model(x)
        with masks_applied(params, keeps, model=model):
            got = model(x)
        after = model(x)
    assert torch.equal(got, want)
    assert torch.equal(after, before)  # restored bitwise
    subset = ~torch.cat([k.reshape(-1) for k in keeps])
    if bool(subset.any()):
        lp, lq = before.double().log_softmax(1), want.double().log_softmax(1)
        kl = float((lp.exp() * (lp - lq)).sum(1).clamp_min(0).mean())
        assert utility(model, x, subset=subset, params=params) == pytest.approx(kl, rel=1e-5, abs=1e-7)
