"""Source 002, "An Empirical Study of a Pruning Mechanism" (ICLR 2021 submission, OpenReview doeyA2PBjdy), notebook
04: does a pruned and retrained network stay in the pretrained network's loss basin?

- the presets (:class:`Preset`, :data:`PRESETS`, :func:`preset`): the one-shot variant on this project's MLP and the
  source's iterative cycles on its ResNet20, both networks ``prunekit.studies.s002_utility``'s (notebook 05's too);
- the one-shot variant's planes and lines, each plane checked against its three networks (:func:`oneshot_surface`);
- the source's own experiment: iterative pruning cycles of a conv net with batch norm (``prunekit.pruning.cycles``;
  :func:`cycles_experiment`), the analogue of the source's Table 1 (:func:`cycles_table`), the plane through the
  pretrained, pruned and retrained networks (:func:`cycle_planes`) and the line between them (:func:`cycle_lines`);
- the claims (:func:`basin_claims`, :func:`cycle_claims`), each declared once (a ``prunekit.report.claims.ClaimSpec``)
  and decided by one function in ``prunekit.studies.s002_basin_verdicts``, and given here too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from torch import nn

from ..core.checks import choice, count, distinct, number, sequence
from ..core.config import TrainConfig, check_profile, train_configs
from ..core.data import Dataset, random_subset
from ..core.store import Run
from ..core.train import evaluate
from ..measures import surface as S
from ..pruning.cycles import CYCLE_METHODS, IterativePruning, conv_parameters
from ..pruning.masks import sparsity
from ..pruning.retrain import pruned_model
from .protocol import StudyPreset
from .s002_basin_verdicts import (BARRIER_TOL, BASIN_CYCLES, BASIN_ONESHOT, BEATS_SMALL, CHANNEL_COLLAPSES,
                                  CHANNEL_LEAVES, QUOTE_BASIN, QUOTE_CHANNEL, QUOTE_TABLE1, basin_claims,
                                  cycle_claims)
from .s002_utility import MLP_VARIANT, SOURCE_NETWORK, Network

__all__ = ["BARRIER_TOL", "Preset", "PRESETS", "preset", "SOURCE_TABLE1", "cycles_config", "OneShotSurface",
           "oneshot_surface", "CyclesExperiment", "cycles_experiment", "cycles_table", "cycle_planes", "cycle_lines",
           "QUOTE_BASIN", "QUOTE_CHANNEL", "QUOTE_TABLE1", "BASIN_ONESHOT", "BASIN_CYCLES", "CHANNEL_LEAVES",
           "BEATS_SMALL", "CHANNEL_COLLAPSES", "basin_claims", "cycle_claims"]

# The one-shot sections run on this project's MLP variant (retrained for ``retrain_epochs`` = t epochs, the same for
# every method); Section 3's iterative pruning cycles on the source's network (ResNet20 with batch norm and the
# source's recipe, the same pretrained model as notebook 05's). Every cycle is retrained for the pretraining's T
# epochs, as the source retrains 200 of 200 (so learning-rate rewinding replays the whole schedule from lr 0.1).
# cycle_seeds: Table 1's networks are trained for each (its accuracy claims compare networks within a few points); the
# plane and the line are drawn for the first; plane_subset: training samples the plane and the line are measured on
# (None: all); plane_grid: points per axis of each plane
@dataclass(frozen=True)
class Preset(StudyPreset):
    """Notebook 04's settings for one profile: the one-shot variant's network (``mlp``) and its retraining epochs
    (``retrain_epochs``), the cycles' pretrained network (``resnet20``), the number of cycles (``n_cycles``, each
    retrained for the pretraining's epochs), Table 1's training seeds (``cycle_seeds``), the training samples the
    cycles' plane and line are measured on (``plane_subset``; None: all) and the ``plane_grid`` points per axis of
    each of their planes. The values a notebook gives in the profile's place (:meth:`with_overrides`) are checked
    here."""

    mlp: Network
    resnet20: Network
    retrain_epochs: int
    n_cycles: int
    cycle_seeds: tuple[int, ...]
    plane_subset: int | None
    plane_grid: int

    def __post_init__(self):
        count("retrain_epochs", self.retrain_epochs)
        count("n_cycles", self.n_cycles)
        object.__setattr__(self, "cycle_seeds", tuple(distinct("cycle_seeds", sequence(
            "cycle_seeds", self.cycle_seeds, item=lambda n, v: count(n, v, low=0)))))

    def cycle_configs(self, dataset: str | None = None) -> list[TrainConfig]:
        """The cycles' pretrained ResNet20 for each of ``cycle_seeds`` on ``dataset`` (None: the network's default;
        ``prunekit.studies.s002_utility.Network.config``): notebook 05's network."""
        return [self.resnet20.config(seed, dataset=dataset) for seed in self.cycle_seeds]


PRESETS = {
    "quick": Preset(MLP_VARIANT["quick"], SOURCE_NETWORK["quick"], MLP_VARIANT["quick"].retrain_epochs, 2, (0,), None,
                    7),
    "paper": Preset(MLP_VARIANT["paper"], SOURCE_NETWORK["paper"], MLP_VARIANT["paper"].retrain_epochs, 5, (0, 1, 2),
                    2_000, 9),
    "full": Preset(MLP_VARIANT["full"], SOURCE_NETWORK["full"], MLP_VARIANT["full"].retrain_epochs, 5, (0, 1, 2, 3, 4),
                   10_000, 21),
}


def preset(profile: str) -> Preset:
    """Notebook 04's :class:`Preset` of ``profile`` ("quick", "paper" or "full")."""
    return PRESETS[check_profile(profile, PRESETS)]


# Table 1 of the source: validation accuracy (%) on CIFAR-10 after five cycles, and of the small network of each kind
SOURCE_TABLE1 = {("weight", "finetune"): 90.870, ("weight", "lr_rewind"): 91.897, ("weight", "small"): 89.290,
                 ("channel", "finetune"): 43.375, ("channel", "lr_rewind"): 87.138, ("channel", "small"): 88.020}


def cycles_config(profile: str, seed: int = 0, dataset: str | None = None) -> TrainConfig:
    """The pretrained network of notebook 04's pruning cycles for ``profile``: the source's ResNet20 with its recipe
    (``preset(profile).resnet20.config(seed, dataset=dataset)``, notebook 05's too)."""
    return preset(profile).resnet20.config(seed, dataset=dataset)


# ------------------------------------------------------------------------------------- the one-shot variant (MLP)
@dataclass
class OneShotSurface:
    """The one-shot variant's planes and lines, per distinct retraining method: ``surface`` (method, alpha, beta,
    split, loss, accuracy at every grid point), ``anchors`` (the three networks' coordinates, each checked against
    the network's own metrics: ``checks`` comparisons), ``trajectory`` (each retraining epoch's weights projected onto
    the plane: method, epoch, alpha, beta, distance), ``planes`` (``{method: Plane}``), ``paths`` (the loss along the
    straight line from the pretrained to the retrained network) and ``barriers`` (its
    ``prunekit.measures.surface.barrier_table``, with ``method``)."""

    surface: pd.DataFrame
    anchors: pd.DataFrame
    trajectory: pd.DataFrame
    planes: dict
    paths: pd.DataFrame
    barriers: pd.DataFrame
    checks: int


def oneshot_surface(pretrained: nn.Module, pruned: nn.Module, masks, retrained: Mapping, splits: Mapping, *,
                    grid: int = 21, margin: float = 0.2, path_points: int = 21,
                    loss: str = "cross_entropy") -> OneShotSurface:
    """For each retraining method of ``retrained`` (``{method: prunekit.pruning.retrain.Retrained}``, the distinct
    runs: ``prunekit.pruning.retrain.distinct_methods``): the plane through ``pretrained``, ``pruned`` and the
    retrained network on a ``grid`` x ``grid`` grid (``margin`` of the three points' extent around them), on every
    split of ``splits``, its three points checked against the networks' own metrics (a ``ValueError`` names a
    mismatch), the retraining trajectory projected onto it, and the straight line from ``pretrained`` to the
    retrained network at ``path_points`` points with its barriers. Every point's weights are written into one copy
    of the pruned network (``prunekit.pruning.retrain.pruned_model``)."""
    retrained = dict(retrained)
    if not retrained:
        raise ValueError("retrained is empty: give the retrained networks, {method: Retrained}")
    count("grid", grid, low=2)
    count("path_points", path_points, low=2)
    number("margin", margin, low=0.0)
    w_pre, w_pruned = S.flatten(pretrained), S.flatten(pruned)
    surfaces, anchors, trajectories, planes = [], [], [], {}
    host = pruned_model(pretrained, masks)  # one model whose weights are overwritten at every point
    for method, res in retrained.items():
        plane = S.Plane.through(w_pre, w_pruned, S.flatten(res.model), names=("pretrained", "pruned", "retrained"))
        planes[method] = plane
        g, a = S.plane_surface(host, splits, plane=plane, n=grid, margin=margin, loss=loss)
        surfaces.append(g.assign(method=method))
        anchors.append(a.assign(method=method))
        for epoch, state in res.trajectory.items():
            alpha, beta, dist = plane.project(S.state_vector(pretrained, state))
            trajectories.append({"method": method, "epoch": epoch, "alpha": alpha, "beta": beta, "distance": dist})
    anchors = pd.concat(anchors, ignore_index=True)
    # the plane reproduces each network's own metrics, or this stops with the mismatch
    checks = sum(S.check_anchors(a, {"pretrained": pretrained, "pruned": pruned, "retrained": retrained[method].model},
                                 splits, loss) for method, a in anchors.groupby("method"))
    paths, barriers = [], []
    for method, res in retrained.items():
        path = S.linear_path(host, splits, w_a=w_pre, w_b=S.flatten(res.model), n=path_points, loss=loss)
        paths.append(path.assign(method=method))
        barriers.append(S.barrier_table(path).assign(method=method))
    return OneShotSurface(pd.concat(surfaces, ignore_index=True), anchors, pd.DataFrame(trajectories), planes,
                          pd.concat(paths, ignore_index=True), pd.concat(barriers, ignore_index=True), checks)


# ----------------------------------------------------------------------------- the source's iterative pruning cycles
@dataclass
class CyclesExperiment:
    """Notebook 04's iterative pruning for every seed: ``pretrained[seed]`` (the cached run), ``runs[seed][(unit,
    method)]`` (``prunekit.pruning.cycles.IterativePruning``), ``small[seed][unit]`` (Table 1's small network),
    ``table`` (:func:`cycles_table` of every seed) and ``cycles`` (every run's per-cycle rows, with ``seed``)."""

    config: TrainConfig  # the first seed's pretraining config
    pretrained: dict[int, Run]
    runs: dict[int, dict[tuple[str, str], IterativePruning]]
    small: dict[int, dict[str, nn.Module]]
    table: pd.DataFrame
    cycles: pd.DataFrame


def cycles_experiment(configs: Sequence[TrainConfig], cycles: int, units: Sequence[str] = ("weight", "channel"),
                      methods: Sequence[str] = CYCLE_METHODS, quiet: bool = True) -> CyclesExperiment:
    """The source's Section 3 for each pretrained network of ``configs`` (one per training seed, the seeds distinct:
    :meth:`Preset.cycle_configs`, on their device): ``cycles`` cycles of each unit x method, each retrained for the
    pretraining's T epochs, through the result cache (a rerun loads them; an interrupted run resumes), and the small
    network of each unit trained from scratch for as many epochs in all (``prunekit.pruning.cycles.small_config``,
    sized by the last method's pruned network)."""
    from ..core.many import train_or_load_many  # looked up at each call: tests replace it with a stand-in
    from ..pruning.cycles import check_plan, iterative_pruning, small_config  # likewise

    configs = train_configs("configs", configs)
    seeds = [c.seed for c in configs]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"configs={configs!r} repeat a training seed ({seeds}): give one config per seed")
    check_plan(units, methods, cycles)
    cycles = int(cycles)
    cfgs = dict(zip(seeds, configs))
    # the seeds' networks trained together (bitwise as one by one), and so, after the cycles, the small ones
    pretrained = dict(zip(seeds, train_or_load_many(list(cfgs.values()), quiet=quiet)))
    runs, small, tables, rows, datasets = {}, {}, [], [], {}
    for seed in seeds:
        run, cfg = pretrained[seed], cfgs[seed]
        ds = datasets[seed] = run.dataset()
        runs[seed] = {(u, m): iterative_pruning(run.model, ds, cfg, unit=u, method=m, cycles=cycles,
                                                epochs=cfg.epochs, cache=True, quiet=quiet)
                      for u in units for m in methods}
    small_cfgs = {(seed, u): small_config(cfgs[seed], pretrained[seed].model, runs[seed][u, methods[-1]])
                  for seed in seeds for u in units}
    small_runs = dict(zip(small_cfgs, train_or_load_many(list(small_cfgs.values()), quiet=quiet)))
    for seed in seeds:
        run, cfg, ds = pretrained[seed], cfgs[seed], datasets[seed]
        small[seed] = {u: small_runs[seed, u].model for u in units}
        tables.append(cycles_table(runs[seed], small[seed], ds, cfg.loss, pretrained=run.model, seed=seed))
        rows += [r.table.assign(seed=seed) for r in runs[seed].values()]
    return CyclesExperiment(configs[0], pretrained, runs, small, pd.concat(tables, ignore_index=True),
                            pd.concat(rows, ignore_index=True))


def cycles_table(results: Mapping[tuple[str, str], IterativePruning], small: Mapping[str, nn.Module],
                 ds: Dataset, loss: str = "cross_entropy", pretrained: nn.Module | None = None,
                 seed: int = 0) -> pd.DataFrame:
    """The analogue of the source's Table 1 for one seed: one row per network, ``seed``, ``unit`` ("weight" /
    "channel"; "pretrained" for the ``pretrained`` network when given), ``network`` (the retraining method, or
    "small": trained from scratch with as many weights), ``conv_density`` (share of conv weights in use),
    ``test_accuracy`` and ``train_accuracy`` of this run, and ``source_cifar10_accuracy`` (%)."""
    choice("loss", loss, ("cross_entropy", "sse"))
    seed = count("seed", seed, low=0)
    rows = []
    if pretrained is not None:
        rows.append({"unit": "pretrained", "network": "pretrained", "conv_density": 1.0,
                     "test_accuracy": evaluate(pretrained, ds.test, loss)[1],
                     "train_accuracy": evaluate(pretrained, ds.train, loss)[1]})
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
    out.insert(0, "seed", seed)
    out["source_cifar10_accuracy"] = [SOURCE_TABLE1.get((u, n), np.nan) for u, n in zip(out["unit"], out["network"])]
    return out


def cycle_planes(experiment: CyclesExperiment, subset: int | None, grid: int, margin: float = 0.2,
                 seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """``(surface, planes)``: for the first seed's pretrained network ($W^*$) and each of its (unit, method) runs, the
    plane through $W^*$, the last pruned ($W^p$) and the retrained network ($W^r$) on a ``grid`` x ``grid`` grid
    (``margin`` of the three points' extent around them), on ``subset`` training samples (None: all; drawn with
    ``seed``), batch-norm statistics recomputed at every point (``prunekit.measures.surface.plane_surface`` on the
    pretrained network itself, whose weights it restores). ``surface``: one row per grid point and split,
    with ``unit`` and ``method``; ``planes``: ``{(unit, method): Plane}``."""
    if subset is not None:
        count("subset", subset)
    count("grid", grid, low=2)
    number("margin", margin, low=0.0)
    count("seed", seed, low=0)
    first = next(iter(experiment.pretrained))
    run = experiment.pretrained[first]
    splits = {"train": random_subset(run.dataset().train, subset, seed=seed)}
    w_star = S.flatten(run.model)
    surfaces, planes = [], {}
    for (unit, method), r in experiment.runs[first].items():
        plane = S.Plane.through(w_star, S.flatten(r.pruned), S.flatten(r.retrained),
                                names=("pretrained", "pruned", "retrained"))
        planes[unit, method] = plane
        g, _ = S.plane_surface(run.model, splits, plane=plane, n=grid, margin=margin, loss=run.config.loss)
        surfaces.append(g.assign(unit=unit, method=method))
    return pd.concat(surfaces, ignore_index=True), planes


def cycle_lines(experiment: "CyclesExperiment", subset: int | None, n: int = 21, seed: int = 0) -> pd.DataFrame:
    """The straight line from each seed's pretrained network to each of its retrained networks (``experiment.runs``),
    on ``subset`` training samples of that seed's data (None: all; drawn with ``seed``), at ``n`` points (at least
    2): one ``prunekit.measures.surface.barrier_table`` row per (seed, unit, method, split), with those columns."""
    from ..core.data import random_subset
    from ..measures.surface import barrier_table, flatten, linear_path

    if subset is not None:
        count("subset", subset)
    count("n", n, low=2)
    count("seed", seed, low=0)
    rows = []
    for s, run in experiment.pretrained.items():
        splits = {"train": random_subset(run.dataset().train, subset, seed=seed)}
        start = flatten(run.model)
        for (unit, method), r in experiment.runs[s].items():
            line = linear_path(run.model, splits, w_a=start, w_b=flatten(r.retrained), n=n, loss=run.config.loss)
            rows.append(barrier_table(line).assign(seed=s, unit=unit, method=method))
    return pd.concat(rows, ignore_index=True)
