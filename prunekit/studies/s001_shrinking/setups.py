"""Source 001's setups as the authors state them (:data:`SETUPS`, grouped in :data:`GROUPS`) and notebook 06's presets
(:class:`Preset`, :data:`PRESETS`, :func:`preset`).

The source leaves the optimizer, learning rate and epochs open. Its networks are trained by back-propagation, so its
setups are trained here with plain SGD (the setup table sets the accuracies reached beside the ones it states); the
one-vs-all networks, which the source trains with two softmax outputs to deliberately sub-optimal accuracies, are a
substitute here (sigmoid outputs with squared error, trained further). Adam-trained copies of the two-hidden-layer
setups and the diamond task with one hidden layer are this project's extension.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ...core.checks import choice, count, distinct, fraction, number, sequence, text
from ...core.config import DataConfig, ModelConfig, TrainConfig, check_profile
from ...report import claims as C
from ...report.catalog import source_of
from ..protocol import StudyPreset

__all__ = ["SOURCE", "Group", "GROUPS", "Setup", "SETUPS", "group_of", "check_setups", "Preset", "PRESETS", "preset",
           "MARGIN", "MARGINS", "SHARE_SLACK", "NEAR", "setup_table", "quality_gate", "stated_accuracy"]

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
ARXIV = "arXiv:1701.04465 (the authors' LaTeX), 'Experimental Results'"
GROUPS = {
    "shapes": Group("inside-a-shape tasks", "source", f"{ICLR}, 'Experiments on Toy Datasets'"),
    "mnist": Group("MNIST subset", "source", f"{ICLR}, 'Pruning a 1-Layer Network' and 'Pruning A 2-Layer Network'"),
    "cosine": Group("cosine regression", "source", f"{ARXIV}, 'Example Regression Problem'"),
    "ova": Group("one-vs-all MNIST", "source",
                 f"{ARXIV}, 'Investigation of Pruning Performance With Imperfect Starting Conditions'"),
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
    """One setup: its ``config`` (trained through ``prunekit.core.store``), its ``group`` (a key of :data:`GROUPS`),
    the starting ``accuracy`` the source reports for it (None where it states none), ``removable``: the share of the
    hidden units the source reports serial brute force removes with little effect (None where it states no number), ``max_train_loss``: the training error (mean per sample) a network must reach to be
    the source's trained network (None: no gate; the source trains its regression nets "to near-perfect precision")
    and ``substitute``: what stands in for the source's setup, when something does (None: its own)."""

    config: TrainConfig
    group: str
    accuracy: float | None = None
    removable: float | None = None
    max_train_loss: float | None = None
    substitute: str | None = None

    def __post_init__(self):
        if not isinstance(self.config, TrainConfig):
            raise ValueError(f"config={self.config!r} must be a TrainConfig")
        choice("group", self.group, tuple(GROUPS))
        if self.accuracy is not None:
            fraction("accuracy", self.accuracy)
        if self.removable is not None:
            fraction("removable", self.removable, low_open=True)
        if self.max_train_loss is not None:
            number("max_train_loss", self.max_train_loss, low=0.0, low_open=True)
        if self.substitute is not None:
            text("substitute", self.substitute)


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
        # cosine regression (arXiv version): 1 input, 1 output, two sigmoid hidden layers, "trained to near-perfect
        # precision"; brute force: the error "only begins to rise sharply after 50%" (10 + 10) and shows "little to
        # no increase in error at all until 90%" (50 + 50)
        "cosine_10_10": Setup(sgd(cosine, (10, 10), 1.0, 400, 32), "cosine", removable=0.5,
                              max_train_loss=1e-3),
        "cosine_50_50": Setup(sgd(cosine, (50, 50), 1.0, 400, 32), "cosine", removable=0.9,
                              max_train_loss=1e-3),
        # MNIST subset (ICLR submission): starting accuracies 0.998 (one layer of 100) and 1.000 (two of 50);
        # brute force removes "almost 60%" and "up to 40%"
        "mnist20_100": Setup(sgd(mnist20, (100,), 2.0, 200, 64), "mnist", 0.998, removable=0.6),
        "mnist20_50_50": Setup(sgd(mnist20, (50, 50), 2.0, 200, 64), "mnist", 1.0, removable=0.4),
    }
    for shape, accuracy in (("diamond", 0.992), ("random_shape", 0.986)):
        cfg = sgd(DataConfig(name=shape), (50, 50), 0.5, 400, 32, course).replace(momentum=0.9)
        s[f"{shape}_50_50"] = Setup(cfg, "shapes", accuracy)
        s[f"{shape}_50_50_adam"] = Setup(adam(cfg, 5e-3, 200, course[:-1]), "adam")
    # one-vs-all MNIST (arXiv version): 784-100 on the whole training set. The source's nets have two softmax outputs
    # and stop at sub-optimal accuracies (0.9757, 0.9881, 0.9513); brute force is flat "until around the 60% mark"
    # (digit 0) and does not rise above the starting error "until it crosses the 80% mark" (digit 1)
    ova = ("sigmoid outputs with squared error trained to about 0.98-0.99 for the source's two softmax outputs at "
           "sub-optimal starting accuracies")
    for d, accuracy, share in ((0, 0.9757, 0.6), (1, 0.9881, 0.8), (2, 0.9513, None)):
        s[f"mnist_ova{d}"] = Setup(sgd(DataConfig(name="mnist", one_vs_all=d, normalize=False), (100,), 2.0, 5, 128),
                                   "ova", accuracy, removable=share, substitute=ova)
    s["mnist20_50_50_adam"] = Setup(adam(s["mnist20_50_50"].config, 1e-3, 30), "adam_mnist")
    s["diamond_100"] = Setup(s["diamond_50_50"].config.replace(hidden=(100,), checkpoints=()), "depth")
    s["diamond_100_adam"] = Setup(s["diamond_50_50_adam"].config.replace(hidden=(100,), checkpoints=()), "depth")
    digits = DataConfig(name="digits")
    s["digits_sse"] = Setup(TrainConfig(data=digits, model=mlp((100,)), loss="sse", optimizer="adam", lr=3e-3,
                                        epochs=30, batch_size=64), "digits")
    s["digits_ce"] = Setup(s["digits_sse"].config.replace(loss="cross_entropy"), "digits")
    return s


SETUPS = _setups()


def stated_accuracy(setup: str) -> float | None:
    """The starting accuracy the source states for ``setup``'s task: its own, else that of the source's setup on the
    same data set (an extension's copy of a source setup), else None. ``setup``: a key of :data:`SETUPS`."""
    own = SETUPS[choice("setup", setup, tuple(SETUPS))]
    if own.accuracy is not None:
        return own.accuracy
    return next((s.accuracy for s in SETUPS.values() if s.accuracy is not None
                 and s.config.data == own.config.data), None)


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
MARGINS = (0.025, 0.05, 0.10)  # a verdict on removable units must be the same at half and at twice the margin
SHARE_SLACK = 0.10  # "almost 60%", "around the 60% mark": brute force must remove at least the share stated - 10 points
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


def quality_gate(accuracy: pd.DataFrame) -> pd.DataFrame:
    """The runs of :attr:`Experiment.accuracy` (setup, seed, train_loss) that did not train to what the source starts
    from (a setup's ``max_train_loss``), one row each with ``why``: they are left out of the claims, and said so."""
    cols = ["setup", "seed", "why"]
    if accuracy is None or accuracy.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for r in accuracy.itertuples():
        gate = SETUPS[r.setup].max_train_loss if r.setup in SETUPS else None
        if gate is not None and not r.train_loss <= gate:
            rows.append({"setup": r.setup, "seed": int(r.seed),
                         "why": f"training error {r.train_loss:.3g} above {gate:g}: not trained to the near-perfect "
                                "precision the source starts from"})
    return pd.DataFrame(rows, columns=cols)
