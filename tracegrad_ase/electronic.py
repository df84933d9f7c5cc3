"""Electronic structure from a :class:`~tracegrad_ase.hamiltonian.RealSpaceHamiltonian`: the numpy/scipy core
that the ASE calculator calls.

Bloch sums (sparse), band energies at k-points (dense canonical orthogonalization, or sparse shift-invert for
large cells), electron count, occupations and Fermi level, band gap, total and Mulliken-projected density of
states, and molecular orbitals. Energies are in eV, lengths in Å, k-points in fractional reciprocal
coordinates (``H(k) = sum_R exp(2 pi i k.R) H(R)``). Spin is degenerate throughout: every level holds up to
two electrons. No torch here: this layer must work on plain arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.optimize import brentq
from scipy.special import erfc, expit

from .basis import symbol_of
from .errors import StructureError
from .hamiltonian import LINDEP_THRESHOLD, RealSpaceHamiltonian, generalized_eigh
from .sparse_factor import ShiftedFactorization, resolve_backend

__all__ = [
    "SPARSE_THRESHOLD",
    "SMEARINGS",
    "BlochAssembler",
    "KSolution",
    "band_gap",
    "bloch_sparse",
    "density_matrices",
    "dos",
    "electron_count",
    "fermi_level",
    "molecular_orbitals",
    "mulliken_weights",
    "occupations",
    "projected_dos",
    "shifted_factorization",
    "smallest_overlap_eigenvalue",
    "solve_k",
    "sparse_fermi_level",
    "states_below",
]

#: Above this many orbitals per cell, :func:`solve_k` switches from dense diagonalization (O(N^3) time,
#: O(N^2) memory) to sparse shift-invert Lanczos/Arnoldi for a window of bands around a reference energy.
SPARSE_THRESHOLD = 3000

#: Bands computed by the sparse path when ``n_bands`` is not given.
DEFAULT_SPARSE_BANDS = 32

SMEARINGS = ("fermi-dirac", "gaussian", "none")

# Two levels closer than this (eV) are treated as degenerate when filling levels without smearing.
_DEGENERACY_TOL = 1e-8


# -- Bloch sums ------------------------------------------------------------------------------------------------
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


# -- diagonalization --------------------------------------------------------------------------------------------
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


def _kpts(kpts: Any) -> np.ndarray:
    kpts = np.atleast_2d(np.asarray(kpts, dtype=float))
    if kpts.ndim != 2 or kpts.shape[1] != 3:
        raise ValueError(f"k-points must have shape (nk, 3), got {kpts.shape}")
    return kpts


def _weights(weights: Any, nk: int) -> np.ndarray:
    if weights is None:
        return np.full(nk, 1.0 / nk)
    w = np.asarray(weights, dtype=float).reshape(-1)
    if len(w) != nk:
        raise ValueError(f"{len(w)} weights for {nk} k-points")
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError("k-point weights must be non-negative and not all zero")
    return w / w.sum()  # Σ_k w_k Σ_n 2 f = N needs normalized weights


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
    asm = _assembler(ham_or_assembler)
    kpts = _kpts(kpts)
    w = _weights(weights, len(kpts))
    use_sparse = asm.norb > SPARSE_THRESHOLD if sparse is None else bool(sparse)
    if use_sparse:
        if sigma is None:
            sigma = asm.ham.meta.get("fermi_level_ev")
        if sigma is None:
            raise ValueError("the sparse eigensolver needs sigma, the energy (eV) around which to find bands")
        nb = DEFAULT_SPARSE_BANDS if n_bands is None else int(n_bands)
        if not 0 < nb < asm.norb - 1:
            raise ValueError(f"n_bands must be between 1 and norb - 2 = {asm.norb - 2} for the sparse path, got {nb}")
        es, vs = zip(*(_sparse_eigs(asm, k, float(sigma), nb, vectors) for k in kpts))
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


def _sparse_eigs(asm: BlochAssembler, k: np.ndarray, sigma: float, nb: int, want_vectors: bool, seed: int = 0,
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
    asm = _assembler(ham_or_assembler)
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


# -- electrons, occupations, Fermi level -----------------------------------------------------------------------
def electron_count(ham: RealSpaceHamiltonian) -> int:
    """Valence electrons per cell: the basis' valence charges minus ``meta["settings"]["charge"]``."""
    total = sum(int(ham.basis.valence[symbol_of(int(z))]) for z in ham.atoms.numbers)
    charge = (ham.meta.get("settings") or {}).get("charge", 0)
    n = total - charge
    if abs(n - round(n)) > 1e-9:
        raise ValueError(f"non-integer electron count {n}")
    if n < 0:
        raise ValueError(f"negative electron count {n} (charge {charge})")
    return int(round(n))


def _smearing_function(x: np.ndarray, smearing: str) -> np.ndarray:
    """Occupation (0..1) per spin of a level at reduced energy x = (e - mu) / width."""
    if smearing == "fermi-dirac":
        return expit(-x)  # overflow-safe 1 / (1 + exp(x))
    if smearing == "gaussian":
        return 0.5 * erfc(x)
    raise ValueError(f"unknown smearing {smearing!r}; choose one of {SMEARINGS}")


def occupations(
    energies: np.ndarray,
    mu: float,
    smearing: str = "fermi-dirac",
    width: float = 0.05,
    weights: Any = None,
    n_electrons: float | None = None,
) -> np.ndarray:
    """Occupation (0..2, both spins) of every level at chemical potential ``mu`` (eV).

    With ``smearing="none"`` levels below ``mu`` hold 2 and levels above 0; levels at ``mu`` (within 1e-8 eV)
    hold 1, or, when ``n_electrons`` is given (with the k ``weights``, default uniform), share the electrons left over equally so the
    count is exact (a metal whose Fermi level sits on a partly filled degenerate level).
    """
    e = np.asarray(energies, dtype=float)
    if smearing != "none":
        if width <= 0:
            raise ValueError("a smearing width must be positive")
        return 2.0 * _smearing_function((e - mu) / width, smearing)
    occ = np.where(e < mu - _DEGENERACY_TOL, 2.0, 0.0)
    at_mu = np.abs(e - mu) <= _DEGENERACY_TOL
    if not at_mu.any():
        return occ
    if n_electrons is None:
        return np.where(at_mu, 1.0, occ)
    wk = _weights(weights, e.shape[0])
    w = np.broadcast_to(wk.reshape((-1,) + (1,) * (e.ndim - 1)), e.shape)
    left = n_electrons - float((w * occ).sum())
    share = np.clip(left / float(w[at_mu].sum()), 0.0, 2.0)
    return np.where(at_mu, share, occ)


def fermi_level(
    energies: np.ndarray,
    weights: Any,
    n_electrons: float,
    smearing: str = "fermi-dirac",
    width: float = 0.05,
) -> float:
    """Chemical potential (eV) that holds ``n_electrons`` per cell: ``Σ_k w_k Σ_n 2 f((e_kn - mu)/width) = N``.

    Smeared: root by Brent's method (the count is monotone in mu). ``"none"``: fill the levels in order of
    energy (any k weights); if the filling ends exactly between two distinct levels — always the case for an
    insulator — mu is midway between them (mid-gap); otherwise mu is the partly filled highest occupied level.
    ``weights`` None means uniform; weights are normalized to sum to 1.
    """
    e = np.atleast_2d(np.asarray(energies, dtype=float))
    w = _weights(weights, e.shape[0])
    n = float(n_electrons)
    capacity = 2.0 * e.shape[1]
    if smearing not in SMEARINGS:
        raise ValueError(f"unknown smearing {smearing!r}; choose one of {SMEARINGS}")
    if n <= 0:
        raise ValueError(f"the electron count must be positive, got {n}")
    if smearing == "none":
        if n > capacity * (1 + 1e-12):
            raise ValueError(f"{n} electrons do not fit in {e.shape[1]} bands")
        return _fermi_level_step(e, w, n)
    if n >= capacity:
        raise ValueError(f"{n} electrons fill all {e.shape[1]} bands: no Fermi level with smearing")
    if width <= 0:
        raise ValueError("a smearing width must be positive")

    def excess(mu: float) -> float:
        return float(w @ (2.0 * _smearing_function((e - mu) / width, smearing)).sum(axis=1)) - n

    # The smearing tails decay within ~40 widths (erfc(x) ~ 1e-16 at x = 8, Fermi-Dirac at x = 37).
    lo = e.min() - 40.0 * width - 1.0
    hi = e.max() + 40.0 * width + 1.0
    return float(brentq(excess, lo, hi, xtol=1e-13, rtol=4 * np.finfo(float).eps, maxiter=500))


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
    asm = _assembler(ham_or_assembler)
    pair = asm.at_real(k)
    h, s = pair if pair is not None else asm.at(k)
    try:
        return ShiftedFactorization(h - energy * s, backend)
    except np.linalg.LinAlgError:
        raise np.linalg.LinAlgError(f"{energy} eV is an eigenvalue at k = {list(k)}; shift it slightly") from None


def sparse_fermi_level(
    ham_or_assembler: RealSpaceHamiltonian | BlochAssembler,
    n_electrons: int | None = None,
    k: Sequence[float] = (0.0, 0.0, 0.0),
    guess: float | None = None,
    step: float = 1.0,
    n_bands: int = 16,
) -> dict[str, float]:
    """Fermi level of a large cell sampled at one k-point (default Γ), without a full diagonalization.

    First one shift-invert window of ``2 n_bands`` levels around the guess, numbered by the count below the guess
    and checked by counts at two gaps of the window around the HOMO and LUMO (three factorizations in all). If
    the guess is too far off or the check fails, for the HOMO (level ``n_electrons/2 - 1``, spin-degenerate
    filling) and then the LUMO: bisect on
    :func:`states_below` until an energy bracket holds that level and at most ``n_bands/2`` levels in all, then
    take the ``n_bands`` levels nearest its middle by shift-invert; their absolute indices follow from the count
    below the middle. Returns ``homo``, ``lumo``, ``fermi_level`` (midway, the convention of :func:`fermi_level`
    without smearing; the partly filled level for an odd count or a degenerate HOMO), all in eV, and the number
    of sparse factorizations made.
    """
    asm = _assembler(ham_or_assembler)
    k = np.asarray(k, dtype=float).reshape(3)
    nel = electron_count(asm.ham) if n_electrons is None else int(n_electrons)
    nocc = (nel + 1) // 2  # levels holding at least one electron
    if not 0 < nocc < asm.norb:
        raise ValueError(f"{nel} electrons in {asm.norb} orbitals leave no HOMO/LUMO")
    nb = max(2, min(n_bands, asm.norb - 2))
    count: dict[float, int] = {}
    levels: dict[int, float] = {}
    made = [0]  # factorizations
    # With PARDISO a factorization also serves the shift-invert run at its shift: the window below is then
    # centred where the last inertia count was taken, and costs no factorization of its own.
    reuse = resolve_backend(real=asm.is_real(k)) == "pardiso"
    kept: dict[float, ShiftedFactorization] = {}

    def below(x: float) -> int:
        if x not in count:
            shift = x
            try:
                factor = shifted_factorization(asm, k, x)
            except np.linalg.LinAlgError:  # x is a level itself: the count just above it is as good a bound
                shift = x + 1e-7
                factor = shifted_factorization(asm, k, shift)
            made[0] += 1
            count[x] = factor.negative
            for old in kept.values():  # one factor at a time: each can take GBs
                old.close()
            kept.clear()
            if reuse and shift == x:
                kept[x] = factor
            else:
                factor.close()
        return count[x]

    def find(t: int, start: float) -> float:
        """Put level t (0-based) into ``levels``; return the upper end of its bracket (not a level)."""
        lo = hi = start
        width = step
        while below(lo) > t:
            lo -= width
            width *= 2
        width = step
        while below(hi) <= t:
            hi += width
            width *= 2
        # below(lo) <= t < below(hi): level t is in [lo, hi). Narrow until few levels are inside, but not below
        # 1e-4 eV: closer to a level the unpivoted LDL^T's inertia is no longer reliable, and levels that close
        # are one (near-degenerate) cluster that the window then takes whole.
        while below(hi) - below(lo) > nb // 2 and hi - lo > 1e-4:
            mid = 0.5 * (lo + hi)
            if below(mid) <= t:
                lo = mid
            else:
                hi = mid
        mid = 0.5 * (lo + hi)
        c, inside = below(lo), below(hi) - below(lo)
        if reuse:
            below(mid)  # its factor then makes the window's solves
        size = min(max(nb, inside + 2), asm.norb - 2)
        # Single-vector Lanczos finds the copies of a degenerate level only through rounding and can miss one
        # (seen once in CI: a 4-fold Dirac level came back as 3 copies and a spurious Ritz value). The inertia
        # counts say how many levels lie in [lo, hi): accept a window only when it holds exactly that many there.
        for attempt in range(4):
            window = np.sort(_sparse_eigs(asm, k, mid, size, False, seed=attempt, factor=kept.get(mid))[0])
            made[0] += mid not in kept
            found = window[(window >= lo) & (window < hi)]
            if len(found) == inside:
                break
            size = min(size + max(2, inside), asm.norb - 2)
        else:
            raise np.linalg.LinAlgError(
                f"the sparse eigensolver found {len(found)} levels in [{lo:.6f}, {hi:.6f}) eV where the inertia "
                f"count says {inside}; use the dense path (sparse=False) for this cell")
        # Only the counted levels are numbered: levels of the window outside [lo, hi) may miss degenerate copies.
        levels.update({c + n: float(x) for n, x in enumerate(found)})
        return hi

    # A round guess (0 eV, a symmetric model's Fermi level) is often a level itself, where the shifted matrix is
    # singular; start a little off it.
    if guess is None:  # the cell's own Fermi level (data), else the model's training median, else 0 eV
        meta = asm.ham.meta
        guess = next((meta[key] for key in ("fermi_level_ev", "fermi_level_guess_ev") if meta.get(key) is not None),
                     0.0)
    start = float(guess) + 1.234567e-3 * step

    def first_window(x: float) -> bool:
        """One window of levels around x, numbered from the count below x and accepted only when counts at gaps
        of the window beyond the HOMO and the LUMO confirm it: three factorizations when the guess is good."""
        c = below(x)
        # Twice the bands: a supercell's folded levels come in clusters of 6 or 12 (graphene), and the window must
        # reach past the HOMO's and the LUMO's clusters on both sides.
        w = np.sort(_sparse_eigs(asm, k, x, min(2 * nb, asm.norb - 2), False, factor=kept.get(x))[0])
        made[0] += x not in kept
        first = c - int((w < x).sum())  # the window's levels would be first, first + 1, ... if none is missing
        p, q = nocc - 1 - first, nocc - first  # where the HOMO and the LUMO would sit in it
        gap = 2e-4  # bounds closer to a level than 1e-4 eV are not trusted (see find)
        while 1 <= p <= len(w) - 1 and w[p] - w[p - 1] <= gap:
            p -= 1
        while 0 <= q <= len(w) - 2 and w[q + 1] - w[q] <= gap:
            q += 1
        if not (1 <= p <= q <= len(w) - 2):
            return False
        lo, hi = 0.5 * (w[p - 1] + w[p]), 0.5 * (w[q] + w[q + 1])
        if below(lo) != first + p or below(hi) - below(lo) != q - p + 1:
            return False
        levels.update({first + n: float(w[n]) for n in range(p, q + 1)})
        return True

    try:
        if not first_window(start):
            upper = find(nocc - 1, start)
            if nocc not in levels:
                find(nocc, upper)
    finally:
        for old in kept.values():
            old.close()
    homo, lumo = levels[nocc - 1], levels[nocc]
    degenerate = nel % 2 == 1 or abs(lumo - homo) <= _DEGENERACY_TOL
    ef = homo if degenerate else 0.5 * (homo + lumo)
    return {"fermi_level": ef, "homo": homo, "lumo": lumo, "factorizations": made[0]}


def _fermi_level_step(e: np.ndarray, w: np.ndarray, n: float) -> float:
    flat = e.ravel()
    wt = 2.0 * np.broadcast_to(w[:, None], e.shape).ravel()
    order = np.argsort(flat, kind="stable")
    levels, wt = flat[order], wt[order]
    cum = np.cumsum(wt)
    tol = 1e-9 * max(1.0, n)
    last = int(np.searchsorted(cum, n - tol))  # first level at which the count reaches n
    last = min(last, len(levels) - 1)
    top = levels[last]
    # Levels degenerate with the one that completes the count belong to the same (possibly shared) level.
    same = np.abs(levels - top) <= _DEGENERACY_TOL
    upto = int(np.nonzero(same)[0].max())
    if abs(cum[upto] - n) <= tol and upto + 1 < len(levels):
        return float(0.5 * (top + levels[upto + 1]))  # integer filling: mid-gap
    return float(top)


# -- band gap ---------------------------------------------------------------------------------------------------
def band_gap(energies: np.ndarray, kpts: Any, fermi: float) -> dict[str, Any]:
    """Band gap around the Fermi level ``fermi`` (eV).

    Returns ``gap``, ``direct`` (VBM and CBM at the same k), ``vbm``, ``cbm``, ``k_vbm``, ``k_cbm`` and
    ``direct_gap`` (smallest gap at one k) plus ``metal``. A band with levels on both sides of E_F (it crosses
    E_F), or bands that touch at E_F, make it a metal: gap and direct_gap are 0.
    """
    e = np.atleast_2d(np.asarray(energies, dtype=float))
    kpts = _kpts(kpts)
    if len(kpts) != e.shape[0]:
        raise ValueError(f"{len(kpts)} k-points for {e.shape[0]} rows of energies")
    occ = e <= fermi + _DEGENERACY_TOL
    if not occ.any() or occ.all():
        raise ValueError("the energies need levels on both sides of the Fermi level to define a gap")
    flat_occ = np.where(occ, e, -np.inf)
    flat_emp = np.where(occ, np.inf, e)
    iv = np.unravel_index(np.argmax(flat_occ), e.shape)
    ic = np.unravel_index(np.argmin(flat_emp), e.shape)
    vbm, cbm = float(e[iv]), float(e[ic])
    crossing = bool((occ.any(axis=0) & (~occ).any(axis=0)).any())
    per_k = flat_emp.min(axis=1) - flat_occ.max(axis=1)  # inf where a k-point has no level on one side
    out: dict[str, Any] = {"vbm": vbm, "cbm": cbm, "k_vbm": kpts[iv[0]].copy(), "k_cbm": kpts[ic[0]].copy()}
    if crossing or cbm - vbm <= _DEGENERACY_TOL:
        out.update(gap=0.0, direct_gap=0.0, direct=False, metal=True)
        return out
    gap = cbm - vbm
    kd = int(np.argmin(per_k))
    direct_gap = float(per_k[kd])
    direct = bool(direct_gap - gap <= 1e-9 * max(1.0, abs(gap)))
    if direct:  # VBM and CBM may be reached at several k; report one k where both are
        out["k_vbm"] = kpts[kd].copy()
        out["k_cbm"] = kpts[kd].copy()
    out.update(gap=float(gap), direct_gap=direct_gap, direct=direct, metal=False)
    return out


# -- density of states ------------------------------------------------------------------------------------------
def _broadening(x: np.ndarray, width: float, kind: str) -> np.ndarray:
    """Normalized line shape (1/eV) at distance x (eV)."""
    if width <= 0:
        raise ValueError("the DOS width must be positive")
    if kind == "gaussian":
        return np.exp(-0.5 * (x / width) ** 2) / (width * np.sqrt(2 * np.pi))
    if kind == "lorentzian":
        return (width / np.pi) / (x**2 + width**2)
    raise ValueError(f"unknown broadening {kind!r}; choose 'gaussian' or 'lorentzian'")


#: Most line-shape values (grid points x levels) evaluated at once: 2 M floats, 16 MB. Evaluating them takes about
#: three temporaries of this size, so a DOS peaks near 50 MB above its inputs whatever the k-mesh (a dense
#: (grid x all levels) matrix took 10.9 GB for 2-atom graphene on a 200x200 mesh).
DOS_CHUNK = 1 << 21


def _weighted_dos(e: np.ndarray, wk: np.ndarray, amp: np.ndarray, grid: np.ndarray, width: float,
                  kind: str, chunk: int | None = None) -> np.ndarray:
    """Σ_k w_k Σ_n 2 amp_kn L(E - e_kn) for amp (..., nk, nb) -> (..., len(grid)).

    Levels (and, for a grid longer than ``chunk``, grid points) are taken in blocks of at most ``chunk`` line-shape
    values (default :data:`DOS_CHUNK`); a call that fits one block computes exactly the unblocked formula.
    """
    chunk = max(1, int(DOS_CHUNK if chunk is None else chunk))
    _broadening(np.zeros(1), width, kind)  # checks width and kind even with no levels
    levels = e.ravel()
    nb = amp.shape[-1]
    amp = amp.reshape(amp.shape[:-2] + (-1,))  # (..., levels), level l at k-point l // nb
    out = np.zeros(amp.shape[:-1] + (len(grid),))
    grid_step = max(1, min(len(grid), chunk))
    level_step = max(1, chunk // grid_step)
    for l0 in range(0, len(levels), level_step):
        l1 = min(l0 + level_step, len(levels))
        # 2 amp w_k per level, made per block: a copy of all of amp would grow with the mesh
        a = 2.0 * amp[..., l0:l1] * wk[np.arange(l0, l1) // nb]
        for g0 in range(0, len(grid), grid_step):
            g1 = g0 + grid_step
            shape = _broadening(grid[g0:g1, None] - levels[None, l0:l1], width, kind)  # (grid block, level block)
            out[..., g0:g1] += a @ shape.T
    return out


def dos(energies: np.ndarray, weights: Any, grid: Any, width: float = 0.1, kind: str = "gaussian") -> np.ndarray:
    """Total density of states (states/eV per cell, both spins) on ``grid``; integrates to 2 x nbands."""
    e = np.atleast_2d(np.asarray(energies, dtype=float))
    wk = _weights(weights, e.shape[0])
    return _weighted_dos(e, wk, np.ones_like(e), np.asarray(grid, dtype=float), width, kind)


def mulliken_weights(solution: KSolution, ham_or_assembler: RealSpaceHamiltonian | BlochAssembler
                     ) -> list[np.ndarray]:
    """Per k, the ``(norb, nbands)`` Mulliken weight ``Re[c_mu* (S(k) c)_mu]`` of band n on orbital mu; each
    column sums to ``c^H S c = 1``."""
    if solution.vectors is None:
        raise ValueError("Mulliken projections need the coefficients: call solve_k(..., vectors=True)")
    asm = _assembler(ham_or_assembler)
    out = []
    for k, c in zip(solution.kpts, solution.vectors):
        _, s = asm.at(k)
        out.append(np.real(c.conj() * (s @ c)))
    return out


def _orbital_groups(ham: RealSpaceHamiltonian, by: str) -> tuple[list[Any], np.ndarray]:
    """Group label per orbital of the cell: (labels, index into labels for each orbital)."""
    letters = "spdfghik"
    per_orb: list[Any] = []
    for a, z in enumerate(ham.atoms.numbers):
        sym = symbol_of(int(z))
        for l in ham.basis.shells_of(sym):
            for _ in range(2 * l + 1):
                if by == "atom":
                    per_orb.append(a)
                elif by == "element":
                    per_orb.append(sym)
                elif by == "l":
                    per_orb.append(letters[l] if l < len(letters) else f"l{l}")
                else:
                    raise ValueError(f"unknown projection {by!r}; choose 'atom', 'element' or 'l'")
    labels = list(dict.fromkeys(per_orb))  # first-seen order
    lookup = {lab: n for n, lab in enumerate(labels)}
    return labels, np.array([lookup[p] for p in per_orb], dtype=np.int64)


def projected_dos(
    solution: KSolution,
    ham: RealSpaceHamiltonian | BlochAssembler,
    grid: Any,
    width: float = 0.1,
    by: str = "atom",
    kind: str = "gaussian",
) -> dict[Any, np.ndarray]:
    """Mulliken-projected DOS (states/eV, both spins) on ``grid``, keyed by atom index, element symbol or l
    letter (``by="atom" | "element" | "l"``). The groups add up to :func:`dos` of the same solution."""
    asm = _assembler(ham)
    labels, group = _orbital_groups(asm.ham, by)
    mw = mulliken_weights(solution, asm)
    # amp[g, k, n]: weight of band n at k on group g.
    amp = np.stack([np.stack([np.bincount(group, weights=m[:, n], minlength=len(labels))
                              for n in range(m.shape[1])], axis=1) for m in mw], axis=1)
    pd = _weighted_dos(solution.energies, solution.weights, amp, np.asarray(grid, dtype=float), width, kind)
    return {lab: pd[g] for g, lab in enumerate(labels)}


def density_matrices(
    ham_or_assembler: RealSpaceHamiltonian | BlochAssembler,
    kpts: Any,
    smearing: str = "fermi-dirac",
    width: float = 0.05,
    n_electrons: float | None = None,
    lindep: float = LINDEP_THRESHOLD,
) -> tuple[np.ndarray, float]:
    """Density matrices ``D(k) = sum_n f_kn c_kn c_kn^H`` (e3nn order, complex, ``(nk, norb, norb)``) on the
    k-points ``kpts`` (uniform weights: a full mesh), and the Fermi level (eV) that fills them.

    Occupations ``f`` (0..2) use ``smearing``/``width`` with the Fermi level that holds ``n_electrons`` per cell
    (default :func:`electron_count`). In the convention of PySCF's ``make_rdm1`` for k-point SCF, the density
    is ``(1/Nk) sum_k D(k)`` and the electron count per cell is ``(1/Nk) sum_k tr(D(k) S(k))``.
    """
    asm = _assembler(ham_or_assembler)
    sol = solve_k(asm, kpts, lindep=lindep, vectors=True, sparse=False)
    nel = electron_count(asm.ham) if n_electrons is None else n_electrons
    mu = fermi_level(sol.energies, sol.weights, nel, smearing, width)
    occ = occupations(sol.energies, mu, smearing, width, sol.weights, nel)
    dms = np.array([(c * f) @ c.conj().T for c, f in zip(sol.vectors, occ)])
    return dms, float(mu)


# -- molecules --------------------------------------------------------------------------------------------------
def molecular_orbitals(ham: RealSpaceHamiltonian, lindep: float = LINDEP_THRESHOLD) -> dict[str, Any]:
    """Molecular orbitals of a molecule (only R = 0 edges), in real arithmetic.

    Returns ``energies`` (eV), ``coefficients`` (norb, nmo), ``occupations`` (aufbau, 2 per orbital, a single
    electron in the last one for an odd count), ``homo``, ``lumo``, ``gap`` (None without a LUMO),
    ``homo_index``, ``n_electrons`` and the density matrix ``density_matrix = Σ_i occ_i c_i c_i^T``
    (``trace(D S) = N``).
    """
    if (ham.edges[:, :3] != 0).any():
        raise StructureError("molecular_orbitals needs a molecule: the Hamiltonian has edges to other cells")
    n = ham.norb
    off = ham.offsets
    h = np.zeros((n, n))
    s = np.zeros((n, n))
    for (_, _, _, i, j), hb, sb in zip(ham.edges, ham.hamiltonian, ham.overlap):
        h[off[i]:off[i + 1], off[j]:off[j + 1]] += np.real(hb)
        s[off[i]:off[i + 1], off[j]:off[j + 1]] += np.real(sb)
    e, c = generalized_eigh(h, s, lindep)
    nel = electron_count(ham)
    if nel > 2 * len(e):
        raise ValueError(f"{nel} electrons do not fit in {len(e)} molecular orbitals")
    occ = np.zeros(len(e))
    occ[: nel // 2] = 2.0
    if nel % 2:
        occ[nel // 2] = 1.0
    homo_index = int(np.nonzero(occ)[0].max()) if nel else None
    lumo_index = int(np.nonzero(occ == 0)[0].min()) if (occ == 0).any() else None
    homo = float(e[homo_index]) if homo_index is not None else None
    lumo = float(e[lumo_index]) if lumo_index is not None else None
    d = (c * occ) @ c.T
    return {
        "energies": e,
        "coefficients": c,
        "occupations": occ,
        "homo": homo,
        "lumo": lumo,
        "gap": (lumo - homo) if homo is not None and lumo is not None else None,
        "homo_index": homo_index,
        "n_electrons": nel,
        "density_matrix": d,
        "overlap": s,
    }
