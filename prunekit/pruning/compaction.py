"""Turning pruned nets into faster ones: a unit-pruned MLP compacted to a smaller dense MLP, weight-pruned layers as
CSR sparse matmuls, and the multiply-adds each form costs (source 003's question: does pruning save time?).
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from .masks import Params, UnitMasks, check_params, unit_keeps, weight_of, resolve
from ..core.prunable import prunable_parameters

__all__ = ["compact_mlp", "CSRLinear", "to_sparse_csr", "flop_count"]


# ----------------------------------------------------------------------------------------------------------------
# compaction and sparse formats
# ----------------------------------------------------------------------------------------------------------------


def _structural_copy(model: nn.Module, replace: dict[int, nn.Module]) -> nn.Module:
    """A copy of ``model`` whose modules listed in ``replace`` (by id) are swapped for the given ones.

    No tensor data is copied: every parameter and buffer of the modules kept is shared with ``model`` (they are
    pre-seeded in deepcopy's memo), so only the module objects are new.  Attributes such as ``hidden_layers`` that
    list modules point at the replacements.
    """
    memo: dict[int, object] = dict(replace)
    for t in list(model.parameters()) + list(model.buffers()):
        memo[id(t)] = t
    return copy.deepcopy(model, memo)


def _dense_linear(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    """nn.Linear holding the given tensors (built on the meta device: no wasted random init)."""
    with warnings.catch_warnings():  # a fully pruned layer has zero units: "Initializing zero-element tensors"
        warnings.simplefilter("ignore", UserWarning)
        lin = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device="meta")
    lin.weight = nn.Parameter(weight.contiguous(), requires_grad=False)
    if bias is not None:
        lin.bias = nn.Parameter(bias.contiguous(), requires_grad=False)
    return lin


def mlp_layout(model: nn.Module) -> tuple[list[nn.Linear], nn.Linear, list[list[nn.Module]]]:
    """Hidden linears, output linear and, per hidden linear, the elementwise modules applied after it."""
    if not (isinstance(model, nn.Sequential) and hasattr(model, "hidden_layers") and hasattr(model, "output")):
        raise ValueError("compaction needs a prunekit.core.models.MLP (nn.Sequential of Flatten, Linear, Act, ..., Linear "
                         f"with .hidden_layers and .output), got {type(model).__name__}")
    hidden = list(model.hidden_layers)
    children = list(model.children())
    linears = [c for c in children if isinstance(c, nn.Linear)]
    if linears != hidden + [model.output]:
        raise ValueError("the model's nn.Linear children must be its hidden_layers followed by its output layer")
    after = []
    for i, lin in enumerate(hidden):
        j = next(idx for idx, c in enumerate(children) if c is lin)
        nxt = next(idx for idx, c in enumerate(children) if c is linears[i + 1])
        after.append(children[j + 1: nxt])
    return hidden, model.output, after


@torch.no_grad()
def compact_mlp(model: nn.Module, masks, params: Params | None = None) -> nn.Module:
    """Rebuild a pruned MLP as a smaller dense MLP with the same outputs (up to float rounding).

    A hidden unit whose whole row is masked is removed: its row of ``W_l`` (and bias entry) and the matching column
    of ``W_{l+1}`` are dropped.  Its output was the constant ``act(pre)`` with ``pre = 0`` for unit masks (bias
    pruned too) or ``pre = b_j`` for weight masks; a non-zero constant (e.g. sigmoid(0) = 0.5) is folded into the
    next layer's bias, so the compact net equals ``masks_applied(params, masks)`` on the original.  Weights masked
    inside kept rows stay as zeros.  ``params`` defaults to ``model.hidden_layers`` weights (= prunable_parameters).
    The original model is not modified; weights are new tensors (index_select), not shared.
    """
    hidden, output, after = mlp_layout(model)
    if params is None:
        params = [(lin, "weight") for lin in hidden]
    params = check_params(params)
    masks = mask_list = resolve(params, masks, model)  # a list, or a Masks keyed by name
    unit = isinstance(masks, UnitMasks)
    by_module = {id(m): mk for (m, n), mk in zip(params, mask_list)}
    allowed = {id(l) for l in hidden} | {id(output)}
    for m, n in params:
        if id(m) not in allowed or n != "weight":
            raise ValueError("compact_mlp: every param must be the weight of a hidden or output Linear of the model")

    replace: dict[int, nn.Module] = {}
    in_keep = None  # kept input columns of the current layer (None = all)
    carry = None  # contribution of removed units to the next layer's pre-activation: [out_next]
    for i, lin in enumerate(hidden + [output]):
        w = weight_of(lin, "weight").detach()
        b = lin.bias.detach() if lin.bias is not None else None
        mk = by_module.get(id(lin))
        if mk is not None:
            w = w.masked_fill(~mk, 0.0)
        if i < len(hidden) and mk is not None:
            dead = ~mk.reshape(mk.shape[0], -1).any(dim=1)
        else:
            dead = torch.zeros(w.shape[0], dtype=torch.bool, device=w.device)
        if unit and b is not None and mk is not None:
            b = b.masked_fill(dead, 0.0)
        new_b = b.clone() if b is not None else None
        if carry is not None:
            if new_b is None:
                new_b = carry.to(w.dtype)
            else:
                new_b = new_b + carry.to(w.dtype)
        keep_rows = (~dead).nonzero().squeeze(1)
        new_w = w.index_select(0, keep_rows)
        if in_keep is not None:
            new_w = new_w.index_select(1, in_keep)
        if new_b is not None:
            new_b = new_b.index_select(0, keep_rows)
        replace[id(lin)] = _dense_linear(new_w, new_b)
        # constant outputs of the dead units, pushed into the next layer
        carry = None
        if i < len(hidden) and bool(dead.any()):
            pre = torch.zeros(1, w.shape[0], dtype=w.dtype, device=w.device)
            if b is not None:
                pre[0] = b
            const = pre
            for mod in after[i]:
                const = mod(const)
            const = const[0].masked_fill(~dead, 0.0)
            if bool((const != 0).any()):
                nxt = weight_of((hidden + [output])[i + 1], "weight").detach()
                nmk = by_module.get(id((hidden + [output])[i + 1]))
                if nmk is not None:
                    nxt = nxt.masked_fill(~nmk, 0.0)
                carry = nxt[:, dead] @ const[dead]
        in_keep = keep_rows
    small = _structural_copy(model, replace)
    if hasattr(small, "hidden_sizes"):  # prunekit.core.models.MLP metadata: the new widths
        small.hidden_sizes = tuple(int(l.out_features) for l in small.hidden_layers)
    return small


class CSRLinear(nn.Module):
    """``y = x W^T + b`` with W stored as a torch sparse CSR tensor (computed as ``(W_csr @ x^T)^T``)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None):
        super().__init__()
        if weight.dim() != 2:
            raise ValueError(f"CSRLinear needs a 2-D weight, got shape {tuple(weight.shape)}")
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]
        with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state"
            warnings.simplefilter("ignore", UserWarning)
            self.weight = weight.detach().to_sparse_csr()
        self.bias = None if bias is None else bias.detach().clone()

    @property
    def nnz(self) -> int:
        return int(self.weight.values().numel())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        y = torch.sparse.mm(self.weight, x2.t()).t()
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, nnz={self.nnz}"


@torch.no_grad()
def to_sparse_csr(model: nn.Module, masks=None, params: Params | None = None) -> nn.Module:
    """A copy of ``model`` whose prunable nn.Linear layers run as sparse CSR matmuls (``CSRLinear``).

    ``params`` defaults to ``prunekit.core.prunable.prunable_parameters(model)`` (the output layer stays dense); with
    ``masks`` the masked weights are left out of the CSR tensors (the model itself is not modified).  Conv layers
    stay dense.  Outputs equal the (masked) dense model's up to float summation order.
    """
    if params is None:
        params = _default_params(model)
    params = check_params(params)
    masks = resolve(params, masks, model) if masks is not None else None  # a list, or a Masks keyed by name
    mask_list = masks if masks is not None else [None] * len(params)
    unit = unit_keeps(masks) if masks is not None else None
    replace: dict[int, nn.Module] = {}
    for i, ((m, n), mk) in enumerate(zip(params, mask_list)):
        if not isinstance(m, nn.Linear):
            continue
        w = weight_of(m, n).detach()
        b = m.bias.detach() if m.bias is not None else None
        if mk is not None:
            w = w.masked_fill(~mk, 0.0)
        if unit is not None and b is not None:
            b = b.masked_fill(~unit[i], 0.0)
        replace[id(m)] = CSRLinear(w, b)
    return _structural_copy(model, replace)


def _default_params(model: nn.Module) -> list[tuple[nn.Module, str]]:

    return prunable_parameters(model, include_output=False)


def flop_count(model: nn.Module) -> int:
    """Multiply-accumulates of one sample through the Linear / CSRLinear layers of ``model``: the non-zero weights
    (dense layers count their non-zero entries, so masked-dense and compacted nets give their ideal cost)."""
    total = 0
    for m in model.modules():
        if isinstance(m, CSRLinear):
            total += m.nnz
        elif isinstance(m, nn.Linear):
            total += int((m.weight != 0).sum())
    return total


