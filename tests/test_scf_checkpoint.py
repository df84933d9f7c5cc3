"""A killed SCF resumes from its checkpoint: fewer cycles, the same converged answer, and only for its own system."""

from dataclasses import replace

import numpy as np
import pytest
from ase.build import graphene, molecule

from tracegrad_ase.core.errors import SCFNotConvergedError
from tracegrad_ase.datasets.generation import CHECKPOINTS_DIR, generate_dataset
from tracegrad_ase.engines.pyscf import scf_checkpoint
from tracegrad_ase.engines.pyscf.scf import GroundTruthSettings, run_scf
from tracegrad_ase.io.h5 import load_h5

WATER = GroundTruthSettings(basis="sto-3g")


def _killed(atoms, settings, chk, cycles=3):
    """A run stopped after ``cycles`` cycles, as a kill would leave it: the checkpoint of its last cycle."""
    with pytest.raises(SCFNotConvergedError):
        run_scf(atoms, replace(settings, max_cycle=cycles), checkpoint=chk)
    assert chk.exists()


def test_killed_molecule_resumes_with_fewer_cycles_and_the_same_answer(tmp_path):
    water, chk = molecule("H2O"), tmp_path / "water.chk"
    fresh = run_scf(water, WATER)
    assert fresh.info["scf_cycles"] > 5 and fresh.info["resumed"] is False
    _killed(water, WATER, chk)
    resumed = run_scf(water, WATER, checkpoint=chk)
    assert resumed.info["resumed"] is True
    assert resumed.info["scf_cycles"] <= fresh.info["scf_cycles"] - 2
    assert resumed.mf.e_tot == pytest.approx(fresh.mf.e_tot, abs=1e-8)
    assert np.allclose(resumed.mf.mo_energy, fresh.mf.mo_energy, atol=1e-5)


def test_checkpoint_of_another_geometry_or_a_corrupt_one_is_not_used(tmp_path):
    water, chk = molecule("H2O"), tmp_path / "water.chk"
    stretched = water.copy()
    stretched.positions[1] += [0.0, 0.05, 0.0]
    _killed(stretched, WATER, chk)
    run = run_scf(water, WATER, checkpoint=chk)
    assert run.info["resumed"] is False and run.mf.converged

    chk.write_bytes(b"half-written by a killed process")
    run = run_scf(water, WATER, checkpoint=chk)
    assert run.info["resumed"] is False and run.mf.converged
    assert (tmp_path / "water.chk.corrupt").read_bytes().startswith(b"half-written")


def test_a_kill_during_pyscfs_write_keeps_the_last_whole_cycle(tmp_path):
    water, chk = molecule("H2O"), tmp_path / "water.chk"
    fresh = run_scf(water, WATER)
    _killed(water, WATER, chk)
    # The fourth cycle's write was cut short: PySCF writes beside the checkpoint, never into it.
    scratch = scf_checkpoint.scratch_path(chk)
    scratch.write_bytes(b"half-written by a killed process")
    resumed = run_scf(water, WATER, checkpoint=chk)
    assert resumed.info["resumed"] is True and resumed.info["scf_cycles"] < fresh.info["scf_cycles"]
    assert resumed.mf.e_tot == pytest.approx(fresh.mf.e_tot, abs=1e-8)
    assert not (tmp_path / "water.chk.corrupt").exists()


def test_a_checkpoint_without_a_finished_cycle_is_not_called_corrupt(tmp_path, caplog):
    from pyscf.scf import chkfile

    water, chk = molecule("H2O"), tmp_path / "water.chk"
    # What PySCF writes at the start of its kernel, before the first cycle: the structure alone.
    chkfile.save_mol(run_scf(water, WATER).mf.mol, str(chk))
    with caplog.at_level("INFO", logger=scf_checkpoint.__name__):
        run = run_scf(water, WATER, checkpoint=chk)
    assert run.info["resumed"] is False and run.mf.converged
    assert "no finished cycle" in caplog.text and "unreadable" not in caplog.text
    assert not (tmp_path / "water.chk.corrupt").exists()


def test_discard_removes_the_scratch_file_too(tmp_path):
    chk = tmp_path / "water.chk"
    _killed(molecule("H2O"), WATER, chk)
    scf_checkpoint.scratch_path(chk).write_bytes(b"x")
    scf_checkpoint.discard(chk)
    assert list(tmp_path.iterdir()) == []


def test_killed_crystal_resumes_only_on_its_own_k_mesh(tmp_path):
    atoms = graphene(a=2.46, vacuum=4.0)
    atoms.pbc = [True, True, False]
    settings = GroundTruthSettings(basis="gth-szv", kmesh=(2, 2, 1), cutoff=6.0, conv_tol=1e-8)
    chk = tmp_path / "graphene.chk"
    fresh = run_scf(atoms, settings)
    _killed(atoms, settings, chk, cycles=2)
    other_mesh = run_scf(atoms, replace(settings, kmesh=(3, 3, 1)), checkpoint=tmp_path / "copy.chk")
    assert other_mesh.info["resumed"] is False
    (tmp_path / "copy.chk").write_bytes(chk.read_bytes())
    assert run_scf(atoms, replace(settings, kmesh=(3, 3, 1)), checkpoint=tmp_path / "copy.chk").info["resumed"] is False
    resumed = run_scf(atoms, settings, checkpoint=chk)
    assert resumed.info["resumed"] is True and resumed.info["scf_cycles"] < fresh.info["scf_cycles"]
    assert resumed.mf.e_tot == pytest.approx(fresh.mf.e_tot, abs=1e-7)


def test_generation_resumes_a_killed_structure_and_removes_its_checkpoint(tmp_path):
    water = molecule("H2O")
    water.info["name"] = "water"
    chk = tmp_path / "data" / CHECKPOINTS_DIR / "water.chk"
    _killed(water, WATER, chk)
    report = generate_dataset([water], tmp_path / "data", WATER, processes=False, progress=False)
    assert report.done == ["water"]
    assert load_h5(tmp_path / "data" / "structures" / "water.h5").meta["resumed"] is True
    assert not chk.parent.exists()  # the checkpoint and its emptied folder
