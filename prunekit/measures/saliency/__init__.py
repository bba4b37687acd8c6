"""Neuron saliency and serial neuron pruning without retraining (source 001).

Source 001: Wolfe, Sharma, Drude, Raj, "The Incredible Shrinking Neural Network" (ICLR 2017 submission,
arXiv 1701.04465). A hidden unit is *removed* by setting its output ``O`` to 0; nothing is ever retrained. For every
hidden unit the change of the data-set error ``ΔE`` (per-sample errors **summed** over the data set) is estimated by

* ``first_order``  (Skeletonization analogue):  ``ΔE ≈ -O·∂E/∂O``
* ``second_order`` (the source's method):        ``ΔE ≈ -O·∂E/∂O + 1/2·O²·∂²E/∂O²``, the diagonal back-propagated
* ``second_order_exact`` (this project's extension): the same expansion with the exact ``∂²E/∂O²``: the second
  derivative ``E''(1)`` of the error ``E(α)`` with the unit's output scaled by a gain ``α``, ``ΔE ≈ -E'(1) + ½E''(1)``
* ``brute_force``  (the oracle):                 the exact ``ΔE``, one forward pass per unit
* ``l2_norm``      (baseline): L2 norm of the unit's incoming weights (bias excluded)
* ``random``       (baseline): a random score

The registered scorers ``first_order``, ``second_order``, ``second_order_exact`` and ``brute_force`` of
``prunekit.pruning.scorers.SCORERS`` are :func:`saliency_scores` of a ReLU or tanh MLP, one score per hidden unit.

Serial pruning: Algorithm I ranks the units once (on the full net) and removes them in that order; Algorithm II
re-ranks the remaining units after every removal. Units are removed in increasing order of their score (the
*signed* estimated ΔE: a unit whose removal is estimated to lower the error goes first).

The package, one job per module: the unit network (``prunekit.measures.saliency.network``: the net as weight
tensors, checked against the model it is read from, and its cached forward pass), the estimators
(``prunekit.measures.saliency.estimators``: the derivatives, the exact Hessian diagonal, brute force, the scores of a
model's units) and serial pruning (``prunekit.measures.saliency.serial``). Every public name is importable from
``prunekit.measures.saliency``.
"""

from __future__ import annotations

from .estimators import (ESTIMATORS, OUTPUT_HESSIANS, TAYLOR, exact_hessian, exact_hessian_diagonal,
                         hessian_diagonal_check, output_derivatives, saliencies, saliency_scores)
from .network import ACTIVATIONS, LOSSES, UnitNet, check_unit_net, from_model, prepare_data, to_model
from .serial import ALGORITHMS, MARGIN_MODES, PruneResult, evaluate, removable_units, serial_prune
from . import estimators, network, serial  # noqa: E402 (named in __all__)

__all__ = ["ESTIMATORS", "TAYLOR", "ALGORITHMS", "LOSSES", "ACTIVATIONS", "OUTPUT_HESSIANS", "MARGIN_MODES",
           "UnitNet", "from_model", "check_unit_net", "prepare_data", "output_derivatives", "exact_hessian",
           "exact_hessian_diagonal", "hessian_diagonal_check", "saliencies", "to_model", "evaluate", "removable_units",
           "PruneResult", "serial_prune", "saliency_scores",
           "network", "estimators", "serial"]  # the modules too: the API reference documents each
