"""Many configs trained or loaded at once, through the model cache (``prunekit.core.store``).

* :func:`train_or_load_many`: what :func:`prunekit.core.store.train_or_load` does for each config, with the configs
  to train grouped into one loop where they share a step (``prunekit.core.group``: bitwise their lone runs, so
  stored under their own keys) and every stack (``TrainConfig.stack``, ``prunekit.core.stacked``) trained whole.
* :func:`fit_many`: a group trained now, without the cache; :func:`fit_stack`: a stack trained now.
* :func:`stacked_configs`: configs rewritten to train in stacks of their seeds (opt-in: other numbers, other keys).
"""

from __future__ import annotations

import contextlib
import os
from typing import Sequence

from .checks import count, distinct, path as checked_path
from .config import TrainConfig, train_configs
from .data import load_dataset
from .device import available_here, resolve_device
from .paths import remove_dead_temporaries
from .store import (Run, build, entry_path, entry_lock, finished_run, initial_model, store_run, train_or_load,
                    train_or_load_locked)

__all__ = ["fit_many", "fit_stack", "train_or_load_many", "stacked_configs"]


def fit_many(cfgs: list[TrainConfig], quiet: bool | None = None, progress_paths=None) -> list[Run | Exception]:
    """:func:`prunekit.core.store.fit` of every config of a group that shares a training step
    (``prunekit.core.group.step_key``), trained together (``prunekit.core.group.train_group``): each network
    initialised, masked and folded as ``fit`` does, its weights and history bitwise those of ``fit``. Returns a Run
    per config, or the error that stopped its training (a diverging loss). ``cfgs``: each config once."""
    from .group import train_group

    cfgs = distinct("cfgs", train_configs("cfgs", cfgs))
    device = resolve_device(cfgs[0].device, "TrainConfig.device")
    ds = load_dataset(cfgs[0].data)
    models = [initial_model(c, ds, device) for c in cfgs]
    outcomes = train_group(models, ds, cfgs, quiet=quiet, progress_paths=progress_paths)
    return [out if isinstance(out, Exception) else finished_run(c, ds, device, m, *out)
            for c, m, out in zip(cfgs, models, outcomes)]


def fit_stack(cfg: TrainConfig, quiet: bool | None = None) -> list[Run | Exception]:
    """The whole stack of ``cfg`` (``TrainConfig.stack``) trained now, without the cache
    (``prunekit.core.stacked.train_stack``): a Run per member, in stack order (or the error that stopped it)."""
    from .stacked import members, train_stack

    cfgs = members(cfg)
    device = resolve_device(cfg.device, "TrainConfig.device")
    ds = load_dataset(cfg.data)
    models = [build(c, ds).to(device) for c in cfgs]
    out = []
    for c, result in zip(cfgs, train_stack(models, ds, cfgs, quiet=quiet)):
        if isinstance(result, Exception):
            out.append(result)
            continue
        history, checkpoints, state = result
        model = build(c, ds).to(device)
        model.load_state_dict(state)
        out.append(Run(model, c, history, checkpoints, c.key()))
    return out


def stacked_configs(configs: Sequence[TrainConfig], max_stack: int = 32) -> list[TrainConfig]:
    """``configs`` with the fully connected ones (``init_density=1``) that differ only in their seed put in stacks
    (``TrainConfig.stack``, at most ``max_stack`` seeds each, in seed order); the others as they are. Opt-in: a
    stacked model is another entry than its lone run, with other numbers (``prunekit.core.stacked``)."""
    from .registry import MODELS

    configs = train_configs("configs", configs, nonempty=False)
    max_stack = count("max_stack", max_stack)
    seeds: dict[str, list[int]] = {}
    stackable = [MODELS[c.model.arch].kind == "fc" and c.model.init_density == 1 and not c.stack for c in configs]
    for c, ok in zip(configs, stackable):
        if ok:
            seeds.setdefault(c.replace(seed=0).key(), []).append(c.seed)
    out = []
    for c, ok in zip(configs, stackable):
        if not ok:
            out.append(c)
            continue
        group = sorted(set(seeds[c.replace(seed=0).key()]))
        chunk = [group[i:i + max_stack] for i in range(0, len(group), max_stack) if c.seed in group[i:i + max_stack]]
        out.append(c.replace(stack=tuple(chunk[0])))
    return out


def train_or_load_many(configs, quiet: bool | None = None, root: str | os.PathLike | None = None,
                       max_group: int = 32, skip_failures: bool = False, only_where_faster: bool = True
                       ) -> list[Run | None]:
    """``prunekit.core.store.train_or_load`` of every config, the ones to train trained together.

    Each config's entry is loaded when it is in the cache. The others are grouped by
    ``prunekit.core.group.group_indices`` (the same data, batch size, epochs, optimizer settings, schedule, loss and
    device; the model, seed, checkpoints and early stopping may differ; at most ``max_group`` networks) and trained
    by :func:`fit_many`, bitwise their lone runs: so each is stored under its config's own key, and a later
    ``train_or_load`` loads it (and the other way round). A config alone in its group, or one whose interrupted
    training left progress to resume, is trained by ``train_or_load``. A config with a ``stack`` has its stack
    trained whole (:func:`fit_stack`) and every member stored. The entries of a group or stack are locked while it
    trains. only_where_faster: on the CPU, a network whose step is too costly for a group to pay
    (``prunekit.core.group.pays_to_group``) trains alone (the same numbers either way); False groups every one.

    Returns the Runs in the order of ``configs`` (a duplicate config gets the same Run). A network whose training
    diverged is reported after every other one is stored: its error is raised or, with ``skip_failures=True``, its
    place holds None.
    """
    from .group import group_indices, pays_to_group

    configs = train_configs("configs", configs, nonempty=False)
    if root is not None:
        checked_path("root", root)
    max_group = count("max_group", max_group)
    first: dict[str, TrainConfig] = {}
    for c in configs:
        first.setdefault(c.key(), c)
    stacked = [c for c in first.values() if c.stack]
    plain = [c for c in first.values() if not c.stack]
    groups = group_indices(plain, max_group)  # checks max_group before anything is touched
    if only_where_faster:  # the others alone, each a group of its own
        groups = [[i] for g in groups for i in g if not pays_to_group(plain[i])] + [
            kept for g in groups if (kept := [i for i in g if pays_to_group(plain[i])])]
    for c in first.values():
        if available_here(c.device):
            resolve_device(c.device, "TrainConfig.device")
    runs: dict[str, Run | None] = {}
    errors: dict[str, Exception] = {}
    stacks = {}
    for c in stacked:  # one entry per stack: its first member's config names it
        stacks.setdefault(c.replace(seed=c.stack[0]).key(), c)
    for c in stacks.values():
        _stack_or_load(c, quiet, root, runs, errors)
    for group in groups:
        cfgs = [plain[i] for i in group]
        if len(cfgs) == 1 or not available_here(cfgs[0].device):
            for c in cfgs:
                _one(c, quiet, root, runs, errors)
            continue
        _group_or_load(cfgs, quiet, root, runs, errors)
    if errors and not skip_failures:
        key, err = next(iter(errors.items()))
        raise type(err)(f"{len(errors)} of {len(first)} configs failed to train (every other one is stored); "
                        f"the first, {key[:12]}: {err}") from err
    return [runs[c.key()] for c in configs]


@contextlib.contextmanager
def _locked(cfgs: list[TrainConfig], root):
    """Every entry of ``cfgs`` locked (in key order, the same in every process: no two callers wait for each other),
    dead temporaries removed; yields ``{key: path}``."""
    paths = {c.key(): entry_path(c, root) for c in cfgs}
    with contextlib.ExitStack() as locks:
        for key in sorted(paths):
            locks.enter_context(entry_lock(paths[key]))
            remove_dead_temporaries(paths[key])
        yield paths


def _group_or_load(cfgs, quiet, root, runs: dict, errors: dict) -> None:
    with _locked(cfgs, root) as paths:
        pending = []
        for c in cfgs:
            path = paths[c.key()]
            if (path / "meta.json").exists() or (path / "progress.pt").exists():
                runs[c.key()] = train_or_load_locked(c, path, quiet, True)  # load, or resume alone
            else:
                pending.append(c)
        for c in pending:
            paths[c.key()].mkdir(parents=True, exist_ok=True)
        outcomes = fit_many(pending, quiet, [paths[c.key()] / "progress.pt" for c in pending]) if pending else []
        for c, out in zip(pending, outcomes):
            if isinstance(out, Exception):
                errors[c.key()], runs[c.key()] = out, None
            else:
                runs[c.key()] = store_run(out, paths[c.key()])


def _stack_or_load(cfg: TrainConfig, quiet, root, runs: dict, errors: dict) -> None:
    """Load every member of ``cfg``'s stack, or train the stack and store the members that are not stored."""
    from .stacked import members

    cfgs = members(cfg)
    with _locked(cfgs, root) as paths:
        loaded = {}
        for c in cfgs:
            if (paths[c.key()] / "meta.json").exists():
                try:
                    loaded[c.key()] = train_or_load_locked(c, paths[c.key()], quiet, False)
                except ValueError:  # corrupt: the stack trains again and the entry is rewritten
                    pass
        if len(loaded) == len(cfgs):
            runs.update(loaded)
            return
        if not available_here(cfg.device):
            raise ValueError(f"TrainConfig.device={cfg.device!r}: this stack is not in the cache and torch sees no "
                             "CUDA device here to train it; use device='auto' or 'cpu'")
        for c, out in zip(cfgs, fit_stack(cfg, quiet=quiet)):
            if c.key() in loaded:
                runs[c.key()] = loaded[c.key()]
            elif isinstance(out, Exception):
                errors[c.key()], runs[c.key()] = out, None
            else:
                runs[c.key()] = store_run(out, paths[c.key()])


def _one(cfg: TrainConfig, quiet, root, runs: dict, errors: dict) -> None:
    try:
        runs[cfg.key()] = train_or_load(cfg, quiet=quiet, root=root)
    except FloatingPointError as err:
        errors[cfg.key()], runs[cfg.key()] = err, None
