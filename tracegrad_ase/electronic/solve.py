"""Band energies at k-points: the generalized eigenproblem ``H(k) c = e S(k) c`` and its thresholds.

Dense canonical orthogonalization for ordinary cells, sparse shift-invert (ARPACK, with the factorizations of
:mod:`~tracegrad_ase.electronic.sparse_factor`) above :data:`SPARSE_THRESHOLD` orbitals, and the inertia
counts that number levels without computing them. Energies in eV.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import scipy.sparse.linalg as spla

from ..core.errors import ParameterError
from ..core.hamiltonian import RealSpaceHamiltonian
from .bloch import BlochAssembler, as_assembler, check_kpts, kpoint_weights
from .sparse_factor import ShiftedFactorization, resolve_backend

__all__ = ["DEFAULT_SPARSE_BANDS", "LINDEP_THRESHOLD", "PREDICTED_LINDEP", "SPARSE_THRESHOLD", "KSolution",
           "band_energies", "generalized_eigh", "levels_at_cuts", "model_lindep", "shifted_factorization", "smallest_overlap_eigenvalue",
           "solve_k", "sparse_eigs", "states_below"]

#: Overlap eigenvalues below this are treated as linear dependencies of the basis (see generalized_eigh).
LINDEP_THRESHOLD = 1e-6

#: The threshold for a *predicted* Hamiltonian, crystal or molecule (calculator, evaluation, SCF guesses): a
#: model's errors along nearly dependent overlap directions are amplified by 1/s, which the exact Hamiltonian,
#: consistent with S, escapes. Measured with the shipped carbon model (gth-dzvp): band errors near E_F 6.7 eV at
#: 1e-6, 0.18 eV at 1e-2; with the ethanol model (def2-SVP, S down to ~1e-3): predicted HOMO-LUMO gaps 0.9-3.0 eV
#: at 1e-6 against 6.1-6.7 eV exact (spurious levels in the gap), 5.1-6.5 eV at 1e-2.
PREDICTED_LINDEP = 1e-2


#: Above this many orbitals per cell, :func:`solve_k` switches from dense diagonalization (O(N^3) time,
#: O(N^2) memory) to sparse shift-invert Lanczos/Arnoldi for a window of bands around a reference energy.
SPARSE_THRESHOLD = 3000

#: Bands computed by the sparse path when ``n_bands`` is not given.
DEFAULT_SPARSE_BANDS = 32


def generalized_eigh(h: np.ndarray, s: np.ndarray, lindep: float = LINDEP_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``H c = e S c`` by canonical orthogonalization; returns (energies, coefficients).

    Eigen-directions of S with eigenvalue below ``lindep`` are dropped before solving. Diffuse bases are
    nearly linearly dependent in a crystal (graphene with gth-dzvp: smallest eigenvalue of S(k) ~1e-8), so
    the error of S(R) truncated at a finite cutoff (~1e-6 to 1e-5) would otherwise make S(k) indefinite or
    add spurious states. ``lindep=0`` keeps every direction (and fails like Cholesky on an indefinite S).
    """
    sval, svec = np.linalg.eigh(s)
    keep = sval > lindep
    if not keep.any():
        raise np.linalg.LinAlgError("the overlap matrix has no eigenvalue above the linear-dependence threshold")
    x = svec[:, keep] / np.sqrt(sval[keep])
    e, c = np.linalg.eigh(x.conj().T @ h @ x)
    return e, x @ c


def levels_at_cuts(h: np.ndarray, s: np.ndarray, cuts: Sequence[float], first: int, last: int
                   ) -> dict[float, np.ndarray | None]:
    """Levels ``first``..``last`` (ascending indices) of ``H c = e S c`` solved as :func:`generalized_eigh` solves
    it, once per cut in ``cuts``: S is diagonalized once and only the asked levels are computed, so a few cuts
    cost little more than one full solve. None where fewer levels survive a cut."""
    import scipy.linalg

    sval, svec = np.linalg.eigh(s)
    out: dict[float, np.ndarray | None] = {}
    solved: dict[int, np.ndarray | None] = {}  # by the number of directions kept: cuts keeping the same ones agree
    for cut in cuts:
        keep = sval > cut
        n = int(keep.sum())
        if n not in solved:
            x = svec[:, keep] / np.sqrt(sval[keep])
            solved[n] = (scipy.linalg.eigh(x.conj().T @ h @ x, eigvals_only=True, subset_by_index=[first, last])
                         if n > last else None)
        out[float(cut)] = solved[n]
    return out


@dataclass
class KSolution:
    """Band energies (and optionally coefficients) at a set of k-points.

    ``energies[k, n]`` (eV) is ascending in n. ``vectors[k]`` is ``(norb, nbands)`` with columns S(k)-orthonormal
    (``c^H S c = 1``). ``weights`` sum to 1. ``sparse`` marks a window of bands around ``sigma`` rather than all
    bands from the bottom: such a window cannot be used to count electrons.
    """

    kpts: np.ndarray
    energies: np.ndarray
    vectors: list[np.ndarray] | None
    weights: np.ndarray
    sparse: bool = False
    sigma: float | None = None

    @property
    def nbands(self) -> int:
        return int(self.energies.shape[1])

    @property
    def nkpts(self) -> int:
        return int(self.energies.shape[0])


def solve_k(
    ham_or_assembler: RealSpaceHamiltonian | BlochAssembler,
    kpts: Any,
    lindep: float = LINDEP_THRESHOLD,
    vectors: bool = False,
    sparse: bool | None = None,
    n_bands: int | None = None,
    sigma: float | None = None,
    weights: Any = None,
) -> KSolution:
    """Solve ``H(k) c = e S(k) c`` at each k-point.

    Dense path (default while ``norb <= SPARSE_THRESHOLD``): canonical orthogonalization
    (:func:`~tracegrad_ase.hamiltonian.generalized_eigh`, directions of S(k) below ``lindep`` dropped); the band
    count is the minimum over k so the array is rectangular. ``n_bands`` then keeps the lowest ``n_bands``, or,
    when ``sigma`` is given, the ``n_bands`` levels nearest ``sigma``.

    Sparse path (``sparse=True``, or ``sparse=None`` and ``norb > SPARSE_THRESHOLD``): ARPACK shift-invert
    (:func:`scipy.sparse.linalg.eigsh`) for the ``n_bands`` (default 32) eigenpairs nearest ``sigma``; no dense
    ``norb x norb`` matrix is formed. ``sigma`` is required there (use the Fermi-level guess, e.g.
    ``ham.meta["fermi_level_ev"]``, which is taken when ``sigma`` is None). ``lindep`` is not applied: S(k)
    must be positive definite. The returned window is then refined by Rayleigh-Ritz so degenerate vectors are
    S-orthonormal.
    """
    asm = as_assembler(ham_or_assembler)
    kpts = check_kpts(kpts)
    w = kpoint_weights(weights, len(kpts))
    use_sparse = asm.norb > SPARSE_THRESHOLD if sparse is None else bool(sparse)
    if use_sparse:
        if sigma is None:
            sigma = asm.ham.meta.get("fermi_level_ev")
        if sigma is None:
            raise ValueError("the sparse eigensolver needs sigma, the energy (eV) around which to find bands")
        nb = DEFAULT_SPARSE_BANDS if n_bands is None else int(n_bands)
        if not 0 < nb < asm.norb - 1:
            raise ValueError(f"n_bands must be between 1 and norb - 2 = {asm.norb - 2} for the sparse path, got {nb}")
        es, vs = zip(*(sparse_eigs(asm, k, float(sigma), nb, vectors) for k in kpts))
        return KSolution(kpts, np.array(es), list(vs) if vectors else None, w, sparse=True, sigma=float(sigma))

    es_list, vs_list = [], []
    for k in kpts:
        h, s = asm.at_real(k) or asm.at(k)  # real arithmetic where the phases allow (Γ, zone boundary)
        e, c = generalized_eigh(h.toarray(), s.toarray(), lindep)
        es_list.append(e)
        vs_list.append(c)
    nb = min(len(e) for e in es_list)
    energies = np.array([e[:nb] for e in es_list])
    vecs = [c[:, :nb] for c in vs_list]
    if n_bands is not None and n_bands < nb:
        if sigma is None:
            sel = [np.arange(n_bands)] * len(kpts)
        else:
            # The n levels nearest sigma form a contiguous window of the sorted levels.
            sel = [np.sort(np.argsort(np.abs(e - sigma), kind="stable")[:n_bands]) for e in energies]
        energies = np.array([e[s] for e, s in zip(energies, sel)])
        vecs = [c[:, s] for c, s in zip(vecs, sel)]
    return KSolution(kpts, energies, vecs if vectors else None, w, sparse=False,
                     sigma=None if sigma is None else float(sigma))


def sparse_eigs(asm: BlochAssembler, k: np.ndarray, sigma: float, nb: int, want_vectors: bool, seed: int = 0,
                 factor: ShiftedFactorization | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    pair = asm.at_real(k)
    h, s = pair if pair is not None else asm.at(k)
    h, s = h.tocsc(), s.tocsc()
    # ARPACK's own start vector is random per call; a seeded one makes a window (and any failure) reproducible.
    v0 = np.random.default_rng(seed).standard_normal(h.shape[0]).astype(h.dtype)
    # Shift-invert: ARPACK converges to the eigenvalues of (H - sigma S)^-1 S of largest modulus, i.e. e nearest
    # sigma; the LU factorization of the sparse shifted matrix is the only factorization made.
    # With PARDISO its LDLᵀ makes the shift-invert solves (also reused from an inertia count at sigma); SuperLU's
    # diagonal-pivot factor is not stable enough for that, so there ARPACK makes its own pivoted LU.
    own = factor is None and resolve_backend(real=not np.iscomplexobj(h.data)) == "pardiso"
    if own:
        factor = ShiftedFactorization(h - sigma * s)
    try:
        opinv = factor.operator() if factor is not None and factor.solves else None
        e, v = spla.eigsh(h, k=nb, M=s, sigma=sigma, which="LM", tol=0.0, v0=v0, OPinv=opinv)
    finally:
        if own:
            factor.close()
    # Rayleigh-Ritz in the found subspace (nb x nb): sorts the window, makes degenerate vectors S-orthonormal
    # (the complex case runs through ARPACK's non-Hermitian driver, which does not guarantee that).
    sv = s @ v
    hs = v.conj().T @ (h @ v)
    ss = v.conj().T @ sv
    hs = 0.5 * (hs + hs.conj().T)
    ss = 0.5 * (ss + ss.conj().T)
    e2, c2 = generalized_eigh(hs, ss, lindep=0.0)
    if len(e2) < nb:  # pragma: no cover - ARPACK returned dependent vectors
        raise np.linalg.LinAlgError("the sparse eigensolver returned linearly dependent vectors")
    return e2, (v @ c2 if want_vectors else None)


def smallest_overlap_eigenvalue(ham_or_assembler: RealSpaceHamiltonian | BlochAssembler,
                                k: Sequence[float] = (0.0, 0.0, 0.0)) -> float:
    """The smallest eigenvalue of S(k): how close the basis is to linear dependence at k. Dense below
    :data:`SPARSE_THRESHOLD` orbitals, else shift-invert at 0 (one sparse factorization of S)."""
    asm = as_assembler(ham_or_assembler)
    k = np.asarray(k, dtype=float).reshape(3)
    pair = asm.at_real(k)
    s = (pair if pair is not None else asm.at(k))[1]
    if asm.norb <= SPARSE_THRESHOLD:
        return float(np.linalg.eigvalsh(s.toarray())[0])
    factor = ShiftedFactorization(s) if resolve_backend(real=pair is not None) == "pardiso" else None
    try:
        v0 = np.random.default_rng(0).standard_normal(s.shape[0]).astype(s.dtype)
        e = spla.eigsh(s, k=1, sigma=0.0, which="LM", v0=v0, OPinv=None if factor is None else factor.operator(),
                       tol=1e-6, return_eigenvectors=False)  # compared with thresholds like 1e-2: 6 digits do
    finally:
        if factor is not None:
            factor.close()
    return float(np.min(e.real))



def band_energies(ham: RealSpaceHamiltonian, kpts: Any, lindep: float = LINDEP_THRESHOLD) -> np.ndarray:
    """Band energies (eV), shape (nk, nbands), from H(k) c = e S(k) c (see :func:`generalized_eigh`), dense.

    ``nbands`` is ``norb`` minus the most overlap directions dropped at any of the k-points as linearly
    dependent, so the array is rectangular and band n is the n-th lowest everywhere.
    """
    return solve_k(ham, kpts, lindep=lindep, sparse=False).energies


def states_below(ham_or_assembler: RealSpaceHamiltonian | BlochAssembler, k: Sequence[float], energy: float) -> int:
    """How many eigenvalues of ``H(k) c = e S(k) c`` lie below ``energy`` (eV), without computing any.

    Sylvester's law of inertia: with S positive definite, that count is the number of negative eigenvalues of
    ``A = H - energy S``, which a symmetric sparse LU (``A = L D L^H`` under a symmetric permutation, diagonal
    pivots only) reads off the signs of ``D``. One sparse factorization (:func:`shifted_factorization`).
    """
    factor = shifted_factorization(ham_or_assembler, k, energy)
    factor.close()
    return factor.negative


def shifted_factorization(ham_or_assembler: RealSpaceHamiltonian | BlochAssembler, k: Sequence[float],
                          energy: float, backend: str | None = None) -> ShiftedFactorization:
    """The sparse factorization of ``H(k) - energy S(k)`` (:mod:`~tracegrad_ase.sparse_factor`): its inertia and,
    with the PARDISO backend, the solves of a shift-invert run at ``energy``."""
    asm = as_assembler(ham_or_assembler)
    pair = asm.at_real(k)
    h, s = pair if pair is not None else asm.at(k)
    try:
        return ShiftedFactorization(h - energy * s, backend)
    except np.linalg.LinAlgError:
        raise np.linalg.LinAlgError(f"{energy} eV is an eigenvalue at k = {list(k)}; shift it slightly") from None


def model_lindep(model_file: dict | None) -> float:
    """A model's own overlap threshold (``metadata.lindep`` in model.json, chosen on its validation set by
    ``calculators/calibrate_lindep.py``), else ``PREDICTED_LINDEP``. A value outside [0, 1) is a corrupt file."""
    value = ((model_file or {}).get("metadata") or {}).get("lindep")
    if value is None:
        return PREDICTED_LINDEP
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ParameterError(f"model.json: metadata.lindep must be a number in [0, 1), got {value!r}")
    return float(value)
