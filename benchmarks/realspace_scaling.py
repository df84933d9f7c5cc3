"""Time and memory of putting predicted states on a real-space grid, against the size of the cell.

    python benchmarks/realspace_scaling.py --model graphene-szv --sizes 4 8 12 16 24

For an n x n graphene sheet (10 Å cell, ``--spacing`` grid): the prediction, one Γ-point solve with vectors (by
shift-invert near E_F above 3000 orbitals, as the calculator), and
``wavefunctions.states_density`` of the ``--states`` levels nearest E_F (what an STM image or a partial density
costs per k-point once the states are known), with its peak traced memory (tracemalloc: numpy's arrays). The
orbitals of each batch of grid points come from only the atom images within reach (``OrbitalImages._batches``), so
the grid time should grow like the number of grid points, i.e. the cell. Prints a table and writes
benchmarks/results/realspace_scaling.json (merged by model).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from pathlib import Path

import numpy as np
from ase.build import graphene

from _results import machine, merge_results
from tracegrad_ase.electronic import BlochAssembler, sparse_fermi_level
from tracegrad_ase.electronic.filling import electron_count
from tracegrad_ase.electronic.solve import SPARSE_THRESHOLD, model_lindep, solve_k
from tracegrad_ase.predict import load, predict_hamiltonian
from tracegrad_ase.wavefunctions import orbital_grid, states_density

OUT = Path(__file__).parent / "results" / "realspace_scaling.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="graphene-szv")
    ap.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 12, 16])
    ap.add_argument("--spacing", type=float, default=0.25)
    ap.add_argument("--states", type=int, default=8)
    args = ap.parse_args()
    net = load(args.model)
    rows = []
    print(f"{'cell':>6} {'atoms':>6} {'grid points':>12} {'images':>7} {'predict s':>10} {'solve s':>8} "
          f"{'grid s':>7} {'µs/point':>9} {'peak MB':>8}")
    for n in args.sizes:
        atoms = graphene(a=2.46, vacuum=5.0).repeat((n, n, 1))
        atoms.pbc = [True, True, False]
        t0 = time.perf_counter()
        ham = predict_hamiltonian(atoms, net)
        t1 = time.perf_counter()
        asm = BlochAssembler(ham)
        if asm.norb > SPARSE_THRESHOLD:  # the calculator's path: the levels nearest E_F by shift-invert
            ef = sparse_fermi_level(asm, electron_count(ham))["fermi_level"]
            sol = solve_k(asm, np.zeros((1, 3)), vectors=True, sparse=True, sigma=ef, n_bands=args.states)
            pick = np.arange(args.states)
        else:
            sol = solve_k(asm, np.zeros((1, 3)), vectors=True, lindep=model_lindep(net.model_file))
            homo = electron_count(ham) // 2 - 1
            pick = np.arange(max(0, homo - args.states // 2 + 1), homo + args.states // 2 + 1)
        t2 = time.perf_counter()
        states = [(sol.kpts[0], sol.vectors[0][:, pick], np.full(len(pick), 2.0))]
        tracemalloc.start()
        t3 = time.perf_counter()
        grid = orbital_grid(ham, args.spacing)
        rho = states_density(grid, states)
        t4 = time.perf_counter()
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        row = {"n": n, "atoms": len(atoms), "grid_points": int(rho.size), "images": grid[0].n_images,
               "predict_s": t1 - t0, "solve_s": t2 - t1, "grid_s": t4 - t3,
               "us_per_point": 1e6 * (t4 - t3) / rho.size, "peak_mb": peak,
               "electrons": float(rho.mean() * atoms.get_volume())}
        rows.append(row)
        print(f"{n:>4}x{n:<1} {len(atoms):>6} {rho.size:>12,} {row['images']:>7} {row['predict_s']:>10.1f} "
              f"{row['solve_s']:>8.1f} {row['grid_s']:>7.1f} {row['us_per_point']:>9.1f} {peak:>8.0f}")
    merge_results(OUT, args.model, {"rows": rows, "spacing_angstrom": args.spacing, "states": args.states,
                                    "machine": machine()})


if __name__ == "__main__":
    main()
