"""The same structure's Hamiltonian from PySCF and from the model: wall time and speedup.

    python benchmarks/speedup_vs_pyscf.py --model carbon data/carbon-dzvp/heldout-aa data/carbon-dzvp/diamond
    python benchmarks/speedup_vs_pyscf.py --model molecules data/molecules-svp-extra --limit 6

PySCF's time is what the ground-truth engine recorded in each data file when it made it (``scf_wall_time_s`` +
``blocks_wall_time_s``: SCF, then H(R) on the alias-free mesh and S(R)); say under which load the data were
made when you quote it. The model's time is ``predict_hamiltonian`` on the same atoms (neighbour list, network,
overlap integrals), measured here after one warm-up call. Prints a table and writes
benchmarks/results/speedup_vs_pyscf.json (merged by model).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from tracegrad_ase.datafiles import load_dataset, load_h5
from tracegrad_ase.predict import load, predict_hamiltonian
from _results import machine, merge_results  # benchmarks/_results.py


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", nargs="+")
    ap.add_argument("--model", required=True)
    ap.add_argument("--limit", type=int, default=None, help="at most this many structures per folder")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "speedup_vs_pyscf.json"))
    args = ap.parse_args()
    model = load(args.model)
    rows = []
    print(f"{'structure':>24} {'atoms':>6} {'PySCF s':>9} {'model s':>8} {'speedup':>8}")
    for folder in args.data:
        files = load_dataset(folder)[: args.limit] if args.limit else load_dataset(folder)
        for n, f in enumerate(files):
            ham = load_h5(f)
            if n == 0:
                predict_hamiltonian(ham.atoms, model)  # warm-up
            t0 = time.perf_counter()
            predict_hamiltonian(ham.atoms, model)
            t_model = time.perf_counter() - t0
            t_pyscf = float(ham.meta["scf_wall_time_s"] + ham.meta["blocks_wall_time_s"])
            rows.append({"structure": f.stem, "atoms": len(ham.atoms), "pyscf_s": t_pyscf, "model_s": t_model,
                         "speedup": t_pyscf / t_model})
            print(f"{f.stem:>24} {len(ham.atoms):>6} {t_pyscf:9.1f} {t_model:8.3f} {t_pyscf / t_model:8.0f}")
    speedups = [r["speedup"] for r in rows]
    print(f"median speedup {np.median(speedups):.0f}x over {len(rows)} structures")
    merge_results(args.out, Path(args.model).name,
                  {"rows": rows, "median_speedup": float(np.median(speedups)), "machine": machine()})


if __name__ == "__main__":
    main()
