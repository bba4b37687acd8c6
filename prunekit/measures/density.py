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
  :func:`prunekit.core.prunable.prunable_parameters` (hidden Linear/Conv weights; biases, BatchNorm parameters and, by default,
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
  (``prunekit.measures._density_eval``). Other models are evaluated with the masks applied in place.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Callable, NamedTuple, Sequence

import torch
from torch import nn

from ..core.checks import count, distinct, fraction, number, sequence
from ..core.device import model_device
from ..pruning.masks import weight_of
from ..core.prunable import parameter_names
from ..pruning.scorers import scorer as resolve_scorer
from .protocol import measure_params, older_positional
from ._density_eval import check_scope, as_eval_split, IncrementalMLP, Pruner
from ..core.train import eval_mode

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
    "chance_accuracy",
    "warn_if_at_chance",
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


def _prunable(model: nn.Module, data, params, include_output: bool, output_fn=None):
    return measure_params(model, data, params, include_output=include_output, output_fn=output_fn)


def hoyer_by_layer(model: nn.Module, data=None, *, params=None, include_output: bool = False,
                   output_fn=None) -> dict[str, float]:
    """Hoyer sparsity of each weight tensor of ``params`` (default: ``prunable_parameters``, the layer into the logits
    traced on ``data`` when the model names none): ``{"<module name>.<attribute>": H}`` in model order."""
    params = _prunable(model, data, params, include_output, output_fn)
    return {name: hoyer_sparsity(weight_of(m, attr)) for name, (m, attr) in zip(parameter_names(model, params), params)}


def model_hoyer_sparsity(model: nn.Module, data=None, *, params=None, include_output: bool = False,
                         output_fn=None) -> float:
    """Hoyer sparsity of all weights of ``params`` (default as :func:`hoyer_by_layer`) concatenated into one vector."""
    return hoyer_sparsity([weight_of(m, attr) for m, attr in _prunable(model, data, params, include_output, output_fn)])


def chance_accuracy(y: torch.Tensor) -> float:
    """Accuracy of always answering the most frequent label of ``y`` (the accuracy a model at chance reaches)."""
    y = y.reshape(-1)
    return float(torch.unique(y, return_counts=True)[1].max()) / y.numel() if y.numel() else float("nan")


def warn_if_at_chance(accuracy: float, y: torch.Tensor, what: str) -> bool:
    """Warn (``RuntimeWarning``) when ``accuracy`` is within two binomial standard errors of
    :func:`chance_accuracy` (or below it): a measure of what the model has learned means nothing there."""
    fraction("accuracy", accuracy)
    if y.dim() != 1 or y.is_floating_point():  # regression targets: no chance level
        return False
    chance = chance_accuracy(y)
    margin = 2.0 * math.sqrt(max(chance * (1.0 - chance), 1e-12) / y.numel())
    if accuracy <= chance + margin:
        warnings.warn(f"{what}: the model's accuracy {accuracy:.3f} is at chance (the most frequent label alone "
                      f"scores {chance:.3f} on these {y.numel()} samples): train it first, the result measures "
                      "nothing it has learned", RuntimeWarning, stacklevel=3)
        return True
    return False


# ----------------------------------------------------------------------------------------------- first crossing
def accuracy_threshold(dense_accuracy: float, tolerance: float = 0.05, relative: bool = False) -> float:
    """Lowest accuracy still accepted: ``dense - tolerance`` (absolute points, default) or ``dense * (1 - tol)``."""
    number("tolerance", tolerance, low=0.0, high=1.0, high_open=True)
    fraction("dense_accuracy", dense_accuracy)
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
    n = count("n", n, low=0)
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
@older_positional("fractions")
def pruned_accuracy(model: nn.Module, data, *, fractions: Sequence[float], params=None, include_output: bool = False,
                    scope: str = "global", output_fn=None):
    """Accuracy after pruning each fraction of the weights of ``params`` (default: ``prunable_parameters``) by
    magnitude, no retraining: list of floats. ``data`` in any form of ``prunekit.core.data.as_split``."""
    fractions = distinct("fractions", sequence("fractions", fractions, item=fraction))
    scope = check_scope(scope)
    pruner = Pruner(model, as_eval_split(data, model_device(model), model, output_fn), include_output=include_output,
                    scope=scope, params=params, output_fn=output_fn)
    return [pruner.accuracy(round(f * pruner.n)) for f in fractions]


# ------------------------------------------------------------------------------------------- effective density
@dataclass(frozen=True)
class EffectiveDensity:
    """Result of :func:`effective_density`.

    core_params = |ω| (prunable weights left in the core), params = |θ| (prunable weights), density = |ω| / |θ|,
    pruned = |θ| - |ω| (the last passing level); failed_at = the failing level that bounds it (pruned < failed_at <=
    pruned + max(1, floor(resolution * |θ|)); None when everything could be pruned); total_params = all parameters of
    the model, trainable or frozen, each tensor once (biases, BN, output layer included: as
    ``prunekit.core.prunable.weight_coverage`` counts them); evaluations counts every model evaluation, the dense one
    included; step and resolution are the search's settings (fractions of |θ|).
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


@older_positional("tolerance", "relative", "scope")
def effective_density(model: nn.Module, data, *, params=None, tolerance: float = 0.05, relative: bool = False,
                      scope: str = "global", include_output: bool = False, step: float = 0.01,
                      resolution: float = 1e-3, incremental: bool | None = None, scorer="magnitude",
                      output_fn=None) -> EffectiveDensity:
    """Effective density |ω|/|θ| of source 000: the share of the prunable weights left when magnitude pruning (no
    retraining), scanned upward in steps of ``step``, first takes accuracy below the threshold.

    data: ``(x, y)`` tensors, a Split, a prunekit Dataset (its test split) or an iterable of ``(x, y)`` batches such
      as a DataLoader (``prunekit.core.data.as_split``). Labels of any integer dtype are taken as class indices;
      float labels, labels outside ``[0, number of logits)`` and inputs holding NaN are refused before any compute.
    params: the weights |θ| (``(module, "weight")`` pairs); by default ``prunable_parameters``: every Linear, Conv,
      Embedding and attention weight but the layer into the logits (traced on ``data`` when the model names none).
      The result's ``params`` and ``total_params`` say what was covered. A model at chance gets a ``RuntimeWarning``.
    output_fn: maps the model's output to its logits when the forward returns a dict or a tuple.
    tolerance: allowed accuracy drop; absolute points as a fraction (0.05 = 5 points) unless ``relative=True``
      (then accuracy must stay >= dense * (1 - tolerance)).
    scope: "global" (one magnitude ranking over all prunable weights, the natural reading of the paper) or
      "layerwise" (alias "layer": the same fraction removed from every layer, round(k * n_l / |θ|) weights of layer l).
    step: the scan's step as a fraction of |θ| (1% by default); resolution: the bisection's final bracket inside the
      first failing step (0.1% by default). See :func:`first_crossing` for the definition and its cost.
    scorer: a name of ``prunekit.pruning.scorers.SCORERS`` or a callable ``scorer(params, *, model=None,
      data=None)`` giving weight-shaped scores, the lowest pruned first (``"magnitude"``, ``|w|``, the source's
      magnitude pruning, by default), called once on ``model`` and ``data``.
    incremental: evaluate an ``MLP`` with the sparse first-layer update of :class:`IncrementalMLP` (None: whenever
      the model is one). The two levels that bracket the answer are then evaluated again the plain way (masks
      applied, full forward pass); should either disagree (a float rounding tie at the threshold), the search is
      repeated the plain way. ``evaluations`` counts every model evaluation, the dense one and these included.
    """

    search_steps(1, step, resolution)  # validates step and resolution before any compute
    scorer = resolve_scorer(scorer)
    number("tolerance", tolerance, low=0.0, high=1.0, high_open=True)
    check_scope(scope)
    t0 = time.perf_counter()
    split = as_eval_split(data, model_device(model), model, output_fn)  # labels checked; on the model's device
    scope = check_scope(scope)
    with eval_mode(model):
        plain = Pruner(model, split, include_output=include_output, scope=scope, scorer=scorer, params=params,
                       output_fn=output_fn)
        default_set = params is None and output_fn is None  # the fast evaluator ranks the default weight set
        fits = default_set and IncrementalMLP.applies(model, plain.params)
        use_fast = fits if incremental is None else bool(incremental)
        if use_fast and not fits:
            raise ValueError("incremental=True needs a plain MLP (Flatten -> Linear -> ..., the first Linear prunable, "
                             "no forward hooks such as torch.nn.utils.prune's) measured on its default weight set "
                             "(no params=, no output_fn=); use incremental=None or False otherwise")
        fast = IncrementalMLP(model, split, include_output, scope, order=plain.order) if use_fast else None
        dense = fast.dense_accuracy if use_fast else plain.accuracy(0)  # bitwise the same (see IncrementalMLP)
        warn_if_at_chance(dense, split.y, "effective_density")
        threshold = accuracy_threshold(dense, tolerance, relative)
        evaluations = 1

        def search(pruner: Pruner) -> tuple[Crossing, dict[int, float]]:
            accs: dict[int, float] = {0: dense}

            def passes(k: int) -> bool:
                accs[k] = pruner.accuracy(k)
                return accs[k] >= threshold

            return first_crossing(passes, plain.n, step=step, resolution=resolution), accs

        if use_fast:
            with fast:
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
                            total_params=sum(p.numel() for p in model.parameters()), tolerance=float(tolerance),
                            relative=bool(relative), scope=scope, step=float(step), resolution=float(resolution),
                            seconds=time.perf_counter() - t0)
