"""Where a warning about a user's structure points: the user's own line.

A warning's ``stacklevel`` counted by hand is right for one route only: ``calc.calculate(atoms)``,
``calc.get_property("band_gap")`` and ``atoms.calc.get_eigenvalues()`` reach the same check through 3, 5 or 6
frames, and a fixed count points the others into this package, into ASE, or past the user's line. Python 3.12's
``skip_file_prefixes`` does this; we support 3.10.
"""

from __future__ import annotations

import os
import sys

import ase

#: Frames in these folders are ours or ASE's (whose Calculator methods stand between a user's call and ours).
INTERNAL_PREFIXES = (os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,
                     os.path.dirname(os.path.abspath(ase.__file__)) + os.sep)

__all__ = ["INTERNAL_PREFIXES", "user_stacklevel"]


def user_stacklevel() -> int:
    """The ``stacklevel`` for a ``warnings.warn`` made by the caller of this function that names the first frame
    outside this package and ASE (the outermost frame when every frame is internal)."""
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(INTERNAL_PREFIXES):
        frame = frame.f_back
        level += 1
    return level
