"""Make the two starting geometries the molecules recipe reads (run once; the .xyz files are committed).

uracil: one monomer of S22's hydrogen-bonded uracil dimer (ase.collections.s22).
malondialdehyde: the planar enol (intramolecular O-H...O bond) built from standard bond lengths, then relaxed
at PBE/def2-SVP with PySCF forces and ASE's BFGS to 0.05 eV/Å, so that the random-displacement conformers are
drawn around a true minimum.
"""

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.collections import s22
from ase.io import write
from ase.optimize import BFGS

HARTREE, BOHR = 27.211386245988, 0.529177210903


class PySCFPBE(Calculator):
    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        from pyscf import dft, gto

        super().calculate(atoms, properties, system_changes)
        mol = gto.M(atom=[[s, tuple(p)] for s, p in zip(atoms.get_chemical_symbols(), atoms.positions)],
                    basis="def2-svp", unit="Angstrom", verbose=0)
        mf = dft.RKS(mol, xc="pbe")
        e = mf.kernel()
        g = mf.nuc_grad_method().kernel()
        self.results = {"energy": e * HARTREE, "forces": -g * HARTREE / BOHR}


uracil = s22["Uracil_dimer_h-bonded"][:12]
uracil.center()
write("uracil.xyz", uracil)

xy = {"C": [(0.0, 0.0), (-1.22, -0.69), (1.22, -0.69)], "O": [(-1.22, -1.95), (1.22, -1.95)],
      "H": [(0.35, -2.35), (0.0, 1.08), (-2.16, -0.15), (2.16, -0.15)]}
symbols = [s for s in xy for _ in xy[s]]
mda = Atoms(symbols, positions=[(x, y, 0.0) for s in xy for x, y in xy[s]])
mda.calc = PySCFPBE()
BFGS(mda, logfile="-").run(fmax=0.05, steps=60)
mda.calc = None
mda.center()
write("malondialdehyde.xyz", mda)
