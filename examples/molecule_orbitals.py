"""Orbital energies, HOMO/LUMO gap and an SCF head start for a molecule from the shipped molecules model.

    python examples/molecule_orbitals.py                     # uracil
    python examples/molecule_orbitals.py ethanol.xyz --check # also PySCF PBE/def2-SVP, from minao and from the model

The model predicts the PBE/def2-SVP Hamiltonian; the calculator solves H c = e S c with the exact basis overlap.
With --check, PySCF converges the same molecule twice (minao and the model's density matrix as starting points)
and the script prints the cycles each needed and the orbital-energy errors.
"""

import argparse
from pathlib import Path

import numpy as np
from ase.io import read

from tracegrad_ase.calculator import TraceGradCalculator

URACIL = Path(__file__).resolve().parent.parent / "calculators" / "molecules" / "recipes" / "uracil.xyz"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("structure", nargs="?", default=str(URACIL))
    ap.add_argument("--model", default="molecules")
    ap.add_argument("--check", action="store_true", help="compare with PySCF and time the SCF head start")
    args = ap.parse_args()
    atoms = read(args.structure)
    atoms.calc = TraceGradCalculator(args.model)
    mo = atoms.calc.get_molecular_orbitals()
    occ = mo["energies"][: mo["homo_index"] + 1]
    print(f"{atoms.get_chemical_formula()}: HOMO {mo['homo']:.3f} eV, LUMO {mo['lumo']:.3f} eV, gap {mo['gap']:.3f} eV")
    # How far the gap moves when the overlap cut moves (an UncertaintyWarning above 0.1 eV): a diffuse LUMO
    # in nearly dependent basis directions, where the gap cannot be trusted.
    moves = atoms.calc.get_property("band_gap_cut_sensitivity")
    if moves is not None:
        print(f"the gap moves by {moves:.3f} eV with the overlap cut" + (" (uncertain)" if moves > 0.1 else ""))
    # One PBE Fock build from the predicted density (an UncertaintyWarning above 0.1 eV): a prediction that is not
    # self-consistent shows it here, without a reference calculation.
    residual = atoms.calc.get_property("scf_gap_residual")
    if residual is not None:
        print(f"one Fock build from the predicted density gives a gap of {atoms.calc.results['fock_gap']:.3f} eV "
              f"({residual:+.3f} eV)" + (" (not self-consistent: uncertain)" if abs(residual) > 0.1 else ""))
        if "refined_gap" in atoms.calc.results:  # the gap moved toward self-consistency (model.json scf_mixing)
            print(f"refined gap: {atoms.calc.results['refined_gap']:.3f} eV")
    print("occupied orbital energies (eV):", np.array2string(occ, precision=2, max_line_width=110))
    if args.check:
        from tracegrad_ase.engines.pyscf.scf import extract_blocks, run_scf

        ref = run_scf(atoms, init_guess="minao")
        fast = run_scf(atoms, init_guess=atoms.calc.get_hamiltonian())
        e_ref = extract_blocks(ref)
        from tracegrad_ase.electronic import molecular_orbitals

        true = molecular_orbitals(e_ref)
        n = mo["homo_index"] + 1
        print(f"PySCF: HOMO {true['homo']:.3f} eV, gap {true['gap']:.3f} eV; occupied-level MAE "
              f"{1000 * np.abs(true['energies'][:n] - mo['energies'][:n]).mean():.0f} meV")
        print(f"SCF cycles: {ref.info['scf_cycles']} from minao, {fast.info['scf_cycles']} from the model's density")


if __name__ == "__main__":
    main()
