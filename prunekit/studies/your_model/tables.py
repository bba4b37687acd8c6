"""The sources' measures on the reader's model (notebook 07), each a table that says what it covered: pruning curves,
effective density, random and magnitude ablation with the utility imbalance, a pruned-and-retrained copy with the
line and the plane through it, Hoyer sparsity, and a summary. Each reads how much to sample from the setup's preset
(:attr:`~.preparation.Setup.preset`)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import pandas as pd
from torch import nn

from ...core.checks import count, fraction, number, sequence
from ...core.data import Split
from ...core.prunable import parameter_names
from ...core.train import evaluate
from ...core.weights import copy_model
from ...measures import surface as S
from ...measures.curves import pruning_curve
from ...measures.density import effective_density, hoyer_sparsity
from ...measures.imbalance import imbalance_table
from ...measures.utility import magnitude_ablation, random_ablation
from ...pruning.masks import weight_of
from ...pruning.retrain import fine_tune, magnitude_masks, pruned_model
from .preparation import Setup
from .reader import optimizer_factory

__all__ = ["pruning_curves", "density_table", "ablation_tables", "FineTuned", "prune_and_fine_tune",
           "surface_tables", "hoyer_table", "summary_table"]


def _preset(setup: Setup):
    """The preset ``setup`` carries (how much each measure samples), or a ``ValueError`` for what is not a Setup."""
    if not isinstance(setup, Setup):
        raise ValueError(f"setup={setup!r} must be a Setup (prunekit.studies.your_model.prepare)")
    return setup.preset


def _labelled(df: pd.DataFrame, setup: Setup) -> pd.DataFrame:
    """A table with the coverage in its attrs (the weights measured, out of the model's parameters)."""
    df.attrs["coverage"] = {k: v for k, v in setup.coverage.items() if k != "tensors"}
    df.attrs["data"] = f"{setup.dataset} test split, {len(setup.test)} samples"
    return df


def pruning_curves(setup: Setup, ks: Sequence[float] | None = None, seed: int = 0) -> pd.DataFrame:
    """Accuracy after pruning ``k``% of the weights, or of the units (rows of each weight), by magnitude and at
    random, globally and layer by layer, without retraining (``prunekit.measures.curves.pruning_curve``; source
    003's comparison of weight and unit pruning). One row per (method, scope, k); ``ks``: None, the setup's preset's."""
    ks = list(_preset(setup).ks if ks is None else sequence("ks", ks))
    seed = count("seed", seed, low=0)
    df = pruning_curve(setup.model, setup.test, ks=ks, params=setup.params, seed=seed,
                       methods=("weight", "unit", "random_weight", "random_unit"), scopes=("global", "layerwise"))
    df.insert(0, "granularity", df["method"].map(lambda m: "unit" if "unit" in m else "weight"))
    df.insert(1, "criterion", df["method"].map(lambda m: "random" if m.startswith("random") else "magnitude"))
    return _labelled(df, setup)


def density_table(setup: Setup, tolerance: float = 0.05) -> pd.DataFrame:
    """Effective density |omega| / |theta| (source 000: the share of the weights left when global magnitude pruning,
    without retraining, first takes accuracy more than ``tolerance`` below the dense model's), one row, with the
    weights it covered and the model's total parameter count."""
    fraction("tolerance", tolerance, low_open=True, high_open=True)
    res = effective_density(setup.model, setup.test, tolerance=tolerance, params=setup.params)
    row = {k: v for k, v in res.to_dict().items() if k in (
        "density", "core_params", "params", "total_params", "dense_accuracy", "core_accuracy", "threshold",
        "tolerance", "evaluations")}
    row["share_of_model"] = res.params / res.total_params
    return _labelled(pd.DataFrame([row]), setup)


def ablation_tables(setup: Setup, seed: int = 0, *, ratios: Sequence[float] | None = None,
                    n_subsets: int | None = None, n_bands: int | None = None,
                    band_ratios: Sequence[float] | None = None,
                    band_subsets: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Random ablation (source 002, Fig. 1 left) and ablation by magnitude band (Fig. 1 right) on the default weight
    set: one row per subset (``accuracy``, KL ``utility``); and the utility imbalance per ratio: the standard
    deviation of the utilities of equal-size random subsets (``utility_std``, source 002's measure) with the rest of
    ``prunekit.measures.imbalance.imbalance_table``. Returns ``(random, magnitude, imbalance)``. A setting left None is
    the setup's preset's."""
    pre = _preset(setup)
    seed = count("seed", seed, low=0)
    ratios = pre.ratios if ratios is None else ratios
    n_subsets = count("n_subsets", pre.n_subsets if n_subsets is None else n_subsets)
    n_bands = count("n_bands", pre.n_bands if n_bands is None else n_bands,
                    high=sum(weight_of(m, a).numel() for m, a in setup.params))
    band_ratios = pre.band_ratios if band_ratios is None else sequence("band_ratios", band_ratios, item=fraction)
    band_subsets = count("band_subsets", pre.band_subsets if band_subsets is None else band_subsets)
    x, y = setup.test.x, setup.test.y  # every setting checked before the first ablation
    rnd = random_ablation(setup.model, (x, y), params=setup.params, ratios=ratios, n_subsets=n_subsets, seed=seed)
    mag = magnitude_ablation(setup.model, (x, y), params=setup.params, n_bands=n_bands, ratios=band_ratios,
                              n_subsets=band_subsets, seed=seed)
    imbalance = imbalance_table(rnd, ["ratio", "n_ablated"]).rename(columns={"std": "utility_std", "n": "subsets"})
    return _labelled(rnd, setup), _labelled(mag, setup), _labelled(imbalance, setup)


@dataclass
class FineTuned:
    """The pruned copy and the pruned-and-retrained copy of the reader's model."""

    pruned: nn.Module
    retrained: nn.Module
    masks: object  # prunekit.pruning.masks.Masks
    history: pd.DataFrame
    sparsity: float
    lr: float = float("nan")  # the fine-tuning learning rate
    optimizer: str = ""


def prune_and_fine_tune(setup: Setup, sparsity: float | None = None, epochs: int | None = None) -> FineTuned:
    """Prune ``sparsity`` of the default weight set by global magnitude, then fine-tune a copy with the mask held
    (``prunekit.pruning.retrain.fine_tune``) for ``epochs`` at the last learning rate of the training schedule, with
    its optimizer (source 002's pruning-and-retraining phase; fine-tuning as Renda et al. 2020 define it).
    ``sparsity``, ``epochs``: None, the setup's preset's (``sparsity``, ``retrain_epochs``)."""
    pre = _preset(setup)
    sparsity = fraction("sparsity", pre.sparsity if sparsity is None else sparsity, high_open=True)
    epochs = count("epochs", pre.retrain_epochs if epochs is None else epochs)
    masks = magnitude_masks(setup.model, 100 * sparsity, params=setup.params)
    lr = setup.schedule["lrs"][-1]
    optimizer = setup.schedule["optimizer"]
    if setup.schedule.get("origin", "").startswith("the profile's"):
        warnings.warn(f"fine-tuning a loaded checkpoint at the profile's learning rate {lr:g} with {optimizer}: give "
                      "lrs= (and optimizer=) the model was trained with", UserWarning, stacklevel=2)
    factory = None if optimizer.startswith("SGD(") else optimizer_factory(optimizer, lr)
    retrained, history = fine_tune(setup.model, masks, setup.train, lrs=[lr] * epochs, optimizer=factory,
                                   batch_size=setup.schedule["batch_size"], seed=setup.schedule["seed"])
    return FineTuned(pruned_model(setup.model, masks), retrained, masks, history, sparsity, lr, optimizer)


def _recalibrated(model: nn.Module, bn_x) -> nn.Module:
    if bn_x is None:
        return model
    out = copy_model(model)
    S.recalibrate_bn(out, bn_x)
    return out.eval()


def surface_tables(setup: Setup, tuned: FineTuned, *, grid: int | None = None,
                   path_points: int | None = None, margin: float = 0.2) -> dict[str, pd.DataFrame]:
    """The loss along the straight line from the trained to the pruned-and-retrained network, its barriers
    (``prunekit.measures.surface.barrier_table``), and the loss surface on the plane through trained, pruned and
    retrained (source 002's figure), on a sample of the training split and on the test split. A model with batch
    norm has its statistics recomputed at every point on ``bn_samples`` training samples; the plane's three points
    are checked against the three networks (recalibrated the same way) before the surface is returned.
    Returns ``{"path", "barriers", "grid", "anchors"}``; ``grid``, ``path_points``: None, the setup's preset's."""
    pre = _preset(setup)
    grid = count("grid", pre.grid if grid is None else grid, low=2)
    path_points = count("path_points", pre.path_points if path_points is None else path_points, low=2)
    number("margin", margin, low=0.0)
    n_train = min(len(setup.train), max(len(setup.test), pre.bn_samples))
    splits = {"train": Split(setup.train.x[:n_train], setup.train.y[:n_train]), "test": setup.test}
    bn_x = setup.train.x[:pre.bn_samples] if S.has_batchnorm(setup.model) else None
    w0, w1, w2 = S.flatten(setup.model), S.flatten(tuned.pruned), S.flatten(tuned.retrained)
    host = copy_model(setup.model)
    path = S.linear_path(host, splits, w_a=w0, w_b=w2, n=path_points, bn_data=bn_x)
    plane = S.Plane.through(w0, w1, w2, names=("trained", "pruned", "retrained"))
    grid_df, anchors = S.plane_surface(host, splits, plane=plane, n=grid, margin=margin, bn_data=bn_x)
    networks = {"trained": setup.model, "pruned": tuned.pruned, "retrained": tuned.retrained}
    S.check_anchors(anchors, {k: _recalibrated(m, bn_x) for k, m in networks.items()}, splits, rtol=1e-4)
    return {name: _labelled(df, setup) for name, df in
            {"path": path, "barriers": S.barrier_table(path), "grid": grid_df, "anchors": anchors}.items()}


def hoyer_table(setup: Setup, models: dict[str, nn.Module] | None = None) -> pd.DataFrame:
    """Hoyer sparsity ``(sqrt(n) - ||w||_1 / ||w||_2) / (sqrt(n) - 1)`` (0 for equal magnitudes, 1 for one non-zero
    weight) of each weight tensor of the default weight set, and of all of them as one vector (``layer = "all"``),
    for each model of ``models`` (default: the trained one), one row per (model, layer)."""
    models = {"trained": setup.model} if models is None else models
    names = parameter_names(setup.model, setup.params)  # each model is setup.model or a copy of it: the same names
    rows = []
    for label, model in models.items():
        modules = dict(model.named_modules())
        weights = []
        for name, (_, attr) in zip(names, setup.params):
            own = modules[name.rpartition(".")[0]]
            w = weight_of(own, attr)
            weights.append(w)
            rows.append({"model": label, "layer": name, "kind": type(own).__name__, "weights": w.numel(),
                         "hoyer": hoyer_sparsity(w)})
        rows.append({"model": label, "layer": "all", "kind": "", "weights": sum(w.numel() for w in weights),
                     "hoyer": hoyer_sparsity(weights)})
    return _labelled(pd.DataFrame(rows), setup)


def summary_table(setup: Setup, density: pd.DataFrame, imbalance: pd.DataFrame, barriers: pd.DataFrame,
                  hoyer: pd.DataFrame, tuned: FineTuned) -> pd.DataFrame:
    """One row per measure: its value on the reader's model, what it means, and what it covered (the weights
    measured out of the model's parameters, and the data)."""
    c = setup.coverage
    covered = f"{c['weights']:,} of {c['model_parameters']:,} parameters ({c['share']:.1%})"
    data = f"{setup.dataset} test split, {len(setup.test)} samples"
    d = density.iloc[0]
    top = imbalance.loc[imbalance["utility_std"].idxmax()]  # the ratio where the utilities spread most
    b = barriers.set_index("split")
    h = hoyer[(hoyer["layer"] == "all")].set_index("model")["hoyer"]
    rows = [
        {"measure": "dense test accuracy", "value": setup.dense["accuracy"], "meaning": "fraction correct",
         "covers": "the whole model", "data": data},
        {"measure": "effective density", "value": d["density"],
         "meaning": f"share of the weights left when magnitude pruning first costs more than {d['tolerance']:g} accuracy "
                    "(source 000)", "covers": covered, "data": data},
        {"measure": f"utility std, largest (at ratio {top['ratio']:g})", "value": top["utility_std"],
         "meaning": f"spread (nats) of the KL utility over {int(top['subsets'])} random subsets of "
                    f"{int(top['n_ablated']):,} weights each (source 002's imbalance)", "covers": covered, "data": data},
        {"measure": f"retrained accuracy at {tuned.sparsity:.0%} sparsity",
         "value": evaluate(tuned.retrained, setup.test)[1],
         "meaning": f"global magnitude pruning, fine-tuned {len(tuned.history)} epoch(s) with the mask held, at lr "
                    f"{tuned.lr:g} with {tuned.optimizer} (schedule: {setup.schedule.get('origin', 'trained here')})",
         "covers": covered, "data": data},
    ]
    for split in ("train", "test"):
        if split in b.index:
            rows.append({"measure": f"{split} loss above the chord, trained -> retrained",
                         "value": b.loc[split, "loss_barrier_linear"],
                         "meaning": "nats; about 0 when the retrained network stays in the trained one's basin "
                                    "(source 002)", "covers": "every parameter (the straight line in weight space)",
                         "data": f"{setup.dataset} {split} split"})
    for label, value in h.items():
        rows.append({"measure": f"Hoyer sparsity, {label}", "value": value,
                     "meaning": "0 = equal magnitudes, 1 = one non-zero weight", "covers": covered, "data": "none"})
    return pd.DataFrame(rows)
