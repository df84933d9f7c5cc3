"""tracegrad-ase: machine-learned DFT Hamiltonians (TraceGrad) for ASE, with a PySCF ground-truth engine.

Layers, bottom to top (no module imports one above it):
basis -> structures, graphs -> hamiltonian, datafiles -> (model) -> (calculator) ->
pyscf_truth, datasets -> cli.
"""

from .basis import OrbitalBasis
from .errors import DataFormatError, SCFNotConvergedError, StructureError, TraceGradError, UnknownElementError
from .hamiltonian import RealSpaceHamiltonian

__version__ = "0.1.0"

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
