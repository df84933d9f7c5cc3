"""Fat bands (issue 16, item 5): Mulliken weights per band and k (electronic.projections), pymatgen projections
(interop.projected_bands) and ``tracegrad bands --projected``.

Graphene, with the shipped carbon model (gth-dzvp: s, p and d shells): the bands at K next to E_F are π (p_z),
the occupied σ bands at Γ are s + p_x,y. Planar graphene's mirror z -> -z keeps p_z (and d_xz, d_yz) apart from
s, p_x, p_y, d_xy, d_x²-y², d_z² in any equivariant model, so a wrong orbital label shows up as whole weights in
the wrong place.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from ase import Atoms
from ase.build import graphene

from tracegrad_ase.core.basis import OrbitalBasis
from tracegrad_ase.core.errors import MismatchError, ParameterError
from tracegrad_ase.core.hamiltonian import RealSpaceHamiltonian
from tracegrad_ase.electronic.projections import (ORBITAL_NAMES, band_projections, orbital_table, parse_projection,
                                                  projected_weights)
from tracegrad_ase.electronic.solve import PREDICTED_LINDEP

K, GAMMA = [1 / 3, 1 / 3, 0.0], [0.0, 0.0, 0.0]


def test_each_named_orbital_carries_its_own_level():
    """One atom with a p and a d shell, each orbital at its own level in sisl/pymatgen order (m = -l..l): every
    eigenstate lies wholly on the orbital named for that level, through the e3nn order and back."""
    basis = OrbitalBasis(name="pd", shells={"Fe": (1, 2)}, valence={"Fe": 8})
    levels = np.arange(8, dtype=float)  # py pz px dxy dyz dz2 dxz dx2-y2
    h = basis.convert_block(np.diag(levels), 26, 26, "sisl", "e3nn")
    atoms = Atoms("Fe", positions=[[0, 0, 0]], cell=np.eye(3) * 10, pbc=False)
    ham = RealSpaceHamiltonian(atoms, basis, [(0, 0, 0, 0, 0)], [h], [np.eye(8)])
    sol, w = band_projections(ham, [GAMMA])
    names = [o.name for o in orbital_table(ham)]
    assert names == list(ORBITAL_NAMES[1] + ORBITAL_NAMES[2])
    assert np.allclose(sol.energies[0], levels)
    assert np.allclose(w[0], np.eye(8), atol=1e-12)  # band n (level n) is all on orbital n
    per = projected_weights(w, ham, specs=["Fe:pz", "Fe:d", "Fe:dx2-y2+dz2", "Fe"])
    assert np.allclose(per["Fe:pz"][0], np.eye(8)[1])
    assert np.allclose(per["Fe:d"][0], [0, 0, 0, 1, 1, 1, 1, 1])
    assert np.allclose(per["Fe:dx2-y2+dz2"][0], [0, 0, 0, 0, 0, 1, 0, 1])
    assert np.allclose(per["Fe"][0], 1.0)
    for bad in ["Fe:f", "O:p", "Fe:pw", "Fe:"]:
        with pytest.raises(ParameterError):
            parse_projection(bad, ham)


@pytest.fixture(scope="module")
def graphene_calc():
    from tracegrad_ase.calculator import TraceGradCalculator

    atoms = graphene(a=2.46, vacuum=5.0)  # in the xy plane
    atoms.calc = TraceGradCalculator("carbon", kpts=(9, 9, 1))
    return atoms


def test_graphene_pi_and_sigma_characters(graphene_calc):
    atoms = graphene_calc
    ef = atoms.calc.get_fermi_level()
    ham = atoms.calc.get_hamiltonian()
    sol, w = band_projections(ham, [K, GAMMA], PREDICTED_LINDEP)
    assert np.abs(w.sum(axis=2) - 1.0).max() < 1e-8  # every band's weights sum to 1
    per = projected_weights(w, ham, by="element_orbital")
    assert {"C:s", "C:px", "C:py", "C:pz", "C:dz2", "C:dxz"} <= set(per)
    pz, in_plane = per["C:pz"], per["C:s"] + per["C:px"] + per["C:py"]
    near = np.argsort(np.abs(sol.energies[0] - ef))[:2]  # the Dirac point: two bands at E_F
    assert np.abs(sol.energies[0, near] - ef).max() < 0.2
    assert (pz[0, near] > 0.9).all(), pz[0, near]
    occupied = np.nonzero(sol.energies[1] < ef)[0]
    assert len(occupied) == 4  # 8 valence electrons: one π and three σ bands below E_F at Γ
    sigma = occupied[pz[1, occupied] < 0.1]
    assert len(sigma) == 3, pz[1, occupied]
    assert (in_plane[1, sigma] > 0.9).all(), in_plane[1, sigma]
    by_l = projected_weights(w, ham, by="element_l")
    assert np.allclose(by_l["C:s"] + by_l["C:p"] + by_l["C:d"], 1.0, atol=1e-8)


def test_pymatgen_projected_band_structure(graphene_calc, tmp_path):
    from pymatgen.electronic_structure.core import Spin
    from pymatgen.electronic_structure.plotter import BSPlotterProjected

    from tracegrad_ase.interop.projected_bands import (plot_fat_bands, projected_band_structure, spec_weights,
                                                       with_projections)

    atoms = graphene_calc
    bs = projected_band_structure(atoms.calc, atoms, line_density=8)
    proj = bs.projections[Spin.up]
    assert proj.shape == (bs.nb_bands, len(bs.kpoints), 9, 2)
    assert np.abs(proj.sum(axis=(2, 3)) - 1.0).max() < 1e-8
    elements = bs.get_projection_on_elements()[Spin.up]
    assert abs(elements[0][0]["C"] - 1.0) < 1e-8
    w = spec_weights(bs, ["C:pz", "C:s", "C:p", "C:px+py"])
    assert np.allclose(w["C:p"], w["C:pz"] + w["C:px+py"])
    k_at_k = [n for n, k in enumerate(bs.kpoints) if k.label == "K"][0]
    near = np.argsort(np.abs(bs.bands[Spin.up][:, k_at_k] - bs.efermi))[:2]
    assert (w["C:pz"][near, k_at_k] > 0.9).all()
    # pymatgen's own per-orbital dot plot reads the projections (BSPlotterProjected).
    axes = BSPlotterProjected(bs).get_projected_plots_dots_patom_pmorb({"C": ["pz", "s"]}, {"C": [1, 2]})
    assert len(axes) >= 2
    fig = plot_fat_bands(bs, ["C:pz", "C:s+px+py"], tmp_path / "fat.png")
    assert (tmp_path / "fat.png").stat().st_size > 10_000 and len(fig.axes) == 2
    with pytest.raises(ParameterError, match="no orbital"):
        spec_weights(bs, ["C:q"])
    # Projections must come from the Hamiltonian that made the bands.
    other = atoms.calc.get_hamiltonian()
    shifted = RealSpaceHamiltonian(other.atoms, other.basis, other.edges,
                                   [h + 0.5 * s for h, s in zip(other.hamiltonian, other.overlap)], other.overlap)
    with pytest.raises(MismatchError):
        with_projections(bs, shifted)


def test_cli_projected_fat_bands(tmp_path, capsys):
    from tracegrad_ase.cli import main

    structure = tmp_path / "graphene.xyz"
    graphene(a=2.46, vacuum=5.0).write(structure)
    out = tmp_path / "fat.png"
    args = ["bands", str(structure), "--model", "graphene-szv", "--density", "5", "--mesh", "6x6x1", "-o", str(out),
            "--projected"]
    run = subprocess.run([sys.executable, "-m", "tracegrad_ase.cli", *args, "C:pz", "C:s,C:px+py"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert out.stat().st_size > 10_000
    # A projection the model's basis lacks (gth-szv has no d) is bad input: exit 2 before any band is solved.
    assert main(args[:-3] + ["-o", str(tmp_path / "no.png"), "--projected", "C:d"]) == 2
    assert "C has no orbital 'd'" in capsys.readouterr().err
    assert not (tmp_path / "no.png").exists()


def test_calculator_to_sisl(graphene_calc):
    """TraceGradCalculator.to_sisl(): sisl's eigenvalues of the predicted graphene Hamiltonian are ours. gth-dzvp is
    nearly dependent here (S(k) down to ~5e-8), so levels above E_F + 20 eV (up to ~1e6 eV) agree only to ~1e-8
    relative and are left out."""
    pytest.importorskip("sisl")
    from tracegrad_ase.electronic import solve_k

    atoms = graphene_calc
    H = atoms.calc.to_sisl()
    ham = atoms.calc.get_hamiltonian()
    kpts = np.random.default_rng(1).uniform(-0.5, 0.5, size=(3, 3)) * atoms.pbc
    ours = solve_k(ham, kpts, lindep=0.0).energies
    theirs = np.array([H.eigh(k=k) for k in kpts])
    low = ours < atoms.calc.get_fermi_level() + 20.0
    assert low.sum() >= 8 * len(kpts)  # 4 occupied bands and the π* and σ* above them
    # 1e-8 relative to the levels' scale: with S(k) near 5e-8 the solve's round-off grows with the conditioning (the
    # well-conditioned comparisons of tests/test_sisl.py hold to 1e-8 eV absolute; here ~1e-8 eV is measured)
    assert np.abs(theirs - ours)[low].max() < 1e-8 * max(1.0, float(np.abs(ours[low]).max()))
