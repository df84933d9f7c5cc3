"""How much does the ground truth itself move with its SCF k-mesh? A floor for every band error we report.

A model sees local geometry, not the k-mesh its training labels were converged on. When the training cells and the
cells it is judged on had SCF meshes of different density (per primitive cell), part of the measured band error is
the truths' own disagreement, which no model can learn. This script takes truths of ONE structure made with
different ``--kmesh`` and reports each one's E_F-aligned band difference (±2 eV, the evaluation mesh: the metric of
``tracegrad evaluate``) against the densest, and the shift of E_F.

    tracegrad truth cell.extxyz --basis gth-szv --cutoff 8.0 --kmesh 3x3x1 -o cell-3x3x1.h5   # one per mesh
    python benchmarks/truth_kmesh.py --label graphene-szv-2x2 --reference cell-6x6x1.h5 cell-3x3x1.h5 cell-4x4x1.h5

Prints a table and merges the figures into benchmarks/results/truth_kmesh.json under ``--label``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from _results import machine, merge_results
from tracegrad_ase.electronic.filling import electron_count
from tracegrad_ase.electronic.solve import LINDEP_THRESHOLD
from tracegrad_ase.electronic.spectrum import band_errors, evaluation_mesh, levels
from tracegrad_ase.io.h5 import load_h5

OUT = Path(__file__).parent / "results" / "truth_kmesh.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("truths", nargs="+", type=Path, help="truths of the same structure on other k-meshes (.h5)")
    ap.add_argument("--reference", type=Path, required=True, help="the truth on the densest mesh (.h5)")
    ap.add_argument("--label", required=True)
    ap.add_argument("--json", type=Path, default=OUT)
    args = ap.parse_args()
    ref = load_h5(args.reference)
    mesh = evaluation_mesh(ref.atoms.cell[:], ref.atoms.pbc)
    e_ref = levels(ref, mesh, LINDEP_THRESHOLD)
    entry = {"reference": {"file": args.reference.name, "kmesh": ref.meta.get("kmesh")}, "truths": {}}
    print(f"{'truth':28s} {'SCF k-mesh':>10s} {'band MAE (meV)':>15s} {'max':>7s} {'E_F shift':>10s}")
    for path in args.truths:
        ham = load_h5(path)
        if len(ham.atoms) != len(ref.atoms) or not np.allclose(ham.atoms.positions, ref.atoms.positions, atol=1e-6):
            raise SystemExit(f"{path}: not the reference's structure ({args.reference})")
        b = band_errors(e_ref, levels(ham, mesh, LINDEP_THRESHOLD), None, electron_count(ref))
        row = {"kmesh": ham.meta.get("kmesh"), "band_mae_ef_mev": b["mae_mev"], "band_max_ef_mev": b["max_mev"],
               "n_levels": b["n_levels"], "fermi_shift_mev": 1000 * (b["ref_pred"] - b["ref_true"])}
        entry["truths"][path.name] = row
        print(f"{path.name:28s} {str(row['kmesh']):>10s} {row['band_mae_ef_mev']:15.2f} {row['band_max_ef_mev']:7.1f} "
              f"{row['fermi_shift_mev']:10.1f}")
    entry["machine"] = machine()
    merge_results(args.json, args.label, entry)


if __name__ == "__main__":
    main()
