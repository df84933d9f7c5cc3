"""Structure checks shared by every entry point: catch bad geometry before any expensive work."""

from __future__ import annotations

import numpy as np
from ase import Atoms

from .errors import StructureError

#: Atoms closer than this (Å) are treated as a mistake in the input.
MIN_DISTANCE = 0.5


def validate_atoms(atoms: Atoms, min_distance: float = MIN_DISTANCE, backend: str = "auto") -> None:
    """Raise :class:`StructureError` naming the problem if ``atoms`` cannot be used.

    Checks: at least one atom; finite positions and cell; a non-zero, non-degenerate cell vector along every
    periodic direction; no two atoms (periodic images included) closer than ``min_distance`` Å.
    """
    if len(atoms) == 0:
        raise StructureError("the structure has no atoms")
    pos = atoms.get_positions()
    if not np.all(np.isfinite(pos)):
        bad = sorted({int(i) for i in np.argwhere(~np.isfinite(pos))[:, 0]})
        raise StructureError(f"positions of atoms {bad} are NaN or infinite")
    cell = np.asarray(atoms.cell[:], dtype=float)
    if not np.all(np.isfinite(cell)):
        raise StructureError("the cell has NaN or infinite entries")
    pbc = np.asarray(atoms.pbc, dtype=bool)
    for axis in np.flatnonzero(pbc):
        if np.linalg.norm(cell[axis]) < 1e-8:
            raise StructureError(
                f"direction {'abc'[axis]} is periodic but has no cell vector; set atoms.cell or atoms.pbc"
            )
    if pbc.any() and np.linalg.matrix_rank(cell[pbc], tol=1e-6) < pbc.sum():
        raise StructureError("the periodic cell vectors are linearly dependent (zero cell volume)")
    i, j, d = close_pairs(atoms, min_distance, backend)
    if len(d):
        k = int(np.argmin(d))
        raise StructureError(
            f"atoms {int(i[k])} ({atoms[int(i[k])].symbol}) and {int(j[k])} ({atoms[int(j[k])].symbol}) are "
            f"{d[k]:.3f} Å apart, closer than the minimum {min_distance} Å"
        )


def close_pairs(atoms: Atoms, cutoff: float, backend: str = "auto") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (i, j, distance) of atoms, periodic images included, closer than ``cutoff`` Å."""
    from .graphs import neighbor_list

    nl = neighbor_list(atoms, cutoff, backend=backend)
    return nl.i, nl.j, nl.distances

