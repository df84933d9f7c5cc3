"""matplotlib for files: the one place its backend is chosen.

Every figure the package draws goes to a file (band structures, DOS, parity plots, gap(T)), so the backend is
Agg, which needs no display; it is set here, once, on first use, never at import.
"""

from __future__ import annotations

from typing import Any

__all__ = ["pyplot"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` with the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
