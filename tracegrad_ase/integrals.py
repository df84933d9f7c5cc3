"""Basis-set integrals that need no SCF: the real-space overlap S_ij(R), from PySCF, in e3nn order.

The overlap is a property of the basis and the geometry alone, so the ground-truth engine and the calculator
both take it from here rather than learning it. Positions go to PySCF in Å (it converts to Bohr itself);
the overlap is dimensionless, so nothing else crosses the unit boundary.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from ase import Atoms

from .basis import OrbitalBasis


def _mole(symbols: Sequence[str], positions: np.ndarray, basis: str):
    from pyscf import gto

    mol = gto.Mole()
    mol.atom = [[s, tuple(p)] for s, p in zip(symbols, positions)]
    mol.unit = "Angstrom"
    mol.basis = basis
    mol.spin = sum(gto.charge(s) for s in symbols) % 2  # only makes the electron count consistent
    mol.verbose = 0
    mol.build()
    return mol


def overlap_blocks(atoms: Atoms, basis: OrbitalBasis, edges: np.ndarray) -> list[np.ndarray]:
    """S_ij(R) = <phi_i(r) | phi_j(r - R @ cell)> for every edge ``(Rx, Ry, Rz, i, j)``, e3nn order.

    One PySCF cross-overlap per distinct lattice shift R, between the home cell and the cell shifted by R:
    exact, with no lattice sum and so no aliasing.
    """
    from pyscf import gto

    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 5)
    symbols = atoms.get_chemical_symbols()
    pos = atoms.get_positions()
    cell = np.asarray(atoms.cell[:], dtype=float)
    home = _mole(symbols, pos, basis.name)
    slices = home.aoslice_by_atom()
    off = np.concatenate([slices[:, 2], [slices[-1, 3]]])
    shifts, which = np.unique(edges[:, :3], axis=0, return_inverse=True)
    out: list[np.ndarray | None] = [None] * len(edges)
    for n, r in enumerate(shifts):
        s = gto.intor_cross("int1e_ovlp", home, _mole(symbols, pos + r @ cell, basis.name))
        for e in np.flatnonzero(which.ravel() == n):
            i, j = int(edges[e, 3]), int(edges[e, 4])
            block = s[off[i] : off[i + 1], off[j] : off[j + 1]]
            out[e] = basis.convert_block(block, symbols[i], symbols[j], "pyscf", "e3nn")
    return out  # type: ignore[return-value]
