"""Experiment configs: frozen, validated dataclasses with a stable hash (the OpenLTH pattern).

A :class:`TrainConfig` holds everything that determines a trained model: the data (:class:`DataConfig`), the model
(:class:`ModelConfig`) and the optimisation. Invalid values raise ``ValueError`` on construction, naming the field and
the allowed values, so nothing is trained from a bad config. ``cfg.key()`` names the model's cache entry: the SHA-256
of the canonical JSON of the fields that differ from their defaults (:meth:`identity`, as OpenLTH's hparams do), so
that adding a field with a default leaves every existing key, and so every cached model, where it was. Float fields
are stored as floats (``lr=1`` and ``lr=1.0`` are one config).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field, fields

from .checks import choice, count, number, sequence
from .device import device_name, device_type
from .registry import DATASETS, MODELS

__all__ = ["PROFILES", "ACTIVATIONS", "INITS", "INIT_ALIASES", "VALUE_REVISIONS", "OPTIMIZERS", "SCHEDULES", "LOSSES",
           "DataConfig", "ModelConfig", "TrainConfig", "check_profile", "train_configs"]

PROFILES = ("quick", "paper", "full")  # embedded digits (CI) / these 2-core machines / the sources' scale, one GPU
ACTIVATIONS = ("relu", "sigmoid", "tanh")
INITS = ("default", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal")
INIT_ALIASES = {"glorot": "glorot_uniform", "xavier": "glorot_uniform", "he": "he_normal", "kaiming": "he_normal"}
# Values whose meaning changed after models were cached under them: the revision enters the key (ModelConfig.identity),
# so an entry trained under the old meaning is never loaded for the new one. Revision 2 of Glorot: Glorot & Bengio's
# own scale, Var(w) = 2 / (fan_in + fan_out); revision 1 had multiplied it by ReLU's gain, 2.
VALUE_REVISIONS = {("init", "glorot_uniform"): 2, ("init", "glorot_normal"): 2}
OPTIMIZERS = ("sgd", "adam", "adagrad")
SCHEDULES = ("none", "cosine", "step")
LOSSES = ("cross_entropy", "sse")


class _Config:
    """Shared behaviour: plain-dict conversion and a stable hash of the non-default fields."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def identity(self) -> dict:
        """The fields that differ from their defaults (nested configs likewise, left out when all default)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, _Config):
                sub = value.identity()
                if sub:
                    out[f.name] = sub
                continue
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            if value != default or type(value) is not type(default):
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def key(self) -> str:
        """SHA-256 (hex) of the canonical JSON of :meth:`identity`: the cache key."""
        blob = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def _floats(self, *names: str) -> None:
        for name in names:
            object.__setattr__(self, name, float(getattr(self, name)))


@dataclass(frozen=True)
class DataConfig(_Config):
    """Which data set, and how it is cut.

    name: a data set of ``prunekit.core.registry.DATASETS`` ("digits" is sklearn's embedded 8x8 digits: no download;
      "cosine", "diamond" and "random_shape" are the shrinking paper's toy tasks, generated from ``seed``).
    subset: fixed-size stratified subset of the train split (e.g. 5000), or None for all of it.
    resize: side length to resize images to (e.g. 20 for MNIST 28x28 -> 20x20), or None.
    classes: keep only these classes, relabelled 0..len-1 in the given order.
    one_vs_all: label 1 for this class and 0 for every other (two logits).
    val_fraction: stratified validation split carved from train, in [0, 1).
    normalize: standardise per channel with the train split's statistics (False keeps pixels in [0, 1]).
    raw_pixels: pixels on their stored 0-255 scale, as the FOR.ai blog's code fed them (needs normalize=False).
    seed: seed of the subset and validation draws (not of training).
    """

    name: str = "digits"
    subset: int | None = None
    resize: int | None = None
    classes: tuple[int, ...] | None = None
    one_vs_all: int | None = None
    val_fraction: float = 0.0
    normalize: bool = True
    seed: int = 0
    raw_pixels: bool = False

    def __post_init__(self):
        choice("dataset", self.name, DATASETS.names())
        if self.subset is not None:
            number("subset", self.subset, low=1, integer=True)
        if self.resize is not None:
            number("resize", self.resize, low=1, integer=True)
        if self.classes is not None:
            classes = tuple(sequence("classes", self.classes, item=lambda n, v: count(n, v, low=0)))
            if len(classes) < 2 or len(set(classes)) != len(classes):
                raise ValueError(f"classes={classes!r} must list at least two distinct class labels")
            object.__setattr__(self, "classes", classes)
        if self.one_vs_all is not None:
            number("one_vs_all", self.one_vs_all, low=0, integer=True)
            if self.classes is not None:
                raise ValueError(f"classes={self.classes!r} and one_vs_all={self.one_vs_all!r} cannot both be set; "
                                 "choose one relabelling")
        number("val_fraction", self.val_fraction, low=0.0, high=1.0, high_open=True)
        number("seed", self.seed, low=0, integer=True)
        self._floats("val_fraction")
        for name in ("normalize", "raw_pixels"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} must be True or False")
        if self.raw_pixels and self.normalize:
            raise ValueError("raw_pixels=True keeps the stored 0-255 pixels: it needs normalize=False")


@dataclass(frozen=True)
class ModelConfig(_Config):
    """Which network.

    arch: a model of ``prunekit.core.registry.MODELS``. "mlp" takes ``hidden``; "lenet300" is 300-100 ReLU; "forai" is the FOR.ai challenge net
      1000-1000-500-200, ReLU, no biases; "conv" a small VGG-style net; "resnet" a CIFAR-style ResNet
      (one block per stage); "resnet20" He et al.'s CIFAR ResNet20 (3 x 3 blocks, identity shortcuts).
    width_mult: scales every hidden width or channel count (rounded, at least 1); > 0.
    hidden: hidden widths for the fully connected family (overrides the arch's default).
    activation / bias: override the arch's default (None keeps it).
    init: one of INITS (aliases: glorot -> glorot_uniform, he -> he_normal).
    batch_norm: the conv archs' batch-norm layers (False: none, e.g. source 002's question of where the ablation
      spread comes from); the fully connected archs have none.
    init_density: share of each prunable layer's weights kept at initialisation, in (0, 1] (the layer into the logits
      is not pruned). Below 1 the network is source 002's smaller network: randomly pruned at initialisation, the kept
      weights scaled by 1/sqrt(share), which gives He's variance for the pruned fan-in when init="he" (the source's;
      other inits are scaled alike), and trained with the mask held (``prunekit.core.initialisation.sparse_at_init``).
    """

    arch: str = "mlp"
    width_mult: float = 1.0
    hidden: tuple[int, ...] | None = None
    activation: str | None = None
    bias: bool | None = None
    init: str = "default"
    init_density: float = 1.0
    batch_norm: bool = True

    def __post_init__(self):
        choice("arch", self.arch, MODELS.names())
        entry = MODELS[self.arch]
        number("width_mult", self.width_mult, low=0.0, low_open=True)
        self._floats("width_mult")
        if self.hidden is not None:
            object.__setattr__(self, "hidden", tuple(sequence("hidden", self.hidden, nonempty=False)))
            if entry.kind != "fc":
                fc = ", ".join(e.name for e in MODELS if e.kind == "fc")
                raise ValueError(f"hidden is only for fully connected archs ({fc}), not {self.arch!r}")
            if not self.hidden:
                raise ValueError("hidden=() must list at least one hidden width")
            for i, h in enumerate(self.hidden):
                number(f"hidden[{i}]", h, low=1, integer=True)
        if self.activation is not None:
            choice("activation", self.activation, ACTIVATIONS)
        if self.bias is not None and not isinstance(self.bias, bool):
            raise ValueError(f"bias={self.bias!r} must be True, False or None")
        if not isinstance(self.batch_norm, bool):
            raise ValueError(f"batch_norm={self.batch_norm!r} must be True or False")
        if not self.batch_norm and not entry.batch_norm:
            with_bn = ", ".join(e.name for e in MODELS if e.batch_norm)
            raise ValueError(f"batch_norm=False is for the archs with batch norm ({with_bn}); {self.arch!r} has none")
        number("init_density", self.init_density, low=0.0, high=1.0, low_open=True)
        self._floats("init_density")
        init = INIT_ALIASES.get(self.init, self.init)
        choice("init", init, INITS + tuple(INIT_ALIASES))
        object.__setattr__(self, "init", init)

    def identity(self) -> dict:
        """As :meth:`_Config.identity`, plus ``<field>_revision`` for a value whose meaning was revised
        (:data:`VALUE_REVISIONS`)."""
        out = super().identity()
        for f in fields(self):
            revision = VALUE_REVISIONS.get((f.name, getattr(self, f.name)))
            if revision is not None:
                out[f"{f.name}_revision"] = revision
        return out


@dataclass(frozen=True)
class TrainConfig(_Config):
    """Everything that determines a trained model.

    optimizer: "sgd" (with ``momentum``), "adam" or "adagrad"; lr > 0; weight_decay >= 0.
    schedule: "none", "cosine" (cosine annealing to 0 over the epochs) or "step" (x0.1 at 50% and 75% of the epochs).
    loss: "cross_entropy" (softmax) or "sse" (sigmoid outputs, E = 1/2 sum_k (sigma(z_k) - t_k)^2, per sample).
    checkpoints: epochs whose weights are kept with the model (0 = at initialisation).
    patience: 0 trains all ``epochs``; otherwise training stops once the training loss has not improved on its best
      by more than ``min_improvement`` (relative) for ``patience`` epochs in a row, ``epochs`` being the maximum
      (``prunekit.core.train.stopped_improving``).
    device: where the model is trained: "cpu", "cuda", "cuda:<index>", or "auto" (CUDA when torch sees a GPU, else
      the CPU; resolved when the config is made). Its type ("cpu" / "cuda") is part of the key: a GPU-trained model is
      not the CPU's. A config naming CUDA can be made anywhere (to load a GPU-trained model on a CPU-only machine).
    stack: () trains the network on its own (the default). Else the seeds of the networks trained with it as one
      stack (its own seed among them; every other field the same): fully connected archs with ``init_density=1``,
      their weights stacked and run as batched matrix products (``prunekit.core.stacked``), many small networks in
      the kernels of one. Batched products round otherwise than one network's (and their rounding depends on the
      stack), so the stack is part of the key: a stacked model is never taken for its lone run.
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    weight_decay: float = 0.0
    epochs: int = 10
    batch_size: int = 128
    schedule: str = "none"
    loss: str = "cross_entropy"
    seed: int = 0
    checkpoints: tuple[int, ...] = ()
    device: str = "cpu"
    patience: int = 0
    min_improvement: float = 0.01
    stack: tuple[int, ...] = ()

    def __post_init__(self):
        if not isinstance(self.data, DataConfig):
            raise ValueError(f"data must be a DataConfig, not {type(self.data).__name__}")
        if not isinstance(self.model, ModelConfig):
            raise ValueError(f"model must be a ModelConfig, not {type(self.model).__name__}")
        choice("optimizer", self.optimizer, OPTIMIZERS)
        number("lr", self.lr, low=0.0, low_open=True)
        number("momentum", self.momentum, low=0.0, high=1.0, high_open=True)
        number("weight_decay", self.weight_decay, low=0.0)
        self._floats("lr", "momentum", "weight_decay")
        number("epochs", self.epochs, low=1, integer=True)
        number("batch_size", self.batch_size, low=1, integer=True)
        choice("schedule", self.schedule, SCHEDULES)
        choice("loss", self.loss, LOSSES)
        number("seed", self.seed, low=0, integer=True)
        cps = sequence("checkpoints", self.checkpoints, nonempty=False,
                       item=lambda n, c: count(n, c, low=0, high=self.epochs))
        cps = tuple(sorted(set(cps)))
        object.__setattr__(self, "checkpoints", cps)
        object.__setattr__(self, "device", device_name(self.device))
        number("patience", self.patience, low=0, integer=True)
        number("min_improvement", self.min_improvement, low=0.0, high=1.0, high_open=True)
        self._floats("min_improvement")
        if DATASETS[self.data.name].kind == "regression" and self.loss != "sse":  # float targets: no classes
            raise ValueError(f"dataset={self.data.name!r} is a regression task: use loss='sse'")
        self._check_stack()

    def _check_stack(self) -> None:
        if isinstance(self.stack, (str, bytes)) or not hasattr(self.stack, "__iter__"):
            raise ValueError(f"stack={self.stack!r} must be a sequence of seeds (or () to train on its own)")
        for s in self.stack:
            number("stack", s, low=0, integer=True)
        stack = tuple(sorted(set(int(s) for s in self.stack)))
        object.__setattr__(self, "stack", stack)
        if not stack:
            return
        if self.seed not in stack:
            raise ValueError(f"stack={stack} must hold the config's own seed {self.seed}")
        if MODELS[self.model.arch].kind != "fc":
            fc = ", ".join(e.name for e in MODELS if e.kind == "fc")
            raise ValueError(f"stack is for fully connected archs ({fc}), not {self.model.arch!r}; train the others "
                             "together with prunekit.core.many.train_or_load_many (bitwise their lone runs)")
        if self.model.init_density < 1:
            raise ValueError("stack needs init_density=1 (a mask held in training is trained on its own or with "
                             "prunekit.core.many.train_or_load_many)")

    def identity(self) -> dict:
        """As :meth:`_Config.identity`, with the device reduced to its type (which GPU of a machine is not identity)."""
        out = super().identity()
        out.pop("device", None)
        if device_type(self.device) != "cpu":
            out["device"] = device_type(self.device)
        return out

    def describe(self) -> str:
        """The config in words, for a results table's ``setup``: "resnet20 at width 0.5 on fashion_mnist (10,000
        training images, 14x14), sgd (lr 0.1, momentum 0.9, step schedule), 8 epochs"."""
        d, m = self.data, self.model
        data = [f"{d.subset:,} training images" if d.subset else "", f"{d.resize}x{d.resize}" if d.resize else "",
                "raw pixels" if d.raw_pixels else "", f"digit {d.one_vs_all} vs all" if d.one_vs_all is not None
                else ""]
        data = ", ".join(p for p in data if p)
        width = f" at width {m.width_mult:g}" if m.width_mult != 1 else ""
        sparse = f", {m.init_density:.0%} of its weights kept at initialisation" if m.init_density < 1 else ""
        opt = [f"lr {self.lr:g}", f"momentum {self.momentum:g}" if self.momentum else "",
               f"weight decay {self.weight_decay:g}" if self.weight_decay else "",
               f"{self.schedule} schedule" if self.schedule != "none" else ""]
        return (f"{m.arch}{width}{sparse} on {d.name}" + (f" ({data})" if data else "")
                + f", {self.optimizer} ({', '.join(p for p in opt if p)}), {self.epochs} epochs")

    def replace(self, **changes) -> "TrainConfig":
        """A copy with fields changed; each key goes to the data, model or train fields by name.

        ``cfg.replace(width_mult=2, optimizer="sgd", name="mnist")``; the data set's ``seed`` is ``data_seed``.
        """
        data_names = {f.name for f in fields(DataConfig)} - {"seed"}
        model_names = {f.name for f in fields(ModelConfig)}
        train_names = {f.name for f in fields(TrainConfig)}
        data, model, train = {}, {}, {}
        for k, v in changes.items():
            if k == "dataset":
                k = "name"
            if k == "data_seed":
                data["seed"] = v
            elif k in train_names:
                train[k] = v
            elif k in model_names:
                model[k] = v
            elif k in data_names:
                data[k] = v
            else:
                raise ValueError(f"unknown config field {k!r}; allowed: "
                                 f"{', '.join(sorted(train_names | model_names | data_names | {'dataset', 'data_seed'}))}")
        if data:
            train["data"] = dataclasses.replace(train.get("data", self.data), **data)
        if model:
            train["model"] = dataclasses.replace(train.get("model", self.model), **model)
        return dataclasses.replace(self, **train)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        data = d.pop("data", {})
        model = d.pop("model", {})
        for key in ("classes",):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        if model.get("hidden") is not None:
            model["hidden"] = tuple(model["hidden"])
        d["checkpoints"] = tuple(d.get("checkpoints", ()))
        d["stack"] = tuple(d.get("stack", ()))
        return cls(data=DataConfig(**data), model=ModelConfig(**model), **d)


def check_profile(profile: str, allowed=PROFILES) -> str:
    """``profile`` if it is one of ``allowed`` (a study's presets: a tuple of names or a dict keyed by them), else a
    ``ValueError`` naming the allowed values."""
    choice("profile", profile, tuple(allowed))
    return profile


def train_configs(name: str, values, *, nonempty: bool = True) -> list[TrainConfig]:
    """``values`` as a list of :class:`TrainConfig` (non-empty unless ``nonempty`` is False), else a ``ValueError``
    naming ``name`` (a string or a bare config where a list is meant) or ``name[i]`` (an item of another type)."""

    def config(item_name: str, value) -> TrainConfig:
        if not isinstance(value, TrainConfig):
            raise ValueError(f"{item_name}={value!r} must be a TrainConfig, got a {type(value).__name__}")
        return value

    return sequence(name, values, nonempty=nonempty, item=config)
