"""The GTH pseudopotential matrix of a multigrid slab: PySCF's multigrid get_pp against ours, same run, same core.

PySCF's ``MultiGridNumInt.get_pp`` integrates the non-local projectors on the FFT mesh; ours
(``engines.pyscf.pseudopotential``) takes them from PySCF's real-space integrals. For perturbed graphene n x n
cells with 10 Å of vacuum (gth-szv, as graphene-szv's data), at the k-points given, it times both and reports the
largest difference of the matrices (Hartree). Prints a table and writes benchmarks/results/pseudopotential_speed.json.

    OMP_NUM_THREADS=1 python benchmarks/pseudopotential_speed.py --sizes 1 2 3 --kmesh 2 2 1
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from ase.build import graphene

from _results import machine, merge_results

OUT = Path(__file__).parent / "results" / "pseudopotential_speed.json"


def measure(n: int, kmesh: tuple[int, int, int], basis: str) -> dict:
    from pyscf.pbc import dft, gto
    from pyscf.pbc.dft.multigrid.multigrid import get_pp

    from tracegrad_ase.engines.pyscf.pseudopotential import real_space_nonlocal_pp

    atoms = graphene(a=2.46, vacuum=5.0).repeat((n, n, 1))
    atoms.positions += np.random.default_rng(n).normal(0.0, 0.05, atoms.positions.shape)
    cell = gto.Cell()
    cell.atom = [[s, tuple(p)] for s, p in zip(atoms.get_chemical_symbols(), atoms.positions)]
    cell.a, cell.unit, cell.basis, cell.pseudo, cell.verbose = atoms.cell[:], "Angstrom", basis, "gth-pbe", 0
    cell.build()
    kpts = cell.make_kpts(kmesh)
    ni = dft.KRKS(cell, kpts=kpts).multigrid_numint()._numint
    t0 = time.perf_counter()
    theirs = np.asarray(get_pp(ni, kpts))
    t1 = time.perf_counter()
    ours = real_space_nonlocal_pp(ni, kpts)
    t2 = time.perf_counter()
    return {"cell": f"{n}x{n}", "atoms": len(atoms), "orbitals": int(cell.nao), "kmesh": list(kmesh),
            "fft_mesh": [int(m) for m in ni.mesh], "pyscf_s": t1 - t0, "ours_s": t2 - t1,
            "speedup": (t1 - t0) / (t2 - t1), "max_abs_diff_hartree": float(np.abs(theirs - ours).max())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 3], help="graphene n x n supercells")
    ap.add_argument("--kmesh", type=int, nargs=3, default=[2, 2, 1])
    ap.add_argument("--basis", default="gth-szv")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    rows = [measure(n, tuple(args.kmesh), args.basis) for n in args.sizes]
    print(f"{'cell':>5} {'atoms':>5} {'orbitals':>8} {'FFT mesh':>14} {'PySCF s':>8} {'ours s':>7} {'speed-up':>8} "
          f"{'max diff (Ha)':>13}")
    for r in rows:
        print(f"{r['cell']:>5} {r['atoms']:>5} {r['orbitals']:>8} {'x'.join(map(str, r['fft_mesh'])):>14} "
              f"{r['pyscf_s']:8.2f} {r['ours_s']:7.2f} {r['speedup']:8.1f} {r['max_abs_diff_hartree']:13.1e}")
    merge_results(args.out, f"{args.basis} kmesh {'x'.join(map(str, args.kmesh))}",
                  {"rows": rows, "machine": machine()})


if __name__ == "__main__":
    main()
