"""Source 002, "An Empirical Study of a Pruning Mechanism" (ICLR 2021 submission, OpenReview doeyA2PBjdy): weight
utility, notebook 05. The study's protocol (``prunekit.studies.protocol``), one module per job:

- :mod:`.networks`: the pretrained networks shared by notebooks 04 and 05, so that both use the same cached model
  by construction (:class:`Network`: the source's ResNet20, :data:`SOURCE_NETWORK`, or this project's MLP variant,
  :data:`MLP_VARIANT`), notebook 05's presets (:class:`Preset`, :data:`PRESETS`, :func:`preset`), the stand-in for
  the source's "vanilla CNN" (:func:`vanilla_cnn`) and what stands in for the source's setup (:func:`substitute`);
- :mod:`.experiments`: the measurements beyond ``prunekit.measures`` (ablations at every checkpoint, the widths,
  "why the spread") and notebook 05's tidy table (:func:`ablation_table`);
- :mod:`.verdicts`: the source's claims on weight utility (:func:`utility_claims`) and this project's "why the
  spread" (:func:`spread_claims`), each claim one ``prunekit.report.claims.ClaimSpec``.

Network sizes (Sec. 2.2) are in ``prunekit.studies.s002_sizes``, notebook 04's basin questions in
``prunekit.studies.s002_basins``; the mechanisms live in ``prunekit.measures.utility``, ``prunekit.measures.imbalance``,
``prunekit.pruning.retrain``, ``prunekit.pruning.cycles`` and ``prunekit.measures.surface``.
"""

from .experiments import (ablation_at_checkpoints, ablation_table, check_plan, critical_ratio, spread_experiment,
                          spread_summary, width_comparison)
from .networks import (MLP_VARIANT, NETWORKS, PRESETS, SOURCE, SOURCE_DATASET, SOURCE_EPOCHS, SOURCE_NETWORK, Network,
                       Preset, as_decided_on, default_dataset, eval_subset, preset, pretrain_config, substitute,
                       vanilla_cnn, vanilla_cnn_config, without_batch_norm)
from .verdicts import (GROWS, MAGNITUDE, PROPORTION_WIDTHS, QUOTES, SPREAD, STALE_STATISTICS, WEIGHTS_SPREAD,
                       spread_claims, utility_claims)

# the modules first (each has its API page), then the names the notebooks use
__all__ = ["networks", "experiments", "verdicts",
           "SOURCE", "SOURCE_DATASET", "SOURCE_EPOCHS", "substitute", "as_decided_on", "NETWORKS", "Network",
           "SOURCE_NETWORK", "MLP_VARIANT", "Preset", "PRESETS", "preset", "default_dataset", "pretrain_config",
           "vanilla_cnn", "vanilla_cnn_config", "eval_subset", "without_batch_norm", "ablation_at_checkpoints",
           "critical_ratio", "width_comparison", "ablation_table", "check_plan", "spread_experiment",
           "spread_summary", "QUOTES", "SPREAD", "MAGNITUDE", "GROWS", "PROPORTION_WIDTHS", "STALE_STATISTICS",
           "WEIGHTS_SPREAD", "utility_claims", "spread_claims"]
