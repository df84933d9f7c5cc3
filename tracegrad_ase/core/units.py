"""Unit conversions. Public surfaces speak eV and Å; Hartree and Bohr exist only at the PySCF boundary."""

from __future__ import annotations

from ase import units as _ase_units

#: 1 Hartree in eV (ASE's CODATA value; PySCF's differs by < 1e-9 relative).
HARTREE_TO_EV: float = float(_ase_units.Hartree)
#: 1 Bohr in Å.
BOHR_TO_ANGSTROM: float = float(_ase_units.Bohr)
