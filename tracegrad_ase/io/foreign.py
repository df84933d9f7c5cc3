"""What the readers and writers of other programs' Hamiltonian folders share (DeepH, DeepH-pack, DeePTB).

Valence charges: a folder written by DeepH-pack's or DeePTB's converters does not record how many electrons
each pseudopotential holds (OpenMX, ABACUS and SIESTA keep that in their own pseudopotential files), so a
reader takes them from, in order, the caller's ``valence=`` (per element, or the total per cell), then what the
folder records (our own writers add ``info.json["tracegrad"]``), and otherwise leaves them unknown: the basis
then has no valence for those elements, never the nuclear charge, and ``electronic.filling.electron_count``
reads the count off the recorded DFT Fermi level where that is unambiguous, else asks for ``valence=``. No table
of pseudopotential valences is guessed from.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols

from ..core.basis import OrbitalBasis, symbol_of
from ..core.errors import DataFormatError, ParameterError, UnknownElementError
from ..core.hamiltonian import RealSpaceHamiltonian

#: Our own entry in a foreign ``info.json``: {"valence": {symbol: electrons}} or {"nelectron": N}, and
#: {"no_fermi_level": true} where the file's Fermi level is a placeholder. Other readers ignore unknown keys.
OWN_KEY = "tracegrad"

Edge = tuple[int, int, int, int, int]


# -- valence charges ----------------------------------------------------------------------------------------
def resolve_valence(valence: Any, numbers: Iterable[int], recorded: Any = None,
                    where: str = "valence") -> tuple[dict[str, int], dict[str, Any]]:
    """Valence charges per element and the ``meta`` entries that go with them.

    ``valence`` (the caller's) wins over ``recorded`` (what the folder says); either is a mapping element ->
    electrons of the neutral atom (symbols or atomic numbers as keys; extra elements are ignored, so one mapping
    serves a whole data set) or the total per cell. A total of a one-element cell becomes per-element valences;
    otherwise it is kept as ``meta["nelectron"]`` with the formula it counts (``meta["nelectron_formula"]``), so
    it is never applied to another structure. Neither given: no valences, empty meta (the count stays unknown).
    """
    numbers = [int(z) for z in numbers]
    symbols = list(dict.fromkeys(chemical_symbols[z] for z in numbers))
    source, value = ("valence=", valence) if valence is not None else (where, recorded)
    if value is None:
        return {}, {}
    if isinstance(value, Mapping):
        given: dict[str, int] = {}
        for key, v in value.items():
            try:
                sym = symbol_of(int(key) if isinstance(key, (int, np.integer)) else str(key))
            except UnknownElementError as exc:
                raise ParameterError(f"{source}: {exc}") from None
            given[sym] = _electrons(v, source, f"valence of {sym}", atomic_numbers[sym])
        missing = [s for s in symbols if s not in given]
        if missing:
            raise ParameterError(f"{source} gives no valence charge for {', '.join(missing)} (the structure has "
                                 f"{', '.join(symbols)})")
        per = {s: given[s] for s in symbols}
        return per, {"nelectron": sum(per[chemical_symbols[z]] for z in numbers)}
    total = _electrons(value, source, "electron count per cell", sum(numbers))
    if len(symbols) == 1 and total % len(numbers) == 0:
        return {symbols[0]: total // len(numbers)}, {"nelectron": total}
    formula = Atoms(numbers=numbers).get_chemical_formula()
    return {}, {"nelectron": total, "nelectron_formula": formula}


def _electrons(value: Any, source: str, what: str, most: int) -> int:
    if isinstance(value, (bool, str)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ParameterError(f"{source}: the {what} must be a whole number of electrons, got {value!r} (a table of "
                             "pseudopotential valences is not built in: give the numbers)")
    if not float(value).is_integer() or not 0 < value <= most:
        raise ParameterError(f"{source}: the {what} must be a whole number in 1..{most} (no more than the nuclear "
                             f"charge), got {value!r}")
    return int(value)


def own_record(ham: RealSpaceHamiltonian) -> dict[str, Any]:
    """What our writers add to a foreign ``info.json`` under :data:`OWN_KEY`, so our folders read back whole."""
    record: dict[str, Any] = {}
    symbols = set(ham.atoms.get_chemical_symbols())
    if symbols <= set(ham.basis.valence):
        record["valence"] = {s: int(ham.basis.valence[s]) for s in sorted(symbols)}
    elif (ham.meta.get("nelectron") is not None
          and ham.meta.get("nelectron_formula") == ham.atoms.get_chemical_formula()):
        record["nelectron"] = int(ham.meta["nelectron"])
    if ham.meta.get("fermi_level_ev") is None:
        record["no_fermi_level"] = True
    return record


def read_own_record(info: Mapping, path: Path) -> tuple[Any, bool]:
    """(recorded valence or total or None, whether the file's Fermi level is real) from :data:`OWN_KEY`."""
    own = info.get(OWN_KEY) or {}
    if not isinstance(own, Mapping):
        raise DataFormatError(f"{path}: {OWN_KEY!r} must be a JSON object")
    return own.get("valence", own.get("nelectron")), not own.get("no_fermi_level", False)


# -- building the Hamiltonian -----------------------------------------------------------------------------
def element_shells(numbers: list[int], per_atom: list[tuple[int, ...]], path: Path) -> dict[str, tuple[int, ...]]:
    """Shells per element from shells per atom; atoms of one element must agree."""
    shells: dict[str, tuple[int, ...]] = {}
    for z, ls in zip(numbers, per_atom):
        sym = chemical_symbols[z]
        if shells.setdefault(sym, tuple(ls)) != tuple(ls):
            raise DataFormatError(f"{path}: atoms of element {sym} have different orbital types {list(shells[sym])} "
                                  f"and {list(ls)}")
    return shells


def assemble(atoms: Atoms, shells: Mapping[str, tuple[int, ...]], name: str, valence: Any, recorded: Any,
             h: Mapping[Edge, np.ndarray], s: Mapping[Edge, np.ndarray], order: str,
             meta: dict[str, Any]) -> RealSpaceHamiltonian:
    """A :class:`RealSpaceHamiltonian` from blocks in orbital order ``order``, on the union of H's and S's edges
    (a block absent from one file is zero: converters drop tiny blocks), converted to e3nn order once."""
    where = f"{meta.get('folder', 'the folder')}: the recorded valence"
    per, extra = resolve_valence(valence, atoms.numbers, recorded, where=where)
    basis = OrbitalBasis(name=name, shells=dict(shells), valence=per)
    numbers = [int(z) for z in atoms.numbers]
    norb = [basis.norb(z) for z in numbers]
    edges = sorted(set(h) | set(s))

    def block(blocks: Mapping[Edge, np.ndarray], e: Edge) -> np.ndarray:
        b = blocks.get(e)
        if b is None:
            return np.zeros((norb[e[3]], norb[e[4]]))
        return basis.convert_block(b, numbers[e[3]], numbers[e[4]], order, "e3nn")

    return RealSpaceHamiltonian(atoms=atoms, basis=basis, edges=np.asarray(edges, dtype=np.int64).reshape(-1, 5),
                                hamiltonian=[block(h, e) for e in edges], overlap=[block(s, e) for e in edges],
                                meta={**meta, **extra})


def checked_block(raw: Any, shape: tuple[int, int], name: str, path: Path) -> np.ndarray:
    """A real, finite float64 block of ``shape``; :class:`DataFormatError` naming ``path`` and ``name`` if not."""
    block = np.asarray(raw)
    if block.shape != shape:
        raise DataFormatError(f"{path}: block {name!r} has shape {block.shape}, expected {shape} from the orbitals")
    if np.iscomplexobj(block):
        if np.abs(block.imag).max(initial=0.0) > 0:
            raise DataFormatError(f"{path}: block {name!r} is complex; only real (spinless) data are read")
        block = block.real
    if not np.issubdtype(block.dtype, np.number):
        raise DataFormatError(f"{path}: block {name!r} is not numeric (dtype {block.dtype})")
    block = block.astype(float)
    if not np.isfinite(block).all():
        raise DataFormatError(f"{path}: block {name!r} contains NaN or infinite values")
    return block


def add_reverse_edges(blocks: dict[Edge, np.ndarray]) -> dict[Edge, np.ndarray]:
    """Blocks with every edge's partner: ``H_ji(-R) = H_ij(R)^T`` where a file stores one direction only."""
    out = dict(blocks)
    for (rx, ry, rz, i, j), b in blocks.items():
        out.setdefault((-rx, -ry, -rz, j, i), b.T.copy())
    return out


# -- files --------------------------------------------------------------------------------------------------
def require_files(folder: Path, names: Iterable[str], layout: str, hint: str = "") -> None:
    """A :class:`DataFormatError` unless ``folder`` is a folder holding every file in ``names``; the message names
    the ``layout`` and the missing files (then ``hint``)."""
    if not folder.is_dir():
        raise DataFormatError(f"{folder}: no such {layout} folder")
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise DataFormatError(f"{folder}: not a complete {layout} folder, missing {', '.join(missing)}{hint}")


def choose_file(folder: Path, given: str | os.PathLike | None, candidates: tuple[str, ...], what: str) -> Path:
    """``given`` (a name in ``folder``, else any path), else the first of ``candidates`` present in ``folder``."""
    if given is not None:
        path = folder / given if (folder / given).is_file() else Path(given)
        if not path.is_file():
            raise DataFormatError(f"{path}: no such {what} file")
        return path
    for name in candidates:
        if (folder / name).is_file():
            return folder / name
    raise DataFormatError(f"{folder}: no {what} file (looked for {', '.join(candidates)})")


def read_text(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{path}: not a readable text file ({exc})") from None


def read_matrix(path: Path) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an empty file warns; it is reported by the caller as a shape error
            m = np.loadtxt(path, ndmin=2, dtype=float)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{path}: not a table of numbers ({exc})") from None
    if not np.isfinite(m).all():
        raise DataFormatError(f"{path}: contains NaN or infinite values")
    return m


def read_json(path: Path) -> dict:
    try:
        info = json.loads(read_text(path))
    except ValueError as exc:
        raise DataFormatError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(info, dict):
        raise DataFormatError(f"{path}: expected a JSON object")
    return info


def read_atomic_numbers(path: Path) -> list[int]:
    tokens = read_text(path).split()
    if not tokens:
        raise DataFormatError(f"{path}: no atoms listed")
    numbers = []
    for tok in tokens:
        try:
            z = float(tok)  # np.savetxt-style writers give "6.000000000000000000e+00"
        except ValueError:
            raise DataFormatError(f"{path}: {tok!r} is not an atomic number") from None
        if z != int(z) or not 0 < int(z) < len(chemical_symbols):
            raise DataFormatError(f"{path}: {tok!r} is not an atomic number")
        numbers.append(int(z))
    return numbers


def check_replaceable(folder: Path, known: frozenset[str], marker: str) -> None:
    """Refuse to replace anything but an empty directory or a folder of ``known`` file names holding ``marker``,
    so user files are never deleted."""
    if not os.path.lexists(folder):
        return
    if folder.is_symlink() or not folder.is_dir():
        raise DataFormatError(f"{folder}: exists and is not a directory; refusing to overwrite it")
    entries = list(folder.iterdir())
    names = {p.name for p in entries}
    ours = (marker in names and names <= known and all(p.is_file() and not p.is_symlink() for p in entries))
    if entries and not ours:
        raise DataFormatError(f"{folder}: exists, is not empty and is not a folder of this layout; refusing to "
                              "overwrite it (remove it or choose another path)")
