"""Every study function on CUDA against the CPU, CUDA determinism, and a GPU-trained model loaded on the CPU.

Run on a GPU machine with ``make test-gpu`` (or ``pytest -m cuda``); skipped where torch sees no CUDA device (CI).
Tolerances: float32 outputs agree to ``atol=1e-4`` (other kernels, other summation order); accuracies to one sample
(``1 / N``), since a logit near a tie may fall either side; float64 saliencies to ``rtol=1e-9``.
"""

import copy

import pytest
import torch

from prunekit.measures import curves

from prunekit.measures import density as metrics

from prunekit.pruning import select as pruning

from prunekit.measures import saliency

from prunekit.measures import surface

from prunekit.measures import utility
from prunekit.core.store import fit, train_or_load
from prunekit.core.config import DataConfig, ModelConfig, TrainConfig
from prunekit.core.data import load_dataset
from prunekit.core.device import dataset_to
from prunekit.core.prunable import prunable_parameters
from prunekit.core.train import evaluate, predict

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (make test-gpu)")]

CFG = TrainConfig(data=DataConfig("digits"), model=ModelConfig("mlp", hidden=(32, 16)), epochs=2, batch_size=64)


@pytest.fixture(scope="module")
def pair():
    """A CPU-trained model, its copy on CUDA, and the digits data set on both devices."""
    run = fit(CFG, quiet=True)
    ds = load_dataset(CFG.data)
    return run.model.eval(), copy.deepcopy(run.model).cuda(), ds, dataset_to(ds, "cuda")


def test_cuda_training_is_bitwise_repeatable_and_stays_on_the_gpu():
    cfg = CFG.replace(device="cuda")
    a, b = fit(cfg, quiet=True), fit(cfg, quiet=True)
    for k, v in a.model.state_dict().items():
        assert v.is_cuda and torch.equal(v, b.model.state_dict()[k]), k
    assert a.history["train_loss"].equals(b.history["train_loss"])


def test_a_gpu_trained_model_loads_on_the_cpu(tmp_path, monkeypatch):
    cfg = CFG.replace(device="cuda")
    gpu = train_or_load(cfg, root=tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cpu = train_or_load(cfg, root=tmp_path)
    assert cpu.cached and all(not p.is_cuda for p in cpu.model.parameters())
    for k, v in gpu.model.state_dict().items():
        assert torch.equal(cpu.model.state_dict()[k], v.cpu()), k


def test_evaluate_and_predict(pair):
    cpu, gpu, ds, dsg = pair
    torch.testing.assert_close(predict(gpu, dsg.test.x).cpu(), predict(cpu, ds.test.x), atol=1e-4, rtol=0)
    torch.testing.assert_close(predict(gpu, ds.test.x).cpu(), predict(cpu, ds.test.x), atol=1e-4, rtol=0)
    (lc, ac), (lg, ag) = evaluate(cpu, ds.test), evaluate(gpu, dsg.test)
    assert abs(lc - lg) < 1e-4 and abs(ac - ag) <= 1 / len(ds.test)


def test_masks_and_pruning_curve(pair):
    cpu, gpu, ds, dsg = pair
    for k in (0, 50, 90):
        for mc, mg in zip(pruning.weight_masks(prunable_parameters(cpu), k, "global"),
                          pruning.weight_masks(prunable_parameters(gpu), k, "global")):
            assert mg.is_cuda and torch.equal(mc, mg.cpu())
    kw = dict(ks=[0, 50, 90], methods=["weight", "unit", "random_weight"], scopes=["layerwise", "global"])
    c = curves.pruning_curve(cpu, prunable_parameters(cpu), ds.test, **kw)
    g = curves.pruning_curve(gpu, prunable_parameters(gpu), dsg.test, **kw)
    assert (c["accuracy"] - g["accuracy"]).abs().max() <= 1 / len(ds.test)


def test_effective_density(pair):
    cpu, gpu, ds, dsg = pair
    c, g = metrics.effective_density(cpu, ds.test), metrics.effective_density(gpu, dsg.test)
    # one sample flipping at a level near the threshold moves the first crossing by up to one scan step (1% of |θ|)
    assert abs(c.core_params - g.core_params) <= 0.01 * c.params + 1
    assert abs(metrics.model_hoyer_sparsity(cpu) - metrics.model_hoyer_sparsity(gpu)) < 1e-5


def test_random_ablation_and_utility(pair):
    cpu, gpu, ds, dsg = pair
    for method in ("batched", "loop"):
        c = utility.random_ablation(cpu, ds.test.x, ds.test.y, (0.1, 0.5), n_subsets=20, method=method)
        g = utility.random_ablation(gpu, dsg.test.x, dsg.test.y, (0.1, 0.5), n_subsets=20, method=method)
        assert (c["accuracy"] - g["accuracy"]).abs().max() <= 1 / len(ds.test)
        assert (c["utility"] - g["utility"]).abs().max() < 1e-4
    subset = torch.zeros(sum(m.weight.numel() for m, _ in prunable_parameters(cpu)), dtype=torch.bool)
    subset[::7] = True
    assert abs(utility.utility(cpu, ds.test.x, subset) - utility.utility(gpu, dsg.test.x, subset)) < 1e-4


def test_saliencies_and_serial_pruning(pair):
    cpu, gpu, ds, dsg = pair
    x, y = ds.train.x[:200], ds.train.y[:200]
    nc, ng = saliency.from_model(cpu, "cross_entropy"), saliency.from_model(gpu, "cross_entropy")
    for est in ("first_order", "second_order", "brute_force"):
        sc, sg = saliency.saliencies(nc, x, y, est), saliency.saliencies(ng, x.cuda(), y.cuda(), est)
        torch.testing.assert_close(sg.cpu(), sc, rtol=1e-9, atol=1e-12)
    rc = saliency.serial_prune(nc, x, y, "second_order")
    rg = saliency.serial_prune(ng, x.cuda(), y.cuda(), "second_order")
    assert list(rc.order) == list(rg.order)


def test_plane_point_evaluation(pair):
    cpu, gpu, ds, dsg = pair
    wc = surface.flatten(cpu)
    plane_c = surface.Plane.through(wc, wc * 0.5, wc.flip(0))
    plane_g = surface.Plane.through(wc.cuda(), wc.cuda() * 0.5, wc.flip(0).cuda())
    rc = surface.evaluate_point(copy.deepcopy(cpu), plane_c.point(0.3, 0.2), ds.test)
    rg = surface.evaluate_point(copy.deepcopy(gpu), plane_g.point(0.3, 0.2), dsg.test)
    assert abs(rc["test"][0] - rg["test"][0]) < 1e-4


def test_magnitude_ablation_weights_frame_and_rank_agreement(pair):
    from prunekit.studies import s001_shrinking as shrinking
    from prunekit.report.tables import layer_weights_frame

    cpu, gpu, ds, dsg = pair
    c = utility.magnitude_ablation(cpu, ds.test.x, ds.test.y, n_bands=4, ratios=(0.5,), n_subsets=5)
    g = utility.magnitude_ablation(gpu, dsg.test.x, dsg.test.y, n_bands=4, ratios=(0.5,), n_subsets=5)
    assert (c["accuracy"] - g["accuracy"]).abs().max() <= 1 / len(ds.test)
    assert layer_weights_frame(gpu)["magnitude"].sub(layer_weights_frame(cpu)["magnitude"]).abs().max() == 0
    x, y = ds.train.x[:100], ds.train.y[:100]
    rc = shrinking.rank_agreement(saliency.from_model(cpu, "cross_entropy"), x, y)
    rg = shrinking.rank_agreement(saliency.from_model(gpu, "cross_entropy"), x.cuda(), y.cuda())
    assert (rc["spearman"] - rg["spearman"]).abs().max() < 1e-6


def test_a_residual_net_trains_on_cuda():
    cfg = TrainConfig(data=DataConfig("digits"), model=ModelConfig("resnet", width_mult=0.25), epochs=1,
                      batch_size=64, device="cuda")
    run = fit(cfg, quiet=True)  # adaptive pooling has no deterministic CUDA backward: a warning, not an error
    assert all(p.is_cuda for p in run.model.parameters()) and run.history["train_loss"].notna().all()
