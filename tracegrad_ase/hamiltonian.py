"""Real-space Hamiltonian and overlap blocks of one structure: the object that flows through the package.

Blocks follow the edge convention of :mod:`tracegrad_ase.graphs` and the orbital order ``"e3nn"`` of
:mod:`tracegrad_ase.basis`; energies are in eV, lengths in Å. The ground-truth engine makes them, data sets
store them, the model predicts them, the calculator diagonalises them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import scipy.linalg
from ase import Atoms

from .basis import OrbitalBasis


@dataclass
class RealSpaceHamiltonian:
    """H(R) and S(R) blocks on the edges ``(R, i, j)`` of one structure.

    ``edges[e] = (Rx, Ry, Rz, i, j)`` (0-based atoms); ``hamiltonian[e]`` and ``overlap[e]`` are
    ``norb(i) x norb(j)`` arrays. On-site blocks are the edges ``(0, 0, 0, i, i)``. ``meta`` records how the
    blocks were made (method, settings, Fermi level, package versions).
    """

    atoms: Atoms
    basis: OrbitalBasis
    edges: np.ndarray
    hamiltonian: list[np.ndarray]
    overlap: list[np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.edges = np.asarray(self.edges, dtype=np.int64).reshape(-1, 5)
        if not (len(self.edges) == len(self.hamiltonian) == len(self.overlap)):
            raise ValueError("edges, hamiltonian and overlap must have the same length")
        norb = [self.basis.norb(z) for z in self.atoms.numbers]
        for e, (rx, ry, rz, i, j) in enumerate(self.edges):
            shape = (norb[i], norb[j])
            if self.hamiltonian[e].shape != shape or self.overlap[e].shape != shape:
                raise ValueError(f"block {e} for edge {(rx, ry, rz, i, j)} has shape "
                                 f"{self.hamiltonian[e].shape}, expected {shape}")

    # -- sizes and look-up -------------------------------------------------------------------------
    @property
    def norb(self) -> int:
        """Orbitals in the cell."""
        return int(self.offsets[-1])

    @property
    def offsets(self) -> np.ndarray:
        """Start of each atom's orbitals in the cell's orbital list (length N+1)."""
        return self.basis.atom_offsets(self.atoms.numbers)

    def index(self) -> dict[tuple[int, int, int, int, int], int]:
        """Map from an edge tuple ``(Rx, Ry, Rz, i, j)`` to its position."""
        return {tuple(int(x) for x in e): n for n, e in enumerate(self.edges)}

    def hermiticity_error(self) -> float:
        """max |H_ij(R) - H_ji(-R)^T| (eV) over the edges whose partner is stored; inf if a partner is missing."""
        idx = self.index()
        worst = 0.0
        for (rx, ry, rz, i, j), n in idx.items():
            m = idx.get((-rx, -ry, -rz, j, i))
            if m is None:
                return float("inf")
            worst = max(worst, float(np.abs(self.hamiltonian[n] - self.hamiltonian[m].T).max()))
        return worst

    # -- Bloch sums --------------------------------------------------------------------------------
    def bloch(self, kpts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """H(k) and S(k) (eV), shape (nk, norb, norb), at ``kpts`` in fractional reciprocal coordinates."""
        kpts = np.atleast_2d(np.asarray(kpts, dtype=float))
        if kpts.shape[1] != 3:
            raise ValueError(f"k-points must have shape (nk, 3), got {kpts.shape}")
        phase = np.exp(2j * np.pi * kpts @ self.edges[:, :3].T)  # (nk, E)
        off = self.offsets
        hk = np.zeros((len(kpts), self.norb, self.norb), dtype=complex)
        sk = np.zeros_like(hk)
        for e, (_, _, _, i, j) in enumerate(self.edges):
            rows, cols = slice(off[i], off[i + 1]), slice(off[j], off[j + 1])
            hk[:, rows, cols] += phase[:, e, None, None] * self.hamiltonian[e]
            sk[:, rows, cols] += phase[:, e, None, None] * self.overlap[e]
        return hk, sk

    def eigenvalues(self, kpts: np.ndarray) -> np.ndarray:
        """Band energies (eV), shape (nk, norb), from the generalized eigenproblem H(k) c = e S(k) c."""
        hk, sk = self.bloch(kpts)
        out = np.empty((len(hk), self.norb))
        for n in range(len(hk)):
            out[n] = scipy.linalg.eigh(hk[n], sk[n], eigvals_only=True)
        return out

    # -- selection --------------------------------------------------------------------------------
    def within(self, cutoff: float) -> "RealSpaceHamiltonian":
        """A copy keeping only the edges whose atoms are at most ``cutoff`` Å apart."""
        keep = self.edge_lengths() <= cutoff + 1e-9
        return RealSpaceHamiltonian(
            atoms=self.atoms.copy(),
            basis=self.basis,
            edges=self.edges[keep],
            hamiltonian=[h for h, k in zip(self.hamiltonian, keep) if k],
            overlap=[s for s, k in zip(self.overlap, keep) if k],
            meta={**self.meta, "cutoff": float(cutoff)},
        )

    def edge_vectors(self) -> np.ndarray:
        """x_j + R @ cell - x_i for every edge (Å)."""
        pos = self.atoms.get_positions()
        cell = np.asarray(self.atoms.cell[:], dtype=float)
        return pos[self.edges[:, 4]] + self.edges[:, :3] @ cell - pos[self.edges[:, 3]]

    def edge_lengths(self) -> np.ndarray:
        return np.linalg.norm(self.edge_vectors(), axis=1)


def blocks_from_dense(
    matrix: np.ndarray, offsets: Sequence[int], pairs: Sequence[tuple[int, int]]
) -> list[np.ndarray]:
    """Cut the atom-pair blocks ``pairs`` out of a cell-sized matrix whose atoms start at ``offsets``."""
    return [np.array(matrix[offsets[i] : offsets[i + 1], offsets[j] : offsets[j + 1]]) for i, j in pairs]
