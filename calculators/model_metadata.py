"""What the calibration scripts share: recording a chosen value, and the table that chose it, in model.json."""

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
