"""Band unfolding of large defective cells near E_F on the sparse path: time per k-point and its parts.

    nice python benchmarks/unfolding.py --sizes 22 32 --kpoints 3 1 --threads 1

An n x n graphene sheet (2 n^2 atoms) with one vacancy is predicted by the shipped minimal-basis model
(``graphene-szv``: 4 orbitals per atom, so n = 22 is 968 atoms / 3,868 orbitals, above
``electronic.solve.SPARSE_THRESHOLD``); E_F comes from inertia counts at Γ (``electronic.sparse_fermi_level``),
then at ``--kpoints`` points of the primitive Γ-M-K-Γ path the ``--n-bands`` supercell levels nearest E_F are
found by shift-invert at K = k M^T (one sparse factorization of H(K) − E_F S(K)) and unfolded. The Löwdin weight
(the default) also needs S(K)^1/2 c: a Chebyshev series whose spectral interval takes one sparse factorization
of S(K); the Mulliken weight does without it. Per k: ``eigs`` (levels), ``sqrt`` (S^1/2 c), ``weights`` (the
projections); ``lowdin_per_k = eigs + sqrt + weights``, ``mulliken_per_k = eigs + weights``. Each size runs in a
fresh process (peak memory). Sizes that do not fit the time budget are extrapolated from the measured ones by a
power law in the atom count, labelled ``extrapolated`` in the table and the JSON.

Prints a table and writes benchmarks/results/unfolding.json.
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
import numpy as np
import torch
from ase.build import graphene
from tracegrad_ase import electronic, predict
from tracegrad_ase.electronic import unfolding
model_name, n, nk, nb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(int(sys.argv[5]))
lowdin = sys.argv[6] == "1"  # the S^1/2 step of the Löwdin weight; the sparse path's default is Mulliken
prim = graphene(a=2.46, vacuum=5.0)
prim.pbc = [True, True, False]
sheet = prim.repeat((n, n, 1))
del sheet[7]
model = predict.load(model_name)
t0 = time.perf_counter()
ham = predict.predict_hamiltonian(sheet, model)
asm = electronic.BlochAssembler(ham)
t_predict = time.perf_counter() - t0
t0 = time.perf_counter()
ef = electronic.sparse_fermi_level(asm)
t_fermi = time.perf_counter() - t0
cmap = unfolding.supercell_map(sheet, prim)
q, t, norb_p = unfolding._orbital_map(ham, prim, cmap)
path = prim.cell.bandpath("GMKG", npoints=60, pbc=prim.pbc).kpts
rows = []
for k in path[np.linspace(7, len(path) - 8, nk).astype(int)]:  # inside the segments: generic, complex K
    kk = k @ cmap.matrix.T
    t0 = time.perf_counter()
    e, c, s, _ = unfolding._levels_at(asm, kk, True, 0.0, ef["fermi_level"], nb, "mulliken")
    t_eigs = time.perf_counter() - t0
    t0 = time.perf_counter()
    shc = unfolding._sqrt_apply(s.tocsr(), c) if lowdin else None
    t_sqrt = time.perf_counter() - t0
    t0 = time.perf_counter()
    wm = unfolding.unfolding_weights(c, s, k, q, t, norb_p, cmap.n_cells, "mulliken")
    t_w = time.perf_counter() - t0
    wl = unfolding.unfolding_weights(c, s, k, q, t, norb_p, cmap.n_cells, "lowdin", shc) if lowdin else wm
    rows.append({"k": k.tolist(), "eigs_s": t_eigs, "sqrt_s": t_sqrt, "weights_s": t_w,
                 "lowdin_min": float(wl.min()), "lowdin_max": float(wl.max()),
                 "max_lowdin_minus_mulliken": float(np.abs(wl - wm).max())})
print(json.dumps({"n": n, "lowdin": lowdin, "atoms": len(sheet), "orbitals": ham.norb, "cells": cmap.n_cells, "n_bands": nb,
                  "predict_s": t_predict, "fermi_s": t_fermi, "factorizations": ef["factorizations"],
                  "kpoints": rows, "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def _summary(r: dict) -> dict:
    """Mean per-k times of one measured size."""
    ks = r["kpoints"]
    mean = {key: float(np.mean([k[key] for k in ks])) for key in ("eigs_s", "sqrt_s", "weights_s")}
    lowdin = r.get("lowdin", True)
    if not lowdin:
        mean["sqrt_s"] = None
    return {"atoms": r["atoms"], "orbitals": r["orbitals"], "predict_s": r["predict_s"], "fermi_s": r["fermi_s"],
            "lowdin_per_k_s": mean["eigs_s"] + mean["sqrt_s"] + mean["weights_s"] if lowdin else None,
            "mulliken_per_k_s": mean["eigs_s"] + mean["weights_s"], **mean, "measured_k": len(ks),
            "peak_rss_gb": r["peak_rss_gb"], "lowdin_range": [min(k["lowdin_min"] for k in ks),
                                                              max(k["lowdin_max"] for k in ks)],
            "max_lowdin_minus_mulliken": max(k["max_lowdin_minus_mulliken"] for k in ks) if lowdin else None,
            "weight_kind": "lowdin" if lowdin else "mulliken", "extrapolated": False}


def _extrapolate(rows: list[dict], atoms: int) -> dict:
    """Each time as c * atoms^p, p fitted through the two largest measured sizes."""
    a, b = rows[-2], rows[-1]
    out = {"atoms": atoms, "extrapolated": True, "from_atoms": [a["atoms"], b["atoms"]]}
    for key in ("predict_s", "fermi_s", "eigs_s", "sqrt_s", "weights_s", "lowdin_per_k_s", "mulliken_per_k_s"):
        if a.get(key) is None or b.get(key) is None:
            continue
        p = np.log(b[key] / a[key]) / np.log(b["atoms"] / a["atoms"])
        out[key] = float(b[key] * (atoms / b["atoms"]) ** p)
        out[f"{key}_exponent"] = float(p)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="graphene-szv")
    ap.add_argument("--sizes", type=int, nargs="+", default=[22, 32], help="n of the n x n cells measured")
    ap.add_argument("--kpoints", type=int, nargs="+", default=[3, 1], help="path k measured per size")
    ap.add_argument("--n-bands", type=int, default=24)
    ap.add_argument("--path-points", type=int, default=60, help="a full path, for the per-path totals")
    ap.add_argument("--extrapolate", type=int, nargs="*", default=[10082], help="atom counts to report "
                    "by extrapolation where not measured")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--lowdin-max-atoms", type=int, default=None,
                    help="above this many atoms time the Mulliken weight only (the sparse path's default; the Löwdin "
                         "weight's S^1/2 step is the slowest part of large cells)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "unfolding.json"))
    args = ap.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    rows: list[dict] = []
    for n, nk in zip(args.sizes, args.kpoints + [args.kpoints[-1]] * len(args.sizes)):
        try:
            lowdin = args.lowdin_max_atoms is None or 2 * n * n - 1 <= args.lowdin_max_atoms
            out = subprocess.run([sys.executable, "-c", CHILD, args.model, str(n), str(nk), str(args.n_bands),
                                  str(args.threads), "1" if lowdin else "0"], env=env, capture_output=True, text=True,
                                 timeout=args.timeout)
        except subprocess.TimeoutExpired:
            print(f"n={n}: timed out after {args.timeout:.0f} s")
            break
        if out.returncode != 0:
            print(f"n={n}: failed: {(out.stderr.strip().splitlines() or ['killed'])[-1]}")
            break
        rows.append(_summary(json.loads(out.stdout.strip().splitlines()[-1])))
    if len(rows) >= 2:
        done = {r["atoms"] for r in rows}
        rows += [_extrapolate(rows[:len(done)], a) for a in args.extrapolate if a not in done]
    print(f"{'atoms':>7} {'predict s':>9} {'E_F s':>7} {'eigs/k':>7} {'S^1/2/k':>8} {'Löwdin/k':>9} "
          f"{'Mulliken/k':>10} {'path s':>13}  note (path: Löwdin where measured, else Mulliken)")
    for r in sorted(rows, key=lambda r: r["atoms"]):
        per_k = r.get("lowdin_per_k_s") or r["mulliken_per_k_s"]
        total = r["predict_s"] + r["fermi_s"] + args.path_points * per_k
        diff = r.get("max_lowdin_minus_mulliken")
        note = (f"EXTRAPOLATED from {r['from_atoms']} atoms" if r["extrapolated"] else
                f"measured ({r['measured_k']} k), {r.get('weight_kind', 'lowdin')} weights in "
                f"[{r['lowdin_range'][0]:.1e}, {r['lowdin_range'][1]:.3f}]"
                + ("" if diff is None else f", |Löwdin - Mulliken| <= {diff:.1e}"))
        cell = lambda v, w: f"{v:{w}.1f}" if v is not None else f"{'-':>{w}}"  # noqa: E731
        print(f"{r['atoms']:>7} {cell(r['predict_s'], 9)} {cell(r['fermi_s'], 7)} {cell(r['eigs_s'], 7)} "
              f"{cell(r.get('sqrt_s'), 8)} {cell(r.get('lowdin_per_k_s'), 9)} {cell(r['mulliken_per_k_s'], 10)} "
              f"{total:13.0f}  {note}")
    from tracegrad_ase.electronic.sparse_factor import resolve_backend

    merge_results(args.out, f"model:{args.model}, {resolve_backend()}, {args.threads} threads",
                  {"rows": rows, "n_bands": args.n_bands, "path_points": args.path_points, "machine": machine()})


if __name__ == "__main__":
    main()
