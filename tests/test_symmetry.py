"""Space groups, primitive cells and irreducible k-meshes (spglib), and the calculator on a reduced mesh."""

import numpy as np
import pytest
import spglib
from ase.build import bulk, graphene

from conftest import toy_model as _model
from tracegrad_ase.core import symmetry
from tracegrad_ase.calculator import TraceGradCalculator

# spglib 2.7+ warns on every call under its old error handling; not ours to flip (global state).
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_spacegroups():
    si = symmetry.spacegroup(bulk("Si"))
    assert si["number"] == 227 and si["international"] == "Fd-3m" and si["point_group"] == "m-3m"
    assert si["hall"]
    assert symmetry.spacegroup(graphene(a=2.46, vacuum=5.0))["number"] == 191


def test_standard_primitive_of_conventional_si():
    conv = bulk("Si", cubic=True)
    prim = symmetry.standard_primitive(conv)
    assert len(conv) == 8 and len(prim) == 2
    assert prim.get_volume() / len(prim) == pytest.approx(conv.get_volume() / len(conv), rel=1e-10)
    assert prim.pbc.all() and symmetry.spacegroup(prim)["number"] == 227
    sheet = symmetry.standard_primitive(graphene(a=2.46, vacuum=5.0))
    assert list(sheet.pbc) == [True, True, False] and sheet.cell.lengths()[2] == pytest.approx(10.0)


def _invariant_function(atoms, rng, time_reversal=True):
    """A random smooth periodic g(k), summed over the point group's star: exactly symmetric, and nothing else."""
    rot = spglib.get_symmetry((atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers))["rotations"]
    rec = [r.T for r in rot] + ([-r.T for r in rot] if time_reversal else [])  # fractional k -> R^T k
    n = rng.integers(-2, 3, size=(6, 3))
    a, phi = rng.normal(size=6), rng.uniform(0, 2 * np.pi, size=6)

    def g(k):
        return (a * np.cos(2 * np.pi * k @ n.T + phi)).sum(axis=-1)

    return lambda k: sum(g(k @ r.T) for r in rec)


@pytest.mark.parametrize("shift", [(0, 0, 0), (1, 1, 1)], ids=["gamma", "shifted"])
def test_irreducible_mesh_of_si(rng, shift):
    si = bulk("Si")
    kpts, w, mapping = symmetry.irreducible_kpoints(si, (4, 4, 4), is_shift=shift)
    full = symmetry.full_mesh((4, 4, 4), is_shift=shift)
    spg_map, _ = spglib.get_ir_reciprocal_mesh((4, 4, 4), (si.cell[:], si.get_scaled_positions(), si.numbers),
                                               is_shift=shift)
    assert len(kpts) == len(np.unique(spg_map)) < 64
    assert full.shape == (64, 3) and mapping.shape == (64,) and set(mapping) == set(range(len(kpts)))
    assert w.sum() == pytest.approx(1.0) and np.allclose(w, np.bincount(mapping) / 64)
    # every irreducible point is a point of the full mesh, in the same convention, within its own star
    for i, k in enumerate(kpts):
        assert np.isclose(full[mapping == i], k).all(axis=1).any()
    f = _invariant_function(si, rng)
    assert np.allclose(f(full), f(kpts)[mapping], atol=1e-9)  # mapping reconstructs the full mesh
    assert w @ f(kpts) == pytest.approx(f(full).mean(), abs=1e-10)
    assert np.allclose((full * 4 - 0.5 * np.array(shift)) % 1, 0)  # k = (address + shift/2) / mesh


def test_graphene_mesh_and_bad_2d_mesh(rng):
    sheet = graphene(a=2.46, vacuum=5.0)
    kpts, w, mapping = symmetry.irreducible_kpoints(sheet, (6, 6, 1))
    full = symmetry.full_mesh((6, 6, 1))
    assert len(kpts) == 7 and np.allclose(kpts[:, 2], 0) and w.sum() == pytest.approx(1.0)
    f = _invariant_function(sheet, rng)
    assert w @ f(kpts) == pytest.approx(f(full).mean(), abs=1e-10)
    assert list(symmetry.equivalent_atoms(sheet)) == [0, 0]
    with pytest.raises(ValueError, match="must be 1"):
        symmetry.irreducible_kpoints(sheet, (6, 6, 2))
    with pytest.raises(ValueError, match="3 positive integers"):
        symmetry.full_mesh((4, 4))


def test_calculator_reduced_mesh_equals_full_mesh(carbon):
    """The random model is exactly equivariant, so its bands have the crystal's symmetry: the irreducible wedge
    with weights gives the full mesh's Fermi level, band edges and DOS (to float32 round-off of H)."""
    sheet = graphene(a=2.46, vacuum=5.0)
    grid = np.linspace(-30, 20, 400)
    out = {}
    for sym in (True, False):
        calc = TraceGradCalculator(carbon, kpts=(6, 6, 1), symmetry=sym)
        sheet.calc = calc
        w = calc.get_k_point_weights()
        occ = np.array([calc.get_occupation_numbers(k) for k in range(len(w))])
        out[sym] = dict(n=len(calc.get_ibz_k_points()), ef=calc.get_fermi_level(), gap=calc.get_band_gap(),
                        dos=calc.get_dos(grid, width=0.3), atom=calc.get_dos(grid, width=0.3, by="atom"),
                        nel=float(w @ occ.sum(axis=1)), wsum=w.sum())
    red, full = out[True], out[False]
    assert full["n"] == 36 and red["n"] < 36
    assert red["wsum"] == pytest.approx(1.0) and red["nel"] == pytest.approx(8.0, abs=1e-6)
    assert red["ef"] == pytest.approx(full["ef"], abs=1e-6)
    for key in ("gap", "direct_gap", "vbm", "cbm"):
        assert red["gap"][key] == pytest.approx(full["gap"][key], abs=1e-6)
    scale = np.abs(full["dos"]).max()
    assert np.abs(red["dos"] - full["dos"]).max() <= 1e-6 * scale
    for a in (0, 1):  # per-atom PDOS: the reduced mesh's atoms are averaged over their orbit
        assert np.abs(red["atom"][a] - full["atom"][a]).max() <= 1e-6 * scale
