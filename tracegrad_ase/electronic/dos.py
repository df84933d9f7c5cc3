"""Densities of states: total and Mulliken-projected, Gaussian or Lorentzian, in bounded memory.

States/eV per cell, both spins (:data:`~tracegrad_ase.electronic.filling.SPIN_DEGENERACY` per level).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.basis import symbol_of
from ..core.hamiltonian import RealSpaceHamiltonian
from .bloch import BlochAssembler, as_assembler, kpoint_weights
from .filling import SPIN_DEGENERACY
from .solve import KSolution

__all__ = ["DOS_CHUNK", "dos", "mulliken_weights", "orbital_groups", "projected_dos", "weighted_dos"]


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


def weighted_dos(e: np.ndarray, wk: np.ndarray, amp: np.ndarray, grid: np.ndarray, width: float,
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
        # g amp w_k per level (g = SPIN_DEGENERACY), made per block: a copy of all of amp would grow with the mesh
        a = SPIN_DEGENERACY * amp[..., l0:l1] * wk[np.arange(l0, l1) // nb]
        for g0 in range(0, len(grid), grid_step):
            g1 = g0 + grid_step
            shape = _broadening(grid[g0:g1, None] - levels[None, l0:l1], width, kind)  # (grid block, level block)
            out[..., g0:g1] += a @ shape.T
    return out


def dos(energies: np.ndarray, weights: Any, grid: Any, width: float = 0.1, kind: str = "gaussian") -> np.ndarray:
    """Total density of states (states/eV per cell, both spins) on ``grid``; integrates to 2 x nbands."""
    e = np.atleast_2d(np.asarray(energies, dtype=float))
    wk = kpoint_weights(weights, e.shape[0])
    return weighted_dos(e, wk, np.ones_like(e), np.asarray(grid, dtype=float), width, kind)


def mulliken_weights(solution: KSolution, ham_or_assembler: RealSpaceHamiltonian | BlochAssembler
                     ) -> list[np.ndarray]:
    """Per k, the ``(norb, nbands)`` Mulliken weight ``Re[c_mu* (S(k) c)_mu]`` of band n on orbital mu; each
    column sums to ``c^H S c = 1``."""
    if solution.vectors is None:
        raise ValueError("Mulliken projections need the coefficients: call solve_k(..., vectors=True)")
    asm = as_assembler(ham_or_assembler)
    out = []
    for k, c in zip(solution.kpts, solution.vectors):
        _, s = asm.at(k)
        out.append(np.real(c.conj() * (s @ c)))
    return out


def orbital_groups(ham: RealSpaceHamiltonian, by: str) -> tuple[list[Any], np.ndarray]:
    """Group label per orbital of the cell: (labels, index into labels for each orbital). ``by``: ``"atom"``
    (atom index), ``"element"`` (symbol), ``"l"`` (letter) or ``"atom_l"`` ((atom index, l)); first-seen order."""
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
                elif by == "atom_l":
                    per_orb.append((a, l))
                else:
                    raise ValueError(f"unknown projection {by!r}; choose 'atom', 'element', 'l' or 'atom_l'")
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
    asm = as_assembler(ham)
    labels, group = orbital_groups(asm.ham, by)
    mw = mulliken_weights(solution, asm)
    # amp[g, k, n]: weight of band n at k on group g.
    amp = np.stack([np.stack([np.bincount(group, weights=m[:, n], minlength=len(labels))
                              for n in range(m.shape[1])], axis=1) for m in mw], axis=1)
    pd = weighted_dos(solution.energies, solution.weights, amp, np.asarray(grid, dtype=float), width, kind)
    return {lab: pd[g] for g, lab in enumerate(labels)}
