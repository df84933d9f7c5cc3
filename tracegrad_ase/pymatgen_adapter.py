"""Deprecated: moved to :mod:`tracegrad_ase.interop.pymatgen` (this path is removed in 0.6)."""

from ._deprecated import alias

alias(__name__)
