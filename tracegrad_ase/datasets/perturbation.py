"""Structure generators for data sets: random perturbations (displacements and strain) and phonopy's
symmetry-reduced finite displacements."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from ase import Atoms

from ..core.errors import StructureError
from ..core.structures import validate_atoms
from ..interop.phonopy import from_phonopy_atoms, to_phonopy_atoms

__all__ = ["perturbed_structures", "phonopy_displacements"]


# -- structure generators --------------------------------------------------------------------------------
def perturbed_structures(
    base: Atoms,
    n: int,
    displacement: float = 0.05,
    strain: float = 0.0,
    seed: int = 0,
    prefix: str | None = None,
    max_tries: int = 100,
) -> list[Atoms]:
    """``n`` copies of ``base`` with Gaussian displacements and, for periodic directions, a random strain.

    Every Cartesian component of every atom moves by N(0, ``displacement``) Å. The strain tensor is symmetric
    with N(0, ``strain``) diagonal (N(0, ``strain``/√2) off-diagonal) entries, restricted to the span of the
    periodic cell vectors and applied only to those (atoms scale with the cell), so vacuum vectors of slabs
    and wires stay as they are and molecules get no strain. The same ``seed`` gives the same structures.
    Samples that put atoms closer than the minimum distance are redrawn, up to ``max_tries`` per structure.
    Names are ``f"{prefix}-{k:05d}"``; ``prefix`` defaults to ``"{name or formula}-perturbed-s{seed}"``.
    """
    if n < 0 or displacement < 0 or strain < 0:
        raise ValueError("n, displacement and strain must be non-negative")
    validate_atoms(base)  # a bad base would only surface as max_tries failed redraws
    prefix = prefix if prefix is not None else f"{_root_name(base)}-perturbed-s{seed}"
    rng = np.random.default_rng(seed)
    pbc = np.asarray(base.pbc, dtype=bool)
    cell = np.asarray(base.cell[:], dtype=float)
    projector = _periodic_projector(cell, pbc)
    out = []
    for k in range(n):
        for _ in range(max_tries):
            # Strain is drawn even when unused so that a seed gives the same displacements for any strain.
            eps = rng.normal(0.0, strain, (3, 3)) if strain > 0 else np.zeros((3, 3))
            eps = projector @ (0.5 * (eps + eps.T)) @ projector
            shift = rng.normal(0.0, displacement, (len(base), 3)) if displacement > 0 else 0.0
            atoms = base.copy()
            if pbc.any() and strain > 0:
                new_cell = cell.copy()
                new_cell[pbc] = cell[pbc] @ (np.eye(3) + eps)
                atoms.set_cell(new_cell, scale_atoms=True)
            atoms.positions += shift
            try:
                validate_atoms(atoms)
            except StructureError:
                continue
            break
        else:
            raise StructureError(
                f"no valid perturbed structure {k} of {base.get_chemical_formula()} in {max_tries} tries: the "
                f"displacement {displacement} Å / strain {strain} keeps putting atoms too close; lower them"
            )
        atoms.info["name"] = f"{prefix}-{k:05d}"
        out.append(atoms)
    return out


def phonopy_displacements(
    base: Atoms,
    supercell_matrix: Sequence[int] | Sequence[Sequence[int]] | np.ndarray,
    distance: float = 0.01,
    is_plusminus: bool | str = "auto",
    prefix: str | None = None,
    symprec: float = 1e-5,
) -> list[Atoms]:
    """Phonopy's symmetry-reduced finite-displacement supercells of ``base`` (one displaced atom each).

    ``info`` of each structure holds ``name`` (``f"{prefix}-{k:05d}"``, default prefix
    ``"{name or formula}-phonopy"``), ``displaced_atom`` (index in the supercell) and ``displacement`` (Å),
    in phonopy's order, so forces or Hamiltonians can be matched back to ``phonon.dataset``.
    """
    from phonopy import Phonopy

    cell = np.asarray(base.cell[:], dtype=float)
    if abs(np.linalg.det(cell)) < 1e-8:
        raise StructureError("phonopy needs a full 3D cell; give non-periodic directions a vacuum cell vector")
    prefix = prefix if prefix is not None else f"{_root_name(base)}-phonopy"
    # primitive_matrix=None: displacements need only the supercell's symmetry, and "auto" can fail on
    # structures whose primitive cell search is ambiguous.
    phonon = Phonopy(to_phonopy_atoms(base), supercell_matrix=supercell_matrix, primitive_matrix=None, symprec=symprec)
    phonon.generate_displacements(distance=distance, is_plusminus=is_plusminus)
    out = []
    for k, (sc, disp) in enumerate(zip(phonon.supercells_with_displacements, phonon.displacements)):
        atoms = from_phonopy_atoms(sc, base.pbc)
        atoms.info["name"] = f"{prefix}-{k:05d}"
        atoms.info["displaced_atom"] = int(disp[0])
        atoms.info["displacement"] = np.asarray(disp[1:4], dtype=float)
        out.append(atoms)
    return out


def _periodic_projector(cell: np.ndarray, pbc: np.ndarray) -> np.ndarray:
    """Orthogonal projector onto the span of the periodic cell vectors."""
    if not pbc.any():
        return np.zeros((3, 3))
    q, _ = np.linalg.qr(cell[pbc].T)
    return q @ q.T




def _root_name(atoms: Atoms) -> str:
    return str(atoms.info.get("name") or atoms.get_chemical_formula())
