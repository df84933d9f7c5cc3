"""Data set generation: generators, resumable parallel ground truth on a local Dask cluster, splits."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, fcc111, molecule
from ase.io import read

from tracegrad_ase.io.h5 import load_h5
from tracegrad_ase.datasets import (
    SettingsMismatchError,
    generate_dataset,
    load_dataset,
    perturbed_structures,
    phonopy_displacements,
    split_dataset,
)
from tracegrad_ase.core.errors import StructureError
from tracegrad_ase.engines.pyscf.scf import GroundTruthSettings

SETTINGS = GroundTruthSettings(basis="sto-3g")


def _named(atoms: Atoms, name: str) -> Atoms:
    atoms.info["name"] = name
    return atoms


def _good():
    return [_named(molecule("H2"), "h2"), _named(molecule("H2O"), "water")]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """One real run with the default worker processes: two closed-shell molecules and an open-shell H atom."""
    out = tmp_path_factory.mktemp("ds")
    structures = _good() + [_named(Atoms("H"), "h-atom")]
    report = generate_dataset(structures, out, SETTINGS, progress=False)
    return out, report, structures


def _mtimes(out):
    return {p.name: p.stat().st_mtime_ns for p in (out / "structures").iterdir()}


# -- generation ------------------------------------------------------------------------------------------
def test_generated_files_load_with_their_atoms(dataset):
    out, report, structures = dataset
    assert report.done == ["h2", "water"] and report.skipped == []
    assert [p.name for p in load_dataset(out)] == ["h2.h5", "water.h5"]
    for atoms in structures[:2]:
        ham = load_h5(out / "structures" / f"{atoms.info['name']}.h5")
        assert ham.atoms.get_chemical_symbols() == atoms.get_chemical_symbols()
        np.testing.assert_allclose(ham.atoms.positions, atoms.positions, atol=1e-12)
        assert ham.meta["settings"]["basis"] == "sto-3g"
        assert ham.meta["settings"]["threads"] == 1  # threads_per_worker reached the task
    assert json.loads((out / "settings.json").read_text()) == json.loads(json.dumps(SETTINGS.to_dict()))
    recipe = read(out / "structures.extxyz", index=":")
    assert [a.info["name"] for a in recipe] == ["h2", "water", "h-atom"]


def test_failing_structure_is_logged_and_others_succeed(dataset):
    out, report, _ = dataset
    assert list(report.failed) == ["h-atom"] and "StructureError" in report.failed["h-atom"]
    records = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert [r["name"] for r in records] == ["h-atom"]
    assert records[0]["error"] == "StructureError" and "electrons" in records[0]["message"] and records[0]["time"]


def test_rerun_skips_everything_and_touches_nothing(dataset):
    out, _, _ = dataset
    before = _mtimes(out)
    recipe_before = {f: (out / f).stat().st_mtime_ns for f in ("settings.json", "failures.jsonl")}
    # Only threads differ: they change speed, not results, so this is the same data set.
    report = generate_dataset(_good(), out, GroundTruthSettings(basis="sto-3g", threads=2), progress=False)
    assert report.skipped == ["h2", "water"] and report.done == [] and report.failed == {}
    assert _mtimes(out) == before
    assert (out / "failures.jsonl").stat().st_mtime_ns == recipe_before["failures.jsonl"]


def test_corrupt_files_are_recomputed_and_recoveries_reported(dataset, tmp_path):
    out = tmp_path / "ds"
    shutil.copytree(dataset[0], out)
    water = out / "structures" / "water.h5"
    water.write_bytes(water.read_bytes()[: water.stat().st_size // 2])  # a truncated file
    (out / "structures" / "h2.h5").write_bytes(b"not an hdf5 file")
    with open(out / "failures.jsonl", "a") as f:  # pretend h2 failed in an earlier run
        f.write(json.dumps({"name": "h2", "error": "SCFNotConvergedError", "message": "", "time": ""}) + "\n")
    report = generate_dataset(_good(), out, SETTINGS, progress=False, processes=False)
    assert report.done == ["h2", "water"] and report.skipped == [] and report.recovered == ["h2"]
    assert [len(load_h5(p).atoms) for p in load_dataset(out)] == [2, 3]


def test_changed_settings_raise_unless_overwritten(dataset, tmp_path):
    out, _, _ = dataset
    settings_text = (out / "settings.json").read_text()
    with pytest.raises(SettingsMismatchError, match="xc"):
        generate_dataset(_good(), out, GroundTruthSettings(basis="sto-3g", xc="lda"), progress=False)
    assert (out / "settings.json").read_text() == settings_text

    copy = tmp_path / "ds"
    shutil.copytree(out, copy)
    lda = GroundTruthSettings(basis="sto-3g", xc="lda")
    report = generate_dataset(_good()[:1], copy, lda, overwrite_settings=True, progress=False, processes=False)
    assert report.done == ["h2"]
    assert load_h5(copy / "structures" / "h2.h5").meta["settings"]["xc"] == "lda"
    assert json.loads((copy / "settings.json").read_text())["xc"] == "lda"
    # water.h5 still holds PBE data: adopting LDA for the folder must not silently reuse it.
    with pytest.raises(SettingsMismatchError, match="water"):
        generate_dataset(_good(), copy, lda, progress=False)


def test_bad_names_and_geometry_clashes_raise(dataset):
    out, _, _ = dataset
    # The recipe as this worker's earlier tests left it (a rerun of two rewrites it), so the check below holds
    # in any test order.
    recipe = (out / "structures.extxyz").read_bytes()
    with pytest.raises(ValueError, match="duplicate"):
        generate_dataset([_named(molecule("H2"), "x"), _named(molecule("H2O"), "x")], out, SETTINGS)
    with pytest.raises(ValueError, match="file names"):
        generate_dataset([_named(molecule("H2"), "../x")], out, SETTINGS)
    moved = _named(molecule("H2"), "h2")
    moved.positions[0, 0] += 0.1
    with pytest.raises(ValueError, match="different structure"):
        generate_dataset([moved], out, SETTINGS)
    assert (out / "structures.extxyz").read_bytes() == recipe  # the refused calls wrote nothing


# -- generators ------------------------------------------------------------------------------------------
def test_perturbed_structures_reproducible_and_named():
    water = molecule("H2O")
    a = perturbed_structures(water, 4, displacement=0.1, seed=1)
    b = perturbed_structures(water, 4, displacement=0.1, seed=1)
    c = perturbed_structures(water, 4, displacement=0.1, seed=2)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.positions, y.positions)
    assert all(not np.allclose(x.positions, y.positions) for x, y in zip(a, c))
    assert [x.info["name"] for x in a] == [f"H2O-perturbed-s1-{k:05d}" for k in range(4)]
    assert len({x.info["name"] for x in a + c}) == 8
    assert water.info.get("name") is None  # the base is not modified
    shift = np.concatenate([x.positions - water.positions for x in perturbed_structures(water, 200, 0.05)])
    assert 0.045 < shift.std() < 0.055
    with pytest.raises(StructureError):
        perturbed_structures(Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.1]]), 1)


def test_strain_acts_only_on_periodic_directions():
    slab = fcc111("Al", size=(2, 2, 2), vacuum=5.0)  # pbc (True, True, False), vacuum vector along z
    assert list(slab.pbc) == [True, True, False]
    for atoms in perturbed_structures(slab, 3, displacement=0.0, strain=0.02, seed=0):
        np.testing.assert_array_equal(atoms.cell[2], slab.cell[2])
        assert not np.allclose(atoms.cell[:2], slab.cell[:2])
        np.testing.assert_allclose(atoms.cell[:2, 2], 0.0, atol=1e-12)  # in-plane vectors stay in the plane
        frac = atoms.get_scaled_positions(wrap=False)
        np.testing.assert_allclose(frac, slab.get_scaled_positions(wrap=False), atol=1e-12)  # atoms follow the cell
    h2 = molecule("H2")
    np.testing.assert_array_equal(perturbed_structures(h2, 1, displacement=0.0, strain=0.1)[0].positions, h2.positions)


def test_phonopy_displacements_match_phonopy():
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms

    si = bulk("Si")
    matrix = [[2, 0, 0], [0, 2, 0], [0, 0, 2]]
    structures = phonopy_displacements(si, matrix, distance=0.01)

    unit = PhonopyAtoms(symbols=si.get_chemical_symbols(), cell=si.cell[:], scaled_positions=si.get_scaled_positions())
    phonon = Phonopy(unit, supercell_matrix=matrix)
    phonon.generate_displacements(distance=0.01)
    assert len(structures) == len(phonon.supercells_with_displacements) >= 1
    ideal = phonon.supercell
    for k, atoms in enumerate(structures):
        assert atoms.info["name"] == f"Si2-phonopy-{k:05d}"
        assert atoms.get_chemical_symbols() == list(ideal.symbols) and all(atoms.pbc)
        np.testing.assert_allclose(atoms.cell[:], ideal.cell, atol=1e-12)
        frac = atoms.get_scaled_positions(wrap=False) - ideal.scaled_positions
        moved = np.linalg.norm((frac - np.rint(frac)) @ ideal.cell, axis=1)
        assert np.count_nonzero(moved > 1e-8) == 1
        assert np.argmax(moved) == atoms.info["displaced_atom"]
        assert moved.max() == pytest.approx(0.01, abs=1e-10)


def test_recipe_multi_frame_file_gives_one_structure_per_frame(tmp_path):
    from ase.io import write

    from tracegrad_ase.core.errors import DataFormatError
    from tracegrad_ase.datasets.recipes import recipe_structures

    frames = [_named(molecule("H2O"), "water"), molecule("NH3"), _named(molecule("CH4"), "methane")]
    frames[2].positions[0, 0] += 0.01
    write(tmp_path / "mols.extxyz", frames, format="extxyz")
    write(tmp_path / "one.xyz", molecule("H2"))
    recipe = {"_root": tmp_path, "structures": [{"base": {"file": "mols.extxyz"}}, {"base": {"file": "one.xyz"}}]}
    got = recipe_structures(recipe)
    assert [a.info["name"] for a in got] == ["water", "s0-00001", "methane", "s1-base"]
    assert [a.get_chemical_formula() for a in got] == ["H2O", "H3N", "CH4", "H2"]
    np.testing.assert_allclose(got[2].positions, frames[2].positions, atol=1e-8)
    for part in ({"perturb": {"n": 1}}, {"phonopy": {"supercell": [1, 1, 1]}}):
        with pytest.raises(DataFormatError, match="3 frames"):  # it used to take the last frame silently
            recipe_structures({"_root": tmp_path, "structures": [{"base": {"file": "mols.extxyz"}, **part}]})
    one = recipe_structures({"_root": tmp_path, "structures": [{"base": {"file": "one.xyz"}, "perturb": {"n": 2}}]})
    assert [a.info["name"] for a in one] == ["s0-perturbed-00000", "s0-perturbed-00001"]


# -- reading ---------------------------------------------------------------------------------------------
def test_split_dataset_deterministic_partition(tmp_path):
    paths = [tmp_path / f"s{k:02d}.h5" for k in range(10)]
    train, val, test = split_dataset(paths, seed=3)
    assert (len(train), len(val), len(test)) == (8, 1, 1)
    assert sorted(train + val + test) == sorted(paths)
    assert split_dataset(paths[::-1], seed=3) == (train, val, test)  # input order does not matter
    assert split_dataset(paths, seed=4) != (train, val, test)
    with pytest.raises(ValueError):
        split_dataset(paths, fractions=(0.5, 0.1, 0.1))


def test_load_dataset_ignores_temporary_files(dataset, tmp_path):
    out = tmp_path / "ds"
    shutil.copytree(dataset[0], out)
    (out / "structures" / ".water.h5.abc.tmp").write_bytes(b"")
    assert [p.name for p in load_dataset(out)] == ["h2.h5", "water.h5"]
    with pytest.raises(FileNotFoundError):
        load_dataset(tmp_path / "nothing")


def test_a_worker_that_shares_the_folder_stores_its_structure_itself(tmp_path):
    """A finished structure is on disk before its result travels back: a parent that stalls (and has its worker
    restarted) cannot lose it, and a rerun skips it."""
    from tracegrad_ase.datasets.generation import _ground_truth_task, _Stored

    h2 = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
    out = tmp_path / "h2.h5"
    stored = _ground_truth_task(h2, SETTINGS, None, str(out))
    assert stored == _Stored(str(out)) and load_h5(out).norb == 2
    returned = _ground_truth_task(h2, SETTINGS)  # a remote worker: the result itself comes back
    assert np.allclose(returned.hamiltonian[0], load_h5(out).hamiltonian[0], atol=1e-8)
    (tmp_path / "dir.h5").mkdir()
    failed = _ground_truth_task(h2, SETTINGS, None, str(tmp_path / "dir.h5"))  # a folder where the file goes
    assert "saving failed" in failed.message
