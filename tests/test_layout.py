"""The package's layers: each imports only the layers below it (core < pruning < measures < report < studies), by an
import statement (relative or absolute, at module level or in a function) or by a dynamic one: an
``importlib.import_module("prunekit.<layer>...")``, an ``__import__`` of one, or a registry's provider (the module a
``prunekit.core.registry.Registry`` imports on its first look-up). docs/API.md lists the layers in this order."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "prunekit"
API = Path(__file__).resolve().parents[1] / "docs" / "API.md"
LAYERS = ("core", "pruning", "measures", "report", "studies")
MIN_FILES = 60  # the package holds more modules than this: a scan of fewer looked in the wrong place


def _module_parts(path: Path) -> list[str]:
    """``["prunekit", "studies", "s000_density", "verdicts"]`` for ``prunekit/studies/s000_density/verdicts.py`` (a
    package's ``__init__.py`` is the package itself)."""
    parts = ["prunekit", *path.relative_to(PACKAGE).with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def _layer_of(dotted: str) -> str | None:
    """The layer of an absolute module path ("prunekit.studies.s000_density" -> "studies"), None outside them."""
    parts = dotted.split(".")
    return parts[1] if parts[0] == "prunekit" and len(parts) > 1 and parts[1] in LAYERS else None


def _absolute(node: ast.ImportFrom, package: list[str]) -> list[str]:
    """The absolute module paths a ``from ... import ...`` names: its module, or, for ``from . import x`` and
    ``from prunekit import core``, each imported name as a module."""
    if node.level == 0:
        base = (node.module or "").split(".")
    else:
        up = package[:len(package) - (node.level - 1)] if node.level > 1 else package
        base = up + ((node.module or "").split(".") if node.module else [])
    if node.module is None or base == ["prunekit"]:
        return [".".join(base + [a.name]) for a in node.names]
    return [".".join(base)]


def _literal(node) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _dynamic(node: ast.Call) -> list[str]:
    """The module paths a call imports by name: ``importlib.import_module("...")`` / ``import_module("...")``,
    ``__import__("...")``, and a ``Registry(what, "provider")`` or ``Registry(..., provider="...")``."""
    fn = node.func
    name = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
    found = []
    if name in ("import_module", "__import__") and node.args:
        found.append(_literal(node.args[0]))
    if name == "Registry":
        found += [_literal(node.args[1])] if len(node.args) > 1 else []
        found += [_literal(k.value) for k in node.keywords if k.arg == "provider"]
    return [f for f in found if f]


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """``(line, absolute module path)`` of every import in ``path``, static or dynamic."""
    parts = _module_parts(path)
    package = parts if path.name == "__init__.py" else parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            found += [(node.lineno, m) for m in _absolute(node, package)]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.Call):
            found += [(node.lineno, m) for m in _dynamic(node)]
    return sorted(found, key=lambda item: item[0])  # ast.walk goes breadth first: in the order of the lines


def upward_imports(path: Path) -> list[str]:
    """Each import of ``path`` (a file of the package) into a layer above its own, as ``"<file>:<line> (<layer>)
    imports <layer>"``."""
    parts = _module_parts(path)
    layer = parts[1] if len(parts) > 1 else None
    out = []
    for line, module in imported_modules(path):
        target = _layer_of(module)
        if layer in LAYERS and target is not None and LAYERS.index(target) > LAYERS.index(layer):
            out.append(f"{'/'.join(path.relative_to(PACKAGE).parts)}:{line} ({layer}) imports {target} ({module})")
    return out


def package_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_each_layer_imports_only_the_layers_below_it():
    files = package_files()
    assert len(files) >= MIN_FILES, f"scanned {len(files)} files under {PACKAGE}: the package is not where it looks"
    upward, outside = [], []
    for path in files:
        rel = path.relative_to(PACKAGE).parts
        if len(rel) < 2:
            continue  # prunekit/__init__.py and __main__.py sit above every layer
        if rel[0] not in LAYERS:
            outside.append(str(path))
        upward += upward_imports(path)
    assert not outside, f"folders that are not layers: {outside}"
    assert not upward, "\n".join(upward)


def test_the_checker_sees_every_kind_of_upward_import(tmp_path, monkeypatch):
    core = tmp_path / "prunekit" / "core"
    core.mkdir(parents=True)
    bad = core / "m.py"
    bad.write_text("from ..studies import s000_density\nfrom prunekit.report import claims\nimport prunekit.measures.density\n"
                   "from .. import pruning\nimport importlib\n"
                   "def f():\n    importlib.import_module('prunekit.studies.s001_shrinking')\n"
                   "    __import__('prunekit.report.site')\n"
                   "R = Registry('arch', 'prunekit.measures.curves')\nS = Registry('x', provider='prunekit.pruning.select')\n"
                   "from . import checks\nfrom .checks import text\nimportlib.import_module(name)\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "prunekit")
    found = [line.split(" imports ")[1].split(" ")[0] for line in upward_imports(bad)]
    assert found == ["studies", "report", "measures", "pruning", "studies", "report", "measures", "pruning"]


def test_a_nested_package_resolves_its_relative_imports(tmp_path, monkeypatch):
    """``from ...core import x`` in ``prunekit/studies/pkg/m.py`` is prunekit.core, ``from ..report import y``
    there is prunekit.studies.report (no layer): the levels count from the file's own package."""
    pkg = tmp_path / "prunekit" / "studies" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "m.py").write_text("from ...core.checks import text\nfrom ..s001 import x\nfrom .sibling import y\n")
    (pkg / "__init__.py").write_text("from .m import z\nfrom ...report import claims\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "prunekit")
    assert [m for _, m in imported_modules(pkg / "m.py")] == ["prunekit.core.checks", "prunekit.studies.s001",
                                                              "prunekit.studies.pkg.sibling"]
    assert [m for _, m in imported_modules(pkg / "__init__.py")] == ["prunekit.studies.pkg.m", "prunekit.report"]


def test_the_scan_fails_on_an_empty_package(tmp_path, monkeypatch):
    import pytest

    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "nothing")
    with pytest.raises(AssertionError, match="scanned 0 files"):
        test_each_layer_imports_only_the_layers_below_it()


def test_api_doc_lists_the_layers_in_the_order_they_import():
    listed = re.findall(r"^  (\w+)/ ", API.read_text(), flags=re.M)
    assert tuple(listed) == LAYERS, listed
