"""Deprecated: moved to :mod:`tracegrad_ase.core.basis` (this path is removed in 0.6)."""

from ._deprecated import alias

alias(__name__)
