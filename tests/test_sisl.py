"""sisl interchange (issue 16, item 4): io.sisl.to_sisl / from_sisl and the "sisl" orbital order of core.basis.

sisl's own eigensolver (H.eigh(k) with S) must give our band energies at random k, sisl's H(k) must be ours in its
orbital order (which also pins the Bloch phase convention), and a round trip must give the blocks back.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule

from tracegrad_ase.core.basis import OrbitalBasis, shell_transform
from tracegrad_ase.core.errors import DataFormatError, MismatchError
from tracegrad_ase.core.graphs import neighbor_list
from tracegrad_ase.core.hamiltonian import RealSpaceHamiltonian
from tracegrad_ase.electronic import bloch_dense, solve_k

sisl = pytest.importorskip("sisl")

from tracegrad_ase.io.sisl import from_sisl, to_sisl  # noqa: E402

BASIS = OrbitalBasis(name="toy-spd", shells={"Si": (0, 1, 2), "C": (0, 0, 1), "H": (0,), "O": (0, 1, 2)},
                     valence={"Si": 4, "C": 4, "H": 1, "O": 6})


def random_hamiltonian(atoms: Atoms, cutoff: float, seed: int = 0) -> RealSpaceHamiltonian:
    """Random Hermitian H(R) (eV) and a diagonally dominant, so positive definite, S(R) on the edges within
    ``cutoff``: H_ji(-R) = H_ij(R)^T for every pair."""
    rng = np.random.default_rng(seed)
    nl = neighbor_list(atoms, cutoff, self_edges=True, backend="ase")
    edges = np.column_stack([nl.shifts, nl.i, nl.j])
    index = {tuple(e): n for n, e in enumerate(edges.tolist())}
    norb = [BASIS.norb(z) for z in atoms.numbers]
    h: list = [None] * len(edges)
    s: list = [None] * len(edges)
    for n, (rx, ry, rz, i, j) in enumerate(edges.tolist()):
        if h[n] is not None:
            continue
        a = rng.normal(size=(norb[i], norb[j]))
        b = 0.05 * rng.uniform(-1, 1, size=(norb[i], norb[j])) / len(edges) * len(atoms)
        if n == index[(-rx, -ry, -rz, j, i)]:  # on-site: its own partner
            a = 0.5 * (a + a.T) + np.diag(rng.uniform(-10, 5, norb[i]))
            b = np.eye(norb[i]) + 0.5 * (b + b.T) * 0.1
        m = index[(-rx, -ry, -rz, j, i)]
        h[n], s[n], h[m], s[m] = a, b, a.T, b.T
    return RealSpaceHamiltonian(atoms, BASIS, edges, h, s)


@pytest.fixture(scope="module")
def crystal() -> RealSpaceHamiltonian:
    """Two-atom SiC-like cell (Si: s, p, d; C: two s, one p), periodic in all three directions."""
    atoms = bulk("SiC", "zincblende", a=4.36)
    return random_hamiltonian(atoms, 4.0, seed=1)


@pytest.fixture(scope="module")
def slab() -> RealSpaceHamiltonian:
    """A periodic direction with second neighbours (nsc 5) and two non-periodic ones (nsc 1)."""
    atoms = Atoms("SiC", positions=[[0, 0, 0], [1.0, 0.3, 0.2]], cell=[2.0, 8.0, 8.0], pbc=[True, False, False])
    return random_hamiltonian(atoms, 4.1, seed=2)


@pytest.fixture(scope="module")
def water() -> RealSpaceHamiltonian:
    """A molecule without a cell."""
    return random_hamiltonian(molecule("H2O"), 5.0, seed=3)


def _blocks(ham: RealSpaceHamiltonian) -> dict:
    return {tuple(int(x) for x in e): (h, s) for e, h, s in zip(ham.edges, ham.hamiltonian, ham.overlap)}


def test_sisl_harmonics_are_the_sisl_order():
    """sisl.AtomicOrbital's angular functions are core.basis' "sisl" order of e3nn's harmonics, sign included."""
    import torch
    from e3nn import o3

    rng = np.random.default_rng(0)
    r = rng.normal(size=(60, 3))
    r /= np.linalg.norm(r, axis=1)[:, None]
    grid = np.linspace(0.0, 3.0, 400)
    for l in range(4):
        radial = sisl.SphericalOrbital(l, (grid, np.exp(-grid)))
        ours = shell_transform(l, "e3nn", "sisl") @ o3.spherical_harmonics(
            l, torch.as_tensor(r), normalize=True, normalization="integral").numpy().T
        theirs = np.array([sisl.AtomicOrbital(n=l + 1, l=l, m=m, spherical=radial).psi(r)
                           for m in range(-l, l + 1)])
        scale = np.vdot(ours, theirs) / np.vdot(ours, ours)  # the radial value at |r| = 1, one positive number
        assert scale > 0
        assert np.abs(theirs - scale * ours).max() < 1e-10 * np.abs(theirs).max(), l


@pytest.mark.parametrize("name", ["crystal", "slab", "water"])
def test_sisl_eigenvalues_and_hk_match(name, request, rng):
    ham = request.getfixturevalue(name)
    H = to_sisl(ham)
    assert not H.orthogonal and H.no == ham.norb
    pbc = np.asarray(ham.atoms.pbc)
    assert list(H.geometry.lattice.pbc) == pbc.tolist()
    assert all(n == 1 for n in np.asarray(H.geometry.nsc)[~pbc])
    kpts = rng.uniform(-0.5, 0.5, size=(4, 3)) * pbc
    ours = solve_k(ham, kpts, lindep=0.0).energies
    assert np.ptp(ours) > 1.0
    theirs = np.array([H.eigh(k=k) for k in kpts])
    assert np.abs(theirs - ours).max() < 1e-8
    # sisl's H(k), S(k) are ours in sisl's orbital order: the Bloch phase convention, not only the spectrum.
    t = ham.basis.structure_transform(ham.atoms.numbers, "e3nn", "sisl")
    hk, sk = bloch_dense(ham, kpts)
    for n, k in enumerate(kpts):
        assert np.abs(H.Hk(k=k, format="array") - t @ hk[n] @ t.T).max() < 1e-12
        assert np.abs(H.Sk(k=k, format="array") - t @ sk[n] @ t.T).max() < 1e-12


@pytest.mark.parametrize("name", ["crystal", "slab", "water"])
def test_sisl_round_trip(name, request):
    ham = request.getfixturevalue(name)
    back = from_sisl(to_sisl(ham))
    assert back.basis.shells == {k: v for k, v in BASIS.shells.items() if k in back.basis.shells}
    assert back.basis.valence == {k: BASIS.valence[k] for k in back.basis.shells}
    assert np.array_equal(back.atoms.numbers, ham.atoms.numbers)
    assert np.array_equal(back.atoms.positions, ham.atoms.positions)
    assert back.atoms.pbc.tolist() == ham.atoms.pbc.tolist()
    if ham.atoms.cell.rank == 3:
        assert np.array_equal(back.atoms.cell[:], ham.atoms.cell[:])
    ours, theirs = _blocks(ham), _blocks(back)
    assert sorted(ours) == sorted(theirs)
    # The order maps are orthogonal matrices built in floating point (e3nn's Wigner D): round-off only.
    scale = max(np.abs(h).max() for h, _ in ours.values())
    for e, (h, s) in ours.items():
        assert np.abs(theirs[e][0] - h).max() < 1e-14 * scale
        assert np.abs(theirs[e][1] - s).max() < 1e-14
    assert back.hermiticity_error() < 1e-13


def test_from_sisl_m_order_basis_and_errors(crystal):
    H = to_sisl(crystal)
    back = from_sisl(H, basis=BASIS)
    assert back.basis is BASIS
    # A species whose p orbitals are listed px, py, pz (any m order within a shell is read by its m).
    atom = sisl.Atom(1, orbitals=[sisl.AtomicOrbital(n=2, l=1, m=m, q0=1 / 3) for m in (1, -1, 0)])
    geom = sisl.Geometry([[0, 0, 0]], atoms=[atom], lattice=sisl.Lattice(np.eye(3) * 10.0, nsc=[1, 1, 1]))
    hs = sisl.Hamiltonian(geom, orthogonal=False)
    levels = {1: -1.0, -1: -2.0, 0: -3.0}  # px, py, pz
    for io, m in enumerate((1, -1, 0)):
        hs[io, io] = (levels[m], 1.0)
    one = from_sisl(hs)
    assert one.basis.shells == {"H": (1,)} and one.basis.valence == {"H": 1}
    # e3nn order is (x, y, z) for l = 1, a fact of core.basis: the diagonal must read px, py, pz's levels.
    assert np.allclose(np.diag(one.hamiltonian[0]), [-1.0, -2.0, -3.0])
    with pytest.raises(DataFormatError, match="valence"):
        from_sisl(sisl.Hamiltonian(sisl.Geometry([[0, 0, 0]], atoms=sisl.Atom(
            1, orbitals=[sisl.AtomicOrbital(n=1, l=0, m=0)])), orthogonal=False))
    with pytest.raises(DataFormatError, match="non-orthogonal"):
        from_sisl(sisl.Hamiltonian(geom))
    with pytest.raises(MismatchError, match="shells"):
        from_sisl(H, basis=OrbitalBasis(name="x", shells={"Si": (0,), "C": (0,)}, valence={"Si": 4, "C": 4}))
