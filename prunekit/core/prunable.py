"""Weight discovery on any model: the default prunable weight set, the layer into the logits, what a measure covered.

prunekit's measures take any PyTorch model. They measure, by default, the weight of every Linear, Conv1d/2d/3d,
ConvTranspose, Embedding and attention input projection (:data:`PRUNABLE_KINDS`) but the layer into the logits, which a
model may name (``model.output``, as prunekit's models do) or which is found by tracing one forward pass
(:func:`output_layer`). :func:`weight_coverage` says what a measure covered; :func:`logits_model` views a model whose
forward returns a dict or a tuple as one that returns its logits; :func:`checked_labels` checks class labels against
the logits before any compute.
"""

from __future__ import annotations

import torch
from torch import nn

from .data import class_labels
from .device import modes_restored
from .weights import RECURRENT, check_params, is_weight, read_weight, weight_key

__all__ = ["prunable_parameters", "output_layer", "weight_coverage", "logits_model", "LogitsOf", "PRUNABLE_KINDS",
           "WEIGHT_LAYERS", "PASSTHROUGH", "parameter_names", "count_parameters", "logits_width", "checked_labels"]


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
                         "measure prunekit.core.prunable.logits_model(model, output_fn), which every measure takes")
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
                         "output_fn= where the measure takes it, or measure prunekit.core.prunable.logits_model(model, "
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



def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def parameter_names(model: nn.Module, params) -> list[str]:
    """``"<module name>.<attribute>"`` of each ``(module, attribute)`` pair, as ``model.state_dict()`` names them."""
    where = {id(m): n for n, m in model.named_modules()}
    return [f"{where[id(m)]}.{a}".lstrip(".") for m, a in params]

