"""calculators/ship_model.py re-evaluates a shipped model on its run's own split: the shipped split.json, whose
test structures a fine-tuned model's train.yaml would not draw again."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.build import molecule

from tracegrad_ase.core.basis import OrbitalBasis
from tracegrad_ase.core.graphs import neighbor_list
from tracegrad_ase.core.hamiltonian import RealSpaceHamiltonian
from tracegrad_ase.io.h5 import STRUCTURES_DIR, save_h5
from tracegrad_ase.models import SHIPPED_MODELS

BASIS = OrbitalBasis(name="mini", shells={"H": (0,), "O": (0,)}, valence={"H": 1, "O": 6})


def _ship_model(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["ship_model.py"])
    script = Path(__file__).resolve().parent.parent / "calculators" / "ship_model.py"
    spec = importlib.util.spec_from_file_location("ship_model", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(folder, name):
    atoms = molecule("H2O")
    nl = neighbor_list(atoms, 3.0, self_edges=True)
    edges = np.column_stack([nl.shifts, nl.i, nl.j])
    blocks = [np.full((1, 1), 0.1) for _ in edges]
    save_h5(RealSpaceHamiltonian(atoms, BASIS, edges, blocks, blocks), folder / STRUCTURES_DIR / name)


def test_reevaluation_tests_on_the_shipped_split(tmp_path, monkeypatch):
    sm = _ship_model(monkeypatch)
    data, dest = tmp_path / "data", tmp_path / "model"
    dest.mkdir()
    for name in ("a.h5", "b.h5", "c.h5", "d.h5"):
        _write(data, name)
    # train.yaml's seed would draw another split over these four names; the shipped one decides
    (dest / "train.yaml").write_text("split: [0.5, 0.25, 0.25]\nseed: 0\n")
    (dest / "card.in.yaml").write_text("name: x\n")
    (dest / "split.json").write_text(json.dumps({"train": ["a.h5", "b.h5"], "val": ["c.h5"], "test": ["d.h5"]}))
    split = sm._redrawn_split(dest, [str(data)])
    assert [f.name for f in split["test"]] == ["d.h5"] and sorted(f.name for f in split["train"]) == ["a.h5", "b.h5"]
    (data / STRUCTURES_DIR / "b.h5").unlink()  # a training structure not generated here: counted, not fatal
    split = sm._redrawn_split(dest, [str(data)])
    assert [f.name for f in split["train"]] == ["a.h5"] and split["n_train_expected"] == 2
    (data / STRUCTURES_DIR / "d.h5").unlink()
    with pytest.raises(SystemExit, match="test structures"):
        sm._redrawn_split(dest, [str(data)])


def test_the_fine_tuned_molecules_model_ships_its_split():
    card = (SHIPPED_MODELS / "molecules" / "card.yaml").read_text()
    assert "init_from" in card
    split = json.loads((SHIPPED_MODELS / "molecules" / "split.json").read_text())
    assert {k: len(v) for k, v in split.items()} == {"train": 1109, "val": 48, "test": 44}


def test_add_heldout_keeps_the_card_and_adds_the_new_set(tmp_path, monkeypatch):
    sm = _ship_model(monkeypatch)
    dest, data = tmp_path / "model", tmp_path / "graphene-6x6"
    (dest / "evaluation").mkdir(parents=True)
    _write(data, "big.h5")
    (dest / "card.yaml").write_text(
        "name: x\nlimits: old words\ndata:\n  digests: {train: {structures: 2}}\n  recipes: [a.yaml]\n"
        "test: {model: {band_mae_ef_mev: 45.0}}\nheldout: {graphene-4x4: {model: {band_mae_ef_mev: 51.0}}}\n")
    (dest / "card.in.yaml").write_text("name: x\nlimits: new words\ndata:\n  recipes: [a.yaml, b.yaml]\n")
    calls = []

    def fake_evaluate(model, folders, split, out, parity=None):
        calls.append((model, folders, split))
        return {"band_mae_ef_mev": 60.0, "ghost_levels": 0, "per_structure": [{}]}

    monkeypatch.setattr(sm, "_evaluate", fake_evaluate)
    monkeypatch.setattr(sys, "argv", ["ship_model.py", "x", "--add-heldout", str(data)])
    monkeypatch.setattr(sm, "HERE", tmp_path)
    dest.rename(tmp_path / "x")
    sm.main()
    card = __import__("yaml").safe_load((tmp_path / "x" / "card.yaml").read_text())
    assert calls == [(tmp_path / "x", [str(data)], "all")]
    assert card["heldout"]["graphene-6x6"]["model"] == {"band_mae_ef_mev": 60.0, "ghost_levels": 0}
    assert card["heldout"]["graphene-4x4"]["model"]["band_mae_ef_mev"] == 51.0  # kept
    assert card["test"]["model"]["band_mae_ef_mev"] == 45.0
    assert card["limits"] == "new words" and card["data"]["recipes"] == ["a.yaml", "b.yaml"]
    assert card["data"]["digests"]["train"] == {"structures": 2}
    assert card["data"]["digests"]["heldout:graphene-6x6"]["structures"] == 1


def test_ship_model_needs_exactly_one_mode(tmp_path, monkeypatch):
    sm = _ship_model(monkeypatch)
    for argv in (["x"], ["x", "--reevaluate", "--add-heldout", "f"], ["x", "--reevaluate"]):
        monkeypatch.setattr(sys, "argv", ["ship_model.py", *argv])
        with pytest.raises(SystemExit):
            sm.main()


def test_shipping_refuses_to_drop_a_calibration(tmp_path, monkeypatch, capsys):
    sm = _ship_model(monkeypatch)
    shipped, new = tmp_path / "shipped" / "model.json", tmp_path / "run" / "checkpoints" / "best" / "model.json"
    for path, meta in ((shipped, {"lindep": 0.05, "scf_mixing": {"default": 0.25}, "refine_mixing": 0.9}),
                       (new, {"best_epoch": 3})):
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"metadata": meta}))
    with pytest.raises(SystemExit, match=r"lindep = 0.05, scf_mixing = .*refine_mixing = 0.9.*calibrate_lindep.py "
                                         r".*best --data.*calibrate_refine_mixing.py"):
        sm._refuse_lost_calibrations(shipped, new, drop=False)
    sm._refuse_lost_calibrations(shipped, new, drop=True)
    assert "lindep (calibrated for the previous weights) dropped" in capsys.readouterr().out
    new.write_text(json.dumps({"metadata": {"lindep": 0.03, "scf_mixing": {"default": 0.1}, "refine_mixing": 0.7}}))
    sm._refuse_lost_calibrations(shipped, new, drop=False)  # the new weights carry their own
    sm._refuse_lost_calibrations(tmp_path / "none" / "model.json", new, drop=False)  # nothing shipped yet


def _curve(path):
    rows = [{"n_train": n, "test": {"gauge_mae_mev": g, "band_mae_ef_mev": b}}
            for n, g, b in ((8, 4.0, 80.0), (16, 2.0, 40.0), (32, 1.5, 39.0))]
    path.write_text(json.dumps({"c-train": {
        "rows": rows, "fit_min": 8, "settings": {"config": "train.yaml", "group_by": None},
        "fits": {"gauge_mae_mev": {"slope": -0.7}, "band_mae_ef_mev": {"slope": -0.02}},
        "extrapolation": {"gauge_mae_mev": {"target": 1.0, "n_needed": 61.4},
                          "band_mae_ef_mev": {"target": 10.0, "n_needed": 3.0e30}}}}))


def test_refresh_words_puts_the_learning_curve_on_the_card_and_keeps_its_figures(tmp_path, monkeypatch):
    sm = _ship_model(monkeypatch)
    dest = tmp_path / "x"
    dest.mkdir()
    _curve(tmp_path / "learning_curve.json")
    (dest / "card.yaml").write_text("name: x\nlimits: old words\ntest: {model: {band_mae_ef_mev: 45.0}}\n")
    (dest / "card.in.yaml").write_text("name: x\nlimits: new words\n"
                                       "learning_curve: {key: c-train, figure: lc.png, note: why}\n")
    monkeypatch.setattr(sm, "HERE", tmp_path)
    monkeypatch.setattr(sm, "LEARNING_CURVES", tmp_path / "learning_curve.json")
    monkeypatch.setattr(sys, "argv", ["ship_model.py", "x", "--refresh-words"])
    monkeypatch.setattr(sm, "_evaluate", lambda *a, **k: pytest.fail("--refresh-words evaluates nothing"))
    sm.main()
    card = __import__("yaml").safe_load((dest / "card.yaml").read_text())
    assert card["limits"] == "new words" and card["test"]["model"]["band_mae_ef_mev"] == 45.0
    curve = card["learning_curve"]
    assert (curve["figure"], curve["note"], curve["config"]) == ("lc.png", "why", "train.yaml")
    assert curve["training_set_sizes"] == [8, 16, 32] and curve["size_unit"] == "structure"
    assert curve["test"]["band_mae_ef_mev"] == [80.0, 40.0, 39.0] and curve["slopes"]["gauge_mae_mev"] == -0.7
    assert curve["needed"]["gauge_mae_mev"] == {"target": 1.0, "training_set_size": 61}
    assert "out of reach" in curve["needed"]["band_mae_ef_mev"]["training_set_size"]
    sm.main()  # a refreshed card refreshes to the same
    assert __import__("yaml").safe_load((dest / "card.yaml").read_text()) == card


def test_a_learning_curve_the_results_lack_is_refused_by_name(tmp_path, monkeypatch):
    sm = _ship_model(monkeypatch)
    _curve(tmp_path / "learning_curve.json")
    with pytest.raises(SystemExit, match="'other'.*learning_curve.py"):
        sm.learning_curve_summary({"key": "other"}, tmp_path / "learning_curve.json")
    with pytest.raises(SystemExit, match="needs a key"):
        sm.learning_curve_summary({"figure": "lc.png"}, tmp_path / "learning_curve.json")
    assert sm.learning_curve_summary(None) is None
