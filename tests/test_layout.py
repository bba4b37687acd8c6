"""The package's layers: each imports only the layers below it (core < pruning < measures < report < studies)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "prunekit"
LAYERS = ("core", "pruning", "measures", "report", "studies")


def _imported_layers(path: Path, layer: str) -> list[tuple[int, str]]:
    """(line, layer) of every import in ``path`` (relative or absolute, at module level or in a function)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                target = parts[1] if parts[0] == "prunekit" and len(parts) > 1 else None
                names = [a.name for a in node.names] if parts == ["prunekit"] else []
                found += [(node.lineno, n) for n in names if n in LAYERS]
            elif node.level == 1:
                target = layer if node.module else None
            else:  # from ..x import y
                target = (node.module or "").split(".")[0] or None
                if target is None:
                    found += [(node.lineno, a.name) for a in node.names if a.name in LAYERS]
            if target in LAYERS:
                found.append((node.lineno, target))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "prunekit" and len(parts) > 1 and parts[1] in LAYERS:
                    found.append((node.lineno, parts[1]))
    return found


def test_each_layer_imports_only_the_layers_below_it():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).parts
        if len(rel) < 2:
            continue  # prunekit/__init__.py and __main__.py sit above every layer
        layer = rel[0]
        assert layer in LAYERS, f"{path}: a folder that is not a layer"
        for line, target in _imported_layers(path, layer):
            if LAYERS.index(target) > LAYERS.index(layer):
                upward.append(f"{'/'.join(rel)}:{line} ({layer}) imports {target}")
    assert not upward, "\n".join(upward)


def test_the_checker_sees_an_upward_import(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("from ..studies import s000_density\nfrom prunekit.report import claims\nimport prunekit.measures.density\n")
    assert [t for _, t in _imported_layers(bad, "core")] == ["studies", "report", "measures"]
