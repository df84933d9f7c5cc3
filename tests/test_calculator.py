"""TraceGradCalculator through ASE's own tools, compared with the electronic core computed directly."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from ase.build import graphene, molecule
from ase.calculators.calculator import PropertyNotImplementedError
from ase.dft.bandgap import bandgap
from ase.dft.dos import DOS

from tracegrad_ase import electronic
from tracegrad_ase.core.basis import OrbitalBasis
from tracegrad_ase.calculator import TraceGradCalculator
from tracegrad_ase.core.errors import LinearDependenceError
from tracegrad_ase.predict import load, predict_hamiltonian

from conftest import toy_model as _model  # noqa: F401 (other test files imported it from here)


@pytest.fixture
def sheet():
    atoms = graphene(a=2.46, vacuum=5.0)
    atoms.pbc = [True, True, False]
    return atoms


def test_results_carry_the_spin_axis_ase_declares(carbon, sheet):
    """results["eigenvalues"] and ["occupations"] are (nspins, nkpts, nbands); the getters index into them."""
    sheet.calc = TraceGradCalculator(carbon, kpts=(3, 3, 1))
    calc = sheet.calc
    nk, nb = len(calc.get_ibz_k_points()), calc.get_number_of_bands()
    assert calc.results["eigenvalues"].shape == (calc.get_number_of_spins(), nk, nb) == (1, nk, nb)
    assert calc.results["occupations"].shape == (1, nk, nb)
    assert np.array_equal(calc.get_eigenvalues(nk - 1), calc.results["eigenvalues"][0, nk - 1])
    assert np.array_equal(calc.get_occupation_numbers(1), calc.results["occupations"][0, 1])
    with pytest.raises(IndexError):
        calc.get_occupation_numbers(0, spin=1)


def test_mesh_eigenvalues_fermi_level_and_ase_tools(carbon, sheet):
    calc = TraceGradCalculator(carbon, kpts=(4, 4, 1), symmetry=False)  # the full mesh: uniform weights
    sheet.calc = calc
    ham = predict_hamiltonian(sheet, load(carbon))
    sol = electronic.solve_k(ham, calc.get_ibz_k_points())
    assert calc.get_ibz_k_points().shape == (16, 3)
    assert np.allclose([calc.get_eigenvalues(k) for k in range(16)], sol.energies, atol=1e-6)
    ef = electronic.fermi_level(sol.energies, None, 8, "fermi-dirac", 0.05)
    assert calc.get_fermi_level() == pytest.approx(ef, abs=1e-6)
    assert np.isclose(calc.get_k_point_weights().sum(), 1.0)
    occ = np.array([calc.get_occupation_numbers(k) for k in range(16)])
    assert np.isclose((occ * calc.get_k_point_weights()[:, None]).sum(), 8.0, atol=1e-6)
    # ASE's own tools on the calculator
    dos = DOS(calc, width=0.2, npts=8000)  # energies relative to our Fermi level, both spins
    e, g = dos.get_energies(), dos.get_dos()
    assert np.trapezoid(g, e) == pytest.approx(2 * calc.get_number_of_bands(), rel=1e-3)
    assert np.trapezoid(g[e <= 0], e[e <= 0]) == pytest.approx(8.0, abs=0.1)  # 8 valence electrons below E_F
    grid = np.linspace(-60, 30, 3000)
    total, by_l = calc.get_dos(grid, width=0.3), calc.get_dos(grid, width=0.3, by="l")
    assert set(by_l) == {"s", "p"} and np.allclose(by_l["s"] + by_l["p"], total, atol=1e-8)
    gap, p1, p2 = bandgap(calc, output=None)
    assert gap == pytest.approx(calc.get_band_gap()["gap"], abs=1e-6)
    with pytest.raises(PropertyNotImplementedError, match="predicts the Hamiltonian, not 'energy'"):
        sheet.get_potential_energy()
    with pytest.raises(PropertyNotImplementedError, match="not 'forces'"):
        sheet.get_forces()


def test_recomputes_only_when_atoms_change(carbon, sheet, monkeypatch):
    import tracegrad_ase.committee as module  # the calculator predicts through committee.predict

    calls = []
    real = module.predict_hamiltonian
    monkeypatch.setattr(module, "predict_hamiltonian", lambda a, m: calls.append(1) or real(a, m))
    sheet.calc = TraceGradCalculator(carbon, kpts=(2, 2, 1))
    sheet.calc.get_fermi_level()
    sheet.calc.get_eigenvalues(0)
    sheet.calc.get_band_gap()
    assert len(calls) == 1
    sheet.positions[0, 0] += 0.05
    sheet.calc.get_fermi_level()
    assert len(calls) == 2


def test_bandpath_band_structure_plot(carbon, sheet, tmp_path):
    path = sheet.cell.bandpath("GMKG", npoints=30, pbc=sheet.pbc)
    sheet.calc = TraceGradCalculator(carbon, kpts=path, fermi_kpts=(6, 6, 1))
    bs = sheet.calc.band_structure()
    assert bs.energies.shape == (1, 30, sheet.calc.get_number_of_bands())
    mesh = TraceGradCalculator(carbon, kpts=(6, 6, 1))
    mesh.calculate(sheet.copy())
    assert bs.reference == pytest.approx(mesh.results["fermi_level"], abs=1e-9)  # E_F from the mesh, not the path
    ax = bs.plot(emin=-20, emax=10, filename=str(tmp_path / "bands.png"))
    assert ax is not None and (tmp_path / "bands.png").stat().st_size > 1000


def test_bad_kpoints_and_smearing(carbon, sheet):
    with pytest.raises(ValueError, match="shape \\(nk, 3\\)"):
        TraceGradCalculator(carbon, kpts=[[0, 0], [0.5, 0]]).calculate(sheet)
    with pytest.raises(ValueError, match="3 integers"):
        TraceGradCalculator(carbon, kpts=[4, 4]).calculate(sheet)
    with pytest.raises(ValueError, match="smearing must be one of"):
        TraceGradCalculator(carbon, smearing="cold")


def test_molecule_orbitals_and_export(tmp_path):
    folder = _model(tmp_path, "sto-3g", ["H", "O"])
    water = molecule("H2O")
    water.calc = TraceGradCalculator(folder)
    mo = water.calc.get_molecular_orbitals()
    homo, lumo = water.calc.get_homo_lumo()
    assert mo["energies"].shape == (7,) and homo < lumo and mo["homo"] == homo
    assert np.trace(mo["density_matrix"] @ mo["overlap"]) == pytest.approx(10.0, abs=1e-8)
    assert np.allclose(water.calc.get_eigenvalues(), mo["energies"], atol=1e-6)
    water.calc.write_hamiltonian(tmp_path / "water.h5")
    from tracegrad_ase.io.h5 import load_h5

    assert load_h5(tmp_path / "water.h5").norb == 7


def test_large_structure_uses_the_sparse_window(carbon, sheet, monkeypatch):
    """Above the dense limit: bands nearest sigma by shift-invert, equal to the dense ones."""
    big = sheet.repeat((2, 2, 1))
    dense = TraceGradCalculator(carbon, kpts=[[0.1, 0.2, 0.0]])
    dense.calculate(big)
    e_dense = dense.results["eigenvalues"][0, 0]
    monkeypatch.setattr(electronic.solve, "SPARSE_THRESHOLD", 10)  # 32 orbitals count as "large" here
    # Without sigma the window sits at the Fermi level, found by inertia counts: the Γ HOMO/LUMO midpoint.
    auto = TraceGradCalculator(carbon, kpts=[[0.0, 0.0, 0.0]], n_bands=6)
    auto.calculate(big)
    gamma = electronic.solve_k(dense.asm, np.zeros((1, 3)), sparse=False).energies
    ef = electronic.fermi_level(gamma, None, 32, "none")
    assert auto.results["fermi_level"] == pytest.approx(ef, abs=1e-6)
    assert np.allclose(auto.results["eigenvalues"][0, 0], np.sort(gamma[0][np.argsort(np.abs(gamma[0] - ef))[:6]]))
    sigma = float(np.median(e_dense))
    calc = TraceGradCalculator(carbon, kpts=[[0.1, 0.2, 0.0]], sigma=sigma, n_bands=6)
    calc.calculate(big)
    window = calc.results["eigenvalues"][0, 0]
    nearest = np.sort(e_dense[np.argsort(np.abs(e_dense - sigma))[:6]])
    assert np.allclose(window, nearest, atol=1e-6)
    with pytest.raises(PropertyNotImplementedError, match="window of bands"):
        calc.get_occupation_numbers()
    # gth-dzvp crystals reach overlap eigenvalues of 1e-6, which the sparse path cannot drop: refused, by name
    smallest = electronic.smallest_overlap_eigenvalue(calc.asm)
    assert smallest == pytest.approx(np.linalg.eigvalsh(calc.asm.at_real(np.zeros(3))[1].toarray())[0], rel=1e-8)
    with pytest.raises(LinearDependenceError, match="cannot drop linear dependencies.*lindep = 0.3"):
        TraceGradCalculator(carbon, kpts=[[0.0, 0.0, 0.0]], n_bands=6, lindep=0.3).calculate(big)
