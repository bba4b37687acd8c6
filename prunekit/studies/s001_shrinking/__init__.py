"""Source 001, "The Incredible Shrinking Neural Network" (Wolfe, Sharma, Drude and Raj, arXiv:1701.04465), notebook
06. The study's protocol (``prunekit.studies.protocol``), one module per job:

- :mod:`.setups`: the source's setups as the authors state them (:data:`SETUPS`, grouped in :data:`GROUPS`) and the
  presets (:class:`Preset`, :data:`PRESETS`, :func:`preset`);
- :mod:`.experiment`: one experiment per setup (:func:`run_setup`: train through the cache, prune serially with every
  estimator under Algorithms I and II; :func:`run_experiment`), the comparison with serial brute force
  (:func:`rank_agreement` per hidden layer, :func:`curve_gap`, :func:`removable_summary`) and this project's account
  of where the source's back-propagated Hessian diagonal breaks (:func:`why_table`, :func:`training_course`);
- :mod:`.verdicts`: the source's claims (:data:`CLAIMS`), decided setup by setup within each group the source reports
  on, from the pruning curves (:func:`claims_table`; runs that did not train as the source's did are left out by
  :func:`quality_gate`);
- :mod:`.figures`: the figures, and the source's sentences each group is read against (:func:`group_sentences`).

The estimators live in ``prunekit.measures.saliency``. Adam-trained copies of the two-hidden-layer setups are this
project's extension (:data:`GROUPS` ``"adam"``), as is the exact second derivative (``second_order_exact``) beside the
source's back-propagated diagonal: notebook 06 measures how each ranks the first hidden layer's units.
"""

from .experiment import (Experiment, curve_gap, load_setup, rank_agreement, removable_summary, run_experiment,
                         run_setup, training_course, why_table)
from .figures import estimator_colors, group_sentences, plot_course, plot_curves
from .setups import (GROUPS, MARGIN, MARGINS, NEAR, PRESETS, SETUPS, SOURCE, Group, Preset, Setup, check_setups,
                     group_of, preset, quality_gate, setup_table, stated_accuracy)
from .verdicts import CLAIMS, claims_table

# the modules first (each has its API page), then the names the notebooks use
__all__ = ["setups", "experiment", "verdicts", "figures",
           "SOURCE", "Setup", "SETUPS", "Group", "GROUPS", "group_of", "Preset", "PRESETS", "preset", "MARGIN",
           "MARGINS", "NEAR", "quality_gate", "stated_accuracy", "load_setup", "run_setup", "Experiment", "check_setups", "run_experiment", "rank_agreement",
           "curve_gap", "removable_summary", "setup_table", "why_table", "training_course", "CLAIMS",
           "claims_table", "group_sentences", "estimator_colors", "plot_curves", "plot_course"]
