import pytest
import torch
from torch import nn

from prunekit.core.config import ModelConfig
from prunekit.core.models import MLP, as_nchw, build_model
from prunekit.core.prunable import count_parameters, prunable_parameters

SHAPES = [((1, 8, 8), 10), ((1, 20, 20), 10), ((1, 28, 28), 2), ((3, 32, 32), 10)]


@pytest.mark.parametrize("arch", ["mlp", "lenet300", "conv", "resnet", "resnet20"])
@pytest.mark.parametrize("shape, classes", SHAPES)
def test_every_arch_adapts_to_input_and_classes(arch, shape, classes):
    model = build_model(ModelConfig(arch=arch, width_mult=0.25), shape, classes)
    out = model(torch.randn(3, *shape))
    assert out.shape == (3, classes)


def test_presets_match_the_sources():
    forai = build_model(ModelConfig("forai"), (1, 28, 28), 10)
    assert isinstance(forai, MLP) and forai.hidden_sizes == (1000, 1000, 500, 200)
    assert all(m.bias is None for m in forai.modules() if isinstance(m, nn.Linear))
    assert count_parameters(forai) == 784 * 1000 + 1000 * 1000 + 1000 * 500 + 500 * 200 + 200 * 10
    lenet = build_model(ModelConfig("lenet300"), (1, 28, 28), 10)
    assert count_parameters(lenet) == 784 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10
    # Wolfe et al.: 1-10-10-1 sigmoid, 400-50-50-10, 784-100-2
    cos = build_model(ModelConfig("mlp", hidden=(10, 10), activation="sigmoid"), (1, 1, 1), 1)
    assert [m.weight.shape for m in cos.hidden_layers] == [(10, 1), (10, 10)] and cos.output.weight.shape == (1, 10)
    assert isinstance(cos[2], nn.Sigmoid)
    ova = build_model(ModelConfig("mlp", hidden=(100,), activation="sigmoid"), (1, 28, 28), 2)
    assert ova.output.weight.shape == (2, 100)


@pytest.mark.parametrize("mult, expected", [(0.1, (30, 10)), (0.25, (75, 25)), (2, (600, 200)), (0.001, (1, 1))])
def test_width_multiplier_scales_and_rounds_at_least_one(mult, expected):
    model = build_model(ModelConfig("lenet300", width_mult=mult), (1, 28, 28), 10)
    assert model.hidden_sizes == expected


def test_conv_and_resnet_channels_scale():
    c1 = build_model(ModelConfig("conv"), (1, 28, 28), 10)
    c2 = build_model(ModelConfig("conv", width_mult=2), (1, 28, 28), 10)
    convs = lambda m: [x.out_channels for x in m.modules() if isinstance(x, nn.Conv2d)]  # noqa: E731
    assert [2 * c for c in convs(c1)] == convs(c2)
    r1 = build_model(ModelConfig("resnet"), (3, 32, 32), 10)
    r3 = build_model(ModelConfig("resnet", width_mult=3), (3, 32, 32), 10)
    assert [3 * c for c in convs(r1)] == convs(r3)
    assert any(isinstance(m, nn.BatchNorm2d) for m in r1.modules())
    with pytest.raises(ValueError, match="4x4"):
        build_model(ModelConfig("conv"), (1, 1, 1), 1)


@pytest.mark.parametrize("arch", ["mlp", "conv", "resnet", "resnet20"])
def test_prunable_parameters_exclude_the_output_layer_by_default(arch):
    model = build_model(ModelConfig(arch=arch), (1, 8, 8), 10)
    params = prunable_parameters(model)
    assert all(name == "weight" for _, name in params)
    assert model.output not in [m for m, _ in params]
    assert prunable_parameters(model, include_output=True)[-1][0] is model.output
    assert len(prunable_parameters(model, include_output=True)) == len(params) + 1


@pytest.mark.parametrize("init, expected_std", [
    ("glorot_normal", (2 / (300 + 100)) ** 0.5),  # Glorot & Bengio (2010), eq. 16: Var = 2 / (fan_in + fan_out)
    ("he_normal", (2 / 300) ** 0.5),              # He et al. (2015): Var = 2 / fan_in
    ("glorot_uniform", (2 / (300 + 100)) ** 0.5),
    ("he_uniform", (2 / 300) ** 0.5),
])
def test_initialisations_have_the_textbook_scale(init, expected_std):
    torch.manual_seed(0)
    model = build_model(ModelConfig("lenet300", init=init), (1, 28, 28), 10)
    w = model.hidden_layers[1].weight.detach()  # fan_in 300, fan_out 100
    assert abs(float(w.std()) - expected_std) / expected_std < 0.03
    assert float(model.hidden_layers[1].bias.detach().abs().max()) == 0.0


def test_glorot_is_glorot_and_bengio_without_a_relu_gain():
    """Linear(784, 300) of LeNet-300-100: Glorot & Bengio's std is sqrt(2 / 1084) = 0.0430, He's 0.0505; the ReLU-gain
    variant the project used before drew 0.0608, larger than He's."""
    torch.manual_seed(0)
    first = build_model(ModelConfig("lenet300", init="glorot_uniform"), (1, 28, 28), 10).hidden_layers[0].weight
    bound = 6 ** 0.5 / (784 + 300) ** 0.5  # U[-bound, bound], the paper's normalised initialisation
    assert float(first.abs().max()) <= bound and float(first.abs().max()) > 0.99 * bound
    assert abs(float(first.std()) - 0.0430) < 0.0005
    torch.manual_seed(0)
    he = build_model(ModelConfig("lenet300", init="he_normal"), (1, 28, 28), 10).hidden_layers[0].weight
    assert float(first.std()) < float(he.std())  # Glorot starts smaller than He in every layer of LeNet-300-100


def test_a_revised_init_does_not_reuse_models_cached_under_its_old_meaning():
    glorot, he = ModelConfig("lenet300", init="glorot"), ModelConfig("lenet300", init="he")
    assert glorot.identity() == {"arch": "lenet300", "init": "glorot_uniform", "init_revision": 2}
    assert "init_revision" not in he.identity()


def test_as_nchw_copies_only_non_canonical_strides():
    x = torch.randn(4, 1, 5, 5)
    batch = x[1:3]
    assert as_nchw(x) is x and as_nchw(batch) is batch
    nhwc_view = torch.randn(4, 5, 5, 1).permute(0, 3, 1, 2)  # passes as contiguous and as channels_last
    assert nhwc_view.is_contiguous() and nhwc_view.stride() == (25, 1, 5, 1)
    for y in (nhwc_view, torch.randn(4, 3, 5, 5).contiguous(memory_format=torch.channels_last)):
        z = as_nchw(y)
        assert z.stride() == torch.empty(y.shape).stride() and torch.equal(z, y)


CHANNELS_LAST_TRAINING = """
import copy
import torch
from torch import nn
from prunekit.core.config import ModelConfig
from prunekit.core.models import build_model
torch.set_num_threads(1)
torch.manual_seed(0)
model = build_model(ModelConfig("{arch}", width_mult={wm}), (1, 14, 14), 10)
x_cl = torch.rand(128, 14, 14, 1).permute(0, 3, 1, 2)  # NCHW view of NHWC data: channels_last strides
x = x_cl.clone(memory_format=torch.contiguous_format)
y = torch.randint(0, 10, (128,))
ref = copy.deepcopy(model)
nn.functional.cross_entropy(model(x_cl), y).backward()
nn.functional.cross_entropy(ref(x), y).backward()
for (name, p), q in zip(model.named_parameters(), ref.parameters()):
    err = float((p.grad - q.grad).abs().max() / q.grad.abs().max().clamp_min(1e-12))
    assert err < 1e-4, (name, err)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for _ in range(100):
    opt.zero_grad()
    nn.functional.cross_entropy(model(x_cl), y).backward()
    opt.step()
print("done")
"""


@pytest.mark.parametrize("arch, width_mult", [("resnet", 0.1), ("resnet", 0.25), ("resnet", 0.5), ("conv", 0.5)])
def test_narrow_conv_nets_train_correctly_on_channels_last_input(arch, width_mult):
    """Regression: channels_last input (a 1-channel NCHW view of NHWC data) gave wrong batch-norm gradients at 8
    channels and crashed oneDNN's strided 1x1 backward below 8 (SIGABRT/SIGSEGV with one thread, a hang with two).

    The gradients must equal those for the same input in NCHW. Run in a child process, so that a native crash fails
    this test instead of killing pytest.
    """
    import subprocess
    import sys
    code = CHANNELS_LAST_TRAINING.format(arch=arch, wm=width_mult)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "done" in proc.stdout, (proc.returncode, proc.stderr[-2000:])


def test_resnet20_is_he_et_al_cifar_resnet20():
    """3 stages x 3 basic blocks of 16/32/64 channels, parameter-free shortcuts: 19 convolutions and a classifier,
    0.27M parameters for CIFAR-10 (counted here layer by layer)."""
    import torch

    from prunekit.core.models import PadShortcut
    from prunekit.core.prunable import count_parameters, prunable_parameters

    model = build_model(ModelConfig("resnet20"), (3, 32, 32), 10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 19 and len(prunable_parameters(model, include_output=True)) == 20
    expected = 3 * 16 * 9 + 2 * 16                                   # stem conv + BN
    cin = 16
    for c in (16, 32, 64):
        for _ in range(3):
            expected += cin * c * 9 + c * c * 9 + 4 * c              # two 3x3 convs, two BNs (weight and bias)
            cin = c
    expected += 64 * 10 + 10                                         # classifier
    assert count_parameters(model) == expected == 269_722
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    gray = build_model(ModelConfig("resnet20", width_mult=0.5), (1, 28, 28), 10)
    assert gray(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    out = PadShortcut(3, 5, 2)(x)                                     # subsample by 2, two zero channels at the end
    assert out.shape == (2, 5, 2, 2)
    assert torch.equal(out[:, :3], x[:, :, ::2, ::2]) and torch.equal(out[:, 3:], torch.zeros(2, 2, 2, 2))


@pytest.mark.parametrize("arch", ["conv", "resnet", "resnet20"])
def test_batch_norm_false_removes_every_batch_norm(arch):
    with_bn = build_model(ModelConfig(arch), (1, 8, 8), 10)
    without = build_model(ModelConfig(arch, batch_norm=False), (1, 8, 8), 10)
    bns = [m for m in with_bn.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and not any(isinstance(m, nn.BatchNorm2d) for m in without.modules())
    assert count_parameters(with_bn) - count_parameters(without) == sum(2 * m.num_features for m in bns)
    assert without(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(ValueError, match="batch_norm"):
        ModelConfig("mlp", batch_norm=False)
    with pytest.raises(ValueError, match="batch_norm"):
        ModelConfig(arch, batch_norm=0)


def test_a_regression_data_set_is_told_by_its_registry_kind(monkeypatch):
    """TrainConfig asks the data set's entry what task it is (kind "regression": float targets, loss="sse"), not
    its name: another regression data set is held to the same rule, and a classification one is not."""
    from prunekit.core.config import DataConfig, TrainConfig
    from prunekit.core.registry import DATASETS, DataEntry

    DATASETS.names()  # the built-in entries first
    monkeypatch.setitem(DATASETS._entries, "my_curve", DataEntry("my_curve", lambda seed, root: None, "regression"))
    for name in ("cosine", "my_curve"):
        with pytest.raises(ValueError, match=f"dataset='{name}' is a regression task: use loss='sse'"):
            TrainConfig(data=DataConfig(name), model=ModelConfig(arch="mlp", hidden=(4,)))
        assert TrainConfig(data=DataConfig(name), model=ModelConfig(arch="mlp", hidden=(4,)), loss="sse").loss == "sse"
    assert TrainConfig(data=DataConfig("digits")).loss == "cross_entropy"
