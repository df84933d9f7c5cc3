"""A predicted Hamiltonian's states in real space, through ASE's DFT-calculator interface: Bloch states
(``get_pseudo_wave_function``), the valence density (``get_pseudo_density``) and the density of the states in an
energy window around E_F (``get_partial_density``: VASP's band-decomposed PARCHG, the Tersoff-Hamann STM image
of a bias), on a grid of the cell (``get_number_of_grid_points``, the calculator's ``grid_spacing``). ASE's own
STM (``ase.dft.stm.STM``) works on them. ASE's Wannier functions also need GPAW's
``get_wannier_localization_matrix``, which is not offered.

A mixin of :class:`~tracegrad_ase.calculator.TraceGradCalculator`. The orbitals' Bloch sums on the grid come from
:class:`~tracegrad_ase.engines.pyscf.realspace.OrbitalImages`; states are ``psi = chi_k @ c`` with
``c^H S(k) c = 1``, so each is normalized over the cell (Å^-3/2) and densities are electrons per Å³.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from ase.calculators.calculator import Parameters, PropertyNotImplementedError

from . import electronic
from .core.errors import GridWarning, ParameterError, StructureError
from .core.stacklevel import user_stacklevel
from .electronic.filling import DEGENERACY_TOL, SPIN_DEGENERACY
from .electronic.bloch import kpoint_weights
from .electronic.velocity import solve_batched
from .engines.pyscf.realspace import OrbitalImages
from .parameters import _real, is_path_or_list, resolve_kpoints, response_mesh

__all__ = ["RealSpaceStates", "MAX_GRID_POINTS", "cell_grid", "orbital_grid", "density_at", "filled_states",
           "plane_at_height", "states_density", "window_filling"]

#: Grids larger than this are refused (a complex state alone would take 16 bytes a point).
MAX_GRID_POINTS = 8_000_000
#: The wave-function cache holds one k-point's Bloch functions while they fit in this many bytes.
CACHE_BYTES = 256 * 2**20
#: k-points solved at once on a crystal's mesh (bounds the memory of one batch of H(k), S(k)).
BATCH_KPOINTS = 256
#: The valence density keeps the coefficients of levels up to this many smearing widths above E_F.
OCCUPIED_WIDTHS = 40.0
#: ∫ρ may miss the electron count by this fraction before a GridWarning (grid too coarse, box too small).
CHARGE_TOLERANCE = 0.02


def cell_grid(atoms, spacing: float) -> tuple[tuple[int, int, int], np.ndarray]:
    """The grid of points ``(i/n1) a1 + (j/n2) a2 + (l/n3) a3`` (ASE's and the cube format's): its shape, with
    ``n`` = ceil(|a| / spacing), and the points (n1·n2·n3, 3) in Å, C order. Needs three cell vectors, and atoms
    inside the cell along the directions that are not periodic (else the grid would cut their density off)."""
    cell = np.asarray(atoms.cell[:], dtype=float)
    if abs(np.linalg.det(cell)) < 1e-6:
        raise StructureError("a real-space grid needs a cell with three vectors (the box of the grid); this structure "
                             "has none along some direction: give it one, e.g. atoms.center(vacuum=4.0)")
    frac = np.linalg.solve(cell.T, atoms.get_positions().T).T
    for axis in np.flatnonzero(~np.asarray(atoms.pbc, dtype=bool)):
        if frac[:, axis].min() < 0.0 or frac[:, axis].max() >= 1.0:
            raise StructureError(f"atoms lie outside the cell along its non-periodic axis {axis}, so the grid of "
                                 "the cell would cut their density off: centre them, e.g. atoms.center(axis="
                                 f"{axis})")
    shape = tuple(max(1, int(np.ceil(np.linalg.norm(v) / spacing))) for v in cell)
    npoints = int(np.prod(shape))
    if npoints > MAX_GRID_POINTS:
        raise ParameterError(f"a grid_spacing of {spacing:g} Å gives {shape} = {npoints:,} points, more than "
                             f"{MAX_GRID_POINTS:,}: use a larger grid_spacing")
    axes = [np.arange(n) / n for n in shape]
    f = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    return shape, f @ cell


def orbital_grid(ham, spacing: float) -> tuple[OrbitalImages, tuple[int, int, int], np.ndarray]:
    """A Hamiltonian's orbitals and the grid of its cell (:func:`cell_grid`): what :func:`states_density` takes."""
    shape, points = cell_grid(ham.atoms, spacing)
    return OrbitalImages(ham.atoms, ham.basis, points.min(axis=0), points.max(axis=0)), shape, points


def filled_states(sol: electronic.KSolution, filling: np.ndarray) -> list[tuple]:
    """The states of a solution with vectors that hold electrons: (k, coefficients (norb, n), w_k f (n,)) per
    k-point, from its ``filling`` f (nk, nbands) in electrons per state: what :func:`states_density` takes."""
    out = []
    for k, w, f, vectors in zip(sol.kpts, sol.weights, filling, sol.vectors):
        keep = np.flatnonzero(f > 0)
        out.append((k, vectors[:, keep], w * f[keep]))
    return out


def states_density(grid: tuple, states: list[tuple], progress: bool = False) -> np.ndarray:
    """``sum over (k, c, f) of sum_n f_n |chi_k @ c_n|^2`` (per Å³) on the grid of :func:`orbital_grid`."""
    images, shape, points = grid
    return images.density(points, states, progress).reshape(shape)


def window_filling(energies: np.ndarray, low: float, high: float) -> np.ndarray:
    """Every state with energy in [low, high] (eV) counted as filled (both spins), the rest empty."""
    return np.where((energies >= low) & (energies <= high), float(SPIN_DEGENERACY), 0.0)


def density_at(density: np.ndarray, cell: Any, points: np.ndarray) -> np.ndarray:
    """Values of a grid quantity of :func:`cell_grid` at Cartesian ``points`` (N, 3) Å, trilinear between the
    grid's points (periodic in every direction, as the grid of the cell is)."""
    shape = np.array(density.shape)
    frac = np.linalg.solve(np.asarray(cell, dtype=float).T, np.reshape(points, (-1, 3)).T).T * shape
    i0 = np.floor(frac).astype(int)
    t = frac - i0
    out = np.zeros(len(frac))
    for corner in np.ndindex(2, 2, 2):
        weight = np.prod(np.where(corner, t, 1.0 - t), axis=1)
        out += weight * density[tuple(((i0 + corner) % shape).T)]
    return out


def plane_at_height(density: np.ndarray, cell: Any, z: float) -> np.ndarray:
    """A sheet's grid quantity at height ``z`` (Å; a3 along z) on the grid's in-plane points, linear between its
    planes: a constant-height STM image of a window's density."""
    nz = density.shape[2]
    x = z / float(np.asarray(cell)[2, 2]) * nz
    i, frac = int(np.floor(x)) % nz, x - np.floor(x)
    return (1.0 - frac) * density[:, :, i] + frac * density[:, :, (i + 1) % nz]


class RealSpaceStates:
    """The real-space getters of the calculator (which provides ``_owner``, ``_lock``, ``parameters``, ``asm``,
    ``solution``, ``_lindep``, ``results`` and ASE's getters)."""

    # Keyed by the assembler object itself (not its id, which a new one may reuse) and the spacing; dropped when
    # the calculator is copied or pickled.
    _grid_cache: tuple | None = None  # (asm, spacing, OrbitalImages, shape, points)
    _state_cache: tuple | None = None  # (asm, spacing, k index, Bloch functions on the grid)
    _vector_cache: tuple | None = None  # (asm, k index, coefficients of every band there)

    def _cache_key(self) -> tuple:
        return self.asm, float(self.parameters.grid_spacing)

    def _is_current(self, cache: tuple | None) -> bool:
        asm, spacing = self._cache_key()
        return cache is not None and cache[0] is asm and cache[1] == spacing

    # -- the grid and the orbitals on it ---------------------------------------------------------------
    def _grid(self) -> tuple[OrbitalImages, tuple[int, int, int], np.ndarray]:
        self._result("eigenvalues")  # predicts first: asm is this structure's
        if not self._is_current(self._grid_cache):
            self._grid_cache = (*self._cache_key(), *orbital_grid(self.asm.ham, float(self.parameters.grid_spacing)))
        return self._grid_cache[2:]

    def get_number_of_grid_points(self) -> np.ndarray:
        """The real-space grid's shape (from ``grid_spacing`` and the cell)."""
        with self._lock:
            return np.array(self._grid()[1])

    def _states(self, kpts: np.ndarray, weights: np.ndarray | None = None, select: Any = None
                ) -> tuple[electronic.KSolution, list[tuple[np.ndarray, np.ndarray]] | None]:
        """Energies (eV) and S(k)-orthonormal coefficients at fractional ``kpts``: the bands of the calculator's
        own solution (a window near sigma for a large cell). With ``select(energies) -> mask`` (applied to each
        k-point's own levels) only the selected levels are kept, as (energies, coefficients (norb, n)) per
        k-point beside a solution without vectors: a mesh's every state would not fit in memory. A crystal's
        dense meshes are solved in batches of k-points (``electronic.velocity.solve_batched``: one LAPACK call
        per batch, not one per k-point)."""
        sol, kpts = self.solution, np.reshape(kpts, (-1, 3))
        if sol.sparse or len(kpts) == 1:  # one k-point (Γ of a molecule) in real arithmetic: its states stay real
            kw = dict(sparse=True, sigma=sol.sigma, n_bands=sol.nbands) if sol.sparse else {}
            out = electronic.solve_k(self.asm, kpts, vectors=True, lindep=self._lindep, weights=weights, **kw)
            pairs = [(e, c if select is None else c[:, select(e)]) for e, c in zip(out.energies, out.vectors)]
        else:
            pairs = []
            step = max(1, min(BATCH_KPOINTS, CACHE_BYTES // (32 * self.asm.norb ** 2)))  # a batch's H(k), S(k)
            for start in range(0, len(kpts), step):
                hk, sk = electronic.bloch_dense(self.asm.ham, kpts[start:start + step])
                batch: list = [None] * len(hk)
                for idx, e, c in solve_batched(hk, sk, self._lindep):
                    for i, ei, ci in zip(idx, e, c):
                        batch[i] = (ei, ci if select is None else ci[:, select(ei)])
                pairs.extend(batch)
        nb = min(len(e) for e, _ in pairs)  # rectangular, as solve_k: the directions kept at every k
        energies = np.array([e[:nb] for e, _ in pairs])
        if select is None:
            return electronic.KSolution(kpts, energies, [c[:, :nb] for _, c in pairs],
                                        kpoint_weights(weights, len(kpts)), sparse=sol.sparse), None
        kept = [(e[select(e)], c) for e, c in pairs]
        return electronic.KSolution(kpts, energies, None, kpoint_weights(weights, len(kpts)), sparse=sol.sparse), kept

    def _state(self, k: np.ndarray, kpt: int, vector: np.ndarray) -> np.ndarray:
        """One state ``chi_k @ vector`` on the grid. The Bloch functions of every orbital at the last ``kpt`` are
        kept while they fit :data:`CACHE_BYTES` (ASE's STM asks for band after band at one k-point); a larger
        grid gets the state alone, batch by batch."""
        images, _, points = self._grid()
        if len(points) * images.norb * 16 > CACHE_BYTES:
            return images.states(points, k, vector[:, None])[:, 0]
        if not (self._is_current(self._state_cache) and self._state_cache[2] == kpt):
            self._state_cache = (*self._cache_key(), kpt, images.orbitals(points, k))
        return self._state_cache[3] @ vector

    def get_pseudo_wave_function(self, band: int = 0, kpt: int = 0, spin: int = 0, broadband: bool = False,
                                 pad: bool = True) -> np.ndarray:
        """Bloch state ``band`` at the calculator's k-point ``kpt`` on the grid (complex, Å^-3/2, normalized over
        the cell; a molecule's is real). ``pad`` is accepted for ASE's signature (the grid is always the whole
        cell); ``broadband`` is GPAW's and refused."""
        if spin != 0:
            raise IndexError("TraceGradCalculator is spin-restricted: only spin 0 exists")
        if broadband:
            raise ParameterError("broadband is GPAW's option; a TraceGrad state is one band at one k-point")
        with self._lock:
            kpts = self.get_ibz_k_points()
            nbands = self.get_number_of_bands()
            if not 0 <= int(kpt) < len(kpts):
                raise IndexError(f"kpt {kpt} out of range: the calculator has {len(kpts)} k-points")
            if not 0 <= int(band) < nbands:
                raise IndexError(f"band {band} out of range: the calculator has {nbands} bands")
            # ASE's STM and Wannier tools ask band after band at one k-point: solve it once
            cache = self._vector_cache
            if not (cache is not None and cache[0] is self.asm and cache[1] == int(kpt)):
                self._vector_cache = cache = (self.asm, int(kpt), self._states(kpts[int(kpt)])[0].vectors[0])
            psi = self._state(kpts[int(kpt)], int(kpt), cache[2][:, int(band)])
            psi = psi.reshape(self._grid()[1])
            return psi.real.copy() if not np.any(self.asm.ham.atoms.pbc) else psi

    # -- densities ---------------------------------------------------------------------------------------
    def _density_mesh(self, kpts: Any) -> tuple[np.ndarray, np.ndarray]:
        """Every k-point of a mesh (densities are not symmetrized, so no irreducible wedge) and their weights."""
        atoms = self._owner()
        if not np.any(atoms.pbc):
            return np.zeros((1, 3)), np.ones(1)
        if kpts is not None:
            mesh, _, _ = response_mesh(atoms, kpts, "a density", use_symmetry=False)
            return mesh, np.full(len(mesh), 1.0 / len(mesh))
        if is_path_or_list(self.parameters.kpts):
            raise ParameterError("a density needs a k-mesh, but the calculator's kpts are a band path or a list: "
                                 "pass kpts=(n1, n2, n3)")
        mesh, weights, _ = resolve_kpoints(atoms, Parameters(self.parameters, symmetry=False))
        return mesh, np.full(len(mesh), 1.0 / len(mesh)) if weights is None else weights

    def get_pseudo_density(self, spin: int | None = None, pad: bool = True, kpts: Any = None,
                           progress: bool = False) -> np.ndarray:
        """Valence electron density (electrons/Å³) on the grid, from the occupations at this prediction's E_F on
        every point of the calculator's k-mesh (or of the mesh ``kpts``). Warns (:class:`GridWarning`) where its
        integral misses the electron count by more than 2 % (grid too coarse, or a box too small)."""
        if spin not in (None, 0):
            raise IndexError("TraceGradCalculator is spin-restricted: only spin 0 exists")
        with self._lock:
            ef = self.get_fermi_level()
            if self.solution.sparse:
                raise PropertyNotImplementedError("the valence density needs every occupied level; this structure "
                                                  "was solved for a window of bands near sigma (sparse solver)")
            mesh, weights = self._density_mesh(kpts)
            p, nelec = self.parameters, self.results["n_electrons"]
            # levels above E_F + 40 widths hold < 1e-17 electrons: their coefficients are not kept
            top = ef + (DEGENERACY_TOL if p.smearing == "none" else OCCUPIED_WIDTHS * p.width)
            sol, kept = self._states(mesh, weights, select=lambda e: e <= top)
            if p.smearing == "none":  # levels at E_F share the electrons left: the whole mesh decides
                full = electronic.occupations(sol.energies, ef, "none", p.width, sol.weights, nelec)
                filling = [full[i, :len(e)] for i, (e, _) in enumerate(kept)]
            else:
                filling = [electronic.occupations(e, ef, p.smearing, p.width) for e, _ in kept]
            states = [(k, c, w * f) for k, (_, c), w, f in zip(sol.kpts, kept, sol.weights, filling)]
            rho = states_density(self._grid(), states, progress)
            volume = abs(np.linalg.det(self.asm.ham.atoms.cell[:]))
            counted = float(rho.mean() * volume)
            if abs(counted - nelec) > CHARGE_TOLERANCE * nelec:
                warnings.warn(GridWarning(f"the density on the grid holds {counted:.3f} of the structure's {nelec} "
                                          "electrons: use a smaller grid_spacing (an all-electron basis' core "
                                          "orbitals need ~0.05 Å), or more vacuum around the atoms"),
                              stacklevel=user_stacklevel())
            return rho

    def get_partial_density(self, emin: float, emax: float, kpts: Any = None, progress: bool = False) -> np.ndarray:
        """Density (electrons/Å³, both spins) of the states between E_F + ``emin`` and E_F + ``emax`` (eV), every
        one counted as filled: VASP's band-decomposed charge density, and the Tersoff-Hamann STM image of a bias V
        (the window from E_F to E_F + V). On every point of the calculator's k-mesh, or of the mesh ``kpts``."""
        emin, emax = _real("emin (eV)", emin), _real("emax (eV)", emax)
        if not emin < emax:
            raise ParameterError(f"the energy window needs emin < emax, got {emin:g} and {emax:g} eV")
        with self._lock:
            ef = self.get_fermi_level()
            mesh, weights = self._density_mesh(kpts)
            low, high = ef + emin, ef + emax
            sol, kept = self._states(mesh, weights, select=lambda e: window_filling(e, low, high) > 0)
            e = sol.energies
            if sol.sparse and not (np.all(e.min(axis=1) < ef + emin) and np.all(ef + emax < e.max(axis=1))):
                raise ParameterError(f"the window E_F{emin:+g} to E_F{emax:+g} eV reaches past the levels solved "
                                     f"near sigma ({e.min(axis=1).max() - ef:+.2f} to {e.max(axis=1).min() - ef:+.2f}"
                                     " eV from E_F at some k-point): raise n_bands")
            states = [(k, c, np.full(c.shape[1], w * SPIN_DEGENERACY)) for k, (_, c), w in zip(sol.kpts, kept,
                                                                                               sol.weights)]
            return states_density(self._grid(), states, progress)
