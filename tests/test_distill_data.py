"""calculators/distill_data.py: structures labelled by a committee's mean H, marked as such, and resumable."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from tracegrad_ase import committee
from tracegrad_ase.io.h5 import load_dataset, load_h5
from tracegrad_ase.models import resolve
from tracegrad_ase.predict import load, predict_hamiltonian

from conftest import toy_model
from test_committee import _member

RECIPE = """out_dir: unused
settings: {basis: gth-szv, kmesh: [1, 1, 1], cutoff: 4.0}
structures:
  - base: {build: graphene, kwargs: {a: 2.46, vacuum: 5.0}, pbc: [true, true, false]}
    perturb: {n: 2, displacement: 0.05, strain: 0.01, seed: 3, prefix: sheet}
"""


def _run(monkeypatch, *args: str) -> None:
    script = Path(__file__).resolve().parent.parent / "calculators" / "distill_data.py"
    spec = importlib.util.spec_from_file_location("distill_data", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, "argv", ["distill_data.py", *args])
    module.main()


def test_labels_are_the_committee_mean_and_say_so(tmp_path, monkeypatch):
    model = toy_model(tmp_path, "gth-szv", ["C"], "gth-pbe")
    _member(model, "a", 0.05, 1)
    _member(model, "b", 0.05, 2)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    out = tmp_path / "distilled"
    _run(monkeypatch, str(recipe), "--teacher", str(model), "--out", str(out))
    files = load_dataset(out)
    assert [f.name for f in files] == ["sheet-00000.h5", "sheet-00001.h5"]

    ham = load_h5(files[0])
    assert ham.meta["label_source"] == "committee mean" and len(ham.meta["teacher_sha256"]) == 3
    main = load(model)
    first = predict_hamiltonian(ham.atoms, main)
    members = [load(f) for f in committee.member_folders(model)]
    others = committee.member_hamiltonians(ham.atoms, first, members)
    assert np.abs(others[0].hamiltonian[0] - first.hamiltonian[0]).max() > 1e-4  # the members do differ
    mean = committee.mean_hamiltonian([first] + others)
    assert np.allclose(np.concatenate([b.ravel() for b in ham.hamiltonian]),
                       np.concatenate([b.ravel() for b in mean.hamiltonian]), atol=1e-10)
    assert np.array_equal(np.concatenate([b.ravel() for b in ham.overlap]),
                          np.concatenate([b.ravel() for b in first.overlap]))

    shipped = tmp_path / "shipped"
    _run(monkeypatch, str(recipe), "--teacher", "graphene-szv", "--out", str(shipped))  # a shipped model's name
    assert load_h5(load_dataset(shipped)[0]).meta["teacher_sha256"][0] == hashlib.sha256(
        (resolve("graphene-szv") / "model.safetensors").read_bytes()).hexdigest()

    stamp = files[0].stat().st_mtime_ns
    _run(monkeypatch, str(recipe), "--teacher", str(model), "--out", str(out))  # resumes: nothing redone
    assert files[0].stat().st_mtime_ns == stamp


def test_a_teacher_without_committee_is_refused(tmp_path, monkeypatch):
    model = toy_model(tmp_path, "gth-szv", ["C"], "gth-pbe")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    with pytest.raises(SystemExit, match="no committee"):
        _run(monkeypatch, str(recipe), "--teacher", str(model), "--out", str(tmp_path / "d"))
