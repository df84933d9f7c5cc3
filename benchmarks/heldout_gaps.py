"""Band gaps of held-out crystals: the ground truth's against a model's, on the same k-mesh (issue 18: diamond).

For each ground-truth HDF5 file: the truth's levels (its H(R), S(R)) and the model's (predicted on the truth's
edges, overlap from the data) on the evaluation mesh (``electronic.spectrum.evaluation_mesh``, with at least
``--min-mesh`` and at most ``--max-mesh`` points per periodic direction), E_F and gap from each, and the
E_F/VBM-aligned band error within ±2 eV (``electronic.spectrum.band_errors``). With ``--uncertainty`` the
committee's gap spread is added.

    python benchmarks/heldout_gaps.py calculators/carbon data/carbon-dzvp/heldout-diamond/structures/*.h5
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from _results import machine, merge_results
from tracegrad_ase import electronic
from tracegrad_ase.electronic import spectrum
from tracegrad_ase.electronic.cut_sensitivity import THRESHOLD_EV, gap_cut_sensitivity
from tracegrad_ase.electronic.solve import LINDEP_THRESHOLD, model_lindep
from tracegrad_ase.io.h5 import load_h5
from tracegrad_ase.model.evaluate import predict_for
from tracegrad_ase.predict import load

OUT = Path(__file__).parent / "results" / "heldout_gaps.json"


def fermi_and_gap(energies: np.ndarray, kpts: np.ndarray, nelec: float) -> tuple[float, float]:
    """E_F (Fermi-Dirac, 0.01 eV) and the band gap (eV) of levels (nk, nb) on ``kpts``."""
    ef, gap = fermi_and_band_gap(energies, kpts, nelec)
    return ef, float(gap["gap"])


def fermi_and_band_gap(energies: np.ndarray, kpts: np.ndarray, nelec: float) -> tuple[float, dict]:
    """E_F as in :func:`fermi_and_gap` and ``electronic.band_gap``'s whole answer (its band edges too)."""
    ef = electronic.fermi_level(energies, None, nelec, "fermi-dirac", 0.01)
    return ef, electronic.band_gap(energies, kpts, ef)


def gaps(path: Path, model, members: list, minimum: int, maximum: int | None = None, pred=None) -> dict:
    """The row of one structure; ``pred``: the model's prediction of it when the caller has made it already."""
    truth = load_h5(path)
    # Capped: diamond's evaluation mesh is 25³ = 15,625 k-points, minutes per model for a gap that a Γ-centred
    # 12³ mesh (which holds Γ and X, diamond's band edges) gives as well.
    kpts = spectrum.evaluation_mesh(truth.atoms.cell[:], truth.atoms.pbc, min_points=minimum, max_points=maximum)
    nelec = electronic.electron_count(truth)
    t = spectrum.levels(truth, kpts, LINDEP_THRESHOLD)
    lindep = model_lindep(model.model_file)
    pred = predict_for(truth, model) if pred is None else pred
    p = spectrum.levels(pred, kpts, lindep)
    ef_t, gap_t = fermi_and_gap(t, kpts, nelec)
    _, gap_info = fermi_and_band_gap(p, kpts, nelec)
    gap_p = float(gap_info["gap"])
    err = spectrum.band_errors(t, p, None, nelec)
    # what the calculator reports and warns about (above 0.1 eV): the gap's move with the overlap cut
    cut = gap_cut_sensitivity(electronic.BlochAssembler(pred), gap_info, nelec, lindep)
    row = {"file": str(path), "formula": truth.atoms.get_chemical_formula(), "kpoints": len(kpts),
           "gap_true_ev": gap_t, "gap_pred_ev": gap_p, "gap_error_ev": gap_p - gap_t,
           "band_mae_mev": err["mae_mev"], "aligned_to": err["kind"],
           "cut_sensitivity_ev": None if cut is None else cut["sensitivity"]}
    if members:
        member_gaps = [gap_p] + [fermi_and_gap(spectrum.levels(predict_for(truth, m), kpts, lindep), kpts,
                                               nelec)[1] for m in members]
        row["gap_std_ev"] = float(np.std(member_gaps, ddof=1))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--min-mesh", type=int, default=8, help="k-points per periodic direction at least")
    ap.add_argument("--max-mesh", type=int, default=12, help="k-points per periodic direction at most (0: no cap)")
    ap.add_argument("--uncertainty", action="store_true", help="the committee's gap spread too")
    ap.add_argument("--json", type=Path, default=OUT)
    args = ap.parse_args()
    model = load(args.model)
    members = []
    if args.uncertainty:
        from tracegrad_ase import committee

        members = committee.load_members(args.model, model)
    rows = [gaps(f, model, members, args.min_mesh, args.max_mesh or None) for f in args.files]
    print(f"{'structure':38s} {'k':>5s} {'gap PBE':>8s} {'gap model':>9s} {'error':>7s} {'σ':>6s} {'cut':>6s} "
          f"{'bands ±2 eV':>11s}")
    for r in rows:
        cut = r["cut_sensitivity_ev"]
        print(f"{Path(r['file']).name:38s} {r['kpoints']:5d} {r['gap_true_ev']:8.3f} {r['gap_pred_ev']:9.3f} "
              f"{r['gap_error_ev']:+7.3f} {r.get('gap_std_ev', float('nan')):6.3f} "
              f"{float('nan') if cut is None else cut:6.3f} {r['band_mae_mev']:8.0f} meV")
    summary = warning_summary(rows)
    print(f"gap MAE {summary['gap_mae_ev']:.3f} eV over {len(rows)}; warned (cut sensitivity > {THRESHOLD_EV:g} eV): "
          f"{summary['warned']} (their MAE {summary['warned_mae_ev']}), of the {summary['wrong']} gaps off by more "
          f"than {THRESHOLD_EV:g} eV {summary['wrong_warned']} warned; unwarned gap MAE {summary['unwarned_mae_ev']}")
    merge_results(args.json, Path(str(args.model)).name, {"structures": rows, "summary": summary,
                                                          "machine": machine()})


def warning_summary(rows: list[dict]) -> dict:
    """How well the cut-sensitivity warning separates wrong gaps (off by more than its threshold) from right ones."""
    err = np.array([abs(r["gap_error_ev"]) for r in rows])
    warned = np.array([(r["cut_sensitivity_ev"] or 0.0) > THRESHOLD_EV for r in rows])
    wrong = err > THRESHOLD_EV

    def mae(mask):
        return round(float(err[mask].mean()), 4) if mask.any() else None

    return {"gap_mae_ev": float(err.mean()), "warned": int(warned.sum()), "wrong": int(wrong.sum()),
            "wrong_warned": int((wrong & warned).sum()), "right_warned": int((~wrong & warned).sum()),
            "warned_mae_ev": mae(warned), "unwarned_mae_ev": mae(~warned),
            "unwarned_within_threshold": float(np.mean(~wrong[~warned])) if (~warned).any() else None}


if __name__ == "__main__":
    main()
