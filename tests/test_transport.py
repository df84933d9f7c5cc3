"""Constant-τ Boltzmann transport (electronic.transport) against what is known in closed form: a parabolic band's
Seebeck coefficient and Drude conductivity, graphene's Wiedemann-Franz ratio, Mott's Seebeck and carrier density,
supercell invariance, and the errors bad input gets."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tracegrad_ase.core.errors import CoarseMeshWarning
from tracegrad_ase.core.symmetry import full_mesh
from tracegrad_ase.core.units import ELEMENTARY_CHARGE, HBAR_SI, KB_EV
from tracegrad_ase.electronic.transport import boltzmann_transport

from conftest import A, T, honeycomb, lone_atom, calculated_sheet, square_lattice

LORENZ = np.pi**2 / 3 * KB_EV**2  # (k_B/e)² π²/3 in V²/K²


def test_a_parabolic_band_has_the_textbook_seebeck_and_drude_conductivity():
    """Non-degenerate electrons at the bottom of ε = -2t(cos k_x a + cos k_y a): in 2D with constant τ,
    S = -(k_B/e)(2 - η), η = (μ - ε_c)/kT, and σ/τ = n e²/m* with m* = ħ²/2ta²."""
    t, a, temperature = 1.0, 3.0, 300.0
    kt = KB_EV * temperature
    bottom = -4 * t
    mu = np.array([-0.15, -0.10])  # relative to the band bottom, given as the "Fermi level"
    tr = boltzmann_transport(square_lattice(t, a), full_mesh((300, 300, 1)), bottom, mu, temperature, 0.0, lindep=0.0)
    eta = mu / kt
    np.testing.assert_allclose(tr.seebeck[:, 0, 0], -KB_EV * (2 - eta), rtol=2e-3)
    np.testing.assert_allclose(tr.seebeck[:, 1, 1], tr.seebeck[:, 0, 0], rtol=1e-10)
    mass = HBAR_SI**2 / (2 * t * ELEMENTARY_CHARGE * (a * 1e-10) ** 2)
    drude = tr.carrier_density * 1e4 * ELEMENTARY_CHARGE**2 / mass  # cm^-2 -> m^-2; a sheet: S/s
    np.testing.assert_allclose(tr.sigma_over_tau[:, 0, 0], drude, rtol=0.01)  # band non-parabolic at order kT/t
    assert np.abs(tr.sigma_over_tau[:, 0, 1]).max() < 1e-6 * tr.sigma_over_tau[:, 0, 0].min()
    assert np.all(tr.doping > 0) and tr.doping[1] > tr.doping[0]  # electrons, more of them nearer the band
    assert tr.units["sigma_over_tau"] == "S/s" and tr.units["carrier_density"] == "cm^-2"
    np.testing.assert_allclose(tr.carrier_density, tr.doping / (a * a * 1e-16))


def test_doped_graphene_obeys_wiedemann_franz_and_mott():
    temperature = 600.0
    kt = KB_EV * temperature
    with warnings.catch_warnings():
        warnings.simplefilter("error", CoarseMeshWarning)  # levels step by ~kT between k-points: resolved
        tr = boltzmann_transport(honeycomb(), full_mesh((300, 300, 1)), 0.0, [1.0, -1.0, 0.0], temperature, 2.0,
                                 lindep=0.0)
    with pytest.warns(CoarseMeshWarning, match="Boltzmann transport at 300 K"):
        boltzmann_transport(honeycomb(), full_mesh((60, 60, 1)), 0.0, [1.0], 300.0, 2.0, lindep=0.0)
    lorenz = tr.kappa_over_tau[:, 0, 0] / (tr.sigma_over_tau[:, 0, 0] * temperature)
    np.testing.assert_allclose(lorenz[:2], LORENZ, rtol=0.02)  # a degenerate metal at |μ| = 1 eV ≫ kT
    assert lorenz[2] > 2 * LORENZ  # at the Dirac point electrons and holes both carry heat (bipolar)
    # Mott: S = -(π²/3)(k_B/e) kT d ln σ(ε)/dε, and σ(ε) ∝ |ε| on a Dirac cone
    np.testing.assert_allclose(tr.seebeck[0, 0, 0], -np.pi**2 / 3 * KB_EV * kt / 1.0, rtol=0.02)
    np.testing.assert_allclose(tr.seebeck[1], -tr.seebeck[0], rtol=1e-9, atol=1e-15)  # electron-hole symmetry
    assert abs(tr.seebeck[2, 0, 0]) < 1e-12 and abs(tr.doping[2]) < 1e-10
    # carriers on a Dirac cone: n = μ² / π(ħv)² with ħv = 3|t|a_cc/2, per cell of area √3a²/2 (warping adds
    # a little)
    cone = 1.0 / (np.pi * (1.5 * abs(T) * A / np.sqrt(3)) ** 2) * np.sqrt(3) / 2 * A * A
    assert tr.doping[0] == pytest.approx(cone, rel=0.05) and tr.doping[1] == pytest.approx(-tr.doping[0], rel=1e-9)
    np.testing.assert_allclose(tr.sigma_over_tau[:, 1, 1], tr.sigma_over_tau[:, 0, 0], rtol=1e-8)
    # a Dirac cone's Drude weight: σ/τ = e²|μ|/πħ², whatever its velocity
    weight = ELEMENTARY_CHARGE**3 * 1.0 / (np.pi * HBAR_SI**2)
    np.testing.assert_allclose(tr.sigma_over_tau[:2, 0, 0], weight, rtol=0.02)
    # asked by carrier density instead of μ: between the μ that bracket it, and refused outside them
    dense = boltzmann_transport(honeycomb(), full_mesh((300, 300, 1)), 0.0, np.linspace(0.5, 1.0, 6), temperature, 2.0,
                                lindep=0.0)
    at = dense.at_carrier_density(dense.carrier_density[2])
    assert at["mu"] == pytest.approx(0.7) and np.allclose(at["seebeck"], dense.seebeck[2])
    middle = dense.at_carrier_density(0.5 * (dense.carrier_density[2] + dense.carrier_density[3]))
    assert 0.7 < middle["mu"] < 0.8  # S = -(π²/3)(k_B/e)kT/μ rises towards 0 with μ, so lies between:
    assert dense.seebeck[2, 0, 0] < middle["seebeck"][0, 0] < dense.seebeck[3, 0, 0] < 0
    with pytest.raises(ValueError, match="outside the range"):
        dense.at_carrier_density(0.0)


@pytest.mark.filterwarnings("ignore::tracegrad_ase.core.errors.CoarseMeshWarning")  # coarse on purpose: exact checks
def test_a_supercell_gives_the_same_coefficients():
    ham = honeycomb(gap=1.0, s=0.1, t2=-0.2)
    mu, temperature = [-0.8, 0.0, 0.7], 2000.0  # hot, so that the gapped sheet conducts at every μ
    prim = boltzmann_transport(ham, full_mesh((24, 24, 1)), 0.0, mu, temperature, 2.0, lindep=0.0)
    sup = boltzmann_transport(ham.supercell((2, 1, 1)), full_mesh((12, 24, 1)), 0.0, mu, temperature, 4.0, lindep=0.0)
    assert prim.sigma_over_tau[:, 0, 0].min() > 0
    for name in ("sigma_over_tau", "seebeck", "kappa_over_tau", "carrier_density"):
        np.testing.assert_allclose(getattr(sup, name), getattr(prim, name), rtol=1e-7,
                                   atol=1e-9 * np.abs(getattr(prim, name)).max(), err_msg=name)
    np.testing.assert_allclose(sup.doping, 2 * prim.doping, rtol=1e-9, atol=1e-12)  # per cell: twice the atoms


@pytest.mark.filterwarnings("ignore::tracegrad_ase.core.errors.CoarseMeshWarning")  # coarse on purpose: exact checks
def test_bad_input_is_refused_by_name():
    ham = honeycomb()
    mesh = full_mesh((4, 4, 1))
    with pytest.raises(ValueError, match="temperature"):
        boltzmann_transport(ham, mesh, 0.0, [0.0], 0.0, 2.0)
    with pytest.raises(ValueError, match="mu"):
        boltzmann_transport(ham, mesh, 0.0, [np.nan], 300.0, 2.0)
    with pytest.raises(ValueError, match="no periodic direction"):
        boltzmann_transport(lone_atom(ham.basis), [[0, 0, 0]], 0.0, [0.0], 300.0, 1.0)


@pytest.mark.filterwarnings("ignore::tracegrad_ase.core.errors.CoarseMeshWarning")  # coarse on purpose: exact checks
def test_the_calculator_gives_the_coefficients_of_its_own_prediction(carbon):
    from tracegrad_ase.core.errors import ParameterError

    sheet = calculated_sheet(carbon)
    calc = sheet.calc
    tr = calc.get_transport([-0.5, 0.0, 0.5], 300.0, (12, 12, 1))  # the irreducible wedge, symmetrized
    direct = boltzmann_transport(calc.asm.ham, full_mesh((12, 12, 1)), calc.get_fermi_level(), [-0.5, 0.0, 0.5],
                                 300.0, calc.results["n_electrons"], lindep=calc._lindep)
    scale = np.abs(direct.seebeck).max()
    np.testing.assert_allclose(tr.seebeck, direct.seebeck, rtol=1e-4, atol=1e-4 * scale)  # float32 prediction
    np.testing.assert_allclose(tr.doping, direct.doping, rtol=1e-4, atol=1e-6)
    assert tr.nkpts < 0.2 * direct.nkpts
    with pytest.raises(ParameterError, match="temperature"):
        calc.get_transport([0.0], -1.0, (12, 12, 1))
    with pytest.raises(ParameterError, match="non-periodic"):
        calc.get_transport([0.0], 300.0, (12, 12, 2))


def test_an_irreducible_wedge_with_its_point_group_gives_the_whole_mesh():
    """Optics and transport from the irreducible wedge of a symmetric sheet, their tensors averaged over the point
    group it was folded with, equal the whole mesh's: 61 k-points instead of 576 for graphene."""
    from tracegrad_ase.core.symmetry import cartesian_point_group, irreducible_kpoints
    from tracegrad_ase.electronic.optics import optical_conductivity

    ham = honeycomb(s=0.1, t2=-0.2)
    kpts, weights, _ = irreducible_kpoints(ham.atoms, (24, 24, 1))
    group = cartesian_point_group(ham.atoms)
    assert len(group) == 24 and np.allclose(group @ np.swapaxes(group, 1, 2), np.eye(3))  # 6/mmm, orthogonal
    assert len(kpts) == 61  # of 576
    whole = boltzmann_transport(ham, full_mesh((24, 24, 1)), 0.0, [-1.0, 0.3], 3000.0, 2.0, lindep=0.0)
    wedge = boltzmann_transport(ham, kpts, 0.0, [-1.0, 0.3], 3000.0, 2.0, lindep=0.0, weights=weights,
                                rotations=group)
    for name in ("sigma_over_tau", "seebeck", "kappa_over_tau", "doping"):
        np.testing.assert_allclose(getattr(wedge, name), getattr(whole, name), rtol=1e-9,
                                   atol=1e-12 * np.abs(getattr(whole, name)).max(), err_msg=name)
    energies = np.linspace(0.5, 8.0, 16)
    whole = optical_conductivity(ham, full_mesh((24, 24, 1)), 0.0, energies, width=0.3, kt=0.1)
    wedge = optical_conductivity(ham, kpts, 0.0, energies, width=0.3, kt=0.1, weights=weights, rotations=group)
    np.testing.assert_allclose(wedge.sigma, whole.sigma, rtol=1e-9, atol=1e-12 * np.abs(whole.sigma).max())
