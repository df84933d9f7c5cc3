"""What every benchmark script shares: merging its entry into a results JSON atomically, and the machine."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from tracegrad_ase.io.atomic import atomic_write_json


def machine(**extra: Any) -> dict[str, Any]:
    """Where the figures were measured (quote it with them)."""
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "processor": platform.processor(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), **extra}


def merge_results(path: str | os.PathLike, key: str, entry: Any) -> Path:
    """Set ``results[key] = entry`` in the JSON file ``path`` (created if missing), written atomically so a
    killed benchmark never leaves a broken file; other keys (other models, sizes, settings) are kept."""
    out = Path(path)
    results = json.loads(out.read_text()) if out.exists() else {}
    results[key] = entry
    atomic_write_json(out, results, indent=1)
    print(f"-> {out}")
    return out
