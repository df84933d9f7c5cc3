"""Band velocities on many k-points: what optics and transport share.

``p^a_nm = c_n^H [∂_a H(k) − ½(ε_n + ε_m) ∂_a S(k)] c_m`` (eV Å), ħ times the velocity matrix in the
tight-binding (Peierls) approximation: k-gradients from
:func:`~tracegrad_ase.electronic.bloch.bloch_dense_gradient` (phases that follow the orbitals' positions),
eigenvectors by canonical orthogonalization, batched over k. The symmetric ½(ε_n + ε_m) makes p Hermitian; its
diagonal is exactly ħ ∂ε_n/∂k (Hellmann-Feynman for H c = ε S c).
"""

from __future__ import annotations

import warnings
from typing import Any, Iterator

import numpy as np

from ..core.errors import CoarseMeshWarning
from ..core.hamiltonian import RealSpaceHamiltonian
from ..core.stacklevel import user_stacklevel
from .bloch import bloch_dense_gradient
from .solve import SPARSE_THRESHOLD

__all__ = ["DEGENERATE_EV", "check_resolution", "periodic_measure", "solve_batched", "velocity_groups",
           "velocity_products"]

#: Levels closer than this (eV) are one degenerate level: a pair of them makes no interband transition, and their
#: velocities enter transport as the trace over their subspace (which no basis choice inside it changes).
DEGENERATE_EV = 1e-4


def periodic_measure(ham: RealSpaceHamiltonian, what: str) -> tuple[int, float]:
    """(periodic directions, their length, area or volume in Å^d) of a structure that ``what`` (named in the
    errors) can take: one with a periodic direction and at most ``SPARSE_THRESHOLD`` orbitals (every k is solved
    densely)."""
    pbc = np.asarray(ham.atoms.pbc, dtype=bool)
    d = int(pbc.sum())
    if d == 0:
        raise ValueError(f"{what} needs a periodic structure; this one has no periodic direction")
    vectors = np.asarray(ham.atoms.cell[:], dtype=float)[pbc]
    measure = float(np.sqrt(abs(np.linalg.det(vectors @ vectors.T))))
    if measure <= 0:
        raise ValueError("the cell's periodic vectors have zero length, area or volume")
    if ham.norb > SPARSE_THRESHOLD:
        raise ValueError(f"{what} diagonalizes every k-point densely; this cell has {ham.norb} orbitals (more than "
                         f"{SPARSE_THRESHOLD})")
    return d, measure


def check_resolution(ham: RealSpaceHamiltonian, kpts: np.ndarray, speed: float, scale: float, what: str) -> float:
    """The largest step of a level between neighbouring mesh points, ``speed`` (max |ħv|, eV Å) times the mesh's
    largest Cartesian spacing, over ``scale`` (eV: a broadening or kT); a :class:`CoarseMeshWarning` above 2, and
    when ``speed`` is 0 (nothing on the mesh took part: a gap, or a mesh too coarse to sample what would)."""
    recip = 2 * np.pi * np.linalg.norm(np.asarray(ham.atoms.cell.reciprocal()), axis=1)
    steps = []  # the mesh step along each axis: the smallest gap between its coordinates (a wedge has them too)
    for i in range(3):
        values = np.unique(np.round(np.mod(kpts[:, i], 1.0), 9) % 1.0)
        steps.append(float(np.diff(values).min()) if len(values) > 1 else 1.0)
    dk = max(b * step for b, step, p in zip(recip, steps, ham.atoms.pbc) if p)
    ratio = speed * dk / scale
    if speed == 0:
        warnings.warn(CoarseMeshWarning(
            f"{what}: no level of this mesh took part; a gap, or a mesh too coarse to sample the levels that would "
            f"(largest k-spacing {dk:.3g} 1/Å)"), stacklevel=user_stacklevel())
    elif ratio > 2:
        warnings.warn(CoarseMeshWarning(
            f"{what}: levels step by up to {speed * dk:.3g} eV between neighbouring k-points, {ratio:.1f} times "
            f"{scale:.3g} eV; expect mesh artefacts, or use a mesh ~{ratio / 2:.1f} times finer per direction"),
            stacklevel=user_stacklevel())
    return float(ratio)


def solve_batched(hk: np.ndarray, sk: np.ndarray, lindep: float
                  ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Eigenpairs by canonical orthogonalization (as :func:`~tracegrad_ase.electronic.solve.generalized_eigh`),
    batched: groups (k indices, energies (K, nb), S-orthonormal vectors (K, norb, nb)), one group per number of
    overlap directions kept (eigh sorts S's eigenvalues ascending, so the kept ones are the last)."""
    sval, svec = np.linalg.eigh(sk)
    kept = (sval > lindep).sum(axis=1)
    if (kept == 0).any():
        raise np.linalg.LinAlgError("the overlap matrix has no eigenvalue above the linear-dependence threshold")
    groups = []
    for m in np.unique(kept):
        idx = np.nonzero(kept == m)[0]
        x = svec[idx][:, :, -m:] / np.sqrt(sval[idx][:, None, -m:])
        e, v = np.linalg.eigh(np.conj(np.swapaxes(x, 1, 2)) @ hk[idx] @ x)
        groups.append((idx, e, x @ v))
    return groups


def velocity_groups(ham: RealSpaceHamiltonian, kpts: np.ndarray, window: tuple[float, float], lindep: float,
                    chunk: int = 256, progress: Any = None
                    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (k indices into ``kpts``, energies (K, nb), p (K, 3, nb, nb), levels below (K,)) for the bands with
    an energy inside ``window`` (eV; the union over each group's k-points, so arrays stay rectangular, and nb may
    be 0), ``chunk`` k-points at a time; "levels below" counts, per k, the levels left out under the window (for
    electron counts). ``progress``: a tqdm description, or None."""
    if int(chunk) < 1:
        raise ValueError(f"chunk must be a positive number of k-points, got {chunk}")
    starts = range(0, len(kpts), int(chunk))
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=progress, unit="chunk")
    for start in starts:
        hk, sk, dhk, dsk = bloch_dense_gradient(ham, kpts[start:start + int(chunk)])
        for idx, e, c in solve_batched(hk, sk, lindep):
            cols = np.nonzero(((e >= window[0]) & (e <= window[1])).any(axis=0))[0]
            band = slice(cols[0], cols[-1] + 1) if len(cols) else slice(0, 0)
            kept = np.zeros(e.shape[1], dtype=bool)
            kept[band] = True
            below = ((e < window[0]) & ~kept[None]).sum(axis=1)
            e, c = e[:, band], c[:, :, band]
            ch = np.conj(np.swapaxes(c, 1, 2))[:, None]  # (K, 1, nb, norb)
            mean = 0.5 * (e[:, :, None] + e[:, None, :])[:, None]  # ½(ε_n + ε_m)
            p = ch @ dhk[idx] @ c[:, None] - mean * (ch @ dsk[idx] @ c[:, None])
            yield start + idx, e, p, below


def velocity_products(e: np.ndarray, p: np.ndarray) -> np.ndarray:
    """ħ²v_a v_b per level (K, nb, 3, 3) (eV² Å²): Σ_m Re(p^a_nm p^b_mn) over the level's degenerate subspace, which
    no basis choice inside it changes (for a lone level, the square of its band velocity)."""
    same = np.abs(e[:, :, None] - e[:, None, :]) < DEGENERATE_EV  # (K, n, m)
    return (np.einsum("knm,kanm,kbnm->knab", same, p.real, p.real)
            + np.einsum("knm,kanm,kbnm->knab", same, p.imag, p.imag))
