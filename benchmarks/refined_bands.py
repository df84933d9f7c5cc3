"""Refined crystal Hamiltonians: Kohn-Sham builds from the predicted density against the prediction itself.

For each crystal, the model's H(R) and its refinement (``--builds`` Kohn-Sham builds by
``engines.pyscf.self_consistency.refined_hamiltonian`` with the data set's own settings: functional, basis, SCF
mesh, smearing, cutoff; two combined by DIIS as ``TraceGradCalculator(refine=True)``, or one mixed by the model's
``refine_mixing``) are judged against the stored truth: E_F-aligned
band MAE within ±2 eV on the evaluation mesh (as `tracegrad evaluate` measures it, the model's lindep on both
sides), and the refinement's wall time against the truth's own SCF plus block extraction (from the file's meta,
measured when the data set was generated: compare on the same machine). Prints a table and merges the figures
into benchmarks/results/refined_bands.json under ``--label``.

    python benchmarks/refined_bands.py calculators/carbon data/carbon-dzvp/heldout-vacuum --label "carbon 0.8 vacua"
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from _results import machine, merge_results
from tracegrad_ase import committee
from tracegrad_ase.datasets import SETTINGS_FILE
from tracegrad_ase.electronic.filling import electron_count
from tracegrad_ase.electronic.solve import model_lindep
from tracegrad_ase.electronic.spectrum import band_errors, evaluation_mesh, levels
from tracegrad_ase.engines.pyscf.self_consistency import refined_hamiltonian
from tracegrad_ase.engines.pyscf.settings import GroundTruthSettings
from tracegrad_ase.io.h5 import load_dataset, load_h5
from tracegrad_ase.predict import load
from tracegrad_ase.refine import DEFAULT_BUILDS, model_refine_mixing

OUT = Path(__file__).parent / "results" / "refined_bands.json"


def judge(model, path: Path, builds: int) -> dict:
    """Band errors (meV) of the prediction and of its refinement, and the time each took (s)."""
    truth = load_h5(path)
    settings = GroundTruthSettings.from_dict(json.loads((path.parent.parent / SETTINGS_FILE).read_text()))
    t0 = time.perf_counter()
    pred = committee.predict(truth.atoms, model, [], ensemble=True)[0]
    predict_s = time.perf_counter() - t0
    refined = refined_hamiltonian(pred, settings, builds, model_refine_mixing(model.model_file))  # as refine does
    lindep = model_lindep(getattr(model, "model_file", None))
    mesh = evaluation_mesh(truth.atoms.cell[:], truth.atoms.pbc)
    e_true, nelec = levels(truth, mesh, lindep), electron_count(truth)
    row = {"name": path.stem, "n_atoms": len(truth.atoms), "predict_s": predict_s,
           "refine_s": refined.meta["fock_wall_time_s"], "builds": builds,
           "mixing": model_refine_mixing(model.model_file) if builds == 1 else None,
           "diis_coefficients": refined.meta.get("diis_coefficients"),
           "residual_ev": refined.meta.get("refine_residual_ev"),
           "truth_s": truth.meta.get("scf_wall_time_s", np.nan) + truth.meta.get("blocks_wall_time_s", np.nan),
           "truth_scf_cycles": truth.meta.get("scf_cycles")}
    for key, ham in (("predicted", pred), ("refined", refined)):
        b = band_errors(e_true, levels(ham, mesh, lindep), None, nelec)
        row[key] = {"band_mae_ef_mev": b["mae_mev"], "band_max_ef_mev": b["max_mev"], "n_levels": b["n_levels"]}
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="model folder or shipped name")
    ap.add_argument("data", nargs="+", help="data set folders of crystals (settings.json + structures/)")
    ap.add_argument("--label", required=True, help="key in the results JSON")
    ap.add_argument("--builds", type=int, default=DEFAULT_BUILDS,
                    help="Kohn-Sham builds (default %(default)s, as refine=True: DIIS; 1: one build, mixed)")
    ap.add_argument("--json", type=Path, default=OUT)
    args = ap.parse_args()
    model = load(args.model)
    rows = []
    print(f"{'structure':24s} {'atoms':>5s} {'predicted':>10s} {'refined':>8s} {'max pred':>9s} {'max ref':>8s} "
          f"{'refine s':>9s} {'SCF+blocks s':>13s}")
    for folder in args.data:
        for f in load_dataset(folder):
            r = judge(model, f, args.builds)
            rows.append(r)
            print(f"{r['name']:24s} {r['n_atoms']:5d} {r['predicted']['band_mae_ef_mev']:10.2f} "
                  f"{r['refined']['band_mae_ef_mev']:8.2f} {r['predicted']['band_max_ef_mev']:9.1f} "
                  f"{r['refined']['band_max_ef_mev']:8.1f} {r['refine_s']:9.1f} {r['truth_s']:13.1f}", flush=True)
    pooled = {}
    for key in ("predicted", "refined"):
        w = np.array([r[key]["n_levels"] for r in rows], float)
        pooled[key] = {"band_mae_ef_mev": float(np.average([r[key]["band_mae_ef_mev"] for r in rows], weights=w)),
                       "band_max_ef_mev": float(max(r[key]["band_max_ef_mev"] for r in rows))}
    cost = {"refine_s": float(sum(r["refine_s"] + r["predict_s"] for r in rows)),
            "truth_s": float(sum(r["truth_s"] for r in rows))}
    print(f"pooled band MAE: predicted {pooled['predicted']['band_mae_ef_mev']:.2f} meV, refined "
          f"{pooled['refined']['band_mae_ef_mev']:.2f} meV; time {cost['refine_s']:.0f} s against the truth's "
          f"{cost['truth_s']:.0f} s (SCF + blocks, when the data were made)")
    merge_results(args.json, args.label, {"model": str(args.model), "structures": rows, "pooled": pooled,
                                          "cost": cost, "machine": machine()})


if __name__ == "__main__":
    main()
