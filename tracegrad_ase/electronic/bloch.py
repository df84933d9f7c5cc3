"""H(k) and S(k) from H(R), S(R): the one place a Bloch sum is made.

``H(k) = sum_R exp(2 pi i k.R) H(R)`` with k in fractional reciprocal coordinates and R the lattice shift of an
edge (:mod:`tracegrad_ase.core.graphs`). :class:`BlochAssembler` makes sparse matrices for any cell size;
:func:`bloch_dense` makes dense (nk, norb, norb) stacks for small cells and tests. Also the k-point and k-weight
checks every solver shares.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from ..core.hamiltonian import RealSpaceHamiltonian

__all__ = ["BlochAssembler", "as_assembler", "bloch_dense", "bloch_dense_gradient", "bloch_sparse", "check_kpts",
           "kpoint_weights"]


class BlochAssembler:
    """Sparse H(k), S(k) of one Hamiltonian; the COO/CSR pattern is built once so each k-point is vectorized.

    Every matrix element of every block is one entry ``(row, col, edge)``; entries of different edges that land
    on the same ``(row, col)`` (periodic images in a small cell) are summed by a precomputed ``bincount`` map,
    so ``at(k)`` is a phase multiply, two bincounts and a CSR constructor: no Python loop over edges.
    """

    def __init__(self, ham: RealSpaceHamiltonian) -> None:
        self.ham = ham
        self.norb = ham.norb
        off = ham.offsets
        edges = ham.edges
        norb_atom = np.diff(off)
        ni, nj = norb_atom[edges[:, 3]], norb_atom[edges[:, 4]]
        rows, cols, eidx, hval, sval = [], [], [], [], []
        # Edges grouped by block shape (one group per element pair, not one per edge): each group's blocks are
        # stacked and its index arrays built by broadcasting.
        for a, b in sorted(set(zip(ni.tolist(), nj.tolist()))):
            sel = np.nonzero((ni == a) & (nj == b))[0]
            hb = np.stack([np.asarray(ham.hamiltonian[e]) for e in sel])
            sb = np.stack([np.asarray(ham.overlap[e]) for e in sel])
            r = off[edges[sel, 3]][:, None, None] + np.arange(a)[None, :, None]
            c = off[edges[sel, 4]][:, None, None] + np.arange(b)[None, None, :]
            r, c = np.broadcast_arrays(r, c)
            rows.append(r.ravel())
            cols.append(c.ravel())
            eidx.append(np.broadcast_to(sel[:, None, None], r.shape).ravel())
            hval.append(hb.ravel())
            sval.append(sb.ravel())
        n = self.norb
        if rows:
            rows_a = np.concatenate(rows).astype(np.int64)
            cols_a = np.concatenate(cols).astype(np.int64)
            self._edge_of_entry = np.concatenate(eidx)
            self._h = np.concatenate(hval)
            self._s = np.concatenate(sval)
        else:
            rows_a = cols_a = self._edge_of_entry = np.zeros(0, dtype=np.int64)
            self._h = self._s = np.zeros(0)
        # Unique (row, col) in row-major order gives a canonical CSR pattern (sorted indices, no duplicates).
        linear = rows_a * n + cols_a
        uniq, self._slot = np.unique(linear, return_inverse=True)
        self._nnz = len(uniq)
        self._indices = (uniq % n).astype(np.int32 if n < 2**31 else np.int64)
        counts = np.bincount(uniq // n, minlength=n) if n else np.zeros(0, dtype=np.int64)
        self._indptr = np.concatenate([[0], np.cumsum(counts)]).astype(self._indices.dtype)
        self._shifts = edges[:, :3].astype(float)
        # Whether every stored block is real: then a k with real phases gives a real matrix (cheaper solvers).
        self.real_blocks = not (np.iscomplexobj(self._h) or np.iscomplexobj(self._s))

    def _sum(self, values: np.ndarray) -> np.ndarray:
        if np.iscomplexobj(values):
            return (np.bincount(self._slot, weights=values.real, minlength=self._nnz)
                    + 1j * np.bincount(self._slot, weights=values.imag, minlength=self._nnz))
        return np.bincount(self._slot, weights=values, minlength=self._nnz)

    def _csr(self, data: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((data, self._indices.copy(), self._indptr.copy()), shape=(self.norb, self.norb))

    def at(self, k: Sequence[float]) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """H(k), S(k) (eV) as complex CSR matrices at one fractional k-point."""
        k = np.asarray(k, dtype=float).reshape(3)
        phase = np.exp(2j * np.pi * (self._shifts @ k))[self._edge_of_entry]
        return self._csr(self._sum(self._h * phase)), self._csr(self._sum(self._s * phase))

    def _real_phase(self, k: Sequence[float]) -> np.ndarray | None:
        """The Bloch phase per edge when H(k), S(k) are real (real blocks, k.R integer or half-integer)."""
        phase = np.exp(2j * np.pi * (self._shifts @ np.asarray(k, dtype=float).reshape(3)))
        if not self.real_blocks or np.abs(phase.imag).max(initial=0.0) > 1e-14:
            return None
        return phase.real

    def is_real(self, k: Sequence[float]) -> bool:
        """Whether H(k) and S(k) are real: real blocks, and k.R integer or half-integer on every edge."""
        return self._real_phase(k) is not None

    def at_real(self, k: Sequence[float]) -> tuple[sp.csr_matrix, sp.csr_matrix] | None:
        """H(k), S(k) as real CSR matrices when they are real (real blocks and k.R integer or half-integer for
        every edge, e.g. Γ); otherwise None."""
        phase = self._real_phase(k)
        if phase is None:
            return None
        ph = phase[self._edge_of_entry]
        return self._csr(self._sum(self._h * ph)), self._csr(self._sum(self._s * ph))


def bloch_sparse(ham: RealSpaceHamiltonian, k: Sequence[float]) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """H(k), S(k) (eV) as complex CSR matrices. For many k-points build one :class:`BlochAssembler`."""
    return BlochAssembler(ham).at(k)


def _assembler(ham_or_assembler: RealSpaceHamiltonian | BlochAssembler) -> BlochAssembler:
    if isinstance(ham_or_assembler, BlochAssembler):
        return ham_or_assembler
    return BlochAssembler(ham_or_assembler)



def bloch_dense(ham: RealSpaceHamiltonian, kpts: Any) -> tuple[np.ndarray, np.ndarray]:
    """H(k) and S(k) (eV), shape (nk, norb, norb), at ``kpts`` in fractional reciprocal coordinates."""
    hk, sk, _, _ = _dense_sums(ham, kpts, gradient=False)
    return hk, sk


def bloch_dense_gradient(ham: RealSpaceHamiltonian, kpts: Any
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """H(k), S(k) (nk, norb, norb) and their k-gradients dH/dk, dS/dk (nk, 3, norb, norb; eV Å, Cartesian k in
    1/Å) in the gauge whose phases follow the orbitals' positions, ``exp(i k.(x_j + R @ cell - x_i))``.

    That gauge's eigenvectors differ from those of :func:`bloch_dense` by a diagonal phase only, so the
    eigenvectors of H(k), S(k) above serve both: ``c^H dH/dk c`` is the position-aware velocity matrix (times ħ)
    in the tight-binding (Peierls) approximation, which interband optics needs; the lattice-only gauge would miss
    the intracell positions (in graphene, the whole interband matrix element)."""
    return _dense_sums(ham, kpts, gradient=True)


def _dense_sums(ham: RealSpaceHamiltonian, kpts: Any, gradient: bool):
    kpts = np.atleast_2d(np.asarray(kpts, dtype=float))
    if kpts.shape[1] != 3:
        raise ValueError(f"k-points must have shape (nk, 3), got {kpts.shape}")
    phase = np.exp(2j * np.pi * kpts @ ham.edges[:, :3].T)  # (nk, E)
    off = ham.offsets
    nk, n = len(kpts), ham.norb
    hk = np.zeros((nk, n, n), dtype=complex)
    sk = np.zeros_like(hk)
    dhk = np.zeros((nk, 3, n, n), dtype=complex) if gradient else None
    dsk = np.zeros_like(dhk) if gradient else None
    d = 1j * ham.edge_vectors() if gradient else None
    # One matrix product per atom pair (all its periodic images at once), not one update per edge.
    pairs: dict[tuple[int, int], list[int]] = {}
    for e, (i, j) in enumerate(ham.edges[:, 3:5].tolist()):
        pairs.setdefault((i, j), []).append(e)
    for (i, j), sel in pairs.items():
        rows, cols = slice(off[i], off[i + 1]), slice(off[j], off[j + 1])
        hb = np.stack([np.asarray(ham.hamiltonian[e]) for e in sel])
        sb = np.stack([np.asarray(ham.overlap[e]) for e in sel])
        ph = phase[:, sel]
        shape = (len(sel), -1)
        hk[:, rows, cols] += (ph @ hb.reshape(shape)).reshape(nk, *hb.shape[1:])  # matmul: BLAS, not einsum
        sk[:, rows, cols] += (ph @ sb.reshape(shape)).reshape(nk, *sb.shape[1:])
        if gradient:
            phd = (ph[:, None, :] * d[sel].T[None]).reshape(nk * 3, len(sel))  # (nk * 3, e)
            dhk[:, :, rows, cols] += (phd @ hb.reshape(shape)).reshape(nk, 3, *hb.shape[1:])
            dsk[:, :, rows, cols] += (phd @ sb.reshape(shape)).reshape(nk, 3, *sb.shape[1:])
    return hk, sk, dhk, dsk


def as_assembler(ham_or_assembler: RealSpaceHamiltonian | BlochAssembler) -> BlochAssembler:
    """The assembler itself, or a new one for a Hamiltonian (its sparsity pattern is built once per object)."""
    if isinstance(ham_or_assembler, BlochAssembler):
        return ham_or_assembler
    return BlochAssembler(ham_or_assembler)


def check_kpts(kpts: Any) -> np.ndarray:
    """k-points as a float (nk, 3) array; ValueError for any other shape."""
    kpts = np.atleast_2d(np.asarray(kpts, dtype=float))
    if kpts.ndim != 2 or kpts.shape[1] != 3:
        raise ValueError(f"k-points must have shape (nk, 3), got {kpts.shape}")
    return kpts


def kpoint_weights(weights: Any, nk: int) -> np.ndarray:
    """k weights normalized to sum to 1 (uniform for None); ValueError for a wrong length or sign."""
    if weights is None:
        return np.full(nk, 1.0 / nk)
    w = np.asarray(weights, dtype=float).reshape(-1)
    if len(w) != nk:
        raise ValueError(f"{len(w)} weights for {nk} k-points")
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError("k-point weights must be non-negative and not all zero")
    return w / w.sum()  # Σ_k w_k Σ_n 2 f = N needs normalized weights
