"""Fat bands: Mulliken weights of each band at each k on orbitals, summed by element, l or single orbital.

``w_{n,mu}(k) = Re[c*_{mu n} (S(k) c)_{mu n}]`` with the S(k)-orthonormal coefficients of
:func:`~tracegrad_ase.electronic.solve.solve_k` (canonical orthogonalization with the caller's ``lindep``,
the solver's own handling of linear dependence: the kept directions still give ``c^H S c = 1``), so a band's
weights over all orbitals sum to 1. Weights can be slightly negative or above 1 (Mulliken's split of overlap
charge), as in any Mulliken analysis.

Per orbital, the internal e3nn order mixes the m components of d and f shells, so the coefficients and S(k) are
first taken to core.basis' ``"sisl"`` order (m = -l..l, for which :data:`ORBITAL_NAMES` gives pymatgen's names):
one orthogonal map per atom, which leaves per-shell (and per-l, per-element) sums unchanged. Energies eV.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from ..core.basis import symbol_of
from ..core.errors import ParameterError
from ..core.hamiltonian import RealSpaceHamiltonian
from .bloch import BlochAssembler, as_assembler
from .solve import LINDEP_THRESHOLD, KSolution, solve_k

__all__ = ["ORBITAL_NAMES", "ORBITAL_ORDER", "OrbitalInfo", "band_projections", "check_projection", "matches",
           "orbital_table", "orbital_weights", "parse_projection", "projected_weights", "split_projection"]

#: The basis order (core.basis) the per-orbital weights are given in: m = -l..l per shell.
ORBITAL_ORDER = "sisl"

#: Names of the 2l+1 components in that order (pymatgen's ``Orbital`` names; f as m = -3..3).
ORBITAL_NAMES: dict[int, tuple[str, ...]] = {
    0: ("s",),
    1: ("py", "pz", "px"),
    2: ("dxy", "dyz", "dz2", "dxz", "dx2-y2"),
    3: ("f-3", "f-2", "f-1", "f0", "f1", "f2", "f3"),
}
_LETTERS = "spdfghik"


@dataclass(frozen=True)
class OrbitalInfo:
    """One orbital of the cell in :data:`ORBITAL_ORDER`: its atom, element, shell, l, m and name."""

    atom: int
    element: str
    shell: int
    l: int
    m: int

    @property
    def name(self) -> str:
        return _names(self.l)[self.m + self.l]


def orbital_table(ham: RealSpaceHamiltonian) -> list[OrbitalInfo]:
    """Every orbital of the cell, in the order of the rows of :func:`orbital_weights`."""
    out = []
    for a, z in enumerate(ham.atoms.numbers):
        sym = symbol_of(int(z))
        for shell, l in enumerate(ham.basis.shells_of(sym)):
            out += [OrbitalInfo(a, sym, shell, l, m) for m in range(-l, l + 1)]
    return out


def _order_map(ham: RealSpaceHamiltonian) -> sp.csr_matrix:
    """Block-diagonal map from e3nn to :data:`ORBITAL_ORDER`, one block per atom (sparse for large cells)."""
    basis = ham.basis
    return sp.block_diag([basis.transform(int(z), "e3nn", ORBITAL_ORDER) for z in ham.atoms.numbers], format="csr")


def orbital_weights(solution: KSolution, ham_or_assembler: RealSpaceHamiltonian | BlochAssembler) -> np.ndarray:
    """(nk, nbands, norb) Mulliken weights ``Re[c*_mu (S c)_mu]`` in :data:`ORBITAL_ORDER` (rows of
    :func:`orbital_table`); each band's weights sum to ``c^H S c = 1``."""
    if solution.vectors is None:
        raise ValueError("Mulliken projections need the coefficients: call solve_k(..., vectors=True)")
    asm = as_assembler(ham_or_assembler)
    t = _order_map(asm.ham)
    out = np.empty((solution.nkpts, solution.nbands, asm.norb))
    for n, (k, c) in enumerate(zip(solution.kpts, solution.vectors)):
        _, s = asm.at(k)
        out[n] = np.real(np.conj(t @ c) * (t @ (s @ c))).T
    return out


def band_projections(ham_or_assembler: RealSpaceHamiltonian | BlochAssembler, kpts: Any,
                     lindep: float = LINDEP_THRESHOLD) -> tuple[KSolution, np.ndarray]:
    """All bands at ``kpts`` (dense solver, the same ``lindep`` handling as the band energies) and their
    :func:`orbital_weights`. Use ``PREDICTED_LINDEP`` for a predicted Hamiltonian, as the calculator does."""
    asm = as_assembler(ham_or_assembler)
    sol = solve_k(asm, kpts, lindep=lindep, vectors=True, sparse=False)
    return sol, orbital_weights(sol, asm)


def split_projection(spec: str) -> tuple[str, tuple[str, ...]]:
    """``"C:px+py"`` -> ``("C", ("px", "py"))``; ``"C"`` -> ``("C", ())`` (the whole element). The one syntax of
    projection names, shared with :mod:`tracegrad_ase.interop.projected_bands` and the CLI."""
    element, colon, what = str(spec).strip().partition(":")
    parts = tuple(p.strip() for p in what.split("+")) if colon else ()
    if not element or any(not p for p in parts):
        raise ParameterError(f"projection {spec!r}: write Element, Element:l or Element:orbital "
                             "(C, C:p, C:pz, C:px+py)")
    return element, parts


def matches(part: str, l: int, name: str) -> bool:
    """Whether orbital ``name`` (angular momentum ``l``) is meant by ``part``: its name or its l letter."""
    return part == name or part == _LETTERS[l]


def _names(l: int) -> tuple[str, ...]:
    return ORBITAL_NAMES.get(l) or tuple(f"{_LETTERS[l]}{m}" for m in range(-l, l + 1))


def check_projection(spec: str, shells: Mapping[str, Sequence[int]]) -> None:
    """Refuse ``spec`` unless its element is in ``shells`` (element -> shell l's) and its orbitals exist there."""
    element, parts = split_projection(spec)
    if element not in shells:
        raise ParameterError(f"projection {spec!r}: no {element!r} in the structure "
                             f"(it has {', '.join(sorted(shells))})")
    have = [(l, name) for l in sorted(set(shells[element])) for name in _names(l)]
    for part in parts:
        if not any(matches(part, l, name) for l, name in have):
            names = list(dict.fromkeys(n for l, name in have for n in (_LETTERS[l], name)))
            raise ParameterError(f"projection {spec!r}: {element} has no orbital {part!r} "
                                 f"(it has: {', '.join(names)})")


def parse_projection(spec: str, ham: RealSpaceHamiltonian) -> np.ndarray:
    """Boolean mask over the cell's orbitals (rows of :func:`orbital_table`) for ``"El"``, ``"El:l"``
    (``C:p``) or ``"El:orbital"`` (``C:pz``, ``Mo:dz2``); several joined by ``+`` (``C:px+py``)."""
    table = orbital_table(ham)
    check_projection(spec, {o.element: ham.basis.shells_of(o.element) for o in table})
    element, parts = split_projection(spec)
    return np.array([o.element == element and (not parts or any(matches(p, o.l, o.name) for p in parts))
                     for o in table], dtype=bool)


def projected_weights(weights: np.ndarray, ham: RealSpaceHamiltonian, specs: Iterable[str] | None = None,
                      by: str | None = None) -> dict[str, np.ndarray]:
    """Weights (nk, nbands) summed over groups of orbitals: the ``specs`` of :func:`parse_projection`, or every
    group of a kind, ``by="element" | "element_l" | "element_orbital"`` (keys ``"C"``, ``"C:p"``, ``"C:pz"``)."""
    if (specs is None) == (by is None):
        raise ParameterError("give either specs or by")
    if specs is not None:
        return {s: weights[..., parse_projection(s, ham)].sum(axis=-1) for s in specs}
    table = orbital_table(ham)
    keys: Sequence[str]
    if by == "element":
        keys = [o.element for o in table]
    elif by == "element_l":
        keys = [f"{o.element}:{_LETTERS[o.l]}" for o in table]
    elif by == "element_orbital":
        keys = [f"{o.element}:{o.name}" for o in table]
    else:
        raise ParameterError(f"unknown grouping {by!r}; choose 'element', 'element_l' or 'element_orbital'")
    out: dict[str, np.ndarray] = {}
    for key in dict.fromkeys(keys):
        out[key] = weights[..., np.array([k == key for k in keys])].sum(axis=-1)
    return out
