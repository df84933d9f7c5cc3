"""The calculator's self-consistency check (``scf_check``): which level of theory a model was trained on, and the
warning when one Fock build from the predicted density disagrees with the prediction's gap.

The physics is :mod:`tracegrad_ase.engines.pyscf.self_consistency`; this module adds the model's settings (its
card's ``level_of_theory``, its own basis) and the :class:`~tracegrad_ase.core.errors.UncertaintyWarning`.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from . import models
from .core.errors import ParameterError, UncertaintyWarning
from .core.hamiltonian import RealSpaceHamiltonian
from .core.stacklevel import user_stacklevel
from .engines.pyscf.self_consistency import self_consistency
from .engines.pyscf.settings import GroundTruthSettings

__all__ = ["RESIDUAL_THRESHOLD_EV", "check_self_consistency", "model_settings"]

#: A prediction whose gap F[ρ] moves by more than this (eV) is reported as uncertain (as the cut check's 0.1 eV).
RESIDUAL_THRESHOLD_EV = 0.1


def model_settings(model: str | os.PathLike, basis: str) -> GroundTruthSettings | None:
    """The DFT settings a model was trained with, for one Fock build: functional and grid from its card's
    ``level_of_theory`` (``xc``, ``grid_level``), ``basis`` from the model itself. None without a card that
    names the functional."""
    try:
        card = models.card(model) or {}
    except (OSError, ValueError):
        return None
    theory = card.get("level_of_theory") or {}
    if not isinstance(theory, dict) or not isinstance(theory.get("xc"), str):
        return None
    return GroundTruthSettings(xc=theory["xc"].lower(), basis=basis, grids_level=int(theory.get("grid_level", 3)))


def check_self_consistency(ham: RealSpaceHamiltonian, gap: dict[str, Any], settings: GroundTruthSettings | None,
                           threshold: float = RESIDUAL_THRESHOLD_EV) -> dict[str, Any] | None:
    """:func:`~tracegrad_ase.engines.pyscf.self_consistency.self_consistency` of a predicted molecule whose gap is
    ``gap`` (:func:`~tracegrad_ase.electronic.band_gap`'s result), with an ``UncertaintyWarning`` when F[ρ]'s gap
    differs by more than ``threshold`` eV. None where there is no gap to compare (no LUMO, an open shell)."""
    if settings is None:
        raise ParameterError("scf_check=True needs the model's level of theory (its card.yaml's level_of_theory.xc), "
                             "and this model has none")
    if gap.get("metal", True) or gap.get("gap") is None:
        return None
    check = self_consistency(ham, gap["gap"], settings)
    r = check["gap_residual"]
    if abs(r) > threshold:
        warnings.warn(f"the predicted HOMO-LUMO gap ({gap['gap']:.3f} eV) is not self-consistent: one {settings.xc.upper()} "
                      f"Fock build from the predicted density gives {check['fock_gap']:.3f} eV ({r:+.3f} eV); "
                      f"treat the gap as uncertain by at least {abs(r):.2f} eV, or run DFT from the prediction "
                      "(run_scf(atoms, settings, init_guess=calc.get_hamiltonian()))", UncertaintyWarning,
                      stacklevel=user_stacklevel())
    return check


def calculator_results(wanted: bool | None, ham: RealSpaceHamiltonian, gap: dict[str, Any],
                       model: str | os.PathLike) -> dict[str, Any]:
    """The calculator's ``scf_check`` results for a prediction ``ham`` with ``gap``: ``scf_gap_residual`` (eV),
    ``fock_gap`` and ``fock_levels``. ``wanted``: True (refused for a model with no level of
    theory), False (nothing), None (when the model's card names its functional). Crystals: nothing."""
    if wanted is False or ham.atoms.pbc.any():  # scf_check=True on a crystal: refused earlier (parameters)
        return {}
    settings = model_settings(model, ham.basis.name)
    if settings is None and wanted is None:
        return {}
    check = check_self_consistency(ham, gap, settings)
    if check is None:
        return {"scf_gap_residual": None}
    return {"scf_gap_residual": check["gap_residual"], "fock_gap": check["fock_gap"],
            "fock_levels": check["fock_levels"]}
