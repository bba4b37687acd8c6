"""Every fast path on CUDA against the CPU, and CUDA training's engines against each other.

Run on a GPU machine with ``make test-gpu`` (or ``pytest -m cuda``); skipped where torch sees no CUDA device.
``PRUNEKIT_CUDA_TESTS_ON=cpu`` runs them with the CPU standing in for the GPU: a check of the tests' own code (every
comparison is then CPU against CPU), not of CUDA.

Tolerances, GPU against CPU (other kernels, other summation order): float32 outputs, losses and utilities within
``1e-4`` absolute; accuracies within one sample (``1 / N``: a logit near a tie may fall either side); effective
density's core within one scan step (1% of |θ|) plus one weight, since one sample flipping near the threshold moves
the first failing level by a step; float64 saliencies within ``rtol=1e-9``; the stacked engine against itself on
the CPU within the tolerances of tests/core/test_stacked.py. CUDA against CUDA (graphs against the eager step, a
group against its networks one by one, a rerun): bitwise.
"""

import copy
import os

import pandas as pd
import pytest
import torch

from prunekit.core.config import DataConfig, ModelConfig, TrainConfig
from prunekit.core.data import load_dataset
from prunekit.core.device import dataset_to
from prunekit.core.prunable import prunable_parameters
from prunekit.core.store import fit

DEV = os.environ.get("PRUNEKIT_CUDA_TESTS_ON", "cuda")
pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(DEV == "cuda" and not torch.cuda.is_available(),
                                 reason="needs a CUDA device (make test-gpu)")]



@pytest.fixture(autouse=True)
def _pinned_threads_on_a_stand_in_cpu(monkeypatch):
    """On the CPU standing in, one thread: its kernels repeat bitwise for a fixed count (prunekit.core.runtime)."""
    if DEV != "cpu":
        yield
        return
    from prunekit.core.runtime import thread_ceiling

    monkeypatch.setenv("PRUNEKIT_THREADS", "1")
    with thread_ceiling(1):
        yield


CFG = TrainConfig(data=DataConfig("digits"), model=ModelConfig("lenet300", width_mult=0.2), epochs=2, batch_size=64)
TIMING = ["seconds", "threads"]


@pytest.fixture(scope="module")
def pair():
    """A CPU-trained LeNet, its copy on the device, and the digits data set on both."""
    run = fit(CFG, quiet=True)
    ds = load_dataset(CFG.data)
    return run.model.eval(), copy.deepcopy(run.model).to(DEV), ds, dataset_to(ds, DEV)


@pytest.fixture(scope="module")
def conv_pair():
    cfg = TrainConfig(data=DataConfig("digits"), model=ModelConfig("conv", width_mult=0.25), epochs=2, batch_size=64)
    run = fit(cfg, quiet=True)
    ds = load_dataset(cfg.data)
    return run.model.eval(), copy.deepcopy(run.model).to(DEV), ds, dataset_to(ds, DEV)


def _bitwise(a, b):
    sa, sb = a.model.state_dict(), b.model.state_dict()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    pd.testing.assert_frame_equal(a.history.drop(columns=TIMING), b.history.drop(columns=TIMING), check_exact=True)
    for epoch, sd in a.checkpoints.items():
        for k, v in sd.items():
            assert torch.equal(v, b.checkpoints[epoch][k]), (epoch, k)


# ------------------------------------------------------------------------------------ the incremental density search
def test_incremental_density_evaluator_on_the_gpu_equals_the_cpu(pair):
    """A failure once found (the CSR delta's indices on the CPU, its values on the GPU)."""
    from prunekit.measures import density
    from prunekit.measures._density_eval import IncrementalMLP

    cpu, gpu, ds, dsg = pair
    n = sum(m.weight.numel() for m, _ in prunable_parameters(cpu))
    levels = [0, n // 3, n // 2, (9 * n) // 10, n // 4, n]  # up, down and up again
    for scope in ("global", "layerwise"):
        with IncrementalMLP(cpu, ds.test, scope=scope) as c, IncrementalMLP(gpu, dsg.test, scope=scope) as g:
            assert g.row_pruned.is_cuda == (DEV == "cuda") and all(t.device == g.w1.device for t in g.by_layer)
            for k in levels:
                assert abs(c.accuracy(k) - g.accuracy(k)) <= 1 / len(ds.test), (scope, k)
        fast = density.effective_density(gpu, dsg.test, scope=scope, incremental=True)
        plain = density.effective_density(gpu, dsg.test, scope=scope, incremental=False)
        on_cpu = density.effective_density(cpu, ds.test, scope=scope, incremental=True)
        assert (fast.pruned, fast.core_accuracy) == (plain.pruned, plain.core_accuracy)
        assert abs(fast.core_params - on_cpu.core_params) <= 0.01 * on_cpu.params + 1


# ------------------------------------------------------------------------------------------------- the ablations
@pytest.mark.parametrize("which", ["mlp", "conv"])  # the hand-written GEMM path, the functional_call path
def test_ablation_engine_batched_and_loop_on_the_gpu_equal_the_cpu(pair, conv_pair, which):
    from prunekit.measures import utility

    cpu, gpu, ds, dsg = pair if which == "mlp" else conv_pair
    x, y = ds.test.x[:300], ds.test.y[:300]
    for method in ("batched", "loop"):
        c = utility.random_ablation(cpu, x, y, (0.1, 0.5), n_subsets=16, method=method)
        g = utility.random_ablation(gpu, x.to(DEV), y.to(DEV), (0.1, 0.5), n_subsets=16, method=method)
        assert (c["accuracy"] - g["accuracy"]).abs().max() <= 1 / len(x), method
        assert (c["utility"] - g["utility"]).abs().max() < 1e-4, method
    for m in (cpu, gpu):  # weights restored bitwise after the loop's in-place masks
        assert all(torch.equal(a.cpu(), b.cpu()) for a, b in zip(cpu.state_dict().values(), m.state_dict().values()))


# ------------------------------------------------------------------------------------- compacted and CSR inference
def test_compacted_and_csr_inference_on_the_gpu_equal_the_cpu(pair):
    from prunekit.core.train import predict
    from prunekit.pruning import select
    from prunekit.pruning.compaction import compact_mlp, to_sparse_csr
    from prunekit.pruning.masks import masks_applied

    cpu, gpu, ds, dsg = pair
    outputs = []
    for model, x in ((cpu, ds.test.x), (gpu, dsg.test.x)):
        params = prunable_parameters(model)
        unit_masks, weight_masks = select.unit_masks(params, 50, "layerwise"), select.weight_masks(params, 80, "global")
        with masks_applied(params, weight_masks):
            dense = predict(model, x)
        sparse = to_sparse_csr(model, weight_masks)
        torch.testing.assert_close(predict(sparse, x), dense, atol=1e-4, rtol=0)
        with masks_applied(params, unit_masks):
            dense_units = predict(model, x)
        compact = compact_mlp(model, unit_masks)
        torch.testing.assert_close(predict(compact, x), dense_units, atol=1e-4, rtol=0)
        outputs.append((predict(sparse, x).cpu(), predict(compact, x).cpu()))
    for c, g in zip(*outputs):
        torch.testing.assert_close(g, c, atol=1e-4, rtol=0)


# ------------------------------------------------------------------------------ saliencies and serial unit pruning
def test_every_saliency_estimator_and_serial_pruning_on_the_gpu_equal_the_cpu(pair):
    from prunekit.measures import saliency

    cpu, gpu, ds, _ = pair
    x, y = ds.train.x[:150], ds.train.y[:150]
    nc, ng = saliency.from_model(cpu, "cross_entropy"), saliency.from_model(gpu, "cross_entropy")
    for est in ("first_order", "second_order", "brute_force"):
        sc, sg = saliency.saliencies(nc, x, y, est), saliency.saliencies(ng, x.to(DEV), y.to(DEV), est)
        torch.testing.assert_close(sg.cpu(), sc, rtol=1e-9, atol=1e-12)
        rc = saliency.serial_prune(nc, x, y, est)
        rg = saliency.serial_prune(ng, x.to(DEV), y.to(DEV), est)
        assert list(rc.order) == list(rg.order), est


# ------------------------------------------------------------------------------------------------ the loss plane
def test_the_plane_on_the_gpu_equals_the_cpu(pair, conv_pair):
    from prunekit.measures import surface

    for cpu, gpu, ds, dsg in (pair, conv_pair):  # the conv net's batch norm recalibrated at every point
        w = surface.flatten(cpu)
        plane_c = surface.Plane.through(w, w * 0.5, w.flip(0))
        plane_g = surface.Plane.through(w.to(DEV), (w * 0.5).to(DEV), w.flip(0).to(DEV))
        splits_c = {"test": ds.test}
        splits_g = {"test": dsg.test}
        gc, ac = surface.plane_surface(copy.deepcopy(cpu), plane_c, splits_c, n=3, bn_data=ds.train.x[:256])
        gg, ag = surface.plane_surface(copy.deepcopy(gpu), plane_g, splits_g, n=3, bn_data=dsg.train.x[:256])
        assert (gc["loss"] - gg["loss"]).abs().max() < 1e-4
        assert (gc["accuracy"] - gg["accuracy"]).abs().max() <= 1 / len(ds.test)
        assert (ac["loss"] - ag["loss"]).abs().max() < 1e-4


# ----------------------------------------------------------------------------------------------- pruning curves
def test_pruning_curves_with_compaction_on_the_gpu_equal_the_cpu(pair):
    from prunekit.measures import curves

    cpu, gpu, ds, dsg = pair
    kw = dict(ks=[0, 30, 60, 90], methods=["weight", "unit", "random_unit"], scopes=["layerwise", "global"])
    c = curves.pruning_curve(cpu, prunable_parameters(cpu), ds.test, **kw)
    g = curves.pruning_curve(gpu, prunable_parameters(gpu), dsg.test, **kw)
    assert list(c["form"]) == list(g["form"])  # the compacted form where it applies, on both
    assert (c["accuracy"] - g["accuracy"]).abs().max() <= 1 / len(ds.test)
    assert (c["loss"] - g["loss"]).abs().max() < 1e-4


# -------------------------------------------------------------------------------- training: graphs, groups, stacks
TRAINED = {"mlp-adam-cosine": CFG.replace(schedule="cosine", checkpoints=(0, 1)),
           "conv-sgd-step": CFG.replace(model=ModelConfig("conv", width_mult=0.25), optimizer="sgd", lr=0.05,
                                        momentum=0.9, schedule="step", epochs=3),
           "resnet20-adagrad": CFG.replace(model=ModelConfig("resnet20", width_mult=0.25), optimizer="adagrad",
                                           lr=0.02),
           "mask-held": CFG.replace(init="he", init_density=0.5),
           "sse": CFG.replace(loss="sse", model=ModelConfig("mlp", hidden=(32,), activation="sigmoid"))}


@pytest.mark.parametrize("name", list(TRAINED))
def test_the_captured_step_trains_bitwise_as_the_eager_step(name, monkeypatch, recwarn):
    cfg = TRAINED[name].replace(device=DEV)
    monkeypatch.setenv("PRUNEKIT_CUDA_GRAPHS", "1")
    graphed = fit(cfg, quiet=True)
    assert not [w for w in recwarn if "graph capture" in str(w.message)], "the capture fell back to eager"
    monkeypatch.setenv("PRUNEKIT_CUDA_GRAPHS", "0")
    _bitwise(graphed, fit(cfg, quiet=True))


def test_graphs_keep_resume_files_and_callbacks_exact(tmp_path, monkeypatch):
    from prunekit.core.store import build
    from prunekit.core.train import train

    cfg = TRAINED["mlp-adam-cosine"].replace(device=DEV, epochs=3)
    ds = load_dataset(cfg.data)
    seen = []

    class Stop(Exception):
        pass

    def stop_after_two(epoch, model):
        seen.append((epoch, model[1].weight.detach().clone()))
        if epoch == 2:
            raise Stop

    model = build(cfg, ds).to(DEV)
    with pytest.raises(Stop):
        train(model, ds, cfg, quiet=True, resume_path=tmp_path / "p.pt", callback=stop_after_two)
    resumed = build(cfg, ds).to(DEV)
    h, _ = train(resumed, ds, cfg, quiet=True, resume_path=tmp_path / "p.pt")
    monkeypatch.setenv("PRUNEKIT_CUDA_GRAPHS", "0")
    eager = build(cfg, ds).to(DEV)
    seen_eager = []
    he, _ = train(eager, ds, cfg, quiet=True, callback=lambda e, m: seen_eager.append((e, m[1].weight.detach().clone())))
    for k, v in resumed.state_dict().items():
        assert torch.equal(v, eager.state_dict()[k]), k
    assert h["train_loss"].tolist() == he["train_loss"].tolist()
    for (e1, w1), (e2, w2) in zip(seen, seen_eager):  # the callback sees the graph's weights after each epoch
        assert e1 == e2 and torch.equal(w1, w2)


@pytest.mark.parametrize("graphs", ["1", "0"])
def test_a_group_on_the_gpu_is_bitwise_its_networks_one_by_one(graphs, monkeypatch):
    from prunekit.core.many import fit_many

    monkeypatch.setenv("PRUNEKIT_CUDA_GRAPHS", graphs)
    cfgs = [TRAINED["mlp-adam-cosine"].replace(device=DEV, seed=s) for s in (0, 1)] + [
        TRAINED["mlp-adam-cosine"].replace(device=DEV, model=ModelConfig("conv", width_mult=0.25), seed=2),
        TRAINED["mlp-adam-cosine"].replace(device=DEV, init_density=0.5, init="he", seed=3),
        TRAINED["mlp-adam-cosine"].replace(device=DEV, seed=4, patience=1, min_improvement=0.9)]
    for cfg, run in zip(cfgs, fit_many(cfgs, quiet=True)):
        _bitwise(run, fit(cfg, quiet=True))


def test_a_stack_on_the_gpu_repeats_and_lands_near_the_cpus_stack():
    from prunekit.core.many import fit_stack

    cfg = CFG.replace(optimizer="sgd", lr=0.05, momentum=0.9, stack=(0, 1, 2))
    on_gpu = fit_stack(cfg.replace(device=DEV), quiet=True)
    again = fit_stack(cfg.replace(device=DEV), quiet=True)
    on_cpu = fit_stack(cfg, quiet=True)
    for g, a, c in zip(on_gpu, again, on_cpu):
        _bitwise(g, a)
        for k, v in g.model.state_dict().items():
            torch.testing.assert_close(v.cpu(), c.model.state_dict()[k], atol=1e-4, rtol=0)


def test_models_trained_together_on_the_gpu_load_on_a_cpu_machine(tmp_path, monkeypatch):
    from prunekit.core.many import train_or_load_many
    from prunekit.core.store import train_or_load

    cfgs = [CFG.replace(device="cuda", seed=s) for s in (0, 1)]
    if DEV != "cuda":
        pytest.skip("needs CUDA for the CUDA-trained entries")
    runs = train_or_load_many(cfgs, root=tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for cfg, run in zip(cfgs, runs):
        loaded = train_or_load(cfg, root=tmp_path)
        assert loaded.cached and all(not p.is_cuda for p in loaded.model.parameters())
        for k, v in run.model.state_dict().items():
            assert torch.equal(loaded.model.state_dict()[k], v.cpu()), k
