"""Does a committee's spread track the true error? (issue 17)

For each held-out structure (ground truth HDF5 files): every member predicts H on the truth's edges, moved to
member 0's energy zero; levels on the evaluation mesh (``electronic.spectrum.evaluation_mesh``); the error of
member 0's E_F-aligned levels within ±2 eV of the true E_F (band n matched to band n) against the spread σ of
the members (of E_F-relative levels: the calculator's ``eigenvalues_std``; and of gauge-aligned absolute levels).
Reported: Spearman rank correlation of σ and |error| over levels and over structures, the fraction of errors
inside 2σ, and the committee's overhead in the calculator (one member, ``uncertainty=True`` and ``ensemble=True``,
one run).

    python benchmarks/committee_uncertainty.py calculators/carbon data/carbon-dzvp/heldout-*/structures/*.h5
    python benchmarks/committee_uncertainty.py calculators/graphene-szv TEST.h5 ... --large 22   # + sparse path
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from _results import machine, merge_results
from tracegrad_ase import committee, electronic
from tracegrad_ase.electronic import spectrum
from tracegrad_ase.electronic.solve import LINDEP_THRESHOLD, PREDICTED_LINDEP
from tracegrad_ase.io.h5 import load_h5
from tracegrad_ase.model.evaluate import predict_for
from tracegrad_ase.predict import load

OUT = Path(__file__).parent / "results" / "committee_uncertainty.json"
#: The calculator settings timed against each other: one member, the spread, the mean.
MODES = {"single": {}, "committee": {"uncertainty": True}, "ensemble": {"ensemble": True}}


def structure_figures(path: Path, models: list) -> dict:
    truth = load_h5(path)
    preds = [predict_for(truth, m) for m in models]
    preds = [preds[0]] + [committee.aligned(p, preds[0]) for p in preds[1:]]
    kpts = spectrum.evaluation_mesh(np.asarray(truth.atoms.cell[:]), truth.atoms.pbc)
    nelec = electronic.electron_count(truth)
    t = spectrum.levels(truth, kpts, LINDEP_THRESHOLD)
    ps = [spectrum.levels(p, kpts, PREDICTED_LINDEP) for p in preds]
    nb = min([t.shape[1]] + [p.shape[1] for p in ps])
    t, ps = t[:, :nb], np.stack([p[:, :nb] for p in ps])
    a_t = spectrum.align(t, None, nelec)
    refs = np.array([spectrum.align(p, None, nelec, kind=a_t.kind).ref for p in ps])
    sel = (t >= a_t.lo) & (t <= a_t.hi)
    err = np.abs((ps[0] - refs[0]) - (t - a_t.ref))[sel]
    sigma_abs = ps.std(axis=0, ddof=1)[sel]
    sigma_rel = (ps - refs[:, None, None]).std(axis=0, ddof=1)[sel]
    return {"file": str(path), "n_levels": int(err.size), "band_mae_ef_mev": 1000 * float(err.mean()),
            "mean_sigma_mev": 1000 * float(sigma_abs.mean()), "mean_sigma_rel_mev": 1000 * float(sigma_rel.mean()),
            "inside_2sigma": float(np.mean(err <= 2 * sigma_abs)),
            "inside_2sigma_rel": float(np.mean(err <= 2 * sigma_rel)),
            "_err": err, "_sigma": sigma_abs, "_sigma_rel": sigma_rel}


def overhead(model: str, path: Path, repeats: int = 2) -> dict:
    """Seconds per calculation with one member and with the committee, side by side in this run."""
    from tracegrad_ase.calculator import TraceGradCalculator

    atoms = load_h5(path).atoms
    out = {}
    for _ in range(repeats):
        for mode, kw in MODES.items():
            calc = TraceGradCalculator(model, kpts=(6, 6, 1) if atoms.pbc.any() else None, **kw)
            t0 = time.perf_counter()
            calc.calculate(atoms.copy())
            out.setdefault(mode, []).append(time.perf_counter() - t0)
    return {"single_s": min(out["single"]), "committee_s": min(out["committee"]), "ensemble_s": min(out["ensemble"]),
            "ratio": min(out["committee"]) / min(out["single"]),
            "ensemble_ratio": min(out["ensemble"]) / min(out["single"]), "structure": str(path)}


def large_overhead(model: str, n: int, n_bands: int = 16) -> dict:
    """The same on the sparse path: an n x n graphene sheet (2 n² atoms, rattled by 0.02 Å so that no level is
    exactly degenerate), two k-points, ``n_bands`` levels near E_F; single member vs committee, one run."""
    from ase.build import graphene

    from tracegrad_ase.calculator import TraceGradCalculator

    sheet = graphene(a=2.46, vacuum=5.0).repeat((n, n, 1))
    sheet.pbc = [True, True, False]
    sheet.rattle(0.02, seed=0)
    kpts = [[0.0, 0.0, 0.0], [0.1, 0.2, 0.0]]
    out = {}
    for mode, kw in MODES.items():
        calc = TraceGradCalculator(model, kpts=kpts, n_bands=n_bands, **kw)
        t0 = time.perf_counter()
        calc.calculate(sheet.copy())
        out[mode] = (time.perf_counter() - t0, calc.results)
    res = out["committee"][1]
    return {"atoms": len(sheet), "orbitals": int(res["hamiltonian"].norb), "n_bands": n_bands, "kpoints": len(kpts),
            "single_s": out["single"][0], "committee_s": out["committee"][0],
            "ratio": out["committee"][0] / out["single"][0], "ensemble_s": out["ensemble"][0],
            "ensemble_ratio": out["ensemble"][0] / out["single"][0],
            "fermi_level_std_ev": float(res["fermi_level_std"]),
            "max_sigma_near_fermi_ev": float(res["uncertainty_near_fermi"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="model folder or shipped name, with committee/ members")
    ap.add_argument("files", nargs="+", type=Path, help="held-out ground-truth .h5 files")
    ap.add_argument("--json", type=Path, default=OUT)
    ap.add_argument("--large", type=int, nargs="*", default=[],
                    help="n of n x n graphene sheets whose sparse-path committee overhead is measured too")
    args = ap.parse_args()
    main_model = load(args.model)
    models = [main_model] + committee.load_members(args.model, main_model)
    rows = [structure_figures(f, models) for f in args.files]
    err = np.concatenate([r.pop("_err") for r in rows])
    sig = np.concatenate([r.pop("_sigma") for r in rows])
    sig_rel = np.concatenate([r.pop("_sigma_rel") for r in rows])
    print(f"{'structure':44s} {'levels':>6s} {'MAE meV':>8s} {'σ meV':>7s} {'σ_rel':>7s} {'in 2σ':>6s}")
    for r in rows:
        print(f"{Path(r['file']).name:44s} {r['n_levels']:6d} {r['band_mae_ef_mev']:8.1f} {r['mean_sigma_mev']:7.1f} "
              f"{r['mean_sigma_rel_mev']:7.1f} {r['inside_2sigma']:6.2f}")
    summary = {
        "members": len(models), "structures": len(rows), "levels": int(err.size),
        "spearman_levels": float(spearmanr(sig, err).statistic),
        "spearman_levels_rel": float(spearmanr(sig_rel, err).statistic),
        "spearman_structures": float(spearmanr([r["mean_sigma_mev"] for r in rows],
                                               [r["band_mae_ef_mev"] for r in rows]).statistic) if len(rows) > 2
        else None,
        "inside_2sigma": float(np.mean(err <= 2 * sig)), "inside_2sigma_rel": float(np.mean(err <= 2 * sig_rel)),
        "overhead": overhead(args.model, args.files[0]),
        "overhead_large": [large_overhead(args.model, n) for n in args.large],
    }
    print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in summary.items()})
    merge_results(args.json, Path(str(args.model)).name, {"summary": summary, "structures": rows,
                                                          "machine": machine()})


if __name__ == "__main__":
    main()
