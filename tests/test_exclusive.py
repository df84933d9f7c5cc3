"""One writer per output folder (io.exclusive): a second generator or training run on a folder in use is refused
before it writes anything, and a killed holder leaves no stale lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from ase.build import molecule

from tracegrad_ase.datasets import generate_dataset
from tracegrad_ase.engines.pyscf.scf import GroundTruthSettings
from tracegrad_ase.io.exclusive import FolderInUseError, exclusive


def test_second_holder_is_refused_with_the_first_named(tmp_path):
    with exclusive(tmp_path, "job A"):
        with pytest.raises(FolderInUseError, match=rf"pid {os.getpid()}, job A"):
            with exclusive(tmp_path, "job B"):
                pass
    with exclusive(tmp_path, "job B"):  # released on exit
        pass


def test_refusal_names_the_folder_without_dot_dots(tmp_path):
    (tmp_path / "a").mkdir()
    with exclusive(tmp_path / "run", "job A"):
        with pytest.raises(FolderInUseError) as refused:
            with exclusive(tmp_path / "a" / ".." / "run", "job B"):
                pass
    assert str(refused.value).startswith(f"{(tmp_path / 'run').resolve()} is in use")


def test_generator_refuses_a_folder_in_use_and_writes_nothing(tmp_path):
    h2 = molecule("H2")
    h2.info["name"] = "h2"
    with exclusive(tmp_path, "tracegrad generate"):
        with pytest.raises(FolderInUseError, match="tracegrad generate"):
            generate_dataset([h2], tmp_path, GroundTruthSettings(basis="sto-3g"), progress=False, processes=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock"]


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    code = ("import sys, time; from tracegrad_ase.io.exclusive import exclusive\n"
            "with exclusive(sys.argv[1], 'holder'):\n    print('held', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(FolderInUseError, match=f"pid {proc.pid}, holder"):
            with exclusive(tmp_path, "second"):
                pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    with exclusive(tmp_path, "after the kill"):  # the kernel released the dead process's lock at once
        pass


def test_without_fcntl_the_folder_is_still_made(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "fcntl", None)  # as on Windows: `import fcntl` raises ImportError
    folder = tmp_path / "new" / "run"
    with exclusive(folder, "job"):
        assert folder.is_dir()  # generate_dataset and train write into it at once
    assert not (folder / ".lock").exists()
