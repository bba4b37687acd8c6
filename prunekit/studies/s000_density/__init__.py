"""Width invariance of the effective density (source 000, "The Propensity for Density in Feed-forward Models"),
notebook 03. The study's protocol (``prunekit.studies.protocol``), one module per job:

- :mod:`.presets`: :class:`Preset`, :data:`PRESETS`, :func:`preset`; the grid of configs (:func:`width_grid`) and the
  sweep in words (:func:`grid_setup`, :func:`substitute`);
- :mod:`.point`: :class:`DensityPoint`, the measurement of one trained network, and :func:`width_sweep`, notebook 03's
  sweep of it (``prunekit.core.sweep.run_sweep``);
- :mod:`.statistics`: the fits (:func:`fit_core_scaling`: OLS of ``log10 |ω|`` on ``log10 |θ|``), the trend across
  widths and the paired effect of a factor;
- :mod:`.verdicts`: the source's claims (:data:`CLAIMS`, each a ``prunekit.report.claims.ClaimSpec``) decided on the
  sweep's table (:func:`claims_table`; :func:`claims` as sentences);
- :mod:`.figures`: notebook 03's three figures.
"""

from .figures import plot_core_vs_params, plot_density_vs_width, plot_hoyer_vs_width
from .point import POINT_VERSION, RESULT_COLUMNS, DensityPoint, eval_split, width_sweep
from .presets import (GROUP, MIN_DENSE_ACCURACY, OPTIMIZER_SETTINGS, PRESETS, TOLERANCE, WIDTHS, Preset, grid_setup,
                      preset, substitute, width_grid)
from .statistics import (density_trend, factor_effect, fit_core_scaling, fit_density_vs_width, fit_loglog,
                         split_untrained)
from .verdicts import CLAIMS, QUOTES, SOURCE, SOURCE_WIDTH_RANGE, claims, claims_table

# the modules first (each has its API page), then the names the notebooks use
__all__ = ["presets", "point", "statistics", "verdicts", "figures",
           "GROUP", "WIDTHS", "TOLERANCE", "MIN_DENSE_ACCURACY", "Preset", "PRESETS", "preset", "OPTIMIZER_SETTINGS",
           "width_grid", "substitute", "grid_setup", "POINT_VERSION", "RESULT_COLUMNS", "DensityPoint", "eval_split",
           "width_sweep", "split_untrained", "fit_loglog", "fit_core_scaling", "fit_density_vs_width",
           "density_trend", "factor_effect", "SOURCE", "QUOTES", "SOURCE_WIDTH_RANGE", "CLAIMS",
           "claims_table", "claims", "plot_density_vs_width", "plot_core_vs_params", "plot_hoyer_vs_width"]
