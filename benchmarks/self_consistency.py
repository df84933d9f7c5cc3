"""The self-consistency check on held-out molecules: does F[ρ] from the predicted density see the model's gap errors?

For each ground-truth HDF5 file (a molecule): PBE's gap (the truth's levels, full basis), the model's (as the
calculator solves it: its lindep, and the gap's sensitivity to the cut), and the gap of one Kohn-Sham Fock build
from the predicted density (``engines.pyscf.self_consistency``, the data set's own settings). A gap is wrong when it
is off by more than 0.1 eV; the table counts the wrong gaps each warning catches and the right ones it flags, for
the cut-sensitivity warning, the self-consistency warning and both. Also the gap MAE of F[ρ] itself and, for a
model with a calibrated ``scf_mixing``, of the calculator's ``refined_gap``.

    python benchmarks/self_consistency.py calculators/molecules data/molecules-organic-heldout/structures/*.h5
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from _results import machine, merge_results
from heldout_gaps import gaps
from tracegrad_ase.datasets import SETTINGS_FILE
from tracegrad_ase.electronic.cut_sensitivity import THRESHOLD_EV
from tracegrad_ase.engines.pyscf.self_consistency import self_consistency
from tracegrad_ase.engines.pyscf.settings import GroundTruthSettings
from tracegrad_ase.model.evaluate import predict_for
from tracegrad_ase.predict import load
from tracegrad_ase.scf_check import RESIDUAL_THRESHOLD_EV, model_scf_mixing, refined_gap

OUT = Path(__file__).parent / "results" / "self_consistency.json"


def row_for(path: Path, model) -> dict:
    from tracegrad_ase.io.h5 import load_h5

    t0 = time.perf_counter()
    pred = predict_for(load_h5(path), model)
    row = gaps(path, model, [], 1, 1, pred)  # with the prediction: what the calculator costs without the check
    row["model_seconds"] = time.perf_counter() - t0
    settings = GroundTruthSettings.from_dict(json.loads((path.parent.parent / SETTINGS_FILE).read_text()))
    t0 = time.perf_counter()
    check = self_consistency(pred, row["gap_pred_ev"], settings)
    row.update(fock_gap_ev=check["fock_gap"], gap_residual_ev=check["gap_residual"],
               fock_gap_error_ev=check["fock_gap"] - row["gap_true_ev"], fock_seconds=time.perf_counter() - t0)
    mixing = model_scf_mixing(model.model_file)
    if mixing is not None:  # the calculator's refined_gap (scf_check.refined_gap)
        row["refined_gap_error_ev"] = refined_gap(row["gap_pred_ev"], check["fock_gap"], row["cut_sensitivity_ev"],
                                                  mixing) - row["gap_true_ev"]
    return row


def confusion(rows: list[dict], flagged: np.ndarray) -> dict:
    """Wrong gaps (off by more than THRESHOLD_EV) caught and right ones flagged by a warning ``flagged``."""
    err = np.array([abs(r["gap_error_ev"]) for r in rows])
    wrong = err > THRESHOLD_EV

    def mae(mask):
        return round(float(err[mask].mean()), 4) if mask.any() else None

    return {"flagged": int(flagged.sum()), "wrong": int(wrong.sum()), "wrong_flagged": int((wrong & flagged).sum()),
            "right_flagged": int((~wrong & flagged).sum()), "flagged_mae_ev": mae(flagged),
            "unflagged_mae_ev": mae(~flagged), "unflagged_max_ev": round(float(err[~flagged].max()), 4)
            if (~flagged).any() else None}


def _refined_summary(rows: list[dict]) -> dict:
    err = np.array([abs(r.get("refined_gap_error_ev", np.nan)) for r in rows])
    if np.isnan(err).any():
        return {"refined_gap_mae_ev": None}
    return {"refined_gap_mae_ev": float(err.mean()), "refined_gap_median_ev": float(np.median(err)),
            "refined_within_0.1_ev": float(np.mean(err <= 0.1))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--json", type=Path, default=OUT)
    args = ap.parse_args()
    model = load(args.model)
    rows = [row_for(f, model) for f in tqdm(args.files, desc="molecules", unit="molecule")]
    print(f"{'molecule':32s} {'PBE gap':>8s} {'model':>7s} {'F[ρ]':>7s} {'residual':>8s} {'cut':>6s}  (errors, eV)")
    for r in rows:
        print(f"{Path(r['file']).name:32s} {r['gap_true_ev']:8.3f} {r['gap_error_ev']:+7.3f} "
              f"{r['fock_gap_error_ev']:+7.3f} {r['gap_residual_ev']:+8.3f} {r['cut_sensitivity_ev'] or 0.0:6.3f}")
    cut = np.array([(r["cut_sensitivity_ev"] or 0.0) > THRESHOLD_EV for r in rows])
    sc = np.array([abs(r["gap_residual_ev"]) > RESIDUAL_THRESHOLD_EV for r in rows])
    summary = {"n": len(rows),
               "model_gap_mae_ev": float(np.mean([abs(r["gap_error_ev"]) for r in rows])),
               "model_gap_median_ev": float(np.median([abs(r["gap_error_ev"]) for r in rows])),
               "model_within_0.1_ev": float(np.mean([abs(r["gap_error_ev"]) <= 0.1 for r in rows])),
               "fock_gap_mae_ev": float(np.mean([abs(r["fock_gap_error_ev"]) for r in rows])),
               "scf_mixing": model_scf_mixing(model.model_file), **_refined_summary(rows),
               "fock_seconds_mean": float(np.mean([r["fock_seconds"] for r in rows])),
               "model_seconds_mean": float(np.mean([r["model_seconds"] for r in rows])),
               "cut_warning": confusion(rows, cut), "self_consistency_warning": confusion(rows, sc),
               "either_warning": confusion(rows, cut | sc)}
    print(f"gap MAE over {len(rows)}: model {summary['model_gap_mae_ev']:.3f} eV (median "
          f"{summary['model_gap_median_ev']:.3f} eV, {summary['model_within_0.1_ev']:.0%} within 0.1 eV), "
          f"F[ρ] {summary['fock_gap_mae_ev']:.3f} "
          f"eV; one Fock build {summary['fock_seconds_mean']:.2f} s on average (prediction, solve and cut check: "
          f"{summary['model_seconds_mean']:.2f} s)")
    if summary["refined_gap_mae_ev"] is not None:
        print(f"refined gap (mixing {summary['scf_mixing']}): MAE {summary['refined_gap_mae_ev']:.3f} eV, median "
              f"{summary['refined_gap_median_ev']:.3f} eV, {summary['refined_within_0.1_ev']:.0%} within 0.1 eV")
    print(f"{'warning':18s} {'flagged':>7s} {'wrong caught':>12s} {'right flagged':>13s} {'MAE flagged':>11s} "
          f"{'MAE unflagged':>13s} {'max unflagged':>13s}")
    for name in ("cut_warning", "self_consistency_warning", "either_warning"):
        c = summary[name]
        cells = [f"{c[k]:{w}.3f}" if c[k] is not None else f"{'-':>{w}s}"
                 for k, w in (("flagged_mae_ev", 11), ("unflagged_mae_ev", 13), ("unflagged_max_ev", 13))]
        print(f"{name:18s} {c['flagged']:7d} {c['wrong_flagged']:5d} of {c['wrong']:<4d} {c['right_flagged']:13d} "
              + " ".join(cells))
    merge_results(args.json, Path(str(args.model)).name, {"structures": rows, "summary": summary,
                                                          "machine": machine()})


if __name__ == "__main__":
    main()
