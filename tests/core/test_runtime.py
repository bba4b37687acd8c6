"""Tests of prunekit.core.runtime: the OpenMP environment prunekit's processes start with, and torch's thread count
following the load (the load is simulated: the benchmark benchmarks/bench_load.py measures the real effect)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from prunekit.core import runtime

REPO = Path(__file__).resolve().parents[2]


def _clean_env(**extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_", "PRUNEKIT_THREADS"))}
    return {**env, **extra}


def _python(code: str, **env) -> str:
    out = subprocess.run([sys.executable, "-c", code], env=_clean_env(**env), capture_output=True, text=True,
                         check=True)
    return out.stdout.strip() + out.stderr.strip()


def test_import_prunekit_first_sets_the_spin_count_and_the_usable_cores_before_torch_loads():
    code = ("import os, prunekit, torch; from joblib import cpu_count; "
            "print(os.environ['GOMP_SPINCOUNT'], os.environ['OMP_NUM_THREADS'], torch.get_num_threads(), cpu_count())")
    spin, omp, threads, cores = _python(code).split()
    assert spin == runtime.SPIN_COUNT == "30000"
    assert omp == threads == cores == str(len(os.sched_getaffinity(0)))


def test_settings_of_the_user_and_the_torch_mode_are_left_alone():
    assert _python("import os, prunekit; print(os.environ.get('GOMP_SPINCOUNT'))", GOMP_SPINCOUNT="7") == "7"
    assert _python("import os, prunekit; print(os.environ.get('GOMP_SPINCOUNT'))",
                   OMP_WAIT_POLICY="PASSIVE") == "None"
    assert _python("import os, prunekit; print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_NUM_THREADS'))",
                   PRUNEKIT_THREADS="torch") == "None None"
    assert _python("import os, prunekit, torch; print(os.environ['OMP_NUM_THREADS'], torch.get_num_threads())",
                   PRUNEKIT_THREADS="1") == "1 1"


def test_torch_imported_first_gets_one_note_naming_the_setting_and_the_readme_section():
    code = ("import warnings; warnings.simplefilter('always'); import torch, prunekit; "
            "from prunekit.core import runtime; runtime.configure_environment(); runtime.configure_environment()")
    err = _python(code)
    assert err.count("RuntimeWarning") == 1, err
    assert "GOMP_SPINCOUNT=30000" in err and "'Busy machines'" in err
    assert "RuntimeWarning" not in _python(code, GOMP_SPINCOUNT="30000")  # set before Python started: nothing to say
    section = re.search(r"^#+ Busy machines$", (REPO / "README.md").read_text(), re.M)
    assert section, "the note points at the README's 'Busy machines' section"


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_bad_prunekit_threads_is_refused_by_name(monkeypatch, value):
    monkeypatch.setenv("PRUNEKIT_THREADS", value)
    with pytest.raises(ValueError, match=r"PRUNEKIT_THREADS=.*allowed values: auto, <number of threads>, torch"):
        runtime.mode()


class _FakeLoad:
    """Looks at a simulated machine with 2 cores: ``others`` cores' worth of CPU used by other processes."""

    def __init__(self):
        self.t, self.busy, self.own, self.others = 0.0, 0.0, 0.0, 0.0

    def __call__(self):
        self.t += 0.25
        self.busy += 0.25 * (self.others + 1.0)  # this process keeps one core busy
        self.own += 0.25
        return self.t, self.busy, self.own, 2


@pytest.fixture
def governor(monkeypatch):
    gov = runtime._Governor()
    load = _FakeLoad()
    monkeypatch.setattr(gov, "_look", load)
    monkeypatch.setattr(runtime, "INTERVAL", 0.0)
    monkeypatch.delenv("PRUNEKIT_THREADS", raising=False)
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    yield gov, load
    torch.set_num_threads(saved)


def test_threads_follow_the_cores_other_processes_leave(governor):
    gov, load = governor
    seen = [gov.adapt() for _ in range(3)]
    assert seen == [2, 2, 2]  # idle: the ceiling
    load.others = 1.0  # one busy process: one core left for us, once the 1 s window has seen it
    seen = [gov.adapt() for _ in range(6)]
    assert seen[-1] == 1 and torch.get_num_threads() == 1
    load.others = 2.0  # the machine full: still one thread, never zero
    assert [gov.adapt() for _ in range(6)][-1] == 1
    load.others = 0.2  # a light background: back to both cores
    assert [gov.adapt() for _ in range(6)][-1] == 2 and torch.get_num_threads() == 2


def test_a_thread_count_set_by_hand_is_the_new_ceiling(governor):
    gov, load = governor
    gov.adapt()
    torch.set_num_threads(1)
    assert [gov.adapt() for _ in range(6)] == [1] * 6  # idle machine, but the user asked for one thread


def test_a_pinned_thread_count_never_follows_the_load(governor, monkeypatch):
    gov, load = governor
    monkeypatch.setenv("PRUNEKIT_THREADS", "2")
    load.others = 2.0
    assert [gov.adapt() for _ in range(8)] == [2] * 8


def test_thread_ceiling_caps_and_restores(governor, monkeypatch):
    gov, load = governor
    monkeypatch.setattr(runtime, "_governor", gov)
    runtime.adapt_threads()
    with runtime.thread_ceiling(1):
        assert torch.get_num_threads() == 1
        assert [runtime.adapt_threads() for _ in range(4)] == [1] * 4
    assert torch.get_num_threads() == 2 and runtime.adapt_threads() == 2


def test_fewest_threads_since_a_mark(governor, monkeypatch):
    gov, load = governor
    monkeypatch.setattr(runtime, "_governor", gov)
    runtime.fewest_threads_since(mark=True)
    load.others = 1.0
    for _ in range(6):
        runtime.adapt_threads()
    load.others = 0.0
    for _ in range(6):
        runtime.adapt_threads()
    assert torch.get_num_threads() == 2 and runtime.fewest_threads_since(mark=True) == 1
    assert runtime.fewest_threads_since() == 2


def test_the_makefile_and_the_kernel_spec_carry_the_same_setting():
    make = (REPO / "Makefile").read_text()
    assert re.search(rf"^GOMP_SPINCOUNT \?= {runtime.SPIN_COUNT}$", make, re.M)
    assert re.search(r"^export GOMP_SPINCOUNT$", make, re.M)
    assert "--env GOMP_SPINCOUNT $(GOMP_SPINCOUNT)" in make
    spec = Path(sys.prefix) / "share" / "jupyter" / "kernels" / "prunekit" / "kernel.json"
    if not spec.exists():
        pytest.skip("the prunekit kernel is not installed in this environment (make install does it)")
    assert json.loads(spec.read_text()).get("env", {}).get("GOMP_SPINCOUNT") == runtime.SPIN_COUNT


def test_dask_workers_start_with_the_settings(monkeypatch):
    pytest.importorskip("distributed")
    from prunekit.core.sweep import _client_for

    monkeypatch.setenv("GOMP_SPINCOUNT", "12345")
    client, cluster, _ = _client_for(1, None, None)
    try:
        seen = client.run(lambda: os.environ.get("GOMP_SPINCOUNT"))
    finally:
        client.close()
        cluster.close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert list(seen.values()) == ["12345"]
