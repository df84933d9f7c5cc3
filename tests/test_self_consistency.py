"""The self-consistency check: one Fock build from a Hamiltonian's density (engines.pyscf.self_consistency) and the
calculator's ``scf_check`` (tracegrad_ase.scf_check)."""

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from ase.build import graphene, molecule

from tracegrad_ase import TraceGradCalculator, electronic
from tracegrad_ase.core.errors import ParameterError, StructureError, UncertaintyWarning
from tracegrad_ase.core.hamiltonian import RealSpaceHamiltonian
from tracegrad_ase.engines.pyscf.scf import GroundTruthSettings, ground_truth
from tracegrad_ase.engines.pyscf.self_consistency import fock_hamiltonian, fock_levels, self_consistency
from tracegrad_ase.datasets import SETTINGS_FILE
from tracegrad_ase.io.h5 import save_h5
from tracegrad_ase.models import resolve
from tracegrad_ase.scf_check import check_self_consistency, model_scf_mixing, model_settings, refined_gap

ROOT = Path(__file__).resolve().parents[1]

SETTINGS = GroundTruthSettings(basis="def2-svp", xc="pbe")


@pytest.fixture(scope="module")
def water():
    return ground_truth(molecule("H2O"), SETTINGS)


def _gap(ham: RealSpaceHamiltonian) -> float:
    return float(electronic.molecular_orbitals(ham)["gap"])


def _with(ham: RealSpaceHamiltonian, blocks) -> RealSpaceHamiltonian:
    return RealSpaceHamiltonian(ham.atoms, ham.basis, ham.edges, blocks, ham.overlap, meta=dict(ham.meta))


def test_the_converged_hamiltonian_is_its_own_fock_matrix(water):
    # At convergence F[rho(H)] = H: the one Fock build gives back PBE's own levels (eV, in the same order), to the
    # few meV that its density-fitted Coulomb and coarser grid cost (the gap to well under 1 meV)
    levels = fock_levels(water, SETTINGS)
    exact = electronic.molecular_orbitals(water)["energies"]
    assert np.abs(levels - exact).max() < 1e-2
    check = self_consistency(water, _gap(water), SETTINGS)
    assert abs(check["gap_residual"]) < 1e-3


def test_a_shift_by_c_times_s_changes_no_density_and_no_residual(water):
    # H + c S (another energy zero) has the same orbitals and gap: the check must not see the gauge
    shifted = _with(water, [h + 0.7 * s for h, s in zip(water.hamiltonian, water.overlap)])
    assert abs(self_consistency(shifted, _gap(shifted), SETTINGS)["gap_residual"]) < 1e-3


def test_a_wrong_hamiltonian_is_caught_and_warned(water):
    # Off-site blocks scaled by 1.15: a gap 3.3 eV too wide (10.25 against 6.93), F[rho] of its density 6.57 eV
    onsite = water.onsite_mask()
    wrong = _with(water, [h if o else 1.15 * h for h, o in zip(water.hamiltonian, onsite)])
    gap = {"gap": _gap(wrong), "metal": False}
    assert abs(gap["gap"] - _gap(water)) > 0.3
    with pytest.warns(UncertaintyWarning, match="not self-consistent"):
        check = check_self_consistency(wrong, gap, SETTINGS)
    assert abs(check["fock_gap"] - _gap(water)) < abs(gap["gap"] - _gap(water))  # F[rho] is closer to PBE
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_self_consistency(water, {"gap": _gap(water), "metal": False}, SETTINGS) is not None


def test_the_shipped_molecules_model_states_its_level_of_theory():
    s = model_settings("molecules", "def2-svp")
    assert (s.xc, s.basis, s.grids_level) == ("pbe", "def2-svp", 3)
    assert model_settings("carbon", "gth-dzvp").xc == "pbe"


def test_the_calculator_checks_molecules_by_default_and_refuses_a_crystal():
    atoms = molecule("CH4")  # a saturated hydrocarbon: warned (both checks), which is not what is tested here
    atoms.calc = TraceGradCalculator("molecules")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UncertaintyWarning)
        r = atoms.calc.get_property("scf_gap_residual")
    assert isinstance(r, float) and len(atoms.calc.results["fock_levels"]) == 34  # def2-SVP CH4: every direction
    assert atoms.calc.results["fock_gap"] == pytest.approx(atoms.calc.results["band_gap"]["gap"] + r)
    atoms.calc = TraceGradCalculator("molecules", scf_check=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UncertaintyWarning)
        atoms.calc.get_property("band_gap")
    assert "scf_gap_residual" not in atoms.calc.results
    crystal = graphene(vacuum=7.5)
    crystal.calc = TraceGradCalculator("carbon", kpts=(2, 2, 1), scf_check=True)
    with pytest.raises(ParameterError, match="for molecules"):
        crystal.calc.get_property("band_gap")
    with pytest.raises(ParameterError, match="scf_check must be True or False"):
        TraceGradCalculator("molecules", scf_check="yes")


def test_refined_gap_mixes_toward_fock_with_its_own_factor_where_the_cut_moves_the_gap():
    mixing = {"default": 0.3, "cut_sensitive": 0.8}
    assert refined_gap(5.0, 4.4, 0.02, mixing) == pytest.approx(4.82)
    assert refined_gap(5.0, 4.4, None, mixing) == pytest.approx(4.82)
    assert refined_gap(5.0, 4.4, 0.5, mixing) == pytest.approx(4.52)  # above the cut check's 0.1 eV
    assert refined_gap(5.0, 4.4, 0.5, {"default": 0.0, "cut_sensitive": 0.0}) == 5.0


@pytest.mark.parametrize("value", [0.3, {"default": 1.5, "cut_sensitive": 0.2}, {"default": 0.2},
                                   {"default": True, "cut_sensitive": 0.2}, {"default": "0.3", "cut_sensitive": 0.2}])
def test_a_corrupt_scf_mixing_is_refused(value):
    with pytest.raises(ParameterError, match="scf_mixing"):
        model_scf_mixing({"metadata": {"scf_mixing": value}})
    assert model_scf_mixing({"metadata": {}}) is None


def test_calibration_records_the_mixing_and_the_calculator_reports_the_refined_gap(tmp_path, water):
    data = tmp_path / "data"
    save_h5(water, data / "structures" / "water.h5")
    (data / SETTINGS_FILE).write_text(json.dumps(SETTINGS.to_dict()))
    model = tmp_path / "model"
    shutil.copytree(resolve("molecules"), model, ignore=shutil.ignore_patterns("evaluation", "recipes", "committee"))
    (model / "split.json").write_text(json.dumps({"train": [], "val": ["water.h5"], "test": []}))
    out = subprocess.run([sys.executable, str(ROOT / "calculators" / "calibrate_scf_mixing.py"), str(model), "--data",
                          str(data)], capture_output=True, text=True, check=True)
    meta = json.loads((model / "model.json").read_text())["metadata"]
    calibration = meta["scf_mixing_calibration"]
    assert set(meta["scf_mixing"]) == {"default", "cut_sensitive"}
    table = calibration["mae_mev_by_default_mixing"]  # at the chosen cut-sensitive factor
    assert len(table) == 21 and table[f"{meta['scf_mixing']['default']:g}"] == min(table.values())
    assert calibration["mae_mev"] <= calibration["mae_mev_unmixed"]
    assert "chosen" in out.stdout
    atoms = molecule("H2O")
    atoms.calc = TraceGradCalculator(str(model))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UncertaintyWarning)
        gap = atoms.calc.get_property("band_gap")["gap"]
    r = atoms.calc.results
    assert r["refined_gap"] == pytest.approx(refined_gap(gap, r["fock_gap"], r["band_gap_cut_sensitivity"],
                                                         meta["scf_mixing"]))


def test_an_open_shell_molecule_is_solved_as_before_without_a_residual():
    # CH3 (9 electrons): the closed-shell Fock build cannot judge it; the default check steps aside, not the calculator
    atoms = molecule("CH3")
    atoms.calc = TraceGradCalculator("molecules")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        atoms.calc.get_property("eigenvalues")
    assert atoms.calc.results["scf_gap_residual"] is None and "refined_gap" not in atoms.calc.results


def test_a_large_molecule_is_checked_only_when_asked(monkeypatch):
    # the Fock build grows as N^3 (~110 s at 970 orbitals): the default stops at AUTO_MAX_ORBITALS
    monkeypatch.setattr("tracegrad_ase.scf_check.AUTO_MAX_ORBITALS", 20)
    atoms = molecule("H2O")  # 24 orbitals in def2-SVP
    atoms.calc = TraceGradCalculator("molecules")
    atoms.calc.get_property("band_gap")
    assert atoms.calc.results["scf_gap_residual"] is None and "fock_gap" not in atoms.calc.results
    atoms.calc = TraceGradCalculator("molecules", scf_check=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UncertaintyWarning)
        assert isinstance(atoms.calc.get_property("scf_gap_residual"), float)


CRYSTAL = GroundTruthSettings(basis="gth-szv", kmesh=(3, 3, 1))


@pytest.fixture(scope="module")
def graphene_truth(graphene_szv_scf):
    run, ham = graphene_szv_scf
    assert run.settings.basis == CRYSTAL.basis and tuple(run.settings.kmesh) == CRYSTAL.kmesh
    return ham


def _largest_difference(a: RealSpaceHamiltonian, b: RealSpaceHamiltonian) -> float:
    assert np.array_equal(a.edges, b.edges)
    return max(float(np.abs(x - y).max()) for x, y in zip(a.hamiltonian, b.hamiltonian))


def test_a_crystal_fock_hamiltonian_is_the_truth_at_the_truth_density_in_the_truth_zero(graphene_truth):
    """F[ρ(H)] of the converged crystal H is H again, on the same edges, to the density's convergence; from H + c·S
    (another energy zero, the same density) it is H too: the refined blocks are in the truth's zero."""
    refined = fock_hamiltonian(graphene_truth, CRYSTAL)
    assert refined.meta["source"] == "fock" and refined.meta["fock_wall_time_s"] > 0
    assert "scf_wall_time_s" not in refined.meta
    assert _largest_difference(refined, graphene_truth) < 1e-3  # eV; the blocks themselves reach ~10 eV
    assert np.allclose(np.concatenate([s.ravel() for s in refined.overlap]),
                       np.concatenate([s.ravel() for s in graphene_truth.overlap]))
    shifted = _with(graphene_truth, [h + 0.7 * s for h, s in zip(graphene_truth.hamiltonian, graphene_truth.overlap)])
    assert _largest_difference(shifted, graphene_truth) > 0.5
    assert _largest_difference(fock_hamiltonian(shifted, CRYSTAL), graphene_truth) < 1e-3


def test_a_wrong_crystal_hamiltonian_is_pulled_back_toward_the_truth(graphene_truth):
    """Off-site blocks scaled by 1.03 (hoppings 3 % too strong): F[ρ] of its density is far closer to the truth than
    the wrong H: the density error enters F only through the potential."""
    onsite = [i == j and not any(r) for *r, i, j in graphene_truth.edges.tolist()]
    wrong = _with(graphene_truth, [h if o else 1.03 * h for h, o in zip(graphene_truth.hamiltonian, onsite)])
    before = _largest_difference(wrong, graphene_truth)
    after = _largest_difference(fock_hamiltonian(wrong, CRYSTAL), graphene_truth)
    assert before > 0.05 and after < 0.1 * before


def test_fock_hamiltonian_refuses_a_molecule(water):
    with pytest.raises(StructureError, match="for crystals"):
        fock_hamiltonian(water, SETTINGS)
