"""One process computes a store entry at a time: a lock per entry that says who holds it, and leaves no file behind.

:func:`entry_lock` is ``filelock``'s ``FileLock`` on ``.<name>.lock`` beside the entry, held while the entry is loaded
or computed; a second process waits on it and then loads what the first one stored. The holder writes its process id,
host and start time into the lock file; a process that has waited :data:`WAIT_NOTICE_S` seconds says on stderr which
entry it waits for and who holds it. A holder that is killed releases the lock with its process (``flock``).

The lock file is removed by its holder, before the lock is released. ``filelock``'s ``UnixFileLock`` keeps the file
by design, because a file removed by a process that does not hold its lock splits the waiters between two files
(inodes) and two of them could hold "the" lock at once. Removed *while held*, it cannot: a waiter that opened the old
file gets its lock only after the holder is done and then sees that file has no name left (``filelock`` 4 checks
``st_nlink`` after each ``flock`` and tries again on the path), so every process that holds a lock holds the one on
the current file.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

__all__ = ["WAIT_NOTICE_S", "lock_file", "entry_lock", "lock_holder"]

WAIT_NOTICE_S = 5.0  # seconds a process waits for an entry's lock before it says which entry and who holds it


def lock_file(path: str | os.PathLike) -> Path:
    """The lock file of the entry at ``path``: ``.<name>.lock`` beside it."""
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise ValueError(f"path={path!r} must be an entry's path (a non-empty string or os.PathLike)")
    path = Path(path)
    return path.parent / f".{path.name}.lock"


def _record_holder(fd: int) -> None:
    """Write who holds the lock into the lock file (``on_acquired`` of ``filelock``: called with its descriptor)."""
    note = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%H:%M:%S")})
    os.ftruncate(fd, 0)
    os.pwrite(fd, note.encode(), 0)


def lock_holder(path: str | os.PathLike) -> str:
    """Who holds the lock of the entry at ``path``, in words ("process 123 on host h since 12:00:01"), as its
    holder wrote it; "another process" when the file says nothing readable."""
    where = lock_file(path)
    try:
        note = json.loads(where.read_text())
        return f"process {int(note['pid'])} on {note['host']} since {note['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def entry_lock(path: str | os.PathLike) -> Iterator[FileLock]:
    """Hold the lock of the entry at ``path`` for the block (see the module docstring): wait for another holder, saying
    after :data:`WAIT_NOTICE_S` seconds which entry and who holds it; remove the lock file before releasing it."""
    where = lock_file(path)
    path = Path(path)
    where.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(where), on_acquired=_record_holder)
    try:
        lock.acquire(timeout=WAIT_NOTICE_S)
    except Timeout:
        print(f"prunekit: waiting for {path}: {lock_holder(path)} holds its lock while it computes or loads this "
              f"entry; this process goes on (and loads what that one stored) once it is done", file=sys.stderr,
              flush=True)
        lock.acquire()
    try:
        yield lock
    finally:
        try:
            where.unlink(missing_ok=True)  # while held: see the module docstring
        finally:
            lock.release()
