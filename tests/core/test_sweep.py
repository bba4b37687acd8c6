"""Tests of prunekit.core.sweep with source 000's point (prunekit.studies.s000_density.DensityPoint): grids, in-process
vs Dask LocalCluster (2 worker processes), resume, failures, and a measure of your own."""

import json

import pandas as pd
import pytest

from prunekit.core.config import TrainConfig
from prunekit.core.sweep import make_grid, point_key, read_point, run_point, run_sweep
from prunekit.studies.s000_density import RESULT_COLUMNS, DensityPoint

POINT = DensityPoint()

BASE = TrainConfig(epochs=1, lr=1e-2, batch_size=64).replace(arch="mlp", hidden=(16, 8))
# columns that legitimately differ between two runs of the same points (timings, thread counts)
VOLATILE = ["train_seconds", "measure_seconds", "threads"]


def _stable(df):
    return df.drop(columns=VOLATILE).reset_index(drop=True)


def test_make_grid_product_order_overrides_and_dedup():
    cfgs = make_grid(BASE, arch=["mlp", "lenet300"], width_mult=[0.5, 1.0, 2.0], optimizer=["adam", "sgd"],
                     overrides={"optimizer": {"sgd": {"lr": 0.1, "momentum": 0.9}}})
    assert len(cfgs) == 12
    assert [(c.model.arch, c.model.width_mult, c.optimizer) for c in cfgs[:3]] == [
        ("mlp", 0.5, "adam"), ("mlp", 0.5, "sgd"), ("mlp", 1.0, "adam")]          # last axis fastest
    assert all((c.lr, c.momentum) == ((0.1, 0.9) if c.optimizer == "sgd" else (1e-2, 0.0)) for c in cfgs)
    assert all(c.epochs == 1 and c.checkpoints == () for c in cfgs)
    assert make_grid(BASE, width_mult=[1.0, 1.0], seed=[0])[0].key() == BASE.replace(width_mult=1.0).key()
    assert len(make_grid(BASE, width_mult=[1.0, 1.0])) == 1                          # duplicates dropped
    assert make_grid(BASE, seed=[3], init_checkpoint=True)[0].checkpoints == (0,)
    assert make_grid(BASE, dataset=["digits"], init=["he"])[0].model.init == "he_normal"
    with pytest.raises(ValueError, match="unknown config field"):
        make_grid(BASE, colour=["red"])
    with pytest.raises(ValueError, match="no values"):
        make_grid(BASE, seed=[])
    with pytest.raises(ValueError, match="sequence"):
        make_grid(BASE, arch="mlp")
    with pytest.raises(ValueError, match="not an axis"):
        make_grid(BASE, seed=[0], overrides={"optimizer": {"sgd": {"lr": 0.1}}})


def test_run_point_measures_what_it_says(tmp_path):
    from prunekit.core.store import build, train_or_load
    from prunekit.core.data import load_dataset
    from prunekit.measures.density import effective_density, model_hoyer_sparsity

    cfg = BASE.replace(width_mult=2.0, seed=1, checkpoints=(0,))
    row = run_point(cfg, POINT, model_root=tmp_path / "m", points_root=tmp_path / "p")
    assert list(row) == RESULT_COLUMNS
    run = train_or_load(cfg, root=tmp_path / "m")
    ds = load_dataset(cfg.data)
    ed = effective_density(run.model, ds.test)
    assert (row["params"], row["core_params"], row["density"]) == (ed.params, ed.core_params, ed.density)
    assert row["params"] == 64 * 32 + 32 * 16 and row["core_params"] == row["params"] - row["pruned"]
    # the search evaluates in batches of 256, training's history in one batch: the same up to a float rounding tie
    assert row["dense_accuracy"] == pytest.approx(run.history["test_accuracy"].iloc[-1], abs=1.01 / len(ds.test))
    assert row["hoyer_trained"] == pytest.approx(model_hoyer_sparsity(run.model))
    # Hoyer at init: checkpoint 0 and the seeded re-initialisation are the same weights
    assert row["hoyer_init"] == pytest.approx(model_hoyer_sparsity(run.model_at(0)))
    assert row["hoyer_init"] == pytest.approx(model_hoyer_sparsity(build(cfg)))
    assert row["hoyer_init"] != pytest.approx(row["hoyer_trained"])
    # stored atomically under the point key, nothing temporary left behind
    files = sorted(p.name for p in (tmp_path / "p").iterdir())
    assert files == [f"{point_key(cfg, POINT)}.json"]
    stored = json.loads((tmp_path / "p" / files[0]).read_text())
    assert stored["row"] == row and len(stored["sha256"]) == 64 and read_point(tmp_path / "p" / files[0]) == row
    # a digit changed in the stored row is found: the point is measured again, with a warning that names it
    (tmp_path / "p" / files[0]).write_text(json.dumps({**stored, "row": {**row, "density": row["density"] + 0.01}}))
    with pytest.warns(UserWarning, match=f"{point_key(cfg, POINT)}.json does not match its checksum"):
        assert read_point(tmp_path / "p" / files[0]) is None
    assert point_key(cfg, POINT) != point_key(cfg, DensityPoint(tolerance=0.1)) != point_key(
        cfg, DensityPoint(scope="layerwise"))
    assert point_key(cfg, DensityPoint(scope="layer")) == point_key(cfg, DensityPoint(scope="layerwise"))
    assert point_key(cfg, DensityPoint(step=0.01, resolution=1e-3)) == point_key(cfg, POINT) != point_key(
        cfg, DensityPoint(step=0.02))


def test_resume_failures_and_corrupt_points(tmp_path, monkeypatch):
    import prunekit.core.store

    cfgs = make_grid(BASE, width_mult=[0.5, 1.0], seed=[0, 1])
    bad = BASE.replace(arch="conv", hidden=None, dataset="cosine", loss="sse")   # valid config, but conv needs images
    roots = dict(model_root=tmp_path / "m", points_root=tmp_path / "p", progress=False)
    first = run_sweep(cfgs[:2], POINT, **roots)                             # "interrupted" after two points
    assert len(first.results) == 2 and first.ok

    trained = []
    real = prunekit.core.store.train_or_load

    def counting(cfg, *a, **k):
        trained.append(cfg.key())
        return real(cfg, *a, **k)

    monkeypatch.setattr(prunekit.core.store, "train_or_load", counting)
    (tmp_path / "p" / f"{point_key(cfgs[1], POINT)}.json").write_text('{"truncated": ')   # an unreadable point
    with pytest.warns(RuntimeWarning, match="1 of 5 sweep points failed"):
        res = run_sweep([*cfgs, bad], POINT, **roots)
    # only the missing points and the unreadable one ran; the bad point is reported, the others kept
    assert sorted(trained) == sorted(c.key() for c in [cfgs[1], cfgs[2], cfgs[3], bad])
    assert len(res.results) == 4 and list(res.results["key"]) == [c.key() for c in cfgs]
    assert len(res.failures) == 1 and not res.ok
    fail = res.failures.iloc[0]
    assert fail["arch"] == "conv" and fail["dataset"] == "cosine" and fail["key"] == bad.key()
    assert "ValueError" in fail["error"] and "4x4" in fail["error"] and "Traceback" in fail["traceback"]
    assert json.loads(fail["config"])["model"]["arch"] == "conv"
    with pytest.raises(RuntimeError, match="1 sweep point"):
        res.raise_if_failed()
    pd.testing.assert_frame_equal(_stable(res.results.iloc[:2]), _stable(first.results))
    with pytest.raises(ValueError, match="workers"):
        run_sweep(cfgs, POINT, workers=0)
    with pytest.raises(ValueError, match="scope"):
        run_sweep(cfgs, DensityPoint(scope="neuron"))
    with pytest.raises(ValueError, match="measure"):
        run_sweep(cfgs, lambda cfg: {})  # no spec(), no columns


def test_dask_local_cluster_equals_in_process(tmp_path):
    cfgs = make_grid(BASE, width_mult=[0.25, 1.0, 3.0], optimizer=["adam", "sgd"])
    bad = BASE.replace(arch="conv", hidden=None, dataset="cosine", loss="sse")
    local = run_sweep(cfgs, POINT, threads=1, model_root=tmp_path / "m1", points_root=tmp_path / "p1", progress=False)
    with pytest.warns(RuntimeWarning, match="failed"):
        dist = run_sweep([*cfgs, bad], POINT, workers=2, model_root=tmp_path / "m2", points_root=tmp_path / "p2",
                         progress=False)
    assert local.mode == "in-process" and dist.mode.startswith("dask LocalCluster(2")
    assert len(dist.failures) == 1 and dist.failures.iloc[0]["key"] == bad.key()
    assert len(local.results) == len(cfgs) == 6
    # trained separately (separate caches) in other processes: the same numbers, bitwise
    pd.testing.assert_frame_equal(_stable(local.results), _stable(dist.results), check_exact=True)
    assert local.results["density"].between(0, 1).all() and not local.results["hoyer_init"].isna().any()
    # each task used its worker's cores: 1 thread per worker on this host's share
    import os

    assert (dist.results["threads"] == max(1, len(os.sched_getaffinity(0)) // 2)).all()
    assert len(list((tmp_path / "p2").glob("*.json"))) == 6


def test_expected_cost_counts_the_forward_flops_of_the_samples_a_point_sees():
    """Hand count for the MLP 64-16-8-10 on digits: a forward pass is 2 x (64*16 + 16*8 + 8*10) = 2,464 FLOPs per
    sample (multiply-adds of the three matrix products; biases and ReLUs are not counted), seen 3 x epochs x train
    (forward and backward) plus 100 x the measured samples; a config that cannot be built costs 0."""
    from prunekit.core.data import load_dataset
    def expected_cost(cfg, eval_subset=None):
        return DensityPoint(eval_subset=eval_subset).cost(cfg)

    ds = load_dataset(BASE.data)
    assert ds.input_shape == (1, 8, 8) and ds.num_classes == 10  # 64 inputs once flattened
    cfg = BASE.replace(epochs=3)
    assert expected_cost(cfg) == 2464 * (3 * 3 * len(ds.train) + 100 * len(ds.test))
    assert expected_cost(cfg, eval_subset=50) == 2464 * (3 * 3 * len(ds.train) + 100 * 50)
    assert expected_cost(cfg, eval_subset=10**6) == expected_cost(cfg)  # a subset larger than the split: all of it
    assert expected_cost(cfg.replace(width_mult=2.0)) > expected_cost(cfg)
    assert expected_cost(BASE.replace(arch="conv", hidden=None, dataset="cosine", loss="sse")) == 0.0


def test_points_start_costliest_first_ties_in_config_order():
    """Dask runs a higher priority first: the costliest point gets the highest, equal costs keep the config order,
    and no priority is above Dask's default 0; points are submitted in that order."""
    from prunekit.core.sweep import _priorities

    priorities = _priorities({0: 5.0, 1: 9.0, 2: 5.0, 3: 1.0, 7: 0.0})
    assert sorted(priorities, key=priorities.get, reverse=True) == [1, 0, 2, 3, 7] == list(priorities)
    assert max(priorities.values()) == 0 and len(set(priorities.values())) == 5
    assert _priorities({}) == {} and _priorities({4: 2.0}) == {4: 0}


class _Params:
    """A measure of one's own: the number of parameters of the trained model (picklable: a module-level class)."""

    columns = ["arch", "width_mult", "params", "threads", "device", "key", "point_key"]

    def spec(self) -> dict:
        return {"measure": "params", "version": 1}

    def __call__(self, cfg, model_root=None) -> dict:
        from prunekit.core.prunable import count_parameters
        from prunekit.core.store import train_or_load

        run = train_or_load(cfg, quiet=True, root=model_root)
        return {"arch": cfg.model.arch, "width_mult": cfg.model.width_mult, "params": count_parameters(run.model)}


def test_a_sweep_runs_any_measure(tmp_path):
    cfgs = make_grid(BASE, width_mult=[0.5, 1.0])
    res = run_sweep(cfgs, _Params(), model_root=tmp_path / "m", points_root=tmp_path / "p", progress=False)
    assert list(res.results.columns) == _Params.columns and res.ok
    assert list(res.results["params"]) == [64 * 8 + 8 + 8 * 4 + 4 + 4 * 10 + 10, 64 * 16 + 16 + 16 * 8 + 8 + 8 * 10 + 10]
    assert point_key(cfgs[0], _Params()) != point_key(cfgs[0], POINT)  # one config, two measures: two stored rows


def test_models_trained_together_first_give_the_points_of_models_trained_alone(tmp_path, monkeypatch):
    """run_sweep trains the models of a measure that trains_config in groups first; each point then loads
    its model, bitwise the one it would have trained alone, so the rows are those of a sweep without groups."""
    import prunekit.core.many as many
    from prunekit.core.runtime import thread_ceiling

    cfgs = make_grid(BASE, width_mult=[0.5, 2.0], seed=[0, 1]) + [BASE.replace(lr=0.1)]  # the last trains alone
    groups = []
    real = many.fit_many
    monkeypatch.setattr(many, "fit_many", lambda cs, *a, **k: groups.append(len(cs)) or real(cs, *a, **k))
    monkeypatch.setenv("PRUNEKIT_THREADS", "1")
    with thread_ceiling(1):
        together = run_sweep(cfgs, POINT, model_root=tmp_path / "m1", points_root=tmp_path / "p1", progress=False)
        alone = run_sweep(cfgs, POINT, model_root=tmp_path / "m2", points_root=tmp_path / "p2", progress=False,
                          group_training=False)
    assert groups == [4]
    pd.testing.assert_frame_equal(_stable(together.results), _stable(alone.results), check_exact=True)
