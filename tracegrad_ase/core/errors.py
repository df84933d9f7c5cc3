"""Exceptions raised on bad input, and the warnings of a result that may be poor: every one the package defines."""

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


class ParameterError(TraceGradError, ValueError):
    """A parameter of the wrong type or out of range (a calculator keyword, a command-line option, a setting)."""


class UnknownParameterError(ParameterError, TypeError):
    """A keyword the function does not know (a typo, or an option of another program); the message lists the
    known ones."""


class ConfigError(TraceGradError, ValueError):
    """A recipe or training configuration with unknown keys or impossible values; the message lists them all."""


class MismatchError(TraceGradError, ValueError):
    """An input made for another structure or model (a k-path of another cell, a guess of other atoms)."""


class InputNotFoundError(TraceGradError, FileNotFoundError):
    """An input file or folder that does not exist (a structure, a recipe, a data set)."""


class ModelNotFoundError(InputNotFoundError):
    """No model folder of that path, and no shipped model of that name."""


class PredictionError(TraceGradError, ArithmeticError):
    """A prediction that is not a number (NaN or infinite): never returned or written as a result."""


class OutputPathError(TraceGradError, ValueError):
    """An output that cannot or must not be written: its folder is missing or read-only, it is a directory, it
    is one of the inputs, or it exists (without ``--force``)."""


class CalculatorUsageError(TraceGradError, RuntimeError):
    """A calculator asked something it cannot answer unambiguously, e.g. an argument-free getter while it is
    attached to several ``Atoms``."""


class GhostLevelError(TraceGradError, ValueError):
    """A prediction with ghost levels (far outside the model's training spectral range), refused under
    ``--strict``; without it they are a :class:`GhostLevelWarning`."""


class UncertainPredictionError(TraceGradError, ValueError):
    """Committee members disagree near E_F beyond the threshold, or the gap moves with the overlap cut or with one
    Fock build from the predicted density beyond it; refused under ``--strict``; without it it is an
    :class:`UncertaintyWarning`."""


class OutOfDomainError(TraceGradError, ValueError):
    """A structure outside the model's training domain, refused under ``--strict``; without it it is an
    :class:`OutOfDomainWarning`."""


class TrainingDivergedError(TraceGradError, ArithmeticError):
    """A training step whose loss is not finite; training stops before any checkpoint holds NaN weights."""


class SettingsMismatchError(TraceGradError, ValueError):
    """A data set folder that already holds results made with other ground-truth settings."""


class ElectronCountError(TraceGradError, ValueError):
    """An electron count that cannot be known: data from another program whose folder records no valence
    charges (pass ``valence=`` to the reader), and whose Fermi level does not fix the count unambiguously."""


# -- warnings: a result is returned, but it may be poor ------------------------------------------------------
class OutOfDomainWarning(UserWarning):
    """A structure unlike the model's training data: the prediction may be poor."""


class GhostLevelWarning(UserWarning):
    """A predicted level far outside the spectral range of the model's training data: no real system of the
    kind the model knows has it, and it shifts E_F, gaps and occupations (``tracegrad bands --strict`` exits 2)."""


class UncertaintyWarning(UserWarning):
    """The members of a model's committee disagree on levels near E_F by more than the threshold, the gap moves
    by more than it with the overlap cut (:mod:`~tracegrad_ase.electronic.cut_sensitivity`), or one Fock build from
    a predicted molecule's density moves its gap by more than it (:mod:`~tracegrad_ase.scf_check`): the prediction
    is uncertain there (``tracegrad bands --strict`` exits 2)."""


class CoarseMeshWarning(UserWarning):
    """A k-mesh too coarse for the broadening or temperature asked: levels step by more than it between
    neighbouring k-points, so the spectrum or coefficients show the mesh (spikes, ripples)."""


class GridWarning(UserWarning):
    """A real-space grid that loses charge: the density on it integrates to another electron count than the
    structure's (a grid spacing too coarse for the orbitals, or a box that cuts their tails off)."""
