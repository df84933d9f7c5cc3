"""pymatgen adapter: structure round trips, symmetry k-paths in the user's cell, BandStructureSymmLine, CompleteDos
and effective masses, on a small random carbon model (nonsense bands, but they must be self-consistent)."""

import importlib.util

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, graphene, make_supercell, molecule
from pymatgen.core import Element, Lattice, Molecule, Structure
from pymatgen.electronic_structure.bandstructure import BandStructureSymmLine
from pymatgen.electronic_structure.core import OrbitalType, Spin
from pymatgen.electronic_structure.plotter import BSPlotter, DosPlotter

from conftest import random_rotation
from conftest import toy_model as _model
from tracegrad_ase.calculator import TraceGradCalculator
from tracegrad_ase.interop.pymatgen import (
    HBAR2_OVER_2ME,
    band_structure,
    complete_dos,
    effective_masses,
    symm_kpath,
    to_atoms,
    to_pymatgen,
)

GAMMA = "\\Gamma"


def _sheet(a=2.46):
    atoms = graphene(a=a, vacuum=5.0)
    atoms.pbc = [True, True, False]
    return atoms


def _rotated(atoms, rot):
    out = atoms.copy()
    out.positions = atoms.positions @ rot.T
    out.cell = atoms.cell[:] @ rot.T
    return out


def _same_atoms(a, b):
    assert np.allclose(a.positions, b.positions, atol=1e-10)
    assert np.allclose(a.cell[:], b.cell[:], atol=1e-10)
    assert list(a.numbers) == list(b.numbers)
    assert list(a.pbc) == list(b.pbc)


# -- structures -------------------------------------------------------------------------------------------------
def test_round_trips_bulk_slab_and_molecule():
    dia = bulk("C", "diamond", a=3.567)
    s = to_pymatgen(dia)
    assert isinstance(s, Structure) and "pbc" not in s.properties
    back = to_atoms(s)
    _same_atoms(dia, back)
    assert type(back) is Atoms and back.info == {}

    sheet = _sheet()
    s = to_pymatgen(sheet)
    assert isinstance(s, Structure) and s.properties["pbc"] == [True, True, False]
    _same_atoms(sheet, to_atoms(s))
    # Through a file format the slab's pbc is gone (POSCAR knows only 3D crystals): the argument restores it.
    from_file = Structure.from_str(s.to(fmt="poscar"), fmt="poscar")
    assert list(to_atoms(from_file).pbc) == [True, True, True]
    assert list(to_atoms(from_file, pbc=[True, True, False]).pbc) == [True, True, False]

    water = molecule("H2O")
    mol = to_pymatgen(water)
    assert isinstance(mol, Molecule)
    _same_atoms(water, to_atoms(mol))
    boxed = water.copy()
    boxed.center(vacuum=4.0)
    _same_atoms(boxed, to_atoms(to_pymatgen(boxed)))  # the box comes back from Molecule.properties

    with pytest.raises(ValueError, match="three cell vectors"):
        to_pymatgen(graphene(a=2.46))  # no length along z


# -- k-paths ----------------------------------------------------------------------------------------------------
def _k_points_labelled(kpts, labels, name):
    return kpts[[i for i, lab in enumerate(labels) if lab == name]]


def test_symm_kpath_graphene_in_any_cell_setting():
    sheet = _sheet()
    kpts, labels, prim = symm_kpath(sheet, line_density=20)
    assert isinstance(prim, Structure)
    assert {lab for lab in labels if lab} == {GAMMA, "M", "K"}  # the out-of-plane A, L, H segments are dropped
    assert np.all(kpts[:, 2] == 0)
    setting = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1]])  # a 60° cell instead of ASE's 120° one, and rotated
    other = _rotated(make_supercell(sheet, setting), random_rotation(np.random.default_rng(3)))
    for cell, p in ((sheet, np.eye(3)), (other, setting)):
        k, lab = symm_kpath(cell)[:2]
        assert lab == labels
        # The same Cartesian path up to the rotation: the lengths |k| (2π included) agree point by point.
        assert np.allclose(np.linalg.norm(k @ (2 * np.pi * cell.cell.reciprocal()), axis=1),
                           np.linalg.norm(kpts @ (2 * np.pi * sheet.cell.reciprocal()), axis=1), atol=1e-10)
        # K, taken back to the 120° cell (k_other = k_sheet @ P.T), is (1/3, 1/3, 0) or an equivalent corner:
        # modulo reciprocal lattice vectors (1/3, 1/3) or (2/3, 2/3).
        k_sheet = _k_points_labelled(k, lab, "K") @ np.linalg.inv(p).T
        assert np.allclose(k_sheet[:, 2], 0)
        for f in np.mod(k_sheet[:, :2] + 1e-9, 1.0):
            assert np.allclose(f, [1 / 3, 1 / 3], atol=1e-8) or np.allclose(f, [2 / 3, 2 / 3], atol=1e-8)
        assert np.allclose(np.linalg.norm(k_sheet @ (2 * np.pi * sheet.cell.reciprocal()), axis=1),
                           4 * np.pi / (3 * 2.46))
    assert np.allclose(_k_points_labelled(kpts, labels, GAMMA), 0)

    k_lm, labels_lm, _ = symm_kpath(sheet, path_type="latimer_munro")
    assert "Γ" in labels_lm and np.all(k_lm[:, 2] == 0)
    if importlib.util.find_spec("seekpath") is None:
        with pytest.raises(ImportError, match="seekpath"):
            symm_kpath(sheet, path_type="hinuma")
    else:
        k_hin, labels_hin, _ = symm_kpath(sheet, path_type="hinuma")
        assert "GAMMA" in labels_hin and np.all(k_hin[:, 2] == 0)  # seekpath spells it out
    with pytest.raises(ValueError, match="needs a periodic structure"):
        symm_kpath(molecule("H2O"))
    with pytest.raises(ValueError, match="path_type must be one of"):
        symm_kpath(sheet, path_type="curtarolo")


def test_same_bands_in_another_setting(carbon):
    """The same crystal, rotated and with other cell vectors, gives the same bands along the path (float64 model:
    equal to ~1e-12 eV; a float32 model to its rounding, a few 1e-5 eV on bands spanning ~30 eV)."""
    dia = bulk("C", "diamond", a=3.567)
    other = _rotated(make_supercell(dia, [[1, 0, 0], [1, 1, 0], [0, 1, 1]]), random_rotation(np.random.default_rng(7)))
    sheet = _sheet()
    other_sheet = _rotated(make_supercell(sheet, [[1, 1, 0], [0, 1, 0], [0, 0, 1]]),
                           random_rotation(np.random.default_rng(3)))
    for a, b, mesh in ((dia, other, (3, 3, 3)), (sheet, other_sheet, (3, 3, 1))):
        calc = TraceGradCalculator(carbon, kpts=mesh, dtype=torch.float64)
        ea = band_structure(calc, a).bands[Spin.up]
        eb = band_structure(calc, b).bands[Spin.up]
        assert ea.shape == eb.shape and np.abs(ea - eb).max() < 1e-5
    # A supercell: the path is the primitive cell's, so its folded bands contain the primitive ones.
    folded = band_structure(calc, make_supercell(sheet, [[2, 0, 0], [0, 1, 0], [0, 0, 1]])).bands[Spin.up]
    assert folded.shape == (2 * ea.shape[0], ea.shape[1])
    assert np.abs(folded[:, None, :] - ea[None, :, :]).min(axis=0).max() < 1e-5
    e32 = band_structure(carbon, other, fermi_kpts=(3, 3, 3)).bands[Spin.up]
    e32a = band_structure(carbon, dia, fermi_kpts=(3, 3, 3)).bands[Spin.up]
    assert np.abs(e32 - e32a).max() < 2e-4


# -- band structure ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hydrogen(tmp_path_factory):
    return _model(tmp_path_factory.mktemp("m"), "sto-3g", ["H", "O"])


def _h2_crystal():
    """Well separated H2 molecules: the random sto-3g model gives an insulator (gap ~6 eV)."""
    return Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]], cell=[4.0, 4.2, 4.5], pbc=True)


@pytest.mark.parametrize("system", ["graphene", "h2"])
def test_band_structure_matches_the_calculator(carbon, hydrogen, system, tmp_path):
    model, atoms, mesh, metal = ((carbon, _sheet(), (4, 4, 1), True) if system == "graphene"
                                 else (hydrogen, _h2_crystal(), (2, 2, 2), False))
    user = TraceGradCalculator(model, kpts=mesh)
    atoms.calc = user
    ef_mesh = user.get_fermi_level()
    bs = band_structure(user, atoms)
    assert isinstance(bs, BandStructureSymmLine)
    assert user.parameters.kpts == mesh and user.get_fermi_level() == ef_mesh  # the user's calculator untouched
    assert bs.efermi == pytest.approx(ef_mesh, abs=1e-9)  # E_F from the user's mesh, not the path
    kpts, labels, _ = symm_kpath(atoms)
    ref = TraceGradCalculator(model, kpts=kpts, fermi_kpts=mesh)
    ref.calculate(atoms.copy())
    assert np.allclose(bs.bands[Spin.up], ref.results["eigenvalues"][0].T, atol=1e-9)
    gap = ref.get_band_gap()
    assert gap["metal"] is metal and bs.is_metal() is metal
    assert bs.get_band_gap()["energy"] == pytest.approx(gap["gap"], abs=1e-9)
    if not metal:
        assert bs.get_vbm()["energy"] == pytest.approx(gap["vbm"], abs=1e-9)
        assert bs.get_cbm()["energy"] == pytest.approx(gap["cbm"], abs=1e-9)
        masses = effective_masses(bs, atoms)
        assert np.isfinite(masses["electron"]) and np.isfinite(masses["hole"])
        assert masses["k_cbm"].shape == (3,) and masses["electron_directions"]
        near = np.argmin(np.linalg.norm(kpts - masses["k_cbm"], axis=1))  # k_cbm is a path point in the user's cell
        assert np.abs(ref.results["eigenvalues"][0, near] - gap["cbm"]).min() < 1e-9
    else:
        with pytest.raises(ValueError, match="metallic"):
            effective_masses(bs, atoms)
    assert {k.label for k in bs.kpoints} - {None} == {lab for lab in labels if lab}
    ax = BSPlotter(bs).get_plot()
    ax.figure.savefig(tmp_path / "bands.png")
    assert (tmp_path / "bands.png").stat().st_size > 1000


# -- density of states ------------------------------------------------------------------------------------------
def test_complete_dos_projections_add_up(carbon, tmp_path):
    sheet = _sheet()
    sheet.calc = TraceGradCalculator(carbon, kpts=(4, 4, 1))
    cdos = complete_dos(sheet.calc, width=0.2)
    total = cdos.densities[Spin.up]
    grid = cdos.energies
    assert np.allclose(total, sheet.calc.get_dos(grid, width=0.2), atol=1e-12)
    parts = sum(p[Spin.up] for site in cdos.pdos.values() for p in site.values())
    assert np.abs(parts - total).max() < 1e-6 * max(1.0, total.max())
    assert np.trapezoid(total, grid) == pytest.approx(2 * sheet.calc.get_number_of_bands(), rel=1e-3)
    element = cdos.get_element_dos()
    assert set(element) == {Element("C")}
    assert np.allclose(element[Element("C")].densities[Spin.up], total, atol=1e-8)
    spd = cdos.get_spd_dos()
    assert set(spd) == {OrbitalType.s, OrbitalType.p}
    by_l = sheet.calc.get_dos(grid, width=0.2, by="l")
    assert np.allclose(spd[OrbitalType.p].densities[Spin.up], by_l["p"], atol=1e-8)
    by_atom = sheet.calc.get_dos(grid, width=0.2, by="atom")
    for i, site in enumerate(cdos.structure):
        assert np.allclose(cdos.get_site_dos(site).densities[Spin.up], by_atom[i], atol=1e-8)
    plotter = DosPlotter()
    plotter.add_dos("Total", cdos)
    plotter.add_dos_dict(element)
    ax = plotter.get_plot()
    ax.figure.savefig(tmp_path / "dos.png")
    assert (tmp_path / "dos.png").stat().st_size > 1000

    dimer = Atoms("C2", positions=[[0, 0, 0], [0, 0, 1.3]])  # a molecule: no cell, one site per atom still
    dimer.calc = TraceGradCalculator(carbon)
    mdos = complete_dos(dimer.calc, width=0.2)
    assert len(mdos.structure) == 2
    assert np.allclose(sum(p[Spin.up] for s in mdos.pdos.values() for p in s.values()), mdos.densities[Spin.up],
                       atol=1e-8)



def test_complete_dos_solves_with_the_calculators_overlap_threshold(carbon):
    """Projections come from the calculator's own solution: with lindep dropping directions (gth-szv graphene's
    S(k) reaches ~0.1), they still add up to its total DOS (they did not when the adapter solved at 1e-6)."""
    sheet = _sheet()
    sheet.calc = TraceGradCalculator(carbon, kpts=(4, 4, 1), lindep=0.3)
    cdos = complete_dos(sheet.calc, width=0.2)
    total = cdos.densities[Spin.up]
    assert sheet.calc.get_number_of_bands() < 8  # directions were dropped, so the test means something
    parts = sum(p[Spin.up] for site in cdos.pdos.values() for p in site.values())
    assert np.abs(parts - total).max() < 1e-6 * max(1.0, total.max())


# -- effective masses -------------------------------------------------------------------------------------------
def _parabola_bands(frac_path, labels, m_e=0.5, m_h=0.8, a=4.0):
    """A synthetic BandStructureSymmLine on a cubic lattice: E_c = 1 + ħ²k²/2m_e, E_v = -ħ²k²/2m_h."""
    rec = Lattice.cubic(a).reciprocal_lattice
    kcart = np.asarray(frac_path) @ rec.matrix
    k2 = (kcart**2).sum(axis=1)
    bands = np.array([-HBAR2_OVER_2ME * k2 / m_h, 1.0 + HBAR2_OVER_2ME * k2 / m_e])
    labels_dict = {lab: kcart[i] for i, lab in enumerate(labels) if lab}
    return BandStructureSymmLine(kcart, {Spin.up: bands}, rec, 0.5, labels_dict, coords_are_cartesian=True)


def _line(start, end, n):
    return [np.asarray(start) + t * (np.asarray(end) - np.asarray(start)) for t in np.linspace(0, 1, n)]


def test_effective_mass_of_a_parabola():
    # The edge inside a branch: centred stencil.
    path = _line([-0.5, 0, 0], [0.5, 0, 0], 41)
    bs = _parabola_bands(path, ["X'"] + [""] * 39 + ["X"])
    out = effective_masses(bs, Atoms(cell=np.eye(3) * 4.0, pbc=True))
    assert out["electron"] == pytest.approx(0.5, rel=0.01) and out["hole"] == pytest.approx(0.8, rel=0.01)
    assert np.allclose(out["k_cbm"], 0) and np.allclose(out["k_vbm"], 0)
    assert len(out["electron_directions"]) == 1
    # The edge at special points where branches start and end: one-sided stencils, one per direction.
    path = (_line([0, 0, 0], [0.5, 0, 0], 11) + _line([0.5, 0, 0], [0.5, 0.5, 0], 11)
            + _line([0.5, 0.5, 0], [0, 0, 0], 15))
    labels = [GAMMA] + [""] * 9 + ["X", "X"] + [""] * 9 + ["M", "M"] + [""] * 13 + [GAMMA]
    out = effective_masses(_parabola_bands(path, labels))
    assert out["label_cbm"] == GAMMA and len(out["electron_directions"]) == 2  # Γ-X and Γ-M
    for d in out["electron_directions"]:
        assert d["mass"] == pytest.approx(0.5, rel=0.01)
    assert out["electron"] == pytest.approx(0.5, rel=0.01) and out["hole"] == pytest.approx(0.8, rel=0.01)
