"""Which program's layout a Hamiltonian folder is in, one reader for all of them, and one writer.

Three layouts are recognised by their file names: DeepH's (:mod:`.deeph`, DeepH-pack's preprocessed
OpenMX/ABACUS/SIESTA data and ours), DeepH-pack's newer one (:mod:`.deeph_pack`, DeepH-dock's converters) and
DeePTB's (:mod:`.deeptb`). A folder of none of them is refused with the layouts looked for, what each lacks and
the files found.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, NamedTuple

from ase import Atoms

from . import deeph, deeph_pack, deeptb, h5
from ..core.errors import DataFormatError, ParameterError
from ..core.hamiltonian import RealSpaceHamiltonian


class Layout(NamedTuple):
    name: str
    title: str
    needs: tuple[str, ...]  # every one of these
    one_of: tuple[tuple[str, ...], ...]  # and one name of each group (H first)
    read: Callable[..., RealSpaceHamiltonian]


LAYOUTS: tuple[Layout, ...] = (
    Layout("deeph", "DeepH (DeepH-pack's preprocessed data)", deeph.STRUCTURE_FILES + (deeph.OVERLAP,),
           ((deeph.HAMILTONIAN, deeph.PREDICTION),), deeph.read_deeph),
    Layout("deeph-pack", "DeepH-pack's newer layout (DeepH-dock)", deeph_pack.STRUCTURE_FILES + (deeph_pack.OVERLAP,),
           ((deeph_pack.HAMILTONIAN, deeph_pack.PREDICTION),), deeph_pack.read_deeph_pack),
    Layout("deeptb", "DeePTB", deeptb.STRUCTURE_FILES, (deeptb.HAMILTONIANS, deeptb.OVERLAPS), deeptb.read_deeptb),
)


def _lacks(layout: Layout, names: set[str], need_hamiltonian: bool) -> list[str]:
    groups = layout.one_of if need_hamiltonian else layout.one_of[1:]
    return ([n for n in layout.needs if n not in names]
            + [" or ".join(g) for g in groups if not names & set(g)])


def detect_layout(folder: str | os.PathLike, need_hamiltonian: bool = True) -> Layout:
    """The layout of ``folder``; :class:`DataFormatError` listing the layouts looked for, what each lacks and the
    files found if it is none of them. ``need_hamiltonian=False`` recognises a folder by its structure and
    overlap alone (the H file may be elsewhere)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFormatError(f"{folder}: no such folder")
    names = {p.name for p in folder.iterdir() if p.is_file()}
    for layout in LAYOUTS:
        if not _lacks(layout, names, need_hamiltonian):
            return layout
    looked = "; ".join(f"{lay.title}: lacks {', '.join(_lacks(lay, names, need_hamiltonian))}" for lay in LAYOUTS)
    found = ", ".join(sorted(names)[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
    raise DataFormatError(f"{folder}: not a Hamiltonian folder of a known layout. Looked for {looked}. "
                          f"Found: {found or 'no files'}")


def read_folder(folder: str | os.PathLike, valence: Any = None, hamiltonian: str | os.PathLike | None = None,
                basis_name: str | None = None, **options: Any) -> RealSpaceHamiltonian:
    """Read a Hamiltonian folder of any recognised layout (DeepH, DeepH-pack's newer one, DeePTB).

    ``valence`` (a mapping element -> electrons, or the total per cell) gives the electron count where the
    folder does not; ``hamiltonian`` names the H file (a prediction such as ``hamiltonians_pred.h5``,
    ``hamiltonian_pred.h5`` or ``predicted_hamiltonians.h5``, or any path); other options go to the layout's
    reader (DeePTB: ``frame``, ``basis``). ``meta["source"]`` names the layout.
    """
    layout = detect_layout(folder, need_hamiltonian=hamiltonian is None)
    return layout.read(folder, basis_name=basis_name, valence=valence, hamiltonian=hamiltonian, **options)


def read_folder_structure(folder: str | os.PathLike, frame: int | None = None) -> Atoms:
    """Only the structure of a Hamiltonian folder of any recognised layout (no blocks are read)."""
    layout = detect_layout(folder, need_hamiltonian=False)
    folder = Path(folder)
    if layout.name == "deeph":
        return deeph.read_deeph_structure(folder)[0]
    if layout.name == "deeph-pack":
        return deeph_pack.read_deeph_pack_structure(folder)[0]
    return deeptb.read_deeptb_structure(folder, frame)[0]


def write_hamiltonian(ham: RealSpaceHamiltonian, path: str | os.PathLike, format: str = "h5") -> None:
    """Write H(R), S(R): ``format="h5"`` (our HDF5 file) or ``"deeph"`` (a DeepH folder)."""
    if format not in ("h5", "deeph"):
        raise ParameterError(f"format must be 'h5' or 'deeph', got {format!r}")
    (h5.save_h5 if format == "h5" else deeph.write_deeph)(ham, path)
