"""Atomic writes of files and folders: a reader (or a rerun after a kill) sees the old content or the new, never
a part of either.

Every writer in the package goes through here, so they share one set of guarantees:

- the new content is written under a hidden temporary name in the target's own folder,
  ``.NAME.XXXXXXXX.tmp`` (8 characters of :mod:`tempfile`'s alphabet), flushed to disk, and renamed onto
  ``NAME`` in one step (``os.replace``);
- the final file or folder gets the mode a plain ``open``/``mkdir`` would give (``0o666``/``0o777`` less the
  umask), not the ``0600``/``0700`` of :func:`tempfile.mkstemp`/:func:`tempfile.mkdtemp`;
- a temporary left behind by a killed writer is removed by the next write of the same target (only names that
  match the pattern above for that very target are touched);
- a folder cannot be replaced by one rename when the old one is not empty, so the old one is first renamed to
  ``.NAME.old``; a kill between the two renames leaves ``NAME`` missing and ``.NAME.old`` complete, and
  :func:`recover_folder` (called by the next write, and by readers that can write) renames it back.

Two processes writing the *same* target at the same time are not supported: one of them may fail (its temporary
removed as stale), but the target always holds one complete version.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text", "atomic_write_json", "atomic_folder",
           "replace_folder", "recover_folder", "old_folder", "clean_stale_temporaries", "append_line",
           "file_mode", "folder_mode"]

_TMP_SUFFIX = ".tmp"
_RANDOM_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"  # tempfile's alphabet: mkstemp/mkdtemp names match too


# -- modes ------------------------------------------------------------------------------------------------------
def _umask() -> int:
    # /proc gives the umask without changing it; os.umask must set one to read it, which races with other threads.
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
    """The mode ``open(path, "w")`` would give a new file: ``0o666`` less the umask."""
    return 0o666 & ~_umask()


def folder_mode() -> int:
    """The mode ``os.mkdir`` would give a new folder: ``0o777`` less the umask."""
    return 0o777 & ~_umask()


# -- temporaries -------------------------------------------------------------------------------------------------
def _temporary_pattern(path: Path) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}{re.escape(_TMP_SUFFIX)}")


def _temporary_name(path: Path) -> Path:
    token = "".join(secrets.choice(_RANDOM_CHARS) for _ in range(8))
    return path.with_name(f".{path.name}.{token}{_TMP_SUFFIX}")


def clean_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporaries (files or folders) that killed writers of ``path`` left; returns what was removed."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = _temporary_pattern(path)
    removed = []
    with os.scandir(path.parent) as entries:
        stale = [Path(e.path) for e in entries if pattern.fullmatch(e.name)]
    for p in stale:
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p)
        except FileNotFoundError:
            pass  # someone else removed it first
    return removed


# -- durability ----------------------------------------------------------------------------------------------------
def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    # Makes a rename durable across a power cut; some platforms/file systems cannot open folders: best effort.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _settle_tree(folder: Path) -> None:
    """fsync every file and folder under ``folder`` and give them the umask modes (some writers, safetensors
    among them, make private 0600 files)."""
    fmode, dmode = file_mode(), folder_mode()
    for root, dirs, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            if not path.is_symlink():
                os.chmod(path, fmode)
                _fsync_file(path)
        for name in dirs:
            if not (Path(root) / name).is_symlink():
                os.chmod(Path(root) / name, dmode)
        _fsync_dir(Path(root))


# -- files -------------------------------------------------------------------------------------------------------
@contextmanager
def atomic_path(path: str | os.PathLike, *, skip_unchanged: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (an empty file exists there); write it, and on a normal exit it is
    renamed onto ``path``; on an exception it is removed and ``path`` is left as it was.

    ``skip_unchanged``: leave ``path`` (and its mtime) alone when the new bytes equal the old ones.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(path)
    # mkstemp normalises "dir/.." as text, the OS through symlinks: resolve so the temporary lands beside ``path``
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TMP_SUFFIX, dir=path.parent.resolve())
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if skip_unchanged and path.is_file() and _same_bytes(tmp, path):
            return
        _fsync_file(tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _same_bytes(a: Path, b: Path) -> bool:
    return a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, skip_unchanged: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_path(path, skip_unchanged=skip_unchanged) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8",
                      skip_unchanged: bool = False) -> Path:
    """Write ``text`` to ``path`` atomically; returns the path."""
    return atomic_write_bytes(path, text.encode(encoding), skip_unchanged=skip_unchanged)


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 2, allow_nan: bool = True,
                      sort_keys: bool = False, default: Callable[[Any], Any] | None = None,
                      skip_unchanged: bool = False) -> Path:
    """Write ``obj`` as JSON (with a final newline) to ``path`` atomically; returns the path.

    The text is made before the file is touched, so an object JSON cannot encode leaves ``path`` as it was.
    """
    text = json.dumps(obj, indent=indent, allow_nan=allow_nan, sort_keys=sort_keys, default=default) + "\n"
    return atomic_write_text(path, text, skip_unchanged=skip_unchanged)


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append one line to a log; a line cut short by a killed writer is closed first, so it does not swallow
    this one (readers skip the cut line)."""
    path = Path(path)
    with open(path, "a+b") as f:
        f.seek(0, os.SEEK_END)
        needs_newline = False
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            needs_newline = f.read(1) != b"\n"
        f.write((("\n" if needs_newline else "") + line.rstrip("\n") + "\n").encode())


# -- folders -------------------------------------------------------------------------------------------------------
def old_folder(path: str | os.PathLike) -> Path:
    """Where a folder swap keeps the previous version of ``path`` between its two renames: ``.NAME.old``."""
    path = Path(path)
    return path.with_name(f".{path.name}.old")


def recover_folder(path: str | os.PathLike, complete: Callable[[Path], bool] | None = None) -> bool:
    """Undo a swap that a kill interrupted: where ``path`` is missing and ``.NAME.old`` exists, rename it back.

    ``.NAME.old`` is only ever made by renaming a complete ``path`` and only ever removed by renaming it away
    first, so it is complete; ``complete`` may check anyway (an incomplete one is discarded). Returns True when
    a folder was restored.
    """
    path = Path(path)
    old = old_folder(path)
    if os.path.lexists(path) or not old.is_dir():
        return False
    if complete is not None and not complete(old):
        _discard(old)
        return False
    os.rename(old, path)
    _fsync_dir(path.parent)
    return True


def _discard(folder: Path) -> None:
    # Renamed to a temporary name first: a kill during rmtree leaves a stale temporary, never a half-deleted
    # ``.NAME.old`` that a later recovery would take for a complete folder.
    trash = _temporary_name(folder.with_name(folder.name.removeprefix(".").removesuffix(".old")))
    try:
        os.rename(folder, trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def replace_folder(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Put the complete folder ``tmp`` in place of ``path`` (which may be missing, empty or a folder).

    A non-empty folder cannot be replaced in one rename: it goes to ``.NAME.old`` first and comes back if the
    second rename fails. A kill between the two leaves ``.NAME.old`` for :func:`recover_folder`.
    """
    tmp, path = Path(tmp), Path(path)
    if not os.path.lexists(path):
        os.rename(tmp, path)
    elif path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
        os.replace(tmp, path)  # POSIX rename replaces an empty folder in one step
    else:
        old = old_folder(path)
        if os.path.lexists(old):
            _discard(old)  # path exists, so this is a leftover of a swap that completed
        os.rename(path, old)
        try:
            os.rename(tmp, path)
        except BaseException:
            os.rename(old, path)
            raise
        _fsync_dir(path.parent)
        _discard(old)
    _fsync_dir(path.parent)


@contextmanager
def atomic_folder(path: str | os.PathLike, before_replace: Callable[[Path], None] | None = None,
                  complete: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Yield a new empty temporary folder beside ``path``; fill it, and on a normal exit it replaces ``path``
    (see :func:`replace_folder`); on an exception it is removed and ``path`` is left as it was.

    ``before_replace(path)`` runs just before the swap (to refuse overwriting something that appeared meanwhile);
    ``complete`` is passed to :func:`recover_folder`, which runs first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover_folder(path, complete)
    clean_stale_temporaries(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=_TMP_SUFFIX, dir=path.parent))
    try:
        yield tmp
        _settle_tree(tmp)
        os.chmod(tmp, folder_mode())
        if before_replace is not None:
            before_replace(path)
        replace_folder(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
