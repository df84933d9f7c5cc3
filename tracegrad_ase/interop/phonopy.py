"""Band gap versus temperature from phonopy's thermal random displacements.

Harmonic phonons (force constants from phonopy) define, at temperature T, a Gaussian distribution of atomic
displacements in a supercell. Phonopy samples it (``generate_displacements(number_of_snapshots=...,
temperature=...)``); the model's gap on each snapshot, averaged, is a cheap estimate of the
electron-phonon renormalisation of the gap, gap(T). Units: eV, Å, K.

Force constants come from a user's own phonopy files (:func:`load_phonopy`) or from any ASE force calculator
(:func:`force_constants_from_calculator`). ``TraceGradCalculator`` itself offers no forces: it predicts H.
"""

from __future__ import annotations

import bz2
import gzip
import inspect
import io
import lzma
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import yaml
from ase import Atoms

from ..core.errors import DataFormatError, ParameterError


def to_phonopy_atoms(atoms: Atoms):
    """ASE Atoms -> PhonopyAtoms (scaled positions as they are: no wrapping)."""
    from phonopy.structure.atoms import PhonopyAtoms

    return PhonopyAtoms(
        symbols=atoms.get_chemical_symbols(),
        cell=np.asarray(atoms.cell[:], dtype=float),
        scaled_positions=atoms.get_scaled_positions(wrap=False),
        masses=atoms.get_masses(),
    )


def from_phonopy_atoms(patoms, pbc=True) -> Atoms:
    """PhonopyAtoms -> ASE Atoms with the given periodicity."""
    # Cartesian positions as phonopy has them: no re-wrapping of a displaced atom across the cell boundary.
    return Atoms(symbols=list(patoms.symbols), positions=patoms.positions, cell=patoms.cell, pbc=pbc)


# Deprecated private names (tests and old callers imported them from datasets).
_to_phonopy = to_phonopy_atoms
_from_phonopy = from_phonopy_atoms


if TYPE_CHECKING:
    from ase.calculators.tersoff import Tersoff
    from phonopy import Phonopy

__all__ = ["thermal_structures", "force_constants_from_calculator", "load_phonopy", "gap_vs_temperature",
           "plot_gap_vs_temperature", "tersoff_carbon"]

# Lindsay and Broido's carbon Tersoff parameters, fitted to graphite and nanotube phonons (Phys. Rev. B 81, 205441
# (2010); Tersoff's 1988 set with B = 430 eV and h = -0.930). Flat graphene's equilibrium under them is a = 2.4920 Å.
_LINDSAY_BROIDO = dict(m=3.0, gamma=1.0, lambda3=0.0, c=38049.0, d=4.3484, h=-0.930, n=0.72751, beta=1.5724e-7,
                       lambda2=2.2119, B=430.0, R=1.95, D=0.15, lambda1=3.4879, A=1393.6)
_LINDSAY_BROIDO_A = 2.4920


def load_phonopy(path: str | os.PathLike, **kwargs: Any) -> "Phonopy":
    """A ``Phonopy`` object from a ``phonopy_disp.yaml`` / ``phonopy_params.yaml`` (also ``.xz``/``.gz``/``.bz2``)
    with its forces or force constants, ready for :func:`thermal_structures` and :func:`gap_vs_temperature`.

    The file is parsed with YAML's safe loader: phonopy's own reader uses a full loader, under which a tag such
    as ``!!python/object/apply:...`` runs code. A file that is not plain YAML, or not a phonopy file, is a
    :class:`~tracegrad_ase.errors.DataFormatError` naming it. ``FORCE_SETS``, ``FORCE_CONSTANTS`` /
    ``force_constants.hdf5`` and ``BORN`` next to the file are used where the file lacks what they hold (phonopy
    itself would look in the current directory). Other keyword arguments go to ``phonopy.load`` (e.g.
    ``primitive_matrix=``, ``force_constants_filename=``, ``force_sets_filename=``).
    """
    import phonopy

    path = Path(path)
    data = _safe_phonopy_yaml(path)
    inspect.signature(phonopy.load).bind(None, **kwargs)  # a wrong keyword is the caller's TypeError, not the file's
    kwargs = {**_side_files(path.parent, data, kwargs), **kwargs}
    # What phonopy parses is YAML that SafeDumper emitted from plain data: it holds no tag that constructs objects,
    # whatever the loader; phonopy then builds cells, dataset and force constants exactly as from the file.
    text = yaml.dump(data, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper))
    try:
        return phonopy.load(io.StringIO(text), **kwargs)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, RuntimeError, RecursionError) as exc:
        raise DataFormatError(f"{path}: not a usable phonopy file ({type(exc).__name__}: {exc})") from None


def _safe_phonopy_yaml(path: Path) -> dict[str, Any]:
    """The YAML mapping in ``path``, read with the safe loader (plain data only)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such phonopy file")
    opener = _OPENERS.get(path.suffix.lower(), open)
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise DataFormatError(f"{path}: unreadable ({exc})") from None
    try:
        data = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        # A python/... tag lands here ("could not determine a constructor"): nothing was constructed or run.
        raise DataFormatError(f"{path}: not a plain-YAML phonopy file; tags that build Python objects are "
                              f"refused ({exc})") from None
    if not isinstance(data, dict):
        raise DataFormatError(f"{path}: not a phonopy file (a YAML {type(data).__name__}, not a mapping)")
    return data


def _side_files(folder: Path, data: dict[str, Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """phonopy's companion files in ``folder`` as ``phonopy.load`` arguments (the caller's own take precedence).

    phonopy itself reads them only where the YAML lacks their data (forces, force constants), so naming them is
    harmless otherwise; ``BORN`` would take precedence over NAC parameters in the YAML, so it is named only where
    the YAML has none.
    """
    out: dict[str, Any] = {}
    if "force_sets_filename" not in kwargs and (folder / "FORCE_SETS").is_file():
        out["force_sets_filename"] = str(folder / "FORCE_SETS")
    if "force_constants_filename" not in kwargs:
        for name in ("FORCE_CONSTANTS", "force_constants.hdf5"):
            if (folder / name).is_file():
                out["force_constants_filename"] = str(folder / name)
                break
    yaml_nac = "nac" in data or "born_effective_charge" in data  # older phonopy wrote NAC at the top level
    if (not yaml_nac and "born_filename" not in kwargs and kwargs.get("is_nac", True)
            and kwargs.get("nac_params") is None and (folder / "BORN").is_file()):
        out["born_filename"] = str(folder / "BORN")
    return out


_OPENERS: dict[str, Any] = {".xz": lzma.open, ".lzma": lzma.open, ".gz": gzip.open, ".bz2": bz2.open}


def force_constants_from_calculator(unitcell: Atoms, supercell_matrix: Sequence[int] | Sequence[Sequence[int]]
                                    | np.ndarray, ase_calculator: Any, distance: float = 0.01,
                                    symprec: float = 1e-5) -> "Phonopy":
    """Finite-displacement force constants of ``unitcell`` from any ASE calculator that gives forces (eV/Å).

    ``distance`` is phonopy's displacement (Å). Returns the Phonopy object with force constants set.
    """
    from phonopy import Phonopy

    # primitive_matrix=None, as in datasets.phonopy_displacements: the supercell's symmetry is all that is needed
    # and the "auto" primitive search can fail on ambiguous structures.
    phonon = Phonopy(to_phonopy_atoms(unitcell), supercell_matrix=supercell_matrix, primitive_matrix=None,
                     symprec=symprec)
    phonon.generate_displacements(distance=distance)
    forces = []
    for sc in phonon.supercells_with_displacements:
        atoms = from_phonopy_atoms(sc, unitcell.pbc)
        atoms.calc = ase_calculator
        forces.append(np.array(atoms.get_forces(), dtype=float))
    phonon.forces = np.array(forces)
    phonon.produce_force_constants()
    return phonon


def tersoff_carbon(lattice_a: float = 2.46) -> "Tersoff":
    """ASE's ``Tersoff`` calculator for carbon with Lindsay and Broido's phonon-fitted parameters, its lengths scaled
    so that flat graphene is in equilibrium at ``lattice_a`` (Å; 2.46 is PBE's and experiment's).

    A stand-in for DFT force constants that runs in a second: graphene's phonons come out real (no imaginary
    mode) with the G mode near 1,700 cm⁻¹ (experiment 1,580), where ASE's EMT gives a third of the modes
    imaginary. The length scaling (as GPUMD's ``C_Lindsay_2010_with_modifications``) keeps the energies, so the
    thermal displacements are those of the fitted potential at the model's geometry rather than of a strained one.
    """
    from ase.calculators.tersoff import Tersoff, TersoffParameters

    if not (isinstance(lattice_a, (int, float)) and 2.0 < lattice_a < 3.0):
        raise ParameterError(f"lattice_a={lattice_a!r}: expected graphene's lattice constant in Å (2.0-3.0)")
    f = lattice_a / _LINDSAY_BROIDO_A
    p = dict(_LINDSAY_BROIDO, lambda1=_LINDSAY_BROIDO["lambda1"] / f, lambda2=_LINDSAY_BROIDO["lambda2"] / f,
             R=_LINDSAY_BROIDO["R"] * f, D=_LINDSAY_BROIDO["D"] * f)
    return Tersoff({("C", "C", "C"): TersoffParameters(**p)})


def thermal_structures(phonon: "Phonopy", temperature: float, n: int, seed: int = 0,
                       pbc: Sequence[bool] | bool = (True, True, True), prefix: str | None = None) -> list[Atoms]:
    """``n`` supercells with phonopy's thermal random displacements at ``temperature`` (K).

    Displacements follow the harmonic (quantum) distribution of the force constants; phonopy skips imaginary and
    near-zero modes. The same ``seed`` gives the same structures. ``phonon`` is not modified. ``info`` holds
    ``name`` (``f"{prefix}-T{T:g}-{k:04d}"``), ``temperature`` and ``seed``.
    """
    fc = phonon.force_constants
    if fc is None:
        raise ValueError("this Phonopy object has no force constants: produce or read force constants first "
                         "(phonon.produce_force_constants(), load_phonopy(...) or force_constants_from_calculator)")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 K, got {temperature}")
    # generate_displacements replaces the dataset, and setting a dataset drops the force constants: work on a
    # replica so the caller's object keeps both (Phonopy.replicate carries no force constants, so set them).
    work = phonon.replicate()
    work.force_constants = fc
    work.generate_displacements(number_of_snapshots=int(n), random_seed=int(seed), temperature=float(temperature))
    out = []
    for k, sc in enumerate(work.supercells_with_displacements):
        atoms = from_phonopy_atoms(sc, pbc)
        if prefix is None:
            prefix = f"{atoms.get_chemical_formula()}-thermal"
        atoms.info["name"] = f"{prefix}-T{float(temperature):g}-{k:04d}"
        atoms.info["temperature"] = float(temperature)
        atoms.info["seed"] = int(seed)
        out.append(atoms)
    return out


def gap_vs_temperature(phonon: "Phonopy", model: str | os.PathLike, temperatures: Sequence[float], n: int = 8,
                       kpts: Any = (4, 4, 1), seed: int = 0, pbc: Sequence[bool] | bool = (True, True, True),
                       progress: bool = True, **calc_kwargs: Any) -> list[dict[str, Any]]:
    """Mean and spread of the model's band gap (eV) over ``n`` thermal snapshots at each temperature (K).

    ``kpts`` is the k-mesh of the *supercell* (so smaller than a unit cell's). ``pbc`` is what the snapshots and
    the calculator see (phonopy's cells are 3D periodic; a 2D sheet with vacuum may pass ``(True, True, False)``).
    Other keyword arguments go to ``TraceGradCalculator``. Returns one dict per temperature:
    ``temperature``, ``mean_gap``, ``std_gap`` (population std; 0 for one snapshot) and ``gaps``.
    """
    from tqdm.auto import tqdm

    from ..calculator import TraceGradCalculator

    # One calculator for all snapshots: the model is loaded once; ASE's check_state sees each new geometry.
    calc = TraceGradCalculator(model, kpts=kpts, **calc_kwargs)
    temperatures = [float(t) for t in temperatures]
    bar = tqdm(total=len(temperatures) * n, desc="gap(T)", unit="snapshot", disable=not progress)
    results = []
    try:
        for t in temperatures:
            gaps = []
            # Same seed at every temperature: the snapshots differ only in amplitude, which lowers the noise of
            # gap(T) differences (correlated sampling).
            for atoms in thermal_structures(phonon, t, n, seed=seed, pbc=pbc):
                calc.calculate(atoms)
                gaps.append(float(calc.get_band_gap()["gap"]))
                bar.update(1)
            g = np.asarray(gaps)
            results.append({"temperature": t, "mean_gap": float(g.mean()), "std_gap": float(g.std()),
                            "gaps": gaps})
    finally:
        bar.close()
    return results


def plot_gap_vs_temperature(results: Sequence[dict[str, Any]], png: str | os.PathLike, title: str = "") -> None:
    """Mean gap (eV) with ± one standard deviation over snapshots, against temperature (K)."""
    from ..core.figures import pyplot

    plt = pyplot()

    t = [r["temperature"] for r in results]
    mean = [r["mean_gap"] for r in results]
    std = [r["std_gap"] for r in results]
    fig, ax = plt.subplots(figsize=(4.8, 3.6), dpi=150)
    ax.errorbar(t, mean, yerr=std, marker="o", capsize=3, color="tab:blue", label="mean ± std over snapshots")
    ax.set_xlabel("temperature (K)")
    ax.set_ylabel("band gap (eV)")
    if title:
        ax.set_title(title)
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(os.fspath(png))
    plt.close(fig)
