"""Width-scaled models: fully connected, convolutional (VGG-style) and residual (CIFAR-style ResNet).

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
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune as torch_prune

from .checks import choice, count, fraction, number, pruned_count, sequence
from .checks import generator as checked_generator
from .config import ModelConfig
from .data import class_labels
from .device import modes_restored
from .registry import MODELS, ModelEntry
from .weights import RECURRENT, check_params, is_weight, read_weight, weight_key
from .weights import storage as weight_storage

__all__ = ["MLP", "ConvNet", "ResNet", "build_model", "prunable_parameters", "output_layer", "weight_coverage",
           "logits_model", "LogitsOf", "PRUNABLE_KINDS", "WEIGHT_LAYERS", "weight_storage", "init_weights",
           "parameter_names", "sparse_at_init", "hold_masks", "plain_state_dict", "count_parameters", "as_nchw",
           "logits_width", "checked_labels"]

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


# Modules whose weights are prunable by default, on any model: (module kind, weight attributes).
WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                 nn.ConvTranspose3d, nn.Embedding, nn.EmbeddingBag)  # one "weight" each
PRUNABLE_KINDS: tuple[tuple[type, tuple[str, ...]], ...] = (
    (WEIGHT_LAYERS, ("weight",)),
    ((nn.MultiheadAttention,), ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight")),  # + out_proj
)


def _weight_attrs(module: nn.Module) -> list[str]:
    for kinds, attrs in PRUNABLE_KINDS:
        if isinstance(module, kinds):  # under torch.nn.utils.prune the attribute is a plain tensor (weight_orig * mask)
            return [a for a in attrs if is_weight(module, a)]  # a parametrized weight is not computed to be found
    return []


# Modules the layer into the logits may be followed by (element-wise maps, dropout, reshapes, pooling): the trace
# follows them back from the model's output to the weight layer that feeds them (SqueezeNet's conv -> ReLU -> pool).
PASSTHROUGH = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
               nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Tanh, nn.Sigmoid, nn.Identity, nn.Dropout, nn.Dropout1d,
               nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Flatten, nn.Unflatten, nn.AvgPool1d, nn.AvgPool2d,
               nn.AvgPool3d, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
               nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)


def _same_tensor(a, b) -> bool:
    """``a`` is ``b`` or a view of all of it (a flatten, a reshape)."""
    return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
            and (a is b or (a.numel() == b.numel() and a.numel() > 0 and a.data_ptr() == b.data_ptr())))


class LogitsOf(nn.Module):
    """``output_fn(model(x))``: a view of a model whose forward returns a dict, a tuple or an object, as a module that
    returns the logits tensor (the model's modules and weights are shared, not copied)."""

    def __init__(self, model: nn.Module, output_fn):
        super().__init__()
        self.model, self.output_fn = model, output_fn
        self.training = model.training  # the wrapper in the model's mode (its own flag only: the model's are kept)

    def forward(self, x):
        return self.output_fn(self.model(x))


def logits_model(model: nn.Module, output_fn=None) -> nn.Module:
    """``model`` itself, or :class:`LogitsOf` it when ``output_fn`` (``model output -> logits tensor``) is given."""
    if output_fn is None:
        return model
    if not callable(output_fn):
        raise ValueError(f"output_fn must be a function from the model's output to its logits, got {output_fn!r}")
    return LogitsOf(model, output_fn)


def output_layer(model: nn.Module, example: torch.Tensor | None = None, output_fn=None) -> nn.Module:
    """The layer into the logits: ``model.output`` when the model names one (prunekit's models do), otherwise the
    prunable layer (Linear, Conv, ...) whose output becomes the model's output on ``example`` inputs unchanged or
    through element-wise maps, dropout, reshapes and pooling only (:data:`PASSTHROUGH`: SqueezeNet's classifier conv,
    followed by a ReLU, an adaptive average pool and a flatten), found by tracing a forward pass with hooks
    (``output_fn`` maps a dict or tuple output to the logits).

    Raises ``ValueError`` when there is no ``example`` to trace, when the forward pass does not return a tensor
    (pass ``output_fn``), or when the output does not come from a prunable layer that way (the head is followed by
    an operation such as ``log_softmax``: pass ``params=`` to choose the weights yourself).
    """
    named = getattr(model, "output", None)
    if isinstance(named, nn.Module):  # a head named output; a Sequential head: its last weight layer
        layers = [m for m in named.modules() if _weight_attrs(m)]
        if layers:
            return layers[-1]
    if example is None:
        raise ValueError(f"{type(model).__name__} names no output layer (model.output): give example inputs (data) so "
                         "prunekit can trace the layer into the logits, or choose the weights with params= "
                         "(a list of (module, 'weight') pairs), or include_output=True")
    produced: list[tuple[nn.Module, object, torch.Tensor]] = []  # (module, its first input, its output), in order

    def record(mod, inputs, out):
        produced.append((mod, inputs[0] if inputs else None, out))

    hooks = [m.register_forward_hook(record) for m in model.modules()
             if (_weight_attrs(m) and not isinstance(m, nn.MultiheadAttention)) or isinstance(m, PASSTHROUGH)]
    first = next(iter(model.parameters()), None)
    example = example[:2] if first is None else example[:2].to(first.device)
    try:
        with modes_restored(model), torch.no_grad():
            model.eval()
            out = logits_model(model, output_fn)(example)
    finally:
        for h in hooks:
            h.remove()
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"{type(model).__name__}'s forward returns a {type(out).__name__}, not a logits tensor: pass "
                         "output_fn= (for example output_fn=lambda out: out['logits']) where the measure takes it, or "
                         "measure prunekit.core.models.logits_model(model, output_fn), which every measure takes")
    target, before = out, len(produced)
    while True:  # back from the output: the last module that produced it, through pass-through modules
        hits = [i for i in range(before) if _same_tensor(produced[i][2], target)]
        if not hits:
            break
        module, inp, _ = produced[hits[-1]]
        if not isinstance(module, PASSTHROUGH):
            return module
        target, before = inp, hits[-1]
    raise ValueError(f"no Linear, Conv or Embedding layer of {type(model).__name__} produces its output unchanged or "
                     "through element-wise maps and pooling modules only (the head is followed by another operation, "
                     "e.g. log_softmax), so the layer into the logits cannot be told apart: choose the weights with "
                     "params= or use include_output=True")


def logits_width(model: nn.Module, example: torch.Tensor, output_fn=None) -> int:
    """The number of logits (classes) ``model`` gives, from one forward pass on two ``example`` samples."""
    first = next(iter(model.parameters()), None)
    example = example[:2] if first is None else example[:2].to(first.device)
    with modes_restored(model), torch.no_grad():
        model.eval()
        out = logits_model(model, output_fn)(example)
    if not isinstance(out, torch.Tensor) or out.dim() < 1:
        raise ValueError(f"{type(model).__name__}'s forward returns a {type(out).__name__}, not a logits tensor: pass "
                         "output_fn= where the measure takes it, or measure prunekit.core.models.logits_model(model, "
                         "output_fn)")
    return int(out.shape[-1])


def checked_labels(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, name: str = "data",
                   output_fn=None) -> torch.Tensor:
    """``y`` as int64 class labels of ``model``'s logits: ``prunekit.core.data.class_labels`` with the number of
    classes from one forward pass on two samples of ``x`` (float or out-of-range labels refused before compute)."""
    return class_labels(y, logits_width(model, x, output_fn), name=name)


def prunable_parameters(model: nn.Module, include_output: bool = False, *, example: torch.Tensor | None = None,
                        output_fn=None) -> list[tuple[nn.Module, str]]:
    """The default weight set, on any model: ``[(module, attribute), ...]`` for the weight of every Linear,
    Conv1d/2d/3d, ConvTranspose1d/2d/3d, Embedding and EmbeddingBag, and every MultiheadAttention's input projection
    (``in_proj_weight``, or ``q/k/v_proj_weight``; its ``out_proj`` is a Linear), in registration order; the layer into
    the logits (:func:`output_layer`, traced on ``example`` when the model names none) only if ``include_output``.
    Biases, normalisation parameters and recurrent weights (``nn.GRU``, ``nn.LSTM``, ``nn.RNN``) are never in it. A
    tensor is listed once, however many modules share it (tied weights: one Parameter), and a tensor the layer into
    the logits shares (an embedding tied to the head) is left out with it. Weights held by torch.nn.utils.prune and
    parametrized weights (weight_norm, spectral_norm) are listed as the weights the forward pass uses
    (``prunekit.core.weights``).

    Raises ``ValueError`` when the set is empty, naming the weights the model has and how to choose them
    (``params=[(model.rnn, 'weight_ih_l0'), ...]``).
    """
    out = None if include_output else output_layer(model, example, output_fn)
    seen = set() if out is None else {id(weight_key(out, a)) for a in _weight_attrs(out)}
    params = []
    for m in model.modules():
        for a in _weight_attrs(m):
            key = id(weight_key(m, a))
            if key not in seen:
                seen.add(key)
                params.append((m, a))
    if not params:
        raise ValueError(_empty_default_set(model, out))
    return params


def _empty_default_set(model: nn.Module, out: nn.Module | None) -> str:
    """Why the default weight set of ``model`` is empty, and how to choose weights instead."""
    others = [(path, attr, module) for path, module in model.named_modules()
              for attr, p in module.named_parameters(recurse=False) if p.dim() >= 2 and module is not out]
    head = "" if out is None else (" but the layer into the logits, which is left out by default "
                                   "(include_output=True measures it)")
    text = f"the default weight set of {type(model).__name__} is empty: it has no Linear, Conv, Embedding or " \
           f"attention weight{head}"
    if not others:
        return text + "; choose the weights with params=[(module, 'weight'), ...]"
    recurrent = sorted({type(m).__name__ for _, _, m in others if isinstance(m, RECURRENT)})
    why = (f"; recurrent weights ({', '.join(recurrent)}) are not a default kind" if recurrent else
           f"; its other weights ({', '.join(sorted({type(m).__name__ for _, _, m in others}))}) are not a default "
           "kind")
    shown = ", ".join(f"({_module_expr(path)}, {attr!r})" for path, attr, _ in others[:3])
    return text + why + f": choose them with params=[{shown}{', ...' if len(others) > 3 else ''}]"


def _module_expr(path: str) -> str:
    """``model.rnn`` for a dotted path of names, ``model.get_submodule('0.rnn')`` otherwise."""
    if not path:
        return "model"
    return f"model.{path}" if all(p.isidentifier() for p in path.split(".")) else f"model.get_submodule({path!r})"


def weight_coverage(model: nn.Module, params) -> dict:
    """What a measure covered: ``{"weights": n measured, "model_parameters": all parameters of the model (trainable or
    frozen, each tensor once), "share": their ratio, "tensors": the measured tensors' names}`` (names as
    ``model.state_dict()`` has them). ``params`` must be weights of ``model``, each once (``ValueError`` otherwise)."""
    params = check_params(params, model)
    measured = sum(read_weight(m, a).numel() for m, a in params)
    total = sum(p.numel() for p in model.parameters())
    return {"weights": measured, "model_parameters": total, "share": measured / total if total else float("nan"),
            "tensors": parameter_names(model, params)}


def init_weights(model: nn.Module, scheme: str) -> None:
    """Re-initialise Linear/Conv2d weights (biases to 0): Glorot & Bengio's (2010, eq. 16) normalised initialisation,
    ``Var(w) = 2 / (fan_in + fan_out)`` (uniform on ``±sqrt(6 / (fan_in + fan_out))``, or normal), or He et al.'s
    (2015), ``Var(w) = 2 / fan_in``. Glorot has no gain, as in ``torch.nn.init.xavier_*``'s default and Keras'
    ``glorot_uniform``, whatever the activation; He's gain is ReLU's.

    Draws from torch's global generator: seed it (``torch.manual_seed``) for reproducibility.
    """
    fns = {
        "glorot_uniform": lambda w: nn.init.xavier_uniform_(w, gain=1.0),
        "glorot_normal": lambda w: nn.init.xavier_normal_(w, gain=1.0),
        "he_uniform": lambda w: nn.init.kaiming_uniform_(w, nonlinearity="relu"),
        "he_normal": lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"),
    }
    if scheme == "default":
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.reset_parameters()
        return
    if scheme not in fns:
        raise ValueError(f"init={scheme!r} is not supported; allowed: 'default', {', '.join(map(repr, fns))}")
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            fns[scheme](m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def parameter_names(model: nn.Module, params) -> list[str]:
    """``"<module name>.<attribute>"`` of each ``(module, attribute)`` pair, as ``model.state_dict()`` names them."""
    where = {id(m): n for n, m in model.named_modules()}
    return [f"{where[id(m)]}.{a}".lstrip(".") for m, a in params]


def sparse_at_init(model: nn.Module, share: float, generator: torch.Generator | None = None,
                   include_output: bool = False) -> dict[str, torch.Tensor]:
    """Source 002's smaller networks (Sec. 2.2.1, ``ModelConfig.init_density``): ``model``, freshly initialised,
    randomly pruned at initialisation to ``share`` of its prunable weights, in place; returns the keep masks (True =
    kept) by parameter name, to hold in training (:func:`hold_masks`).

    Every prunable layer ``l`` loses exactly ``round((1 - share) * n_l)`` weights (``prunekit.core.checks.
    pruned_count``) drawn uniformly at random (one ``torch.randperm`` per layer, in layer order, from ``generator``);
    they are set to 0 and the ``kept_l`` others are multiplied by ``sqrt(n_l / kept_l)``, which turns He-normal
    weights (variance 2 / fan_in; ``ModelConfig(init="he")``) into He-normal weights for the pruned layer's fan-in
    (variance 2 / (kept share * fan_in)); weights of another initialisation are scaled by the same factor (and are then
    not He's). The units and feature maps stay those of the full network: it is smaller in weights, not narrower.
    The prunable weights are every Linear/Conv weight but the layer into the logits (``include_output=True`` prunes
    that one too).
    """
    share = fraction("share", share, low_open=True)
    g = checked_generator(generator)
    params = prunable_parameters(model, include_output=include_output)
    orders = [torch.randperm(getattr(m, a).numel(), generator=g) for m, a in params]
    masks, empty = {}, []
    with torch.no_grad():
        for (module, attr), name, order in zip(params, parameter_names(model, params), orders):
            w = getattr(module, attr)
            keep = torch.ones(w.numel(), dtype=torch.bool)
            keep[order[:pruned_count(100.0 * (1.0 - share), w.numel())]] = False
            keep = keep.view(w.shape).to(w.device)
            w.masked_fill_(~keep, 0.0)
            kept = int(keep.sum())
            if kept:
                w.mul_(math.sqrt(keep.numel() / kept))
            else:
                empty.append(f"{name} ({w.numel()} weights)")
            masks[name] = keep
    if empty:
        warnings.warn(f"share={share:g} (ModelConfig.init_density) keeps no weight of {', '.join(empty)}: such a "
                      "layer passes nothing on, and the network cannot learn through it", RuntimeWarning, stacklevel=2)
    return masks


def hold_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Hold ``{parameter name: keep mask}`` through training with ``torch.nn.utils.prune.custom_from_mask``: every
    forward uses ``w = w_orig * mask`` (fold it with :func:`plain_state_dict`)."""
    modules = dict(model.named_modules())
    for name, keep in masks.items():
        owner, _, attr = name.rpartition(".")
        module = modules[owner]
        torch_prune.custom_from_mask(module, attr, keep.to(getattr(module, attr).device))


def plain_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state_dict with ``torch.nn.utils.prune`` reparametrisations folded: ``w = w_orig * w_mask``."""
    out = {}
    for k, v in state.items():
        if k.endswith("_mask") and k[:-5] + "_orig" in state:
            continue
        if k.endswith("_orig") and k[:-5] + "_mask" in state:
            out[k[:-5]] = (v * state[k[:-5] + "_mask"]).detach().clone()
        else:
            out[k] = v.detach().clone()
    return out


# The models: one entry each (prunekit.core.registry)
MODELS.register(ModelEntry("mlp", _mlp, "fc", hidden=(128, 64)))
MODELS.register(ModelEntry("lenet300", _mlp, "fc", hidden=(300, 100)))                     # LeNet-300-100
MODELS.register(ModelEntry("forai", _mlp, "fc", hidden=(1000, 1000, 500, 200), bias=False))  # FOR.ai challenge
MODELS.register(ModelEntry("conv", _conv, "conv", batch_norm=True))
MODELS.register(ModelEntry("resnet", _resnet, "residual", bias=False, batch_norm=True))       # ResNet-8
MODELS.register(ModelEntry("resnet20", _resnet20, "residual", bias=False, batch_norm=True))   # He et al.'s
