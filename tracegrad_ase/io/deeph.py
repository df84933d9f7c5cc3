"""The DeepH folder format, in and out, so users can bring DeepH-pack/OpenMX/ABACUS data and take ours out.

Layout (checked against mzjb/DeepH-pack's preprocessors, see :func:`write_deeph`): ``element.dat``,
``lat.dat``, ``rlat.dat``, ``site_positions.dat``, ``orbital_types.dat``, ``info.json``, ``hamiltonians.h5`` and
``overlaps.h5`` with datasets named ``"[Rx, Ry, Rz, i, j]"`` (atoms 1-based), blocks in the DeepH/OpenMX orbital
order. Folders are written under a temporary name and renamed into place.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols

from .atomic import atomic_folder
from ..core.basis import OrbitalBasis
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
# info.json            "isspinful" (the only key graph.py reads), "fermi_level" (eV), ...
# hamiltonians.h5      one dataset per edge named "[Rx, Ry, Rz, i, j]" (1-based atoms; graph.py
#                      ``json.loads(key)`` then subtracts 1), block norb(i) x norb(j), eV, OpenMX order
# overlaps.h5          same keys, overlap blocks
#
# Julia writes ``permutedims(block)`` and HDF5 is row-major, so h5py reads DeepH-pack's blocks as
# norb(i) x norb(j) with no transpose (dense_calc.py: "the matrix do not need be transposed in Python").

_DEEPH_REQUIRED = ("element.dat", "lat.dat", "site_positions.dat", "orbital_types.dat",
                   "hamiltonians.h5", "overlaps.h5")
# Files DeepH-pack writes into (or derives inside) a structure folder; a folder holding nothing else is ours to
# replace. The derived ones (rc.h5, rh.h5, ...) would be stale after a rewrite, so removing them is right.
_DEEPH_KNOWN = frozenset(_DEEPH_REQUIRED + (
    "rlat.dat", "info.json", "R_list.dat", "density_matrixs.h5", "positions.h5",
    "rc.h5", "rh.h5", "rdm.h5", "hamiltonians_pred.h5", "rh_pred.h5",
))
_DEEPH_KEY = re.compile(r"^\[\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\]$")


def deeph_key(rx: int, ry: int, rz: int, i: int, j: int) -> str:
    """DeepH dataset name of edge ``(R, i, j)`` with 0-based atoms: ``"[Rx, Ry, Rz, i+1, j+1]"``.

    The spacing is that of Julia's ``string([...])`` and of abacus_get_data.py's f-string, so the names match
    DeepH-pack's own files byte for byte.
    """
    return f"[{int(rx)}, {int(ry)}, {int(rz)}, {int(i) + 1}, {int(j) + 1}]"


def write_deeph(ham: RealSpaceHamiltonian, folder: str | os.PathLike) -> Path:
    """Write ``ham`` as a DeepH-pack preprocessed folder; returns its path.

    Layout verified against mzjb/DeepH-pack (see the table above): ``lat.dat`` and ``site_positions.dat`` hold
    vectors as columns (abacus_get_data.py saves ``np.transpose(lattice)`` and ``np.transpose(cart_coords)``;
    data.py reads both back with ``.T``); ``rlat.dat`` is ``2π inv(lat)^T`` with vectors as columns
    (openmx_get_data.jl); keys are ``"[Rx, Ry, Rz, i, j]"`` with 1-based atoms; H is in eV, lengths in Å;
    info.json has abacus_get_data.py's keys ``nsites, isorthogonal, isspinful, norbits, fermi_level``. Blocks
    are converted e3nn -> DeepH/OpenMX order (p: x, y, z; d: z², x²-y², xy, xz, yz).

    The folder is built under a temporary sibling name and renamed into place. An existing DeepH folder (only
    DeepH file names inside) is replaced; any other non-empty path raises :class:`DataFormatError` and is left
    untouched, so user files are never deleted.
    """
    import h5py

    folder = Path(folder)
    _check_replaceable(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    numbers = [int(z) for z in ham.atoms.numbers]
    cell = np.asarray(ham.atoms.cell[:], dtype=float)
    if abs(np.linalg.det(cell)) < 1e-12:
        # DeepH folders are periodic; rlat.dat and every reader need a full lattice.
        raise ValueError("the DeepH format needs a full 3-D cell; this structure's cell is singular")
    fermi = ham.meta.get("fermi_level_ev")
    info = {
        "nsites": len(numbers),
        "isorthogonal": False,
        "isspinful": False,
        "norbits": int(ham.norb),
        "fermi_level": 0.0 if fermi is None else float(fermi),
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
        for name, blocks in (("hamiltonians.h5", ham.hamiltonian), ("overlaps.h5", ham.overlap)):
            with h5py.File(tmp / name, "w") as f:
                for (rx, ry, rz, i, j), block in zip(ham.edges, blocks):
                    key = deeph_key(rx, ry, rz, i, j)
                    if key in f:
                        raise ValueError(f"edge {key} (1-based) appears twice in the Hamiltonian")
                    f[key] = ham.basis.convert_block(np.asarray(block, dtype=float), numbers[i], numbers[j],
                                                     "e3nn", "deeph")
    return folder


def _is_deeph_folder(folder: Path) -> bool:
    entries = list(folder.iterdir())
    names = {p.name for p in entries}
    return ("element.dat" in names and all(p.is_file() and not p.is_symlink() for p in entries)
            and names <= _DEEPH_KNOWN)


def _check_replaceable(folder: Path) -> None:
    if not os.path.lexists(folder):
        return
    if folder.is_symlink() or not folder.is_dir():
        raise DataFormatError(f"{folder}: exists and is not a directory; refusing to overwrite it")
    if any(folder.iterdir()) and not _is_deeph_folder(folder):
        raise DataFormatError(f"{folder}: exists, is not empty and is not a DeepH folder; "
                              "refusing to overwrite it (remove it or choose another path)")


def read_deeph(folder: str | os.PathLike, basis_name: str | None = None) -> RealSpaceHamiltonian:
    """Read a DeepH folder (ours, or DeepH-pack's OpenMX/ABACUS preprocessor output).

    The orbital basis is rebuilt from ``orbital_types.dat`` per element and named ``basis_name`` (default
    ``"deeph"``). The folder does not record valence charges, so ``valence`` is set to the nuclear charge Z;
    for pseudopotential data (OpenMX, ABACUS) that is not the true electron count, and a caller that needs it
    must replace the basis. ``pbc`` is True in every direction (DeepH folders are periodic). Blocks are
    converted DeepH/OpenMX -> e3nn order; ``meta`` carries ``fermi_level_ev`` from info.json when present.

    DeepH-pack's ABACUS preprocessor drops blocks below 1e-8, so H and S may have different keys: the edges
    are their union and a block absent from one file is zero. Spinful folders are not supported. Anything
    malformed raises :class:`DataFormatError` naming the file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFormatError(f"{folder}: no such DeepH folder")
    missing = [name for name in _DEEPH_REQUIRED if not (folder / name).is_file()]
    if missing:
        raise DataFormatError(f"{folder}: not a complete DeepH folder, missing {', '.join(missing)}")

    numbers = _read_elements(folder / "element.dat")
    n = len(numbers)
    lat = _read_matrix(folder / "lat.dat")
    if lat.shape != (3, 3):
        raise DataFormatError(f"{folder / 'lat.dat'}: expected 3 x 3 lattice vectors, got shape {lat.shape}")
    pos = _read_matrix(folder / "site_positions.dat")
    if n == 1 and pos.shape == (1, 3):
        pos = pos.T  # a single atom written as one row
    if pos.shape != (3, n):
        raise DataFormatError(f"{folder / 'site_positions.dat'}: expected 3 x {n} positions (columns are atoms, "
                              f"{n} atoms in element.dat), got shape {pos.shape}")
    types = _read_orbital_types(folder / "orbital_types.dat", n)
    info = _read_info(folder / "info.json")

    shells: dict[str, tuple[int, ...]] = {}
    for z, ls in zip(numbers, types):
        sym = chemical_symbols[z]
        if shells.setdefault(sym, ls) != ls:
            raise DataFormatError(f"{folder / 'orbital_types.dat'}: atoms of element {sym} have different "
                                  f"orbital types {list(shells[sym])} and {list(ls)}")
    basis = OrbitalBasis(name=basis_name or "deeph", shells=shells, valence={s: atomic_numbers[s] for s in shells})
    norb = [basis.norb(z) for z in numbers]
    if "nsites" in info and info["nsites"] != n:
        raise DataFormatError(f"{folder / 'info.json'}: nsites = {info['nsites']} but element.dat has {n} atoms")
    if "norbits" in info and info["norbits"] != sum(norb):
        raise DataFormatError(f"{folder / 'info.json'}: norbits = {info['norbits']} but orbital_types.dat "
                              f"gives {sum(norb)}")

    h = _read_blocks(folder / "hamiltonians.h5", norb)
    s = _read_blocks(folder / "overlaps.h5", norb)
    edges = sorted(set(h) | set(s))
    zero = lambda e: np.zeros((norb[e[3]], norb[e[4]]))  # noqa: E731
    convert = lambda b, e: basis.convert_block(b, numbers[e[3]], numbers[e[4]], "deeph", "e3nn")  # noqa: E731
    atoms = Atoms(numbers=numbers, positions=pos.T, cell=lat.T, pbc=True)
    meta: dict = {"source": "deeph", "deeph_folder": str(folder)}
    if info.get("fermi_level") is not None:
        meta["fermi_level_ev"] = float(info["fermi_level"])
    return RealSpaceHamiltonian(
        atoms=atoms,
        basis=basis,
        edges=np.asarray(edges, dtype=np.int64).reshape(-1, 5),
        hamiltonian=[convert(h.get(e, zero(e)), e) for e in edges],
        overlap=[convert(s.get(e, zero(e)), e) for e in edges],
        meta=meta,
    )


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{path}: not a readable text file ({exc})") from None


def _read_elements(path: Path) -> list[int]:
    tokens = _read_text(path).split()
    if not tokens:
        raise DataFormatError(f"{path}: no atoms listed")
    numbers = []
    for tok in tokens:
        try:
            z = float(tok)  # np.loadtxt-style writers give "6.000000000000000000e+00"
        except ValueError:
            raise DataFormatError(f"{path}: {tok!r} is not an atomic number") from None
        if z != int(z) or not 0 < int(z) < len(chemical_symbols):
            raise DataFormatError(f"{path}: {tok!r} is not an atomic number")
        numbers.append(int(z))
    return numbers


def _read_matrix(path: Path) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an empty file warns; it is reported below as a shape error
            m = np.loadtxt(path, ndmin=2, dtype=float)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{path}: not a table of numbers ({exc})") from None
    if not np.isfinite(m).all():
        raise DataFormatError(f"{path}: contains NaN or infinite values")
    return m


def _read_orbital_types(path: Path, n: int) -> list[tuple[int, ...]]:
    lines = _read_text(path).splitlines()
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
    try:
        info = json.loads(_read_text(path))
    except ValueError as exc:
        raise DataFormatError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(info, dict):
        raise DataFormatError(f"{path}: expected a JSON object")
    if info.get("isspinful"):
        raise DataFormatError(f"{path}: spinful (spin-orbit) data are not supported")
    for key in ("nsites", "norbits"):
        if key in info and not isinstance(info[key], int):
            raise DataFormatError(f"{path}: {key} must be an integer, got {info[key]!r}")
    if info.get("fermi_level") is not None and not isinstance(info["fermi_level"], (int, float)):
        raise DataFormatError(f"{path}: fermi_level must be a number, got {info['fermi_level']!r}")
    return info


def _read_blocks(path: Path, norb: list[int]) -> dict[tuple[int, int, int, int, int], np.ndarray]:
    """Blocks of one DeepH HDF5 file by 0-based edge ``(Rx, Ry, Rz, i, j)``, still in DeepH order."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataFormatError(f"{path}: not a readable HDF5 file ({exc})") from None
    out: dict[tuple[int, int, int, int, int], np.ndarray] = {}
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
                block = np.asarray(obj[()])
            except (OSError, TypeError, ValueError) as exc:
                raise DataFormatError(f"{path}: dataset {name!r} cannot be read ({exc})") from None
            if block.shape != (norb[i - 1], norb[j - 1]):
                raise DataFormatError(f"{path}: block {name!r} has shape {block.shape}, expected "
                                      f"{(norb[i - 1], norb[j - 1])} from orbital_types.dat")
            if np.iscomplexobj(block):
                if np.abs(block.imag).max(initial=0.0) > 0:
                    raise DataFormatError(f"{path}: block {name!r} is complex; only real (spinless) data are read")
                block = block.real
            if not np.issubdtype(block.dtype, np.number):
                raise DataFormatError(f"{path}: block {name!r} is not numeric (dtype {block.dtype})")
            block = block.astype(float)
            if not np.isfinite(block).all():
                raise DataFormatError(f"{path}: block {name!r} contains NaN or infinite values")
            out[edge] = block
    return out
