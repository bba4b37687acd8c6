"""Notebook 07, "Your model": the sources' measures on a network that is not prunekit's.

A reader names a model (an import path ``"package.module:factory"`` or a file ``"path/to/file.py:factory"``), a data
set (one of prunekit's, or a function that returns train and test data) and, optionally, a checkpoint. Without a
checkpoint the model is trained briefly on the reader's schedule through the cache (``prunekit.core.store.fit_or_load``:
keyed by a digest of its initial weights, of the data and of the schedule). Then every measure runs on the model's
default weight set (``prunekit.core.prunable.prunable_parameters``: the layer into the logits traced, not named), and
every table says what it covered:

- pruning curves by weights and by units, magnitude and random, without retraining (source 003's Figure 1 setup):
  :func:`pruning_curves`;
- effective density |omega| / |theta| (source 000): :func:`density_table`;
- random and magnitude ablation with the utility imbalance (the standard deviation of the KL utility, source 002):
  :func:`ablation_tables`;
- a pruned-and-retrained copy, the straight line to it and the plane through the three networks (source 002):
  :func:`prune_and_fine_tune`, :func:`surface_tables`;
- Hoyer sparsity per layer (source 000's sparsity measure): :func:`hoyer_table`.

No published claim is decided here: the reader's model is not a source's setup. The presets (:data:`PRESETS`) set
how much each measure samples; the model and the training schedule are the reader's. :func:`prepare` makes a
:class:`Setup` that carries its preset (the profile's, with the run's own settings in its place), and every measure
reads how much to sample from it. One module per job: :mod:`.reader` (the reader's model, data and checkpoint),
:mod:`.preparation` (the presets and the setup), :mod:`.tables` (the measures' tables).
"""

from .preparation import PRESETS, Preset, Setup, choose_params, left_out, prepare, preset
from .reader import build_model, import_object, load_checkpoint, load_data
from .tables import (FineTuned, ablation_tables, density_table, hoyer_table, prune_and_fine_tune, pruning_curves,
                     summary_table, surface_tables)

# the modules first (each has its API page), then the names the notebooks use
__all__ = ["reader", "preparation", "tables",
           "Preset", "PRESETS", "preset", "import_object", "build_model", "load_data", "load_checkpoint", "Setup",
           "left_out", "choose_params", "prepare", "pruning_curves", "density_table", "ablation_tables",
           "prune_and_fine_tune", "surface_tables", "hoyer_table", "FineTuned", "summary_table"]

