"""Band unfolding in the non-orthogonal atomic-orbital basis (issue 17, item 1): a perfect supercell unfolds onto
exactly the primitive bands, weights obey the sum rule and stay in [0, 1] for defective cells, the sparse path
agrees with the dense one, and cells that are not a multiple of the primitive one are refused."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from tracegrad_ase.core.basis import OrbitalBasis
from tracegrad_ase.core.errors import MismatchError, ParameterError, StructureError
from tracegrad_ase.core.hamiltonian import RealSpaceHamiltonian
from tracegrad_ase.electronic import band_energies
from tracegrad_ase.electronic.unfolding import METHODS, supercell_map, unfold

PATH = [[0.0, 0.0, 0.0], [0.1, 0.23, 0.0], [0.5, 0.0, 0.0], [1 / 3, 1 / 3, 0.0], [0.37, -0.19, 0.0]]


def toy2d(seed: int = 0) -> RealSpaceHamiltonian:
    """An oblique 2-D cell of B (s + p) and N (s): random H(R) and S(R) (S positive definite, off-diagonal
    overlaps up to ~0.1) on every pair within 3.2 Å, Hermitian (H_ji(-R) = H_ij(R)^T)."""
    rng = np.random.default_rng(seed)
    basis = OrbitalBasis(name="toy", shells={"B": (0, 1), "N": (0,), "C": (0, 1)}, valence={"B": 3, "N": 1, "C": 4})
    atoms = Atoms("BN", positions=[[0.1, 0.2, 3.0], [1.3, 0.9, 3.0]], cell=[[2.2, 0, 0], [0.7, 2.4, 0], [0, 0, 8]],
                  pbc=[True, True, False])
    norb, pos, cell = [basis.norb(z) for z in atoms.numbers], atoms.positions, atoms.cell[:]
    blocks: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
    for rx in range(-2, 3):
        for ry in range(-2, 3):
            for i in range(2):
                for j in range(2):
                    d = float(np.linalg.norm(pos[j] + np.array([rx, ry, 0]) @ cell - pos[i]))
                    key, partner = (rx, ry, 0, i, j), (-rx, -ry, 0, j, i)
                    if d > 3.2:
                        continue
                    if partner in blocks:
                        h, s = blocks[partner]
                        blocks[key] = (h.T, s.T)
                    elif key == partner:
                        a = rng.normal(size=(norb[i], norb[i]))
                        blocks[key] = (a + a.T + np.diag(3.0 * rng.normal(size=norb[i])), np.eye(norb[i]))
                    else:
                        blocks[key] = (rng.normal(size=(norb[i], norb[j])) * np.exp(-d),
                                       rng.normal(size=(norb[i], norb[j])) * 0.08 * np.exp(-d / 2))
    keys = list(blocks)
    return RealSpaceHamiltonian(atoms, basis, keys, [blocks[k][0] for k in keys], [blocks[k][1] for k in keys],
                                meta={"fermi_level_ev": 0.0})


def general_supercell(prim: RealSpaceHamiltonian, matrix) -> RealSpaceHamiltonian:
    """The primitive blocks on ``ase.build.make_supercell(prim.atoms, matrix)`` (any integer matrix)."""
    from ase.build import make_supercell

    m = np.asarray(matrix, dtype=np.int64)
    atoms = make_supercell(prim.atoms, m)
    cmap = supercell_map(atoms, prim.atoms)
    where = {}
    minv = np.linalg.inv(m.astype(float))
    for i, (a, t) in enumerate(zip(cmap.site, cmap.shift)):
        where[(int(a), *np.round(np.mod(t @ minv, 1.0), 6) % 1.0)] = (i, t)
    edges, h, s = [], [], []
    for i, (a, t) in enumerate(zip(cmap.site, cmap.shift)):
        for n, (rx, ry, rz, pa, pb) in enumerate(prim.edges):
            if pa != a:
                continue
            target = t + np.array([rx, ry, rz])
            j, tj = where[(int(pb), *np.round(np.mod(target @ minv, 1.0), 6) % 1.0)]
            shift = np.round((target - tj) @ minv).astype(np.int64)
            edges.append((*shift, i, j))
            h.append(prim.hamiltonian[n])
            s.append(prim.overlap[n])
    return RealSpaceHamiltonian(atoms, prim.basis, edges, h, s, dict(prim.meta))


def remove_atom(ham: RealSpaceHamiltonian, n: int) -> RealSpaceHamiltonian:
    """A vacancy: atom n and its edges removed."""
    keep = (ham.edges[:, 3] != n) & (ham.edges[:, 4] != n)
    edges = ham.edges[keep].copy()
    edges[:, 3:] -= edges[:, 3:] > n
    atoms = ham.atoms.copy()
    del atoms[n]
    return RealSpaceHamiltonian(atoms, ham.basis, edges, [h for h, k in zip(ham.hamiltonian, keep) if k],
                                [s for s, k in zip(ham.overlap, keep) if k], dict(ham.meta))


def perturbed(ham: RealSpaceHamiltonian, rng, amp: float = 0.3) -> RealSpaceHamiltonian:
    """Every block changed at random (H by ~amp eV, S by ~amp/10), Hermiticity kept: no translation symmetry."""
    idx = ham.index()
    h, s = list(ham.hamiltonian), list(ham.overlap)
    for (rx, ry, rz, i, j), n in idx.items():
        m = idx[(-rx, -ry, -rz, j, i)]
        if n > m:
            continue
        dh, ds = amp * rng.normal(size=h[n].shape), 0.1 * amp * rng.normal(size=s[n].shape)
        if n == m:
            dh, ds = dh + dh.T, 0.0 * ds
        h[n], s[n] = h[n] + dh, s[n] + ds
        if n != m:
            h[m], s[m] = h[m] + dh.T, s[m] + ds.T
    return RealSpaceHamiltonian(ham.atoms.copy(), ham.basis, ham.edges, h, s, dict(ham.meta))


def folding_partners(k, matrix) -> np.ndarray:
    """The N = |det M| primitive k (mod 1) that fold onto the same supercell K = k M^T."""
    minv_t = np.linalg.inv(np.asarray(matrix, float)).T
    n = int(round(abs(np.linalg.det(matrix))))
    out: list[np.ndarray] = []
    for a in range(n):
        for b in range(n):
            kj = np.mod(np.asarray(k, float) + np.array([a, b, 0]) @ minv_t, 1.0)
            if not any(np.allclose(kj, o) for o in out):
                out.append(kj)
    assert len(out) == n
    return np.array(out)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("matrix", [np.diag([2, 2, 1]), np.diag([3, 1, 1]), [[1, 1, 0], [-1, 1, 0], [0, 0, 1]]])
def test_perfect_supercell_unfolds_onto_exactly_the_primitive_bands(matrix, method):
    prim = toy2d()
    sc = general_supercell(prim, matrix)
    ub = unfold(sc, prim.atoms, path=PATH, method=method)
    n = int(round(abs(np.linalg.det(matrix))))
    assert np.array_equal(ub.matrix, np.asarray(matrix))
    assert ub.energies.shape == ub.weights.shape == (len(PATH), sc.norb)
    assert np.allclose(ub.supercell_kpts, np.asarray(PATH) @ np.asarray(matrix).T)
    prim_e = band_energies(prim, ub.kpts)
    for e, w, ep in zip(ub.energies, ub.weights, prim_e):
        on_band = np.min(np.abs(e[:, None] - ep[None, :]), axis=1) < 1e-8
        assert on_band.sum() >= len(ep) and np.abs(w[~on_band]).max(initial=0.0) < 1e-8
        for level in ep:  # the weight at each primitive level is its multiplicity (degenerate levels share it)
            mult = np.sum(np.abs(ep - level) < 1e-8)
            assert abs(w[np.abs(e - level) < 1e-8].sum() - mult) < 1e-8
        assert abs(w.sum() - len(ep)) < 1e-8  # norb_p primitive bands: total weight norb_sc / N
    assert abs(ub.weights.sum() - len(PATH) * sc.norb / n) < 1e-8


@pytest.mark.parametrize("method", METHODS)
def test_sum_rule_over_the_folded_k_of_a_defective_cell(method, rng):
    prim = toy2d()
    sc = perturbed(remove_atom(prim.supercell((2, 3, 1)), 3), rng)
    sc.atoms.positions += 0.1 * rng.normal(size=sc.atoms.positions.shape)  # rattled, off the ideal sites
    ks = folding_partners([0.13, 0.41, 0.0], np.diag([2, 3, 1]))
    ub = unfold(sc, prim.atoms, path=ks, method=method)
    assert np.ptp(ub.energies, axis=0).max() < 1e-12  # one K: the same levels
    assert np.abs(ub.weights.sum(axis=0) - 1.0).max() < 1e-10
    assert ub.weights.max() < 0.99  # no translation symmetry left: no level belongs to one k
    if method == "lowdin":
        assert ub.weights.min() >= -1e-12


@pytest.mark.parametrize("method", METHODS)
def test_sparse_window_agrees_with_the_dense_levels(method, rng):
    prim = toy2d()
    sc = perturbed(remove_atom(prim.supercell((4, 4, 1)), 3), rng)
    dense = unfold(sc, prim.atoms, path=PATH[:3], method=method, n_bands=10, sigma=0.3)
    sparse = unfold(sc, prim.atoms, path=PATH[:3], method=method, n_bands=10, sigma=0.3, sparse=True)
    assert sparse.sparse and not dense.sparse
    default = [unfold(sc, prim.atoms, path=PATH[:1], n_bands=4, sigma=0.3, sparse=flag).method for flag in (0, 1)]
    assert default == ["lowdin", "mulliken"]  # Mulliken where S^1/2 would cost a factorization per k
    assert np.abs(dense.energies - sparse.energies).max() < 1e-9
    assert np.abs(dense.weights - sparse.weights).max() < 1e-8


def test_substitutions_take_their_sites_orbitals():
    """A C on a B site (same shells) with the B blocks: the crystal's H and S are unchanged, so are the weights;
    a B on an N site (4 orbitals for 1) is refused."""
    prim = toy2d()
    sc = prim.supercell((2, 2, 1))
    alloy = RealSpaceHamiltonian(sc.atoms.copy(), sc.basis, sc.edges, sc.hamiltonian, sc.overlap, dict(sc.meta))
    alloy.atoms.numbers[2] = 6
    assert np.allclose(unfold(alloy, prim.atoms, path=PATH).weights, unfold(sc, prim.atoms, path=PATH).weights,
                       atol=1e-12)
    wrong = sc.atoms.copy()
    wrong.numbers[1] = 5  # B on the N site
    wrong.positions[1] += [0.05, 0.0, 0.0]
    assert supercell_map(wrong, prim.atoms).site[1] == 1
    swapped = RealSpaceHamiltonian(sc.atoms.copy(), sc.basis, [], [], [])
    swapped.atoms.numbers[1] = 5
    with pytest.raises(StructureError, match="substitutes a N site"):
        unfold(swapped, prim.atoms, path=PATH[:1])


def test_cells_that_are_not_a_multiple_are_refused():
    prim = toy2d()
    sc = prim.supercell((2, 2, 1))
    strained = prim.atoms.copy()
    strained.set_cell(prim.atoms.cell[:] * [1.03, 1.0, 1.0], scale_atoms=True)
    with pytest.raises(MismatchError, match="not an integer multiple"):
        unfold(sc, strained)
    thick = prim.atoms.copy()
    thick.cell[2] *= 0.5  # two copies of the slab along the vacuum direction
    with pytest.raises(MismatchError, match="non-periodic"):
        supercell_map(sc.atoms, thick)
    moved = sc.atoms.copy()
    moved.positions[2] += [0.6, 0.6, 0.0]  # an interstitial
    with pytest.raises(StructureError, match="atom 2 .* no site"):
        supercell_map(moved, prim.atoms)
    with pytest.raises(ParameterError, match="method"):
        unfold(sc, prim.atoms, method="pz")


def test_path_strings_labels_and_spectral_function(tmp_path):
    prim = toy2d()
    ub = unfold(prim.supercell((2, 1, 1)), prim.atoms, path=[[0, 0, 0], [0.5, 0, 0], [0.5, 0.5, 0]],
                labels=["G", "X", "S"])
    assert ub.labels == ["G", "X", "S"] and len(ub.special_x) == 3 and ub.x[0] == 0.0 and np.all(np.diff(ub.x) > 0)
    grid = np.linspace(ub.energies.min() - 1, ub.energies.max() + 1, 4000)
    a = ub.spectral_function(grid, sigma=0.05)
    # ∫ A dE = total weight: norb_p primitive bands at every k
    assert np.allclose(a.sum(axis=1) * (grid[1] - grid[0]), 5.0, atol=1e-3)
    ax = ub.plot(path=tmp_path / "u.png", emin=-3, emax=3)
    assert (tmp_path / "u.png").stat().st_size > 1000 and ax.get_ylabel().startswith("E")


def test_defective_graphene_with_the_carbon_model_smears_the_dirac_cone():
    """A 4x4 graphene cell with a vacancy and a rattle, predicted by the shipped carbon model: weights in [0, 1],
    and at K the Dirac weight is shared among several levels instead of sitting on two."""
    from ase.build import graphene

    from tracegrad_ase.calculator import TraceGradCalculator
    from tracegrad_ase.electronic.solve import PREDICTED_LINDEP

    prim = graphene(a=2.46, vacuum=5.0)
    prim.pbc = [True, True, False]
    sc = prim.repeat((4, 4, 1))
    del sc[5]
    sc.rattle(0.05, seed=3)
    calc = TraceGradCalculator("carbon", kpts=(1, 1, 1), fermi_kpts=(2, 2, 1))
    sc.calc = calc
    ub = calc.unfold(prim, path=[[1 / 3, 1 / 3, 0.0], [0.25, 0.25, 0.0]])  # K, and a point between Γ and K
    ef = calc.get_fermi_level()
    assert ub.fermi_level == ef and ub.matrix.tolist() == [[4, 0, 0], [0, 4, 0], [0, 0, 1]]
    ref = unfold(calc.asm, prim, path=ub.kpts, fermi_level=ef, lindep=PREDICTED_LINDEP)
    assert np.array_equal(ref.weights, ub.weights)  # the calculator's lindep (1e-2), not the exact-H default
    assert ub.weights.min() >= -1e-12 and ub.weights.max() <= 1 + 1e-8
    assert ub.weights.max() < 0.99  # the perfect cell: weights exactly 1 (and 0)
    e, w = ub.energies[0], ub.weights[0]
    dirac = e[np.argmax(np.where(np.abs(e - ef) < 3.0, w, 0.0))]
    shared = (np.abs(e - dirac) < 1.5) & (w > 0.01) & (w < 0.99)
    assert shared.sum() >= 3  # the Dirac weight at K spread over several levels


def test_cli_bands_unfold_writes_the_image_and_weights(tmp_path, carbon, capsys):
    """``tracegrad bands SUPERCELL --unfold PRIMITIVE`` with a toy carbon model on a 2x2 graphene cell with a
    vacancy: with every level kept, the weights at each k add up to the orbitals present over N (7 atoms x 4
    orbitals / 4 cells), whatever H is; a cell that is no multiple is refused (exit 2) before the model runs."""
    import json

    from ase.build import graphene
    from ase.io import write

    from tracegrad_ase.cli import main

    prim = graphene(a=2.46, vacuum=5.0)
    prim.pbc = [True, True, False]
    sc = prim.repeat((2, 2, 1))
    del sc[3]
    write(tmp_path / "prim.xyz", prim, format="extxyz")
    write(tmp_path / "sc.xyz", sc, format="extxyz")
    out, js = tmp_path / "unfold.png", tmp_path / "unfold.json"
    rc = main(["bands", str(tmp_path / "sc.xyz"), "--unfold", str(tmp_path / "prim.xyz"), "--model", str(carbon),
               "--mesh", "3x3x1", "--density", "4", "-o", str(out), "--json", str(js)])
    assert rc == 0, capsys.readouterr().err
    data = json.loads(js.read_text())
    w = np.array(data["weights"])
    assert data["supercell_matrix"] == [[2, 0, 0], [0, 2, 0], [0, 0, 1]]
    assert {"\\Gamma", "M", "K"} <= set(data["labels"])
    assert w.shape == np.array(data["energies_ev"]).shape and w.min() >= -1e-12 and w.max() <= 1 + 1e-8
    assert np.allclose(w.sum(axis=1), 7.0, atol=1e-8)
    assert out.stat().st_size > 1000 and "unfolded onto C2" in capsys.readouterr().out
    wrong = prim.copy()
    wrong.set_cell(prim.cell[:] * [1.1, 1.1, 1.0], scale_atoms=True)
    write(tmp_path / "wrong.xyz", wrong, format="extxyz")
    rc = main(["bands", str(tmp_path / "sc.xyz"), "--unfold", str(tmp_path / "wrong.xyz"), "--model", str(carbon),
               "-o", str(tmp_path / "x.png")])
    assert rc == 2 and "not an integer multiple" in capsys.readouterr().err and not (tmp_path / "x.png").exists()
