import warnings

import numpy as np
import pytest
from ase.build import graphene

phonopy = pytest.importorskip("phonopy")

from conftest import toy_model as _model  # noqa: E402  (tests/ is on sys.path: conftest lives there)

from tracegrad_ase.interop.phonopy import (force_constants_from_calculator, gap_vs_temperature,  # noqa: E402
                                   plot_gap_vs_temperature, tersoff_carbon, thermal_structures)

SUPERCELL = [[2, 0, 0], [0, 2, 0], [0, 0, 1]]


@pytest.fixture(scope="module")
def phonon():
    # A carbon Tersoff potential: a stand-in force field, good enough for harmonic force constants.
    cell = graphene(a=2.46, vacuum=5.0)
    cell.pbc = True
    return force_constants_from_calculator(cell, SUPERCELL, tersoff_carbon(), distance=0.01)


def test_tersoff_carbon_gives_real_graphene_phonons_in_physical_units(phonon):
    # Equilibrium where asked: the energy per atom is lowest at lattice_a, for the default and a scaled value.
    for a0 in (2.46, 2.50):
        calc = tersoff_carbon(a0)
        energies = []
        for a in (a0 - 0.01, a0, a0 + 0.01):
            cell = graphene(a=a, vacuum=5.0)
            cell.pbc = True
            cell.calc = calc
            energies.append(cell.get_potential_energy())
        assert energies[1] < min(energies[0], energies[2])
    # Every mode at the supercell's commensurate q-points is real, and Gamma's highest (the G mode) is where
    # graphene's is: 1,500-1,800 cm^-1 (phonopy's THz x 33.356). A unit slip in the forces or the masses would
    # move it by orders of magnitude.
    phonon.run_mesh([2, 2, 1], is_gamma_center=True)
    assert phonon.mesh.frequencies.min() > -1e-3
    phonon.run_qpoints([[0, 0, 0]])
    assert 1500 < phonon.qpoints.frequencies[0].max() * 33.356 < 1800
    from tracegrad_ase.core.errors import ParameterError

    with pytest.raises(ParameterError, match="lattice_a"):
        tersoff_carbon(24.6)


def _positions(structures):
    return np.array([a.positions for a in structures])


def test_force_constants_have_the_supercell_shape(phonon):
    n_super = len(phonon.supercell)
    assert n_super == 8
    fc = phonon.force_constants
    # full (n_super, n_super, 3, 3) or phonopy's compact (n_prim, n_super, 3, 3) form
    assert fc.shape[1:] == (n_super, 3, 3) and fc.shape[0] in (n_super, len(phonon.primitive))
    assert np.isfinite(fc).all()


def test_thermal_structures_are_displaced_and_reproducible(phonon):
    ideal = phonon.supercell.positions
    s1 = thermal_structures(phonon, 300, 3, seed=1)
    assert len(s1) == 3
    assert all(a.pbc.all() and len(a) == 8 for a in s1)
    assert s1[0].info["temperature"] == 300.0 and s1[0].info["name"].endswith("T300-0000")
    assert all(np.abs(a.positions - ideal).max() > 1e-4 for a in s1)
    assert np.allclose(_positions(s1), _positions(thermal_structures(phonon, 300, 3, seed=1)))
    assert not np.allclose(_positions(s1), _positions(thermal_structures(phonon, 300, 3, seed=2)))
    # the caller's phonopy object keeps its force constants (generation works on a replica)
    assert phonon.force_constants is not None


def test_mean_square_displacement_grows_with_temperature(phonon):
    ideal = phonon.supercell.positions

    def msd(t, seed, n=16):
        return float(((_positions(thermal_structures(phonon, t, n, seed=seed)) - ideal) ** 2).sum(-1).mean())

    # Same seed: the same normal deviates scaled by each mode's T-dependent width, so the MSD grows strictly with
    # T with no sampling noise. Different seeds: graphene's modes are stiff (up to ~1,700 cm^-1), so zero-point
    # motion dominates at 100 K and <u²> only about doubles by 1000 K (1.6-2.4x over ten seed pairs of 16
    # snapshots); 1.3 leaves room for that spread and still fails if temperature stops mattering.
    assert msd(1000, 0, 4) > msd(100, 0, 4)
    assert msd(1000, 3) > 1.3 * msd(100, 4)


def test_no_force_constants_is_a_clear_error():
    from phonopy import Phonopy

    from tracegrad_ase.interop.phonopy import to_phonopy_atoms as _to_phonopy

    bare = Phonopy(_to_phonopy(graphene(a=2.46, vacuum=5.0)), supercell_matrix=SUPERCELL, primitive_matrix=None)
    with pytest.raises(ValueError, match="produce or read force constants first"):
        thermal_structures(bare, 300, 2)


def test_gap_vs_temperature_and_plot(phonon, tmp_path):
    model = _model(tmp_path, "gth-szv", ["C"], "gth-pbe")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = gap_vs_temperature(phonon, model, [100, 600], n=2, kpts=(2, 2, 1), seed=0, progress=False)
    assert [r["temperature"] for r in results] == [100.0, 600.0]
    for r in results:
        assert len(r["gaps"]) == 2
        assert np.isfinite(r["mean_gap"]) and r["std_gap"] >= 0
        assert r["mean_gap"] == pytest.approx(np.mean(r["gaps"]))
    png = tmp_path / "gap.png"
    plot_gap_vs_temperature(results, png)
    assert png.stat().st_size > 1000


def test_load_phonopy_reads_saved_params(phonon, tmp_path):
    from tracegrad_ase.interop.phonopy import load_phonopy

    path = tmp_path / "phonopy_params.yaml"
    phonon.save(path)  # unit cell, supercell matrix and the displacement dataset with its forces
    loaded = load_phonopy(path, primitive_matrix=None)
    assert loaded.force_constants is not None
    assert len(thermal_structures(loaded, 300, 2)) == 2


def test_recipe_thermal_structures(phonon, tmp_path):
    """A data set recipe takes thermal snapshots from a user's phonopy file."""
    from tracegrad_ase.datasets.recipes import load_recipe, recipe_structures

    phonon.save(str(tmp_path / "phonopy_params.yaml"))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("out_dir: ds\nstructures:\n"
                      "  - thermal: {phonopy: phonopy_params.yaml, temperature: 300, n: 3, seed: 4}\n")
    atoms = recipe_structures(load_recipe(recipe))
    assert len(atoms) == 3 and len({a.info["name"] for a in atoms}) == 3
    assert all(len(a) == len(atoms[0]) for a in atoms)
