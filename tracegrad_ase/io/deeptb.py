"""DeePTB's data folders in (DeePTB-E3 training data, and the Hamiltonians DeePTB predicts for Pardiso).

Checked against deepmodeling/DeePTB (docs/quick_start/input.md; dptb/data/dataset/_default_dataset.py;
dptb/data/interfaces/ham_to_feature.py, abacus.py; dptb/data/transforms.py ``OrbitalMapper``;
dptb/postprocess/unified/system.py ``to_pardiso``; dptb/postprocess/pardiso/utils/hamiltonian.jl;
dptb/utils/constants.py) and its example folders::

    atomic_numbers.dat   natoms (or nframes x natoms) atomic numbers
    positions.dat        (nframes x natoms) x 3, Å; Cartesian unless info.json says "pos_type": "frac"
    cell.dat             3 x 3 (or nframes x 3 x 3), vectors as rows, Å
    info.json            optional, here or in the folder above: "nframes", "pos_type", "pbc" (else pbc.dat)
    basis.dat            the shells per element: "{'Si': '1s1p'}" (to_pardiso), or one line per atom ("2s2p1d",
                         ABACUS interface); DeePTB orders orbitals s shells first, then p, d, ...
    hamiltonians.h5      a group per frame ("0", "1", ...), in it one dataset per edge named "i_j_Rx_Ry_Rz",
                         block norb(i) x norb(j), eV; atoms 0-based when "0_0_0_0_0" is present, else 1-based
                         (DeePTB's own rule); an edge may be stored in one direction only (H_ji(-R) = H_ij(R)^T)
    overlaps.h5          the same for S; DeePTB's predictions are predicted_hamiltonians.h5, predicted_overlaps.h5

Blocks are in the real spherical harmonics order m = -l..l (``"std"`` in :mod:`tracegrad_ase.core.basis`;
DeePTB's ``OPENMX2DeePTB`` and ``PYSCF2DeePTB`` are its maps), with ``H(k) = sum_R exp(2 pi i k.R) H(R)``.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from .foreign import (Edge, add_reverse_edges, assemble, checked_block, choose_file, element_shells,
                      read_atomic_numbers, read_json, read_matrix, read_text, require_files)
from ..core.basis import symbol_of
from ..core.errors import DataFormatError, ParameterError, UnknownElementError
from ..core.hamiltonian import RealSpaceHamiltonian

HAMILTONIANS = ("hamiltonians.h5", "predicted_hamiltonians.h5", "hamiltonian.h5")
OVERLAPS = ("overlaps.h5", "predicted_overlaps.h5")
STRUCTURE_FILES = ("atomic_numbers.dat", "positions.dat")
_L = "spdfgh"
_KEY = re.compile(r"^(\d+)_(\d+)_(-?\d+)_(-?\d+)_(-?\d+)$")


def read_deeptb(folder: str | os.PathLike, basis_name: str | None = None, valence: Any = None,
                hamiltonian: str | os.PathLike | None = None, frame: int | None = None,
                basis: Mapping[str, Any] | None = None) -> RealSpaceHamiltonian:
    """Read one structure of a DeePTB data folder (or of DeePTB's ``to_pardiso`` output).

    ``frame`` picks a structure of a trajectory folder (required when it has several). ``basis`` gives the
    shells per element ("2s2p1d", DeePTB's list ["3s", "3p", "d*"], or the l of each shell) where the folder
    has no ``basis.dat``. ``hamiltonian`` names the H file (default ``hamiltonians.h5``, else
    ``predicted_hamiltonians.h5``); the overlap is the matching ``overlaps.h5`` / ``predicted_overlaps.h5``.
    DeePTB folders record no valence charges and no Fermi level: pass ``valence=`` (a mapping element ->
    electrons, or the total per cell) to get an electron count. Blocks are converted from the ``"std"`` order
    to e3nn's; edges stored in one direction get their partner. Anything malformed raises
    :class:`DataFormatError` naming the file.
    """
    folder = Path(folder)
    require_files(folder, (), "DeePTB")
    h_path = choose_file(folder, hamiltonian, HAMILTONIANS, "DeePTB Hamiltonian")
    pred = h_path.name.startswith("predicted_")
    s_path = choose_file(folder, None, OVERLAPS[::-1] if pred else OVERLAPS, "DeePTB overlap")
    atoms, info, frame = read_deeptb_structure(folder, frame)
    numbers = [int(z) for z in atoms.numbers]
    shells = _shells(folder, numbers, basis)
    norb = [sum(2 * l + 1 for l in shells[chemical_symbols[z]]) for z in numbers]
    meta: dict = {"source": "deeptb", "folder": str(folder), "frame": frame, "hamiltonian_file": str(h_path),
                  "predicted": pred}
    h = add_reverse_edges(_read_blocks(h_path, frame, norb))
    s = add_reverse_edges(_read_blocks(s_path, frame, norb))
    return assemble(atoms, shells, basis_name or "deeptb", valence, None, h, s, "std", meta)


def read_deeptb_structure(folder: Path, frame: int | None = None) -> tuple[Atoms, dict, int]:
    """One frame's structure of a DeePTB folder, its info.json (here or one folder up) and the frame index."""
    info_path = next((p for p in (folder / "info.json", folder.parent / "info.json") if p.is_file()), None)
    info = read_json(info_path) if info_path else {}
    require_files(folder, STRUCTURE_FILES, "DeePTB", " (an ASE trajectory folder is read by DeePTB itself; export "
                  "it as text files)")
    z_all = read_atomic_numbers(folder / "atomic_numbers.dat")
    pos = read_matrix(folder / "positions.dat")
    if pos.shape[1:] != (3,):
        raise DataFormatError(f"{folder / 'positions.dat'}: expected 3 columns, got shape {pos.shape}")
    natoms = int(info.get("natoms", -1) or -1)
    nframes = int(info.get("nframes") or (len(pos) // natoms if natoms > 0 else 1))
    natoms = natoms if natoms > 0 else len(pos) // max(nframes, 1)
    if nframes < 1 or natoms < 1 or len(pos) != nframes * natoms or len(z_all) not in (natoms, nframes * natoms):
        raise DataFormatError(f"{folder}: {len(pos)} positions and {len(z_all)} atomic numbers do not make "
                              f"{nframes} frame(s) of {natoms} atoms")
    if frame is None and nframes > 1:
        raise ParameterError(f"{folder} holds {nframes} structures: pass frame= (0..{nframes - 1})")
    frame = 0 if frame is None else int(frame)
    if not 0 <= frame < nframes:
        raise ParameterError(f"frame {frame} is outside 0..{nframes - 1} in {folder}")
    numbers = z_all[frame * natoms:(frame + 1) * natoms] if len(z_all) > natoms else z_all
    pbc = info.get("pbc")
    if pbc is None and (folder / "pbc.dat").is_file():
        pbc = [bool(x) for x in read_matrix(folder / "pbc.dat").ravel()]
    pbc = [True] * 3 if pbc is None else ([bool(pbc)] * 3 if isinstance(pbc, bool) else [bool(x) for x in pbc])
    cell = np.zeros((3, 3))
    if (folder / "cell.dat").is_file():
        c = read_matrix(folder / "cell.dat")
        if c.shape not in ((3, 3), (3 * nframes, 3)):
            raise DataFormatError(f"{folder / 'cell.dat'}: expected 3 x 3 or {3 * nframes} x 3, got {c.shape}")
        cell = c if c.shape == (3, 3) else c[3 * frame:3 * frame + 3]
    elif any(pbc):
        raise DataFormatError(f"{folder}: periodic (pbc {pbc}) but no cell.dat")
    xyz = pos[frame * natoms:(frame + 1) * natoms]
    pos_type = info.get("pos_type", "cart")
    if pos_type not in ("cart", "frac", "ase"):
        raise DataFormatError(f"{info_path}: pos_type must be 'cart' or 'frac', got {pos_type!r}")
    xyz = xyz @ cell if pos_type == "frac" else xyz
    return Atoms(numbers=numbers, positions=xyz, cell=cell, pbc=pbc), info, frame


def parse_basis(value: Any, where: str) -> tuple[int, ...]:
    """DeePTB's shells of one element, s shells first: "2s2p1d", ["3s", "3p", "d*"] or (0, 0, 1, 1, 2)."""
    if isinstance(value, str):
        if not re.fullmatch(rf"(\d+[{_L}])+", value.strip()):
            raise DataFormatError(f"{where}: basis {value!r} is not of DeePTB's form '2s2p1d'")
        counts = {l: int(n) for n, l in re.findall(rf"(\d+)([{_L}])", value)}
        return tuple(_L.index(l) for l in _L for _ in range(counts.get(l, 0)))
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        letters = [re.findall(rf"[{_L}]", v) for v in value]
        if any(len(x) != 1 for x in letters):
            raise DataFormatError(f"{where}: basis {value!r} is not a list of DeePTB orbital names like '3s'")
        return tuple(sorted(_L.index(x[0]) for x in letters))
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, int) and 0 <= v < len(_L) for v in value):
        return tuple(value)
    raise DataFormatError(f"{where}: cannot read basis {value!r}")


def _shells(folder: Path, numbers: list[int], basis: Mapping[str, Any] | None) -> dict[str, tuple[int, ...]]:
    symbols = list(dict.fromkeys(chemical_symbols[z] for z in numbers))
    if basis is not None:
        try:
            given = {symbol_of(k): v for k, v in basis.items()}
        except (UnknownElementError, AttributeError) as exc:
            raise ParameterError(f"basis=: {exc}") from None
        if not set(symbols) <= set(given):
            raise ParameterError(f"basis= gives no shells for {', '.join(sorted(set(symbols) - set(given)))}")
        return {s: parse_basis(given[s], "basis=") for s in symbols}
    path = folder / "basis.dat"
    if not path.is_file():
        raise DataFormatError(f"{folder}: no basis.dat (the shells per element); pass basis=, e.g. "
                              f"{ {s: '2s2p1d' for s in symbols} }")
    text = read_text(path).strip()
    if text.startswith("{"):
        try:
            mapping = ast.literal_eval(text)  # a literal only: no code runs
        except (ValueError, SyntaxError) as exc:
            raise DataFormatError(f"{path}: not a mapping of element to shells ({exc})") from None
        missing = [s for s in symbols if s not in mapping]
        if missing:
            raise DataFormatError(f"{path}: no shells for {', '.join(missing)}")
        return {s: parse_basis(mapping[s], str(path)) for s in symbols}
    lines = text.splitlines()
    if len(lines) != len(numbers):
        raise DataFormatError(f"{path}: {len(lines)} lines but the structure has {len(numbers)} atoms")
    return element_shells(numbers, [parse_basis(line, str(path)) for line in lines], path)


def _read_blocks(path: Path, frame: int, norb: list[int]) -> dict[Edge, np.ndarray]:
    """One frame's blocks of a DeePTB HDF5 file by 0-based edge ``(Rx, Ry, Rz, i, j)``, still in "std" order."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataFormatError(f"{path}: not a readable HDF5 file ({exc})") from None
    with f:
        group = f.get(str(frame))
        if group is None and frame == 0 and all(isinstance(f[k], h5py.Dataset) for k in f):
            group = f  # blocks at the top level: one frame
        if not isinstance(group, h5py.Group):
            raise DataFormatError(f"{path}: no group {str(frame)!r} for frame {frame} (groups: "
                                  f"{', '.join(list(f)[:5]) or 'none'})")
        names = list(group.keys())
        base = 0 if "0_0_0_0_0" in group else 1
        out: dict[Edge, np.ndarray] = {}
        for name in names:
            m = _KEY.match(name)
            if m is None:
                raise DataFormatError(f"{path}: dataset name {name!r} is not of the form 'i_j_Rx_Ry_Rz'")
            i, j, rx, ry, rz = (int(x) for x in m.groups())
            i, j = i - base, j - base
            if not (0 <= i < len(norb) and 0 <= j < len(norb)):
                raise DataFormatError(f"{path}: key {name!r} refers to an atom outside the {len(norb)} atoms "
                                      f"({base}-based, as {'' if base == 0 else 'no '}'0_0_0_0_0' is present)")
            try:
                raw = group[name][()]
            except (OSError, TypeError, ValueError, AttributeError) as exc:
                raise DataFormatError(f"{path}: dataset {name!r} cannot be read ({exc})") from None
            out[(rx, ry, rz, i, j)] = checked_block(raw, (norb[i], norb[j]), name, path)
    return out
