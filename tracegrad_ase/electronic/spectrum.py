"""Spectra as users see them: levels relative to the Fermi level (or the valence-band maximum), band errors in
that frame, the spectral range a model was trained on, and ghost levels outside it.

Why relative: the zero of energy of a periodic DFT calculation is the cell-averaged potential (the same atoms in
a cell with more vacuum give H + c·S, every level moved by c), and a model's absolute levels are in its own zero.
E_F-relative bands, gaps, the DOS around E_F and density matrices do not depend on it; absolute levels do.

numpy only; solved spectra come in as arrays (nk, nbands) with k-point weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..core.errors import GhostLevelWarning  # noqa: F401 (re-exported: its old home)
from ..core.stacklevel import user_stacklevel
from .bloch import bloch_dense
from .filling import fermi_level

#: Levels within this of the reference (E_F of a metal; VBM-margin..CBM+margin of an insulator) are judged.
BAND_WINDOW_EV = 2.0
#: A gap above this (eV) on the k-points at hand makes a structure an insulator for alignment (VBM reference).
GAPPED_EV = 0.1
#: A predicted level this far (eV) outside the spectral range a model saw in training is a ghost level.
GHOST_MARGIN_EV = 3.0
#: Smearing used for E_F wherever a metric needs one (the calculator's default).
SMEARING, WIDTH = "fermi-dirac", 0.05


@dataclass
class Alignment:
    """Where a spectrum is aligned: ``kind`` "fermi" (E_F) or "vbm"; ``ref`` that level (eV), ``cbm`` for an
    insulator, and the judged window ``[lo, hi]`` in absolute eV."""

    kind: str
    ref: float
    lo: float
    hi: float
    cbm: float | None = None


def align(energies: np.ndarray, weights: Any, n_electrons: float, kind: str | None = None,
          window: float = BAND_WINDOW_EV) -> Alignment:
    """The reference of a spectrum: its VBM when it has a gap above :data:`GAPPED_EV` with an integer filling
    (an insulator or a molecule), else its Fermi level. ``kind`` forces one (to align a prediction the way its
    truth is aligned)."""
    e = np.atleast_2d(np.asarray(energies, dtype=float))
    nocc = int(round(n_electrons)) // 2
    even = abs(n_electrons - 2 * nocc) < 1e-9 and 0 < nocc < e.shape[1]
    if kind is None:
        gapped = even and float(e[:, nocc].min() - e[:, nocc - 1].max()) > GAPPED_EV
        kind = "vbm" if gapped else "fermi"
    if kind == "vbm":
        if not even:
            raise ValueError(f"a VBM alignment needs an even electron count below 2·nbands, got {n_electrons}")
        vbm, cbm = float(e[:, nocc - 1].max()), float(e[:, nocc].min())
        return Alignment("vbm", vbm, vbm - window, max(cbm, vbm) + window, cbm)
    ef = fermi_level(e, weights, n_electrons, SMEARING, WIDTH)
    return Alignment("fermi", ef, ef - window, ef + window)


def band_errors(true: np.ndarray, pred: np.ndarray, weights: Any, n_electrons: float,
                window: float = BAND_WINDOW_EV) -> dict[str, Any]:
    """E_F-aligned band errors (meV) of ``pred`` against ``true`` (both (nk, nb), same k-points, band n matched to
    band n): each spectrum relative to its own E_F (metals) or VBM (gapped, decided by the truth), over the true
    levels in the window around the true reference. Returns ``mae_mev``, ``max_mev``, ``n_levels``, ``kind``,
    ``ref_true``, ``ref_pred`` (eV)."""
    nb = min(true.shape[1], pred.shape[1])
    true, pred = np.asarray(true)[:, :nb], np.asarray(pred)[:, :nb]
    a_true = align(true, weights, n_electrons, window=window)
    a_pred = align(pred, weights, n_electrons, kind=a_true.kind, window=window)
    sel = (true >= a_true.lo) & (true <= a_true.hi)
    err = np.abs((pred - a_pred.ref) - (true - a_true.ref))[sel] * 1000.0
    return {"mae_mev": float(err.mean()) if err.size else None, "max_mev": float(err.max()) if err.size else None,
            "n_levels": int(err.size), "kind": a_true.kind, "ref_true": a_true.ref, "ref_pred": a_pred.ref}


def spectral_range(energies: np.ndarray, reference: float) -> tuple[float, float]:
    """Lowest and highest level relative to ``reference`` (eV)."""
    e = np.asarray(energies, dtype=float)
    return float(e.min() - reference), float(e.max() - reference)


@dataclass
class GhostLevel:
    """A level outside the expected range: k-point index and fractional k, energy (eV, absolute) and relative
    to the reference level."""

    k_index: int
    kpt: tuple[float, float, float]
    energy: float
    relative: float

    def __str__(self) -> str:
        k = ", ".join(f"{x:.3f}" for x in self.kpt)
        return f"{self.energy:.2f} eV ({self.relative:+.2f} eV from E_F) at k = ({k})"


def ghost_levels(energies: np.ndarray, kpts: Sequence[Sequence[float]], reference: float,
                 allowed: Sequence[float], margin: float = GHOST_MARGIN_EV) -> list[GhostLevel]:
    """Levels below ``allowed[0] - margin`` or above ``allowed[1] + max(margin, 10 % of the allowed width)``
    relative to ``reference`` (eV): levels no structure of the model's training data had, such as a predicted level
    at -43 eV where the lowest real one is -18 eV.

    The top of a Gaussian basis set's spectrum is made of its steepest functions and varies from structure to
    structure far more than the bottom (def2-SVP molecules: +107 eV in training, +125 eV in a test molecule,
    harmlessly empty), so the upper side gets a proportional margin; a low ghost is occupied and moves E_F."""
    e = np.atleast_2d(np.asarray(energies, dtype=float))
    k = np.atleast_2d(np.asarray(kpts, dtype=float))
    rel = e - reference
    lo, hi = ghost_bounds(allowed, margin)
    out = []
    for kk, n in zip(*np.nonzero((rel < lo) | (rel > hi))):
        out.append(GhostLevel(int(kk), tuple(float(x) for x in k[kk]), float(e[kk, n]), float(rel[kk, n])))
    return out


def ghost_bounds(allowed: Sequence[float], margin: float = GHOST_MARGIN_EV) -> tuple[float, float]:
    """The range of levels (eV, relative to the reference) that :func:`ghost_levels` accepts: ``margin`` below the
    allowed range, ``max(margin, 10 % of its width)`` above it."""
    width = float(allowed[1]) - float(allowed[0])
    return float(allowed[0]) - margin, float(allowed[1]) + max(margin, 0.1 * width)


def check_ghost_levels(energies: np.ndarray, kpts: Sequence[Sequence[float]], fermi: float,
                       domain: dict[str, Any] | None, margin: float = GHOST_MARGIN_EV,
                       stacklevel: int | None = None) -> list[GhostLevel]:
    """Ghost levels of a predicted spectrum against the model's recorded training range (``domain`` of its
    model.json: ``spectral_range_ev`` relative to E_F); warns with the worst one named. No range recorded: []."""
    import warnings

    allowed = (domain or {}).get("spectral_range_ev")
    if not allowed:
        return []
    ghosts = ghost_levels(energies, kpts, fermi, allowed, margin)
    if ghosts:
        worst = max(ghosts, key=lambda g: max(allowed[0] - g.relative, g.relative - allowed[1]))
        lo, hi = ghost_bounds(allowed, margin)
        warnings.warn(f"{len(ghosts)} predicted level(s) outside the model's training range "
                      f"[{allowed[0]:+.1f}, {allowed[1]:+.1f}] eV from E_F (by more than "
                      f"{allowed[0] - lo:.1f} eV below or {hi - allowed[1]:.1f} eV above), e.g. {worst}: "
                      "ghost levels no real system has; E_F, gap and occupations are not to be trusted",
                      GhostLevelWarning, stacklevel=stacklevel or user_stacklevel())
    return ghosts


def solution_ghost_levels(solutions: Sequence[Any], fermi: float, model_file: dict | None) -> list[GhostLevel]:
    """:func:`check_ghost_levels` over every k-point of the ``KSolution`` s ``solutions`` (a calculator's mesh and
    its Fermi mesh), against the training range in ``model_file`` (its model.json)."""
    domain = ((model_file or {}).get("metadata") or {}).get("domain")
    energies = np.concatenate([np.asarray(s.energies).ravel() for s in solutions])
    kpts = np.concatenate([np.repeat(np.asarray(s.kpts), s.nbands, axis=0) for s in solutions])
    return check_ghost_levels(energies[:, None], kpts, fermi, domain)


def levels(ham, kpts: np.ndarray, lindep: float, chunk: int = 256) -> np.ndarray:
    """Band energies (nk, nbands) of a :class:`~tracegrad_ase.hamiltonian.RealSpaceHamiltonian` on many k-points at
    once: dense Bloch sums and batched ``numpy.linalg.eigh``, the same canonical orthogonalization as
    ``electronic.solve_k`` (directions of S(k) below ``lindep`` dropped; ``nbands`` the fewest kept at any k).

    Dropped directions are pushed to the top of each spectrum (1e6 eV on the diagonal) and cut, so every k-point
    is one matrix of the same size in the batch. For the thousands of k-points of a metric, ~50x faster than
    ``solve_k``'s loop; for small cells only (dense norb x norb per k-point).
    """
    kpts = np.atleast_2d(np.asarray(kpts, dtype=float))
    out, nb = [], None
    for a in range(0, len(kpts), chunk):
        hk, sk = bloch_dense(ham, kpts[a:a + chunk])
        sval, svec = np.linalg.eigh(sk)
        keep = sval > lindep
        x = svec * np.where(keep, 1.0 / np.sqrt(np.where(keep, sval, 1.0)), 0.0)[:, None, :]
        h = np.conj(np.swapaxes(x, 1, 2)) @ hk @ x
        h = h + np.eye(h.shape[1])[None] * np.where(keep, 0.0, 1e6)[:, None, :]
        e = np.linalg.eigvalsh(0.5 * (h + np.conj(np.swapaxes(h, 1, 2))))
        count = int(keep.sum(axis=1).min())
        nb = count if nb is None else min(nb, count)
        out.append(e)
    return np.concatenate([e[:, :nb] for e in out])


def evaluation_mesh(cell: np.ndarray, pbc: Sequence[bool], spacing: float = 0.125, min_points: int = 1,
                    max_points: int | None = None) -> np.ndarray:
    """A Γ-centred mesh with at most ``spacing`` (2π/Å included, so Å⁻¹) between k-points along each periodic
    direction (graphene: 24x24, which holds K; a 2x2 cell 12x12); Γ alone for a molecule. ``min_points`` and
    ``max_points`` bound the points per periodic direction (diamond's mesh is 25³: a gap study caps it)."""
    cell = np.asarray(cell, dtype=float)
    pbc = np.asarray(pbc, dtype=bool)
    if not pbc.any():
        return np.zeros((1, 3))
    recip = 2 * np.pi * np.linalg.inv(cell).T if abs(np.linalg.det(cell)) > 1e-12 else np.eye(3)
    sizes = [max(1, min_points, int(np.ceil(np.linalg.norm(recip[d]) / spacing - 1e-9))) if pbc[d] else 1
             for d in range(3)]
    if max_points is not None:
        sizes = [min(n, max_points) for n in sizes]
    grid = np.meshgrid(*[np.arange(n) / n for n in sizes], indexing="ij")
    k = np.stack([g.ravel() for g in grid], axis=1)
    return np.where(k > 0.5 + 1e-12, k - 1.0, k)


def random_kpoints(pbc: Sequence[bool], n: int, seed: int = 0) -> np.ndarray:
    """``n`` uniformly random fractional k-points along the periodic directions (Γ for a molecule)."""
    pbc = np.asarray(pbc, dtype=bool)
    if not pbc.any():
        return np.zeros((1, 3))
    return np.random.default_rng(seed).random((n, 3)) * pbc[None, :]


__all__ = ["Alignment", "BAND_WINDOW_EV", "GHOST_MARGIN_EV", "GhostLevel", "GhostLevelWarning", "align",
           "band_errors", "check_ghost_levels",
           "evaluation_mesh", "ghost_bounds", "ghost_levels", "levels", "random_kpoints", "solution_ghost_levels",
           "spectral_range"]


def near_band_edges(energies: np.ndarray, fermi_level: float, margin: float = 2.0) -> np.ndarray:
    """Mask of the levels within ``margin`` eV of the band edges: from ``margin`` below the valence-band maximum
    (or E_F) to ``margin`` above the conduction-band minimum (or E_F). For a metal that is E_F ± margin; for an
    insulator, whose E_F sits in the gap, it still covers the bands on either side."""
    occupied = energies <= fermi_level
    vbm = energies[occupied].max() if occupied.any() else fermi_level
    cbm = energies[~occupied].min() if (~occupied).any() else fermi_level
    return (energies >= min(vbm, fermi_level) - margin) & (energies <= max(cbm, fermi_level) + margin)
