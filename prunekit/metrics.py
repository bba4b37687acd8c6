"""Density metrics of source 000 ("The Propensity for Density in Feed-forward Models", Schoots et al., ECAI 2024).

* **Hoyer sparsity** (Hoyer 2004, used by source 000)::

      H(x) = (sqrt(n) - ||x||_1 / ||x||_2) / (sqrt(n) - 1)        x flattened, n = numel(x)

  H = 0 when every entry has the same magnitude, H = 1 when exactly one entry is non-zero.
  Degenerate inputs (the formula is 0/0 there) are given the value 1.0, documented and tested:

  - ``n == 1``: a one-entry vector has at most one non-zero, i.e. it is as sparse as a vector of that length can be;
  - all entries zero: no non-zero at all (l0 = 0 <= 1), again maximally sparse.

  An empty tensor raises ``ValueError``; NaN/inf entries propagate as NaN.

* **Effective density** (source 000): prune the lowest-magnitude weights with no retraining until accuracy has dropped
  by the tolerance (5 points by default). The pruned network that remains is the "core" ω; effective density is
  ``|ω| / |θ|``.

  Convention (kept everywhere in prunekit): ``|θ|`` counts the **prunable weights** -- those returned by
  :func:`prunekit.models.prunable_parameters` (hidden Linear/Conv weights; biases, BatchNorm parameters and, by default,
  the output layer are not prunable and are counted in neither ``|θ|`` nor ``|ω|``), and ``|ω| = |θ| - pruned``.
  So density 1.0 means nothing could be pruned and density is a proper fraction in [0, 1]. The total parameter
  count of the model is returned as well (``total_params``) for reference.

  The search (:func:`first_crossing`) returns the **first** crossing of the accuracy threshold along increasing
  sparsity, even though accuracy vs sparsity is not strictly monotone: a coarse scan in steps of 10% of the weights
  stops at the first coarse point that fails, then a bisection between the last passing and that first failing point
  brings the bracket down to the resolution (0.1% of the weights by default). Worst case: 1 dense + 10 coarse + 7
  bisection = 18 evaluations <= 20.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Callable

import torch
from torch import nn

from .pruning import global_magnitude_order, masks_applied, masks_from_order

__all__ = [
    "hoyer_sparsity",
    "hoyer_by_layer",
    "model_hoyer_sparsity",
    "EffectiveDensity",
    "effective_density",
    "first_crossing",
    "linear_scan_crossing",
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
    from prunekit.models import prunable_parameters

    return prunable_parameters(model, include_output=include_output)


def _param_names(model: nn.Module, params) -> list[str]:
    names = {id(m): n for n, m in model.named_modules()}
    return [f"{names.get(id(m), type(m).__name__)}.{attr}".lstrip(".") for m, attr in params]


def hoyer_by_layer(model: nn.Module, include_output: bool = False) -> dict[str, float]:
    """Hoyer sparsity of each prunable weight tensor: ``{"<module name>.weight": H}`` in model order."""
    params = _prunable(model, include_output)
    return {name: hoyer_sparsity(getattr(m, attr)) for name, (m, attr) in zip(_param_names(model, params), params)}


def model_hoyer_sparsity(model: nn.Module, include_output: bool = False) -> float:
    """Hoyer sparsity of all prunable weights of ``model`` concatenated into one vector."""
    return hoyer_sparsity([getattr(m, attr) for m, attr in _prunable(model, include_output)])


# ----------------------------------------------------------------------------------------------- first crossing
def accuracy_threshold(dense_accuracy: float, tolerance: float = 0.05, relative: bool = False) -> float:
    """Lowest accuracy still accepted: ``dense - tolerance`` (absolute points, default) or ``dense * (1 - tol)``."""
    if not (isinstance(tolerance, (int, float)) and 0 <= tolerance < 1) or isinstance(tolerance, bool):
        raise ValueError(f"tolerance={tolerance!r} must be a number in [0, 1)")
    return dense_accuracy * (1.0 - tolerance) if relative else dense_accuracy - tolerance


def first_crossing(passes: Callable[[int], bool], n: int, *, coarse: float = 0.1, resolution: float = 1e-3,
                   max_evaluations: int = 19) -> tuple[int, int]:
    """Largest ``k`` (weights pruned, 0..n) before the first failure of ``passes(k)`` along increasing ``k``.

    ``passes(0)`` is assumed true (the dense model). Coarse scan at ``k = round(i * coarse * n)``, i = 1, 2, ...,
    stopping at the first failing point; then bisection on ``[last pass, first fail]`` until the bracket is at most
    ``max(1, floor(resolution * n))`` weights wide. Returns ``(k, evaluations)``. The returned k always passes and
    k + bracket fails (or k == n), so it is the first crossing at the coarse scale and a crossing at the fine scale:
    it agrees with a fine linear scan whenever accuracy does not dip below the threshold and recover again inside the
    one coarse interval where the threshold is crossed.
    Raises ``RuntimeError`` if more than ``max_evaluations`` calls would be needed (choose coarse/resolution so that
    ``ceil(1/coarse) + ceil(log2(coarse/resolution)) <= max_evaluations``).
    """
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n={n!r} must be a non-negative integer")
    if not 0 < coarse <= 1:
        raise ValueError(f"coarse={coarse!r} must be in (0, 1]")
    if not 0 < resolution <= coarse:
        raise ValueError(f"resolution={resolution!r} must be in (0, coarse]")
    evaluations = 0

    def check(k: int) -> bool:
        nonlocal evaluations
        evaluations += 1
        if evaluations > max_evaluations:
            raise RuntimeError(f"first_crossing needs more than max_evaluations={max_evaluations} evaluations")
        return bool(passes(k))

    if n == 0:
        return 0, 0
    step = max(1, math.floor(resolution * n))
    lo, hi = 0, None
    i = 1
    while True:
        k = min(n, round(i * coarse * n))
        if k > lo:
            if check(k):
                lo = k
            else:
                hi = k
                break
        if k >= n:
            return n, evaluations  # everything can be pruned within the tolerance
        i += 1
    while hi - lo > step:
        mid = (lo + hi) // 2
        if check(mid):
            lo = mid
        else:
            hi = mid
    return lo, evaluations


def linear_scan_crossing(passes: Callable[[int], bool], n: int, step: int) -> tuple[int, int]:
    """Reference search: ``k = step, 2*step, ...`` until the first failure; returns (last passing k, evaluations)."""
    if step < 1:
        raise ValueError(f"step={step!r} must be >= 1")
    lo, evaluations, k = 0, 0, 0
    while k < n:
        k = min(n, k + step)
        evaluations += 1
        if not passes(k):
            return lo, evaluations
        lo = k
    return lo, evaluations


# --------------------------------------------------------------------------------------------- pruned accuracy
class _Pruner:
    """Evaluates ``model`` with its ``k`` lowest-magnitude prunable weights zeroed (global or per-layer ranking).

    Magnitudes are ranked once (``prunekit.pruning.global_magnitude_order``: ties by index); each evaluation runs
    under ``prunekit.pruning.masks_applied``, which restores the weights bitwise.
    """

    def __init__(self, model: nn.Module, split, include_output: bool = False, scope: str = "global",
                 batch_size: int = 2048):
        scope = _check_scope(scope)
        self.model, self.split, self.scope, self.batch_size = model, split, scope, batch_size
        self.params = _prunable(model, include_output)
        self.tensors = [getattr(m, a) for m, a in self.params]
        self.sizes = [t.numel() for t in self.tensors]
        self.n = sum(self.sizes)
        self.loss = "sse" if split.y.dtype.is_floating_point else "cross_entropy"
        if scope == "global":
            self.order = global_magnitude_order(self.params)
        else:
            self.order = [global_magnitude_order([p]) for p in self.params]

    def masks(self, k: int) -> list[torch.Tensor]:
        if not 0 <= k <= self.n:
            raise ValueError(f"k={k} must be in [0, {self.n}]")
        if self.scope == "global":
            return masks_from_order(self.params, self.order, k)
        else:  # the same fraction k/n in every layer, exactly round(k * n_l / n) weights per layer
            chunks = []
            for order, size in zip(self.order, self.sizes):
                flat = torch.ones(size, dtype=torch.bool)
                flat[order[: round(k * size / self.n)]] = False
                chunks.append(flat)
        return [c.reshape(t.shape) for c, t in zip(chunks, self.tensors)]

    def pruned_count(self, k: int) -> int:
        if self.scope == "global":
            return k
        return sum(round(k * size / self.n) for size in self.sizes)

    def accuracy(self, k: int) -> float:
        from prunekit.train import evaluate

        with masks_applied(self.params, self.masks(k)):
            _, acc = evaluate(self.model, self.split, loss=self.loss, batch_size=self.batch_size)
        return float(acc)


def _check_scope(scope: str) -> str:
    """"global" or "layerwise" (alias "layer"), the scopes of prunekit.pruning."""
    scope = {"layer": "layerwise"}.get(scope, scope)
    if scope not in ("global", "layerwise"):
        raise ValueError(f"scope={scope!r} is not supported; allowed values: 'global', 'layerwise' (alias 'layer')")
    return scope


def _eval_split(data):
    """Accepts a Split (x, y), a Dataset (uses its test split) or an (x, y) tuple."""
    if hasattr(data, "x") and hasattr(data, "y"):
        return data
    if hasattr(data, "test"):
        return data.test
    if isinstance(data, (tuple, list)) and len(data) == 2:
        from types import SimpleNamespace

        return SimpleNamespace(x=data[0], y=data[1])
    raise ValueError("data must be a prunekit Dataset (its test split is used), a Split or an (x, y) pair")


def pruned_accuracy(model: nn.Module, data, fractions, *, include_output: bool = False, scope: str = "global"):
    """Accuracy after pruning each fraction of the prunable weights (no retraining): list of floats."""
    pruner = _Pruner(model, _eval_split(data), include_output=include_output, scope=scope)
    return [pruner.accuracy(round(f * pruner.n)) for f in fractions]


# ------------------------------------------------------------------------------------------- effective density
@dataclass(frozen=True)
class EffectiveDensity:
    """Result of :func:`effective_density`.

    core_params = |ω| (prunable weights left in the core), params = |θ| (prunable weights), density = |ω| / |θ|,
    pruned = |θ| - |ω|; failed_at = fewest pruned weights seen to fail (pruned < failed_at <= pruned + resolution *
    |θ|; None when everything could be pruned); total_params = all parameters of the model (biases, BN, output
    layer included); evaluations counts every model evaluation, the dense one included.
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
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def effective_density(model: nn.Module, data, tolerance: float = 0.05, relative: bool = False,
                      scope: str = "global", *, include_output: bool = False, resolution: float = 1e-3,
                      coarse: float = 0.1, max_evaluations: int = 20) -> EffectiveDensity:
    """Effective density |ω|/|θ| of source 000: largest magnitude pruning (no retraining) within the tolerance.

    data: a prunekit Dataset (its test split is used), a Split or an (x, y) pair.
    tolerance: allowed accuracy drop; absolute points as a fraction (0.05 = 5 points) unless ``relative=True``
      (then accuracy must stay >= dense * (1 - tolerance)).
    scope: "global" (one magnitude ranking over all prunable weights, the natural reading of the paper) or
      "layerwise" (alias "layer": the same fraction removed from every layer, round(k * n_l / |θ|) weights of layer l).
    resolution: bracket width of the answer as a fraction of |θ| (0.1% by default); at most ``max_evaluations``
      model evaluations in all, dense one included (the default settings use at most 18).
    The answer is the first crossing of the threshold along increasing sparsity (see :func:`first_crossing`).
    """
    from prunekit.models import count_parameters

    t0 = time.perf_counter()
    split = _eval_split(data)
    was_training = model.training
    model.eval()
    try:
        pruner = _Pruner(model, split, include_output=include_output, scope=scope)
        dense = pruner.accuracy(0)
        threshold = accuracy_threshold(dense, tolerance, relative)
        accs: dict[int, float] = {0: dense}

        def passes(k: int) -> bool:
            accs[k] = pruner.accuracy(k)
            return accs[k] >= threshold

        k, evals = first_crossing(passes, pruner.n, coarse=coarse, resolution=resolution,
                                  max_evaluations=max_evaluations - 1)
    finally:
        model.train(was_training)
    pruned = pruner.pruned_count(k)
    core = pruner.n - pruned
    failing = [j for j, a in accs.items() if j > k and a < threshold]
    failed_at = pruner.pruned_count(min(failing)) if failing else None
    return EffectiveDensity(core_params=core, params=pruner.n, density=core / pruner.n if pruner.n else float("nan"),
                            dense_accuracy=dense, core_accuracy=accs[k], threshold=threshold,
                            evaluations=evals + 1, pruned=pruned, failed_at=failed_at,
                            total_params=count_parameters(model),
                            tolerance=float(tolerance), relative=bool(relative), scope=pruner.scope,
                            seconds=time.perf_counter() - t0)
