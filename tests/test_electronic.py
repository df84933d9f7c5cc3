"""Electronic-structure core on analytic tight-binding models (no PySCF)."""

import numpy as np
import pytest
import scipy.sparse as sp
from ase import Atoms
from ase.build import graphene

from tracegrad_ase import electronic as el
from tracegrad_ase.electronic import band_energies, bloch_dense
from tracegrad_ase.core.basis import OrbitalBasis
from tracegrad_ase.core.errors import StructureError
from tracegrad_ase.core.graphs import neighbor_list
from tracegrad_ase.core.hamiltonian import RealSpaceHamiltonian

SMEARINGS = ("fermi-dirac", "gaussian", "none")
_trapz = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 has only trapz


def _line(n):
    k = np.arange(n) / n
    return np.stack([k, 0 * k, 0 * k], 1)


def _chain(t=-1.0, s=0.2, eps=0.0, ncell=1):
    """``ncell`` s orbitals per cell along x (a supercell of the primitive chain when ncell > 1).

    Primitive bands: e(k) = (eps + 2t cos 2πk) / (1 + 2s cos 2πk)."""
    basis = OrbitalBasis(name="s", shells={"H": (0,)}, valence={"H": 1})
    atoms = Atoms(f"H{ncell}", positions=[[2.0 * a, 0, 0] for a in range(ncell)], cell=[2.0 * ncell, 10.0, 10.0],
                  pbc=[True, False, False])
    edges, h, o = [], [], []

    def add(r, i, j, hv, sv):
        edges.append((r, 0, 0, i, j))
        h.append(np.array([[hv]]))
        o.append(np.array([[sv]]))

    for a in range(ncell):
        add(0, a, a, eps, 1.0)
        b, r = (a + 1) % ncell, (a + 1) // ncell  # right neighbour and its cell
        add(r, a, b, t, s)
        add(-r, b, a, t, s)
    return RealSpaceHamiltonian(atoms, basis, edges, h, o)


def _dimer_chain(delta=0.7, t=-1.0):
    """Two sites per cell (on-site +Δ, -Δ), equal hopping inside and across cells, orthogonal basis.

    H(k) = [[Δ, t(1 + e^{-2πik})], [c.c., -Δ]], so e = ±sqrt(Δ² + 4t² cos²(πk)): direct gap 2Δ at k = 1/2."""
    basis = OrbitalBasis(name="s", shells={"B": (0,), "N": (0,)}, valence={"B": 1, "N": 1})
    atoms = Atoms("BN", positions=[[0, 0, 0], [1.5, 0, 0]], cell=[3.0, 10.0, 10.0], pbc=[True, False, False])
    edges = [(0, 0, 0, 0, 0), (0, 0, 0, 1, 1), (0, 0, 0, 0, 1), (0, 0, 0, 1, 0), (1, 0, 0, 1, 0), (-1, 0, 0, 0, 1)]
    h = [[[delta]], [[-delta]], [[t]], [[t]], [[t]], [[t]]]
    o = [[[1.0]], [[1.0]], [[0.0]], [[0.0]], [[0.0]], [[0.0]]]
    return RealSpaceHamiltonian(atoms, basis, edges, [np.array(b) for b in h], [np.array(b) for b in o])


def _graphene(t=-2.7):
    """One orbital per C (s-only basis), nearest-neighbour hopping, orthogonal basis: Dirac cone at K."""
    atoms = graphene(a=2.46, vacuum=5.0)
    basis = OrbitalBasis(name="s", shells={"C": (0,)}, valence={"C": 1})
    nl = neighbor_list(atoms, 1.5, self_edges=True)
    edges = np.column_stack([nl.shifts, nl.i, nl.j])
    h = [np.array([[0.0 if i == j and not s.any() else t]]) for i, j, s in zip(nl.i, nl.j, nl.shifts)]
    o = [np.array([[1.0 if i == j and not s.any() else 0.0]]) for i, j, s in zip(nl.i, nl.j, nl.shifts)]
    return RealSpaceHamiltonian(atoms, basis, edges, h, o)


def _random_model(rng):
    """A Hermitian non-orthogonal model: atom 0 with s+p shells, atom 1 with s, hoppings to R = 0, ±x, ±y."""
    basis = OrbitalBasis(name="sp", shells={"C": (0, 1), "H": (0,)}, valence={"C": 4, "H": 1})
    atoms = Atoms("CH", positions=[[0, 0, 0], [1.1, 0.3, 0]], cell=[2.5, 2.7, 12.0], pbc=[True, True, False])
    norb = [4, 1]
    edges, h, o = [], [], []

    def add(r, i, j, hb, sb):
        edges.append((*r, i, j))
        h.append(hb)
        o.append(sb)
        if r != (0, 0, 0) or i != j:
            edges.append((-r[0], -r[1], -r[2], j, i))
            h.append(hb.T.copy())
            o.append(sb.T.copy())

    for i in range(2):
        a = rng.normal(size=(norb[i], norb[i]))
        b = 0.05 * rng.normal(size=(norb[i], norb[i]))
        add((0, 0, 0), i, i, a + a.T, np.eye(norb[i]) + b + b.T)
    add((0, 0, 0), 0, 1, rng.normal(size=(4, 1)), 0.1 * rng.normal(size=(4, 1)))
    for r in [(1, 0, 0), (0, 1, 0), (1, 1, 0)]:
        for i in range(2):
            for j in range(2):
                add(r, i, j, rng.normal(size=(norb[i], norb[j])), 0.05 * rng.normal(size=(norb[i], norb[j])))
    ham = RealSpaceHamiltonian(atoms, basis, edges, h, o)
    assert ham.hermiticity_error() == 0.0
    return ham


def _mesh(n1, n2=1):
    g = np.stack(np.meshgrid(np.arange(n1) / n1, np.arange(n2) / n2, [0.0], indexing="ij"), -1)
    return g.reshape(-1, 3)


# -- Bloch sums and eigensolvers ------------------------------------------------------------------------------------
def test_sparse_bloch_equals_dense(rng):
    ham = _random_model(rng)
    kpts = np.vstack([_mesh(3, 3), rng.uniform(-1, 1, size=(4, 3))])
    hk, sk = bloch_dense(ham, kpts)
    asm = el.BlochAssembler(ham)
    for n, k in enumerate(kpts):
        h, s = asm.at(k)
        assert isinstance(h, sp.csr_matrix) and np.iscomplexobj(h.data)
        assert np.abs(h.toarray() - hk[n]).max() < 1e-12 and np.abs(s.toarray() - sk[n]).max() < 1e-12
    h, s = el.bloch_sparse(ham, kpts[-1])
    assert np.allclose(h.toarray(), hk[-1], atol=1e-12) and np.allclose(s.toarray(), sk[-1], atol=1e-12)
    # Image edges that land on the same element of a small cell are summed (1-atom chain: 3 edges -> 1 entry).
    h1, _ = el.bloch_sparse(_chain(), [0.1, 0, 0])
    assert h1.nnz == 1


def test_dense_solve_matches_analytic_chain_and_vectors():
    ham = _chain(t=-1.0, s=0.2)
    kpts = _line(10)
    sol = el.solve_k(ham, kpts, vectors=True)
    c = np.cos(2 * np.pi * kpts[:, 0])
    assert sol.energies.shape == (10, 1) and np.allclose(sol.weights, 0.1)
    assert np.allclose(sol.energies[:, 0], -2 * c / (1 + 0.4 * c), atol=1e-12)
    assert np.allclose(sol.energies, band_energies(ham, kpts), atol=1e-12)
    hk, sk = bloch_dense(ham, kpts)
    for n, v in enumerate(sol.vectors):
        assert np.allclose(v.conj().T @ sk[n] @ v, np.eye(1), atol=1e-12)


def test_sparse_shift_invert_matches_dense_on_supercell():
    ham = _chain(t=-1.0, s=0.2, ncell=300)
    assert ham.norb == 300
    asm = el.BlochAssembler(ham)
    kpts = np.array([[0.0, 0, 0], [0.37, 0, 0]])  # Γ (real path, degenerate pairs) and a generic k (complex)
    dense = el.solve_k(asm, kpts)
    sparse = el.solve_k(asm, kpts, sparse=True, n_bands=6, sigma=0.1, vectors=True)
    assert sparse.sparse and sparse.energies.shape == (2, 6)
    for n, k in enumerate(kpts):
        ref = dense.energies[n][np.argsort(np.abs(dense.energies[n] - 0.1))[:6]]
        assert np.allclose(np.sort(ref), sparse.energies[n], atol=1e-9)
        h, s = asm.at(k)
        c = sparse.vectors[n]
        assert np.abs(h @ c - (s @ c) * sparse.energies[n]).max() < 1e-8
        assert np.allclose(c.conj().T @ (s @ c), np.eye(6), atol=1e-8)
    # The dense path with sigma returns the same window.
    window = el.solve_k(asm, kpts, n_bands=6, sigma=0.1)
    assert np.allclose(window.energies, sparse.energies, atol=1e-9)


def test_sparse_path_is_automatic_above_threshold_and_stays_sparse(monkeypatch):
    ham = _chain(ncell=60)
    monkeypatch.setattr(el.solve, "SPARSE_THRESHOLD", 50)

    def no_dense(*args, **kwargs):
        raise AssertionError("the sparse path formed a dense matrix")

    monkeypatch.setattr(sp.csr_matrix, "toarray", no_dense)
    monkeypatch.setattr(sp.csc_matrix, "toarray", no_dense)
    sol = el.solve_k(ham, [[0.1, 0, 0]], n_bands=4, sigma=0.3)
    assert sol.sparse and sol.energies.shape == (1, 4)
    with pytest.raises(ValueError, match="sigma"):
        el.solve_k(ham, [[0.1, 0, 0]], n_bands=4)


# -- electrons, Fermi level, occupations ----------------------------------------------------------------------------
def test_electron_count_uses_valence_and_charge():
    ham = _random_model(np.random.default_rng(0))
    assert el.electron_count(ham) == 5
    ham.meta["settings"] = {"charge": 1}
    assert el.electron_count(ham) == 4


@pytest.mark.parametrize("smearing", SMEARINGS)
def test_half_filled_chain_fermi_level_zero_and_conserved(smearing):
    ham = _chain(t=-1.0, s=0.0)  # symmetric band: e(k + 1/2) = -e(k)
    sol = el.solve_k(ham, _line(16))
    n = el.electron_count(ham)
    assert n == 1
    mu = el.fermi_level(sol.energies, sol.weights, n, smearing=smearing, width=0.05)
    assert abs(mu) < 1e-6
    occ = el.occupations(sol.energies, mu, smearing, 0.05, weights=sol.weights, n_electrons=n)
    assert occ.min() >= 0 and occ.max() <= 2
    assert abs(sol.weights @ occ.sum(axis=1) - n) < 1e-9


@pytest.mark.parametrize("smearing", SMEARINGS)
def test_electron_conservation_on_random_model(rng, smearing):
    ham = _random_model(rng)
    kpts = _mesh(4, 3)
    weights = rng.uniform(0.5, 1.5, size=len(kpts))  # general weights
    sol = el.solve_k(ham, kpts, weights=weights)
    n = el.electron_count(ham)
    mu = el.fermi_level(sol.energies, weights, n, smearing=smearing, width=0.1)
    occ = el.occupations(sol.energies, mu, smearing, 0.1, weights=sol.weights, n_electrons=n)
    assert abs(sol.weights @ occ.sum(axis=1) - n) < 1e-9


def test_step_fermi_level_insulator_midgap_and_metal_on_level():
    e = np.array([[-3.0, -1.0, 2.0], [-2.5, -1.5, 1.0]])
    assert el.fermi_level(e, None, 4, smearing="none") == pytest.approx(0.0)  # midway between -1 and 1
    # 3 electrons fill -3, -2.5, -1.5 exactly (each level holds 2 x 1/2): mu midway to the next level, -1
    assert el.fermi_level(e, None, 3, smearing="none") == pytest.approx(-1.25)
    # 2.5 electrons end inside the level at -1.5: mu sits on it and it holds the remaining half electron
    mu = el.fermi_level(e, None, 2.5, smearing="none")
    assert mu == pytest.approx(-1.5)
    occ = el.occupations(e, mu, "none", weights=None, n_electrons=2.5)
    assert occ.tolist() == [[2.0, 0.0, 0.0], [2.0, 1.0, 0.0]]
    occ = el.occupations(e, el.fermi_level(e, None, 2.25, smearing="none"), "none", n_electrons=2.25)
    assert occ.tolist() == [[2.0, 0.0, 0.0], [2.0, 0.5, 0.0]]
    with pytest.raises(ValueError):
        el.fermi_level(e, None, 6, smearing="gaussian")


# -- band gap -------------------------------------------------------------------------------------------------------
def test_dimer_chain_gap_is_analytic_and_direct():
    delta, t = 0.7, -1.0
    ham = _dimer_chain(delta, t)
    kpts = _line(20)
    sol = el.solve_k(ham, kpts)
    k = kpts[:, 0]
    band = np.sqrt(delta**2 + 4 * t**2 * np.cos(np.pi * k) ** 2)
    assert np.allclose(sol.energies, np.stack([-band, band], 1), atol=1e-12)
    n = el.electron_count(ham)
    for smearing in SMEARINGS:
        mu = el.fermi_level(sol.energies, sol.weights, n, smearing=smearing, width=0.05)
        assert abs(mu) < 1e-6  # particle-hole symmetric spectrum
    gap = el.band_gap(sol.energies, kpts, el.fermi_level(sol.energies, sol.weights, n, smearing="none"))
    assert gap["gap"] == pytest.approx(2 * delta, abs=1e-12)
    assert gap["direct"] and not gap["metal"] and gap["direct_gap"] == pytest.approx(2 * delta, abs=1e-12)
    assert np.allclose(gap["k_vbm"], [0.5, 0, 0]) and np.allclose(gap["k_cbm"], [0.5, 0, 0])
    assert gap["vbm"] == pytest.approx(-delta) and gap["cbm"] == pytest.approx(delta)


def test_indirect_gap_and_metal():
    kpts = _line(3)
    e = np.array([[-1.0, 2.0], [-0.5, 1.8], [-2.0, 1.5]])
    g = el.band_gap(e, kpts, 0.0)
    assert g["gap"] == pytest.approx(2.0) and not g["direct"] and g["direct_gap"] == pytest.approx(2.3)
    assert np.allclose(g["k_vbm"], kpts[1]) and np.allclose(g["k_cbm"], kpts[2])
    g = el.band_gap(np.array([[-1.0, 2.0], [0.5, 1.5]]), kpts[:2], 0.0)  # band 0 crosses E_F
    assert g["metal"] and g["gap"] == 0.0


def test_graphene_dirac_point_zero_gap_fermi_zero():
    ham = _graphene()
    kpts = _mesh(6, 6)  # contains K = (1/3, 1/3) and K' = (2/3, 2/3)
    sol = el.solve_k(ham, kpts)
    iK = int(np.argmin(np.linalg.norm(kpts - [1 / 3, 1 / 3, 0], axis=1)))
    assert np.abs(sol.energies[iK]).max() < 1e-12
    assert sol.energies[0] == pytest.approx([-3 * 2.7, 3 * 2.7])  # Γ: ±3|t|
    n = el.electron_count(ham)
    assert n == 2
    for smearing in SMEARINGS:
        mu = el.fermi_level(sol.energies, sol.weights, n, smearing=smearing, width=0.05)
        assert abs(mu) < 1e-6
        assert el.band_gap(sol.energies, kpts, mu)["gap"] == 0.0


# -- density of states ----------------------------------------------------------------------------------------------
def test_dos_integrates_to_states_and_pdos_sums_to_dos(rng):
    ham = _random_model(rng)
    kpts = _mesh(3, 3)
    sol = el.solve_k(ham, kpts, vectors=True)
    lo, hi = sol.energies.min() - 2.0, sol.energies.max() + 2.0
    grid = np.linspace(lo, hi, 4001)
    total = el.dos(sol.energies, sol.weights, grid, width=0.1)
    assert _trapz(total, grid) == pytest.approx(2 * sol.nbands, rel=1e-6)
    for by, labels in [("atom", {0, 1}), ("element", {"C", "H"}), ("l", {"s", "p"})]:
        parts = el.projected_dos(sol, ham, grid, width=0.1, by=by)
        assert set(parts) == labels
        assert np.abs(sum(parts.values()) - total).max() < 1e-8
    # Mulliken weights of each band sum to 1.
    for m in el.mulliken_weights(sol, ham):
        assert np.allclose(m.sum(axis=0), 1.0, atol=1e-10)
    with pytest.raises(ValueError, match="vectors=True"):
        el.projected_dos(el.solve_k(ham, kpts), ham, grid)


# -- molecules ------------------------------------------------------------------------------------------------------
def test_molecular_orbitals_of_h2_like_dimer():
    alpha, t, s = -1.0, -2.0, 0.3
    basis = OrbitalBasis(name="s", shells={"H": (0,)}, valence={"H": 1})
    atoms = Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]])
    edges = [(0, 0, 0, 0, 0), (0, 0, 0, 1, 1), (0, 0, 0, 0, 1), (0, 0, 0, 1, 0)]
    h = [np.array([[alpha]]), np.array([[alpha]]), np.array([[t]]), np.array([[t]])]
    o = [np.array([[1.0]]), np.array([[1.0]]), np.array([[s]]), np.array([[s]])]
    ham = RealSpaceHamiltonian(atoms, basis, edges, h, o)
    mo = el.molecular_orbitals(ham)
    bonding, antibonding = (alpha + t) / (1 + s), (alpha - t) / (1 - s)
    assert np.allclose(mo["energies"], [bonding, antibonding], atol=1e-12)
    assert mo["homo"] == pytest.approx(bonding) and mo["lumo"] == pytest.approx(antibonding)
    assert mo["gap"] == pytest.approx(antibonding - bonding)
    assert mo["occupations"].tolist() == [2.0, 0.0] and mo["n_electrons"] == 2
    assert not np.iscomplexobj(mo["coefficients"]) and mo["coefficients"].shape == (2, 2)
    d = mo["density_matrix"]
    assert np.trace(d @ mo["overlap"]) == pytest.approx(2.0, abs=1e-12)
    assert np.allclose(d, d.T)
    with pytest.raises(StructureError):
        el.molecular_orbitals(_chain())


# -- large cells: supercells of a Hamiltonian, inertia counts, Fermi level without diagonalization ---------------
def test_supercell_of_a_hamiltonian_is_the_explicit_supercell():
    prim, explicit = _chain(ncell=1), _chain(ncell=5)
    sc = prim.supercell((5, 1, 1))
    assert len(sc.atoms) == 5 and np.allclose(sc.atoms.cell[:], explicit.atoms.cell[:])
    assert np.allclose(sc.atoms.positions, explicit.atoms.positions)
    got = {tuple(e): (h.item(), s.item()) for e, h, s in zip(sc.edges.tolist(), sc.hamiltonian, sc.overlap)}
    want = {tuple(e): (h.item(), s.item()) for e, h, s in zip(explicit.edges.tolist(), explicit.hamiltonian,
                                                              explicit.overlap)}
    assert got == want
    g = _graphene().supercell((3, 2, 1))
    assert g.hermiticity_error() == 0.0
    assert np.allclose(np.sort(band_energies(g, np.zeros((1, 3))).ravel()),
                       np.sort(band_energies(_graphene(), [[a / 3, b / 2, 0] for a in range(3) for b in range(2)]).ravel()))
    with pytest.raises(ValueError, match="periodic directions"):
        _chain().supercell((1, 2, 1))


@pytest.mark.parametrize("k", [(0.0, 0.0, 0.0), (0.13, 0.0, 0.0)])
def test_states_below_counts_eigenvalues(k):
    ham = _chain(s=0.2, ncell=7)
    e = el.solve_k(ham, [k]).energies[0]
    for x in np.linspace(e.min() - 0.5, e.max() + 0.5, 9):
        assert el.states_below(ham, k, x) == int((e < x).sum())


def test_sparse_fermi_level_equals_the_dense_one():
    dimers = _dimer_chain(delta=0.7).supercell((15, 1, 1))  # insulator: gap 1.4 eV at the zone boundary
    e = el.solve_k(dimers, np.zeros((1, 3))).energies
    res = el.sparse_fermi_level(dimers, n_bands=4, guess=5.0)
    nel = el.electron_count(dimers)
    assert res["fermi_level"] == pytest.approx(el.fermi_level(e, None, nel, "none"), abs=1e-9)
    assert res["homo"] == pytest.approx(e[0][nel // 2 - 1]) and res["lumo"] == pytest.approx(e[0][nel // 2])
    # A guess inside the window: one window checked by two more counts (SuperLU: + ARPACK's own LU)
    quick = el.sparse_fermi_level(dimers, n_bands=8, guess=0.1)
    assert quick["homo"] == pytest.approx(res["homo"], abs=1e-9) and quick["lumo"] == pytest.approx(res["lumo"])
    assert quick["factorizations"] <= 4 < res["factorizations"]
    dirac = _graphene().supercell((3, 3, 1))  # K folds onto Γ: a degenerate, half-filled level at E_F
    e = el.solve_k(dirac, np.zeros((1, 3))).energies
    res = el.sparse_fermi_level(dirac, n_bands=4)
    assert res["fermi_level"] == pytest.approx(el.fermi_level(e, None, 18, "none"), abs=1e-9)
    assert res["homo"] == pytest.approx(res["lumo"], abs=1e-9)


def test_sparse_fermi_level_rejects_a_window_that_misses_a_degenerate_copy(monkeypatch):
    """Lanczos can return 3 of 4 degenerate copies plus a spurious value: the inertia count must catch it."""
    dirac = _graphene().supercell((3, 3, 1))
    real = el.solve.sparse_eigs
    calls = []

    def flaky(asm, k, sigma, nb, want, seed=0, factor=None):
        e, v = real(asm, k, sigma, nb, want, seed, factor)
        calls.append(seed)
        if seed == 0:  # first try: drop one copy of the level nearest sigma, add a spurious one
            e = np.sort(np.append(np.delete(e, np.argmin(np.abs(e - sigma))), sigma - 0.73))
        return e, v

    monkeypatch.setattr(el.solve, "sparse_eigs", flaky)
    res = el.sparse_fermi_level(dirac, n_bands=4)
    assert res["fermi_level"] == pytest.approx(0.0, abs=1e-9) and 1 in calls
    monkeypatch.setattr(el.solve, "sparse_eigs", lambda *a, **kw: flaky(*a, **{**kw, "seed": 0}))
    with pytest.raises(np.linalg.LinAlgError, match="inertia count"):
        el.sparse_fermi_level(dirac, n_bands=4)


@pytest.mark.parametrize("backend", ["superlu", "pardiso"])
def test_sparse_backends_count_and_solve_alike(backend, monkeypatch):
    """Both factorizations give the exact inertia, and shift-invert through either gives the dense levels."""
    from tracegrad_ase.electronic import sparse_factor

    if backend == "pardiso" and not sparse_factor.pardiso_available():
        pytest.skip("pypardiso (the optional [large] extra) is not installed")
    monkeypatch.setenv(sparse_factor.ENV_VAR, backend)
    ham = _chain(s=0.2, ncell=9)
    e = el.solve_k(ham, [(0.0, 0.0, 0.0)]).energies[0]
    for x in np.linspace(e.min() - 0.5, e.max() + 0.5, 7):
        factor = el.shifted_factorization(ham, (0, 0, 0), x)
        assert factor.backend == backend and factor.negative == int((e < x).sum())
        factor.close()
    window = el.solve_k(ham, [(0.0, 0.0, 0.0)], sparse=True, sigma=0.1, n_bands=4).energies[0]
    assert np.allclose(window, np.sort(e[np.argsort(np.abs(e - 0.1))[:4]]), atol=1e-10)
    dirac = _graphene().supercell((3, 3, 1))
    assert el.sparse_fermi_level(dirac, n_bands=4)["fermi_level"] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(np.linalg.LinAlgError, match="eigenvalue"):
        el.shifted_factorization(dirac, (0, 0, 0), 0.0)  # the Dirac level itself: singular


def test_sparse_backend_choice_is_checked(monkeypatch):
    from tracegrad_ase.electronic import sparse_factor

    monkeypatch.setenv(sparse_factor.ENV_VAR, "umfpack")
    with pytest.raises(ValueError, match="unknown sparse backend 'umfpack'"):
        el.states_below(_chain(), (0, 0, 0), 0.0)
    monkeypatch.setenv(sparse_factor.ENV_VAR, "pardiso")
    with pytest.raises(ValueError, match="real matrices only"):
        el.states_below(_chain(), (0.13, 0, 0), 0.0)  # complex H(k)
    monkeypatch.setenv(sparse_factor.ENV_VAR, "auto")
    assert el.states_below(_chain(ncell=3), (0.13, 0, 0), 10.0) == 3  # complex: SuperLU under auto
