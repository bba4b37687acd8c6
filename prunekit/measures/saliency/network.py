"""Source 001's unit network: a fully connected net as plain weight tensors (:class:`UnitNet`), read from a model and
checked against the model's own outputs (:func:`from_model`), with the cached forward pass the estimators and serial
pruning share (:class:`Forward`).

Everything works on weight tensors (:class:`UnitNet`) with a cached forward pass (list of layer outputs): removing a
unit of layer ``l`` only recomputes the layers above it, and brute force evaluates all candidates of a step in one
batched pass (``z_{l+1} - h_j w_{:,j}`` for every candidate ``j`` at once, then the rest of the net batched).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...core.checks import choice, sequence
from ...core.device import modes_restored

__all__ = ["LOSSES", "ACTIVATIONS", "UnitNet", "from_model", "check_unit_net", "prepare_data", "to_model"]

LOSSES = ("sse", "cross_entropy")
ACTIVATIONS = ("sigmoid", "tanh", "relu")


# ---------------------------------- Activations: value, first and second derivative, as functions of the pre-activation
def activation(name: str, x: torch.Tensor) -> torch.Tensor:
    if name == "sigmoid":
        return torch.sigmoid(x)
    if name == "tanh":
        return torch.tanh(x)
    return torch.relu(x)


def activation_derivatives(name: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(σ'(x), σ''(x)) for the hidden activation ``name``."""
    if name == "sigmoid":
        s = torch.sigmoid(x)
        d1 = s * (1 - s)
        return d1, d1 * (1 - 2 * s)
    if name == "tanh":
        t = torch.tanh(x)
        d1 = 1 - t * t
        return d1, -2 * t * d1
    d1 = (x > 0).to(x.dtype)
    return d1, torch.zeros_like(x)


# ---------------------------------------------------------------------------------------- The network as weight tensors
@dataclass
class UnitNet:
    """A fully connected net ``x -> act(W_0 x + b_0) -> ... -> W_L h + b_L`` as plain tensors.

    weights[l]: [out, in]; weights[-1] is the output layer. biases[l]: [out] or None. ``loss`` is "sse" (sigmoid
    outputs, source 001) or "cross_entropy" (softmax). Hidden units are numbered globally, layer after layer.
    """

    weights: list[torch.Tensor]
    biases: list[torch.Tensor | None]
    activation: str = "sigmoid"
    loss: str = "sse"

    def __post_init__(self):
        choice("activation", self.activation, ACTIVATIONS)
        choice("loss", self.loss, LOSSES)
        weights = sequence("weights", self.weights, item=_matrix)
        biases = sequence("biases", self.biases, nonempty=False, item=lambda n, b: b if b is None else _vector(n, b))
        if len(weights) < 2:
            raise ValueError(f"weights=[{len(weights)} matrix] must hold at least one hidden layer and the output "
                             "layer")
        for i, (w, v) in enumerate(zip(weights[1:], weights[:-1])):
            if w.shape[1] != v.shape[0]:
                raise ValueError(f"weights[{i + 1}] has shape {tuple(w.shape)}: it must take the {v.shape[0]} outputs "
                                 f"of weights[{i}]")
        if len(biases) != len(weights):
            raise ValueError(f"biases=[{len(biases)} entries] must have one entry (tensor or None) per weight matrix "
                             f"({len(weights)})")
        for i, (b, w) in enumerate(zip(biases, weights)):
            if b is not None and b.shape != (w.shape[0],):
                raise ValueError(f"biases[{i}] has shape {tuple(b.shape)}: weights[{i}] has {w.shape[0]} outputs")
        self.weights, self.biases = weights, biases

    @property
    def widths(self) -> list[int]:
        """Hidden layer widths."""
        return [int(w.shape[0]) for w in self.weights[:-1]]

    @property
    def num_units(self) -> int:
        return sum(self.widths)

    def unit_index(self) -> list[tuple[int, int]]:
        """Global unit number -> (hidden layer, unit in layer)."""
        return [(l, j) for l, h in enumerate(self.widths) for j in range(h)]

    def full_masks(self) -> list[torch.Tensor]:
        return [torch.ones(h, dtype=self.weights[0].dtype, device=self.weights[0].device) for h in self.widths]


def _matrix(name: str, w) -> torch.Tensor:
    if not isinstance(w, torch.Tensor) or w.dim() != 2:
        raise ValueError(f"{name}={type(w).__name__} must be a weight matrix [out, in]")
    return w


def _vector(name: str, b) -> torch.Tensor:
    if not isinstance(b, torch.Tensor) or b.dim() != 1:
        raise ValueError(f"{name}={type(b).__name__} must be a bias vector [out] or None")
    return b


_UNIT_ACTIVATIONS = {nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.ReLU: "relu"}
_PASS_THROUGH = (nn.Flatten, nn.Identity, nn.Dropout)  # no effect on an eval-mode forward of flattened inputs


def _sequential_layers(model: nn.Sequential) -> tuple[list[nn.Linear], str]:
    """The Linear layers and the one activation of ``Flatten, Linear, act, ..., Linear``, in the order the Sequential
    runs them; ``ValueError`` naming any other module or another order."""
    layers = [m for m in model if not isinstance(m, _PASS_THROUGH)]
    odd = sorted({type(m).__name__ for m in layers if not isinstance(m, (nn.Linear, *_UNIT_ACTIVATIONS))})
    if odd:
        raise ValueError(f"from_model needs an MLP (Flatten, Linear, act, ..., Linear); the model also holds "
                         f"{', '.join(odd)}, which its unit network would leave out")
    kinds = ["L" if isinstance(m, nn.Linear) else "a" for m in layers]
    acts = {_UNIT_ACTIVATIONS[type(m)] for m in layers if not isinstance(m, nn.Linear)}
    if len(layers) < 3 or kinds != ["L", "a"] * (len(layers) // 2) + ["L"] or len(acts) != 1:
        raise ValueError("from_model needs an MLP: Flatten, Linear, act, ..., Linear (alternating, one activation "
                         f"type: sigmoid, tanh or relu); got {' -> '.join(type(m).__name__ for m in layers)}")
    return [m for m in layers if isinstance(m, nn.Linear)], acts.pop()


def from_model(model: nn.Module, loss: str, dtype: torch.dtype = torch.float64, *,
               example: torch.Tensor | None = None) -> UnitNet:
    """Extract a :class:`UnitNet` from ``prunekit.core.models.MLP`` (``hidden_layers``, ``output``, ``activation``), from
    an ``nn.Sequential`` of Flatten / Linear / Sigmoid|Tanh|ReLU / ... / Linear, or from any other module whose forward
    is such an MLP, checked on ``example`` inputs. Weights are copied (detached) to ``dtype`` (float64 by default, the
    safe choice for near-ties; float32 halves the time of brute force, whose ΔE are summed from per-sample
    differences in float64 and stay accurate to ~1e-6 relative).

    loss: "sse" (sigmoid outputs, source 001's networks) or "cross_entropy" (softmax); no default, since the
      saliencies are changes of this loss and rank units differently under the two.
    example: inputs on which the unit network's outputs are compared with ``model``'s own; a model with its own
      forward (not a Sequential) is refused without them, and any model whose outputs differ (batch norm, a residual
      connection, layers run in another order than registered) is refused with a ``ValueError`` that says so.
    """
    choice("loss", loss, LOSSES)
    if hasattr(model, "hidden_layers") and hasattr(model, "output") and hasattr(model, "activation"):
        linears = list(model.hidden_layers) + [model.output]
        activation = model.activation
    elif isinstance(model, nn.Sequential):
        linears, activation = _sequential_layers(model)
    else:
        if example is None:
            raise ValueError(f"{type(model).__name__} has its own forward: give example= inputs so that from_model can "
                             "check its unit network (its Linear and activation modules in registration order) "
                             "against the model's outputs")
        odd = sorted({type(m).__name__ for m in model.modules() if not list(m.children())
                      and not isinstance(m, (nn.Linear, *_UNIT_ACTIVATIONS, *_PASS_THROUGH))})
        if odd:
            raise ValueError(f"from_model needs an MLP; {type(model).__name__} also holds {', '.join(odd)}, which its "
                             "unit network would leave out")
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        acts = {_UNIT_ACTIVATIONS[type(m)] for m in model.modules() if type(m) in _UNIT_ACTIVATIONS}
        if len(linears) < 2 or len(acts) != 1:
            raise ValueError(f"from_model needs an MLP with at least one hidden layer and one activation type; "
                             f"{type(model).__name__} has {len(linears)} Linear layers and activations {sorted(acts)}")
        activation = acts.pop()
    weights = [m.weight.detach().to(dtype).clone() for m in linears]
    biases = [None if m.bias is None else m.bias.detach().to(dtype).clone() for m in linears]
    try:
        net = UnitNet(weights, biases, activation=activation, loss=loss)
    except ValueError as err:  # a model whose own forward runs its layers in another order than it registers them
        raise ValueError(f"the unit network built from {type(model).__name__} (its Linear and activation modules in "
                         f"registration order) does not compute the model's outputs: its layers do not chain in "
                         f"that order ({err})") from None
    if example is not None:
        check_unit_net(net, model, example)
    return net


def check_unit_net(net: UnitNet, model: nn.Module, example: torch.Tensor) -> None:
    """Refuse (``ValueError``) a unit network whose logits on ``example`` differ from ``model``'s own (float64
    comparison, tolerance ``max(1e-4, 16 eps)`` of the logits' scale, eps of the model's dtype: bf16 and fp16 nets
    pass)."""
    first = next(iter(model.parameters()), None)
    device, dtype = (first.device, first.dtype) if first is not None else (example.device, example.dtype)
    tol = max(1e-4, 16 * torch.finfo(dtype).eps) if dtype.is_floating_point else 1e-4
    with modes_restored(model):
        model.eval()
        with torch.no_grad():
            want = model(example.to(device)).detach().to(torch.float64).cpu()
            try:
                got = to_model(net)(example.flatten(1).to(net.weights[0].dtype).to(net.weights[0].device))
            except RuntimeError as err:  # the layers do not even chain in registration order
                raise ValueError(f"the unit network built from {type(model).__name__} (its Linear and activation "
                                 "modules in registration order) does not compute the model's outputs: its layers "
                                 f"do not chain in that order ({err})") from None
    got = got.detach().to(torch.float64).cpu()
    if got.shape != want.shape or not torch.allclose(got, want, rtol=tol, atol=tol * float(want.abs().max() + 1e-12)):
        gap = float((got - want).abs().max()) if got.shape == want.shape else float("nan")
        raise ValueError(f"the unit network built from {type(model).__name__} (its Linear and activation modules in "
                         f"registration order) does not compute the model's outputs (largest difference {gap:.3g}): "
                         "the forward holds something else (a residual connection, batch norm, another layer "
                         "order), so its saliencies would be another network's")


def prepare_data(net: UnitNet, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flatten inputs to [N, D] and turn labels into targets: one-hot [N, K] for int labels, floats [N, K] as given."""
    dtype, device = net.weights[0].dtype, net.weights[0].device  # the net's device (the model's, see from_model)
    x, y = x.reshape(x.shape[0], -1).to(device, dtype), y.to(device)
    k = net.weights[-1].shape[0]
    if y.dtype in (torch.int64, torch.int32, torch.int16, torch.uint8):
        t = torch.nn.functional.one_hot(y.long().reshape(-1), k).to(dtype)
    else:
        t = y.reshape(y.shape[0], -1).to(dtype)
        if t.shape[1] != k:
            raise ValueError(f"y has {t.shape[1]} targets per sample but the net has {k} outputs")
        if net.loss == "cross_entropy":
            raise ValueError("loss='cross_entropy' needs integer class labels y")
    return x, t


def to_model(net: UnitNet, masks=None) -> nn.Sequential:
    """The net as ``Linear -> act -> ... -> Linear`` modules (copies, in the net's dtype and device). A unit removed by
    ``masks`` (a 0 entry) has its outgoing weights, the next layer's column, set to 0, so its output contributes
    exactly nothing, as in the masked forward pass used for the saliencies."""
    act = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}[net.activation]
    keeps = masks if masks is not None else net.full_masks()
    if len(keeps) != len(net.widths) or any(m.numel() != h for m, h in zip(keeps, net.widths)):
        raise ValueError(f"masks must hold one vector per hidden layer with {net.widths} entries")
    layers: list[nn.Module] = []
    for l, (w, b) in enumerate(zip(net.weights, net.biases)):
        lin = nn.Linear(w.shape[1], w.shape[0], bias=b is not None, dtype=w.dtype, device=w.device)
        with torch.no_grad():
            lin.weight.copy_(w if l == 0 else w * keeps[l - 1].to(w))
            if b is not None:
                lin.bias.copy_(b)
        layers += [lin] if l == len(net.weights) - 1 else [lin, act()]
    return nn.Sequential(*layers).requires_grad_(False)


# ------------------------------------------------------------------------------- Forward / loss / backward (per sample)
def per_sample_loss(loss: str, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Per-sample error on logits z [..., N, K]: sse 1/2 Σ_k (σ(z_k) - t_k)², or cross-entropy -Σ_k t_k log p_k."""
    if loss == "sse":
        return 0.5 * ((torch.sigmoid(z) - t) ** 2).sum(-1)
    return -(t * torch.log_softmax(z, dim=-1)).sum(-1)


class Forward:
    """Cached forward pass with unit masks: pre[l] = pre-activations of layer l (pre[-1] = logits), out[l] = masked
    hidden outputs. ``remove(l, j)`` zeroes a unit and recomputes only the layers above it."""

    def __init__(self, net: UnitNet, x: torch.Tensor, masks: list[torch.Tensor] | None = None):
        self.net = net
        self.masks = [m.to(x.device).clone() for m in (masks if masks is not None else net.full_masks())]
        self.pre: list[torch.Tensor] = [self._linear(0, x)]
        self.out: list[torch.Tensor] = []
        self._recompute_from(0)

    def _linear(self, l: int, a: torch.Tensor) -> torch.Tensor:
        w, b = self.net.weights[l], self.net.biases[l]
        z = a @ w.T
        return z + b if b is not None else z

    def _recompute_from(self, l: int) -> None:
        """Recompute out[l], pre[l+1], out[l+1], ... (pre[l] is kept: it does not depend on layer l's mask)."""
        del self.out[l:]
        del self.pre[l + 1:]
        for k in range(l, len(self.net.widths)):
            self.out.append(activation(self.net.activation, self.pre[k]) * self.masks[k])
            self.pre.append(self._linear(k + 1, self.out[k]))

    def remove(self, l: int, j: int) -> None:
        self.masks[l][j] = 0
        self._recompute_from(l)

    @property
    def logits(self) -> torch.Tensor:
        return self.pre[-1]


