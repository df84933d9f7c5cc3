"""Band unfolding: the spectral weight of supercell levels on a primitive cell's k-path, in a non-orthogonal
atomic-orbital basis.

Cells and atoms. The supercell's lattice vectors (rows) are ``A_sc = M A_p`` with an integer matrix M, found as
``A_sc A_p^-1`` (:func:`supercell_map`); ``N = |det M|`` primitive cells fit in it. Each supercell atom I sits
(up to a displacement, e.g. a rattle) on a site a(I) of the primitive cell shifted by an integer translation
t_I (primitive fractional coordinates); a vacancy is a site without an atom.

Bloch sums. With the lattice gauge of :mod:`.bloch` (``H(K) = sum_R exp(2 pi i K.R) H(R)``), the primitive
Bloch sum of orbital (a, m) at a primitive k is, in the supercell's Bloch basis at ``K = k M^T``,
``chi_am(k) = sum_{I: a(I)=a} exp(2 pi i k.t_I) chi_Im(K)``: a column of a matrix U_k (supercell orbitals x
primitive orbitals). The N primitive k that fold onto one K give U_k whose ranges split the supercell space, and
``Pi_k = U_k U_k^H / N`` are orthogonal projectors that sum to 1 (also with vacancies, on the orbitals present).

Weights. For a supercell level ``H(K) c = e S(K) c`` with ``c^H S c = 1``:

- ``method="lowdin"`` (default on the dense path): ``P(k) = ||U_k^H S^1/2 c||^2 / N = (S^1/2 c)^H Pi_k
  (S^1/2 c)``: the Ku-Berlijn-Lee / Popescu-Zunger weight (PRL 104, 216401 (2010)) in the basis of
  Löwdin-orthonormalized atomic orbitals. Always in [0, 1]; summed over the N k of one K it is ``c^H S c = 1``.
- ``method="mulliken"`` (default on the sparse path): ``P(k) = Re (S c)^H Pi_k c = Re (U_k^H S c)^H (U_k^H c)
  / N``, the S-dual form of Lee et al. (J. Phys.: Condens. Matter 25, 345501 (2013)): the same sum rule and no
  S^1/2, but, like Mulliken populations, outside [0, 1] where the basis is nearly dependent (gth-dzvp graphene
  with a vacancy: down to -0.014; the minimal-basis 967-atom cell of ``benchmarks/unfolding.py``: within 3e-6
  of the Löwdin weight, at half its cost on the sparse path).

In a perfect supercell S(K) and H(K) commute with every Pi_k, both forms agree, and each level has weight 1 at
the k whose primitive band it is and 0 at the other N - 1. Above :data:`.solve.SPARSE_THRESHOLD` orbitals only
``n_bands`` levels nearest ``sigma`` (default E_F) are found, by sparse shift-invert; there S^1/2 c (Löwdin)
comes from a Chebyshev series on the spectral interval of S(K), whose lower end costs a sparse factorization.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..core.errors import MismatchError, ParameterError, StructureError
from ..core.hamiltonian import RealSpaceHamiltonian
from . import solve
from .bloch import BlochAssembler, as_assembler, check_kpts
from .filling import electron_count, fermi_level as _fermi_level
from .large_cell import sparse_fermi_level

__all__ = ["METHODS", "SupercellMap", "UnfoldedBands", "supercell_map", "unfold", "unfolding_weights"]

METHODS = ("lowdin", "mulliken")


@dataclass
class SupercellMap:
    """How a supercell sits on a primitive lattice: ``A_sc = matrix @ A_p``; supercell atom I is primitive atom
    ``site[I]`` shifted by ``shift[I]`` (integer, primitive fractional), ``displacement[I]`` Å away from it."""

    matrix: np.ndarray
    site: np.ndarray
    shift: np.ndarray
    displacement: np.ndarray

    @property
    def n_cells(self) -> int:
        """N = |det M|: primitive cells in the supercell (and primitive k per supercell K)."""
        return int(round(abs(np.linalg.det(self.matrix))))


def supercell_map(supercell: Any, primitive: Any, cell_tol: float = 1e-3, site_tol: float = 0.5) -> SupercellMap:
    """Find M (``A_sc = M A_p``, integer to ``cell_tol``) and each supercell atom's primitive site (the nearest of
    the same element within ``site_tol`` Å). :class:`MismatchError` when the supercell is not an integer multiple
    of the primitive cell; :class:`StructureError` for an atom on no site, or two atoms on one."""
    a_sc, a_p = np.asarray(supercell.cell[:], float), np.asarray(primitive.cell[:], float)
    pbc = np.asarray(supercell.pbc, bool)
    if not np.array_equal(pbc, np.asarray(primitive.pbc, bool)) or not pbc.any():
        raise MismatchError(f"the supercell (pbc {pbc.tolist()}) and the primitive cell (pbc "
                            f"{list(map(bool, primitive.pbc))}) must be periodic along the same directions")
    if abs(np.linalg.det(a_p)) < 1e-9:
        raise StructureError("the primitive cell has no volume: give all three cell vectors (vacuum included)")
    m = a_sc @ np.linalg.inv(a_p)
    mi = np.round(m)
    # Along a vacuum direction the two cells must be the same: one copy of the slab or wire, not several.
    if np.abs(m - mi).max() > cell_tol or round(abs(np.linalg.det(mi))) < 1 or (mi[~pbc] != np.eye(3)[~pbc]).any():
        raise MismatchError(f"the supercell is not an integer multiple of the primitive cell: A_sc A_p^-1 = "
                            f"{np.array2string(m, precision=4)} (needs integers to {cell_tol}, and the identity "
                            "along non-periodic directions)")
    frac_p = np.asarray(primitive.get_scaled_positions(wrap=False), float)
    frac = np.asarray(supercell.positions, float) @ np.linalg.inv(a_p)
    d = frac[:, None, :] - frac_p[None, :, :]  # (I, a, 3) in primitive fractional coordinates
    shift = np.where(pbc, np.round(d), 0.0)
    dist = np.linalg.norm((d - shift) @ a_p, axis=2)
    rows = np.arange(len(dist))
    same = np.where(supercell.numbers[:, None] == primitive.numbers[None, :], dist, np.inf)
    # A site of the atom's own element first; else the nearest site of any element (a substitution, as in an alloy).
    site = np.where(same.min(axis=1, initial=np.inf) <= site_tol, np.argmin(same, axis=1), np.argmin(dist, axis=1))
    best = dist[rows, site]
    bad = np.nonzero(best > site_tol)[0]
    if len(bad):
        i = int(bad[0])
        raise StructureError(f"supercell atom {i} ({supercell.get_chemical_symbols()[i]} at "
                             f"{np.round(supercell.positions[i], 3).tolist()} Å) is on no site of the primitive cell "
                             f"(nearest site {best[i]:.3f} Å away, site_tol {site_tol} Å): an interstitial or "
                             f"another cell; {len(bad)} atom(s) in all")
    shift = shift[np.arange(len(site)), site].astype(np.int64)
    # Two atoms on one site (same primitive atom, translations equal modulo the supercell lattice) would count a
    # primitive orbital twice.
    cell_of = np.mod(shift @ np.linalg.inv(mi), 1.0).round(6) % 1.0
    keys = np.concatenate([site[:, None], cell_of], axis=1)
    if len(np.unique(keys, axis=0)) < len(site):
        raise StructureError("two supercell atoms sit on the same primitive site: the cells do not match")
    return SupercellMap(mi.astype(np.int64), site, shift, best)


def _orbital_map(ham: RealSpaceHamiltonian, primitive: Any, cmap: SupercellMap) -> tuple[np.ndarray, np.ndarray,
                                                                                           int]:
    """Per supercell orbital: its primitive orbital index and translation; and the primitive orbital count. A
    substituted atom takes its site's orbitals one for one, so it must have as many (same shells)."""
    off_p = ham.basis.atom_offsets(primitive.numbers)
    off = ham.offsets
    q, t = np.empty(ham.norb, np.int64), np.empty((ham.norb, 3), np.int64)
    for i, (a, shift) in enumerate(zip(cmap.site, cmap.shift)):
        zi, za = ham.atoms.numbers[i], primitive.numbers[a]
        if zi != za and ham.basis.shells_of(zi) != ham.basis.shells_of(za):
            raise StructureError(f"supercell atom {i} ({ham.atoms.get_chemical_symbols()[i]}) substitutes a "
                                 f"{primitive.get_chemical_symbols()[a]} site with other orbital shells "
                                 f"({ham.basis.shells_of(zi)} vs {ham.basis.shells_of(za)}) in {ham.basis.name}: "
                                 "unfolding maps orbitals one for one")
        q[off[i]:off[i + 1]] = off_p[a] + np.arange(off[i + 1] - off[i])
        t[off[i]:off[i + 1]] = shift
    return q, t, int(off_p[-1])


def _sqrt_apply(s: sp.spmatrix, v: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """S^1/2 v for a sparse positive definite S: a Chebyshev series of sqrt on [lo, hi] (hi: Gershgorin's bound,
    lo: S's smallest eigenvalue by shift-invert at 0, less 1 %), summed until its terms fall below ``tol``."""
    hi = float(np.abs(s).sum(axis=1).max())
    v0 = np.random.default_rng(0).standard_normal(s.shape[0]).astype(s.dtype)
    # The Ritz value of shift-invert approaches the smallest eigenvalue from above: the margin keeps lo below it.
    lo = 0.99 * float(spla.eigsh(s, k=1, sigma=0.0, which="LM", v0=v0, tol=1e-4, return_eigenvectors=False)[0].real)
    if lo <= 0:
        raise np.linalg.LinAlgError(f"S(K) is not positive definite (smallest eigenvalue {lo / 0.99:.2e})")
    n = 1024
    theta = np.pi * (np.arange(n) + 0.5) / n
    coef = 2.0 / n * np.cos(np.outer(np.arange(n), theta)) @ np.sqrt(0.5 * (hi - lo) * np.cos(theta) + 0.5 * (hi + lo))
    coef[0] /= 2
    scale, mid = 2.0 / (hi - lo), (hi + lo) / (hi - lo)
    t_prev, t_cur = v, scale * (s @ v) - mid * v
    out = coef[0] * t_prev + coef[1] * t_cur
    for c in coef[2:]:
        t_prev, t_cur = t_cur, 2.0 * (scale * (s @ t_cur) - mid * t_cur) - t_prev
        out += c * t_cur
        if abs(c) < tol:
            break
    # ||S^1/2 v||^2 = v^H S v: a cheap check that the series converged on v's part of the spectrum.
    err = np.abs(np.sum(np.abs(out) ** 2, axis=0) - np.real(np.sum(np.conj(v) * (s @ v), axis=0))).max(initial=0.0)
    if err > 1e-6:  # pragma: no cover - a spectral bound that does not hold
        raise np.linalg.LinAlgError(f"the Chebyshev series of S^1/2 did not converge (norm error {err:.1e})")
    return out


def unfolding_weights(c: np.ndarray, s: Any, k: np.ndarray, q: np.ndarray, t: np.ndarray, norb_p: int,
                      n_cells: int, method: str = "lowdin", s_half_c: np.ndarray | None = None) -> np.ndarray:
    """Weights P(k) (one per column of ``c``, S(K)-orthonormal vectors at K = k M^T) of the primitive k; see the
    module docstring. ``q``, ``t``: each supercell orbital's primitive orbital and translation."""
    phase = np.exp(-2j * np.pi * (t @ np.asarray(k, float)))
    u_h = sp.csr_matrix((phase, (q, np.arange(len(q)))), shape=(norb_p, len(q)))  # U_k^H
    if method == "mulliken":
        return np.real(np.sum(np.conj(u_h @ (s @ c)) * (u_h @ c), axis=0)) / n_cells
    if s_half_c is None:
        raise ValueError("the Löwdin weight needs S^1/2 c")
    return np.sum(np.abs(u_h @ s_half_c) ** 2, axis=0) / n_cells


@dataclass
class UnfoldedBands:
    """Supercell levels on a primitive k-path and their unfolded weights.

    ``energies[k, n]`` (eV, absolute) are the supercell levels at ``supercell_kpts[k]`` (= ``kpts[k] @ M.T``),
    ``weights[k, n]`` their spectral weight at the primitive ``kpts[k]``; both (path k-points, supercell levels).
    ``x`` is the path coordinate (1/Å, without 2π), ``special_x`` and ``labels`` its special points. ``sparse``
    marks a window of ``n_bands`` levels around ``sigma`` rather than every level.
    """

    kpts: np.ndarray
    supercell_kpts: np.ndarray
    energies: np.ndarray
    weights: np.ndarray
    fermi_level: float
    x: np.ndarray
    special_x: list[float] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    matrix: np.ndarray = field(default_factory=lambda: np.eye(3, dtype=np.int64))
    method: str = "lowdin"
    sparse: bool = False

    def spectral_function(self, energies: Any, sigma: float = 0.05) -> np.ndarray:
        """A(k, E) = sum_n P_n(k) g(E - e_n) (states/eV per primitive cell), Gaussian g of width ``sigma`` eV, on
        absolute ``energies``; shape (path k-points, len(energies))."""
        if not sigma > 0:
            raise ParameterError(f"sigma (eV) must be positive, got {sigma}")
        grid = np.asarray(energies, dtype=float).reshape(-1)
        out = np.empty((len(self.kpts), len(grid)))
        norm = 1.0 / (sigma * np.sqrt(2.0 * np.pi))
        for i, (e, w) in enumerate(zip(self.energies, self.weights)):
            out[i] = norm * (w[None, :] * np.exp(-0.5 * ((grid[:, None] - e[None, :]) / sigma) ** 2)).sum(axis=1)
        return out

    def plot(self, ax: Any = None, emin: float = -6.0, emax: float = 4.0, sigma: float = 0.05, path: Any = None,
             npoints: int = 400, title: str = "") -> Any:
        """The effective band structure: A(k, E) as an image against the path and E - E_F (eV); returns the axes,
        and with ``path`` writes a PNG (matplotlib's Agg backend, :mod:`tracegrad_ase.core.figures`)."""
        if not emax > emin:
            raise ParameterError(f"emax must be above emin, got {emin}, {emax}")
        grid = np.linspace(emin, emax, npoints)
        a = self.spectral_function(grid + self.fermi_level, sigma)
        if ax is None:
            from ..core.figures import pyplot

            fig, ax = pyplot().subplots(figsize=(4.6, 4.0), dpi=110)
        mesh = ax.pcolormesh(self.x, grid, a.T, shading="nearest", cmap="Greys", vmin=0.0,
                             vmax=max(float(np.percentile(a, 99.5)), 1e-12), rasterized=True)
        ax.figure.colorbar(mesh, ax=ax, label="A(k, E) (1/eV)", pad=0.02)
        for sx in self.special_x:
            ax.axvline(sx, color="0.6", lw=0.5)
        ax.axhline(0.0, color="tab:blue", lw=0.6, ls="--")
        if self.labels:
            names = [("Γ" if s in ("G", "\\Gamma") else f"${s}$" if "\\" in s else s) for s in self.labels]
            ax.set_xticks(list(self.special_x), names)  # pymatgen's TeX names ('\\Sigma') as mathtext
        ax.set_xlim(self.x[0], self.x[-1])
        ax.set_ylim(emin, emax)
        ax.set_ylabel("E − E_F (eV)")
        if title:
            ax.set_title(title, fontsize=9)
        if path is not None:
            ax.figure.tight_layout()
            ax.figure.savefig(path)
        return ax


def _path_points(primitive: Any, path: Any, npoints: int, labels: Sequence[str] | None
                 ) -> tuple[np.ndarray, np.ndarray, list[float], list[str]]:
    """k-points (primitive fractional), the path coordinate, special x and labels from an ASE path string,
    ``BandPath`` or explicit (nk, 3) list (with optional per-point ``labels``, '' for ordinary points)."""
    if path is None or isinstance(path, str):
        path = primitive.cell.bandpath(path, npoints=npoints, pbc=primitive.pbc)
    if hasattr(path, "get_linear_kpoint_axis"):
        # ASE may hand the cell back rotated (and a slab's vacuum vector zeroed): compare the periodic metric.
        pbc = np.asarray(primitive.pbc, bool)
        mine, theirs = np.asarray(primitive.cell[:], float)[pbc], np.asarray(path.cell[:], float)[pbc]
        if not np.allclose(mine @ mine.T, theirs @ theirs.T, atol=1e-6 * max(1.0, float(np.abs(mine).max()) ** 2)):
            raise MismatchError("the BandPath was made for another cell (its periodic cell vectors differ from the "
                                "primitive cell's); build it with primitive.cell.bandpath(..., pbc=primitive.pbc)")
        x, sx, lab = path.get_linear_kpoint_axis()
        return np.asarray(path.kpts, float), np.asarray(x, float), [float(v) for v in sx], list(lab)
    kpts = check_kpts(path)
    rec = np.asarray(primitive.cell.reciprocal(), float)
    step = np.linalg.norm(np.diff(kpts, axis=0) @ rec, axis=1)
    if labels is not None:
        if len(labels) != len(kpts):
            raise ParameterError(f"{len(labels)} labels for {len(kpts)} k-points")
        # pymatgen's layout: a segment's end and the next one's start are adjacent labelled points, the same point
        # or a jump ('X|U') between segments that have inner points; a jump takes no length on the axis.
        inner = [bool(lab) for lab in labels]
        jump = [inner[i] and inner[i + 1] and 0 < i < len(step) - 1 and not inner[i - 1] and not inner[i + 2]
                for i in range(len(step))]
        step[jump] = 0.0
    x = np.concatenate([[0.0], np.cumsum(step)])
    sx, lab = [], []
    for xi, name in zip(x, labels or []):
        if name and (not sx or abs(sx[-1] - xi) > 1e-9):
            sx.append(float(xi))
            lab.append(str(name))
        elif name and name != lab[-1]:
            lab[-1] = f"{lab[-1]}|{name}"
    return kpts, x, sx, lab


def _default_fermi(asm: BlochAssembler, big: bool) -> float:
    """E_F of the supercell: its recorded one, else inertia counts at Γ (large cells) or a Γ-centred mesh of
    about 5 Å⁻¹ density (k-points per reciprocal length, 2π included)."""
    meta = asm.ham.meta.get("fermi_level_ev")
    if meta is not None:
        return float(meta)
    if big:
        return float(sparse_fermi_level(asm)["fermi_level"])
    atoms = asm.ham.atoms
    rec = 2 * np.pi * np.linalg.norm(np.asarray(atoms.cell.reciprocal(), float), axis=1)
    size = np.where(atoms.pbc, np.maximum(1, np.ceil(5.0 * rec)), 1).astype(int)
    mesh = np.stack(np.meshgrid(*[np.arange(n) / n for n in size], indexing="ij"), -1).reshape(-1, 3)
    sol = solve.solve_k(asm, mesh, sparse=False)
    return float(_fermi_level(sol.energies, None, electron_count(asm.ham), "none"))


def _levels_at(asm: BlochAssembler, kk: np.ndarray, big: bool, lindep: float, sigma: float, n_bands: int | None,
               method: str) -> tuple[np.ndarray, np.ndarray, Any, np.ndarray | None]:
    """Levels, S-orthonormal vectors, S(K) and (Löwdin) S^1/2 c at one supercell K."""
    pair = asm.at_real(kk)
    h, s = pair if pair is not None else asm.at(kk)
    if big:
        nb = solve.DEFAULT_SPARSE_BANDS if n_bands is None else int(n_bands)
        e, c = solve.sparse_eigs(asm, kk, sigma, nb, True)
        return e, c, s, (_sqrt_apply(s.tocsr(), c) if method == "lowdin" else None)
    sval, svec = np.linalg.eigh(s.toarray())
    keep = sval > lindep
    x = svec[:, keep] / np.sqrt(sval[keep])
    e, y = np.linalg.eigh(x.conj().T @ h.toarray() @ x)
    if n_bands is not None and n_bands < len(e):
        sel = np.arange(n_bands) if sigma is None else np.sort(np.argsort(np.abs(e - sigma), kind="stable")[:n_bands])
        e, y = e[sel], y[:, sel]
    # S^1/2 c = V s^1/2 V^H V_keep s^-1/2 y = V_keep y: exact, from the same decomposition.
    return e, x @ y, s, svec[:, keep] @ y


def unfold(ham_or_assembler: RealSpaceHamiltonian | BlochAssembler, primitive: Any, path: Any = None,
           npoints: int = 60, labels: Sequence[str] | None = None, method: str | None = None,
           fermi_level: float | None = None, lindep: float = solve.LINDEP_THRESHOLD, sparse: bool | None = None,
           n_bands: int | None = None, sigma: float | None = None, cell_tol: float = 1e-3,
           site_tol: float = 0.5) -> UnfoldedBands:
    """Unfold a supercell's levels onto the primitive cell's k-path (see the module docstring for the weight).

    ``primitive``: ``ase.Atoms`` of the primitive cell (the supercell matrix and atom sites are found by
    :func:`supercell_map`). ``path``: None (ASE's special-point path of the primitive lattice, ``npoints``
    points), a path string such as ``"GMKG"``, a ``BandPath`` of the primitive cell, or a (nk, 3) list of
    fractional primitive k (``labels`` per point). Dense below :data:`.solve.SPARSE_THRESHOLD` orbitals (every
    level; ``lindep`` drops overlap directions as in :func:`.solve.generalized_eigh`; ``n_bands`` keeps the
    ones nearest ``sigma``), sparse shift-invert above (``n_bands`` levels nearest ``sigma``, default E_F).
    ``method``: ``"lowdin"`` or ``"mulliken"``; None takes Löwdin on the dense path, Mulliken on the sparse one.
    """
    if method not in METHODS + (None,):
        raise ParameterError(f"method must be one of {METHODS} (or None), got {method!r}")
    asm = as_assembler(ham_or_assembler)
    cmap = supercell_map(asm.ham.atoms, primitive, cell_tol, site_tol)
    q, t, norb_p = _orbital_map(asm.ham, primitive, cmap)
    kpts, x, sx, lab = _path_points(primitive, path, npoints, labels)
    big = asm.norb > solve.SPARSE_THRESHOLD if sparse is None else bool(sparse)
    method = method or ("mulliken" if big else "lowdin")
    ef = _default_fermi(asm, big) if fermi_level is None else float(fermi_level)
    if big and sigma is None:
        sigma = ef
    kk = kpts @ cmap.matrix.T.astype(float)
    # Path points whose K differ by a supercell reciprocal vector share one eigenproblem: H(K + G) = H(K).
    keys = np.round(np.mod(kk, 1.0), 8) % 1.0
    _, group = np.unique(keys, axis=0, return_inverse=True)
    energies, weights = [None] * len(kpts), [None] * len(kpts)
    for g in range(group.max() + 1):
        members = np.nonzero(group.ravel() == g)[0]
        e, c, s, shc = _levels_at(asm, kk[members[0]], big, lindep, sigma, n_bands, method)
        for i in members:
            energies[i] = e
            weights[i] = unfolding_weights(c, s, kpts[i], q, t, norb_p, cmap.n_cells, method, shc)
    nb = min(len(e) for e in energies)
    return UnfoldedBands(kpts, kk, np.array([e[:nb] for e in energies]), np.array([w[:nb] for w in weights]), ef,
                         x, sx, lab, cmap.matrix, method, big)
