"""JupyterLab as a user meets it: `make lab` on 127.0.0.1 (the repository as its root, so that a notebook's link to its
rendered page in data/report/ opens), a notebook opened in headless Chromium with the
"Python (prunekit)" kernel, clean (no unsaved-changes mark) once the kernel is connected, the file untouched.

Needs Debian's ``chromium`` (``.ci/run`` installs it); skipped without it. The screenshot lands in ``data/report/``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NOTEBOOK = "01_training.ipynb"

pytestmark = [pytest.mark.browser, pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _chromium(url: str, *args: str) -> str:
    cmd = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1400,900",
           "--virtual-time-budget=30000", *args, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout


def _tabs(dom: str) -> dict[str, bool]:
    """{notebook: dirty} for the notebook tabs of the main area."""
    out = {}
    for tab in re.findall(r"<li[^>]*lm-TabBar-tab[^>]*>", dom):
        name = re.search(r'title="Name: ([^\n"]+)', tab)
        if name and name.group(1).endswith(".ipynb"):
            out[name.group(1)] = "jp-mod-dirty" in tab
    return out


@pytest.fixture
def lab(tmp_path):
    port, token = _free_port(), "prunekit-test"
    args = f"--no-browser --ServerApp.token={token} --LabApp.workspaces_dir={tmp_path}"
    proc = subprocess.Popen(["make", "-s", "lab", "LAB_IP=127.0.0.1", f"LAB_PORT={port}", f"LAB_ARGS={args}"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"make lab exited: {proc.stdout.read()}")
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not answer within 60 s")
        yield base, token
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_a_notebook_opens_with_the_prunekit_kernel_and_stays_clean(lab):
    base, token = lab
    before = (REPO / "notebooks" / NOTEBOOK).read_bytes()
    url = f"{base}/lab/tree/notebooks/{NOTEBOOK}?token={token}"
    dom = ""
    for _ in range(4):  # the first visit starts the kernel; a later one finds it connected
        dom = _chromium(url, "--dump-dom")
        if "Python (prunekit) | Idle" in dom:
            break
    assert "Python (prunekit) | Idle" in dom, re.findall(r"Python \(prunekit\) \| \w+|Python 3 \(ipykernel\)", dom)
    assert _tabs(dom).get(NOTEBOOK) is False, _tabs(dom)  # open, and not marked as changed
    assert "Kernel: Python (prunekit)" in dom
    shot = REPO / "data" / "report" / "lab_01_training.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    _chromium(url, f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    assert (REPO / "notebooks" / NOTEBOOK).read_bytes() == before  # opening it wrote nothing
