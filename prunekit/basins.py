"""Source 002, "An Empirical Study of a Pruning Mechanism" (ICLR 2021 submission, OpenReview doeyA2PBjdy): notebook
04's question, does a pruned and retrained network stay in the pretrained network's loss basin?

The one-shot variant's claim (:func:`basin_claims`, on the pretrained network of ``prunekit.mechanism.pretrain_config``
shared with notebook 05), and the source's own experiment: iterative pruning cycles of a conv net with batch norm
(``prunekit.cycles``) with their presets (:data:`CYCLE_PROFILES`, :func:`cycles_config`), the analogue of the
source's Table 1 (:func:`cycles_table`) and their claims (:func:`cycle_claims`), as ``prunekit.claims`` tables.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from torch import nn

from . import claims as C
from .config import TrainConfig
from .cycles import CYCLE_METHODS, IterativePruning, conv_parameters
from .data import Dataset
from .masks import sparsity
from .mechanism import SOURCE, pretrain_config
from .reporting import check_profile
from .train import evaluate

__all__ = ["basin_claims", "CYCLE_PROFILES", "SOURCE_TABLE1", "cycles_config", "cycles_table", "cycle_claims"]


def basin_claims(barriers: pd.DataFrame | None, barrier_tol: float = 0.05, split: str = "train") -> pd.DataFrame:
    """Source 002's basin claim (``prunekit.claims`` format) from notebook 04's ``prunekit.surface.barrier_table``
    rows (one per method and split): a pruned-and-retrained network stays in the pretrained basin when the loss on
    the straight line between them never rises more than ``barrier_tol`` nats above the chord, on ``split``."""
    name = "Weight pruning with retraining stays in the pretrained basin (one-shot, this project's MLP variant)"
    reports = "the pruned-and-retrained network shares the pretrained network's basin"
    rule = f"height of the {split} loss above the chord <= {barrier_tol:g} nats for every retraining method"
    cols = ["method", "split", "loss_barrier_linear"]
    if barriers is None or C.missing_columns(barriers, cols) or barriers[barriers["split"] == split].empty:
        return C.claims_frame([C.not_measured(SOURCE, name, reports, f"no {split}-split loss barriers", rule)])
    b = barriers[barriers["split"] == split].set_index("method")["loss_barrier_linear"]
    measured = ("height above the chord: " + ", ".join(f"{m} {v:+.4f} nats" for m, v in b.items()) + "; "
                f"{int((b <= barrier_tol).sum())} of {len(b)} retraining methods stay in the basin.")
    return C.claims_frame([C.claim(SOURCE, name, reports, measured, bool((b <= barrier_tol).all()), rule)])


# Section 3's iterative pruning cycles (notebook 04), on the source's network (``prunekit.mechanism.pretrain_config``
# with network="resnet20": ResNet20 with batch norm and the source's recipe, the same pretrained model as notebook 05).
# retrain_epochs: per cycle (None: the pretraining's T, as the source retrains 200 epochs per cycle); plane_subset:
# training samples the plane and the line are measured on (None: all); grid: points per axis of each plane
CYCLE_PROFILES = {
    "quick": dict(cycles=3, retrain_epochs=3, plane_subset=None, grid=7),
    "paper": dict(cycles=5, retrain_epochs=3, plane_subset=2_000, grid=9),
    "full": dict(cycles=5, retrain_epochs=None, plane_subset=10_000, grid=21),
}

# Table 1 of the source: validation accuracy (%) on CIFAR-10 after five cycles, and of the small network of each kind
SOURCE_TABLE1 = {("weight", "finetune"): 90.870, ("weight", "lr_rewind"): 91.897, ("weight", "small"): 89.290,
                 ("channel", "finetune"): 43.375, ("channel", "lr_rewind"): 87.138, ("channel", "small"): 88.020}


def cycles_config(profile: str, seed: int = 0, dataset: str | None = None) -> TrainConfig:
    """The pretrained network of notebook 04's pruning cycles for ``profile``: the source's ResNet20 with its recipe,
    ``prunekit.mechanism.pretrain_config(profile, seed, network="resnet20", dataset=dataset)`` (notebook 05's too)."""
    check_profile(profile, CYCLE_PROFILES)
    return pretrain_config(profile, seed, network="resnet20", dataset=dataset)


def cycles_table(results: Mapping[tuple[str, str], IterativePruning], small: Mapping[str, nn.Module],
                 ds: Dataset, loss: str = "cross_entropy") -> pd.DataFrame:
    """The analogue of the source's Table 1: one row per network, ``unit`` ("weight" / "channel"), ``network``
    (the retraining method, or "small": trained from scratch with as many weights), ``conv_density`` (share of conv
    weights in use), ``test_accuracy`` and ``train_accuracy`` of this run, and ``source_cifar10_accuracy`` (%)."""
    rows = []
    for (unit, method), res in results.items():
        last = res.table.iloc[-1]
        rows.append({"unit": unit, "network": method, "conv_density": float(last["conv_density"]),
                     "test_accuracy": float(last["retrained_test_accuracy"]),
                     "train_accuracy": float(last["retrained_train_accuracy"])})
    for unit, model in small.items():
        rows.append({"unit": unit, "network": "small", "conv_density": 1.0 - sparsity(conv_parameters(model)),
                     "test_accuracy": evaluate(model, ds.test, loss)[1],
                     "train_accuracy": evaluate(model, ds.train, loss)[1]})
    out = pd.DataFrame(rows)
    out["source_cifar10_accuracy"] = [SOURCE_TABLE1.get((u, n), np.nan) for u, n in zip(out["unit"], out["network"])]
    return out


def cycle_claims(table: pd.DataFrame | None, barriers: pd.DataFrame | None, *, barrier_tol: float = 0.05,
                 split: str = "train", collapse_gap: float = 0.10) -> pd.DataFrame:
    """Source 002's claims on iterative pruning (``prunekit.claims`` format), from :func:`cycles_table` and the
    ``prunekit.surface.barrier_table`` rows of the line from the pretrained to each retrained network (columns
    ``unit``, ``method``, ``split``, ``loss_barrier_linear``):

    - weight pruning with retraining stays in the pretrained basin: every weight-cycle method's ``split`` loss rises
      at most ``barrier_tol`` nats above the chord;
    - aggressive channel pruning with rewinding can leave it: the channel + ``lr_rewind`` line rises more than that;
    - weight-pruned and retrained networks beat the small network trained from scratch (test accuracy, fine-tuning
      and rewinding both);
    - channel pruning with fine-tuning collapses: its test accuracy is at least ``collapse_gap`` below channel
      pruning with rewinding.
    """
    names = ("Weight pruning with retraining stays in the pretrained basin (iterative, conv layers)",
             "Aggressive channel pruning with rewinding can leave the pretrained basin",
             "Weight-pruned and retrained networks beat a small network of the same size trained from scratch",
             "Channel pruning with fine-tuning collapses")
    reports = ("the pruned-and-retrained ResNet20 stays in the pretrained basin after five weight-pruning cycles",
               "after five channel-pruning cycles with learning-rate rewinding the network leaves the basin",
               "CIFAR-10: 90.87% (fine-tuning) and 91.90% (rewinding) against 89.29% for the small network",
               "CIFAR-10: 43.38% with fine-tuning against 87.14% with rewinding")
    rules = (f"{split} loss above the chord <= {barrier_tol:g} nats for every weight-cycle method",
             f"{split} loss above the chord > {barrier_tol:g} nats for channel cycles with lr_rewind",
             "test accuracy of each weight-cycle method > the small network's",
             f"test accuracy with fine-tuning <= with rewinding - {collapse_gap:.0%}")
    cols = ["unit", "method", "split", "loss_barrier_linear"]
    b, b_why = None, f"no {split}-split barriers (a barrier table with columns {', '.join(cols)})"
    if barriers is not None and not C.missing_columns(barriers, cols):
        b = barriers[barriers["split"] == split].set_index(["unit", "method"])["loss_barrier_linear"]
    acc_cols = ["unit", "network", "test_accuracy"]
    acc, acc_why = None, f"no cycles table (columns {', '.join(acc_cols)})"
    if table is not None and not C.missing_columns(table, acc_cols):
        acc = table.set_index(["unit", "network"])["test_accuracy"]
    weight_cycles = [("weight", m) for m in CYCLE_METHODS]
    rows = []
    v, why = _one_each(b, weight_cycles, b_why)
    if v is None:
        rows.append(C.not_measured(SOURCE, names[0], reports[0], why, rules[0]))
    else:
        measured = ", ".join(f"{m} {x:+.4f} nats" for (_, m), x in v.items())
        rows.append(C.claim(SOURCE, names[0], reports[0], f"height above the chord: {measured}.",
                            all(x <= barrier_tol for x in v.values()), rules[0]))
    v, why = _one_each(b, [("channel", "lr_rewind")], b_why)
    if v is None:
        rows.append(C.not_measured(SOURCE, names[1], reports[1], why, rules[1]))
    else:
        x = v[("channel", "lr_rewind")]
        rows.append(C.claim(SOURCE, names[1], reports[1], f"height above the chord: {x:+.4f} nats.",
                            x > barrier_tol, rules[1]))
    v, why = _one_each(acc, [*weight_cycles, ("weight", "small")], acc_why)
    if v is None:
        rows.append(C.not_measured(SOURCE, names[2], reports[2], why, rules[2]))
    else:
        small = v[("weight", "small")]
        measured = (", ".join(f"{m} {v[(u, m)]:.2%}" for u, m in weight_cycles) + f" against {small:.2%} for the "
                    "small network.")
        rows.append(C.claim(SOURCE, names[2], reports[2], measured, all(v[k] > small for k in weight_cycles),
                            rules[2]))
    v, why = _one_each(acc, [("channel", "finetune"), ("channel", "lr_rewind")], acc_why)
    if v is None:
        rows.append(C.not_measured(SOURCE, names[3], reports[3], why, rules[3]))
    else:
        ft, rw = v[("channel", "finetune")], v[("channel", "lr_rewind")]
        rows.append(C.claim(SOURCE, names[3], reports[3], f"{ft:.2%} with fine-tuning against {rw:.2%} with "
                            "rewinding.", ft <= rw - collapse_gap, rules[3]))
    return C.claims_frame(rows)


def _one_each(values: pd.Series | None, keys: list[tuple[str, str]], why_none: str):
    """``({key: float}, "")`` when ``values`` (indexed by (unit, method or network)) holds exactly one finite number
    for each of ``keys``; else ``(None, why)``: what a claim needs to say it is not measured."""
    if values is None:
        return None, why_none
    out = {}
    for key in keys:
        found = values[values.index == key] if len(values) else values.iloc[:0]
        label = f"{key[0]} cycles with {key[1]}" if key[1] != "small" else f"the small network of {key[0]} cycles"
        if len(found) != 1:
            return None, f"{'no' if found.empty else f'{len(found)}'} rows for {label}"
        x = pd.to_numeric(found, errors="coerce").iloc[0]
        if not np.isfinite(x):
            return None, f"no finite value for {label}"
        out[key] = float(x)
    return out, ""
