"""Serial pruning without retraining (source 001): remove hidden units one at a time, in the order a saliency
estimator ranks them, and record the error after each removal.

Serial pruning: Algorithm I ranks the units once (on the full net) and removes them in that order; Algorithm II
re-ranks the remaining units after every removal. Units are removed in increasing order of their score (the
*signed* estimated ΔE: a unit whose removal is estimated to lower the error goes first).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ...core import train
from ...core.checks import choice, count, number
from ...core.data import Split
from .estimators import ESTIMATORS, OUTPUT_HESSIANS, unit_scores
from .network import Forward, UnitNet, per_sample_loss, prepare_data, to_model

__all__ = ["ALGORITHMS", "MARGIN_MODES", "evaluate", "removable_units", "PruneResult", "serial_prune"]

ALGORITHMS = ("I", "II")


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
    fw = Forward(net, x)
    index = net.unit_index()
    total = net.num_units if max_removed is None else min(int(max_removed), net.num_units)

    def record():
        z = fw.logits
        errors.append(float(per_sample_loss(net.loss, z, t).sum()) / n)
        accs.append(float(train.correct_count(z, labels)) / n if classification else float("nan"))

    errors: list[float] = []
    accs: list[float] = []
    record()
    scores = unit_scores(net, fw, t, estimator, gen, output_hessian)
    initial = scores.cpu().numpy().copy()
    ranking = torch.argsort(scores, stable=True).tolist() if algorithm == "I" else None
    order = []
    for step in range(total):
        if algorithm == "I":
            u = ranking[step]
        else:
            if step > 0:
                scores = unit_scores(net, fw, t, estimator, gen, output_hessian)
            u = int(torch.argmin(scores))
        l, j = index[u]
        fw.remove(l, j)
        order.append((l, j))
        record()
    return PruneResult(estimator, algorithm, order, np.array(errors), np.array(accs), net.num_units,
                       time.perf_counter() - t0, initial)


