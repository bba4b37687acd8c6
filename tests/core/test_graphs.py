"""The CUDA-graph step's bookkeeping (prunekit.core.graphs.GroupStep), run on the CPU: a stand-in "graph" replays the
captured step eagerly, so which batches go through warm-up, capture, replay and the eager tail, the static index
buffers, the per-epoch capture and the fallback after a failed capture are all checked against the plain loop,
bitwise. The real graphs are compared with the eager CUDA step in tests/core/test_cuda_fast.py."""

import pandas as pd
import pytest
import torch

import prunekit.core.train as T
from prunekit.core import graphs
from prunekit.core.config import DataConfig, ModelConfig, TrainConfig
from prunekit.core.data import load_dataset
from prunekit.core.runtime import thread_ceiling
from prunekit.core.store import fit

CFG = TrainConfig(data=DataConfig("digits"), model=ModelConfig("mlp", hidden=(16,)), epochs=3, batch_size=64,
                  optimizer="sgd", lr=0.05, momentum=0.9, schedule="cosine")  # 1,347 samples: 21 full batches + 3


class ReplayedEagerly(graphs.GroupStep):
    """GroupStep on the CPU with a stand-in graph whose replay runs the captured step eagerly on the static buffers."""

    made: list = []
    fail = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.use_graphs, self.replays = True, 0
        ReplayedEagerly.made.append(self)

    def _warm_step(self, split, idxs, totals):
        self._step(split, idxs, totals)
        self.warm += 1

    def _capture(self, split, static, totals):
        if self.fail:
            raise RuntimeError("operation not permitted when stream is capturing")
        step = self

        class Graph:
            def replay(self):
                step._step(split, static, totals)  # reads the static index buffers, as a graph would
                step.replays += 1

        self.captures += 1
        return Graph()


@pytest.fixture
def stand_in(monkeypatch):
    monkeypatch.setenv("PRUNEKIT_THREADS", "1")
    monkeypatch.setattr(T, "graphs_enabled", lambda device: True)
    monkeypatch.setattr(T, "GroupStep", ReplayedEagerly)
    ReplayedEagerly.made, ReplayedEagerly.fail = [], False
    with thread_ceiling(1):
        yield


def _plain(cfg):
    with pytest.MonkeyPatch.context() as m:
        m.setattr(T, "graphs_enabled", lambda device: False)
        return fit(cfg, quiet=True)


def _same(a, b):
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k]), k
    cols = ["seconds", "threads"]
    pd.testing.assert_frame_equal(a.history.drop(columns=cols), b.history.drop(columns=cols), check_exact=True)


@pytest.mark.parametrize("batch_size", [64, 500, 2000])  # a short last batch; fewer full batches than warm-up; none
def test_warm_up_replays_and_the_short_last_batch_cover_every_batch_once(stand_in, batch_size):
    cfg = CFG.replace(batch_size=batch_size)
    run = fit(cfg, quiet=True)
    step = ReplayedEagerly.made[0]
    full = len(load_dataset(cfg.data).train) // batch_size
    assert step.replays == max(0, cfg.epochs * full - graphs.WARMUP_STEPS)
    assert step.captures == sum(1 for e in range(1, cfg.epochs + 1)  # once per epoch with a full batch after warm-up
                                if full and e * full > graphs.WARMUP_STEPS)
    _same(run, _plain(cfg))


def test_a_failed_capture_warns_and_trains_eagerly_to_the_same_numbers(stand_in):
    ReplayedEagerly.fail = True
    with pytest.warns(RuntimeWarning, match="CUDA graph capture of the training step failed"):
        run = fit(CFG, quiet=True)
    assert ReplayedEagerly.made[0].replays == 0 and not ReplayedEagerly.made[0].use_graphs
    _same(run, _plain(CFG))


def test_graphs_are_on_for_cuda_only_and_the_switch_turns_them_off(monkeypatch):
    assert not graphs.graphs_enabled("cpu")
    assert graphs.graphs_enabled("cuda") and graphs.graphs_enabled(torch.device("cuda", 1))
    for off in ("0", "false", "off"):
        monkeypatch.setenv("PRUNEKIT_CUDA_GRAPHS", off)
        assert not graphs.graphs_enabled("cuda")
