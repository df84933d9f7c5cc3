"""Periodic neighbour lists (vesin) and the edge convention that every block in the package follows.

An edge ``(i, j, R)`` joins atom ``i`` in the home cell to atom ``j`` in the cell shifted by the integer lattice
vector ``R``; its vector is ``x_j + R @ cell - x_i``. The block stored on it is
``H_ij(R) = <phi_i(r) | H | phi_j(r - R @ cell)>``, so ``H(k) = sum_R exp(2 pi i k.R) H(R)`` with ``k`` in
fractional reciprocal coordinates, and Hermiticity reads ``H_ji(-R) = H_ij(R)^T``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms


@dataclass(frozen=True)
class NeighborList:
    """Directed edges within a cutoff, both directions present, sorted by (i, j, R)."""

    i: np.ndarray  # (E,) int
    j: np.ndarray  # (E,) int
    shifts: np.ndarray  # (E, 3) int lattice vector R of atom j
    vectors: np.ndarray  # (E, 3) Å, x_j + R @ cell - x_i

    @property
    def distances(self) -> np.ndarray:
        return np.linalg.norm(self.vectors, axis=1)

    def __len__(self) -> int:
        return len(self.i)


def neighbor_list(atoms: Atoms, cutoff: float, self_edges: bool = False) -> NeighborList:
    """All pairs of atoms (periodic images included) closer than ``cutoff`` Å.

    ``self_edges=True`` adds the on-site edge ``(i, i, 0)`` of every atom, which carries the on-site block.
    Non-periodic directions need no cell vector.
    """
    import vesin

    pbc = np.asarray(atoms.pbc, dtype=bool)
    cell = np.asarray(atoms.cell[:], dtype=float)
    cell = np.where(pbc[:, None], cell, 0.0)
    pos = atoms.get_positions()
    nl = vesin.NeighborList(cutoff=float(cutoff), full_list=True)
    i, j, s, d = nl.compute(pos, cell, pbc, "ijSD")
    i, j, s, d = i.astype(np.int64), j.astype(np.int64), s.astype(np.int64), d.astype(float)
    if self_edges:
        n = len(atoms)
        i = np.concatenate([np.arange(n), i])
        j = np.concatenate([np.arange(n), j])
        s = np.concatenate([np.zeros((n, 3), dtype=np.int64), s])
        d = np.concatenate([np.zeros((n, 3)), d])
    order = np.lexsort((s[:, 2], s[:, 1], s[:, 0], j, i))
    return NeighborList(i=i[order], j=j[order], shifts=s[order], vectors=d[order])
