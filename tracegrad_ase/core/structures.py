"""Structure checks shared by every entry point: catch bad geometry before any expensive work."""

from __future__ import annotations

import numpy as np
from ase import Atoms

from .errors import StructureError

#: Atoms closer than this (Å) are treated as a mistake in the input.
MIN_DISTANCE = 0.5
#: Site occupancies within this of 1 count as fully occupied (CIF files round them, e.g. 0.99999).
OCCUPANCY_TOLERANCE = 1e-3


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



def check_ordered(atoms: Atoms, source: str = "the structure") -> None:
    """Raise :class:`StructureError` if ``atoms`` came from a file with partially occupied (disordered) sites.

    ASE's CIF reader keeps one species per site and records the occupancies in ``atoms.info["occupancy"]``
    (``{site kind: {symbol: occupancy}}``): a C0.5/N0.5 site would silently become one element. The model knows
    nothing of alloys or vacancies, so such a structure is refused, naming the sites.
    """
    occupancy = atoms.info.get("occupancy")
    if not occupancy:
        return
    bad = []
    for kind, species in occupancy.items():
        total = sum(float(x) for x in species.values())
        if len(species) > 1 or abs(total - 1.0) > OCCUPANCY_TOLERANCE:
            bad.append(f"{kind}: " + "/".join(f"{el}{float(x):g}" for el, x in species.items()))
    if bad:
        raise StructureError(
            f"{source} has partially occupied (disordered) sites ({'; '.join(bad[:5])}"
            f"{'; ...' if len(bad) > 5 else ''}): the model needs one element per site with occupancy 1; "
            "build an ordered supercell first (e.g. pymatgen's OrderDisorderedStructureTransformation)")
