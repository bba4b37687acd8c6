"""Every public function refuses a bad number, sequence, string or name by name, before any model is evaluated.

The check walks the public API, not a list: every function and class in ``__all__`` of every prunekit module (and the
public methods of those classes), and, for each parameter whose annotation or default says number, sequence, string
or path, calls it with a table of bad values (:data:`BAD`: NaN, +-inf, negative, zero, a float where an integer is
meant, a bool, a wrong type, an empty sequence, duplicates, a string that is no allowed value, a name with ``..``) on
a small valid setup (a tiny MLP on the embedded digits). Each call must raise a ``ValueError`` whose message names the
parameter (``<name>=...``), and none may evaluate a model first: a global forward pre-hook and
``prunekit.core.train.predict``/``evaluate`` raise :class:`Evaluated` while a bad value is tried. Parameters that take
a value of the table on purpose are listed in :data:`ACCEPTS` with the reason; functions that cannot be set up here,
in :data:`NOT_SET_UP` with the reason. Before the bad values, each function is called once with its valid example
(it must pass its checks), so that a refusal is never the refusal of a broken setup.

``test_the_check_covers_the_public_api`` prints how many (function, parameter) pairs were checked and how many are
exempt, and fails if the walk finds fewer functions than it should.
"""

from __future__ import annotations

import importlib
import inspect
import math
import pkgutil
import re
import reprlib
from pathlib import Path

import pytest
import torch

import prunekit

NAN, INF = math.nan, math.inf


class Evaluated(BaseException):
    """A model was evaluated (a forward pass) while a bad value was being tried: the check came after compute."""


# ---------------------------------------------------------------------------------------------------- the public API
def _public_modules():
    for info in pkgutil.walk_packages(prunekit.__path__, "prunekit."):
        if info.name.endswith("__main__") or any(part.startswith("_") for part in info.name.split(".")):
            continue
        yield importlib.import_module(info.name)


def public_callables() -> dict[str, object]:
    """``{"module.function": f, "module.Class": cls, "module.Class.method": function}`` over every ``__all__``
    (a class method bound to its class; an instance method as its function, called on an example instance)."""
    out = {}
    for module in _public_modules():
        short = module.__name__.removeprefix("prunekit.")
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if getattr(obj, "__module__", None) != module.__name__:
                continue  # re-exported: checked where it is defined
            if inspect.isfunction(obj):
                out[f"{short}.{name}"] = obj
            elif inspect.isclass(obj) and not issubclass(obj, BaseException):
                out[f"{short}.{name}"] = obj
                for attr, member in vars(obj).items():
                    if attr.startswith("_") or attr in ("forward", "extra_repr"):
                        continue
                    if isinstance(member, (classmethod, staticmethod)):
                        out[f"{short}.{name}.{attr}"] = getattr(obj, attr)
                    elif inspect.isfunction(member):
                        out[f"{short}.{name}.{attr}"] = member
    return out


def _split_union(annotation: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in annotation:
        depth += ch in "[("
        depth -= ch in "])"
        if ch == "|" and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return [p for p in [*parts, cur.strip()] if p and p != "None"]


def kinds_of(p: inspect.Parameter) -> set[str]:
    """What a parameter takes, from its annotation (``int``, ``float``, ``Sequence[...]``, ``str``, ``PathLike``)
    or, unannotated, its default: a subset of {"integer", "number", "sequence", "text", "path"}."""
    ann = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "")
    kinds = set()
    for part in _split_union(ann if p.annotation is not inspect.Parameter.empty else ""):
        head = part.split("[", 1)[0].strip()
        kinds |= {"int": {"integer"}, "float": {"number"}, "str": {"text"}, "Sequence": {"sequence"},
                  "Iterable": {"sequence"}, "list": {"sequence"}, "tuple": {"sequence"}, "Path": {"path"},
                  "os.PathLike": {"path"}}.get(head, set())
    d = p.default
    if not kinds and d is not inspect.Parameter.empty and d is not None and not isinstance(d, bool):
        kinds |= ({"integer"} if isinstance(d, int) else {"number"} if isinstance(d, float) else
                  {"sequence"} if isinstance(d, (list, tuple)) else {"text"} if isinstance(d, str) else set())
    if {"integer", "number"} <= kinds:
        kinds.discard("integer")
    return kinds


# ------------------------------------------------------------------------------------------------- the bad values
def bad_values(kinds: set[str], valid) -> list[tuple[str, object]]:
    """``(label, value)`` of the table for a parameter of ``kinds`` whose valid example is ``valid``."""
    out = []
    if kinds & {"integer", "number"}:
        out += [("nan", NAN), ("inf", INF), ("-inf", -INF), ("negative", -1), ("zero", 0), ("bool", True)]
        if "integer" in kinds:
            out.append(("fraction", 1.5))
        if not kinds & {"text", "sequence"}:
            out += [("text", "1")]
    if "sequence" in kinds:
        if "text" not in kinds:
            out.append(("text", "ab"))
        if not kinds & {"integer", "number"}:
            out.append(("number", 1))
        out.append(("empty", []))
        items = list(valid) if isinstance(valid, (list, tuple)) else []
        if items and not isinstance(valid, str):
            out.append(("duplicates", [items[0], *items]))
    dotdot = "../escaped"
    if "path" in kinds and isinstance(valid, (str, Path)) and str(valid):
        where = Path(valid)  # the valid path itself, through ".." (a path the caller chooses may hold one)
        dotdot = str(where.parent / ".." / where.parent.name / where.name)
    if "text" in kinds:
        if not kinds & {"integer", "number", "sequence"}:
            out.append(("number", 1))
        out += [("empty", ""), ("unknown", "no-such-value"), ("dotdot", dotdot)]
    if "path" in kinds and "text" not in kinds:
        out.append(("dotdot", dotdot))
    return out


# ------------------------------------------------------------------------------------------------ a small valid setup
class Setup:
    """The tiny valid objects the examples are built from (built once per module)."""

    def __init__(self, tmp):
        from prunekit.core.config import DataConfig, ModelConfig, TrainConfig
        from prunekit.core.data import Split, load_dataset
        from prunekit.core.models import build_model
        from prunekit.core.prunable import prunable_parameters
        from prunekit.pruning.retrain import magnitude_masks
        from prunekit.pruning.select import weight_masks

        torch.manual_seed(0)
        self.tmp = tmp
        self.ds = load_dataset("digits")
        self.x, self.y = self.ds.test.x[:64], self.ds.test.y[:64]
        self.split = Split(self.x, self.y)
        self.cfg = TrainConfig(data=DataConfig("digits"), model=ModelConfig("mlp", hidden=(8,)), epochs=2,
                               checkpoints=(0, 1))
        self.model = build_model(self.cfg.model, self.ds.input_shape, self.ds.num_classes).eval()
        self.params = prunable_parameters(self.model)
        self.mask_list = weight_masks(self.params, 50)
        self.masks = magnitude_masks(self.model, 50)
        self.conv_cfg = self.cfg.replace(arch="conv", hidden=None, width_mult=0.25)
        self.conv = build_model(self.conv_cfg.model, self.ds.input_shape, self.ds.num_classes).eval()
        self.checkpoints = {e: {k: v.clone() for k, v in self.model.state_dict().items()} for e in (0, 1)}
        from prunekit.pruning.cycles import next_masks

        self.conv_masks = next_masks(self.conv, None, "weight", 0.5)
        self.state = {k: v.clone() for k, v in self.model.state_dict().items()}


def _checkpoint(s) -> str:
    path = s.tmp / "model.pt"
    torch.save(s.model.state_dict(), path)
    return str(path)


def _density_table():
    """A width sweep's table as ``prunekit.studies.s000_density.DensityPoint`` rows: 2 archs x 3 widths x 2 seeds."""
    import pandas as pd

    rows = []
    for arch in ("mlp", "conv"):
        for width in (0.5, 1.0, 2.0):
            for seed in (0, 1):
                for optimizer in ("adam", "sgd"):
                    params = int(1000 * width)
                    rows.append({"dataset": "digits", "arch": arch, "optimizer": optimizer, "init": "default",
                                 "width_mult": width, "seed": seed, "params": params,
                                 "core_params": int(params * (0.3 + 0.01 * seed)), "density": 0.3 + 0.01 * seed,
                                 "dense_accuracy": 0.9, "hoyer_trained": 0.2, "hoyer_init": 0.1})
    return pd.DataFrame(rows)


class Tables:
    """Result tables made by the package's own functions on the tiny setup (outside the armed calls)."""

    def __init__(self, s):
        import pandas as pd

        from prunekit.measures import saliency as SA
        from prunekit.measures import surface as SU
        from prunekit.measures.curves import inference_speedups, layer_sparsity_table, pruning_curve
        from prunekit.measures.utility import random_ablation

        self.density = _density_table()
        curve = pruning_curve(s.model, s.split, ks=[0, 50, 90], params=s.params, methods=["weight", "unit"],
                              scopes=["global"])
        self.curve = pd.concat([curve.assign(setup="blog", dataset="digits", seed=seed) for seed in (0, 1)],
                               ignore_index=True)
        self.layers = layer_sparsity_table(s.params, [0, 25], methods=["unit"], scopes=["global"])
        self.timing = inference_speedups(s.model, s.x, params=s.params, ks=[50], forms=("masked_dense",), repeat=1,
                                         warmup=0).assign(batch_size=64)
        net = SA.from_model(s.model, loss="cross_entropy")
        self.net = net
        runs = [SA.serial_prune(net, s.x, s.y, e, a, max_removed=3).to_frame(setup="digits_mlp", seed=0)
                for e in ("brute_force", "second_order", "first_order") for a in ("I", "II")]
        self.saliency_curves = pd.concat(runs, ignore_index=True)
        from prunekit.studies.s001_shrinking import curve_gap

        self.gaps = curve_gap(self.saliency_curves, 0.05)
        self.accuracy_001 = pd.DataFrame({"setup": ["cosine_10_10", "diamond_50_50"], "seed": [0, 0],
                                          "train_loss": [0.04, 0.1]})
        self.gate = pd.DataFrame({"setup": ["digits_mlp"], "seed": [1], "why": ["not trained"]})
        self.ablations = random_ablation(s.model, s.x, s.y, ratios=[0.1, 0.2], n_subsets=4, warn_at_chance=False)
        w0 = SU.flatten(s.model)
        self.path = SU.linear_path(s.model, {"test": s.split}, w_a=w0, w_b=w0 * 0.5, n=3)
        self.barriers = SU.barrier_table(self.path).assign(method="finetune")
        w1, w2 = w0.clone(), w0.clone()
        w1[0] += 1.0
        w2[1] += 1.0
        self.plane = SU.Plane.through(w0, w1, w2)
        self.anchors = SU.plane_surface(s.model, {"test": s.split}, plane=self.plane, n=2)[1]


def _fake_run(s, conv: bool = False):
    from prunekit.core.store import Run

    if conv:
        return Run(s.conv, s.conv_cfg, None, {}, s.conv_cfg.key())
    return Run(s.model, s.cfg, None, s.checkpoints, s.cfg.key())


def _entry_written(s) -> dict:
    from prunekit.core.store import write_entry

    write_entry(s.tmp / "entry-read", "tensors.pt", b"x", {})
    return dict(path=s.tmp / "entry-read", payload="tensors.pt")


def _file(s):
    path = s.tmp / "file.bin"
    path.write_bytes(b"x")
    return path


def _mlps(s, n: int) -> list:
    """``n`` fresh copies of the tiny MLP (for the functions that train networks together in place)."""
    import copy

    return [copy.deepcopy(s.model).train() for _ in range(n)]


def _optimizer(params):
    return torch.optim.SGD(list(params), lr=0.1)


def _cycles_experiment(s):
    """A ``prunekit.studies.s002_basins.CyclesExperiment`` of one seed and one retrained network (all cycle_lines
    reads: the pretrained run and each run's ``retrained``)."""
    import types

    import pandas as pd

    from prunekit.studies.s002_basins import CyclesExperiment

    pruned, retrained = _moved(s, 1.0), _moved(s, -1.0)
    return CyclesExperiment(s.cfg, {0: _fake_run(s)}, {0: {("weight", "finetune"): types.SimpleNamespace(
        pruned=pruned, retrained=retrained)}}, {0: {}}, pd.DataFrame(), pd.DataFrame())


def _moved(s, step: float):
    """A copy of the tiny MLP with one weight moved by ``step`` (a third point off the line of two others)."""
    import copy

    out = copy.deepcopy(s.model)
    with torch.no_grad():
        next(out.parameters()).view(-1)[int(step > 0)] += step
    return out


def _oneshot(s) -> dict:
    """``prunekit.studies.s002_basins.oneshot_surface``'s arguments: the tiny MLP, a pruned and a retrained copy."""
    import types

    from prunekit.pruning.retrain import pruned_model

    retrained = types.SimpleNamespace(model=_moved(s, -1.0), trajectory={})
    return dict(pretrained=s.model, pruned=pruned_model(s.model, s.masks), masks=s.masks,
                retrained={"finetune": retrained}, splits={"test": s.split}, grid=2, path_points=2)


def _claims_written() -> dict:
    """A claims table and its run's parameters in this test's results folder: what gather_claims gathers."""
    import json

    from prunekit.report.claims import claim, claims_frame
    from prunekit.report.tables import results_dir, save_table

    save_table(claims_frame([claim("s", "c", "r", "m", True, "rule")]), "quick", "05_claims")
    (results_dir("quick") / "05_weight_utility.params.json").write_text(json.dumps(
        {"profile": "quick", "preset": True, "commit": "abc", "changed": []}))
    return dict(profile="quick")


def examples(s, t) -> dict:
    """``{qualname: valid keyword arguments}`` (``"self"``: the instance of a method) for the callables whose
    arguments cannot be told from their names (:func:`by_name`)."""

    import matplotlib
    import numpy as np
    import pandas as pd

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from prunekit.core.config import TrainConfig
    from prunekit.core.data import Split
    from prunekit.core.registry import MODELS
    from prunekit.core.stacked import StackedMLP
    from prunekit.core.store import Run
    from prunekit.report.claims import ClaimSpec, Quote, claim, claims_frame
    from prunekit.measures import surface as SU
    from prunekit.measures.saliency import PruneResult
    from prunekit.pruning.masks import UnitMasks
    from prunekit.report.intervals import Interval, mean_interval
    from prunekit.report.results import Results
    from prunekit.studies import s000_density, s002_basins, s002_utility, s003_sparsify, your_model

    flat = SU.flatten(s.model)
    setup = your_model.Setup(s.model, s.ds.train, s.split, "digits", s.params, {"weights": 1, "model_parameters": 2,
                                                                              "share": 0.5, "tensors": []}, None,
                             {"loss": 1.0, "accuracy": 0.5}, {"lrs": [0.05], "optimizer": "SGD(momentum=0.9)",
                                                            "batch_size": 64, "seed": 0, "origin": "trained here"},
                             preset=your_model.preset("quick"))
    tuned = your_model.FineTuned(s.model, s.model, s.masks, pd.DataFrame({"epoch": [1]}), 0.5, 0.05, "SGD")
    interval = mean_interval([0.1, 0.2, 0.3])
    spec = ClaimSpec("s", "c", Quote("a sentence", "Sec. 1"), "r", "rule")
    stack = StackedMLP(_mlps(s, 2))
    pair = [s.cfg, s.cfg.replace(seed=1)]
    layer = s.params[0][0]
    return {
        # core.checks
        "core.checks.choice": dict(name="x", value="a", allowed=("a", "b")),
        "core.checks.choice_message": dict(name="x", value="c", allowed=("a", "b")),
        "core.checks.number": dict(name="x", value=1.0),
        "core.checks.count": dict(name="x", value=3, low=1, high=5),
        "core.checks.fraction": dict(name="x", value=0.5),
        "core.checks.percentage": dict(name="x", value=50),
        "core.checks.sequence": dict(name="x", value=[1]),
        "core.checks.mapping": dict(name="x", value={"a": 1}),
        "core.checks.generator": dict(value=None, seed=0),
        "core.checks.pruned_count": dict(k=50, n=10),
        "core.checks.file_name": dict(name="x", value="a.csv"),
        "core.checks.text": dict(name="x", value="a"),
        "core.checks.path": dict(name="x", value="a"),
        "core.checks.distinct": dict(name="x", values=[1, 2]),
        "core.checks.columns": dict(name="x", value=["ratio"], df=t.ablations),
        # core.config
        "core.config.DataConfig": dict(name="digits", subset=100, resize=8, classes=(0, 1), val_fraction=0.1),
        "core.config.DataConfig.one_vs_all": dict(classes=None),  # the two relabellings exclude each other
        "core.config.ModelConfig": dict(arch="mlp", hidden=(8, 4), activation="relu"),
        "core.config.TrainConfig": dict(checkpoints=(0, 1), epochs=2),
        "core.config.check_profile": dict(profile="quick"),
        "core.config.train_configs": dict(name="configs", values=pair),
        # core.data
        "core.data.load_dataset": dict(cfg="digits"),
        "core.data.as_split": dict(data=s.split, max_samples=10),
        "core.data.random_subset": dict(split=s.split, n=10),
        "core.data.iterate_batches": dict(split=s.split, batch_size=16),
        "core.data.available_datasets": dict(names=["digits", "cosine"]),
        "core.data.files_present": dict(name="digits"),
        "core.data.as_xy": dict(data=s.split),
        "core.data.expected_files": dict(name="mnist"),
        "core.data.inside_shape": dict(points=torch.zeros(3, 2), name="diamond"),
        "core.data.shape_radius": dict(angle=torch.zeros(3), seed=0),
        "core.data.class_labels": dict(y=s.y, num_classes=10),
        # core.graphs, core.group, core.many, core.stacked (networks trained together)
        "core.graphs.GroupStep": dict(models=[s.model], optimizer=_optimizer(s.model.parameters()),
                                      loss_fn=torch.nn.functional.cross_entropy, size=16, device="cpu"),
        "core.group.group_indices": dict(configs=pair),
        "core.group.split_optimizer_state": dict(state=_optimizer(s.model.parameters()).state_dict(), counts=[2, 2]),
        "core.group.train_group": dict(models=_mlps(s, 2), ds=s.ds, cfgs=pair),
        "core.many.fit_many": dict(cfgs=pair),
        "core.many.stacked_configs": dict(configs=pair),
        "core.many.train_or_load_many": dict(configs=[s.cfg], root=s.tmp / "many"),
        "core.stacked.StackedMLP": dict(models=_mlps(s, 2)),
        "core.stacked.StackedMLP.state_dict_of": dict(self=stack, k=1),
        "core.stacked.stack_epoch": dict(stack=stack, optimizer=_optimizer(stack.parameters()), split=s.split,
                                         perms=torch.stack([torch.randperm(64), torch.randperm(64)]), size=16,
                                         loss="cross_entropy"),
        "core.stacked.train_stack": dict(models=_mlps(s, 2), ds=s.ds, cfgs=pair),
        "core.sweep.training_groups": dict(configs=pair),
        # core.weights
        **{f"core.weights.{f}": dict(module=layer, name="weight")
           for f in ("is_parametrized", "is_pruned", "is_weight", "weight_key", "read_weight", "storage")},
        "core.weights.users": dict(model=s.model, module=layer, name="weight"),
        # core.device
        "core.device.device_name": dict(device="cpu"),
        "core.device.resolve_device": dict(device="cpu"),
        "core.device.device_type": dict(device="cpu"),
        "core.device.dataset_to": dict(ds=s.ds, device="cpu"),
        "core.device.deterministic": dict(device="cpu"),
        "core.device.available_here": dict(device="cpu"),
        # core.estimate
        "core.estimate.training_rate": dict(cfg=s.cfg, input_shape=(1, 8, 8), num_classes=10, steps=1),
        "core.estimate.expect": dict(pretraining=[s.cfg], retraining=[(s.cfg, 1)]),
        "core.estimate.duration": dict(seconds=90.0),
        # core.locks
        "core.locks.lock_file": dict(path=s.tmp / "entry"),
        "core.locks.lock_holder": dict(path=s.tmp / "entry"),
        # core.models
        "core.models.MLP": dict(in_features=64, hidden=(8,), out_features=10),
        "core.models.ConvNet": dict(input_shape=(1, 8, 8), num_classes=10, width_mult=0.25),
        "core.models.ResNet": dict(input_shape=(1, 8, 8), num_classes=10, width_mult=0.25),
        "core.models.build_model": dict(cfg=s.cfg.model, input_shape=(1, 8, 8), num_classes=10),
        "core.initialisation.init_weights": dict(model=s.model, scheme="he_normal"),
        "core.initialisation.sparse_at_init": dict(model=s.model, share=0.5),
        # core.registry
        "core.registry.Registry": dict(what="thing", provider="prunekit.core.models"),
        "core.registry.Registry.entry": dict(self=MODELS, name="mlp"),
        "core.registry.ModelEntry": dict(name="x", build=lambda *a, **k: None, kind="fc", hidden=(8,)),
        "core.registry.DataEntry": dict(name="x", load=lambda seed, root: None, kind="image"),
        # core.runtime
        "core.runtime.thread_ceiling": dict(n=1),
        # core.store
        "core.store.Run.model_at": dict(self=_fake_run(s), epoch=1),
        "core.store.train_or_load": dict(cfg=s.cfg),
        "core.store.fit": dict(cfg=s.cfg),
        "core.store.entry_path": dict(cfg=s.cfg),
        "core.store.atomic_write_bytes": dict(path=s.tmp / "bytes", data=b"x"),
        "core.store.sha256_file": dict(path=_file(s)),
        "core.store.read_entry_meta": _entry_written(s),
        "core.sweep.write_point": dict(path=s.tmp / "point.json", row={"a": 1}),
        "studies.s001_shrinking.setups.check_setups": dict(setups=["cosine_10_10"], seeds=[0]),
        "core.store.write_entry": dict(path=s.tmp / "entry", payload="tensors.pt", data=b"x", meta={}),
        "core.store.cached_result": dict(kind="cycles", spec={"a": 1}, compute=lambda: ({"a": torch.ones(1)}, {})),
        "core.store.fit_or_load": dict(model=s.model, data=s.ds, lrs=[0.1]),
        "core.store.store_run": dict(run=Run(s.model, s.cfg, pd.DataFrame({"epoch": [1]}), s.checkpoints, s.cfg.key()),
                                     path=s.tmp / "stored"),
        "core.store.train_or_load_locked": dict(cfg=s.cfg, path=s.tmp / "locked", quiet=True, can_train=True),
        # core.sweep
        "core.sweep.run_sweep": dict(configs=[s.cfg], measure=s000_density.DensityPoint(), progress=False),
        # core.timing
        "core.timing.timeit": dict(fn=lambda: None, repeat=1, warmup=0),
        # core.train
        "core.train.make_loss": dict(name="cross_entropy"),
        "core.train.evaluate": dict(model=s.model, split=s.split),
        "core.train.predict": dict(model=s.model, x=s.x),
        "core.train.train": dict(model=s.model, ds=s.ds, cfg=s.cfg, lrs=[0.1, 0.1]),
        "core.train.stopped_improving": dict(losses=[1.0, 0.9], patience=1),
        "core.train.fit_settings": dict(lrs=[0.1]),
        "core.train.fit_model": dict(model=s.model, data=s.ds, lrs=[0.1, 0.05]),
        "core.train.epoch_row": dict(model=s.model, ds=s.ds, cfg=s.cfg, epoch=1, lr=0.1, total_loss=torch.tensor(9.0),
                                     total_correct=torch.tensor(3)),
        "core.train.save_progress": dict(path=s.tmp / "progress.pt", model=s.model,
                                         optimizer_state=_optimizer(s.model.parameters()).state_dict(), scheduler=None,
                                         gen=torch.Generator(), rows=[{"epoch": 1}], checkpoints={}, epoch=1),
        # measures
        "measures.curves.pruning_curve": dict(model=s.model, params=s.params, data=s.split, ks=[0, 50]),
        "measures.curves.layer_sparsity_table": dict(params=s.params, ks=[0, 50], layer_names=["hidden"]),
        "measures.curves.inference_speedups": dict(model=s.model, params=s.params, data=s.x, ks=[50],
                                                   forms=["masked_dense", "csr"], repeat=1, warmup=0),
        "measures.density.effective_density": dict(model=s.model, data=s.split),
        "measures.density.first_crossing": dict(passes=lambda k: k < 5, n=10),
        "measures.density.search_steps": dict(n=100),
        "measures.density.pruned_accuracy": dict(model=s.model, data=s.split, fractions=[0.5]),
        "measures.density.accuracy_threshold": dict(dense_accuracy=0.9),
        "measures.density.warn_if_at_chance": dict(accuracy=0.9, y=s.y, what="m"),
        "measures.imbalance.utility_imbalance": dict(utilities=[0.1, 0.2, 0.4]),
        "measures.imbalance.imbalance_table": dict(df=t.ablations, by="ratio"),
        "measures.saliency.network.UnitNet": dict(weights=t.net.weights, biases=t.net.biases, loss="cross_entropy",
                                          activation="relu"),
        "measures.saliency.network.from_model": dict(model=s.model, loss="cross_entropy"),
        "measures.saliency.estimators.output_derivatives": dict(net=t.net, x=s.x, y=s.y),
        "measures.saliency.estimators.exact_hessian": dict(net=t.net, x=s.x[:4], y=s.y[:4]),
        "measures.saliency.estimators.exact_hessian_diagonal": dict(net=t.net, x=s.x[:4], y=s.y[:4], layer=0),
        "measures.saliency.estimators.hessian_diagonal_check": dict(net=t.net, x=s.x, y=s.y, max_samples=4),
        "measures.saliency.estimators.saliencies": dict(net=t.net, x=s.x, y=s.y),
        "measures.saliency.serial.removable_units": dict(error=[0.1, 0.2, 0.5], margin=0.05),
        "measures.saliency.serial.PruneResult": dict(estimator="random", algorithm="I", order=[(0, 1)],
                                              error=np.array([0.1, 0.2]), accuracy=np.array([0.9, 0.8]), num_units=8),
        "measures.saliency.serial.PruneResult.removable": dict(self=PruneResult("random", "I", [(0, 1)], np.array([0.1, 0.2]),
                                                                         np.array([0.9, 0.8]), 8), margin=0.05),
        "measures.saliency.serial.serial_prune": dict(net=t.net, x=s.x, y=s.y, max_removed=2),
        "measures.saliency.estimators.saliency_scores": dict(model=s.model, data=s.split),
        "measures.surface.recalibrate_bn": dict(model=s.conv, x=s.x),
        "measures.surface.Plane.through": dict(w0=t.plane.origin, w1=t.plane.origin + t.plane.u,
                                               w2=t.plane.origin + t.plane.v),
        "measures.surface.Plane.point": dict(self=t.plane, alpha=0.5, beta=0.5),
        "measures.surface.Plane.grid": dict(self=t.plane, n=3),
        "measures.surface.evaluate_point": dict(model=s.model, vec=flat, data={"test": s.split}),
        "measures.surface.plane_surface": dict(model=s.model, plane=t.plane, data={"test": s.split}, n=2),
        "measures.surface.check_anchors": dict(anchors=t.anchors, networks=dict.fromkeys(t.plane.names, s.model),
                                               data={"test": s.split}),
        "measures.surface.linear_path": dict(model=s.model, w_a=flat, w_b=flat * 0.5, data={"test": s.split}, n=2),
        "measures.surface.loss_barrier": dict(path=t.path),
        "measures.utility.log_probs": dict(model=s.model, x=s.x),
        "measures.utility.utility": dict(model=s.model, data=s.x, subset=s.masks),
        "measures.utility.random_subsets": dict(n_weights=10, k=3, n_subsets=2),
        "measures.utility.evaluate_subsets": dict(model=s.model, data=s.split, subsets=[s.masks]),
        "measures.utility.random_ablation": dict(model=s.model, data=s.split, ratios=[0.1], n_subsets=2),
        "measures.utility.magnitude_bands": dict(model=s.model, n_bands=2),
        "measures.utility.magnitude_ablation": dict(model=s.model, data=s.split, n_bands=2, ratios=[0.5],
                                                    n_subsets=2),
        "measures.utility.summarize": dict(df=t.ablations),
        # pruning
        "pruning.cycles.next_masks": dict(model=s.conv, masks=None, unit="weight", rate=0.3),
        "pruning.cycles.check_plan": dict(units=["weight"], methods=["finetune"], cycles=2),
        "pruning.cycles.iterative_pruning": dict(model=s.conv, ds=s.ds, cfg=s.conv_cfg, cycles=1, epochs=1),
        "pruning.cycles.same_size_config": dict(cfg=s.conv_cfg, model=s.conv, conv_weights=100, epochs=2),
        "pruning.retrain.retraining_lrs": dict(cfg=s.cfg, method="weight_rewind", rewind_epoch=1),
        "pruning.retrain.magnitude_masks": dict(model=s.model, k=50),
        "pruning.retrain.retrain": dict(model=s.model, masks=s.masks, ds=s.ds, cfg=s.cfg, method="weight_rewind",
                                        rewind_state=s.state, rewind_epoch=1),
        "pruning.retrain.prune_and_retrain": dict(model=s.model, ds=s.ds, cfg=s.cfg, k=50, checkpoints=s.checkpoints),
        "pruning.retrain.retrain_table": dict(model=s.model, pruned=s.model, results={}, ds=s.ds),
        "pruning.retrain.fine_tune": dict(model=s.model, masks=s.masks, data=s.ds.train, lrs=[0.1]),
        "pruning.select.masks_from_scores": dict(params=s.params, scores=[p.abs() for p in
                                                                         [m.weight for m, _ in s.params]], k=50),
        "pruning.select.scores_ranking": dict(params=s.params, scores=[m.weight.abs() for m, _ in s.params],
                                              scope="global"),
        "pruning.select.weight_masks": dict(params=s.params, k=50),
        "pruning.select.unit_masks": dict(params=s.params, k=50),
        "pruning.select.masks_for_count": dict(params=s.params, scores=[m.weight.abs() for m, _ in s.params],
                                               count=3),
        "pruning.select.masks_from_order": dict(params=s.params, order=torch.arange(s.params[0][0].weight.numel()),
                                                count=3),
        # report
        "report.benchmarking.record": dict(benchmark="b", quantity="q", value=1.0, unit="s"),
        "report.benchmarking.matmul_gflops": dict(n=8, repeat=1),
        "report.claims.claim": dict(source="s", name="n", source_reports="r", measured="m", holds=True, rule="r"),
        "report.claims.not_measured": dict(source="s", name="n", source_reports="r", why="w", rule="r"),
        "report.claims.cannot_decide": dict(source="s", name="n", source_reports="r", measured="m", why="w",
                                            rule="r"),
        "report.claims.decided": dict(source="s", name="n", source_reports="r", measured="m", sides=[True],
                                      rule="r", intervals=[interval], threshold=0.0),
        "report.claims.undecided_reason": dict(intervals=[interval], threshold=0.0),
        "report.claims.holds_of": dict(sides=[True, None], refute="majority"),
        "report.claims.claims_frame": dict(rows=[{"source": "s", "verdict": "holds"}]),
        "report.claims.missing_columns": dict(df=t.ablations, columns=["ratio"]),
        "report.claims.lacking": dict(missing=["ratio"]),
        "report.claims.plural": dict(count=2, singular="point"),
        "report.claims.listing": dict(items=["a", "b"]),
        "report.claims.seed_list": dict(seeds=[1, 0]),
        "report.claims.Quote": dict(text="a sentence", where="Sec. 1"),
        "report.claims.ClaimSpec": dict(source="s", claim="c", quote=Quote("a sentence", "Sec. 1"), reports="r",
                                        rule="rule"),
        "report.claims.ClaimSpec.labelled": dict(self=spec, label="a group"),
        "report.claims.ClaimSpec.row": dict(self=spec, measured="m", holds=True),
        "report.claims.ClaimSpec.not_measured": dict(self=spec, why="w"),
        "report.claims.ClaimSpec.cannot_decide": dict(self=spec, measured="m", why="w"),
        "report.claims.ClaimSpec.decided": dict(self=spec, measured="m", sides=[True]),
        "report.claims.on_substitute": dict(table=claims_frame([claim("s", "c", "r", "m", True, "rule")]),
                                            why="a smaller data set"),
        "report.headless.parameter_value": dict(text="5"),
        "report.figures.save_figure": dict(fig=plt.figure(), name="f", formats=("png",), dpi=20),
        "report.intervals.Interval": dict(estimate=0.5, low=0.4, high=0.6, n=3, method="t"),
        "report.intervals.Interval.text": dict(self=interval),
        "report.intervals.mean_interval": dict(values=[0.1, 0.2, 0.3]),
        "report.intervals.bootstrap_interval": dict(samples=[np.array([0.1, 0.2, 0.3])],
                                                    statistic=lambda *a, axis: np.mean(a[0], axis=axis),
                                                    n_resamples=50),
        "report.intervals.side_of": dict(interval=interval),
        "report.results.Results": dict(notebook="02_pruning_curves", profile="quick", parameters={}),
        "report.results.Results.open": dict(notebook="06_neuron_saliency", namespace={"profile": "quick",
                                            "setups": None, "seeds": None, "margin": 0.05, "margin_mode": "range",
                                            "max_samples": None, "output_hessian": "diagonal", "device": "auto"}),
        "report.results.Results.table": dict(self=Results("02_pruning_curves", "quick", {}), df=t.ablations,
                                             name="t"),
        "report.results.Results.figure": dict(self=Results("02_pruning_curves", "quick", {}), fig=plt.figure(),
                                              name="f", formats=("png",), dpi=20),
        "report.results.notebook_defaults": dict(notebook="02_pruning_curves"),
        "report.results.committed_defaults": dict(notebook="02_pruning_curves"),
        "report.results.run_label": dict(profile="quick", overrides={}),
        "report.site.check_executed": dict(profile="quick", notebooks=[]),
        "report.site.notebook_page": dict(name="02_pruning_curves"),
        "report.site.environment_table": dict(notebooks=[]),
        "report.tables.results_dir": dict(label="quick"),
        "report.tables.check_label": dict(label="quick+0123abcd"),
        "report.tables.save_table": dict(df=t.ablations, label="quick", name="t"),
        "report.tables.gather_claims": _claims_written,
        # studies
        "studies.examples.PixelTransformer": dict(d_model=8, nhead=2, dim_feedforward=8),
        "studies.examples.tiny_transformer": dict(d_model=8),
        "studies.s000_density.point.DensityPoint": dict(),
        "studies.s000_density.point.eval_split": dict(ds=s.ds, eval_subset=10),
        "studies.s000_density.point.width_sweep": dict(configs=[s.cfg]),
        "studies.s000_density.presets.width_grid": dict(arch_datasets={"mlp": ["digits"]}, widths=[0.5, 1.0],
                                                optimizers=["adam"], inits=["default"], seeds=[0], epochs=1),
        "studies.s000_density.statistics.split_untrained": dict(df=t.density, min_dense_accuracy=0.5),
        "studies.s000_density.statistics.fit_loglog": dict(df=t.density, x="params", y="core_params"),
        "studies.s000_density.statistics.fit_core_scaling": dict(df=t.density),
        "studies.s000_density.statistics.fit_density_vs_width": dict(df=t.density),
        "studies.s000_density.statistics.density_trend": dict(df=t.density),
        "studies.s000_density.statistics.factor_effect": dict(df=t.density, factor="optimizer", reference="adam"),
        "studies.s000_density.presets.grid_setup": dict(configs=[s.cfg]),
        "studies.s000_density.verdicts.claims": dict(df=t.density),
        "studies.s000_density.presets.substitute": dict(configs=[s.cfg]),
        "studies.s000_density.verdicts.claims_table": dict(df=t.density),
        "studies.s000_density.figures.plot_density_vs_width": dict(df=t.density),
        "studies.s000_density.figures.plot_hoyer_vs_width": dict(df=t.density),
        "studies.s001_shrinking.experiment.load_setup": dict(cfg=s.cfg, max_samples=10),
        "studies.s001_shrinking.experiment.run_setup": dict(cfg=s.cfg, setup="digits_mlp", estimators=["l2_norm"],
                                                 algorithms=["I"], max_samples=10),
        "studies.s001_shrinking.experiment.run_experiment": dict(setups=["cosine_10_10"], seeds=[0], max_samples=10),
        "studies.s001_shrinking.experiment.rank_agreement": dict(net=t.net, x=s.x, y=s.y, estimators=["l2_norm"]),
        "studies.s001_shrinking.experiment.curve_gap": dict(table=t.saliency_curves, margin=0.05),
        "studies.s001_shrinking.experiment.removable_summary": dict(table=t.saliency_curves, margin=0.05),
        "studies.s001_shrinking.verdicts.claims_table": dict(curves=t.saliency_curves, excluded=t.gate),
        "studies.s001_shrinking.setups.quality_gate": dict(accuracy=t.accuracy_001),
        "studies.s001_shrinking.setups.stated_accuracy": dict(setup="diamond_50_50_adam"),
        "studies.s001_shrinking.setups.Group": dict(label="a group", kind="source", where="Sec. 1"),
        "studies.s001_shrinking.setups.Setup": dict(config=s.cfg, group="digits", accuracy=0.9),
        "studies.s001_shrinking.setups.group_of": dict(setup="cosine_10_10"),
        "studies.s001_shrinking.figures.group_sentences": dict(group="shapes"),
        "studies.s001_shrinking.figures.plot_curves": dict(curves=t.saliency_curves, setups=["digits_mlp"]),
        "studies.s001_shrinking.experiment.training_course": dict(setups=["diamond_50_50"], device="cpu"),
        "studies.s002_basin_verdicts.basin_claims": dict(barriers=t.barriers, split="test"),
        "studies.s002_basins.cycles_config": dict(profile="quick"),
        "studies.s002_basins.cycles_experiment": dict(configs=[s.conv_cfg], cycles=1, units=["weight"],
                                                      methods=["finetune"]),
        "studies.s002_basins.Preset.cycle_configs": dict(self=s002_basins.preset("quick")),
        "studies.s002_basins.oneshot_surface": _oneshot(s),
        "studies.s002_basins.cycle_planes": dict(experiment=_cycles_experiment(s), subset=10, grid=2),
        "studies.s002_basins.cycles_table": dict(results={}, small={}, ds=s.ds, pretrained=s.conv),
        "studies.s002_basin_verdicts.cycle_claims": dict(table=None, barriers=t.barriers, split="test"),
        "studies.s002_basins.cycle_lines": dict(experiment=_cycles_experiment(s), subset=10, n=2),
        "studies.s002_sizes.size_config": dict(profile="quick"),
        "studies.s002_sizes.size_comparison": dict(models={1.0: s.model}, x=s.x, y=s.y, ratios=[0.1], n_subsets=2),
        "studies.s002_size_verdicts.size_claims": dict(ablations=None),
        "studies.s002_sizes.conv_pruned": dict(run=_fake_run(s, conv=True), ratio=0.5, ds=s.ds, cache=False),
        "studies.s002_sizes.from_scratch_config_at": dict(cfg=s.conv_cfg, ratio=0.5),
        "studies.s002_sizes.pruned_at_init": dict(cfg=s.cfg, share=0.5),
        "studies.s002_sizes.pruned_experiment": dict(configs=[s.conv_cfg], prune_ratios=[0.5]),
        "studies.s002_sizes.pruned_comparison": dict(pretrained=s.model, pruned={0.5: (s.masks, s.model)},
                                                     small={0.5: s.model}, x=s.x, y=s.y, levels=[0.1], n_subsets=2),
        "studies.s002_sizes.pruned_table": dict(pretrained=s.conv, pruned={0.5: (s.conv_masks, s.conv)}, small={},
                                                ds=s.ds),
        "studies.s002_size_verdicts.pruned_claims": dict(table=None, ablations=None),
        "studies.s002_utility.networks.Preset.network": dict(self=s002_utility.preset("quick")),
        "studies.s002_utility.networks.Preset.pretrain_config": dict(self=s002_utility.preset("quick")),
        "studies.s002_utility.networks.Network.config": dict(self=s002_utility.preset("quick").mlp),
        "studies.s002_utility.networks.default_dataset": dict(profile="quick"),
        "studies.s002_utility.networks.pretrain_config": dict(profile="quick"),
        "studies.s002_utility.networks.vanilla_cnn_config": dict(profile="quick"),
        "studies.s002_utility.networks.eval_subset": dict(profile="quick"),
        "studies.s002_utility.experiments.ablation_at_checkpoints": dict(model=s.model, checkpoints=s.checkpoints, x=s.x, y=s.y,
                                                             n_subsets=2),
        "studies.s002_utility.experiments.critical_ratio": dict(df=t.ablations, level=0.5),
        "studies.s002_utility.experiments.width_comparison": dict(models={1.0: s.model}, x=s.x, y=s.y, ratios=[0.1],
                                                      n_subsets=2, imbalance_ratio=0.1, chance=0.1),
        "studies.s002_utility.experiments.ablation_table": dict(experiments={"random": t.ablations}, epochs=2, seed=0,
                                                    network="mlp"),
        "studies.s002_utility.experiments.check_plan": dict(below_one=["ratios"], ratios=[0.1]),
        "studies.s002_utility.verdicts.utility_claims": dict(),
        "studies.s002_utility.experiments.spread_experiment": dict(models={"a": s.model}, x=s.x, y=s.y, n_subsets=2),
        "studies.s002_utility.verdicts.spread_claims": dict(df=None),
        "studies.s003_sparsify.challenge_config": dict(profile="quick", dataset="digits", seed=0),
        "studies.s003_sparsify.Preset.challenge_config": dict(self=s003_sparsify.preset("quick"), dataset="digits",
                                                              seed=0),
        "studies.s003_sparsify.Preset.runs": dict(self=s003_sparsify.preset("quick"), setups=["prunekit"]),
        "studies.protocol.training_plan": dict(pretraining=[s.cfg], retraining=[(s.cfg, 1)], label="notebook 00"),
        "report.catalog.Study": dict(notebook="08_new", sources=("000",), modules=("prunekit.studies.s000_density",),
                                     question="does it?"),
        "report.catalog.study": dict(notebook="03_width_invariance"),
        "report.catalog.source_of": dict(notebook="03_width_invariance"),
        "studies.s003_sparsify.plateau_summary": dict(curve=t.curve),
        "studies.s003_sparsify.plateau_report": dict(summary=pd.DataFrame()),
        "studies.s003_sparsify.plateau_ends": dict(curve=t.curve),
        "studies.s003_sparsify.global_unit_note": dict(layers=t.layers),
        "studies.s003_sparsify.claims_table": dict(curve=t.curve),
        "studies.s003_sparsify.speed_claims": dict(speed=None),
        "studies.your_model.reader.import_object": dict(spec="prunekit.studies.examples:tiny_resnet"),
        "studies.your_model.reader.build_model": dict(spec="prunekit.studies.examples:tiny_resnet"),
        "studies.your_model.reader.load_data": dict(spec="digits"),
        "studies.your_model.reader.load_checkpoint": dict(model=s.model, path=_checkpoint(s)),
        "studies.your_model.preparation.prepare": dict(model=s.model, checkpoint=_checkpoint(s)),
        "studies.your_model.tables.pruning_curves": dict(setup=setup),
        "studies.your_model.tables.density_table": dict(setup=setup),
        "studies.your_model.tables.ablation_tables": dict(setup=setup),
        "studies.your_model.tables.prune_and_fine_tune": dict(setup=setup),
        "studies.your_model.tables.surface_tables": dict(setup=setup, tuned=tuned),
    }


def by_name(s, name: str):
    """The valid value of a required parameter no example gives, from its name."""
    return {"model": s.model, "params": s.params, "profile": "quick", "cfg": s.cfg, "ds": s.ds, "x": s.x, "y": s.y,
            "data": s.split, "split": s.split, "masks": s.mask_list, "path": s.tmp / "file"}[name]


# -------------------------------------------------------------------------------------------- what is not checked
# Classes that hold a result or a preset the package itself fills (their fields are checked where they are computed
# or chosen), containers checked where they are used, and registry entries a developer writes once per model or data
# set: their constructors are not probed (their methods are).
RECORDS = {
    "core.data.Split": "a record of tensors: as_split checks what a measure is given",
    "core.data.Dataset": "a record load_dataset fills",
    "core.store.Run": "a record train_or_load fills",
    "core.sweep.SweepResult": "a record run_sweep fills",
    "core.registry.Registry": "made once per kind of entry inside the package (MODELS, DATASETS)",
    "core.registry.ModelEntry": "written once per model by a developer; its kind is checked, its build runs in tests",
    "core.registry.DataEntry": "written once per data set by a developer; its kind is checked, its load runs in tests",
    "pruning.scorers.ScorerEntry": "written once per scorer by a developer; its needs are checked, every registered "
                                   "scorer runs in tests/pruning/test_scorers.py",
    "measures.density.EffectiveDensity": "a record effective_density fills",
    "measures.density.Crossing": "a record first_crossing fills",
    "measures.saliency.serial.PruneResult": "a record serial_prune fills",
    "measures.surface.Plane": "a record Plane.through fills (its Gram-Schmidt checks the three points)",
    "pruning.cycles.IterativePruning": "a record iterative_pruning fills",
    "pruning.masks.UnitMasks": "a list of masks, checked where it is used (resolve, Masks.from_params)",
    "pruning.masks.Masks": "a dict of masks, checked where it is used (Masks.for_params, Masks.params)",
    "pruning.retrain.Retrained": "a record retrain fills",
    "report.intervals.Interval": "a record mean_interval and bootstrap_interval fill",
    "studies.s000_density.presets.Preset": "a profile's preset, chosen by name (preset(profile))",
    "studies.s001_shrinking.setups.Preset": "a profile's preset, chosen by name (preset(profile))",
    "studies.s001_shrinking.experiment.Experiment": "a record run_experiment fills",
    "studies.s002_basins.Preset": "a profile's preset, chosen by name (preset(profile)); its overrides are checked in "
                                  "its __post_init__ (tests/studies/test_s002_basins.py)",
    "studies.s002_basins.OneShotSurface": "a record oneshot_surface fills",
    "studies.s002_basins.CyclesExperiment": "a record cycles_experiment fills",
    "studies.s002_sizes.PrunedExperiment": "a record pruned_experiment fills",
    "studies.s002_utility.networks.Network": "a network's preset, part of a profile's (preset(profile).network(name))",
    "studies.s002_utility.networks.Preset": "a profile's preset, chosen by name (preset(profile)); its overrides are "
                                            "checked in its __post_init__ (tests/studies/test_s002_utility.py)",
    "studies.s003_sparsify.Preset": "a profile's preset, chosen by name (preset(profile))",
    "studies.your_model.preparation.Preset": "a profile's preset, chosen by name (preset(profile))",
    "studies.your_model.preparation.Setup": "a record prepare fills",
    "studies.your_model.tables.FineTuned": "a record prune_and_fine_tune fills",
}

# Callables with a parameter of the table that cannot be set up here, with the reason.
NOT_SET_UP = {
    "report.site.build_report": "builds a whole site (nbconvert, pdoc: minutes); its profile goes through "
                                "check_profile first, its folders are the caller's (tests/report/test_site.py)",
    "report.site.build_api_reference": "runs pdoc over the package (about ten seconds); out is the caller's folder",
    "report.readme.update_readme": "rewrites README.md from a paper run (tests/report/test_readme.py, test_site.py)",
    "report.headless.run_notebook": "runs a notebook's cells: whether a cell defines until is known only by running "
                                    "them (a LookupError after they ran); its path, parameters and until are checked "
                                    "before any cell runs (tests/report/test_headless.py)",
}

# Parameters a message names by another name, on purpose: the name a reader knows them by.
ALIASES = {
    "core.config.DataConfig.name": "dataset",          # TrainConfig.replace(dataset=...) and the notebooks call it so
    "core.data.load_dataset.cfg": ("cfg", "dataset"),  # a data set's name is checked as DataConfig's
    "core.registry.Registry.entry.name": ("name", "arch", "dataset"),  # the name the registry's entries go by
    "pruning.cycles.check_plan.units": "cycle_units",                  # notebook 04's parameters
    "pruning.cycles.check_plan.methods": "cycle_methods",
    "studies.s002_basins.cycles_experiment.units": "cycle_units",
    "studies.s002_basins.cycles_experiment.methods": "cycle_methods",
    "core.initialisation.init_weights.scheme": "init",         # ModelConfig.init
    "core.train.make_loss.name": "loss",               # TrainConfig.loss
    "studies.your_model.reader.import_object.spec": "model",  # the spec of what="model" (the default)
    "studies.your_model.reader.build_model.spec": "model",    # notebook 07's parameter
    "studies.your_model.reader.load_data.spec": "dataset",    # notebook 07's parameter
    "studies.your_model.reader.load_checkpoint.path": ("path", "checkpoint"),  # notebook 07's parameter
    "studies.s002_utility.networks.Preset.network.name": "network",  # the network a notebook names (notebook 05's)
}

FREE_TEXT = "free text, shown as it is (a label, a sentence of a claims table, a unit): never a path or a choice"
ANY_TEXT = {"*": FREE_TEXT}
SOME_TEXT = {"unknown": FREE_TEXT, "dotdot": FREE_TEXT}
A_PATH = {"unknown": "a path the caller chooses: any folder or file name", "dotdot": "a path the caller chooses: "
          "'..' names a place, not a name inside prunekit's folders"}
SEED_ZERO = {"zero": "seed 0 is a seed (the default)"}

# Values of the table a parameter takes on purpose: {parameter or "module.function.parameter": {label or "*": why}}.
ACCEPTS: dict[str, dict[str, str]] = {
    # free text
    **{name: ANY_TEXT for name in ("source", "source_reports", "measured", "why", "rule", "quote", "quote_where",
                                   "interval", "what", "singular", "plural_form", "none", "benchmark", "quantity",
                                   "unit", "desc", "alt", "fmt")},
    **{f"report.claims.{f}.name": ANY_TEXT for f in ("claim", "not_measured", "cannot_decide", "decided")},
    **{f"report.claims.{f}.{p}": ANY_TEXT for f in ("claim", "decided") for p in ("setup", "seeds")},
    **{f"studies.{f}.{p}": ANY_TEXT for f in ("s000_density.verdicts.claims_table", "s002_basin_verdicts.basin_claims",
                                             "s002_basin_verdicts.cycle_claims", "s002_size_verdicts.size_claims",
                                             "s002_size_verdicts.pruned_claims", "s002_utility.verdicts.utility_claims",
                                             "s002_utility.verdicts.spread_claims", "s003_sparsify.speed_claims")
       for p in ("setup", "seeds")},
    "core.estimate.expect.label": ANY_TEXT,
    "studies.s001_shrinking.setups.Setup.substitute": ANY_TEXT,
    "studies.protocol.training_plan.label": SOME_TEXT,
    "report.catalog.Study.question": SOME_TEXT,
    "report.catalog.Study.notebook": {"unknown": "a new notebook's name: the row that adds a study"},
    "report.catalog.Study.sources": {"empty": "a notebook of no single source (01_training)"},
    "report.catalog.Study.modules": {"empty": "a notebook that calls no study module (01_training)"},
    "studies.protocol.training_plan.pretraining": {"empty": "nothing to train", "duplicates": "a config named twice "
                                                   "is trained once (the cache), and said so: cached"},
    "studies.protocol.training_plan.retraining": {"empty": "nothing to retrain",
                                                  "duplicates": "two retrainings of one network"},
    # free text that must be there (a number or an empty string is refused)
    **{name: SOME_TEXT for name in ("report.claims.Quote.text", "report.claims.Quote.where",
                                    "report.claims.ClaimSpec.claim", "report.claims.ClaimSpec.reports",
                                    "report.claims.ClaimSpec.labelled.label", "studies.s001_shrinking.setups.Group.label",
                                    "studies.s001_shrinking.setups.Group.where")},
    "report.headless.parameter_value.text": {"empty": "a -p value: the text itself where it is no Python literal",
                                             "unknown": "a -p value: the text itself where it is no Python literal",
                                             "dotdot": "a -p value: the text itself where it is no Python literal"},
    "studies.s002_utility.experiments.spread_experiment.dataset": {"empty": "no data set named (the default)",
                                                       "unknown": "a label: the data the networks learned, as the "
                                                       "caller names it", "dotdot": "a label, never a path"},
    "report.claims.lacking.what": ANY_TEXT,
    # the validation helpers: the name of the parameter they check is free text, the allowed values and bounds are the
    # package's own
    **{f"core.checks.{f}.name": {"*": "the name of the parameter being checked, as the caller writes it"}
       for f in ("choice", "choice_message", "number", "count", "fraction", "percentage", "sequence", "mapping",
                 "file_name", "text", "path", "distinct", "columns")},
    **{f"core.checks.{f}.allowed": {"*": "the allowed values, written by the package's own code (any iterable)"}
       for f in ("choice", "choice_message")},
    "core.config.check_profile.allowed": {"*": "a study's presets, written by the package's own code"},
    "core.registry.Registry.entry.parameter": {"*": "the name of the caller's parameter, as it writes it"},
    **{f"core.checks.count.{b}": {"*": "a bound written by the package's own code"} for b in ("low", "high")},
    "core.data.as_split.name": {"*": "the name of the caller's parameter, as it writes it"},
    "core.data.class_labels.name": {"*": "the name of the caller's parameter, as it writes it"},
    "core.prunable.checked_labels.name": {"*": "the name of the caller's parameter, as it writes it"},
    "core.config.train_configs.name": {"*": "the name of the caller's parameter, as it writes it"},
    "core.data.as_xy.name": {"*": "the name of the caller's parameter, as it writes it"},
    "core.data.check_inputs.name": {"*": "the name of the caller's parameter, as it writes it"},
    "core.device.device_name.name": {"*": "the name of the caller's parameter, as it writes it"},
    "core.device.resolve_device.name": {"*": "the name of the caller's parameter, as it writes it"},
    "studies.your_model.reader.import_object.what": {"*": "the name of the caller's parameter, as it writes it"},
    # paths the caller chooses
    **{name: A_PATH for name in ("root", "path", "resume_path", "out", "executed", "checkpoint")},
    # zero (or a negative number) is a value
    "seed": SEED_ZERO,
    "ablation_seed": SEED_ZERO,
    "core.train.epoch_row.lr": {"zero": "an epoch at learning rate 0 (lrs= may hold one)"},
    "core.stacked.StackedMLP.state_dict_of.k": {"zero": "the first network of the stack"},
    "core.config.TrainConfig.stack": {"empty": "() trains the network on its own (the default)"},
    **{f"core.weights.{f}.name": {"unknown": "a predicate: False for a name the module holds no tensor under",
                                  "dotdot": "a predicate: False for a name the module holds no tensor under"}
       for f in ("is_parametrized", "is_pruned", "is_weight")},
    **{f"{f}.configs": {"empty": "no config: no group", "duplicates": "a config given twice: the callers (run_sweep, "
                        "train_or_load_many) and the function itself take each config once"}
       for f in ("core.group.group_indices", "core.sweep.training_groups")},
    "core.many.stacked_configs.configs": {"empty": "no config: none rewritten",
                                          "duplicates": "each config rewritten as given"},
    "studies.s000_density.presets.substitute.configs": {"duplicates": "the configs' subsets, sizes and epochs, as a set"},
    "studies.s001_shrinking.setups.group_of.setup": {"unknown": "a setup not in SETUPS is in the group 'other' (documented)",
                                              "dotdot": "a setup not in SETUPS is in the group 'other' (documented)"},
    "report.claims.ClaimSpec.decided.sides": {"empty": "no interval: cannot decide", "duplicates": "one side per "
                                              "interval"},
    "k": {"zero": "k=0 prunes nothing: the dense point of a curve"},
    "momentum": {"zero": "plain SGD"},
    "weight_decay": {"zero": "no weight decay"},
    "patience": {"zero": "0 trains all the epochs"},
    "min_improvement": {"zero": "any improvement counts"},
    "val_fraction": {"zero": "no validation split"},
    "one_vs_all": {"zero": "class 0 against the others"},
    "rewind_epoch": {"zero": "rewinding to the initialisation (epoch 0)"},
    "warmup": {"zero": "no warm-up run"},
    "margin": {"zero": "no margin"},
    "min_dense_accuracy": {"zero": "every model is kept"},
    "tolerance": {"zero": "no drop allowed"},
    "threshold": {"zero": "a threshold on any scale", "negative": "a threshold on any scale"},
    "count": {"zero": "pruning none", "negative": "a count in words: -1 points"},
    "digits": {"zero": "no decimals"},
    "dense_accuracy": {"zero": "a model that gets nothing right"},
    "studies.s002_utility.verdicts.utility_claims.dense_accuracy": {"zero": "a model that gets nothing right",
                                                           "nan": "a measurement that failed: 'not measured here'"},
    "accuracy": {"zero": "a model that gets nothing right"},
    "value": {"zero": "a measured value", "negative": "a measured value (a difference can be negative)"},
    "measures.density.first_crossing.n": {"zero": "no prunable weight: nothing to search"},
    "measures.utility.random_subsets.k": {"zero": "the empty subset"},
    "pruning.select.masks_from_order.count": {"zero": "prunes nothing"},
    "core.checks.pruned_count.n": {"zero": "no element: nothing to prune"},
    # a sequence that may be empty, or repeat a value
    "core.config.ModelConfig.hidden": {"duplicates": "hidden widths may repeat: (128, 128)"},
    "core.models.MLP.hidden": {"duplicates": "hidden widths may repeat: (128, 128)",
                               "empty": "no hidden layer: a linear model"},
    "core.config.TrainConfig.checkpoints": {"empty": "no checkpoint kept",
                                            "duplicates": "a set of epochs: an epoch named twice is one checkpoint"},
    "core.estimate.training_rate.input_shape": {"duplicates": "an input shape may repeat a size: (1, 8, 8)"},
    "core.estimate.expect.pretraining": {"empty": "nothing to train", "duplicates": "a config named twice is trained "
                                         "once (the cache), and said so: cached"},
    "core.estimate.expect.retraining": {"empty": "nothing to retrain", "duplicates": "two retrainings of one network"},
    "core.data.available_datasets.names": {"empty": "nothing to look for"},
    "lrs": {"duplicates": "a learning rate may repeat across epochs"},
    "core.train.stopped_improving.losses": {"empty": "no epoch yet: nothing stops",
                                            "duplicates": "two epochs may have the same loss"},
    "report.claims.listing.items": {"empty": "'none'", "duplicates": "a list in words, as given"},
    "report.claims.claims_frame.rows": {"empty": "a claims table with no row", "duplicates": "rows as given"},
    "report.claims.decided.sides": {"empty": "no interval: cannot decide", "duplicates": "one side per interval"},
    "report.claims.holds_of.sides": {"empty": "no side: no verdict", "duplicates": "one side per interval"},
    "report.claims.decided.intervals": {"empty": "no interval: the reason is said", "duplicates": "intervals as given"},
    "report.claims.undecided_reason.intervals": {"empty": "no interval: the reason is said",
                                                 "duplicates": "intervals as given"},
    "report.site.environment_table.notebooks": {"empty": "an environment with no notebook run"},
    "report.site.check_executed.notebooks": {"empty": "nothing to check"},
    "studies.s002_utility.experiments.check_plan.below_one": {"empty": "every list may reach 1", "duplicates": "names as given"},
    "report.claims.lacking.missing": {"empty": "'the table is empty'", "duplicates": "the columns as given"},
    "report.claims.missing_columns.columns": {"empty": "nothing missing", "duplicates": "the columns as given"},
    "report.intervals.bootstrap_interval.samples": {"duplicates": "two samples may be equal"},
    "report.intervals.mean_interval.values": {"empty": "no value: an interval of NaN, n = 0, said so",
                                              "duplicates": "two seeds may measure the same value"},
    "measures.utility.summarize.quantiles": {"empty": "no quantile columns"},
    **{f"studies.s000_density.statistics.{f}.by": {"empty": "no grouping: one fit over every row"}
       for f in ("fit_loglog", "fit_core_scaling", "fit_density_vs_width")},
    "studies.s000_density.presets.grid_setup.configs": {"empty": "no config: an empty description",
                                                "duplicates": "the architectures, widths and epochs, as a set"},
    # more values that are values
    "seconds": {"zero": "0 s"},
    "warn_after": {"zero": "warn about any training"},
    "measures.density.search_steps.n": {"zero": "no prunable weight: the steps of an empty search"},
    "measures.saliency.estimators.exact_hessian_diagonal.layer": {"zero": "the first hidden layer"},
    "measures.saliency.serial.serial_prune.max_removed": {"zero": "the unpruned curve only"},
    "measures.surface.Plane.point.alpha": {"zero": "a coordinate", "negative": "a coordinate"},
    "measures.surface.Plane.point.beta": {"zero": "a coordinate", "negative": "a coordinate"},
    "barrier_tol": {"zero": "no rise above the chord at all"},
    "collapse_gap": {"zero": "any gap"},
    "ceiling_gap": {"zero": "no ceiling: every comparison decides"},
    "studies.s002_utility.experiments.critical_ratio.level": {"zero": "an accuracy of 0: never reached below, NaN"},
    "chance": {"zero": "a chance level of 0"},
    "studies.your_model.tables.prune_and_fine_tune.sparsity": {"zero": "prunes nothing: a fine-tuned copy of the model"},
    # names that are any name
    **{f"{f}.name": {"unknown": "any plain file name"}
       for f in ("report.figures.save_figure", "report.tables.save_table", "report.results.Results.table",
                 "report.results.Results.figure")},
    "core.store.write_entry.payload": {"unknown": "any plain file name inside the entry"},
    "report.results.Results.notebook": {"unknown": "a notebook's name: Results.open reads its parameters"},
    "report.results.notebook_defaults.notebook": {"dotdot": "a notebook's path the caller chooses"},
    "report.results.committed_defaults.notebook": {"unknown": "a notebook not in the commit: None, said so",
                                                   "dotdot": "a notebook outside the repository: None"},
    "report.site.notebook_page.name": {"unknown": "any notebook's name", "dotdot": "a notebook's path: its page is "
                                       "named after the file, inside the site"},
    "studies.s001_shrinking.experiment.run_setup.setup": ANY_TEXT,
    "split": {"unknown": "a split the table lacks: 'not measured here', said so",
              "dotdot": "a split the table lacks: 'not measured here', said so"},
    "studies.s002_basin_verdicts.cycle_claims.dataset": ANY_TEXT,
    "studies.s002_utility.experiments.ablation_table.network": ANY_TEXT,
    "core.store.Run.model_at.epoch": {"zero": "the checkpoint at initialisation"},
    "report.claims.seed_list.seeds": {"empty": "no seed: an empty column value",
                                      "duplicates": "the distinct seeds, sorted (as documented)"},
    "studies.examples.PixelTransformer.low": {"zero": "a bin edge", "negative": "a bin edge"},
    "studies.examples.PixelTransformer.high": {"zero": "a bin edge"},
    "studies.s000_density.statistics.factor_effect.by": {"empty": "no grouping: one effect over every row"},
}


# ------------------------------------------------------------------------------------------------- running the probes
def _call(target, kwargs):
    """Call ``target`` with ``kwargs`` (``"self"``: the instance of a method) and run what it returns that does its
    work only when used: a generator's first item, a context manager's block."""
    kwargs = dict(kwargs)
    owner = kwargs.pop("self", None)
    fn = getattr(owner, target.__name__) if owner is not None else target
    out = fn(**kwargs)
    if inspect.isgenerator(out):
        next(out, None)
    elif hasattr(out, "__enter__") and hasattr(out, "__exit__") and not isinstance(out, torch.nn.Module):
        with out:
            pass
    return out


def outcome(target, kwargs, name: str | tuple[str, ...]) -> str:
    """"refused" (a ValueError naming ``name``), "accepted" (it returned), "evaluated" (it evaluated a model), or
    what went wrong: "unnamed: <message>" (a ValueError that does not name it), "<Error>: <message>"."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _call(target, kwargs)
        except Evaluated:
            return "evaluated"
        except ValueError as err:
            names = (name,) if isinstance(name, str) else name
            named = any(re.search(rf"(?<![\w]){re.escape(n)}(\s*=|\[)", str(err)) for n in names)
            return "refused" if named else f"unnamed: {str(err)[:200]}"
        except Exception as err:  # noqa: BLE001 - reported
            return f"{type(err).__name__}: {str(err)[:200]}"
    return "accepted"


def _target_and_signature(obj):
    return obj, inspect.signature(obj)


def checked_parameters(qualname: str, obj) -> list[tuple[str, set[str]]]:
    """``(parameter, kinds)`` of the parameters the table applies to."""
    _, sig = _target_and_signature(obj)
    return [(p.name, kinds_of(p)) for p in sig.parameters.values()
            if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and kinds_of(p)]


def accepted_on_purpose(qualname: str, name: str, label: str) -> str | None:
    """Why ``name`` of ``qualname`` takes the value ``label`` on purpose (``label="*"``: any value), or None."""
    for key in (f"{qualname}.{name}", name):
        table = ACCEPTS.get(key, {})
        if label in table or "*" in table:
            return table.get(label, table.get("*"))
    return None


# ------------------------------------------------------------------------------------------------------------ the test
CALLABLES = public_callables()
PROBED = sorted(q for q, obj in CALLABLES.items() if q not in RECORDS and q not in NOT_SET_UP
                and checked_parameters(q, obj))
RESULTS: dict[str, dict[str, dict[str, str]]] = {}  # qualname -> parameter -> label -> outcome


def _refuse_forward(module, args):
    raise Evaluated(f"{type(module).__name__}.forward")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api")
    s = Setup(tmp)
    t = Tables(s)
    return s, t, examples(s, t)


@pytest.fixture
def armed(monkeypatch, tmp_path):
    """No model may be evaluated: every module's forward, prunekit's predict and evaluate, and the unit networks'
    forward pass raise :class:`Evaluated`. The probes run in a folder of their own (two levels down in the test's
    temporary folder): a relative path a function takes on purpose ("no-such-value", "../escaped") lands there."""
    import prunekit.core.train as train

    inner = tmp_path / "cwd" / "inner"
    inner.mkdir(parents=True)
    monkeypatch.chdir(inner)
    from prunekit.measures.saliency import estimators, network, serial

    def never(*args, **kwargs):
        raise Evaluated("evaluated")

    monkeypatch.setattr(train, "predict", never)
    monkeypatch.setattr(train, "evaluate", never)
    for module in (network, estimators, serial):  # the unit network's forward pass, wherever it is called from
        monkeypatch.setattr(module, "Forward", never)
    hook = torch.nn.modules.module.register_module_forward_pre_hook(_refuse_forward)
    try:
        yield
    finally:
        hook.remove()


def valid_arguments(qualname: str, world) -> dict:
    s, _, ex = world
    example = ex.get(qualname, {})
    kwargs = dict(example() if callable(example) else example)  # a callable: made in this test's own folders
    _, sig = _target_and_signature(CALLABLES[qualname])
    for p in sig.parameters.values():
        if (p.default is inspect.Parameter.empty and p.name not in kwargs and p.name not in ("self", "cls")
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)):
            kwargs[p.name] = by_name(s, p.name)
    return kwargs


@pytest.mark.parametrize("qualname", PROBED)
def test_every_bad_value_is_refused_by_name_before_any_evaluation(qualname, world, armed):
    target, sig = _target_and_signature(CALLABLES[qualname])
    kwargs = valid_arguments(qualname, world)
    base = outcome(target, kwargs, "")
    assert base in ("accepted", "evaluated"), f"the valid example of {qualname} fails: {base}"
    problems, seen = [], RESULTS.setdefault(qualname, {})
    for name, kinds in checked_parameters(qualname, CALLABLES[qualname]):
        if accepted_on_purpose(qualname, name, "*"):
            seen[name] = {"*": "exempt"}  # takes any value on purpose (ACCEPTS)
            continue
        base_kwargs = {**kwargs, **world[2].get(f"{qualname}.{name}", {})}  # a parameter's own example, if any
        valid = base_kwargs.get(name, sig.parameters[name].default)
        for label, value in bad_values(kinds, valid):
            got = outcome(target, {**base_kwargs, name: value}, ALIASES.get(f"{qualname}.{name}", name))
            seen.setdefault(name, {})[label] = got
            if got == "refused" or (got in ("accepted", "evaluated") and accepted_on_purpose(qualname, name, label)):
                continue
            problems.append(f"{name}={reprlib.repr(value)} ({label}): {got}")
    assert not problems, f"{qualname}:\n  " + "\n  ".join(problems)


def test_every_entry_of_the_tables_names_a_public_callable(world):
    """An example, exemption or alias left behind by a removed or renamed function (or parameter's function) is a
    defect: it would silently cover nothing."""
    keys = [*world[2], *ACCEPTS, *ALIASES]
    stale = [k for k in keys if "." in k and k not in CALLABLES and k.rsplit(".", 1)[0] not in CALLABLES]
    assert not stale, f"entries for callables that are not public (removed or renamed?): {stale}"


def test_the_check_covers_the_public_api():
    """How much of the public API the check above covers: (function, parameter) pairs probed, exempt ones with the
    reason, and the callables it cannot set up or does not probe (records), each with the reason. It runs after the
    probes (pytest runs a module's tests in order) and fails if the walk finds less than it should."""
    probed = [(q, p) for q, params in RESULTS.items() for p, seen in params.items() if "*" not in seen]
    exempt = [(q, p) for q, params in RESULTS.items() for p, seen in params.items() if "*" in seen]
    skipped = {q: why for q, why in {**RECORDS, **NOT_SET_UP}.items() if q in CALLABLES}
    values = sum(len(seen) for params in RESULTS.values() for seen in params.values() if "*" not in seen)
    print(f"\nAPI-wide input check: {len(CALLABLES)} public callables walked, {len(PROBED)} probed; "
          f"{len(probed)} (function, parameter) pairs checked with {values} bad values; {len(exempt)} pairs exempt "
          f"(any value on purpose: {', '.join(sorted({p for _, p in exempt}))}); {len(skipped)} callables not "
          f"probed: {len(RECORDS)} records, {len(NOT_SET_UP)} not set up ({', '.join(NOT_SET_UP)})")
    if len(RESULTS) == len(PROBED):  # the whole module ran (not a -k selection)
        assert len(probed) >= 500, len(probed)
    assert set(NOT_SET_UP) <= set(CALLABLES) and set(RECORDS) <= set(CALLABLES), "a stale entry in the lists"
