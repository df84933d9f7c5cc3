"""The error floor that dropping overlap directions puts under every predicted band structure.

A prediction is solved without the directions of S(k) below ``lindep`` (1e-2 by default, a molecules model's
calibrated value): a model's errors along nearly dependent directions would otherwise become spurious levels. The
truth solved the same way is not the truth: this measures how far it moves, so that no model is asked to beat it.
For each ground-truth HDF5 file, the truth at each ``--lindep`` against the truth at LINDEP_THRESHOLD (the
ground truth's own solve): the E_F/VBM-aligned band MAE within ±2 eV and the change of the gap (HOMO-LUMO gap of a
molecule), on the evaluation mesh of ``heldout_gaps.py`` (Γ for molecules). Prints a table and writes JSON.

    python benchmarks/lindep_floor.py data/carbon-dzvp/heldout-*/structures/*.h5 --label carbon
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from _results import machine, merge_results
from heldout_gaps import fermi_and_gap
from tracegrad_ase import electronic
from tracegrad_ase.electronic import spectrum
from tracegrad_ase.electronic.solve import LINDEP_THRESHOLD
from tracegrad_ase.io.h5 import load_h5

OUT = Path(__file__).parent / "results" / "lindep_floor.json"


def floor(path: Path, lindeps: list[float], min_mesh: int, max_mesh: int) -> dict:
    """The truth of ``path`` solved at each lindep against its own solve at LINDEP_THRESHOLD."""
    truth = load_h5(path)
    kpts = spectrum.evaluation_mesh(truth.atoms.cell[:], truth.atoms.pbc, min_points=min_mesh, max_points=max_mesh)
    nelec = electronic.electron_count(truth)
    ref = spectrum.levels(truth, kpts, LINDEP_THRESHOLD)
    gap_ref = fermi_and_gap(ref, kpts, nelec)[1]
    rows = []
    for lindep in lindeps:
        moved = spectrum.levels(truth, kpts, lindep)
        err = spectrum.band_errors(ref, moved, None, nelec)
        gap_change = fermi_and_gap(moved, kpts, nelec)[1] - gap_ref
        rows.append({"lindep": lindep, "band_mae_mev": err["mae_mev"], "band_max_mev": err["max_mev"],
                     "aligned_to": err["kind"], "gap_change_mev": 1000 * gap_change})
    return {"file": str(path), "formula": truth.atoms.get_chemical_formula(), "kpoints": len(kpts),
            "gap_ev": gap_ref, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--lindep", type=float, nargs="+", default=[1e-3, 1e-2, 5e-2])
    ap.add_argument("--min-mesh", type=int, default=8)
    ap.add_argument("--max-mesh", type=int, default=12)
    ap.add_argument("--label", default="default", help="the key of this run in the JSON")
    ap.add_argument("--json", type=Path, default=OUT)
    args = ap.parse_args()
    from tqdm.auto import tqdm

    results = [floor(f, args.lindep, args.min_mesh, args.max_mesh) for f in tqdm(args.files, unit="structure")]
    head = "".join(f" {'MAE@' + format(x, 'g'):>10s} {'Δgap':>7s}" for x in args.lindep)
    print(f"{'structure':42s} {'k':>5s} {'gap':>6s}{head}   (meV; gap in eV)")
    for r in results:
        cells = "".join(f" {row['band_mae_mev'] or 0:10.1f} {row['gap_change_mev']:+7.0f}" for row in r["rows"])
        print(f"{Path(r['file']).parent.parent.name + '/' + Path(r['file']).name:42s} {r['kpoints']:5d} "
              f"{r['gap_ev']:6.3f}{cells}")
    for k, x in enumerate(args.lindep):
        maes = [r["rows"][k]["band_mae_mev"] or 0.0 for r in results]
        gaps = [abs(r["rows"][k]["gap_change_mev"]) for r in results]
        print(f"lindep {x:g}: mean band MAE {np.mean(maes):.1f} meV, mean |Δgap| {np.mean(gaps):.1f} meV")
    merge_results(args.json, args.label, {"structures": results, "lindeps": args.lindep, "machine": machine()})


if __name__ == "__main__":
    main()
