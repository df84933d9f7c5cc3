"""Our on-disk format of a :class:`RealSpaceHamiltonian` (one HDF5 file per structure) and data set folders.
Writes are atomic (temporary name, then rename), so a killed job leaves no half file. The DeepH folder
format lives in :mod:`tracegrad_ase.deeph`.

HDF5 layout (``format = "tracegrad-ase/hamiltonian"``, ``format_version = 1``), documented in
``docs/data-format.md``:

=================  ==========  ===============================================================
dataset            shape       meaning
=================  ==========  ===============================================================
numbers            (N,)        atomic numbers
positions          (N, 3)      Cartesian positions, Å
cell               (3, 3)      lattice vectors as rows, Å
pbc                (3,)        periodic directions
edges              (E, 5)      Rx, Ry, Rz, i, j (0-based atoms)
block_offsets      (E+1,)      start of each edge's block in the flat arrays
hamiltonian        (sum,)      H_ij(R) blocks, row-major, eV, e3nn orbital order
overlap            (sum,)      S_ij(R) blocks, same layout
=================  ==========  ===============================================================

Attributes: ``basis`` and ``meta`` (JSON), ``energy_unit = "eV"``, ``length_unit = "Angstrom"``,
``orbital_order = "e3nn"``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
from ase import Atoms

from .atomic import atomic_path
from ..core.basis import OrbitalBasis
from ..core.errors import DataFormatError, InputNotFoundError
from ..core.hamiltonian import RealSpaceHamiltonian

FORMAT = "tracegrad-ase/hamiltonian"
STRUCTURES_DIR = "structures"  # a data set folder keeps one file per structure here
FORMAT_VERSION = 1
_DATASETS = ("numbers", "positions", "cell", "pbc", "edges", "block_offsets", "hamiltonian", "overlap")


def save_h5(ham: RealSpaceHamiltonian, path: str | os.PathLike) -> Path:
    """Write ``ham`` to ``path`` atomically; returns the path."""
    import h5py

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sizes = [h.size for h in ham.hamiltonian]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    flat = lambda blocks: np.concatenate([b.ravel() for b in blocks]) if blocks else np.zeros(0)  # noqa: E731
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["energy_unit"] = "eV"
        f.attrs["length_unit"] = "Angstrom"
        f.attrs["orbital_order"] = "e3nn"
        f.attrs["basis"] = json.dumps(ham.basis.to_dict())
        f.attrs["meta"] = json.dumps(ham.meta, default=_json_default)
        f["numbers"] = ham.atoms.numbers.astype(np.int64)
        f["positions"] = ham.atoms.get_positions()
        f["cell"] = np.asarray(ham.atoms.cell[:], dtype=float)
        f["pbc"] = np.asarray(ham.atoms.pbc, dtype=bool)
        f["edges"] = ham.edges
        f["block_offsets"] = offsets
        f.create_dataset("hamiltonian", data=flat(ham.hamiltonian), compression="gzip", shuffle=True)
        f.create_dataset("overlap", data=flat(ham.overlap), compression="gzip", shuffle=True)
    return path


def load_h5(path: str | os.PathLike) -> RealSpaceHamiltonian:
    """Read a file written by :func:`save_h5`; a clear :class:`DataFormatError` for anything else."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataFormatError(f"{path}: not a readable HDF5 file ({exc})") from None
    with f:
        fmt = f.attrs.get("format")
        if fmt != FORMAT:
            raise DataFormatError(f"{path}: not a tracegrad-ase Hamiltonian file (format attribute {fmt!r})")
        version = int(f.attrs.get("format_version", -1))
        if version > FORMAT_VERSION:
            raise DataFormatError(f"{path}: format version {version} is newer than this package reads ({FORMAT_VERSION})")
        missing = [k for k in _DATASETS if k not in f]
        if missing:
            raise DataFormatError(f"{path}: missing datasets {missing}")
        try:
            data = {k: f[k][()] for k in _DATASETS}
            basis = OrbitalBasis.from_dict(json.loads(f.attrs["basis"]))
            meta = json.loads(f.attrs.get("meta", "{}"))
        except (OSError, KeyError, ValueError) as exc:
            raise DataFormatError(f"{path}: corrupt content ({exc})") from None
    _check_finite(path, data)
    atoms = Atoms(numbers=data["numbers"], positions=data["positions"], cell=data["cell"], pbc=data["pbc"])
    off = data["block_offsets"]
    edges = np.asarray(data["edges"], dtype=np.int64).reshape(-1, 5)
    if len(off) != len(edges) + 1 or off[-1] != len(data["hamiltonian"]) or off[-1] != len(data["overlap"]):
        raise DataFormatError(f"{path}: block offsets do not match the stored blocks")
    try:
        shapes = [(basis.norb(atoms.numbers[i]), basis.norb(atoms.numbers[j])) for i, j in edges[:, 3:]]
    except IndexError:
        raise DataFormatError(f"{path}: an edge refers to an atom that is not in the structure") from None
    if any(off[e + 1] - off[e] != a * b for e, (a, b) in enumerate(shapes)):
        raise DataFormatError(f"{path}: block sizes do not match the basis {basis.name!r}")
    h = [data["hamiltonian"][off[e] : off[e + 1]].reshape(s) for e, s in enumerate(shapes)]
    s_ = [data["overlap"][off[e] : off[e + 1]].reshape(s) for e, s in enumerate(shapes)]
    return RealSpaceHamiltonian(atoms=atoms, basis=basis, edges=edges, hamiltonian=h, overlap=s_, meta=meta)


def _check_finite(path: Path, data: dict[str, np.ndarray]) -> None:
    """Refuse NaN or infinite numbers where data enter: one such file would train a model to NaN, or give NaN
    bands, without any other error."""
    for key in ("positions", "cell", "hamiltonian", "overlap"):
        values = np.asarray(data[key])
        if not np.issubdtype(values.dtype, np.number):
            raise DataFormatError(f"{path}: dataset {key!r} is not numeric ({values.dtype})")
        finite = np.isfinite(values)
        if finite.all():
            continue
        where = ""
        if key in ("hamiltonian", "overlap"):
            off = np.asarray(data["block_offsets"])
            first = int(np.flatnonzero(~finite.ravel())[0])
            edge = int(np.searchsorted(off, first, side="right")) - 1
            if 0 <= edge < len(data["edges"]):
                rx, ry, rz, i, j = (int(x) for x in np.asarray(data["edges"])[edge])
                where = f", first in the block of edge {edge} (atoms {i}-{j}, R=({rx}, {ry}, {rz}))"
        elif key == "positions":
            where = f" (atoms {sorted({int(a) for a in np.argwhere(~finite)[:, 0]})[:5]})"
        raise DataFormatError(f"{path}: {int((~finite).sum())} NaN or infinite value(s) in {key!r}{where}; "
                              "the file is corrupt or came from a failed calculation")


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in metadata")


# -- data set folders (written by datasets.generate_dataset) ---------------------------------------------
def load_dataset(out_dir: str | os.PathLike) -> list[Path]:
    """The ``.h5`` files of a data set folder, sorted by name."""
    h5_dir = Path(out_dir) / STRUCTURES_DIR
    if not h5_dir.is_dir():
        raise InputNotFoundError(f"{out_dir} is not a data set folder (no {STRUCTURES_DIR}/ in it)")
    return sorted(h5_dir.glob("*.h5"), key=lambda p: p.name)


def files_named(folders: Sequence[str | os.PathLike], names: set[str]) -> list[Path]:
    """The ``.h5`` files called one of ``names`` in the data set ``folders`` (in folder, then name order); a folder
    that is not a data set folder (not generated here) gives none."""
    return [f for d in folders if (Path(d) / STRUCTURES_DIR).is_dir() for f in load_dataset(d) if f.name in names]


def split_dataset(
    paths: Sequence[str | os.PathLike], fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> tuple[list, list, list]:
    """Train/validation/test split, the same for the same files and seed whatever their input order."""
    fractions = np.asarray(fractions, dtype=float)
    if fractions.shape != (3,) or np.any(fractions < 0) or not np.isclose(fractions.sum(), 1.0):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions.tolist()}")
    items = sorted(paths, key=lambda p: (Path(p).name, str(p)))
    order = np.random.default_rng(seed).permutation(len(items))
    # Cumulative rounding: the three parts always add up to all the files.
    cuts = np.rint(np.cumsum(fractions) * len(items)).astype(int)
    cuts[-1] = len(items)
    shuffled = [items[i] for i in order]
    return shuffled[: cuts[0]], shuffled[cuts[0] : cuts[1]], shuffled[cuts[1] :]


# -- content digests (a model card records the data it was trained and tested on) ------------------------
#: Run facts in ``meta`` that are not data: a file regenerated with other timings or thread counts is the same.
_RUN_ONLY_META = ("scf_wall_time_s", "blocks_wall_time_s", "resumed")


def content_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a structure file's content: every array (name, dtype, shape, values) and attribute, without the
    run facts in ``meta`` (wall times, threads). HDF5's own bookkeeping (chunking, timestamps) does not enter, so
    a copy or a rewrite of the same numbers has the same digest; different numbers never do."""
    import hashlib

    import h5py

    digest = hashlib.sha256()
    try:
        with h5py.File(path, "r") as f:
            for key in sorted(f.attrs):
                value = f.attrs[key]
                if key == "meta":
                    meta = json.loads(value)
                    for k in _RUN_ONLY_META:
                        meta.pop(k, None)
                    meta.get("settings", {}).pop("threads", None)
                    value = json.dumps(meta, sort_keys=True)
                digest.update(f"@{key}={value}\n".encode())
            for key in sorted(f):
                data = np.ascontiguousarray(f[key][()])
                digest.update(f"{key}:{data.dtype.str}:{data.shape}\n".encode())
                digest.update(data.tobytes())
    except (OSError, ValueError) as exc:
        raise DataFormatError(f"{path}: unreadable structure file ({exc})") from None
    return digest.hexdigest()


def data_digest(paths: Sequence[str | os.PathLike]) -> dict[str, object]:
    """One digest for a set of structure files: SHA-256 over their sorted names and content digests
    (``sha256``), and over their names and geometries alone (``geometry_sha256``, :func:`structure_digest`),
    with the count. The same files in any order, or copied elsewhere, give the same digests. Regenerated from
    a recipe on another machine, the numbers differ in the last bits (BLAS, threads), so ``sha256`` differs
    while ``geometry_sha256`` still matches: the same structures, labelled again."""
    import hashlib

    def sha(lines: list[str]) -> str:
        return hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()

    paths = list(paths)
    return {"structures": len(paths), "sha256": sha([f"{Path(p).name} {content_digest(p)}\n" for p in paths]),
            "geometry_sha256": sha([f"{Path(p).name} {structure_digest(p)}\n" for p in paths])}


#: Positions and cell are compared to this many decimals (Å): far below any displacement a data set draws, far
#: above the rounding of a rewrite.
_STRUCTURE_DECIMALS = 4


def structure_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a structure file's geometry alone (atomic numbers, positions and cell to 1e-4 Å, periodicity):
    the same structure labelled twice (another name, another folder, other settings) has the same digest, so a
    held-out cell cannot reach training under a new name."""
    import hashlib

    import h5py

    try:
        with h5py.File(path, "r") as f:
            arrays = {k: np.asarray(f[k][()]) for k in ("numbers", "positions", "cell", "pbc")}
    except (OSError, ValueError, KeyError) as exc:
        raise DataFormatError(f"{path}: unreadable structure file ({exc})") from None
    digest = hashlib.sha256()
    digest.update(arrays["numbers"].astype(np.int64).tobytes() + arrays["pbc"].astype(bool).tobytes())
    for key in ("positions", "cell"):
        # + 0.0 turns -0.0 into 0.0: the same number must give the same bytes
        digest.update((np.round(arrays[key].astype(np.float64), _STRUCTURE_DECIMALS) + 0.0).tobytes() + b"|")
    return digest.hexdigest()


def structure_index(paths: Sequence[str | os.PathLike]) -> dict[str, list[str]]:
    """:func:`structure_digest` -> the names of the files holding that structure: digest a set once, look up often."""
    index: dict[str, list[str]] = {}
    for p in paths:
        index.setdefault(structure_digest(p), []).append(Path(p).name)
    return index


def shared_structures(first: Sequence[str | os.PathLike],
                      second: Sequence[str | os.PathLike]) -> list[tuple[str, str]]:
    """Pairs (a file of ``first``, a file of ``second``) that hold the same structure (:func:`structure_digest`),
    as file names, sorted."""
    seen = structure_index(second)
    return sorted((Path(p).name, other) for p in first for other in seen.get(structure_digest(p), []))

