"""Band gap versus temperature of graphene from phonopy's thermal random displacements and a trained model.

    python examples/phonopy_gap_vs_temperature.py MODEL [--temperatures 0 300 600] [--n 8]
        [--potential tersoff|emt|lj] [--supercell 3] [--kpts 3] [--phonopy phonopy_params.yaml] [--out gap_T.png]

MODEL is a trained model folder or a shipped model's name. The force constants here come from a stand-in
force field so the script runs anywhere in seconds: by default a carbon Tersoff potential (Lindsay and Broido's
phonon-fitted parameters, scaled to a = 2.46 Å: real modes, G mode near 1,700 cm⁻¹), or for comparison ASE's EMT
or a Lennard-Jones pair potential, which describe graphene poorly (imaginary modes, which phonopy leaves out of
the sampling). Use your DFT phonopy files via load_phonopy for real work: ``--phonopy phonopy_params.yaml`` (or a
phonopy_disp.yaml with FORCE_SETS / FORCE_CONSTANTS beside it) replaces the stand-in.
"""

import argparse

from ase.build import graphene
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones

from tracegrad_ase.interop.phonopy import (force_constants_from_calculator, gap_vs_temperature, load_phonopy,
                                   plot_gap_vs_temperature, tersoff_carbon)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--temperatures", type=float, nargs="+", default=[0.0, 300.0, 600.0], help="K")
    ap.add_argument("--n", type=int, default=8, help="snapshots per temperature")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--potential", choices=["tersoff", "emt", "lj"], default="tersoff", help="stand-in force field")
    ap.add_argument("--supercell", type=int, default=3, help="in-plane supercell size (stand-in only)")
    ap.add_argument("--kpts", type=int, default=3, help="in-plane k-mesh of the supercell")
    ap.add_argument("--phonopy", help="phonopy_params.yaml / phonopy_disp.yaml with forces: replaces the stand-in")
    ap.add_argument("--out", default="gap_vs_temperature.png")
    args = ap.parse_args()

    if args.phonopy:
        phonon = load_phonopy(args.phonopy)
    else:
        cell = graphene(a=2.46, vacuum=7.5)
        cell.pbc = True  # phonopy's cells are 3D periodic; the vacuum keeps the sheets apart
        calc = {"tersoff": tersoff_carbon, "emt": EMT,
                "lj": lambda: LennardJones(sigma=1.3, epsilon=0.5, rc=3.0)}[args.potential]()
        s = args.supercell
        phonon = force_constants_from_calculator(cell, [[s, 0, 0], [0, s, 0], [0, 0, 1]], calc)
        print(f"force constants from the {args.potential.upper()} stand-in, {len(phonon.supercell)}-atom supercell")

    results = gap_vs_temperature(phonon, args.model, args.temperatures, n=args.n, kpts=(args.kpts, args.kpts, 1),
                                 seed=args.seed)
    print(f"{'T (K)':>8} {'mean gap (eV)':>14} {'std (eV)':>10}")
    for r in results:
        print(f"{r['temperature']:8.1f} {r['mean_gap']:14.4f} {r['std_gap']:10.4f}")
    plot_gap_vs_temperature(results, args.out, title="graphene: gap vs temperature")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
