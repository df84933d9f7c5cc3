"""Layer 1, the vocabulary every other layer speaks: orbital bases, units, errors, structures and their checks,
neighbour graphs, symmetry, and the :class:`~tracegrad_ase.core.hamiltonian.RealSpaceHamiltonian` data object.

Imports nothing from the rest of the package (enforced by ``tests/test_architecture.py``).
"""
