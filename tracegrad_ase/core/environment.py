"""Per-atom fingerprints of local environments, for the model's domain of applicability (issue 18).

An atom's fingerprint, per neighbour element ``e`` (in a fixed element order), is
- a radial distribution: Gaussians (width :data:`SIGMA`) centred every :data:`R_STEP` Å from :data:`R_MIN` to the
  cutoff, summed over the neighbours of element ``e`` and weighted by a cosine cutoff, so atoms that leave the
  sphere fade out instead of jumping;
- three bond-orientational invariants, ``sqrt(sum_jk w_j w_k P_l(cos θ_jk))`` for l = 2, 4, 6 over the neighbours
  of element ``e`` within :data:`ANGULAR_CUTOFF` (Steinhardt's q_l by the addition theorem, not normalised by the
  coordination, so it scales like the radial part: graphene's 3 bonds at 120° and diamond's 4 tetrahedral bonds
  differ here as much as in their distances).
Only distances and angles enter, through a periodic neighbour list: rotations, translations, the order of the
atoms and the choice of cell (a supercell) leave each atom's fingerprint unchanged. numpy only.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from ase import Atoms

from .graphs import neighbor_list

__all__ = ["CUTOFF", "fingerprint_settings", "fingerprints", "nearest_distances"]

#: Defaults, recorded with the fingerprints (``fingerprint_settings``) so a model is always compared in its own.
CUTOFF = 5.0  # Å: the radial part; the model's own cutoff is ~5-6 Å, so this sees what a message pass sees
ANGULAR_CUTOFF = 3.5  # Å: first and second shells of covalent bonds; beyond, angles add cost more than information
R_MIN = 0.5  # Å: no bond is shorter
R_STEP = 0.3  # Å
SIGMA = 0.25  # Å: wider than thermal motion (~0.05-0.1 Å), narrower than the gap between bond types
L_VALUES = (2, 4, 6)
VERSION = 1


def fingerprint_settings(elements: Sequence[str], cutoff: float = CUTOFF) -> dict[str, Any]:
    """The settings a set of fingerprints was made with (JSON): compare only fingerprints of equal settings."""
    return {"version": VERSION, "elements": list(elements), "cutoff": float(cutoff),
            "angular_cutoff": min(ANGULAR_CUTOFF, float(cutoff)), "r_min": R_MIN, "r_step": R_STEP, "sigma": SIGMA,
            "l": list(L_VALUES)}


def _cosine_cutoff(r: np.ndarray, rc: float) -> np.ndarray:
    return np.where(r < rc, 0.5 * (np.cos(np.pi * r / rc) + 1.0), 0.0)


def _legendre(l: int, x: np.ndarray) -> np.ndarray:
    x2 = x * x
    if l == 2:
        return 0.5 * (3 * x2 - 1)
    if l == 4:
        return (35 * x2 * x2 - 30 * x2 + 3) / 8
    if l == 6:
        return (231 * x2 ** 3 - 315 * x2 * x2 + 105 * x2 - 5) / 16
    raise ValueError(f"l must be 2, 4 or 6, got {l}")


def fingerprints(atoms: Atoms, settings: dict[str, Any]) -> np.ndarray:
    """(natoms, n_elements * (n_radial + n_l)) fingerprints of ``atoms`` in ``settings``
    (:func:`fingerprint_settings`); neighbours of elements outside ``settings["elements"]`` are left out."""
    elements = list(settings["elements"])
    cutoff, sigma = float(settings["cutoff"]), float(settings["sigma"])
    centres = np.arange(float(settings["r_min"]), cutoff + 1e-9, float(settings["r_step"]))
    ls = [int(l) for l in settings["l"]]
    index = {e: k for k, e in enumerate(elements)}
    species = np.array([index.get(s, -1) for s in atoms.get_chemical_symbols()], dtype=np.int64)
    n, ne = len(atoms), len(elements)
    radial = np.zeros((n, ne, len(centres)))
    angular = np.zeros((n, ne, len(ls)))
    nl = neighbor_list(atoms, cutoff)
    keep = species[nl.j] >= 0 if len(nl) else np.zeros(0, dtype=bool)
    i, e, vec = nl.i[keep], species[nl.j[keep]], nl.vectors[keep]
    r = np.linalg.norm(vec, axis=1)
    g = np.exp(-0.5 * ((r[:, None] - centres[None, :]) / sigma) ** 2) * _cosine_cutoff(r, cutoff)[:, None]
    np.add.at(radial, (i, e), g)
    _add_angular(angular, i, e, vec, r, float(settings["angular_cutoff"]), ls)
    return np.concatenate([radial, angular], axis=2).reshape(n, -1)


def _add_angular(out: np.ndarray, i: np.ndarray, e: np.ndarray, vec: np.ndarray, r: np.ndarray, rc: float,
                 ls: list[int]) -> None:
    """Add ``sqrt(sum_jk w_j w_k P_l(cos θ_jk))`` over the neighbour pairs of each (atom, element) group."""
    near = r < rc
    i, e, unit, w = i[near], e[near], vec[near] / r[near, None], _cosine_cutoff(r[near], rc)
    if not len(i):
        return
    order = np.lexsort((e, i))  # groups of one centre and one neighbour element, contiguous
    i, e, unit, w = i[order], e[order], unit[order], w[order]
    starts = np.flatnonzero(np.r_[True, (np.diff(i) != 0) | (np.diff(e) != 0)])
    counts = np.diff(np.r_[starts, len(i)])
    # Every ordered pair (a, b) within a group, a == b included (P_l(1) = 1: the l-th invariant's own weight).
    group = np.repeat(np.arange(len(starts)), counts ** 2)
    k = np.arange(len(group)) - np.repeat(np.cumsum(counts ** 2) - counts ** 2, counts ** 2)
    a = starts[group] + k // counts[group]
    b = starts[group] + k % counts[group]
    cos = np.clip(np.einsum("ij,ij->i", unit[a], unit[b]), -1.0, 1.0)
    ww = w[a] * w[b]
    for n_l, l in enumerate(ls):
        p = np.zeros(len(starts))
        np.add.at(p, group, ww * _legendre(l, cos))
        out[i[starts], e[starts], n_l] = np.sqrt(np.maximum(p, 0.0))  # >= 0 up to round-off: a sum of squares


def nearest_distances(x: np.ndarray, ref: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Euclidean distance of each row of ``x`` to its nearest row of ``ref`` (inf where ``ref`` is empty)."""
    x, ref = np.asarray(x, dtype=float), np.asarray(ref, dtype=float)
    if len(ref) == 0:
        return np.full(len(x), np.inf)
    out = np.empty(len(x))
    r2 = np.einsum("ij,ij->i", ref, ref)
    for s in range(0, len(x), chunk):  # chunks bound the memory of the distance matrix for large cells
        xs = x[s:s + chunk]
        d2 = np.einsum("ij,ij->i", xs, xs)[:, None] + r2[None, :] - 2.0 * xs @ ref.T
        out[s:s + chunk] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    return out
