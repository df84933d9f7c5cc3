"""Bands near E_F of large cells with the sparse solver: time and peak memory, one fresh process per size.

    python benchmarks/large_cell_bands.py data/carbon-dzvp/graphene/structures/graphene-00000.h5 --sizes 10 22 32 50 71

The H(R), S(R) of one small periodic cell (an HDF5 file of a data set, gth-dzvp graphene: 13 orbitals per atom,
blocks to 9.5 Å) is repeated n x n (``RealSpaceHamiltonian.supercell``: exact, no recomputation), then at Γ:
the Fermi level by inertia counting (``electronic.sparse_fermi_level``: sparse LDLᵀ factorizations, no
diagonalization) and the 32 bands nearest it by shift-invert (``electronic.solve_k(sparse=True)``), with MKL
PARDISO's LDLᵀ where the optional ``[large]`` extra is installed, else SuperLU (``--backend``). The Γ HOMO
and LUMO of the supercell must equal the primitive cell's levels at the folded k-points (checked where the dense
primitive solve is cheap). With ``model:NAME`` the n x n graphene cell's H(R) is the model's prediction (the
build column is then the prediction, S(R) included) and the check is against the model's primitive cell, which
a local, periodic model must reproduce to float32 round-off:

    python benchmarks/large_cell_bands.py model:graphene-szv --sizes 22 71 --threads 2

Prints a table and writes benchmarks/results/large_cell_bands.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from _results import machine, merge_results  # benchmarks/_results.py

CHILD = r"""
import json, resource, sys, time
import numpy as np
from tracegrad_ase import electronic
n = int(sys.argv[2])
t0 = time.perf_counter()
if sys.argv[1].startswith("model:"):  # the model's prediction for the n x n cell, and for the primitive cell
    import torch
    from ase.build import graphene
    from tracegrad_ase import predict
    torch.set_num_threads(int(sys.argv[3]))
    model = predict.load(sys.argv[1][len("model:"):])
    cell = graphene(a=2.46, vacuum=5.0)
    cell.pbc = [True, True, False]
    prim = predict.predict_hamiltonian(cell, model)
    prim.meta["fermi_level_ev"] = electronic.fermi_level(
        electronic.solve_k(prim, [[a / 12, b / 12, 0] for a in range(12) for b in range(12)]).energies, None,
        electronic.electron_count(prim), "none")
    t0 = time.perf_counter()
    ham = predict.predict_hamiltonian(cell.repeat((n, n, 1)), model)
else:
    from tracegrad_ase.io.h5 import load_h5
    prim = load_h5(sys.argv[1])
    ham = prim.supercell((n, n, 1))
asm = electronic.BlochAssembler(ham)
t_build = time.perf_counter() - t0
t0 = time.perf_counter()
ef = electronic.sparse_fermi_level(asm, guess=prim.meta.get("fermi_level_ev"))
t_ef = time.perf_counter() - t0
t0 = time.perf_counter()
sol = electronic.solve_k(asm, np.zeros((1, 3)), sparse=True, sigma=ef["fermi_level"], n_bands=32)
t_bands = time.perf_counter() - t0
# The same levels from the primitive cell at the k-points that fold onto the supercell's Γ.
k = np.array([[a / n, b / n, 0.0] for a in range(n) for b in range(n)])
check = None
if len(k) * prim.norb ** 3 <= 1e9:
    e = np.sort(electronic.solve_k(prim, k).energies.ravel())
    near = np.sort(e[np.argsort(np.abs(e - ef["fermi_level"]))[:32]])
    check = float(np.abs(near - np.sort(sol.energies[0])).max())
from tracegrad_ase.electronic.sparse_factor import resolve_backend
print(json.dumps({"n": n, "backend": resolve_backend(), "atoms": len(ham.atoms), "orbitals": ham.norb, "edges": len(ham.edges),
                  "build_s": t_build, "fermi_s": t_ef, "factorizations": ef["factorizations"], "bands_s": t_bands,
                  "fermi_level_ev": ef["fermi_level"], "homo_ev": ef["homo"], "lumo_ev": ef["lumo"],
                  "max_error_vs_primitive_ev": check,
                  "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("h5", help="HDF5 file of a small periodic cell (2D: repeated along a and b), or model:NAME for "
                               "a model's prediction of n x n graphene (the build time is then the prediction's)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 22, 32, 50, 71])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--backend", choices=["auto", "pardiso", "superlu"], default="auto",
                    help="sparse factorization (tracegrad_ase.electronic.sparse_factor); pardiso needs the [large] extra")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "large_cell_bands.json"))
    args = ap.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads),
           "TRACEGRAD_SPARSE_BACKEND": args.backend}
    rows = []
    print(f"{'atoms':>7} {'orbitals':>9} {'build s':>8} {'E_F s':>8} {'LUs':>4} {'bands s':>8} {'peak GB':>8} "
          f"{'gap eV':>7} {'check eV':>9}")
    for n in args.sizes:
        try:
            out = subprocess.run([sys.executable, "-c", CHILD, args.h5, str(n), str(args.threads)], env=env,
                                 capture_output=True,
                                 text=True, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            print(f"n={n}: timed out after {args.timeout:.0f} s")
            rows.append({"n": n, "error": f"timeout {args.timeout} s"})
            break
        if out.returncode != 0:
            err = (out.stderr.strip().splitlines() or ["killed (out of memory?)"])[-1]
            print(f"n={n}: failed: {err}")
            rows.append({"n": n, "error": err})
            break
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(r)
        chk = "-" if r["max_error_vs_primitive_ev"] is None else f"{r['max_error_vs_primitive_ev']:.1e}"
        print(f"{r['atoms']:>7} {r['orbitals']:>9} {r['build_s']:8.1f} {r['fermi_s']:8.1f} {r['factorizations']:>4} "
              f"{r['bands_s']:8.1f} {r['peak_rss_gb']:8.2f} {r['lumo_ev'] - r['homo_ev']:7.3f} {chk:>9}")
    backend = next((r["backend"] for r in rows if "backend" in r), args.backend)
    merge_results(args.out, f"{Path(args.h5).stem if not args.h5.startswith('model:') else args.h5}, {backend}, "
                            f"{args.threads} threads",
                  {"rows": rows, "machine": machine()})


if __name__ == "__main__":
    main()
