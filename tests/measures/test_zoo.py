"""No silent answer on any model: every measure, on every family of a zoo of readers' models, either agrees with a
plain reference written here or raises a ``ValueError`` that names the cause and the way out. No third outcome.

The zoo is written here, not taken from prunekit: an MLP, a CNN with batch norm, a residual net, a conv classifier
head (SqueezeNet's: conv -> ReLU -> adaptive pool -> flatten), a ViT-like model (MultiheadAttention, a class token),
a depthwise-separable net, GRU and LSTM classifiers, weight_norm and spectral_norm parametrizations, tied weights,
frozen parameters, a model already pruned with ``torch.nn.utils.prune`` (attention included), a dict output, a
float64 model, and a forward that reads a buffer and a plain attribute.

The references: each model folded into a plain copy (prune hooks and parametrizations made plain weights: the same
function), the mask applied by hand to that copy, accuracy, cross-entropy and KL computed by hand, the density scan
done by hand. Tolerances: accuracies exactly (the same float operations give the same argmax; the ablation tables
hold them as float32: 1e-6), losses and the utility of one subset ``rel=1e-5`` (float64 family: 1e-9), the ablation
tables' utilities ``rel=1e-4`` or ``1e-6`` absolute (float32 ``A - p.z + logsumexp(z)``: cancellation near 0),
Hoyer ``1e-9``, the plane's anchors
``rel=1e-4`` in loss and one sample in accuracy (its points are rebuilt in float32 from a float64 basis).
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass, field

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations, parametrize
from torch.nn.utils import prune as torch_prune

from prunekit.core.data import load_dataset
from prunekit.core.prunable import logits_model, prunable_parameters, weight_coverage
from prunekit.measures import surface as S
from prunekit.measures.curves import pruning_curve
from prunekit.measures.density import effective_density, hoyer_by_layer, model_hoyer_sparsity
from prunekit.measures.utility import evaluate_subsets, magnitude_ablation, random_ablation, utility
from prunekit.pruning.retrain import fine_tune, magnitude_masks


# ------------------------------------------------------------------------------------------------------ the zoo
class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.head = nn.Linear(64, 32), nn.Linear(32, 16), nn.Linear(16, 10)

    def forward(self, x):
        return self.head(F.relu(self.fc2(F.relu(self.fc1(x.flatten(1))))))


def sequential_mlp():  # a plain Sequential: prunekit's fast paths (incremental density, batched GEMM ablation)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 10))


class CNNBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6)
        self.c2, self.b2 = nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.b1(self.c1(x))), 2)
        return self.fc(F.relu(self.b2(self.c2(x))).flatten(1))


class ResidualNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem, self.bs = nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.c1, self.b1 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.c2, self.b2 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.down, self.bd = nn.Conv2d(8, 12, 1, stride=2, bias=False), nn.BatchNorm2d(12)
        self.c3, self.b3 = nn.Conv2d(8, 12, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(12)
        self.fc = nn.Linear(12, 10)

    def forward(self, x):
        x = F.relu(self.bs(self.stem(x)))
        x = F.relu(x + self.b2(self.c2(F.relu(self.b1(self.c1(x))))))
        x = F.relu(self.bd(self.down(x)) + self.b3(self.c3(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class ConvHead(nn.Module):
    """SqueezeNet's classifier: the logits come from a 1x1 conv, then ReLU, an adaptive average pool, a flatten."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 12, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Dropout(0.1), nn.Conv2d(12, 10, 1), nn.ReLU(inplace=True),
                                        nn.AdaptiveAvgPool2d(1))

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


class ViT(nn.Module):
    """Patches (a strided conv) -> a class token and learned positions -> a transformer encoder layer -> the class
    token's LayerNorm -> a Linear head."""

    def __init__(self, d=16):
        super().__init__()
        self.patch = nn.Conv2d(1, d, 4, stride=4)  # 8x8 -> 2x2 patches
        self.cls = nn.Parameter(0.02 * torch.randn(1, 1, d))
        self.pos = nn.Parameter(0.02 * torch.randn(1, 5, d))
        self.enc = nn.TransformerEncoderLayer(d, 2, 32, dropout=0.0, batch_first=True)
        self.norm, self.head = nn.LayerNorm(d), nn.Linear(d, 10)

    def forward(self, x):
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls.expand(len(x), -1, -1), tokens], 1) + self.pos
        return self.head(self.norm(self.enc(tokens)[:, 0]))


class Depthwise(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.dw, self.b2 = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), nn.BatchNorm2d(8)
        self.pw = nn.Conv2d(8, 16, 1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = F.relu(self.b2(self.dw(F.relu(self.b1(self.c1(x))))))
        return self.fc(F.adaptive_avg_pool2d(F.relu(self.pw(x)), 1).flatten(1))


class Recurrent(nn.Module):
    """The image's 8 rows as a sequence of 8 features, a GRU or an LSTM, the last step's output into a Linear."""

    def __init__(self, kind):
        super().__init__()
        self.rnn = kind(8, 16, batch_first=True)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        out, _ = self.rnn(x.reshape(len(x), 8, 8))
        return self.head(out[:, -1])


def weight_normed():
    model = MLP()
    model.fc1 = parametrizations.weight_norm(model.fc1)
    model.fc2 = parametrizations.weight_norm(model.fc2)
    return model


def spectral_normed():
    model = MLP()
    model.fc1 = parametrizations.spectral_norm(model.fc1)
    return model


class Tied(nn.Module):
    """One Parameter used by two Linears (``b.weight is a.weight``)."""

    def __init__(self):
        super().__init__()
        self.fc1, self.a, self.b, self.head = nn.Linear(64, 24), nn.Linear(24, 24), nn.Linear(24, 24), nn.Linear(24, 10)
        self.b.weight = self.a.weight

    def forward(self, x):
        h = F.relu(self.a(F.relu(self.fc1(x.flatten(1)))))
        return self.head(F.relu(self.b(h)))


def frozen():
    model = MLP()
    model.fc1.requires_grad_(False)  # a frozen first layer: trained weights, not trainable
    return model


class DictOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.body, self.cls = nn.Linear(64, 32), nn.Linear(32, 10)

    def forward(self, x):
        h = F.relu(self.body(x.flatten(1)))
        return {"logits": self.cls(h), "features": h}


def dict_logits(out):
    return out["logits"]


class Attribute(nn.Module):
    """The forward reads a buffer (``scale``) and a plain attribute (``pool``): rows as tokens, pooled one way."""

    def __init__(self, pool="max"):
        super().__init__()
        self.register_buffer("scale", torch.linspace(0.5, 1.5, 8))
        self.pool = pool
        self.rows, self.head = nn.Linear(8, 16), nn.Linear(16, 10)

    def forward(self, x):
        h = F.relu(self.rows(x.reshape(len(x), 8, 8) * self.scale))
        return self.head(h.amax(1) if self.pool == "max" else h.mean(1) if self.pool == "mean" else h[:, -1])


def pre_pruned(model):
    """``model`` (a trained ViT) pruned with torch.nn.utils.prune, hooks left on: the patch conv, the attention's input
    projection and its out_proj (which MultiheadAttention reads as a plain ``.weight``), the feed-forward's first
    Linear."""
    torch.manual_seed(1)
    torch_prune.l1_unstructured(model.patch, "weight", amount=0.3)
    torch_prune.l1_unstructured(model.enc.self_attn, "in_proj_weight", amount=0.3)
    torch_prune.random_unstructured(model.enc.self_attn.out_proj, "weight", amount=0.4)
    torch_prune.l1_unstructured(model.enc.linear1, "weight", amount=0.3)
    return model


def rnn_params(model):
    return [(model.rnn, "weight_ih_l0"), (model.rnn, "weight_hh_l0")]


@dataclass
class Family:
    build: object  # () -> nn.Module
    names: list  # the weights measured, as state_dict names: the expected default set, or those of params
    params: object = None  # model -> [(module, attr)], where the default set is not what is measured
    output_fn: object = None
    dtype: torch.dtype = torch.float32
    bn: dict = field(default_factory=dict)  # weight name -> the BatchNorm that reads its output (unit pruning)
    after: object = None  # model -> model, after training (pruning hooks)


VIT = ["patch.weight", "enc.self_attn.in_proj_weight", "enc.self_attn.out_proj.weight", "enc.linear1.weight",
       "enc.linear2.weight"]
FAMILIES = {
    "mlp": Family(MLP, ["fc1.weight", "fc2.weight"]),
    "sequential_mlp": Family(sequential_mlp, ["1.weight", "3.weight"]),
    "cnn_bn": Family(CNNBN, ["c1.weight", "c2.weight"], bn={"c1.weight": "b1", "c2.weight": "b2"}),
    "residual": Family(ResidualNet, ["stem.weight", "c1.weight", "c2.weight", "down.weight", "c3.weight"],
                       bn={"stem.weight": "bs", "c1.weight": "b1", "c2.weight": "b2", "down.weight": "bd",
                           "c3.weight": "b3"}),
    "conv_head": Family(ConvHead, ["features.0.weight"]),
    "vit": Family(ViT, VIT),
    "depthwise": Family(Depthwise, ["c1.weight", "dw.weight", "pw.weight"], bn={"c1.weight": "b1", "dw.weight": "b2"}),
    "gru": Family(functools.partial(Recurrent, nn.GRU), ["rnn.weight_ih_l0", "rnn.weight_hh_l0"], params=rnn_params),
    "lstm": Family(functools.partial(Recurrent, nn.LSTM), ["rnn.weight_ih_l0", "rnn.weight_hh_l0"], params=rnn_params),
    "weight_norm": Family(weight_normed, ["fc1.weight", "fc2.weight"]),
    "spectral_norm": Family(spectral_normed, ["fc1.weight", "fc2.weight"]),
    "tied": Family(Tied, ["fc1.weight", "a.weight"]),
    "frozen": Family(frozen, ["fc1.weight", "fc2.weight"]),
    "pre_pruned": Family(ViT, VIT, after=pre_pruned),
    "dict_output": Family(DictOut, ["body.weight"], output_fn=dict_logits),
    "float64": Family(MLP, ["fc1.weight", "fc2.weight"], dtype=torch.float64),
    "attribute": Family(Attribute, ["rows.weight"]),
}

MEASURES = ("density", "curve_weight", "curve_unit", "utility", "ablation", "fine_tune", "coverage", "surface",
            "hoyer")

# The expected outcome of every (family, measure): "agrees", or the words the ValueError must hold.
REFUSES_PARAMETRIZED = "parametrization"  # a pruned effective weight cannot be held in weight_norm's g and v
REFUSES_RECURRENT_UNITS = "unit pruning of recurrent weights"
EXPECTED = {family: {measure: "agrees" for measure in MEASURES} for family in FAMILIES}
EXPECTED["weight_norm"]["fine_tune"] = EXPECTED["spectral_norm"]["fine_tune"] = REFUSES_PARAMETRIZED
EXPECTED["gru"]["curve_unit"] = EXPECTED["lstm"]["curve_unit"] = REFUSES_RECURRENT_UNITS


# ------------------------------------------------------------------------------------------------ the references
def fold(model: nn.Module) -> nn.Module:
    """A deep copy computing the same function from plain weights: torch.nn.utils.prune hooks removed (weight =
    weight_orig * weight_mask, made a Parameter) and parametrizations replaced by the weight they compute."""
    with torch.no_grad():  # torch.nn.utils.prune's weights recomputed without autograd, which deepcopy refuses
        for module in model.modules():
            for hook in module._forward_pre_hooks.values():
                if isinstance(hook, torch_prune.BasePruningMethod):
                    hook(module, None)
    model = copy.deepcopy(model).eval()
    for module in list(model.modules()):
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, torch_prune.BasePruningMethod):
                torch_prune.remove(module, hook._tensor_name)
        if parametrize.is_parametrized(module):
            # its own class first: torch's removal deletes the weight's property from the class, which the copy
            # shares with the original (the original would lose its weight)
            cls = type(module)
            module.__class__ = type(cls.__name__, cls.__bases__, dict(cls.__dict__))
            for name in list(module.parametrizations):
                parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    return model


def tensor(model: nn.Module, name: str) -> torch.Tensor:
    path, _, attr = name.rpartition(".")
    return getattr(model.get_submodule(path), attr)


def effective(model: nn.Module, names) -> list[torch.Tensor]:
    plain = fold(model)
    return [tensor(plain, n).detach().clone() for n in names]


@torch.no_grad()
def masked_copy(model, names, keeps, companions=()):
    """The folded model with ``keeps`` (one weight-shaped bool mask per name) applied by hand, and the rows of each
    (tensor name, 1-D keep) of ``companions`` zeroed."""
    plain = fold(model)
    for name, keep in zip(names, keeps):
        tensor(plain, name)[~keep] = 0
    for name, keep in companions:
        tensor(plain, name)[~keep] = 0
    return plain


@torch.no_grad()
def logits(model, x, output_fn=None):
    model.eval()
    out = model(x)
    return output_fn(out) if output_fn else out


def accuracy(z, y) -> float:
    return float((z.argmax(1) == y).double().mean())


def cross_entropy(z, y) -> float:
    return float(-(z.log_softmax(1)[torch.arange(len(y)), y]).double().mean())


def kl(p_logits, q_logits) -> float:
    lp, lq = p_logits.double().log_softmax(1), q_logits.double().log_softmax(1)
    return float((lp.exp() * (lp - lq)).sum(1).clamp_min(0).mean())


def flat_magnitudes(model, names) -> torch.Tensor:
    return torch.cat([w.abs().reshape(-1).float() for w in effective(model, names)])


def keeps_pruning(model, names, flat_pruned: torch.Tensor) -> list[torch.Tensor]:
    """Weight-shaped keep masks from a flat bool vector over the named weights (True = pruned)."""
    shapes = [w.shape for w in effective(model, names)]
    parts = torch.split(~flat_pruned, [math.prod(s) for s in shapes])
    return [p.reshape(s) for p, s in zip(parts, shapes)]


def lowest(scores: torch.Tensor, count: int) -> torch.Tensor:
    """Flat bool vector: the ``count`` lowest scores, ties by index."""
    out = torch.zeros(scores.numel(), dtype=torch.bool)
    out[torch.argsort(scores, stable=True)[:count]] = True
    return out


def rel(family) -> float:
    return 1e-9 if family.dtype == torch.float64 else 1e-5


# ------------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def digits():
    ds = load_dataset("digits")
    return ds.train, ds.test


_TRAINED: dict = {}


def trained(name: str, digits):
    """The family's model after a few Adam steps on digits (once per module), with its data."""
    if name not in _TRAINED:
        fam = FAMILIES[name]
        train, test = digits
        torch.manual_seed(0)
        model = fam.build().to(fam.dtype)
        xtr, ytr = train.x[:640].to(fam.dtype), train.y[:640]
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.02)
        model.train()
        for step in range(60):
            i = torch.arange(step * 64, step * 64 + 64) % len(xtr)
            opt.zero_grad()
            F.cross_entropy(logits_of(model, xtr[i], fam.output_fn), ytr[i]).backward()
            opt.step()
        model.eval()
        if fam.after is not None:
            model = fam.after(model)
        _TRAINED[name] = (model, (xtr, ytr), (test.x[:200].to(fam.dtype), test.y[:200]))
    return _TRAINED[name]


def logits_of(model, x, output_fn):
    out = model(x)
    return output_fn(out) if output_fn else out


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, {n: m.training for n, m in
                                                                           model.named_modules()}


def assert_unchanged(model, before, x, output_fn, z_before):
    state, modes = before
    now = model.state_dict()
    assert list(now) == list(state), "the measure left tensors added or removed"
    assert all(torch.equal(now[k], v) for k, v in state.items()), "the measure left the model's tensors changed"
    assert {n: m.training for n, m in model.named_modules()} == modes
    assert torch.equal(logits(model, x, output_fn), z_before), "the measure left the model's function changed"


# -------------------------------------------------------------------------------------- each measure vs reference
def params_of(fam, model, x):
    if fam.params is not None:
        return fam.params(model)
    return prunable_parameters(model, example=x, output_fn=fam.output_fn)


def check_density(fam, model, train, test):
    x, y = test
    res = effective_density(model, test, tolerance=0.05, step=0.05, resolution=0.01,
                            params=None if fam.params is None else fam.params(model), output_fn=fam.output_fn)
    names, n = fam.names, flat_magnitudes(model, fam.names).numel()
    assert res.params == n
    assert res.total_params == sum(p.numel() for p in model.parameters())  # every parameter, frozen ones too
    order_mags = flat_magnitudes(model, names)

    def hand(k):  # accuracy with the k smallest |w| pruned, by hand
        return accuracy(logits(masked_copy(model, names, keeps_pruning(model, names, lowest(order_mags, k))), x,
                               fam.output_fn), y)

    dense = accuracy(logits(fold(model), x, fam.output_fn), y)
    assert res.dense_accuracy == dense
    threshold = dense - 0.05
    s = max(1, round(0.05 * n))
    f = next((k for k in range(s, n + s, s) if hand(min(k, n)) < threshold), None)  # the scan, by hand
    if f is None:
        assert res.pruned == n and res.failed_at is None
        return
    f = min(f, n)
    assert f - s <= res.pruned < res.failed_at <= f
    assert hand(res.pruned) == res.core_accuracy and res.core_accuracy >= threshold
    assert hand(res.failed_at) < threshold


def curve_model(fam, model):
    return logits_model(model, fam.output_fn)


def check_curve_weight(fam, model, train, test):
    x, y = test
    params = params_of(fam, model, x)
    df = pruning_curve(curve_model(fam, model), test, params=params, ks=[30, 70], methods=["weight"], scopes=["global"])
    mags = flat_magnitudes(model, fam.names)
    for row in df.itertuples():
        count = int(round(row.k * mags.numel() / 100))
        z = logits(masked_copy(model, fam.names, keeps_pruning(model, fam.names, lowest(mags, count))), x,
                   fam.output_fn)
        assert row.accuracy == accuracy(z, y)
        assert row.loss == pytest.approx(cross_entropy(z, y), rel=rel(fam))
    assert df.attrs["coverage"]["tensors"] == wrapped_names(fam)


def wrapped_names(fam):
    """The names in a model wrapped by ``logits_model`` (its modules are under ``model.``)."""
    return [f"model.{n}" for n in fam.names] if fam.output_fn else fam.names


def unit_companions(fam, model, name):
    """The tensors whose rows go with a unit (a row) of weight ``name``, by hand: its module's bias (or an attention's
    in_proj_bias), the bias of every other module that uses the same Parameter, the following BatchNorm's weight and
    bias."""
    path, _, attr = name.rpartition(".")
    out = []
    bias = "in_proj_bias" if attr == "in_proj_weight" else "bias"
    param = tensor(model, name) if not parametrize.is_parametrized(model.get_submodule(path), attr) else None
    for mpath, module in model.named_modules():
        uses = mpath == path or (param is not None and any(p is param for p in module._parameters.values()))
        if uses and isinstance(getattr(module, bias, None), torch.Tensor):
            out.append(f"{mpath}.{bias}".lstrip("."))
    if name in fam.bn:
        out += [f"{fam.bn[name]}.weight", f"{fam.bn[name]}.bias"]
    return out


def check_curve_unit(fam, model, train, test):
    x, y = test
    params = params_of(fam, model, x)
    df = pruning_curve(curve_model(fam, model), test, params=params, ks=[50], methods=["unit"], scopes=["layerwise"])
    keeps, companions = [], []
    for name, w in zip(fam.names, effective(model, fam.names)):
        norms = w.reshape(w.shape[0], -1).float().norm(dim=1)
        pruned = lowest(norms, int(round(0.5 * len(norms))))
        keeps.append((~pruned).view(-1, *[1] * (w.dim() - 1)).expand(w.shape))
        companions += [(c, ~pruned) for c in unit_companions(fam, model, name)]
    z = logits(masked_copy(model, fam.names, keeps, companions), x, fam.output_fn)
    row = df.iloc[0]
    assert row.accuracy == accuracy(z, y)
    assert row.loss == pytest.approx(cross_entropy(z, y), rel=rel(fam))


def subsets_by_hand(n, k, rows, seed):
    g = torch.Generator().manual_seed(seed)
    out = torch.zeros(rows, n, dtype=torch.bool)
    for i in range(rows):
        out[i, torch.randperm(n, generator=g)[:k]] = True
    return out


def check_utility(fam, model, train, test):
    x, y = test
    m = curve_model(fam, model)
    params = params_of(fam, model, x)
    n = flat_magnitudes(model, fam.names).numel()
    subsets = subsets_by_hand(n, n // 5, 3, seed=7)
    dense = logits(fold(model), x, fam.output_fn)
    table = evaluate_subsets(m, (x, y), subsets=subsets, params=params)
    for i, subset in enumerate(subsets):
        z = logits(masked_copy(model, fam.names, keeps_pruning(model, fam.names, subset)), x, fam.output_fn)
        want = kl(dense, z)
        assert want > 0
        assert utility(m, x, subset=subset, params=params) == pytest.approx(want, rel=rel(fam))
        assert table.utility[i] == pytest.approx(want, rel=1e-4, abs=1e-6)
        assert table.accuracy[i] == pytest.approx(accuracy(z, y), abs=1e-6)


def check_ablation(fam, model, train, test):
    x, y = test
    m = curve_model(fam, model)
    params = params_of(fam, model, x)
    mags = flat_magnitudes(model, fam.names)
    n = mags.numel()
    dense = logits(fold(model), x, fam.output_fn)
    df = random_ablation(m, (x, y), ratios=[0.3], n_subsets=3, seed=3, params=params)
    assert df.attrs["coverage"]["tensors"] == wrapped_names(fam)
    for row, subset in zip(df.itertuples(), subsets_by_hand(n, round(0.3 * n), 3, seed=3)):
        z = logits(masked_copy(model, fam.names, keeps_pruning(model, fam.names, subset)), x, fam.output_fn)
        assert row.accuracy == pytest.approx(accuracy(z, y), abs=1e-6)
        assert row.utility == pytest.approx(kl(dense, z), rel=1e-4, abs=1e-6)
    bands = magnitude_ablation(m, (x, y), n_bands=3, ratios=[1.0], n_subsets=1, params=params)
    order = torch.argsort(mags, stable=True)
    for row, band in zip(bands.itertuples(), torch.tensor_split(order, 3)):  # a whole band ablated: no draw
        subset = torch.zeros(n, dtype=torch.bool)
        subset[band] = True
        z = logits(masked_copy(model, fam.names, keeps_pruning(model, fam.names, subset)), x, fam.output_fn)
        assert row.accuracy == pytest.approx(accuracy(z, y), abs=1e-6)
        assert row.utility == pytest.approx(kl(dense, z), rel=1e-4, abs=1e-6)


def check_fine_tune(fam, model, train, test):
    x, _ = test
    params = params_of(fam, model, x)
    masks = magnitude_masks(model, 50, params=params)
    assert list(masks) == fam.names
    adam = functools.partial(torch.optim.Adam, lr=1e-2)
    out, history = fine_tune(model, masks, (train[0][:256], train[1][:256]), lrs=[1e-2], optimizer=adam,
                             batch_size=64, output_fn=fam.output_fn)
    assert len(history) == 1
    plain = fold(out)
    # the mask held: every pruned entry 0 in the weight the forward uses (every module sharing a tied Parameter)
    for name, keep in masks.items():
        path, _, attr = name.rpartition(".")
        for mpath, module in plain.named_modules():
            for pname, p in module.named_parameters(recurse=False):
                if p is tensor(plain, name):
                    assert float(p.detach()[~keep].abs().max()) == 0.0, f"{mpath}.{pname} not pruned"
    before = effective(model, fam.names)
    after = [tensor(plain, n).detach() for n in fam.names]
    assert any(bool((a[k] != b[k]).any()) for a, b, k in zip(after, before, masks.values()))  # it trained
    assert torch.equal(logits(out, x, fam.output_fn), logits(plain, x, fam.output_fn))  # no stale weight
    assert [n for n, _ in out.named_parameters()] == [n for n, _ in fold(model).named_parameters()]


def check_coverage(fam, model, train, test):
    x, _ = test
    cover = weight_coverage(model, params_of(fam, model, x))
    unique = {id(p): p.numel() for _, p in model.named_parameters()}
    assert cover["tensors"] == fam.names
    assert cover["weights"] == sum(w.numel() for w in effective(model, fam.names))
    assert cover["model_parameters"] == sum(unique.values())
    assert 0 < cover["share"] <= 1


def noisy(model, seed, scale=0.05):
    out = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in out.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return out


def check_surface(fam, model, train, test):
    x, y = test
    nets = {"a": model, "b": noisy(model, 1), "c": noisy(model, 2)}
    bn_x = train[0][:300] if S.has_batchnorm(model) else None
    refs = {}
    for k, net in nets.items():
        plain = fold(net)
        if bn_x is not None:
            torch.optim.swa_utils.update_bn([bn_x], plain)
        z = logits(plain, x, fam.output_fn)
        refs[k] = (cross_entropy(z, y), accuracy(z, y))
    vecs = {k: S.flatten(logits_model(net, fam.output_fn)) for k, net in nets.items()}
    host = logits_model(copy.deepcopy(model), fam.output_fn)
    plane = S.Plane.through(vecs["a"], vecs["b"], vecs["c"], names=("a", "b", "c"))
    _, anchors = S.plane_surface(host, {"test": (x, y)}, plane=plane, n=2, bn_data=bn_x)
    for row in anchors.itertuples():
        assert row.loss == pytest.approx(refs[row.point][0], rel=1e-4)
        assert row.accuracy == pytest.approx(refs[row.point][1], abs=1.01 / len(y))  # float32 points: one sample
    path = S.linear_path(host, {"test": (x, y)}, w_a=vecs["a"], w_b=vecs["b"], n=2, bn_data=bn_x)
    ends = path.sort_values("t")
    assert ends.loss.iloc[0] == pytest.approx(refs["a"][0], rel=1e-4)
    assert ends.loss.iloc[-1] == pytest.approx(refs["b"][0], rel=1e-4)


def hoyer_by_hand(w: torch.Tensor) -> float:
    w = w.double().reshape(-1)
    n = w.numel()
    return (math.sqrt(n) - float(w.abs().sum() / w.norm())) / (math.sqrt(n) - 1)


def check_hoyer(fam, model, train, test):
    x, y = test
    params = None if fam.params is None else fam.params(model)
    got = hoyer_by_layer(model, test, params=params, output_fn=fam.output_fn)
    weights = effective(model, fam.names)
    assert list(got) == fam.names
    for name, w in zip(fam.names, weights):
        assert got[name] == pytest.approx(hoyer_by_hand(w), abs=1e-9)
    whole = model_hoyer_sparsity(model, test, params=params, output_fn=fam.output_fn)
    assert whole == pytest.approx(hoyer_by_hand(torch.cat([w.reshape(-1) for w in weights])), abs=1e-9)


CHECKS = {"density": check_density, "curve_weight": check_curve_weight, "curve_unit": check_curve_unit,
          "utility": check_utility, "ablation": check_ablation, "fine_tune": check_fine_tune,
          "coverage": check_coverage, "surface": check_surface, "hoyer": check_hoyer}


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_measure_on_every_family_agrees_with_its_reference_or_refuses(family, measure, digits):
    fam = FAMILIES[family]
    model, train, test = trained(family, digits)
    before, z_before = snapshot(model), logits(model, test[0], fam.output_fn)
    expected = EXPECTED[family][measure]
    if expected == "agrees":
        CHECKS[measure](fam, model, train, test)
    else:
        with pytest.raises(ValueError, match=expected) as err:
            CHECKS[measure](fam, model, train, test)
        assert "params=" in str(err.value) or "remove" in str(err.value) or "use " in str(err.value)  # a way out
    assert_unchanged(model, before, test[0], fam.output_fn, z_before)


def test_the_zoo_is_trained():
    """The references compare measures on models that have learned something (well above chance, 0.1)."""
    ds = load_dataset("digits")
    for family in ("mlp", "vit", "gru", "conv_head", "pre_pruned"):
        fam = FAMILIES[family]
        model, _, (x, y) = trained(family, (ds.train, ds.test))
        assert accuracy(logits(model, x, fam.output_fn), y) > (0.35 if family == "conv_head" else 0.6), family
