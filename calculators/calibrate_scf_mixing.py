"""Choose a molecule model's self-consistency mixing factor on its validation molecules and record it in model.json.

    python calculators/calibrate_scf_mixing.py calculators/molecules --data data/molecules-organic --split val

The calculator's self-consistency check builds F[ρ] once from the predicted density (``tracegrad_ase.scf_check``).
F[ρ] overshoots: a density from a gap too wide gives a gap too narrow. One step of linear mixing,
``gap + a * (fock_gap - gap)``, moves the prediction's gap toward self-consistency, with one factor ``a`` where the
gap moves with the overlap cut and another elsewhere (``scf_check.refined_gap``). How far to mix depends on the
model's errors and the molecules' response, so both are chosen per model on molecules it did not train on (the
``--split`` part of its split.json: the model folder's own, else its run's) by the HOMO-LUMO gap's mean absolute
error against PBE's own gaps (the data's levels, full basis). It goes into ``metadata.scf_mixing`` with the table
that chose it (``metadata.scf_mixing_calibration``); the calculator then reports ``refined_gap``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tracegrad_ase import electronic
from tracegrad_ase.datasets import SETTINGS_FILE
from tracegrad_ase.electronic import spectrum
from tracegrad_ase.electronic.cut_sensitivity import gap_cut_sensitivity
from tracegrad_ase.electronic.solve import LINDEP_THRESHOLD, model_lindep
from tracegrad_ase.engines.pyscf.self_consistency import self_consistency
from tracegrad_ase.engines.pyscf.settings import GroundTruthSettings
from tracegrad_ase.io.h5 import load_h5
from tracegrad_ase.model.evaluate import predict_for
from tracegrad_ase.model.run_folder import split_file
from tracegrad_ase.predict import load
from tracegrad_ase.scf_check import CUT_THRESHOLD_EV, MIXING_KEYS, refined_gap
from model_metadata import record_calibration, split_structures  # calculators/model_metadata.py

GRID = tuple(round(0.05 * i, 2) for i in range(21))


def molecule_gaps(model, path: Path) -> dict[str, float | None]:
    """PBE's gap (the data's levels, full basis), the model's (solved as the calculator solves it), its sensitivity
    to the overlap cut, and F[ρ]'s gap from the predicted density (the data set's own settings), in eV."""
    truth = load_h5(path)
    gamma = np.zeros((1, 3))
    nocc = int(electronic.electron_count(truth)) // 2
    exact = spectrum.levels(truth, gamma, LINDEP_THRESHOLD)[0]
    pred = predict_for(truth, model)
    lindep = model_lindep(model.model_file)
    levels = spectrum.levels(pred, gamma, lindep)[0]
    gap = float(levels[nocc] - levels[nocc - 1])
    edges = {"metal": False, "gap": gap, "k_vbm": gamma[0], "k_cbm": gamma[0]}  # a molecule's only k is Γ
    cut = gap_cut_sensitivity(electronic.BlochAssembler(pred), edges, 2 * nocc, lindep)
    settings = GroundTruthSettings.from_dict(json.loads((path.parent.parent / SETTINGS_FILE).read_text()))
    return {"pbe_gap": float(exact[nocc] - exact[nocc - 1]), "gap": gap,
            "cut_sensitivity": None if cut is None else cut["sensitivity"],
            "fock_gap": self_consistency(pred, gap, settings)["fock_gap"]}


def model_split_file(model_dir: Path) -> Path:
    """The model folder's split.json (a shipped model's), else its run's (``model_dir`` = RUN/checkpoints/best)."""
    for candidate in (model_dir / "split.json", split_file(model_dir.parent.parent)):
        if candidate.is_file():
            return candidate
    raise SystemExit(f"no split.json in {model_dir} or its run folder")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path, help="a model folder (shipped, or a run's checkpoints/best)")
    ap.add_argument("--data", nargs="+", required=True, help="data folders holding the split's molecules")
    ap.add_argument("--split", default="val", help="the part of split.json to calibrate on")
    ap.add_argument("--dry-run", action="store_true", help="print the table, write nothing")
    args = ap.parse_args()
    split = model_split_file(args.model)
    files = split_structures(split, args.data, args.split)
    n_split = len(json.loads(split.read_text())[args.split])
    model = load(args.model)
    rows = [molecule_gaps(model, f) for f in tqdm(files, desc=f"{args.split} molecules", unit="molecule")]
    mae = {(a, b): float(np.mean([abs(refined_gap(r["gap"], r["fock_gap"], r["cut_sensitivity"],
                                                  {"default": a, "cut_sensitive": b}) - r["pbe_gap"])
                                  for r in rows])) * 1000.0 for a in GRID for b in GRID}
    n_cut = sum((r["cut_sensitivity"] or 0.0) > CUT_THRESHOLD_EV for r in rows)
    # A factor no validation molecule tests stays 0 (the prediction's gap as it is): the data cannot choose it.
    undetermined = [k for k, n in (("default", len(rows) - n_cut), ("cut_sensitive", n_cut)) if n == 0]
    best = min((ab for ab in mae if all(ab[MIXING_KEYS.index(k)] == 0.0 for k in undetermined)), key=mae.get)
    print(f"{len(files)} {args.split} molecules of {n_split} in the split ({n_cut} cut-sensitive); HOMO-LUMO gap "
          "MAE against PBE (meV) by the default mixing (rows) and the cut-sensitive one (columns; 0, 0: the "
          "prediction's gap):")
    print("       " + "".join(f"{b:7.2f}" for b in GRID[::2]))
    for a in GRID[::2]:
        print(f"  {a:4.2f} " + "".join(f"{mae[a, b]:7.0f}" for b in GRID[::2]))
    chosen = {"default": best[0], "cut_sensitive": best[1]}
    print(f"chosen: {chosen}, {mae[best]:.1f} meV (the prediction's gap: {mae[0.0, 0.0]:.1f} meV)"
          + (f"; no molecule tests {' or '.join(undetermined)}: left at 0" if undetermined else ""))
    if args.dry_run:
        return
    path = record_calibration(args.model, "scf_mixing", chosen, {
        "metric": "HOMO-LUMO gap MAE against PBE (meV)", "split": args.split, "n_structures": len(files),
        "n_cut_sensitive": int(n_cut), "undetermined": undetermined, "mae_mev": round(mae[best], 1),
        "mae_mev_unmixed": round(mae[0.0, 0.0], 1),
        "mae_mev_by_default_mixing": {f"{a:g}": round(mae[a, best[1]], 1) for a in GRID},
        "mae_mev_by_cut_sensitive_mixing": {f"{b:g}": round(mae[best[0], b], 1) for b in GRID},
        "command": "python calculators/calibrate_scf_mixing.py MODEL --data ... --split " + args.split})
    print(f"scf_mixing = {chosen} -> {path}")


if __name__ == "__main__":
    main()
