"""Neuron saliency and serial neuron pruning without retraining (source 001).

Source 001: Wolfe, Sharma, Drude, Raj, "The Incredible Shrinking Neural Network" (ICLR 2017 submission,
arXiv 1701.04465). A hidden unit is *removed* by setting its output ``O`` to 0; nothing is ever retrained. For every
hidden unit the change of the data-set error ``ΔE`` (per-sample errors **summed** over the data set) is estimated by

* ``first_order``  (Skeletonization analogue):  ``ΔE ≈ -O·∂E/∂O``
* ``second_order`` (the source's method):        ``ΔE ≈ -O·∂E/∂O + 1/2·O²·∂²E/∂O²``, the diagonal back-propagated
* ``second_order_exact`` (this project's extension): the same expansion with the exact ``∂²E/∂O²``: the second
  derivative ``E''(1)`` of the error ``E(α)`` with the unit's output scaled by a gain ``α``, ``ΔE ≈ -E'(1) + ½E''(1)``
* ``brute_force``  (the oracle):                 the exact ``ΔE``, one forward pass per unit
* ``l2_norm``      (baseline): L2 norm of the unit's incoming weights (bias excluded)
* ``random``       (baseline): a random score

The Hessian diagonal ``∂²E/∂O²`` is back-propagated layer by layer as in the source, dropping cross terms::

    ∂²E/∂o_j² = Σ_i ∂²E/∂x_i² · w_ij²                       (x_i: pre-activations of the next layer)
    ∂²E/∂x²   = ∂²E/∂o² · σ'(x)² + ∂E/∂o · σ''(x)           (o = σ(x), elementwise)

Output layer, per sample, for the two losses:

* ``"sse"`` (source): ``E = 1/2 Σ_k (σ(z_k) - t_k)²`` with sigmoid outputs, so ``∂E/∂z_k = (o_k - t_k) σ'(z_k)`` and
  ``∂²E/∂z_k² = σ'(z_k)² + (o_k - t_k) σ''(z_k)``, ``σ'' = σ'(1 - 2σ)``. The output Hessian is diagonal, hence the
  recursion is **exact for the last hidden layer**.
* ``"cross_entropy"`` (derived here): ``E = -Σ_k t_k log p_k``, ``p = softmax(z)``, ``∂E/∂z = p - t`` and the full
  output Hessian is ``diag(p) - p pᵀ``, whose diagonal is ``∂²E/∂z_k² = p_k (1 - p_k)``. Keeping only the diagonal
  (``output_hessian="diagonal"``, default, the source's recipe) drops the cross terms ``-p_i p_k``; at the last
  hidden layer this overestimates the exact ``∂²E/∂o_j² = Σ_i p_i w_ij² - (Σ_i p_i w_ij)²`` by
  ``(Σ_i p_i w_ij)² - Σ_i p_i² w_ij²``. So with cross-entropy the default is an **approximation even at the last
  hidden layer** (on a random 3-5-4-3 sigmoid net, 23% relative error there over 64 samples; the size of the gap
  depends on the net: :func:`hessian_diagonal_check` measures it). ``output_hessian="full"`` uses the exact value at
  the last hidden layer.

Deeper down the recursion is an approximation: ``∂²E/∂o_j²`` of layer ``l`` really is
``Σ_i Σ_k w_ij w_kj ∂²E/∂x_i∂x_k`` and the off-diagonal ``∂²E/∂x_i∂x_k`` (non-zero as soon as two units of layer
``l+1`` feed a common unit) are dropped. It is exact for the *diagonal part* of the next layer's Hessian (tested), and
:func:`exact_hessian_diagonal` computes the true diagonal with autograd on small nets to measure the gap.

The exact diagonal (``second_order_exact``, :func:`exact_hessian`) keeps every cross term: with
``D_m = ∂x_m/∂o_l`` the Jacobian from layer ``l``'s outputs to the pre-activations of a later layer ``m`` (and ``D_z`` to
the logits), ``∂²E/∂o_lk² = Σ_{c,c'} ∂²E/∂z_c∂z_c' D_z[c,k] D_z[c',k] + Σ_{m>l} Σ_i ∂E/∂o_mi σ''(x_mi) D_m[i,k]²``
(the Gauss-Newton part through the logits, then each later activation's curvature). It is what the gain's second
derivative is, ``E''(1) = Σ_n O_nk² ∂²E_n/∂O_nk²``; the tests check it against autograd's Hessian of ``E(α)``. For
the last hidden layer it equals the source's recursion (squared error) and costs nothing more.

Hidden activations: ``sigmoid`` (σ' = σ(1-σ), σ'' = σ'(1-2σ)), ``tanh`` (σ' = 1-t², σ'' = -2t(1-t²)) and ``relu``
(σ' = 1[x>0], σ'' = 0).

Serial pruning: Algorithm I ranks the units once (on the full net) and removes them in that order; Algorithm II
re-ranks the remaining units after every removal. Units are removed in increasing order of their score (the
*signed* estimated ΔE: a unit whose removal is estimated to lower the error goes first).

Everything works on weight tensors (:class:`UnitNet`) with a cached forward pass (list of layer outputs): removing a
unit of layer ``l`` only recomputes the layers above it, and brute force evaluates all candidates of a step in one
batched pass (``z_{l+1} - h_j w_{:,j}`` for every candidate ``j`` at once, then the rest of the net batched).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..core import train
from ..core.checks import choice, count, number, sequence
from ..core.data import Split, as_xy
from ..core.device import modes_restored
from ..core.models import prunable_parameters
from ..core.runtime import adapt_threads

__all__ = ["ESTIMATORS", "TAYLOR", "ALGORITHMS", "LOSSES", "ACTIVATIONS", "OUTPUT_HESSIANS", "MARGIN_MODES",
           "UnitNet", "from_model", "check_unit_net", "prepare_data", "output_derivatives", "exact_hessian",
           "exact_hessian_diagonal", "hessian_diagonal_check", "saliencies", "to_model", "evaluate", "removable_units",
           "PruneResult", "serial_prune", "saliency_scores"]

ESTIMATORS = ("first_order", "second_order", "second_order_exact", "brute_force", "l2_norm", "random")
TAYLOR = ("first_order", "second_order", "second_order_exact")  # the estimates of ΔE from derivatives
ALGORITHMS = ("I", "II")
LOSSES = ("sse", "cross_entropy")
ACTIVATIONS = ("sigmoid", "tanh", "relu")
OUTPUT_HESSIANS = ("diagonal", "full")

# brute force: number of float elements of one batched candidate tensor [C, N, width]
_CHUNK_ELEMENTS = 1 << 22




# ---------------------------------- Activations: value, first and second derivative, as functions of the pre-activation
def _act(name: str, x: torch.Tensor) -> torch.Tensor:
    if name == "sigmoid":
        return torch.sigmoid(x)
    if name == "tanh":
        return torch.tanh(x)
    return torch.relu(x)


def _act_derivatives(name: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
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


# ------------------------------------------------------------------------------- Forward / loss / backward (per sample)
def _per_sample_loss(loss: str, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Per-sample error on logits z [..., N, K]: sse 1/2 Σ_k (σ(z_k) - t_k)², or cross-entropy -Σ_k t_k log p_k."""
    if loss == "sse":
        return 0.5 * ((torch.sigmoid(z) - t) ** 2).sum(-1)
    return -(t * torch.log_softmax(z, dim=-1)).sum(-1)


class _Forward:
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
            self.out.append(_act(self.net.activation, self.pre[k]) * self.masks[k])
            self.pre.append(self._linear(k + 1, self.out[k]))

    def remove(self, l: int, j: int) -> None:
        self.masks[l][j] = 0
        self._recompute_from(l)

    @property
    def logits(self) -> torch.Tensor:
        return self.pre[-1]


def _backward(net: UnitNet, fw: _Forward, t: torch.Tensor, second: bool, output_hessian: str = "diagonal"):
    """Per-sample ∂E/∂O and (if ``second``) the back-propagated diagonal ∂²E/∂O², for every hidden layer.

    Returns (grads, hess): lists of [N, h_l] (hess is None when not ``second``)."""
    z = fw.logits
    if net.loss == "sse":
        o = torch.sigmoid(z)
        d1 = o * (1 - o)
        gz = (o - t) * d1
        hz = d1 * d1 + (o - t) * d1 * (1 - 2 * o) if second else None
    else:
        p = torch.softmax(z, dim=-1)
        gz = p - t
        hz = p * (1 - p) if second else None
    L = len(net.widths)
    grads: list[torch.Tensor] = [None] * L  # type: ignore[list-item]
    hess: list[torch.Tensor] = [None] * L  # type: ignore[list-item]
    for l in range(L - 1, -1, -1):
        w = net.weights[l + 1]
        grads[l] = gz @ w
        if second:
            hess[l] = hz @ (w * w)
            if l == L - 1 and net.loss == "cross_entropy" and output_hessian == "full":
                # exact: Σ_i p_i w_ij² - (Σ_i p_i w_ij)²  (softmax Hessian diag(p) - p pᵀ)
                hess[l] = p @ (w * w) - (p @ w) ** 2
        if l > 0:  # carry the derivatives down to layer l's pre-activations, for layer l-1
            s1, s2 = _act_derivatives(net.activation, fw.pre[l])
            m = fw.masks[l]
            s1, s2 = s1 * m, s2 * m
            if second:
                hz = hess[l] * s1 * s1 + grads[l] * s2
            gz = grads[l] * s1
    return grads, (hess if second else None)


def output_derivatives(net: UnitNet, x: torch.Tensor, y: torch.Tensor, masks=None, output_hessian: str = "diagonal"):
    """Per-sample ``(O, ∂E/∂O, ∂²E/∂O²)`` for every hidden layer (lists of [N, h_l]); ∂²E/∂O² is the source's
    back-propagated diagonal (exact for the last hidden layer with loss "sse", or "cross_entropy" with
    ``output_hessian="full"``)."""
    choice("output_hessian", output_hessian, OUTPUT_HESSIANS)
    x, t = prepare_data(net, x, y)
    fw = _Forward(net, x, masks)
    g, h = _backward(net, fw, t, True, output_hessian)
    return fw.out, g, h


def _exact_hessian(net: UnitNet, fw: _Forward, t: torch.Tensor, grads: list[torch.Tensor],
                   chunk_elements: int | None = None) -> list[torch.Tensor]:
    """The exact per-sample diagonal ∂²E/∂O² of every hidden layer ([N, h_l] each), every cross term kept (module
    docstring: the Jacobians ``D_m`` to each later layer, the output curvature and each later activation's σ''),
    computed in blocks of samples so that a block's Jacobians hold at most ``chunk_elements`` numbers."""
    chunk_elements = _CHUNK_ELEMENTS if chunk_elements is None else chunk_elements
    L = len(net.widths)
    z = fw.logits
    if net.loss == "sse":
        o = torch.sigmoid(z)
        d1 = o * (1 - o)
        hz = d1 * d1 + (o - t) * d1 * (1 - 2 * o)  # diagonal output Hessian, σ(z) included
        p = None
    else:
        p = torch.softmax(z, dim=-1)
        hz = None
    # per later hidden layer m: σ'(x_m) and ∂E/∂o_m · σ''(x_m), masked (a removed unit is a constant 0)
    slopes, curvatures = [None] * L, [None] * L
    for m in range(L):
        s1, s2 = _act_derivatives(net.activation, fw.pre[m])
        slopes[m], curvatures[m] = s1 * fw.masks[m], grads[m] * s2 * fw.masks[m]
    n = t.shape[0]
    exact = []
    for l in range(L):
        widest = max(int(w.shape[0]) for w in net.weights[l + 1:])
        step = max(1, chunk_elements // max(1, widest * net.widths[l]))
        parts = []
        for a in range(0, n, step):
            rows = slice(a, a + step)
            jac = net.weights[l + 1].expand(min(step, n - a), *net.weights[l + 1].shape)  # ∂x_{l+1}/∂o_l: [B, h, h_l]
            total = torch.zeros(jac.shape[0], net.widths[l], dtype=jac.dtype, device=jac.device)
            for m in range(l + 1, L):
                total = total + (curvatures[m][rows].unsqueeze(-1) * jac * jac).sum(1)
                jac = net.weights[m + 1] @ (slopes[m][rows].unsqueeze(-1) * jac)  # ∂x_{m+1}/∂o_l
            if hz is not None:  # squared error: the output Hessian is diagonal
                total = total + (hz[rows].unsqueeze(-1) * jac * jac).sum(1)
            else:  # softmax cross-entropy: diag(p) - p pᵀ
                pr = p[rows].unsqueeze(-1)
                total = total + (pr * jac * jac).sum(1) - (pr * jac).sum(1) ** 2
            parts.append(total)
        exact.append(torch.cat(parts))
    return exact


def exact_hessian(net: UnitNet, x: torch.Tensor, y: torch.Tensor, masks=None,
                  chunk_elements: int | None = None) -> list[torch.Tensor]:
    """The exact per-sample ``∂²E/∂O²`` of every hidden layer (``[N, h_l]`` each; the module docstring's formula, every
    cross term kept), in closed form: what ``second_order_exact`` uses, where :func:`output_derivatives` gives the
    source's back-propagated diagonal. ``chunk_elements`` (an integer >= 1) bounds the numbers a block of samples'
    Jacobians hold."""
    if chunk_elements is not None:
        chunk_elements = count("chunk_elements", chunk_elements)
    x, t = prepare_data(net, x, y)
    fw = _Forward(net, x, masks)
    grads, _ = _backward(net, fw, t, False)
    return _exact_hessian(net, fw, t, grads, chunk_elements)


def exact_hessian_diagonal(net: UnitNet, x: torch.Tensor, y: torch.Tensor, layer: int) -> torch.Tensor:
    """True per-sample diagonal ∂²E/∂O² of hidden ``layer`` by autograd (independent reference; small nets only:
    one Hessian-vector product per unit)."""
    count("layer", layer, low=0, high=len(net.widths) - 1)
    x, t = prepare_data(net, x, y)
    fw = _Forward(net, x)
    o = fw.out[layer].detach().clone().requires_grad_(True)
    a = o
    for k in range(layer, len(net.widths)):
        z = a @ net.weights[k + 1].T
        if net.biases[k + 1] is not None:
            z = z + net.biases[k + 1]
        a = _act(net.activation, z) if k + 1 < len(net.widths) else z
    e = _per_sample_loss(net.loss, a, t).sum()
    (g,) = torch.autograd.grad(e, o, create_graph=True)
    cols = []
    for j in range(o.shape[1]):
        (hj,) = torch.autograd.grad(g[:, j].sum(), o, retain_graph=True)
        cols.append(hj[:, j])  # samples are independent: d/dO_nj of Σ_n g_nj is the diagonal entry
    return torch.stack(cols, dim=1).detach()


def hessian_diagonal_check(net: UnitNet, x: torch.Tensor, y: torch.Tensor, max_samples: int = 64,
                           output_hessian: str = "diagonal") -> pd.DataFrame:
    """How good is the back-propagated diagonal, layer by layer? Compares it with :func:`exact_hessian_diagonal` on the
    first ``max_samples`` samples. Columns: layer (0 = first hidden), depth_from_output (1 = last hidden layer),
    relative_error (‖approx - exact‖ / ‖exact‖ over samples and units) and spearman (of the per-unit second-order
    terms Σ_n O² ∂²E/∂O², approximate vs exact)."""
    from scipy import stats

    max_samples = count("max_samples", max_samples)
    choice("output_hessian", output_hessian, OUTPUT_HESSIANS)
    x, y = x[:max_samples], y[:max_samples]
    outs, _, hess = output_derivatives(net, x, y, output_hessian=output_hessian)
    rows = []
    L = len(net.widths)
    for l in range(L):
        exact = exact_hessian_diagonal(net, x, y, l)
        rel = float((hess[l] - exact).norm() / exact.norm().clamp_min(1e-300))
        a = (outs[l] ** 2 * hess[l]).sum(0).cpu().numpy()
        b = (outs[l] ** 2 * exact).sum(0).cpu().numpy()
        rows.append({"layer": l, "depth_from_output": L - l, "relative_error": rel,
                     "spearman": float(stats.spearmanr(a, b).statistic)})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------------------- Saliencies
def _brute_force(net: UnitNet, fw: _Forward, t: torch.Tensor, chunk_elements: int | None = None) -> torch.Tensor:
    """Exact ΔE (summed over samples) of removing each remaining unit, all candidates of a layer batched."""
    chunk_elements = _CHUNK_ELEMENTS if chunk_elements is None else chunk_elements
    base = _per_sample_loss(net.loss, fw.logits, t)
    out = torch.full((net.num_units,), math.inf, dtype=fw.logits.dtype, device=fw.logits.device)
    offset = 0
    n = t.shape[0]
    for l, h in enumerate(net.widths):
        adapt_threads()
        alive = torch.nonzero(fw.masks[l] != 0).flatten()
        width = max(net.weights[k].shape[0] for k in range(l + 1, len(net.weights)))
        step = max(1, chunk_elements // max(1, n * width))
        w_next = net.weights[l + 1]
        for start in range(0, len(alive), step):
            js = alive[start:start + step]
            # z_{l+1} without unit j: z_{l+1} - O_j w_{:,j}, for every candidate j at once -> [C, N, h_{l+1}]
            z = fw.pre[l + 1].unsqueeze(0) - fw.out[l].T[js].unsqueeze(-1) * w_next.T[js].unsqueeze(1)
            for k in range(l + 1, len(net.widths)):
                a = _act(net.activation, z) * fw.masks[k]
                z = a @ net.weights[k + 1].T
                if net.biases[k + 1] is not None:
                    z = z + net.biases[k + 1]
            # per-sample differences first, summed in float64: no cancellation between two large sums
            out[offset + js] = (_per_sample_loss(net.loss, z, t) - base).sum(-1, dtype=torch.float64).to(out.dtype)
        offset += h
    return out


def _scores(net: UnitNet, fw: _Forward, t: torch.Tensor, estimator: str, generator: torch.Generator | None,
            output_hessian: str) -> torch.Tensor:
    """Scores of every unit (removed units get +inf); the smallest goes first."""
    if estimator == "brute_force":
        return _brute_force(net, fw, t)
    if estimator == "l2_norm":
        s = torch.cat([w.norm(dim=1) for w in net.weights[:-1]])
    elif estimator == "random":
        s = torch.rand(net.num_units, generator=generator, dtype=torch.float64).to(net.weights[0])  # CPU draw
    else:
        grads, hess = _backward(net, fw, t, estimator == "second_order", output_hessian)
        if estimator == "second_order_exact":
            hess = _exact_hessian(net, fw, t, grads)
        parts = []
        for l in range(len(net.widths)):
            o = fw.out[l]
            s_l = -(o * grads[l]).sum(0)
            if estimator != "first_order":
                s_l = s_l + 0.5 * (o * o * hess[l]).sum(0)
            parts.append(s_l)
        s = torch.cat(parts)
    alive = torch.cat([m != 0 for m in fw.masks])
    return torch.where(alive, s, torch.full_like(s, math.inf))


def saliencies(net: UnitNet, x: torch.Tensor, y: torch.Tensor, estimator: str = "second_order", masks=None,
               generator: torch.Generator | None = None, output_hessian: str = "diagonal") -> torch.Tensor:
    """Score of every hidden unit [num_units] (estimated ΔE summed over the data set for first_order, second_order,
    second_order_exact, brute_force; incoming L2 norm; random). Units already removed by ``masks`` get +inf."""
    choice("estimator", estimator, ESTIMATORS)
    choice("output_hessian", output_hessian, OUTPUT_HESSIANS)
    x, t = prepare_data(net, x, y)
    return _scores(net, _Forward(net, x, masks), t, estimator, generator, output_hessian)


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


def evaluate(net: UnitNet, x: torch.Tensor, y: torch.Tensor, masks=None) -> tuple[float, float]:
    """(mean per-sample error, accuracy) of the (masked) net: :func:`prunekit.core.train.evaluate` of :func:`to_model`
    with the net's loss; accuracy is NaN for regression targets."""
    x, _ = prepare_data(net, x, y)  # checks y against the net; flat inputs in the net's dtype and device
    y = y.to(x.device)
    return train.evaluate(to_model(net, masks), Split(x, y if y.is_floating_point() else y.long()), loss=net.loss)


# ---------------------------------------------------------------------------------- Serial pruning: Algorithms I and II
MARGIN_MODES = ("absolute", "relative", "range")


def removable_units(error, margin: float, mode: str = "absolute") -> int:
    """Units removable (in the curve's order) before the error first rises more than a margin above the unpruned
    error ``error[0]``. The allowed rise is ``margin`` itself (``mode="absolute"``), ``margin·error[0]``
    ("relative"), or ``margin·(error[-1] - error[0])`` ("range": a fraction of the way to the error of the curve's
    last point, the net with every hidden unit removed when the curve is complete; scale-free across losses). Where
    that last error is below the unpruned one (an untrained net), the allowed rise is 0, never negative."""
    choice("mode", mode, MARGIN_MODES)
    margin = number("margin", margin, low=0.0)
    error = np.asarray(error, dtype=float)
    if error.ndim != 1 or error.size == 0:
        raise ValueError(f"error must be a non-empty curve (error[k] with k units removed), got shape {error.shape}")
    rise = {"absolute": margin, "relative": margin * abs(error[0]),
            "range": margin * max(error[-1] - error[0], 0.0)}[mode]
    over = np.nonzero(error > error[0] + rise)[0]
    return int(over[0] - 1) if len(over) else len(error) - 1


@dataclass
class PruneResult:
    """One serial-pruning run. ``error[k]`` / ``accuracy[k]``: mean error and accuracy with ``k`` units removed
    (k = 0 .. removed); ``order``: the removed units as (hidden layer, unit) in removal order."""

    estimator: str
    algorithm: str
    order: list[tuple[int, int]]
    error: np.ndarray
    accuracy: np.ndarray
    num_units: int
    seconds: float = 0.0
    initial_scores: np.ndarray = field(default=None, repr=False)

    @property
    def units_removed(self) -> np.ndarray:
        return np.arange(len(self.error))

    @property
    def fraction_removed(self) -> np.ndarray:
        return self.units_removed / self.num_units

    def removable(self, margin: float, mode: str = "absolute") -> int:
        return removable_units(self.error, margin, mode)

    def to_frame(self, **columns) -> pd.DataFrame:
        df = pd.DataFrame({"estimator": self.estimator, "algorithm": self.algorithm,
                           "units_removed": self.units_removed, "fraction_removed": self.fraction_removed,
                           "error": self.error, "accuracy": self.accuracy})
        for i, (k, v) in enumerate(columns.items()):
            df.insert(i, k, v)
        return df


def serial_prune(net: UnitNet, x: torch.Tensor, y: torch.Tensor, estimator: str = "second_order",
                 algorithm: str = "II", max_removed: int | None = None, seed: int = 0,
                 output_hessian: str = "diagonal") -> PruneResult:
    """Remove hidden units one at a time, without retraining, and record error and accuracy after each removal.

    Algorithm "I" ranks every unit once on the full net and removes in that order; "II" re-ranks the remaining units
    after every removal (brute force then evaluates every remaining unit exactly, batched, at every step).
    ``max_removed`` stops early (default: all units). ``seed`` drives the ``random`` estimator."""
    choice("estimator", estimator, ESTIMATORS)
    choice("algorithm", algorithm, ALGORITHMS)
    choice("output_hessian", output_hessian, OUTPUT_HESSIANS)
    seed = count("seed", seed, low=0)
    if max_removed is not None:
        max_removed = count("max_removed", max_removed, low=0)
    t0 = time.perf_counter()
    classification = not y.is_floating_point()
    x, t = prepare_data(net, x, y)
    n, labels = len(t), t.argmax(-1)
    gen = torch.Generator().manual_seed(seed)
    fw = _Forward(net, x)
    index = net.unit_index()
    total = net.num_units if max_removed is None else min(int(max_removed), net.num_units)

    def record():
        z = fw.logits
        errors.append(float(_per_sample_loss(net.loss, z, t).sum()) / n)
        accs.append(float(train.correct_count(z, labels)) / n if classification else float("nan"))

    errors: list[float] = []
    accs: list[float] = []
    record()
    scores = _scores(net, fw, t, estimator, gen, output_hessian)
    initial = scores.cpu().numpy().copy()
    ranking = torch.argsort(scores, stable=True).tolist() if algorithm == "I" else None
    order = []
    for step in range(total):
        if algorithm == "I":
            u = ranking[step]
        else:
            if step > 0:
                scores = _scores(net, fw, t, estimator, gen, output_hessian)
            u = int(torch.argmin(scores))
        l, j = index[u]
        fw.remove(l, j)
        order.append((l, j))
        record()
    return PruneResult(estimator, algorithm, order, np.array(errors), np.array(accs), net.num_units,
                       time.perf_counter() - t0, initial)


def saliency_scores(model: nn.Module, data, y: torch.Tensor | None = None, estimator: str = "second_order", *,
                    loss: str = "cross_entropy", output_hessian: str = "diagonal",
                    generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """Per-unit saliencies of ``model``'s hidden layers on ``data`` (``(x, y)`` tensors, a Split, a Dataset's test
    split, a DataLoader; or inputs ``x`` with targets ``y``), one tensor per entry of
    ``prunable_parameters(model)``: the change of the loss summed over the samples when the unit's output is set to
    0, estimated to first or second order (Taylor) or computed exactly ("brute_force"); or "l2_norm" / "random"
    (``prunekit.measures.saliency.saliencies``, float64).

    The scores line up with ``prunable_parameters(model)`` (pass those params to ``masks_from_scores``).
    For a ReLU or tanh net, setting a unit's output to 0 is what its unit mask does (row and bias zeroed), so these
    scores rank exactly the removals that ``masks_from_scores`` then applies. A sigmoid unit with zeroed row and bias
    still outputs 0.5, so sigmoid nets are refused (use ``prunekit.measures.saliency.serial_prune``, which removes outputs).
    """
    x, y = as_xy(data, y)
    choice("estimator", estimator, ESTIMATORS)
    choice("output_hessian", output_hessian, OUTPUT_HESSIANS)
    allowed = (nn.Sequential, nn.Flatten, nn.Linear, nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Identity, nn.ModuleList)
    odd = sorted({type(m).__name__ for m in model.modules() if not isinstance(m, allowed)
                  and not (hasattr(m, "hidden_layers") and hasattr(m, "output"))})
    if odd:
        raise ValueError(f"saliency_scores needs a plain MLP (Flatten, Linear, activation, ..., Linear); model also "
                         f"holds {', '.join(odd)}, which the saliencies would leave out")
    net = from_model(model, loss=loss, example=x[:64])  # checked against the model's own outputs
    if net.activation == "sigmoid":
        raise ValueError("saliency_scores needs a ReLU or tanh net: a sigmoid unit with its row and bias masked "
                         "outputs 0.5, not the 0 these saliencies assume (use prunekit.measures.saliency.serial_prune)")
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if [m for m, _ in prunable_parameters(model, example=x[:2])] != linears[:-1]:
        raise ValueError("saliency_scores needs an MLP whose prunable parameters are exactly its hidden layers, in "
                         "order (prunekit.core.models.prunable_parameters(model))")
    device = net.weights[0].device
    scores = saliencies(net, x.to(device), y.to(device), estimator, generator=generator,
                        output_hessian=output_hessian)
    return list(torch.split(scores, net.widths))
