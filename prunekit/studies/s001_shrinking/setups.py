"""Source 001's setups as the authors state them (:data:`SETUPS`, grouped in :data:`GROUPS`) and notebook 06's presets
(:class:`Preset`, :data:`PRESETS`, :func:`preset`).

The source leaves the optimizer, learning rate and epochs open. Its networks are trained by back-propagation
("optimally trained", to the starting accuracies it reports), so the source's setups here are trained with plain SGD
to about those accuracies; Adam-trained copies of the two-hidden-layer setups are this project's extension
(:data:`GROUPS` ``"adam"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ...core.checks import choice, count, distinct, fraction, sequence, text
from ...core.config import DataConfig, ModelConfig, TrainConfig, check_profile
from ...report import claims as C
from ...report.catalog import source_of
from ..protocol import StudyPreset

__all__ = ["SOURCE", "Group", "GROUPS", "Setup", "SETUPS", "group_of", "check_setups", "Preset", "PRESETS", "preset",
           "MARGIN", "NEAR", "setup_table"]

SOURCE = source_of("06_neuron_saliency")


@dataclass(frozen=True)
class Group:
    """A group of setups the source reports on together: its ``label``, its ``kind`` ("source": the source's own
    setups; "extension": this project's) and ``where`` the source reports it."""

    label: str
    kind: str
    where: str

    def __post_init__(self):
        text("label", self.label)
        choice("kind", self.kind, C.KINDS)
        text("where", self.where)


ICLR = "the ICLR 2017 submission (OpenReview), 'Experimental Results'"
GROUPS = {
    "shapes": Group("inside-a-shape tasks", "source", f"{ICLR}, 'Experiments on Toy Datasets'"),
    "mnist": Group("MNIST subset", "source", f"{ICLR}, 'Pruning a 1-Layer Network' and 'Pruning A 2-Layer Network'"),
    "arxiv": Group("cosine regression and one-vs-all MNIST", "source",
                   "the setups arXiv:1701.04465 adds; its abstract's claims are decided on them"),
    "adam": Group("Adam-trained inside-a-shape tasks, this project's extension", "extension",
                  "this project's extension: the source's inside-a-shape setups trained with Adam"),
    "adam_mnist": Group("Adam-trained MNIST subset, this project's extension", "extension",
                        "this project's extension: the source's two-hidden-layer MNIST setup trained with Adam"),
    "depth": Group("one hidden layer, this project's extension", "extension",
                   "this project's extension: the diamond task with one hidden layer of 100"),
    "digits": Group("scikit-learn digits, this project's extension", "extension",
                    "this project's extension: the embedded digits data set"),
}


@dataclass(frozen=True)
class Setup:
    """One setup: its ``config`` (trained through ``prunekit.core.store``), its ``group`` (a key of :data:`GROUPS`)
    and the starting ``accuracy`` the source reports for it (None where it states none)."""

    config: TrainConfig
    group: str
    accuracy: float | None = None

    def __post_init__(self):
        if not isinstance(self.config, TrainConfig):
            raise ValueError(f"config={self.config!r} must be a TrainConfig")
        choice("group", self.group, tuple(GROUPS))
        if self.accuracy is not None:
            fraction("accuracy", self.accuracy)


def _setups() -> dict[str, Setup]:
    def mlp(hidden):
        return ModelConfig(arch="mlp", hidden=hidden, activation="sigmoid")

    def sgd(data, hidden, lr, epochs, batch_size, checkpoints=()):
        return TrainConfig(data=data, model=mlp(hidden), loss="sse", optimizer="sgd", lr=lr, epochs=epochs,
                           batch_size=batch_size, checkpoints=checkpoints)

    def adam(cfg, lr, epochs, checkpoints=()):
        return cfg.replace(optimizer="adam", lr=lr, momentum=0.0, epochs=epochs, checkpoints=checkpoints)

    cosine = DataConfig(name="cosine")
    # the source scales MNIST to [0, 1] (no standardisation) and downsamples a 5,000-image subset to 20x20
    mnist20 = DataConfig(name="mnist", subset=5000, resize=20, normalize=False)
    course = (1, 5, 10, 25, 50, 100, 200, 400)  # checkpoints of the shape tasks: their training course
    s = {
        # cosine regression (arXiv version): 1 input, 1 output, two sigmoid hidden layers
        "cosine_10_10": Setup(sgd(cosine, (10, 10), 1.0, 400, 32), "arxiv"),
        "cosine_50_50": Setup(sgd(cosine, (50, 50), 1.0, 400, 32), "arxiv"),
        # MNIST subset (ICLR submission): starting accuracies 0.998 (one layer of 100) and 1.000 (two of 50)
        "mnist20_100": Setup(sgd(mnist20, (100,), 2.0, 200, 64), "mnist", 0.998),
        "mnist20_50_50": Setup(sgd(mnist20, (50, 50), 2.0, 200, 64), "mnist", 1.0),
    }
    for shape, accuracy in (("diamond", 0.992), ("random_shape", 0.986)):
        cfg = sgd(DataConfig(name=shape), (50, 50), 0.5, 400, 32, course).replace(momentum=0.9)
        s[f"{shape}_50_50"] = Setup(cfg, "shapes", accuracy)
        s[f"{shape}_50_50_adam"] = Setup(adam(cfg, 5e-3, 200, course[:-1]), "adam")
    for d in (0, 1, 2):  # one-vs-all MNIST (arXiv version): 784-100-2 on the whole training set
        s[f"mnist_ova{d}"] = Setup(sgd(DataConfig(name="mnist", one_vs_all=d, normalize=False), (100,), 2.0, 5, 128),
                                   "arxiv")
    s["mnist20_50_50_adam"] = Setup(adam(s["mnist20_50_50"].config, 1e-3, 30), "adam_mnist")
    s["diamond_100"] = Setup(s["diamond_50_50"].config.replace(hidden=(100,), checkpoints=()), "depth")
    s["diamond_100_adam"] = Setup(s["diamond_50_50_adam"].config.replace(hidden=(100,), checkpoints=()), "depth")
    digits = DataConfig(name="digits")
    s["digits_sse"] = Setup(TrainConfig(data=digits, model=mlp((100,)), loss="sse", optimizer="adam", lr=3e-3,
                                        epochs=30, batch_size=64), "digits")
    s["digits_ce"] = Setup(s["digits_sse"].config.replace(loss="cross_entropy"), "digits")
    return s


SETUPS = _setups()


def group_of(setup: str) -> str:
    """The :data:`GROUPS` key of a setup of :data:`SETUPS` ("other" for a name not there)."""
    text("setup", setup)
    return SETUPS[setup].group if setup in SETUPS else "other"


@dataclass(frozen=True)
class Preset(StudyPreset):
    """Notebook 06's settings for one profile: the ``setups`` of :data:`SETUPS` it runs, the training ``seeds``, the
    setups whose training course :func:`training_course` follows (first seed) and at which of their checkpoints
    (``course_epochs``; None: all of them)."""

    setups: tuple[str, ...]
    seeds: tuple[int, ...]
    course: tuple[str, ...] = ()
    course_epochs: tuple[int, ...] | None = None

    def __post_init__(self):  # the setups and seeds a notebook gives in the profile's place are checked here
        setups, seeds = check_setups(self.setups, self.seeds)
        object.__setattr__(self, "setups", tuple(setups))
        object.__setattr__(self, "seeds", tuple(seeds))


def _choices(name: str, values, allowed) -> list:
    """A non-empty list of distinct values of ``allowed`` (a ``ValueError`` naming ``name`` otherwise)."""
    return distinct(name, sequence(name, values, item=lambda n, v: choice(n, v, allowed)))


def check_setups(setups, seeds) -> tuple[list[str], list[int]]:
    """``(setups, seeds)`` as lists, or ``ValueError`` for an empty one or a setup name not in :data:`SETUPS`."""
    setups = _choices("setups", setups, tuple(SETUPS))
    seeds = distinct("seeds", sequence("seeds", seeds, item=lambda n, v: count(n, v, low=0)))
    return setups, seeds


_SOURCE = ("diamond_50_50", "random_shape_50_50", "mnist20_100", "mnist20_50_50", "cosine_10_10", "cosine_50_50",
           "mnist_ova0", "mnist_ova1", "mnist_ova2")
_EXTENSION = ("diamond_50_50_adam", "random_shape_50_50_adam", "mnist20_50_50_adam", "diamond_100", "diamond_100_adam")
_COURSE = ("diamond_50_50", "diamond_50_50_adam", "random_shape_50_50", "random_shape_50_50_adam")
PRESETS = {"quick": Preset(("diamond_50_50", "diamond_50_50_adam", "cosine_10_10"), (0,), ("diamond_50_50_adam",),
                           (5, 25, 200)),
           "paper": Preset(_SOURCE + _EXTENSION, (0, 1, 2), _COURSE),
           "full": Preset(_SOURCE + _EXTENSION + ("digits_sse", "digits_ce"), (0, 1, 2, 3, 4), _COURSE)}
MARGIN = 0.05  # a unit is removable while the error stays within 5% of the way to the error with every unit gone
NEAR = 0.10  # an estimate is "close" to serial brute force within 10% of the units, "not nearly as good" beyond


def preset(profile: str) -> Preset:
    """The :class:`Preset` of ``profile`` ("quick", "paper" or "full")."""
    return PRESETS[check_profile(profile, PRESETS)]


def setup_table(setups, accuracy: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per setup: its group, data, hidden layers, optimizer and schedule, the starting accuracy the source
    reports and (given :attr:`Experiment.accuracy`) the training and test accuracy reached here, mean over seeds."""
    rows = []
    for name in setups:
        s = SETUPS[name]
        c = s.config
        rows.append({"setup": name, "group": GROUPS[s.group].label, "data": c.data.name,
                     "images": c.data.subset or "all", "resize": c.data.resize, "hidden": c.model.hidden,
                     "loss": c.loss, "optimizer": c.optimizer, "lr": c.lr, "momentum": c.momentum,
                     "epochs": c.epochs, "batch_size": c.batch_size, "source_accuracy": s.accuracy})
    out = pd.DataFrame(rows)
    if accuracy is not None and len(accuracy):
        reached = accuracy.groupby("setup")[["train_accuracy", "test_accuracy"]].mean()
        out = out.join(reached, on="setup")
    return out
