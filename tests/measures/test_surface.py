"""The plane through three networks (Gram-Schmidt, anchors exact, colinear -> ValueError) and the linear path."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from prunekit.measures import surface as S
from prunekit.core.config import ModelConfig
from prunekit.core.data import Split
from prunekit.core.models import MLP, build_model
from prunekit.core.train import evaluate


def _three_mlps():
    torch.manual_seed(0)
    a = MLP(6, (8,), 3, "relu").eval()
    b = copy.deepcopy(a)
    with torch.no_grad():
        b[1].weight.masked_fill_(b[1].weight.abs() < 0.2, 0.0)  # "pruned"
    c = copy.deepcopy(b)
    with torch.no_grad():
        for p in c.parameters():
            p.add_(0.3 * torch.randn_like(p))  # "retrained"
    return a, b, c


def _splits(n=60, d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"train": Split(torch.randn(n, d, generator=g), torch.randint(0, 3, (n,), generator=g)),
            "test": Split(torch.randn(n // 2, d, generator=g), torch.randint(0, 3, (n // 2,), generator=g))}


def test_basis_orthonormal_and_plane_passes_through_points():
    w = [torch.randn(500, dtype=torch.float32) for _ in range(3)]
    plane = S.Plane.through(*w)
    assert float(plane.u @ plane.u) == pytest.approx(1.0, abs=1e-12)
    assert float(plane.v @ plane.v) == pytest.approx(1.0, abs=1e-12)
    assert abs(float(plane.u @ plane.v)) < 1e-12
    assert plane.coords["pretrained"] == (0.0, 0.0)
    assert plane.coords["pruned"][1] == pytest.approx(0.0, abs=1e-9)
    assert plane.coords["pruned"][0] == pytest.approx(float((w[1] - w[0]).double().norm()))
    for name, vec in zip(plane.names, w):
        a, b = plane.coords[name]
        assert torch.allclose(plane.point(a, b), vec, atol=1e-6)
        pa, pb, dist = plane.project(vec)
        assert (pa, pb) == pytest.approx((a, b), abs=1e-9) and dist < 1e-9
    # a point off the plane: coordinates of its projection, and its distance = the norm of its orthogonal part
    n = torch.randn(500, dtype=torch.float64)
    n -= (n @ plane.u) * plane.u + (n @ plane.v) * plane.v
    n /= n.norm()
    off = plane.origin + 2.0 * plane.u - 1.5 * plane.v + 3.0 * n
    assert plane.project(off) == pytest.approx((2.0, -1.5, 3.0), abs=1e-9)


def test_colinear_or_coincident_points_raise():
    w0, w1 = torch.randn(50), torch.randn(50)
    with pytest.raises(ValueError, match="colinear"):
        S.Plane.through(w0, w1, w0 + 2.5 * (w1 - w0))
    with pytest.raises(ValueError, match="colinear"):
        S.Plane.through(w0, w1, w0 - 0.5 * (w1 - w0) + 1e-9 * torch.randn(50))
    with pytest.raises(ValueError, match="coincides"):
        S.Plane.through(w0, w0.clone(), w1)
    with pytest.raises(ValueError):
        S.Plane.through(w0, w1, torch.randn(49))


def test_grid_margins():
    plane = S.Plane.through(torch.zeros(3), torch.tensor([2.0, 0, 0]), torch.tensor([1.0, 4.0, 0]))
    alphas, betas = plane.grid(n=21, margin=0.2)
    assert len(alphas) == len(betas) == 21
    assert alphas[0] == pytest.approx(-0.4) and alphas[-1] == pytest.approx(2.4)
    assert betas[0] == pytest.approx(-0.8) and betas[-1] == pytest.approx(4.8)
    with pytest.raises(ValueError):
        plane.grid(n=1)


def test_anchors_equal_the_models_own_metrics_and_model_restored():
    a, b, c = _three_mlps()
    splits = _splits()
    plane = S.Plane.through(S.flatten(a), S.flatten(b), S.flatten(c))
    host = copy.deepcopy(a)
    before = S.flatten(host)
    grid, anchors = S.plane_surface(host, splits, plane=plane, n=5, margin=0.2)
    assert torch.equal(S.flatten(host), before)
    assert len(grid) == 5 * 5 * 2 and set(grid["split"]) == {"train", "test"}
    assert np.isfinite(grid["loss"]).all()
    for name, model in zip(plane.names, (a, b, c)):
        for split, data in splits.items():
            lo, acc = evaluate(model, data)
            row = anchors[(anchors.point == name) & (anchors.split == split)].iloc[0]
            assert row["loss"] == pytest.approx(lo, rel=1e-5, abs=1e-6)
            assert row["accuracy"] == acc
    # the grid really varies over the plane, and the corner is the reconstructed weight vector
    assert grid[grid.split == "train"]["loss"].std() > 0
    corner = grid[(grid.i == 0) & (grid.j == 0) & (grid.split == "test")].iloc[0]
    S.write_vector_(host, plane.point(corner["alpha"], corner["beta"]))
    assert evaluate(host, splits["test"])[0] == pytest.approx(corner["loss"], rel=1e-6)


def test_batchnorm_statistics_recomputed_at_each_point():
    torch.manual_seed(0)
    shape = (1, 8, 8)
    nets = [build_model(ModelConfig("conv", width_mult=0.25), shape, 3) for _ in range(3)]
    g = torch.Generator().manual_seed(1)
    splits = {"train": Split(3 + 2 * torch.randn(64, *shape, generator=g), torch.randint(0, 3, (64,), generator=g)),
              "test": Split(3 + 2 * torch.randn(32, *shape, generator=g), torch.randint(0, 3, (32,), generator=g))}
    plane = S.Plane.through(*[S.flatten(n) for n in nets])
    host = copy.deepcopy(nets[0])
    buffers = {k: v.clone() for k, v in host.state_dict().items() if "running" in k}
    _, anchors = S.plane_surface(host, splits, plane=plane, n=2)
    for k, v in buffers.items():  # restored
        assert torch.equal(host.state_dict()[k], v)
    for name, net in zip(plane.names, nets):
        net = copy.deepcopy(net)
        stale = evaluate(net, splits["test"])[0]  # default statistics (mean 0, var 1) on data with mean 3
        S.recalibrate_bn(net, splits["train"].x)
        lo, acc = evaluate(net, splits["test"])
        row = anchors[(anchors.point == name) & (anchors.split == "test")].iloc[0]
        assert row["loss"] == pytest.approx(lo, rel=1e-4)
        assert row["loss"] != pytest.approx(stale, rel=1e-3)


def test_linear_path_ends_and_barrier():
    a, _, c = _three_mlps()
    splits = _splits()
    path = S.linear_path(copy.deepcopy(a), splits, w_a=S.flatten(a), w_b=S.flatten(c), n=7)
    assert len(path) == 14
    for t, model in ((0.0, a), (1.0, c)):
        row = path[(path.t == t) & (path.split == "test")].iloc[0]
        assert (row["loss"], row["accuracy"]) == pytest.approx(evaluate(model, splits["test"]), rel=1e-6)
    p = path[path.split == "test"]
    assert S.loss_barrier(path, "test") == pytest.approx(p["loss"].max() - 0.5 * (p["loss"].iloc[0]
                                                                                   + p["loss"].iloc[-1]))


def test_loss_barrier_hand_computed():
    path = pd.DataFrame({"t": [0, 0.5, 1.0], "split": "test", "loss": [0.2, 1.0, 0.4], "accuracy": [0.9, 0.5, 0.8]})
    assert S.loss_barrier(path) == pytest.approx(0.7)
    t = S.barrier_table(path).iloc[0]
    assert t["loss_barrier"] == pytest.approx(0.7)
    assert t["loss_barrier_linear"] == pytest.approx(1.0 - 0.3)
    assert t["accuracy_dip"] == pytest.approx(0.35)
    monotone = pd.DataFrame({"t": [0, 0.5, 1.0], "split": "test", "loss": [0.2, 0.3, 0.4], "accuracy": 1.0})
    assert S.barrier_table(monotone).iloc[0]["loss_barrier_linear"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError):
        S.loss_barrier(path, "train")


def test_vectors_roundtrip_and_prune_state_rejected():
    a, b, _ = _three_mlps()
    S.write_vector_(a, S.flatten(b))
    assert torch.equal(S.flatten(a), S.flatten(b))
    assert torch.equal(S.state_vector(a, b.state_dict()), S.flatten(b))
    with pytest.raises(ValueError):
        S.write_vector_(a, torch.zeros(3))
    torch.nn.utils.prune.identity(b[1], "weight")
    with pytest.raises(ValueError, match="plain_state_dict"):
        S.state_vector(a, b.state_dict())
