"""The orbital-order maps, proven numerically against PySCF and e3nn rather than read from their docs."""

import numpy as np
import pytest
import torch
from ase.build import molecule
from e3nn import o3
from pyscf import gto, scf

from conftest import random_rotation
from tracegrad_ase.core.basis import OrbitalBasis, shell_transform, wigner_d
from tracegrad_ase.core.errors import UnknownElementError


def _unit_points(rng, n=64):
    r = rng.normal(size=(n, 3))
    return r / np.linalg.norm(r, axis=1, keepdims=True)


@pytest.mark.parametrize("l", [0, 1, 2, 3, 4])
def test_pyscf_orbitals_map_onto_e3nn_spherical_harmonics(rng, l):
    mol = gto.M(atom="He 0 0 0", basis={"He": [[l, [1.0, 1.0]]]}, spin=0, verbose=0)
    pts = _unit_points(rng)
    ao = mol.eval_gto("GTOval_sph", pts)  # radial part is the same on the unit sphere
    mapped = ao @ shell_transform(l, "pyscf", "e3nn").T
    sh = o3.spherical_harmonics(l, torch.tensor(pts), normalize=True).numpy()
    scale = np.linalg.norm(mapped) / np.linalg.norm(sh)
    assert np.abs(mapped - scale * sh).max() < 1e-12
    if l >= 2:  # the map is not a permutation: taking PySCF's order for e3nn's would be wrong
        assert np.abs(ao - scale * sh).max() > 1e-2


def _std_polynomials(l, x, y, z):
    return {
        1: [y, z, x],
        2: [x * y, y * z, 3 * z**2 - 1, x * z, x**2 - y**2],
        3: [y * (3 * x**2 - y**2), x * y * z, y * (5 * z**2 - 1), z * (5 * z**2 - 3), x * (5 * z**2 - 1),
            z * (x**2 - y**2), x * (x**2 - 3 * y**2)],
    }[l]


@pytest.mark.parametrize("l,labels", [
    (1, ["x", "y", "z"]),
    (2, ["z2", "x2-y2", "xy", "xz", "yz"]),
    (3, ["m0", "m+1", "m-1", "m+2", "m-2", "m+3", "m-3"]),
])
def test_deeph_order_is_openmx_order(rng, l, labels):
    x, y, z = _unit_points(rng).T
    # Express DeepH's functions through PySCF's (std up to the p permutation) and name them.
    names = {
        1: {"x": x, "y": y, "z": z},
        2: {"z2": 3 * z**2 - 1, "x2-y2": x**2 - y**2, "xy": x * y, "xz": x * z, "yz": y * z},
        3: dict(zip(["m-3", "m-2", "m-1", "m0", "m+1", "m+2", "m+3"], _std_polynomials(3, x, y, z))),
    }[l]
    pyscf_funcs = np.stack(_std_polynomials(l, x, y, z), 1)
    if l == 1:
        pyscf_funcs = pyscf_funcs[:, [2, 0, 1]]  # PySCF p order is x, y, z
    pyscf_funcs /= np.linalg.norm(pyscf_funcs, axis=0)
    deeph = pyscf_funcs @ shell_transform(l, "pyscf", "deeph").T
    for k, label in enumerate(labels):
        want = names[label] / np.linalg.norm(names[label])
        assert np.abs(deeph[:, k] - want).max() < 1e-12, label


@pytest.mark.parametrize("l", [1, 2, 3])
def test_std_order_is_deeptb_and_deeph_pack_order(rng, l):
    """"std" (DeePTB's files, DeepH-pack's newer layout) is m = -l..l: PySCF's functions land on the std
    polynomials, and the maps equal the ones those programs publish (DeePTB dptb/utils/constants.py
    PYSCF2DeePTB, OPENMX2DeePTB; DeepH-dock translate_old_dataset_to_new.py BASIS_TRANS_OPENMX2WIKI)."""
    x, y, z = _unit_points(rng).T
    pyscf_funcs = np.stack(_std_polynomials(l, x, y, z), 1)
    if l == 1:
        pyscf_funcs = pyscf_funcs[:, [2, 0, 1]]  # PySCF p order is x, y, z
    pyscf_funcs /= np.linalg.norm(pyscf_funcs, axis=0)
    std = pyscf_funcs @ shell_transform(l, "pyscf", "std").T
    want = np.stack(_std_polynomials(l, x, y, z), 1)
    assert np.abs(std - want / np.linalg.norm(want, axis=0)).max() < 1e-12
    pyscf2deeptb = {1: [1, 2, 0], 2: [0, 1, 2, 3, 4], 3: list(range(7))}[l]
    openmx2wiki = {1: [1, 2, 0], 2: [2, 4, 0, 3, 1], 3: [6, 4, 2, 0, 1, 3, 5]}[l]  # also OPENMX2DeePTB
    assert np.array_equal(shell_transform(l, "pyscf", "std"), np.eye(2 * l + 1)[pyscf2deeptb])
    assert np.array_equal(shell_transform(l, "deeph", "std"), np.eye(2 * l + 1)[openmx2wiki])
    # e3nn <-> std is a rotation (not a permutation) from l = 2 on, and it composes exactly
    t = shell_transform(l, "e3nn", "std")
    assert np.abs(shell_transform(l, "std", "e3nn") @ t - np.eye(2 * l + 1)).max() < 1e-14


@pytest.mark.parametrize("src,dst", [("pyscf", "e3nn"), ("e3nn", "deeph"), ("deeph", "pyscf")])
def test_transforms_are_orthogonal_and_compose(src, dst):
    for l in range(4):
        t = shell_transform(l, src, dst)
        assert np.allclose(t @ t.T, np.eye(2 * l + 1), atol=1e-14)
        back = shell_transform(l, dst, src)
        assert np.allclose(back @ t, np.eye(2 * l + 1), atol=1e-14)


def test_wigner_d_is_exact_in_float64(rng):
    r = random_rotation(rng)
    assert np.abs(wigner_d(1, r) - r).max() < 1e-13  # e3nn's l=1 basis is (x, y, z)
    r2 = random_rotation(rng)
    for l in range(5):
        assert np.abs(wigner_d(l, r @ r2) - wigner_d(l, r) @ wigner_d(l, r2)).max() < 1e-13


def _hf_matrices(atoms, basis):
    mol = gto.M(atom=[[s, tuple(p)] for s, p in zip(atoms.get_chemical_symbols(), atoms.positions)],
                basis=basis, unit="Angstrom", verbose=0)
    mf = scf.RHF(mol)
    mf.conv_tol = 1e-12
    mf.kernel()
    assert mf.converged
    return mf.get_fock(), mf.get_ovlp(), mf.get_hcore()


def _to_e3nn(matrix, atoms, basis):
    t = [basis.transform(z, "pyscf", "e3nn") for z in atoms.numbers]
    full = np.zeros_like(matrix)
    off = basis.atom_offsets(atoms.numbers)
    for a, ta in enumerate(t):
        for b, tb in enumerate(t):
            sa, sb = slice(off[a], off[a + 1]), slice(off[b], off[b + 1])
            full[sa, sb] = ta @ matrix[sa, sb] @ tb.T
    return full


@pytest.mark.parametrize("name,basis_name", [("H2O", "def2-svp"), ("CH4", "cc-pvtz")])
def test_rotated_molecule_fock_is_d_f_dt(rng, name, basis_name):
    """F(R x) = D(R) F(x) D(R)^T in e3nn order, for s, p, d (water/def2-SVP) and f (methane/cc-pVTZ)."""
    atoms = molecule(name)
    atoms.positions -= atoms.get_center_of_mass()
    basis = OrbitalBasis.from_pyscf(basis_name, atoms.get_chemical_symbols())
    r = random_rotation(rng)
    rotated = atoms.copy()
    rotated.positions = atoms.positions @ r.T
    f0, s0, h0 = (_to_e3nn(m, atoms, basis) for m in _hf_matrices(atoms, basis_name))
    f1, s1, h1 = (_to_e3nn(m, rotated, basis) for m in _hf_matrices(rotated, basis_name))
    d = basis.rotation(atoms.numbers, r)
    assert np.abs(d @ s0 @ d.T - s1).max() < 1e-10
    assert np.abs(d @ h0 @ d.T - h1).max() < 1e-9  # Hartree
    assert np.abs(d @ f0 @ d.T - f1).max() < 1e-6  # Hartree, bounded by SCF convergence
    # Control: PySCF's own order is not e3nn's, and the check above would catch a missing map.
    f0_raw, _, _ = _hf_matrices(atoms, basis_name)
    f1_raw, _, _ = _hf_matrices(rotated, basis_name)
    assert np.abs(d @ f0_raw @ d.T - f1_raw).max() > 1e-2


def test_basis_from_pyscf_shells_and_errors():
    b = OrbitalBasis.from_pyscf("gth-dzvp", ["C", 5, "N"], pseudo="gth-pbe")
    assert b.shells_of("C") == (0, 0, 1, 1, 2) and b.norb(6) == 13
    assert b.valence == {"C": 4, "B": 3, "N": 5}
    assert b.irreps("C") == "1x0e+1x0e+1x1o+1x1o+1x2e"
    assert o3.Irreps(b.irreps("C")).dim == 13
    with pytest.raises(UnknownElementError, match="'Si' is not in basis 'gth-dzvp'"):
        b.shells_of("Si")
    with pytest.raises(UnknownElementError, match="Xx"):
        OrbitalBasis.from_pyscf("sto-3g", ["Xx"])
    with pytest.raises(UnknownElementError, match="not in basis"):
        OrbitalBasis.from_pyscf("def2-svp", ["Og"])
    assert OrbitalBasis.from_dict(b.to_dict()) == b
