"""The self-consistency check of a prediction: one Kohn-Sham Fock build from its density.

A Kohn-Sham Hamiltonian is a function of its own density: at convergence H = F[ρ(H)]. A predicted H need not be.
One Fock build from the prediction's density (PySCF's ``get_fock``; no SCF) says what DFT makes of that density,
in the full basis, with no overlap cut. Where the HOMO-LUMO gap of F[ρ] and the prediction's disagree, the
prediction is not self-consistent: an error estimate that needs no reference calculation and no second model.

Measured with molecules 0.8 (``benchmarks/self_consistency.py``): of the 25 held-out molecules whose predicted gap
is off by more than 0.1 eV against PBE, 24 have a residual above 0.1 eV; the 15 below it are off by 0.039 eV on
average. One Fock build (density-fitted Coulomb, XC grid level 2): ~0.5 s on one core for 5-20 atoms in def2-SVP,
against ~0.05 s for the prediction itself and tens of seconds for a converged SCF.

For a crystal, :func:`fock_hamiltonian` returns the whole operator F[ρ] as H(R) blocks, built as the ground truth
builds its blocks (same settings, dense alias-free mesh) but from the prediction's density instead of a converged
one: a refined Hamiltonian at the cost of one Fock build on that mesh, no SCF cycles
(``benchmarks/refined_bands.py``).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np

from ...core.basis import OrbitalBasis
from ...core.errors import StructureError
from ...core.hamiltonian import RealSpaceHamiltonian, gauge_shift
from ...core.units import HARTREE_TO_EV
from ...electronic.filling import electron_count
from ...electronic.solve import LINDEP_THRESHOLD, generalized_eigh
from .scf import crystal_ks, extract_blocks, guess_density, molecule_rks
from .settings import GroundTruthSettings, check_settings

__all__ = ["CHECK_GRID_LEVEL", "diis_coefficients", "fock_hamiltonian", "fock_levels", "mix_hamiltonians",
           "refined_hamiltonian", "self_consistency"]

#: The check's XC grid (at most this level) and density-fitted Coulomb: against the exact build at the card's level 3,
#: the gap moves by 0.1 meV on benzene and acetic acid (water's levels by up to 5 meV, mostly far from the gap), and
#: benzene's build takes 0.56 s instead of 2.08 s (one thread); the check's threshold is 0.1 eV.
CHECK_GRID_LEVEL = 2


def fock_levels(ham: RealSpaceHamiltonian, settings: GroundTruthSettings) -> np.ndarray:
    """Levels (eV, ascending) of the Kohn-Sham matrix F[ρ] built once, with ``settings`` (functional, grid, basis),
    from the density of the molecule Hamiltonian ``ham`` (a prediction: solved with its model's lindep, as
    :func:`~tracegrad_ase.engines.pyscf.scf.guess_density` solves it). F[ρ] is an exact operator of that density,
    consistent with S, so it is solved in the full basis (only directions below ``LINDEP_THRESHOLD`` dropped)."""
    atoms = ham.atoms
    if np.any(atoms.pbc):
        raise StructureError("the self-consistency check is for molecules (no periodic direction)")
    check_settings(settings, atoms)
    settings = replace(settings.for_atoms(atoms), grids_level=min(settings.grids_level, CHECK_GRID_LEVEL))
    basis = OrbitalBasis.from_pyscf(settings.basis, sorted(set(atoms.get_chemical_symbols())), settings.pseudo)
    mol, mf, nelec = molecule_rks(atoms, settings, basis)
    fock = mf.density_fit().get_fock(dm=guess_density(ham, atoms, basis, None, nelec))
    energies, _ = generalized_eigh(np.asarray(fock), mol.intor("int1e_ovlp"), LINDEP_THRESHOLD)
    return energies * HARTREE_TO_EV


def self_consistency(ham: RealSpaceHamiltonian, gap: float, settings: GroundTruthSettings) -> dict[str, Any]:
    """The prediction's HOMO-LUMO ``gap`` (eV) against F[ρ]'s (:func:`fock_levels`): ``fock_gap``,
    ``gap_residual`` (F[ρ]'s gap minus ``gap``, eV) and ``fock_levels``."""
    levels = fock_levels(ham, settings)
    nocc = electron_count(ham) // 2
    fock_gap = float(levels[nocc] - levels[nocc - 1])
    return {"fock_gap": fock_gap, "gap_residual": fock_gap - float(gap), "fock_levels": levels}


def fock_hamiltonian(ham: RealSpaceHamiltonian, settings: GroundTruthSettings) -> RealSpaceHamiltonian:
    """F[ρ] of the crystal Hamiltonian ``ham`` (a prediction), built once with ``settings`` (the model's level of
    theory: functional, basis, pseudopotentials, SCF mesh and smearing for ρ) and returned as H(R), S(R) blocks
    within the settings' cutoff, in the truth's energy zero (eV, e3nn order; ``meta["source"] = "fock"``).

    ρ is the prediction's density on the SCF k-mesh (occupied with the settings' smearing), as an SCF would start
    from it; F[ρ] is then evaluated on the dense mesh that makes the ground truth's H(R) alias-free. At a converged
    density F[ρ] is the ground truth itself, so the refined blocks are off by the density error only, to first
    order, while the prediction is off by its own error: the cost of one Fock build, no SCF cycle."""
    atoms = ham.atoms
    if not np.any(atoms.pbc):
        raise StructureError("fock_hamiltonian is for crystals; for a molecule, fock_levels gives F[ρ]'s levels")
    check_settings(settings, atoms)
    settings = settings.for_atoms(atoms)
    basis = OrbitalBasis.from_pyscf(settings.basis, sorted(set(atoms.get_chemical_symbols())), settings.pseudo)
    t0 = time.perf_counter()
    run = crystal_ks(atoms, settings, basis)
    density = guess_density(ham, atoms, basis, run.kpts_frac, run.info["nelectron"], settings.smearing)
    out = extract_blocks(run, density=density)
    out.meta.update({"source": "fock", "fock_wall_time_s": time.perf_counter() - t0})
    for key in ("scf_wall_time_s", "blocks_wall_time_s"):  # no SCF ran; fock_wall_time_s is the whole cost
        out.meta.pop(key, None)
    return out


def mix_hamiltonians(pred: RealSpaceHamiltonian, fock: RealSpaceHamiltonian, mixing: float) -> RealSpaceHamiltonian:
    """One step of linear mixing from a prediction toward its Kohn-Sham build: ``(1 - a) (H + c S) + a F`` with
    ``a = mixing`` in [0, 1], on ``fock``'s edges and in its energy zero (``c``: the shift that brings ``pred`` to
    ``fock``'s zero, :func:`~tracegrad_ase.core.hamiltonian.gauge_shift`; a block the prediction lacks counts as
    zero). ``mixing = 1`` is ``fock`` itself. F[ρ] overshoots where the response to the density is strong (the
    same damping every SCF needs), so a model's factor is chosen on its validation cells
    (``calculators/calibrate_refine_mixing.py``)."""
    if not 0.0 <= mixing <= 1.0:
        raise ValueError(f"mixing must be in [0, 1], got {mixing}")
    if mixing == 1.0:
        return fock
    index = pred.index()
    h = [pred.hamiltonian[index[k]] if (k := tuple(int(x) for x in e)) in index else np.zeros_like(f)
         for e, f in zip(fock.edges, fock.hamiltonian)]
    c = -gauge_shift(h, fock.hamiltonian, fock.overlap)  # pred - (fock + c'S) smallest: pred's zero is c' above
    mixed = [(1.0 - mixing) * (p + c * s) + mixing * f for p, s, f in zip(h, fock.overlap, fock.hamiltonian)]
    return RealSpaceHamiltonian(atoms=fock.atoms, basis=fock.basis, edges=fock.edges, hamiltonian=mixed,
                                overlap=fock.overlap, meta={**fock.meta, "source": "fock-mixed", "mixing": mixing})


def diis_coefficients(residuals: list[np.ndarray]) -> np.ndarray:
    """Pulay's DIIS weights: the ``c`` with Σ c_i = 1 that make |Σ c_i r_i| smallest (least squares, so two equal
    residuals do not make the system singular)."""
    n = len(residuals)
    b = np.zeros((n + 1, n + 1))
    b[:n, :n] = [[float(ri @ rj) for rj in residuals] for ri in residuals]
    b[n, :n] = b[:n, n] = 1.0
    rhs = np.zeros(n + 1)
    rhs[n] = 1.0
    return np.linalg.lstsq(b, rhs, rcond=None)[0][:n]


def refined_hamiltonian(pred: RealSpaceHamiltonian, settings: GroundTruthSettings, builds: int = 2,
                        mixing: float = 1.0) -> RealSpaceHamiltonian:
    """The crystal prediction ``pred`` refined by ``builds`` Kohn-Sham builds (:func:`fock_hamiltonian`), in the
    truth's energy zero on F's edges.

    One build: ``mix_hamiltonians(pred, F[ρ_pred], mixing)``. More: Pulay's DIIS, as an SCF mixes, but on H(R)
    blocks: each build's input is the DIIS combination of the outputs so far (the first: the prediction), the
    residual of a build is its output minus its input, and the result is the combination of all outputs whose
    residual is smallest (:func:`diis_coefficients`). A second build from F[ρ_pred] alone overshoots (carbon's 2x2
    cell: 31.6 -> 93 meV); the DIIS combination of the two does not (7.4 meV), and needs no factor chosen on data.
    ``meta``: ``refine_builds``, ``diis_coefficients``, ``refine_residual_ev`` (RMS of the combined residual, eV:
    how far from self-consistent the result still is, with no reference) and ``fock_wall_time_s`` (all builds)."""
    if not isinstance(builds, (int, np.integer)) or isinstance(builds, bool) or builds < 1:
        raise ValueError(f"builds must be an integer >= 1, got {builds!r}")
    first = fock_hamiltonian(pred, settings)
    if builds == 1:
        return mix_hamiltonians(pred, first, mixing)
    inputs, outputs = [mix_hamiltonians(pred, first, 0.0)], [first]

    def flat(ham: RealSpaceHamiltonian) -> np.ndarray:
        return np.concatenate([b.ravel() for b in ham.hamiltonian])

    def combined(c: np.ndarray) -> RealSpaceHamiltonian:
        blocks = [sum(ci * out.hamiltonian[e] for ci, out in zip(c, outputs)) for e in range(len(first.edges))]
        return replace(first, hamiltonian=blocks, meta=dict(first.meta))

    residuals = [flat(first) - flat(inputs[0])]
    for _ in range(builds - 1):
        inputs.append(combined(diis_coefficients(residuals)))
        outputs.append(fock_hamiltonian(inputs[-1], settings))
        residuals.append(flat(outputs[-1]) - flat(inputs[-1]))
    c = diis_coefficients(residuals)
    out = combined(c)
    out.meta.update({"source": "fock", "refine_builds": int(builds), "diis_coefficients": [float(x) for x in c],
                     "refine_residual_ev": float(np.sqrt(np.mean(sum(ci * r for ci, r in zip(c, residuals)) ** 2))),
                     "fock_wall_time_s": float(sum(o.meta["fock_wall_time_s"] for o in outputs))})
    return out
