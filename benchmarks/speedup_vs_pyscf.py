"""The same structure's Hamiltonian from PySCF and from the model: wall time and speedup.

    python benchmarks/speedup_vs_pyscf.py --model carbon data/carbon-dzvp/heldout-aa data/carbon-dzvp/diamond
    python benchmarks/speedup_vs_pyscf.py --model molecules data/molecules-svp-extra --limit 6
    python benchmarks/speedup_vs_pyscf.py --model carbon --graphene-supercell 7 --kmesh 1 1 1   # 98 atoms, fresh SCF

PySCF's time is what the ground-truth engine recorded in each data file when it made it (``scf_wall_time_s`` +
``blocks_wall_time_s``: SCF, then H(R) on the alias-free mesh and S(R)); say under which load the data were
made when you quote it. The model's time is ``predict_hamiltonian`` on the same atoms (neighbour list, network,
overlap integrals), measured here after one warm-up call. Prints a table and writes
benchmarks/results/speedup_vs_pyscf.json (merged by model).

``--graphene-supercell N`` instead runs PySCF now on an N x N graphene supercell (the carbon model's settings:
PBE, GTH, gth-dzvp, multigrid, 10 Å vacuum) on the ``--kmesh`` given, and times the SCF alone: H(R) extraction on
an alias-free mesh would cost more, so the speedup printed is a lower bound.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from tracegrad_ase.io.h5 import load_dataset, load_h5
from tracegrad_ase.predict import load, predict_hamiltonian
from _results import machine, merge_results  # benchmarks/_results.py


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", nargs="*")
    ap.add_argument("--graphene-supercell", type=int, default=None, help="run PySCF now on this N x N cell")
    ap.add_argument("--kmesh", type=int, nargs=3, default=[1, 1, 1], help="SCF mesh for --graphene-supercell")
    ap.add_argument("--threads", type=int, default=1, help="PySCF threads for --graphene-supercell")
    ap.add_argument("--model", required=True)
    ap.add_argument("--limit", type=int, default=None, help="at most this many structures per folder")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "speedup_vs_pyscf.json"))
    args = ap.parse_args()
    model = load(args.model)
    if args.graphene_supercell:
        return fresh_graphene(model, args)
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


def fresh_graphene(model, args) -> None:
    """PySCF's SCF on an N x N graphene supercell now, against the model on the same atoms."""
    from ase.build import graphene

    from tracegrad_ase.engines.pyscf.scf import GroundTruthSettings, run_scf

    n = args.graphene_supercell
    atoms = graphene(a=2.46, vacuum=5.0).repeat((n, n, 1))
    atoms.pbc = [True, True, False]
    atoms.rattle(0.03, seed=1)
    predict_hamiltonian(atoms, model)  # warm-up
    t0 = time.perf_counter()
    predict_hamiltonian(atoms, model)
    t_model = time.perf_counter() - t0
    settings = GroundTruthSettings(basis="gth-dzvp", kmesh=tuple(args.kmesh), threads=args.threads)
    print(f"graphene {n}x{n} ({len(atoms)} atoms): model {t_model:.2f} s; PySCF SCF on a "
          f"{'x'.join(map(str, args.kmesh))} mesh running ...", flush=True)
    t0 = time.perf_counter()
    run = run_scf(atoms, settings)
    t_pyscf = time.perf_counter() - t0
    row = {"structure": f"graphene {n}x{n}", "atoms": len(atoms), "kmesh": list(args.kmesh),
           "pyscf_scf_s": t_pyscf, "scf_cycles": run.info.get("scf_cycles"), "model_s": t_model,
           "speedup_lower_bound": t_pyscf / t_model, "pyscf_threads": args.threads}
    print(f"PySCF SCF {t_pyscf:.0f} s ({row['scf_cycles']} cycles), model {t_model:.2f} s: "
          f"speedup >= {t_pyscf / t_model:.0f}x")
    merge_results(args.out, f"{Path(args.model).name}, fresh graphene {n}x{n}", {"row": row, "machine": machine()})


if __name__ == "__main__":
    main()
