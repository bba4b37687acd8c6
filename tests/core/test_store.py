"""prunekit.core.store.cached_result: derived results computed once per spec, stored atomically, checked when loaded."""

import json

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
