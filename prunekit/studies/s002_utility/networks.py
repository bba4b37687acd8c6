"""Source 002's pretrained networks, shared by notebooks 04 (the loss-surface plane) and 05 (weight utility) so that
both use the same cached model by construction, and notebook 05's presets.

- :class:`Network`: a pretrained network's settings and its config (:meth:`Network.config`): the source's ResNet20
  with its recipe (:data:`SOURCE_NETWORK`), or this project's MLP variant (:data:`MLP_VARIANT`);
- :class:`Preset` (notebook 05: the two networks and how much each measurement samples), :data:`PRESETS`,
  :func:`preset`;
- what in a run stands in for the source's setup (:func:`substitute`, :func:`as_decided_on`), the stand-in for the
  source's "vanilla CNN" (:func:`vanilla_cnn`) and the ResNet20 without batch norm (:func:`without_batch_norm`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ...core.checks import choice, count, distinct, fraction, number, sequence, text
from ...core.config import DataConfig, ModelConfig, TrainConfig, check_profile
from ...core.data import files_present
from ...report import claims as C
from ...report.catalog import source_of
from ..protocol import StudyPreset

__all__ = ["SOURCE", "SOURCE_DATASET", "SOURCE_EPOCHS", "SOURCE_RECIPE", "NETWORKS", "Network", "SOURCE_NETWORK", "MLP_VARIANT",
           "Preset", "PRESETS", "preset", "pretrain_config", "default_dataset", "vanilla_cnn", "vanilla_cnn_config",
           "eval_subset", "without_batch_norm", "substitute", "as_decided_on"]

SOURCE = source_of("05_weight_utility")
SOURCE_DATASET = "cifar10"  # the source's experiments: ResNet20 on CIFAR-10, 200 epochs
SOURCE_EPOCHS = 200
NETWORKS = ("resnet20", "mlp")  # the source's network, this project's MLP variant


@dataclass(frozen=True)
class Network:
    """A pretrained network's preset: its data set (``subset`` training images, resized to ``resize``), its
    ``width_mult``, its ``epochs`` T, the ``checkpoints`` kept, the training images its ablations are measured on
    (``eval_subset``; None: all, as the source's Def. 1 averages over the training set), its ``arch`` and
    ``recipe`` ("source": the source's SGD recipe; "adam": this project's MLP variant) and, for the MLP variant,
    ``retrain_epochs`` (t of notebook 04's one-shot pruning, <= T - rewind epoch 1)."""

    dataset: str
    epochs: int
    checkpoints: tuple[int, ...]
    eval_subset: int | None
    width_mult: float = 1.0
    subset: int | None = None
    resize: int | None = None
    arch: str = "resnet20"
    retrain_epochs: int | None = None
    recipe: str = "source"

    def default_dataset(self) -> str:
        """The network's data set, except that CIFAR-10 falls back to Fashion-MNIST (at 28x28) where its files are
        not in the data folder (``prunekit.core.data.files_present``: nothing is downloaded to decide)."""
        return "fashion_mnist" if self.dataset == "cifar10" and not files_present("cifar10") else self.dataset

    def config(self, seed: int = 0, width_mult: float = 1.0, dataset: str | None = None) -> TrainConfig:
        """The network's training config for ``seed``, ``width_mult`` times its width, on ``dataset`` (None:
        :meth:`default_dataset`), with the checkpoints imbalance-during-training needs. The source's recipe: He
        initialisation, SGD with momentum 0.9 and weight decay 1e-4, lr 0.1 divided by 10 at 50% and 75% of the
        epochs (its ``subset`` and ``resize`` on any data set but CIFAR-10, whose 32x32 colour images are never
        shrunk); this project's MLP variant: Adam at lr 1e-3, constant."""
        number("width_mult", width_mult, low=0.0, low_open=True)
        name = dataset if dataset is not None else self.default_dataset()
        if self.recipe == "adam":
            return TrainConfig(data=DataConfig(name=name), model=ModelConfig(arch=self.arch, width_mult=width_mult),
                               optimizer="adam", lr=1e-3, epochs=self.epochs, seed=seed, checkpoints=self.checkpoints)
        return TrainConfig(data=DataConfig(name=name, subset=self.subset,
                                           resize=self.resize if name != "cifar10" else None),
                           model=ModelConfig(arch=self.arch, width_mult=self.width_mult * width_mult, init="he"),
                           optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4, epochs=self.epochs,
                           schedule="step", seed=seed, checkpoints=self.checkpoints)


# The source's network (its Sec. 2.2.1 and 3; the "same conclusions" run of Sec. 2.1.2): He et al.'s CIFAR ResNet20
# with batch norm and He initialisation, SGD with momentum 0.9 and weight decay 1e-4, lr 0.1 divided by 10 at 50% and
# 75% of the epochs. "quick": half width on the 8x8 digits; "paper": half width on a 10,000-image Fashion-MNIST
# training subset at 14x14 for 8 epochs (what 2 CPU cores can afford for three seeds; Fashion-MNIST because MNIST
# saturates: at 14x14 every network of Table 1 lands within a point of 98%, too close to the ceiling to show the
# differences the source reports); "full": the source's 200 epochs on CIFAR-10 where its files are, else on
# Fashion-MNIST at 28x28 (:meth:`Network.default_dataset`). checkpoints: the epochs imbalance-during-training is
# measured at; eval_subset: the training images utilities and accuracies are measured on (None: the whole training
# set, as the source's Def. 1 averages over it)
SOURCE_NETWORK = {
    "quick": Network("digits", 8, (0, 1, 2, 4, 8), None, width_mult=0.5),
    "paper": Network("fashion_mnist", 8, (0, 1, 2, 4, 8), 1_000, width_mult=0.5, subset=10_000, resize=14),
    "full": Network("cifar10", 200, (0, 1, 2, 5, 10, 20, 50, 100, 150, 200), None),
}
# This project's variant, what notebooks 04 and 05 ran before the source's network was built: an MLP (prunekit's
# 128-64 on digits, LeNet-300-100 on MNIST), Adam at lr 1e-3, constant
MLP_VARIANT = {
    "quick": Network("digits", 20, (0, 1, 2, 4, 8, 12, 16, 20), None, arch="mlp", retrain_epochs=10, recipe="adam"),
    "paper": Network("mnist", 10, (0, 1, 2, 3, 5, 7, 10), 10_000, arch="lenet300", retrain_epochs=9, recipe="adam"),
    "full": Network("mnist", 10, (0, 1, 2, 3, 5, 7, 10), None, arch="lenet300", retrain_epochs=9, recipe="adam"),
}


def _ratios(name: str, values, below_one: bool = False) -> tuple[float, ...]:
    return tuple(distinct(name, sequence(name, values, item=lambda n, v: fraction(n, v, low_open=True,
                                                                                  high_open=below_one))))


@dataclass(frozen=True)
class Preset(StudyPreset):
    """Notebook 05's settings for one profile: its two networks (``resnet20``, the source's; ``mlp``, this project's
    variant: :meth:`network`), the random ablation's ``ratios`` and ``n_subsets`` per ratio (the source: 500), the
    subsets of the imbalance measure (Def. 3: N = 500), per magnitude band and ratio, per level of the size and
    pruned-network comparisons, of "why the spread", per ratio of the widths (MLP variant); Sec. 2.2.2's
    ``prune_ratios`` and its training seeds ``pruned_seeds`` (its accuracy claim compares networks within a few
    points: decided over seeds); ``spread_datasets``: the data sets "why the spread" also trains the batch-norm
    network on, beside the notebook's own (the answer moved between data sets: the comparison says why). Every
    setting is checked when the preset is made, so the values a notebook gives in the profile's place
    (:meth:`with_overrides`) are checked before anything is trained."""

    resnet20: Network
    mlp: Network
    ratios: tuple[float, ...]
    n_subsets: int
    imbalance_subsets: int
    band_subsets: int
    size_subsets: int
    spread_subsets: int
    width_subsets: int
    prune_ratios: tuple[float, ...]
    pruned_seeds: tuple[int, ...]
    spread_datasets: tuple[str, ...] = ()

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 - a frozen dataclass
        set_("ratios", _ratios("ratios", self.ratios))
        set_("prune_ratios", _ratios("prune_ratios", self.prune_ratios, below_one=True))
        for name in ("n_subsets", "imbalance_subsets", "band_subsets", "size_subsets", "spread_subsets",
                     "width_subsets"):
            set_(name, count(name, getattr(self, name)))
        set_("pruned_seeds", tuple(distinct("pruned_seeds", sequence("pruned_seeds", self.pruned_seeds,
                                                                    item=lambda n, v: count(n, v, low=0)))))
        set_("spread_datasets", tuple(dict.fromkeys(sequence("spread_datasets", self.spread_datasets,
                                                             nonempty=False, item=text))))

    def network(self, name: str = "resnet20") -> Network:
        """The :class:`Network` ``name`` ("resnet20": the source's; "mlp": this project's variant)."""
        return getattr(self, choice("network", name, NETWORKS))

    def pretrain_config(self, seed: int = 0, width_mult: float = 1.0, network: str = "resnet20",
                        dataset: str | None = None) -> TrainConfig:
        """The pretrained ``network``'s config (:meth:`Network.config`): notebooks 04 and 05's shared model."""
        return self.network(network).config(seed, width_mult, dataset)


PRESETS = {
    "quick": Preset(SOURCE_NETWORK["quick"], MLP_VARIANT["quick"], ratios=(0.05, 0.1, 0.2, 0.3, 0.5), n_subsets=50,
                    imbalance_subsets=50, band_subsets=5, size_subsets=20, spread_subsets=50, width_subsets=50,
                    prune_ratios=(0.5,), pruned_seeds=(0,)),
    "paper": Preset(SOURCE_NETWORK["paper"], MLP_VARIANT["paper"], ratios=(0.05, 0.1, 0.2, 0.3), n_subsets=500,
                    imbalance_subsets=500, band_subsets=10, size_subsets=50, spread_subsets=500, width_subsets=100,
                    prune_ratios=(0.25, 0.5, 0.75), pruned_seeds=(0, 1, 2), spread_datasets=("mnist",)),
    "full": Preset(SOURCE_NETWORK["full"], MLP_VARIANT["full"],
                   ratios=(0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9), n_subsets=500,
                   imbalance_subsets=500, band_subsets=20, size_subsets=500, spread_subsets=500, width_subsets=500,
                   prune_ratios=(0.25, 0.5, 0.75), pruned_seeds=(0, 1, 2, 3, 4), spread_datasets=("mnist",)),
}


def preset(profile: str) -> Preset:
    """Notebook 05's :class:`Preset` of ``profile`` ("quick", "paper" or "full")."""
    return PRESETS[check_profile(profile, PRESETS)]


def pretrain_config(profile: str, seed: int = 0, width_mult: float = 1.0, network: str = "resnet20",
                    dataset: str | None = None) -> TrainConfig:
    """The pretrained network of notebooks 04 and 05 for ``profile``: ``preset(profile).pretrain_config(...)``,
    ``network`` "resnet20" (the source's, with its recipe, :data:`SOURCE_NETWORK`) or "mlp" (this project's
    variant, Adam at lr 1e-3, :data:`MLP_VARIANT`), on ``dataset`` (None: :meth:`Network.default_dataset`)."""
    return preset(profile).pretrain_config(seed, width_mult, network, dataset)


def default_dataset(profile: str, network: str = "resnet20") -> str:
    """The data set of ``profile``'s ``network`` (:meth:`Network.default_dataset`)."""
    return preset(profile).network(network).default_dataset()


def eval_subset(profile: str, network: str = "resnet20") -> int | None:
    """How many training images ``profile``'s ablations of ``network`` are measured on (None: all)."""
    return preset(profile).network(network).eval_subset


def vanilla_cnn(cfg: TrainConfig) -> TrainConfig:
    """A stand-in for the source's "vanilla CNN" of Sec. 2.1.2 (its layers are in an appendix that is not
    available), trained on the data and epochs of ``cfg`` (the source's ResNet20 config): prunekit's plain conv net
    (``arch="conv"``: two 3x3 conv blocks of 16 and 32 channels with max pooling, a hidden layer of 64) without batch
    norm, trained as the source trains it: SGD with no momentum and no weight decay, lr 0.1 divided by 10 at 50% and
    75% of the epochs."""
    if not isinstance(cfg, TrainConfig):
        raise ValueError(f"cfg={cfg!r} must be a TrainConfig (the source's ResNet20 config)")
    return cfg.replace(arch="conv", width_mult=1.0, batch_norm=False, momentum=0.0, weight_decay=0.0)


def vanilla_cnn_config(profile: str, seed: int = 0, dataset: str | None = None) -> TrainConfig:
    """:func:`vanilla_cnn` of ``profile``'s ResNet20 (:func:`pretrain_config`)."""
    return vanilla_cnn(pretrain_config(profile, seed, dataset=dataset))


def without_batch_norm(cfg: TrainConfig) -> TrainConfig:
    """``cfg``'s network without its batch-norm layers, trained with Adam (lr 1e-3, no schedule, no weight decay):
    SGD at lr 0.1 does not train a 20-layer ResNet without batch norm. This project's recipe; the source has none."""
    return cfg.replace(batch_norm=False, optimizer="adam", lr=1e-3, momentum=0.0, weight_decay=0.0, schedule="none")


SOURCE_RECIPE = {"arch": "resnet20", "batch_norm": True, "init": "he_normal", "optimizer": "sgd", "lr": 0.1,
                 "momentum": 0.9, "weight_decay": 1e-4, "schedule": "step", "batch_size": 128}
"""The source's training recipe (He et al. 2016's for ResNet20): what :func:`substitute` compares a config with."""


def substitute(cfg: TrainConfig) -> str | None:
    """What in ``cfg`` stands in for the source's setup (ResNet20 with batch norm and He initialisation at full width
    on the whole of CIFAR-10 at 32x32, SGD with momentum 0.9 and weight decay 1e-4 at lr 0.1 divided by 10 at 50% and
    75% of 200 epochs, batches of 128: :data:`SOURCE_RECIPE`), in words; None when ``cfg`` is the source's setup."""
    d, m = cfg.data, cfg.model
    parts = []
    if d.name != SOURCE_DATASET:
        parts.append(f"{d.name} for {SOURCE_DATASET}")
    if d.subset:
        parts.append(f"{d.subset:,} training images")
    if d.resize:
        parts.append(f"{d.resize}x{d.resize} images")
    if m.width_mult != 1.0:
        parts.append(f"width {m.width_mult:g}")
    if cfg.epochs != SOURCE_EPOCHS:
        parts.append(f"{cfg.epochs} epochs for {SOURCE_EPOCHS}")
    here = {"arch": m.arch, "batch_norm": m.batch_norm, "init": m.init, "optimizer": cfg.optimizer, "lr": cfg.lr,
            "momentum": cfg.momentum, "weight_decay": cfg.weight_decay, "schedule": cfg.schedule,
            "batch_size": cfg.batch_size}
    parts += [f"{k.replace('_', ' ')} {here[k]!s} for {v!s}" for k, v in SOURCE_RECIPE.items() if here[k] != v]
    return ", ".join(parts) or None


def as_decided_on(claims: pd.DataFrame, cfg: TrainConfig) -> pd.DataFrame:
    """The claims of a run on ``cfg``: as decided on the source's own setup, else with the substitute-setup verdicts
    (``prunekit.report.claims.on_substitute``: "holds here (substitute setup)" or "does not hold here (substitute
    setup)", both ways alike, counted apart). Rows of this project's own extensions are left as they are: they are
    not the source's claims."""
    return C.on_substitute(claims, substitute(cfg))
