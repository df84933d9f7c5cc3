"""Committee uncertainty (issue 17): members' spread of levels, E_F and gap, in member 0's energy zero."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
import torch
from ase.build import graphene
from safetensors.torch import load_file, save_file

from tracegrad_ase import committee
from tracegrad_ase.calculator import TraceGradCalculator
from tracegrad_ase.core.errors import DataFormatError, ParameterError, UncertaintyWarning
from tracegrad_ase.model.checkpoint import WEIGHTS
from tracegrad_ase.predict import load, predict_hamiltonian

from conftest import toy_model


@pytest.fixture
def sheet():
    atoms = graphene(a=2.46, vacuum=5.0)
    atoms.pbc = [True, True, False]
    return atoms


def _member(main, name: str, noise: float, seed: int):
    """A copy of ``main`` under ``committee/name`` with its weights perturbed by ``noise`` (relative)."""
    dest = main / committee.COMMITTEE_DIR / name
    shutil.copytree(main, dest, ignore=shutil.ignore_patterns(committee.COMMITTEE_DIR))
    gen = torch.Generator().manual_seed(seed)
    weights = load_file(dest / WEIGHTS)
    # Parameters only: noise on a buffer (the symmetric on-site reference blocks) would make H non-Hermitian,
    # which no trained member is.
    trained = {name for name, _ in load(main).named_parameters()}
    save_file({k: v + noise * v.abs().mean() * torch.randn(v.shape, generator=gen, dtype=v.dtype)
               if k in trained else v for k, v in weights.items()}, dest / WEIGHTS)
    return dest


@pytest.fixture
def model(tmp_path):
    return toy_model(tmp_path, "gth-szv", ["C"], "gth-pbe")


def test_a_model_without_members_refuses_uncertainty(model):
    with pytest.raises(ParameterError, match="no committee"):
        TraceGradCalculator(model, uncertainty=True)
    with pytest.raises(ParameterError, match="True or False"):
        TraceGradCalculator(model, uncertainty="yes")


def test_identical_members_have_zero_spread(model, sheet):
    _member(model, "a", 0.0, 1)
    _member(model, "b", 0.0, 2)
    sheet.calc = TraceGradCalculator(model, kpts=(4, 4, 1), uncertainty=True)
    std = sheet.calc.get_property("eigenvalues_std")
    assert std.shape == sheet.calc.get_property("eigenvalues").shape
    assert np.nanmax(std) < 1e-9
    assert sheet.calc.get_property("fermi_level_std") < 1e-9
    assert sheet.calc.results["committee_size"] == 3


def test_alignment_removes_a_constant_shift(model, sheet):
    ham = predict_hamiltonian(sheet, load(model))
    shifted = committee.aligned(ham, ham)
    moved = type(ham)(atoms=ham.atoms, basis=ham.basis, edges=ham.edges, overlap=ham.overlap,
                      hamiltonian=[h + 0.7 * s for h, s in zip(ham.hamiltonian, ham.overlap)])
    back = committee.aligned(moved, ham)
    for a, b, c in zip(ham.hamiltonian, back.hamiltonian, shifted.hamiltonian):
        np.testing.assert_allclose(b, a, atol=1e-10)
        np.testing.assert_allclose(c, a, atol=1e-12)


def test_perturbed_members_spread_and_warn(model, sheet):
    _member(model, "a", 0.05, 1)
    _member(model, "b", 0.05, 2)
    calc = TraceGradCalculator(model, kpts={"path": "GMKG", "npoints": 12}, fermi_kpts=(4, 4, 1), uncertainty=True)
    plain = TraceGradCalculator(model, kpts={"path": "GMKG", "npoints": 12}, fermi_kpts=(4, 4, 1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        calc.calculate(sheet)
    plain.calculate(sheet)
    # member 0's numbers are the plain calculator's: the committee only adds the spread
    np.testing.assert_allclose(calc.results["eigenvalues"], plain.results["eigenvalues"], atol=1e-10)
    std = calc.results["eigenvalues_std"]
    assert np.nanmax(std) > 1e-4 and np.all(np.isfinite(calc.results["fermi_level_std"]))
    worst = calc.results["uncertainty_near_fermi"]
    assert (worst > committee.THRESHOLD_EV) == any(issubclass(w.category, UncertaintyWarning) for w in caught)


def test_a_member_of_another_basis_is_refused(model, tmp_path):
    other = toy_model(tmp_path / "o", "sto-3g", ["H", "O"])
    shutil.copytree(other, model / committee.COMMITTEE_DIR / "x")
    with pytest.raises(DataFormatError, match="differs from the main model"):
        TraceGradCalculator(model, uncertainty=True)


def _bands(model, structure, tmp_path, *extra):
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "tracegrad_ase.cli", "bands", str(structure), "--model", str(model), "--uncertainty",
           "--density", "4", "--mesh", "4x4x1", "-o", str(tmp_path / "u.png"), "--json", str(tmp_path / "u.json"),
           *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def _bands_json(model, structure, tmp_path, *extra) -> dict:
    """``tracegrad bands --uncertainty`` run to success; its JSON."""
    import json

    run = _bands(model, structure, tmp_path, *extra)
    assert run.returncode == 0, run.stderr
    return json.loads((tmp_path / "u.json").read_text())


def _sheet_file(model, sheet, tmp_path, noise: float):
    """Two members of ``model`` perturbed by ``noise``, and the sheet as a structure file."""
    _member(model, "a", noise, 1)
    _member(model, "b", noise, 2)
    structure = tmp_path / "sheet.extxyz"
    sheet.write(structure)
    return structure


def test_cli_shades_the_spread_and_strict_refuses_disagreement(model, sheet, tmp_path):
    structure = _sheet_file(model, sheet, tmp_path, 0.2)
    out = _bands_json(model, structure, tmp_path)
    assert np.shape(out["energies_std_ev"]) == np.shape(out["energies_ev"]) and out["committee_size"] == 3
    assert (tmp_path / "u.png").stat().st_size > 10_000
    worst = max(abs(s) for row, e in zip(out["energies_std_ev"], out["energies_ev"]) for s, x in zip(row, e)
                if abs(x - out["efermi_ev"]) <= committee.WINDOW_EV)
    assert worst > committee.THRESHOLD_EV  # members this far apart must trip --strict
    (tmp_path / "u.png").unlink()
    strict = _bands(model, structure, tmp_path, "--strict", "--force")
    assert strict.returncode == 2 and "committee members disagree" in strict.stderr
    assert not (tmp_path / "u.png").exists()


def test_sparse_window_spread_matches_dense_members_band_by_band(model, sheet, monkeypatch):
    """Large cells (sparse path): each member's window is matched to member 0's by absolute band index; the spread
    equals the one from every member's full dense spectrum, E_F the Γ HOMO/LUMO midpoint as the sparse path
    defines it."""
    from tracegrad_ase import electronic

    _member(model, "a", 0.05, 1)
    _member(model, "b", 0.05, 2)
    big = sheet.repeat((2, 2, 1))
    big.rattle(0.03, seed=3)  # no degenerate clusters: a window edge inside one is ambiguous in any solver
    kpts = np.array([[0.0, 0.0, 0.0], [0.1, 0.2, 0.0], [1 / 3, 1 / 3, 0.0]])
    monkeypatch.setattr(electronic.solve, "SPARSE_THRESHOLD", 10)  # 32 orbitals count as "large" here
    calc = TraceGradCalculator(model, kpts=kpts, n_bands=6, uncertainty=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calc.calculate(big)
    window, std = calc.results["eigenvalues"][0], calc.results["eigenvalues_std"][0]
    assert std.shape == window.shape and calc.results["committee_size"] == 3

    main = predict_hamiltonian(big, load(model))
    rel, first = [], None
    for m in [load(model)] + committee.load_members(model, load(model)):
        full = electronic.solve_k(committee.aligned(predict_hamiltonian(big, m), main), kpts, sparse=False).energies
        ef = electronic.fermi_level(full[:1], None, 32, "none")
        if first is None:  # member 0: where its window lies in the full spectrum
            first = [int(np.argmin(np.abs(full[ik] - window[ik, 0]))) for ik in range(len(kpts))]
            np.testing.assert_allclose(window, [full[ik, f:f + 6] for ik, f in enumerate(first)], atol=1e-6)
        rel.append([full[ik, f:f + 6] - ef for ik, f in enumerate(first)])
    expected = np.std(np.array(rel), axis=0, ddof=1)
    assert expected.max() > 1e-3  # the members do differ, so a mismatched band would show
    np.testing.assert_allclose(std, expected, atol=1e-6)
    assert calc.results["fermi_level_std"] > 0


def test_ensemble_reports_the_mean_of_aligned_members(model, sheet):
    """ensemble=True: H is the block-wise mean of the members' predictions, each in member 0's energy zero; its
    levels are that H's; the spread (with uncertainty) is over the members, as without ensemble."""
    from tracegrad_ase import electronic

    with pytest.raises(ParameterError, match="no committee"):
        TraceGradCalculator(model, ensemble=True)
    with pytest.raises(ParameterError, match="True or False"):
        TraceGradCalculator(model, ensemble=1)
    _member(model, "a", 0.05, 1)
    _member(model, "b", 0.05, 2)
    kpts = [[0.0, 0.0, 0.0], [0.1, 0.2, 0.0], [1 / 3, 1 / 3, 0.0]]
    mean = TraceGradCalculator(model, kpts=kpts, fermi_kpts=(4, 4, 1), ensemble=True, uncertainty=True)
    single = TraceGradCalculator(model, kpts=kpts, fermi_kpts=(4, 4, 1), uncertainty=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mean.calculate(sheet)
        single.calculate(sheet)
    main = load(model)
    hams = [predict_hamiltonian(sheet, main)]
    hams += [committee.aligned(predict_hamiltonian(sheet, m), hams[0]) for m in committee.load_members(model, main)]
    got = mean.results["hamiltonian"]
    assert np.array_equal(got.edges, hams[0].edges)
    for e in range(len(got.edges)):
        np.testing.assert_allclose(got.hamiltonian[e], np.mean([h.hamiltonian[e] for h in hams], axis=0), atol=1e-12)
    assert max(np.abs(a - b).max() for a, b in zip(got.hamiltonian, hams[0].hamiltonian)) > 1e-4  # not member 0's
    levels = electronic.solve_k(electronic.BlochAssembler(got), np.array(kpts), lindep=mean._lindep).energies
    np.testing.assert_allclose(mean.results["eigenvalues"][0], levels, atol=1e-9)
    np.testing.assert_allclose(mean.results["eigenvalues_std"], single.results["eigenvalues_std"], atol=1e-9)
    assert mean.results["committee_size"] == 3


def test_evaluate_judges_the_same_mean_as_the_calculator(model, sheet, tmp_path):
    """The model layer's committee mean (tracegrad evaluate --ensemble) is the calculator's: data made from the
    calculator's ensemble H are reproduced exactly by the mean, not by member 0 alone."""
    import json
    import subprocess
    import sys

    from tracegrad_ase.io.h5 import save_h5
    from tracegrad_ase.model.evaluate import evaluate

    _member(model, "a", 0.05, 1)
    _member(model, "b", 0.05, 2)
    calc = TraceGradCalculator(model, kpts=(2, 2, 1), ensemble=True)
    calc.calculate(sheet)
    truth = calc.results["hamiltonian"]
    truth.meta = {"source": "test"}
    save_h5(truth, tmp_path / "sheet.h5")
    main = load(model)
    members = committee.load_members(model, main)
    alone = evaluate(main, [tmp_path / "sheet.h5"], progress=False, ghost_kpoints=0)
    both = evaluate(main, [tmp_path / "sheet.h5"], progress=False, ghost_kpoints=0, members=members)
    # float32 members: the two paths round differently at ~1e-6 meV
    assert both["gauge_mae_mev"] < 1e-3 and both["band_mae_ef_mev"] < 1e-3
    assert alone["gauge_mae_mev"] > 1.0
    run = subprocess.run([sys.executable, "-m", "tracegrad_ase.cli", "evaluate", str(model), str(tmp_path / "sheet.h5"),
                          "--ensemble", "--ghost-kpoints", "0", "--json", str(tmp_path / "e.json"), "--per-structure"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "committee mean of 3 models" in run.stdout
    out = json.loads((tmp_path / "e.json").read_text())
    row = next(line.split() for line in run.stdout.splitlines() if line.startswith(out["per_structure"][0]["name"]))
    assert float(row[1]) == round(out["per_structure"][0]["gauge_mae_mev"], 2)  # --per-structure: the JSON's figures
    assert out["gauge_mae_mev"] < 1e-3 and len(out["members"]) == 2


def test_sparse_path_solves_the_ensemble_mean(model, sheet, monkeypatch):
    """Large cells: with ensemble=True the sparse window is the mean H's, the spread over the three members."""
    from tracegrad_ase import electronic

    _member(model, "a", 0.05, 1)
    _member(model, "b", 0.05, 2)
    big = sheet.repeat((2, 2, 1))
    big.rattle(0.03, seed=3)
    kpts = np.array([[0.0, 0.0, 0.0], [0.1, 0.2, 0.0]])
    monkeypatch.setattr(electronic.solve, "SPARSE_THRESHOLD", 10)
    calc = TraceGradCalculator(model, kpts=kpts, n_bands=6, ensemble=True, uncertainty=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calc.calculate(big)
    main = load(model)
    hams = [predict_hamiltonian(big, main)]
    hams += [committee.aligned(predict_hamiltonian(big, m), hams[0]) for m in committee.load_members(model, main)]
    full = electronic.solve_k(committee.mean_hamiltonian(hams), kpts, sparse=False).energies
    window = calc.results["eigenvalues"][0]
    for ik in range(len(kpts)):
        f = int(np.argmin(np.abs(full[ik] - window[ik, 0])))
        np.testing.assert_allclose(window[ik], full[ik, f:f + 6], atol=1e-6)
    assert calc.results["committee_size"] == 3 and np.all(np.isfinite(calc.results["eigenvalues_std"]))


def test_cli_bands_with_ensemble_plots_the_mean(model, sheet, tmp_path):
    """tracegrad bands --ensemble: the committee mean's levels, not member 0's (same path, same spread)."""
    structure = _sheet_file(model, sheet, tmp_path, 0.05)
    one = _bands_json(model, structure, tmp_path)
    both = _bands_json(model, structure, tmp_path, "--ensemble", "--force")
    assert np.abs(np.subtract(both["energies_ev"], one["energies_ev"])).max() > 1e-4
    np.testing.assert_allclose(both["energies_std_ev"], one["energies_std_ev"], atol=1e-6)
