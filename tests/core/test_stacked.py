"""Stacks of fully connected networks (TrainConfig.stack, prunekit.core.stacked): each network's math is its lone
run's up to float32 rounding (stated tolerances below), a stack repeats bitwise, and its models live under keys of
their own.

Tolerances (CPU, float32): the stacked forward pass within 1e-5 of each network's own; after SGD epochs the weights
within 1e-5 and the training loss within 1e-5 (relative) of the lone run's; after a short Adam training, whose
update divides by the root of small second moments, the test accuracy within 3 points.
"""

import pytest
import torch

from prunekit.core.config import DataConfig, ModelConfig, TrainConfig
from prunekit.core.many import fit_stack, stacked_configs, train_or_load_many
from prunekit.core.models import MLP
from prunekit.core.runtime import thread_ceiling
from prunekit.core.stacked import StackedMLP, members
from prunekit.core.store import entry_path, fit, train_or_load

BASE = TrainConfig(data=DataConfig("digits"), model=ModelConfig("lenet300", width_mult=0.2), epochs=2, batch_size=64,
                   optimizer="sgd", lr=0.05, momentum=0.9)


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv("PRUNEKIT_THREADS", "1")
    with thread_ceiling(1):
        yield


def test_the_stacked_forward_pass_is_each_networks_own():
    torch.manual_seed(0)
    nets = [MLP(12, (7, 5), 3), MLP(12, (7, 5), 3), MLP(12, (7, 5), 3)]
    stack = StackedMLP(nets)
    x = torch.randn(3, 9, 3, 4)
    out = stack(x)
    for k, net in enumerate(nets):
        torch.testing.assert_close(out[k], net(x[k]), atol=1e-5, rtol=0)
        assert all(torch.equal(v, net.state_dict()[name]) for name, v in stack.state_dict_of(k).items())
        assert list(stack.state_dict_of(k)) == list(net.state_dict())
    nobias = [MLP(4, (3,), 2, activation="tanh", bias=False) for _ in range(2)]
    torch.testing.assert_close(StackedMLP(nobias)(torch.ones(2, 5, 4))[1], nobias[1](torch.ones(5, 4)), atol=1e-6,
                               rtol=0)
    with pytest.raises(ValueError, match="one architecture"):
        StackedMLP([MLP(12, (7, 5), 3), MLP(12, (7, 6), 3)])
    with pytest.raises(ValueError, match="MLPs only"):
        StackedMLP([MLP(12, (7,), 3), torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))])


def test_sgd_in_a_stack_is_the_lone_run_to_float32_rounding():
    cfg = BASE.replace(stack=(0, 1, 5), checkpoints=(0, 1))
    stacked = fit_stack(cfg, quiet=True)
    assert [r.config.seed for r in stacked] == [0, 1, 5]
    for run in stacked:
        lone = fit(run.config.replace(stack=()), quiet=True)
        for k, v in run.model.state_dict().items():
            torch.testing.assert_close(v, lone.model.state_dict()[k], atol=1e-5, rtol=0)
        for k, v in run.checkpoints[0].items():  # its own init, as the lone run builds it from its seed
            assert torch.equal(v, lone.checkpoints[0][k]), k
        torch.testing.assert_close(torch.tensor(run.history["train_loss"].to_numpy()),
                                   torch.tensor(lone.history["train_loss"].to_numpy()), rtol=1e-5, atol=0)
        assert list(run.history.columns) == list(lone.history.columns)
        assert (run.history["test_accuracy"] - lone.history["test_accuracy"]).abs().max() <= 1 / 450


def test_adam_in_a_stack_lands_within_a_few_points_of_the_lone_runs():
    cfg = BASE.replace(optimizer="adam", lr=1e-3, momentum=0.0, epochs=3, seed=2, stack=(2, 3))
    for run in fit_stack(cfg, quiet=True):
        lone = fit(run.config.replace(stack=()), quiet=True)
        assert abs(run.history["test_accuracy"].iloc[-1] - lone.history["test_accuracy"].iloc[-1]) <= 0.03


def test_a_stack_repeats_bitwise_and_is_stored_apart_from_the_lone_runs(tmp_path, monkeypatch):
    from prunekit.core import many

    cfg = BASE.replace(seed=1, stack=(0, 1))
    assert cfg.key() != cfg.replace(stack=()).key() and members(cfg)[1] == cfg
    trained = []
    real = many.fit_stack
    monkeypatch.setattr(many, "fit_stack", lambda c, **k: trained.append(c.stack) or real(c, **k))
    run = train_or_load(cfg, root=tmp_path)  # the whole stack is trained, every member stored
    assert trained == [(0, 1)] and run.config == cfg
    other = train_or_load(cfg.replace(seed=0), root=tmp_path)
    assert other.cached and trained == [(0, 1)]
    again = real(cfg)
    for a, b in zip([other, run], again):
        for k, v in a.model.state_dict().items():
            assert torch.equal(v, b.model.state_dict()[k]), k
    assert not (entry_path(cfg.replace(stack=()), tmp_path) / "meta.json").exists()  # the lone run is not claimed
    runs = train_or_load_many([cfg, cfg.replace(seed=0), BASE], root=tmp_path)
    assert runs[0].cached and runs[1].cached and not runs[2].cached and trained == [(0, 1)]


def test_a_network_that_stops_early_keeps_the_weights_of_its_last_epoch():
    stopping = BASE.replace(epochs=3, patience=1, min_improvement=0.9, stack=(0, 1))
    runs = fit_stack(stopping, quiet=True)
    assert [len(r.history) for r in runs] == [2, 2]  # no 90% gain in epoch 2
    shorter = fit_stack(BASE.replace(epochs=2, stack=(0, 1)), quiet=True)  # the same two epochs, no schedule
    for a, b in zip(runs, shorter):
        for k, v in a.model.state_dict().items():
            assert torch.equal(v, b.model.state_dict()[k]), k


def test_stack_refusals_and_stacked_configs():
    for bad, match in [(dict(stack=(1, 2)), "own seed"), (dict(stack="01"), "sequence of seeds"),
                       (dict(stack=(0, -1)), "stack"), (dict(model=ModelConfig("conv"), stack=(0, 1)), "fully connected"),
                       (dict(init_density=0.5, stack=(0, 1)), "init_density=1")]:
        with pytest.raises(ValueError, match=match):
            BASE.replace(**bad)
    assert BASE.replace(stack=[3, 0, 3]).stack == (0, 3)
    with pytest.raises(ValueError, match="no stack"):
        members(BASE)
    cfgs = [BASE.replace(seed=s) for s in (2, 0, 1)] + [BASE.replace(model=ModelConfig("conv")),
                                                       BASE.replace(seed=0, lr=0.1), BASE.replace(init_density=0.5)]
    out = stacked_configs(cfgs)
    assert [c.stack for c in out] == [(0, 1, 2)] * 3 + [(), (0,), ()]
    assert [c.stack for c in stacked_configs(cfgs[:3], max_stack=2)] == [(2,), (0, 1), (0, 1)]
    with pytest.raises(ValueError, match="max_stack"):
        stacked_configs(cfgs, max_stack=0)
