"""The layout of a training run's folder, owned here: :func:`~tracegrad_ase.model.train.train` writes it (through
:mod:`.run_writer`), and ``calculators/ship_model.py`` reads it through these functions rather than spelling the
paths."""

from __future__ import annotations

from pathlib import Path

__all__ = ["best_checkpoint", "last_checkpoint", "log_file", "snapshot_checkpoint", "split_file"]


def best_checkpoint(run: str | Path) -> Path:
    """The model folder of a run's best validation loss so far."""
    return Path(run) / "checkpoints" / "best"


def last_checkpoint(run: str | Path) -> Path:
    """The model folder a run resumes from (with its training state, ``state.json``)."""
    return Path(run) / "checkpoints" / "last"


def snapshot_checkpoint(run: str | Path, epoch: int) -> Path:
    """The model folder of the validated weights after ``epoch`` (``snapshot_every`` in the training config)."""
    return Path(run) / "checkpoints" / f"epoch-{epoch:04d}"


def split_file(run: str | Path) -> Path:
    """``split.json``: the structure names of the run's train, validation and test sets."""
    return Path(run) / "split.json"


def log_file(run: str | Path) -> Path:
    """``log.jsonl``: one JSON line per epoch."""
    return Path(run) / "log.jsonl"
