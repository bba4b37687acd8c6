"""Weight utility and utility imbalance (source 002, "An Empirical Study of a Pruning Mechanism").

Utility of a subset ``W_s`` of the weights ``W`` (source 002, Definition 1)::

    U(W_s) = E_x KL( f_W(x) || f_{W \\ W_s}(x) ),   KL(p || q) = sum_k p_k (log p_k - log q_k)

where ``f`` is the softmax output and ``W \\ W_s`` is ``W`` with the weights of ``W_s`` set to zero (ablation). The KL
is computed from log-softmax outputs, so it stays finite when probabilities underflow (a term with ``p_k = 0``
contributes exactly 0). Rounding can make a per-sample KL a tiny negative number (``-1e-8``) when the two
distributions are (almost) equal; such values are clamped to 0, so ``U >= 0`` always. ``U(empty set) = 0`` exactly
(an empty subset is not evaluated: nothing changes).

Subsets are drawn over the *prunable* weights (``prunekit.core.prunable.prunable_parameters``: every Linear/Conv2d weight but
the output layer), seen as one flat vector in the order of that list. A subset is a boolean vector over that flat
vector, ``True`` = ablated (a member of ``W_s``); a batch of subsets is a ``[S, P]`` boolean tensor, the form the
batched scorer works on. Every function that takes subsets also takes them as keep-masks (``prunekit.pruning.masks.Masks``,
True = keep), the form masks have everywhere else in prunekit; :func:`ablation_masks` converts one way.

Experiments:
- random ablation (source 002, Fig. 1 left): for each ratio ``r``, ``n_subsets`` (500, as the source) random subsets of
  exactly ``round(r * P)`` weights; accuracy and utility of each;
- magnitude ablation (Fig. 1 right): the prunable weights are split into ``n_bands`` equal-size bands by the rank of
  ``|w|`` (band 0 = smallest magnitudes); ``ratio`` is the fraction *of the band's weights* ablated at random;
- utility imbalance: ``prunekit.measures.imbalance``; the experiments built on these ablations (imbalance during training,
  widths): ``prunekit.studies.s002_utility``.

Speed: ``prunekit.measures._ablation`` (batched, or masked in place; class-major reductions).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..core.checks import columns, count, distinct, fraction, sequence
from ..core.data import as_xy
from ..core.device import model_device
from ..core.prunable import weight_coverage
from ..pruning.masks import Masks, weight_of, masks_applied, resolve
from ..pruning.scorers import scorer as resolve_scorer
from ..pruning.scorers import scores_of
from ._ablation import ablation_params, AblationEngine, check_options
from .protocol import older_positional
from ..core.train import eval_mode

__all__ = [
    "DEFAULT_RATIOS", "kl_divergence", "log_probs", "utility", "ablation_masks", "flat_weights", "flat_scores",
    "random_subsets", "evaluate_subsets", "random_ablation", "magnitude_bands", "magnitude_ablation", "summarize",
]

DEFAULT_RATIOS = (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


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
    batch_size = count("batch_size", batch_size)
    device = model_device(model)
    with eval_mode(model):
        return torch.cat([F.log_softmax(model(x[i:i + batch_size].to(device)), -1)
                          for i in range(0, x.shape[0], batch_size)])


def flat_weights(model: nn.Module, params=None) -> torch.Tensor:
    """The prunable weights as one flat vector (the order subsets index)."""
    return torch.cat([weight_of(m, n).detach().reshape(-1) for m, n in ablation_params(model, params)])


def ablation_masks(model: nn.Module, subset, params=None) -> Masks:
    """The keep-masks (``prunekit.pruning.masks.Masks``, keyed by name, True = keep) of an ablation ``subset`` (flat over the
    prunable weights or one tensor per weight, True = ablated): ``keep = ~subset``."""
    params = ablation_params(model, params)
    return Masks.from_params(model, params, _keep_masks(_as_flat_subset(subset, params), params))


def _keep_masks(flat: torch.Tensor, params) -> list[torch.Tensor]:
    """Weight-shaped keep-masks (True = keep) of a flat ablation subset (True = ablated)."""
    sizes = [weight_of(m, n).numel() for m, n in params]
    if flat.numel() != sum(sizes):
        raise ValueError(f"subset has {flat.numel()} entries for {sum(sizes)} prunable weights")
    return [~s.view_as(weight_of(m, n)) for s, (m, n) in zip(torch.split(flat, sizes), params)]


def _as_flat_subset(subset, params, model=None) -> torch.Tensor:
    """A subset given per layer (list of bool tensors shaped like the weights) or flat, as one flat bool vector;
    a ``Masks`` (True = keep) gives its complement."""
    if isinstance(subset, Masks):
        if subset.units:
            raise ValueError("subset: unit masks (Masks(units=True)) also silence biases; the utility ablates weights "
                             "only: pass weight masks, or evaluate units with prunekit.pruning.masks.masks_applied(model=)")
        return ~torch.cat([m.reshape(-1) for m in resolve(params, subset, model)]).cpu()
    if isinstance(subset, torch.Tensor):
        return _bool_subset(subset).reshape(-1)
    subset = list(subset)
    if len(subset) != len(params):
        raise ValueError(f"subset has {len(subset)} masks for {len(params)} prunable weights; give one per weight")
    out = []
    for s, (m, n) in zip(subset, params):
        w = weight_of(m, n)
        if tuple(s.shape) != tuple(w.shape):
            raise ValueError(f"subset mask of shape {tuple(s.shape)} does not match weight {tuple(w.shape)}")
        out.append(_bool_subset(s).reshape(-1))
    return torch.cat(out)


def _bool_subset(s: torch.Tensor) -> torch.Tensor:
    """A subset as given when it is boolean (True = ablated), else a ``ValueError``: a float or integer tensor is no
    subset (its numbers would count as weights ablated: n_ablated = 4126.18)."""
    if not isinstance(s, torch.Tensor) or s.dtype != torch.bool:
        raise ValueError(f"subsets must be boolean (True = ablated), got {getattr(s, 'dtype', type(s).__name__)}: a "
                         "subset is a mask, not a number per weight (pass subset.bool() if that is what you meant)")
    return s


@older_positional("subset", "params", "batch_size")
def utility(model: nn.Module, data, *, subset, params=None, batch_size: int = 4096) -> float:
    """``U(W_s) = mean_x KL(f_W(x) || f_{W \\ W_s}(x))`` for one subset (the model is left unchanged).

    data: the inputs ``x`` the mean runs over: a tensor, or any form of ``prunekit.core.data.as_split`` (its targets
    are not used).

    subset: a flat boolean vector over the prunable weights, or one boolean tensor per weight (True = ablated), or
    the keep-masks of the weights left (``prunekit.pruning.masks.Masks``, True = keep; see :func:`ablation_masks`).
    The straightforward path (``prunekit.pruning.masks.masks_applied`` + ``log_probs`` + ``kl_divergence``), independent of
    the batched machinery of ``evaluate_subsets``, which the tests check against it.
    """

    batch_size = count("batch_size", batch_size)
    x, _ = as_xy(data, need_y=False)
    params = ablation_params(model, params, example=x)
    flat = _as_flat_subset(subset, params, model)
    if not bool(flat.any()):
        return 0.0
    keep = _keep_masks(flat, params)
    log_p = log_probs(model, x, batch_size)
    with masks_applied(params, keep, model=model):
        log_q = log_probs(model, x, batch_size)
    return float(kl_divergence(log_p, log_q).mean())


@older_positional("y", "subsets", "params", "method", "chunk_size")
def evaluate_subsets(model: nn.Module, data, *, subsets: torch.Tensor | None = None, params=None,
                     y: torch.Tensor | None = None, method: str = "auto", chunk_size: int | None = None,
                     warn_at_chance: bool = True) -> pd.DataFrame:
    """Accuracy and utility of each subset: the rows of a boolean ``subsets [S, P]`` (True = ablated), or a sequence of
    subsets in any form :func:`utility` takes (keep-``Masks`` keyed by name, per-weight or flat ablation vectors).

    data: ``(x, y)`` tensors, a Split, a prunekit Dataset (its test split) or a DataLoader; or inputs ``x`` with
    their targets as ``y=`` (``y=None``: utility only, accuracy NaN). params: the weights the subsets index (default
    ``prunable_parameters``, traced on the inputs).

    method: "batched" (vmap over stacked masked weights), "loop" (masked in place, restored) or "auto".
    Returns a DataFrame with columns ``subset, n_ablated, accuracy, utility``. The model is left unchanged.
    """
    check_options(method, chunk_size)
    x, y = as_xy(data, y, need_y=False)
    if subsets is None:
        raise ValueError("subsets is missing: a boolean [S, P] tensor (True = ablated) or a sequence of subsets")
    if isinstance(subsets, torch.Tensor) and (subsets.dtype != torch.bool or subsets.dim() != 2):
        raise ValueError(f"subsets must be a boolean [S, P] tensor (True = ablated), got a {subsets.dtype} tensor of "
                         f"shape {tuple(subsets.shape)}: a subset of weights is a mask, not a number per weight "
                         "(subsets.bool() if you meant it)")
    if not isinstance(subsets, torch.Tensor):  # the batched scorer works on the [S, P] form
        flat = ablation_params(model, params, example=x)
        subsets = [_as_flat_subset(s, flat, model) for s in subsets]
        p = sum(weight_of(m, n).numel() for m, n in flat)
        subsets = torch.stack(subsets) if subsets else torch.zeros(0, p, dtype=torch.bool)
    engine = AblationEngine(model, x, y, params, method, chunk_size, warn_at_chance=warn_at_chance)
    try:
        acc, util = engine.score(subsets)
    finally:
        engine.close()
    return pd.DataFrame({"subset": np.arange(len(acc)), "n_ablated": subsets.sum(1).cpu().numpy(),
                         "accuracy": acc.numpy(), "utility": util.numpy()})


def random_subsets(n_weights: int, k: int, n_subsets: int, generator: torch.Generator | None = None,
                   within: torch.Tensor | None = None) -> torch.Tensor:
    """``[n_subsets, n_weights]`` boolean: each row marks ``k`` distinct weights drawn uniformly (True = ablated).

    within: draw only among these flat indices (e.g. a magnitude band).
    """
    n_weights, n_subsets = count("n_weights", n_weights), count("n_subsets", n_subsets)
    pool = within.cpu() if within is not None else None  # subsets are drawn and held on the CPU
    size = n_weights if pool is None else len(pool)
    k = count("k", k, low=0, high=size)
    out = torch.zeros(n_subsets, n_weights, dtype=torch.bool)
    for i in range(n_subsets):
        pick = torch.randperm(size, generator=generator)[:k]
        out[i, pick if pool is None else pool[pick]] = True
    return out


def _check_ratio(r: float, name: str = "ratios") -> float:
    return fraction(name, r)


@older_positional("y", "ratios", "n_subsets", "seed", "params", "method", "chunk_size")
def random_ablation(model: nn.Module, data, *, params=None, y: torch.Tensor | None = None,
                    ratios: Sequence[float] = DEFAULT_RATIOS, n_subsets: int = 500, seed: int = 0,
                    method: str = "auto", chunk_size: int | None = None, within: torch.Tensor | None = None,
                    counts: Sequence[int] | None = None, recalibrate: torch.Tensor | None = None,
                    warn_at_chance: bool = True) -> pd.DataFrame:
    """Random ablation (source 002, Fig. 1 left): per ratio, ``n_subsets`` random subsets of ``round(r * P)`` weights.

    data: as :func:`evaluate_subsets` takes it (``(x, y)``, a Split, a Dataset, a DataLoader, or ``x`` with ``y``).

    within: draw only among these flat indices of the prunable weights (e.g. the weights a sparse network kept), and
      ``P`` is their number; counts: ablate these numbers of weights instead of ratios (each at most ``P``; the
      source's comparison of network sizes by absolute number); recalibrate: inputs on which the batch-norm running
      statistics are recomputed after each ablation (``torch.optim.swa_utils.update_bn``) before it is evaluated, and
      restored afterwards: do the stored statistics, which describe the unablated network, cause the spread?
    Returns one row per subset: ``ratio`` (``n_ablated / P``), ``subset, n_ablated, accuracy, utility``, and
    ``df.attrs["coverage"]`` (the weights drawn over: ``prunekit.core.prunable.weight_coverage``). Subsets are drawn from
    a generator seeded with ``seed`` (the same subsets for the same model size, ratios and seed). A model whose
    accuracy on ``(x, y)`` is at chance gets a ``RuntimeWarning`` unless ``warn_at_chance=False`` (an untrained
    network measured on purpose).
    """
    x, y = as_xy(data, y, need_y=False)
    n_subsets = count("n_subsets", n_subsets)
    if counts is None:
        ratios = distinct("ratios", sequence("ratios", ratios, item=fraction))
    else:
        counts = distinct("counts", sequence("counts", counts, item=lambda n, v: count(n, v, low=0)))
    count("seed", seed, low=0)
    check_options(method, chunk_size)
    pool = None if within is None else within.reshape(-1).cpu()
    n_weights = sum(weight_of(m, n).numel() for m, n in ablation_params(model, params, example=x))
    if pool is not None and (pool.dtype == torch.bool or pool.is_floating_point() or pool.unique().numel() != len(pool)
                             or (len(pool) and (int(pool.min()) < 0 or int(pool.max()) >= n_weights))):
        raise ValueError(f"within must hold distinct flat indices in [0, {n_weights}) of the prunable weights "
                         "(e.g. mask.nonzero().flatten())")
    size = n_weights if pool is None else pool.numel()
    if counts is None:
        levels = [(r, int(round(r * size))) for r in ratios]
    else:
        if any(isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not 0 <= c <= size for c in counts):
            raise ValueError(f"counts={list(counts)!r} must be integers in [0, {size}] (the weights drawn from)")
        levels = [(int(c) / size if size else 0.0, int(c)) for c in counts]
    engine = AblationEngine(model, x, y, params, method, chunk_size, calibration=recalibrate,
                            warn_at_chance=warn_at_chance)
    gen = torch.Generator().manual_seed(seed)
    frames = []
    try:
        step = max(engine.chunk_size, 16)
        for r, k in levels:
            accs, utils = [], []
            for start in range(0, n_subsets, step):
                subs = random_subsets(engine.n_weights, k, min(step, n_subsets - start), gen, within=pool)
                a, u = engine.score(subs)
                accs.append(a)
                utils.append(u)
            frames.append(pd.DataFrame({"ratio": r, "subset": np.arange(n_subsets), "n_ablated": k,
                                        "accuracy": torch.cat(accs).numpy(), "utility": torch.cat(utils).numpy()}))
    finally:
        engine.close()
    return _covered(pd.concat(frames, ignore_index=True), model, engine.params)


def _covered(df: pd.DataFrame, model: nn.Module, params) -> pd.DataFrame:
    """``df`` with ``df.attrs["coverage"]``: the weights the subsets were drawn over (``weight_coverage``)."""
    df.attrs["coverage"] = weight_coverage(model, params)
    return df


def flat_scores(model: nn.Module, params=None, scorer="magnitude", *, data=None) -> torch.Tensor:
    """A scorer's weight-shaped scores of the prunable weights as one flat vector (the order subsets index):
    ``scorer`` a name of ``prunekit.pruning.scorers.SCORERS`` or a callable of that protocol, called on ``model``
    and ``data``; one score per unit is refused (a subset ablates weights)."""
    params = ablation_params(model, params)
    scores = scores_of(scorer, params, model=model, data=data)
    for i, (s, (m, n)) in enumerate(zip(scores, params)):
        if tuple(s.shape) != tuple(weight_of(m, n).shape):
            raise ValueError(f"scorer={getattr(scorer, '__name__', scorer)!r} gave scores of shape {tuple(s.shape)} "
                             f"for the weight {tuple(weight_of(m, n).shape)} (params[{i}]): the ablations rank weights, "
                             "so the scorer must give one score per weight")
    return torch.cat([s.reshape(-1) for s in scores])


def magnitude_bands(model: nn.Module, n_bands: int = 10, params=None, scorer="magnitude", *,
                    data=None) -> list[torch.Tensor]:
    """Flat indices of the prunable weights in ``n_bands`` equal-size bands by rank of their score (``|w|`` by
    default, or any weight-shaped ``scorer`` scored on ``data``, as :func:`flat_scores`; 0 = lowest), ties by
    index."""
    count("n_bands", n_bands)
    scores = flat_scores(model, params, scorer, data=data)
    n_bands = count("n_bands", n_bands, high=scores.numel())  # a band of no weight would measure nothing
    order = torch.argsort(scores, stable=True)
    return list(torch.tensor_split(order, n_bands))


@older_positional("y", "n_bands", "ratios", "n_subsets", "seed", "params", "method", "chunk_size", "scorer")
def magnitude_ablation(model: nn.Module, data, *, params=None, y: torch.Tensor | None = None, n_bands: int = 10,
                       ratios: Sequence[float] = (0.1, 0.5, 1.0), n_subsets: int = 20, seed: int = 0,
                       method: str = "auto", chunk_size: int | None = None, scorer="magnitude",
                       warn_at_chance: bool = True) -> pd.DataFrame:
    """Ablation by magnitude (source 002, Fig. 1 right), or by any weight-shaped ``scorer``'s scores (a name of
    ``prunekit.pruning.scorers.SCORERS`` or a callable of that protocol, scored on ``model`` and ``data``).

    The prunable weights are cut into ``n_bands`` equal-size bands by rank of ``|w|`` (band 0 = smallest); for each
    band and ratio ``r``, ``n_subsets`` random subsets of ``round(r * band size)`` of that band's weights are ablated
    (one subset when ``r = 1``: the whole band). data: as :func:`evaluate_subsets` takes it. Returns one row per subset:
    ``band, band_low, band_high (|w| range of the band), ratio, subset, n_ablated, accuracy, utility``.
    """
    x, y = as_xy(data, y, need_y=False)
    ratios = distinct("ratios", sequence("ratios", ratios, item=fraction))
    n_subsets = count("n_subsets", n_subsets)
    n_bands = count("n_bands", n_bands)
    count("seed", seed, low=0)
    check_options(method, chunk_size)
    n_weights = sum(getattr(m, n).numel() for m, n in ablation_params(model, params, example=x))
    count("n_bands", n_bands, high=n_weights)  # every band holds at least one weight: checked before any compute
    rank_by = resolve_scorer(scorer)  # a name checked before any compute
    engine = AblationEngine(model, x, y, params, method, chunk_size, warn_at_chance=warn_at_chance)
    gen = torch.Generator().manual_seed(seed)
    scored_on = x if y is None else (x, y)
    mags = flat_scores(model, engine.params, rank_by, data=scored_on)
    frames = []
    try:
        for b, band in enumerate(magnitude_bands(model, n_bands, engine.params, rank_by, data=scored_on)):
            for r in ratios:
                k = int(round(r * len(band)))
                n = 1 if k in (0, len(band)) else n_subsets
                subs = random_subsets(engine.n_weights, k, n, gen, within=band)
                a, u = engine.score(subs)
                frames.append(pd.DataFrame({
                    "band": b, "band_low": float(mags[band].min()), "band_high": float(mags[band].max()),
                    "ratio": r, "subset": np.arange(n), "n_ablated": k, "accuracy": a.numpy(), "utility": u.numpy()}))
    finally:
        engine.close()
    return _covered(pd.concat(frames, ignore_index=True), model, engine.params)


def summarize(df: pd.DataFrame, by: str | Sequence[str] = "ratio", values: Sequence[str] = ("accuracy", "utility"),
              quantiles: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95)) -> pd.DataFrame:
    """Distribution of each value per group: ``<value>_mean, _std, _min, _max, _q05, ...`` (one row per group)."""
    by = columns("by", by, df)
    values = columns("values", values, df)
    quantiles = distinct("quantiles", sequence("quantiles", quantiles, nonempty=False, item=fraction))
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
