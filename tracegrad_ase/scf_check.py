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
from .electronic.cut_sensitivity import THRESHOLD_EV as CUT_THRESHOLD_EV
from .electronic.filling import electron_count
from .engines.pyscf.self_consistency import self_consistency
from .engines.pyscf.settings import GroundTruthSettings

__all__ = ["AUTO_MAX_ORBITALS", "MIXING_KEYS", "RESIDUAL_THRESHOLD_EV", "calculator_results", "check_self_consistency",
           "level_of_theory", "model_scf_mixing", "model_settings", "refined_gap", "theory_settings"]

#: A prediction whose gap F[ρ] moves by more than this (eV) is reported as uncertain (as the cut check's 0.1 eV).
RESIDUAL_THRESHOLD_EV = 0.1
#: ``scf_check=None`` runs the check up to this many orbitals. Measured (one thread): 0.56 s for benzene (114
#: orbitals), ~8 s for 250, ~33 s for 490, ~110 s for 970, against 0.05-2 s for the prediction; the shipped
#: molecule models' data reach 181. Above it the check runs only when asked (``scf_check=True``).
AUTO_MAX_ORBITALS = 300
#: The two mixing factors of :func:`refined_gap` (model.json ``metadata.scf_mixing``).
MIXING_KEYS = ("default", "cut_sensitive")


def model_scf_mixing(model_file: dict | None) -> dict[str, float] | None:
    """A model's mixing factors for :func:`refined_gap` (``metadata.scf_mixing`` in model.json: ``{"default": a,
    "cut_sensitive": b}``, chosen on its validation molecules by ``calculators/calibrate_scf_mixing.py``); None
    when it records none. Anything else, or a factor outside [0, 1], is a corrupt file."""
    value = ((model_file or {}).get("metadata") or {}).get("scf_mixing")
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != set(MIXING_KEYS) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in value.values()):
        raise ParameterError(f"model.json: metadata.scf_mixing must be {{'default': a, 'cut_sensitive': b}} with "
                             f"a, b in [0, 1], got {value!r}")
    return {k: float(value[k]) for k in MIXING_KEYS}


def refined_gap(gap: float, fock_gap: float, cut_sensitivity: float | None, mixing: dict[str, float]) -> float:
    """The gap one step of linear mixing moves toward self-consistency: ``gap + a * (fock_gap - gap)``.

    F[ρ] from a density whose gap is too wide has a gap too narrow (and the reverse): the density overshoots, so
    a fraction ``a`` of the residual is the first-order correction. ``a`` is ``mixing["default"]``, or
    ``mixing["cut_sensitive"]`` where the gap moves with the overlap cut (``cut_sensitivity`` above the cut check's
    threshold): there the prediction's gap also carries the cut's error, which F[ρ], solved in the full basis,
    does not."""
    sensitive = cut_sensitivity is not None and cut_sensitivity > CUT_THRESHOLD_EV
    return float(gap + mixing["cut_sensitive" if sensitive else "default"] * (fock_gap - gap))


def level_of_theory(model: str | os.PathLike) -> dict[str, Any]:
    """The ``level_of_theory`` mapping of a model's card; empty without a readable card or one."""
    try:
        theory = (models.card(model) or {}).get("level_of_theory")
    except (OSError, ValueError):
        return {}
    return theory if isinstance(theory, dict) else {}


def model_settings(model: str | os.PathLike, basis: str) -> GroundTruthSettings | None:
    """The DFT settings a model was trained with, for one Fock build: functional and grid from its card's
    ``level_of_theory`` (``xc``, ``grid_level``), ``basis`` from the model itself. None without a card that
    names the functional."""
    return theory_settings(level_of_theory(model), basis)


def theory_settings(theory: dict[str, Any], basis: str) -> GroundTruthSettings | None:
    """:func:`model_settings` from a card's ``level_of_theory`` mapping already read; None without ``xc``."""
    if not isinstance(theory.get("xc"), str):
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
    if gap.get("metal", True) or gap.get("gap") is None or electron_count(ham) % 2:
        return None  # no gap to compare; an open shell's is not the closed-shell Fock build's
    check = self_consistency(ham, gap["gap"], settings)
    r = check["gap_residual"]
    if abs(r) > threshold:
        warnings.warn(f"the predicted HOMO-LUMO gap ({gap['gap']:.3f} eV) is not self-consistent: one "
                      f"{settings.xc.upper()} Fock build from the predicted density gives {check['fock_gap']:.3f} eV "
                      f"({r:+.3f} eV); "
                      f"treat the gap as uncertain by at least {abs(r):.2f} eV, or converge DFT from the prediction "
                      "(tracegrad truth MOLECULE --init-guess MODEL)", UncertaintyWarning,
                      stacklevel=user_stacklevel())
    return check


def calculator_results(wanted: bool | None, ham: RealSpaceHamiltonian, results: dict[str, Any],
                       model: str | os.PathLike, model_file: dict | None = None) -> dict[str, Any]:
    """The calculator's ``scf_check`` results for a prediction ``ham`` whose calculator ``results`` hold its
    ``band_gap`` and ``band_gap_cut_sensitivity``: ``scf_gap_residual`` (eV), ``fock_gap``, ``fock_levels`` and, for
    a model with a calibrated ``scf_mixing`` (``model_file``), ``refined_gap`` (:func:`refined_gap`). ``wanted``:
    True (refused for a model with no level of theory), False (nothing), None (when the model's card names its
    functional, up to ``AUTO_MAX_ORBITALS`` orbitals). Crystals: nothing."""
    gap = results["band_gap"]
    if wanted is False or ham.atoms.pbc.any():  # scf_check=True on a crystal: refused earlier (parameters)
        return {}
    if wanted is None and ham.norb > AUTO_MAX_ORBITALS:
        return {"scf_gap_residual": None}  # a large molecule: asked for with scf_check=True only
    settings = model_settings(model, ham.basis.name)
    if settings is None and wanted is None:
        return {}
    check = check_self_consistency(ham, gap, settings)
    if check is None:
        return {"scf_gap_residual": None}
    out = {"scf_gap_residual": check["gap_residual"], "fock_gap": check["fock_gap"],
           "fock_levels": check["fock_levels"]}
    mixing = model_scf_mixing(model_file)
    if mixing is not None:
        out["refined_gap"] = refined_gap(gap["gap"], check["fock_gap"], results.get("band_gap_cut_sensitivity"),
                                         mixing)
    return out
