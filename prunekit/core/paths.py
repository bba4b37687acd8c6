"""Where prunekit keeps data sets, trained models, result tables and figures.

Everything lives under the repository by default (``data/`` is git-ignored); environment variables move each part:
``PRUNEKIT_DATA`` (data sets, default ``data/datasets``), ``PRUNEKIT_CACHE`` (trained models and sweep points,
default ``data/models``), ``PRUNEKIT_RESULTS`` (tables, default ``data/results``), ``PRUNEKIT_FIGURES`` (default
``figures``). Outside a checkout the defaults are relative to the current directory.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
from pathlib import Path

__all__ = ["repo_root", "data_dir", "cache_dir", "results_root", "figures_dir", "file_mode", "atomic_write",
           "remove_dead_temporaries"]


def repo_root() -> Path:
    here = Path(__file__).resolve().parents[2]
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def _dir(env: str, default: str) -> Path:
    value = os.environ.get(env)
    return Path(value).expanduser() if value else repo_root() / default


def data_dir() -> Path:
    return _dir("PRUNEKIT_DATA", "data/datasets")


def cache_dir() -> Path:
    return _dir("PRUNEKIT_CACHE", "data/models")


def results_root() -> Path:
    return _dir("PRUNEKIT_RESULTS", "data/results")


def figures_dir() -> Path:
    return _dir("PRUNEKIT_FIGURES", "figures")


def _umask() -> int:
    """The process's umask now (read at every write, so a later ``os.umask`` is followed): from ``/proc/self/status``
    where Linux shows it, which leaves the process alone; elsewhere by setting and restoring it (``os.umask`` can
    only be read that way)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The permissions ``open()`` would give a new file now: ``0o666`` less the current umask."""
    return 0o666 & ~_umask()


_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.[^.]+\.tmp$")


def atomic_write(path, write) -> Path:
    """Write ``path`` by calling ``write(tmp)`` on a temporary file beside it, then renaming it into place: readers see
    the old file or the new one, never half of one. If ``write`` fails, the temporary file is removed and ``path`` is
    left as it was; an ``OSError`` (a full disk, say) is raised again naming ``path``. A writer killed before the
    rename leaves a temporary named after its host and process, which :func:`remove_dead_temporaries` clears. The
    file gets the permissions the umask gives at the time of the write (as ``open`` would), not ``mkstemp``'s
    owner-only 0600. The one way files are written in prunekit (models, tables, figures, sweep points)."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{_HOST}.{os.getpid()}.", suffix=".tmp")
        os.close(fd)
        write(Path(tmp))
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except OSError as err:  # a full disk, say: the error names the file and its folder, and nothing is left of it
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        what = f"{err.strerror or err}; nothing of {path.name} was written"
        raise (OSError(err.errno, what, str(path)) if err.errno else OSError(f"{what}: {path}")) from err
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_dead_temporaries(folder) -> list[Path]:
    """Remove the temporary files :func:`atomic_write` left in ``folder`` when its writer was killed before the
    rename: those named after this host and a process that no longer runs (a live writer keeps its own; another
    host's are left to that host). Returns the files removed."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for tmp in folder.glob(".*.tmp"):
        m = _TEMPORARY.match(tmp.name)
        if m and m["host"] == _HOST and int(m["pid"]) != os.getpid() and not _alive(int(m["pid"])):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed
