"""A structure's basis functions on real-space points: Bloch sums of its atomic orbitals, e3nn order, Å^-3/2.

``chi_jk(r) = sum_T exp(2 pi i k.n) phi_j(r - x_j - T)`` over the lattice vectors ``T = n @ cell`` of the periodic
directions: the Bloch sum whose matrix elements are ``H(k) = sum_R exp(2 pi i k.R) H(R)`` (the edge convention of
:mod:`tracegrad_ase.core.graphs`), so a Bloch state ``psi(r) = chi_k(r) @ c`` with ``c^H S(k) c = 1`` is normalized
over one cell. PySCF evaluates the orbitals in Bohr^-3/2 at points in Bohr; both convert here, once.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp
from ase import Atoms

from ...core.basis import OrbitalBasis
from ...core.units import BOHR_TO_ANGSTROM
from .integrals import _mole, morton_order

#: An orbital is taken to reach as far as its most diffuse Gaussian stays above this fraction of its peak.
REACH_FRACTION = 1e-8
#: Points evaluated at once: bounds the memory of one batch (points x image orbitals, 8 bytes each).
POINTS_PER_BATCH = 2048
#: The states' folded coefficients are taken in groups of at most this many bytes (complex).
STATE_BYTES = 256 * 2**20

__all__ = ["OrbitalImages", "orbital_reach"]


def orbital_reach(basis: OrbitalBasis, element: str) -> float:
    """How far (Å) the element's orbitals reach: where exp(-a r^2) of its most diffuse exponent a falls to
    :data:`REACH_FRACTION`."""
    mol = _mole([element], np.zeros((1, 3)), basis.name)
    alpha = min(float(np.min(mol.bas_exp(b))) for b in range(mol.nbas))  # Bohr^-2
    return float(np.sqrt(-np.log(REACH_FRACTION) / alpha)) * BOHR_TO_ANGSTROM


class OrbitalImages:
    """The atoms of ``atoms`` and those of their periodic images whose orbitals reach the box ``lo``-``hi`` (Å):
    their orbitals at points inside it (each batch of points from only the images within reach), summed into
    Bloch functions at a k-point (:meth:`bloch`: a sparse matrix of phases and PySCF → e3nn order):
    :meth:`orbitals`, :meth:`states`, :meth:`density`."""

    def __init__(self, atoms: Atoms, basis: OrbitalBasis, lo: Sequence[float], hi: Sequence[float]) -> None:
        lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
        symbols = atoms.get_chemical_symbols()
        reach = {el: orbital_reach(basis, el) for el in set(symbols)}
        cell = np.asarray(atoms.cell[:], dtype=float)
        periodic = np.asarray(atoms.pbc, dtype=bool)
        corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
        inverse = np.linalg.pinv(cell) if periodic.any() else None
        ranges = []
        for axis in range(3):
            if not periodic[axis]:
                ranges.append(np.zeros(1, dtype=int))
                continue
            # Fractional coordinates along this axis: of the box corners, of the atoms, and of the reach
            # (layers of lattice points are 1/|b| apart, b the reciprocal vector without 2 pi).
            f_box, f_atoms = corners @ inverse[:, axis], atoms.get_positions() @ inverse[:, axis]
            f_reach = max(reach.values()) * np.linalg.norm(inverse[:, axis])
            ranges.append(np.arange(int(np.floor(f_box.min() - f_atoms.max() - f_reach)),
                                    int(np.ceil(f_box.max() - f_atoms.min() + f_reach)) + 1))
        shifts = np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, 3)
        pos = atoms.get_positions()
        image_pos = pos[None, :, :] + (shifts @ cell)[:, None, :]  # (images, atoms, 3)
        gap = np.linalg.norm(np.maximum(0.0, np.maximum(lo - image_pos, image_pos - hi)), axis=-1)
        limit = np.array([reach[s] for s in symbols])
        img, atom = np.nonzero(gap <= limit[None, :])
        self.shifts, self.atom = shifts[img], atom
        self._symbols = [symbols[a] for a in atom]
        self._positions, self._reach = image_pos[img, atom], limit[atom]
        self._basis_name = basis.name
        self._offsets = np.concatenate([[0], np.cumsum([basis.norb(el) for el in self._symbols])])
        self._home = basis.atom_offsets(atoms.numbers)
        self._blocks = [basis.transform(symbols[a], "pyscf", "e3nn").T for a in atom]  # pyscf rows -> e3nn columns
        self.norb = int(self._home[-1])

    @property
    def n_images(self) -> int:
        """Atom images kept (the home atoms among them)."""
        return len(self.atom)

    def _batches(self, points: np.ndarray):
        """Spatially compact batches of ``points`` (a Z-order curve through their bounding box), each with the
        orbitals of only the images that reach it: yields (indices into points, values (n, rows), rows of the
        image orbitals). A point sees the ~60 atoms within an orbital's reach, not every atom of a large cell."""
        span = np.ptp(points, axis=0)
        order = morton_order((points - points.min(axis=0)) / np.where(span > 0, span * (1 + 1e-9), 1.0))
        for start in range(0, len(points), POINTS_PER_BATCH):
            idx = order[start:start + POINTS_PER_BATCH]
            lo, hi = points[idx].min(axis=0), points[idx].max(axis=0)
            gap = np.linalg.norm(np.maximum(0.0, np.maximum(lo - self._positions, self._positions - hi)), axis=-1)
            near = np.flatnonzero(gap <= self._reach)
            if len(near) == 0:
                yield idx, np.zeros((len(idx), 0)), np.zeros(0, dtype=int)
                continue
            mol = _mole([self._symbols[m] for m in near], self._positions[near], self._basis_name)
            rows = np.concatenate([np.arange(self._offsets[m], self._offsets[m + 1]) for m in near])
            yield idx, mol.eval_gto("GTOval_sph", points[idx] / BOHR_TO_ANGSTROM) * BOHR_TO_ANGSTROM ** -1.5, rows

    def bloch(self, k: Sequence[float]) -> sp.csr_matrix:
        """(image orbitals, norb) complex: the phase exp(2 pi i k.n) of each image times the PySCF → e3nn
        transform: the image orbitals' values at points times it are the Bloch functions at ``k`` (fractional)."""
        phase = np.exp(2j * np.pi * (self.shifts @ np.asarray(k, dtype=float).reshape(3)))
        rows, cols, data = [], [], []
        for m, (a, block) in enumerate(zip(self.atom, self._blocks)):
            r, c = np.nonzero(block)
            rows.append(r + self._offsets[m])
            cols.append(c + self._home[a])
            data.append(phase[m] * block[r, c])
        shape = (int(self._offsets[-1]), self.norb)
        return sp.csr_matrix((np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape=shape)

    def orbitals(self, points: np.ndarray, k: Sequence[float]) -> np.ndarray:
        """Bloch functions chi_jk at ``points`` (N, 3) Å: (N, norb) complex, e3nn order, Å^-3/2."""
        return self.states(points, k, np.eye(self.norb))

    def states(self, points: np.ndarray, k: Sequence[float], coeffs: np.ndarray) -> np.ndarray:
        """``chi_k(r) @ coeffs`` at ``points`` (N, 3) Å for coefficients (norb, n): (N, n) complex, without the
        (N, norb) Bloch functions of every orbital (which a large cell's grid could not hold)."""
        points = np.asarray(points, dtype=float).reshape(-1, 3)
        folded = self.bloch(k) @ np.asarray(coeffs)
        out = np.empty((len(points), folded.shape[1]), dtype=complex)
        for idx, vals, rows in self._batches(points):
            out[idx] = vals @ folded[rows]
        return out

    def density(self, points: np.ndarray, states: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
                progress: bool = False) -> np.ndarray:
        """``sum over (k, c, f) in states of sum_n f_n |chi_k(r) @ c_n|^2`` at ``points`` (N, 3) Å: (N,) per Å³,
        ``c`` (norb, n) coefficients, ``f`` (n,) weights. The orbitals are evaluated once per batch of points
        for every k-point (their Bloch sums are folded into the coefficients first)."""
        from tqdm import tqdm

        points = np.asarray(points, dtype=float).reshape(-1, 3)
        states = [(k, c, f) for k, c, f in states if len(f)]
        if not states:
            return np.zeros(len(points))
        # Every state's coefficients on the image orbitals side by side, real and imaginary parts apart: one real
        # matrix product per batch of points for all of them (a complex product would copy the values each time).
        folded = np.concatenate([self.bloch(k) @ c for k, c, _ in states], axis=1)
        f = np.concatenate([np.asarray(f, dtype=float) for _, _, f in states])
        groups = np.array_split(np.arange(len(f)), max(1, int(np.ceil(folded.nbytes / STATE_BYTES))))
        parts = [(np.ascontiguousarray(folded[:, g].real), np.ascontiguousarray(folded[:, g].imag), f[g])
                 for g in groups]
        out = np.zeros(len(points))
        batches = tqdm(self._batches(points), desc="density", unit="batch", disable=not progress,
                       total=-(-len(points) // POINTS_PER_BATCH))
        for idx, vals, rows in batches:
            for re, im, weights in parts:
                out[idx] += ((vals @ re[rows]) ** 2 + (vals @ im[rows]) ** 2) @ weights
        return out
