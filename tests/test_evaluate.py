"""Model evaluation: metrics that are exactly known for data made from the model's own prediction."""

import hashlib
import json
import math
import os

import numpy as np
import pytest
import scipy.linalg
import torch
from ase import Atoms
from ase.build import molecule

from tracegrad_ase.core.basis import OrbitalBasis
from tracegrad_ase.electronic import bloch_dense
from tracegrad_ase.io.h5 import load_h5, save_h5
from tracegrad_ase.core.graphs import neighbor_list
from tracegrad_ase.core.hamiltonian import RealSpaceHamiltonian
from tracegrad_ase.model import ModelConfig, build_model
from tracegrad_ase.model.checkpoint import save_model
from tracegrad_ase.model.data import reverse_index
from tracegrad_ase.model.evaluate import (default_kpoints, evaluate, evaluate_to_files, parity_plot,
                                          predict_for)

DELTA = 0.05  # eV added to every on-site diagonal element of the "truth"


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    basis = OrbitalBasis.from_pyscf("sto-3g", ["H", "O"])
    cfg = ModelConfig(elements=["H", "O"], basis=basis.to_dict(), cutoff=4.0, num_layers=1,
                      muls=[4, 2, 2, 2, 2], tg_hidden=8, tg_z=4)
    return build_model(cfg, torch.float64)


def _initial(model, atoms, edges, offsite_overlap, seed=0):
    """A Hamiltonian on ``edges`` with random symmetric H, identity on-site S and small off-site S (pairs
    consistent: S_ji(-R) = S_ij(R)^T), to be replaced by the model's prediction."""
    rng = np.random.default_rng(seed)
    basis = model.basis
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 5)
    rev = reverse_index(edges)
    norb = [basis.norb(z) for z in atoms.numbers]
    h, s = [None] * len(edges), [None] * len(edges)
    for e, (_, _, _, i, j) in enumerate(edges):
        m = rev[e]
        if m == e:  # on-site
            a = rng.normal(size=(norb[i], norb[i]))
            h[e], s[e] = a + a.T, np.eye(norb[i])
        elif e < m:
            h[e] = rng.normal(size=(norb[i], norb[j]))
            s[e] = offsite_overlap * rng.uniform(-1, 1, size=(norb[i], norb[j]))
            h[m], s[m] = h[e].T.copy(), s[e].T.copy()
    return RealSpaceHamiltonian(atoms=atoms, basis=basis, edges=edges, hamiltonian=h, overlap=s,
                                meta={"source": "test"})


def _water(model):
    atoms = molecule("H2O")  # O first, then two H; pbc False, no cell
    edges = [(0, 0, 0, i, j) for i in range(3) for j in range(3)]
    return predict_for(_initial(model, atoms, edges, offsite_overlap=0.05), model)


def _crystal(model, fermi: float | None = None):
    """H and O in a 2-D periodic cell (vacuum along z): on-site, in-cell and lattice-shift edges both ways."""
    atoms = Atoms("OH", positions=[[0.0, 0.0, 5.0], [1.2, 0.9, 5.3]], cell=[3.0, 3.2, 10.0],
                  pbc=[True, True, False])
    nl = neighbor_list(atoms, 3.3, self_edges=True)
    edges = np.column_stack([nl.shifts, nl.i, nl.j])
    assert np.abs(edges[:, :3]).max() >= 1  # lattice shifts are present
    pred = predict_for(_initial(model, atoms, edges, offsite_overlap=0.0, seed=1), model)
    if fermi is not None:
        pred.meta["fermi_level_ev"] = fermi
    return pred


def _shift_onsite(ham: RealSpaceHamiltonian, delta: float) -> RealSpaceHamiltonian:
    h = [b.copy() for b in ham.hamiltonian]
    for e, (rx, ry, rz, i, j) in enumerate(ham.edges):
        if rx == ry == rz == 0 and i == j:
            h[e] += delta * np.eye(len(h[e]))
    return RealSpaceHamiltonian(atoms=ham.atoms, basis=ham.basis, edges=ham.edges, hamiltonian=h,
                                overlap=ham.overlap, meta=dict(ham.meta))


@pytest.fixture(scope="module")
def data(model, tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    water = _water(model)
    return {
        "root": root,
        "water": water,
        "exact": [save_h5(water, root / "exact" / "structures" / "water.h5")],
        "shifted": [save_h5(_shift_onsite(water, DELTA), root / "shifted" / "structures" / "water.h5")],
    }


def test_predict_hamiltonian(model, data):
    water = data["water"]
    assert water.meta["source"] == "model"
    assert water.hermiticity_error() < 1e-12
    again = predict_for(load_h5(data["exact"][0]), model)
    assert np.array_equal(again.edges, water.edges)
    for a, b, s0, s1 in zip(again.hamiltonian, water.hamiltonian, again.overlap, water.overlap):
        assert a.shape == b.shape and np.abs(a - b).max() < 1e-12
        assert np.array_equal(s0, s1)  # S is copied, not learned
    assert max(np.abs(b).max() for b in water.hamiltonian) > 1e-3  # a non-trivial prediction


def test_self_evaluation_is_exact(model, data):
    r = evaluate(model, data["exact"], progress=False)
    assert r["n_structures"] == 1 and r["n_edges"] == 9 and r["n_molecules"] == 1
    # O (sto-3g: 1s 2s 2p) has 5 orbitals, H 1: 25 + 2*1 + 4*5 + 2*1 masked entries
    assert r["n_values"] == 49
    for key in ("mae_mev", "mae_onsite_mev", "mae_offsite_mev", "eig_mae_mev", "eig_occupied_mae_mev",
                "homo_lumo_gap_error_mev", "gauge_mae_mev", "band_mae_ef_mev", "homo_lumo_gap_error_full_mev",
                "band_mae_ef_full_mev"):
        assert r[key] <= 1e-9, key
    assert r["ghost_levels"] == 0
    assert set(r["mae_by_element_pair_mev"]) == {"H-H", "H-O", "O-O"}
    assert set(r["mae_by_degree_mev"]) == {"0", "1", "2"}
    assert max(r["mae_by_degree_mev"].values()) <= 1e-9
    assert r["eig_near_edges_mae_mev"] is None  # no crystal
    record = r["per_structure"][0]
    assert len(r["per_structure"]) == 1
    assert {k: record[k] for k in ("name", "mae_mev", "n_edges", "eig_mae_mev", "homo_lumo_gap_error_mev")} == {
        "name": "water", "mae_mev": r["mae_mev"], "n_edges": 9, "eig_mae_mev": r["eig_mae_mev"],
        "homo_lumo_gap_error_mev": r["homo_lumo_gap_error_mev"]}
    assert record["band_alignment"] == "vbm" and record["gauge_shift_ev"] == 0.0


def test_full_basis_figures_include_the_cut(model, data, monkeypatch):
    """Solved with the model's lindep on both sides, the truth judges itself exactly; against the truth's own
    full-basis levels (what PBE gives) the cut's shift of the gap shows: computed here by an independent canonical
    orthogonalization that keeps the overlap directions above lindep."""
    water = data["water"]
    hk, sk = (m[0].real for m in bloch_dense(water, np.zeros((1, 3))))
    s_vals, u = np.linalg.eigh(sk)
    lindep = float(s_vals.min() + 1e-9)  # drop the smallest overlap direction (7 orbitals, 5 occupied)
    monkeypatch.setattr(model, "model_file", {"metadata": {"lindep": lindep}}, raising=False)
    r = evaluate(model, data["exact"], progress=False)
    assert r["homo_lumo_gap_error_mev"] <= 1e-9 and r["band_mae_ef_mev"] <= 1e-9
    keep = s_vals >= lindep
    x = u[:, keep] / np.sqrt(s_vals[keep])
    e_cut = np.linalg.eigvalsh(x.T @ hk @ x)
    e_full = scipy.linalg.eigh(hk, sk, eigvals_only=True)
    expected = abs((e_cut[5] - e_cut[4]) - (e_full[5] - e_full[4])) * 1000.0  # 10 electrons: HOMO 4, LUMO 5
    assert expected > 1.0  # the cut matters here
    assert r["homo_lumo_gap_error_full_mev"] == pytest.approx(expected, rel=1e-6)
    assert r["per_structure"][0]["homo_lumo_gap_error_full_mev"] == pytest.approx(expected, rel=1e-6)
    assert r["band_mae_ef_full_mev"] > 1.0


def test_onsite_shift_known_errors(model, data):
    r = evaluate(model, data["shifted"], progress=False)
    d = DELTA * 1000.0
    # The error is DELTA on the 5 + 1 + 1 on-site diagonal entries and 0 elsewhere.
    assert r["mae_mev"] == pytest.approx(7 * d / 49, rel=1e-9)
    assert r["mae_onsite_mev"] == pytest.approx(7 * d / 27, rel=1e-9)  # on-site entries: 25 + 1 + 1
    assert r["mae_offsite_mev"] <= 1e-9
    pairs = r["mae_by_element_pair_mev"]
    assert pairs["O-O"] == pytest.approx(5 * d / 25, rel=1e-9)
    assert pairs["H-H"] == pytest.approx(2 * d / 4, rel=1e-9)  # two on-site H entries, two off-site
    assert pairs["H-O"] <= 1e-9
    # DELTA * identity on a shell of angular momentum l is a pure l = 0 component of norm DELTA * sqrt(2l+1).
    # Degree-0 components exist for the shell pairs with equal l: O-O 5 (s,s' x s,s' and p-p), O-H and H-O 2
    # each (4 edges), H-H 1 (4 edges incl. on-site): 5 + 8 + 4 = 17. Errors: O (1 + 1 + sqrt 3), 2 H: 1 each.
    deg = r["mae_by_degree_mev"]
    assert deg["0"] == pytest.approx(d * (4 + math.sqrt(3)) / 17, rel=1e-9)
    assert deg["1"] <= 1e-9 and deg["2"] <= 1e-9

    # eigenvalues: the generalized problem at Γ solved independently (S is positive definite here)
    water = data["water"]
    hk, sk = bloch_dense(water, np.zeros((1, 3)))
    e_pred = scipy.linalg.eigh(hk[0].real, sk[0].real, eigvals_only=True)
    e_true = scipy.linalg.eigh(hk[0].real + DELTA * np.eye(len(hk[0])), sk[0].real, eigvals_only=True)
    err = np.abs(e_pred - e_true) * 1000.0
    assert r["eig_mae_mev"] == pytest.approx(err.mean(), rel=1e-7)
    assert r["eig_occupied_mae_mev"] == pytest.approx(err[:5].mean(), rel=1e-7)  # 10 electrons, 5 levels
    gap_err = abs((e_pred[5] - e_pred[4]) - (e_true[5] - e_true[4])) * 1000.0
    assert r["homo_lumo_gap_error_mev"] == pytest.approx(gap_err, rel=1e-6, abs=1e-9)
    assert r["eig_mae_mev"] > 1.0


def test_crystal_eigenvalues(model, tmp_path):
    crystal = _crystal(model, fermi=None)
    exact = [save_h5(crystal, tmp_path / "a" / "structures" / "oh.h5")]
    shifted = [save_h5(_shift_onsite(crystal, DELTA), tmp_path / "b" / "structures" / "oh.h5")]
    r = evaluate(model, exact, progress=False)
    assert r["n_crystals"] == 1 and r["n_molecules"] == 0
    assert r["mae_mev"] <= 1e-9 and r["eig_mae_mev"] <= 1e-9 and r["eig_near_edges_mae_mev"] <= 1e-9
    assert r["homo_lumo_gap_error_mev"] is None and r["eig_occupied_mae_mev"] is None
    # S(k) = identity here, so DELTA on every on-site diagonal shifts every band by exactly DELTA.
    r = evaluate(model, shifted, kpts=[[0, 0, 0], [0.25, 0.1, 0.0], [0.5, 0.5, 0.0]], progress=False)
    assert r["eig_mae_mev"] == pytest.approx(DELTA * 1000.0, rel=1e-9)
    assert r["eig_near_edges_mae_mev"] == pytest.approx(DELTA * 1000.0, rel=1e-9)
    assert r["mae_offsite_mev"] <= 1e-9 and r["mae_onsite_mev"] > 0


def test_crystal_with_fermi_level_and_default_kpoints(model, tmp_path):
    k = default_kpoints([True, True, False])
    assert np.all(k[:, 2] == 0) and len(np.unique(k, axis=0)) == len(k) and np.all(k[0] == 0)
    assert len(default_kpoints([True, True, True])) == 5
    crystal = _crystal(model, fermi=0.0)
    path = save_h5(_shift_onsite(crystal, DELTA), tmp_path / "structures" / "oh.h5")
    r = evaluate(model, [path], progress=False)
    assert r["eig_mae_mev"] == pytest.approx(DELTA * 1000.0, rel=1e-9)
    assert r["eig_near_edges_mae_mev"] == pytest.approx(DELTA * 1000.0, rel=1e-9)


def test_error_by_distance_puts_a_known_error_in_its_bin(model, tmp_path):
    """DELTA added to every element of the O-H blocks at 1.53 Å (both directions, H stays Hermitian) lands in the
    1.50-1.75 Å row alone: MAE DELTA there, zero elsewhere, the whole error's share; the rows add up to the
    totals. Off-site S is zero here, so the gauge shift is 0 and gauge errors are the raw ones."""
    from tracegrad_ase.model.breakdowns import DISTANCE_BIN_ANGSTROM

    crystal = _crystal(model)
    pos = crystal.atoms.positions
    h = [b.copy() for b in crystal.hamiltonian]
    hit = 0
    for e, (rx, ry, rz, i, j) in enumerate(crystal.edges):
        d = np.linalg.norm(pos[j] + np.array([rx, ry, rz]) @ crystal.atoms.cell.array - pos[i])
        if 1.5 <= d < 1.75:
            h[e] += DELTA
            hit += 1
    assert hit == 2  # (O, H) and (H, O) in the home cell; no image is that close
    truth = RealSpaceHamiltonian(atoms=crystal.atoms, basis=crystal.basis, edges=crystal.edges, hamiltonian=h,
                                 overlap=crystal.overlap, meta=dict(crystal.meta))
    r = evaluate(model, [save_h5(truth, tmp_path / "structures" / "oh.h5")], progress=False)
    rows = r["gauge_error_by_distance"]
    assert rows[0]["from_angstrom"] == rows[0]["to_angstrom"] == 0.0  # on-site first
    assert rows[0]["n_edges"] == 2 and rows[0]["mae_mev"] <= 1e-9
    (row,) = [x for x in rows if x["from_angstrom"] == 1.5]
    assert row["to_angstrom"] == 1.5 + DISTANCE_BIN_ANGSTROM and row["n_edges"] == 2
    assert row["mae_mev"] == pytest.approx(DELTA * 1000.0, rel=1e-9)
    assert row["share_of_error"] == pytest.approx(1.0, rel=1e-9)
    assert all(x["mae_mev"] <= 1e-9 for x in rows if x is not row)
    assert sum(x["n_edges"] for x in rows) == r["n_edges"]
    assert sum(x["n_values"] for x in rows) == r["n_values"]
    weighted = sum(x["mae_mev"] * x["n_values"] for x in rows) / r["n_values"]
    assert weighted == pytest.approx(r["gauge_mae_mev"], rel=1e-9) and r["gauge_mae_mev"] > 1.0

def test_band_error_attribution_finds_the_group_that_is_wrong(model, tmp_path):
    """benchmarks/band_error_attribution.py on a truth that differs from the prediction only in the O-H blocks at
    1.53 Å: that group alone makes the whole band error and fixing it leaves none; every other group alone makes
    none and fixing it leaves the whole."""
    from conftest import benchmark_module

    attribution = benchmark_module("band_error_attribution")
    crystal = _crystal(model)
    pos, cell = crystal.atoms.positions, crystal.atoms.cell.array
    h = [b.copy() for b in crystal.hamiltonian]
    for e, (rx, ry, rz, i, j) in enumerate(crystal.edges):
        if i != j and np.linalg.norm(pos[j] + np.array([rx, ry, rz]) @ cell - pos[i]) < 2.0:
            h[e] += 0.2 * np.ones_like(h[e])
    truth = RealSpaceHamiltonian(atoms=crystal.atoms, basis=crystal.basis, edges=crystal.edges, hamiltonian=h,
                                 overlap=crystal.overlap, meta=dict(crystal.meta))
    row = attribution.attribute(model, save_h5(truth, tmp_path / "structures" / "oh.h5"))
    assert row["whole_mev"] > 10.0
    groups = row["groups"]
    assert groups["0-2 Å"]["alone_mev"] == pytest.approx(row["whole_mev"], rel=1e-9)
    assert groups["0-2 Å"]["fixed_mev"] <= 1e-6
    others = [g for g in groups if g != "0-2 Å"]
    assert "on-site" in others and "2-3 Å" in others
    for g in others:
        assert groups[g]["alone_mev"] <= 1e-6, g
        assert groups[g]["fixed_mev"] == pytest.approx(row["whole_mev"], rel=1e-9), g

def test_parity_plot(model, data, tmp_path):
    png = parity_plot(model, data["shifted"], tmp_path / "plots" / "parity.png", max_points=30, seed=1)
    assert png.is_file() and png.stat().st_size > 1000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_to_files(model, data, tmp_path):
    folder = save_model(model, tmp_path / "model")
    out = tmp_path / "out" / "metrics.json"
    png = tmp_path / "out" / "parity.png"
    result = evaluate_to_files(folder, data["shifted"], out, parity_png=png, progress=False)
    stored = json.loads(out.read_text())
    for key in ("mae_mev", "mae_onsite_mev", "mae_offsite_mev", "mae_by_element_pair_mev", "mae_by_degree_mev",
                "eig_mae_mev", "eig_occupied_mae_mev", "homo_lumo_gap_error_mev", "eig_near_edges_mae_mev",
                "n_structures", "n_edges", "n_values", "per_structure"):
        assert key in stored, key
    assert stored["mae_mev"] == pytest.approx(DELTA * 1000.0 / 7, rel=1e-9)
    assert stored["per_structure"][0]["name"] == "water"
    assert stored == json.loads(json.dumps(result))
    assert png.is_file() and png.stat().st_size > 1000
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]  # no temporary files left
    # Shipped results name no folder of the machine that made them, and say which weights they judged.
    assert stored["model"] == os.path.join("..", "model") and stored["parity_png"] == "parity.png"
    assert stored["model_sha256"] == hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


def test_basis_mismatch_is_refused(model, data):
    water = data["water"]
    other = OrbitalBasis(name="other", shells={"H": (0, 0), "O": (0, 0, 1)}, valence={"H": 1, "O": 8})
    norb = [other.norb(z) for z in water.atoms.numbers]
    blocks = [np.zeros((norb[i], norb[j])) for i, j in water.edges[:, 3:]]
    wrong = RealSpaceHamiltonian(atoms=water.atoms, basis=other, edges=water.edges, hamiltonian=blocks,
                                 overlap=blocks)
    with pytest.raises(ValueError, match="shells"):
        predict_for(wrong, model)


def test_old_predict_hamiltonian_order_warns_and_agrees(model, data):
    """The former model.evaluate.predict_hamiltonian(model, ham) is predict_for(ham, model), deprecated."""
    from tracegrad_ase.model.evaluate import predict_hamiltonian

    ham = load_h5(data["exact"][0])
    with pytest.warns(DeprecationWarning, match="predict_for"):
        old = predict_hamiltonian(model, ham)
    new = predict_for(ham, model)
    assert all(np.array_equal(a, b) for a, b in zip(old.hamiltonian, new.hamiltonian))
