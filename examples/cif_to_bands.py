"""CIF in, band-structure PNG out: the pymatgen chain on a predicted Hamiltonian.

    python examples/cif_to_bands.py MODEL STRUCTURE.cif [--path hinuma] [--out bands.png]

Reads the CIF with pymatgen, converts it to ASE, predicts H with the model, solves it along pymatgen's
high-symmetry path for the crystal (mapped onto the CIF's own cell), and plots with BSPlotter. Without a CIF
it writes and uses a graphene one. The command-line equivalent is `tracegrad bands STRUCTURE --model MODEL`.
"""

import argparse

import matplotlib

matplotlib.use("Agg")

from pymatgen.core import Lattice, Structure
from pymatgen.electronic_structure.plotter import BSPlotter

from tracegrad_ase.interop.pymatgen import band_structure, effective_masses, to_atoms


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("cif", nargs="?")
    ap.add_argument("--path", default="setyawan_curtarolo", choices=["setyawan_curtarolo", "hinuma", "latimer_munro"])
    ap.add_argument("--out", default="bands.png")
    args = ap.parse_args()
    if args.cif is None:
        args.cif = "graphene.cif"
        Structure(Lattice.hexagonal(2.46, 15.0), ["C", "C"], [[0, 0, 0.5], [1 / 3, 2 / 3, 0.5]]).to(filename=args.cif)
        print(f"wrote {args.cif}")
    structure = Structure.from_file(args.cif)
    atoms = to_atoms(structure)
    if structure.lattice.c > 12 and len(set(atoms.positions[:, 2].round(3))) == 1:
        atoms.pbc = [True, True, False]  # a flat sheet in a tall cell: a 2-D crystal, no k-points along c
    bs = band_structure(args.model, atoms, path_type=args.path)
    BSPlotter(bs).get_plot(ylim=(-8, 6)).figure.savefig(args.out, dpi=150)
    gap = bs.get_band_gap()
    print(f"E_F {bs.efermi:.3f} eV; " + ("metal" if bs.is_metal() else f"gap {gap['energy']:.3f} eV ({gap['transition']})"))
    if not bs.is_metal():
        m = effective_masses(bs, atoms)
        print(f"effective masses: electron {m['electron']:.3f} m_e, hole {m['hole']:.3f} m_e")
    print(f"bands -> {args.out}")


if __name__ == "__main__":
    main()
