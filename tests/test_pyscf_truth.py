"""The PySCF ground-truth engine: units, orbital order, periodicity conventions and failures, on tiny systems."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import graphene, molecule

from conftest import random_rotation
from tracegrad_ase.core.errors import SCFNotConvergedError, StructureError, UnknownElementError
from tracegrad_ase.electronic import band_energies, bloch_dense
from tracegrad_ase.engines.pyscf.scf import (
    GroundTruthSettings,
    alias_free_mesh,
    extract_blocks,
    ground_truth,
    reference_bands,
    run_scf,
)
from tracegrad_ase.core.units import HARTREE_TO_EV


def _dense(ham):
    hk, sk = bloch_dense(ham, np.zeros((1, 3)))
    assert np.abs(hk.imag).max() == 0
    return hk[0].real, sk[0].real


def test_molecule_pbe_blocks_rotate_with_e3nn_d(rng):
    """The engine's own output (PBE/def2-SVP, eV, e3nn order) obeys H(Rx) = D H(x) D^T to < 1e-6 Hartree."""
    water = molecule("H2O")
    settings = GroundTruthSettings(grids_level=6, conv_tol=1e-11)  # fine grid: PySCF's grid does not rotate
    r = random_rotation(rng)
    rotated = water.copy()
    rotated.positions = water.positions @ r.T
    ham = ground_truth(water, settings)
    h0, s0 = _dense(ham)
    h1, s1 = _dense(ground_truth(rotated, settings))
    d = ham.basis.rotation(ham.atoms.numbers, r)
    assert np.abs(d @ s0 @ d.T - s1).max() < 1e-10
    assert np.abs(d @ h0 @ d.T - h1).max() < 1e-6 * HARTREE_TO_EV


def test_molecule_blocks_units_and_eigenvalues():
    run = run_scf(molecule("H2O"), GroundTruthSettings(basis="sto-3g"))
    ham = extract_blocks(run)
    assert len(ham.edges) == 9 and ham.hermiticity_error() < 1e-10
    eig = band_energies(ham, np.zeros((1, 3)))[0]
    # eV at the public surface: PySCF's orbital energies (Hartree) times 27.2114.
    assert np.allclose(eig, run.mf.mo_energy * 27.211386, atol=1e-4)
    assert ham.meta["homo_ev"] == pytest.approx(eig[4], abs=1e-6)
    # PySCF's geometry (Bohr) is our geometry (Å).
    assert np.allclose(run.mol.atom_coords() * 0.52917721, molecule("H2O").positions, atol=1e-6)


@pytest.fixture(scope="module")
def graphene_run():
    atoms = graphene(a=2.46, vacuum=4.0)
    atoms.pbc = [True, True, False]
    settings = GroundTruthSettings(basis="gth-szv", kmesh=(3, 3, 1), cutoff=6.0, conv_tol=1e-8)
    return run_scf(atoms, settings)


def test_crystal_overlap_real_space_matches_bloch_sum(graphene_run):
    """S(R) from real-space integrals, Bloch-summed, equals PySCF's lattice-summed S(k): the phase convention."""
    ham = extract_blocks(graphene_run)
    assert ham.hermiticity_error() < 1e-10
    cell = graphene_run.mol
    kfrac = np.array([[0.123, 0.377, 0.0], [1 / 3, 1 / 3, 0.0]])
    _, sk = bloch_dense(ham, kfrac)
    ref = cell.pbc_intor("int1e_ovlp", hermi=1, kpts=cell.get_abs_kpts(kfrac))
    t = [ham.basis.transform(z, "pyscf", "e3nn") for z in ham.atoms.numbers]
    off = ham.offsets
    for n in range(len(kfrac)):
        conv = np.zeros_like(ref[n])
        for a in range(len(t)):
            for b in range(len(t)):
                sa, sb = slice(off[a], off[a + 1]), slice(off[b], off[b + 1])
                conv[sa, sb] = t[a] @ ref[n][sa, sb] @ t[b].T
        # S(R) beyond 6 Å is dropped (~1e-3); a wrong phase sign or R convention would be off by ~0.2.
        assert np.abs(sk[n] - conv).max() < 3e-3


def test_crystal_bands_off_the_mesh_match_pyscf(graphene_run):
    ham = extract_blocks(graphene_run)
    assert ham.meta["hr_kmesh"] == list(alias_free_mesh(graphene_run.atoms, 6.0))
    k = np.array([[0.1, 0.27, 0.0], [1 / 3, 1 / 3, 0.0], [0.5, 0.0, 0.0]])  # none on the SCF or H(R) mesh
    ours, ref = band_energies(ham, k), reference_bands(graphene_run, k)
    ef = ham.meta["fermi_level_ev"]
    near = np.abs(ref - ef) < 2.0
    assert np.abs(ours - ref)[near].max() < 0.02  # eV, with only a 6 Å cutoff (8 Å: ~0.01 meV)
    # On a mesh coarser than the alias-free one, the engine refuses instead of returning folded blocks.
    with pytest.raises(ValueError, match="aliases"):
        from dataclasses import replace

        graphene_run.settings = replace(graphene_run.settings, hr_kmesh=(3, 3, 1))
        try:
            extract_blocks(graphene_run)
        finally:
            graphene_run.settings = replace(graphene_run.settings, hr_kmesh=None)


def test_unconverged_scf_is_an_error_not_data():
    with pytest.raises(SCFNotConvergedError, match="did not converge in"):
        ground_truth(molecule("H2O"), GroundTruthSettings(basis="sto-3g", max_cycle=1, conv_tol=1e-14))


@pytest.mark.parametrize("atoms,error,match", [
    (Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.3]]), StructureError, "closer than the minimum 0.5"),
    (Atoms("H2", positions=[[0, 0, 0], [0, 0, np.nan]]), StructureError, "NaN or infinite"),
    (Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]], pbc=True), StructureError, "periodic but has no cell"),
    (Atoms("H", positions=[[0, 0, 0]]), StructureError, "closed-shell"),
    (Atoms("Og2", positions=[[0, 0, 0], [0, 0, 3.0]]), UnknownElementError, "'Og' is not in basis 'def2-svp'"),
])
def test_bad_input_is_named(atoms, error, match):
    with pytest.raises(error, match=match):
        ground_truth(atoms)


def test_slab_without_vacuum_vector_is_named():
    atoms = graphene(a=2.46, vacuum=None)
    atoms.cell[2] = 0.0
    atoms.pbc = [True, True, False]
    with pytest.raises(StructureError, match="vacuum cell vector"):
        ground_truth(atoms)


def test_overlap_cutoff_follows_basis_range():
    from tracegrad_ase.engines.pyscf.scf import overlap_cutoff

    szv, dzvp = overlap_cutoff("gth-szv", ["C"]), overlap_cutoff("gth-dzvp", ["C"])
    assert szv == 9.0 and dzvp == 9.5  # the diffuse dzvp functions reach further
    assert overlap_cutoff("gth-dzvp", ["C"], tol=1e-4) < dzvp
    settings = GroundTruthSettings(basis="gth-szv").for_atoms(graphene(a=2.46, vacuum=4.0))
    assert settings.cutoff == 9.0 and settings.pseudo == "gth-pbe"
    assert GroundTruthSettings().for_atoms(molecule("H2O")).cutoff is None  # molecules keep every pair


def test_real_space_nonlocal_pp_is_pyscfs_multigrid_matrix(graphene_run):
    """The pseudopotential the crystal SCF uses (non-local part in real space) equals PySCF's multigrid get_pp
    (non-local part on the FFT mesh) at the SCF's k-points and off them, so data made before and after agree."""
    from pyscf.pbc.dft.multigrid.multigrid import get_pp

    ni = graphene_run.mf._numint
    assert "get_pp" in vars(ni)  # the SCF's own numint carries the real-space version
    kpts = graphene_run.mol.get_abs_kpts(np.array([[0.0, 0.0, 0.0], [0.123, 0.377, 0.0]]))
    ours = ni.get_pp(kpts)
    assert ours.shape == (2, 8, 8) and np.abs(ours[1].imag).max() > 1e-3  # the patched method, complex off Γ
    assert np.abs(ours - get_pp(ni, kpts)).max() < 1e-10


def test_multigrid_scf_sane_when_pyscf_libraries_load_first():
    """Regression: vesin loaded after PySCF's libraries broke the next multigrid SCF with 2 OpenMP threads."""
    import os
    import subprocess
    import sys

    code = (
        "from pyscf import gto; gto.M(atom='C 0 0 0; C 0 0 1.4', basis='gth-szv', verbose=0).intor('int1e_ovlp');"
        "from ase.build import graphene; a = graphene(a=2.46, vacuum=4.0); a.pbc = [True, True, False];"
        "from tracegrad_ase.engines.pyscf.scf import GroundTruthSettings, run_scf;"
        "from tracegrad_ase.core.graphs import neighbor_list, vesin_safe; neighbor_list(a, 3.0);"
        "r = run_scf(a, GroundTruthSettings(basis='gth-szv', kmesh=(2, 2, 1), max_cycle=30, conv_tol=1e-6));"
        "print(vesin_safe(), r.info['energy_ev'])"
    )
    env = dict(os.environ, OMP_NUM_THREADS="2")  # one thread hides the failure
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    safe, energy = out.stdout.strip().splitlines()[-1].split()
    assert safe == "False"  # PySCF came first, so the process stays on ASE's neighbour list
    assert -320.0 < float(energy) < -290.0  # ~ -306 eV


def test_settings_from_dict_keeps_a_fractional_mesh_for_the_check_to_refuse():
    """A mesh of 2.5 from a recipe or JSON is an error naming it, never silently 2; 6.0 is 6."""
    from tracegrad_ase.engines.pyscf.settings import GroundTruthSettings, check_settings

    sheet = graphene(a=2.46, vacuum=5.0)
    sheet.pbc = [True, True, False]
    assert GroundTruthSettings.from_dict({"kmesh": [6.0, 6, 1]}).kmesh == (6, 6, 1)
    with pytest.raises(Exception, match=r"kmesh=\(2.5, 2, 1\)"):
        check_settings(GroundTruthSettings.from_dict({"kmesh": [2.5, 2, 1]}), sheet)
