"""The architectures: width-scaled fully connected, convolutional (VGG-style) and residual (CIFAR-style ResNet) models.

Every model adapts to the data set's input shape and number of classes, scales each hidden width or channel count
by ``width_mult`` (``max(1, round(width * width_mult))``), exposes the layer into the logits as ``model.output`` and
lists its prunable layers as ``(module, "weight")`` pairs, the form ``torch.nn.utils.prune`` takes. Each ``arch`` is
one entry of ``prunekit.core.registry.MODELS`` (registered at the end of this module): a new model is one more
``MODELS.register(ModelEntry(...))`` line, and a fully connected variant needs no code but its widths.

Presets used by the sources:
- ``forai``: 1000-1000-500-200, ReLU, no biases, 10 logits (the FOR.ai pruning challenge, source 003);
- ``lenet300``: LeNet-300-100 (LeCun et al. 1998), the fully connected default of source 000;
- ``mlp`` with ``hidden=(10, 10)``/``(50, 50)``/``(100,)``, ``activation="sigmoid"``: the nets of source 001
  (1-10-10-1, 1-50-50-1, 400-100-10, 400-50-50-10, 784-100-2 follow from the data set's shape);
- ``resnet20``: He et al.'s (2016, "Deep Residual Learning for Image Recognition", arXiv:1512.03385, Sec. 4.2)
  CIFAR ResNet20 with batch norm and parameter-free shortcuts, the network of source 002 (for 1- and 3-channel inputs).

How prunekit finds the weights of any model (these and a reader's own) is ``prunekit.core.prunable``; initialisation and
the masks held in training, ``prunekit.core.initialisation``. A model owns its capabilities: ``ConvNet`` and ``ResNet``
name, for each conv whose channels can be pruned, the one next layer that reads them (``channel_consumers()``, what
channel pruning needs); for any other model ``prunekit.pruning.structure`` reads the same from a ``torch.fx`` trace of
its forward, which also pairs every layer with the BatchNorm after it, for every model (``as_nchw`` is one call in
that trace, ``torch.fx.wrap``).
"""

from __future__ import annotations

import math

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from .checks import choice, count, number, sequence
from .config import ModelConfig
from .initialisation import init_weights
from .registry import MODELS, ModelEntry

__all__ = ["MLP", "ConvNet", "ResNet", "build_model", "as_nchw"]

CONV_CHANNELS = (16, 32)  # two conv blocks (conv3x3-BN-ReLU-maxpool), then a hidden linear layer
CONV_HIDDEN = 64
RESNET_CHANNELS = (16, 32, 64)  # "resnet": one basic block per stage (ResNet-8); "resnet20": three (He et al.)

_ACT = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


def _norm(batch_norm: bool):
    """``nn.BatchNorm2d`` or, without batch norm, a layer that passes its input through."""
    return nn.BatchNorm2d if batch_norm else (lambda channels: nn.Identity())


def _checked(input_shape=None, num_classes=None, width_mult=1.0, activation="relu"):
    """The arguments every model class checks before it builds a layer: ``(C, H, W)`` counts, the number of outputs,
    a width multiplier > 0 and one of the activations."""
    if input_shape is not None:
        input_shape = tuple(sequence("input_shape", input_shape, item=count))
        if len(input_shape) != 3:
            raise ValueError(f"input_shape={input_shape!r} must be (channels, height, width)")
    if num_classes is not None:
        count("num_classes", num_classes)
    number("width_mult", width_mult, low=0.0, low_open=True)
    choice("activation", activation, tuple(_ACT))
    return input_shape


def _scale(width: int, mult: float) -> int:
    return max(1, int(round(width * mult)))


class MLP(nn.Sequential):
    """``Flatten -> (Linear -> act) x len(hidden) -> Linear``.

    Attributes: ``hidden_layers`` (the hidden ``nn.Linear`` in order), ``output`` (the layer into the logits),
    ``activation`` (its name).
    """

    def __init__(self, in_features: int, hidden: tuple[int, ...], out_features: int, activation: str = "relu",
                 bias: bool = True):
        _checked(activation=activation)
        in_features, out_features = count("in_features", in_features), count("out_features", out_features)
        hidden = tuple(sequence("hidden", hidden, nonempty=False, item=count))
        layers: list[nn.Module] = [nn.Flatten()]
        widths = (in_features, *hidden)
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b, bias=bias), _ACT[activation]()]
        layers.append(nn.Linear(widths[-1], out_features, bias=bias))
        super().__init__(*layers)
        self.activation = activation
        self.hidden_sizes = tuple(hidden)

    @property
    def hidden_layers(self) -> list[nn.Linear]:
        return [m for m in self if isinstance(m, nn.Linear)][:-1]

    @property
    def output(self) -> nn.Linear:
        return self[-1]


def as_nchw(x: torch.Tensor) -> torch.Tensor:
    """``x`` with the canonical strides of an NCHW tensor (copied only when its strides differ).

    A 1-channel NCHW view of NHWC data passes as channels_last too, and torch then runs every conv and batch norm
    of the net in that format. On the CPU with torch 2.14.1 that format is unsafe for narrow nets: batch-norm
    backward gave wrong gradients at 7 and 8 channels in our checks (input gradients 24-98% off at batch 128),
    and oneDNN's strided 1x1 conv backward corrupts the heap below 8 input channels (uxlfoundation/oneDNN#6035).
    The conv nets here therefore always compute in NCHW; do not convert them with ``memory_format=channels_last``.
    """
    if x.stride() != _contiguous_strides(x.shape):
        return x.clone(memory_format=torch.contiguous_format)
    return x


torch.fx.wrap("as_nchw")  # one node of a traced forward (its stride test is not traceable Python)


def _contiguous_strides(shape) -> tuple[int, ...]:
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return tuple(reversed(strides))


class ConvNet(nn.Module):
    """Small VGG-style net: ``[conv3x3 -> BatchNorm -> act -> maxpool2] x 2 -> Linear -> act -> Linear``."""

    def __init__(self, input_shape, num_classes: int, width_mult: float = 1.0, activation: str = "relu",
                 bias: bool = True, batch_norm: bool = True):
        super().__init__()
        c, h, w = _checked(input_shape, num_classes, width_mult, activation)
        if min(h, w) < 4:
            raise ValueError(f"arch='conv' needs images of at least 4x4, got input shape {tuple(input_shape)}")
        chans = [_scale(ch, width_mult) for ch in CONV_CHANNELS]
        blocks: list[nn.Module] = []
        for cin, cout in zip((c, *chans[:-1]), chans):
            blocks += [nn.Conv2d(cin, cout, 3, padding=1, bias=bias), _norm(batch_norm)(cout), _ACT[activation](),
                       nn.MaxPool2d(2)]
        self.features = nn.Sequential(*blocks)
        flat = chans[-1] * (h // 4) * (w // 4)
        hidden = _scale(CONV_HIDDEN, width_mult)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(flat, hidden, bias=bias), _ACT[activation](),
                                        nn.Linear(hidden, num_classes, bias=bias))

    @property
    def output(self) -> nn.Linear:
        return self.classifier[-1]

    def channel_consumers(self) -> list[tuple[nn.Conv2d, nn.Module]]:
        """``(conv, the one layer reading its channels)`` for each conv whose output channels can be pruned: each
        block runs conv -> BN -> act -> pool into the next conv, the last into the flattened hidden Linear."""
        convs = [m for m in self.features if isinstance(m, nn.Conv2d)]
        return list(zip(convs, convs[1:])) + [(convs[-1], self.classifier[1])]

    def forward(self, x):
        return self.classifier(self.features(as_nchw(x)))


class PadShortcut(nn.Module):
    """He et al.'s (2016) parameter-free shortcut "option A" for CIFAR: subsample by ``stride``, then zero-pad the
    extra channels (``cout - cin``, at the end)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.extra, self.stride = cout - cin, stride

    def forward(self, x):
        return F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, 0, self.extra))


class BasicBlock(nn.Module):
    """He et al. (2016) basic block: conv3x3-BN-ReLU-conv3x3-BN, plus a shortcut, then ReLU. Where the shape changes
    the shortcut is a 1x1 conv with BN ("B", prunekit's "resnet") or subsampling with zero-padded channels ("A",
    parameter-free, as He et al.'s CIFAR ResNets and "resnet20")."""

    def __init__(self, cin: int, cout: int, stride: int, act: type[nn.Module], shortcut: str = "B",
                 batch_norm: bool = True):
        super().__init__()
        norm = _norm(batch_norm)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = norm(cout)
        self.act = act()
        self.shortcut = nn.Sequential()
        if (stride != 1 or cin != cout) and shortcut == "A":
            self.shortcut = PadShortcut(cin, cout, stride)
        elif stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), norm(cout))

    def forward(self, x):
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act(out + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR-style ResNet (He et al. 2016, section 4.2): stem conv, 3 stages of basic blocks, global average pool."""

    def __init__(self, input_shape, num_classes: int, width_mult: float = 1.0, blocks_per_stage: int = 1,
                 activation: str = "relu", shortcut: str = "B", batch_norm: bool = True):
        super().__init__()
        c = _checked(input_shape, num_classes, width_mult, activation)[0]
        blocks_per_stage = count("blocks_per_stage", blocks_per_stage)
        choice("shortcut", shortcut, ("A", "B"))
        chans = [_scale(ch, width_mult) for ch in RESNET_CHANNELS]
        act = _ACT[activation]
        self.stem = nn.Sequential(nn.Conv2d(c, chans[0], 3, padding=1, bias=False), _norm(batch_norm)(chans[0]),
                                  act())
        layers, cin = [], chans[0]
        for i, cout in enumerate(chans):
            for j in range(blocks_per_stage):
                layers.append(BasicBlock(cin, cout, stride=2 if (i > 0 and j == 0) else 1, act=act, shortcut=shortcut,
                                         batch_norm=batch_norm))
                cin = cout
        self.stages = nn.Sequential(*layers)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(cin, num_classes)

    @property
    def output(self) -> nn.Linear:
        return self.fc

    def channel_consumers(self) -> list[tuple[nn.Conv2d, nn.Module]]:
        """``(conv, the one layer reading its channels)`` for each conv whose output channels can be pruned: a basic
        block's first conv feeds only its second; every other conv feeds a residual sum (its channels are shared)."""
        return [(b.conv1, b.conv2) for b in self.stages]

    def forward(self, x):
        return self.fc(self.pool(self.stages(self.stem(as_nchw(x)))))


def build_model(cfg: ModelConfig, input_shape, num_classes: int) -> nn.Module:
    """The model ``cfg`` describes, for inputs of ``input_shape`` (C, H, W) and ``num_classes`` outputs: its
    ``MODELS`` entry's ``build`` with the config's hidden widths, activation and bias or the entry's defaults, then
    the config's initialisation."""
    if not isinstance(cfg, ModelConfig):
        raise ValueError(f"cfg must be a ModelConfig, got {type(cfg).__name__}")
    input_shape = _checked(input_shape, num_classes)
    entry = MODELS[cfg.arch]
    model = entry.build(cfg, input_shape, num_classes, hidden=cfg.hidden or entry.hidden,
                        activation=cfg.activation or entry.activation, bias=entry.bias if cfg.bias is None else cfg.bias)
    if cfg.init != "default":
        init_weights(model, cfg.init)
    return model


def _mlp(cfg: ModelConfig, input_shape, num_classes: int, *, hidden, activation, bias) -> nn.Module:
    return MLP(math.prod(input_shape), tuple(_scale(h, cfg.width_mult) for h in hidden), num_classes, activation,
               bias)


def _conv(cfg: ModelConfig, input_shape, num_classes: int, *, hidden, activation, bias) -> nn.Module:
    return ConvNet(input_shape, num_classes, cfg.width_mult, activation, bias, cfg.batch_norm)


def _resnet(cfg: ModelConfig, input_shape, num_classes: int, *, hidden, activation, bias) -> nn.Module:
    return ResNet(input_shape, num_classes, cfg.width_mult, activation=activation, batch_norm=cfg.batch_norm)


def _resnet20(cfg: ModelConfig, input_shape, num_classes: int, *, hidden, activation, bias) -> nn.Module:
    # 6n + 2 layers with n = 3: stem, 3 stages x 3 blocks x 2 convs, classifier
    return ResNet(input_shape, num_classes, cfg.width_mult, blocks_per_stage=3, activation=activation, shortcut="A",
                  batch_norm=cfg.batch_norm)


# The models: one entry each (prunekit.core.registry)
MODELS.register(ModelEntry("mlp", _mlp, "fc", hidden=(128, 64)))
MODELS.register(ModelEntry("lenet300", _mlp, "fc", hidden=(300, 100)))                     # LeNet-300-100
MODELS.register(ModelEntry("forai", _mlp, "fc", hidden=(1000, 1000, 500, 200), bias=False))  # FOR.ai challenge
MODELS.register(ModelEntry("conv", _conv, "conv", batch_norm=True))
MODELS.register(ModelEntry("resnet", _resnet, "residual", bias=False, batch_norm=True))       # ResNet-8
MODELS.register(ModelEntry("resnet20", _resnet20, "residual", bias=False, batch_norm=True))   # He et al.'s
