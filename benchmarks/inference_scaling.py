"""Inference time and peak memory versus atom count: graphene supercells, one fresh process per size.

    python benchmarks/inference_scaling.py --model calculators/carbon --sizes 2 3 5 7 10 16 22
    python benchmarks/inference_scaling.py --model calculators/carbon --sizes 71 --threads 2   # 10,082 atoms
    python benchmarks/inference_scaling.py --products e3nn    # the same network through e3nn's modules

Each size n is an n x n supercell of the graphene primitive cell (2 n^2 atoms), predicted by
``predict_hamiltonian`` (neighbour list, graph, network, basis overlap S(R)) in a child process, so the peak
resident memory (``ru_maxrss``) belongs to that size alone. The first prediction of a small cell warms the code
paths up and is not timed. Prints a table, fits time ∝ N^p over the sizes with at least 100 atoms, and writes
benchmarks/results/inference_scaling.json (merged by model and thread count).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from _results import machine, merge_results  # benchmarks/_results.py

CHILD = r"""
import json, resource, sys, time
import torch
torch.set_num_threads(int(sys.argv[3]))
from ase.build import graphene
from tracegrad_ase import predict
from tracegrad_ase.core.graphs import neighbor_list
model = predict.load(sys.argv[1])
model.use_edge_frame = sys.argv[4] == "frame"
cell = graphene(a=2.46, vacuum=5.0)
cell.pbc = [True, True, False]
predict.predict_hamiltonian(cell.repeat((2, 2, 1)), model)  # warm-up
n = int(sys.argv[2])
atoms = cell.repeat((n, n, 1))
t0 = time.perf_counter()
nl = neighbor_list(atoms, model.config.cutoff, self_edges=True)
t_nl = time.perf_counter() - t0
t0 = time.perf_counter()
ham = predict.predict_hamiltonian(atoms, model)
t = time.perf_counter() - t0
print(json.dumps({"n": n, "atoms": len(atoms), "edges": len(ham.edges), "orbitals": ham.norb, "time_s": t,
                  "neighbor_list_s": t_nl, "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="carbon", help="model folder or shipped name (a carbon model)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[2, 3, 5, 7, 10, 16, 22])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--products", choices=["frame", "e3nn"], default="frame",
                    help="tensor products in each edge's frame (the default) or e3nn's own modules (the reference)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per size")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "inference_scaling.json"))
    args = ap.parse_args()

    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    rows = []
    print(f"{'atoms':>7} {'edges':>10} {'orbitals':>9} {'time s':>9} {'ms/atom':>8} {'nbr list s':>10} {'peak GB':>8}")
    for n in args.sizes:
        try:
            out = subprocess.run([sys.executable, "-c", CHILD, args.model, str(n), str(args.threads), args.products], env=env,
                                 capture_output=True, text=True, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            print(f"{2 * n * n:>7} timed out after {args.timeout:.0f} s")
            rows.append({"n": n, "atoms": 2 * n * n, "error": f"timeout {args.timeout} s"})
            break
        if out.returncode != 0:
            err = (out.stderr.strip().splitlines() or ["killed"])[-1]
            print(f"{2 * n * n:>7} failed: {err}")
            rows.append({"n": n, "atoms": 2 * n * n, "error": err})
            break
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(r)
        print(f"{r['atoms']:>7} {r['edges']:>10} {r['orbitals']:>9} {r['time_s']:9.2f} "
              f"{1e3 * r['time_s'] / r['atoms']:8.2f} {r['neighbor_list_s']:10.2f} {r['peak_rss_gb']:8.2f}")
    ok = [r for r in rows if "time_s" in r and r["atoms"] >= 100]
    fit = {}
    if len(ok) >= 2:
        x, y = np.log([r["atoms"] for r in ok]), np.log([r["time_s"] for r in ok])
        p, c = np.polyfit(x, y, 1)
        xm, ym = np.log([r["atoms"] for r in ok]), np.log([r["peak_rss_gb"] for r in ok])
        pm, cm = np.polyfit(xm, ym, 1)
        fit = {"time_exponent": float(p), "time_1000_atoms_s": float(np.exp(c) * 1000 ** p),
               "time_10000_atoms_s": float(np.exp(c) * 10000 ** p), "memory_exponent": float(pm),
               "memory_10000_atoms_gb": float(np.exp(cm) * 10000 ** pm)}
        print(f"fit over {len(ok)} sizes >= 100 atoms: time ∝ N^{p:.2f}; 1,000 atoms {fit['time_1000_atoms_s']:.1f} s, "
              f"10,000 atoms {fit['time_10000_atoms_s']:.0f} s; memory ∝ N^{pm:.2f}, "
              f"10,000 atoms {fit['memory_10000_atoms_gb']:.1f} GB (extrapolated where not measured)")
    tag = f"{Path(args.model).name}, {args.threads} threads" + ("" if args.products == "frame" else ", e3nn products")
    merge_results(args.out, tag,
                  {"rows": rows, "fit": fit, "machine": machine()})


if __name__ == "__main__":
    main()
