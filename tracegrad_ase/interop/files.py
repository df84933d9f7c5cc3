"""Structure files in: anything ASE reads, else anything pymatgen reads, with clear errors for a missing or
unreadable file and for disordered sites; pymatgen's JSON/YAML are read as plain data (no code from data files)."""

from __future__ import annotations

import json
from pathlib import Path

from ..core.errors import InputNotFoundError, StructureError
from ..core.structures import check_ordered

__all__ = ["read_structure"]


def read_structure(path: str):
    """Any structure file ASE or pymatgen reads; a clear error for a missing or unreadable one, and for a file with
    partially occupied (disordered) sites, which would otherwise become one element per site without a word.
    A folder is read as a Hamiltonian folder of DeepH, DeepH-pack or DeePTB layout (its structure only)."""
    from ase.io import read

    if Path(path).is_dir():
        from ..io.layouts import read_folder_structure

        return read_folder_structure(path)
    if not Path(path).is_file():
        raise InputNotFoundError(f"{path}: no such file")
    try:
        atoms = read(path)
    except Exception as ase_error:  # ASE raises many types (even AssertionError) for unreadable files
        atoms = _read_with_pymatgen(path, ase_error)
    check_ordered(atoms, path)
    return atoms


def _read_with_pymatgen(path: str, ase_error: Exception):
    try:
        structure = _pymatgen_structure(path)
    except Exception:  # pymatgen raises as many types as ASE
        reason = str(ase_error) or type(ase_error).__name__
        raise StructureError(f"cannot read structure {path}: ASE and pymatgen cannot read a structure from it "
                             f"({reason})") from None
    if not structure.is_ordered:
        raise StructureError(f"{path} has partially occupied (disordered) sites ({structure.composition}): the model "
                             "needs one element per site with occupancy 1; build an ordered supercell first")
    from .pymatgen import to_atoms  # pymatgen is slow to import: only when ASE could not read the file

    return to_atoms(structure)


def _pymatgen_structure(path: str):
    """pymatgen's reader, except for its JSON and YAML structures: those are read here as plain data without the
    site properties, because pymatgen decodes them with monty's MontyDecoder, which imports whatever module an
    ``@module`` key names (running its code). The package needs no site properties; only the ``pbc`` this package
    stores in a structure's own properties is kept."""
    from pymatgen.core import Structure

    name = Path(path).name.lower()
    if not any(ext in name for ext in (".json", ".yaml", ".yml")):
        return Structure.from_file(path)
    import yaml
    from monty.io import zopen

    with zopen(path, "rt") as f:
        text = f.read()
    data = json.loads(text) if ".json" in name else yaml.safe_load(text)
    if not isinstance(data, dict) or "sites" not in data or "lattice" not in data:
        raise ValueError("not a pymatgen Structure (no 'lattice' and 'sites')")
    pbc = (data.get("properties") or {}).get("pbc") if isinstance(data.get("properties"), dict) else None
    clean = _without_properties(data)
    if pbc is not None:
        clean["properties"] = {"pbc": [bool(x) for x in pbc]}
    return Structure.from_dict(clean)


def _without_properties(obj):
    if isinstance(obj, dict):
        return {k: _without_properties(v) for k, v in obj.items() if k != "properties"}
    if isinstance(obj, list):
        return [_without_properties(v) for v in obj]
    return obj


# -- outputs: checked before any work --------------------------------------------------------------------
