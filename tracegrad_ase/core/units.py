"""Unit conversions. Public surfaces speak eV and Å; Hartree and Bohr exist only at the PySCF boundary."""

from __future__ import annotations

from ase import units as _ase_units

#: 1 Hartree in eV (ASE's CODATA value; PySCF's differs by < 1e-9 relative).
HARTREE_TO_EV: float = float(_ase_units.Hartree)
#: 1 Bohr in Å.
BOHR_TO_ANGSTROM: float = float(_ase_units.Bohr)

# SI, for the quantities that have no eV-Å unit (conductivities, Seebeck coefficients); CODATA 2018, exact where SI
# 2019 fixes them.
#: Elementary charge (C); also 1 eV in J.
ELEMENTARY_CHARGE: float = 1.602176634e-19
#: Reduced Planck constant (J s).
HBAR_SI: float = 1.054571817e-34
#: Boltzmann constant (eV/K).
KB_EV: float = 8.617333262e-5
#: ε0 c (S): a sheet's absorbance is Re σ / ε0 c in the thin-film limit.
EPS0_C_SIEMENS: float = 8.8541878128e-12 * 299792458.0
