"""The result cache: every trained model is stored under the hash of its full config.

Layout (``$PRUNEKIT_CACHE``, default ``data/models``)::

    <key>/model.pt     {"state_dict": ..., "checkpoints": {epoch: state_dict}}   (torch.save)
    <key>/meta.json    config, history, library versions, device, sha256 of model.pt   (written last)
    <key>/progress.pt  training state of an interrupted run (removed when done)
    <kind>/<hash>/     a result derived from trained models (a pruning cycle, a retrained network):
                       tensors.pt and meta.json, as above (:func:`cached_result`)

Both files are written atomically (temp file, then ``os.replace``); ``meta.json`` is written after ``model.pt``, so an
entry without it is incomplete. ``meta.json`` holds the SHA-256 of ``model.pt`` and, last, ``meta_sha256``: the SHA-256
of everything else in it (config, history, a derived result's table row), so a changed digit anywhere in the entry is
found. Loading verifies both checksums and the stored config and uses ``torch.load(weights_only=True)``; a corrupt or
mismatching entry is recomputed with a warning that names it, never used. An entry written before ``meta_sha256``
existed (no ``format`` in its ``meta.json``) cannot show that its table row or history is the one computed: it is
recomputed too, with a warning, never sealed as it stands. A write that fails (a full disk) raises an ``OSError``
naming the entry and its folder and leaves nothing of the entry behind.

The same tensors give the same bytes (serialised in memory, where ``torch.save`` names its archive "archive", not
after a random temporary file). One process computes an entry at a time: a per-entry lock (``prunekit.core.locks``:
``filelock``, ``.<name>.lock`` beside the entry, removed by its holder) makes a second process wait, saying for
which entry and whom after a few seconds, and then load what the first stored. Temporary files
of a writer that was killed are removed the next time the entry is used (``prunekit.core.paths.remove_dead_temporaries``).

A model trained on CUDA (``TrainConfig.device``) has its own entry (the device type is part of the key) and is loaded
onto the CPU on a machine without a GPU (``map_location``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import platform
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from .config import TrainConfig
from .data import Dataset, as_split, load_dataset, train_part
from .device import available_here, dataset_to, device_type, model_device, modes_restored, resolve_device
from .locks import entry_lock
from .models import build_model
from .prunable import logits_model
from .initialisation import hold_masks, plain_state_dict, sparse_at_init
from .paths import atomic_write, cache_dir, remove_dead_temporaries
from .checks import file_name
from .checks import path as checked_path
from .train import fit_model, fit_settings, train

__all__ = ["Run", "train_or_load", "fit", "build", "initial_model", "finished_run", "train_or_load_locked",
           "store_run", "entry_path", "versions", "sha256_file", "atomic_write_bytes",
           "tensor_bytes", "seal_meta", "write_entry", "read_entry_meta", "entry_lock", "cached_result", "result_key", "data_digest",
           "state_digest", "output_digest", "fit_or_load"]


@dataclass
class Run:
    """A trained model with its config, history (one row per epoch) and checkpoints."""

    model: nn.Module
    config: TrainConfig
    history: pd.DataFrame
    checkpoints: dict[int, dict]
    key: str
    path: Path | None = None
    cached: bool = False  # True when loaded from the cache rather than trained now

    def dataset(self) -> Dataset:
        """The run's data set, on the model's device."""
        return dataset_to(load_dataset(self.config.data), model_device(self.model))

    def model_at(self, epoch: int) -> nn.Module:
        """A fresh model holding the weights saved at ``epoch`` (one of ``config.checkpoints``)."""
        if isinstance(epoch, bool) or epoch not in self.checkpoints:
            raise ValueError(f"epoch={epoch} has no checkpoint; available: {sorted(self.checkpoints)}")
        model = build(self.config).to(model_device(self.model))
        model.load_state_dict(self.checkpoints[epoch])
        return model


def versions() -> dict[str, str]:
    import numpy
    import torchvision  # imported here, not at the top: only this report needs it, and it is slow to import

    return {"torch": torch.__version__, "torchvision": torchvision.__version__, "numpy": numpy.__version__,
            "python": platform.python_version()}


def describe_device(device: str) -> dict[str, str]:
    """The device a model was trained on, as stored with it: its type and, on CUDA, the GPU's name."""
    if device_type(device) == "cuda":
        return {"type": "cuda", "name": torch.cuda.get_device_name(resolve_device(device))}
    return {"type": "cpu", "name": platform.processor() or platform.machine()}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def tensor_bytes(obj) -> bytes:
    """``torch.save(obj)`` serialised in memory: the same tensors always give the same bytes."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _meta_digest(meta: dict) -> str:
    """SHA-256 of the canonical JSON of ``meta`` without its own ``meta_sha256``."""
    body = {k: v for k, v in meta.items() if k != "meta_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


META_FORMAT = 2  # entries with meta_sha256; an entry without "format" was written before it (and is recomputed)


def seal_meta(meta: dict) -> dict:
    """``meta`` with ``format`` and, over everything else, ``meta_sha256`` (what :func:`read_entry_meta` checks)."""
    meta = {k: v for k, v in meta.items() if k != "meta_sha256"}
    meta["format"] = META_FORMAT
    return {**meta, "meta_sha256": _meta_digest(meta)}


def write_entry(path: Path, payload: str, data: bytes, meta: dict) -> dict:
    """Store an entry: ``data`` as ``path/payload``, then ``meta.json`` with the payload's SHA-256 and, written last,
    ``meta_sha256`` over the rest; both atomically. Returns the stored meta. When a write fails (a full disk), the
    ``OSError`` names the entry and its folder, and nothing of the entry is left (neither file, nor the folder if it
    was empty)."""
    path, payload = checked_path("path", path), file_name("payload", payload)
    try:
        path.mkdir(parents=True, exist_ok=True)
        (path / "meta.json").unlink(missing_ok=True)
        atomic_write_bytes(path / payload, data)
        meta = seal_meta({**meta, "sha256": hashlib.sha256(data).hexdigest()})
        atomic_write_bytes(path / "meta.json", json.dumps(meta, indent=1).encode())
    except OSError as err:
        for name in ("meta.json", payload):  # no payload without its meta.json: remove what was half written
            (path / name).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            path.rmdir()  # only when nothing else (a training's progress.pt, say) is in it
        raise OSError(err.errno, f"{err.strerror or err}: the cache entry {path.name} could not be stored in "
                                 f"{path.parent} (nothing of it was kept; free space there, or set PRUNEKIT_CACHE "
                                 f"to another folder)", str(path)) from err
    return meta


def read_entry_meta(path: Path, payload: str) -> dict:
    """The verified ``meta.json`` of the entry at ``path``: a ValueError when it does not match its own checksum or
    ``payload``'s, or when it was written before ``meta_sha256`` existed (nothing then shows that its values are the
    ones computed: the entry is recomputed, never sealed as it stands)."""
    path, payload = checked_path("path", path), file_name("payload", payload)
    if not (path / payload).is_file():
        raise ValueError(f"payload={payload!r} is not a file of the entry {path}")
    meta = json.loads((path / "meta.json").read_text())
    if not isinstance(meta, dict):
        raise ValueError("meta.json is not a JSON object")
    if "format" not in meta:
        raise ValueError("meta.json was written before checksums (it has no 'format'): its values cannot be verified")
    if sha256_file(path / payload) != meta.get("sha256"):
        raise ValueError(f"checksum mismatch in {payload}")
    if meta.get("meta_sha256") != _meta_digest(meta):
        raise ValueError("meta.json does not match its checksum (its table row, history or config was changed)")
    return meta


def entry_path(cfg: TrainConfig, root: str | os.PathLike | None = None) -> Path:
    """Where ``cfg``'s trained model is stored: ``<root or the cache>/<cfg.key()>``."""
    if not isinstance(cfg, TrainConfig):
        raise ValueError(f"cfg must be a TrainConfig, got {type(cfg).__name__}")
    return (checked_path("root", root) if root is not None else cache_dir()) / cfg.key()


def build(cfg: TrainConfig, ds: Dataset | None = None) -> nn.Module:
    """The untrained model of ``cfg``, initialised deterministically from ``cfg.seed``."""
    ds = ds or load_dataset(cfg.data)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return build_model(cfg.model, ds.input_shape, ds.num_classes)


def fit(cfg: TrainConfig, quiet: bool | None = None, resume_path: Path | None = None) -> Run:
    """Train ``cfg`` now, without the cache, on ``cfg.device`` (initialised on the CPU, so every device starts from
    the same weights). With ``cfg.model.init_density < 1`` the initialised network is pruned at random
    (``prunekit.core.initialisation.sparse_at_init``, seeded with ``cfg.seed``) and trained with that mask held; the model and
    its checkpoints come back as plain weights with the pruned ones at 0. A config with a ``stack`` trains its whole
    stack (``prunekit.core.many.fit_stack``) and returns its own network."""
    if cfg.stack:
        from .many import fit_stack

        run = fit_stack(cfg, quiet=quiet)[cfg.stack.index(cfg.seed)]
        if isinstance(run, Exception):
            raise run
        return run
    device = resolve_device(cfg.device, "TrainConfig.device")
    if resume_path is not None:
        resume_path = checked_path("resume_path", resume_path)
    ds = load_dataset(cfg.data)
    model = initial_model(cfg, ds, device)
    history, checkpoints = train(model, ds, cfg, quiet=quiet, resume_path=resume_path)  # moves ds to the device
    return finished_run(cfg, ds, device, model, history, checkpoints)


def initial_model(cfg: TrainConfig, ds: Dataset, device: torch.device) -> nn.Module:
    """The model of ``cfg`` as :func:`fit` starts training it: built from its seed on the CPU, pruned at random and its mask held
    when ``init_density < 1``, on ``device``."""
    model = build(cfg, ds)
    sparse = cfg.model.init_density < 1.0
    if sparse:
        masks = sparse_at_init(model, cfg.model.init_density, torch.Generator().manual_seed(cfg.seed))
    model = model.to(device)
    if sparse:
        hold_masks(model, masks)  # held: w = w_orig * mask in every forward
    return model


def finished_run(cfg: TrainConfig, ds: Dataset, device, model: nn.Module, history, checkpoints) -> Run:
    """The Run of a trained :func:`initial_model`: a mask held in training folded into plain weights."""
    if cfg.model.init_density < 1.0:  # fold the mask into plain weights, in the parameter order of a fresh model
        state = plain_state_dict(model.state_dict())
        model = build(cfg, ds).to(device)
        model.load_state_dict(state)
        checkpoints = {epoch: plain_state_dict(sd) for epoch, sd in checkpoints.items()}
    return Run(model, cfg, history, checkpoints, cfg.key())


def _load_device(cfg: TrainConfig) -> torch.device:
    """Where a cached model is loaded: its own device when this machine has it, else the CPU (``map_location``)."""
    if not available_here(cfg.device):
        return torch.device("cpu")
    return resolve_device(cfg.device, "TrainConfig.device")


def _load(cfg: TrainConfig, path: Path) -> Run:
    meta = read_entry_meta(path, "model.pt")
    if TrainConfig.from_dict(meta.get("config", {})).key() != cfg.key():
        raise ValueError("stored config differs from the requested one")
    device = _load_device(cfg)
    blob = torch.load(path / "model.pt", weights_only=True, map_location=device)
    model = build(cfg).to(device)
    model.load_state_dict(blob["state_dict"])
    checkpoints = {int(k): v for k, v in blob["checkpoints"].items()}
    return Run(model, cfg, pd.DataFrame(meta["history"]), checkpoints, cfg.key(), path, cached=True)


def train_or_load(cfg: TrainConfig, quiet: bool | None = None, root: str | os.PathLike | None = None) -> Run:
    """The trained model of ``cfg``: from the cache at once if it is there and intact, else trained and stored.
    Many at once, trained together where they share a step: ``prunekit.core.many.train_or_load_many``."""
    if not isinstance(cfg, TrainConfig):
        raise ValueError(f"train_or_load needs a TrainConfig, got {type(cfg).__name__}")
    if cfg.stack:  # the stack trains whole, every member's entry stored (prunekit.core.many)
        from .many import train_or_load_many

        return train_or_load_many([cfg], quiet=quiet, root=root)[0]
    path = entry_path(cfg, root)
    can_train = available_here(cfg.device)
    if can_train:
        resolve_device(cfg.device, "TrainConfig.device")  # a bad GPU index fails here, before the entry is touched
    if not can_train and not (path / "meta.json").exists():
        raise ValueError(f"TrainConfig.device={cfg.device!r}: this model is not in the cache and torch sees no CUDA "
                         "device here to train it; use device='auto' or 'cpu'")
    with entry_lock(path):  # a second process waits here, then loads what the first one stored
        remove_dead_temporaries(path)
        return train_or_load_locked(cfg, path, quiet, can_train)


def train_or_load_locked(cfg: TrainConfig, path: Path, quiet: bool | None, can_train: bool) -> Run:
    """:func:`train_or_load`'s work once the entry's lock is held: load the entry, else train and store it (a
    corrupt entry is retrained with a warning when ``can_train``)."""
    path = checked_path("path", path)
    if (path / "meta.json").exists():
        try:
            return _load(cfg, path)
        except Exception as err:
            if not can_train:  # keep the GPU-trained entry: it cannot be retrained on this machine
                raise ValueError(f"cache entry {path} cannot be loaded ({err}) and torch sees no CUDA device here "
                                 "to retrain it") from err
            warnings.warn(f"cache entry {path} is corrupt or does not match its config ({err}); retraining",
                          stacklevel=3)
    path.mkdir(parents=True, exist_ok=True)
    (path / "meta.json").unlink(missing_ok=True)
    return store_run(fit(cfg, quiet=quiet, resume_path=path / "progress.pt"), path)


def store_run(run: Run, path: Path) -> Run:
    """``run`` written as the entry at ``path`` (model.pt, then meta.json); the caller holds its lock."""
    if not isinstance(run, Run):
        raise ValueError(f"run must be a Run (prunekit.core.store), got a {type(run).__name__}")
    path = checked_path("path", path)
    cfg = run.config
    state = {"state_dict": run.model.state_dict(), "checkpoints": run.checkpoints}
    write_entry(path, "model.pt", tensor_bytes(state),
                {"config": cfg.to_dict(), "key": cfg.key(), "history": run.history.to_dict(orient="records"),
                 "versions": versions(), "device": describe_device(cfg.device)})
    run.path = path
    return run


def data_digest(split) -> str:
    """SHA-256 (hex) of a split's inputs and targets (their dtype, shape and bytes): names the data a derived result
    was trained on in its spec, so the same model retrained on other data is another entry."""
    h = hashlib.sha256()
    for t in (split.x, split.y):
        _hash_tensor(h, t)
    return h.hexdigest()


def _hash_tensor(h, t: torch.Tensor, label: str = "") -> None:
    """Feed ``label``, a tensor's dtype and shape, then its bytes (on the CPU, in memory order) into ``h``."""
    t = t.detach().cpu().contiguous()
    h.update(f"{label}{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")


def state_digest(model) -> str:
    """SHA-256 (hex) of a model's ``state_dict`` (every entry's name, dtype, shape and bytes, in name order): names
    the weights a derived result was computed from, so another model under the same config is another entry."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        _hash_tensor(h, t, name)
    return h.hexdigest()


PROBE_SAMPLES = 8  # the first training samples on which fit_or_load's key records the initial model's outputs


def output_digest(model: nn.Module, x: torch.Tensor, output_fn=None) -> str:
    """SHA-256 (hex) of ``model``'s outputs on ``x`` (eval mode, no gradient, one CPU thread, rounded to 5 decimals so
    that a kernel's summation order does not change it): names what a forward pass computes beyond its weights, such
    as a plain attribute (``pool="mean"`` or ``"last"``) that ``repr`` does not show. The model's modes are kept."""
    h = hashlib.sha256()
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with modes_restored(model), torch.no_grad():
            model.eval()
            out = logits_model(model, output_fn)(x.to(model_device(model)))
    finally:
        torch.set_num_threads(threads)

    def feed(o, label=""):
        if isinstance(o, torch.Tensor):
            t = o.detach().cpu()
            _hash_tensor(h, (t.double().mul(1e5).round() + 0.0) if t.is_floating_point() else t, label)
        elif isinstance(o, dict):
            for k in sorted(o, key=str):
                feed(o[k], f"{label}.{k}")
        elif isinstance(o, (tuple, list)):
            for i, item in enumerate(o):
                feed(item, f"{label}[{i}]")
        else:
            h.update(f"{label}{type(o).__name__}".encode())

    feed(out)
    return h.hexdigest()


def result_key(spec: dict) -> str:
    """SHA-256 (hex) of the canonical JSON of ``spec``: the name of a derived result's entry."""
    try:
        blob = json.dumps(spec, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"spec must be plain JSON (str, int, finite float, bool, None, lists, dicts): {err}") from err
    return hashlib.sha256(blob.encode()).hexdigest()


def cached_result(kind: str, spec: dict, compute: Callable[[], tuple[dict[str, torch.Tensor], dict]],
                  root: str | os.PathLike | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """A result derived from trained models, computed once per ``spec`` and kept beside them: ``(tensors, info)``.

    ``spec`` (plain JSON) must name everything the result depends on, the parent model's ``TrainConfig.key()``
    first; ``compute()`` returns the tensors (a ``{name: tensor}`` dict, stored on the CPU) and ``info`` (a JSON dict:
    a table row, say). Stored in ``<cache>/<kind>/<result_key(spec)>/`` as ``tensors.pt`` then ``meta.json`` (spec,
    info, sha256 of ``tensors.pt``), each written atomically; a later call with the same spec loads them
    (``torch.load(weights_only=True)``, checksum and spec checked) instead of computing. A corrupt or mismatching
    entry is recomputed, with a warning. A chain of results (one per pruning cycle) resumes at its first missing link.
    """
    if not isinstance(kind, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", kind):
        raise ValueError(f"kind={kind!r} must be a lower-case name (letters, digits, '_'), e.g. 'cycles'")
    if not isinstance(spec, dict):
        raise ValueError(f"spec must be a dict, got {type(spec).__name__}")
    path = (checked_path("root", root) if root is not None else cache_dir()) / kind / result_key(spec)
    with entry_lock(path):  # a second process waits here, then loads what the first one stored
        remove_dead_temporaries(path)
        return _cached_result_locked(kind, spec, compute, path)


def _cached_result_locked(kind: str, spec: dict, compute, path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    if (path / "meta.json").exists():
        try:
            meta = read_entry_meta(path, "tensors.pt")
            if meta.get("spec") != json.loads(json.dumps(spec)):
                raise ValueError("stored spec differs from the requested one")
            tensors = torch.load(path / "tensors.pt", weights_only=True, map_location="cpu")
            return tensors, meta["info"]
        except Exception as err:  # unreadable JSON, missing file, bad checksum: recompute, never use it
            warnings.warn(f"cached result {path} is corrupt or does not match its spec ({err}); recomputing",
                          stacklevel=3)
    tensors, info = compute()
    if not isinstance(tensors, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                for k, v in tensors.items()):
        raise ValueError("compute() must return ({name: tensor}, info)")
    tensors = {k: v.detach().cpu().clone() for k, v in tensors.items()}
    info = json.loads(json.dumps(info, allow_nan=True))  # plain JSON now, as it will be when loaded
    write_entry(path, "tensors.pt", tensor_bytes(tensors), {"kind": kind, "spec": spec, "info": info,
                                                             "versions": versions()})
    return tensors, info


def _callable_name(name: str, f) -> str | None:
    """A name for a factory that is the same in every process, for a cache key: ``module.qualname`` of a
    module-level function or class, or of a ``functools.partial`` of one whose arguments are plain JSON; anything
    else (a lambda, a local function, a bound method, a callable object) is refused, since its name would not say
    what it does."""
    import functools

    if f is None:
        return None
    if isinstance(f, functools.partial):
        try:
            args = json.dumps([list(f.args), f.keywords], sort_keys=True, allow_nan=False)
        except (TypeError, ValueError):
            raise ValueError(f"{name}={f!r}: a functools.partial in a cache key needs plain arguments (numbers, "
                             "strings, lists); train with prunekit.core.train.fit_model without the cache") from None
        return f"partial({_callable_name(name, f.func)}, {args})"
    qual = getattr(f, "__qualname__", None)
    plain = (isinstance(f, type) or type(f).__name__ in ("function", "builtin_function_or_method")) and qual
    if not plain or "<lambda>" in qual or "<locals>" in qual:
        raise ValueError(f"{name}={f!r} cannot name a cache entry (only a module-level function or class, or a "
                         f"functools.partial of one, says the same thing in every process): e.g. "
                         f"functools.partial(torch.optim.Adam, lr=1e-3); or train with prunekit.core.train.fit_model "
                         f"without the cache")
    return f"{getattr(f, '__module__', '?')}.{qual}"


def _source_digest(cls: type) -> str | None:
    """SHA-256 of the file that defines ``cls`` (None when it has none): an edited ``forward`` is another model."""
    import inspect

    try:
        return sha256_file(Path(inspect.getsourcefile(cls)))
    except (TypeError, OSError):
        return None


def fit_or_load(model: nn.Module, data, *, lrs: Sequence[float] | None = None, optimizer=None,
                epochs: int | None = None,
                batch_size: int = 128, seed: int = 0, momentum: float = 0.9, weight_decay: float = 0.0,
                loss: str = "cross_entropy", output_fn=None, root: str | os.PathLike | None = None) -> pd.DataFrame:
    """Train the reader's ``model`` in place on its own schedule (``prunekit.core.train.fit_model``), once: the
    trained weights are stored under a key of everything they depend on, and a later call with the same (model,
    data, schedule) loads them instead (``cached_result``: atomic, checksummed, ``weights_only=True``).

    The key holds the model's class, ``repr(model)`` (its layers and their settings, such as a dropout rate), a
    digest of the file that defines the class, which parameters are trainable, a digest of the initial weights and
    buffers, a digest of the initial model's outputs on the first training samples (:func:`output_digest`: a plain
    attribute that changes the forward pass, such as ``pool="mean"`` or ``"last"``, gives another entry), a digest
    of the data, the schedule, seed and device type.

    data: as ``fit_model`` takes it, but gathered once into one in-memory Split (``prunekit.core.data.as_split``; a
    prunekit Dataset gives its train split) so that its digest names it: batches of ``batch_size`` then come in an
    order drawn from ``seed``, and a DataLoader's augmentation is drawn once. A DataLoader that shuffles is refused
    (its order, and so the digest, would change from run to run): give it without ``shuffle=True``, or train with
    ``fit_model``. ``optimizer`` and ``output_fn`` must be module-level functions or classes, or ``functools.partial``
    objects of them with plain arguments (their names are part of the key). On an error (a diverging run, a store
    that cannot write the trained weights) the model is left with its initial weights. Returns the training history
    (``history.attrs["cache_key"]`` names the entry).
    """
    import torch.utils.data as tud

    if isinstance(data, tud.DataLoader) and isinstance(data.sampler, tud.RandomSampler):
        raise ValueError("data is a DataLoader with shuffle=True: fit_or_load gathers it once and shuffles it from "
                         "seed, so give it without shuffle=True (or train with prunekit.core.train.fit_model, which "
                         "iterates the loader as it is, without the cache)")
    settings = fit_settings(lrs=lrs, optimizer=optimizer, epochs=epochs, batch_size=batch_size, seed=seed,
                            momentum=momentum, weight_decay=weight_decay, loss=loss, output_fn=output_fn)
    if root is not None:
        checked_path("root", root)  # every check before any digest or compute
    split = as_split(train_part(data), name="data")
    spec = {"model": f"{type(model).__module__}.{type(model).__qualname__}", "repr": repr(model),
            "source": _source_digest(type(model)),
            "trainable": [n for n, p in model.named_parameters() if p.requires_grad], "init": state_digest(model),
            "outputs": output_digest(model, split.x[:PROBE_SAMPLES], output_fn),
            "data": data_digest(split), "lrs": settings["lrs"], "epochs": settings["epochs"],
            "optimizer": _callable_name("optimizer", optimizer), "output_fn": _callable_name("output_fn", output_fn),
            "batch_size": settings["batch_size"], "seed": settings["seed"], "momentum": settings["momentum"],
            "weight_decay": settings["weight_decay"], "loss": settings["loss"], "device": model_device(model).type}

    def compute():
        history = fit_model(model, split, lrs=lrs, optimizer=optimizer, epochs=epochs, batch_size=batch_size,
                            seed=seed, momentum=momentum, weight_decay=weight_decay, loss=loss, output_fn=output_fn)
        return dict(model.state_dict()), {"history": history.to_dict(orient="records")}

    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    try:
        tensors, info = cached_result("fit_own", spec, compute, root=root)
    except BaseException:  # the store could not keep the trained weights (a full disk): the model is left as given
        model.load_state_dict(initial)
        raise
    model.load_state_dict(tensors)
    model.eval()
    history = pd.DataFrame(info["history"])
    history.attrs["cache_key"] = result_key(spec)
    return history
