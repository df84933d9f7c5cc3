"""The (legacy) DeepH folder layout, in and out: DeepH-pack's preprocessed OpenMX/ABACUS/SIESTA data and ours.

Layout (checked against mzjb/DeepH-pack's preprocessors, see :func:`write_deeph`): ``element.dat``,
``lat.dat``, ``rlat.dat``, ``site_positions.dat``, ``orbital_types.dat``, ``info.json``, ``hamiltonians.h5``
(or DeepH-pack's prediction ``hamiltonians_pred.h5``) and ``overlaps.h5`` with datasets named
``"[Rx, Ry, Rz, i, j]"`` (atoms 1-based), blocks in the DeepH/OpenMX orbital order. Folders are written under a
temporary name and renamed into place. The newer layout is :mod:`.deeph_pack`, DeePTB's :mod:`.deeptb`; any of
them is recognised by :func:`.layouts.read_folder`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from .atomic import atomic_folder
from .foreign import (OWN_KEY, Edge, assemble, check_replaceable, checked_block, choose_file, element_shells,
                      own_record, read_atomic_numbers, read_json, read_matrix, read_own_record, read_text,
                      require_files)
from ..core.errors import DataFormatError
from ..core.hamiltonian import RealSpaceHamiltonian


# -- DeepH folder format ----------------------------------------------------------------------------------
#
# One folder per structure, as DeepH-pack's preprocessors write it (checked against mzjb/DeepH-pack:
# deeph/preprocess/abacus_get_data.py and openmx_get_data.jl write it; deeph/data.py, deeph/graph.py and
# deeph/inference/dense_calc.py read it):
#
# element.dat          atomic numbers, one per line
# lat.dat              lattice vectors as columns, Å (data.py: ``Structure(np.loadtxt("lat.dat").T, ...)``)
# rlat.dat             reciprocal vectors as columns, 2π·inv(L)^T for L = lat.dat, 1/Å
# site_positions.dat   Cartesian positions as columns (3 x N), Å (data.py loads it with ``.T``)
# orbital_types.dat    one line per atom: the l of each shell (graph.py: ``load_orbital_types``)
# info.json            "isspinful" (graph.py), "fermi_level" (eV; dense_calc.jl requires it), ...
# hamiltonians.h5      one dataset per edge named "[Rx, Ry, Rz, i, j]" (1-based atoms; graph.py
#                      ``json.loads(key)`` then subtracts 1), block norb(i) x norb(j), eV, OpenMX order;
#                      DeepH-pack's inference writes ``hamiltonians_pred.h5`` in the same form
# overlaps.h5          same keys, overlap blocks
#
# Julia writes ``permutedims(block)`` and HDF5 is row-major, so h5py reads DeepH-pack's blocks as
# norb(i) x norb(j) with no transpose (dense_calc.py: "the matrix do not need be transposed in Python").

HAMILTONIAN, PREDICTION, OVERLAP = "hamiltonians.h5", "hamiltonians_pred.h5", "overlaps.h5"
STRUCTURE_FILES = ("element.dat", "lat.dat", "site_positions.dat", "orbital_types.dat")
# Files DeepH-pack writes into (or derives inside) a structure folder; a folder holding nothing else is ours to
# replace. The derived ones (rc.h5, rh.h5, ...) would be stale after a rewrite, so removing them is right.
_DEEPH_KNOWN = frozenset(STRUCTURE_FILES + (
    HAMILTONIAN, OVERLAP, "rlat.dat", "info.json", "R_list.dat", "density_matrixs.h5", "positions.h5",
    "rc.h5", "rh.h5", "rdm.h5", PREDICTION, "rh_pred.h5",
))
_DEEPH_KEY = re.compile(r"^\[\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\]$")


def deeph_key(rx: int, ry: int, rz: int, i: int, j: int) -> str:
    """DeepH dataset name of edge ``(R, i, j)`` with 0-based atoms: ``"[Rx, Ry, Rz, i+1, j+1]"``.

    The spacing is that of Julia's ``string([...])`` and of abacus_get_data.py's f-string, so the names match
    DeepH-pack's own files byte for byte.
    """
    return f"[{int(rx)}, {int(ry)}, {int(rz)}, {int(i) + 1}, {int(j) + 1}]"


def full_cell(ham: RealSpaceHamiltonian) -> np.ndarray:
    """The cell of ``ham``; DeepH layouts are periodic, so every reader needs a full 3-D lattice."""
    cell = np.asarray(ham.atoms.cell[:], dtype=float)
    if abs(np.linalg.det(cell)) < 1e-12:
        raise ValueError("the DeepH format needs a full 3-D cell; this structure's cell is singular")
    return cell


def write_deeph(ham: RealSpaceHamiltonian, folder: str | os.PathLike, predicted: bool = False) -> Path:
    """Write ``ham`` as a DeepH-pack preprocessed folder; returns its path.

    Layout verified against mzjb/DeepH-pack (see the table above): ``lat.dat`` and ``site_positions.dat`` hold
    vectors as columns (abacus_get_data.py saves ``np.transpose(lattice)`` and ``np.transpose(cart_coords)``;
    data.py reads both back with ``.T``); ``rlat.dat`` is ``2π inv(lat)^T`` with vectors as columns
    (openmx_get_data.jl); keys are ``"[Rx, Ry, Rz, i, j]"`` with 1-based atoms; H is in eV, lengths in Å;
    info.json has abacus_get_data.py's keys ``nsites, isorthogonal, isspinful, norbits, fermi_level`` (0.0 when
    unknown: DeepH-pack's Julia requires the key) and ours, ``"tracegrad"`` (valence charges; whether the Fermi
    level is a placeholder), which DeepH-pack ignores. Blocks are converted e3nn -> DeepH/OpenMX order (p: x, y, z;
    d: z², x²-y², xy, xz, yz). ``predicted=True`` names H ``hamiltonians_pred.h5``, as DeepH-pack's inference does.

    The folder is built under a temporary sibling name and renamed into place. An existing DeepH folder (only
    DeepH file names inside) is replaced; any other non-empty path raises :class:`DataFormatError` and is left
    untouched, so user files are never deleted.
    """
    import h5py

    folder = Path(folder)
    _check_replaceable(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    numbers = [int(z) for z in ham.atoms.numbers]
    cell = full_cell(ham)
    fermi = ham.meta.get("fermi_level_ev")
    info = {
        "nsites": len(numbers),
        "isorthogonal": False,
        "isspinful": False,
        "norbits": int(ham.norb),
        "fermi_level": 0.0 if fermi is None else float(fermi),
        OWN_KEY: own_record(ham),
    }
    # Checked again just before the swap: the folder may have changed while the files were written.
    with atomic_folder(folder, before_replace=_check_replaceable) as tmp:
        np.savetxt(tmp / "element.dat", np.asarray(numbers, dtype=np.int64), fmt="%d")
        np.savetxt(tmp / "lat.dat", cell.T)
        # ASE's cell has the vectors as rows, so 2π·inv(cell) has the reciprocal vectors as columns.
        np.savetxt(tmp / "rlat.dat", 2 * np.pi * np.linalg.inv(cell))
        np.savetxt(tmp / "site_positions.dat", ham.atoms.get_positions().T)
        with open(tmp / "orbital_types.dat", "w") as f:
            f.writelines(" ".join(str(l) for l in ham.basis.shells_of(z)) + "\n" for z in numbers)
        with open(tmp / "info.json", "w") as f:
            json.dump(info, f, indent=4)
        for name, blocks in ((PREDICTION if predicted else HAMILTONIAN, ham.hamiltonian), (OVERLAP, ham.overlap)):
            with h5py.File(tmp / name, "w") as f:
                for (rx, ry, rz, i, j), block in zip(ham.edges, blocks):
                    key = deeph_key(rx, ry, rz, i, j)
                    if key in f:
                        raise ValueError(f"edge {key} (1-based) appears twice in the Hamiltonian")
                    f[key] = ham.basis.convert_block(np.asarray(block, dtype=float), numbers[i], numbers[j],
                                                     "e3nn", "deeph")
    return folder


def _check_replaceable(folder: Path) -> None:
    check_replaceable(folder, _DEEPH_KNOWN, "element.dat")


def read_deeph(folder: str | os.PathLike, basis_name: str | None = None, valence: Any = None,
               hamiltonian: str | os.PathLike | None = None) -> RealSpaceHamiltonian:
    """Read a DeepH folder (ours, or DeepH-pack's OpenMX/ABACUS/SIESTA preprocessor output).

    The orbital basis is rebuilt from ``orbital_types.dat`` per element and named ``basis_name`` (default
    ``"deeph"``). Valence charges come from ``valence`` (a mapping element -> electrons, or the total per
    cell), else from what the folder records (our writer's ``info.json["tracegrad"]``); else they stay unknown
    (never Z): the electron count is then read off the folder's DFT Fermi level where that is unambiguous, or
    asked for (:func:`tracegrad_ase.electronic.electron_count`). ``hamiltonian`` names the H file (in the folder,
    or any path: a prediction kept elsewhere); by default ``hamiltonians.h5``, else DeepH-pack's prediction
    ``hamiltonians_pred.h5``. ``meta`` records ``fermi_level_ev``, ``hamiltonian_file`` and ``predicted``.

    ``pbc`` is True in every direction (DeepH folders are periodic). Blocks are converted DeepH/OpenMX -> e3nn
    order. DeepH-pack's ABACUS preprocessor drops blocks below 1e-8, so H and S may have different keys: the
    edges are their union and a block absent from one file is zero. Spinful folders are not supported. Anything
    malformed raises :class:`DataFormatError` naming the file.
    """
    folder = Path(folder)
    require_files(folder, STRUCTURE_FILES + (OVERLAP,), "DeepH")
    h_path = choose_file(folder, hamiltonian, (HAMILTONIAN, PREDICTION), "DeepH Hamiltonian")
    atoms, per_atom = read_deeph_structure(folder)
    numbers = [int(z) for z in atoms.numbers]
    info = _read_info(folder / "info.json")
    recorded, fermi_known = read_own_record(info, folder / "info.json")
    shells = element_shells(numbers, per_atom, folder / "orbital_types.dat")
    norb = [sum(2 * l + 1 for l in ls) for ls in per_atom]
    if "nsites" in info and info["nsites"] != len(numbers):
        raise DataFormatError(f"{folder / 'info.json'}: nsites = {info['nsites']} but element.dat has "
                              f"{len(numbers)} atoms")
    if "norbits" in info and info["norbits"] != sum(norb):
        raise DataFormatError(f"{folder / 'info.json'}: norbits = {info['norbits']} but orbital_types.dat "
                              f"gives {sum(norb)}")
    meta: dict = {"source": "deeph", "deeph_folder": str(folder), "folder": str(folder),
                  "hamiltonian_file": str(h_path), "predicted": h_path.name == PREDICTION}
    if info.get("fermi_level") is not None and fermi_known:
        meta["fermi_level_ev"] = float(info["fermi_level"])
    return assemble(atoms, shells, basis_name or "deeph", valence, recorded, _read_blocks(h_path, norb),
                    _read_blocks(folder / OVERLAP, norb), "deeph", meta)


def read_deeph_structure(folder: Path) -> tuple[Atoms, list[tuple[int, ...]]]:
    """The structure of a DeepH folder (periodic) and each atom's shells, checked against each other."""
    numbers = read_atomic_numbers(folder / "element.dat")
    n = len(numbers)
    lat = read_matrix(folder / "lat.dat")
    if lat.shape != (3, 3):
        raise DataFormatError(f"{folder / 'lat.dat'}: expected 3 x 3 lattice vectors, got shape {lat.shape}")
    pos = read_matrix(folder / "site_positions.dat")
    if n == 1 and pos.shape == (1, 3):
        pos = pos.T  # a single atom written as one row
    if pos.shape != (3, n):
        raise DataFormatError(f"{folder / 'site_positions.dat'}: expected 3 x {n} positions (columns are atoms, "
                              f"{n} atoms in element.dat), got shape {pos.shape}")
    types = _read_orbital_types(folder / "orbital_types.dat", n)
    return Atoms(numbers=numbers, positions=pos.T, cell=lat.T, pbc=True), types


def _read_orbital_types(path: Path, n: int) -> list[tuple[int, ...]]:
    lines = read_text(path).splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) != n:
        raise DataFormatError(f"{path}: {len(lines)} lines but element.dat has {n} atoms (one line per atom)")
    types = []
    for k, line in enumerate(lines, start=1):
        try:
            ls = tuple(int(x) for x in line.split())
        except ValueError:
            raise DataFormatError(f"{path}: line {k} is not a list of integers: {line!r}") from None
        if not ls or any(not 0 <= l <= 3 for l in ls):
            # DeepH/OpenMX define the orbital order for s, p, d, f only.
            raise DataFormatError(f"{path}: line {k} must list angular momenta 0..3, got {line!r}")
        types.append(ls)
    return types


def _read_info(path: Path) -> dict:
    # OpenMX's and FHI-aims' preprocessors write only a few keys (isspinful, fermi_level), so all are optional.
    if not path.exists():
        return {}
    info = read_json(path)
    if info.get("isspinful"):
        raise DataFormatError(f"{path}: spinful (spin-orbit) data are not supported")
    for key in ("nsites", "norbits"):
        if key in info and not isinstance(info[key], int):
            raise DataFormatError(f"{path}: {key} must be an integer, got {info[key]!r}")
    if info.get("fermi_level") is not None and not isinstance(info["fermi_level"], (int, float)):
        raise DataFormatError(f"{path}: fermi_level must be a number, got {info['fermi_level']!r}")
    return info


def _read_blocks(path: Path, norb: list[int]) -> dict[Edge, np.ndarray]:
    """Blocks of one DeepH HDF5 file by 0-based edge ``(Rx, Ry, Rz, i, j)``, still in DeepH order."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataFormatError(f"{path}: not a readable HDF5 file ({exc})") from None
    out: dict[Edge, np.ndarray] = {}
    with f:
        for name in f.keys():
            m = _DEEPH_KEY.match(name)
            if m is None:
                raise DataFormatError(f"{path}: dataset name {name!r} is not of the form '[Rx, Ry, Rz, i, j]'")
            rx, ry, rz, i, j = (int(x) for x in m.groups())
            if not (1 <= i <= len(norb) and 1 <= j <= len(norb)):
                raise DataFormatError(f"{path}: key {name!r} refers to an atom outside 1..{len(norb)}")
            edge = (rx, ry, rz, i - 1, j - 1)
            if edge in out:
                raise DataFormatError(f"{path}: edge {name!r} appears twice (differently spelled keys)")
            obj = f[name]
            if not isinstance(obj, h5py.Dataset):
                raise DataFormatError(f"{path}: {name!r} is not a dataset")
            try:
                raw = obj[()]
            except (OSError, TypeError, ValueError) as exc:
                raise DataFormatError(f"{path}: dataset {name!r} cannot be read ({exc})") from None
            out[edge] = checked_block(raw, (norb[i - 1], norb[j - 1]), name, path)
    return out
