"""Training data sets: structure generators (:mod:`.perturbation`), parallel resumable ground-truth generation
(:mod:`.generation`) and data recipes (:mod:`.recipes`).

The names of the former ``tracegrad_ase.datasets`` module are re-exported here.
"""

from ..core.errors import SettingsMismatchError
from ..io.h5 import STRUCTURES_DIR, load_dataset, load_h5, save_h5, split_dataset
from .generation import (FAILURES_FILE, SETTINGS_FILE, STRUCTURES_FILE, GenerationReport, _log_failure,  # noqa: F401
                         _logged_failures, _TaskFailure, generate_dataset)
from .perturbation import perturbed_structures, phonopy_displacements

__all__ = ["FAILURES_FILE", "SETTINGS_FILE", "STRUCTURES_DIR", "STRUCTURES_FILE", "GenerationReport",
           "SettingsMismatchError", "generate_dataset", "load_dataset", "load_h5", "perturbed_structures",
           "phonopy_displacements", "save_h5", "split_dataset"]


def __getattr__(name: str):
    """Deprecated private names of the former module (``_to_phonopy``, ``_from_phonopy``)."""
    if name in ("_to_phonopy", "_from_phonopy"):
        import warnings

        from ..interop import phonopy

        warnings.warn(f"tracegrad_ase.datasets.{name} moved to tracegrad_ase.interop.phonopy "
                      f"({name.strip('_').replace('phonopy', 'phonopy_atoms')}); removed in 0.6",
                      DeprecationWarning, stacklevel=2)
        return getattr(phonopy, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
