"""Other programs' Hamiltonian folders: DeepH-pack's newer layout in and out, DeePTB's in, prediction files by
name, one reader that recognises them all, and electron counts that are valence charges or nothing (never Z)."""

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import chain_hamiltonian
from test_deeph_format import make_ham
from tracegrad_ase.core.basis import OrbitalBasis
from tracegrad_ase.core.errors import DataFormatError, ElectronCountError, ParameterError
from tracegrad_ase.core.hamiltonian import RealSpaceHamiltonian
from tracegrad_ase.electronic import band_energies, electron_count
from tracegrad_ase.interop.files import read_structure
from tracegrad_ase.io.deeph import read_deeph, write_deeph
from tracegrad_ase.io.deeph_pack import read_deeph_pack, write_deeph_pack
from tracegrad_ase.io.deeptb import read_deeptb
from tracegrad_ase.io.layouts import detect_layout, read_folder

DEEPTB_BASIS = {"C": "2s2p1d", "H": "1s1p"}  # the shells (0, 0, 1, 1, 2) and (0, 1) of make_ham's basis


@pytest.fixture
def ham(rng):
    return make_ham(rng)


def gapped_ham(rng, fermi=1.0) -> RealSpaceHamiltonian:
    """make_ham's structure with weak hoppings around on-site levels far apart: 2 (2 + 1 + 2) = 10 electrons
    below +1 eV, a gap from about -8 to +5 eV."""
    ham = make_ham(rng, fermi=fermi)
    levels = {6: [-10, -9, 5, 5, 5, 6, 6, 6, 8, 8, 8, 8, 8], 1: [-8, 5, 5, 5]}
    for n, (rx, ry, rz, i, j) in enumerate(ham.edges):
        ham.hamiltonian[n] = 0.02 * ham.hamiltonian[n]
        if (rx, ry, rz, i) == (0, 0, 0, j):
            ham.hamiltonian[n] += np.diag(levels[int(ham.atoms.numbers[i])]).astype(float)
    return ham


def _same(a: RealSpaceHamiltonian, b: RealSpaceHamiltonian, tol=1e-12) -> None:
    assert list(a.atoms.numbers) == list(b.atoms.numbers)
    assert np.abs(a.atoms.get_positions() - b.atoms.get_positions()).max() < 1e-12
    assert np.abs(a.atoms.cell[:] - b.atoms.cell[:]).max() < 1e-12
    ia, ib = a.index(), b.index()
    assert set(ia) == set(ib)
    for e, n in ia.items():
        assert np.abs(a.hamiltonian[n] - b.hamiltonian[ib[e]]).max() < tol
        assert np.abs(a.overlap[n] - b.overlap[ib[e]]).max() < tol


def _strip_record(folder: Path, fermi=None) -> None:
    """Make one of our folders look like another program's: no valence record; ``fermi`` as its Fermi level."""
    info_path = folder / "info.json"
    info = json.loads(info_path.read_text())
    info.pop("tracegrad")
    key = "fermi_level" if "fermi_level" in info else "fermi_energy_eV"
    info[key] = fermi
    info_path.write_text(json.dumps(info))


def write_deeptb(ham, folder: Path, base=1, one_direction=True, basis_lines=False, frac=False, predicted=False):
    """A DeePTB folder as its converters write one: 'i_j_Rx_Ry_Rz' keys in group '0', std order, eV."""
    folder.mkdir(parents=True)
    np.savetxt(folder / "atomic_numbers.dat", ham.atoms.numbers, fmt="%d")
    np.savetxt(folder / "cell.dat", ham.atoms.cell[:])
    np.savetxt(folder / "positions.dat",
               ham.atoms.get_scaled_positions(wrap=False) if frac else ham.atoms.get_positions())
    if frac:  # DeePTB also reads info.json from the folder above (one for a whole data set)
        (folder.parent / "info.json").write_text(json.dumps({"nframes": 1, "pos_type": "frac", "pbc": True}))
    symbols = ham.atoms.get_chemical_symbols()
    (folder / "basis.dat").write_text("\n".join(DEEPTB_BASIS[s] for s in symbols) + "\n" if basis_lines
                                      else str({s: DEEPTB_BASIS[s] for s in dict.fromkeys(symbols)}))
    z = ham.atoms.numbers
    for name, blocks in zip(("predicted_hamiltonians.h5", "predicted_overlaps.h5") if predicted
                            else ("hamiltonians.h5", "overlaps.h5"), (ham.hamiltonian, ham.overlap)):
        with h5py.File(folder / name, "w") as f:
            g = f.create_group("0")
            for (rx, ry, rz, i, j), b in zip(ham.edges.tolist(), blocks):
                if one_direction and (i > j or (i == j and (rx, ry, rz) < (0, 0, 0))):
                    continue  # DeePTB finds the partner as the transpose
                g[f"{i + base}_{j + base}_{rx}_{ry}_{rz}"] = ham.basis.convert_block(b, z[i], z[j], "e3nn", "std")


# -- DeepH-pack's newer layout ------------------------------------------------------------------------------------
def test_deeph_pack_round_trip_is_exact(tmp_path, ham):
    folder = write_deeph_pack(ham, tmp_path / "p")
    assert sorted(os.listdir(folder)) == ["POSCAR", "hamiltonian.h5", "info.json", "overlap.h5"]
    info = json.loads((folder / "info.json").read_text())
    assert info == {"atoms_quantity": 3, "orbits_quantity": 30, "orthogonal_basis": False, "spinful": False,
                    "fermi_energy_eV": -3.25, "elements_orbital_map": {"C": [0, 0, 1, 1, 2], "H": [0, 1]},
                    "tracegrad": {"valence": {"C": 4, "H": 1}}}
    assert (folder / "POSCAR").read_text().splitlines()[5:7] == ["C H C", "1 1 1"]  # atom order kept
    with h5py.File(folder / "hamiltonian.h5", "r") as f:
        pairs, bounds, shapes, entries = (f[k][()] for k in ("atom_pairs", "chunk_boundaries", "chunk_shapes",
                                                             "entries"))
    assert pairs.shape == (len(ham.edges), 5) and pairs[:, 3:].min() == 0 and pairs[:, 3:].max() == 2  # 0-based
    assert bounds[-1] == len(entries) == (shapes[:, 0] * shapes[:, 1]).sum()
    # std order: the first p shell of C is stored (y, z, x), e3nn's is (x, y, z)
    k = int(np.nonzero((pairs == [0, 0, 0, 0, 0]).all(axis=1))[0][0])
    onsite = entries[bounds[k]:bounds[k + 1]].reshape(13, 13)
    e3nn = ham.hamiltonian[ham.index()[(0, 0, 0, 0, 0)]]
    assert np.abs(onsite[2:5, 2:5] - e3nn[[3, 4, 2]][:, [3, 4, 2]]).max() < 1e-12
    back = read_deeph_pack(folder)
    _same(ham, back)
    assert np.array_equal(back.atoms.get_positions(), ham.atoms.get_positions())  # full precision in POSCAR
    assert dict(back.basis.valence) == {"C": 4, "H": 1} and back.meta["fermi_level_ev"] == -3.25
    assert back.meta["source"] == "deeph-pack" and back.meta["predicted"] is False


def test_three_layouts_give_the_same_bands(tmp_path, ham, rng):
    kpts = np.vstack([[0, 0, 0], [0.5, 0.5, 0], rng.uniform(-0.5, 0.5, size=(3, 3))])
    want = band_energies(ham, kpts)
    write_deeptb(ham, tmp_path / "tb")
    for back in (read_deeph(write_deeph(ham, tmp_path / "d")), read_deeph_pack(write_deeph_pack(ham, tmp_path / "p")),
                 read_deeptb(tmp_path / "tb", valence={"C": 4, "H": 1})):
        assert np.abs(band_energies(back, kpts) - want).max() < 1e-9


def test_deeph_pack_refuses_spinful_and_bad_chunks(tmp_path, ham):
    folder = write_deeph_pack(ham, tmp_path / "p")
    with h5py.File(folder / "overlap.h5", "a") as f:
        b = f["chunk_boundaries"][()]
        del f["chunk_boundaries"]
        f["chunk_boundaries"] = b + 1
    with pytest.raises(DataFormatError, match=r"overlap\.h5: chunk_boundaries"):
        read_deeph_pack(folder)
    info = json.loads((folder / "info.json").read_text())
    (folder / "info.json").write_text(json.dumps({**info, "spinful": True}))
    with pytest.raises(DataFormatError, match="spinful"):
        read_deeph_pack(folder)


# -- prediction files by name ---------------------------------------------------------------------------------
def test_prediction_files_by_name(tmp_path, ham):
    legacy = write_deeph(ham, tmp_path / "d", predicted=True)
    assert (legacy / "hamiltonians_pred.h5").is_file() and not (legacy / "hamiltonians.h5").exists()
    pack = write_deeph_pack(ham, tmp_path / "p", predicted=True)
    assert (pack / "hamiltonian_pred.h5").is_file() and not (pack / "hamiltonian.h5").exists()
    write_deeptb(ham, tmp_path / "tb", predicted=True)
    for folder in (legacy, pack, tmp_path / "tb"):
        back = read_folder(folder, valence={"C": 4, "H": 1})
        assert back.meta["predicted"] is True
        _same(ham, back)
    # DFT truth and a prediction side by side: the truth by default, the prediction by name
    truth = write_deeph_pack(ham, tmp_path / "both")
    doubled = RealSpaceHamiltonian(ham.atoms, ham.basis, ham.edges, [2 * b for b in ham.hamiltonian], ham.overlap)
    shutil.copy(write_deeph_pack(doubled, tmp_path / "x", predicted=True) / "hamiltonian_pred.h5", truth)
    assert read_folder(truth).meta["predicted"] is False
    pred = read_folder(truth, hamiltonian="hamiltonian_pred.h5")
    assert pred.meta["predicted"] is True
    assert np.abs(pred.hamiltonian[0] - 2 * read_folder(truth).hamiltonian[0]).max() < 1e-12
    # a prediction kept in another tree (DeepH's inference output), the structure and S from the DFT folder
    (truth / "hamiltonian.h5").unlink()
    (truth / "hamiltonian_pred.h5").rename(tmp_path / "elsewhere.h5")
    apart = read_folder(truth, hamiltonian=tmp_path / "elsewhere.h5")
    assert apart.meta["hamiltonian_file"] == str(tmp_path / "elsewhere.h5")
    _same(doubled, apart)


# -- DeePTB ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("base, basis_lines, frac", [(1, False, False), (0, True, True)])
def test_deeptb_keys_orbital_order_and_structure(tmp_path, ham, base, basis_lines, frac):
    write_deeptb(ham, tmp_path / "set" / "tb", base=base, basis_lines=basis_lines, frac=frac)
    back = read_deeptb(tmp_path / "set" / "tb")
    _same(ham, back)  # the edges stored in one direction only get their partners back
    assert back.meta["source"] == "deeptb" and dict(back.basis.shells) == {"C": (0, 0, 1, 1, 2), "H": (0, 1)}
    with h5py.File(tmp_path / "set" / "tb" / "hamiltonians.h5", "r") as f:
        assert ("0_0_0_0_0" in f["0"]) == (base == 0)
        stored = f["0"][f"{0 + base}_{2 + base}_-1_0_1"][()]  # atoms 0 and 2 (both C), R = (-1, 0, 1)
    e3nn = ham.hamiltonian[ham.index()[(-1, 0, 1, 0, 2)]]
    assert np.abs(stored[2:5, 2:5] - e3nn[[3, 4, 2]][:, [3, 4, 2]]).max() < 1e-12  # p as (y, z, x)
    assert np.abs(stored[:2, :2] - e3nn[:2, :2]).max() < 1e-12


def test_deeptb_needs_frame_and_basis(tmp_path, ham):
    folder = tmp_path / "tb"
    write_deeptb(ham, folder)
    (folder / "basis.dat").unlink()
    with pytest.raises(DataFormatError, match="no basis.dat.*basis="):
        read_deeptb(folder)
    back = read_deeptb(folder, basis={"C": ["1s", "2s", "1p", "2p", "1d"], "H": (0, 1)})
    assert dict(back.basis.shells) == {"C": (0, 0, 1, 1, 2), "H": (0, 1)}
    (folder / "info.json").write_text(json.dumps({"nframes": 3}))
    np.savetxt(folder / "positions.dat", np.vstack([ham.atoms.get_positions()] * 3))
    with pytest.raises(ParameterError, match="3 structures: pass frame="):
        read_deeptb(folder, basis=DEEPTB_BASIS)
    with pytest.raises(DataFormatError, match="no group '2'"):
        read_deeptb(folder, basis=DEEPTB_BASIS, frame=2)
    with h5py.File(folder / "hamiltonians.h5", "a") as f:
        f["0"]["1-1-0-0-0"] = np.zeros((13, 13))
    with pytest.raises(DataFormatError, match=r"hamiltonians\.h5: dataset name '1-1-0-0-0'"):
        read_deeptb(folder, basis=DEEPTB_BASIS, frame=0)


# -- one reader for all ---------------------------------------------------------------------------------------
def test_unknown_folder_says_what_was_looked_for_and_found(tmp_path, ham):
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "notes.txt").write_text("x")
    (folder / "overlap.h5").write_bytes(b"")
    with pytest.raises(DataFormatError) as err:
        read_folder(folder)
    msg = str(err.value)
    for part in ("DeepH (", "DeepH-pack's newer layout", "DeePTB", "lacks POSCAR, info.json",
                 "hamiltonian.h5 or hamiltonian_pred.h5", "atomic_numbers.dat", "Found: notes.txt, overlap.h5"):
        assert part in msg, part
    write_deeptb(ham, tmp_path / "tb")
    assert detect_layout(write_deeph(ham, tmp_path / "d")).name == "deeph"
    assert detect_layout(write_deeph_pack(ham, tmp_path / "p")).name == "deeph-pack"
    assert detect_layout(tmp_path / "tb").name == "deeptb"
    for name in ("d", "p", "tb"):  # `tracegrad bands FOLDER` reads the structure through read_structure
        atoms = read_structure(str(tmp_path / name))
        assert atoms.get_chemical_formula() == ham.atoms.get_chemical_formula() and atoms.pbc.all()
        assert np.abs(atoms.get_positions() - ham.atoms.get_positions()).max() < 1e-12


# -- electron counts: valence charges, never Z --------------------------------------------------------------
def test_no_count_without_valence_or_fermi_level(tmp_path, rng):
    folder = write_deeph(gapped_ham(rng), tmp_path / "d")
    _strip_record(folder, fermi=None)
    foreign = read_deeph(folder)
    assert dict(foreign.basis.valence) == {} and "nelectron" not in foreign.meta
    with pytest.raises(ElectronCountError, match="no valence charge for C, H.*valence="):
        electron_count(foreign)
    assert electron_count(read_deeph(folder, valence={"C": 4, "H": 1, "Mo": 14})) == 9  # extra elements ignored
    assert electron_count(read_deeph(folder, valence={6: 4, 1: 1})) == 9
    total = read_deeph(folder, valence=10)  # a total of a two-element cell stays a total, for this formula only
    assert dict(total.basis.valence) == {} and electron_count(total) == 10
    total.meta["nelectron_formula"] = "C4H2"  # as if copied to a supercell: never applied there
    with pytest.raises(ElectronCountError):
        electron_count(total)
    for bad, match in ((14, r"1\.\.13"), ({"C": 7, "H": 1}, r"1\.\.6"), ({"C": 4}, "no valence charge for H"),
                       ("PBE19", "not built in"), ({"C": 4.5, "H": 1}, "whole number")):
        with pytest.raises(ParameterError, match=match):
            read_deeph(folder, valence=bad)


def test_one_element_total_becomes_per_element_valence(tmp_path, rng):
    ham = make_ham(rng, symbols="CC")
    folder = write_deeph_pack(ham, tmp_path / "p")
    _strip_record(folder, fermi=None)
    back = read_deeph_pack(folder, valence=8)
    assert dict(back.basis.valence) == {"C": 4} and electron_count(back) == 8


def test_count_read_off_the_dft_fermi_level_only_where_it_is_unambiguous(tmp_path, rng):
    folder = write_deeph_pack(gapped_ham(rng), tmp_path / "p")
    _strip_record(folder, fermi=1.0)  # in the gap
    gapped = read_deeph_pack(folder)
    assert electron_count(gapped) == 10 and gapped.meta["nelectron_source"] == "fermi_level"
    _strip_record_fermi(folder, -9.0)  # inside the band of C's second s level
    with pytest.raises(ElectronCountError, match="within 100 meV.*does not fix the electron count.*valence="):
        electron_count(read_deeph_pack(folder))
    _strip_record_fermi(folder, 7.0)  # in a gap, but more electrons below it than the nuclei have
    with pytest.raises(ElectronCountError, match="more than the nuclear charges"):
        electron_count(read_deeph_pack(folder))
    _strip_record_fermi(folder, 0.0)  # a placeholder (DeepH-JAX writes 0.00): not a Fermi level
    with pytest.raises(ElectronCountError, match="unknown electron count"):
        electron_count(read_deeph_pack(folder))
    metal = chain_hamiltonian()
    metal = RealSpaceHamiltonian(metal.atoms, OrbitalBasis("s", {"H": (0,)}, {}), metal.edges, metal.hamiltonian,
                                 metal.overlap, meta={"fermi_level_ev": 0.3})
    with pytest.raises(ElectronCountError, match="does not fix the electron count"):
        electron_count(metal)


def _strip_record_fermi(folder: Path, fermi: float) -> None:
    info = json.loads((folder / "info.json").read_text())
    (folder / "info.json").write_text(json.dumps({**info, "fermi_energy_eV": fermi}))
