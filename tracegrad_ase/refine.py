"""The calculator's refinement of a crystal (``refine``): the predicted H replaced by a few Kohn-Sham builds from
its own density, at the model's level of theory: an SCF's first steps, started from the prediction.

A Kohn-Sham Hamiltonian is a function of its density; at convergence H = F[ρ(H)]. F[ρ_pred] is off by the density
error only, to first order, while the prediction is off by its own error. Two builds combined by Pulay's DIIS
(``refine=True``, :data:`DEFAULT_BUILDS`) remove most of a model's band error with no factor chosen on data;
carbon 0.8, E_F-aligned band MAE within ±2 eV (meV): held-out 2x2 cell 31.2 -> 7.4, perturbed AA bilayer 131 ->
28, flat AA 59 -> 4.9; seven validation cells 45.1 -> 6.8 on average (one build: 11.6). ``refine=1`` is one
build, mixed with the prediction by the model's factor (model.json ``metadata.refine_mixing``, else 1). The
physics is :mod:`tracegrad_ase.engines.pyscf.self_consistency`; this module adds the model's settings (its card's
``level_of_theory``).
"""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np

from . import scf_check
from .core.errors import ParameterError, StructureError
from .core.hamiltonian import RealSpaceHamiltonian
from .electronic.filling import electron_count
from .engines.pyscf.self_consistency import refined_hamiltonian
from .engines.pyscf.settings import GroundTruthSettings

__all__ = ["DEFAULT_BUILDS", "MAX_BUILDS", "builds", "check_request", "crystal_settings", "model_refine_mixing",
           "refine_prediction", "remembered"]

#: Kohn-Sham builds of ``refine=True``: two, combined by DIIS (one build overshoots where the levels respond
#: strongly to the density; a second, alone, overshoots more).
DEFAULT_BUILDS = 2
#: More builds than this is an SCF: run one (``tracegrad truth STRUCTURE --init-guess MODEL``).
MAX_BUILDS = 6


def builds(value) -> int:
    """The number of Kohn-Sham builds a ``refine`` value asks for: False / 0 (none), True (:data:`DEFAULT_BUILDS`)
    or a number of builds up to :data:`MAX_BUILDS`; anything else is a ParameterError that names it."""
    if isinstance(value, (bool, np.bool_)):
        return DEFAULT_BUILDS if value else 0
    if not isinstance(value, (int, np.integer)) or not 0 <= value <= MAX_BUILDS:
        raise ParameterError(f"refine must be True, False or a number of Kohn-Sham builds 0-{MAX_BUILDS}, got "
                             f"{value!r}")
    return int(value)


def check_request(atoms, uncertainty: bool = False) -> None:
    """Refuse ``refine`` where it has no meaning, before any prediction: a molecule (no periodic direction;
    its one-build check is ``scf_check``), or with ``uncertainty`` (the committee's spread is of the predictions,
    not of the refined H, and would be reported as the refined levels' uncertainty)."""
    if not np.any(atoms.pbc):
        raise StructureError("refine=True is for crystals; for a molecule, scf_check gives one Fock build's gap "
                             "(results['fock_gap'], and 'refined_gap' for a model with a calibrated scf_mixing)")
    if uncertainty:
        raise ParameterError("refine=True with uncertainty=True: the committee's spread is that of the predictions, "
                             "not of the refined Hamiltonian; use one or the other")


def model_refine_mixing(model_file: dict | None) -> float:
    """A model's refinement mixing factor (``metadata.refine_mixing`` in model.json, chosen on its validation cells
    by ``calculators/calibrate_refine_mixing.py``); 1 (F[ρ] itself) when it records none. Anything but a number in
    [0, 1] is a corrupt file."""
    value = ((model_file or {}).get("metadata") or {}).get("refine_mixing", 1.0)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
        raise ParameterError(f"model.json: metadata.refine_mixing must be a number in [0, 1], got {value!r}")
    return float(value)


def crystal_settings(model: str | os.PathLike, basis: str) -> GroundTruthSettings:
    """The DFT settings a crystal model was trained with, for one Fock build: functional, pseudopotentials, smearing
    and the SCF k-spacing from its card's ``level_of_theory`` (``xc``, ``pseudo``, ``smearing_ev``, ``kspacing``),
    ``basis`` from the model itself. A card without the functional or the k-spacing is refused (a ρ on another
    mesh or with another smearing would be another density), never guessed."""
    theory = scf_check.level_of_theory(model)  # the card is read once
    settings = scf_check.theory_settings(theory, basis)
    if settings is None or not isinstance(theory.get("kspacing"), (int, float)):
        raise ParameterError(f"refine=True needs the model's level of theory for crystals (its card.yaml's "
                             f"level_of_theory: xc and kspacing), and {model} records "
                             f"{'no functional' if settings is None else 'no kspacing'}")
    smearing = theory.get("smearing_ev", settings.smearing)
    return replace(settings, pseudo=None if theory.get("pseudo") is None else str(theory["pseudo"]).lower(),
                   kspacing=float(theory["kspacing"]), smearing=None if smearing is None else float(smearing))


def refine_prediction(ham: RealSpaceHamiltonian, model: str | os.PathLike, model_file: dict | None,
                      builds: int = DEFAULT_BUILDS) -> RealSpaceHamiltonian:
    """The crystal prediction ``ham`` refined by ``builds`` Kohn-Sham builds with the model's settings
    (:func:`crystal_settings`; ``engines.pyscf.self_consistency.refined_hamiltonian``: one build mixed by
    :func:`model_refine_mixing`, more combined by DIIS), in the ground truth's energy zero. ``meta`` keeps the
    prediction's domain scores and adds ``refine_builds`` (and ``refine_mixing`` for one build)."""
    check_request(ham.atoms)
    mixing = model_refine_mixing(model_file)
    out = refined_hamiltonian(ham, crystal_settings(model, ham.basis.name), builds, mixing)
    extra = {"refine_builds": int(builds), **({"refine_mixing": mixing} if builds == 1 else {})}
    out.meta = {**out.meta, **extra, **{k: ham.meta[k] for k in ("domain_scores",) if k in ham.meta}}
    return out


def remembered(cache: dict, ham: RealSpaceHamiltonian, model: str | os.PathLike, model_file: dict | None,
               builds: int = DEFAULT_BUILDS) -> RealSpaceHamiltonian:
    """:func:`refine_prediction`, kept in ``cache`` for the last structure (a dict a calculator shares with its
    ``for_kpoints`` copies): a band path after a mesh, or a DOS after the bands, costs no second build. The key is
    the whole structure (numbers, positions, cell, periodicity), its electron count and ``builds``."""
    a = ham.atoms
    key = (a.numbers.tobytes(), a.positions.tobytes(), a.cell[:].tobytes(), tuple(a.pbc), electron_count(ham), builds)
    if cache.get("key") != key:
        cache.clear()  # one structure at a time: a trajectory must not keep every frame's blocks
        cache.update(key=key, ham=refine_prediction(ham, model, model_file, builds))
    return replace(cache["ham"], meta=dict(cache["ham"].meta))  # a calculation writes its own E_F into meta
