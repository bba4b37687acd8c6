"""Registries: one entry adds a model, a data set or a scorer (as OpenLTH's ``models/registry.py`` does).

:data:`MODELS` maps an ``arch`` name (``ModelConfig.arch``) to a :class:`ModelEntry`: how to build it and what kind
of network it is; :data:`DATASETS` maps a data set name (``DataConfig.name``) to a :class:`DataEntry`: how to load
it, which files it needs offline and what kind of task it is (a "regression" data set trains with ``loss="sse"``).
The configs validate their names against these, ``build_model`` and ``load_dataset`` dispatch through them, and the
studies read a model's ``kind`` from its entry, so registering one entry is all a new model or data set needs. What a
model can do beyond that, it owns: prunekit's conv nets name the layer reading each prunable channel
(``channel_consumers()``); for any other model ``prunekit.pruning.structure`` reads it from the traced graph.

A :class:`Registry` is filled by ``register`` in its providers: the modules where the entries are defined
(``prunekit.core.models``, ``prunekit.core.data``; the scorers' ``prunekit.pruning.scorers.SCORERS`` has two), which
it imports by name the first time it is asked for a name, so that a look-up always sees every built-in entry.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Generic, Iterator, TypeVar

__all__ = ["Registry", "ModelEntry", "DataEntry", "MODELS", "DATASETS", "MODEL_KINDS", "DATA_KINDS"]

MODEL_KINDS = ("fc", "conv", "residual")  # fully connected (takes hidden widths), convolutional, residual
DATA_KINDS = ("image", "regression", "points")

T = TypeVar("T")


@dataclass(frozen=True)
class ModelEntry:
    """A model: ``build(cfg, input_shape, num_classes) -> nn.Module`` for a ``ModelConfig`` (its ``hidden``,
    ``activation`` and ``bias`` already resolved to this entry's defaults), its ``kind`` (one of
    :data:`MODEL_KINDS`; "fc" models take ``hidden`` widths), its default ``hidden`` widths, ``activation`` and
    ``bias``, and whether it has batch norm that ``ModelConfig(batch_norm=False)`` can remove."""

    name: str
    build: Callable
    kind: str
    hidden: tuple[int, ...] | None = None
    activation: str = "relu"
    bias: bool = True
    batch_norm: bool = False

    def __post_init__(self):
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"kind={self.kind!r} is not allowed; allowed: {', '.join(MODEL_KINDS)}")
        if (self.kind == "fc") != (self.hidden is not None):
            raise ValueError(f"model {self.name!r}: fully connected models (kind 'fc') and only they take hidden widths")


@dataclass(frozen=True)
class DataEntry:
    """A data set: ``load(seed, root)`` -> ``((x_train, y_train), (x_test, y_test))`` (images: uint8 arrays [N, H, W,
    C] and int64 labels; regression and points: float tensors as they are used), its ``kind`` (one of
    :data:`DATA_KINDS`), ``files``: the files it needs in the data folder (empty: generated or embedded), and
    ``present(root)``: whether they are there, looked for without loading or downloading anything."""

    name: str
    load: Callable
    kind: str
    files: tuple[str, ...] = ()
    present: Callable | None = None

    def __post_init__(self):
        if self.kind not in DATA_KINDS:
            raise ValueError(f"kind={self.kind!r} is not allowed; allowed: {', '.join(DATA_KINDS)}")


class Registry(Generic[T]):
    """Names to entries, filled by ``register`` in ``provider`` (a module, or several, imported by name on the first
    look-up, in order)."""

    def __init__(self, what: str, provider: str | tuple[str, ...]):
        self.what = what
        self.providers = (provider,) if isinstance(provider, str) else tuple(provider)
        self._entries: dict[str, T] = {}
        self._loaded = False

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for provider in self.providers:
                importlib.import_module(provider)

    def register(self, entry: T) -> T:
        """Add ``entry`` under its name; a ValueError if the name is taken."""
        if entry.name in self._entries:
            raise ValueError(f"{self.what} {entry.name!r} is registered already")
        self._entries[entry.name] = entry
        return entry

    def names(self) -> tuple[str, ...]:
        self._load()
        return tuple(self._entries)

    def __getitem__(self, name: str) -> T:
        return self.entry(name)

    def entry(self, name: str, parameter: str | None = None) -> T:
        """The entry ``name``, or a ValueError naming ``parameter`` (default: what the registry holds) and the
        allowed names."""
        self._load()
        if name not in self._entries:
            raise ValueError(f"{parameter or self.what}={name!r} is not allowed; allowed: {', '.join(self._entries)}")
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[T]:
        self._load()
        return iter(self._entries.values())


MODELS: Registry[ModelEntry] = Registry("arch", "prunekit.core.models")
DATASETS: Registry[DataEntry] = Registry("dataset", "prunekit.core.data")
