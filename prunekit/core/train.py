"""A fast, deterministic trainer over in-memory tensors.

Speed comes from the data path (whole data set in memory, batches by indexing, no per-sample transforms) and from
fused optimizer steps; determinism from seeding the model's init and the shuffle generator with ``cfg.seed``: the same
config and seed give bitwise-identical weights on the CPU (with the same number of threads).

Losses:
- ``cross_entropy``: softmax cross-entropy on the logits.
- ``sse``: sigmoid outputs with the squared error of Wolfe et al. (2017), ``E = 1/2 sum_k (sigma(z_k) - t_k)^2`` per
  sample (one-hot targets for classification), averaged over the samples of a batch.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .checks import choice, choice_message, count, number, sequence
from .checks import path as checked_path
from .config import TrainConfig
from .data import Dataset, Split, as_split, iterate_batches, train_part
from .device import dataset_to, deterministic, model_device, modes_restored
from .graphs import GroupStep, graphs_enabled
from .paths import atomic_write
from .runtime import adapt_threads, fewest_threads_since

__all__ = ["make_loss", "make_optimizer", "make_scheduler", "schedule_lrs", "evaluate", "predict", "train",
           "quiet_default", "stopped_improving", "fit_settings", "epoch_row", "diverged", "save_progress",
           "correct_count", "fit_model"]


def quiet_default() -> bool:
    """Progress bars are off when ``PRUNEKIT_QUIET=1``."""
    return os.environ.get("PRUNEKIT_QUIET", "0") not in ("", "0", "false", "False")


def make_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Batch-mean loss ``fn(outputs, targets)``; ``targets`` are class indices or, for regression, float values."""
    if name == "cross_entropy":
        return F.cross_entropy
    if name == "sse":
        def sse(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            if t.dtype == torch.long:
                t = F.one_hot(t, z.shape[1]).to(z.dtype)
            return 0.5 * (torch.sigmoid(z) - t.reshape(z.shape)).pow(2).sum(1).mean()
        return sse
    raise ValueError(choice_message("loss", name, ("cross_entropy", "sse")))


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD (with optional momentum), Adam or Adagrad, with the config's lr and weight decay (fused kernels)."""
    params = [p for p in params if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, fused=True)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    if cfg.optimizer == "adagrad":
        return torch.optim.Adagrad(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    raise ValueError(choice_message("optimizer", cfg.optimizer, ("sgd", "adam", "adagrad")))


def make_scheduler(optimizer, cfg: TrainConfig):
    """Per-epoch schedule: none, cosine annealing over ``epochs``, or x0.1 steps at 50% and 75% of ``epochs``."""
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    if cfg.schedule == "step":
        marks = sorted({max(1, int(cfg.epochs * 0.5)), max(1, int(cfg.epochs * 0.75))})
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=marks, gamma=0.1)
    return None


def schedule_lrs(cfg: TrainConfig) -> list[float]:
    """The learning rate of each epoch ``1..cfg.epochs`` of a run with ``cfg`` (entry ``e - 1`` is epoch ``e``'s), read
    off the same torch scheduler :func:`train` steps once per epoch."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
    scheduler = make_scheduler(optimizer, cfg)
    lrs = []
    for _ in range(cfg.epochs):
        lrs.append(float(optimizer.param_groups[0]["lr"]))
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    return lrs


def correct_count(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Number of rows whose argmax is the label, as a tensor on the outputs' device (0 for regression targets)."""
    if y.dtype != torch.long:
        return out.new_zeros((), dtype=torch.long)
    return (out.argmax(1) == y).sum()


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode for the block; every submodule's previous train/eval flag is restored on exit."""
    with modes_restored(model):
        model.eval()
        yield model


@contextlib.contextmanager
def state_restored(model: nn.Module) -> Iterator[nn.Module]:
    """Save the model's state (weights, buffers, train/eval mode) once; restore it bitwise on exit."""
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    with modes_restored(model):
        try:
            yield model
        finally:
            model.load_state_dict(saved)


@torch.inference_mode()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Model outputs for ``x`` in eval mode (the model's previous mode is restored), on the model's device (``x`` is
    moved there batch by batch if it is elsewhere)."""
    batch_size = count("batch_size", batch_size)
    device = model_device(model)
    outputs = []
    with eval_mode(model):
        for i in range(0, x.shape[0], batch_size):
            adapt_threads()
            outputs.append(model(x[i:i + batch_size].to(device)))
    return torch.cat(outputs)


def evaluate(model: nn.Module, split: Split, loss: str = "cross_entropy", batch_size: int = 4096) -> tuple[float, float]:
    """``(mean loss, accuracy)`` of ``model`` on ``split``; accuracy is a fraction in [0, 1] (NaN for regression)."""
    loss_fn = make_loss(choice("loss", loss, ("cross_entropy", "sse")))
    out = predict(model, split.x, count("batch_size", batch_size))
    with torch.inference_mode():
        y = split.y.to(out.device)
        value = float(loss_fn(out, y))
        acc = float(correct_count(out, y)) / len(split) if y.dtype == torch.long else math.nan
    return value, acc


def stopped_improving(losses: Sequence[float], patience: int, min_improvement: float = 0.01) -> bool:
    """Whether training should stop after the last of ``losses`` (one training loss per epoch so far): an epoch
    improves when its loss is below ``(1 - min_improvement)`` times the best loss before it, and training stops
    once the last ``patience`` epochs have not improved (the first epoch always improves)."""
    number("patience", patience, low=1, integer=True)
    number("min_improvement", min_improvement, low=0.0, high=1.0, high_open=True)
    losses = sequence("losses", losses, nonempty=False, item=lambda n, v: number(n, v))
    best, since = math.inf, 0
    for loss in losses:
        if loss < (1.0 - min_improvement) * best:
            best, since = loss, 0
        else:
            since += 1
    return len(losses) > 0 and since >= patience


def _atomic_save(obj, path: Path) -> None:
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def save_progress(path: Path, model: nn.Module, optimizer_state: dict, scheduler, gen: torch.Generator,
                  rows: list[dict], checkpoints: dict, epoch: int) -> None:
    """Write the training state after ``epoch`` to ``path`` atomically, in the form :func:`train` resumes from
    (``rows``: the history so far, one row per epoch trained)."""
    epoch = count("epoch", epoch)
    rows = sequence("rows", rows)
    if len(rows) != epoch:
        raise ValueError(f"rows=[{len(rows)} rows] does not fit epoch={epoch}: the history has one row per epoch "
                         "trained")
    _atomic_save({"model": model.state_dict(), "optimizer": optimizer_state,
                  "scheduler": scheduler.state_dict() if scheduler is not None else {},
                  "generator": gen.get_state(), "history": rows, "checkpoints": checkpoints, "epoch": epoch}, path)


def epoch_row(model: nn.Module, ds: Dataset, cfg: TrainConfig, epoch: int, lr: float, total_loss: torch.Tensor,
              total_correct: torch.Tensor) -> dict:
    """A history row of :func:`train` without its timing: ``epoch, lr, train_loss, train_accuracy`` (the epoch's
    summed batch losses x batch sizes and correct predictions over the training samples), then ``val_*`` and
    ``test_*`` of the model as it is now (:func:`evaluate`)."""
    count("epoch", epoch)
    number("lr", lr, low=0.0)
    n = len(ds.train)
    row = {"epoch": epoch, "lr": lr, "train_loss": float(total_loss) / n,
           "train_accuracy": float(total_correct) / n if ds.task == "classification" else math.nan}
    for name, split in (("val", ds.val), ("test", ds.test)):
        if split is not None:
            row[f"{name}_loss"], row[f"{name}_accuracy"] = evaluate(model, split, cfg.loss)
    return row


def diverged(row: dict, cfg: TrainConfig) -> FloatingPointError:
    """The error of a run whose training loss is not finite at ``row``'s epoch."""
    return FloatingPointError(f"training diverged at epoch {row['epoch']} (loss {row['train_loss']}); "
                              f"lower lr={cfg.lr}")


def train(model: nn.Module, ds: Dataset, cfg: TrainConfig, quiet: bool | None = None,
          resume_path: str | os.PathLike | None = None,
          callback: Callable[[int, nn.Module], None] | None = None,
          lrs: Sequence[float] | None = None) -> tuple[pd.DataFrame, dict[int, dict]]:
    """Train ``model`` in place on ``ds.train`` as ``cfg`` says; returns ``(history, checkpoints)``.

    history: one row per epoch with ``epoch, lr, train_loss, train_accuracy`` (running means over the epoch's
    batches), ``test_loss, test_accuracy`` (and ``val_*`` when the data set has a validation split), ``seconds``, and
    ``threads``: the fewest CPU threads the epoch ran on (fewer than usual when other work took cores,
    ``prunekit.core.runtime``).
    checkpoints: ``{epoch: state_dict}`` for the epochs in ``cfg.checkpoints`` (0 = before the first step).
    resume_path: if given, training state is saved there after each epoch (atomically) and a run that was
    interrupted resumes from it, bitwise as if never stopped. The file is removed when training completes.
    callback: called as ``callback(epoch, model)`` after each epoch (for trajectories).
    lrs: an explicit learning rate for each epoch (``lrs[e - 1]`` for epoch ``e``; ``cfg.epochs`` of them) in place of
      ``cfg.lr`` and ``cfg.schedule`` (retraining replays part of another run's schedule, ``prunekit.pruning.retrain``).

    The model is trained with whatever forward hooks it carries, so a ``torch.nn.utils.prune`` mask is held.
    It is trained where it is (``prunekit.core.device.model_device``): the data set is moved there once, the epoch's
    running loss and accuracy stay there (one synchronisation per epoch), and on CUDA the kernels are deterministic
    (``prunekit.core.device.deterministic``). The shuffle generator is the CPU's, so every device sees the same batches.
    On CUDA the step is captured in a CUDA graph and replayed for every full batch (``prunekit.core.graphs``: the
    same kernels, without Python's overhead; ``PRUNEKIT_CUDA_GRAPHS=0`` turns it off); the CPU runs the loop here.
    """
    if lrs is not None:
        lrs = sequence("lrs", lrs, item=lambda n, v: float(number(n, v, low=0.0)))
        if len(lrs) != cfg.epochs:
            raise ValueError(f"lrs={lrs!r} must hold {cfg.epochs} learning rates (one per epoch of cfg.epochs)")
    if resume_path is not None:
        resume_path = checked_path("resume_path", resume_path)
    device = model_device(model)
    ds = dataset_to(ds, device)
    with deterministic(device):
        return _train(model, ds, cfg, quiet, resume_path, callback, lrs, device)


def _train(model, ds, cfg, quiet, resume_path, callback, lrs, device):
    quiet = quiet_default() if quiet is None else quiet
    loss_fn = make_loss(cfg.loss)
    optimizer = make_optimizer(model.parameters(), cfg)
    scheduler = make_scheduler(optimizer, cfg) if lrs is None else None
    if lrs is not None:
        lrs = [float(v) for v in lrs]
        if len(lrs) != cfg.epochs or not all(math.isfinite(v) and v >= 0 for v in lrs):
            raise ValueError(f"lrs must hold {cfg.epochs} finite learning rates >= 0 (one per epoch), got {lrs}")
    gen = torch.Generator().manual_seed(cfg.seed)
    rows: list[dict] = []
    checkpoints: dict[int, dict] = {}
    start = 1
    resume_path = Path(resume_path) if resume_path is not None else None
    if resume_path is not None and resume_path.exists():
        try:
            state = torch.load(resume_path, weights_only=True, map_location=device)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(state["scheduler"])
            gen.set_state(state["generator"].cpu())
            rows, checkpoints, start = list(state["history"]), dict(state["checkpoints"]), int(state["epoch"]) + 1
        except Exception as err:  # a corrupt progress file is not used
            import warnings
            warnings.warn(f"ignoring unreadable training progress {resume_path}: {err}")
            rows, checkpoints, start = [], {}, 1
    if 0 in cfg.checkpoints and start == 1:
        checkpoints[0] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    from tqdm.auto import tqdm

    n_batches = math.ceil(len(ds.train) / cfg.batch_size)
    captured = None  # on CUDA: the step captured in a graph (prunekit.core.graphs); the CPU keeps the loop below
    if graphs_enabled(device):
        captured = GroupStep([model], optimizer, loss_fn, cfg.batch_size, device)
    epochs = tqdm(range(start, cfg.epochs + 1), desc="epochs", disable=quiet, leave=False,
                  initial=start - 1, total=cfg.epochs)
    for epoch in epochs:
        t0 = time.perf_counter()
        fewest_threads_since(mark=True)
        model.train()
        if lrs is not None:
            for group in optimizer.param_groups:
                group["lr"] = lrs[epoch - 1]
        lr = optimizer.param_groups[0]["lr"]
        total_loss = torch.zeros((), device=device)
        total_correct = torch.zeros((), dtype=torch.long, device=device)
        batches = iterate_batches(ds.train, cfg.batch_size, shuffle=True, generator=gen)
        if captured is not None:  # the same order, drawn by the same generator call as iterate_batches draws it
            perm = torch.randperm(len(ds.train), generator=gen).to(device)
            total_loss, total_correct = captured.run_epoch(ds.train, {0: perm}, [0])[0]
            batches = ()
        elif not quiet and n_batches > 200:
            batches = tqdm(batches, total=n_batches, desc=f"epoch {epoch}", leave=False)
        for xb, yb in batches:
            out = model(xb)
            loss = loss_fn(out, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                total_loss += loss.detach() * xb.shape[0]
                total_correct += correct_count(out, yb)
        if scheduler is not None:
            scheduler.step()
        row = epoch_row(model, ds, cfg, epoch, lr, total_loss, total_correct)
        row["seconds"] = time.perf_counter() - t0
        row["threads"] = fewest_threads_since()  # CPU threads: fewer than the usual when the machine was busy
        if not math.isfinite(row["train_loss"]):
            raise diverged(row, cfg)
        rows.append(row)
        if epoch in cfg.checkpoints:
            checkpoints[epoch] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if callback is not None:
            callback(epoch, model)
        if not quiet:
            epochs.set_postfix(loss=f"{row['train_loss']:.3f}", test_acc=f"{row.get('test_accuracy', math.nan):.3f}")
        stop = cfg.patience > 0 and stopped_improving([r["train_loss"] for r in rows], cfg.patience,
                                                      cfg.min_improvement)
        if resume_path is not None and epoch < cfg.epochs and not stop:
            save_progress(resume_path, model, optimizer.state_dict(), scheduler, gen, rows, checkpoints, epoch)
        if stop:
            break
    if captured is not None:
        captured.close()
    if resume_path is not None:
        resume_path.unlink(missing_ok=True)
    return pd.DataFrame(rows), checkpoints


# ------------------------------------------------------------------------------------------- the reader's own schedule
def _schedule(lrs, optimizer, epochs) -> tuple[list[float] | None, int]:
    """``(lrs as floats or None, epochs)`` of a reader's schedule, checked before any compute."""
    if lrs is None and optimizer is None:
        raise ValueError("give the schedule: lrs= (a learning rate per epoch, SGD with momentum) or optimizer= (a "
                         "factory params -> torch.optim.Optimizer, e.g. functools.partial(torch.optim.Adam, lr=1e-3)) "
                         "with epochs=")
    if optimizer is not None and not callable(optimizer):
        raise ValueError(f"optimizer must be a factory params -> torch.optim.Optimizer (e.g. "
                         f"functools.partial(torch.optim.Adam, lr=1e-3)); got {type(optimizer).__name__}")
    if lrs is not None:
        lrs = sequence("lrs", lrs, item=lambda n, v: float(number(n, v, low=0.0)))  # one per epoch, not empty
        if epochs is not None and int(number("epochs", epochs, low=1, integer=True)) != len(lrs):
            raise ValueError(f"epochs={epochs} but lrs holds {len(lrs)} learning rates (one per epoch); give one")
        return lrs, len(lrs)
    if epochs is None:
        raise ValueError("optimizer= needs epochs= (or lrs=, one learning rate per epoch)")
    return None, int(number("epochs", epochs, low=1, integer=True))


def fit_settings(*, lrs: Sequence[float] | None = None, optimizer=None, epochs: int | None = None,
                 batch_size: int = 128, seed: int = 0, momentum: float = 0.9, weight_decay: float = 0.0,
                 loss: str = "cross_entropy", output_fn=None) -> dict:
    """The reader's schedule and options of :func:`fit_model` (and ``prunekit.core.store.fit_or_load``) checked before
    any compute: ``{"lrs", "epochs", "batch_size", "seed", "momentum", "weight_decay", "loss"}``, each a
    ``ValueError`` naming it when it is not one of the allowed values (``batch_size`` >= 1, ``seed`` >= 0,
    ``momentum`` in [0, 1), ``weight_decay`` >= 0, ``loss`` one of "cross_entropy", "sse")."""
    lrs, epochs = _schedule(lrs, optimizer, epochs)
    if output_fn is not None and not callable(output_fn):
        raise ValueError(f"output_fn must map the model's output to its logits; got {type(output_fn).__name__}")
    return {"lrs": lrs, "epochs": epochs, "batch_size": count("batch_size", batch_size),
            "seed": count("seed", seed, low=0),
            "momentum": float(number("momentum", momentum, low=0.0, high=1.0, high_open=True)),
            "weight_decay": float(number("weight_decay", weight_decay, low=0.0)),
            "loss": choice("loss", loss, ("cross_entropy", "sse"))}


def fit_model(model: nn.Module, data, *, lrs: Sequence[float] | None = None,
              optimizer: Callable[..., torch.optim.Optimizer] | None = None, epochs: int | None = None,
              batch_size: int = 128, seed: int = 0, momentum: float = 0.9, weight_decay: float = 0.0,
              loss: str = "cross_entropy", output_fn: Callable | None = None,
              callback: Callable[[int, nn.Module], None] | None = None, quiet: bool | None = None) -> pd.DataFrame:
    """Train any model in place on the reader's own schedule, without a ``TrainConfig``; returns one row per epoch
    (``epoch, lr, train_loss, train_accuracy, seconds``).

    data: ``(x, y)`` tensors or a Split (mini-batches of ``batch_size`` in an order drawn from ``seed``), a prunekit
      Dataset (its train split) or any iterable of ``(x, y)`` batches such as a DataLoader (iterated once per epoch
      as it comes, with its own order).
    The schedule: ``lrs`` (one learning rate per epoch; SGD with ``momentum`` and ``weight_decay`` unless
    ``optimizer`` is given) and/or ``optimizer`` (a factory ``params -> torch.optim.Optimizer``, run for ``epochs``;
    with ``lrs`` too, each epoch's rate is written into its groups). output_fn: the logits of a model whose forward
    returns a dict or a tuple. Masks held by ``torch.nn.utils.prune`` (``prunekit.pruning.masks.to_torch_prune``)
    stay applied through every step. The model is trained where it is and left in eval mode; on an error (a
    diverging run, an interrupt) its initial weights are restored before the error is raised.
    """
    settings = fit_settings(lrs=lrs, optimizer=optimizer, epochs=epochs, batch_size=batch_size, seed=seed,
                            momentum=momentum, weight_decay=weight_decay, loss=loss, output_fn=output_fn)
    lrs, epochs, size = settings["lrs"], settings["epochs"], settings["batch_size"]  # every check before any compute
    loss_fn = make_loss(loss)
    data = train_part(data)
    if isinstance(data, Split) or (isinstance(data, (tuple, list)) and len(data) == 2
                                   and all(isinstance(t, torch.Tensor) for t in data)):
        split, loader = as_split(data, name="data"), None
    else:
        if hasattr(data, "__next__"):
            raise ValueError("data is an iterator, which can be read only once: give a DataLoader or a list of "
                             "(x, y) batches, read again each epoch")
        first = as_split(data, name="data", max_samples=1)  # the form is checked on its first batch
        split, loader = None, data
    device = model_device(model)
    if split is not None:
        split = Split(split.x.to(device), split.y.to(device))  # moved once
    _check_logits(model, split if split is not None else first, output_fn, device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = optimizer(trainable) if optimizer is not None else torch.optim.SGD(
        trainable, lr=lrs[0], momentum=momentum, weight_decay=weight_decay)
    if not isinstance(opt, torch.optim.Optimizer):
        raise ValueError(f"optimizer(params) must return a torch.optim.Optimizer; got {type(opt).__name__}")
    gen = torch.Generator().manual_seed(settings["seed"])
    quiet = quiet_default() if quiet is None else quiet
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    try:
        return _fit_epochs(model, opt, split, loader, lrs, epochs, size, gen, loss_fn, output_fn, callback, quiet,
                           device)
    except BaseException:  # a diverging run, an interrupt: the model is left as it was given
        model.load_state_dict(initial)
        raise


def _check_logits(model: nn.Module, split: Split, output_fn, device) -> None:
    """Before the first step: the logits of two samples (one forward pass in eval mode, no gradient, batch-norm
    statistics untouched) are a tensor with a class (dimension 1) for every label of ``split``, else a ``ValueError``
    naming ``output_fn`` (or the model when there is none), not torch's "Target 3 is out of bounds" mid-training."""
    with modes_restored(model), torch.no_grad():
        model.eval()
        out = model(split.x[:2].to(device))
        out = out if output_fn is None else output_fn(out)
    who = "output_fn" if output_fn is not None else "model"
    what = f"output_fn={getattr(output_fn, '__name__', output_fn)!r}" if output_fn is not None else "the model"
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"{what} must give a logits tensor; it gives a {type(out).__name__}"
                         + (" (pass output_fn= to pick it from a dict or a tuple)" if who == "model" else ""))
    if (split.y.dtype == torch.long and split.y.numel() and out.dim() >= 2
            and int(split.y.max()) >= out.shape[1]):
        raise ValueError(f"{what} gives {out.shape[1]} logits per sample, but the labels go up to "
                         f"{int(split.y.max())}: it needs at least {int(split.y.max()) + 1} (one per class)")


def _fit_epochs(model, opt, split, loader, lrs, epochs, size, gen, loss_fn, output_fn, callback, quiet, device):
    from tqdm.auto import tqdm

    rows = []
    for epoch in tqdm(range(1, epochs + 1), desc="epochs", disable=quiet, leave=False):
        t0 = time.perf_counter()
        if lrs is not None:
            for group in opt.param_groups:
                group["lr"] = lrs[epoch - 1]
        model.train()
        total = correct = n = 0.0
        batches = iterate_batches(split, size, shuffle=True, generator=gen) if loader is None else loader
        for batch in batches:
            xb, yb = batch[0].to(device), batch[1].to(device)
            out = model(xb)
            out = out if output_fn is None else output_fn(out)
            value = loss_fn(out, yb)
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
            total += float(value.detach()) * xb.shape[0]
            correct += float(correct_count(out.detach(), yb))
            n += xb.shape[0]
        if not math.isfinite(total):
            raise FloatingPointError(f"training diverged at epoch {epoch} (loss {total / max(n, 1)}); lower the "
                                     f"learning rate")
        rows.append({"epoch": epoch, "lr": float(opt.param_groups[0]["lr"]), "train_loss": total / n,
                     "train_accuracy": correct / n, "seconds": time.perf_counter() - t0})
        if callback is not None:
            callback(epoch, model)
    model.eval()
    return pd.DataFrame(rows)
