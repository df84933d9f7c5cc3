"""DeepH-pack's newer folder layout (DeepH-dock's "DeepH format"), in and out.

Checked against kYangLi/DeepH-dock (docs/key_concepts.md; deepx_dock/CONSTANT.py; misc.load_poscar_file;
convert/deeph/translate_old_dataset_to_new.py; compute/eigen/hamiltonian.py) and its example folders::

    POSCAR               the structure (VASP 5: species line; a species may recur in several runs)
    info.json            "atoms_quantity", "orbits_quantity", "orthogonal_basis", "spinful",
                         "fermi_energy_eV" (or null), "elements_orbital_map" {symbol: [l of each shell]}
    overlap.h5           required; every *.h5 holds "atom_pairs" (N x 5: Rx, Ry, Rz, i, j, atoms 0-based in
                         POSCAR order), "chunk_shapes" (N x 2), "chunk_boundaries" (N + 1) and "entries" (the
                         blocks norb(i) x norb(j), row-major, concatenated)
    hamiltonian.h5       optional there, eV; DeepH's inference writes "hamiltonian_pred.h5" in the same form

Blocks are in the real spherical harmonics order m = -l..l (``"std"`` in :mod:`tracegrad_ase.core.basis`):
DeepH-dock's translator takes OpenMX's order to it with ``BASIS_TRANS_OPENMX2WIKI``. The block on
``(R, i, j)`` is ``<i, 0|H|j, R>`` with ``H(k) = sum_R exp(2 pi i k.R) H(R)``, as here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from .atomic import atomic_folder
from .deeph import full_cell
from .foreign import (OWN_KEY, Edge, assemble, check_replaceable, checked_block, choose_file, own_record, read_json,
                      read_own_record, require_files)
from ..core.errors import DataFormatError
from ..core.hamiltonian import RealSpaceHamiltonian

HAMILTONIAN, PREDICTION, OVERLAP = "hamiltonian.h5", "hamiltonian_pred.h5", "overlap.h5"
STRUCTURE_FILES = ("POSCAR", "info.json")
_KEYS = ("atom_pairs", "chunk_boundaries", "chunk_shapes", "entries")
# DeepH-dock's file names (CONSTANT.py): a folder of nothing else is ours to replace. K_PATH is an input the
# user wrote, so a folder holding one is left alone.
_KNOWN = frozenset(STRUCTURE_FILES + (OVERLAP, HAMILTONIAN, PREDICTION, "density_matrix.h5", "position_matrix.h5",
                                      "potential_r.h5", "charge_density.h5", "force.h5"))
_MAX_L = 6


def write_deeph_pack(ham: RealSpaceHamiltonian, folder: str | os.PathLike, predicted: bool = False) -> Path:
    """Write ``ham`` in DeepH-pack's newer layout (``POSCAR``, ``info.json``, ``hamiltonian.h5``,
    ``overlap.h5``); returns the folder. ``predicted=True`` names H ``hamiltonian_pred.h5``.

    The POSCAR keeps the atoms' order (species in consecutive runs, which DeepH-dock reads) and full float
    precision, so the folder reads back exactly. info.json carries DeepH-dock's keys and ours (``"tracegrad"``:
    valence charges). Written under a temporary name and renamed into place; an existing folder is replaced
    only if it holds nothing but this layout's files.
    """
    import h5py

    folder = Path(folder)
    _check_replaceable(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    numbers = [int(z) for z in ham.atoms.numbers]
    fermi = ham.meta.get("fermi_level_ev")
    info = {
        "atoms_quantity": len(numbers),
        "orbits_quantity": int(ham.norb),
        "orthogonal_basis": False,
        "spinful": False,
        "fermi_energy_eV": None if fermi is None else float(fermi),
        "elements_orbital_map": {chemical_symbols[z]: list(ham.basis.shells_of(z)) for z in dict.fromkeys(numbers)},
        OWN_KEY: own_record(ham),
    }
    pairs = np.asarray(ham.edges, dtype=np.int64).reshape(-1, 5)
    shapes = np.array([(ham.basis.norb(numbers[i]), ham.basis.norb(numbers[j])) for *_, i, j in pairs],
                      dtype=np.int64).reshape(-1, 2)
    bounds = np.concatenate([[0], np.cumsum(shapes.prod(axis=1))]).astype(np.int64)
    with atomic_folder(folder, before_replace=_check_replaceable) as tmp:
        (tmp / "POSCAR").write_text(_poscar(ham.atoms, full_cell(ham)))
        (tmp / "info.json").write_text(json.dumps(info, indent=4))
        for name, blocks in ((PREDICTION if predicted else HAMILTONIAN, ham.hamiltonian), (OVERLAP, ham.overlap)):
            flat = [ham.basis.convert_block(np.asarray(b, dtype=float), numbers[i], numbers[j], "e3nn", "std").ravel()
                    for (*_, i, j), b in zip(pairs, blocks)]
            with h5py.File(tmp / name, "w") as f:
                f["atom_pairs"], f["chunk_boundaries"], f["chunk_shapes"] = pairs, bounds, shapes
                f["entries"] = np.concatenate(flat) if flat else np.zeros(0)
    return folder


def _poscar(atoms: Atoms, cell: np.ndarray) -> str:
    symbols = atoms.get_chemical_symbols()
    runs: list[list] = []
    for s in symbols:
        if runs and runs[-1][0] == s:
            runs[-1][1] += 1
        else:
            runs.append([s, 1])
    lines = [f"{atoms.get_chemical_formula()} written by tracegrad-ase", "1.0"]
    lines += ["  " + "  ".join(repr(float(x)) for x in v) for v in cell]
    lines += [" ".join(r[0] for r in runs), " ".join(str(r[1]) for r in runs), "Cartesian"]
    lines += ["  " + "  ".join(repr(float(x)) for x in p) for p in atoms.get_positions()]
    return "\n".join(lines) + "\n"


def _check_replaceable(folder: Path) -> None:
    check_replaceable(folder, _KNOWN, "POSCAR")


def read_deeph_pack(folder: str | os.PathLike, basis_name: str | None = None, valence: Any = None,
                    hamiltonian: str | os.PathLike | None = None) -> RealSpaceHamiltonian:
    """Read a folder of DeepH-pack's newer layout (DeepH-dock's converters from OpenMX, ABACUS, SIESTA, FHI-aims,
    or :func:`write_deeph_pack`).

    ``hamiltonian`` names the H file (in the folder, or any path: DeepH's inference may write
    ``hamiltonian_pred.h5`` into another tree); by default ``hamiltonian.h5``, else ``hamiltonian_pred.h5``.
    Valence charges: as :func:`tracegrad_ase.io.deeph.read_deeph` (``valence=``, else the folder's record, else
    unknown, never Z). The basis (named ``basis_name``, default ``"deeph-pack"``) comes from
    ``elements_orbital_map``; blocks are converted from the ``"std"`` order to e3nn's. ``pbc`` is True in every
    direction. Spinful data are refused; anything malformed raises :class:`DataFormatError` naming the file.
    """
    folder = Path(folder)
    require_files(folder, STRUCTURE_FILES + (OVERLAP,), "DeepH-pack")
    h_path = choose_file(folder, hamiltonian, (HAMILTONIAN, PREDICTION), "DeepH-pack Hamiltonian")
    atoms, shells, info = read_deeph_pack_structure(folder)
    numbers = [int(z) for z in atoms.numbers]
    norb = [sum(2 * l + 1 for l in shells[chemical_symbols[z]]) for z in numbers]
    if info.get("orbits_quantity") is not None and info["orbits_quantity"] != sum(norb):
        raise DataFormatError(f"{folder / 'info.json'}: orbits_quantity = {info['orbits_quantity']} but "
                              f"elements_orbital_map gives {sum(norb)}")
    recorded, fermi_known = read_own_record(info, folder / "info.json")
    meta: dict = {"source": "deeph-pack", "folder": str(folder), "hamiltonian_file": str(h_path),
                  "predicted": h_path.name == PREDICTION}
    fermi = info.get("fermi_energy_eV")
    if fermi is not None and fermi_known:
        meta["fermi_level_ev"] = float(fermi)
    return assemble(atoms, shells, basis_name or "deeph-pack", valence, recorded, read_pack_blocks(h_path, norb),
                    read_pack_blocks(folder / OVERLAP, norb), "std", meta)


def read_deeph_pack_structure(folder: Path) -> tuple[Atoms, dict[str, tuple[int, ...]], dict]:
    """The structure (periodic), the shells per element and the checked info.json of a DeepH-pack folder."""
    from ase.io import read

    try:
        atoms = read(folder / "POSCAR", format="vasp")
    except Exception as exc:  # ASE raises many types for a malformed POSCAR
        raise DataFormatError(f"{folder / 'POSCAR'}: not a readable VASP 5 structure ({exc or type(exc).__name__})"
                              ) from None
    atoms.pbc = True
    path = folder / "info.json"
    info = read_json(path)
    if info.get("spinful"):
        raise DataFormatError(f"{path}: spinful (spin-orbit) data are not supported")
    if info.get("orthogonal_basis"):
        raise DataFormatError(f"{path}: orthogonal-basis data are not supported (an overlap is needed)")
    if info.get("atoms_quantity") is not None and info["atoms_quantity"] != len(atoms):
        raise DataFormatError(f"{path}: atoms_quantity = {info['atoms_quantity']} but POSCAR has {len(atoms)} atoms")
    fermi = info.get("fermi_energy_eV")
    if fermi is not None and (isinstance(fermi, bool) or not isinstance(fermi, (int, float))):
        raise DataFormatError(f"{path}: fermi_energy_eV must be a number or null, got {fermi!r}")
    orbital_map = info.get("elements_orbital_map")
    if not isinstance(orbital_map, dict):
        raise DataFormatError(f"{path}: no 'elements_orbital_map' (the l of each shell per element)")
    shells: dict[str, tuple[int, ...]] = {}
    for sym in dict.fromkeys(atoms.get_chemical_symbols()):
        ls = orbital_map.get(sym)
        if (not isinstance(ls, list) or not ls
                or not all(isinstance(l, int) and not isinstance(l, bool) and 0 <= l <= _MAX_L for l in ls)):
            raise DataFormatError(f"{path}: elements_orbital_map[{sym!r}] must list angular momenta 0..{_MAX_L}, "
                                  f"got {ls!r}")
        shells[sym] = tuple(ls)
    return atoms, shells, info


def read_pack_blocks(path: Path, norb: list[int]) -> dict[Edge, np.ndarray]:
    """Blocks of one DeepH-pack HDF5 file by 0-based edge ``(Rx, Ry, Rz, i, j)``, still in "std" order."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataFormatError(f"{path}: not a readable HDF5 file ({exc})") from None
    with f:
        absent = [k for k in _KEYS if k not in f]
        if absent:
            raise DataFormatError(f"{path}: no {', '.join(absent)} (a DeepH-pack file holds {', '.join(_KEYS)})")
        try:
            pairs, bounds, shapes, entries = (np.asarray(f[k][()]) for k in _KEYS)
        except (OSError, TypeError, ValueError) as exc:
            raise DataFormatError(f"{path}: cannot be read ({exc})") from None
    n = len(norb)
    if pairs.ndim != 2 or pairs.shape[1] != 5 or not np.issubdtype(pairs.dtype, np.integer):
        raise DataFormatError(f"{path}: atom_pairs must be an integer N x 5 array, got {pairs.shape} {pairs.dtype}")
    if bounds.shape != (len(pairs) + 1,) or shapes.shape != (len(pairs), 2) or entries.ndim != 1:
        raise DataFormatError(f"{path}: chunk_boundaries {bounds.shape}, chunk_shapes {shapes.shape} and entries "
                              f"{entries.shape} do not fit {len(pairs)} atom pairs")
    if bounds[0] != 0 or bounds[-1] != len(entries) or (np.diff(bounds) != shapes.prod(axis=1)).any():
        raise DataFormatError(f"{path}: chunk_boundaries do not match chunk_shapes and the entries")
    out: dict[Edge, np.ndarray] = {}
    for k, (rx, ry, rz, i, j) in enumerate(pairs.tolist()):
        name = f"atom pair {[rx, ry, rz, i, j]}"
        if not (0 <= i < n and 0 <= j < n):
            raise DataFormatError(f"{path}: {name} refers to an atom outside 0..{n - 1}")
        if (rx, ry, rz, i, j) in out:
            raise DataFormatError(f"{path}: {name} appears twice")
        want = (norb[i], norb[j])
        if tuple(shapes[k]) == (2 * want[0], 2 * want[1]):
            raise DataFormatError(f"{path}: {name} is spinful (twice the orbitals); only spinless data are read")
        block = entries[bounds[k]:bounds[k + 1]].reshape(tuple(int(x) for x in shapes[k]))
        out[(rx, ry, rz, i, j)] = checked_block(block, want, name, path)
    return out
