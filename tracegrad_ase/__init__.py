"""tracegrad-ase: machine-learned DFT Hamiltonians (TraceGrad) for ASE, with a PySCF ground-truth engine.

Layers as folders, bottom to top (no module imports one above it; docs/architecture.md, enforced by
tests/test_architecture.py): core/ -> io/ -> electronic/ -> engines/pyscf/ | model/ -> models (the registry of
the shipped models in shipped/) -> predict -> calculator -> interop/ -> datasets/ -> cli.

The conventional entry points, loaded on first use (PEP 562), so ``import tracegrad_ase`` loads neither the
network nor the calculator::

    from tracegrad_ase import TraceGradCalculator, models
    models.available()                      # the shipped models' names
    calc = TraceGradCalculator(models.choose(["C"], periodic=True), dtype="float64", device="auto")
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

#: Names this package gives on first use, and the module each comes from (``"models"``: the module itself).
_LAZY = {"TraceGradCalculator": "calculator", "models": "models"}

__all__ = [
    "DataFormatError",
    "OrbitalBasis",
    "RealSpaceHamiltonian",
    "SCFNotConvergedError",
    "StructureError",
    "TraceGradCalculator",
    "TraceGradError",
    "UnknownElementError",
    "__version__",
    "models",
]


def __getattr__(name: str):
    """``TraceGradCalculator`` and ``models``, imported when first asked for (the calculator needs torch)."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module = importlib.import_module(f".{_LAZY[name]}", __name__)
    value = module if name == _LAZY[name] else getattr(module, name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
