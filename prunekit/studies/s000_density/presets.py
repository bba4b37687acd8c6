"""Source 000's width sweep (notebook 03): the presets, the grid of configs, and the sweep's setup in words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ...core.checks import distinct, mapping, number, sequence
from ...core.config import DataConfig, TrainConfig, check_profile
from ...core.data import available_datasets, files_present
from ...core.sweep import make_grid
from ...measures.density import check_scope
from ..protocol import StudyPreset

__all__ = ["GROUP", "WIDTHS", "TOLERANCE", "MIN_DENSE_ACCURACY", "Preset", "PRESETS", "preset", "OPTIMIZER_SETTINGS",
           "width_grid", "substitute", "grid_setup"]

GROUP = ["dataset", "arch", "optimizer", "init"]  # one width series = one (dataset, arch, optimizer, init)

WIDTHS = (0.1, 0.25, 0.5, 1, 2, 3, 5)
TOLERANCE = 0.05  # the core: pruned until accuracy drops by 5 points (the source's "5%")
MIN_DENSE_ACCURACY = 0.5  # a model below this test accuracy has not learned the task: it has no meaningful core
# notebook 03's grids. quick: digits, LeNet-300-100 only. paper (2 cores, at most 45 min): LeNet on a 6,000-image
# MNIST subset; conv and residual on 4,000 and 3,000 images at 14x14, batch 32 (narrow nets learn nothing at 128 in
# 2 epochs); density on a fixed 1,000-image test subset (the search's ~60-100 evaluations per network are most of the
# time: on 2,000 images the profile took 48 min); at least 2 Dask workers. full (one GPU): the source's
# reading, every architecture x optimizer x init on the whole training sets at full resolution (MNIST and
# Fashion-MNIST; CIFAR-10 too for conv and residual where its files are), trained until the training loss stops
# improving (patience: 3 epochs without a 1% gain; at most 100 epochs), density on the whole test set
@dataclass(frozen=True)
class Preset(StudyPreset):
    """Notebook 03's width sweep for one profile: ``archs`` (arch -> its data sets), the ``widths``, the
    ``optimizers``, ``inits``, ``seeds``, ``epochs``, ``batch_size``, training ``subset`` and image ``resize`` (each one
    value for every arch or a dict arch -> value), ``patience`` / ``min_improvement`` (train until the loss stops
    improving; 0 trains every epoch), ``eval_subset`` (test images density is measured on; None: all),
    ``min_workers`` (Dask workers at least) and when CIFAR-10 joins the conv and residual nets (``cifar10``,
    :meth:`sweep_configs`)."""

    archs: dict
    widths: tuple[float, ...]
    optimizers: object
    inits: object
    seeds: tuple[int, ...]
    epochs: object
    batch_size: object
    subset: dict
    resize: dict
    eval_subset: int | None
    min_workers: int
    patience: int = 0
    min_improvement: float = 0.01
    cifar10: str = "never"  # conv and residual on CIFAR-10 too: "never", "asked" (use_cifar10), "present" (or its files)

    def sweep_configs(self, use_cifar10: bool = False) -> tuple[list, dict[str, str]]:
        """``(configs, skipped)``: the grid (:meth:`grid`) on the data sets whose files are here, CIFAR-10 added for
        the conv and residual nets as the preset's ``cifar10`` says (asked by ``use_cifar10``, or its files present);
        ``skipped``: ``{dataset: why}`` of those that are not (``prunekit.core.data.available_datasets``)."""
        archs = {arch: list(ds) for arch, ds in self.archs.items()}
        if self.cifar10 != "never" and (use_cifar10 or (self.cifar10 == "present" and files_present("cifar10"))):
            for arch in ("conv", "resnet"):
                archs.setdefault(arch, []).append("cifar10")
        present, skipped = available_datasets(sorted({d for ds in archs.values() for d in ds}))
        return self.grid({arch: [d for d in ds if d in present] for arch, ds in archs.items()}), skipped

    def grid(self, archs: dict | None = None) -> list:
        """The configs of :func:`width_grid` for ``archs`` (arch -> data sets; None: the preset's)."""
        return width_grid(self.archs if archs is None else archs, self.widths, self.optimizers, self.inits,
                          self.seeds, epochs=self.epochs, batch_size=self.batch_size, subset=self.subset,
                          resize=self.resize, patience=self.patience, min_improvement=self.min_improvement)


PRESETS = {
    "quick": Preset(archs={"lenet300": ["digits"]}, widths=(0.1, 0.5, 1, 2, 5), optimizers=["adam", "sgd"],
                    inits=["glorot", "he"], seeds=(0, 1), epochs=4, batch_size=32, subset={}, resize={},
                    eval_subset=None, min_workers=1),
    "paper": Preset(archs={"lenet300": ["mnist"], "conv": ["mnist"], "resnet": ["mnist"]}, widths=WIDTHS,
                    optimizers={"lenet300": ["sgd", "adam", "adagrad"], "conv": ["sgd", "adam"], "resnet": ["adam"]},
                    inits={"lenet300": ["glorot", "he"], "conv": ["he"], "resnet": ["he"]}, seeds=(0, 1, 2),
                    epochs=2, batch_size={"lenet300": 128, "conv": 32, "resnet": 32},
                    subset={"lenet300": 6000, "conv": 4000, "resnet": 3000}, resize={"conv": 14, "resnet": 14},
                    eval_subset=1000, min_workers=2, cifar10="asked"),
    "full": Preset(archs={"lenet300": ["mnist", "fashion_mnist"], "conv": ["mnist", "fashion_mnist"],
                          "resnet": ["mnist", "fashion_mnist"]}, widths=WIDTHS,
                   optimizers=["sgd", "adam", "adagrad"], inits=["glorot", "he"], seeds=(0, 1, 2), epochs=100,
                   patience=3, min_improvement=0.01, batch_size=128, subset={}, resize={}, eval_subset=None,
                   min_workers=1, cifar10="present"),
}


def preset(profile: str) -> Preset:
    """The :class:`Preset` of ``profile`` ("quick", "paper" or "full")."""
    return PRESETS[check_profile(profile, PRESETS)]


# learning rates per optimizer (open in the source; the usual defaults, kept the same for every width)
OPTIMIZER_SETTINGS = {"sgd": {"lr": 0.05, "momentum": 0.9}, "adam": {"lr": 1e-3}, "adagrad": {"lr": 1e-2}}


def _per_arch(value, arch):
    return value.get(arch) if isinstance(value, dict) else value


def width_grid(arch_datasets: dict[str, Sequence[str]], widths: Sequence[float], optimizers, inits, seeds, *,
               epochs=5, batch_size=128, subset=None, resize=None, patience=0, min_improvement=0.01,
               optimizer_settings: dict[str, dict] | None = None) -> list[TrainConfig]:
    """Configs of the width sweep: for each arch, its data sets x widths x optimizers x inits x seeds.

    arch_datasets: e.g. ``{"lenet300": ["mnist"], "conv": ["mnist", "cifar10"]}`` (each arch at its default widths,
      scaled by ``width_mult``; an arch with no data set is skipped).
    optimizers, inits, seeds, epochs, batch_size, subset (stratified subset of each training set), resize (image
      side): one value (list) for every arch, or a dict arch -> value (a missing arch gets None = the default: no
      subset, no resize). patience, min_improvement: train until the training loss stops improving, ``epochs`` at
      most (``TrainConfig.patience``; 0 trains every epoch).
    optimizer_settings: per-optimizer overrides of :data:`OPTIMIZER_SETTINGS` (lr, momentum, ...).
    """

    widths = distinct("widths", sequence("widths", widths, item=lambda n, v: number(n, v, low=0.0, low_open=True)))
    settings = {**OPTIMIZER_SETTINGS, **(optimizer_settings or {})}
    out = []
    for arch, datasets in mapping("arch_datasets", arch_datasets).items():
        if not datasets:
            continue
        opts = list(_per_arch(optimizers, arch))
        base = TrainConfig(data=DataConfig(subset=_per_arch(subset, arch), resize=_per_arch(resize, arch)),
                           epochs=_per_arch(epochs, arch), batch_size=_per_arch(batch_size, arch),
                           patience=patience, min_improvement=min_improvement).replace(arch=arch)
        out += make_grid(base, dataset=list(datasets), width_mult=list(widths), optimizer=opts,
                         init=list(_per_arch(inits, arch)), seed=list(_per_arch(seeds, arch)),
                         overrides={"optimizer": {k: v for k, v in settings.items() if k in opts}})
    return out


def substitute(configs: Sequence[TrainConfig]) -> str | None:
    """What in a width sweep stands in for the source's setup, in words (None when nothing does): the source trains
    its models fully on whole data sets (which ones, and for how long, it leaves open: prunekit's reading, the
    ``full`` profile, is the whole training sets at full resolution until the training loss stops improving), so
    training subsets, downsized images and a fixed handful of epochs are a substitute."""
    configs = sequence("configs", configs, item=_config)
    parts = []
    subsets = sorted({(c.model.arch, c.data.subset) for c in configs if c.data.subset})
    if subsets:
        parts.append("training subsets (" + ", ".join(f"{a} {n:,} images" for a, n in subsets) + ")")
    resized = sorted({(c.model.arch, c.data.resize) for c in configs if c.data.resize})
    if resized:
        parts.append("downsized images (" + ", ".join(f"{a} {r}x{r}" for a, r in resized) + ")")
    fixed = sorted({c.epochs for c in configs if c.patience == 0})
    if fixed:
        parts.append(f"{'/'.join(map(str, fixed))} epochs of training, not until the training loss stops improving")
    return "; ".join(parts) or None


def _config(name: str, cfg) -> TrainConfig:
    if not isinstance(cfg, TrainConfig):
        raise ValueError(f"{name}={cfg!r} must be a TrainConfig")
    return cfg


def grid_setup(configs: Sequence[TrainConfig], tolerance: float = 0.05, relative: bool = False,
               scope: str = "global") -> str:
    """The width sweep in words, for a claims table's ``setup``: the architectures with their data, the widths and
    epochs, and the core's definition."""
    configs = sequence("configs", configs, nonempty=False, item=_config)
    number("tolerance", tolerance, low=0.0, high=1.0, high_open=True)
    check_scope(scope)
    archs = {}
    for c in configs:
        d = c.data
        data = d.name + (f" ({d.subset:,} images" + (f", {d.resize}x{d.resize})" if d.resize else ")") if d.subset
                         else f" ({d.resize}x{d.resize})" if d.resize else "")
        archs.setdefault(c.model.arch, set()).add(data)
    widths = sorted({c.model.width_mult for c in configs})
    epochs = sorted({c.epochs for c in configs})
    drop = f"{100 * tolerance:g}% of the dense accuracy" if relative else f"{100 * tolerance:g} points"
    return ("; ".join(f"{a} on {', '.join(sorted(d))}" for a, d in archs.items())
            + f"; widths {widths[0]:g}x to {widths[-1]:g}x; {'/'.join(map(str, epochs))} epochs; core: {scope} "
            f"magnitude pruning to a {drop} accuracy drop, no retraining") if configs else ""
