"""Periodic neighbour lists (vesin) and the edge convention that every block in the package follows.

An edge ``(i, j, R)`` joins atom ``i`` in the home cell to atom ``j`` in the cell shifted by the integer lattice
vector ``R``; its vector is ``x_j + R @ cell - x_i``. The block stored on it is
``H_ij(R) = <phi_i(r) | H | phi_j(r - R @ cell)>``, so ``H(k) = sum_R exp(2 pi i k.R) H(R)`` with ``k`` in
fractional reciprocal coordinates, and Hermiticity reads ``H_ji(-R) = H_ij(R)^T``.
"""

from __future__ import annotations

import sys
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


_VESIN_SAFE: bool | None = None


def vesin_safe() -> bool:
    """Whether vesin may be used in this process; loads its library the first time if so.

    Measured here (vesin 0.6, PySCF 2.14, 2 OpenMP threads): once vesin's library is loaded *after* PySCF's
    compiled libraries, a later multigrid SCF in the same process goes wrong (energies of 1e3 Ha instead of
    -11 Ha for graphene, or no convergence). Loaded before them it does no harm. So the package loads vesin
    on import when PySCF is not loaded yet, and otherwise uses ASE's neighbour list for the whole process.
    """
    global _VESIN_SAFE
    if _VESIN_SAFE is None:
        _VESIN_SAFE = "pyscf.lib" not in sys.modules
        if _VESIN_SAFE:
            import vesin

            vesin.NeighborList(cutoff=1.0, full_list=True).compute(np.zeros((1, 3)), np.eye(3), False, "ij")
    return _VESIN_SAFE


def neighbor_list(atoms: Atoms, cutoff: float, self_edges: bool = False, backend: str = "auto") -> NeighborList:
    """All pairs of atoms (periodic images included) closer than ``cutoff`` Å.

    ``self_edges=True`` adds the on-site edge ``(i, i, 0)`` of every atom, which carries the on-site block.
    Non-periodic directions need no cell vector. ``backend``: ``"vesin"`` (fast, for large structures),
    ``"ase"`` (ASE's numpy neighbour list; the same pairs) or ``"auto"``: vesin where :func:`vesin_safe`.
    """
    if backend == "auto":
        backend = "vesin" if vesin_safe() else "ase"
    pbc = np.asarray(atoms.pbc, dtype=bool)
    cell = np.asarray(atoms.cell[:], dtype=float)
    cell = np.where(pbc[:, None], cell, 0.0)
    pos = atoms.get_positions()
    if backend == "vesin":
        import vesin

        nl = vesin.NeighborList(cutoff=float(cutoff), full_list=True)
        i, j, s, d = nl.compute(pos, cell, pbc, "ijSD")
    elif backend == "ase":
        from ase.neighborlist import primitive_neighbor_list

        i, j, s, d = primitive_neighbor_list("ijSD", pbc, cell, pos, float(cutoff), self_interaction=False)
    else:
        raise ValueError(f"backend must be 'vesin' or 'ase', got {backend!r}")
    i, j, s, d = i.astype(np.int64), j.astype(np.int64), s.astype(np.int64), d.astype(float)
    if self_edges:
        n = len(atoms)
        i = np.concatenate([np.arange(n), i])
        j = np.concatenate([np.arange(n), j])
        s = np.concatenate([np.zeros((n, 3), dtype=np.int64), s])
        d = np.concatenate([np.zeros((n, 3)), d])
    order = np.lexsort((s[:, 2], s[:, 1], s[:, 0], j, i))
    return NeighborList(i=i[order], j=j[order], shifts=s[order], vectors=d[order])
