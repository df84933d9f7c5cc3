"""The layout of a training run's folder, owned here: :func:`~tracegrad_ase.model.train.train` writes it (through
:mod:`.run_writer`), and ``calculators/ship_model.py`` reads it through these functions rather than spelling the
paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["best_checkpoint", "last_checkpoint", "log_file", "read_log", "snapshot_checkpoint", "split_file"]


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


def read_log(run: str | Path) -> list[dict[str, Any]]:
    """The run's epoch records in order (``log.jsonl``), without a line a kill cut short; [] before its first
    epoch."""
    path = log_file(run)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "epoch" in record:
            records.append(record)
    return records
