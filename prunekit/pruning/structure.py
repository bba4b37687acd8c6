"""What pruning needs to know of a model's structure, from the model itself or from its traced forward graph.

Two questions, asked of any model, never by its class (``isinstance``):

* **Which BatchNorm reads each layer's output?** (:func:`following_batchnorms`) Unit masks zero a pruned unit's
  BatchNorm weight and bias too (so its output is exactly 0), and the batch-norm scales rank channels (``bn_scale``).
  Answered from a ``torch.fx`` trace of the model's forward: the BatchNorm whose input is the layer's output.
* **Which one layer reads each conv's channels?** (:func:`channel_consumers`) Channel pruning (source 002, Network
  Slimming) removes a conv's output channel, its BatchNorm entries and, through the zeros, the next layer's inputs
  from it: a channel may go only where exactly one next layer reads it. A model that knows says so itself
  (``model.channel_consumers()``: prunekit's ``ConvNet`` and ``ResNet``, as OpenLTH's models own their defaults);
  for any other model the trace answers: a conv whose output runs, through an optional BatchNorm and channel-wise
  operations only (activations, pooling, dropout; a flatten before a Linear), into exactly one Conv2d or Linear and
  nowhere else (no residual sum, no concatenation) (:func:`traced_channel_consumers`).

A model ``torch.fx`` cannot trace (Python control flow on tensor values) is refused with a ``ValueError`` that says
so: pairing by registration order alone would pair the wrong BatchNorm when a model registers ``conv1, conv2, bn1,
bn2``. Traces are kept per model (and made again when its modules change).
"""

from __future__ import annotations

import weakref

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from ..core.prunable import PASSTHROUGH, WEIGHT_LAYERS
from ..core.weights import check_params, read_weight

__all__ = ["following_batchnorms", "channel_consumers", "traced_channel_consumers"]

BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)

# Operations that keep a conv's channels apart (each output channel is a function of the same input channel only)
CHANNELWISE_MODULES = tuple(m for m in PASSTHROUGH if m not in (nn.Flatten, nn.Unflatten)) + BATCHNORMS
CHANNELWISE_FUNCTIONS = {F.relu, torch.relu, F.relu6, F.leaky_relu, F.elu, F.gelu, F.silu, F.hardswish, torch.sigmoid,
                         torch.tanh, F.sigmoid, F.tanh, F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d,
                         F.adaptive_max_pool2d, F.dropout, F.dropout2d}
CHANNELWISE_METHODS = {"relu", "sigmoid", "tanh", "contiguous"}


class _LayerTracer(torch.fx.Tracer):
    """Keeps every weight layer and BatchNorm one node, subclasses included (the default tracer enters a user's
    ``class MyConv(nn.Conv2d)`` and would leave no module node to pair)."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, (*WEIGHT_LAYERS, *BATCHNORMS)) or super().is_leaf_module(m, qualname)


_TRACES: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()


def _graph(model: nn.Module, why: str) -> torch.fx.Graph:
    """The ``torch.fx`` graph of ``model``'s forward (kept while its modules stay the same); a ``ValueError`` saying
    ``why`` it was needed when the forward cannot be traced."""
    key = tuple((name, id(m)) for name, m in model.named_modules())
    kept = _TRACES.get(model)
    if kept is not None and kept[0] == key:
        return kept[1]
    try:
        graph = _LayerTracer().trace(model)
    except Exception as err:  # fx raises many types for untraceable Python (control flow on values, len, ...)
        raise ValueError(f"{why} of {type(model).__name__} is read from its forward graph, traced with torch.fx, "
                         f"which failed ({type(err).__name__}: {err})") from None
    _TRACES[model] = (key, graph)
    return graph


def following_batchnorms(model: nn.Module, params) -> list[nn.Module | None]:
    """For each layer of ``params``, the BatchNorm that reads its output directly in ``model``'s forward (or None),
    with as many features as the layer has output units: from the ``torch.fx`` trace, the BatchNorm node whose input
    is the layer's node. A model without BatchNorm needs no trace; one that cannot be traced is refused
    (``ValueError``: unit masks and BN scales need the pairing; use weight masks, ``Masks(units=False)``, or a
    traceable model)."""
    params = check_params(params)
    pairs = {}
    if any(isinstance(m, BATCHNORMS) for m in model.modules()):
        graph = _graph(model, "the BatchNorm after each layer (for unit masks and BN scales; weight masks, "
                              "Masks(units=False), need none)")
        modules = dict(model.named_modules())
        for node in graph.nodes:
            if node.op == "call_module" and isinstance(modules.get(node.target), BATCHNORMS) and node.args:
                src = node.args[0]
                if isinstance(src, torch.fx.Node) and src.op == "call_module" and src.target in modules:
                    pairs[id(modules[src.target])] = modules[node.target]
    out = []
    for module, name in params:
        bn = pairs.get(id(module))
        units = read_weight(module, name).shape[0]
        out.append(bn if bn is not None and bn.num_features == units else None)
    return out


def channel_consumers(model: nn.Module) -> list[tuple[nn.Conv2d, nn.Module]]:
    """``(conv, the one next layer reading its channels)`` for each conv of ``model`` whose output channels can be
    pruned, in module order: the model's own answer (``model.channel_consumers()``, as prunekit's ``ConvNet`` and
    ``ResNet`` give it) or else the traced graph's (:func:`traced_channel_consumers`)."""
    own = getattr(model, "channel_consumers", None)
    if callable(own):
        return list(own())
    return traced_channel_consumers(model)


def traced_channel_consumers(model: nn.Module) -> list[tuple[nn.Conv2d, nn.Module]]:
    """``(conv, next layer)`` read from the ``torch.fx`` trace of ``model``'s forward, in module order: every
    ``Conv2d`` (``groups=1``, called once) whose output goes, through an optional BatchNorm and channel-wise
    operations only (:data:`CHANNELWISE_MODULES`, :data:`CHANNELWISE_FUNCTIONS`; a flatten only right before a
    Linear), into exactly one ``Conv2d`` (``groups=1``) or ``Linear`` and into nothing else. A conv whose channels
    also feed a residual sum, a concatenation or a second layer is left out; a model the trace cannot read is
    refused (``ValueError``)."""
    graph = _graph(model, "the layer reading each conv's channels (for channel pruning)")
    modules = dict(model.named_modules())
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    found = {}
    for node in graph.nodes:
        conv = modules.get(node.target) if node.op == "call_module" else None
        if not isinstance(conv, nn.Conv2d) or conv.groups != 1 or calls[node.target] != 1:
            continue
        consumer = _one_consumer(node, conv.out_channels, modules, calls)
        if consumer is not None:
            found[id(conv)] = (conv, consumer)
    return [found[id(m)] for m in model.modules() if id(m) in found]


def _one_consumer(node: torch.fx.Node, channels: int, modules: dict, calls: dict) -> nn.Module | None:
    """The one Conv2d or Linear that reads ``node``'s channels through channel-wise operations, or None."""
    current, flat = node, False
    while True:
        users = list(current.users)
        if len(users) != 1 or not users[0].args or users[0].args[0] is not current:
            return None
        user = users[0]
        module = modules.get(user.target) if user.op == "call_module" else None
        if module is not None and calls[user.target] != 1 and any(True for _ in module.parameters()):
            return None  # a layer with weights called twice (a parameter-free activation may be shared)
        if isinstance(module, nn.Conv2d) and not flat:
            return module if module.groups == 1 and module.in_channels == channels else None
        if isinstance(module, nn.Linear) and flat:
            return module if module.in_features % channels == 0 else None
        if isinstance(module, BATCHNORMS) and not flat:
            if module.num_features != channels:
                return None
        elif isinstance(module, CHANNELWISE_MODULES) or (
                user.op == "call_function" and user.target in CHANNELWISE_FUNCTIONS) or (
                user.op == "call_method" and user.target in CHANNELWISE_METHODS):
            pass
        elif _flattens(user, module) and not flat:
            flat = True
        else:
            return None
        current = user


def _flattens(node: torch.fx.Node, module: nn.Module | None) -> bool:
    """``node`` flattens every dimension after the batch's (``nn.Flatten()``, ``torch.flatten(x, 1)``,
    ``x.flatten(1)``)."""
    if isinstance(module, nn.Flatten):
        return module.start_dim == 1 and module.end_dim == -1
    rest = tuple(node.args[1:]) + tuple(node.kwargs.values())
    if node.op == "call_function" and node.target is torch.flatten:
        return rest == (1,)
    return node.op == "call_method" and node.target == "flatten" and rest == (1,)

