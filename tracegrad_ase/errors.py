"""Exceptions raised on bad input. Each names the problem so a script or a person can act on it."""

from __future__ import annotations


class TraceGradError(Exception):
    """Base class of every error this package raises on purpose."""


class UnknownElementError(TraceGradError, KeyError):
    """An element that a basis (or a model) has no orbitals for."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class StructureError(TraceGradError, ValueError):
    """A structure that cannot be used: NaN positions, atoms too close, no cell where one is needed."""


class DataFormatError(TraceGradError, ValueError):
    """A data file that is unreadable, corrupt, or not of the format it claims to be."""


class SCFNotConvergedError(TraceGradError, RuntimeError):
    """A ground-truth SCF that did not converge; it is never stored as data."""


class LinearDependenceError(TraceGradError, ValueError):
    """A basis too close to linear dependence for the requested solver (the sparse path cannot drop directions)."""
