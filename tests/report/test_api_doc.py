"""docs/API.md cannot drift: its tour's code runs as it stands, top to bottom, in a fresh interpreter."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
API = REPO / "docs" / "API.md"


def _tour_code() -> str:
    return "\n".join(re.findall(r"```python\n(.*?)```", API.read_text(), flags=re.S))


def test_the_tour_shows_every_layer():
    code = _tour_code()
    for layer in ("core", "pruning", "measures", "studies", "report"):
        assert f"from prunekit.{layer}" in code, f"the tour never calls prunekit.{layer}"


def test_the_tour_runs_as_written(tmp_path):
    script = tmp_path / "tour.py"
    script.write_text("import prunekit\n" + _tour_code())
    env = {**os.environ, "PRUNEKIT_CACHE": str(tmp_path / "models"), "PRUNEKIT_RESULTS": str(tmp_path / "results"),
           "PRUNEKIT_FIGURES": str(tmp_path / "figures"), "PRUNEKIT_QUIET": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
