"""prunekit.core.store: derived results computed once per spec (one process at a time), stored atomically with
checksums over everything they hold, checked when loaded; temporaries of killed writers cleared."""

import json
import os
import signal
import stat
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from prunekit.core.store import cached_result, result_key


def test_computed_once_then_loaded_exactly(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"w": torch.arange(6.0).view(2, 3), "mask": torch.tensor([True, False])}, {"acc": 0.5, "n": 3}

    spec = {"pretrained": "abc", "ratio": 0.25, "lrs": [0.1, 0.01]}
    t1, i1 = cached_result("pruned", spec, compute)
    t2, i2 = cached_result("pruned", dict(reversed(list(spec.items()))), compute)  # key order does not matter
    assert calls == [1] and i1 == i2 == {"acc": 0.5, "n": 3}
    assert all(torch.equal(t1[k], t2[k]) and t1[k].dtype == t2[k].dtype for k in t1)
    entry = tmp_path / "models" / "pruned" / result_key(spec)
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["spec"] == spec and len(meta["sha256"]) == 64
    cached_result("pruned", {**spec, "ratio": 0.5}, compute)                    # another spec: computed
    assert len(calls) == 2
    assert not list(entry.glob(".*.tmp"))                                        # nothing half-written left


@pytest.mark.parametrize("damage", ["tensors", "meta", "spec"])
def test_a_damaged_entry_is_recomputed_with_a_warning(tmp_path, damage):
    spec = {"k": 1}
    cached_result("cycles", spec, lambda: ({"a": torch.ones(2)}, {}))
    entry = tmp_path / "models" / "cycles" / result_key(spec)
    if damage == "tensors":
        (entry / "tensors.pt").write_bytes(b"not a tensor file")
    elif damage == "meta":
        (entry / "meta.json").write_text("{")
    else:
        meta = json.loads((entry / "meta.json").read_text())
        (entry / "meta.json").write_text(json.dumps({**meta, "spec": {"k": 2}}))
    with pytest.warns(UserWarning, match="corrupt"):
        tensors, _ = cached_result("cycles", spec, lambda: ({"a": torch.zeros(2)}, {}))
    assert torch.equal(tensors["a"], torch.zeros(2))
    again, _ = cached_result("cycles", spec, lambda: pytest.fail("recomputed a good entry"))
    assert torch.equal(again["a"], torch.zeros(2))


def test_bad_arguments_fail_before_compute():
    never = lambda: pytest.fail("computed")  # noqa: E731
    for kind in ("", "Cycles", "../x", 3):
        with pytest.raises(ValueError, match="kind"):
            cached_result(kind, {}, never)
    with pytest.raises(ValueError, match="spec"):
        cached_result("cycles", {"x": float("nan")}, never)
    with pytest.raises(ValueError, match="spec"):
        cached_result("cycles", {"x": object()}, never)
    with pytest.raises(ValueError, match="spec"):
        cached_result("cycles", ["not", "a", "dict"], never)
    with pytest.raises(ValueError, match="compute"):
        cached_result("cycles", {"x": 1}, lambda: ([torch.ones(1)], {}))


# ----------------------------------------------------------------------- a store that is never wrong without saying so
def _entry(tmp_path, spec):
    return tmp_path / "models" / "cycles" / result_key(spec)


def test_a_digit_changed_in_the_stored_row_is_found_and_recomputed(tmp_path):
    spec = {"cycle": 1}
    cached_result("cycles", spec, lambda: ({"a": torch.ones(2)}, {"row": {"retrained_test_accuracy": 0.96}}))
    meta_path = _entry(tmp_path, spec) / "meta.json"
    text = meta_path.read_text()
    assert text.count("0.96") == 1
    meta_path.write_text(text.replace("0.96", "0.97"))
    with pytest.warns(UserWarning, match=r"cycles/[0-9a-f]{64} .*does not match its checksum"):
        _, info = cached_result("cycles", spec, lambda: ({"a": torch.ones(2)}, {"row": {"retrained_test_accuracy":
                                                                                         0.96}}))
    assert info["row"]["retrained_test_accuracy"] == 0.96
    meta = json.loads(meta_path.read_text())
    assert meta["format"] == 2 and len(meta["meta_sha256"]) == 64
    del meta["meta_sha256"]                                       # a sealed entry that lost its seal is not trusted
    meta_path.write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="does not match its checksum"):
        cached_result("cycles", spec, lambda: ({"a": torch.ones(2)}, {"row": {}}))


def test_an_entry_from_before_the_checksum_is_recomputed_never_sealed_as_it_stands(tmp_path):
    """An entry without ``format`` / ``meta_sha256`` cannot show that its row is the one computed: a value edited in
    it is never returned nor sealed; the entry is recomputed with a warning that names it (the old behaviour sealed
    it, so an edit survived)."""
    spec = {"cycle": 2}
    cached_result("cycles", spec, lambda: ({"a": torch.ones(2)}, {"row": 1}))
    meta_path = _entry(tmp_path, spec) / "meta.json"
    old = {k: v for k, v in json.loads(meta_path.read_text()).items() if k not in ("meta_sha256", "format")}
    meta_path.write_text(json.dumps({**old, "info": {"row": 99}}))              # an old-style entry, edited
    with pytest.warns(UserWarning, match=r"cycles/[0-9a-f]{64} .*written before checksums"):
        _, info = cached_result("cycles", spec, lambda: ({"a": torch.ones(2)}, {"row": 1}))
    assert info == {"row": 1}
    meta = json.loads(meta_path.read_text())
    assert meta["format"] == 2 and meta["info"] == {"row": 1}                  # sealed over the recomputed row
    again, info = cached_result("cycles", spec, lambda: pytest.fail("recomputed a sealed entry"))
    assert info == {"row": 1}


def test_a_trained_model_from_before_the_checksum_is_retrained(tmp_path):
    from prunekit.core.config import TrainConfig
    from prunekit.core.store import train_or_load

    cfg = TrainConfig(epochs=1).replace(hidden=(8,))
    run = train_or_load(cfg)
    meta_path = run.path / "meta.json"
    old = {k: v for k, v in json.loads(meta_path.read_text()).items() if k not in ("meta_sha256", "format")}
    old["history"][0]["test_accuracy"] = 1.0                                    # an edited history, old-style entry
    meta_path.write_text(json.dumps(old))
    with pytest.warns(UserWarning, match="written before checksums"):
        again = train_or_load(cfg)
    assert not again.cached and again.history["test_accuracy"].iloc[0] == run.history["test_accuracy"].iloc[0]
    assert json.loads(meta_path.read_text())["history"][0]["test_accuracy"] != 1.0


def test_a_sweep_point_from_before_the_checksum_is_measured_again(tmp_path):
    from prunekit.core.sweep import read_point, write_point

    path = tmp_path / "p.json"
    write_point(path, {"density": 0.5})
    assert read_point(path) == {"density": 0.5}
    path.write_text(json.dumps({"density": 0.9}))                               # a row as stored before checksums
    with pytest.warns(UserWarning, match=r"p\.json has no checksum"):
        assert read_point(path) is None


def test_the_same_tensors_give_the_same_bytes(tmp_path):
    tensors = {"w": torch.randn(5, 4, generator=torch.Generator().manual_seed(0)), "m": torch.tensor([True, False])}
    cached_result("cycles", {"x": 1}, lambda: (tensors, {}), root=tmp_path / "a")
    cached_result("cycles", {"x": 1}, lambda: (tensors, {}), root=tmp_path / "b")
    key = result_key({"x": 1})
    for name in ("tensors.pt", "meta.json"):
        a, b = (tmp_path / r / "cycles" / key / name for r in ("a", "b"))
        assert a.read_bytes() == b.read_bytes(), name


def test_files_get_the_permissions_the_umask_gives(tmp_path):
    from prunekit.core.paths import atomic_write

    old = os.umask(0o022)
    try:
        path = atomic_write(tmp_path / "t.csv", lambda tmp: tmp.write_text("x"))
        plain = tmp_path / "plain.csv"
        plain.write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o644


KILLED_WRITER = """
import os, signal, sys, torch
import prunekit.core.paths as paths
from prunekit.core.store import cached_result
real = os.replace
def replace(src, dst):
    if str(dst).endswith("tensors.pt"):
        os.kill(os.getpid(), signal.SIGKILL)      # killed after the temporary file is written, before the rename
    return real(src, dst)
paths.os.replace = replace
cached_result("cycles", {"killed": 1}, lambda: ({"a": torch.ones(1000)}, {}), root=sys.argv[1])
"""


def test_a_writer_killed_inside_the_write_leaves_nothing_behind_the_next_run(tmp_path):
    done = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(tmp_path)], capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGKILL
    entry = tmp_path / "cycles" / result_key({"killed": 1})
    orphans = list(entry.glob(".tensors.pt.*.tmp"))
    assert len(orphans) == 1 and not (entry / "meta.json").exists()
    tensors, _ = cached_result("cycles", {"killed": 1}, lambda: ({"a": torch.ones(1000)}, {}), root=tmp_path)
    assert torch.equal(tensors["a"], torch.ones(1000)) and not list(entry.glob(".*.tmp"))


def test_a_live_writers_temporary_file_is_kept(tmp_path):
    from prunekit.core import paths

    mine = tmp_path / f".x.csv.{paths._HOST}.{os.getpid()}.abc.tmp"
    other_host = tmp_path / ".x.csv.elsewhere.1.abc.tmp"
    for f in (mine, other_host):
        f.write_text("")
    assert paths.remove_dead_temporaries(tmp_path) == [] and mine.exists() and other_host.exists()


SLOW_WRITER = """
import sys, time, torch
from prunekit.core.store import cached_result
def compute():
    with open(sys.argv[2], "a") as f:
        f.write("computed\\n")
    time.sleep(1.5)                                 # a delayed writer: the other process arrives meanwhile
    return {"a": torch.arange(4.0)}, {"row": 1}
tensors, info = cached_result("cycles", {"shared": 1}, compute, root=sys.argv[1])
print(tensors["a"].tolist(), info)
"""


def test_two_processes_compute_an_entry_once(tmp_path):
    log = tmp_path / "computed.log"
    procs = [subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(tmp_path / "store"), str(log)],
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert log.read_text() == "computed\n" and outs[0] == outs[1] == "[0.0, 1.0, 2.0, 3.0] {'row': 1}\n"
    assert not list((tmp_path / "store" / "cycles").glob(".*.lock"))        # each holder removed the lock file
    with warnings.catch_warnings():
        warnings.simplefilter("error")             # the entry is whole: it loads without a warning
        cached_result("cycles", {"shared": 1}, lambda: pytest.fail("recomputed"), root=tmp_path / "store")


# ------------------------------------------------------------------------------------ a full disk, the mode, the lock
def _full_disk(monkeypatch, which: str) -> None:
    """Every write of ``which`` (its temporary file) fails as on a full disk (ENOSPC)."""
    import errno
    import pathlib

    real = pathlib.Path.write_bytes

    def write_bytes(self, data):
        if self.name.startswith(f".{which}."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", write_bytes)


@pytest.mark.parametrize("which", ["tensors.pt", "meta.json"])
def test_a_full_disk_names_the_entry_and_its_folder_and_leaves_nothing_half_written(tmp_path, which):
    import errno

    spec = {"full": 1}
    with pytest.MonkeyPatch.context() as full, pytest.raises(OSError) as err:
        _full_disk(full, which)
        cached_result("cycles", spec, lambda: ({"a": torch.ones(3)}, {"row": 1}))
    assert err.value.errno == errno.ENOSPC
    assert f"cache entry {result_key(spec)} could not be stored in {tmp_path / 'models' / 'cycles'}" in str(err.value)
    assert not _entry(tmp_path, spec).exists()              # no tensors.pt without meta.json, no temporary, no folder
    assert not list((tmp_path / "models" / "cycles").iterdir())
    tensors, _ = cached_result("cycles", spec, lambda: ({"a": torch.ones(3)}, {"row": 1}))   # space again: stored
    assert torch.equal(tensors["a"], torch.ones(3)) and (_entry(tmp_path, spec) / "meta.json").is_file()


def test_a_full_disk_leaves_the_readers_model_untrained(tmp_path, monkeypatch):
    from torch import nn

    from prunekit.core.data import load_dataset
    from prunekit.core.store import fit_or_load

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _full_disk(monkeypatch, "tensors.pt")
    with pytest.raises(OSError, match="No space left on device"):
        fit_or_load(model, load_dataset("digits"), lrs=[0.1])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_the_file_mode_follows_the_umask_at_the_time_of_the_write(tmp_path):
    from prunekit.core.paths import atomic_write

    modes = {}
    for mask in (0o077, 0o022, 0o002):
        old = os.umask(mask)
        try:
            modes[mask] = stat.S_IMODE(atomic_write(tmp_path / f"{mask}.csv", lambda tmp: tmp.write_text("x"))
                                       .stat().st_mode)
        finally:
            os.umask(old)
    assert modes == {0o077: 0o600, 0o022: 0o644, 0o002: 0o664}


LOAD_LOCKS = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("locks", sys.argv[-1])   # the module alone: no torch to import
locks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(locks)
entry_lock = locks.entry_lock
"""
COUNTER = LOAD_LOCKS + """
import time
from pathlib import Path
counter = Path(sys.argv[1]) / "counter"
for _ in range(5):
    with entry_lock(Path(sys.argv[1]) / "entry"):     # read, wait, write: two holders at once would lose a count
        n = int(counter.read_text()) if counter.exists() else 0
        time.sleep(0.02)
        counter.write_text(str(n + 1))
"""


def test_the_lock_excludes_while_its_file_is_removed_by_each_holder(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", COUNTER, str(tmp_path), str(LOCKS)]) for _ in range(4)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    assert (tmp_path / "counter").read_text() == "20"
    assert not list(tmp_path.glob("*.lock")) and not list(tmp_path.glob(".*.lock"))


HOLDER = LOAD_LOCKS + """
import time
from pathlib import Path
with entry_lock(sys.argv[1]):
    print("held", flush=True)
    while not Path(sys.argv[2]).exists():          # held until the test has seen the waiter's notice
        time.sleep(0.05)
"""

WAITER = LOAD_LOCKS + """
locks.WAIT_NOTICE_S = 0.5
with entry_lock(sys.argv[1]):
    pass
"""
LOCKS = Path(__file__).resolve().parents[2] / "prunekit" / "core" / "locks.py"


def test_a_waiting_process_says_which_entry_it_waits_for_and_who_holds_it(tmp_path):
    entry = tmp_path / "cycles" / result_key({"waited": 1})
    release = tmp_path / "release"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(entry), str(release), str(LOCKS)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    waiter = subprocess.Popen([sys.executable, "-c", WAITER, str(entry), str(LOCKS)], stderr=subprocess.PIPE,
                              text=True)
    notice = waiter.stderr.readline()                # blocks until the waiter says something
    release.touch()
    assert holder.wait(timeout=60) == 0 and waiter.wait(timeout=60) == 0
    waiter.stderr.close()
    holder.stdout.close()
    assert notice.startswith(f"prunekit: waiting for {entry}: process {holder.pid} on "), notice
    assert not list((tmp_path / "cycles").glob(".*.lock"))
