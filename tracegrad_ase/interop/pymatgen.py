"""pymatgen adapter: structures, symmetry k-paths, band structures, projected DOS and effective masses.

Conversions go through pymatgen's own :class:`~pymatgen.io.ase.AseAtomsAdaptor`; k-paths come from
:class:`~pymatgen.symmetry.bandstructure.HighSymmKpath`; results are pymatgen's own objects
(:class:`~pymatgen.electronic_structure.bandstructure.BandStructureSymmLine`,
:class:`~pymatgen.electronic_structure.dos.CompleteDos`), so ``BSPlotter``, ``DosPlotter``, ``get_band_gap()``,
``get_element_dos()`` ... work on them unchanged.

Conventions: energies in eV, lengths in Å, reciprocal vectors with the 2π factor (pymatgen's
``Lattice.reciprocal_lattice``; ASE's ``cell.reciprocal()`` lacks it). Fractional k-points are always given in
the reciprocal basis of the *user's* cell, which is what :class:`~tracegrad_ase.calculator.TraceGradCalculator`
takes (``H(k) = sum_R exp(2 pi i k.R) H(R)`` with R integer multiples of that cell).

No torch here: the calculator (and with it the network) is imported only where a model has to run.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms
from ase.units import Bohr, Hartree
from pymatgen.core import Lattice, Molecule, Structure
from pymatgen.core.structure_matcher import StructureMatcher
from pymatgen.electronic_structure.bandstructure import BandStructureSymmLine
from pymatgen.electronic_structure.core import OrbitalType, Spin
from pymatgen.electronic_structure.dos import CompleteDos, Dos
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from pymatgen.symmetry.bandstructure import HighSymmKpath

from .. import electronic
from ..core.symmetry import orbit_mean
from ..core.basis import symbol_of
from ..parameters import effective_lindep

if TYPE_CHECKING:
    from ..calculator import TraceGradCalculator

__all__ = [
    "HBAR2_OVER_2ME",
    "PATH_TYPES",
    "band_structure",
    "complete_dos",
    "effective_masses",
    "symm_kpath",
    "to_atoms",
    "to_pymatgen",
]

#: ħ²/(2 m_e) in eV·Å² (= Hartree·Bohr²/2 = 3.80998 from ase.units): E = HBAR2_OVER_2ME k² / (m*/m_e).
HBAR2_OVER_2ME = 0.5 * Hartree * Bohr**2

#: The k-path conventions of HighSymmKpath offered here ("hinuma" needs the seekpath package).
PATH_TYPES = ("setyawan_curtarolo", "hinuma", "latimer_munro")

# Keys this module adds to Structure/Molecule.properties (they come back as Atoms.info through the adaptor, so
# to_atoms removes them again).
_PBC_KEY = "pbc"
_CELL_KEY = "cell"

# A k component this close to an integer counts as zero along a non-periodic direction.
_KTOL = 1e-8


# -- structures ---------------------------------------------------------------------------------------------------
def to_pymatgen(atoms: Atoms) -> Structure | Molecule:
    """``ase.Atoms`` -> pymatgen ``Structure`` (any periodic direction) or ``Molecule`` (none).

    A slab or wire (pbc e.g. ``[T, T, F]``) keeps its full cell; its pbc is kept on ``structure.lattice.pbc`` by
    the adaptor and, because file formats (POSCAR, CIF) and several pymatgen transformations rebuild the
    lattice with pbc all True, also in ``structure.properties["pbc"]``, which :func:`to_atoms` reads back. A
    Molecule has no lattice: a non-zero cell is kept in ``molecule.properties["cell"]``.
    """
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if not pbc.any():
        mol = AseAtomsAdaptor.get_molecule(atoms)
        if atoms.cell.rank > 0:
            mol.properties[_CELL_KEY] = atoms.cell[:].tolist()
        return mol
    if atoms.cell.rank < 3:
        raise ValueError("a pymatgen Structure needs three cell vectors: give the non-periodic direction(s) a "
                         "length, e.g. atoms.center(vacuum=10.0, axis=2)")
    structure = AseAtomsAdaptor.get_structure(atoms)
    if not pbc.all():
        structure.properties[_PBC_KEY] = pbc.tolist()
    return structure


def to_atoms(structure_or_molecule: Structure | Molecule, pbc: Any = None) -> Atoms:
    """pymatgen ``Structure`` / ``Molecule`` -> plain ``ase.Atoms``.

    ``pbc`` (a bool or three) wins; otherwise ``properties["pbc"]`` written by :func:`to_pymatgen`; otherwise the
    lattice's own pbc (all True for a Structure read from a file: the adaptor cannot know a slab then, so pass
    ``pbc=[True, True, False]``). A Molecule gives pbc False and the cell stored by :func:`to_pymatgen`, if any.
    """
    s = structure_or_molecule
    atoms = AseAtomsAdaptor.get_atoms(s, msonable=False)
    stored_pbc = atoms.info.pop(_PBC_KEY, None)
    stored_cell = atoms.info.pop(_CELL_KEY, None)
    if isinstance(s, Molecule) and stored_cell is not None:
        atoms.cell = np.asarray(stored_cell, dtype=float)
    if pbc is not None:
        atoms.pbc = pbc
    elif stored_pbc is not None and not isinstance(s, Molecule):
        atoms.pbc = np.asarray(stored_pbc, dtype=bool)
    return atoms


def _bulk_structure(atoms: Atoms) -> Structure:
    """The atoms as a fully periodic Structure in the user's frame: spglib treats every cell as a 3D crystal
    anyway, and a partly periodic lattice would change pymatgen's distance searches in the matcher."""
    if atoms.cell.rank < 3:
        raise ValueError("symm_kpath needs three cell vectors: give the non-periodic direction(s) a length, "
                         "e.g. atoms.center(vacuum=10.0, axis=2)")
    return Structure(Lattice(atoms.cell[:]), atoms.get_chemical_symbols(), atoms.positions,
                     coords_are_cartesian=True)


# -- k-paths ------------------------------------------------------------------------------------------------------
def _setting_matrix(user: Structure, path_structure: Structure) -> np.ndarray:
    """Integer M with ``user cell = M @ path cell`` up to a rotation, such that the atoms map too (not only the
    lattices: a lattice with more symmetry than its crystal has mappings that would send a k-point to an
    inequivalent one)."""
    matcher = StructureMatcher(ltol=0.02, stol=0.05, angle_tol=1.0, primitive_cell=False, scale=False,
                               attempt_supercell=True)
    found = matcher.get_transformation(user, path_structure)
    if found is None:
        raise ValueError("could not map the k-path's standard cell onto the given cell (the symmetry search and "
                         "the structure matcher disagree: try another symprec)")
    m = np.asarray(found[0], dtype=float)
    # The matcher works within tolerances: check the metric so a wrong mapping cannot pass silently.
    lu, lp = user.lattice.matrix, path_structure.lattice.matrix
    g_user, g_mapped = lu @ lu.T, m @ lp @ lp.T @ m.T
    if not np.allclose(g_user, g_mapped, atol=1e-3 * np.abs(g_user).max()):
        raise ValueError("the k-path's standard cell does not map onto the given cell within 1e-3 (metric check)")
    return m


def _segments(labels: list[str]) -> list[tuple[int, int]]:
    """(first, last) index of each segment of HighSymmKpath.get_kpoints' output: every segment is
    ``[label, '', ..., '', label]`` (its end point repeated as the next segment's start)."""
    out, i = [], 0
    while i < len(labels):
        j = i + 1
        while j < len(labels) and not labels[j]:
            j += 1
        if j >= len(labels):
            raise ValueError("unexpected k-path layout: a segment without an end label")
        out.append((i, j))
        i = j + 1
    return out


def symm_kpath(
    atoms: Atoms,
    path_type: str = "setyawan_curtarolo",
    line_density: float = 20,
    symprec: float = 0.01,
    angle_tolerance: float = 5.0,
) -> tuple[np.ndarray, list[str], Structure]:
    """High-symmetry k-path of pymatgen's ``HighSymmKpath`` in the frame of ``atoms``' own cell.

    Returns ``(kpts, labels, path_structure)``: ``kpts`` (nk, 3) fractional in the reciprocal basis of
    ``atoms.cell`` (what the calculator takes), ``labels`` with ``''`` for points that are not special
    (pymatgen spelling: ``'\\Gamma'`` for Setyawan-Curtarolo, ``'Γ'`` for Latimer-Munro), and the standard
    primitive Structure the convention defines the path on. Every segment keeps pymatgen's layout, its end
    point repeated as the next segment's start, which is how ``BandStructureSymmLine`` finds its branches.

    The conventions are defined on their standard primitive cell (``SpacegroupAnalyzer``'s, possibly rotated
    and with other lattice vectors than ``atoms``). The path is built there and carried over by the integer
    matrix M that maps that cell onto the user's (user cell = M @ standard cell up to a rotation, found by
    ``StructureMatcher`` so the atoms map as well): ``k_user = k_standard @ M.T``. The same crystal in another
    setting or orientation therefore gets the same Cartesian path and the same bands. A supercell of the
    primitive cell is allowed (its bands are then folded).

    Slabs and wires: segments that leave the plane/line of the periodic directions (k with a non-integer
    component along a non-periodic axis) are dropped, e.g. graphene keeps Γ-M-K-Γ. The vacuum length takes
    part in the symmetry search: a square slab whose vacuum equals its in-plane lattice constant looks cubic.
    """
    if path_type not in PATH_TYPES:
        raise ValueError(f"path_type must be one of {PATH_TYPES}, got {path_type!r}")
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if not pbc.any():
        raise ValueError("a symmetry k-path needs a periodic structure (a Molecule has no Brillouin zone)")
    crystal = _bulk_structure(atoms)
    with warnings.catch_warnings():
        # spglib's deprecation notice about its error handling, and the Setyawan-Curtarolo "input is not the
        # standard primitive" warning: we do pass the standard primitive, and map the path back ourselves.
        warnings.filterwarnings("ignore", message=".*OLD_ERROR_HANDLING.*")
        warnings.filterwarnings("ignore", message=".*does not match the expected standard primitive.*")
        warnings.filterwarnings("ignore", message=".*transformed to the basis of the reciprocal lattice.*")
        try:
            prim = SpacegroupAnalyzer(crystal, symprec=symprec, angle_tolerance=angle_tolerance
                                      ).get_primitive_standard_structure(international_monoclinic=False)
            kpath = HighSymmKpath(prim, path_type=path_type, symprec=symprec, angle_tolerance=angle_tolerance)
        except (ImportError, RuntimeError) as exc:
            if path_type == "hinuma":
                raise ImportError("path_type='hinuma' needs the seekpath package (pip install seekpath)") from exc
            raise ValueError(f"HighSymmKpath ({path_type}) failed for {crystal.formula}: {exc}") from exc
        except Exception as exc:  # pymatgen raises assorted types for cells it cannot classify
            raise ValueError(f"HighSymmKpath ({path_type}) failed for {crystal.formula}: {exc}") from exc
        kcart, labels = kpath.get_kpoints(line_density=line_density, coords_are_cartesian=True)
    if not labels:
        raise ValueError(f"HighSymmKpath ({path_type}) returned an empty path for {crystal.formula}")
    # Setyawan-Curtarolo re-standardizes internally (kpath.prim); the others use the structure they were given.
    path_structure = kpath.prim if path_type == "setyawan_curtarolo" else prim
    rec = path_structure.lattice.reciprocal_lattice  # with 2π, like the Cartesian k of get_kpoints
    k_std = np.asarray(kcart, dtype=float) @ np.linalg.inv(rec.matrix)
    k_user = k_std @ _setting_matrix(crystal, path_structure).T
    k_user[np.abs(k_user) < 1e-12] = 0.0  # -0.0 and rounding dust from the matrix products
    labels = [str(lab) for lab in labels]

    if not pbc.all():
        off = k_user[:, ~pbc]
        flat = np.all(np.abs(off - np.round(off)) < _KTOL, axis=1)
        keep = [(a, b) for a, b in _segments(labels) if flat[a] and flat[b]]
        if not keep:
            raise ValueError(f"no segment of the {path_type} path lies in the periodic directions {pbc.tolist()}")
        idx = np.concatenate([np.arange(a, b + 1) for a, b in keep])
        k_user, labels = k_user[idx], [labels[i] for i in idx]
    return k_user, labels, path_structure


# -- band structure -----------------------------------------------------------------------------------------------
def _path_calculator(calc_or_model: Any, kpts: np.ndarray, **calc_kwargs: Any) -> TraceGradCalculator:
    """A calculator on the explicit k-point list: a new one for a model name/path, else a shallow copy of the
    given calculator (its loaded network is shared, its parameters and results are not touched)."""
    from ..calculator import TraceGradCalculator

    if not isinstance(calc_or_model, TraceGradCalculator):
        if not isinstance(calc_or_model, (str, os.PathLike)):
            raise TypeError(f"expected a TraceGradCalculator or a model name/folder, got {type(calc_or_model)}")
        return TraceGradCalculator(calc_or_model, kpts=kpts, **calc_kwargs)
    if calc_kwargs:
        raise TypeError("calculator keywords go with a model name; a calculator instance brings its own")
    # A path cannot count electrons: the copy takes E_F from the user's own mesh (for_kpoints).
    return calc_or_model.for_kpoints(kpts)


def band_structure(
    calc_or_model: Any,
    atoms: Atoms,
    path_type: str = "setyawan_curtarolo",
    line_density: float = 20,
    **calc_kwargs: Any,
) -> BandStructureSymmLine:
    """Bands along the high-symmetry path of :func:`symm_kpath`, as pymatgen's ``BandStructureSymmLine``.

    ``calc_or_model``: a ``TraceGradCalculator`` (copied; its own k-points and results are left alone, and its
    Monkhorst-Pack ``kpts`` become the Fermi mesh when it has no ``fermi_kpts``) or a model name/folder (then
    ``calc_kwargs`` go to the new calculator). The Fermi level comes from the calculator's Fermi mesh, not the
    path. k-points are handed to pymatgen as Cartesian (2π included) on the reciprocal lattice of ``atoms``'
    cell, with ``labels_dict`` at the special points; spin-restricted, so only ``Spin.up`` is present.
    """
    kpts, labels, _ = symm_kpath(atoms, path_type=path_type, line_density=line_density)
    calc = _path_calculator(calc_or_model, kpts, **calc_kwargs)
    work = atoms.copy()
    work.calc = None
    energies = np.asarray(calc.get_property("eigenvalues", work), dtype=float)[0]  # spin 0: (nk, nbands)
    efermi = float(calc.results["fermi_level"])
    rec = Lattice(atoms.cell[:]).reciprocal_lattice
    kcart = kpts @ rec.matrix
    labels_dict = {}
    for lab, k in zip(labels, kcart):
        if lab:
            labels_dict.setdefault(lab, k)
    return BandStructureSymmLine(kcart, {Spin.up: energies.T}, rec, efermi, labels_dict,
                                 coords_are_cartesian=True, structure=to_pymatgen(atoms))


# -- density of states --------------------------------------------------------------------------------------------
def _site_structure(atoms: Atoms) -> Structure:
    """A Structure with one site per atom for CompleteDos (which needs a lattice): a molecule goes in its own
    cell, or a box 10 Å larger than it when it has none."""
    if np.any(atoms.pbc):
        s = to_pymatgen(atoms)
        assert isinstance(s, Structure)
        return s
    if atoms.cell.rank == 3:
        lattice = Lattice(atoms.cell[:])
    else:
        span = np.ptp(atoms.positions, axis=0) if len(atoms) else np.zeros(3)
        lattice = Lattice(np.diag(span + 10.0))
    return Structure(lattice, atoms.get_chemical_symbols(), atoms.positions, coords_are_cartesian=True)


def complete_dos(calc: TraceGradCalculator, energies: Any = None, width: float = 0.1) -> CompleteDos:
    """Total and Mulliken-projected DOS (states/eV per cell, both spins, Gaussian ``width`` eV) on the
    calculator's k-points, as pymatgen's ``CompleteDos``.

    The calculator must have a structure (``atoms.calc = calc`` or an earlier ``calculate``). ``energies``:
    absolute grid in eV (default: all bands ± 5 widths, step ≤ width/5). The total is ``calc.get_dos`` under
    ``Spin.up`` (pymatgen's convention for a spin-restricted DOS: both spins in ``Spin.up``).

    Projections: ``pdos[site][OrbitalType]`` per site and angular momentum l (s, p, d, f), all shells of one l on
    one atom summed. This is the simplest form that ``get_element_dos``, ``get_spd_dos``, ``get_site_dos``,
    ``get_site_spd_dos`` and ``get_element_spd_dos`` accept; m-resolved ``Orbital`` keys would need the basis'
    real-harmonic order mapped onto pymatgen's, so ``get_site_orbital_dos`` and ``CompleteDos.from_dict`` (which
    parse ``Orbital`` names) are not supported. Mulliken weights sum to one per band, so the projections add up
    to the total. On a symmetry-reduced mesh (the calculator's default) each site gets the average of its
    crystallographic orbit, which is the full-mesh value.
    """
    efermi = calc.get_fermi_level()  # runs the calculation on the attached structure when needed
    sol, asm = calc.solution, calc.asm
    if sol.sparse:
        raise ValueError("a projected DOS needs all bands: this structure was solved for a window near sigma")
    ham = asm.ham
    e_all = np.asarray(sol.energies, dtype=float)
    if width <= 0:
        raise ValueError("the DOS width must be positive")
    if energies is None:
        lo, hi = e_all.min() - 5 * width, e_all.max() + 5 * width
        grid = np.linspace(lo, hi, max(501, int(np.ceil((hi - lo) / (width / 5))) + 1))
    else:
        grid = np.asarray(energies, dtype=float).ravel()
    total = np.asarray(calc.get_dos(grid, width=width), dtype=float)

    for a, z in enumerate(ham.atoms.numbers):
        if max(ham.basis.shells_of(symbol_of(int(z))), default=0) > 3:
            raise ValueError(f"pymatgen's OrbitalType stops at f; the basis has l > 3 on atom {a}")
    # One group per (atom, l), all shells of one l on one atom summed: electronic's own Mulliken grouping and
    # DOS sum, so the projections add up to the calculator's total DOS.
    # The calculator's own overlap threshold: with the exact-data default (1e-6) a predicted H has spurious levels
    # the calculator's DOS does not, and the projections no longer add up to it.
    vec = electronic.solve_k(asm, sol.kpts, vectors=True, weights=sol.weights,
                             lindep=effective_lindep(calc.parameters, calc.model.model_file))
    pd = electronic.projected_dos(vec, asm, grid, width, by="atom_l")
    if calc.folded:
        pd = orbit_mean(pd, ham.atoms)  # as calc.get_dos(by="atom") does

    structure = _site_structure(ham.atoms)
    pdoss: dict[Any, dict[Any, dict[Spin, np.ndarray]]] = {site: {} for site in structure}
    for (a, l), dos_al in pd.items():
        pdoss[structure[a]][OrbitalType(l)] = {Spin.up: dos_al}
    return CompleteDos(structure, Dos(efermi, grid, {Spin.up: total}), pdoss)


# -- effective masses ---------------------------------------------------------------------------------------------
def _branch_of(bs: BandStructureSymmLine, i: int) -> tuple[int, int, str]:
    for br in bs.branches:
        if br["start_index"] <= i <= br["end_index"]:
            return int(br["start_index"]), int(br["end_index"]), str(br["name"])
    raise IndexError(f"k-point {i} is in no branch")


def _curvatures(bs: BandStructureSymmLine, band: int, indices: list[int]) -> list[dict[str, Any]]:
    """d²E/dk² (eV·Å²) of ``band`` at each k index, along every path direction available there."""
    e = np.asarray(bs.bands[Spin.up][band], dtype=float)
    s = np.asarray(bs.distance, dtype=float)
    cart = np.array([k.cart_coords for k in bs.kpoints])
    found: list[dict[str, Any]] = []
    for i in indices:
        first, last, name = _branch_of(bs, i)
        if first < i < last:
            stencils = [(i - 1, i, i + 1)]  # centred: the edge is inside a straight segment
        else:  # one-sided at a branch end, towards the inside of the branch
            stencils = [(i, i + 1, i + 2)] if i == first else [(i - 2, i - 1, i)]
        for st in stencils:
            if min(st) < first or max(st) > last:
                continue  # a branch of fewer than three points: no parabola
            x, y = s[list(st)], e[list(st)]
            if np.any(np.diff(x) <= 0):
                continue
            # Second divided difference: the parabola through three points has E'' = 2 f[x0, x1, x2].
            c = 2.0 * ((y[2] - y[1]) / (x[2] - x[1]) - (y[1] - y[0]) / (x[1] - x[0])) / (x[2] - x[0])
            d = cart[st[2]] - cart[st[0]]
            d = d / np.linalg.norm(d)
            if any(abs(float(d @ f["direction"])) > 1 - 1e-6 for f in found):
                continue  # the same line reached again (a repeated special point): count it once
            found.append({"curvature": float(c), "direction": d, "branch": name, "k_index": int(i),
                          "stencil": tuple(int(j) for j in st)})
    return found


def effective_masses(bs: BandStructureSymmLine, atoms: Atoms | None = None) -> dict[str, Any]:
    """Electron and hole effective masses (units of m_e) at the CBM and VBM of a band structure on a path.

    Stencil: at the band edge k0 the band is fitted by a parabola E(s) = a s² + b s + c through three path
    points (s = distance along the path, Å⁻¹ with 2π): the centred ``(k-1, k0, k+1)`` when k0 lies inside a
    branch, else the one-sided ``(k0, k+1, k+2)`` / ``(k-2, k-1, k0)`` into each branch that starts or ends at
    k0 (a special point visited several times gives one direction per visit). With E'' = 2a,
    ``m*/m_e = 2 (ħ²/2m_e) / E''`` for electrons and ``-2 (ħ²/2m_e) / E''`` for holes, ħ²/2m_e = 3.80998 eV·Å².
    The directional masses are in ``electron_directions`` / ``hole_directions``; ``electron`` and ``hole`` average
    the curvature over those directions (a harmonic mean of the masses).

    Limits: exact for a parabola; otherwise the result is the curvature over the path spacing (~1/line_density
    Å⁻¹), O(h²) accurate centred but O(h) one-sided, so use a dense path for strongly non-parabolic bands. Only
    directions on the path are seen (an edge off the path, or anisotropy across it, is missed). Of bands
    degenerate at the edge the outermost is taken (the highest-index one at the VBM, lowest at the CBM): the
    band that stays at the edge nearby. A kink in the band at k0 or a wrong-sign curvature gives a
    meaningless, possibly negative or infinite, mass. ``atoms`` (optional) gives ``k_cbm`` / ``k_vbm`` as
    fractional coordinates of its cell, else of the band structure's lattice.
    """
    if bs.is_metal():
        raise ValueError("effective masses need a gap: the band structure is metallic")
    out: dict[str, Any] = {}
    for carrier, edge, sign in (("electron", bs.get_cbm(), 1.0), ("hole", bs.get_vbm(), -1.0)):
        bands = list(edge["band_index"][Spin.up])
        band = max(bands) if carrier == "hole" else min(bands)
        found = _curvatures(bs, band, [int(i) for i in edge["kpoint_index"]])
        if not found:
            raise ValueError(f"no three-point stencil around the {carrier} band edge (branches too short)")
        for f in found:
            f["mass"] = sign * 2.0 * HBAR2_OVER_2ME / f["curvature"] if f["curvature"] else np.inf * sign
        mean_c = float(np.mean([f["curvature"] for f in found]))
        kpt = edge["kpoint"]
        if atoms is not None:
            kfrac = kpt.cart_coords @ atoms.cell[:].T / (2 * np.pi)
        else:
            kfrac = np.asarray(kpt.frac_coords, dtype=float)
        key = "k_cbm" if carrier == "electron" else "k_vbm"
        out[carrier] = sign * 2.0 * HBAR2_OVER_2ME / mean_c if mean_c else np.inf
        out[key] = np.asarray(kfrac, dtype=float)
        out[f"label_{key[2:]}"] = kpt.label
        out[f"{carrier}_directions"] = found
        out[f"{carrier}_band"] = band
    return out
