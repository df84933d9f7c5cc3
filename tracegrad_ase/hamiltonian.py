"""Deprecated: moved to :mod:`tracegrad_ase.core.hamiltonian` (the data object) and
:mod:`tracegrad_ase.electronic` (``generalized_eigh``, ``LINDEP_THRESHOLD``, ``PREDICTED_LINDEP``:
:mod:`~tracegrad_ase.electronic.solve`; ``near_band_edges``: :mod:`~tracegrad_ase.electronic.spectrum`).
This path is removed in 0.6."""

import warnings

from .core.hamiltonian import *  # noqa: F401,F403
from .core.hamiltonian import RealSpaceHamiltonian, blocks_from_dense, gauge_shift  # noqa: F401
from .electronic.solve import LINDEP_THRESHOLD, PREDICTED_LINDEP, generalized_eigh  # noqa: F401
from .electronic.spectrum import near_band_edges  # noqa: F401

warnings.warn("tracegrad_ase.hamiltonian moved to tracegrad_ase.core.hamiltonian and tracegrad_ase.electronic; "
              "the old path will be removed in 0.6", DeprecationWarning, stacklevel=2)
