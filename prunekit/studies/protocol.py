"""The one shape of a study, and what every study's notebook shares.

A study (one module, or one package, per source: ``prunekit.studies.s000_density`` ...; ``prunekit.report.catalog``
lists them with their notebooks) exposes:

- ``Preset``: a frozen dataclass of what a profile sets for its notebook (data, widths, seeds, subsets), a subclass of
  :class:`StudyPreset`; ``PRESETS``: ``{profile: Preset}`` for "quick", "paper" and "full"; ``preset(profile)``:
  the profile's, a ``ValueError`` naming the profiles otherwise. A notebook resolves its preset once, with its
  parameters in place of the profile's (:meth:`StudyPreset.with_overrides`), and hands the preset, or the configs
  built from it, to the study's functions: nothing downstream takes the profile's name again.
- its run functions (training through the cache, the measurements) and ``claims``: its claims, each declared once as a
  ``prunekit.report.claims.ClaimSpec`` and decided by one function, written as a ``prunekit.report.claims`` table.

:func:`training_plan` is the notebooks' shared preamble: how long the planned training will take here, said before it
starts (``prunekit.core.estimate``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import pandas as pd

from ..core import estimate
from ..core.checks import text
from ..core.config import TrainConfig

__all__ = ["StudyPreset", "training_plan"]


class StudyPreset:
    """What every study's ``Preset`` (a frozen dataclass that subclasses this) can do."""

    def with_overrides(self, **values) -> "StudyPreset":
        """The preset with ``values`` in place of its own settings (a notebook's parameters): a value of None keeps
        the profile's, a name that is not a setting of the preset is a ``ValueError`` naming it. The result is
        checked as the preset is (its ``__post_init__``, where it has one)."""
        names = [f.name for f in dataclasses.fields(self)]
        unknown = [k for k in values if k not in names]
        if unknown:
            raise ValueError(f"{unknown[0]}={values[unknown[0]]!r} is not a setting of {type(self).__module__}."
                             f"{type(self).__name__}; its settings: {', '.join(names)}")
        return dataclasses.replace(self, **{k: v for k, v in values.items() if v is not None})


def training_plan(pretraining: Iterable[TrainConfig], retraining: Iterable[tuple[TrainConfig, int]] = (), *,
                  label: str) -> pd.DataFrame:
    """Say how long the planned training will take on this device, before anything is trained: the networks of
    ``pretraining`` (through the model cache) and the ``(config, epochs)`` of ``retraining`` (outside it), as
    ``prunekit.core.estimate.expect`` plans them (with its ``LongRunWarning`` over an hour). Prints one line,
    "training planned here: about <time> (<n> of <m> networks already trained)", and returns the plan."""
    text("label", label)
    expected = estimate.expect(pretraining, retraining, label=label)
    print(f"training planned here: about {estimate.duration(expected.attrs['seconds'])} "
          f"({int(expected.cached.sum())} of {len(expected)} networks already trained)")
    return expected
