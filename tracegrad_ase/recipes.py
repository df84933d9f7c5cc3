"""Data set recipes: a YAML file that says which structures to make and how to compute them.

A recipe is the reproducible record of a data set (fixed seeds), so a data set need not be shipped::

    out_dir: data/graphene-szv        # relative to the recipe file
    workers: 1                        # local Dask workers (or pass a scheduler address)
    threads_per_worker: 2
    settings: {basis: gth-szv, kmesh: [3, 3, 1], cutoff: 8.0}   # GroundTruthSettings fields
    structures:
      - base: {build: graphene, kwargs: {a: 2.46, vacuum: 5.0}, pbc: [true, true, false], repeat: [2, 2, 1]}
        perturb: {n: 20, displacement: 0.05, strain: 0.01, seed: 0}
      - base: {file: Si.cif}
        phonopy: {supercell: [[2, 0, 0], [0, 2, 0], [0, 0, 2]], distance: 0.01}
      - base: {build: molecule, args: [H2O]}           # no perturb/phonopy: the base itself
      - thermal: {phonopy: phonopy_params.yaml, temperature: 300, n: 10, seed: 0, pbc: [true, true, false]}
        # phonopy's thermal random displacements of the supercell in a phonopy file with its forces

``build`` names any ``ase.build`` function; ``file`` any format ASE reads.
"""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Any

from ase import Atoms

from .datasets import GenerationReport, generate_dataset, perturbed_structures, phonopy_displacements
from .errors import DataFormatError
from .pyscf_truth import GroundTruthSettings


def load_recipe(path: str | os.PathLike) -> dict[str, Any]:
    """Parse and check a recipe; paths inside it are made relative to the recipe's folder."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such recipe")
    try:
        recipe = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise DataFormatError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(recipe, dict) or "structures" not in recipe or "out_dir" not in recipe:
        raise DataFormatError(f"{path}: a recipe needs 'out_dir' and 'structures'")
    known = {f.name for f in fields(GroundTruthSettings)}
    unknown = set(recipe.get("settings") or {}) - known
    if unknown:
        raise DataFormatError(f"{path}: unknown settings {sorted(unknown)}; known: {sorted(known)}")
    recipe["_root"] = path.parent
    return recipe


def recipe_settings(recipe: dict[str, Any]) -> GroundTruthSettings:
    return GroundTruthSettings.from_dict(recipe.get("settings") or {})


def recipe_structures(recipe: dict[str, Any]) -> list[Atoms]:
    """Every structure the recipe describes, named, in order."""
    out: list[Atoms] = []
    for n, entry in enumerate(recipe["structures"]):
        if "thermal" in entry:
            out += _thermal(dict(entry["thermal"]), recipe["_root"], n)
            continue
        base = _base(entry.get("base") or {}, recipe["_root"], n)
        if "perturb" in entry:
            p = dict(entry["perturb"])
            out += perturbed_structures(base, int(p.pop("n")), prefix=p.pop("prefix", f"s{n}-perturbed"), **p)
        elif "phonopy" in entry:
            p = dict(entry["phonopy"])
            out += phonopy_displacements(base, p.pop("supercell"), prefix=p.pop("prefix", f"s{n}-phonopy"), **p)
        else:
            base.info["name"] = base.info.get("name", f"s{n}-base")
            out.append(base)
    return out


def run_recipe(path: str | os.PathLike, scheduler: str | None = None, n_workers: int | None = None,
               progress: bool = True) -> GenerationReport:
    """Make (or resume) the data set a recipe describes."""
    recipe = load_recipe(path)
    out_dir = Path(recipe["out_dir"])
    if not out_dir.is_absolute():
        out_dir = recipe["_root"] / out_dir
    return generate_dataset(
        recipe_structures(recipe),
        out_dir,
        settings=recipe_settings(recipe),
        scheduler=scheduler,
        n_workers=n_workers or recipe.get("workers"),
        threads_per_worker=int(recipe.get("threads_per_worker", 1)),
        progress=progress,
    )


def _thermal(spec: dict[str, Any], root: Path, n: int) -> list[Atoms]:
    from .phonons import load_phonopy, thermal_structures

    if "phonopy" not in spec or "temperature" not in spec or "n" not in spec:
        raise DataFormatError(f"structure {n}: thermal needs 'phonopy' (a file with forces), 'temperature' and 'n'")
    f = Path(spec["phonopy"])
    phonon = load_phonopy(f if f.is_absolute() else root / f)
    return thermal_structures(phonon, float(spec["temperature"]), int(spec["n"]), seed=int(spec.get("seed", 0)),
                              pbc=spec.get("pbc", (True, True, True)), prefix=spec.get("prefix", f"s{n}-thermal"))


def _base(spec: dict[str, Any], root: Path, n: int) -> Atoms:
    import ase.build
    from ase.io import read

    if "file" in spec:
        f = Path(spec["file"])
        atoms = read(f if f.is_absolute() else root / f)
    elif "build" in spec:
        builder = getattr(ase.build, str(spec["build"]), None)
        if builder is None or not callable(builder):
            raise DataFormatError(f"structure {n}: ase.build has no function {spec['build']!r}")
        atoms = builder(*spec.get("args", []), **spec.get("kwargs", {}))
    else:
        raise DataFormatError(f"structure {n}: base needs 'file' or 'build'")
    if "pbc" in spec:
        atoms.pbc = spec["pbc"]
    if "repeat" in spec:
        atoms = atoms.repeat(spec["repeat"])
    return atoms
