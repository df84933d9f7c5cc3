"""Boltzmann transport in the constant relaxation-time approximation, from exact band velocities on a k-mesh.

    L^(α)_ab(μ, T) = (g_s e² / Ω) Σ_k w_k Σ_n v_a v_b (ε_n − μ)^α (−∂f/∂ε)      (per unit τ, the relaxation time)
    σ/τ = L^(0),    S = −(1/eT) (L^(0))⁻¹ L^(1),    κ_e/τ = (1/e²T) [L^(2) − L^(1) (L^(0))⁻¹ L^(1)]

for electrons of charge −e, with ħv the diagonal of the velocity matrix (:mod:`.velocity`: Hellmann-Feynman, no
band interpolation as BoltzTraP needs; degenerate levels as the trace over their subspace, which no basis choice
inside it changes). Ω is the cell's periodic length, area or volume: σ/τ in S/(m s) in bulk, S/s for a sheet,
S m/s for a wire; κ_e/τ likewise in W/(m K s), W/(K s), W m/(K s); S in V/K in all. μ is relative to the
structure's Fermi level (absolute levels have no meaning in periodic DFT); ``doping`` is the electrons per cell
added at μ (negative: holes), ``carrier_density`` the same per cm^d.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import expit

from ..core.hamiltonian import RealSpaceHamiltonian
from ..core.symmetry import symmetrize_tensor
from ..core.units import ELEMENTARY_CHARGE, HBAR_SI, KB_EV
from .bloch import check_kpts, kpoint_weights
from .filling import SPIN_DEGENERACY
from .solve import PREDICTED_LINDEP
from .velocity import check_resolution, periodic_measure, velocity_groups, velocity_products

__all__ = ["SIGMA_OVER_TAU_UNIT", "TransportCoefficients", "boltzmann_transport"]

_TAIL_KT = 40.0  # −∂f/∂ε and f − 1 below this many kT from μ are below 1e-17: such levels are left out
#: σ/τ in SI from Σ_k w_k Σ_n ħ²v_a v_b (−∂f/∂ε) in eV Å² and Ω in Å^d, per periodic dimension d.
SIGMA_OVER_TAU_UNIT = {d: SPIN_DEGENERACY * ELEMENTARY_CHARGE**3 * 1e-20 / HBAR_SI**2 / 1e-10**d for d in (1, 2, 3)}
_UNITS = {1: ("S m/s", "W m/(K s)", "cm^-1"), 2: ("S/s", "W/(K s)", "cm^-2"), 3: ("S/(m s)", "W/(m K s)", "cm^-3")}


@dataclass
class TransportCoefficients:
    """Constant-τ Boltzmann coefficients at chemical potentials ``mu`` (eV, relative to ``fermi_level``) and one
    ``temperature`` (K): ``sigma_over_tau``, ``seebeck`` (V/K), ``kappa_over_tau`` (3x3 per μ, Cartesian),
    ``doping`` (electrons per cell added at μ) and ``carrier_density`` (per cm^d; ``units`` names them)."""

    mu: np.ndarray
    temperature: float
    sigma_over_tau: np.ndarray
    seebeck: np.ndarray
    kappa_over_tau: np.ndarray
    doping: np.ndarray
    carrier_density: np.ndarray
    fermi_level: float
    periodic_dimensions: int
    nkpts: int
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def units(self) -> dict[str, str]:
        sigma, kappa, density = _UNITS[self.periodic_dimensions]
        return {"mu": "eV (relative to E_F)", "sigma_over_tau": sigma, "seebeck": "V/K", "kappa_over_tau": kappa,
                "doping": "electrons per cell", "carrier_density": density}

    def at_carrier_density(self, density: float) -> dict[str, Any]:
        """The coefficients where the carrier density (per cm^d; negative: holes) is ``density``: μ and each
        tensor interpolated linearly between the two chemical potentials that bracket it. Refused outside the
        computed range, or where the density does not rise with μ (not a rigid band)."""
        n = self.carrier_density
        if len(n) < 2 or np.any(np.diff(n) <= 0):
            raise ValueError("the carrier density does not rise with μ over these chemical potentials")
        if not n[0] <= float(density) <= n[-1]:
            raise ValueError(f"carrier density {density:g} {self.units['carrier_density']} is outside the range "
                             f"computed, {n[0]:.3g} to {n[-1]:.3g}: widen mu")
        i = int(np.clip(np.searchsorted(n, density) - 1, 0, len(n) - 2))
        t = (float(density) - n[i]) / (n[i + 1] - n[i])
        pick = {name: (1 - t) * getattr(self, name)[i] + t * getattr(self, name)[i + 1]
                for name in ("mu", "sigma_over_tau", "seebeck", "kappa_over_tau", "doping")}
        return pick | {"carrier_density": float(density)}

    def plot(self, axes=None, component: str = "xx", against: str = "mu"):
        """S and σ/τ against μ − E_F (``against="mu"``) or the carrier density; returns the two axes."""
        import matplotlib.pyplot as plt

        if axes is None:
            _, axes = plt.subplots(1, 2, figsize=(10, 4))
        a, b = ("xyz".index(component[0]), "xyz".index(component[1]))
        x = self.mu if against == "mu" else self.carrier_density
        axes[0].plot(x, 1e6 * self.seebeck[:, a, b])
        axes[0].set_ylabel(f"S_{component} (µV/K)")
        axes[1].plot(x, self.sigma_over_tau[:, a, b])
        axes[1].set_ylabel(f"σ_{component}/τ ({self.units['sigma_over_tau']})")
        for ax in axes:
            ax.set_xlabel("μ − E_F (eV)" if against == "mu" else f"carriers ({self.units['carrier_density']})")
            ax.axvline(0.0, color="grey", lw=0.5)
        axes[0].set_title(f"T = {self.temperature:g} K")
        return axes


def boltzmann_transport(
    ham: RealSpaceHamiltonian,
    kpts: Any,
    fermi_level: float,
    mu: Any,
    temperature: float,
    n_electrons: float,
    lindep: float = PREDICTED_LINDEP,
    weights: Any = None,
    chunk: int = 256,
    progress: bool = False,
    rotations: np.ndarray | None = None,
) -> TransportCoefficients:
    """Constant-τ σ/τ, Seebeck and κ_e/τ (module docstring) at chemical potentials ``fermi_level + mu`` (eV) and
    ``temperature`` (K > 0) from the k-points ``kpts`` (a whole mesh, fractional; ``weights`` default uniform),
    with ``n_electrons`` per cell at E_F (for the doping). A mesh must resolve kT: level spacing near μ below kT.
    ``kpts`` may be an irreducible wedge with its ``weights`` when ``rotations`` are the Cartesian point group it
    was folded with (:func:`~tracegrad_ase.core.symmetry.cartesian_point_group`)."""
    d, measure = periodic_measure(ham, "Boltzmann transport")
    kpts = check_kpts(kpts)
    w = kpoint_weights(weights, len(kpts))
    mu = np.atleast_1d(np.asarray(mu, dtype=float))
    temperature, fermi_level = float(temperature), float(fermi_level)
    if mu.ndim != 1 or not len(mu) or not np.all(np.isfinite(mu)):
        raise ValueError("mu (eV, relative to E_F) must be a non-empty list of finite numbers")
    if not (np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature (K) must be positive, got {temperature}")
    if not np.isfinite(fermi_level):
        raise ValueError(f"fermi_level must be finite, got {fermi_level}")
    kt = KB_EV * temperature
    chem = fermi_level + mu
    window = (chem.min() - _TAIL_KT * kt, chem.max() + _TAIL_KT * kt)
    moments = np.zeros((3, len(mu), 3, 3))  # L^(0..2) in eV^α, before units
    count = np.zeros(len(mu))  # electrons per cell (both spins) at each μ
    speed = 0.0  # max |ħv| (eV Å) of the levels that carry current: the mesh must resolve kT at that speed
    for idx, e, p, below in velocity_groups(ham, kpts, window, lindep, chunk,
                                            "Boltzmann transport" if progress else None):
        vv = velocity_products(e, p)
        x = (e[:, :, None] - chem[None, None, :]) / kt  # (K, n, μ)
        f = expit(-x)
        minus_df = f * (1 - f) / kt  # 1/eV
        carrying = minus_df.max(axis=2) * kt > 1e-3
        if carrying.any():
            speed = max(speed, float(np.abs(np.einsum("kann->kna", p.real))[carrying].max()))
        for alpha in range(3):
            moments[alpha] += np.einsum("k,knm,knab->mab", w[idx], minus_df * (x * kt) ** alpha, vv)
        count += SPIN_DEGENERACY * (w[idx] @ below + np.einsum("k,knm->m", w[idx], f))
    resolution = check_resolution(ham, kpts, speed, kt, f"Boltzmann transport at {temperature:g} K")
    if rotations is not None:
        moments = symmetrize_tensor(moments, rotations)
    l0, l1, l2 = (m * SIGMA_OVER_TAU_UNIT[d] / measure for m in moments)
    inv = np.linalg.pinv(l0, rcond=1e-12)  # a direction with no transport (a sheet's z) has no Seebeck either
    seebeck = -np.einsum("mab,mbc->mac", inv, l1) / temperature  # (L1 in eV units) / T: V/K
    kappa = (l2 - np.einsum("mab,mbc,mcd->mad", l1, inv, l1)) / temperature
    doping = count - float(n_electrons)
    density = doping / (measure * 1e-8**d)  # Å^d -> cm^d
    return TransportCoefficients(mu=mu, temperature=temperature, sigma_over_tau=l0, seebeck=seebeck,
                                 kappa_over_tau=kappa, doping=doping, carrier_density=density,
                                 fermi_level=fermi_level, periodic_dimensions=d, nkpts=len(kpts),
                                 meta={"approximation": "constant relaxation time, rigid bands, "
                                                        "tight-binding (Peierls) velocities", "lindep": float(lindep),
                                       "level_step_over_kt": resolution})
