"""The one atomic writer (tracegrad_ase.io.atomic) and the places that use it (issue #14)."""

import json
import os
import shutil
from contextlib import contextmanager

import numpy as np
import pytest
from ase.build import molecule

from faults import Killed, killed_at
from tracegrad_ase.io.atomic import (append_line, atomic_folder, atomic_path, atomic_write_json, atomic_write_text,
                                  clean_stale_temporaries, old_folder, recover_folder)


@contextmanager
def umask(mask):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _hidden(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_files_and_folders_get_the_umask_mode(tmp_path, mask):
    with umask(mask):
        atomic_write_text(tmp_path / "a.txt", "x")
        with atomic_folder(tmp_path / "d") as tmp:
            (tmp / "f").write_text("y")
            (tmp / "sub").mkdir(mode=0o700)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~mask
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o777 & ~mask
    assert (tmp_path / "d" / "sub").stat().st_mode & 0o777 == 0o777 & ~mask
    assert (tmp_path / "d" / "f").stat().st_mode & 0o777 == 0o666 & ~mask


def test_a_failed_write_keeps_the_old_content_and_leaves_nothing(tmp_path):
    target = tmp_path / "r.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    with pytest.raises(ValueError):
        atomic_write_json(target, {"a": float("nan")}, allow_nan=False)
    assert json.loads(target.read_text()) == {"a": 1}
    assert _hidden(tmp_path) == []


def test_skip_unchanged_keeps_the_mtime(tmp_path):
    target = tmp_path / "settings.json"
    atomic_write_text(target, "same\n")
    os.utime(target, (1_000_000, 1_000_000))
    atomic_write_text(target, "same\n", skip_unchanged=True)
    assert target.stat().st_mtime == 1_000_000
    atomic_write_text(target, "other\n", skip_unchanged=True)
    assert target.read_text() == "other\n" and target.stat().st_mtime != 1_000_000
    assert _hidden(tmp_path) == []


def test_only_stale_temporaries_of_the_same_target_are_removed(tmp_path):
    names = [".a.json.abcdefgh.tmp", ".a.json.q_1x2y3z.tmp", ".a.json.abc.tmp", ".b.json.abcdefgh.tmp",
             "a.json.abcdefgh.tmp", ".a.json.abcdefgh.tmp.keep", ".a.json.old"]
    for n in names:
        (tmp_path / n).write_text("x")
    (tmp_path / ".a.json.zzzzzzzz.tmp").mkdir()
    (tmp_path / ".a.json.zzzzzzzz.tmp" / "inner").write_text("x")
    atomic_write_text(tmp_path / "a.json", "{}")
    assert _hidden(tmp_path) == sorted([".a.json.abc.tmp", ".b.json.abcdefgh.tmp", ".a.json.abcdefgh.tmp.keep",
                                        ".a.json.old"])
    assert (tmp_path / "a.json.abcdefgh.tmp").exists()
    assert clean_stale_temporaries(tmp_path / "b.json") == [tmp_path / ".b.json.abcdefgh.tmp"]


def test_append_line_closes_a_cut_line_first(tmp_path):
    log = tmp_path / "failures.jsonl"
    append_line(log, json.dumps({"name": "a"}))
    with open(log, "a") as f:
        f.write('{"name": "b", "err')  # killed mid-line
    append_line(log, json.dumps({"name": "c"}))
    lines = log.read_text().splitlines()
    assert json.loads(lines[0]) == {"name": "a"} and json.loads(lines[-1]) == {"name": "c"}
    assert len(lines) == 3


@pytest.mark.parametrize("existing", ["missing", "empty", "full"])
def test_a_kill_at_any_step_of_a_folder_swap_leaves_old_or_new(tmp_path, existing):
    step = 0
    while True:
        root = tmp_path / f"k{step}"
        root.mkdir()
        target = root / "out"
        if existing != "missing":
            target.mkdir()
        if existing == "full":
            (target / "v").write_text("old")
        try:
            with killed_at(step), atomic_folder(target) as tmp:
                (tmp / "v").write_text("new")
                (tmp / "w").write_text("new")
        except Killed:
            pass
        else:
            break
        recover_folder(target)
        if existing == "full":
            assert (target / "v").read_text() in ("old", "new"), step
            if (target / "v").read_text() == "new":
                assert (target / "w").read_text() == "new"
        with atomic_folder(target) as tmp:
            (tmp / "v").write_text("newer")
        assert (target / "v").read_text() == "newer" and _hidden(root) == [], step
        step += 1
    assert step >= 4


def test_recover_folder_renames_the_old_folder_back(tmp_path):
    target = tmp_path / "last"
    old_folder(target).mkdir()
    (old_folder(target) / "v").write_text("old")
    assert recover_folder(target) and (target / "v").read_text() == "old"
    assert not recover_folder(target)  # nothing left to do


def test_data_files_and_recipes_get_the_umask_mode(tmp_path):
    from tracegrad_ase.core.basis import OrbitalBasis
    from tracegrad_ase.io.h5 import load_h5, save_h5
    from tracegrad_ase.core.hamiltonian import RealSpaceHamiltonian

    atoms = molecule("H2")
    basis = OrbitalBasis(name="mini", shells={"H": (0,)}, valence={"H": 1})
    edges = np.array([[0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 1, 0], [0, 0, 0, 1, 1]])
    blocks = [np.ones((1, 1)) for _ in edges]
    (tmp_path / ".h.h5.abcdefgh.tmp").write_text("killed")
    with umask(0o022):
        save_h5(RealSpaceHamiltonian(atoms, basis, edges, blocks, blocks), tmp_path / "h.h5")
    assert (tmp_path / "h.h5").stat().st_mode & 0o777 == 0o644  # mkstemp alone gave 0600
    assert _hidden(tmp_path) == [] and len(load_h5(tmp_path / "h.h5").edges) == 4


def test_deeph_replaces_its_folder_through_the_old_name(tmp_path):
    from ase.build import bulk

    from tracegrad_ase.core.basis import OrbitalBasis
    from tracegrad_ase.io.deeph import read_deeph, write_deeph
    from tracegrad_ase.core.hamiltonian import RealSpaceHamiltonian

    atoms = bulk("Si", "diamond", a=5.43)
    basis = OrbitalBasis(name="mini", shells={"Si": (0,)}, valence={"Si": 4})
    edges = np.array([[0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 1, 0], [0, 0, 0, 1, 1]])
    ham = RealSpaceHamiltonian(atoms, basis, edges, [np.full((1, 1), 2.0) for _ in edges],
                               [np.ones((1, 1)) for _ in edges])
    write_deeph(ham, tmp_path / "d")
    os.rename(tmp_path / "d", tmp_path / ".d.old")  # a kill between the two renames of the next write
    write_deeph(ham, tmp_path / "d")
    assert _hidden(tmp_path) == [] and len(read_deeph(tmp_path / "d").edges) == 4


def test_failures_log_survives_a_cut_line(tmp_path):
    from tracegrad_ase.datasets import _log_failure, _logged_failures, _TaskFailure

    log = tmp_path / "failures.jsonl"
    _log_failure(log, "a", _TaskFailure("E", "m", "tb"))
    with open(log, "a") as f:
        f.write('{"name": "b", "er')
    _log_failure(log, "c", _TaskFailure("E", "m", "tb"))
    assert _logged_failures(log) == {"a", "c"}


def test_a_path_through_a_symlink_and_dotdot_is_written_where_the_os_puts_it(tmp_path):
    # calculators/NAME is a symlink into the package, and recipes reach the data folder with "../../..": the
    # temporary must be made in the folder the OS resolves, not the one ".." names as text
    (tmp_path / "real" / "deep").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "link").symlink_to(tmp_path / "real" / "deep")
    target = tmp_path / "elsewhere" / "link" / ".." / "data" / "file.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("x")
    assert (tmp_path / "real" / "data" / "file.txt").read_text() == "x"
    assert not (tmp_path / "elsewhere" / "data").exists()
