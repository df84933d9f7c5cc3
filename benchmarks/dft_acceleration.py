"""DFT acceleration: SCF cycles and wall time from a model's predicted Hamiltonian versus PySCF's own guesses.

    python benchmarks/dft_acceleration.py --model calculators/molecules \\
        --data data/molecules-svp data/molecules-svp-extra --split test
    python benchmarks/dft_acceleration.py --model calculators/carbon --data data/carbon-dzvp/heldout-aa

Each structure of the chosen split (the same split the model was trained with: ``split_dataset`` over all the
folders, fractions 0.8/0.1/0.1, ``--seed``) is recomputed with the data set's own settings (same functional, basis,
k-mesh and convergence threshold) from each initial guess: PySCF's minao, atom, huckel and 1e, and the density
matrix of the model's prediction (``run_scf(atoms, settings, init_guess=predicted_hamiltonian)``). The model's
prediction time is reported separately and included in its total. Every run converges to the same energy (the
table shows the largest deviation from the minao run). Prints a table and writes
benchmarks/results/dft_acceleration.json (merged by model).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tracegrad_ase import committee
from tracegrad_ase.io.h5 import load_dataset, load_h5, split_dataset
from tracegrad_ase.datasets import SETTINGS_FILE
from tracegrad_ase.predict import load
from tracegrad_ase.engines.pyscf.scf import PYSCF_GUESSES, GroundTruthSettings, run_scf
from tracegrad_ase.core.units import HARTREE_TO_EV
from _results import machine, merge_results  # benchmarks/_results.py


def _settings(folder: Path) -> GroundTruthSettings:
    return GroundTruthSettings.from_dict(json.loads((folder / SETTINGS_FILE).read_text()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="model folder or shipped name")
    ap.add_argument("--data", nargs="+", required=True, help="data set folders (settings.json + structures/)")
    ap.add_argument("--split", choices=["train", "val", "test", "all"], default="all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--guesses", nargs="+", default=list(PYSCF_GUESSES))
    ap.add_argument("--ensemble", action="store_true", help="the guess from the committee's mean H (ensemble=True)")
    ap.add_argument("--limit", type=int, default=None, help="at most this many structures")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "dft_acceleration.json"))
    ap.add_argument("--label", default=None, help="the result's key in --out (default: '<model> on <split> of "
                    "<folders>'); name the model version where several are compared")
    args = ap.parse_args()

    folders = [Path(d) for d in args.data]
    files = [f for d in folders for f in load_dataset(d)]
    settings_of = {f: _settings(f.parent.parent) for f in files}
    if args.split != "all":
        parts = dict(zip(("train", "val", "test"), split_dataset(files, (0.8, 0.1, 0.1), args.seed)))
        files = parts[args.split]
    files = files[: args.limit] if args.limit else files
    model = load(args.model)
    members = committee.load_members(args.model, model) if args.ensemble else []
    rows = []
    for f in tqdm(files, desc="structures", unit="structure"):
        atoms = load_h5(f).atoms
        settings = settings_of[f]
        row = {"structure": f.stem, "atoms": len(atoms)}
        for guess in args.guesses:
            try:
                run = run_scf(atoms, settings, init_guess=guess)
                row[guess] = {"cycles": run.info["scf_cycles"], "scf_s": run.wall_time, "energy_ev": run.info["energy_ev"]}
            except Exception as exc:  # e.g. a guess PySCF does not offer for k-point SCF
                row[guess] = {"error": f"{type(exc).__name__}: {exc}"}
        t0 = time.perf_counter()
        ham = committee.predict(atoms, model, members, ensemble=True)[0]  # no members: member 0's H
        predict_s = time.perf_counter() - t0
        run = run_scf(atoms, settings, init_guess=ham)
        row["model"] = {"cycles": run.info["scf_cycles"], "scf_s": run.wall_time, "predict_s": predict_s,
                        "energy_ev": run.info["energy_ev"]}
        rows.append(row)

    names = [g for g in args.guesses] + ["model"]
    summary = {}
    for g in names:
        ok = [r[g] for r in rows if "cycles" in r[g]]
        if not ok:
            summary[g] = {"failed": len(rows)}
            continue
        summary[g] = {
            "mean_cycles": float(np.mean([x["cycles"] for x in ok])),
            "mean_scf_s": float(np.mean([x["scf_s"] + x.get("predict_s", 0.0) for x in ok])),
            "n": len(ok),
            "failed": len(rows) - len(ok),
        }
    ref = summary.get("minao", {})
    for g in names:
        if "mean_cycles" in summary[g] and "mean_cycles" in ref:
            summary[g]["cycles_vs_minao"] = summary[g]["mean_cycles"] / ref["mean_cycles"]
            summary[g]["time_vs_minao"] = summary[g]["mean_scf_s"] / ref["mean_scf_s"]
    dev = max((abs(r[g]["energy_ev"] - r["minao"]["energy_ev"]) for r in rows for g in names
               if "energy_ev" in r[g] and "energy_ev" in r.get("minao", {})), default=float("nan"))

    print(f"\n{len(rows)} structures ({args.split} split of {', '.join(d.name for d in folders)}), model {args.model}")
    print(f"{'guess':>8} {'cycles':>8} {'time s':>8} {'cycles/minao':>13} {'time/minao':>11} {'failed':>7}")
    for g in names:
        s = summary[g]
        if "mean_cycles" not in s:
            print(f"{g:>8} {'-':>8} {'-':>8} {'-':>13} {'-':>11} {s['failed']:>7}")
            continue
        print(f"{g:>8} {s['mean_cycles']:8.2f} {s['mean_scf_s']:8.2f} {s.get('cycles_vs_minao', float('nan')):13.2f} "
              f"{s.get('time_vs_minao', float('nan')):11.2f} {s['failed']:>7}")
    print(f"largest |E - E(minao)| over all runs: {dev:.2e} eV ({dev / HARTREE_TO_EV:.1e} Ha); model time includes prediction")

    label = args.label or f"{Path(args.model).name}{' (committee mean)' if members else ''} on {args.split} of {'+'.join(d.name for d in folders)}"
    merge_results(args.out, label,
                  {"summary": summary, "rows": rows, "max_energy_deviation_ev": dev, "machine": machine()})


if __name__ == "__main__":
    main()
