"""The studies, listed once: one row per notebook, with the source it reproduces, the study module that runs it, the
question it asks and its headline figures (:data:`STUDIES`).

The site's index (``prunekit.report.site``), the README's table of notebooks and its results figures
(``prunekit.report.readme``) and the tests of the notebooks read this table; each study module takes its source's
name from it (``SOURCE = source_of("03_width_invariance")``), so a source is named in one place. A new study is one
row here, one module under ``prunekit.studies`` and one notebook (``docs/API.md``, "Adding a study").

Why here and not in ``prunekit.studies``: the site and the README are built by this layer, which may not import the
studies (core < pruning < measures < report < studies); the table is plain data (module paths are strings, never
imported here), and the studies, one layer up, read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from ..core.checks import choice, distinct, file_name, sequence, text

__all__ = ["SOURCES", "Study", "STUDIES", "study", "source_of", "headline_figures"]

# the four sources, each "<id> <title>" as the claims tables' ``source`` column names it
SOURCES = {
    "000": "000 The Propensity for Density in Feed-forward Models",
    "001": "001 The Incredible Shrinking Neural Network",
    "002": "002 An Empirical Study of a Pruning Mechanism",
    "003": "003 Sparsifying Neural Networks",
}


@dataclass(frozen=True)
class Study:
    """One notebook: its file name without ``.ipynb`` (``notebook``), the ids of the ``sources`` it reproduces (none
    for a notebook of no single source), the study ``modules`` it calls (import paths, first the one that holds its
    ``Preset``), the ``question`` it asks (the README's table of notebooks), its headline ``figures`` (``{name:
    caption}``: ``figures/<name>_<profile>.png``, shown first on the site and in the README) and whether its ``full``
    profile is sized for one GPU (``full_on_gpu``: far over an hour of training on a CPU)."""

    notebook: str
    sources: tuple[str, ...]
    modules: tuple[str, ...]
    question: str
    figures: Mapping[str, str] = field(default_factory=dict)
    full_on_gpu: bool = False

    def __post_init__(self):
        file_name("notebook", self.notebook)
        distinct("sources", sequence("sources", self.sources, nonempty=False,
                                     item=lambda n, v: choice(n, v, tuple(SOURCES))))
        distinct("modules", sequence("modules", self.modules, nonempty=False, item=text))
        text("question", self.question)
        object.__setattr__(self, "figures", MappingProxyType(dict(self.figures)))

    @property
    def number(self) -> str:
        """The notebook's two digits ("03"), as the result tables' names begin."""
        return self.notebook[:2]


STUDIES = (
    Study("01_training", (), (), "train a model through the cache; learning curves, accuracies, weight magnitudes"),
    Study("02_pruning_curves", ("003",), ("prunekit.studies.s003_sparsify",),
          "how far can a trained net be pruned by weights, and by whole units? does it save time?",
          {"02_accuracy_vs_sparsity": "Source 003: test accuracy against the share of weights or units pruned"}),
    Study("03_width_invariance", ("000",), ("prunekit.studies.s000_density",),
          'does the pruned "core" grow with width (is density invariant)?',
          {"03_density_vs_width": "Source 000: effective density against width"}, full_on_gpu=True),
    Study("04_loss_surface", ("002",), ("prunekit.studies.s002_basins", "prunekit.studies.s002_utility"),
          "does a pruned-and-retrained ResNet20 stay in the pretrained net's basin (Table 1, the plane)?",
          full_on_gpu=True),
    Study("05_weight_utility", ("002",), ("prunekit.studies.s002_utility", "prunekit.studies.s002_sizes"),
          "do networks rely on only part of their weights (utility imbalance, sizes, pruned nets)?",
          {"05_random_ablation": "Source 002: accuracy and utility of 500 random ablations per ratio (ResNet20)"},
          full_on_gpu=True),
    Study("06_neuron_saliency", ("001",), ("prunekit.studies.s001_shrinking",),
          "how well do Taylor saliencies choose neurons to remove, against brute force?",
          {"06_neuron_saliency_removable": "Source 001: neurons removable by each saliency estimate"}),
    Study("07_your_model", ("000", "002", "003"), ("prunekit.studies.your_model",),
          "does *your* model use all its weights? every measure above, on a model you name (no claims)"),
)


def study(notebook: str) -> Study:
    """The :class:`Study` of ``notebook`` ("05_weight_utility"), or a ``ValueError`` naming the notebooks."""
    return {s.notebook: s for s in STUDIES}[choice("notebook", notebook, tuple(s.notebook for s in STUDIES))]


def source_of(notebook: str) -> str:
    """The ``source`` column value of ``notebook``'s claims: "<id> <title>" of its one source (:data:`SOURCES`)."""
    sources = study(notebook).sources
    if len(sources) != 1:
        raise ValueError(f"notebook={notebook!r} reproduces {len(sources)} sources, not one: its claims name no "
                         "single source")
    return SOURCES[sources[0]]


def headline_figures() -> dict[str, str]:
    """``{figure name: caption}`` of every study's headline figures, in notebook order."""
    return {name: caption for s in STUDIES for name, caption in s.figures.items()}
