"""Sparse factorizations of shifted Hamiltonians ``A = H - sigma S`` for large cells: the inertia of ``A`` (how
many levels lie below ``sigma``, Sylvester's law with S positive definite) and solves with ``A`` (shift-invert).

Two backends, chosen per matrix by ``backend`` or the ``TRACEGRAD_SPARSE_BACKEND`` environment variable
(``auto``, ``pardiso``, ``superlu``):

- ``pardiso``: Intel MKL PARDISO through the optional ``pypardiso`` package (``pip install
  "tracegrad-ase[large]"``), a supernodal LDLᵀ with Bunch-Kaufman pivots and BLAS-3 kernels, real symmetric
  matrices only (Γ and other real k-points). On 968-atom gth-dzvp graphene (12,584 orbitals, 1.8e7 non-zeros)
  one factorization takes 10 s against SuperLU's ~50 s (one thread).
- ``superlu``: SciPy's SuperLU in symmetric mode (diagonal pivots only, so ``A = L D Lᴴ`` and the inertia is
  the signs of ``D``), always available, real or complex.

``auto`` takes PARDISO for real matrices when it can be loaded, else SuperLU. No torch here.
"""

from __future__ import annotations

import ctypes
import glob
import os
import site
import sys
from functools import lru_cache

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

__all__ = ["BACKENDS", "ShiftedFactorization", "pardiso_available", "resolve_backend"]

BACKENDS = ("auto", "pardiso", "superlu")
ENV_VAR = "TRACEGRAD_SPARSE_BACKEND"


@lru_cache(maxsize=1)
def pardiso_available() -> bool:
    """Whether MKL PARDISO (``pypardiso`` and its MKL runtime) can be loaded."""
    try:
        _pardiso_solver()
    except (ImportError, OSError):
        return False
    return True


@lru_cache(maxsize=1)
def _point_pypardiso_at_mkl() -> None:
    # pypardiso looks for MKL's runtime on every solver it makes, by find_library and then a recursive glob of
    # the environment (seconds per factorization); the pip wheel puts it in <prefix>/lib, so look there once.
    if os.environ.get("PYPARDISO_MKL_RT"):
        return
    for base in (sys.prefix, site.getuserbase()):
        hits = sorted(glob.glob(os.path.join(base, "lib", "libmkl_rt.so*")) +
                      glob.glob(os.path.join(base, "lib", "libmkl_rt*.dylib")), key=len)
        if hits:
            os.environ["PYPARDISO_MKL_RT"] = hits[0]
            return


def _pardiso_solver():
    # PySCF and torch bring GNU OpenMP; MKL's own (Intel) OpenMP beside it in one process can oversubscribe or
    # crash, so MKL is asked to thread through GNU OpenMP (read when mkl_rt loads; a user's choice is kept).
    os.environ.setdefault("MKL_THREADING_LAYER", "GNU")
    from pypardiso import PyPardisoSolver

    _point_pypardiso_at_mkl()
    solver = PyPardisoSolver(mtype=-2)  # real symmetric indefinite
    solver.set_statistical_info_off()
    return solver


def resolve_backend(backend: str | None = None, real: bool = True) -> str:
    """The backend a factorization would use: ``backend``, else ``$TRACEGRAD_SPARSE_BACKEND``, else ``auto``
    (PARDISO for real matrices where it loads, SuperLU otherwise)."""
    backend = (backend or os.environ.get(ENV_VAR) or "auto").lower()
    if backend not in BACKENDS:
        raise ValueError(f"unknown sparse backend {backend!r} (choose from {', '.join(BACKENDS)})")
    if backend == "pardiso" and not real:
        raise ValueError("the pardiso backend handles real matrices only (Γ or other real k-points)")
    if backend == "auto":
        return "pardiso" if real and pardiso_available() else "superlu"
    return backend


class ShiftedFactorization:
    """One factorization of the symmetric (Hermitian) sparse matrix ``a``; ``negative`` is its count of
    negative eigenvalues. Raises :class:`numpy.linalg.LinAlgError` when ``a`` is (numerically) singular, i.e.
    the shift is an eigenvalue: shift it slightly."""

    def __init__(self, a: sp.spmatrix, backend: str | None = None):
        self.backend = backend = resolve_backend(backend, real=not np.iscomplexobj(a.data))
        self.shape = a.shape
        if backend == "pardiso":
            self._factor_pardiso(a)
        else:
            self._factor_superlu(a)

    def _factor_pardiso(self, a: sp.spmatrix) -> None:
        self._solver = _pardiso_solver()
        # PARDISO reads the upper triangle of a symmetric matrix, rows sorted.
        self._upper = sp.triu(a, format="csr").astype(np.float64)
        self._upper.sort_indices()
        try:
            self._solver.factorize(self._upper)
        except Exception as exc:  # pypardiso.PyPardisoError: e.g. a zero pivot
            self.close()
            raise np.linalg.LinAlgError(f"PARDISO could not factor the shifted matrix ({exc}); shift it slightly") \
                from None
        # pypardiso keeps a copy of the matrix to recognise it in solve(), which solve() below bypasses: drop it
        # (the size of A again: ~1 GB for 10,000 gth-dzvp atoms).
        self._solver.remove_stored_factorization()
        if self._solver.get_iparm(14):  # perturbed pivots: A is singular to working precision here
            self.close()
            raise np.linalg.LinAlgError("the shifted matrix is singular (perturbed pivots); shift it slightly")
        self.negative = int(self._solver.get_iparm(23))
        positive = int(self._solver.get_iparm(22))
        if positive + self.negative != a.shape[0]:  # pragma: no cover - zero pivots
            self.close()
            raise np.linalg.LinAlgError("the shifted matrix is singular; shift it slightly")

    def _factor_superlu(self, a: sp.spmatrix) -> None:
        try:
            lu = spla.splu(a.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                           options={"SymmetricMode": True})
        except RuntimeError as exc:  # SuperLU: "Factor is exactly singular"
            raise np.linalg.LinAlgError(f"the shifted matrix is singular ({exc}); shift it slightly") from None
        if not np.array_equal(lu.perm_r, lu.perm_c):  # pragma: no cover - SuperLU pivoted off the diagonal
            raise np.linalg.LinAlgError("the factorization pivoted off the diagonal; the inertia count is not valid")
        d = lu.U.diagonal().real
        if (d == 0).any():  # pragma: no cover - SuperLU raises first
            raise np.linalg.LinAlgError("the shifted matrix is singular; shift it slightly")
        self._lu = lu
        self.negative = int((d < 0).sum())

    @property
    def solves(self) -> bool:
        """Whether :meth:`solve` is stable enough for shift-invert. SuperLU's diagonal-pivot factorization (made
        for the inertia) is not, close to a level; there ARPACK makes its own pivoted LU instead."""
        return self.backend == "pardiso"

    def solve(self, b: np.ndarray) -> np.ndarray:
        """``a^-1 b``."""
        if self.backend == "pardiso":
            # Straight to the solve phase: pypardiso's solve() first compares (or hashes) the whole matrix with
            # the factored one, on every call of a Lanczos run.
            # One thread: a single right-hand side is memory-bound, and waking MKL's threads for each of a Lanczos
            # run's ~100 solves made them 3-4x slower (measured, 7,200 orbitals).
            mkl = self._solver.libmkl
            previous = mkl.MKL_Set_Num_Threads_Local(ctypes.c_int(1))
            try:
                self._solver.set_phase(33)
                return self._solver._call_pardiso(self._upper, np.asfortranarray(b, dtype=np.float64))
            finally:
                mkl.MKL_Set_Num_Threads_Local(ctypes.c_int(previous))
        return self._lu.solve(b)

    def operator(self) -> spla.LinearOperator:
        """``a^-1`` as a :class:`~scipy.sparse.linalg.LinearOperator` (``OPinv`` of :func:`~scipy.sparse.linalg.eigsh`)."""
        return spla.LinearOperator(self.shape, matvec=self.solve, dtype=np.float64 if self.backend == "pardiso"
                                   else self._lu.U.dtype)

    def close(self) -> None:
        """Free the factor's memory now (PARDISO holds it outside Python's reach)."""
        if self.backend == "pardiso" and getattr(self, "_solver", None) is not None:
            self._solver.free_memory(everything=True)
            self._solver = None
