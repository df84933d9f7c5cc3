"""Optical conductivity from H(R), S(R): the interband Kubo-Greenwood formula in the tight-binding approximation.

    Re σ_ab(ħω) = (π g_s e² / ħ Ω) Σ_k w_k Σ_{ε_n < ε_m} (f_n − f_m) / (ε_m − ε_n)
                                                    · Re(p^a_nm p^b_mn) · δ(ε_m − ε_n − ħω)

with ``p^a_nm = c_n^H [∂_a H(k) − ½(ε_n + ε_m) ∂_a S(k)] c_m`` (eV Å; ħ times the velocity matrix), the
k-derivatives taken in the gauge whose phases follow the orbitals' positions
(:func:`~tracegrad_ase.electronic.bloch.bloch_dense_gradient`), g_s = 2 (spin-restricted) and Ω the cell's
periodic measure: its area for a sheet (two periodic directions: σ in S, a sheet conductance), its volume for a
bulk crystal (S/m), its length for a wire (S·m). A Gaussian of ``width`` stands for δ.

With ``drude`` (ħ/τ, eV) the intraband term is added as a Drude peak, Re σ = (σ/τ) τ / (1 + (ωτ)²), with σ/τ
from the same k-points (:mod:`.transport`'s L^(0) at the Fermi level). What it leaves out: intra-atomic
dipoles ⟨φ_i|r − x_i|φ_j⟩ (the Peierls approximation: the position operator is taken as the orbitals' centres);
local fields and excitons. The symmetric ½(ε_n + ε_m) makes p Hermitian; for n = m it is exactly ħ times the band
velocity ∂ε_n/∂k. A Dirac cone gives the universal sheet conductance e²/4ħ (graphene; tested numerically).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from scipy.special import expit

from ..core.hamiltonian import RealSpaceHamiltonian
from ..core.symmetry import symmetrize_tensor
from ..core.units import ELEMENTARY_CHARGE, EPS0_C_SIEMENS, HBAR_SI
from .bloch import check_kpts, kpoint_weights
from .filling import SPIN_DEGENERACY
from .solve import PREDICTED_LINDEP
from .transport import SIGMA_OVER_TAU_UNIT
from .velocity import DEGENERATE_EV, check_resolution, periodic_measure, velocity_groups, velocity_products

__all__ = ["E2_OVER_HBAR_SIEMENS", "OpticalConductivity", "SIGMA0_SIEMENS", "optical_conductivity"]

#: e²/ħ in S: the unit the sum above produces before Ω's Å are converted.
E2_OVER_HBAR_SIEMENS = ELEMENTARY_CHARGE**2 / HBAR_SI
#: Graphene's universal sheet conductance e²/4ħ (S).
SIGMA0_SIEMENS = E2_OVER_HBAR_SIEMENS / 4
_UNITS = {1: "S m", 2: "S", 3: "S/m"}
_ANGSTROM_POWER = {1: 1e-10, 2: 1.0, 3: 1e10}  # e²/ħ · Å^(2-d) in SI


@dataclass
class OpticalConductivity:
    """Re σ_ab(ħω) of a crystal: ``sigma[i, a, b]`` at photon energy ``energies[i]`` (eV), Cartesian a, b.

    ``unit`` is ``"S"`` (a sheet conductance: two periodic directions), ``"S/m"`` (bulk) or ``"S m"`` (a wire)."""

    energies: np.ndarray
    sigma: np.ndarray
    periodic_dimensions: int
    fermi_level: float
    width: float
    kt: float
    nkpts: int
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def unit(self) -> str:
        return _UNITS[self.periodic_dimensions]

    def in_sigma0(self) -> np.ndarray:
        """σ of a sheet in units of graphene's universal e²/4ħ (sheets only)."""
        self._sheet_only("in_sigma0")
        return self.sigma / SIGMA0_SIEMENS

    def absorbance(self, direction: int = 0) -> np.ndarray:
        """Fraction of normally incident light a free-standing sheet absorbs, polarised along Cartesian
        ``direction``: Re σ / ε0 c (thin-film limit, valid while it is small; graphene: πα ≈ 2.3 %)."""
        self._sheet_only("absorbance")
        return self.sigma[:, direction, direction] / EPS0_C_SIEMENS

    def _sheet_only(self, what: str) -> None:
        if self.periodic_dimensions != 2:
            raise ValueError(f"{what} is for sheets (two periodic directions); this cell has "
                             f"{self.periodic_dimensions}: use sigma ({self.unit})")

    def plot(self, ax=None, components: Sequence[str] = ("xx", "yy", "zz"), **kwargs):
        """Re σ against ħω (matplotlib); a sheet in units of e²/4ħ. Returns the axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        index = {"x": 0, "y": 1, "z": 2}
        scale, label = ((1 / SIGMA0_SIEMENS, "Re σ / (e²/4ħ)") if self.periodic_dimensions == 2
                        else (1.0, f"Re σ ({self.unit})"))
        for comp in components:
            a, b = index[comp[0]], index[comp[1]]
            ax.plot(self.energies, self.sigma[:, a, b] * scale, label=f"σ_{comp}", **kwargs)
        ax.set_xlabel("ħω (eV)")
        ax.set_ylabel(label)
        ax.legend()
        return ax


class _Transitions:
    """Transition strengths binned on a grid 8x finer than the width and broadened once at the end, so the cost
    does not grow with transitions x photon energies."""

    def __init__(self, grid: np.ndarray, width: float, kt: float, fermi_level: float, intraband: bool) -> None:
        self.width, self.kt, self.fermi_level, self.with_intraband = width, kt, fermi_level, intraband
        self.step, self.reach = width / 8, 6 * width
        self.lo, self.hi = max(grid.min() - self.reach, 0.0), grid.max() + self.reach
        self.hist = np.zeros((int(np.ceil((self.hi - self.lo) / self.step)) + 1, 3, 3))
        self.speed = 0.0  # max |ħ ∂(ε_m − ε_n)/∂k| (eV Å) of the transitions taken: the mesh must resolve the width
        self.intraband = np.zeros((3, 3))  # eV Å²
        # Only levels within reach of E_F can take part: ΔE ≤ max ħω + reach, and occupations' tails.
        tail = grid.max() + self.reach + 40 * kt
        self.window = (fermi_level - tail, fermi_level + tail)

    def occupation(self, e: np.ndarray) -> np.ndarray:
        if self.kt == 0:
            return (e < self.fermi_level).astype(float) + 0.5 * (e == self.fermi_level)
        return expit(-(e - self.fermi_level) / self.kt)

    def add(self, e: np.ndarray, p: np.ndarray, wk: np.ndarray) -> None:
        """One group of k-points: energies (K, nb), velocity matrices p (K, 3, nb, nb) (eV Å), k weights (K,)."""
        f = self.occupation(e)
        if self.with_intraband:  # Σ w ħ²v v (−∂f/∂ε), for the Drude term
            self.intraband += np.einsum("k,kn,knab->ab", wk, f * (1 - f) / self.kt, velocity_products(e, p))
        de = e[:, None, :] - e[:, :, None]  # ε_m − ε_n at [k, n, m]
        df = f[:, :, None] - f[:, None, :]
        kk, n, m = np.nonzero((de > DEGENERATE_EV) & (np.abs(df) > 1e-12) & (de >= self.lo) & (de <= self.hi))
        if not len(n):
            return
        amp = wk[kk] * df[kk, n, m] / de[kk, n, m]
        diag = np.einsum("kann->kna", p.real)  # ħ ∂ε/∂k
        self.speed = max(self.speed, float(np.abs(diag[kk, m] - diag[kk, n]).max()))  # how fast ΔE moves with k
        pair = p[kk, :, n, m].T  # (3, T)
        tensor = np.real(pair[:, None, :] * pair[None, :, :].conj())  # Re(p^a_nm conj(p^b_nm)) = Re(p^a_nm p^b_mn)
        b = np.clip(np.rint((de[kk, n, m] - self.lo) / self.step).astype(int), 0, len(self.hist) - 1)
        for x in range(3):
            for y in range(x, 3):
                self.hist[:, x, y] += np.bincount(b, weights=amp * tensor[x, y], minlength=len(self.hist))
                self.hist[:, y, x] = self.hist[:, x, y]  # Re σ is symmetric

    def broadened(self, grid: np.ndarray) -> np.ndarray:
        """Σ strength · Gaussian(ħω − ΔE) on ``grid``, (len(grid), 3, 3)."""
        centres = self.lo + self.step * np.arange(len(self.hist))
        gauss = np.exp(-0.5 * ((grid[:, None] - centres[None, :]) / self.width) ** 2)
        return np.einsum("gb,bxy->gxy", gauss / (np.sqrt(2 * np.pi) * self.width), self.hist)


def optical_conductivity(
    ham: RealSpaceHamiltonian,
    kpts: Any,
    fermi_level: float,
    energies: Any,
    width: float = 0.05,
    kt: float = 0.025,
    lindep: float = PREDICTED_LINDEP,
    weights: Any = None,
    chunk: int = 256,
    progress: bool = False,
    drude: float | None = None,
    rotations: np.ndarray | None = None,
) -> OpticalConductivity:
    """Interband Re σ_ab(ħω) (module docstring) on ``energies`` (ħω, eV, ≥ 0) from the k-points ``kpts``
    (fractional, (nk, 3): a whole mesh such as :func:`~tracegrad_ase.core.symmetry.full_mesh`, ``weights``
    default uniform), occupations Fermi-Dirac at ``fermi_level`` (eV) with ``kt`` (eV; 0: a
    step), δ a Gaussian of standard deviation ``width`` (eV); with ``drude`` (ħ/τ in eV, needs kt > 0) plus the
    intraband Drude peak. ``kpts`` may be an irreducible wedge with its ``weights`` when ``rotations`` are the
    Cartesian point group it was folded with (:func:`~tracegrad_ase.core.symmetry.cartesian_point_group`).

    A Dirac cone needs a mesh whose level spacing near it is below ``width``: graphene at width 0.05 eV needs
    ~600 x 600 k-points. ``chunk`` k-points are diagonalized at once (memory ~ chunk · 8 · norb² · 16 bytes)."""
    d, measure = periodic_measure(ham, "optical conductivity")
    kpts = check_kpts(kpts)
    w = kpoint_weights(weights, len(kpts))
    grid = np.asarray(energies, dtype=float).ravel()
    if not len(grid) or not np.all(np.isfinite(grid)) or grid.min() < 0:
        raise ValueError("energies (ħω, eV) must be a non-empty list of finite values ≥ 0")
    width, kt, fermi_level = float(width), float(kt), float(fermi_level)
    if not (np.isfinite(width) and width > 0):
        raise ValueError(f"width (eV) must be positive, got {width}")
    if not (np.isfinite(kt) and kt >= 0):
        raise ValueError(f"kt (eV) must be ≥ 0, got {kt}")
    if not np.isfinite(fermi_level):
        raise ValueError(f"fermi_level must be finite, got {fermi_level}")
    if drude is not None and not (np.isfinite(drude) and drude > 0 and kt > 0):
        raise ValueError(f"drude (ħ/τ, eV) must be positive, with kt > 0 (the Fermi surface's width); got {drude}, "
                         f"kt {kt}")
    transitions = _Transitions(grid, width, kt, fermi_level, drude is not None)
    for idx, e, p, _ in velocity_groups(ham, kpts, transitions.window, lindep, chunk,
                                     "optical conductivity" if progress else None):
        transitions.add(e, p, w[idx])
    resolution = check_resolution(ham, kpts, transitions.speed, width, f"optical conductivity at width {width:g} eV")
    unit = np.pi * SPIN_DEGENERACY / measure * E2_OVER_HBAR_SIEMENS * _ANGSTROM_POWER[d]
    sigma = transitions.broadened(grid) * unit
    if drude is not None:
        tau = HBAR_SI / (drude * ELEMENTARY_CHARGE)  # s
        sigma_over_tau = transitions.intraband * SIGMA_OVER_TAU_UNIT[d] / measure
        sigma = sigma + sigma_over_tau[None] * tau / (1 + (grid / drude) ** 2)[:, None, None]
    if rotations is not None:
        sigma = symmetrize_tensor(sigma, rotations)
    return OpticalConductivity(energies=grid, sigma=sigma, periodic_dimensions=d, fermi_level=fermi_level,
                               width=width, kt=kt, nkpts=len(kpts),
                               meta={"approximation": "interband Kubo-Greenwood, Peierls (orbital-centre) positions",
                                     "lindep": float(lindep), "level_step_over_width": resolution,
                                     "drude_ev": drude})
