"""Inference time and peak memory versus atom count: graphene supercells, one fresh process per size.

    python benchmarks/inference_scaling.py --model calculators/carbon --sizes 2 3 5 7 10 16 22
    python benchmarks/inference_scaling.py --model calculators/carbon --sizes 71 --threads 2   # 10,082 atoms
    python benchmarks/inference_scaling.py --products e3nn    # the same network through e3nn's modules
    python benchmarks/inference_scaling.py --model runs/grown3 --against calculators/carbon --sizes 10 22

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


def _child(model: str, n: int, args, env: dict) -> dict:
    """One size predicted by ``model`` in a fresh process: its row, or ``error``."""
    try:
        out = subprocess.run([sys.executable, "-c", CHILD, model, str(n), str(args.threads), args.products], env=env,
                             capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"n": n, "atoms": 2 * n * n, "error": f"timeout {args.timeout} s"}
    if out.returncode != 0:
        return {"n": n, "atoms": 2 * n * n, "error": (out.stderr.strip().splitlines() or ["killed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _name(model: str) -> str:
    """A model's name in the table and the JSON: a run's checkpoint (RUN/checkpoints/best) by its run folder."""
    path = Path(model)
    return f"{path.parent.parent.name}/{path.name}" if path.parent.name == "checkpoints" else path.name


def _fit(rows: list[dict]) -> dict:
    """time ∝ N^p and memory ∝ N^q over the sizes with at least 100 atoms (empty with fewer than two)."""
    ok = [r for r in rows if "time_s" in r and r["atoms"] >= 100]
    if len(ok) < 2:
        return {}
    x = np.log([r["atoms"] for r in ok])
    p, c = np.polyfit(x, np.log([r["time_s"] for r in ok]), 1)
    pm, cm = np.polyfit(x, np.log([r["peak_rss_gb"] for r in ok]), 1)
    fit = {"time_exponent": float(p), "time_1000_atoms_s": float(np.exp(c) * 1000 ** p),
           "time_10000_atoms_s": float(np.exp(c) * 10000 ** p), "memory_exponent": float(pm),
           "memory_10000_atoms_gb": float(np.exp(cm) * 10000 ** pm)}
    print(f"fit over {len(ok)} sizes >= 100 atoms: time ∝ N^{p:.2f}; 1,000 atoms {fit['time_1000_atoms_s']:.1f} s, "
          f"10,000 atoms {fit['time_10000_atoms_s']:.0f} s; memory ∝ N^{pm:.2f}, "
          f"10,000 atoms {fit['memory_10000_atoms_gb']:.1f} GB (extrapolated where not measured)")
    return fit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="carbon", help="model folder or shipped name (a carbon model)")
    ap.add_argument("--against", metavar="MODEL", help="a reference model timed in the same run, size by size "
                    "(each size: the model, then the reference, in fresh processes); prints the time ratio")
    ap.add_argument("--sizes", type=int, nargs="+", default=[2, 3, 5, 7, 10, 16, 22])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--products", choices=["frame", "e3nn"], default="frame",
                    help="tensor products in each edge's frame (the default) or e3nn's own modules (the reference)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per size")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "inference_scaling.json"))
    args = ap.parse_args()

    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    models = [args.model] + ([args.against] if args.against else [])
    rows: dict[str, list[dict]] = {m: [] for m in models}
    print(f"{'model':>24} {'atoms':>7} {'edges':>10} {'orbitals':>9} {'time s':>9} {'ms/atom':>8} {'nbr list s':>10} "
          f"{'peak GB':>8}" + (f" {'ratio':>6}" if args.against else ""))
    for n in args.sizes:
        for m in models:
            r = _child(m, n, args, env)
            rows[m].append(r)
            if "error" in r:
                print(f"{_name(m):>24} {r['atoms']:>7} failed: {r['error']}")
                continue
            ratio = ""
            if args.against and m == args.against and "time_s" in rows[args.model][-1]:
                r["model_time_ratio"] = rows[args.model][-1]["time_s"] / r["time_s"]
                ratio = f" {r['model_time_ratio']:6.2f}"
            print(f"{_name(m):>24} {r['atoms']:>7} {r['edges']:>10} {r['orbitals']:>9} {r['time_s']:9.2f} "
                  f"{1e3 * r['time_s'] / r['atoms']:8.2f} {r['neighbor_list_s']:10.2f} {r['peak_rss_gb']:8.2f}{ratio}")
        if any("error" in rows[m][-1] for m in models):
            break
    suffix = f", {args.threads} threads" + ("" if args.products == "frame" else ", e3nn products")
    for m in models:
        fit = _fit(rows[m])
        tag = _name(m) + suffix + (f", beside {_name(args.against)}" if args.against and m == args.model
                                   else f", reference of {_name(args.model)}" if m != args.model else "")
        merge_results(args.out, tag, {"rows": rows[m], "fit": fit, "machine": machine()})


if __name__ == "__main__":
    main()
