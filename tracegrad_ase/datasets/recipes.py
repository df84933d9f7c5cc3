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

``build`` names any ``ase.build`` function; ``file`` any format ASE reads. A file of several frames (extxyz) gives
one structure per frame, named by the frame's ``info["name"]`` or ``s{n}-{k:05d}``; perturb and phonopy take a
one-frame file.
"""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Any

from ase import Atoms

from .generation import GenerationReport, generate_dataset, perturbed_structures, phonopy_displacements
from ..core.errors import ConfigError, DataFormatError, InputNotFoundError
from ..engines.pyscf.scf import GroundTruthSettings

#: The keys a recipe may use, at the top and in each structure entry; anything else is a typo and refused.
TOP_KEYS = ("out_dir", "workers", "threads_per_worker", "settings", "structures")
ENTRY_KEYS = ("base", "perturb", "phonopy", "thermal")
BASE_KEYS = ("file", "build", "args", "kwargs", "pbc", "repeat")
THERMAL_KEYS = ("phonopy", "temperature", "n", "seed", "pbc", "prefix")


def load_recipe(path: str | os.PathLike) -> dict[str, Any]:
    """Parse and check a recipe; paths inside it are made relative to the recipe's folder."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"{path}: no such recipe")
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
    problems = recipe_problems(recipe) + _settings_problems(recipe.get("settings"))
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    recipe["_root"] = path.parent
    return recipe


def _settings_problems(raw: Any) -> list[str]:
    """Settings values checked once here: a bad one would otherwise fail every structure of the data set."""
    from ..engines.pyscf.scf import check_xc, settings_problems

    if raw is not None and not isinstance(raw, dict):
        return [f"settings must be a mapping, got {type(raw).__name__}"]
    try:
        settings = GroundTruthSettings.from_dict(raw or {})
        check_xc(settings.xc)
    except (TypeError, ValueError) as exc:
        return [f"settings: {exc}"]
    return [f"settings: {p}" for p in settings_problems(settings)]


def _sub_keys() -> dict[str, tuple[str, ...]]:
    """Keys of each part of a structure entry; perturb and phonopy take their functions' keywords."""
    import inspect

    def keywords(fn, skip: set[str]) -> tuple[str, ...]:
        return tuple(p for p in inspect.signature(fn).parameters if p not in skip)

    return {"base": BASE_KEYS, "perturb": keywords(perturbed_structures, {"base"}),
            "phonopy": ("supercell",) + keywords(phonopy_displacements, {"base", "supercell_matrix"}),
            "thermal": THERMAL_KEYS}


def _unknown(where: str, given: Any, known: tuple[str, ...]) -> list[str]:
    if not isinstance(given, dict):
        return [f"{where} must be a mapping, got {type(given).__name__}"]
    bad = sorted(str(k) for k in set(given) - set(known))
    return [f"{where}: unknown key(s) {bad}; valid: {list(known)}"] if bad else []


def recipe_problems(recipe: dict[str, Any]) -> list[str]:
    """Every unknown key and impossible combination in a parsed recipe (empty: fine), with the valid keys."""
    problems = _unknown("recipe", recipe, TOP_KEYS)
    for key in ("workers", "threads_per_worker"):
        value = recipe.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            problems.append(f"{key} must be a positive integer, got {value!r}")
    if not isinstance(recipe.get("out_dir"), str) or not recipe["out_dir"].strip():
        problems.append(f"out_dir must be a folder name, got {recipe.get('out_dir')!r}")
    structures = recipe.get("structures")
    if not isinstance(structures, list):
        return problems + [f"structures must be a list, got {type(structures).__name__}"]
    sub = _sub_keys()
    for n, entry in enumerate(structures):
        problems += _entry_problems(n, entry, sub)
    return problems


def _entry_problems(n: int, entry: Any, sub: dict[str, tuple[str, ...]]) -> list[str]:
    where = f"structure {n}"
    problems = _unknown(where, entry, ENTRY_KEYS)
    if not isinstance(entry, dict):
        return problems
    for part in ENTRY_KEYS:
        if part in entry:
            problems += _unknown(f"{where} {part}", entry[part], sub[part])
    if ("thermal" in entry) == ("base" in entry):
        problems.append(f"{where} needs either 'base' (with optional perturb or phonopy) or 'thermal'")
    if "perturb" in entry and "phonopy" in entry:
        problems.append(f"{where} has both perturb and phonopy; give each its own entry")
    if "thermal" in entry and ("perturb" in entry or "phonopy" in entry):
        problems.append(f"{where}: thermal makes its own structures and takes no perturb or phonopy")
    for part, keys in (("perturb", ("n",)), ("phonopy", ("supercell",)), ("thermal", ("phonopy", "temperature", "n"))):
        spec = entry.get(part)
        need = [k for k in keys if k not in spec] if isinstance(spec, dict) else []
        if need:
            problems.append(f"{where} {part} needs {need}")
    base = entry.get("base")
    if isinstance(base, dict) and "file" not in base and "build" not in base:
        problems.append(f"{where} base needs 'file' or 'build'")
    return problems


def recipe_settings(recipe: dict[str, Any]) -> GroundTruthSettings:
    return GroundTruthSettings.from_dict(recipe.get("settings") or {})


def recipe_structures(recipe: dict[str, Any]) -> list[Atoms]:
    """Every structure the recipe describes, named, in order."""
    out: list[Atoms] = []
    for n, entry in enumerate(recipe["structures"]):
        if "thermal" in entry:
            out += _thermal(dict(entry["thermal"]), recipe["_root"], n)
            continue
        bases = _bases(entry.get("base") or {}, recipe["_root"], n)
        if len(bases) > 1:
            if "perturb" in entry or "phonopy" in entry:
                raise DataFormatError(f"structure {n}: {entry['base'].get('file')} has {len(bases)} frames; "
                                      "perturb and phonopy take a file of one structure")
            for k, frame in enumerate(bases):
                frame.info["name"] = frame.info.get("name") or f"s{n}-{k:05d}"
            out += bases
            continue
        base = bases[0]
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


def recipe_out_dir(recipe: dict[str, Any], out: str | os.PathLike | None = None) -> Path:
    """Where a recipe's data set goes: ``out`` when given, else its ``out_dir`` (relative to the recipe). A shipped
    model's recipe read from an installed package points into the Python installation (its ``out_dir`` is written
    for a source checkout): refused, asking for ``out``, rather than writing data there."""
    if out is not None:
        return Path(out)
    out_dir = Path(recipe["out_dir"])
    if not out_dir.is_absolute():
        out_dir = recipe["_root"] / out_dir
    if {"site-packages", "dist-packages"} & set(out_dir.resolve().parts):
        raise ConfigError(f"this recipe's out_dir resolves to {out_dir.resolve()}, inside the Python installation (a "
                          "recipe shipped with an installed package); give the data set's folder: --out DIR")
    return out_dir


def run_recipe(path: str | os.PathLike, scheduler: str | None = None, n_workers: int | None = None,
               progress: bool = True, out: str | os.PathLike | None = None) -> GenerationReport:
    """Make (or resume) the data set a recipe describes, in ``out`` or the recipe's ``out_dir``."""
    recipe = load_recipe(path)
    out_dir = recipe_out_dir(recipe, out)
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
    from ..interop.phonopy import load_phonopy, thermal_structures

    if "phonopy" not in spec or "temperature" not in spec or "n" not in spec:
        raise DataFormatError(f"structure {n}: thermal needs 'phonopy' (a file with forces), 'temperature' and 'n'")
    f = Path(spec["phonopy"])
    phonon = load_phonopy(f if f.is_absolute() else root / f)
    return thermal_structures(phonon, float(spec["temperature"]), int(spec["n"]), seed=int(spec.get("seed", 0)),
                              pbc=spec.get("pbc", (True, True, True)), prefix=spec.get("prefix", f"s{n}-thermal"))


def _bases(spec: dict[str, Any], root: Path, n: int) -> list[Atoms]:
    """The base structure of an entry: one, or one per frame of a multi-frame file."""
    import ase.build
    from ase.io import read

    if "file" in spec:
        from ..core.structures import check_ordered

        f = Path(spec["file"])
        frames = read(f if f.is_absolute() else root / f, index=":")
        if not frames:
            raise DataFormatError(f"structure {n}: {f} holds no structure")
        for atoms in frames:
            check_ordered(atoms, str(f))  # a partially occupied site would become one element without a word
        return [_placed(atoms, spec) for atoms in frames]
    if "build" not in spec:
        raise DataFormatError(f"structure {n}: base needs 'file' or 'build'")
    builder = getattr(ase.build, str(spec["build"]), None)
    if builder is None or not callable(builder):
        raise DataFormatError(f"structure {n}: ase.build has no function {spec['build']!r}")
    return [_placed(builder(*spec.get("args", []), **spec.get("kwargs", {})), spec)]


def _placed(atoms: Atoms, spec: dict[str, Any]) -> Atoms:
    """The base's pbc and repeat applied."""
    if "pbc" in spec:
        atoms.pbc = spec["pbc"]
    if "repeat" in spec:
        atoms = atoms.repeat(spec["repeat"])
    return atoms
