"""Density metrics of source 000 ("The Propensity for Density in Feed-forward Models", Schoots et al., ECAI 2024).

* **Hoyer sparsity** (Hoyer 2004, used by source 000)::

      H(x) = (sqrt(n) - ||x||_1 / ||x||_2) / (sqrt(n) - 1)        x flattened, n = numel(x)

  H = 0 when every entry has the same magnitude, H = 1 when exactly one entry is non-zero.
  Degenerate inputs (the formula is 0/0 there) are given the value 1.0, documented and tested:

  - ``n == 1``: a one-entry vector has at most one non-zero, i.e. it is as sparse as a vector of that length can be;
  - all entries zero: no non-zero at all (l0 = 0 <= 1), again maximally sparse.

  An empty tensor raises ``ValueError``; NaN/inf entries propagate as NaN.

* **Effective density** (source 000): prune the lowest-magnitude weights *gradually*, with no retraining, until
  accuracy has dropped by the tolerance (5 points by default). The pruned network that remains is the "core" ω;
  effective density is ``|ω| / |θ|``.

  Convention (kept everywhere in prunekit): ``|θ|`` counts the **prunable weights** -- those returned by
  :func:`prunekit.models.prunable_parameters` (hidden Linear/Conv weights; biases, BatchNorm parameters and, by default,
  the output layer are not prunable and are counted in neither ``|θ|`` nor ``|ω|``), and ``|ω| = |θ| - pruned``.
  So density 1.0 means nothing could be pruned and density is a proper fraction in [0, 1]. The total parameter
  count of the model is returned as well (``total_params``) for reference.

  **Definition of the search** (:func:`first_crossing`), in one sentence: scanning upward in steps of ``step``
  (1% of |θ| by default: the "gradual" schedule), the core is the last passing level before the **first** level whose
  accuracy is below the threshold, refined by bisection inside that one step to ``resolution`` (0.1% of |θ|).
  Accuracy is not monotone in the pruning level; the search assumes monotonicity only inside the one step where the
  scan first fails, so a dip narrower than ``step`` between two passing scan levels is not seen (make ``step``
  smaller to see it). It costs ``ceil(first failing level / step)`` scan evaluations plus at most
  ``ceil(log2(step / resolution))`` bisection evaluations (4 with the defaults) plus the dense one; the result says how
  many (``evaluations``).

  Speed: for a fully connected net whose first layer reads the input (prunekit's ``MLP``), going from level k to a
  higher level zeroes a known set of first-layer weights, so the first layer's pre-activations are updated by a sparse
  product in float32 (its rounding differs from the full product's at the level of float32 rounding, which is why the
  two levels that bracket the answer are evaluated again the plain way) and only the layers above are recomputed
  (:class:`_IncrementalMLP`). Other models are evaluated with the masks applied in place (:class:`_Pruner`).
"""

from __future__ import annotations

import itertools
import math
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Callable, NamedTuple

import torch
from torch import nn

from .checks import choice, fraction, number
from .data import Split
from .device import model_device
from .masks import Masks, _storage, masks_applied
from .models import count_parameters, prunable_parameters
from .pruning import global_magnitude_order, masks_from_order
from .train import _correct, eval_mode, predict

__all__ = [
    "hoyer_sparsity",
    "hoyer_by_layer",
    "model_hoyer_sparsity",
    "EffectiveDensity",
    "effective_density",
    "Crossing",
    "first_crossing",
    "search_steps",
    "pruned_accuracy",
    "accuracy_threshold",
]


# --------------------------------------------------------------------------------------------------------- Hoyer
def hoyer_sparsity(x) -> float:
    """Hoyer sparsity ``(sqrt(n) - ||x||_1/||x||_2) / (sqrt(n) - 1)`` of ``x`` flattened (float64 arithmetic).

    Returns a float in [0, 1]: 0 for equal magnitudes, 1 for a single non-zero. ``n == 1`` and an all-zero input
    return 1.0 (maximally sparse: at most one non-zero); an empty input raises ``ValueError``.
    Also accepts a list/tuple of tensors, which are concatenated (flattened) first.
    """
    if isinstance(x, (list, tuple)):
        if not x:
            raise ValueError("x must have at least one element (got an empty list)")
        x = torch.cat([torch.as_tensor(t).detach().reshape(-1).to(torch.float64) for t in x])
    else:
        x = torch.as_tensor(x).detach().reshape(-1).to(torch.float64)
    n = x.numel()
    if n == 0:
        raise ValueError("x must have at least one element (got an empty tensor)")
    l1 = x.abs().sum()
    l2 = torch.linalg.vector_norm(x)
    if not torch.isfinite(l1) or not torch.isfinite(l2):
        return float("nan")
    if n == 1 or l2 == 0:
        return 1.0
    root = math.sqrt(n)
    h = (root - float(l1 / l2)) / (root - 1.0)
    return float(min(1.0, max(0.0, h)))  # clip rounding noise only (exact value is always in [0, 1])


def _prunable(model: nn.Module, include_output: bool):
    return prunable_parameters(model, include_output=include_output)


def hoyer_by_layer(model: nn.Module, include_output: bool = False) -> dict[str, float]:
    """Hoyer sparsity of each prunable weight tensor: ``{"<module name>.weight": H}`` in model order."""
    params = _prunable(model, include_output)
    return {name: hoyer_sparsity(getattr(m, attr)) for name, (m, attr) in zip(Masks.names(model, params), params)}


def model_hoyer_sparsity(model: nn.Module, include_output: bool = False) -> float:
    """Hoyer sparsity of all prunable weights of ``model`` concatenated into one vector."""
    return hoyer_sparsity([getattr(m, attr) for m, attr in _prunable(model, include_output)])


# ----------------------------------------------------------------------------------------------- first crossing
def accuracy_threshold(dense_accuracy: float, tolerance: float = 0.05, relative: bool = False) -> float:
    """Lowest accuracy still accepted: ``dense - tolerance`` (absolute points, default) or ``dense * (1 - tol)``."""
    number("tolerance", tolerance, low=0.0, high=1.0, high_open=True)
    return dense_accuracy * (1.0 - tolerance) if relative else dense_accuracy - tolerance


class Crossing(NamedTuple):
    """Result of :func:`first_crossing`: ``k`` passes, ``failed_at`` fails (None when every level passed),
    ``failed_at - k <= max(1, floor(resolution * n))``; ``evaluations`` counts the calls of ``passes``."""

    k: int
    failed_at: int | None
    evaluations: int


def _fraction(name: str, value) -> float:
    """A fraction of the prunable weights in (0, 1]."""
    return fraction(name, value, low_open=True)


def search_steps(n: int, step: float = 0.01, resolution: float = 1e-3) -> tuple[int, int]:
    """``(scan step, bisection resolution)`` in weights for ``n`` prunable weights: ``max(1, round(step * n))`` and
    ``max(1, floor(resolution * n))``, the latter at most the former."""
    step, resolution = _fraction("step", step), _fraction("resolution", resolution)
    if resolution > step:
        raise ValueError(f"resolution={resolution!r} must not exceed step={step!r}")
    s = max(1, round(step * n))
    return s, min(s, max(1, math.floor(resolution * n)))


def first_crossing(passes: Callable[[int], bool], n: int, *, step: float = 0.01,
                   resolution: float = 1e-3) -> Crossing:
    """The last passing level before the first failing one, scanning ``k = s, 2s, 3s, ...`` (``s = step * n``) and
    then bisecting inside that one step down to ``resolution * n`` weights.

    ``passes(k)`` says whether the model with ``k`` weights pruned is within the tolerance; ``passes(0)`` (the dense
    model) is assumed true and never called. The scan stops at the first failing level ``f``; the bisection then works
    on ``[f - s, f]`` only, so the answer never lies beyond a failing scan level, whatever the curve does further on.
    Monotonicity is assumed inside that one step and nowhere else. Evaluations: ``ceil(f / s)`` for the scan plus
    at most ``ceil(log2(s / r))`` for the bisection.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n={n!r} must be a non-negative integer (the number of prunable weights)")
    s, r = search_steps(max(n, 1), step, resolution)
    evaluations = 0

    def check(k: int) -> bool:
        nonlocal evaluations
        evaluations += 1
        return bool(passes(k))

    lo = 0
    while lo < n:
        k = min(n, lo + s)
        if not check(k):
            hi = k
            break
        lo = k
    else:
        return Crossing(n, None, evaluations)  # every level passes: everything can be pruned within the tolerance
    while hi - lo > r:
        mid = (lo + hi) // 2
        if check(mid):
            lo = mid
        else:
            hi = mid
    return Crossing(lo, hi, evaluations)


# --------------------------------------------------------------------------------------------- pruned accuracy
class _Pruner:
    """Evaluates ``model`` with its ``k`` lowest-magnitude prunable weights zeroed (global or per-layer ranking).

    Magnitudes are ranked once (``prunekit.pruning.global_magnitude_order``: ties by index); each evaluation runs
    under ``prunekit.masks.masks_applied``, which restores the weights bitwise.
    """

    def __init__(self, model: nn.Module, split, include_output: bool = False, scope: str = "global",
                 batch_size: int = 4096):
        scope = _check_scope(scope)
        self.model, self.split, self.scope, self.batch_size = model, split, scope, batch_size
        self.params = _prunable(model, include_output)
        self.tensors = [getattr(m, a) for m, a in self.params]
        self.sizes = [t.numel() for t in self.tensors]
        self.n = sum(self.sizes)
        if scope == "global":
            self.order = global_magnitude_order(self.params)
        else:
            self.order = [global_magnitude_order([p]) for p in self.params]

    def layer_counts(self, k: int) -> list[int]:
        """Weights pruned in each layer at level ``k``: the global ranking's split, or ``round(k * n_l / n)``."""
        if self.scope == "global":
            cut = self.order[:k]
            bounds = torch.tensor([0, *itertools.accumulate(self.sizes)], device=cut.device)
            return torch.bucketize(cut, bounds[1:], right=True).bincount(minlength=len(self.sizes)).tolist()
        return [round(k * size / self.n) for size in self.sizes]

    def masks(self, k: int) -> list[torch.Tensor]:
        if not 0 <= k <= self.n:
            raise ValueError(f"k={k} must be in [0, {self.n}]")
        if self.scope == "global":
            return masks_from_order(self.params, self.order, k)
        chunks = []  # the same fraction k/n in every layer, exactly round(k * n_l / n) weights per layer
        for order, size, count in zip(self.order, self.sizes, self.layer_counts(k)):
            flat = torch.ones(size, dtype=torch.bool, device=order.device)
            flat[order[:count]] = False
            chunks.append(flat)
        return [c.reshape(t.shape) for c, t in zip(chunks, self.tensors)]

    def pruned_count(self, k: int) -> int:
        if self.scope == "global":
            return k
        return sum(self.layer_counts(k))

    def accuracy(self, k: int) -> float:
        with masks_applied(self.params, self.masks(k)):
            return _accuracy(self.model, self.split.x, self.split.y, self.batch_size)

    def commit(self, k: int) -> None:
        """Level ``k`` passed; the next evaluations are at higher levels (a no-op here, see _IncrementalMLP)."""


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    """Accuracy only (no loss): ``prunekit.train``'s batched ``predict`` and its ``_correct`` count."""
    return float(_correct(predict(model, x, batch_size), y)) / max(1, x.shape[0])


class _IncrementalMLP(_Pruner):
    """The accuracies of :class:`_Pruner` for an ``MLP`` (``Flatten -> Linear -> ...``), computed incrementally.

    Pruning only zeroes weights, and the pruned set grows with ``k`` (a prefix of the magnitude order), so the first
    layer's pre-activations at level ``k`` are those of a lower, committed level ``b`` minus the contribution of the
    first-layer weights pruned between ``b`` and ``k``: ``Z_k^T = Z_b^T - D X^T`` with the sparse (CSR) ``D`` holding
    just those weights (``N x |D|`` multiply-adds instead of ``N x d_in x d_out``). The layers above are recomputed,
    their weights pruned in place: those pruned up to ``b`` stay zeroed, those pruned between ``b`` and ``k`` are
    zeroed for the evaluation only. ``commit(k)`` makes a passing level the new ``b``. Use as a context manager: on exit every
    weight is restored bitwise. ``Z`` is float32, as the plain forward pass computes it; its rounding differs from a
    full matrix product by the order of the product's own rounding error (the search confirms its bracket the plain
    way, see :func:`effective_density`).
    """

    @staticmethod
    def applies(model: nn.Module, params) -> bool:
        return (isinstance(model, nn.Sequential) and len(model) >= 3 and isinstance(model[0], nn.Flatten)
                and isinstance(model[1], nn.Linear) and bool(params) and params[0][0] is model[1])

    def __init__(self, model: nn.Module, split, include_output: bool = False, scope: str = "global",
                 batch_size: int = 4096):
        super().__init__(model, split, include_output, scope, batch_size)
        first = model[1]
        self.w1 = first.weight.detach()
        self.upper = nn.Sequential(*list(model)[2:])  # the same modules (shared weights), above the first layer
        with torch.inference_mode():
            x = model[0](split.x)
            self.xt = x.T.contiguous()  # [d_in, N]: the sparse product reads rows of it
            self.zt = first(x).T.contiguous()  # [d_out, N]: pre-activations, transposed like the product's output
        self.storage = [_storage(m, a).detach() for m, a in self.params[1:]]
        self.saved = [t.clone() for t in self.storage]
        self.offsets = list(itertools.accumulate(self.sizes, initial=0))
        self.base, self.pending = 0, None

    def __enter__(self) -> "_IncrementalMLP":
        return self

    def __exit__(self, *exc) -> None:
        with torch.no_grad():
            for t, saved in zip(self.storage, self.saved):
                t.copy_(saved)

    def _pruned_between(self, lo: int, hi: int) -> list[torch.Tensor]:
        """For each prunable layer, flat indices of the weights pruned at level ``hi`` but not at ``lo``."""
        if self.scope == "global":
            cut = self.order[lo:hi]
            layer = torch.bucketize(cut, torch.tensor(self.offsets[1:-1], device=cut.device), right=True)
            return [cut[layer == i] - off for i, off in enumerate(self.offsets[:-1])]
        return [order[a:b] for order, a, b in zip(self.order, self.layer_counts(lo), self.layer_counts(hi))]

    def _zero_upper(self, pruned: list[torch.Tensor], restore: bool = False) -> None:
        with torch.no_grad():
            for t, saved, idx in zip(self.storage, self.saved, pruned[1:]):
                t.view(-1)[idx] = saved.view(-1)[idx] if restore else 0

    @torch.inference_mode()
    def accuracy(self, k: int) -> float:
        if k < self.base:
            raise ValueError(f"level {k} is below the committed level {self.base}: levels only go up")
        pruned = self._pruned_between(self.base, k)
        idx, zt = pruned[0].sort().values, self.zt  # sorted flat indices: rows, then columns, ascending
        if idx.numel():
            d_out, d_in = self.w1.shape
            rows = torch.bincount(idx // d_in, minlength=d_out)
            crow = torch.cat([rows.new_zeros(1), rows.cumsum(0)])
            with warnings.catch_warnings():  # "sparse CSR support is in beta": the product used here is stable
                warnings.simplefilter("ignore", UserWarning)
                delta = torch.sparse_csr_tensor(crow, idx % d_in, self.w1.reshape(-1)[idx], (d_out, d_in),
                                                check_invariants=False)
            zt = torch.addmm(zt, delta, self.xt, alpha=-1)  # one fused kernel: 3x faster than zt - delta @ xt
        self._zero_upper(pruned)
        try:  # the upper layers are small: one pass over the split (up to 65,536 rows) beats batches of 4,096
            acc = _accuracy(self.upper, zt.T, self.split.y, max(self.batch_size, 65536))
        finally:
            self._zero_upper(pruned, restore=True)
        self.pending = (k, zt, pruned)
        return acc

    def commit(self, k: int) -> None:
        if self.pending is None or self.pending[0] != k:
            self.accuracy(k)
        _, self.zt, pruned = self.pending
        self._zero_upper(pruned)
        self.base = k


def _check_scope(scope: str) -> str:
    """"global" or "layerwise" (alias "layer"), the scopes of prunekit.pruning."""
    return choice("scope", {"layer": "layerwise"}.get(scope, scope), ("global", "layerwise"))


def _eval_split(data, device: torch.device | None = None) -> Split:
    """Accepts a Split (x, y), a Dataset (uses its test split) or an (x, y) tuple; on ``device`` when given."""
    if hasattr(data, "x") and hasattr(data, "y"):
        split = Split(data.x, data.y)
    elif hasattr(data, "test"):
        split = data.test
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        split = Split(data[0], data[1])
    else:
        raise ValueError("data must be a prunekit Dataset (its test split is used), a Split or an (x, y) pair")
    return split if device is None else Split(split.x.to(device), split.y.to(device))


def pruned_accuracy(model: nn.Module, data, fractions, *, include_output: bool = False, scope: str = "global"):
    """Accuracy after pruning each fraction of the prunable weights (no retraining): list of floats."""
    pruner = _Pruner(model, _eval_split(data, model_device(model)), include_output=include_output, scope=scope)
    return [pruner.accuracy(round(f * pruner.n)) for f in fractions]


# ------------------------------------------------------------------------------------------- effective density
@dataclass(frozen=True)
class EffectiveDensity:
    """Result of :func:`effective_density`.

    core_params = |ω| (prunable weights left in the core), params = |θ| (prunable weights), density = |ω| / |θ|,
    pruned = |θ| - |ω| (the last passing level); failed_at = the failing level that bounds it (pruned < failed_at <=
    pruned + max(1, floor(resolution * |θ|)); None when everything could be pruned); total_params = all parameters of
    the model (biases, BN, output layer included); evaluations counts every model evaluation, the dense one included;
    step and resolution are the search's settings (fractions of |θ|).
    """

    core_params: int
    params: int
    density: float
    dense_accuracy: float
    core_accuracy: float
    threshold: float
    evaluations: int
    pruned: int
    failed_at: int | None
    total_params: int
    tolerance: float
    relative: bool
    scope: str
    step: float
    resolution: float
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def effective_density(model: nn.Module, data, tolerance: float = 0.05, relative: bool = False,
                      scope: str = "global", *, include_output: bool = False, step: float = 0.01,
                      resolution: float = 1e-3, incremental: bool | None = None) -> EffectiveDensity:
    """Effective density |ω|/|θ| of source 000: the share of the prunable weights left when magnitude pruning (no
    retraining), scanned upward in steps of ``step``, first takes accuracy below the threshold.

    data: a prunekit Dataset (its test split is used), a Split or an (x, y) pair.
    tolerance: allowed accuracy drop; absolute points as a fraction (0.05 = 5 points) unless ``relative=True``
      (then accuracy must stay >= dense * (1 - tolerance)).
    scope: "global" (one magnitude ranking over all prunable weights, the natural reading of the paper) or
      "layerwise" (alias "layer": the same fraction removed from every layer, round(k * n_l / |θ|) weights of layer l).
    step: the scan's step as a fraction of |θ| (1% by default); resolution: the bisection's final bracket inside the
      first failing step (0.1% by default). See :func:`first_crossing` for the definition and its cost.
    incremental: evaluate an ``MLP`` with the sparse first-layer update of :class:`_IncrementalMLP` (None: whenever
      the model is one). The two levels that bracket the answer are then evaluated again the plain way (masks
      applied, full forward pass); should either disagree (a float rounding tie at the threshold), the search is
      repeated the plain way. ``evaluations`` counts every model evaluation, the dense one and these included.
    """

    search_steps(1, step, resolution)  # validates step and resolution before any compute
    t0 = time.perf_counter()
    split = _eval_split(data, model_device(model))  # moved to the model's device once
    scope = _check_scope(scope)
    with eval_mode(model):
        plain = _Pruner(model, split, include_output=include_output, scope=scope)
        use_fast = _IncrementalMLP.applies(model, plain.params) if incremental is None else bool(incremental)
        if use_fast and not _IncrementalMLP.applies(model, plain.params):
            raise ValueError("incremental=True needs a prunekit MLP (Flatten -> Linear -> ...) whose first Linear is "
                             "prunable; use incremental=None or False for other models")
        dense = plain.accuracy(0)
        threshold = accuracy_threshold(dense, tolerance, relative)
        evaluations = 1

        def search(pruner: _Pruner) -> tuple[Crossing, dict[int, float]]:
            accs: dict[int, float] = {0: dense}

            def passes(k: int) -> bool:
                accs[k] = pruner.accuracy(k)
                ok = accs[k] >= threshold
                if ok:
                    pruner.commit(k)
                return ok

            return first_crossing(passes, plain.n, step=step, resolution=resolution), accs

        if use_fast:
            with _IncrementalMLP(model, split, include_output, scope) as fast:
                crossing, accs = search(fast)
        else:
            crossing, accs = search(plain)
        evaluations += crossing.evaluations
        if use_fast:  # confirm the bracket the plain way
            for level in (crossing.k, crossing.failed_at):
                if level is not None and level != 0:
                    accs[level] = plain.accuracy(level)
                    evaluations += 1
            if accs[crossing.k] < threshold or (crossing.failed_at is not None
                                                and accs[crossing.failed_at] >= threshold):
                crossing, accs = search(plain)
                evaluations += crossing.evaluations
    pruned = plain.pruned_count(crossing.k)
    core = plain.n - pruned
    failed_at = None if crossing.failed_at is None else plain.pruned_count(crossing.failed_at)
    return EffectiveDensity(core_params=core, params=plain.n, density=core / plain.n if plain.n else float("nan"),
                            dense_accuracy=dense, core_accuracy=accs[crossing.k], threshold=threshold,
                            evaluations=evaluations, pruned=pruned, failed_at=failed_at,
                            total_params=count_parameters(model), tolerance=float(tolerance),
                            relative=bool(relative), scope=scope, step=float(step), resolution=float(resolution),
                            seconds=time.perf_counter() - t0)
