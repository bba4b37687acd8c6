"""The estimators of a hidden unit's saliency, ``ΔE`` when its output is set to 0 (source 001), and the scores of a
model's units (:func:`saliency_scores`, the scorers ``first_order``, ``second_order``, ``second_order_exact`` and
``brute_force`` of ``prunekit.pruning.scorers.SCORERS``, registered here).

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
"""

from __future__ import annotations

import math

import pandas as pd
import torch
from torch import nn

from ...core.checks import choice, count
from ...core.data import as_xy
from ...core.runtime import adapt_threads
from ...pruning.scorers import SCORERS, ScorerEntry
from ..protocol import measure_params, older_positional
from .network import Forward, UnitNet, activation, activation_derivatives, from_model, per_sample_loss, prepare_data

__all__ = ["ESTIMATORS", "TAYLOR", "OUTPUT_HESSIANS", "output_derivatives", "exact_hessian", "exact_hessian_diagonal",
           "hessian_diagonal_check", "saliencies", "saliency_scores"]

ESTIMATORS = ("first_order", "second_order", "second_order_exact", "brute_force", "l2_norm", "random")
TAYLOR = ("first_order", "second_order", "second_order_exact")  # the estimates of ΔE from derivatives
OUTPUT_HESSIANS = ("diagonal", "full")

# brute force: number of float elements of one batched candidate tensor [C, N, width]
CHUNK_ELEMENTS = 1 << 22


def _backward(net: UnitNet, fw: Forward, t: torch.Tensor, second: bool, output_hessian: str = "diagonal"):
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
            s1, s2 = activation_derivatives(net.activation, fw.pre[l])
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
    fw = Forward(net, x, masks)
    g, h = _backward(net, fw, t, True, output_hessian)
    return fw.out, g, h


def _exact_hessian(net: UnitNet, fw: Forward, t: torch.Tensor, grads: list[torch.Tensor],
                   chunk_elements: int | None = None) -> list[torch.Tensor]:
    """The exact per-sample diagonal ∂²E/∂O² of every hidden layer ([N, h_l] each), every cross term kept (module
    docstring: the Jacobians ``D_m`` to each later layer, the output curvature and each later activation's σ''),
    computed in blocks of samples so that a block's Jacobians hold at most ``chunk_elements`` numbers."""
    chunk_elements = CHUNK_ELEMENTS if chunk_elements is None else chunk_elements
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
        s1, s2 = activation_derivatives(net.activation, fw.pre[m])
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
    fw = Forward(net, x, masks)
    grads, _ = _backward(net, fw, t, False)
    return _exact_hessian(net, fw, t, grads, chunk_elements)


def exact_hessian_diagonal(net: UnitNet, x: torch.Tensor, y: torch.Tensor, layer: int) -> torch.Tensor:
    """True per-sample diagonal ∂²E/∂O² of hidden ``layer`` by autograd (independent reference; small nets only:
    one Hessian-vector product per unit)."""
    count("layer", layer, low=0, high=len(net.widths) - 1)
    x, t = prepare_data(net, x, y)
    fw = Forward(net, x)
    o = fw.out[layer].detach().clone().requires_grad_(True)
    a = o
    for k in range(layer, len(net.widths)):
        z = a @ net.weights[k + 1].T
        if net.biases[k + 1] is not None:
            z = z + net.biases[k + 1]
        a = activation(net.activation, z) if k + 1 < len(net.widths) else z
    e = per_sample_loss(net.loss, a, t).sum()
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
def _brute_force(net: UnitNet, fw: Forward, t: torch.Tensor, chunk_elements: int | None = None) -> torch.Tensor:
    """Exact ΔE (summed over samples) of removing each remaining unit, all candidates of a layer batched."""
    chunk_elements = CHUNK_ELEMENTS if chunk_elements is None else chunk_elements
    base = per_sample_loss(net.loss, fw.logits, t)
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
                a = activation(net.activation, z) * fw.masks[k]
                z = a @ net.weights[k + 1].T
                if net.biases[k + 1] is not None:
                    z = z + net.biases[k + 1]
            # per-sample differences first, summed in float64: no cancellation between two large sums
            out[offset + js] = (per_sample_loss(net.loss, z, t) - base).sum(-1, dtype=torch.float64).to(out.dtype)
        offset += h
    return out


def unit_scores(net: UnitNet, fw: Forward, t: torch.Tensor, estimator: str, generator: torch.Generator | None,
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
    return unit_scores(net, Forward(net, x, masks), t, estimator, generator, output_hessian)


@older_positional("y", "estimator")
def saliency_scores(model: nn.Module, data, *, params=None, y: torch.Tensor | None = None,
                    estimator: str = "second_order", loss: str = "cross_entropy", output_hessian: str = "diagonal",
                    generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """Per-unit saliencies of ``model``'s hidden layers on ``data`` (any form of ``prunekit.core.data.as_split``; or
    inputs ``x`` with their targets ``y=``), one tensor per entry of ``params``: the change of the loss summed over
    the samples when the unit's output is set to 0, estimated to first or second order (Taylor) or computed exactly
    ("brute_force"); or "l2_norm" / "random" (:func:`saliencies`, float64).

    params: hidden layers of the MLP, ``(layer, "weight")`` pairs (default: ``prunable_parameters``, every hidden
    layer, in order); each gets the scores of its units, so they pass to ``masks_from_scores(params, ...)`` as they
    are. For a ReLU or tanh net, setting a unit's output to 0 is what its unit mask does (row and bias zeroed), so
    these scores rank exactly the removals that ``masks_from_scores`` then applies. A sigmoid unit with zeroed row
    and bias still outputs 0.5, so sigmoid nets are refused (use :func:`prunekit.measures.saliency.serial_prune`,
    which removes outputs). The scorers ``first_order``, ``second_order``, ``second_order_exact`` and
    ``brute_force`` of ``prunekit.pruning.scorers.SCORERS`` are this function with the estimator of their name.
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
    hidden = [m for m in model.modules() if isinstance(m, nn.Linear)][:-1]
    if [m for m, _ in measure_params(model, x[:2])] != hidden:
        raise ValueError("saliency_scores needs an MLP whose prunable parameters are exactly its hidden layers, in "
                         "order (prunekit.core.prunable.prunable_parameters(model))")
    params = measure_params(model, x[:2], params)
    position = {id(m): i for i, m in enumerate(hidden)}
    odd = [f"{type(m).__name__}.{a}" for m, a in params if id(m) not in position or a != "weight"]
    if odd:
        raise ValueError(f"params holds {', '.join(odd)}: the saliencies score the hidden units of the MLP, so params "
                         "may name only its hidden layers' weights, (layer, 'weight')")
    device = net.weights[0].device
    scores = saliencies(net, x.to(device), y.to(device), estimator, generator=generator,
                        output_hessian=output_hessian)
    per_layer = list(torch.split(scores, net.widths))
    return [per_layer[position[id(m)]] for m, _ in params]


def _saliency_scorer(estimator: str):
    """The scorer of the protocol (``prunekit.pruning.scorers``) that is :func:`saliency_scores` with ``estimator``."""

    def score(params, *, model=None, data=None) -> list[torch.Tensor]:
        return saliency_scores(model, data, params=params, estimator=estimator)

    score.__name__ = score.__qualname__ = f"{estimator}_scores"
    score.__doc__ = f"Source 001's {estimator} saliency of each hidden unit of a ReLU or tanh MLP (saliency_scores)."
    return score


for _estimator in (*TAYLOR, "brute_force"):  # the saliencies as registered scorers, by the estimator's name
    SCORERS.register(ScorerEntry(_estimator, _saliency_scorer(_estimator), needs=("model", "data")))
