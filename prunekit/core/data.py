"""Data sets held whole in memory as normalised float32 tensors, batched by indexing.

- ``digits``: scikit-learn's 8x8 handwritten digits (ships with the package, no download); images 1x8x8; a fixed
  stratified 75/25 train/test split (``random_state=0``).
- ``mnist``, ``fashion_mnist``, ``cifar10``: through ``torchvision.datasets`` with ``download=True`` into
  ``$PRUNEKIT_DATA`` (default ``data/datasets``). Offline, with the files missing, :class:`DatasetUnavailable` names
  the files expected and the folder to put them in, and nothing half-downloaded is left behind.
- ``cosine``: the 1-input, 1-output regression of Wolfe et al. (2017): ``x ~ U[-pi, pi]``, target
  ``0.5 + 0.4 cos x`` (inside the sigmoid's range), input scaled to ``x / pi``.
- ``diamond``, ``random_shape``: Wolfe et al.'s toy "is this point inside a shape" tasks (:func:`inside_shape`):
  points uniform in ``[-1, 1]^2`` (images ``1x1x2``), label 1 inside the shape and 0 outside; the diamond is
  ``|x1| + |x2| <= 1`` (half of the square), the random shape a star-shaped blob drawn from ``DataConfig.seed``.

Pipeline (one pass over whole tensors, no per-sample PIL transforms): relabel (``classes`` / ``one_vs_all``) ->
resize (bilinear, antialiased) -> stratified ``subset`` of train -> stratified validation split -> scale to [0, 1]
and, unless ``normalize=False``, standardise per channel with the training split's mean and std (``raw_pixels=True``:
back to the stored 0-255 scale instead).
"""

from __future__ import annotations

import functools
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .checks import count, distinct, sequence
from .checks import path as checked_path
from .config import DataConfig
from .registry import DATASETS, DataEntry
from .paths import data_dir
from .runtime import adapt_threads

__all__ = ["Split", "Dataset", "DatasetUnavailable", "load_dataset", "as_split", "random_subset", "iterate_batches",
           "available_datasets", "files_present", "as_xy", "train_part", "expected_files", "SHAPES", "inside_shape",
           "shape_radius", "class_labels", "check_inputs"]


class DatasetUnavailable(FileNotFoundError):
    """A data set's files are missing and could not be downloaded (for example, offline)."""


@dataclass(frozen=True)
class Split:
    """Inputs ``x`` (float32 [N, C, H, W]) and targets ``y`` (int64 [N], or float32 [N, 1] for regression)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return self.x.shape[0]


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Split
    test: Split
    val: Split | None
    num_classes: int  # number of outputs of a model for this data set (1 for regression)
    input_shape: tuple[int, int, int]
    task: str  # "classification" or "regression"
    mean: tuple[float, ...]
    std: tuple[float, ...]


MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte")
CIFAR10_BATCHES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")


def expected_files(name: str) -> tuple[str, ...]:
    """The files data set ``name`` needs, relative to the data folder (empty: generated or embedded)."""
    return DATASETS.entry(name, "name").files


def _raw_files_present(folder: str):
    """``present(root)`` of an MNIST-family data set: its four raw files, gzipped or unpacked."""
    def present(root: Path) -> bool:
        return all((root / folder / "raw" / f"{f}.gz").is_file() or (root / folder / "raw" / f).is_file()
                   for f in MNIST_FILES)
    return present


def _cifar10_present(root: Path) -> bool:
    batches = root / "cifar-10-batches-py"
    return (root / "cifar-10-python.tar.gz").is_file() or all((batches / f).is_file() for f in CIFAR10_BATCHES)


def _snapshot(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")} if root.exists() else set()


def _torchvision(name: str, root: Path):
    """Load (train, test) uint8 arrays [N, H, W, C] and int64 labels through torchvision, downloading if possible."""
    import torchvision.datasets as tvd  # torchvision is slow to import: only where a data set needs it

    cls = {"mnist": tvd.MNIST, "fashion_mnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10}[name]
    root.mkdir(parents=True, exist_ok=True)
    before = _snapshot(root)
    try:
        train = cls(str(root), train=True, download=True)
        test = cls(str(root), train=False, download=True)
    except Exception as err:  # offline: URLError / RuntimeError from torchvision's download
        for p in sorted(_snapshot(root) - before, key=lambda p: len(p.parts), reverse=True):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        files = "\n  ".join(str(root / f) for f in expected_files(name))
        raise DatasetUnavailable(
            f"data set {name!r} is not available offline and could not be downloaded ({type(err).__name__}).\n"
            f"Put these files in place (or set PRUNEKIT_DATA to a folder that has them):\n  {files}"
        ) from err
    out = []
    for ds in (train, test):
        x = ds.data.numpy() if torch.is_tensor(ds.data) else np.asarray(ds.data)
        if x.ndim == 3:
            x = x[..., None]
        y = ds.targets.numpy() if torch.is_tensor(ds.targets) else np.asarray(ds.targets)
        out.append((x, y.astype(np.int64)))
    return out


def _digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images.astype(np.float32) * (255.0 / 16.0))[..., None]  # [N, 8, 8, 1], on the 0-255 scale
    xtr, xte, ytr, yte = train_test_split(x, d.target.astype(np.int64), test_size=0.25, stratify=d.target,
                                          random_state=0)
    return (xtr, ytr), (xte, yte)


def _cosine(seed: int, n_train: int = 1000, n_test: int = 500):
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in (n_train, n_test):
        t = (torch.rand(n, generator=g) * 2 - 1) * math.pi
        out.append(((t / math.pi).reshape(n, 1, 1, 1), (0.5 + 0.4 * torch.cos(t)).reshape(n, 1)))
    return out


SHAPES = ("diamond", "random_shape")


def shape_radius(angle: torch.Tensor, seed: int) -> torch.Tensor:
    """The boundary of the random shape of ``seed`` in polar form: ``r(a) = 0.6 + sum_{k=1..4} (c_k cos ka + s_k sin
    ka) / k`` with ``c_k, s_k ~ U(-0.135, 0.135)``: a smooth star-shaped blob, between 0.2 and 1.0 from the origin
    (each term is at most ``0.135 * sqrt(2) / k``, and ``0.135 * sqrt(2) * (1 + 1/2 + 1/3 + 1/4) < 0.4``)."""
    g = torch.Generator().manual_seed(10_000 + count("seed", seed, low=0))
    coef = (torch.rand(2, 4, generator=g, dtype=torch.float64) - 0.5) * 0.27
    k = torch.arange(1, 5, dtype=torch.float64)
    a = angle.double()[..., None] * k
    return 0.6 + ((coef[0] * torch.cos(a) + coef[1] * torch.sin(a)) / k).sum(-1)


def inside_shape(points: torch.Tensor, name: str, seed: int = 0) -> torch.Tensor:
    """Labels of ``points`` ``[N, 2]`` for the shape ``name``: 1 inside (on the boundary counts as inside), 0 outside.
    "diamond": ``|x1| + |x2| <= 1``; "random_shape": ``|x| <= r(angle of x)`` with :func:`shape_radius`."""
    if name not in SHAPES:
        raise ValueError(f"name={name!r} is not a shape; allowed: {', '.join(map(repr, SHAPES))}")
    count("seed", seed, low=0)
    if points.dim() != 2 or points.shape[1] != 2:
        raise ValueError(f"points must be [N, 2], got {tuple(points.shape)} (a data set's x: x.reshape(-1, 2))")
    p = points.double()
    if name == "diamond":
        inside = p.abs().sum(1) <= 1.0
    else:
        inside = p.norm(dim=1) <= shape_radius(torch.atan2(p[:, 1], p[:, 0]), seed)
    return inside.long()


def _shape(name: str, seed: int, n_train: int = 2000, n_test: int = 1000):
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in (n_train, n_test):
        pts = torch.rand(n, 2, generator=g) * 2 - 1
        out.append((pts.reshape(n, 1, 1, 2), inside_shape(pts, name, seed)))
    return out


def _stratified_take(y: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (taken, rest) of a stratified draw of n samples."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    if n >= len(y):
        return idx, idx[:0]
    take, rest = train_test_split(idx, train_size=n, stratify=y, random_state=seed)
    return np.sort(take), np.sort(rest)


@functools.lru_cache(maxsize=8)
def _load_cached(cfg: DataConfig, root: str) -> Dataset:
    entry = DATASETS[cfg.name]
    if entry.kind == "regression":
        (xtr, ytr), (xte, yte) = entry.load(cfg.seed, Path(root))
        val = None
        if cfg.val_fraction > 0:
            nv = int(round(cfg.val_fraction * len(ytr)))
            val, xtr, ytr = Split(xtr[:nv], ytr[:nv]), xtr[nv:], ytr[nv:]
        return Dataset(cfg.name, Split(xtr, ytr), Split(xte, yte), val, 1, tuple(xtr.shape[1:]), "regression",
                       (0.0,), (1.0,))

    if entry.kind == "points":  # points in [-1, 1]^2 as drawn: no resizing, subsets or standardisation
        (xtr, ytr), (xte, yte) = entry.load(cfg.seed, Path(root))
        val = None
        if cfg.val_fraction > 0:
            nv = int(round(cfg.val_fraction * len(ytr)))
            val, xtr, ytr = Split(xtr[:nv], ytr[:nv]), xtr[nv:], ytr[nv:]
        return Dataset(cfg.name, Split(xtr, ytr), Split(xte, yte), val, 2, (1, 1, 2), "classification", (0.0,),
                       (1.0,))

    (xtr, ytr), (xte, yte) = entry.load(cfg.seed, Path(root))  # images: uint8 [N, H, W, C], int64 labels

    num_classes = int(max(ytr.max(), yte.max()) + 1)
    if cfg.classes is not None:
        lut = {c: i for i, c in enumerate(cfg.classes)}
        bad = [c for c in cfg.classes if c >= num_classes]
        if bad:
            raise ValueError(f"classes={cfg.classes!r}: {bad} not in {cfg.name!r} (labels 0..{num_classes - 1})")
        keep_tr, keep_te = np.isin(ytr, cfg.classes), np.isin(yte, cfg.classes)
        xtr, ytr = xtr[keep_tr], np.vectorize(lut.get)(ytr[keep_tr]).astype(np.int64)
        xte, yte = xte[keep_te], np.vectorize(lut.get)(yte[keep_te]).astype(np.int64)
        num_classes = len(cfg.classes)
    elif cfg.one_vs_all is not None:
        if cfg.one_vs_all >= num_classes:
            raise ValueError(f"one_vs_all={cfg.one_vs_all} not in {cfg.name!r} (labels 0..{num_classes - 1})")
        ytr, yte = (ytr == cfg.one_vs_all).astype(np.int64), (yte == cfg.one_vs_all).astype(np.int64)
        num_classes = 2

    if cfg.subset is not None:
        take, _ = _stratified_take(ytr, cfg.subset, cfg.seed)
        xtr, ytr = xtr[take], ytr[take]

    xv = yv = None
    if cfg.val_fraction > 0:
        nv = max(1, int(round(cfg.val_fraction * len(ytr))))
        vidx, tidx = _stratified_take(ytr, nv, cfg.seed + 1)
        xv, yv, xtr, ytr = xtr[vidx], ytr[vidx], xtr[tidx], ytr[tidx]

    def to_tensor(x: np.ndarray) -> torch.Tensor:
        # NHWC -> NCHW with canonical strides: a permuted view with C = 1 also passes as channels_last, and torch
        # would then run every conv in that format (see models.as_nchw for why that matters).
        t = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2)
        t = t.clone(memory_format=torch.contiguous_format).float().div_(255.0)
        if cfg.resize is not None and t.shape[-1] != cfg.resize:
            t = F.interpolate(t, size=(cfg.resize, cfg.resize), mode="bilinear", antialias=True,
                              align_corners=False).clamp_(0.0, 1.0)
        return t.contiguous()

    ttr, tte = to_tensor(xtr), to_tensor(xte)
    tv = to_tensor(xv) if xv is not None else None
    if cfg.normalize:
        mean = ttr.mean(dim=(0, 2, 3), keepdim=True)
        std = ttr.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    elif cfg.raw_pixels:  # back to the stored 0-255 scale: x * 255 (exact for every uint8 level in float32)
        mean, std = torch.zeros(1, ttr.shape[1], 1, 1), torch.full((1, ttr.shape[1], 1, 1), 1.0 / 255.0)
    else:
        mean, std = torch.zeros(1, ttr.shape[1], 1, 1), torch.ones(1, ttr.shape[1], 1, 1)
    if cfg.raw_pixels:
        norm = lambda t: (t * 255.0).contiguous()  # noqa: E731
    else:
        norm = lambda t: ((t - mean) / std).contiguous()  # noqa: E731
    val = Split(norm(tv), torch.from_numpy(yv)) if tv is not None else None
    return Dataset(
        name=cfg.name,
        train=Split(norm(ttr), torch.from_numpy(ytr)),
        test=Split(norm(tte), torch.from_numpy(yte)),
        val=val,
        num_classes=num_classes,
        input_shape=tuple(ttr.shape[1:]),
        task="classification",
        mean=tuple(mean.flatten().tolist()),
        std=tuple(std.flatten().tolist()),
    )


def load_dataset(cfg: DataConfig | str = "digits", root: str | os.PathLike | None = None) -> Dataset:
    """Load a data set as in-memory tensors (cached per process: do not modify the tensors in place)."""
    if isinstance(cfg, str):
        cfg = DataConfig(name=cfg)
    elif not isinstance(cfg, DataConfig):
        raise ValueError(f"cfg={cfg!r} must be a DataConfig or a data set's name")
    root = checked_path("root", root) if root is not None else data_dir()
    return _load_cached(cfg, str(root.resolve()))


def as_split(data, *, name: str = "data", max_samples: int | None = None) -> Split:
    """One form for every measure's ``data``: ``(x, y)`` tensors, a :class:`Split`, a prunekit :class:`Dataset` (its
    test split) or any iterable of ``(x, y)`` batches (a ``torch.utils.data.DataLoader``, a list of pairs), gathered
    into one Split of at most ``max_samples`` samples (the first ones, in the iterable's order).

    Raises ``ValueError`` naming ``name`` and the accepted forms for anything else (a bare tensor, a dict batch,
    an empty iterable, inputs and targets of different lengths).
    """
    forms = "(x, y) tensors, a prunekit Split, a prunekit Dataset (its test split) or an iterable of (x, y) batches " \
            "such as a DataLoader"
    if max_samples is not None:
        max_samples = count("max_samples", max_samples)
    if isinstance(data, Dataset) or (hasattr(data, "test") and hasattr(data.test, "x")):
        data = data.test
    if isinstance(data, Split) or (hasattr(data, "x") and hasattr(data, "y")):
        x, y = data.x, data.y
    elif isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        x, y = data  # (x, y) tensors: checked for one row per sample below
    elif isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        raise ValueError(f"{name}: the targets are a {type(data[1]).__name__}, not a tensor; {name} must be {forms}")
    elif isinstance(data, torch.utils.data.Dataset):  # its items are single samples, not batches
        raise ValueError(f"{name} is a torch Dataset of single samples ({type(data).__name__}): wrap it in a "
                         f"DataLoader (torch.utils.data.DataLoader({name}, batch_size=256)); {name} must be {forms}")
    elif isinstance(data, torch.Tensor) or isinstance(data, (str, bytes, dict)) or not hasattr(data, "__iter__"):
        raise ValueError(f"{name} must be {forms}; got {type(data).__name__}")
    else:
        xs, ys, n = [], [], 0
        for i, batch in enumerate(data):
            if not (isinstance(batch, (tuple, list)) and len(batch) >= 2 and isinstance(batch[0], torch.Tensor)
                    and isinstance(batch[1], torch.Tensor)):
                raise ValueError(f"{name}: batch {i} is a {type(batch).__name__}, not an (x, y) pair of tensors; "
                                 f"{name} must be {forms}")
            xs.append(batch[0])
            ys.append(batch[1])
            n += batch[0].shape[0]
            if max_samples is not None and n >= max_samples:
                break
        if not xs:
            raise ValueError(f"{name} is empty: it gave no batch")
        x, y = torch.cat(xs), torch.cat(ys)
    if x.dim() == 0 or y.dim() == 0 or x.shape[0] != y.shape[0]:
        raise ValueError(f"{name}: inputs and targets must have one row per sample; got x of shape {tuple(x.shape)} "
                         f"and y of shape {tuple(y.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty: it has no sample")
    if max_samples is not None and x.shape[0] > max_samples:
        x, y = x[:max_samples], y[:max_samples]
    check_inputs(x, name)
    return Split(x, y)


def check_inputs(x: torch.Tensor, name: str = "data") -> torch.Tensor:
    """``x``, refused (``ValueError`` naming ``name``) when a floating input holds NaN: a model's output on it is NaN,
    its argmax is no prediction, and every accuracy, loss and utility computed from it means nothing."""
    if x.is_floating_point() or x.is_complex():
        bad = torch.isnan(x.reshape(x.shape[0], -1)).any(1) if x.dim() > 1 else torch.isnan(x)
        if bool(bad.any()):
            raise ValueError(f"{name}: the inputs hold NaN in {int(bad.sum())} of {x.shape[0]} samples (first at "
                             f"row {int(bad.nonzero()[0, 0])}): drop those samples or replace the NaN "
                             "(torch.nan_to_num) before measuring")
    return x


def class_labels(y: torch.Tensor, num_classes: int, *, name: str = "data") -> torch.Tensor:
    """``y`` as int64 class labels in ``[0, num_classes)`` (``num_classes``: the number of logits), converted from any
    integer dtype. Float, bool or complex labels, labels of another shape than ``[N]`` and labels outside the range
    are refused with a ``ValueError`` naming ``name``: an accuracy would count them wrong without a word."""
    num_classes = count("num_classes", num_classes)
    forms = "one integer class index per sample, a tensor of shape [N]"
    if not isinstance(y, torch.Tensor):
        raise ValueError(f"{name}: the labels are a {type(y).__name__}, not a tensor ({forms})")
    if y.dtype == torch.bool or y.is_floating_point() or y.is_complex():
        raise ValueError(f"{name}: the labels are {y.dtype}, not class indices ({forms}); a classification measure "
                         "compares them with the argmax of the logits: convert them with y.long() if they are whole "
                         "numbers (one-hot labels: y.argmax(1))")
    if y.dim() != 1:
        raise ValueError(f"{name}: the labels have shape {tuple(y.shape)}; give {forms} (y.reshape(-1) for [N, 1])")
    if y.numel():
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= num_classes:
            bad = int(((y < 0) | (y >= num_classes)).sum())
            raise ValueError(f"{name}: {bad} of {y.numel()} labels lie outside [0, {num_classes}) (from {lo} to "
                             f"{hi}), the classes the model's {num_classes} logits give: drop them or relabel them")
    return y.long()


def train_part(data):
    """The training data of ``data``: a prunekit :class:`Dataset`'s (or any object's with a ``train`` split) train
    split; any other form as it is."""
    return data.train if isinstance(data, Dataset) or hasattr(getattr(data, "train", None), "x") else data


def as_xy(data, y=None, *, name: str = "data", need_y: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(x, y)`` tensors from a measure's ``data``: any form :func:`as_split` takes, or, as measures took it before
    the one convention, an input tensor ``x`` with its targets in ``y`` (``y=None`` only where ``need_y=False``).
    ``ValueError`` for targets given twice (``data`` holds them already) or missing."""
    if isinstance(data, torch.Tensor):
        if y is None and need_y:
            raise ValueError(f"{name} is an input tensor without targets: pass (x, y), a Split or a DataLoader as "
                             f"{name}, or the targets as y=")
        if y is not None and not (isinstance(y, torch.Tensor) and y.dim() > 0 and y.shape[0] == data.shape[0]):
            raise ValueError(f"y must be a tensor of targets, one per row of {name} ({data.shape[0]}); got "
                             f"{type(y).__name__}{tuple(y.shape) if isinstance(y, torch.Tensor) else ''} (a keyword "
                             f"that follows y, such as ratios, may have been passed by position)")
        return check_inputs(data, name), y
    if y is not None:
        raise ValueError(f"y= is given but {name} ({type(data).__name__}) holds its targets already: pass {name} alone "
                         f"(a keyword that follows {name}, such as ratios, may have been passed by position)")
    split = as_split(data, name=name)
    return split.x, split.y


def random_subset(split: Split, n: int | None, seed: int = 0) -> Split:
    """A fixed random subset of ``n`` samples of ``split`` (a permutation seeded with ``seed``), or ``split`` itself
    when ``n`` is None or not smaller than it: for cheaper evaluation of large models."""
    gen = torch.Generator().manual_seed(count("seed", seed, low=0))
    if n is None or count("n", n) >= len(split):
        return split
    idx = torch.randperm(len(split), generator=gen)[:n]
    return Split(split.x[idx], split.y[idx])


def iterate_batches(split: Split, batch_size: int, shuffle: bool = False,
                    generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (x, y) mini-batches by indexing the in-memory tensors; a fresh seeded permutation when shuffling. Torch's
    thread count follows the load between batches (``prunekit.core.runtime.adapt_threads``)."""
    batch_size = count("batch_size", batch_size)
    n = len(split)
    if not shuffle:
        for i in range(0, n, batch_size):
            adapt_threads()
            yield split.x[i:i + batch_size], split.y[i:i + batch_size]
        return
    perm = torch.randperm(n, generator=generator).to(split.x.device)  # CPU draw: the same batches on every device
    for i in range(0, n, batch_size):
        idx = perm[i:i + batch_size]
        adapt_threads()
        yield split.x[idx], split.y[idx]


def files_present(name: str, root: str | os.PathLike | None = None) -> bool:
    """Whether ``name``'s files are in the data folder (``$PRUNEKIT_DATA``), looked for without loading or downloading
    anything (its ``DATASETS`` entry's ``present``; a generated or embedded data set always is): MNIST-family: the four
    raw files, gzipped or unpacked; CIFAR-10: its archive or the unpacked ``cifar-10-batches-py/`` folder."""
    entry = DATASETS.entry(name, "name")
    root = checked_path("root", root) if root is not None else data_dir()
    return True if entry.present is None else bool(entry.present(root))


def available_datasets(names: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """(names whose files are present, {name: reason} for those that cannot be loaded offline)."""
    ok, missing = [], {}
    names = sequence("names", names, nonempty=False, item=lambda n, v: DATASETS.entry(v, n).name)
    for name in distinct("names", names):
        try:
            load_dataset(DataConfig(name=name))
            ok.append(name)
        except DatasetUnavailable as err:
            missing[name] = str(err).splitlines()[0]
    return ok, missing


# The data sets: one entry each (prunekit.core.registry)
DATASETS.register(DataEntry("digits", lambda seed, root: _digits(), "image"))  # scikit-learn's, embedded
DATASETS.register(DataEntry("mnist", lambda seed, root: _torchvision("mnist", root), "image",
                            tuple(f"MNIST/raw/{f}.gz" for f in MNIST_FILES), _raw_files_present("MNIST")))
DATASETS.register(DataEntry("fashion_mnist", lambda seed, root: _torchvision("fashion_mnist", root), "image",
                            tuple(f"FashionMNIST/raw/{f}.gz" for f in MNIST_FILES),
                            _raw_files_present("FashionMNIST")))
DATASETS.register(DataEntry("cifar10", lambda seed, root: _torchvision("cifar10", root), "image",
                            ("cifar-10-python.tar.gz  (or its unpacked folder cifar-10-batches-py/ with "
                             "data_batch_1..5, test_batch, batches.meta)",), _cifar10_present))
DATASETS.register(DataEntry("cosine", lambda seed, root: _cosine(seed), "regression"))  # the shrinking paper's toys
DATASETS.register(DataEntry("diamond", lambda seed, root: _shape("diamond", seed), "points"))
DATASETS.register(DataEntry("random_shape", lambda seed, root: _shape("random_shape", seed), "points"))
