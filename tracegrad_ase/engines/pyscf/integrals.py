"""Basis-set integrals that need no SCF: the real-space overlap S_ij(R), from PySCF, in e3nn order.

The overlap is a property of the basis and the geometry alone, so the ground-truth engine and the calculator
both take it from here rather than learning it. Positions go to PySCF in Å (it converts to Bohr itself);
the overlap is dimensionless, so nothing else crosses the unit boundary.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from ase import Atoms

from ...core.basis import OrbitalBasis


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


#: Cells with more atoms than this are integrated in spatial chunks of this many atoms (see overlap_blocks).
OVERLAP_CHUNK = 192


def overlap_blocks(atoms: Atoms, basis: OrbitalBasis, edges: np.ndarray) -> list[np.ndarray]:
    """S_ij(R) = <phi_i(r) | phi_j(r - R @ cell)> for every edge ``(Rx, Ry, Rz, i, j)``, e3nn order.

    Small cells: one PySCF cross-overlap per distinct lattice shift R, between the home cell and the cell
    shifted by R. Large cells (more than :data:`OVERLAP_CHUNK` atoms): atoms are taken in spatially compact
    chunks (Morton order of their fractional coordinates) and each chunk is integrated against just the atom
    images its edges reach, so time and memory grow linearly with the cell instead of quadratically (a
    10,000-atom cell would otherwise need a 130,000² matrix per shift). Exact either way: no lattice sum.
    """
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 5)
    symbols = atoms.get_chemical_symbols()
    pos = atoms.get_positions()
    cell = np.asarray(atoms.cell[:], dtype=float)
    out: list[np.ndarray | None] = [None] * len(edges)
    if len(atoms) <= OVERLAP_CHUNK:
        groups = [np.arange(len(atoms))]
    else:
        groups = np.array_split(_morton_order(atoms), int(np.ceil(len(atoms) / OVERLAP_CHUNK)))
    by_atom = np.argsort(edges[:, 3], kind="stable")
    starts = np.searchsorted(edges[by_atom, 3], np.arange(len(atoms) + 1))
    for group in groups:
        sel = np.concatenate([by_atom[starts[i] : starts[i + 1]] for i in group])
        if len(sel):
            _chunk_overlaps(symbols, pos, cell, basis, group, edges, sel, out)
    return out  # type: ignore[return-value]


def _chunk_overlaps(symbols, pos, cell, basis: OrbitalBasis, group: np.ndarray, edges: np.ndarray, sel: np.ndarray,
                    out: list) -> None:
    """Blocks of the edges ``sel`` (all starting on atoms of ``group``) from one cross-overlap."""
    from pyscf import gto

    images, which = np.unique(edges[sel][:, [4, 0, 1, 2]], axis=0, return_inverse=True)  # (j, R) reached
    which = which.ravel()
    home = _mole([symbols[i] for i in group], pos[group], basis.name)
    far = _mole([symbols[j] for j in images[:, 0]], pos[images[:, 0]] + images[:, 1:] @ cell, basis.name)
    s = gto.intor_cross("int1e_ovlp", home, far)
    off_home, off_far = pyscf_offsets(home), pyscf_offsets(far)
    local = np.full(int(group.max()) + 1, -1)
    local[group] = np.arange(len(group))
    # Blocks of one element pair share a shape: gather them with fancy indexing and convert the orbital order
    # of all of them in one batched product (no Python work per edge beyond the final list).
    pair = np.array([f"{symbols[int(i)]} {symbols[int(j)]}" for i, j in edges[sel][:, 3:]])
    for key in np.unique(pair):
        zi, zj = key.split()
        mask = pair == key
        e_sel, m_sel = sel[mask], which[mask]
        ni, nj = basis.norb(zi), basis.norb(zj)
        rows = off_home[local[edges[e_sel, 3]]][:, None] + np.arange(ni)[None, :]
        cols = off_far[m_sel][:, None] + np.arange(nj)[None, :]
        blocks = s[rows[:, :, None], cols[:, None, :]]
        blocks = basis.transform(zi, "pyscf", "e3nn") @ blocks @ basis.transform(zj, "pyscf", "e3nn").T
        for e, b in zip(e_sel.tolist(), blocks):
            out[e] = b


def pyscf_offsets(mol) -> np.ndarray:
    """Start of each atom's AOs in a PySCF Mole/Cell (length natm + 1)."""
    slices = mol.aoslice_by_atom()
    return np.concatenate([slices[:, 2], [slices[-1, 3]]])


def _morton_order(atoms: Atoms, bits: int = 10) -> np.ndarray:
    """Atoms sorted along a Z-order curve of their (wrapped) fractional coordinates: neighbours in the list are
    neighbours in space, so consecutive chunks are compact."""
    return morton_order(atoms.get_scaled_positions(wrap=True), bits)


def morton_order(coords: np.ndarray, bits: int = 10) -> np.ndarray:
    """Indices that sort points with coordinates in [0, 1) (N, 3) along a Z-order curve: consecutive runs of the
    sorted points are compact in space."""
    q = np.clip((np.asarray(coords, dtype=float) * (1 << bits)).astype(np.int64), 0, (1 << bits) - 1)
    code = np.zeros(len(q), dtype=np.int64)
    for b in range(bits):
        for d in range(3):
            code |= ((q[:, d] >> b) & 1) << (3 * b + d)
    return np.argsort(code, kind="stable")
