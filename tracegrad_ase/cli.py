"""The ``tracegrad`` command line.

Exit codes a script can rely on: 0 success, 2 bad input (unknown element, bad structure, unreadable file,
bad option), 3 an SCF that did not converge, 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

from .interop.files import _read_with_pymatgen, read_structure  # noqa: F401 (cli.read_structure: public)
from .io.atomic import atomic_write_text
from .cli_strict import strict_guard as _ghost_guard  # the --strict guard (its old name kept)
from .cli_evaluate import add_evaluate_command
from .cli_progress import add_progress_command
from .cli_responses import add_optics_command, add_transport_command
from .cli_realspace import add_stm_command
from .cli_orbitals import add_orbitals_command
from .cli_support import (  # noqa: F401 (cli._check_outputs etc. stay importable from here)
    _ase_band_structure, _band_structure, _bands_report, _card_lines, _check_not_input, _check_output, _check_outputs, _check_positive, _check_writable, _cmd_demo, _cmd_digest, _cmd_models, _default_model, _ensemble_option, _force_option,
    _mesh_arg, _model_line, _parse_mesh, _prediction_outputs, _refine_option, _spans_periodic)
from .core.errors import (ConfigError, OutputPathError, ParameterError, SCFNotConvergedError,
                     StructureError, TraceGradError)

EXIT_BAD_INPUT = 2
EXIT_NOT_CONVERGED = 3
_MODEL_HELP = ("shipped model name or model folder (default: the shipped model whose training domain covers the "
               "structure's elements and periodicity; see `tracegrad models`)")


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
    g.add_argument("--out", default=None, help="the data set's folder (default: the recipe's out_dir, relative to it)")
    g.set_defaults(func=_cmd_generate)

    dg = sub.add_parser("digest", help="content digests of data set folders, as model cards record them",
                        description="SHA-256 over the structures' names and content (arrays and attributes, not "
                        "wall times), so a copy or a rewrite of the same numbers matches and different data never "
                        "do; a geometry digest beside it (atoms, positions, cell), which data regenerated on "
                        "another machine still matches. With --split, one digest per part of a training run's "
                        "split.json.")
    dg.add_argument("folders", nargs="+", help="data set folders (each with structures/*.h5)")
    dg.add_argument("--split", default=None, help="a split.json ({\"train\": [names], ...}): a digest per part")
    dg.add_argument("--card", default=None, metavar="MODEL",
                    help="compare with the digests a model's card records (a shipped model's name or a folder): "
                    "with --split the parts of its split, without it each folder as the held-out set of its name; "
                    "exit 1 when a part is not the card's structures")
    dg.set_defaults(func=_cmd_digest)


def _add_prediction_commands(sub) -> None:
    """bands, dos, predict, models: the commands that use a trained model."""
    bd = sub.add_parser("bands", help="predicted band structure of a crystal along a symmetry-aware k-path",
                        description="Predicts H with a model, solves it along pymatgen's high-symmetry path for the "
                        "crystal (the same bands whatever cell setting the file uses), and plots it with pymatgen's "
                        "BSPlotter. Prints the Fermi level (from a k-mesh) and the gap.")
    bd.add_argument("structure", help="any structure file ASE or pymatgen reads (CIF, POSCAR, extxyz, ...)")
    bd.add_argument("--model", default=None, help=_MODEL_HELP)
    bd.add_argument("--path", default="setyawan_curtarolo",
                    choices=["setyawan_curtarolo", "hinuma", "latimer_munro", "ase"],
                    help="pymatgen's path convention, or 'ase' (ASE's path of the periodic lattice, used anyway where "
                    "pymatgen's path misses a periodic direction, e.g. pbc (True, False, True))")
    bd.add_argument("--density", type=float, default=20, help="k-points per Å⁻¹ along the path (default: %(default)s)")
    bd.add_argument("--mesh", default=None, help="k-mesh for the Fermi level, e.g. 12x12x1 (default: density 5 Å)")
    bd.add_argument("-o", "--out", default="bands.png", help="PNG (default: %(default)s)")
    bd.add_argument("--json", default=None, help="also write energies, labels, E_F and gap as JSON")
    bd.add_argument("--unfold", default=None, metavar="PRIMITIVE", help="STRUCTURE is a supercell (defect, alloy, "
                    "rattle) of this primitive cell: plot its levels unfolded onto PRIMITIVE's path (spectral weight)")
    bd.add_argument("--uncertainty", action="store_true", help="shade ±2σ of each level over the model's "
                    "committee (models with committee/ members, e.g. carbon); warns above 0.1 eV near E_F")
    _ensemble_option(bd)
    _refine_option(bd)
    bd.add_argument("--projected", nargs="+", default=None, metavar="EL[:ORB]", help="fat bands: one panel per "
                    "Mulliken projection, e.g. C:p C:s, C:pz, C:px+py or C (space- or comma-separated)")
    bd.add_argument("--strict", action="store_true", help="exit 2 (no figure) when the prediction has ghost levels "
                    "(levels far outside the model's training range) or the structure is outside its training "
                    "domain (warnings otherwise)")
    _force_option(bd)
    bd.set_defaults(func=_cmd_bands)

    ds = sub.add_parser("dos", help="predicted total and projected DOS of a crystal on a k-mesh",
                        description="Total DOS and Mulliken projections by element and orbital type, on an "
                        "irreducible k-mesh, plotted with pymatgen's DosPlotter.")
    ds.add_argument("structure")
    ds.add_argument("--model", default=None, help=_MODEL_HELP)
    ds.add_argument("--mesh", default=None, help="k-mesh, e.g. 24x24x1 (default: density 8 Å)")
    ds.add_argument("--width", type=float, default=0.1, help="Gaussian broadening in eV (default: %(default)s)")
    _prediction_outputs(ds, "dos.png", "E_F, energies, total and projected DOS as JSON")
    ds.set_defaults(func=_cmd_dos)

    pr = sub.add_parser("predict", help="predicted H(R), S(R) of a structure to HDF5 or a DeepH folder",
                        description="Runs a model (a shipped name or a folder) on any structure file ASE reads.")
    pr.add_argument("structure")
    pr.add_argument("--model", default=None, help=_MODEL_HELP)
    pr.add_argument("-o", "--out", default=None, help="HDF5 output (default: STRUCTURE stem + .pred.h5)")
    pr.add_argument("--deeph", default=None, metavar="DIR", help="also write a DeepH folder")
    _refine_option(pr)
    pr.add_argument("--strict", action="store_true", help="exit 2 (nothing written) when the structure is outside "
                    "the model's training domain (an OutOfDomainWarning)")
    _force_option(pr)
    pr.set_defaults(func=_cmd_predict)
    add_orbitals_command(sub, _MODEL_HELP, _force_option)
    add_optics_command(sub, _MODEL_HELP)
    add_transport_command(sub, _MODEL_HELP)
    add_stm_command(sub, _MODEL_HELP)

    mo = sub.add_parser("models", help="list the shipped models and their cards")
    mo.set_defaults(func=_cmd_models)


def _add_model_commands(sub) -> None:
    """train, evaluate, progress: the commands that make and judge a model."""
    tr = sub.add_parser("train", help="train a TraceGrad (or baseline) model from a YAML config",
                        description="Trains on data set folders (see examples/train_molecules.yaml). Checkpoints "
                        "go to OUT/checkpoints/{last,best}; rerunning the same command resumes from 'last'. "
                        "For data parallelism launch with torchrun: "
                        "`torchrun --nproc_per_node 2 -m tracegrad_ase.cli train CONFIG.yaml`.")
    tr.add_argument("config", help="training YAML (keys: data, out, model, epochs, batch_size, lr, ...)")
    tr.set_defaults(func=_cmd_train)

    add_evaluate_command(sub, _force_option)
    add_progress_command(sub, _force_option)


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
    from .datasets.recipes import load_recipe, recipe_out_dir, run_recipe

    _check_positive("--workers", args.workers)
    out_dir = recipe_out_dir(load_recipe(args.recipe), args.out)
    _check_outputs(args, [(out_dir, "resume")], inputs=[args.recipe])
    report = run_recipe(args.recipe, scheduler=args.scheduler, n_workers=args.workers, out=out_dir)
    print(f"done {len(report.done)}, skipped {len(report.skipped)}, failed {len(report.failed)} "
          f"in {report.wall_time:.0f} s")
    return 0 if not report.failed else 1


def _periodic_structure(path: str):
    atoms = read_structure(path)
    if not any(atoms.pbc):
        raise StructureError(f"{path}: bands and DOS need a periodic structure (a cell with pbc); for a molecule use "
                         "the calculator's get_molecular_orbitals()")
    return atoms


def _cmd_bands(args) -> int:
    from .core.figures import pyplot

    pyplot()  # the file-only backend, before pymatgen's plotter imports pyplot
    from pymatgen.electronic_structure.plotter import BSPlotter

    from .calculator import TraceGradCalculator

    _check_positive("--density", args.density)
    atoms = _periodic_structure(args.structure)
    if args.refine and (args.uncertainty or args.unfold):
        raise ParameterError("--refine is not offered with --uncertainty (the committee's spread is of the "
                             "predictions) or --unfold")
    if args.uncertainty:  # issue 17: the committee's spread shaded
        from .cli_uncertainty import cmd_uncertainty

        return cmd_uncertainty(args, atoms, _default_model(args, atoms), _mesh_arg(args.mesh, atoms, 5.0))
    if args.unfold:  # issue 17: the supercell's levels unfolded onto the primitive cell's path
        from .cli_unfold import cmd_unfold

        return cmd_unfold(args, atoms, _default_model(args, atoms), _mesh_arg(args.mesh, atoms, 5.0))
    calc = TraceGradCalculator(_default_model(args, atoms), fermi_kpts=_mesh_arg(args.mesh, atoms, 5.0),
                               ensemble=args.ensemble, refine=args.refine)
    from .cli_fatbands import draw_fat_bands, projection_specs

    specs = projection_specs(args.projected, atoms, calc.model.basis) if args.projected else None
    _check_outputs(args, [(args.out, "file"), (args.json, "file")], inputs=[args.structure])
    with _ghost_guard(args):
        bs, used = _band_structure(calc, atoms, args.path, args.density)
    if specs:  # fat bands (issue 16)
        draw_fat_bands(calc, atoms, bs, specs, args.out)
    else:
        BSPlotter(bs).get_plot(ylim=(-8, 6)).figure.savefig(args.out, dpi=150)
    gap = bs.get_band_gap()
    print(f"{atoms.get_chemical_formula()}: E_F {bs.efermi:.3f} eV; "
          + ("metal" if bs.is_metal() else f"gap {gap['energy']:.3f} eV ({'direct' if gap['direct'] else 'indirect'}, "
                                             f"{gap['transition']})") + f" -> {args.out}")
    if args.json:
        import numpy as np
        from pymatgen.electronic_structure.core import Spin

        atomic_write_text(args.json, json.dumps({
            "efermi_ev": bs.efermi, "is_metal": bs.is_metal(), "gap": gap, "path": used,
            "refine_builds": calc.parameters.refine,
            "gap_cut_sensitivity_ev": calc.results.get("band_gap_cut_sensitivity"),
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
    atoms.calc = TraceGradCalculator(_default_model(args, atoms), kpts=_mesh_arg(args.mesh, atoms, 8.0),
                                     ensemble=args.ensemble, refine=args.refine)
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
    from . import refine

    atoms = read_structure(args.structure)
    name = _default_model(args, atoms)
    model = load(name)
    out = Path(args.out) if args.out else Path(args.structure).with_suffix(".pred.h5")
    _check_outputs(args, [(out, "file"), (args.deeph, "dir")], inputs=[args.structure, resolve_model(args.model)])
    n_builds = refine.builds(args.refine)  # a bad count, or a molecule below, is refused before the prediction
    if n_builds:
        refine.check_request(atoms)
    with _ghost_guard(args):  # --strict: out of the training domain is exit 2, nothing written
        ham = predict_hamiltonian(atoms, model)
    if n_builds:
        ham = refine.refine_prediction(ham, name, model.model_file, n_builds)
    save_h5(ham, out)
    print(f"{atoms.get_chemical_formula()}: {len(ham.edges)} {'refined' if n_builds else 'predicted'} blocks, "
          f"{ham.norb} orbitals -> {out}")
    if args.deeph:
        write_deeph(ham, args.deeph)
        print(f"DeepH folder -> {args.deeph}")
    return 0


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


if __name__ == "__main__":
    sys.exit(main())
