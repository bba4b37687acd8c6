"""Weight utility and utility imbalance (source 002, "An Empirical Study of a Pruning Mechanism").

Utility of a subset ``W_s`` of the weights ``W`` (source 002, Definition 1)::

    U(W_s) = E_x KL( f_W(x) || f_{W \\ W_s}(x) ),   KL(p || q) = sum_k p_k (log p_k - log q_k)

where ``f`` is the softmax output and ``W \\ W_s`` is ``W`` with the weights of ``W_s`` set to zero (ablation). The KL
is computed from log-softmax outputs, so it stays finite when probabilities underflow (a term with ``p_k = 0``
contributes exactly 0). Rounding can make a per-sample KL a tiny negative number (``-1e-8``) when the two
distributions are (almost) equal; such values are clamped to 0, so ``U >= 0`` always. ``U(empty set) = 0`` exactly
(an empty subset is not evaluated: nothing changes).

Subsets are drawn over the *prunable* weights (``prunekit.models.prunable_parameters``: every Linear/Conv2d weight but
the output layer), seen as one flat vector in the order of that list. A subset is a boolean vector over that flat
vector, ``True`` = ablated (a member of ``W_s``); a batch of subsets is a ``[S, P]`` boolean tensor, the form the
batched scorer works on. Every function that takes subsets also takes them as keep-masks (``prunekit.masks.Masks``,
True = keep), the form masks have everywhere else in prunekit; :func:`ablation_masks` converts one way.

Experiments:
- random ablation (source 002, Fig. 1 left): for each ratio ``r``, ``n_subsets`` (500, as the source) random subsets of
  exactly ``round(r * P)`` weights; accuracy and utility of each;
- magnitude ablation (Fig. 1 right): the prunable weights are split into ``n_bands`` equal-size bands by the rank of
  ``|w|`` (band 0 = smallest magnitudes); ``ratio`` is the fraction *of the band's weights* ablated at random;
- utility imbalance: ``prunekit.imbalance``; the experiments built on these ablations (imbalance during training,
  widths): ``prunekit.mechanism``.

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
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .checks import fraction
from .masks import Masks, _weight, masks_applied, resolve
from .models import prunable_parameters
from .device import model_device
from .surface import recalibrate_bn
from .train import eval_mode, state_restored

__all__ = [
    "DEFAULT_RATIOS", "kl_divergence", "log_probs", "utility", "ablation_masks", "flat_weights",
    "random_subsets", "evaluate_subsets", "random_ablation", "magnitude_bands", "magnitude_ablation", "summarize",
]

DEFAULT_RATIOS = (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
_ACT_BUDGET = 1 << 20  # floats of activations per batched chunk (4 MB: stays in cache on small nets)
_MIN_BATCH = 32  # "auto" batches only when this many subsets' activations fit the budget (measured on 2 CPU cores)


# ----------------------------------------------------------------------------------------------------------- basics
def kl_divergence(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Per-sample ``KL(p || q) = sum_k p_k (log p_k - log q_k)`` from log-probabilities (last dim = classes).

    Terms with ``p_k = 0`` are exactly 0 (even where ``log q_k = -inf``); negative rounding is clamped to 0.
    """
    if log_p.shape[-1:] != log_q.shape[-1:]:
        raise ValueError(f"log_p and log_q must have the same number of classes, got {tuple(log_p.shape)} and "
                         f"{tuple(log_q.shape)}")
    p = log_p.exp()
    terms = torch.where(p > 0, p * (log_p - log_q), 0.0)
    return terms.sum(-1).clamp_min(0.0)


@torch.no_grad()
def log_probs(model: nn.Module, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """``log_softmax`` of the model's outputs on ``x`` (eval mode; the model's mode is restored)."""
    device = model_device(model)
    with eval_mode(model):
        return torch.cat([F.log_softmax(model(x[i:i + batch_size].to(device)), -1)
                          for i in range(0, x.shape[0], batch_size)])


def _params(model: nn.Module, params=None) -> list[tuple[nn.Module, str]]:
    params = prunable_parameters(model) if params is None else list(params)
    if not params:
        raise ValueError("params is empty: the model has no prunable weights")
    return params


def flat_weights(model: nn.Module, params=None) -> torch.Tensor:
    """The prunable weights as one flat vector (the order subsets index)."""
    return torch.cat([_weight(m, n).detach().reshape(-1) for m, n in _params(model, params)])


def ablation_masks(model: nn.Module, subset, params=None) -> Masks:
    """The keep-masks (``prunekit.masks.Masks``, keyed by name, True = keep) of an ablation ``subset`` (flat over the
    prunable weights or one tensor per weight, True = ablated): ``keep = ~subset``."""
    params = _params(model, params)
    return Masks.from_params(model, params, _keep_masks(_as_flat_subset(subset, params), params))


def _keep_masks(flat: torch.Tensor, params) -> list[torch.Tensor]:
    """Weight-shaped keep-masks (True = keep) of a flat ablation subset (True = ablated)."""
    sizes = [getattr(m, n).numel() for m, n in params]
    if flat.numel() != sum(sizes):
        raise ValueError(f"subset has {flat.numel()} entries for {sum(sizes)} prunable weights")
    return [~s.view_as(getattr(m, n)) for s, (m, n) in zip(torch.split(flat, sizes), params)]


def _as_flat_subset(subset, params, model=None) -> torch.Tensor:
    """A subset given per layer (list of bool tensors shaped like the weights) or flat, as one flat bool vector;
    a ``Masks`` (True = keep) gives its complement."""
    if isinstance(subset, Masks):
        if subset.units:
            raise ValueError("subset: unit masks (Masks(units=True)) also silence biases; the utility ablates weights "
                             "only: pass weight masks, or evaluate units with prunekit.masks.masks_applied(model=)")
        return ~torch.cat([m.reshape(-1) for m in resolve(params, subset, model)]).cpu()
    if isinstance(subset, torch.Tensor):
        return subset.reshape(-1).bool()
    subset = list(subset)
    if len(subset) != len(params):
        raise ValueError(f"subset has {len(subset)} masks for {len(params)} prunable weights; give one per weight")
    out = []
    for s, (m, n) in zip(subset, params):
        w = getattr(m, n)
        if tuple(s.shape) != tuple(w.shape):
            raise ValueError(f"subset mask of shape {tuple(s.shape)} does not match weight {tuple(w.shape)}")
        out.append(s.reshape(-1).bool())
    return torch.cat(out)


# ------------------------------------------------------------------------------------------------ subset evaluation
def _max_activation(model: nn.Module, x: torch.Tensor) -> int:
    """Largest per-sample output size of any leaf module (sizes the batched chunks)."""
    sizes = [math.prod(x.shape[1:])]
    hooks = [m.register_forward_hook(lambda _m, _i, o: sizes.append(o[0].numel() if o.dim() > 1 else 1))
             for m in model.modules() if not list(m.children())]
    try:
        model(x[:1])
    finally:
        for h in hooks:
            h.remove()
    return max(sizes)


def _outputs_loop(model, x, keep, params, batch_size, calibration=None):
    """Logits for each row of the keep-mask ``keep [S, P]``: weights masked in place (restored by the caller); with
    ``calibration`` inputs, the batch-norm statistics are recomputed on them after each masking (and restored)."""
    weights = [getattr(m, n) for m, n in params]
    origs = [w.detach().clone() for w in weights]
    sizes = [w.numel() for w in weights]
    outs = []
    with state_restored(model) if calibration is not None else contextlib.nullcontext():
        for row in keep:
            for w, o, k in zip(weights, origs, torch.split(row, sizes)):
                torch.mul(o, k.view_as(o), out=w.data)
            if calibration is not None:
                recalibrate_bn(model, calibration)
            outs.append(torch.cat([model(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)]))
    for w, o in zip(weights, origs):
        w.data.copy_(o)
    return torch.stack(outs)


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
    """A Sequential of Flatten, Linear and elementwise activations only (prunekit.models.MLP)."""
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
    masks = dict(zip((id(m) for m, _ in params), torch.split(keep, [m.weight.numel() for m, _ in params], dim=1)))
    mods = [m for m in model if not isinstance(m, nn.Flatten)]
    last = max(i for i, m in enumerate(mods) if isinstance(m, nn.Linear))
    h = x.flatten(1)
    batched, layout = False, None
    for i, mod in enumerate(mods):
        if not isinstance(mod, nn.Linear):  # elementwise activation: layout does not matter
            h = mod(h)
            continue
        w = mod.weight.detach()
        b = mod.bias.detach() if mod.bias is not None else None
        ws = torch.where(masks[id(mod)].view(s, *w.shape), w, 0.0) if id(mod) in masks else None
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


def _resolve_method(model, x, method, chunk_size):
    """Batch the subsets only where one forward pass is tiny (per-call overhead dominates); else mask in place."""
    if method not in ("auto", "batched", "loop"):
        raise ValueError(f"method={method!r} is not supported; allowed: 'auto', 'batched', 'loop'")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size} must be >= 1")
    fit = int(min(64, max(1, _ACT_BUDGET // max(1, x.shape[0] * _max_activation(model, x)))))
    if method == "auto":
        method = "batched" if fit >= _MIN_BATCH else "loop"
    return method, chunk_size or fit


class _Scorer:
    """Accuracy and utility of subsets of one model on fixed data (reference outputs computed once)."""

    def __init__(self, model, x, y, params=None, method="auto", chunk_size=None, batch_size=4096,
                 calibration=None):
        device = model_device(model)  # computed where the model is; subsets and results stay on the CPU
        x, y = x.to(device), (y.to(device) if y is not None else None)
        self.calibration = None if calibration is None else calibration.to(device)
        self.model, self.x, self.y = model, x, y
        self.params = _params(model, params)
        self.n_weights = sum(getattr(m, n).numel() for m, n in self.params)
        self.batch_size = batch_size
        self.mlp = _is_plain_mlp(model)
        if y is not None and len(y) != len(x):
            raise ValueError(f"x and y differ in length: {len(x)} vs {len(y)}")
        self.was_training = model.training
        model.eval()
        with torch.no_grad():
            self.method, self.chunk_size = _resolve_method(model, x, method, chunk_size)
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
        acc = torch.empty(ablate.shape[0])
        util = torch.empty(ablate.shape[0])
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
            acc[idx], util[idx] = a.cpu(), u.cpu()
        return acc, util

    def close(self):
        self.model.train(self.was_training)


def utility(model: nn.Module, x: torch.Tensor, subset, params=None, batch_size: int = 4096) -> float:
    """``U(W_s) = mean_x KL(f_W(x) || f_{W \\ W_s}(x))`` for one subset (the model is left unchanged).

    subset: a flat boolean vector over the prunable weights, or one boolean tensor per weight (True = ablated), or
    the keep-masks of the weights left (``prunekit.masks.Masks``, True = keep; see :func:`ablation_masks`).
    The straightforward path (``prunekit.masks.masks_applied`` + ``log_probs`` + ``kl_divergence``), independent of
    the batched machinery of ``evaluate_subsets``, which the tests check against it.
    """

    params = _params(model, params)
    flat = _as_flat_subset(subset, params, model)
    if not bool(flat.any()):
        return 0.0
    keep = _keep_masks(flat, params)
    log_p = log_probs(model, x, batch_size)
    with masks_applied(params, keep):
        log_q = log_probs(model, x, batch_size)
    return float(kl_divergence(log_p, log_q).mean())


def evaluate_subsets(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, subsets: torch.Tensor, params=None,
                     method: str = "auto", chunk_size: int | None = None) -> pd.DataFrame:
    """Accuracy and utility of each subset: the rows of a boolean ``subsets [S, P]`` (True = ablated), or a sequence of
    subsets in any form :func:`utility` takes (keep-``Masks`` keyed by name, per-weight or flat ablation vectors).

    method: "batched" (vmap over stacked masked weights), "loop" (masked in place, restored) or "auto".
    Returns a DataFrame with columns ``subset, n_ablated, accuracy, utility``. The model is left unchanged.
    """
    if not isinstance(subsets, torch.Tensor):  # the batched scorer works on the [S, P] form
        flat = _params(model, params)
        subsets = [_as_flat_subset(s, flat, model) for s in subsets]
        p = sum(getattr(m, n).numel() for m, n in flat)
        subsets = torch.stack(subsets) if subsets else torch.zeros(0, p, dtype=torch.bool)
    scorer = _Scorer(model, x, y, params, method, chunk_size)
    try:
        acc, util = scorer.score(subsets)
    finally:
        scorer.close()
    return pd.DataFrame({"subset": np.arange(len(acc)), "n_ablated": subsets.sum(1).cpu().numpy(),
                         "accuracy": acc.numpy(), "utility": util.numpy()})


def random_subsets(n_weights: int, k: int, n_subsets: int, generator: torch.Generator | None = None,
                   within: torch.Tensor | None = None) -> torch.Tensor:
    """``[n_subsets, n_weights]`` boolean: each row marks ``k`` distinct weights drawn uniformly (True = ablated).

    within: draw only among these flat indices (e.g. a magnitude band).
    """
    pool = within.cpu() if within is not None else None  # subsets are drawn and held on the CPU
    size = n_weights if pool is None else len(pool)
    if not 0 <= k <= size:
        raise ValueError(f"k={k} must be in [0, {size}]")
    out = torch.zeros(n_subsets, n_weights, dtype=torch.bool)
    for i in range(n_subsets):
        pick = torch.randperm(size, generator=generator)[:k]
        out[i, pick if pool is None else pool[pick]] = True
    return out


def _check_ratio(r: float, name: str = "ratios") -> float:
    return fraction(name, r)


def random_ablation(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None,
                    ratios: Sequence[float] = DEFAULT_RATIOS, n_subsets: int = 500, seed: int = 0, params=None,
                    method: str = "auto", chunk_size: int | None = None, *, within: torch.Tensor | None = None,
                    counts: Sequence[int] | None = None, recalibrate: torch.Tensor | None = None) -> pd.DataFrame:
    """Random ablation (source 002, Fig. 1 left): per ratio, ``n_subsets`` random subsets of ``round(r * P)`` weights.

    within: draw only among these flat indices of the prunable weights (e.g. the weights a sparse network kept), and
      ``P`` is their number; counts: ablate these numbers of weights instead of ratios (each at most ``P``; the
      source's comparison of network sizes by absolute number); recalibrate: inputs on which the batch-norm running
      statistics are recomputed after each ablation (``torch.optim.swa_utils.update_bn``) before it is evaluated, and
      restored afterwards: do the stored statistics, which describe the unablated network, cause the spread?
    Returns one row per subset: ``ratio`` (``n_ablated / P``), ``subset, n_ablated, accuracy, utility``. Subsets are
    drawn from a generator seeded with ``seed`` (the same subsets for the same model size, ratios and seed).
    """
    if n_subsets < 1:
        raise ValueError(f"n_subsets={n_subsets} must be >= 1")
    pool = None if within is None else within.reshape(-1).cpu()
    n_weights = len(flat_weights(model, params))
    if pool is not None and (pool.dtype == torch.bool or pool.is_floating_point() or pool.unique().numel() != len(pool)
                             or (len(pool) and (int(pool.min()) < 0 or int(pool.max()) >= n_weights))):
        raise ValueError(f"within must hold distinct flat indices in [0, {n_weights}) of the prunable weights "
                         "(e.g. mask.nonzero().flatten())")
    size = n_weights if pool is None else pool.numel()
    if counts is None:
        levels = [(r, int(round(r * size))) for r in (_check_ratio(r) for r in ratios)]
    else:
        if any(isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not 0 <= c <= size for c in counts):
            raise ValueError(f"counts={list(counts)!r} must be integers in [0, {size}] (the weights drawn from)")
        levels = [(int(c) / size if size else 0.0, int(c)) for c in counts]
    scorer = _Scorer(model, x, y, params, method, chunk_size, calibration=recalibrate)
    gen = torch.Generator().manual_seed(seed)
    frames = []
    try:
        step = max(scorer.chunk_size, 16)
        for r, k in levels:
            accs, utils = [], []
            for start in range(0, n_subsets, step):
                subs = random_subsets(scorer.n_weights, k, min(step, n_subsets - start), gen, within=pool)
                a, u = scorer.score(subs)
                accs.append(a)
                utils.append(u)
            frames.append(pd.DataFrame({"ratio": r, "subset": np.arange(n_subsets), "n_ablated": k,
                                        "accuracy": torch.cat(accs).numpy(), "utility": torch.cat(utils).numpy()}))
    finally:
        scorer.close()
    return pd.concat(frames, ignore_index=True)


def magnitude_bands(model: nn.Module, n_bands: int = 10, params=None) -> list[torch.Tensor]:
    """Flat indices of the prunable weights in ``n_bands`` equal-size bands by rank of ``|w|`` (0 = smallest)."""
    if n_bands < 1:
        raise ValueError(f"n_bands={n_bands} must be >= 1")
    order = torch.argsort(flat_weights(model, params).abs(), stable=True)
    return list(torch.tensor_split(order, n_bands))


def magnitude_ablation(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, n_bands: int = 10,
                       ratios: Sequence[float] = (0.1, 0.5, 1.0), n_subsets: int = 20, seed: int = 0, params=None,
                       method: str = "auto", chunk_size: int | None = None) -> pd.DataFrame:
    """Ablation by magnitude (source 002, Fig. 1 right).

    The prunable weights are cut into ``n_bands`` equal-size bands by rank of ``|w|`` (band 0 = smallest); for each
    band and ratio ``r``, ``n_subsets`` random subsets of ``round(r * band size)`` of that band's weights are ablated
    (one subset when ``r = 1``: the whole band). Returns one row per subset:
    ``band, band_low, band_high (|w| range of the band), ratio, subset, n_ablated, accuracy, utility``.
    """
    ratios = [_check_ratio(r) for r in ratios]
    scorer = _Scorer(model, x, y, params, method, chunk_size)
    gen = torch.Generator().manual_seed(seed)
    mags = flat_weights(model, scorer.params).abs()
    frames = []
    try:
        for b, band in enumerate(magnitude_bands(model, n_bands, scorer.params)):
            for r in ratios:
                k = int(round(r * len(band)))
                n = 1 if k in (0, len(band)) else n_subsets
                subs = random_subsets(scorer.n_weights, k, n, gen, within=band)
                a, u = scorer.score(subs)
                frames.append(pd.DataFrame({
                    "band": b, "band_low": float(mags[band].min()), "band_high": float(mags[band].max()),
                    "ratio": r, "subset": np.arange(n), "n_ablated": k, "accuracy": a.numpy(), "utility": u.numpy()}))
    finally:
        scorer.close()
    return pd.concat(frames, ignore_index=True)


def summarize(df: pd.DataFrame, by: str | Sequence[str] = "ratio", values: Sequence[str] = ("accuracy", "utility"),
              quantiles: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95)) -> pd.DataFrame:
    """Distribution of each value per group: ``<value>_mean, _std, _min, _max, _q05, ...`` (one row per group)."""
    by = [by] if isinstance(by, str) else list(by)
    rows = []
    for key, g in df.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key))
        row["n"] = len(g)
        for v in values:
            s = g[v].to_numpy(dtype=float)
            row.update({f"{v}_mean": s.mean(), f"{v}_std": s.std(), f"{v}_min": s.min(), f"{v}_max": s.max()})
            for q in quantiles:
                row[f"{v}_q{int(round(q * 100)):02d}"] = float(np.quantile(s, q))
        rows.append(row)
    return pd.DataFrame(rows)
