"""docs/API.md cannot drift: every call it shows exists with those parameter names, in that order, and those defaults."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest
import torch

API = Path(__file__).resolve().parents[1] / "docs" / "API.md"


def _documented_calls() -> list[tuple[list[str], str]]:
    """(modules of the section, source line) for every code line of every python block under a module heading."""
    calls, modules, in_code = [], [], False
    for line in API.read_text().splitlines():
        if line.startswith("#") and not in_code:
            modules = re.findall(r"`(prunekit\.\w+)`", line) if line.startswith("### ") else []
            continue
        if line.startswith("```"):
            in_code = line.strip() == "```python"
            continue
        code = line.split("#", 1)[0].strip()
        if in_code and code:
            assert modules, f"code outside a module section in docs/API.md: {line!r}"
            calls.append((modules, code))
    return calls


CALLS = _documented_calls()


def test_the_doc_shows_calls_of_every_study_module():
    documented = {m for mods, _ in CALLS for m in mods}
    for name in ("config", "data", "device", "models", "train", "cache", "claims", "pruning", "scorers", "masks",
                 "compaction", "curves",
                 "metrics", "sweep", "utility", "imbalance", "retrain", "cycles", "surface", "saliency", "invariance",
                 "shrinking", "mechanism", "basins", "sparsify", "sizes", "estimate", "report", "readme"):
        assert f"prunekit.{name}" in documented


@pytest.mark.parametrize("modules, code", CALLS, ids=[c for _, c in CALLS])
def test_documented_signature_exists(modules, code):
    tree = ast.parse(code)
    node = tree.body[0].value if isinstance(tree.body[0], (ast.Expr, ast.Assign)) else None
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name), f"not a call of a function: {code!r}"
    name = node.func.id
    owners = [importlib.import_module(m) for m in modules if hasattr(importlib.import_module(m), name)]
    assert owners, f"{name} is not in {', '.join(modules)}"
    params = [p for p in inspect.signature(getattr(owners[0], name)).parameters.values()
              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    names = [p.name for p in params]
    positions = []
    for i, arg in enumerate(node.args):
        assert isinstance(arg, ast.Name), f"{name}: positional argument {i} should be a parameter name"
        assert i < len(names) and names[i] == arg.id, f"{name}: parameter {i} is {names[i:i + 1]}, doc says {arg.id}"
        positions.append(i)
    for kw in node.keywords:
        assert kw.arg in names, f"{name} has no parameter {kw.arg!r} (has {names})"
        positions.append(names.index(kw.arg))
        default = params[names.index(kw.arg)].default
        documented = eval(compile(ast.Expression(kw.value), "<doc>", "eval"), {"torch": torch})  # noqa: S307
        assert default is not inspect.Parameter.empty, f"{name}({kw.arg}=...) has no default"
        assert documented == default, f"{name}: default of {kw.arg} is {default!r}, doc says {documented!r}"
    assert positions == sorted(positions), f"{name}: parameters out of order in the doc"
