"""calculators/calibrate_lindep.py: chooses the grid value with the smallest validation error and records it, with
its table, in the model folder's model.json; a prediction then carries that lindep."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

from ase.build import molecule

from tracegrad_ase.engines.pyscf.scf import extract_blocks, run_scf
from tracegrad_ase.io.h5 import save_h5
from tracegrad_ase.models import resolve
from tracegrad_ase.predict import load, predict_hamiltonian

ROOT = Path(__file__).resolve().parents[1]


def test_calibration_picks_the_smallest_error_and_records_it(tmp_path):
    data = tmp_path / "data"
    save_h5(extract_blocks(run_scf(molecule("H2O"))), data / "structures" / "water.h5")
    run = tmp_path / "run"
    best = run / "checkpoints" / "best"
    shutil.copytree(resolve("molecules"), best, ignore=shutil.ignore_patterns("evaluation", "recipes", "*.yaml"))
    card = json.loads((best / "model.json").read_text())
    card["metadata"].pop("lindep", None)
    (best / "model.json").write_text(json.dumps(card))
    (run / "split.json").write_text(json.dumps({"train": [], "val": ["water.h5"], "test": []}))
    out = subprocess.run([sys.executable, str(ROOT / "calculators" / "calibrate_lindep.py"), str(best), "--data",
                          str(data), "--grid", "0.01", "0.05", "0.2"], capture_output=True, text=True, check=True)
    meta = json.loads((best / "model.json").read_text())["metadata"]
    table = meta["lindep_calibration"]["mae_mev_by_lindep"]
    assert set(table) == {"0.01", "0.05", "0.2"}
    assert meta["lindep"] == float(min(table, key=table.get))
    assert meta["lindep_calibration"]["n_structures"] == 1
    assert "chosen" in out.stdout
    assert predict_hamiltonian(molecule("H2O"), load(best)).meta["lindep"] == meta["lindep"]
