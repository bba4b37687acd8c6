import pickle
import struct

import numpy as np
import pytest
import torch
import torchvision

from prunekit.core.config import DataConfig
from prunekit.core.data import DatasetUnavailable, iterate_batches, load_dataset


def test_digits_embedded_split_and_normalisation():
    ds = load_dataset(DataConfig("digits"))
    assert ds.input_shape == (1, 8, 8) and ds.num_classes == 10
    assert len(ds.train) + len(ds.test) == 1797
    assert ds.train.x.dtype == torch.float32 and ds.train.y.dtype == torch.int64
    assert abs(float(ds.train.x.mean())) < 1e-4 and abs(float(ds.train.x.std()) - 1) < 1e-2
    # stratified: every class is in the test split in proportion
    counts = torch.bincount(ds.test.y, minlength=10)
    assert counts.min() >= 43 and counts.max() <= 46
    # fixed split: loading again (uncached) gives the same tensors
    from prunekit.core.data import _load_cached
    _load_cached.cache_clear()
    again = load_dataset(DataConfig("digits"))
    assert torch.equal(again.test.x, ds.test.x)


def test_batches_cover_the_split_and_shuffle_is_seeded():
    ds = load_dataset(DataConfig("digits"))
    ys = [y for _, y in iterate_batches(ds.train, 100, shuffle=True, generator=torch.Generator().manual_seed(1))]
    assert sum(len(y) for y in ys) == len(ds.train)
    assert torch.equal(torch.sort(torch.cat(ys)).values, torch.sort(ds.train.y).values)
    ys2 = [y for _, y in iterate_batches(ds.train, 100, shuffle=True, generator=torch.Generator().manual_seed(1))]
    assert all(torch.equal(a, b) for a, b in zip(ys, ys2))


def test_options_subset_resize_one_vs_all_classes_val():
    ds = load_dataset(DataConfig("digits", subset=500, val_fraction=0.2, seed=1))
    assert len(ds.train) == 400 and len(ds.val) == 100
    assert torch.bincount(ds.val.y, minlength=10).min() >= 9
    ova = load_dataset(DataConfig("digits", one_vs_all=3))
    assert ova.num_classes == 2 and set(ova.train.y.tolist()) == {0, 1}
    assert int(ova.train.y.sum()) == int((load_dataset(DataConfig("digits")).train.y == 3).sum())
    sub = load_dataset(DataConfig("digits", classes=(7, 2)))
    assert sub.num_classes == 2 and set(sub.test.y.tolist()) == {0, 1}
    small = load_dataset(DataConfig("digits", resize=4))
    assert small.input_shape == (1, 4, 4)
    with pytest.raises(ValueError, match="one_vs_all"):
        load_dataset(DataConfig("digits", one_vs_all=12))


def test_cosine_regression():
    ds = load_dataset(DataConfig("cosine"))
    assert ds.task == "regression" and ds.input_shape == (1, 1, 1) and ds.num_classes == 1
    x, y = ds.train.x.flatten(), ds.train.y.flatten()
    assert torch.allclose(y, 0.5 + 0.4 * torch.cos(x * torch.pi), atol=1e-6)


def test_mnist_offline_from_copied_files(mnist_env):
    ds = load_dataset(DataConfig("mnist"))
    assert ds.train.x.shape == (60000, 1, 28, 28) and ds.test.x.shape == (10000, 1, 28, 28)
    assert abs(ds.mean[0] - 0.1307) < 1e-3 and abs(ds.std[0] - 0.3081) < 1e-3
    sub = load_dataset(DataConfig("mnist", subset=5000, resize=20, normalize=False))
    assert sub.train.x.shape == (5000, 1, 20, 20) and sub.test.x.shape == (10000, 1, 20, 20)
    assert 0.0 <= float(sub.train.x.min()) and float(sub.train.x.max()) <= 1.0
    counts = torch.bincount(sub.train.y, minlength=10).float()
    full = torch.bincount(ds.train.y, minlength=10).float()
    assert torch.allclose(counts / 5000, full / 60000, atol=1e-3)  # stratified
    ova = load_dataset(DataConfig("mnist", one_vs_all=0))
    assert ova.num_classes == 2 and int(ova.test.y.sum()) == 980


def _canonical(t: torch.Tensor) -> bool:
    return t.stride() == torch.empty(t.shape).stride()


def test_images_have_canonical_nchw_strides(mnist_env):
    """A 1-channel NCHW view of NHWC data passes as channels_last too, and would switch every conv to that format."""
    for cfg in (DataConfig("digits"), DataConfig("mnist", subset=300, resize=14), DataConfig("mnist", subset=300)):
        ds = load_dataset(cfg)
        assert _canonical(ds.train.x) and _canonical(ds.test.x), (cfg, ds.train.x.stride())


def _idx(path, arr: np.ndarray, magic: int):
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic))
        for d in arr.shape:
            f.write(struct.pack(">I", d))
        f.write(arr.astype(np.uint8).tobytes())


def test_fashion_mnist_from_files_in_the_real_format(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("t10k", 20)):
        _idx(raw / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), 2051)
        _idx(raw / f"{split}-labels-idx1-ubyte", np.arange(n) % 10, 2049)
    ds = load_dataset(DataConfig("fashion_mnist"), root=tmp_path)
    assert ds.train.x.shape == (40, 1, 28, 28) and ds.test.y.tolist() == [i % 10 for i in range(20)]


def test_cifar10_from_files_in_the_real_format(tmp_path, monkeypatch):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        entry = {"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), "labels": [0, 1, 2, 3]}
        (folder / name).write_bytes(pickle.dumps(entry))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
    # the synthetic files cannot carry the real md5 sums that torchvision checks
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args, **kwargs: True)
    ds = load_dataset(DataConfig("cifar10", resize=16), root=tmp_path)
    assert ds.input_shape == (3, 16, 16) and len(ds.train) == 20 and len(ds.test) == 4
    assert len(ds.mean) == 3


def test_offline_missing_files_give_a_clear_error_and_leave_nothing(tmp_path):
    with pytest.raises(DatasetUnavailable) as err:
        load_dataset(DataConfig("fashion_mnist"), root=tmp_path)
    msg = str(err.value)
    assert "fashion_mnist" in msg and "train-images-idx3-ubyte.gz" in msg and str(tmp_path) in msg
    assert list(tmp_path.iterdir()) == []


def test_random_subset_is_seeded_and_returns_small_requests_whole():
    from prunekit.core.data import random_subset
    split = load_dataset(DataConfig("digits")).test
    assert random_subset(split, None) is split and random_subset(split, len(split)) is split
    sub = random_subset(split, 50, seed=3)
    idx = torch.randperm(len(split), generator=torch.Generator().manual_seed(3))[:50]
    assert torch.equal(sub.x, split.x[idx]) and torch.equal(sub.y, split.y[idx])
    assert torch.equal(random_subset(split, 50, seed=3).x, sub.x)
    assert not torch.equal(random_subset(split, 50, seed=4).x, sub.x)



def test_files_present_looks_without_loading(tmp_path):
    from prunekit.core.data import expected_files, files_present

    assert files_present("digits", tmp_path) and files_present("cosine", tmp_path)
    assert not files_present("mnist", tmp_path) and not files_present("cifar10", tmp_path)
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for i, f in enumerate(expected_files("fashion_mnist")):                # Debian's files unpacked, one still gzipped
        (tmp_path / (f if i == 0 else f.removesuffix(".gz"))).write_bytes(b"")
    assert files_present("fashion_mnist", tmp_path)
    (tmp_path / expected_files("fashion_mnist")[0]).unlink()
    assert not files_present("fashion_mnist", tmp_path)
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"")
    assert files_present("cifar10", tmp_path)
    with pytest.raises(ValueError, match="name"):
        files_present("imagenet", tmp_path)


def test_inside_shape_against_hand_worked_points():
    from prunekit.core.data import inside_shape

    pts = torch.tensor([[0.0, 0.0], [0.5, 0.5], [0.5, 0.51], [1.0, 0.0], [-0.3, -0.8], [-0.2, 0.7]])
    assert inside_shape(pts, "diamond").tolist() == [1, 1, 0, 1, 0, 1]        # |x1| + |x2| <= 1, boundary inside
    with pytest.raises(ValueError, match="shape"):
        inside_shape(pts, "circle")
    with pytest.raises(ValueError, match="points"):
        inside_shape(pts.view(6, 1, 2), "diamond")                           # a data set's x, not reshaped


def test_the_random_shape_is_a_star_shaped_blob_of_the_area_its_radius_gives():
    import math

    from prunekit.core.data import inside_shape, shape_radius

    angles = torch.linspace(-math.pi, math.pi, 721)
    r = shape_radius(angles, seed=3)
    assert not torch.equal(r, shape_radius(angles, seed=4))
    for seed in range(300):                                                  # the stated bounds hold for every seed
        radius = shape_radius(angles, seed)
        assert 0.2 <= float(radius.min()) and float(radius.max()) <= 1.0
    # along every ray from the origin: inside, then outside, never back in (star-shaped around the origin)
    t = torch.linspace(0, 1.5, 151)
    for a in angles[::40]:
        ray = torch.stack([t * torch.cos(a), t * torch.sin(a)], 1)
        labels = inside_shape(ray, "random_shape", seed=3)
        first_out = int((labels == 0).nonzero()[0]) if (labels == 0).any() else len(labels)
        assert labels[:first_out].all() and not labels[first_out:].any()
    # Monte Carlo area fraction against the polar integral of r^2 / 2 (the shape lies inside the square)
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(200_000, 2, generator=g) * 2 - 1
    area = float(torch.trapezoid(r.double() ** 2 / 2, angles.double()))
    assert float(inside_shape(pts, "random_shape", seed=3).double().mean()) == pytest.approx(area / 4, abs=0.005)


def test_shape_data_sets_are_seeded_two_class_points():
    from prunekit.core.data import inside_shape

    ds = load_dataset(DataConfig(name="diamond"))
    assert (ds.input_shape, ds.num_classes, ds.task, len(ds.train), len(ds.test)) == (
        (1, 1, 2), 2, "classification", 2000, 1000)
    x = ds.train.x.reshape(-1, 2)
    assert x.abs().max() <= 1 and torch.equal(ds.train.y, inside_shape(x, "diamond"))
    assert 0.45 < float(ds.train.y.float().mean()) < 0.55                      # half the square
    again = load_dataset(DataConfig(name="random_shape", seed=1))
    other = load_dataset(DataConfig(name="random_shape", seed=2))
    assert not torch.equal(again.train.x, other.train.x)
    assert torch.equal(again.train.y, inside_shape(again.train.x.reshape(-1, 2), "random_shape", seed=1))
    val = load_dataset(DataConfig(name="diamond", val_fraction=0.1))
    assert len(val.val) == 200 and len(val.train) == 1800


def test_fashion_mnist_offline_from_debians_files(fashion_root):
    """The real Fashion-MNIST (Debian's files, unpacked as .ci/run does): sizes, classes, and its pixel statistics."""
    ds = load_dataset(DataConfig("fashion_mnist"), root=fashion_root)
    assert ds.train.x.shape == (60000, 1, 28, 28) and ds.test.x.shape == (10000, 1, 28, 28)
    assert torch.bincount(ds.train.y).tolist() == [6000] * 10 and torch.bincount(ds.test.y).tolist() == [1000] * 10
    assert abs(ds.mean[0] - 0.2860) < 1e-3 and abs(ds.std[0] - 0.3530) < 1e-3     # the data set's known statistics


def test_raw_pixels_are_exactly_the_stored_bytes(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    images = np.tile(np.arange(256 * 4).reshape(4, 16, 16) % 256, (1, 2, 2))[:, :28, :28]   # every uint8 level
    for split in ("train", "t10k"):
        _idx(raw / f"{split}-images-idx3-ubyte", images, 2051)
        _idx(raw / f"{split}-labels-idx1-ubyte", np.arange(4) % 10, 2049)
    ds = load_dataset(DataConfig("fashion_mnist", normalize=False, raw_pixels=True), root=tmp_path)
    stored = torch.from_numpy(images.astype(np.float32)).unsqueeze(1)
    assert torch.equal(ds.train.x, stored) and torch.equal(ds.test.x, stored)


def test_raw_pixels_are_the_stored_0_to_255_values():
    unit = load_dataset(DataConfig("digits", normalize=False))
    raw = load_dataset(DataConfig("digits", normalize=False, raw_pixels=True))
    assert float(raw.train.x.max()) == pytest.approx(255.0) and float(raw.train.x.min()) == 0.0
    assert torch.allclose(raw.train.x, 255.0 * unit.train.x) and torch.equal(raw.test.y, unit.test.y)
    with pytest.raises(ValueError, match="raw_pixels"):
        DataConfig("digits", raw_pixels=True)                                # normalize=True would contradict it
    with pytest.raises(ValueError, match="normalize"):
        DataConfig("digits", normalize="no")
