"""One writer per output folder: long jobs (``tracegrad generate``, ``tracegrad train``) hold a lock on their folder.

Their outputs are written atomically (:mod:`.atomic`), which keeps each file whole but does not make two jobs on one
folder safe: two generators would both compute the same structures (hours of PySCF twice) and race on the SCF
checkpoints, two trainings would overwrite each other's checkpoints and log. The lock is an advisory ``flock`` on
``FOLDER/.lock``, held by the open file, so the kernel releases it when the process ends however it ends: a
killed job never leaves a stale lock behind, and a rerun resumes at once. The file keeps the holder's pid, command
and start time for the error message. Where ``fcntl`` is missing (Windows) the folder is not locked.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from ..core.errors import OutputPathError

LOCK_FILE = ".lock"


class FolderInUseError(OutputPathError):
    """Another process is writing to the folder a job was asked to write to."""


@contextmanager
def exclusive(folder: str | os.PathLike, job: str) -> Iterator[None]:
    """Hold ``folder``'s lock for the duration of the ``with`` block (the folder is made if missing).

    Raises :class:`FolderInUseError`, naming the holder's pid and command, when another open of the lock holds it
    (another process, or another job of this one)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)  # also unlocked: callers rely on the folder existing
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderInUseError(f"{folder.resolve()} is in use by another job ({_holder(path)}); wait for it to "
                                   f"end or stop it (its output resumes), then run {job} again") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "job": job, "argv": sys.argv,
                                 "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}).encode())
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays, harmless, for the next job to reuse


def _holder(path: Path) -> str:
    """The lock holder's description as it wrote it, or what can be said without it."""
    try:
        info = json.loads(path.read_text())
        return f"pid {info['pid']}, {info['job']}, since {info['since']}"
    except (OSError, ValueError, KeyError):
        return "holder unknown"
