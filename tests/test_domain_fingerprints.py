"""Domain of applicability for every model (issue 18, item 3): per-atom environment fingerprints recorded at
training, scored at prediction, an OutOfDomainWarning naming the atoms, ``--strict`` exit 2."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from ase.build import bulk, graphene, molecule

from tracegrad_ase.core.environment import fingerprint_settings, fingerprints, nearest_distances
from tracegrad_ase.core.errors import OutOfDomainWarning
from tracegrad_ase.model.domain import (MAX_REFERENCES, add_fingerprints, domain_scores, environment_domain,
                                        training_domain)

from conftest import toy_model

SETTINGS = fingerprint_settings(["C", "H", "N", "O"])


def _sheet(a: float = 2.46, rattle: float = 0.0, seed: int = 0, repeat=(2, 2, 1)):
    atoms = graphene(a=a, vacuum=5.0).repeat(repeat)
    atoms.pbc = [True, True, False]
    if rattle:
        atoms.rattle(rattle, seed=seed)
    return atoms


# -- the fingerprint: invariant, and it tells environments apart ------------------------------------------------
def test_fingerprints_are_invariant_to_rotation_translation_and_permutation(rng):
    from conftest import random_rotation

    mol = molecule("CH3COOH")
    f = fingerprints(mol, SETTINGS)
    moved = mol.copy()
    moved.positions = mol.positions @ random_rotation(rng).T + [1.3, -2.0, 0.7]
    assert np.abs(fingerprints(moved, SETTINGS) - f).max() < 1e-10
    perm = rng.permutation(len(mol))
    assert np.abs(fingerprints(mol[perm], SETTINGS) - f[perm]).max() < 1e-10
    assert f.shape == (len(mol), 4 * (len(np.arange(0.5, 5.0 + 1e-9, 0.3)) + 3))


def test_fingerprints_do_not_depend_on_the_cell_chosen_for_a_crystal(rng):
    """To 1e-7, not round-off: the l = 2 invariant of a tetrahedron is sqrt(~0), which turns 1e-17 into 3e-9."""
    from conftest import random_rotation

    prim = bulk("C", "diamond", 3.567)  # fcc primitive cell, 2 atoms
    ref = fingerprints(prim, SETTINGS)[0]
    assert np.abs(fingerprints(prim, SETTINGS)[1] - ref).max() < 1e-10  # both atoms are equivalent
    for crystal in (bulk("C", "diamond", 3.567, cubic=True), prim.repeat((2, 1, 3))):
        assert np.abs(fingerprints(crystal, SETTINGS) - ref).max() < 1e-7
    sheet = _sheet(rattle=0.05, seed=3)
    f = fingerprints(sheet, SETTINGS)
    sup = sheet.repeat((3, 2, 1))  # atom k of the supercell is atom k % n of the cell
    assert np.abs(fingerprints(sup, SETTINGS) - np.tile(f, (6, 1))).max() < 1e-10
    turned = sheet.copy()
    turned.set_cell(sheet.cell[:] @ random_rotation(rng).T, scale_atoms=True)  # a rotated crystal, cell and all
    assert np.abs(fingerprints(turned, SETTINGS) - f).max() < 1e-10


def test_fingerprints_tell_graphene_from_diamond_and_from_a_compressed_sheet():
    f = fingerprints(_sheet(), SETTINGS)[0]
    d = fingerprints(bulk("C", "diamond", 3.567), SETTINGS)[0]
    squeezed = fingerprints(_sheet(a=2.46 * 0.9), SETTINGS)[0]
    assert np.linalg.norm(f - d) > 5 and np.linalg.norm(f - squeezed) > 2
    assert nearest_distances(np.array([f, d]), np.array([f]))[0] == pytest.approx(0.0, abs=1e-6)


# -- the record and the score ---------------------------------------------------------------------------------
def test_the_record_is_small_json_deterministic_and_capped(monkeypatch):
    sheets = [_sheet(rattle=0.03, seed=s) for s in range(4)]
    record = environment_domain(sheets, ["C"])
    assert record == environment_domain(sheets, ["C"])  # deterministic
    assert json.loads(json.dumps(record, allow_nan=False)) == record  # plain JSON
    assert set(record) == {"settings", "threshold", "scale", "references"}
    assert 0 < record["references"]["C"]["shape"][0] <= MAX_REFERENCES and record["scale"]["C"] > 0
    n, width = record["references"]["C"]["shape"]
    assert len(json.dumps(record)) < 1000 + n * width * 4 * 4 / 3  # at most float32 in base64, plus settings
    monkeypatch.setattr("tracegrad_ase.model.domain.MAX_REFERENCES", 3)
    assert environment_domain(sheets, ["C"])["references"]["C"]["shape"][0] == 3
    # A perfect crystal: its equivalent atoms are one reference, and one structure alone gets the floor scale.
    perfect = environment_domain([bulk("C", "diamond", 3.567).repeat(2)], ["C"])
    assert perfect["references"]["C"]["shape"] == [1, 19] and perfect["scale"]["C"] > 0


def test_stored_references_decode_exactly_and_bad_ones_are_refused():
    from tracegrad_ase.core.errors import DataFormatError
    from tracegrad_ase.model.domain import _decode

    sheets = [_sheet(rattle=0.03, seed=s) for s in range(4)]
    record = environment_domain(sheets, ["C"])
    ref = _decode(record["references"]["C"], 19)
    assert np.array_equal(ref, np.round(ref, 3).astype("<f4").astype(float))  # the rounded float32 values
    assert _decode(ref.tolist(), 19).shape == ref.shape  # plain lists are read too
    entry = dict(record["references"]["C"])
    for bad in ({**entry, "shape": [entry["shape"][0] + 1, 19]}, {**entry, "zlib_base64": "bm90IHpsaWI="},
                {**entry, "dtype": "<f8"}, {"shape": [1, 19]}):
        with pytest.raises(DataFormatError, match="fingerprints"):
            _decode(bad, 19)


def test_scores_in_and_out_of_a_graphene_domain():
    domain = {"fingerprints": environment_domain([_sheet(rattle=0.03, seed=s) for s in range(4)], ["C"])}
    assert domain_scores(_sheet(rattle=0.03, seed=11), domain).max() <= 1.0
    assert domain_scores(bulk("C", "diamond", 3.567), domain).min() > 1.0
    assert domain_scores(_sheet(a=2.46 * 0.9), domain).min() > 1.0
    assert domain_scores(_sheet(), {}) is None  # no fingerprints recorded: no check


def test_training_domain_records_fingerprints_and_add_fingerprints_updates_a_model_file():
    from tracegrad_ase.core.basis import OrbitalBasis
    from tracegrad_ase.core.graphs import neighbor_list
    from tracegrad_ase.core.hamiltonian import RealSpaceHamiltonian

    basis = OrbitalBasis(name="s", shells={"C": (0,)}, valence={"C": 1})
    hams = []
    for seed in range(3):
        atoms = _sheet(rattle=0.03, seed=seed)
        nl = neighbor_list(atoms, 1.6, self_edges=True)
        blocks = [np.zeros((1, 1))] * len(nl)
        hams.append(RealSpaceHamiltonian(atoms, basis, np.column_stack([nl.shifts, nl.i, nl.j]), blocks, blocks))
    domain = training_domain(hams)
    assert domain["fingerprints"] == environment_domain([h.atoms for h in hams], ["C"])
    card = {"config": {"elements": ["C"]}, "metadata": {"domain": {"elements": ["C"]}}}
    add_fingerprints(card, hams)
    assert card["metadata"]["domain"]["fingerprints"] == domain["fingerprints"]


# -- through the model, the calculator and the CLI ------------------------------------------------------------
@pytest.fixture(scope="module")
def graphene_models(tmp_path_factory):
    """The toy carbon model twice: as saved (no fingerprints) and with a graphene domain in its model.json."""
    import shutil

    plain = toy_model(tmp_path_factory.mktemp("plain"), "gth-szv", ["C"], "gth-pbe")
    recorded = tmp_path_factory.mktemp("recorded") / "graphene"
    shutil.copytree(plain, recorded)
    card = json.loads((recorded / "model.json").read_text())
    add_fingerprints(card, [_sheet(rattle=0.03, seed=s) for s in range(4)])
    (recorded / "model.json").write_text(json.dumps(card))
    return {"plain": plain, "recorded": recorded}


def test_the_calculator_scores_atoms_and_warns_out_of_domain(graphene_models):
    from tracegrad_ase.calculator import TraceGradCalculator

    calc = TraceGradCalculator(str(graphene_models["recorded"]), kpts=(3, 3, 1))
    inside = _sheet(rattle=0.03, seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDomainWarning)
        calc.calculate(inside)
    scores = calc.results["domain_scores"]
    assert scores.shape == (len(inside),) and scores.max() <= 1.0
    assert calc.results["hamiltonian"].meta["domain_scores"] == pytest.approx(scores.tolist(), abs=1e-4)
    diamond = bulk("C", "diamond", 3.567)
    with pytest.warns(OutOfDomainWarning, match=r"2 of 2 atoms .*0 C \(\d+\.\d\d\), 1 C"):
        calc.calculate(diamond)
    assert calc.results["domain_scores"].shape == (2,) and calc.results["domain_scores"].min() > 1.0


def test_a_model_without_fingerprints_works_as_before(graphene_models):
    from tracegrad_ase.calculator import TraceGradCalculator

    calc = TraceGradCalculator(str(graphene_models["plain"]), kpts=(3, 3, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDomainWarning)
        calc.calculate(bulk("C", "diamond", 3.567))
    assert "domain_scores" not in calc.results and np.isfinite(calc.results["fermi_level"])


def test_cli_predict_strict_refuses_a_structure_out_of_the_domain(graphene_models, tmp_path, capsys):
    from ase.io import write

    from tracegrad_ase.cli import main
    from tracegrad_ase.io.h5 import load_h5

    path = tmp_path / "diamond.extxyz"
    write(path, bulk("C", "diamond", 3.567))
    out = tmp_path / "diamond.pred.h5"
    model = str(graphene_models["recorded"])
    assert main(["predict", str(path), "--model", model, "--strict", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert not out.exists() and len(err.strip().splitlines()) == 1
    assert "tracegrad: error:" in err and "0 C (" in err and "--strict" in err
    with pytest.warns(OutOfDomainWarning):
        assert main(["predict", str(path), "--model", model, "-o", str(out)]) == 0
    assert min(load_h5(out).meta["domain_scores"]) > 1.0
    inside = tmp_path / "sheet.extxyz"
    write(inside, _sheet(rattle=0.03, seed=11))
    assert main(["predict", str(inside), "--model", model, "--strict", "-o", str(tmp_path / "s.h5")]) == 0
    png = tmp_path / "bands.png"  # bands and dos share the guard: the same refusal, no figure
    assert main(["bands", str(path), "--model", model, "--mesh", "3x3x3", "--density", "3", "--strict",
                 "-o", str(png)]) == 2 and not png.exists()
    assert "0 C (" in capsys.readouterr().err
    assert main(["predict", str(path), "--model", str(graphene_models["plain"]), "--strict",
                 "-o", str(tmp_path / "plain.h5")]) == 0  # no fingerprints: nothing to refuse


# -- environments a model's card excludes: refused, with the reason --------------------------------------------
def _diamond(rattle: float, seed: int):
    atoms = bulk("C", "diamond", 3.567, cubic=True)
    atoms.rattle(rattle, seed=seed)
    return atoms


def test_excluded_environments_move_out_of_the_domain_and_are_refused(graphene_models, tmp_path):
    """A toy model trained on sheets and diamond with diamond excluded: diamond (perfect, rattled, strained) is
    refused with the recorded reason, sheets still predict quietly, and the sheets' own domain no longer holds
    diamond (its fingerprints are recomputed from the kept structures)."""
    import shutil

    from tracegrad_ase.calculator import TraceGradCalculator
    from tracegrad_ase.core.errors import OutOfDomainError
    from tracegrad_ase.model.domain import exclude_environments, excluded_atoms

    folder = tmp_path / "sheets-not-diamond"
    shutil.copytree(graphene_models["plain"], folder)
    card = json.loads((folder / "model.json").read_text())
    sheets = [_sheet(rattle=0.03, seed=s) for s in range(4)]
    add_fingerprints(card, sheets + [_diamond(0.03, s) for s in range(3)])
    assert domain_scores(bulk("C", "diamond", 3.567), card["metadata"]["domain"]).max() < 1.0  # seen: in domain
    entry = exclude_environments(card, sheets, [_diamond(0.03, s) for s in range(3)], "sp3 carbon",
                                 "measured 0.7 eV off")
    domain = card["metadata"]["domain"]
    assert entry["name"] == "sp3 carbon" and domain["excluded"] == [entry]
    assert domain["fingerprints"] == environment_domain(sheets, ["C"])
    (folder / "model.json").write_text(json.dumps(card))

    strained = bulk("C", "diamond", 3.567 * 1.04)
    for crystal in (bulk("C", "diamond", 3.567), _diamond(0.05, 9), strained):
        assert [len(i) for _, i in excluded_atoms(crystal, domain)] == [len(crystal)]
        with pytest.raises(OutOfDomainError, match=rf"{len(crystal)} of {len(crystal)} atoms .* are sp3 carbon, "
                                                   "which this model does not predict: measured 0.7 eV off"):
            TraceGradCalculator(str(folder), kpts=(2, 2, 2)).calculate(crystal)
    inside = _sheet(rattle=0.03, seed=11)
    assert excluded_atoms(inside, domain) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDomainWarning)
        TraceGradCalculator(str(folder), kpts=(3, 3, 1)).calculate(inside)
    # Re-excluding under the same name replaces the entry
    exclude_environments(card, sheets, [_diamond(0.03, 0)], "sp3 carbon", "again")
    assert [e["reason"] for e in card["metadata"]["domain"]["excluded"]] == ["again"]


def test_the_shipped_carbon_model_refuses_diamond_and_predicts_graphene(capsys, tmp_path):
    """Issue 18: `tracegrad bands diamond.cif --model carbon` printed a metal; now it exits 2 with the reason."""
    from ase.io import write

    from tracegrad_ase.cli import main

    path = tmp_path / "diamond.cif"
    write(path, bulk("C", "diamond", 3.567))
    assert main(["bands", str(path), "--model", "carbon", "-o", str(tmp_path / "d.png")]) == 2
    err = capsys.readouterr().err
    assert "sp3 carbon (diamond-like), which this model does not predict" in err and "tracegrad truth" in err
    assert not (tmp_path / "d.png").exists()
    from tracegrad_ase.predict import check_domain, load

    sheet = graphene(a=2.46, vacuum=10.0)
    sheet.pbc = True
    assert check_domain(sheet, load("carbon")).max() < 1.0


def test_apply_exclusions_reads_a_cards_patterns_over_the_training_files(tmp_path):
    """The card's form (name, reason, training_files pattern) over saved training files; a stale pattern that
    matches nothing, or everything, is refused rather than recording an empty or total exclusion."""
    from tracegrad_ase.core.basis import OrbitalBasis
    from tracegrad_ase.core.graphs import neighbor_list
    from tracegrad_ase.core.hamiltonian import RealSpaceHamiltonian
    from tracegrad_ase.io.h5 import save_h5
    from tracegrad_ase.model.domain import apply_exclusions

    basis = OrbitalBasis(name="s", shells={"C": (0,)}, valence={"C": 1})

    def saved(atoms, name):
        nl = neighbor_list(atoms, 1.6, self_edges=True)
        blocks = [np.zeros((1, 1))] * len(nl)
        ham = RealSpaceHamiltonian(atoms, basis, np.column_stack([nl.shifts, nl.i, nl.j]), blocks, blocks)
        return save_h5(ham, tmp_path / f"{name}.h5")

    files = [saved(_sheet(rattle=0.03, seed=s), f"graphene-{s}") for s in range(3)]
    files += [saved(_diamond(0.03, s), f"diamond-{s}") for s in range(2)]
    card = {"config": {"elements": ["C"]}, "metadata": {"domain": {}}}
    spec = {"name": "sp3 carbon", "reason": "measured\n  badly", "training_files": "diamond-*"}
    apply_exclusions(card, [spec], files)
    (entry,) = card["metadata"]["domain"]["excluded"]
    assert entry["n_structures"] == 2 and entry["reason"] == "measured badly"
    assert card["metadata"]["domain"]["fingerprints"] == environment_domain(
        [_sheet(rattle=0.03, seed=s) for s in range(3)], ["C"])
    for pattern in ("silicon-*", "*"):
        with pytest.raises(ValueError, match="matches"):
            apply_exclusions(card, [{**spec, "training_files": pattern}], files)
    # weights that never trained on diamond: the card's reference data define the environment they are refused
    graphene_only = [f for f in files if "graphene" in f.name]
    with pytest.raises(ValueError, match="matches 0 of 3 training files"):
        apply_exclusions(card, [spec], graphene_only)
    (tmp_path / "refs" / "structures").mkdir(parents=True)
    for f in files:
        (tmp_path / "refs" / "structures" / f.name).write_bytes(f.read_bytes())
    fresh = {"config": {"elements": ["C"]}, "metadata": {"domain": {}}}
    apply_exclusions(fresh, [{**spec, "reference_data": "refs"}], graphene_only, root=tmp_path)
    assert fresh["metadata"]["domain"] == card["metadata"]["domain"]  # the same two cells, the same kept domain
