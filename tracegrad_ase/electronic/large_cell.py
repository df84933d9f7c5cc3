"""Fermi level of a large cell without a full diagonalization: inertia counts and shift-invert windows.

A level's index is known from the inertia of ``H - x S`` (:func:`~tracegrad_ase.electronic.solve.states_below`),
its energy from a shift-invert window near x. :class:`SparseFermiSearch` keeps the counts, the levels found and
the factorizations made; :func:`sparse_fermi_level` is the one call the calculator makes.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.hamiltonian import RealSpaceHamiltonian
from . import solve
from .bloch import BlochAssembler, as_assembler
from .filling import DEGENERACY_TOL, SPIN_DEGENERACY, electron_count
from .sparse_factor import ShiftedFactorization, resolve_backend

__all__ = ["SparseFermiSearch", "sparse_fermi_level"]


class SparseFermiSearch:
    """State of one search at one k-point: inertia counts by energy, levels by index, factorizations made.

    With PARDISO a factorization also serves the shift-invert run at its shift (``reuse``): a window is then
    centred where the last inertia count was taken and costs no factorization of its own. One factor is kept at
    a time: each can take GBs.
    """

    def __init__(self, asm: BlochAssembler, k: np.ndarray, n_bands: int, step: float) -> None:
        self.asm, self.k, self.step = asm, k, step
        self.nb = max(2, min(n_bands, asm.norb - 2))
        self.count: dict[float, int] = {}
        self.levels: dict[int, float] = {}
        self.made = 0  # factorizations
        self.reuse = resolve_backend(real=asm.is_real(k)) == "pardiso"
        self.kept: dict[float, ShiftedFactorization] = {}

    def close(self) -> None:
        for old in self.kept.values():
            old.close()
        self.kept.clear()

    def below(self, x: float) -> int:
        """Levels below x (one factorization the first time x is asked for)."""
        if x not in self.count:
            shift = x
            try:
                factor = solve.shifted_factorization(self.asm, self.k, x)
            except np.linalg.LinAlgError:  # x is a level itself: the count just above it is as good a bound
                shift = x + 1e-7
                factor = solve.shifted_factorization(self.asm, self.k, shift)
            self.made += 1
            self.count[x] = factor.negative
            self.close()
            if self.reuse and shift == x:
                self.kept[x] = factor
            else:
                factor.close()
        return self.count[x]

    def _window(self, x: float, size: int, seed: int = 0) -> np.ndarray:
        """The ``size`` levels nearest x, sorted (a kept factorization at x makes the solves)."""
        w = np.sort(solve.sparse_eigs(self.asm, self.k, x, size, False, seed=seed, factor=self.kept.get(x))[0])
        self.made += x not in self.kept
        return w

    def _bracket(self, t: int, start: float) -> tuple[float, float]:
        """[lo, hi) holding level t (0-based) and at most nb/2 levels, or levels closer than 1e-4 eV."""
        lo = hi = start
        width = self.step
        while self.below(lo) > t:
            lo -= width
            width *= 2
        width = self.step
        while self.below(hi) <= t:
            hi += width
            width *= 2
        # below(lo) <= t < below(hi): level t is in [lo, hi). Narrow until few levels are inside, but not below
        # 1e-4 eV: closer to a level the unpivoted LDL^T's inertia is no longer reliable, and levels that close
        # are one (near-degenerate) cluster that the window then takes whole.
        while self.below(hi) - self.below(lo) > self.nb // 2 and hi - lo > 1e-4:
            mid = 0.5 * (lo + hi)
            if self.below(mid) <= t:
                lo = mid
            else:
                hi = mid
        return lo, hi

    def find(self, t: int, start: float) -> float:
        """Put level t (0-based) into ``levels``; return the upper end of its bracket (not a level)."""
        lo, hi = self._bracket(t, start)
        mid = 0.5 * (lo + hi)
        c, inside = self.below(lo), self.below(hi) - self.below(lo)
        if self.reuse:
            self.below(mid)  # its factor then makes the window's solves
        size = min(max(self.nb, inside + 2), self.asm.norb - 2)
        # Single-vector Lanczos finds the copies of a degenerate level only through rounding and can miss one
        # (seen once in CI: a 4-fold Dirac level came back as 3 copies and a spurious Ritz value). The inertia
        # counts say how many levels lie in [lo, hi): accept a window only when it holds exactly that many there.
        for attempt in range(4):
            window = self._window(mid, size, seed=attempt)
            found = window[(window >= lo) & (window < hi)]
            if len(found) == inside:
                break
            size = min(size + max(2, inside), self.asm.norb - 2)
        else:
            raise np.linalg.LinAlgError(
                f"the sparse eigensolver found {len(found)} levels in [{lo:.6f}, {hi:.6f}) eV where the inertia "
                f"count says {inside}; use the dense path (sparse=False) for this cell")
        # Only the counted levels are numbered: levels of the window outside [lo, hi) may miss degenerate copies.
        self.levels.update({c + n: float(x) for n, x in enumerate(found)})
        return hi

    def first_window(self, x: float, nocc: int) -> bool:
        """One window of levels around x, numbered from the count below x and accepted only when counts at gaps
        of the window beyond the HOMO and the LUMO confirm it: three factorizations when the guess is good."""
        c = self.below(x)
        # Twice the bands: a supercell's folded levels come in clusters of 6 or 12 (graphene), and the window must
        # reach past the HOMO's and the LUMO's clusters on both sides.
        w = self._window(x, min(2 * self.nb, self.asm.norb - 2))
        first = c - int((w < x).sum())  # the window's levels would be first, first + 1, ... if none is missing
        p, q = nocc - 1 - first, nocc - first  # where the HOMO and the LUMO would sit in it
        gap = 2e-4  # bounds closer to a level than 1e-4 eV are not trusted (see _bracket)
        while 1 <= p <= len(w) - 1 and w[p] - w[p - 1] <= gap:
            p -= 1
        while 0 <= q <= len(w) - 2 and w[q + 1] - w[q] <= gap:
            q += 1
        if not (1 <= p <= q <= len(w) - 2):
            return False
        lo, hi = 0.5 * (w[p - 1] + w[p]), 0.5 * (w[q] + w[q + 1])
        if self.below(lo) != first + p or self.below(hi) - self.below(lo) != q - p + 1:
            return False
        self.levels.update({first + n: float(w[n]) for n in range(p, q + 1)})
        return True


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
    the guess is too far off or the check fails, for the HOMO (the last level holding an electron) and then the
    LUMO: bisect on :func:`~tracegrad_ase.electronic.solve.states_below` until an energy bracket holds that level
    and at most ``n_bands/2`` levels in all, then take the ``n_bands`` levels nearest its middle by shift-invert;
    their absolute indices follow from the count below the middle. Returns ``homo``, ``lumo``, ``fermi_level``
    (midway, the convention of :func:`~tracegrad_ase.electronic.filling.fermi_level` without smearing; the partly
    filled level for an odd count or a degenerate HOMO), all in eV, and the number of sparse factorizations made.
    """
    asm = as_assembler(ham_or_assembler)
    k = np.asarray(k, dtype=float).reshape(3)
    nel = electron_count(asm.ham) if n_electrons is None else int(n_electrons)
    nocc = -(-nel // SPIN_DEGENERACY)  # levels holding at least one electron
    if not 0 < nocc < asm.norb:
        raise ValueError(f"{nel} electrons in {asm.norb} orbitals leave no HOMO/LUMO")
    search = SparseFermiSearch(asm, k, n_bands, step)
    # A round guess (0 eV, a symmetric model's Fermi level) is often a level itself, where the shifted matrix is
    # singular; start a little off it.
    if guess is None:  # the cell's own Fermi level (data), else the model's training median, else 0 eV
        meta = asm.ham.meta
        guess = next((meta[key] for key in ("fermi_level_ev", "fermi_level_guess_ev") if meta.get(key) is not None),
                     0.0)
    start = float(guess) + 1.234567e-3 * step
    try:
        if not search.first_window(start, nocc):
            upper = search.find(nocc - 1, start)
            if nocc not in search.levels:
                search.find(nocc, upper)
    finally:
        search.close()
    homo, lumo = search.levels[nocc - 1], search.levels[nocc]
    degenerate = nel % SPIN_DEGENERACY == 1 or abs(lumo - homo) <= DEGENERACY_TOL
    ef = homo if degenerate else 0.5 * (homo + lumo)
    return {"fermi_level": ef, "homo": homo, "lumo": lumo, "factorizations": search.made}
