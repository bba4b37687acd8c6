"""The measures on readers' own models (not prunekit's classes): the default weight set and its tracing of the layer
into the logits, every data form, prune hooks respected, a model at chance warned about, and what each result covered.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
import torchvision
from sklearn.datasets import load_digits
from torch import nn
from torch.nn.utils import prune as torch_prune
from torch.utils.data import DataLoader, TensorDataset

from prunekit.core.data import Split, as_split, load_dataset
from prunekit.core.prunable import output_layer, parameter_names, prunable_parameters, weight_coverage
from prunekit.measures.density import (chance_accuracy, effective_density, hoyer_by_layer, model_hoyer_sparsity,
                                       pruned_accuracy)
from prunekit.measures.utility import evaluate_subsets, random_ablation, random_subsets


# ------------------------------------------------------------------------------------------ readers' models
class BNMLP(nn.Module):
    """A custom MLP with named submodules and BatchNorm1d; its head is called ``head``, not ``output``."""

    def __init__(self, n_in=64, hidden=32, n_out=10):
        super().__init__()
        self.fc1, self.bn1 = nn.Linear(n_in, hidden), nn.BatchNorm1d(hidden)
        self.fc2, self.bn2 = nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden)
        self.head = nn.Linear(hidden, n_out)

    def forward(self, x):
        x = x.flatten(1)
        x = F.relu(self.bn1(self.fc1(x)))
        return self.head(F.relu(self.bn2(self.fc2(x))))


class TinyTransformer(nn.Module):
    """nn.Embedding -> nn.TransformerEncoderLayer -> nn.LayerNorm -> mean pool -> nn.Linear (tokens: pixel levels)."""

    def __init__(self, vocab=17, d=16, n_out=10):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.position = nn.Parameter(0.1 * torch.randn(64, d))  # learned positions (not a prunable kind)
        self.encoder = nn.TransformerEncoderLayer(d, nhead=2, dim_feedforward=32, dropout=0.0, batch_first=True)
        self.norm = nn.LayerNorm(d)
        self.classify = nn.Linear(d, n_out)

    def forward(self, tokens):
        return self.classify(self.norm(self.encoder(self.embed(tokens) + self.position)).mean(1))


class Conv1dNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv1d(1, 8, 5, padding=2), nn.Conv1d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 64, 10)

    def forward(self, x):
        x = x.flatten(1).unsqueeze(1)  # a 64-step signal
        return self.fc(F.relu(self.c2(F.relu(self.c1(x)))).flatten(1))


class DictOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.body, self.cls = nn.Linear(64, 32), nn.Linear(32, 10)

    def forward(self, x):
        return {"logits": self.cls(F.relu(self.body(x.flatten(1)))), "aux": x.sum()}


class LogSoftmaxHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(64, 16), nn.Linear(16, 10)

    def forward(self, x):
        return F.log_softmax(self.b(F.relu(self.a(x.flatten(1)))), -1)


@pytest.fixture(scope="module")
def digits():
    ds = load_dataset("digits")
    return ds


@pytest.fixture(scope="module")
def tokens():
    d = load_digits()
    x = torch.as_tensor(d.data, dtype=torch.long)  # 64 tokens per image: the pixel levels 0..16
    y = torch.as_tensor(d.target, dtype=torch.long)
    return (x[:1400], y[:1400]), (x[1400:], y[1400:])


def fit(model: nn.Module, x, y, epochs: int = 30, lr: float = 1e-2, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for i in torch.randperm(len(x)).split(128):
            opt.zero_grad()
            F.cross_entropy(model(x[i]), y[i]).backward()
            opt.step()
    return model.eval()


def accuracy(model, x, y, output_fn=None) -> float:
    with torch.no_grad():
        out = model(x)
    return float(((output_fn(out) if output_fn else out).argmax(1) == y).float().mean())


# -------------------------------------------------------------------------------------- the default weight set
def test_resnet18_weight_set_is_every_conv_but_not_the_traced_fc():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    x = torch.randn(2, 3, 32, 32)
    names = parameter_names(model, prunable_parameters(model, example=x))
    convs = [n for n, p in model.named_parameters() if p.dim() == 4]  # independent: every 4-D tensor is a kernel
    assert names == convs and len(convs) == 20
    assert output_layer(model, x) is model.fc
    with_fc = parameter_names(model, prunable_parameters(model, include_output=True))  # no tracing needed
    assert with_fc == convs + ["fc.weight"]
    cover = weight_coverage(model, prunable_parameters(model, example=x))
    assert cover["weights"] == sum(p.numel() for n, p in model.named_parameters() if p.dim() == 4)
    assert cover["model_parameters"] == 11_181_642  # torchvision's resnet18 with 10 classes
    assert cover["tensors"] == convs


def test_transformer_weight_set_has_embedding_and_attention_but_not_the_head():
    model = TinyTransformer().eval()
    x = torch.randint(0, 17, (3, 64))
    names = parameter_names(model, prunable_parameters(model, example=x))
    assert names == ["embed.weight", "encoder.self_attn.in_proj_weight", "encoder.self_attn.out_proj.weight",
                     "encoder.linear1.weight", "encoder.linear2.weight"]
    assert output_layer(model, x) is model.classify


def test_a_plain_sequential_with_a_square_head_is_traced_not_modified():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.ReLU(), nn.Linear(10, 10)).eval()
    x = torch.randn(5, 1, 8, 8)
    before = model(x)
    params = prunable_parameters(model, example=x)
    assert [m for m, _ in params] == [model[1]] and len(model) == 4 and not hasattr(model, "output")
    assert torch.equal(model(x), before)  # nothing registered, nothing run twice


def test_output_fn_for_a_dict_output_and_refusals_that_name_the_way_out():
    x = torch.randn(4, 64)
    model = DictOut()
    with pytest.raises(ValueError, match="output_fn"):
        prunable_parameters(model, example=x)
    params = prunable_parameters(model, example=x, output_fn=lambda out: out["logits"])
    assert [m for m, _ in params] == [model.body]
    with pytest.raises(ValueError, match="params="):  # the head is followed by log_softmax: cannot be told apart
        prunable_parameters(LogSoftmaxHead(), example=x)
    with pytest.raises(ValueError, match="example inputs"):  # nothing to trace
        prunable_parameters(BNMLP())


# ------------------------------------------------------------------------------------------------ data forms
def test_every_data_form_gives_the_same_split(digits):
    x, y = digits.test.x[:300], digits.test.y[:300]
    loader = DataLoader(TensorDataset(x, y), batch_size=64)
    for form in ((x, y), Split(x, y), loader, list(loader)):
        s = as_split(form)
        assert torch.equal(s.x, x) and torch.equal(s.y, y)
    assert torch.equal(as_split(digits).x, digits.test.x)
    assert len(as_split(loader, max_samples=100)) == 100
    for bad in (x, {"x": x, "y": y}, [], (x, y[:10]), [{"x": x}], "data"):
        with pytest.raises(ValueError, match="data"):
            as_split(bad)


# ----------------------------------------------------------------------------------- effective density, Hoyer
def test_effective_density_on_a_bn_mlp_agrees_with_torch_prune_and_every_data_form(digits):
    model = fit(BNMLP(), digits.train.x, digits.train.y)
    x, y = digits.test.x, digits.test.y
    res = effective_density(model, (x, y))
    again = effective_density(model, DataLoader(TensorDataset(x, y), batch_size=100))
    assert res.density == again.density and res.pruned == again.pruned
    assert res.params == 64 * 32 + 32 * 32  # fc1 and fc2; the traced head is left out
    assert res.total_params == sum(p.numel() for p in model.parameters())
    # independent: torch.nn.utils.prune's global L1 pruning of the same count, on a copy
    for count, passes in ((res.pruned, True), (res.failed_at, False)):
        ref = copy.deepcopy(model)
        torch_prune.global_unstructured([(ref.fc1, "weight"), (ref.fc2, "weight")],
                                        pruning_method=torch_prune.L1Unstructured, amount=count)
        acc = accuracy(ref, x, y)
        assert (acc >= res.threshold) == passes
        assert pruned_accuracy(model, (x, y), fractions=[count / res.params])[0] == pytest.approx(acc)


def test_effective_density_and_hoyer_on_resnet18_conv1d_and_a_transformer(digits, tokens):
    torch.manual_seed(0)
    res18 = torchvision.models.resnet18(num_classes=10)
    x3 = F.interpolate(digits.train.x, size=16).expand(-1, 3, -1, -1)[:500]  # 16x16: reaches 1x1 in layer4
    fit(res18, x3, digits.train.y[:500], epochs=2, lr=1e-3)
    xt = F.interpolate(digits.test.x, size=16).expand(-1, 3, -1, -1)[:200]
    r = effective_density(res18, (xt, digits.test.y[:200]), step=0.05)
    assert r.params == sum(p.numel() for p in res18.parameters() if p.dim() == 4) and 0 <= r.density <= 1
    assert r.dense_accuracy > 0.3 and r.core_accuracy >= r.threshold
    assert pruned_accuracy(res18, (xt, digits.test.y[:200]), fractions=[r.pruned / r.params])[0] == r.core_accuracy
    assert list(hoyer_by_layer(res18, (xt, digits.test.y[:200]))) == \
        [n for n, p in res18.named_parameters() if p.dim() == 4]

    conv = fit(Conv1dNet(), digits.train.x, digits.train.y, epochs=10)
    r = effective_density(conv, digits)
    assert r.params == 1 * 8 * 5 + 8 * 8 * 3 and r.dense_accuracy > 0.8

    (xtr, ytr), (xte, yte) = tokens
    tr = fit(TinyTransformer(), xtr, ytr, epochs=15)
    r = effective_density(tr, (xte, yte))
    assert r.dense_accuracy > 0.5 and 0 < r.density <= 1
    n = sum(w.numel() for w in (tr.embed.weight, tr.encoder.self_attn.in_proj_weight,
                                tr.encoder.self_attn.out_proj.weight, tr.encoder.linear1.weight,
                                tr.encoder.linear2.weight))
    assert r.params == n
    assert 0 <= model_hoyer_sparsity(tr, (xte, yte)) <= 1


def test_a_model_at_chance_gets_a_warning(digits):
    torch.manual_seed(0)
    model = BNMLP().eval()
    with torch.no_grad():  # a constant answer: exactly the chance level of the most frequent label
        model.head.weight.zero_()
        model.head.bias.copy_(torch.arange(10.0))
    with pytest.warns(RuntimeWarning, match="at chance"):
        effective_density(model, digits)
    x, y = digits.test.x[:200], digits.test.y[:200]
    with pytest.warns(RuntimeWarning, match="at chance"):
        random_ablation(model, x, y, ratios=[0.1], n_subsets=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        random_ablation(model, x, y, ratios=[0.1], n_subsets=2, warn_at_chance=False)  # measured on purpose
    trained = fit(BNMLP(), digits.train.x, digits.train.y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        effective_density(trained, digits)
    y = torch.tensor([0, 1, 1, 2])
    assert chance_accuracy(y) == 0.5


# ------------------------------------------------------------------------------------- ablation under hooks
@pytest.mark.parametrize("method", ["loop", "batched"])
def test_ablation_respects_torch_prune_hooks(digits, method):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 10))
    fit(model, digits.train.x, digits.train.y)
    hooked, baked = copy.deepcopy(model), copy.deepcopy(model)
    for i in (1, 3):
        torch_prune.l1_unstructured(hooked[i], "weight", amount=0.5)
        torch_prune.custom_from_mask(baked[i], "weight", hooked[i].weight_mask)
        torch_prune.remove(baked[i], "weight")  # the same effective weights, no hooks
    orig = hooked[1].weight_orig.detach().clone()
    x, y = digits.test.x[:200], digits.test.y[:200]
    subsets = random_subsets(64 * 32 + 32 * 32, 300, 8, torch.Generator().manual_seed(0))
    params_h = [(hooked[1], "weight"), (hooked[3], "weight")]
    params_b = [(baked[1], "weight"), (baked[3], "weight")]
    got = evaluate_subsets(hooked, x, y, subsets=subsets, params=params_h, method=method)
    want = evaluate_subsets(baked, x, y, subsets=subsets, params=params_b, method="loop")
    assert (want.utility > 1e-4).all()
    assert got.utility.to_numpy() == pytest.approx(want.utility.to_numpy(), rel=1e-4, abs=1e-6)
    assert torch.equal(hooked[1].weight_orig, orig)  # left unchanged


def test_random_ablation_says_what_it_covered(digits):
    model = fit(BNMLP(), digits.train.x, digits.train.y)
    df = random_ablation(model, digits.test.x[:100], digits.test.y[:100], ratios=[0.1], n_subsets=4)
    cover = df.attrs["coverage"]
    assert cover["tensors"] == ["fc1.weight", "fc2.weight"] and cover["weights"] == 64 * 32 + 32 * 32
    assert cover["model_parameters"] == sum(p.numel() for p in model.parameters())


def test_masks_held_on_a_transformer_through_training(tokens):
    """MultiheadAttention never calls out_proj.forward: without a refresh, torch.nn.utils.prune's hook leaves a stale
    weight and the second backward pass fails ("Trying to backward through the graph a second time")."""
    from prunekit.pruning.masks import to_torch_prune, weight_of

    (x, y), _ = tokens
    model = TinyTransformer()
    params = prunable_parameters(model, example=x[:2])
    keeps = [torch.rand_like(weight_of(m, a)) > 0.5 for m, a in params]
    to_torch_prune(params, keeps, model=model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for i in range(3):
        opt.zero_grad()
        F.cross_entropy(model(x[i * 32:(i + 1) * 32]), y[i * 32:(i + 1) * 32]).backward()
        opt.step()
    model(x[:4])
    for (m, a), keep in zip(params, keeps):
        assert float(getattr(m, a).detach()[~keep].abs().max()) == 0.0  # the weights the forward used: masked
    with pytest.raises(ValueError, match="model="):
        to_torch_prune([(TinyTransformer().encoder.self_attn.out_proj, "weight")],
                       [torch.ones(16, 16, dtype=torch.bool)])


def test_pruning_curve_and_the_surface_take_every_data_form(digits):
    from prunekit.measures.curves import pruning_curve
    from prunekit.measures.surface import evaluate_point, flatten

    model = fit(BNMLP(), digits.train.x, digits.train.y, epochs=5)
    x, y = digits.test.x, digits.test.y
    params = prunable_parameters(model, example=x)
    curves = [pruning_curve(model, data, params=params, ks=[50.0], methods=["weight"], scopes=["global"])
              for data in ((x, y), Split(x, y), DataLoader(TensorDataset(x, y), batch_size=50))]
    for other in curves[1:]:
        assert other.accuracy.tolist() == curves[0].accuracy.tolist()
    vec = flatten(model)
    assert evaluate_point(model, (x, y), vec=vec) == evaluate_point(model, {"test": Split(x, y)}, vec=vec)
    with pytest.raises(ValueError, match="split"):
        pruning_curve(model, x, params=params, ks=[50.0])


# ------------------------------------------------------------------ cases found in review: each failed before
class CustomHooked(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1, self.l2, self.head = nn.Linear(64, 32), nn.Linear(32, 32), nn.Linear(32, 10)

    def forward(self, x):
        return self.head(torch.relu(self.l2(torch.relu(self.l1(x.flatten(1))))))


def test_ablation_on_a_custom_model_with_prune_hooks_leaves_it_usable(digits):
    model = fit(CustomHooked(), digits.train.x, digits.train.y, epochs=5)
    baked = copy.deepcopy(model)
    torch_prune.l1_unstructured(model.l1, "weight", amount=0.5)
    torch_prune.custom_from_mask(baked.l1, "weight", model.l1.weight_mask)
    torch_prune.remove(baked.l1, "weight")
    x, y = digits.test.x[:100], digits.test.y[:100]
    got = random_ablation(model, x, y, ratios=[0.1], n_subsets=6)  # method "auto"
    want = random_ablation(baked, x, y, ratios=[0.1], n_subsets=6, method="loop")
    assert got.utility.to_numpy() == pytest.approx(want.utility.to_numpy(), rel=1e-4, abs=1e-6)
    assert torch.equal(model.l1.weight, model.l1.weight_orig * model.l1.weight_mask)  # readable, restored
    copy.deepcopy(model)


def test_ablating_a_hooked_attention_out_proj_is_seen(tokens):
    (x, y), _ = tokens
    model = fit(TinyTransformer(), x, y, epochs=3)
    baked = copy.deepcopy(model)
    out_proj = model.encoder.self_attn.out_proj
    torch_prune.random_unstructured(out_proj, "weight", amount=0.3)
    torch_prune.custom_from_mask(baked.encoder.self_attn.out_proj, "weight", out_proj.weight_mask)
    torch_prune.remove(baked.encoder.self_attn.out_proj, "weight")
    whole = torch.ones(1, out_proj.weight.numel(), dtype=torch.bool)  # ablate all of out_proj
    got = evaluate_subsets(model, x[:200], y[:200], subsets=whole, params=[(out_proj, "weight")])
    want = evaluate_subsets(baked, x[:200], y[:200], subsets=whole,
                            params=[(baked.encoder.self_attn.out_proj, "weight")])
    assert float(want.utility[0]) > 1e-3
    assert float(got.utility[0]) == pytest.approx(float(want.utility[0]), rel=1e-4)


class TiedLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.mix, self.head = nn.Embedding(10, 6), nn.Linear(6, 6), nn.Linear(6, 10, bias=False)
        self.head.weight = self.emb.weight  # tied

    def forward(self, tokens):
        return self.head(torch.tanh(self.mix(self.emb(tokens).mean(1))))


def test_tied_weights_are_listed_once_and_left_out_with_the_head():
    model = TiedLM()
    x = torch.randint(0, 10, (4, 5))
    assert [a for _, a in prunable_parameters(model, example=x)] == ["weight"]  # mix only: emb is the head
    assert [m for m, _ in prunable_parameters(model, example=x)] == [model.mix]
    everything = prunable_parameters(model, include_output=True)
    assert [m for m, _ in everything] == [model.emb, model.mix]
    assert weight_coverage(model, everything)["share"] <= 1.0


def test_a_sequential_head_named_output_is_left_out():
    class Named(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(64, 16)
            self.output = nn.Sequential(nn.ReLU(), nn.Linear(16, 10))

        def forward(self, x):
            return self.output(self.body(x.flatten(1)))

    model = Named()
    assert [m for m, _ in prunable_parameters(model)] == [model.body]


def test_effective_density_with_params_on_a_plain_mlp_ranks_the_params(digits):
    torch.manual_seed(0)
    model = fit(nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                              nn.Linear(32, 10)), digits.train.x, digits.train.y, epochs=10)
    params = [(model[1], "weight"), (model[5], "weight")]
    auto = effective_density(model, digits, params=params)
    plain = effective_density(model, digits, params=params, incremental=False)
    assert (auto.pruned, auto.density) == (plain.pruned, plain.density) and auto.params == 64 * 32 + 32 * 10
    with pytest.raises(ValueError, match="params="):
        effective_density(model, digits, params=params, incremental=True)


def test_a_conv_subclass_is_paired_with_its_batchnorm():
    from prunekit.pruning.masks import following_batchnorms

    class MyConv(nn.Conv2d):
        pass

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.b1 = MyConv(1, 4, 3, padding=1), nn.BatchNorm2d(4)
            self.head = nn.Linear(4 * 8 * 8, 10)

        def forward(self, x):
            return self.head(torch.relu(self.b1(self.c1(x))).flatten(1))

    model = Net()
    assert following_batchnorms(model, [(model.c1, "weight")]) == [model.b1]


def test_tracing_restores_every_modules_mode():
    model = BNMLP().train()
    model.bn1.eval()  # frozen statistics inside a training model
    prunable_parameters(model, example=torch.randn(3, 64))
    assert model.training and model.fc1.training and not model.bn1.training


def test_data_errors_name_the_problem(digits):
    x, y = digits.test.x, digits.test.y
    with pytest.raises(ValueError, match="DataLoader"):
        as_split(TensorDataset(x, y))
    with pytest.raises(ValueError, match="one row per sample"):
        as_split((x, y[:10]))
    with pytest.raises(ValueError, match="not a tensor"):
        as_split((x, y.numpy()))
