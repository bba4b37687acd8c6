import json
import math

import pytest
import torch
import torch.nn.functional as F

from prunekit.core.store import entry_path, train_or_load
from prunekit.core.config import DataConfig, ModelConfig, TrainConfig
from prunekit.core.train import evaluate, make_loss

SMALL = TrainConfig(data=DataConfig("digits"), model=ModelConfig("mlp", hidden=(32,)), epochs=3, batch_size=64,
                    lr=3e-3)


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("optimizer, extra", [("sgd", dict(momentum=0.9, lr=0.05)), ("adam", {}),
                                              ("adagrad", dict(lr=0.05))])
def test_same_config_and_seed_give_bitwise_identical_weights(optimizer, extra, monkeypatch):
    # a pinned thread count: under PRUNEKIT_THREADS=auto, another process busy on these cores (a Dask worker of an
    # earlier test shutting down) takes threads away mid-run, and another thread count changes the last digits
    monkeypatch.setenv("PRUNEKIT_THREADS", "2")
    cfg = SMALL.replace(optimizer=optimizer, schedule="cosine", weight_decay=1e-4, **extra)
    from prunekit.core.store import fit
    r1, r2 = fit(cfg, quiet=True), fit(cfg, quiet=True)
    for k, v in r1.model.state_dict().items():
        assert torch.equal(v, r2.model.state_dict()[k]), k
    assert r1.history["train_loss"].equals(r2.history["train_loss"])
    r3 = fit(cfg.replace(seed=1), quiet=True)
    assert not torch.equal(r1.model.output.weight, r3.model.output.weight)
    assert r1.history["test_accuracy"].iloc[-1] > 0.8


def test_history_is_tidy_and_checkpoints_are_kept():
    from prunekit.core.store import fit
    run = fit(SMALL.replace(checkpoints=(0, 2), data_seed=0, val_fraction=0.2), quiet=True)
    h = run.history
    assert list(h["epoch"]) == [1, 2, 3]
    for col in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy", "lr"):
        assert col in h and h[col].notna().all()
    assert sorted(run.checkpoints) == [0, 2]
    init = run.model_at(0)
    assert not torch.equal(init.output.weight, run.model.output.weight)
    loss, acc = evaluate(run.model, run.dataset().test)
    assert acc == pytest.approx(h["test_accuracy"].iloc[-1]) and loss == pytest.approx(h["test_loss"].iloc[-1])


def test_evaluate_matches_an_explicit_computation():
    from prunekit.core.store import fit
    run = fit(SMALL, quiet=True)
    split = run.dataset().test
    with torch.no_grad():
        out = run.model(split.x)
    loss, acc = evaluate(run.model, split, batch_size=100)
    assert loss == pytest.approx(float(F.cross_entropy(out, split.y)), rel=1e-5)
    assert acc == pytest.approx(float((out.argmax(1) == split.y).float().mean()))


def test_sse_loss_is_half_sum_of_squared_sigmoid_errors():
    z = torch.tensor([[0.0, 2.0], [-1.0, 1.0]])
    t = torch.tensor([1, 0])
    s = torch.sigmoid(z)
    expected = 0.5 * (((s[0, 0] - 0) ** 2 + (s[0, 1] - 1) ** 2) + ((s[1, 0] - 1) ** 2 + (s[1, 1] - 0) ** 2)) / 2
    assert float(make_loss("sse")(z, t)) == pytest.approx(float(expected))
    y = torch.tensor([[0.25], [0.75]])
    zr = torch.tensor([[0.0], [1.0]])
    assert float(make_loss("sse")(zr, y)) == pytest.approx(
        float(0.5 * ((0.5 - 0.25) ** 2 + (torch.sigmoid(torch.tensor(1.0)) - 0.75) ** 2) / 2))


def test_cosine_regression_trains_with_sse():
    from prunekit.core.store import fit
    cfg = TrainConfig(data=DataConfig("cosine"), model=ModelConfig("mlp", hidden=(10, 10), activation="sigmoid"),
                      loss="sse", epochs=30, lr=0.01, batch_size=32)
    run = fit(cfg, quiet=True)
    assert run.history["test_loss"].iloc[-1] < run.history["test_loss"].iloc[0]
    assert math.isnan(run.history["test_accuracy"].iloc[-1])


def test_cache_reuses_detects_corruption_and_writes_atomically(tmp_path):
    root = tmp_path / "cache"
    run = train_or_load(SMALL, root=root)
    assert not run.cached
    path = entry_path(SMALL, root)
    assert sorted(p.name for p in path.iterdir()) == ["meta.json", "model.pt"]  # no temp or progress files left
    meta = json.loads((path / "meta.json").read_text())
    assert meta["config"] == json.loads(json.dumps(SMALL.to_dict())) and "torch" in meta["versions"]
    again = train_or_load(SMALL, root=root)
    assert again.cached
    assert torch.equal(again.model.output.weight, run.model.output.weight)
    assert again.history.equals(run.history)
    # corrupt the weights: detected by the checksum, retrained with a warning, same result
    blob = bytearray((path / "model.pt").read_bytes())
    blob[-20] ^= 0xFF
    (path / "model.pt").write_bytes(bytes(blob))
    with pytest.warns(UserWarning, match="corrupt"):
        fixed = train_or_load(SMALL, root=root)
    assert not fixed.cached and torch.equal(fixed.model.output.weight, run.model.output.weight)
    # a mismatching config in meta.json is not used either
    meta = json.loads((path / "meta.json").read_text())
    meta["config"]["lr"] = 1.0
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="does not match"):
        assert not train_or_load(SMALL, root=root).cached


def test_interrupted_training_resumes_bitwise(tmp_path):
    from prunekit.core.store import build, fit
    from prunekit.core.data import load_dataset
    from prunekit.core.train import train

    cfg = SMALL.replace(epochs=4, schedule="step")
    reference = fit(cfg, quiet=True)

    class Stop(Exception):
        pass

    def interrupt(epoch, model):
        if epoch == 2:
            raise Stop

    ds = load_dataset(cfg.data)
    progress = tmp_path / "progress.pt"
    with pytest.raises(Stop):
        train(build(cfg, ds), ds, cfg, quiet=True, resume_path=progress, callback=interrupt)
    assert progress.exists()
    model = build(cfg, ds)
    history, _ = train(model, ds, cfg, quiet=True, resume_path=progress)
    assert not progress.exists()
    assert list(history["epoch"]) == [1, 2, 3, 4]  # epoch 1 from the progress file, 2-4 after resuming
    assert torch.equal(model.output.weight, reference.model.output.weight)


def test_bad_config_fails_before_training():
    with pytest.raises(ValueError, match="width_mult"):
        train_or_load(SMALL.replace(width_mult=0))


def test_state_restored_and_eval_mode_restore_even_after_an_error():
    from prunekit.core.train import eval_mode, state_restored
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)).train()
    before = _weights(model)
    with pytest.raises(RuntimeError, match="boom"):
        with state_restored(model):
            model.eval()
            with torch.no_grad():
                model[0].weight.add_(1.0)
                model[1].running_mean.fill_(7.0)
            raise RuntimeError("boom")
    assert model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    with pytest.raises(RuntimeError, match="boom"):
        with eval_mode(model):
            assert not model.training and not model[1].training
            raise RuntimeError("boom")
    assert model.training and model[1].training


def test_inference_speedups_leave_the_model_in_its_mode():
    from prunekit.measures.curves import inference_speedups
    from prunekit.core.models import MLP
    from prunekit.core.prunable import prunable_parameters
    model = MLP(8, (6,), 3).train()
    inference_speedups(model, prunable_parameters(model), torch.randn(5, 8), ks=[50], forms=("masked_dense",),
                       repeat=1, warmup=0)
    assert model.training


def test_init_density_trains_source_002s_smaller_network_with_the_mask_held(tmp_path):
    """init_density < 1: the built network pruned at random at initialisation (He-rescaled), trained with the mask
    held, cached and reloaded as plain weights; the same config gives the same weights."""
    from prunekit.core.store import build, fit
    from prunekit.core.prunable import prunable_parameters
    from prunekit.core.initialisation import sparse_at_init

    cfg = SMALL.replace(hidden=(32, 16), init="he", init_density=0.5, checkpoints=(0, 3))
    dense = SMALL.replace(hidden=(32, 16), init="he", checkpoints=(0, 3))
    assert cfg.key() != cfg.replace(init_density=1.0).key() == dense.key()  # the default is not in the key
    expected = build(cfg)  # the independent construction: the built net, then sparse_at_init with the seed
    masks = sparse_at_init(expected, 0.5, torch.Generator().manual_seed(cfg.seed))
    run = train_or_load(cfg, root=tmp_path)
    assert not any(k.endswith(("_orig", "_mask")) for k in run.model.state_dict())
    for module, _ in prunable_parameters(run.model):
        name = next(n for n, m in run.model.named_modules() if m is module) + ".weight"
        keep = masks[name]
        assert torch.equal(module.weight == 0, ~keep)                       # held: exactly the initial mask
        assert int((~keep).sum()) == round(0.5 * keep.numel())
        assert torch.equal(run.checkpoints[0][name], dict(expected.named_parameters())[name])
        assert not torch.equal(run.checkpoints[3][name], run.checkpoints[0][name])  # it did train
    again = train_or_load(cfg, root=tmp_path)
    assert again.cached and all(torch.equal(v, again.model.state_dict()[k]) for k, v in run.model.state_dict().items())
    fresh = fit(cfg, quiet=True)
    assert all(torch.equal(v, fresh.model.state_dict()[k]) for k, v in run.model.state_dict().items())
    for bad in (0.0, 1.5, -0.1, float("nan")):
        with pytest.raises(ValueError, match="init_density"):
            cfg.replace(init_density=bad)


def test_stopped_improving_against_hand_worked_curves():
    from prunekit.core.train import stopped_improving

    # improvements need a 1% drop below the best so far; a bump up or a tiny gain counts as no improvement
    losses = [1.0, 0.5, 0.499, 0.6, 0.3, 0.298, 0.2975]
    got = [stopped_improving(losses[:n], patience=2) for n in range(1, len(losses) + 1)]
    assert got == [False, False, False, True, False, False, True]
    assert stopped_improving([1.0, 0.99, 0.98], patience=1, min_improvement=0.0) is False   # any drop improves
    assert stopped_improving([1.0, 1.0], patience=1, min_improvement=0.0) is True          # a tie does not
    assert stopped_improving([], patience=3) is False
    for kwargs, match in (({"patience": 0}, "patience"), ({"patience": 1, "min_improvement": 1.0}, "min_improvement")):
        with pytest.raises(ValueError, match=match):
            stopped_improving([1.0], **kwargs)


def test_training_stops_when_the_loss_stops_improving_and_resumes_to_the_same_end(tmp_path):
    from prunekit.core.store import fit
    from prunekit.core.train import stopped_improving

    cfg = TrainConfig(data=DataConfig(name="digits"), model=ModelConfig(arch="mlp", hidden=(16,)), epochs=60,
                      lr=0.05, optimizer="sgd", patience=2, min_improvement=0.05, batch_size=256)
    run = fit(cfg, quiet=True)
    losses = list(run.history["train_loss"])
    assert 2 < len(losses) < 60 and stopped_improving(losses, 2, 0.05)            # stopped early, by the rule
    assert not any(stopped_improving(losses[:n], 2, 0.05) for n in range(1, len(losses)))  # and not before
    assert cfg.replace(patience=0).key() != cfg.key() and TrainConfig().identity() == {}       # defaults keep keys
    from prunekit.core.store import build
    from prunekit.core.data import load_dataset
    from prunekit.core.train import train

    def interrupt(epoch, model):
        if epoch == 2:
            raise KeyboardInterrupt

    ds, progress = load_dataset(cfg.data), tmp_path / "progress.pt"
    with pytest.raises(KeyboardInterrupt):
        train(build(cfg, ds), ds, cfg, quiet=True, resume_path=progress, callback=interrupt)
    history, _ = train(build(cfg, ds), ds, cfg, quiet=True, resume_path=progress)
    assert list(history["train_loss"]) == losses and not progress.exists()            # the same stop, resumed
    with pytest.raises(ValueError, match="patience"):
        cfg.replace(patience=-1)
    with pytest.raises(ValueError, match="min_improvement"):
        cfg.replace(min_improvement=1.5)
