"""Old module paths kept for one release (0.5): each imports its new home and says so with a DeprecationWarning.

The old name becomes the new module itself (``sys.modules``), so attribute reads *and* monkeypatching through
the old path reach the code that runs. Removed in 0.6.
"""

from __future__ import annotations

import importlib
import sys
import warnings

#: old module -> new home. Shown by ``docs/architecture.md``; checked by ``tests/test_architecture.py``.
MOVED = {
    "tracegrad_ase.atomic": "tracegrad_ase.io.atomic",
    "tracegrad_ase.basis": "tracegrad_ase.core.basis",
    "tracegrad_ase.datafiles": "tracegrad_ase.io.h5",
    "tracegrad_ase.deeph": "tracegrad_ase.io.deeph",
    "tracegrad_ase.errors": "tracegrad_ase.core.errors",
    "tracegrad_ase.graphs": "tracegrad_ase.core.graphs",
    "tracegrad_ase.integrals": "tracegrad_ase.engines.pyscf.integrals",
    "tracegrad_ase.phonons": "tracegrad_ase.interop.phonopy",
    "tracegrad_ase.plots": "tracegrad_ase.interop.plots",
    "tracegrad_ase.pymatgen_adapter": "tracegrad_ase.interop.pymatgen",
    "tracegrad_ase.pyscf_truth": "tracegrad_ase.engines.pyscf.scf",
    "tracegrad_ase.recipes": "tracegrad_ase.datasets.recipes",
    "tracegrad_ase.sparse_factor": "tracegrad_ase.electronic.sparse_factor",
    "tracegrad_ase.spectrum": "tracegrad_ase.electronic.spectrum",
    "tracegrad_ase.structures": "tracegrad_ase.core.structures",
    "tracegrad_ase.symmetry": "tracegrad_ase.core.symmetry",
    "tracegrad_ase.units": "tracegrad_ase.core.units",
}


def alias(old: str) -> None:
    """Make the module being imported as ``old`` its new home, with a DeprecationWarning."""
    new = MOVED[old]
    warnings.warn(f"{old} moved to {new}; the old path will be removed in 0.6", DeprecationWarning, stacklevel=3)
    module = importlib.import_module(new)
    sys.modules[old] = module
    setattr(sys.modules["tracegrad_ase"], old.rsplit(".", 1)[1], module)
