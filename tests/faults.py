"""Fault injection shared by the tests of crash safety: a kill as the file system sees it."""

import os
import shutil
from contextlib import contextmanager


class Killed(BaseException):
    """Stands for SIGKILL: raised at the chosen step and at every file-system step after it, so no cleanup runs."""


@contextmanager
def killed_at(step: int, fsync: bool = True):
    """Kill the process (as far as the file system can tell) at its ``step``-th rename, replace, rmtree or (with
    ``fsync``) fsync; an fsync comes right after each file is complete."""
    count = {"n": 0, "dead": False}
    names = [(os, "rename"), (os, "replace"), (shutil, "rmtree")] + ([(os, "fsync")] if fsync else [])
    saved = [(mod, name, getattr(mod, name)) for mod, name in names]

    def wrap(fn):
        def call(*args, **kwargs):
            if count["dead"] or count["n"] == step:
                count["dead"] = True
                raise Killed(f"killed at step {step}")
            count["n"] += 1
            return fn(*args, **kwargs)
        return call

    for mod, name, fn in saved:
        setattr(mod, name, wrap(fn))
    try:
        yield count
    finally:
        for mod, name, fn in saved:
            setattr(mod, name, fn)
