"""A Hamiltonian as PySCF's starting point: density matrices in PySCF's AO order and k convention, and fewer cycles."""

import numpy as np
import pytest
from ase.build import molecule

from tracegrad_ase import electronic
from tracegrad_ase.core.basis import OrbitalBasis
from tracegrad_ase.engines.pyscf.scf import extract_blocks, guess_density, run_scf


@pytest.fixture(scope="module")
def water_run():
    run = run_scf(molecule("H2O"))
    return run, extract_blocks(run)


@pytest.fixture(scope="module")
def graphene_run(graphene_szv_scf):
    return graphene_szv_scf


def test_molecule_density_matches_pyscf_and_converges_at_once(water_run):
    run, ham = water_run
    nelec = run.info["nelectron"]
    dm = guess_density(ham, run.atoms, run.basis, None, nelec)
    # Order conversion e3nn -> PySCF is right; what is left is SCF convergence (conv_tol 1e-9 Ha on the energy
    # leaves the density converged to ~1e-5), and without the conversion the d shells would be off by > 1e-2.
    ref = run.mf.make_rdm1()
    assert np.abs(dm - ref).max() < 2e-5
    m = run.basis.structure_transform(run.atoms.numbers, "e3nn", "pyscf")
    assert np.abs(m.T @ dm @ m - ref).max() > 1e-2
    assert np.trace(dm @ run.mf.get_ovlp()) == pytest.approx(nelec, abs=1e-8)
    start = run_scf(run.atoms, run.settings, init_guess=ham)
    minao = run_scf(run.atoms, run.settings, init_guess="minao")
    assert start.info["scf_cycles"] <= 2 < minao.info["scf_cycles"]
    assert start.info["init_guess"] == "hamiltonian"
    assert start.info["energy_ev"] == pytest.approx(run.info["energy_ev"], abs=1e-6)


def test_crystal_density_per_k_matches_pyscf(graphene_run):
    """D(k) re-summed from H(R), S(R) on the SCF mesh equals PySCF's make_rdm1: same phases, order and occupations."""
    run, ham = graphene_run
    nelec = run.info["nelectron"]
    dm = guess_density(ham, run.atoms, run.basis, run.kpts_frac, nelec, run.settings.smearing)
    ref = np.asarray(run.mf.make_rdm1())
    assert dm.shape == ref.shape == (9, 8, 8)
    assert np.abs(dm - ref).max() < 1e-5
    s = np.asarray(run.mf.get_ovlp())
    assert np.mean([np.trace(d @ x).real for d, x in zip(dm, s)]) == pytest.approx(nelec, abs=1e-6)
    start = run_scf(run.atoms, run.settings, init_guess=ham)
    assert start.info["scf_cycles"] <= 2
    assert start.info["energy_ev"] == pytest.approx(run.info["energy_ev"], abs=1e-5)


def test_density_matrices_count_electrons(graphene_run):
    _, ham = graphene_run
    k = np.array([[0, 0, 0], [0.5, 0, 0], [1 / 3, 1 / 3, 0], [0.25, 0.5, 0]])
    dms, mu = electronic.density_matrices(ham, k)
    sk = [electronic.bloch_sparse(ham, kk)[1].toarray() for kk in k]
    assert np.mean([np.trace(d @ s).real for d, s in zip(dms, sk)]) == pytest.approx(8.0, abs=1e-6)
    assert all(np.abs(d - d.conj().T).max() < 1e-12 for d in dms)
    assert mu == pytest.approx(electronic.fermi_level(electronic.solve_k(ham, k).energies, None, 8), abs=1e-9)


def test_wrong_guesses_are_named(water_run, graphene_run):
    run, ham = water_run
    with pytest.raises(ValueError, match="unknown initial guess"):
        run_scf(run.atoms, run.settings, init_guess="sad")
    moved = run.atoms.copy()
    moved.positions[0] += 0.1
    with pytest.raises(ValueError, match="another structure"):
        guess_density(ham, moved, run.basis, None, 10)
    other = OrbitalBasis.from_pyscf("sto-3g", ["H", "O"])
    with pytest.raises(ValueError, match="basis for"):
        guess_density(ham, run.atoms, other, None, 10)
    with pytest.raises(ValueError, match="another structure"):
        guess_density(graphene_run[1], run.atoms, run.basis, None, 10)


def test_a_predicted_molecule_drops_nearly_dependent_directions(water_run, monkeypatch):
    """An error along a nearly dependent overlap direction is amplified by 1/s into a spurious occupied level: a
    prediction (meta source "model") is solved with PREDICTED_LINDEP, an exact Hamiltonian with every direction."""
    from tracegrad_ase.engines.pyscf import scf as pyscf_truth
    from tracegrad_ase.core.hamiltonian import RealSpaceHamiltonian, blocks_from_dense

    run, ham = water_run
    nelec = run.info["nelectron"]
    monkeypatch.setattr(pyscf_truth, "PREDICTED_LINDEP", 0.05)  # water/def2-SVP's smallest is 0.038
    h, s = (m.toarray() for m in electronic.BlochAssembler(ham).at_real(np.zeros(3)))
    u0 = np.linalg.eigh(s)[1][:, 0]
    offsets = np.concatenate([[0], np.cumsum([ham.basis.norb(z) for z in ham.atoms.numbers])])
    pairs = [(int(i), int(j)) for i, j in ham.edges[:, 3:]]
    wrong = h - 2.0 * np.outer(u0, u0)  # -2 eV along it: a level near -2/0.038 = -53 eV

    def guess(source):
        bad = RealSpaceHamiltonian(ham.atoms, ham.basis, ham.edges, blocks_from_dense(wrong, offsets, pairs),
                                   ham.overlap, meta={"source": source})
        return guess_density(bad, run.atoms, run.basis, None, nelec)

    ref = run.mf.make_rdm1()
    assert np.abs(guess("pyscf") - ref).max() > 0.3
    assert np.abs(guess("model") - ref).max() < 0.1 * np.abs(guess("pyscf") - ref).max()
