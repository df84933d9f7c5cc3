"""The DeepH folder format: round trips, the on-disk layout DeepH-pack reads, and clear errors on bad folders."""

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from ase import Atoms
from e3nn import o3

from tracegrad_ase.core.basis import OrbitalBasis, shell_transform
from tracegrad_ase.electronic import band_energies
from tracegrad_ase.io.deeph import read_deeph, write_deeph
from tracegrad_ase.core.errors import DataFormatError
from tracegrad_ase.core.hamiltonian import RealSpaceHamiltonian

BASIS = OrbitalBasis(name="test", shells={"C": (0, 0, 1, 1, 2), "H": (0, 1)}, valence={"C": 4, "H": 1})


def make_ham(rng, symbols="CHC", fermi=-3.25) -> RealSpaceHamiltonian:
    """Random blocks with H_ji(-R) = H_ij(R)^T on all R in {-1,0,1}^3, and an overlap close to the identity."""
    cell = np.array([[4.0, 0.1, 0.0], [0.3, 4.5, 0.2], [-0.2, 0.4, 5.0]])
    atoms = Atoms(symbols, scaled_positions=rng.uniform(size=(len(symbols), 3)), cell=cell, pbc=True)
    norb = [BASIS.norb(z) for z in atoms.numbers]
    h, s = {}, {}
    for r in np.ndindex(3, 3, 3):
        R = tuple(int(x) - 1 for x in r)
        for i in range(len(atoms)):
            for j in range(len(atoms)):
                e, partner = R + (i, j), tuple(-x for x in R) + (j, i)
                if e in h:
                    continue
                hb = rng.normal(size=(norb[i], norb[j]))
                sb = 0.002 * rng.normal(size=(norb[i], norb[j]))
                if e == partner:  # on-site: symmetric, S near the identity
                    hb, sb = hb + hb.T, np.eye(norb[i]) + sb + sb.T
                h[e], s[e] = hb, sb
                h[partner], s[partner] = hb.T, sb.T
    edges = list(h)
    return RealSpaceHamiltonian(atoms=atoms, basis=BASIS, edges=np.array(edges),
                                hamiltonian=[h[e] for e in edges], overlap=[s[e] for e in edges],
                                meta={"fermi_level_ev": fermi})


@pytest.fixture
def ham(rng):
    return make_ham(rng)


def _blocks(h: RealSpaceHamiltonian):
    return {e: (h.hamiltonian[n], h.overlap[n]) for e, n in h.index().items()}


def test_round_trip(tmp_path, ham):
    assert ham.hermiticity_error() < 1e-14
    back = read_deeph(write_deeph(ham, tmp_path / "s0"))
    assert list(back.atoms.numbers) == list(ham.atoms.numbers)
    assert np.abs(back.atoms.get_positions() - ham.atoms.get_positions()).max() < 1e-12
    assert np.abs(back.atoms.cell[:] - ham.atoms.cell[:]).max() < 1e-12
    assert back.atoms.pbc.all()
    assert dict(back.basis.shells) == dict(BASIS.shells) and back.basis.name == "deeph"
    assert dict(back.basis.valence) == {"C": 4, "H": 1}  # recorded by our writer, not the nuclear charge
    assert read_deeph(tmp_path / "s0", basis_name="mine").basis.name == "mine"
    assert back.meta["fermi_level_ev"] == -3.25
    a, b = _blocks(ham), _blocks(back)
    assert set(a) == set(b)
    for e in a:
        assert np.abs(a[e][0] - b[e][0]).max() < 1e-12 and np.abs(a[e][1] - b[e][1]).max() < 1e-12


def test_single_atom_round_trip(tmp_path, rng):
    ham = make_ham(rng, symbols="C")
    back = read_deeph(write_deeph(ham, tmp_path / "one"))
    assert np.abs(back.atoms.get_positions() - ham.atoms.get_positions()).max() < 1e-12
    assert len(back.edges) == len(ham.edges)


def test_eigenvalues_survive_round_trip(tmp_path, ham, rng):
    kpts = np.vstack([[0, 0, 0], [0.5, 0, 0], rng.uniform(-0.5, 0.5, size=(4, 3))])
    before = band_energies(ham, kpts)
    after = band_energies(read_deeph(write_deeph(ham, tmp_path / "s0")), kpts)
    assert np.abs(before - after).max() < 1e-9


def test_layout_matches_deeph_pack(tmp_path, ham):
    folder = write_deeph(ham, tmp_path / "s0")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["element.dat", "lat.dat", "rlat.dat", "site_positions.dat", "orbital_types.dat", "info.json",
         "hamiltonians.h5", "overlaps.h5"])
    cell = np.asarray(ham.atoms.cell[:])
    lat = np.loadtxt(folder / "lat.dat")
    assert np.abs(lat.T - cell).max() < 1e-14  # columns are the lattice vectors (data.py reads it with .T)
    rlat = np.loadtxt(folder / "rlat.dat")
    assert np.abs(lat.T @ rlat - 2 * np.pi * np.eye(3)).max() < 1e-12  # a_i . b_j = 2π δ_ij, b_j as columns
    pos = np.loadtxt(folder / "site_positions.dat")
    assert pos.shape == (3, len(ham.atoms)) and np.abs(pos.T - ham.atoms.get_positions()).max() < 1e-14
    assert (folder / "element.dat").read_text().split() == ["6", "1", "6"]
    assert (folder / "orbital_types.dat").read_text().splitlines() == ["0 0 1 1 2", "0 1", "0 0 1 1 2"]
    info = json.loads((folder / "info.json").read_text())
    assert info == {"nsites": 3, "isorthogonal": False, "isspinful": False, "norbits": 13 + 4 + 13,
                    "fermi_level": -3.25, "tracegrad": {"valence": {"C": 4, "H": 1}}}
    idx = ham.index()
    with h5py.File(folder / "hamiltonians.h5", "r") as f, h5py.File(folder / "overlaps.h5", "r") as g:
        assert set(f.keys()) == set(g.keys()) and len(f.keys()) == len(ham.edges)
        assert "[0, 0, 0, 1, 1]" in f and "[-1, 0, 1, 2, 3]" in f  # 1-based atoms, DeepH's spacing
        assert all(json.loads(k)[3] >= 1 and json.loads(k)[4] >= 1 for k in f.keys())  # graph.py's parser
        onsite = f["[0, 0, 0, 1, 1]"][()]
        e3nn = ham.hamiltonian[idx[(0, 0, 0, 0, 0)]]
        hop = f["[-1, 0, 1, 2, 3]"][()]  # H (atom 2) -> C (atom 3): (0, 1) x (0, 0, 1, 1, 2)
        hop_e3nn = ham.hamiltonian[idx[(-1, 0, 1, 1, 2)]]
    assert onsite.shape == (13, 13) and hop.shape == (4, 13)
    # s and p parts are unchanged (to round-off of e3nn's Wigner matrix): DeepH's p is (x, y, z) like e3nn's l = 1
    assert np.abs(onsite[:8, :8] - e3nn[:8, :8]).max() < 1e-12
    assert np.abs(hop[:, :8] - hop_e3nn[:, :8]).max() < 1e-12
    # the d part is rotated by the fixed e3nn -> DeepH map
    t = shell_transform(2, "e3nn", "deeph")
    assert np.abs(onsite[8:, 8:] - t @ e3nn[8:, 8:] @ t.T).max() < 1e-12
    assert np.abs(hop[:, 8:] - hop_e3nn[:, 8:] @ t.T).max() < 1e-12


def test_shell_orders_against_deeph_definition(rng):
    assert np.abs(shell_transform(1, "e3nn", "deeph") - np.eye(3)).max() < 1e-14
    t = shell_transform(2, "e3nn", "deeph")
    xy = t @ np.eye(5)[1]  # e3nn index 1 is sqrt(3) x y
    assert abs(abs(xy[2]) - 1) < 1e-12 and np.abs(np.delete(xy, 2)).max() < 1e-12
    # independently of the index bookkeeping: DeepH's d functions are (z², x²-y², xy, xz, yz) up to scale
    r = rng.normal(size=(50, 3))
    r /= np.linalg.norm(r, axis=1, keepdims=True)
    y = o3.spherical_harmonics(2, torch.tensor(r), normalize=False).numpy() @ t.T
    x_, y_, z_ = r.T
    for k, poly in enumerate([3 * z_**2 - 1, x_**2 - y_**2, x_ * y_, x_ * z_, y_ * z_]):
        c = (y[:, k] @ poly) / (poly @ poly)
        assert abs(c) > 0.1 and np.abs(y[:, k] - c * poly).max() < 1e-12


def test_reads_deeph_pack_style_folder(tmp_path, ham):
    """OpenMX's Julia preprocessor: tab separators, a two-key info.json, no rlat.dat; ABACUS's drops tiny
    blocks, so H and S key sets can differ: the missing block reads as zero."""
    folder = write_deeph(ham, tmp_path / "s0")
    (folder / "rlat.dat").unlink()
    (folder / "orbital_types.dat").write_text("0\t0\t1\t1\t2\n0\t1\n0\t0\t1\t1\t2\n")
    (folder / "info.json").write_text(json.dumps({"fermi_level": 1.5, "isspinful": False}, indent=4))
    with h5py.File(folder / "overlaps.h5", "a") as f:
        del f["[1, 1, 1, 1, 3]"]
    back = read_deeph(folder)
    assert back.meta["fermi_level_ev"] == 1.5
    assert dict(back.basis.valence) == {}  # DeepH-pack's folders record no valence charges: unknown, never Z
    n = back.index()[(1, 1, 1, 0, 2)]
    assert np.array_equal(back.overlap[n], np.zeros((13, 13)))
    assert np.abs(back.hamiltonian[n] - ham.hamiltonian[ham.index()[(1, 1, 1, 0, 2)]]).max() < 1e-12


def _corrupt(folder: Path, what: str) -> None:
    if what == "missing overlaps":
        (folder / "overlaps.h5").unlink()
    elif what == "garbage h5":
        (folder / "hamiltonians.h5").write_bytes(b"this is not HDF5\n" * 10)
    elif what == "wrong key":
        with h5py.File(folder / "hamiltonians.h5", "a") as f:
            f["0_0_0_1_1"] = f["[0, 0, 0, 1, 1]"][()]
    elif what == "atom out of range":
        with h5py.File(folder / "overlaps.h5", "a") as f:
            f["[0, 0, 0, 1, 4]"] = np.zeros((13, 13))
    elif what == "wrong shape":
        with h5py.File(folder / "hamiltonians.h5", "a") as f:
            del f["[0, 0, 0, 2, 1]"]
            f["[0, 0, 0, 2, 1]"] = np.zeros((4, 12))
    elif what == "positions mismatch":
        np.savetxt(folder / "site_positions.dat", np.zeros((3, 2)))
    elif what == "orbital lines mismatch":
        (folder / "orbital_types.dat").write_text("0 0 1 1 2\n0 1\n")
    elif what == "same element, other orbitals":
        (folder / "orbital_types.dat").write_text("0 0 1 1 2\n0 1\n0 1 2\n")
    elif what == "garbage element":
        (folder / "element.dat").write_text("6\nfoo\n6\n")
    elif what == "garbage lat":
        (folder / "lat.dat").write_text("1 2\n3 4\n")
    elif what == "info mismatch":
        (folder / "info.json").write_text(json.dumps({"nsites": 5, "isspinful": False}))
    elif what == "spinful":
        (folder / "info.json").write_text(json.dumps({"isspinful": True}))


@pytest.mark.parametrize("what, file", [
    ("missing overlaps", "overlaps.h5"),
    ("garbage h5", "hamiltonians.h5"),
    ("wrong key", "hamiltonians.h5"),
    ("atom out of range", "overlaps.h5"),
    ("wrong shape", "hamiltonians.h5"),
    ("positions mismatch", "site_positions.dat"),
    ("orbital lines mismatch", "orbital_types.dat"),
    ("same element, other orbitals", "orbital_types.dat"),
    ("garbage element", "element.dat"),
    ("garbage lat", "lat.dat"),
    ("info mismatch", "info.json"),
    ("spinful", "info.json"),
])
def test_corrupt_folders_give_clear_errors(tmp_path, ham, what, file):
    folder = write_deeph(ham, tmp_path / "s0")
    _corrupt(folder, what)
    with pytest.raises(DataFormatError, match=file.replace(".", r"\.")):
        read_deeph(folder)


def test_missing_folder(tmp_path):
    with pytest.raises(DataFormatError, match="no such"):
        read_deeph(tmp_path / "nothing")


def test_overwrites_deeph_folder_but_not_user_files(tmp_path, rng):
    first, second = make_ham(rng, fermi=1.0), make_ham(rng, fermi=2.0)
    target = tmp_path / "s0"
    write_deeph(first, target)
    (target / "rc.h5").write_bytes(b"stale derived file")  # DeepH-pack's derived file: replaced with the rest
    write_deeph(second, target)
    assert read_deeph(target).meta["fermi_level_ev"] == 2.0 and not (target / "rc.h5").exists()

    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("precious")
    (user / "element.dat").write_text("6\n")
    with pytest.raises(DataFormatError, match="refusing"):
        write_deeph(first, user)
    assert sorted(os.listdir(user)) == ["element.dat", "notes.txt"]
    assert (user / "notes.txt").read_text() == "precious"

    plain = tmp_path / "file"
    plain.write_text("not a folder")
    with pytest.raises(DataFormatError, match="refusing"):
        write_deeph(first, plain)
    assert plain.read_text() == "not a folder"

    (tmp_path / "empty").mkdir()
    write_deeph(first, tmp_path / "empty")  # an empty directory is fine
    # no temporary siblings are left behind by any of the above
    assert sorted(os.listdir(tmp_path)) == ["empty", "file", "mine", "s0"]


def test_content_digest_follows_the_numbers_not_the_file(tmp_path, ham):
    """A card's data digest: equal for the same numbers whatever the run's timings or the files' order and place,
    different for a change far below any physical tolerance, and a clear error for a damaged file."""
    from dataclasses import replace

    from tracegrad_ase.io.h5 import content_digest, data_digest, save_h5

    a = save_h5(replace(ham, meta={**ham.meta, "scf_wall_time_s": 1.0}), tmp_path / "one" / "a.h5")
    b = save_h5(replace(ham, meta={**ham.meta, "scf_wall_time_s": 9.0}), tmp_path / "two" / "a.h5")
    assert content_digest(a) == content_digest(b)
    nudged = [x.copy() for x in ham.hamiltonian]
    nudged[3][0, 0] += 1e-12
    c = save_h5(replace(ham, hamiltonian=nudged), tmp_path / "three" / "a.h5")
    d = save_h5(replace(ham, meta={**ham.meta, "fermi_level_ev": -3.0}), tmp_path / "four" / "a.h5")
    assert len({content_digest(a), content_digest(c), content_digest(d)}) == 3
    e = save_h5(ham, tmp_path / "one" / "e.h5")
    assert data_digest([a, e]) == data_digest([e, a]) != data_digest([b])
    assert data_digest([a, e])["structures"] == 2
    e.write_bytes(e.read_bytes()[:200])
    with pytest.raises(DataFormatError, match="e.h5: unreadable structure file"):
        content_digest(e)
