"""tracegrad-ase: machine-learned DFT Hamiltonians (TraceGrad) for ASE, with a PySCF ground-truth engine.

Layers as folders, bottom to top (no module imports one above it; docs/architecture.md, enforced by
tests/test_architecture.py): core/ -> io/ -> electronic/ -> engines/pyscf/ | model/ -> models (the registry of
the shipped models in shipped/) -> predict -> calculator -> interop/ -> datasets/ -> cli.
"""

from .core.graphs import vesin_safe

vesin_safe()  # loads vesin before any PySCF library, where it still can: see graphs.vesin_safe

from .core.basis import OrbitalBasis  # noqa: E402
from .core.errors import (  # noqa: E402
    DataFormatError,
    SCFNotConvergedError,
    StructureError,
    TraceGradError,
    UnknownElementError,
)
from .core.hamiltonian import RealSpaceHamiltonian  # noqa: E402

__version__ = "0.5.0.dev0"

__all__ = [
    "DataFormatError",
    "OrbitalBasis",
    "RealSpaceHamiltonian",
    "SCFNotConvergedError",
    "StructureError",
    "TraceGradError",
    "UnknownElementError",
    "__version__",
]
