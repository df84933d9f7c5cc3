"""Optical conductivity (electronic.optics): the universal e²/4ħ of a Dirac cone, an independent closed form for
nearest-neighbour graphene, supercell invariance (which the orbitals' positions in the velocity decide), band
velocities against finite differences, and the errors bad input gets."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tracegrad_ase.core.errors import CoarseMeshWarning
from tracegrad_ase.core.hamiltonian import RealSpaceHamiltonian
from tracegrad_ase.core.symmetry import full_mesh
from tracegrad_ase.electronic.bloch import bloch_dense, bloch_dense_gradient
from tracegrad_ase.electronic.optics import SIGMA0_SIEMENS, optical_conductivity
from tracegrad_ase.electronic.solve import generalized_eigh

from conftest import A, T, honeycomb, lone_atom, calculated_sheet

def closed_form_sigma0(n: int, energies: np.ndarray, width: float) -> np.ndarray:
    """σ_xx / (e²/4ħ) of orthogonal nearest-neighbour graphene at half filling, written out by hand: with
    g(k) = t Σ_δ exp(ik.δ), the interband ħv_x is Im(∂_x g g*/|g|) and ΔE = 2|g|."""
    acc = A / np.sqrt(3)
    deltas = np.array([[0, acc], [acc * np.sqrt(3) / 2, -acc / 2], [-acc * np.sqrt(3) / 2, -acc / 2]])
    recip = 2 * np.pi * np.linalg.inv(np.array([[A, 0], [-A / 2, A * np.sqrt(3) / 2]])).T
    k = full_mesh((n, n, 1))[:, :2] @ recip
    phase = np.exp(1j * k @ deltas.T)
    g = T * phase.sum(1)
    dgx = T * (1j * deltas[:, 0] * phase).sum(1)
    eps = np.abs(g)
    keep = eps > 1e-9  # the Dirac point itself carries no weight
    p2 = np.imag(dgx[keep] * np.conj(g[keep]) / eps[keep]) ** 2
    area = A * A * np.sqrt(3) / 2
    delta = np.exp(-0.5 * ((2 * eps[keep][None] - energies[:, None]) / width) ** 2) / (np.sqrt(2 * np.pi) * width)
    return 4 * np.pi * 2 / area * (p2 / (2 * eps[keep]) * delta).sum(1) / len(k)


def test_graphene_has_the_universal_conductance_and_the_closed_form_above_it():
    ham = honeycomb()
    energies = np.array([0.5, 1.0, 2.0, 3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", CoarseMeshWarning)  # this mesh resolves the width: no warning
        oc = optical_conductivity(ham, full_mesh((300, 300, 1)), 0.0, energies, width=0.1, kt=0.0)
    assert oc.meta["level_step_over_width"] < 2
    with pytest.warns(CoarseMeshWarning, match="times finer"):
        optical_conductivity(ham, full_mesh((30, 30, 1)), 0.0, energies, width=0.05, kt=0.0)
    with pytest.warns(CoarseMeshWarning, match="no level of this mesh took part"):  # K's neighbours: ΔE ≈ 2.8 eV
        optical_conductivity(ham, full_mesh((12, 12, 1)), 0.0, [1.0], width=0.05, kt=0.0)
    ratio = oc.in_sigma0()
    assert oc.unit == "S" and oc.periodic_dimensions == 2
    assert ratio[0, 0, 0] == pytest.approx(1.0, abs=0.03)  # e²/4ħ, whatever t is
    np.testing.assert_allclose(ratio[:, 0, 0], closed_form_sigma0(300, energies, 0.1), rtol=0.01)
    assert ratio[3, 0, 0] > 1.1  # trigonal warping raises it towards the M-point peak at 2|t|
    np.testing.assert_allclose(ratio[:, 1, 1], ratio[:, 0, 0], rtol=1e-6)  # isotropic in the plane (C3)
    assert np.abs(ratio[:, 0, 1]).max() < 1e-8
    assert oc.absorbance()[0] == pytest.approx(np.pi / 137.036, rel=0.03)  # πα
    # Overlap renormalises the cone's velocity, not its universal conductance.
    tilted = optical_conductivity(honeycomb(s=0.1), full_mesh((300, 300, 1)), 0.0, [0.5], width=0.1, kt=0.0)
    assert tilted.sigma[0, 0, 0] / SIGMA0_SIEMENS == pytest.approx(1.0, abs=0.03)


@pytest.mark.filterwarnings("ignore::tracegrad_ase.core.errors.CoarseMeshWarning")  # coarse on purpose: exact checks
def test_a_gapped_sheet_absorbs_nothing_below_its_gap():
    ham = honeycomb(gap=2.0, s=0.1, t2=-0.2)
    oc = optical_conductivity(ham, full_mesh((60, 60, 1)), 0.0, [0.5, 1.0, 2.5, 4.0], width=0.05, kt=0.025)
    assert np.abs(oc.sigma[:2]).max() < 1e-12
    assert oc.sigma[2, 0, 0] > 0.5 * SIGMA0_SIEMENS and oc.sigma[3, 0, 0] > 0


@pytest.mark.filterwarnings("ignore::tracegrad_ase.core.errors.CoarseMeshWarning")  # coarse on purpose: exact checks
def test_a_supercell_gives_the_same_conductivity():
    """The 2x1 supercell's k-mesh folds the primitive one exactly: the same transitions, so the same σ, only if
    the velocity carries the orbitals' positions inside the cell (R alone would differ)."""
    ham = honeycomb(gap=1.0, s=0.1, t2=-0.2)
    energies = np.linspace(0.5, 6.0, 12)
    prim = optical_conductivity(ham, full_mesh((12, 12, 1)), 0.0, energies, width=0.1, kt=0.025)
    sup = optical_conductivity(ham.supercell((2, 1, 1)), full_mesh((6, 12, 1)), 0.0, energies, width=0.1, kt=0.025)
    assert prim.sigma[:, 0, 0].max() > 0.1 * SIGMA0_SIEMENS
    np.testing.assert_allclose(sup.sigma, prim.sigma, rtol=1e-6, atol=1e-9 * SIGMA0_SIEMENS)


def test_diagonal_velocities_are_band_slopes():
    """c_n^H (dH/dk - e_n dS/dk) c_n = de_n/dk (Hellmann-Feynman for H c = e S c), against central differences."""
    ham = honeycomb(gap=1.0, s=0.1, t2=-0.2)
    k = np.array([0.17, 0.41, 0.0])
    hk, sk, dh, ds = bloch_dense_gradient(ham, k[None])
    e, c = generalized_eigh(hk[0], sk[0], 0.0)
    v = np.real(np.einsum("in,xij,jn->nx", c.conj(), dh[0], c)
                - e[:, None] * np.einsum("in,xij,jn->nx", c.conj(), ds[0], c))
    to_fractional = np.asarray(ham.atoms.cell[:]) / (2 * np.pi)  # k_frac . R = k_cart . (R @ cell) / 2π
    step = 1e-5
    for axis in range(2):
        dk = to_fractional @ (step * np.eye(3)[axis])
        e_up = generalized_eigh(*[m[0] for m in bloch_dense(ham, (k + dk)[None])], 0.0)[0]
        e_dn = generalized_eigh(*[m[0] for m in bloch_dense(ham, (k - dk)[None])], 0.0)[0]
        np.testing.assert_allclose(v[:, axis], (e_up - e_dn) / (2 * step), atol=1e-6)
    assert np.abs(v[:, :2]).max() > 0.5  # eV Å: a real slope, not zeros on both sides


@pytest.mark.filterwarnings("ignore::tracegrad_ase.core.errors.CoarseMeshWarning")  # coarse on purpose: exact checks
def test_bad_input_is_refused_by_name():
    ham = honeycomb()
    mesh = full_mesh((4, 4, 1))
    with pytest.raises(ValueError, match="no periodic direction"):
        optical_conductivity(lone_atom(ham.basis), [[0, 0, 0]], 0.0, [1.0])
    with pytest.raises(ValueError, match="width"):
        optical_conductivity(ham, mesh, 0.0, [1.0], width=0.0)
    with pytest.raises(ValueError, match="energies"):
        optical_conductivity(ham, mesh, 0.0, [-1.0])
    with pytest.raises(ValueError, match="kt"):
        optical_conductivity(ham, mesh, 0.0, [1.0], kt=-0.1)
    bulk = optical_conductivity(RealSpaceHamiltonian(ham.atoms.copy(), ham.basis, ham.edges, ham.hamiltonian,
                                                     ham.overlap), mesh, 0.0, [1.0])
    bulk.periodic_dimensions = 3
    with pytest.raises(ValueError, match="sheets"):
        bulk.absorbance()


@pytest.mark.filterwarnings("ignore::tracegrad_ase.core.errors.CoarseMeshWarning")  # coarse on purpose: exact checks
def test_the_calculator_gives_the_conductivity_of_its_own_prediction(carbon):
    from ase.build import molecule

    from tracegrad_ase.calculator import TraceGradCalculator
    from tracegrad_ase.core.errors import ParameterError, StructureError

    sheet = calculated_sheet(carbon)
    calc = sheet.calc
    energies = np.linspace(0.5, 8.0, 6)
    oc = calc.get_optical_conductivity(energies, (9, 9, 1), width=0.2)  # the irreducible wedge, symmetrized
    direct = optical_conductivity(calc.asm.ham, full_mesh((9, 9, 1)), calc.get_fermi_level(), energies, width=0.2,
                                  kt=calc.parameters.width, lindep=calc._lindep)
    np.testing.assert_allclose(oc.sigma, direct.sigma, rtol=1e-4, atol=1e-4 * np.abs(direct.sigma).max())
    assert oc.nkpts < 0.3 * direct.nkpts
    assert oc.fermi_level == calc.get_fermi_level() and oc.kt == 0.05 and oc.sigma.shape == (6, 3, 3)
    with pytest.raises(ParameterError, match="non-periodic"):
        calc.get_optical_conductivity(energies, (9, 9, 2))
    with pytest.raises(ParameterError, match="width"):
        calc.get_optical_conductivity(energies, (9, 9, 1), width=-1)
    methane = molecule("CH4")
    methane.calc = TraceGradCalculator(carbon)
    with pytest.raises(StructureError, match="crystals"):
        methane.calc.get_optical_conductivity(energies, (1, 1, 1))


def test_batched_solutions_match_the_per_k_solver_where_overlap_directions_are_dropped():
    from tracegrad_ase.electronic.velocity import solve_batched as _solve

    ham = honeycomb(gap=1.0, s=0.1, t2=-0.2)
    kpts = full_mesh((6, 6, 1))
    hk, sk = bloch_dense(ham, kpts)
    groups = _solve(hk, sk, 0.75)  # S(k) = 1 ± 0.1|f(k)| drops a direction near Γ (|f| up to 3), not elsewhere
    assert sorted(len(e[0]) for _, e, _ in groups) == [1, 2]
    for idx, e, c in groups:
        for k, ek, ck in zip(idx, e, c):
            ref_e, ref_c = generalized_eigh(hk[k], sk[k], 0.75)
            np.testing.assert_allclose(ek, ref_e, atol=1e-12)
            np.testing.assert_allclose(ck.conj().T @ sk[k] @ ck, np.eye(len(ek)), atol=1e-12)


def test_doped_graphene_blocks_interband_light_below_2mu_and_adds_a_drude_peak():
    """At μ = 0.5 eV interband absorption starts at ħω = 2μ (Pauli blocking); below it, the Drude peak of a Dirac
    cone, σ/τ = e²|μ|/πħ² (its Drude weight), with τ = ħ/γ."""
    from tracegrad_ase.core.units import ELEMENTARY_CHARGE, HBAR_SI

    mu, gamma, kt = 0.5, 0.05, 0.025
    energies = np.array([0.0, 0.05, 0.3, 2.0])
    doped = optical_conductivity(honeycomb(), full_mesh((300, 300, 1)), mu, energies, width=0.1, kt=kt, drude=gamma)
    bare = optical_conductivity(honeycomb(), full_mesh((300, 300, 1)), mu, energies, width=0.1, kt=kt)
    drude = doped.sigma[:, 0, 0] - bare.sigma[:, 0, 0]
    tau = HBAR_SI / (gamma * ELEMENTARY_CHARGE)
    weight = ELEMENTARY_CHARGE**2 * (mu * ELEMENTARY_CHARGE) / (np.pi * HBAR_SI**2)  # σ/τ, S/s
    np.testing.assert_allclose(drude, weight * tau / (1 + (energies / gamma) ** 2), rtol=0.02)
    assert bare.sigma[2, 0, 0] < 0.01 * SIGMA0_SIEMENS  # 0.3 eV < 2μ: blocked
    assert bare.sigma[3, 0, 0] == pytest.approx(SIGMA0_SIEMENS, rel=0.1)  # 2 eV > 2μ: e²/4ħ again
    with pytest.raises(ValueError, match="drude"):
        optical_conductivity(honeycomb(), full_mesh((6, 6, 1)), mu, energies, kt=0.0, drude=gamma)
