"""The ``tracegrad`` command line.

Exit codes a script can rely on: 0 success, 2 bad input (unknown element, bad structure, unreadable file,
bad option), 3 an SCF that did not converge, 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .interop.files import _read_with_pymatgen, read_structure  # noqa: F401 (cli.read_structure: public)
from .io.atomic import atomic_write_text
from .cli_strict import strict_guard as _ghost_guard  # the --strict guard (its old name kept)
from .core.errors import (ConfigError, InputNotFoundError, OutputPathError, ParameterError, SCFNotConvergedError,
                     StructureError, TraceGradError)

EXIT_BAD_INPUT = 2
EXIT_NOT_CONVERGED = 3


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return int(args.func(args) or 0)
    except SCFNotConvergedError as exc:
        _print_error(exc)
        return EXIT_NOT_CONVERGED
    except (TraceGradError, FileNotFoundError, ValueError, PermissionError, IsADirectoryError,
            NotADirectoryError) as exc:
        _print_error(exc)
        return EXIT_BAD_INPUT


def _print_error(exc: BaseException) -> None:
    """One line on stderr: scripts grep it, and a message spread over lines reads like a traceback."""
    print(f"tracegrad: error: {' '.join(str(exc).split())}", file=sys.stderr)


def _force_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true", help="overwrite existing outputs (an input is never overwritten)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tracegrad",
        description="Machine-learned DFT Hamiltonians (TraceGrad) and their PySCF ground truth. "
        "Energies in eV, lengths in Å.",
    )
    sub = p.add_subparsers(title="commands", metavar="COMMAND")

    _add_truth_commands(sub)
    _add_prediction_commands(sub)
    _add_model_commands(sub)
    return p


def _add_truth_commands(sub) -> None:
    """demo, truth, generate: the commands that run (or compare with) the ground truth."""
    d = sub.add_parser("demo", help="graphene bands, Fermi level and gap from the shipped carbon model (seconds)",
                       description="Predicts graphene's Hamiltonian with a model (default: the shipped carbon model), "
                       "prints the Fermi level and gap and plots the bands along Γ-M-K-Γ. With --check, PySCF "
                       "computes the same bands (about a minute) and the plot and the printout compare them.")
    d.add_argument("-o", "--out", default="tracegrad-demo", help="output folder (default: %(default)s)")
    d.add_argument("--model", default="carbon", help="shipped model name or model folder (default: %(default)s)")
    d.add_argument("--check", action="store_true", help="also run PySCF on the same cell and compare the bands")
    _force_option(d)
    d.set_defaults(func=_cmd_demo)

    t = sub.add_parser("truth", help="ground-truth H(R), S(R) of one structure with PySCF",
                       description="Reads any structure file ASE or pymatgen reads (CIF, POSCAR, extxyz, ...) and writes its "
                       "PySCF Hamiltonian blocks to HDF5 (and optionally a DeepH folder).")
    t.add_argument("structure", help="structure file; periodic if the file has a cell")
    t.add_argument("-o", "--out", default=None, help="HDF5 output (default: STRUCTURE stem + .h5)")
    t.add_argument("--deeph", default=None, metavar="DIR", help="also write the DeepH folder format to DIR")
    t.add_argument("--bands", default=None, metavar="PNG", help="crystals: plot re-summed bands against PySCF's")
    t.add_argument("--init-guess", default="minao", metavar="GUESS",
                   help="SCF starting point: PySCF's minao (default), atom, huckel or 1e, or a model (shipped name or "
                   "folder) whose predicted Hamiltonian gives the initial density matrix")
    _settings_options(t)
    _force_option(t)
    t.set_defaults(func=_cmd_truth)

    g = sub.add_parser("generate", help="make a training data set from a YAML recipe (Dask, resumable)",
                       description="Runs the recipe's structures through PySCF in parallel. A rerun skips finished "
                       "structures, so a killed run resumes; failures go to failures.jsonl. "
                       "See examples/graphene_dataset.yaml.")
    g.add_argument("recipe", help="YAML recipe")
    g.add_argument("--scheduler", default=None, help="Dask scheduler address (default: a local cluster)")
    g.add_argument("--workers", type=int, default=None, help="local workers (default: from the recipe, else 1)")
    g.set_defaults(func=_cmd_generate)


def _add_prediction_commands(sub) -> None:
    """bands, dos, predict, models: the commands that use a trained model."""
    bd = sub.add_parser("bands", help="predicted band structure of a crystal along a symmetry-aware k-path",
                        description="Predicts H with a model, solves it along pymatgen's high-symmetry path for the "
                        "crystal (the same bands whatever cell setting the file uses), and plots it with pymatgen's "
                        "BSPlotter. Prints the Fermi level (from a k-mesh) and the gap.")
    bd.add_argument("structure", help="any structure file ASE or pymatgen reads (CIF, POSCAR, extxyz, ...)")
    bd.add_argument("--model", required=True, help="shipped model name or model folder (see `tracegrad models`)")
    bd.add_argument("--path", default="setyawan_curtarolo",
                    choices=["setyawan_curtarolo", "hinuma", "latimer_munro", "ase"],
                    help="pymatgen's path convention, or 'ase' (ASE's path of the periodic lattice, used anyway where "
                    "pymatgen's path misses a periodic direction, e.g. pbc (True, False, True))")
    bd.add_argument("--density", type=float, default=20, help="k-points per Å⁻¹ along the path (default: %(default)s)")
    bd.add_argument("--mesh", default=None, help="k-mesh for the Fermi level, e.g. 12x12x1 (default: density 5 Å)")
    bd.add_argument("-o", "--out", default="bands.png", help="PNG (default: %(default)s)")
    bd.add_argument("--json", default=None, help="also write energies, labels, E_F and gap as JSON")
    bd.add_argument("--strict", action="store_true", help="exit 2 (no figure) when the prediction has ghost levels "
                    "(levels far outside the model's training range) or the structure is outside its training "
                    "domain (warnings otherwise)")
    _force_option(bd)
    bd.set_defaults(func=_cmd_bands)

    ds = sub.add_parser("dos", help="predicted total and projected DOS of a crystal on a k-mesh",
                        description="Total DOS and Mulliken projections by element and orbital type, on an "
                        "irreducible k-mesh, plotted with pymatgen's DosPlotter.")
    ds.add_argument("structure")
    ds.add_argument("--model", required=True)
    ds.add_argument("--mesh", default=None, help="k-mesh, e.g. 24x24x1 (default: density 8 Å)")
    ds.add_argument("--width", type=float, default=0.1, help="Gaussian broadening in eV (default: %(default)s)")
    ds.add_argument("-o", "--out", default="dos.png")
    ds.add_argument("--json", default=None)
    ds.add_argument("--strict", action="store_true", help="exit 2 (no figure) when the prediction has ghost levels "
                    "or the structure is outside the model's training domain")
    _force_option(ds)
    ds.set_defaults(func=_cmd_dos)

    pr = sub.add_parser("predict", help="predicted H(R), S(R) of a structure to HDF5 or a DeepH folder",
                        description="Runs a model (a shipped name or a folder) on any structure file ASE reads.")
    pr.add_argument("structure")
    pr.add_argument("--model", required=True, help="shipped model name or model folder (see `tracegrad models`)")
    pr.add_argument("-o", "--out", default=None, help="HDF5 output (default: STRUCTURE stem + .pred.h5)")
    pr.add_argument("--deeph", default=None, metavar="DIR", help="also write a DeepH folder")
    pr.add_argument("--strict", action="store_true", help="exit 2 (nothing written) when the structure is outside "
                    "the model's training domain (an OutOfDomainWarning)")
    _force_option(pr)
    pr.set_defaults(func=_cmd_predict)

    mo = sub.add_parser("models", help="list the shipped models and their cards")
    mo.set_defaults(func=_cmd_models)


def _add_model_commands(sub) -> None:
    """train, evaluate: the commands that make and judge a model."""
    tr = sub.add_parser("train", help="train a TraceGrad (or baseline) model from a YAML config",
                        description="Trains on data set folders (see examples/train_molecules.yaml). Checkpoints "
                        "go to OUT/checkpoints/{last,best}; rerunning the same command resumes from 'last'. "
                        "For data parallelism launch with torchrun: "
                        "`torchrun --nproc_per_node 2 -m tracegrad_ase.cli train CONFIG.yaml`.")
    tr.add_argument("config", help="training YAML (keys: data, out, model, epochs, batch_size, lr, ...)")
    tr.set_defaults(func=_cmd_train)

    ev = sub.add_parser("evaluate", help="errors of a model on data: MAE by block type and degree, eigenvalues",
                        description="Writes a JSON of the metrics (meV) and, with --parity, a parity plot.")
    ev.add_argument("model", help="model folder (model.json + model.safetensors)")
    ev.add_argument("data", nargs="+", help="data set folders or .h5 files")
    ev.add_argument("--split", choices=["all", "test", "val", "train"], default="all",
                    help="with a training run's split.json beside the model's run folder, evaluate that part")
    ev.add_argument("--json", default="evaluation.json", help="output JSON (default: %(default)s)")
    ev.add_argument("--parity", default=None, metavar="PNG", help="parity plot of matrix elements")
    ev.add_argument("--ghost-kpoints", type=int, default=1000, metavar="N",
                    help="random k-points per crystal on which ghost levels are counted (default: %(default)s)")
    _force_option(ev)
    ev.set_defaults(func=_cmd_evaluate)


def _settings_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--xc", default="pbe")
    p.add_argument("--basis", default=None, help="default: def2-svp (molecules), gth-dzvp (crystals)")
    p.add_argument("--pseudo", default=None, help="default: gth-pbe for crystals")
    p.add_argument("--kmesh", default=None, help="SCF k-mesh, e.g. 6x6x1 (default: from --kspacing)")
    p.add_argument("--kspacing", type=float, default=0.5, help="1/Å, 2π included (default: %(default)s)")
    p.add_argument("--cutoff", type=float, default=None,
                   help="Å; pairs farther apart are not stored (default: molecules all pairs; crystals where "
                   "every pair's overlap has fallen below 1e-6)")
    p.add_argument("--smearing", type=float, default=0.05, help="Fermi smearing in eV (default: %(default)s)")
    p.add_argument("--threads", type=int, default=None)


def _settings(args):
    from .engines.pyscf.scf import GroundTruthSettings

    kmesh = _parse_mesh(args.kmesh) if args.kmesh else None
    return GroundTruthSettings(xc=args.xc, basis=args.basis, pseudo=args.pseudo, kmesh=kmesh,
                               kspacing=args.kspacing, cutoff=args.cutoff, smearing=args.smearing,
                               threads=args.threads)


def _check_outputs(args, outputs: Sequence[tuple[str | os.PathLike | None, str]],
                   inputs: Sequence[str | os.PathLike | None] = ()) -> None:
    """Refuse, before any work, an output that cannot or must not be written.

    ``outputs``: (path, kind) with kind ``"file"`` (must not be a folder; refused if it exists, unless --force),
    ``"dir"`` (a folder written into; refused if it exists and is not empty, unless --force) or ``"resume"`` (a
    folder a rerun resumes from, so it may exist). Every output's folder must exist or be creatable, and be
    writable; no output may be one of ``inputs`` (not even with --force); no path may be given twice.
    """
    force = bool(getattr(args, "force", False))
    seen: set[str] = set()
    for path, kind in outputs:
        if path is None:
            continue
        p = Path(path)
        if os.path.abspath(p) in seen:
            raise OutputPathError(f"{p} is given as two outputs of this command")
        seen.add(os.path.abspath(p))
        _check_not_input(p, inputs)
        _check_output(p, kind, force)


def _check_not_input(p: Path, inputs: Sequence[str | os.PathLike | None]) -> None:
    for inp in inputs:
        if inp is None:
            continue
        q = Path(inp)
        if os.path.abspath(p) == os.path.abspath(q) or (p.exists() and q.exists() and os.path.samefile(p, q)):
            raise OutputPathError(f"{p} is an input of this command; refusing to overwrite it (choose another "
                                  "output with -o)")


def _check_output(p: Path, kind: str, force: bool) -> None:
    if p.exists():
        if kind == "file" and p.is_dir():
            raise OutputPathError(f"{p} is a folder; give a file name")
        if kind == "file" and not force:
            raise OutputPathError(f"{p} exists; pass --force to overwrite it")
        if kind != "file" and not p.is_dir():
            raise OutputPathError(f"{p} exists and is not a folder")
        if kind == "dir" and any(p.iterdir()) and not force:
            raise OutputPathError(f"{p} exists and is not empty; pass --force to write into it")
    _check_writable(p if p.is_dir() else p.parent)


def _check_writable(folder: Path) -> None:
    """The folder, or its nearest existing parent (where the missing ones will be made), takes a new file."""
    import tempfile

    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputPathError(f"cannot create folder {folder}: {existing} is a file")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise OutputPathError(f"cannot write in {existing} ({exc.strerror or exc})") from None


def _check_positive(name: str, value: float | int | None) -> None:
    if value is not None and not (np.isfinite(value) and value > 0):
        raise ParameterError(f"{name} must be a positive number, got {value}")


def _bands_report(run, ham, out_png: Path | None, title: str, npoints: int = 40) -> dict:
    """Bands re-summed from H(R), S(R) against PySCF's own along the cell's standard path."""
    from .electronic.spectrum import near_band_edges
    from .electronic.solve import band_energies
    from .interop.plots import plot_bands
    from .engines.pyscf.scf import reference_bands

    atoms = ham.atoms
    path = atoms.cell.bandpath(npoints=npoints, pbc=atoms.pbc)
    ours = band_energies(ham, path.kpts)
    ref = reference_bands(run, path.kpts)
    ef = float(ham.meta["fermi_level_ev"])
    ref = ref[:, : ours.shape[1]]  # directions dropped as linearly dependent are the top of the spectrum
    near = near_band_edges(ref, ef)
    x, sx, sl = path.get_linear_kpoint_axis()
    if out_png is not None:
        plot_bands(x, ours, out_png, sx, sl, ef, reference=ref, title=title)
    return {
        "path": path.path,
        "fermi_level_ev": ef,
        "max_error_mev_near_edges": float(np.abs(ours - ref)[near].max() * 1000),
        "max_error_mev_all_bands": float(np.abs(ours - ref).max() * 1000),
    }


def _cmd_demo(args) -> int:
    from ase.build import graphene

    from .calculator import TraceGradCalculator
    from .electronic.spectrum import near_band_edges
    from .interop.plots import plot_bands

    from .predict import resolve_model

    out = Path(args.out)
    resolve_model(args.model)  # a bad model name before any output check
    _check_outputs(args, [(out / "graphene_bands.png", "file"), (out / "graphene_bands.json", "file")])
    out.mkdir(parents=True, exist_ok=True)
    atoms = graphene(a=2.46, vacuum=5.0)
    atoms.pbc = [True, True, False]
    t0 = time.perf_counter()
    path = atoms.cell.bandpath("GMKG", npoints=60, pbc=atoms.pbc)
    calc = TraceGradCalculator(args.model, kpts=path, fermi_kpts=(12, 12, 1))
    atoms.calc = calc
    ef, gap = calc.get_fermi_level(), calc.get_band_gap()
    bands = np.array([calc.get_eigenvalues(k) for k in range(len(path.kpts))])
    ham = calc.get_property("hamiltonian", atoms)
    t_model = time.perf_counter() - t0
    name = calc.model.model_file.get("metadata", {}).get("name") or Path(str(args.model)).name
    print(f"graphene with model '{name}' ({ham.basis.name}, {ham.norb} orbitals, {len(ham.edges)} predicted blocks): "
          f"E_F {ef:.3f} eV, gap {gap['gap']:.3f} eV ({'direct' if gap['direct'] else 'indirect'}) "
          f"in {t_model:.1f} s", flush=True)
    report = {"model": str(args.model), "fermi_level_ev": ef, "gap_ev": gap["gap"], "direct": gap["direct"],
              "predict_and_solve_s": t_model, "path": path.path, "kpts": path.kpts.tolist(),
              "bands_ev": bands.tolist()}
    reference = None
    if args.check:
        from .engines.pyscf.scf import GroundTruthSettings, reference_bands, run_scf

        print(f"PySCF: PBE/{ham.basis.name} SCF on a 6x6x1 mesh and the same path ...", flush=True)
        run = run_scf(atoms, GroundTruthSettings(basis=ham.basis.name, pseudo=ham.basis.pseudo, kmesh=(6, 6, 1)))
        reference = reference_bands(run, path.kpts)[:, : bands.shape[1]]
        nb = min(reference.shape[1], bands.shape[1])
        reference, compare = reference[:, :nb], bands[:, :nb]
        ef_ref = float(run.info["fermi_level_ev"])
        near = near_band_edges(reference, ef_ref)
        err = np.abs((compare - ef) - (reference - ef_ref))  # band energies relative to each one's E_F
        report.update(pyscf_fermi_level_ev=ef_ref, pyscf_scf_s=run.wall_time,
                      mae_mev_near_edges=float(err[near].mean() * 1000), max_mev_near_edges=float(err[near].max() * 1000))
        print(f"  PySCF E_F {ef_ref:.3f} eV (SCF {run.wall_time:.0f} s); model vs PySCF, bands relative to E_F within "
              f"2 eV of the band edges: mean {report['mae_mev_near_edges']:.1f} meV, max {report['max_mev_near_edges']:.1f} meV")
        reference = reference - ef_ref + ef  # plotted relative to the model's E_F like the model's bands
    x, sx, sl = path.get_linear_kpoint_axis()
    plot_bands(x, bands, out / "graphene_bands.png", sx, sl, ef, reference=reference,
               title=f"graphene: model '{name}'" + (" vs PySCF" if args.check else ""), label="model prediction")
    atomic_write_text(out / "graphene_bands.json", json.dumps(report, indent=1))
    print(f"wrote {out / 'graphene_bands.png'} and {out / 'graphene_bands.json'} in {time.perf_counter() - t0:.1f} s")
    return 0


def _cmd_truth(args) -> int:
    from .io.h5 import save_h5
    from .io.deeph import write_deeph
    from .predict import resolve_model
    from .engines.pyscf.scf import PYSCF_GUESSES, check_settings, extract_blocks, run_scf
    from .core.structures import validate_atoms

    # Everything the SCF needs is checked before it runs: the structure, the settings (functional, basis for
    # every element, meshes), the guess model, and where the results go.
    atoms = read_structure(args.structure)
    settings = _settings(args)
    validate_atoms(atoms)
    check_settings(settings, atoms)
    if args.bands and not any(atoms.pbc):
        raise StructureError("--bands needs a periodic structure")
    guess = args.init_guess
    if guess not in PYSCF_GUESSES:
        resolve_model(guess)
    out = Path(args.out) if args.out else Path(args.structure).with_suffix(".h5")
    _check_outputs(args, [(out, "file"), (args.deeph, "dir"), (args.bands, "file")], inputs=[args.structure])
    if guess not in PYSCF_GUESSES:
        from .predict import load, predict_hamiltonian

        t0 = time.perf_counter()
        guess = predict_hamiltonian(atoms, load(args.init_guess))
        print(f"initial guess: {args.init_guess} prediction in {time.perf_counter() - t0:.2f} s")
    run = run_scf(atoms, settings, init_guess=guess)
    print(f"SCF converged in {run.info['scf_cycles']} cycles, {run.wall_time:.1f} s "
          f"(initial guess: {args.init_guess})")
    ham = extract_blocks(run)
    save_h5(ham, out)
    print(f"{atoms.get_chemical_formula()}: {len(ham.edges)} blocks, {ham.norb} orbitals, "
          f"E_F {ham.meta['fermi_level_ev']:.3f} eV -> {out}")
    if args.deeph:
        write_deeph(ham, args.deeph)
        print(f"DeepH folder -> {args.deeph}")
    if args.bands:
        rep = _bands_report(run, ham, Path(args.bands), f"{atoms.get_chemical_formula()}: H(R) bands vs PySCF")
        print(f"bands -> {args.bands}; max error {rep['max_error_mev_near_edges']:.3f} meV within 2 eV of the band edges")
    return 0


def _cmd_generate(args) -> int:
    from .datasets.recipes import load_recipe, run_recipe

    _check_positive("--workers", args.workers)
    recipe = load_recipe(args.recipe)
    out_dir = Path(recipe["out_dir"])
    _check_outputs(args, [(out_dir if out_dir.is_absolute() else recipe["_root"] / out_dir, "resume")],
                   inputs=[args.recipe])
    report = run_recipe(args.recipe, scheduler=args.scheduler, n_workers=args.workers)
    print(f"done {len(report.done)}, skipped {len(report.skipped)}, failed {len(report.failed)} "
          f"in {report.wall_time:.0f} s")
    return 0 if not report.failed else 1


def _parse_mesh(text: str) -> tuple[int, int, int]:
    """'6x6x1' -> (6, 6, 1), with an error that shows the expected form."""
    try:
        mesh = tuple(int(x) for x in text.lower().split("x"))
    except ValueError:
        mesh = ()
    if len(mesh) != 3 or min(mesh) < 1:
        raise ParameterError(f"a k-mesh looks like 6x6x1, got {text!r}")
    return mesh  # type: ignore[return-value]


def _mesh_arg(text: str | None, atoms, density: float) -> tuple[int, int, int]:
    if text:
        return _parse_mesh(text)
    from ase.calculators.calculator import kpts2sizeandoffsets

    size, _ = kpts2sizeandoffsets(density=density, even=False, atoms=atoms)
    return tuple(int(n) for n in size)  # type: ignore[return-value]


def _periodic_structure(path: str):
    atoms = read_structure(path)
    if not any(atoms.pbc):
        raise StructureError(f"{path}: bands and DOS need a periodic structure (a cell with pbc); for a molecule use "
                         "the calculator's get_molecular_orbitals()")
    return atoms


def _band_structure(calc, atoms, path_type: str, density: float):
    """(pymatgen BandStructureSymmLine, the path used). pymatgen's paths are for 3-D crystals and keep only the
    segments in the periodic plane; where none runs along some periodic direction (pbc (True, False, True): only
    Γ-A along the vacuum, flat) ASE's path of the periodic lattice is used, with a note."""
    from .interop.pymatgen import band_structure, symm_kpath

    if path_type != "ase":
        try:
            kpts, _, _ = symm_kpath(atoms, path_type=path_type, line_density=density)
            reason = None if _spans_periodic(kpts, atoms.pbc) else "does not run along every periodic direction"
        except ValueError as exc:  # e.g. no segment of the path lies in the periodic directions
            reason = str(exc)
        if reason is None:
            return band_structure(calc, atoms, path_type=path_type, line_density=density), path_type
        print(f"note: the {path_type} path {reason} (pbc={[bool(p) for p in atoms.pbc]}); using ASE's path of the "
              "periodic lattice instead", file=sys.stderr)
    return _ase_band_structure(calc, atoms, density), "ase"


def _spans_periodic(kpts: np.ndarray, pbc) -> bool:
    k = np.asarray(kpts, dtype=float)[:, np.asarray(pbc, dtype=bool)]
    return int(np.linalg.matrix_rank(k - k[0], tol=1e-8)) == int(np.sum(pbc))


def _ase_band_structure(calc, atoms, density: float):
    """Bands along ASE's special-point path of the periodic lattice (``cell.bandpath(pbc=...)``), laid out as
    pymatgen expects (every segment's end repeated as the next one's start) for BSPlotter."""
    from ase.dft.kpoints import parse_path_string
    from pymatgen.core import Lattice
    from pymatgen.electronic_structure.bandstructure import BandStructureSymmLine
    from pymatgen.electronic_structure.core import Spin

    from .calculator import check_bandpath
    from .interop.pymatgen import to_pymatgen

    path = atoms.cell.bandpath(pbc=atoms.pbc, npoints=0)
    check_bandpath(atoms, path, made_here=True)  # its fractional special points must be in this cell's basis
    rec = Lattice(atoms.cell[:]).reciprocal_lattice  # 2π included, like pymatgen's line density
    kpts, labels = [], []
    for names in parse_path_string(path.path):
        for a, b in zip(names[:-1], names[1:]):
            ka, kb = path.special_points[a], path.special_points[b]
            n = max(2, int(np.ceil(np.linalg.norm((kb - ka) @ rec.matrix) * density)) + 1)
            kpts += list(np.linspace(ka, kb, n))
            labels += [a] + [""] * (n - 2) + [b]
    kpts = np.array(kpts)
    work = atoms.copy()
    calc.set(kpts=kpts)
    energies = np.asarray(calc.get_property("eigenvalues", work), dtype=float)[0]  # spin 0: (nk, nbands)
    efermi = float(calc.get_property("fermi_level", work))
    kcart = kpts @ rec.matrix
    pretty = {"G": "\\Gamma"}
    labels_dict = {}
    for lab, k in zip(labels, kcart):
        if lab:
            labels_dict.setdefault(pretty.get(lab, lab), k)
    return BandStructureSymmLine(kcart, {Spin.up: energies.T}, rec, efermi, labels_dict, coords_are_cartesian=True,
                                 structure=to_pymatgen(atoms))


def _cmd_bands(args) -> int:
    from .core.figures import pyplot

    pyplot()  # the file-only backend, before pymatgen's plotter imports pyplot
    from pymatgen.electronic_structure.plotter import BSPlotter

    from .calculator import TraceGradCalculator

    _check_positive("--density", args.density)
    atoms = _periodic_structure(args.structure)
    calc = TraceGradCalculator(args.model, fermi_kpts=_mesh_arg(args.mesh, atoms, 5.0))
    _check_outputs(args, [(args.out, "file"), (args.json, "file")], inputs=[args.structure])
    with _ghost_guard(args):
        bs, used = _band_structure(calc, atoms, args.path, args.density)
    ax = BSPlotter(bs).get_plot(ylim=(-8, 6))
    ax.figure.savefig(args.out, dpi=150)
    gap = bs.get_band_gap()
    print(f"{atoms.get_chemical_formula()}: E_F {bs.efermi:.3f} eV; "
          + ("metal" if bs.is_metal() else f"gap {gap['energy']:.3f} eV ({'direct' if gap['direct'] else 'indirect'}, "
                                             f"{gap['transition']})") + f" -> {args.out}")
    if args.json:
        import numpy as np
        from pymatgen.electronic_structure.core import Spin

        atomic_write_text(args.json, json.dumps({
            "efermi_ev": bs.efermi, "is_metal": bs.is_metal(), "gap": gap, "path": used,
            "labels": {k: list(map(float, v.frac_coords)) for k, v in bs.labels_dict.items()},
            "kpoints_frac": [list(map(float, k.frac_coords)) for k in bs.kpoints],
            "energies_ev": np.asarray(bs.bands[Spin.up]).T.tolist()}, indent=1))
    return 0


def _cmd_dos(args) -> int:
    from .core.figures import pyplot

    pyplot()  # the file-only backend, before pymatgen's plotter imports pyplot
    from pymatgen.electronic_structure.plotter import DosPlotter

    from .calculator import TraceGradCalculator
    from .interop.pymatgen import complete_dos

    _check_positive("--width", args.width)
    atoms = _periodic_structure(args.structure)
    atoms.calc = TraceGradCalculator(args.model, kpts=_mesh_arg(args.mesh, atoms, 8.0))
    _check_outputs(args, [(args.out, "file"), (args.json, "file")], inputs=[args.structure])
    with _ghost_guard(args):
        cdos = complete_dos(atoms.calc, width=args.width)
    plotter = DosPlotter()
    plotter.add_dos("total", cdos)
    plotter.add_dos_dict(cdos.get_element_dos())
    plotter.add_dos_dict(cdos.get_spd_dos())
    ax = plotter.get_plot(xlim=(cdos.efermi - 10, cdos.efermi + 6))
    ax.figure.savefig(args.out, dpi=150)
    print(f"{atoms.get_chemical_formula()}: E_F {cdos.efermi:.3f} eV on {len(atoms.calc.get_ibz_k_points())} "
          f"irreducible k-points -> {args.out}")
    if args.json:
        from pymatgen.electronic_structure.core import Spin

        atomic_write_text(args.json, json.dumps({
            "efermi_ev": cdos.efermi, "energies_ev": cdos.energies.tolist(),
            "total": cdos.densities[Spin.up].tolist(),
            "by_element": {str(k): v.densities[Spin.up].tolist() for k, v in cdos.get_element_dos().items()},
            "by_orbital": {str(k): v.densities[Spin.up].tolist() for k, v in cdos.get_spd_dos().items()}}))
    return 0


def _cmd_predict(args) -> int:
    from .io.h5 import save_h5
    from .io.deeph import write_deeph
    from .predict import load, predict_hamiltonian

    from .predict import resolve_model

    atoms = read_structure(args.structure)
    model = load(args.model)
    out = Path(args.out) if args.out else Path(args.structure).with_suffix(".pred.h5")
    _check_outputs(args, [(out, "file"), (args.deeph, "dir")], inputs=[args.structure, resolve_model(args.model)])
    with _ghost_guard(args):  # --strict: out of the training domain is exit 2, nothing written
        ham = predict_hamiltonian(atoms, model)
    save_h5(ham, out)
    print(f"{atoms.get_chemical_formula()}: {len(ham.edges)} predicted blocks, {ham.norb} orbitals -> {out}")
    if args.deeph:
        write_deeph(ham, args.deeph)
        print(f"DeepH folder -> {args.deeph}")
    return 0


def _cmd_models(args) -> int:
    from .model.checkpoint import read_card
    from . import models

    folders = models.folders()
    if not folders:
        print(f"no shipped models yet in {models.SHIPPED_MODELS}; train one with `tracegrad train` and pass its folder")
        return 0
    broken = []
    for d in folders:
        try:
            print(_model_line(d))
        except Exception as exc:  # one bad model.json must not hide the other models
            broken.append(d.name)
            print(f"{d.name}: BROKEN, cannot be used ({' '.join(str(exc).split())})")
            continue
        try:
            for line in _card_lines(d):
                print(line)
        except Exception as exc:  # nor a bad card.yaml, which is documentation: the model itself works
            print(f"  card.yaml unreadable ({' '.join(str(exc).split())})")
    if broken:
        print(f"tracegrad: warning: model(s) {', '.join(broken)} cannot be used (marked BROKEN above)", file=sys.stderr)
    return 0


def _model_line(folder: Path) -> str:
    """One line on a model from its model.json, checked as loading it would check it."""
    from .core.errors import DataFormatError
    from .model.checkpoint import read_card
    from .model.network import ModelConfig

    card = read_card(folder)
    try:
        cfg = ModelConfig.from_dict(card.get("config"))
    except (TypeError, ValueError) as exc:
        raise DataFormatError(f"{folder / 'model.json'}: bad model config ({exc})") from None
    return (f"{folder.name}: elements {', '.join(cfg.elements)}; basis {cfg.basis['name']}; cutoff {cfg.cutoff} Å; "
            f"{'TraceGrad' if cfg.tracegrad else 'baseline'}")


def _card_lines(folder: Path) -> list[str]:
    """The summary and test figure of a model's card.yaml, if it has one."""
    if not (folder / "card.yaml").is_file():
        return []
    import yaml

    info = yaml.safe_load((folder / "card.yaml").read_text()) or {}
    if not isinstance(info, dict):
        raise ValueError(f"expected a mapping, got {type(info).__name__}")
    lines = []
    test = (info.get("test") or {}).get("model") or {}
    if info.get("summary"):
        lines.append(f"  {' '.join(str(info['summary']).split())[:160]}...")
    if test.get("mae_mev") is not None:
        lines.append(f"  test H MAE {float(test['mae_mev']):.1f} meV over {test.get('n_structures')} held-out "
                     f"structures; card: {folder / 'card.yaml'}")
    return lines


def _cmd_train(args) -> int:
    from .model.train import TrainConfig, train

    try:
        cfg = TrainConfig.from_yaml(args.config)
    except (TypeError, AttributeError) as exc:  # a missing key (data, out) or a YAML that is not a mapping
        raise ConfigError(f"{args.config}: {exc}") from None
    _check_outputs(args, [(cfg.out, "resume")], inputs=[args.config])
    state = train(cfg)
    last = state["history"][-1] if state["history"] else {}
    print(f"stopped after epoch {state['epoch']} ({state.get('stop_reason')}); best validation epoch "
          f"{state['best_epoch']}; last validation MAE {last.get('val_mae_mev', float('nan')):.2f} meV")
    return 0


def _cmd_evaluate(args) -> int:
    from .io.h5 import load_dataset
    from .model.evaluate import evaluate_to_files

    paths = []
    for d in args.data:
        paths += [Path(d)] if Path(d).is_file() else load_dataset(d)
    if args.split != "all":
        split_file = Path(args.model).parent.parent / "split.json"
        if not split_file.is_file():
            raise InputNotFoundError(f"--split {args.split} needs {split_file} (written by tracegrad train)")
        names = set(json.loads(split_file.read_text())[args.split])
        paths = [p for p in paths if p.name in names]
    if not paths:
        raise ParameterError("no structures to evaluate")
    _check_outputs(args, [(args.json, "file"), (args.parity, "file")], inputs=[args.model, *args.data])
    res = evaluate_to_files(args.model, paths, args.json, parity_png=args.parity, ghost_kpoints=args.ghost_kpoints)
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    print(f"{res['n_structures']} structures: H MAE {fmt(res['mae_mev'])} meV raw, {fmt(res['gauge_mae_mev'])} meV "
          f"gauge (on-site {fmt(res['gauge_mae_onsite_mev'])}, off-site {fmt(res['gauge_mae_offsite_mev'])}); "
          f"E_F-aligned band MAE within ±2 eV {fmt(res['band_mae_ef_mev'])} meV; "
          f"ghost levels {res['ghost_levels']} on {res['ghost_kpoints']} random k-points per structure -> {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
