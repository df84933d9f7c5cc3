"""Choose a model's overlap threshold (lindep) on its validation set and record it in its model.json.

    python calculators/calibrate_lindep.py runs/ship/molecules-v3/checkpoints/best --data data/molecules-organic \
        data/molecules-svp data/molecules-svp-extra --split val

A predicted H is solved without the overlap directions below ``lindep`` because its errors along nearly dependent
directions are amplified by 1/s into spurious levels; the exact Hamiltonian needs no such cut. How much to cut
depends on how large the model's errors are, so the value is chosen per model, on structures it did not train on
(its run's validation split), against the exact levels (solved at ``LINDEP_THRESHOLD``): molecules by the
HOMO-LUMO gap's mean absolute error, crystals by the E_F-aligned band MAE within ±2 eV (on a mesh of at most 8
points per direction). The chosen value goes into ``metadata.lindep`` with the table that chose it
(``metadata.lindep_calibration``); the calculator, ``tracegrad evaluate`` and the adapters then solve this model's
predictions with it. Run it on a run's best checkpoint before ``calculators/ship_model.py``, which copies it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tracegrad_ase import electronic
from tracegrad_ase.electronic import spectrum
from tracegrad_ase.electronic.solve import LINDEP_THRESHOLD
from tracegrad_ase.io.h5 import load_h5
from tracegrad_ase.model.evaluate import predict_for
from tracegrad_ase.model.run_folder import split_file
from tracegrad_ase.predict import load
from model_metadata import record_calibration, split_structures  # calculators/model_metadata.py

GRID = (3e-3, 5e-3, 1e-2, 2e-2, 3e-2, 5e-2, 7e-2, 0.1, 0.15, 0.2)


def errors(model, path: Path, grid: tuple[float, ...]) -> dict[float, float]:
    """meV per lindep: |gap error| for a molecule, E_F-aligned band MAE within ±2 eV for a crystal."""
    truth = load_h5(path)
    pred = predict_for(truth, model)
    nelec = electronic.electron_count(truth)
    molecule = not np.any(truth.atoms.pbc)
    kpts = spectrum.evaluation_mesh(truth.atoms.cell[:], truth.atoms.pbc, max_points=8)
    exact = spectrum.levels(truth, kpts, LINDEP_THRESHOLD)
    out = {}
    for lindep in grid:
        levels = spectrum.levels(pred, kpts, lindep)
        if molecule:
            n = int(round(nelec)) // 2
            out[lindep] = abs((levels[0, n] - levels[0, n - 1]) - (exact[0, n] - exact[0, n - 1])) * 1000.0
        else:
            out[lindep] = spectrum.band_errors(exact, levels, None, nelec)["mae_mev"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path, help="a model folder (a run's checkpoints/best)")
    ap.add_argument("--data", nargs="+", required=True, help="the run's data folders")
    ap.add_argument("--split", default="val", help="the part of the run's split.json to calibrate on")
    ap.add_argument("--grid", type=float, nargs="+", default=list(GRID))
    ap.add_argument("--dry-run", action="store_true", help="print the table, write nothing")
    args = ap.parse_args()
    files = split_structures(split_file(args.model.parent.parent), args.data, args.split)
    model = load(args.model)
    grid = tuple(sorted(args.grid))
    table = np.array([[e[g] for g in grid] for e in (errors(model, f, grid) for f in files)], dtype=float)
    mean = np.nanmean(table, axis=0)
    best = grid[int(np.nanargmin(mean))]
    kind = "HOMO-LUMO gap MAE" if not np.any(load_h5(files[0]).atoms.pbc) else "E_F-aligned band MAE ±2 eV"
    print(f"{len(files)} {args.split} structures; {kind} (meV) by lindep:")
    for g, m in zip(grid, mean):
        print(f"  {g:8.3g}  {m:10.1f}{'   <- chosen' if g == best else ''}")
    if args.dry_run:
        return
    card_path = record_calibration(args.model, "lindep", best, {
        "metric": kind, "split": args.split, "n_structures": len(files),
        "mae_mev_by_lindep": {f"{g:g}": round(float(m), 1) for g, m in zip(grid, mean)},
        "command": "python calculators/calibrate_lindep.py MODEL --data ... --split " + args.split})
    print(f"lindep = {best:g} -> {card_path}")

if __name__ == "__main__":
    main()
