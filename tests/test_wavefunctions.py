"""States and densities on a real-space grid (engines.pyscf.realspace, wavefunctions, tracegrad stm): the Bloch
functions' overlap on the grid is S(k), the density of a PySCF truth's own H(R), S(R) is PySCF's SCF density, a
molecule's orbitals are PySCF's, ASE's STM reads the calculator, and bad input is refused by name."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from ase import Atoms
from ase.build import graphene

from tracegrad_ase.core.basis import OrbitalBasis
from tracegrad_ase.core.errors import GridWarning, ParameterError, StructureError
from tracegrad_ase.core.units import BOHR_TO_ANGSTROM
from tracegrad_ase.electronic.filling import electron_count, fermi_level, occupations
from tracegrad_ase.electronic.solve import generalized_eigh, solve_k
from tracegrad_ase.engines.pyscf.realspace import OrbitalImages
from tracegrad_ase.wavefunctions import cell_grid, filled_states, orbital_grid, states_density, window_filling

from conftest import calculated_sheet


def _sheet(vacuum: float = 4.0) -> Atoms:
    atoms = graphene(a=2.46, vacuum=vacuum)
    atoms.pbc = [True, True, False]
    return atoms


def test_bloch_functions_on_the_grid_overlap_as_s_of_k(graphene_szv_scf):
    """∫_cell chi_ik^* chi_jk = S_ij(k) of the overlap blocks: phases, orbital order and Å^-3/2 at once."""
    from tracegrad_ase.electronic.bloch import bloch_dense

    _, ham = graphene_szv_scf
    shape, points = cell_grid(ham.atoms, 0.12)
    images = OrbitalImages(ham.atoms, ham.basis, points.min(axis=0), points.max(axis=0))
    k = np.array([0.21, 0.13, 0.0])
    chi = images.orbitals(points, k)
    on_grid = chi.conj().T @ chi * ham.atoms.get_volume() / len(points)
    _, s = bloch_dense(ham, k[None])
    assert np.abs(s[0]).max() > 0.5
    assert np.abs(on_grid - s[0]).max() < 1e-5


def test_density_of_the_truths_hamiltonian_is_pyscfs_scf_density(graphene_szv_scf):
    """States of the stored H(R), S(R) at the SCF's k-points, filled as PySCF filled them, give PySCF's own
    density (its density matrices on its Bloch orbitals) point by point: the whole chain from PySCF's order and
    units to ours and back."""
    run, ham = graphene_szv_scf
    grid = orbital_grid(ham, 0.25)
    sol = solve_k(ham, run.kpts_frac, vectors=True)
    ef = fermi_level(sol.energies, None, electron_count(ham), "fermi-dirac", run.settings.smearing)
    rho = states_density(grid, filled_states(sol, occupations(sol.energies, ef, "fermi-dirac", run.settings.smearing)))
    ao = run.mol.pbc_eval_gto("GTOval_sph", grid[2] / BOHR_TO_ANGSTROM, kpts=run.mf.kpts)
    dm = run.mf.make_rdm1()
    ref = sum(np.einsum("pi,ij,pj->p", a, d, a.conj()).real for a, d in zip(ao, dm)) / len(ao)
    ref = ref.reshape(grid[1]) / BOHR_TO_ANGSTROM ** 3
    assert ref.max() > 0.5
    assert np.abs(rho - ref).max() < 1e-5 * ref.max()
    assert abs(rho.mean() * ham.atoms.get_volume() - 8.0) < 0.02


def test_molecular_orbitals_are_pyscfs():
    """Water in def2-SVP (d shells on O): eigenvectors of a PySCF matrix brought to e3nn order, put on the grid
    by OrbitalImages, are PySCF's own orbitals on it (a transposed p- or d-shell order would mix them)."""
    from pyscf import gto

    atoms = Atoms("OH2", positions=[[0, 0, 0.12], [0, 0.76, -0.47], [0, -0.76, -0.47]])
    atoms.center(vacuum=2.5)
    basis = OrbitalBasis.from_pyscf("def2-svp", ["H", "O"])
    mol = gto.M(atom=[[s, tuple(p)] for s, p in zip(atoms.get_chemical_symbols(), atoms.positions)],
                basis="def2-svp", unit="Angstrom", verbose=0)
    h, s = mol.intor("int1e_kin") + mol.intor("int1e_nuc"), mol.intor("int1e_ovlp")
    _, c_pyscf = generalized_eigh(h, s)
    t = basis.structure_transform(atoms.numbers, "pyscf", "e3nn")
    _, c_ours = generalized_eigh(t @ h @ t.T, t @ s @ t.T)
    shape, points = cell_grid(atoms, 0.3)
    ours = OrbitalImages(atoms, basis, points.min(axis=0), points.max(axis=0)).orbitals(points, np.zeros(3))
    assert np.abs(ours.imag).max() == 0.0
    theirs = mol.eval_gto("GTOval_sph", points / BOHR_TO_ANGSTROM) * BOHR_TO_ANGSTROM ** -1.5
    for n in range(8):  # core, valence and the lowest empty ones; signs are arbitrary
        a, b = ours.real @ c_ours[:, n], theirs @ c_pyscf[:, n]
        assert np.abs(np.abs(a) - np.abs(b)).max() < 1e-8 * np.abs(b).max(), n


@pytest.fixture(scope="module")
def sheet():
    atoms = calculated_sheet("carbon")
    atoms.calc.set(kpts=(6, 6, 1), grid_spacing=0.25)
    return atoms


def test_calculator_states_are_normalized_and_densities_count_electrons(sheet):
    calc = sheet.calc
    assert tuple(calc.get_number_of_grid_points()) == (10, 10, 40)
    volume = sheet.get_volume()
    for band, kpt in [(0, 0), (3, 2), (5, len(calc.get_ibz_k_points()) - 1)]:
        psi = calc.get_pseudo_wave_function(band, kpt)
        assert psi.shape == (10, 10, 40) and np.iscomplexobj(psi)
        assert abs((np.abs(psi) ** 2).mean() * volume - 1.0) < 2e-3
    rho = calc.get_pseudo_density()
    assert abs(rho.mean() * volume - 8.0) < 0.05 and rho.min() >= 0
    # all states from deep below to E_F, every one filled: the density less the smeared states at E_F
    below = calc.get_partial_density(-30.0, 0.0)
    assert abs(below.mean() * volume - 8.0) < 0.3
    window = calc.get_partial_density(-2.0, 0.0)
    assert 0.0 < window.mean() * volume < 1.0


def test_ase_stm_reads_the_calculator(sheet):
    """ASE's own STM (over the calculator's irreducible k-points, per spin) sees the window's density, halved."""
    from ase.dft.stm import STM

    z = sheet.positions[:, 2].max() + 2.0
    ase_current = STM(sheet).get_averaged_current(-1.5, z)
    ours = sheet.calc.get_partial_density(-1.5, 0.0) / 2
    nz = ours.shape[2]
    x = z / sheet.cell[2, 2] * nz
    i, f = int(x), x - int(x)
    mean = (1 - f) * ours[:, :, i].mean() + f * ours[:, :, i + 1].mean()
    assert ase_current > 0
    assert abs(ase_current - mean) < 1e-8 * mean + 1e-14


def test_supercell_density_is_the_primitive_one_tiled(sheet):
    """A 2x1 supercell on the folded mesh has the primitive cell's window density, twice over (a window clear of
    the Dirac point, where float32 round-off would decide which of its levels fall in)."""
    prim = sheet.calc.get_partial_density(-4.0, -0.3, kpts=(6, 6, 1))
    big = sheet.copy()
    big = big.repeat((2, 1, 1))
    big.calc = type(sheet.calc)("carbon", kpts=(3, 6, 1), grid_spacing=0.25)
    sup = big.calc.get_partial_density(-4.0, -0.3)
    assert sup.shape == (20, 10, 40) and prim.max() > 0.01
    assert np.abs(sup - np.concatenate([prim, prim], axis=0)).max() < 1e-3 * prim.max()


def test_bad_requests_are_refused_by_name(sheet, tmp_path):
    calc = sheet.calc
    with pytest.raises(IndexError, match="band 999"):
        calc.get_pseudo_wave_function(999, 0)
    with pytest.raises(IndexError, match="kpt 99"):
        calc.get_pseudo_wave_function(0, 99)
    with pytest.raises(ParameterError, match="broadband"):
        calc.get_pseudo_wave_function(0, 0, broadband=True)
    with pytest.raises(ParameterError, match="emin < emax"):
        calc.get_partial_density(0.5, -0.5)
    with pytest.raises(ParameterError, match="grid_spacing"):
        calc.set(grid_spacing=0.0)
    with pytest.raises(ParameterError, match="more than"):
        cell_grid(sheet, 0.005)
    low = _sheet()
    low.positions[:, 2] -= low.positions[0, 2]  # the sheet on the cell's lower face: half its density outside
    low.positions[:, 2] -= 0.1
    with pytest.raises(StructureError, match="outside the cell along its non-periodic axis 2"):
        cell_grid(low, 0.2)
    with pytest.raises(StructureError, match="needs a cell"):
        cell_grid(Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]]), 0.2)
    path = calculated_sheet("carbon")
    path.calc.set(kpts={"path": "GMKG", "npoints": 10})
    with pytest.raises(ParameterError, match="needs a k-mesh"):
        path.calc.get_pseudo_density()


def test_a_box_that_cuts_the_tails_off_warns_that_it_loses_charge():
    from tracegrad_ase.calculator import TraceGradCalculator

    thin = _sheet(vacuum=0.8)  # the grid spans 1.6 Å across the sheet: the p_z tails fall outside it
    thin.calc = TraceGradCalculator("carbon", kpts=(4, 4, 1), grid_spacing=0.25)
    with pytest.warns(GridWarning, match="of the structure's 8 electrons"):
        thin.calc.get_pseudo_density()


def test_window_filling_counts_both_spins():
    e = np.array([[-2.0, -0.5, 0.5, 2.0]])
    assert window_filling(e, -1.0, 1.0).tolist() == [[0.0, 2.0, 2.0, 0.0]]


def test_stm_command_draws_writes_json_and_a_cube(tmp_path, capsys):
    from ase.io import write

    from tracegrad_ase.cli import main

    sheet = _sheet(5.0)
    write(tmp_path / "g.extxyz", sheet)
    out, js, cube = tmp_path / "stm.png", tmp_path / "stm.json", tmp_path / "w.cube"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GridWarning)
        assert main(["stm", str(tmp_path / "g.extxyz"), "--bias", "-1.5", "--mesh", "6x6x1", "--spacing", "0.3",
                     "-o", str(out), "--json", str(js), "--cube", str(cube)]) == 0
    assert out.stat().st_size > 10_000
    record = json.loads(js.read_text())
    assert record["bias_v"] == -1.5 and np.array(record["image"]).shape == (9, 9)
    from ase.io.cube import read_cube_data

    data, atoms = read_cube_data(str(cube))
    assert len(atoms) == 2 and data.shape == (9, 9, 34)
    # the cube holds electrons/Bohr³: its integral over the cell is the window's electron count
    electrons = data.mean() * atoms.get_volume() / BOHR_TO_ANGSTROM ** 3
    assert abs(electrons - record["electrons_in_window"]) < 1e-6 and electrons > 0
    write(tmp_path / "bulk.extxyz", _bulk())
    capsys.readouterr()
    assert main(["stm", str(tmp_path / "bulk.extxyz"), "--bias", "1", "--mesh", "2x2x2", "-o",
                 str(tmp_path / "b.png")]) != 0
    assert "sheet or slab" in capsys.readouterr().err
    assert main(["stm", str(tmp_path / "g.extxyz"), "--bias", "1", "--height", "9", "--mesh", "2x2x1",
                 "-o", str(tmp_path / "h.png")]) != 0
    assert "outside the cell" in capsys.readouterr().err
    assert not (tmp_path / "b.png").exists() and not (tmp_path / "h.png").exists()


def _bulk() -> Atoms:
    from ase.build import bulk

    return bulk("C", "diamond", a=3.567)


def test_orbitals_command_writes_the_homo_and_lumo_as_cubes(tmp_path):
    """A molecule without a cell gets a box for the grid; its HOMO and LUMO are normalized (atomic units) and
    differ."""
    from ase.build import molecule
    from ase.io import write
    from ase.io.cube import read_cube_data

    from tracegrad_ase.cli import main

    write(tmp_path / "water.xyz", molecule("H2O"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["orbitals", str(tmp_path / "water.xyz"), "--no-scf-check", "--cube", str(tmp_path / "w"),
                     "--spacing", "0.25"]) == 0
    homo, atoms = read_cube_data(str(tmp_path / "w-homo.cube"))
    lumo, _ = read_cube_data(str(tmp_path / "w-lumo.cube"))
    dv = atoms.get_volume() / homo.size / BOHR_TO_ANGSTROM ** 3
    assert len(atoms) == 3 and atoms.cell.volume > 100
    assert abs((homo ** 2).sum() * dv - 1) < 0.02 and abs((lumo ** 2).sum() * dv - 1) < 0.02
    assert abs((homo * lumo).sum() * dv) < 0.02  # orthogonal states


def test_states_follow_the_atoms_and_survive_a_copy():
    """Moved atoms get new states (the grid cache belongs to one prediction); a pickled copy rebuilds its own."""
    import pickle

    atoms = calculated_sheet("carbon")
    atoms.calc.set(grid_spacing=0.3)
    before = np.abs(atoms.calc.get_pseudo_wave_function(0, 0)) ** 2
    atoms.positions[:, 0] += atoms.cell[0, 0] / 3  # a third of a1 along x: 3 grid points of 9
    after = np.abs(atoms.calc.get_pseudo_wave_function(0, 0)) ** 2
    assert np.abs(after - before).max() > 0.1 * before.max()
    assert np.abs(after - np.roll(before, 3, axis=0)).max() < 1e-3 * before.max()
    copy = pickle.loads(pickle.dumps(atoms.calc))
    assert copy._grid_cache is None
    assert np.allclose(np.abs(copy.get_pseudo_wave_function(0, 0)) ** 2, after, atol=1e-6 * after.max())


def test_a_grid_too_large_to_cache_gives_the_same_states(sheet, monkeypatch):
    import tracegrad_ase.wavefunctions as wf

    cached = sheet.calc.get_pseudo_wave_function(4, 1)
    monkeypatch.setattr(wf, "CACHE_BYTES", 0)
    sheet.calc._state_cache = None
    alone = sheet.calc.get_pseudo_wave_function(4, 1)
    assert sheet.calc._state_cache is None
    assert np.abs(alone - cached).max() < 1e-12 * np.abs(cached).max()


def test_a_large_cell_images_the_window_it_solved(carbon, monkeypatch):
    """Above the dense limit (here 10 orbitals): the density of a window inside the shift-invert levels equals the
    dense one; a window past those levels and the valence density (every occupied level) are refused."""
    from ase.calculators.calculator import PropertyNotImplementedError

    from tracegrad_ase import electronic
    from tracegrad_ase.calculator import TraceGradCalculator

    big = _sheet(5.0).repeat((2, 2, 1))
    dense = TraceGradCalculator(carbon, kpts=(2, 2, 1), symmetry=False, grid_spacing=0.35)
    big.calc = dense
    ef_dense = dense.get_fermi_level()
    monkeypatch.setattr(electronic.solve, "SPARSE_THRESHOLD", 10)  # 32 orbitals count as "large" here
    sparse = TraceGradCalculator(carbon, kpts=(2, 2, 1), symmetry=False, grid_spacing=0.35, n_bands=16)
    big.calc = sparse
    ef = sparse.get_fermi_level()
    assert sparse.solution.sparse
    e = sparse.results["eigenvalues"][0]
    low, high = e.min(axis=1).max() + 1e-3, e.max(axis=1).min() - 1e-3  # solved at every k-point
    got = sparse.get_partial_density(low - ef, high - ef)
    monkeypatch.setattr(electronic.solve, "SPARSE_THRESHOLD", 3000)
    big.calc = dense
    want = dense.get_partial_density(low - ef_dense, high - ef_dense)
    assert want.max() > 0 and np.abs(got - want).max() < 1e-6 * want.max()
    big.calc = sparse
    monkeypatch.setattr(electronic.solve, "SPARSE_THRESHOLD", 10)
    with pytest.raises(ParameterError, match="raise n_bands"):
        sparse.get_partial_density(low - ef - 30.0, high - ef)
    with pytest.raises(PropertyNotImplementedError, match="every occupied level"):
        sparse.get_pseudo_density()


def test_density_at_and_plane_at_height_interpolate_the_grid():
    """Exact on the grid's points and for a field linear in the fractional coordinates (away from the wrap)."""
    from tracegrad_ase.wavefunctions import density_at, plane_at_height

    cell = np.array([[2.46, 0.0, 0.0], [-1.23, 2.13, 0.0], [0.0, 0.0, 10.0]])
    shape = (6, 6, 20)
    f = np.stack(np.meshgrid(*[np.arange(n) / n for n in shape], indexing="ij"), axis=-1)
    field = 1.0 + f @ np.array([0.3, -0.2, 0.7])
    inside = np.array([[0.31, 0.42, 0.55], [0.1, 0.6, 0.25]])  # fractional, within the last cell of no axis
    assert np.allclose(density_at(field, cell, inside @ cell), 1.0 + inside @ [0.3, -0.2, 0.7], atol=1e-12)
    assert np.allclose(density_at(field, cell, f.reshape(-1, 3) @ cell), field.ravel(), atol=1e-12)
    plane = plane_at_height(field, cell, 3.3)
    assert plane.shape == (6, 6)
    assert np.allclose(plane, 1.0 + f[:, :, 0] @ np.array([0.3, -0.2, 0.7]) + 0.7 * 0.33, atol=1e-12)
