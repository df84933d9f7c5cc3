"""A crystal's refinement (``refine``): Kohn-Sham builds from the predicted density, one mixed with the prediction
or several combined by DIIS (engines.pyscf.self_consistency, tracegrad_ase.refine)."""

import json

import numpy as np
import pytest
import yaml
from ase.build import molecule

from conftest import toy_model
from tracegrad_ase import TraceGradCalculator, refine
from tracegrad_ase.core.errors import ParameterError, StructureError
from tracegrad_ase.core.hamiltonian import RealSpaceHamiltonian
from tracegrad_ase.electronic.filling import electron_count
from tracegrad_ase.electronic.spectrum import band_errors, evaluation_mesh, levels
from tracegrad_ase.engines.pyscf import self_consistency
from tracegrad_ase.engines.pyscf.self_consistency import diis_coefficients, mix_hamiltonians, refined_hamiltonian

KPTS = np.array([[i / 3, j / 3, 0.0] for i in range(3) for j in range(3)])
#: The toy model's card: the level of theory of ``graphene_szv_scf`` (a k-spacing of 1/Å gives its 3x3x1 mesh).
THEORY = {"xc": "PBE", "pseudo": "GTH-PBE", "basis": "gth-szv", "smearing_ev": 0.05, "kspacing": 1.0}


def _with(ham: RealSpaceHamiltonian, blocks, keep=None) -> RealSpaceHamiltonian:
    keep = range(len(ham.edges)) if keep is None else keep
    return RealSpaceHamiltonian(atoms=ham.atoms, basis=ham.basis, edges=ham.edges[list(keep)],
                                hamiltonian=[blocks[e] for e in keep], overlap=[ham.overlap[e] for e in keep])


def _flat(blocks) -> np.ndarray:
    return np.concatenate([b.ravel() for b in blocks])


@pytest.fixture(scope="module")
def truth(graphene_szv_scf):
    return graphene_szv_scf[1]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = toy_model(tmp_path_factory.mktemp("refine"), "gth-szv", ["C"], "gth-pbe")
    (folder / "card.yaml").write_text(yaml.safe_dump({"name": "toy", "level_of_theory": THEORY}))
    return folder


def test_mixing_is_linear_from_the_prediction_in_focks_zero_to_fock(truth):
    """a = 1 is F itself; a = 0 the prediction moved to F's zero (its difference from F has no c·S part left); in
    between a straight line; a pure shift c·S is removed whole; a block the prediction lacks counts as zero."""
    onsite = [i == j and not any(r) for *r, i, j in truth.edges.tolist()]
    wrong = [(h if o else 1.03 * h) + 0.7 * s for h, s, o in zip(truth.hamiltonian, truth.overlap, onsite)]
    pred = _with(truth, wrong)
    assert mix_hamiltonians(pred, truth, 1.0) is truth
    m0, m_half = mix_hamiltonians(pred, truth, 0.0), mix_hamiltonians(pred, truth, 0.5)
    assert np.array_equal(m0.edges, truth.edges) and m_half.meta["mixing"] == 0.5
    diff, s = _flat(m0.hamiltonian) - _flat(truth.hamiltonian), _flat(truth.overlap)
    assert abs(diff @ s) < 1e-9 * np.abs(diff).sum() and np.abs(diff).max() > 0.05
    assert np.allclose(_flat(m_half.hamiltonian), 0.5 * (_flat(m0.hamiltonian) + _flat(truth.hamiltonian)))
    shifted = _with(truth, [h + 0.7 * s for h, s in zip(truth.hamiltonian, truth.overlap)])
    assert np.allclose(_flat(mix_hamiltonians(shifted, truth, 0.0).hamiltonian), _flat(truth.hamiltonian))
    far = int(np.argmax([np.abs(r).sum() for r in truth.edges[:, :3]]))
    partial = _with(shifted, shifted.hamiltonian, [e for e in range(len(truth.edges)) if e != far])
    mixed = mix_hamiltonians(partial, truth, 0.0)
    assert np.allclose(mixed.hamiltonian[far], -0.7 * truth.overlap[far], atol=1e-3)  # zero, moved by c ≈ -0.7
    with pytest.raises(ValueError, match="mixing"):
        mix_hamiltonians(pred, truth, 1.5)


def _fake_build(record: list):
    """A stand-in for ``fock_hamiltonian`` that returns its input as "F" (recording each call)."""
    from dataclasses import replace

    return lambda ham, settings: record.append(settings) or replace(
        ham, meta={**ham.meta, "source": "fock", "fock_wall_time_s": 0.0})


def test_refine_replaces_the_prediction_by_two_builds_much_closer_to_the_truth(model, truth, monkeypatch):
    """The toy model's bands are far from PBE's; Kohn-Sham builds from its density, with the card's settings, bring
    them closer (E_F-aligned, on the evaluation mesh): one build halves the error, two combined by DIIS (the
    default) do better still; one build is mixed by the model's factor."""
    atoms = truth.atoms.copy()
    plain = TraceGradCalculator(model, kpts=(3, 3, 1), symmetry=False)
    calc = TraceGradCalculator(model, kpts=(3, 3, 1), symmetry=False, refine=True)
    one = TraceGradCalculator(model, kpts=(3, 3, 1), symmetry=False, refine=1)
    pred, refined, single = plain.get_hamiltonian(atoms), calc.get_hamiltonian(atoms), one.get_hamiltonian(atoms)
    assert pred.meta.get("source") != "fock" and refined.meta["source"] == "fock"
    assert refined.meta["refine_builds"] == 2 and len(refined.meta["diis_coefficients"]) == 2
    assert sum(refined.meta["diis_coefficients"]) == pytest.approx(1.0) and refined.meta["fock_wall_time_s"] > 0
    assert single.meta["refine_mixing"] == 1.0 and single.meta["refine_builds"] == 1
    mesh = evaluation_mesh(truth.atoms.cell[:], truth.atoms.pbc)  # off the SCF mesh too (3x3 pins the Dirac point)
    exact, nelec = levels(truth, mesh, 1e-2), electron_count(truth)
    error = {name: band_errors(exact, levels(h, mesh, 1e-2), None, nelec)["mae_mev"]
             for name, h in (("pred", pred), ("one", single), ("two", refined))}
    assert error["pred"] > 1000 and error["one"] < 0.5 * error["pred"], error  # measured 1374 -> 564 meV
    assert error["two"] < error["one"], error
    assert calc.get_property("fermi_level", atoms) != plain.get_property("fermi_level", atoms)

    model_file = dict(calc.model.model_file, metadata={**calc.model.model_file["metadata"], "refine_mixing": 0.5})
    monkeypatch.setattr(self_consistency, "fock_hamiltonian", lambda ham, settings: single)  # the same build
    half = refine.refine_prediction(pred, model, model_file, builds=1)
    assert half.meta["refine_mixing"] == 0.5
    assert np.allclose(_flat(half.hamiltonian), _flat(mix_hamiltonians(pred, single, 0.5).hamiltonian))


def test_diis_finds_the_fixed_point_of_a_linear_map_that_plain_iteration_overshoots(truth, monkeypatch):
    """F[H] = T + J (H - T) with J = -1.5: each build overshoots the fixed point T and repeated builds diverge,
    but the residuals of two builds are parallel, and their DIIS combination is T itself."""
    s = _flat(truth.overlap)
    rng = np.random.default_rng(0)
    delta = rng.normal(scale=0.05, size=s.size)
    delta -= (delta @ s) / (s @ s) * s  # no c·S part: the prediction is in T's energy zero

    def unflat(x):
        out, i = [], 0
        for b in truth.hamiltonian:
            out.append(x[i:i + b.size].reshape(b.shape))
            i += b.size
        return out

    t = _flat(truth.hamiltonian)
    pred = _with(truth, unflat(t + delta))
    fake = lambda ham, settings: RealSpaceHamiltonian(  # noqa: E731
        atoms=truth.atoms, basis=truth.basis, edges=truth.edges, overlap=truth.overlap,
        hamiltonian=unflat(t - 1.5 * (_flat(ham.hamiltonian) - t)), meta={"source": "fock", "fock_wall_time_s": 1.0})
    monkeypatch.setattr(self_consistency, "fock_hamiltonian", fake)
    one = refined_hamiltonian(pred, None, builds=1)
    two = refined_hamiltonian(pred, None, builds=2)
    assert np.abs(_flat(one.hamiltonian) - t).max() == pytest.approx(1.5 * np.abs(delta).max())
    assert np.abs(_flat(two.hamiltonian) - t).max() < 1e-9 * np.abs(delta).max()
    assert two.meta["refine_residual_ev"] < 1e-9 and two.meta["fock_wall_time_s"] == 2.0
    assert two.meta["diis_coefficients"] == pytest.approx([0.6, 0.4])  # -J/(1-J), 1/(1-J)
    assert diis_coefficients([np.ones(3), -np.ones(3)]) == pytest.approx([0.5, 0.5])
    with pytest.raises(ValueError, match="builds"):
        refined_hamiltonian(pred, None, builds=0)


def test_refine_is_refused_where_it_has_no_meaning_before_any_prediction(model, tmp_path):
    with pytest.raises(StructureError, match="for crystals"):
        TraceGradCalculator(model, refine=True).get_property("fermi_level", molecule("CH4"))
    with pytest.raises(ParameterError, match="uncertainty"):
        refine.check_request(_graphene(), uncertainty=True)
    for bad in ("yes", 2.5, -1, 7):
        with pytest.raises(ParameterError, match="refine must be True, False or a number of Kohn-Sham builds"):
            TraceGradCalculator(model, refine=bad)
    calc = TraceGradCalculator(model, kpts=(3, 3, 1))
    calc.set(refine=True)
    assert calc.parameters.refine == refine.DEFAULT_BUILDS == 2
    calc.set(refine=False)
    assert calc.parameters.refine == 0


def _graphene():
    from ase.build import graphene

    atoms = graphene(a=2.46, vacuum=5.0)
    atoms.pbc = [True, True, False]
    return atoms


@pytest.mark.parametrize("theory, match", [({"xc": "PBE"}, "no kspacing"), ({"kspacing": 0.5}, "no functional")])
def test_a_card_that_does_not_say_how_its_density_was_made_is_refused(tmp_path, theory, match):
    folder = toy_model(tmp_path, "gth-szv", ["C"], "gth-pbe")
    (folder / "card.yaml").write_text(yaml.safe_dump({"name": "toy", "level_of_theory": theory}))
    with pytest.raises(ParameterError, match=match):
        refine.crystal_settings(folder, "gth-szv")


@pytest.mark.parametrize("value", [1.5, -0.1, "1", True])
def test_a_corrupt_refine_mixing_is_refused(value):
    with pytest.raises(ParameterError, match="refine_mixing"):
        refine.model_refine_mixing({"metadata": {"refine_mixing": value}})
    assert refine.model_refine_mixing({"metadata": {}}) == 1.0


def test_the_shipped_crystal_models_say_how_their_density_was_made():
    for name, spacing in (("carbon", 0.5), ("graphene-szv", 0.25)):
        settings = refine.crystal_settings(name, "gth-dzvp")
        assert settings.kspacing == spacing and settings.xc == "pbe" and settings.smearing == 0.05
        assert settings.pseudo == "gth-pbe"


def test_a_calculator_and_its_copies_build_once_per_structure(model, truth, monkeypatch):
    """A band path after a mesh (``for_kpoints`` copies) reuses the build; another structure makes a new one."""
    builds = []
    monkeypatch.setattr(self_consistency, "fock_hamiltonian", _fake_build(builds))
    atoms = truth.atoms.copy()
    calc = TraceGradCalculator(model, kpts=(3, 3, 1), refine=1)
    calc.get_property("fermi_level", atoms)
    calc.for_kpoints(KPTS[:2]).get_property("eigenvalues", atoms)
    assert len(builds) == 1
    atoms.positions[0, 0] += 0.01
    calc.get_property("fermi_level", atoms)
    assert len(builds) == 2


def test_bands_and_predict_refine_build_once_and_say_so(model, tmp_path, monkeypatch, capsys):
    from tracegrad_ase.cli import main
    from tracegrad_ase.io.h5 import load_h5

    builds = []
    monkeypatch.setattr(self_consistency, "fock_hamiltonian", _fake_build(builds))
    f = tmp_path / "graphene.extxyz"
    _graphene().write(f)
    out = tmp_path / "bands.json"
    assert main(["bands", str(f), "--model", str(model), "--refine", "--mesh", "3x3x1", "--density", "4",
                 "-o", str(tmp_path / "bands.png"), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["refine_builds"] == 2
    assert len(builds) == 2 and builds[0].kspacing == 1.0 and builds[0].basis == "gth-szv"
    assert main(["bands", str(f), "--model", str(model), "--refine", "--uncertainty"]) == 2
    assert "--refine is not offered with --uncertainty" in capsys.readouterr().err
    assert main(["predict", str(f), "--model", str(model), "--refine", "1", "-o", str(tmp_path / "h.h5")]) == 0
    assert len(builds) == 3 and "refined blocks" in capsys.readouterr().out
    assert load_h5(tmp_path / "h.h5").meta["refine_mixing"] == 1.0
    water = tmp_path / "water.xyz"
    molecule("H2O").write(water)
    assert main(["predict", str(water), "--model", str(model), "--refine", "-o", str(tmp_path / "w.h5")]) == 2
    assert "for crystals" in capsys.readouterr().err and not (tmp_path / "w.h5").exists() and len(builds) == 3
    assert main(["predict", str(f), "--model", str(model), "--refine", "7", "-o", str(tmp_path / "7.h5")]) == 2
    assert "got 7" in capsys.readouterr().err and not (tmp_path / "7.h5").exists() and len(builds) == 3
    # optics and transport take their coefficients from the refined H (two builds more)
    assert main(["transport", str(f), "--model", str(model), "--refine", "--mesh", "6x6x1", "--points", "3",
                 "-o", str(tmp_path / "transport.png"), "--json", str(tmp_path / "transport.json")]) == 0
    assert len(builds) == 5 and len(json.loads((tmp_path / "transport.json").read_text())["doping"]) == 3


def test_calibration_chooses_the_mixing_on_validation_cells_and_records_it(model, truth, graphene_szv_scf, tmp_path):
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from tracegrad_ase.datasets import SETTINGS_FILE
    from tracegrad_ase.io.h5 import save_h5

    data = tmp_path / "data"
    save_h5(truth, data / "structures" / "graphene.h5")
    (data / SETTINGS_FILE).write_text(json.dumps(graphene_szv_scf[0].settings.to_dict()))
    folder = tmp_path / "model"
    shutil.copytree(model, folder)
    (folder / "split.json").write_text(json.dumps({"train": [], "val": ["graphene.h5", "gone.h5"], "test": []}))
    script = Path(__file__).resolve().parents[1] / "calculators" / "calibrate_refine_mixing.py"
    cmd = [sys.executable, str(script), str(folder), "--data", str(data), "--cache", str(tmp_path / "cache")]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    meta = json.loads((folder / "model.json").read_text())["metadata"]
    table = meta["refine_mixing_calibration"]["mae_mev_by_mixing"]
    assert len(table) == 21 and table[f"{meta['refine_mixing']:g}"] == min(table.values())
    assert table["0"] > 2 * table["1"]  # the toy's bands against one build's (see the calculator test)
    assert meta["refine_mixing_calibration"]["missing"] == ["gone.h5"] and "not found: gone.h5" in out
    # the build cache is keyed by the weights: another model's F[rho] is never taken for this one's
    from tracegrad_ase.model.checkpoint import weights_digest

    assert (tmp_path / "cache" / weights_digest(folder)[:16] / "graphene.h5").is_file()
    assert not (tmp_path / "cache" / "graphene.h5").exists()
    assert refine.model_refine_mixing(json.loads((folder / "model.json").read_text())) == meta["refine_mixing"]
