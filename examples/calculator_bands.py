"""Predicted bands, Fermi level, gap and DOS of a crystal through ASE, from a trained model.

    python examples/calculator_bands.py MODEL_FOLDER [STRUCTURE_FILE] [--out bands.png]

MODEL_FOLDER is a trained model (for instance runs/<name>/checkpoints/best from `tracegrad train`) or the
name of a shipped model; STRUCTURE_FILE is any file ASE reads (default: graphene).
"""

import argparse

import matplotlib

matplotlib.use("Agg")

from ase.build import graphene
from ase.dft.bandgap import bandgap
from ase.dft.dos import DOS
from ase.io import read

from tracegrad_ase.calculator import TraceGradCalculator


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("structure", nargs="?")
    ap.add_argument("--out", default="bands.png")
    args = ap.parse_args()
    if args.structure:
        atoms = read(args.structure)
    else:
        atoms = graphene(a=2.46, vacuum=5.0)  # the shipped carbon model's cells: 10 Å between layers
        atoms.pbc = [True, True, False]

    # Fermi level and gap on a mesh ...
    # 9x9x1 holds graphene's K point (a mesh not divisible by 3 would report a spurious gap).
    atoms.calc = TraceGradCalculator(args.model, kpts=(9, 9, 1) if not atoms.pbc[2] else (6, 6, 6))
    print(f"E_F = {atoms.calc.get_fermi_level():.3f} eV, gap = {atoms.calc.get_band_gap()['gap']:.3f} eV")
    gap, p1, p2 = bandgap(atoms.calc, output=None)  # ASE's own tool on our calculator
    dos = DOS(atoms.calc, width=0.1)
    print(f"ASE bandgap: {gap:.3f} eV; DOS at E_F: {dos.get_dos()[abs(dos.get_energies()).argmin()]:.3f} states/eV")

    # ... and the band structure along the standard path, with E_F from a mesh.
    path = atoms.cell.bandpath(npoints=120, pbc=atoms.pbc)
    atoms.calc = TraceGradCalculator(args.model, kpts=path, fermi_kpts=(8, 8, 1) if not atoms.pbc[2] else (6, 6, 6))
    atoms.calc.band_structure().plot(emin=-10, emax=6, filename=args.out)
    print(f"bands -> {args.out}")


if __name__ == "__main__":
    main()
