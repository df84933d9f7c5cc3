"""A gap that moves with the overlap cut is reported and warned about (electronic.cut_sensitivity): numerically on
a one-atom toy whose LUMO lives in a nearly dependent overlap direction, and on the shipped molecules model."""

import warnings

import numpy as np
import pytest
from ase import Atoms

from tracegrad_ase.core.basis import OrbitalBasis
from tracegrad_ase.core.errors import UncertaintyWarning
from tracegrad_ase.core.hamiltonian import RealSpaceHamiltonian
from tracegrad_ase.electronic import BlochAssembler, band_gap, electron_count, solve_k
from tracegrad_ase.electronic.cut_sensitivity import check_gap_cut, gap_cut_sensitivity


def _toy(rng, s_small: float = 0.04):
    """Four s orbitals on one atom, two electrons. In the S-orthonormal frame the levels are -10 (occupied),
    1 (along the overlap direction of eigenvalue ``s_small``), 3 and 5 eV: dropping that direction moves the
    LUMO from 1 to 3 eV, so the gap from 11 to 13 eV."""
    u, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    s_vals = np.array([1.5, s_small, 1.0, 0.5])
    half = u @ np.diag(np.sqrt(s_vals)) @ u.T  # S^(1/2), symmetric
    s = half @ half
    h = half @ (u @ np.diag([-10.0, 1.0, 3.0, 5.0]) @ u.T) @ half
    basis = OrbitalBasis(name="toy", shells={"H": (0, 0, 0, 0)}, valence={"H": 2})
    atoms = Atoms("H", positions=[[0, 0, 0]], pbc=False)
    return RealSpaceHamiltonian(atoms, basis, [(0, 0, 0, 0, 0)], [h], [s])


def _gap(ham, lindep):
    asm = BlochAssembler(ham)
    e = solve_k(asm, np.zeros((1, 3)), lindep=lindep).energies
    return asm, band_gap(e, np.zeros((1, 3)), float(e[0, :2].mean()))


def test_toy_gap_moves_by_the_dropped_lumo(rng):
    ham = _toy(rng)
    assert electron_count(ham) == 2
    asm, gap = _gap(ham, 0.05)  # 0.04 < 0.05: the LUMO direction is dropped
    assert gap["gap"] == pytest.approx(13.0, abs=1e-8)
    cut = gap_cut_sensitivity(asm, gap, 2, 0.05)
    gaps = sorted(cut["gaps"].items())  # (lindep, gap): 0.6 x 0.05 keeps the LUMO direction, 2 x 0.05 does not
    assert [c for c, _ in gaps] == pytest.approx([0.03, 0.05, 0.1])
    assert [g for _, g in gaps] == pytest.approx([11.0, 13.0, 13.0], abs=1e-8)
    assert cut["sensitivity"] == pytest.approx(2.0, abs=1e-8)
    with pytest.warns(UncertaintyWarning, match=r"moves by up to 2\.000 eV .* lindep 0\.05 to 0\.03 or 0\.1"):
        assert check_gap_cut(asm, gap, 2, 0.05) == pytest.approx(2.0, abs=1e-8)


def test_toy_gap_far_from_the_cut_is_quiet(rng):
    ham = _toy(rng)
    asm, gap = _gap(ham, 0.01)  # 0.006 and 0.02 keep the 0.04 direction too
    assert gap["gap"] == pytest.approx(11.0, abs=1e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_gap_cut(asm, gap, 2, 0.01) == pytest.approx(0.0, abs=1e-8)


def test_no_answer_for_metals_odd_counts_and_no_cut(rng):
    ham = _toy(rng)
    asm, gap = _gap(ham, 0.05)
    assert gap_cut_sensitivity(asm, gap, 3, 0.05) is None  # open shell
    assert gap_cut_sensitivity(asm, gap, 2, 0.0) is None  # nothing is cut
    assert gap_cut_sensitivity(asm, {**gap, "metal": True}, 2, 0.05) is None


def test_shipped_molecules_model_warns_on_a_diffuse_lumo_only():
    """Ethylamine's σ* LUMO lies in def2-SVP's nearly dependent directions (the exact PBE H moves too:
    benchmarks/lindep_floor.py); benzene's π* does not."""
    from ase.build import molecule

    from tracegrad_ase.calculator import TraceGradCalculator

    calc = TraceGradCalculator("molecules")
    benzene = molecule("C6H6")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UncertaintyWarning)
        calc.get_property("band_gap", benzene)
    assert calc.results["band_gap_cut_sensitivity"] < 0.01
    with pytest.warns(UncertaintyWarning, match="nearly linearly dependent"):
        calc.get_property("band_gap", molecule("CH3CH2NH2"))
    assert calc.get_property("band_gap_cut_sensitivity") > 0.5


def test_levels_at_cuts_agree_with_the_full_solve(rng):
    """Only the asked levels, S diagonalized once: the same numbers as generalized_eigh at each cut."""
    from tracegrad_ase.electronic.solve import generalized_eigh, levels_at_cuts

    a = rng.normal(size=(12, 12))
    s = a @ a.T / 12 + 1e-3 * np.eye(12)  # eigenvalues from ~1e-3 up: cuts drop a few
    h = rng.normal(size=(12, 12))
    h = h + h.T
    got = levels_at_cuts(h, s, [1e-6, 0.05, 0.2], 3, 4)
    for cut, levels in got.items():
        full = generalized_eigh(h, s, cut)[0]
        assert levels == pytest.approx(full[3:5], abs=1e-10)
    top = float(np.linalg.eigvalsh(s)[-2])  # keeps one direction: no levels 3 and 4
    assert list(levels_at_cuts(h, s, [top], 3, 4).values()) == [None]
