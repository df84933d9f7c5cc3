"""The PySCF engine: :mod:`.scf` (SCF, ground-truth blocks, reference bands, initial guesses from a predicted
Hamiltonian) and :mod:`.integrals` (S(R) at truth and inference time). PySCF's orbital order and Hartree units
exist only inside this package."""
