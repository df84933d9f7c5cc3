"""Unfold the bands of a 4 x 4 graphene cell with one vacancy onto the primitive cell's Γ-M-K-Γ path.

    python examples/unfold_defect_graphene.py                      # writes unfold_defect_graphene.png
    python examples/unfold_defect_graphene.py --n 6 --model graphene-szv

A supercell's band structure is folded: a 4 x 4 cell has 16 times the bands of the primitive cell on a Brillouin
zone 16 times smaller, and a defect mixes them all. Unfolding weighs each supercell level by how much of it is a
Bloch state of the primitive cell at each primitive k (``electronic.unfolding``: the Popescu-Zunger weight in
the Löwdin-orthonormalized atomic orbitals, S included), so the spectral function A(k, E) shows the primitive
bands the defect perturbs. Left: the perfect 4 x 4 cell unfolds exactly onto graphene's bands (weights 1 and 0).
Right: one vacancy (1 of 32 atoms) smears the Dirac cone and adds defect levels with little weight anywhere;
E_F drops, since the cell has lost 4 electrons. The shipped ``carbon`` model (gth-dzvp) predicts H(R) and S(R).
"""

import argparse
import time

import numpy as np
from ase.build import graphene

from tracegrad_ase.calculator import TraceGradCalculator
from tracegrad_ase.core.figures import pyplot


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=4, help="n x n supercell of the primitive cell")
    ap.add_argument("--model", default="carbon")
    ap.add_argument("--npoints", type=int, default=90, help="k-points along Γ-M-K-Γ")
    ap.add_argument("-o", "--out", default="unfold_defect_graphene.png")
    args = ap.parse_args()
    prim = graphene(a=2.46, vacuum=5.0)
    prim.pbc = [True, True, False]
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(8.6, 3.9), dpi=110, sharey=True)
    for ax, vacancy in zip(axes, (False, True)):
        sheet = prim.repeat((args.n, args.n, 1))
        if vacancy:
            del sheet[5]
        sheet.calc = TraceGradCalculator(args.model, kpts=[[0.0, 0.0, 0.0]], fermi_kpts=(4, 4, 1))
        t0 = time.perf_counter()
        ub = sheet.calc.unfold(prim, path="GMKG", npoints=args.npoints)
        name = f"{args.n}x{args.n} graphene" + (", one vacancy" if vacancy else "")
        print(f"{name}: {len(sheet)} atoms, {ub.energies.shape[1]} levels at {len(ub.kpts)} k, E_F "
              f"{ub.fermi_level:.3f} eV, weights in [{ub.weights.min():.2e}, {ub.weights.max():.6f}], "
              f"largest weight within 0.3 eV of E_F {ub.weights[np.abs(ub.energies - ub.fermi_level) < 0.3].max():.3f}"
              f" ({time.perf_counter() - t0:.1f} s)")
        ub.plot(ax=ax, emin=-8.0, emax=5.0, sigma=0.06, title=name)
        if vacancy:
            ax.set_ylabel("")
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
