"""Notebook 07's pieces: the reader's model and data named by import path or file, training on the reader's own
schedule through the cache, fine-tuning with a mask held, the measures' tables, and the notebook itself on a
transformer (the default model, torchvision's ResNet, runs under nbval)."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from prunekit.core import store
from prunekit.core.data import Split, load_dataset
from prunekit.core.train import fit_model
from prunekit.measures.utility import random_ablation
from prunekit.pruning.masks import to_torch_prune
from prunekit.pruning.retrain import fine_tune, magnitude_masks
from prunekit.studies import examples
from prunekit.studies import your_model as Y

REPO = Path(__file__).resolve().parents[2]


class Small(nn.Module):
    """A reader's model: named submodules, BatchNorm1d, its own forward (not prunekit's, not a Sequential)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(64, 24)
        self.norm = nn.BatchNorm1d(24)
        self.mid = nn.Linear(24, 16)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        return self.head(F.relu(self.mid(F.relu(self.norm(self.body(x.flatten(1)))))))


@pytest.fixture(scope="module")
def digits():
    ds = load_dataset("digits")
    return ds.train, ds.test


# --------------------------------------------------------------------------------------------- naming the reader's parts
def test_import_object_from_a_module_and_from_a_file(tmp_path):
    assert Y.import_object("prunekit.studies.examples:tiny_resnet") is examples.tiny_resnet
    f = tmp_path / "my_models.py"
    f.write_text("from torch import nn\n\ndef net(width=7):\n    return nn.Sequential(nn.Flatten(), nn.Linear(64, width))\n")
    model = Y.build_model(f"{f}:net", width=5)
    assert isinstance(model, nn.Sequential) and model[1].out_features == 5
    f.write_text("from torch import nn\n\nclass Net(nn.Linear):\n    pass\n")
    cls = Y.import_object(f"{f}:Net")
    # the module's name is the same in every process (it is part of the training cache's key): no salted hash()
    import hashlib
    assert cls.__module__ == f"prunekit_user_my_models_{hashlib.sha256(str(f.resolve()).encode()).hexdigest()[:12]}"


@pytest.mark.parametrize("spec, words", [("resnet18", "package.module:name"), ("a:b:c", "package.module:name"),
                                         ("no_such_module_xyz:f", "cannot import"),
                                         ("prunekit.studies.examples:nothing", "has no 'nothing'"),
                                         ("/nowhere/file.py:f", "no file")])
def test_a_bad_model_spec_is_refused_by_name(spec, words):
    with pytest.raises(ValueError, match="model=") as err:
        Y.build_model(spec)
    assert words in str(err.value)


def test_a_factory_that_returns_no_module_is_refused(tmp_path):
    f = tmp_path / "bad.py"
    f.write_text("def net():\n    return 3\n")
    with pytest.raises(ValueError, match="not a torch.nn.Module"):
        Y.build_model(f"{f}:net")


def test_build_model_is_seeded():
    a, b, c = (Y.build_model("prunekit.studies.examples:tiny_transformer", seed=s) for s in (1, 1, 2))
    assert torch.equal(a.embed.weight, b.embed.weight) and not torch.equal(a.embed.weight, c.embed.weight)


def test_load_data_by_name_by_function_and_refusals(tmp_path, digits):
    train, test, name = Y.load_data("digits")
    assert name == "digits" and torch.equal(train.x, digits[0].x) and torch.equal(test.y, digits[1].y)
    f = tmp_path / "my_data.py"
    f.write_text("import torch\nfrom torch.utils.data import DataLoader, TensorDataset\n\n"
                 "def loaders():\n"
                 "    x, y = torch.randn(20, 3), torch.arange(20) % 2\n"
                 "    return DataLoader(TensorDataset(x[:12], y[:12]), batch_size=5), (x[12:], y[12:])\n\n"
                 "def bad():\n    return torch.zeros(3)\n")
    train, test, _ = Y.load_data(f"{f}:loaders")
    assert len(train) == 12 and len(test) == 8 and train.x.shape == (12, 3)
    with pytest.raises(ValueError, match="must return \\(train, test\\)"):
        Y.load_data(f"{f}:bad")
    with pytest.raises(ValueError, match="dataset='imagenet' is neither one of prunekit's"):
        Y.load_data("imagenet")


def test_load_checkpoint_folds_prune_masks_and_refuses_a_misfit(tmp_path):
    torch.manual_seed(0)
    src = Small()
    to_torch_prune([(src.body, "weight")], [torch.rand(24, 64) > 0.5])
    torch.save({"state_dict": src.state_dict()}, tmp_path / "ckpt.pt")
    dst = Y.load_checkpoint(Small(), tmp_path / "ckpt.pt")
    assert torch.equal(dst.body.weight, src.body.weight)  # weight_orig * weight_mask, as the hooked model computes
    assert int((dst.body.weight == 0).sum()) == int((src.body.weight_mask == 0).sum())
    with pytest.raises(ValueError, match="does not fit the model"):
        Y.load_checkpoint(nn.Linear(3, 2), tmp_path / "ckpt.pt")
    with pytest.raises(ValueError, match="no such file"):
        Y.load_checkpoint(Small(), tmp_path / "missing.pt")


# ------------------------------------------------------------------------------------- the reader's own schedule
@pytest.mark.parametrize("kwargs, words", [({}, "give the schedule"), ({"lrs": [0.1, 0.1], "epochs": 3}, "epochs=3"),
                                           ({"optimizer": functools.partial(torch.optim.SGD, lr=0.1)}, "needs epochs"),
                                           ({"lrs": [0.1, -1.0]}, "lrs\\[1\\]"), ({"lrs": []}, "empty"),
                                           ({"optimizer": "adam", "epochs": 1}, "factory")])
def test_a_bad_schedule_is_refused_before_any_step(kwargs, words, digits):
    model = Small()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=words):
        fit_model(model, digits[0], **kwargs)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_fit_model_follows_the_schedule_on_every_data_form(digits):
    train = Split(digits[0].x[:256], digits[0].y[:256])
    torch.manual_seed(0)
    a = Small()
    b, c = Small(), Small()
    b.load_state_dict(a.state_dict())
    c.load_state_dict(a.state_dict())
    h = fit_model(a, train, lrs=[0.1, 0.02], batch_size=32, seed=3)
    fit_model(b, (train.x, train.y), lrs=[0.1, 0.02], batch_size=32, seed=3)
    assert list(h["lr"]) == [0.1, 0.02] and list(h["epoch"]) == [1, 2]
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))  # same seed, same batches
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(train.x, train.y), batch_size=32)
    h = fit_model(c, loader, optimizer=functools.partial(torch.optim.Adam, lr=1.0), lrs=[1e-3, 5e-4])
    assert list(h["lr"]) == [1e-3, 5e-4]  # the per-epoch rates written into the reader's optimizer
    assert h["train_loss"].iloc[-1] < math.log(10)
    with pytest.raises(ValueError, match="iterator"):
        fit_model(Small(), iter(loader), lrs=[0.1])


def test_fit_or_load_trains_once_and_keys_by_initial_weights_data_and_schedule(digits, monkeypatch):
    train = Split(digits[0].x[:200], digits[0].y[:200])
    calls = []
    real = store.fit_model
    monkeypatch.setattr(store, "fit_model", lambda *a, **k: calls.append(1) or real(*a, **k))

    def fresh(seed):
        torch.manual_seed(seed)
        return Small()

    a = fresh(0)
    store.fit_or_load(a, train, lrs=[0.05], batch_size=50)
    b = fresh(0)
    h = store.fit_or_load(b, train, lrs=[0.05], batch_size=50)
    assert len(calls) == 1 and all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert len(h) == 1 and h.attrs["cache_key"]
    store.fit_or_load(fresh(1), train, lrs=[0.05], batch_size=50)  # another initialisation
    store.fit_or_load(fresh(0), Split(train.x, train.y.flip(0)), lrs=[0.05], batch_size=50)  # other data
    store.fit_or_load(fresh(0), train, lrs=[0.04], batch_size=50)  # another schedule
    assert len(calls) == 4
    store.fit_or_load(fresh(0), train, optimizer=functools.partial(torch.optim.Adam, lr=1e-3), epochs=1)
    assert len(calls) == 5
    with pytest.raises(ValueError, match="lambda"):
        store.fit_or_load(fresh(0), train, optimizer=lambda p: torch.optim.Adam(p), epochs=1)


def test_fit_or_load_keys_the_architecture_the_trainable_set_and_refuses_unnamed_or_shuffled_inputs(digits):
    train = Split(digits[0].x[:100], digits[0].y[:100])

    def net(p):
        torch.manual_seed(0)
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Dropout(p), nn.ReLU(), nn.Linear(16, 10))

    keys = {store.fit_or_load(net(p), train, lrs=[0.05]).attrs["cache_key"] for p in (0.0, 0.5)}
    frozen = net(0.0)
    frozen[1].weight.requires_grad_(False)
    keys.add(store.fit_or_load(frozen, train, lrs=[0.05]).attrs["cache_key"])
    assert len(keys) == 3  # the same initial weights: a dropout rate and a frozen layer make other entries

    class Factory:
        def __call__(self, params):
            return torch.optim.SGD(params, lr=0.1)

    for bad, words in ((Factory(), "cannot name a cache entry"), (lambda p: torch.optim.Adam(p), "cannot name"),
                       (functools.partial(torch.optim.Adam, betas=torch.tensor([0.9, 0.99])), "plain arguments")):
        with pytest.raises(ValueError, match=words):
            store.fit_or_load(net(0.0), train, optimizer=bad, epochs=1)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(train.x, train.y), batch_size=10, shuffle=True)
    with pytest.raises(ValueError, match="shuffle=True"):
        store.fit_or_load(net(0.0), loader, lrs=[0.05])


class Pooled(nn.Module):
    """A forward that reads a plain attribute: the same weights, the same repr, another function."""

    def __init__(self, pool="mean"):
        super().__init__()
        self.pool = pool
        self.rows, self.head = nn.Linear(8, 16), nn.Linear(16, 10)

    def forward(self, x):
        h = torch.relu(self.rows(x.reshape(len(x), 8, 8)))
        return self.head(h.mean(1) if self.pool == "mean" else h[:, -1])


def test_fit_or_load_keys_a_plain_attribute_that_changes_the_forward(digits):
    """Before: pool="last" loaded the weights trained for pool="mean" (one key: same weights, repr and source), and
    notebook 07 printed test accuracy 0.307 where training that model gives 0.787."""
    train = Split(digits[0].x[:300], digits[0].y[:300])

    def fresh(pool):
        torch.manual_seed(0)
        return Pooled(pool)

    mean, last = fresh("mean"), fresh("last")
    assert repr(mean) == repr(last) and store.state_digest(mean) == store.state_digest(last)
    keys = {store.fit_or_load(m, train, lrs=[0.05, 0.05], batch_size=50).attrs["cache_key"] for m in (mean, last)}
    assert len(keys) == 2
    ref = fresh("last")
    fit_model(ref, train, lrs=[0.05, 0.05], batch_size=50)  # what training that model gives
    assert all(torch.equal(p, q) for p, q in zip(last.parameters(), ref.parameters()))
    again = fresh("mean")
    assert store.fit_or_load(again, train, lrs=[0.05, 0.05], batch_size=50).attrs["cache_key"] in keys  # reused


def test_the_cache_key_of_a_model_from_a_file_is_the_same_in_every_process(tmp_path):
    import os
    import subprocess
    import sys

    f = tmp_path / "mine.py"
    f.write_text("from torch import nn\n\nclass Net(nn.Sequential):\n    def __init__(self):\n"
                 "        super().__init__(nn.Flatten(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 10))\n\n"
                 "def build():\n    return Net()\n")
    code = ("import prunekit, torch\nfrom prunekit.studies import your_model as Y\nfrom prunekit.core import store\n"
            f"m = Y.build_model({str(f) + ':build'!r})\n"
            "x, y = torch.randn(32, 1, 8, 8, generator=torch.Generator().manual_seed(0)), torch.arange(32) % 10\n"
            f"print(store.fit_or_load(m, (x, y), lrs=[0.01], root={str(tmp_path / 'c')!r}).attrs['cache_key'])\n")
    keys = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        keys.add(done.stdout.strip().splitlines()[-1])
    assert len(keys) == 1


def test_a_diverging_run_leaves_the_model_as_it_was(digits):
    model = Small()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(FloatingPointError, match="diverged"):
        fit_model(model, (digits[0].x[:128], digits[0].y[:128]), lrs=[1e30], batch_size=64)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_checkpoint_is_loaded_not_trained_and_fine_tuning_without_its_schedule_warns(tmp_path, monkeypatch):
    torch.manual_seed(0)
    trained = examples.tiny_transformer()
    torch.save(trained.state_dict(), tmp_path / "t.pt")
    monkeypatch.setattr(Y.preparation, "fit_or_load", lambda *a, **k: pytest.fail("a checkpoint must not be trained"))
    setup = Y.prepare("prunekit.studies.examples:tiny_transformer", checkpoint=str(tmp_path / "t.pt"), seed=3,
                      eval_samples=64)
    assert setup.history is None and torch.equal(setup.model.embed.weight, trained.embed.weight)
    with pytest.warns(UserWarning, match="give lrs="):
        Y.prune_and_fine_tune(setup, sparsity=0.5, epochs=1)
    given = Y.prepare("prunekit.studies.examples:tiny_transformer", checkpoint=str(tmp_path / "t.pt"),
                      optimizer="torch.optim:Adam", lrs=[1e-3], eval_samples=64)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        tuned = Y.prune_and_fine_tune(given, sparsity=0.5, epochs=1)
    assert tuned.lr == 1e-3 and tuned.optimizer == "torch.optim:Adam"


# ------------------------------------------------------------------------------------------------ fine-tuning
def test_magnitude_masks_prune_exactly_the_smallest_of_the_given_params():
    torch.manual_seed(0)
    model = Small()
    params = [(model.body, "weight"), (model.mid, "weight")]
    masks = magnitude_masks(model, 30, params=params)
    flat = torch.cat([model.body.weight.abs().flatten(), model.mid.weight.abs().flatten()])
    k = round(0.3 * flat.numel())
    cut = flat.sort().values[k - 1]
    assert sorted(masks) == ["body.weight", "mid.weight"]
    assert sum(int((~m).sum()) for m in masks.values()) == k
    assert bool((model.body.weight.abs()[~masks["body.weight"]] <= cut).all())


def test_fine_tune_holds_the_mask_and_leaves_the_model_alone(digits):
    torch.manual_seed(0)
    model = Small()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = [(model.body, "weight"), (model.mid, "weight")]
    keep = [torch.rand(24, 64) > 0.7, torch.rand(16, 24) > 0.5]
    out, history, states = fine_tune(model, keep, digits[0], params=params, lrs=[0.1, 0.1], trajectory=True)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert bool((out.body.weight[~keep[0]] == 0).all()) and bool((out.mid.weight[~keep[1]] == 0).all())
    assert bool((out.body.weight[keep[0]] != before["body.weight"][keep[0]]).any())  # the kept ones trained
    assert sorted(states) == [0, 1, 2] and list(history["lr"]) == [0.1, 0.1]
    assert [n for n, _ in out.named_parameters()] == [n for n, _ in model.named_parameters()]


def test_fine_tune_equals_a_hand_written_loop_that_masks_the_gradients(digits):
    """Holding the mask means training only the kept weights with the pruned ones at 0 in every forward pass: the
    same as plain SGD whose gradients are masked, on the same batches. A mask applied only at the end would not be."""
    torch.manual_seed(0)
    model = Small().eval()
    keep = [torch.rand(24, 64) > 0.6, torch.rand(16, 24) > 0.4]
    params = [(model.body, "weight"), (model.mid, "weight")]
    train = Split(digits[0].x[:192], digits[0].y[:192])
    out, _ = fine_tune(model, keep, train, params=params, lrs=[0.1, 0.05], batch_size=64, seed=5)

    ref = Small()
    ref.load_state_dict(model.state_dict())
    with torch.no_grad():
        ref.body.weight.mul_(keep[0])
        ref.mid.weight.mul_(keep[1])
    opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    gen = torch.Generator().manual_seed(5)
    for lr in (0.1, 0.05):
        for group in opt.param_groups:
            group["lr"] = lr
        ref.train()
        order = torch.randperm(len(train), generator=gen)
        for i in range(0, len(train), 64):
            idx = order[i:i + 64]
            opt.zero_grad()
            F.cross_entropy(ref(train.x[idx]), train.y[idx]).backward()
            ref.body.weight.grad.mul_(keep[0])
            ref.mid.weight.grad.mul_(keep[1])
            opt.step()
    for (name, p), q in zip(out.named_parameters(), ref.parameters()):
        assert torch.allclose(p, q, atol=1e-5), name


def test_fine_tune_a_transformer_with_its_attention_out_proj_masked(digits):
    torch.manual_seed(0)
    model = examples.tiny_transformer()
    x = digits[0].x[:2]
    masks = magnitude_masks(model, 50, example=x)
    assert "encoder.self_attn.out_proj.weight" in masks and "head.weight" not in masks
    out, _ = fine_tune(model, masks, (digits[0].x[:128], digits[0].y[:128]), lrs=[0.01])
    for name, keep in masks.items():
        w = dict(out.named_parameters())[name]
        assert bool((w[~keep] == 0).all()), name


# --------------------------------------------------------------------------------------- the one data convention
def test_ablation_and_saliency_take_data_in_every_form(digits):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    x, y = digits[1].x[:100], digits[1].y[:100]
    kw = dict(ratios=[0.2], n_subsets=4, params=[(model[1], "weight")], warn_at_chance=False)
    ref = random_ablation(model, x, y, **kw)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=30)
    for data in ((x, y), Split(x, y), loader):
        got = random_ablation(model, data, **kw)
        assert np.array_equal(got["utility"].to_numpy(), ref["utility"].to_numpy())
        assert np.array_equal(got["accuracy"].to_numpy(), ref["accuracy"].to_numpy())
    with pytest.raises(ValueError, match="holds its targets already"):
        random_ablation(model, (x, y), [0.2])  # ratios given by position where y was
    with pytest.raises(ValueError, match="y must be a tensor of targets"):
        random_ablation(model, x, [0.2])  # the same slip with an input tensor
    with pytest.raises(ValueError, match="without targets"):
        from prunekit.measures.saliency import saliency_scores
        saliency_scores(model, x)
    from prunekit.measures.saliency import saliency_scores
    a = saliency_scores(model, x, y, "first_order", loss="cross_entropy")
    b = saliency_scores(model, Split(x, y), estimator="first_order", loss="cross_entropy")
    assert all(torch.equal(s, t) for s, t in zip(a, b))


# ------------------------------------------------------------------------------------------- the measures' tables
def test_hoyer_of_all_tensors_is_that_of_their_concatenation():
    model = nn.Sequential(nn.Linear(2, 1, bias=False), nn.Linear(1, 2, bias=False), nn.Linear(2, 3))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[3.0, 0.0]]))
        model[1].weight.copy_(torch.tensor([[4.0], [0.0]]))
    setup = Y.Setup(model, None, Split(torch.randn(4, 2), torch.zeros(4, dtype=torch.long)), "toy",
                    [(model[0], "weight"), (model[1], "weight")], {"weights": 4, "model_parameters": 13,
                                                                    "share": 4 / 13, "tensors": []}, None,
                    preset=Y.preset("quick"))
    table = Y.hoyer_table(setup).set_index("layer")["hoyer"]
    # each tensor alone has one non-zero weight (1.0); together [3, 0, 4, 0]: (sqrt(4) - 7 / 5) / (sqrt(4) - 1) = 0.6
    assert table["0.weight"] == pytest.approx(1.0) and table["1.weight"] == pytest.approx(1.0)
    assert table["all"] == pytest.approx(0.6)


def test_hoyer_table_against_a_hand_computation(digits):
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 4, bias=False), nn.ReLU(), nn.Linear(4, 3))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].weight[0, 0] = 3.0  # one non-zero weight: Hoyer 1
    setup = Y.Setup(model, Split(torch.randn(8, 4), torch.zeros(8, dtype=torch.long)), Split(torch.randn(8, 4),
                    torch.zeros(8, dtype=torch.long)), "toy", [(model[1], "weight")],
                    {"weights": 16, "model_parameters": 31, "share": 16 / 31, "tensors": ["1.weight"]}, None,
                    {"loss": 0.0, "accuracy": 1.0}, preset=Y.preset("quick"))
    other = nn.Sequential(nn.Flatten(), nn.Linear(4, 4, bias=False), nn.ReLU(), nn.Linear(4, 3))
    with torch.no_grad():
        other[1].weight.fill_(-0.5)  # equal magnitudes: Hoyer 0
    table = Y.hoyer_table(setup, {"a": model, "b": other}).set_index(["model", "layer"])["hoyer"]
    assert table["a", "1.weight"] == pytest.approx(1.0) and table["b", "1.weight"] == pytest.approx(0.0)
    assert table["a", "all"] == pytest.approx(1.0) and table.index.get_level_values("layer").tolist().count("all") == 2


@pytest.fixture(scope="module")
def small_setup(digits):
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as cache:
        old = os.environ.get("PRUNEKIT_CACHE")
        os.environ["PRUNEKIT_CACHE"] = cache
        try:
            setup = Y.prepare(Small(), "digits", lrs=[0.1, 0.1, 0.02], batch_size=32, eval_samples=200)
        finally:
            os.environ.pop("PRUNEKIT_CACHE") if old is None else os.environ.__setitem__("PRUNEKIT_CACHE", old)
    return setup


def test_prepare_traces_the_head_and_states_the_coverage(small_setup):
    s = small_setup
    assert [n for n in s.coverage["tensors"]] == ["body.weight", "mid.weight"]  # head.weight traced and left out
    assert s.coverage["weights"] == 64 * 24 + 24 * 16
    assert s.coverage["model_parameters"] == sum(p.numel() for p in s.model.parameters())
    assert s.dense["accuracy"] > 0.5 and len(s.test) == 200 and len(s.history) == 3


def test_pruning_curves_say_what_they_covered(small_setup):
    from prunekit.measures.curves import pruning_curve

    df = pruning_curve(small_setup.model, small_setup.params, small_setup.test, [0, 50], methods=("weight",),
                       scopes=("global",))
    assert df.attrs["coverage"]["weights"] == 64 * 24 + 24 * 16
    assert df.attrs["coverage"]["tensors"] == ["body.weight", "mid.weight"]


def test_prepare_refuses_bad_parameters_before_training():
    with pytest.raises(ValueError, match="profile"):
        Y.prepare("prunekit.studies.examples:tiny_resnet", profile="huge")
    with pytest.raises(ValueError, match="optimizer="):
        Y.prepare("prunekit.studies.examples:tiny_resnet", optimizer="torch.nn:Linear")
    with pytest.raises(ValueError, match="lrs"):
        Y.prepare("prunekit.studies.examples:tiny_resnet", lrs=[0.1, "fast"])


def test_ablation_tables_imbalance_is_the_std_of_each_ratios_utilities(small_setup):
    rnd, mag, imb = Y.ablation_tables(small_setup, ratios=[0.1, 0.3], n_subsets=6, n_bands=2, band_ratios=[1.0],
                                      band_subsets=1)
    for row in imb.itertuples():
        u = rnd.loc[rnd.ratio == row.ratio, "utility"].to_numpy()
        assert row.utility_std == pytest.approx(math.sqrt(((u - u.mean()) ** 2).mean())) and row.subsets == 6
    assert rnd.attrs["coverage"]["weights"] == small_setup.coverage["weights"]
    assert sorted(mag["band"].unique()) == [0, 1]


def test_surface_tables_check_their_anchors_and_the_summary_says_what_it_covered(small_setup):
    tuned = Y.prune_and_fine_tune(small_setup, sparsity=0.5, epochs=1)
    masked = dict(tuned.retrained.named_parameters())
    assert all(bool((masked[n][~k] == 0).all()) for n, k in tuned.masks.items())
    out = Y.surface_tables(small_setup, tuned, grid=3, path_points=3)
    path = out["path"]
    assert sorted(path.split.unique()) == ["test", "train"] and len(out["grid"]) == 3 * 3 * 2
    density = Y.density_table(small_setup)
    _, _, imb = Y.ablation_tables(small_setup, ratios=[0.1], n_subsets=3, n_bands=1, band_ratios=[1.0],
                                  band_subsets=1)
    hoyer = Y.hoyer_table(small_setup)
    summary = Y.summary_table(small_setup, density, imb, out["barriers"], hoyer, tuned)
    assert {"measure", "value", "covers", "data"} <= set(summary.columns)
    assert summary.loc[summary.measure == "effective density", "value"].item() == density["density"].item()
    assert "1,920 of" in summary.loc[summary.measure == "effective density", "covers"].item()


# --------------------------------------------------------------------------- notebook 07's parameters, checked
def test_the_preset_shows_the_settings_a_run_uses():
    """Before: the preset cell showed the profile's lrs and dataset even when they were overridden."""
    pre = Y.preset("quick").with_overrides(dataset="digits:3x16x16", lrs=[0.01, 0.001], batch_size=32)
    assert (pre.dataset, pre.lrs, pre.batch_size) == ("digits:3x16x16", (0.01, 0.001), 32)
    assert Y.preset("quick") == Y.PRESETS["quick"] and pre.profile == "quick"
    with pytest.raises(ValueError, match="lrs"):
        Y.preset("quick").with_overrides(lrs=[0.1, "fast"])
    with pytest.raises(ValueError, match="sparsity"):
        Y.preset("quick").with_overrides(sparsity=1.0)
    with pytest.raises(ValueError, match="n_cycles"):          # not a setting of this preset: named, not ignored
        Y.preset("quick").with_overrides(n_cycles=3)


def test_a_shape_suffix_makes_the_offline_images_fit_an_image_model(digits):
    train, test, name = Y.load_data("digits:3x16x16")
    assert train.x.shape[1:] == (3, 16, 16) and test.x.shape[1:] == (3, 16, 16) and name == "digits:3x16x16"
    assert torch.equal(train.x[:, 0], train.x[:, 2]) and torch.equal(train.y, digits[0].y)
    one, _, _ = Y.load_data("digits:1x16x16")
    assert torch.equal(one.x[:, 0], train.x[:, 0])  # the same resized image, its channel repeated
    import torchvision
    torchvision.models.mobilenet_v2(num_classes=10).eval()(test.x[:2])  # runs without a data function
    assert Y.load_data("digits:2x8x8")[0].x.shape[1:] == (2, 8, 8)
    for spec, words in (("digits:3x16x12", "square"), ("cosine:1x8x8", "only image data sets")):
        with pytest.raises(ValueError, match=words):
            Y.load_data(spec)


class GRUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(8, 8)
        self.rnn, self.head = nn.GRU(8, 64, batch_first=True), nn.Linear(64, 10)

    def forward(self, x):
        return self.head(self.rnn(self.embed(x.reshape(len(x), 8, 8)))[0][:, -1])


def test_prepare_takes_params_by_name_and_says_truthfully_what_is_left_out(monkeypatch):
    """Before: notebook 07 took no params and said "the layer into the logits left out" when a GRU holding 97.6% of
    the model was."""
    monkeypatch.setattr(Y.preparation, "fit_or_load", lambda *a, **k: None)  # no training: what is measured is the question
    setup = Y.prepare(GRUNet(), "digits", lrs=[0.01], eval_samples=50)
    assert setup.coverage["tensors"] == ["embed.weight"]
    gru = sum(p.numel() for p in setup.model.rnn.parameters())
    assert setup.left_out[0] == ("rnn (GRU: recurrent weights are not a default kind)", gru)
    assert "left out: rnn (GRU: recurrent weights are not a default kind) " in setup.describe()
    assert "head.weight (the layer into the logits)" in dict(setup.left_out)
    total = sum(p.numel() for p in setup.model.parameters())
    assert sum(n for _, n in setup.left_out) + setup.coverage["weights"] == total  # every parameter accounted for

    named = Y.prepare(GRUNet(), "digits", lrs=[0.01], eval_samples=50,
                      params=["rnn.weight_ih_l0", "rnn.weight_hh_l0", "head.weight"])
    assert named.coverage["tensors"] == ["rnn.weight_ih_l0", "rnn.weight_hh_l0", "head.weight"]
    full = Y.prepare(Small(), "digits", lrs=[0.01], eval_samples=50, include_output=True)
    assert full.coverage["tensors"] == ["body.weight", "mid.weight", "head.weight"]
    with pytest.raises(ValueError, match="names no weight"):
        Y.prepare(GRUNet(), "digits", lrs=[0.01], params=["rnn.weight_xx"])
    with pytest.raises(ValueError, match="include_output"):
        Y.prepare(GRUNet(), "digits", lrs=[0.01], params=["embed.weight"], include_output=True)


def test_prepare_refuses_bad_labels_and_an_empty_weight_set_before_training(tmp_path, monkeypatch):
    monkeypatch.setattr(Y.preparation, "fit_or_load", lambda *a, **k: pytest.fail("trained before the check"))
    f = tmp_path / "data.py"
    f.write_text("import torch\n\ndef floats():\n    x = torch.randn(40, 1, 8, 8)\n"
                 "    return (x[:30], torch.arange(30.0) % 10), (x[30:], torch.arange(10.0))\n")
    with pytest.raises(ValueError, match="not class indices"):
        Y.prepare(Small(), f"{f}:floats", lrs=[0.01])

    class OnlyGRU(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn, self.head = nn.GRU(8, 16, batch_first=True), nn.Linear(16, 10)

        def forward(self, x):
            return self.head(self.rnn(x.reshape(len(x), 8, 8))[0][:, -1])

    with pytest.raises(ValueError, match="params=\\[\\(model.rnn, 'weight_ih_l0'\\)"):
        Y.prepare(OnlyGRU(), "digits", lrs=[0.01])


def test_a_frozen_layer_counts_once_in_the_share_of_the_model(digits):
    """Before: share_of_model (params / total_params) came out 2.55: total_params counted trainable parameters."""
    import os
    import tempfile

    torch.manual_seed(0)
    model = Small()
    model.body.requires_grad_(False)
    with tempfile.TemporaryDirectory() as cache:
        os.environ["PRUNEKIT_CACHE"] = cache
        setup = Y.prepare(model, "digits", lrs=[0.1], batch_size=32, eval_samples=200)
    row = Y.density_table(setup).iloc[0]
    assert row.total_params == sum(p.numel() for p in model.parameters())
    assert row.share_of_model == pytest.approx(setup.coverage["share"]) and row.share_of_model <= 1


# ------------------------------------------------------------------------------------------- notebook 07 itself
@pytest.mark.slow
def test_notebook_07_runs_on_a_tiny_transformer(tmp_path):
    import nbformat
    import papermill as pm

    out = tmp_path / "07.ipynb"
    lrs = [0.01] * 20 + [0.001] * 10
    pm.execute_notebook(str(REPO / "notebooks" / "07_your_model.ipynb"), str(out), kernel_name="python3",
                        parameters={"model": "prunekit.studies.examples:tiny_transformer",
                                    "optimizer": "torch.optim:Adam", "lrs": lrs},
                        progress_bar=False, cwd=str(tmp_path))
    text = "".join(o.get("text", "") for c in nbformat.read(out, as_version=4).cells if c.cell_type == "code"
                   for o in c.outputs)
    assert "PixelTransformer on digits" in text and "5 weight tensors" in text
    runs = [p for p in (tmp_path / "results").iterdir() if p.name.startswith("quick+")]
    assert len(runs) == 1 and (runs[0] / "07_summary.csv").is_file() and (runs[0] / "07_effective_density.csv").is_file()
