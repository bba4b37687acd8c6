"""Accuracy and utility of many ablation subsets of one model on fixed data (the engine of ``prunekit.measures.utility``).

A subset is a boolean vector over the prunable weights seen as one flat vector, ``True`` = ablated; a batch of subsets
is a ``[S, P]`` boolean tensor.

Speed: nothing is deep-copied. Either the subsets are evaluated in batches (``torch.func.vmap`` of
``torch.func.functional_call`` over stacked masked copies of the prunable weights only, all other parameters shared;
for plain MLPs the same with hand-written GEMMs),
which removes per-call overhead on small nets, or (``method="loop"``) the weights are masked in place, the model is
evaluated, and the original values are written back exactly at the end. ``method="auto"`` batches when at least 32
subsets' activations fit in 4 MB (a tiny forward pass, where overhead dominates), else loops (a big forward pass is
compute-bound and batching only adds memory traffic). Accuracy and KL are computed class-major, where the reductions
over the classes are fast.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..core.checks import choice, count
from ..core.device import model_device
from ..core.prunable import checked_labels, prunable_parameters
from ..core.weights import RECURRENT, MaskedWeights, is_parametrized, is_pruned, weight_key
from ..pruning.masks import check_params, weight_of
from .density import warn_if_at_chance
from .surface import recalibrate_bn
from ..core.runtime import adapt_threads
from ..core.train import state_restored

_ACT_BUDGET = 1 << 20  # floats of activations per batched chunk (4 MB: stays in cache on small nets)
_MIN_BATCH = 32  # "auto" batches only when this many subsets' activations fit the budget (measured on 2 CPU cores)


def ablation_params(model: nn.Module, params=None, example: torch.Tensor | None = None) -> list[tuple[nn.Module, str]]:
    """``params``, checked (weights of ``model``, each once), or by default ``prunable_parameters`` (the layer into
    the logits traced on ``example``; an empty default set is refused, naming the weights to choose instead)."""
    return prunable_parameters(model, example=example) if params is None else check_params(params, model)


def _tensors(out) -> list[torch.Tensor]:
    """The tensors of a module's output: a tensor, or those in a tuple, list or dict (an LSTM's ``(out, (h, c))``)."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _tensors(o)]
    return []


def _max_activation(model: nn.Module, x: torch.Tensor) -> int:
    """Largest output size of any leaf module on one sample (sizes the batched chunks): every tensor a module
    returns counts (a GRU's output and its hidden state)."""
    sizes = [math.prod(x.shape[1:])]
    hooks = [m.register_forward_hook(lambda _m, _i, o: sizes.append(sum(t.numel() for t in _tensors(o))))
             for m in model.modules() if not list(m.children())]
    try:
        model(x[:1])
    finally:
        for h in hooks:
            h.remove()
    return max(sizes)


def _outputs_loop(model, x, keep, params, batch_size, calibration=None):
    """Logits for each row of the keep-mask ``keep [S, P]``: the weights the forward pass uses masked and restored
    (``prunekit.core.weights.MaskedWeights``: under torch.nn.utils.prune the stored original, refreshed at once, since
    an attention reads out_proj.weight without out_proj's forward; a parametrized weight through an appended mask);
    with ``calibration`` inputs, the batch-norm statistics are recomputed on them after each masking (and
    restored)."""
    sizes = [weight_of(m, n).numel() for m, n in params]
    shapes = [weight_of(m, n).shape for m, n in params]
    outs = []
    with state_restored(model) if calibration is not None else contextlib.nullcontext(), \
            MaskedWeights(params, model) as masked:
        for row in keep:
            adapt_threads()
            masked.apply([k.view(shape) for k, shape in zip(torch.split(row, sizes), shapes)])
            if calibration is not None:
                recalibrate_bn(model, calibration)
            outs.append(torch.cat([model(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)]))
    return torch.stack(outs)


def _hooked(module: nn.Module, name: str) -> bool:
    """``module.<name>`` is held by torch.nn.utils.prune or computed by a parametrization: not a plain tensor that
    ``torch.func.functional_call`` could replace."""
    return is_pruned(module, name) or is_parametrized(module, name)


def _outputs_batched(model, x, keep, params):
    """Logits ``[S, N, C]`` for the rows of ``keep``, via vmap over stacked masked prunable weights."""
    from torch.func import functional_call, vmap

    names = {id(m): name for name, m in model.named_modules()}
    pnames = [f"{names[id(m)]}.{n}" if names[id(m)] else n for m, n in params]
    base = {k: v.detach() for k, v in model.named_parameters()}
    base.update({k: v for k, v in model.named_buffers()})
    weights = [getattr(m, n).detach() for m, n in params]
    sizes = [w.numel() for w in weights]
    stacked = [w.unsqueeze(0) * k.view(-1, *w.shape) for w, k in zip(weights, torch.split(keep, sizes, dim=1))]

    def one(ws, xb):
        p = dict(base)
        p.update(zip(pnames, ws))
        return functional_call(model, p, (xb,))

    return vmap(one, in_dims=(0, None))(stacked, x)


_ELEMENTWISE = (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.Identity)


def _is_plain_mlp(model: nn.Module) -> bool:
    """A Sequential of Flatten, Linear and elementwise activations only (prunekit.core.models.MLP)."""
    return (isinstance(model, nn.Sequential) and any(isinstance(m, nn.Linear) for m in model)
            and all(isinstance(m, (nn.Linear, nn.Flatten, *_ELEMENTWISE)) for m in model))


def _outputs_mlp(model, x, keep, params):
    """``_outputs_batched`` for a plain MLP with plain GEMMs, returned **class-major** ``[C, S, N]`` or ``[C, N, S]``.

    Activations are kept as ``[N, S, H]``: the first layer is one GEMM ``(N, I) @ (I, S*H)`` over the masked weights
    of all S subsets side by side; a masked later layer is an einsum; a shared (unpruned) layer one GEMM over all
    subsets; a shared output layer (the usual case: it is not prunable) is computed as ``W @ h^T``, which gives the
    logits class-major ``[C, N, S]`` directly. Returns ``(logits, layout)`` with layout "csn" or "cns".
    """
    s = keep.shape[0]
    masks = dict(zip((id(weight_key(m, n)) for m, n in params),  # a tied weight: masked in every Linear using it
                     torch.split(keep, [weight_of(m, n).numel() for m, n in params], dim=1)))
    mods = [m for m in model if not isinstance(m, nn.Flatten)]
    last = max(i for i, m in enumerate(mods) if isinstance(m, nn.Linear))
    h = x.flatten(1)
    batched, layout = False, None
    for i, mod in enumerate(mods):
        if not isinstance(mod, nn.Linear):  # elementwise activation: layout does not matter
            h = mod(h)
            continue
        w = weight_of(mod, "weight").detach()  # under torch.nn.utils.prune: weight_orig * weight_mask
        b = mod.bias.detach() if mod.bias is not None else None
        key = id(weight_key(mod, "weight"))
        ws = torch.where(masks[key].view(s, *w.shape), w, 0.0) if key in masks else None
        if not batched:
            ws = (w.expand(s, *w.shape) if ws is None else ws).reshape(-1, w.shape[1])
            h = (h @ ws.T if b is None else torch.addmm(b.repeat(s), h, ws.T)).view(h.shape[0], s, w.shape[0])
            batched = True
        elif ws is None and i == last:
            flat = h.reshape(-1, h.shape[-1]).T
            h = (w @ flat if b is None else torch.addmm(b[:, None], w, flat)).view(w.shape[0], *h.shape[:2])
            layout = "cns"
        elif ws is None:
            flat = h.reshape(-1, h.shape[-1])
            h = (flat @ w.T if b is None else torch.addmm(b, flat, w.T)).view(*h.shape[:-1], w.shape[0])
        else:
            h = torch.einsum("nsi,soi->nso", h, ws)
            if b is not None:
                h = h + b
    if layout is None:  # [N, S, C] -> [C, S, N]
        return h.permute(2, 1, 0), "csn"
    return h, layout


def check_options(method, chunk_size) -> int | None:
    """``method`` one of "auto", "batched", "loop" and ``chunk_size`` None or an integer >= 1 (checked before any
    compute); returns the chunk size."""
    choice("method", method, ("auto", "batched", "loop"))
    return None if chunk_size is None else count("chunk_size", chunk_size)


def _resolve_method(model, x, method, chunk_size, params=()):
    """Batch the subsets only where one forward pass is tiny (per-call overhead dominates); else mask in place.
    Weights held by torch.nn.utils.prune or a parametrization, and models with a recurrent layer (which vmap cannot
    batch), are always masked in place."""
    chunk_size = check_options(method, chunk_size)
    recurrent = [type(m).__name__ for m in model.modules() if isinstance(m, RECURRENT)]
    if method == "batched" and recurrent:
        raise ValueError(f"method='batched' cannot run {type(model).__name__}: torch.func.vmap has no batching rule "
                         f"for its {', '.join(sorted(set(recurrent)))}; use method='loop' or 'auto'")
    fit = int(min(64, max(1, _ACT_BUDGET // max(1, x.shape[0] * _max_activation(model, x)))))
    if any(_hooked(m, n) for m, n in params) or recurrent:
        method = "loop"
    elif method == "auto":
        method = "batched" if fit >= _MIN_BATCH else "loop"
    return method, chunk_size or fit


class AblationEngine:
    """Accuracy and utility of subsets of one model on fixed data (reference outputs computed once)."""

    def __init__(self, model, x, y, params=None, method="auto", chunk_size=None, batch_size=4096,
                 calibration=None, warn_at_chance=True):
        check_options(method, chunk_size)
        batch_size = count("batch_size", batch_size)
        device = model_device(model)  # computed where the model is; subsets and results stay on the CPU
        if y is not None:  # class labels of the model's logits, checked before any compute
            y = checked_labels(model, x, y)
        x, y = x.to(device), (y.to(device) if y is not None else None)
        self.calibration = None if calibration is None else calibration.to(device)
        self.model, self.x, self.y = model, x, y
        self.params = ablation_params(model, params, example=x)
        self.n_weights = sum(weight_of(m, n).numel() for m, n in self.params)
        self.batch_size = batch_size
        self.mlp = _is_plain_mlp(model)
        if y is not None and len(y) != len(x):
            raise ValueError(f"x and y differ in length: {len(x)} vs {len(y)}")
        self.modes = [(m, m.training) for m in model.modules()]  # every module's own flag, restored by close()
        model.eval()
        with torch.no_grad():
            self.method, self.chunk_size = _resolve_method(model, x, method, chunk_size, self.params)
            if calibration is not None:  # statistics recomputed per subset: one subset at a time, masked in place
                self.method = "loop"
            ref = torch.cat([model(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)])
        # reference, class-major [C, N]: p, and A = sum_c p_c log p_c (terms with p_c = 0 are 0)
        logp = F.log_softmax(ref, -1).T.contiguous()
        self.p = logp.exp()
        self.a = torch.where(self.p > 0, self.p * logp, 0.0).sum(0)
        if y is not None and y.dtype == torch.long:
            classes = torch.arange(ref.shape[1], device=ref.device)[:, None]
            self.before = classes < y  # [C, N]: classes an argmax would pick before the label
            self.after = classes > y
            self.y_row = y.view(1, -1)
        else:
            self.y_row = None
        self.ref_acc = float(self._scores(ref.T.unsqueeze(1), "csn")[0][0])
        if self.y_row is not None and warn_at_chance:
            warn_if_at_chance(self.ref_acc, y.cpu(), "the ablation's reference model")

    def _scores(self, zt: torch.Tensor, layout: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(accuracy [S], utility [S])`` from class-major logits: ``[C, S, N]`` ("csn") or ``[C, N, S]`` ("cns").

        Class-major, the reductions over the classes are fast elementwise maxima and sums:
        ``KL(p || q) = sum_c p_c log p_c - sum_c p_c z_c + logsumexp(z)`` (``log q = z - logsumexp(z)``, sum p = 1),
        clamped at 0 per sample. A sample is correct when ``argmax z`` is its label, ties going to the first class
        as ``torch.argmax`` does: ``z_y`` > every earlier logit and >= every later one.
        """
        zt = zt.contiguous()
        if layout == "csn":
            ex, n_dim = (lambda t: t.unsqueeze(1)), 1  # [C, N] -> [C, 1, N]; samples are dim 1 of [S, N]
        else:
            ex, n_dim = (lambda t: t.unsqueeze(2)), 0  # [C, N] -> [C, N, 1]; samples are dim 0 of [N, S]
        m = zt.amax(0)
        lse = m + (zt - m).exp_().sum(0).log_()
        a = self.a.unsqueeze(0) if layout == "csn" else self.a.unsqueeze(1)
        kl = (a - (ex(self.p) * zt).sum(0) + lse).clamp_min_(0.0)
        if self.y_row is None:
            acc = torch.full(kl.shape[1 - n_dim:2 - n_dim], float("nan"), device=kl.device)
        else:
            idx = ex(self.y_row).expand(1, *zt.shape[1:])
            zy = zt.gather(0, idx)[0]
            neg = -math.inf
            ok = (zy > torch.where(ex(self.before), zt, neg).amax(0)) & (zy >= torch.where(ex(self.after), zt, neg)
                                                                         .amax(0))
            acc = ok.float().mean(n_dim)
        return acc, kl.mean(n_dim)

    @torch.no_grad()
    def score(self, ablate: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(accuracy [S], utility [S])`` for the subsets ``ablate [S, P]`` (True = ablated)."""
        if ablate.dim() != 2 or ablate.shape[1] != self.n_weights:
            raise ValueError(f"subsets must be a [S, {self.n_weights}] boolean tensor, got {tuple(ablate.shape)}")
        ablate = ablate.bool().cpu()  # subsets and results on the CPU; each chunk goes to the model's device
        adapt_threads()
        acc = torch.empty(ablate.shape[0])
        util = torch.empty(ablate.shape[0], dtype=self.p.dtype)  # float64 for a float64 model
        empty = ablate.sum(1) == 0
        acc[empty], util[empty] = self.ref_acc, 0.0  # U(empty set) = 0 exactly
        todo = torch.nonzero(~empty).flatten()
        for start in range(0, len(todo), self.chunk_size):
            idx = todo[start:start + self.chunk_size]
            keep = (~ablate[idx]).to(self.x.device)
            if self.method == "batched" and self.mlp:
                zt, layout = _outputs_mlp(self.model, self.x, keep, self.params)
            elif self.method == "batched":
                zt, layout = _outputs_batched(self.model, self.x, keep, self.params).permute(2, 0, 1), "csn"
            else:
                zt = _outputs_loop(self.model, self.x, keep, self.params, self.batch_size,
                                   self.calibration).permute(2, 0, 1)
                layout = "csn"
            a, u = self._scores(zt, layout)
            acc[idx], util[idx] = a.cpu().to(acc.dtype), u.cpu()
        return acc, util

    def close(self):
        for module, flag in self.modes:
            module.training = flag
