"""calculators/select_checkpoint.py chooses a run's snapshot by the band MAE on cells of its own, and
calculators/ship_model.py --selection ships exactly that checkpoint, refusing a stale or biased choice."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from test_training import _config, dataset  # noqa: F401  (module fixture, reused)

from tracegrad_ase.io.h5 import STRUCTURES_DIR
from tracegrad_ase.model.checkpoint import load_model, save_model
from tracegrad_ase.model.train import train

CALCULATORS = Path(__file__).resolve().parent.parent / "calculators"


def _script(name, monkeypatch):
    monkeypatch.setattr(sys, "argv", [f"{name}.py"])
    spec = importlib.util.spec_from_file_location(name, CALCULATORS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_selection_picks_the_lowest_band_mae_and_ship_model_checks_it(tmp_path, dataset, monkeypatch):  # noqa: F811
    train(_config(tmp_path, dataset, epochs=4, snapshot_every=2))
    run = tmp_path / "run"
    split = json.loads((run / "split.json").read_text())
    cells = [str(dataset / STRUCTURES_DIR / n) for n in split["test"]]
    sel_mod = _script("select_checkpoint", monkeypatch)

    monkeypatch.setattr(sys, "argv", ["x", str(run), "--data", str(dataset / STRUCTURES_DIR / split["train"][0])])
    with pytest.raises(SystemExit, match="training split"):
        sel_mod.main()

    # the same training cell under another name: refused by its geometry
    renamed = tmp_path / "renamed" / "fresh-cell.h5"
    renamed.parent.mkdir()
    shutil.copy(dataset / STRUCTURES_DIR / split["train"][0], renamed)
    monkeypatch.setattr(sys, "argv", ["x", str(run), "--data", str(renamed)])
    with pytest.raises(SystemExit, match=f"fresh-cell.h5 \\(= {split['train'][0]}\\) in the run's training split"):
        sel_mod.main()

    monkeypatch.setattr(sys, "argv", ["x", str(run), "--data", *cells, "--ghost-kpoints", "0"])
    sel_mod.main()
    sel = json.loads((run / "selection.json").read_text())
    assert [r["checkpoint"] for r in sel["table"]] == ["best", "epoch-0002", "epoch-0004"]
    assert [r["epoch"] for r in sel["table"][1:]] == [2, 4]
    low = min(sel["table"], key=lambda r: r["band_mae_ef_mev"])
    assert sel["selected"] == low["checkpoint"] and sel["selected_band_mae_ef_mev"] == low["band_mae_ef_mev"]
    assert sel["data"] == sorted(Path(c).name for c in cells)

    ship = _script("ship_model", monkeypatch)
    folder, card = ship._selected_checkpoint(run, str(run / "selection.json"), {})
    assert folder == run / "checkpoints" / sel["selected"] and card["epoch"] == low["epoch"]
    assert set(card["candidates"]) == {"best", "epoch-0002", "epoch-0004"} and card["references"] == {}
    # a held-out folder holding a selection cell: figures chosen on would be reported as unseen
    with pytest.raises(SystemExit, match="also held out"):
        ship._selected_checkpoint(run, str(run / "selection.json"), ship._heldout_digests([str(dataset)]))
    # ... also under another name in another folder
    other = tmp_path / "heldout-renamed" / STRUCTURES_DIR
    other.mkdir(parents=True)
    shutil.copy(cells[0], other / "unseen-0.h5")
    with pytest.raises(SystemExit, match="also held out"):
        ship._selected_checkpoint(run, str(run / "selection.json"), ship._heldout_digests([str(other.parent)]))
    # a held-out structure that the run trained on, under another name: no held-out figures from it
    shutil.copy(dataset / STRUCTURES_DIR / split["train"][0], other / "unseen-1.h5")
    parts = ship._run_parts([str(dataset)], run / "split.json")
    with pytest.raises(SystemExit, match=f"1 held-out structure.*unseen-1.h5 = {split['train'][0]}"):
        ship._refuse_heldout_seen(parts["train"] + parts["val"], ship._heldout_digests([str(other.parent)]))
    ship._refuse_heldout_seen(parts["train"] + parts["val"], {})
    with pytest.raises(SystemExit, match="not of"):
        ship._selected_checkpoint(tmp_path / "other", str(run / "selection.json"), {})
    # the chosen checkpoint rewritten after it was judged (a resumed run rewrites snapshots)
    model = load_model(folder)
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    save_model(model, folder)
    with pytest.raises(SystemExit, match="changed since"):
        ship._selected_checkpoint(run, str(run / "selection.json"), {})
