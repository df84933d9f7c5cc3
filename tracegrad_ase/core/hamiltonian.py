"""Real-space Hamiltonian and overlap blocks of one structure: the object that flows through the package.

Blocks follow the edge convention of :mod:`tracegrad_ase.graphs` and the orbital order ``"e3nn"`` of
:mod:`tracegrad_ase.basis`; energies are in eV, lengths in Å. The ground-truth engine makes them, data sets
store them, the model predicts them, the calculator diagonalises them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from ase import Atoms

from .basis import OrbitalBasis


def _deprecated_method(name: str, instead: str) -> None:
    warnings.warn(f"RealSpaceHamiltonian.{name} is deprecated and will be removed in 0.6; use {instead}",
                  DeprecationWarning, stacklevel=3)


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

    def onsite_mask(self) -> np.ndarray:
        """(E,) bool: the on-site edges ``(0, 0, 0, i, i)``, which carry each atom's own block."""
        return (self.edges[:, 3] == self.edges[:, 4]) & (self.edges[:, :3] == 0).all(axis=1)

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

    # -- deprecated spectral conveniences (the electronic layer owns H(k) and its eigenvalues) ---------------
    def bloch(self, kpts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Deprecated: :func:`tracegrad_ase.electronic.bloch.bloch_dense` (removed in 0.6)."""
        _deprecated_method("bloch", "tracegrad_ase.electronic.bloch.bloch_dense(ham, kpts)")
        from ..electronic.bloch import bloch_dense  # noqa: layer-exempt (deprecated delegate, removed in 0.6)

        return bloch_dense(self, kpts)

    def eigenvalues(self, kpts: np.ndarray, lindep: float | None = None) -> np.ndarray:
        """Deprecated: :func:`tracegrad_ase.electronic.solve.band_energies` (removed in 0.6)."""
        _deprecated_method("eigenvalues", "tracegrad_ase.electronic.solve.band_energies(ham, kpts, lindep)")
        from ..electronic.solve import band_energies  # noqa: layer-exempt (deprecated delegate, removed in 0.6)

        return band_energies(self, kpts) if lindep is None else band_energies(self, kpts, lindep)

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

    def supercell(self, repeat: Sequence[int]) -> "RealSpaceHamiltonian":
        """The same blocks on ``atoms.repeat(repeat)``: exact for a periodic crystal (each copy of an atom keeps
        its neighbours), so large cells can be built from a small cell's H(R), S(R) without recomputing them.

        Atom order is ASE's ``repeat`` order (copy index outer, atom inner). Blocks are shared, not copied.
        """
        reps = np.asarray(repeat, dtype=np.int64).reshape(3)
        if (reps < 1).any():
            raise ValueError(f"repeat must be three positive integers, got {list(repeat)}")
        if (reps > 1).any() and not all(self.atoms.pbc[reps > 1]):
            raise ValueError("a Hamiltonian can only be repeated along its periodic directions")
        n_atoms = len(self.atoms)
        cells = np.array(np.meshgrid(*[np.arange(n) for n in reps], indexing="ij")).reshape(3, -1).T  # ASE order
        copy_of = lambda m: (m[..., 0] * reps[1] + m[..., 1]) * reps[2] + m[..., 2]  # noqa: E731
        target = cells[:, None, :] + self.edges[None, :, :3]  # (copies, E, 3): cell of j, in primitive cells
        shift = np.floor_divide(target, reps)
        i_new = copy_of(cells)[:, None] * n_atoms + self.edges[None, :, 3]
        j_new = copy_of(np.mod(target, reps)) * n_atoms + self.edges[None, :, 4]
        edges = np.concatenate([shift, i_new[..., None], j_new[..., None]], axis=2).reshape(-1, 5)
        n = len(cells)
        return RealSpaceHamiltonian(atoms=self.atoms.repeat(tuple(int(x) for x in reps)), basis=self.basis,
                                    edges=edges, hamiltonian=self.hamiltonian * n, overlap=self.overlap * n,
                                    meta={**self.meta, "supercell_of": [int(x) for x in reps]})

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


def gauge_shift(pred: Sequence[np.ndarray], true: Sequence[np.ndarray], overlap: Sequence[np.ndarray]) -> float:
    """The energy zero between two Hamiltonians on the same edges: the c (eV) that makes ``pred - (true + c·S)``
    smallest in the Frobenius norm over all blocks, ``c = <S, pred - true> / <S, S>``.

    The zero of a periodic DFT calculation is the cell-averaged potential (more vacuum: H + c·S), which no local
    model sees, so errors are judged after removing it ("gauge" errors) as well as raw.
    """
    num = sum(float(np.vdot(s, p - t).real) for p, t, s in zip(pred, true, overlap))
    den = sum(float(np.vdot(s, s).real) for s in overlap)
    return num / den if den > 0 else 0.0
