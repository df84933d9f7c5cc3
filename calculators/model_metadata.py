"""What the calibration scripts share: the structures of one part of a split, and recording a chosen value, with
the table that chose it, in model.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tracegrad_ase.io.atomic import atomic_write_json


def record_calibration(model_dir: Path, key: str, value: Any, calibration: dict[str, Any]) -> Path:
    """Set ``metadata[key] = value`` and ``metadata[key + "_calibration"] = calibration`` in ``model_dir``'s
    model.json (written atomically); returns its path."""
    path = Path(model_dir) / "model.json"
    card = json.loads(path.read_text())
    card.setdefault("metadata", {})[key] = value
    card["metadata"][f"{key}_calibration"] = calibration
    atomic_write_json(path, card, indent=2)
    return path


def split_structures(split_file: Path, data: list[str], part: str) -> list[Path]:
    """The ``part`` (``"val"``, ...) of ``split_file``'s structures found in the ``data`` folders, in folder and name
    order; exits naming the split when there are none."""
    from tracegrad_ase.io.h5 import files_named

    files = files_named(data, set(json.loads(Path(split_file).read_text())[part]))
    if not files:
        raise SystemExit(f"no {part} structures of {split_file} in {data}")
    return files
