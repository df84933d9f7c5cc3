import numpy as np
import pytest

from tracegrad_ase.electronic import band_energies
from tracegrad_ase.electronic.solve import generalized_eigh
from tracegrad_ase.electronic.spectrum import near_band_edges
from conftest import chain_hamiltonian as _chain


def test_bloch_sum_matches_analytic_chain():
    ham = _chain()
    k = np.linspace(0, 0.5, 7)
    kpts = np.stack([k, 0 * k, 0 * k], 1)
    e = band_energies(ham, kpts)[:, 0]
    c = np.cos(2 * np.pi * k)
    assert np.allclose(e, -2 * c / (1 + 0.4 * c), atol=1e-12)
    assert ham.hermiticity_error() == 0.0


def test_missing_partner_edge_breaks_hermiticity_check():
    ham = _chain()
    ham.edges[2] = (-2, 0, 0, 0, 0)
    assert ham.hermiticity_error() == float("inf")


def test_generalized_eigh_drops_linear_dependence():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 4))
    b = np.hstack([a, a[:, :1] + 1e-9 * rng.normal(size=(6, 1))])  # fifth function ~ the first
    s = b.T @ b
    h = b.T @ np.diag(np.arange(6.0)) @ b
    e, c = generalized_eigh(h, s, lindep=1e-8)
    assert len(e) == 4
    assert np.allclose(c.T @ s @ c, np.eye(4), atol=1e-8)
    assert np.allclose(h @ c, s @ c * e, atol=1e-6)
    with pytest.raises(np.linalg.LinAlgError):
        generalized_eigh(h, s, lindep=1e9)


def test_near_band_edges_for_metal_and_insulator():
    e = np.array([-5.0, -1.5, -0.5, 3.0, 4.5, 9.0])
    assert near_band_edges(e, 0.0).tolist() == [False, True, True, True, True, False]  # gap 3.5 eV
    # E_F on the top occupied level: the window reaches the next level above it (the conduction-band minimum)
    assert near_band_edges(e, -0.5, margin=1.0).tolist() == [False, True, True, True, False, False]
