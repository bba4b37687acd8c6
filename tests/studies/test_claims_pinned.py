"""Every claims function's whole table, pinned: the rows the claims code wrote before each claim became one
``ClaimSpec`` decided by one function are in ``claims_pinned.json``, made from the same inputs by that code,
and the tables must come out identical, every column of every row. The inputs are small and seeded (:func:`cases`);
``python tests/studies/test_claims_pinned.py OUT.json`` writes the pins with whichever prunekit is importable.

A pin changes only with a rule: source 001's were rewritten when its claims came to be decided setup by setup on the
pruning curves (a margin check, the quality gate, substitute setups), and every other pin that moved is named in the
commit that moved it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

PINS = Path(__file__).with_name("claims_pinned.json")


def _density_sweep(rng) -> pd.DataFrame:
    rows = []
    for arch in ("lenet300", "conv"):
        for width in (0.25, 0.5, 1.0, 2.0):
            for opt in ("adam", "sgd"):
                for init in ("glorot_uniform", "he_normal"):
                    for seed in (0, 1, 2):
                        params = int(2000 * width)
                        density = 0.4 + 0.05 * (opt == "adam") - 0.02 * (init == "glorot_uniform") + rng.normal(0, .02)
                        rows.append({"dataset": "digits", "arch": arch, "width_mult": width, "optimizer": opt,
                                     "init": init, "seed": seed, "params": params,
                                     "core_params": int(params * density), "density": density,
                                     "dense_accuracy": 0.3 if width == 0.25 and seed == 2 else 0.9})
    return pd.DataFrame(rows)


def _curve(rng) -> pd.DataFrame:
    rows = []
    for setup, scope in (("blog", "global"), ("prunekit", "layerwise")):
        for method, edge in (("weight", 75), ("unit", 45)):
            for seed in (0, 1, 2):
                for k in (0, 25, 40, 45, 50, 60, 70, 75, 80, 90):
                    acc = 0.95 - (0.0 if k <= edge else 0.01 * (k - edge)) + rng.normal(0, 0.002)
                    rows.append({"setup": setup, "dataset": "digits", "scope": scope, "method": method, "seed": seed,
                                 "k": k, "accuracy": acc})
    return pd.DataFrame(rows)


def _saliency_curves(rng) -> pd.DataFrame:
    """Serial-pruning error curves (notebook 06's table): flat to a knee, then rising; 20 units."""
    rows = []
    for setup in ("diamond_50_50", "cosine_10_10", "diamond_50_50_adam", "mnist20_50_50", "mnist_ova0"):
        for seed in (0, 1, 2):
            bf = int(round(11 + rng.normal(0, 1.5)))
            for est, short in (("brute_force", 0), ("second_order", 1), ("first_order", 4), ("second_order_exact", 0)):
                knee = max(bf - short - int(rng.integers(0, 2)), 0)
                for alg in ("I", "II"):
                    for u in range(21):
                        error = 0.01 + 0.001 * u if u <= knee else 0.2 + 0.04 * (u - knee) + rng.normal(0, 0.01)
                        rows.append({"setup": setup, "seed": seed, "estimator": est, "algorithm": alg,
                                     "units_removed": u, "fraction_removed": u / 20, "error": error})
    return pd.DataFrame(rows)


def cases() -> dict:
    """``{name: (function path, args, kwargs)}`` of the pinned calls (the inputs made here, seeded)."""
    rng = np.random.default_rng(39)
    density, curve = _density_sweep(rng), _curve(rng)
    rng.normal(size=180)  # the draws of source 001's former input (its claims now read curves: saliency below)
    saliency = _saliency_curves(np.random.default_rng(1))
    subsets = 40
    ablations = pd.DataFrame({"ratio": np.repeat([0.05, 0.1, 0.2], subsets), "subset": np.tile(range(subsets), 3),
                              "accuracy": rng.uniform(0.3, 0.9, 3 * subsets)})
    bands = pd.DataFrame({"ratio": np.repeat([0.5, 1.0], 4), "band": np.tile(range(4), 2),
                          "accuracy_mean": [0.95, 0.95, 0.94, 0.7, 0.95, 0.94, 0.93, 0.4]})
    epochs = pd.DataFrame({"epoch": np.repeat([0, 4, 8], subsets), "subset": np.tile(range(subsets), 3),
                           "utility": rng.gamma(2.0, 1.0, 3 * subsets) * np.repeat([0.5, 1.0, 1.5], subsets)})
    critical = pd.DataFrame({"width_mult": [1.0, 2.0, 4.0], "critical_ratio": [0.3, 0.33, 0.36]})
    spread = pd.concat([pd.DataFrame({"network": n, "statistics": st, "subset": range(subsets),
                                      "accuracy": rng.uniform(lo, hi, subsets)})
                        for n, st, lo, hi in (("batch norm", "stored", 0.2, 0.9), ("batch norm", "recalibrated", 0.8,
                                                                                       0.9), ("plain", "none", 0.5, 0.8))])
    sizes = pd.concat([pd.DataFrame({"share": share, "by": by, "level": level, "subset": range(subsets),
                                     "accuracy": rng.uniform(0.5, 0.9, subsets) - (by == "number") * (1 - share) * .2,
                                     "utility": rng.gamma(2.0, 1.0 / share, subsets)})
                       for share in (1.0, 0.5) for by in ("ratio", "number") for level in (0.1, 0.2)])
    pruned_acc = pd.DataFrame([{"seed": s, "prune_ratio": r, "network": n, "test_accuracy": a + rng.normal(0, .005)}
                               for s in (0, 1, 2) for r in (0.25, 0.5) for n, a in (("pruned", 0.9), ("small", 0.86))])
    pruned_ab = pd.DataFrame([{"prune_ratio": r, "network": n, "level": 0.1, "subset": i,
                               "utility": rng.gamma(2.0, f)} for r in (0.25, 0.5)
                              for n, f in (("pruned", 1.0), ("small", 1.5)) for i in range(subsets)])
    barriers = pd.DataFrame({"method": ["finetune", "lr_rewind", "weight_rewind"] * 2,
                             "split": ["train"] * 3 + ["test"] * 3,
                             "loss_barrier_linear": [0.01, 0.02, 0.2, 0.03, 0.01, 0.3]})
    table1 = pd.DataFrame([{"seed": s, "unit": u, "network": n, "test_accuracy": a + rng.normal(0, 0.005)}
                           for s in (0, 1, 2) for u, n, a in (("pretrained", "pretrained", 0.92),
                                                              ("weight", "finetune", 0.9), ("weight", "lr_rewind", 0.91),
                                                              ("weight", "small", 0.88), ("channel", "finetune", 0.5),
                                                              ("channel", "lr_rewind", 0.87),
                                                              ("channel", "small", 0.88))])
    lines = pd.DataFrame([{"seed": s, "unit": u, "method": m, "split": "train",
                           "loss_barrier_linear": h + rng.normal(0, 0.005)}
                          for s in (0, 1, 2) for u, m, h in (("weight", "finetune", 0.01), ("weight", "lr_rewind", 0.02),
                                                             ("channel", "finetune", 0.3), ("channel", "lr_rewind", 0.2))])
    speed = pd.DataFrame({"batch_size": [256, 256], "form": ["compacted", "csr"], "saves_from_k": [50.0, np.nan],
                          "speedup_there": [1.3, np.nan], "flop_ratio_there": [2.0, np.nan],
                          "best_speedup": [2.5, 0.8]})
    return {
        "s000": ("prunekit.studies.s000_density:claims_table", (density,), {"setup": "a sweep"}),
        "s000_fold": ("prunekit.studies.s000_density:claims_table", (density,), {"alpha": 0.1, "density_fold": 1.2}),
        "s001": ("prunekit.studies.s001_shrinking:claims_table", (saliency,), {}),
        "s003": ("prunekit.studies.s003_sparsify:claims_table", (curve,), {"tolerance": 0.02}),
        "s003_speed": ("prunekit.studies.s003_sparsify:speed_claims", (speed,), {"band": 0.1}),
        "s002_utility": ("prunekit.studies.s002_utility:utility_claims",
                         (ablations, bands, 0.95, {"vanilla CNN (stand-in)": epochs, "resnet20": epochs}, critical),
                         {"network": "mlp", "setup": "s", "seeds": "0", "setups": {"resnet20": "r"}}),
        "s002_spread": ("prunekit.studies.s002_utility:spread_claims", (spread,), {"stale_share": 0.4}),
        "s002_size": ("prunekit.studies.s002_sizes:size_claims", (sizes,), {"max_level": 0.2}),
        "s002_pruned": ("prunekit.studies.s002_sizes:pruned_claims", (pruned_acc, pruned_ab), {"ceiling_gap": 0.02}),
        "s002_basin": ("prunekit.studies.s002_basins:basin_claims", (barriers,),
                       {"same_as": {"lr_rewind": "finetune"}, "seeds": "0"}),
        "s002_cycles": ("prunekit.studies.s002_basins:cycle_claims", (table1, lines), {"setup": "x"}),
    }


def _run(path: str, args, kwargs) -> list[dict]:
    import importlib

    module, name = path.split(":")
    table = getattr(importlib.import_module(module), name)(*args, **kwargs)
    return json.loads(table.to_json(orient="records"))


@pytest.mark.parametrize("name", sorted(cases()))
def test_each_claims_table_is_the_one_pinned(name):
    path, args, kwargs = cases()[name]
    assert _run(path, args, kwargs) == json.loads(PINS.read_text())[name]


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(json.dumps({k: _run(*v) for k, v in cases().items()}, indent=1, ensure_ascii=False)
                                 + "\n")
