"""What the ``tracegrad`` commands share: output checks made before any work, the band-structure and model
listing helpers, and the demo command (split out of :mod:`tracegrad_ase.cli`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .io.atomic import atomic_write_text
from .core.errors import InputNotFoundError, OutputPathError, ParameterError


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


def _table_cell(value: float | int | None, spec: str) -> str:
    """``value`` in a table column formatted by ``spec`` (``"9.2f"``); a missing figure is a dash of the column's
    width, not a zero that reads as perfect."""
    if value is not None:
        return format(value, spec)
    return "-".rjust(int(spec.split(".")[0] or 0))


def _check_positive(name: str, value: float | int | None) -> None:
    if value is not None and not (np.isfinite(value) and value > 0):
        raise ParameterError(f"{name} must be a positive number, got {value}")


def _ensemble_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ensemble", action="store_true", help="predict with the model's committee and use the mean H "
                   "(more accurate, one prediction per member; models with committee/ members, e.g. graphene-szv)")


def _refine_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--refine", nargs="?", const=True, default=False, type=int, metavar="BUILDS",
                   help="replace the prediction by Kohn-Sham builds from its density (PySCF, the model's level of "
                   "theory): two combined by DIIS, or BUILDS of them; closer to DFT (carbon's held-out 2x2 cell: "
                   "band MAE 31 -> 7 meV) for ~25 s a build on a graphene cell, minutes on larger ones; models whose "
                   "card gives level_of_theory xc and kspacing")


def _force_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true", help="overwrite existing outputs (an input is never overwritten)")


def _prediction_outputs(p: argparse.ArgumentParser, out: str, json_help: str | None = None) -> None:
    """What a command that predicts a crystal and draws it takes after its own options: -o, --json, --strict,
    --ensemble, --refine and --force."""
    p.add_argument("-o", "--out", default=out, help="figure (default: %(default)s)")
    p.add_argument("--json", default=None, help=json_help)
    p.add_argument("--strict", action="store_true", help="exit 2 (no figure) when the prediction has ghost levels "
                   "or the structure is outside the model's training domain")
    _ensemble_option(p)
    _refine_option(p)
    _force_option(p)


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


def _cmd_models(args) -> int:
    from . import models

    folders = models.folders()
    if not folders:
        print(f"no shipped models yet in {models.SHIPPED_MODELS}; train one with `tracegrad train` and pass its folder")
        return 0
    broken = []
    for d in folders:
        try:
            print(_model_line(d))
            print(_default_role_line(d.name))
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


def _default_role_line(name: str) -> str:
    """When a shipped model is chosen without ``--model`` (``models.DEFAULT_ROLE``)."""
    from . import models

    role = models.DEFAULT_ROLE.get(name, "special")
    if role == "general":
        elements, periodic = models.domain(name)
        kinds = " or ".join("periodic" if p else "non-periodic" for p in sorted(periodic, reverse=True))
        return f"  chosen without --model for {kinds} structures of {', '.join(elements)}"
    if role == "never":
        return f"  used only when named (--model {name})"
    return "  chosen without --model only where no other shipped model covers the structure"


def _default_model(args, atoms) -> str | os.PathLike:
    """``args.model``; without one, the shipped model whose training domain covers the structure's elements and
    periodicity (``models.choose``: exit 2, candidates listed, when none or several fit), said on stderr."""
    if getattr(args, "model", None) is not None:
        return args.model
    from . import models

    elements, periodic = sorted(set(atoms.get_chemical_symbols())), bool(any(atoms.pbc))
    args.model = models.choose(elements, periodic)
    print(f"model: {args.model} (chosen: covers {', '.join(elements)}, {'periodic' if periodic else 'non-periodic'}; "
          "--model names another)", file=sys.stderr)
    return args.model


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
    for entry in info.get("excluded_environments") or []:
        lines.append(f"  refuses {entry.get('name')}: {' '.join(str(entry.get('reason')).split())[:110]}...")
    # The figures users feel (energy zero removed, levels relative to E_F) where the card has them; the raw
    # block MAE depends on each structure's arbitrary energy zero and says little alone.
    if test.get("gauge_mae_mev") is not None and test.get("band_mae_ef_mev") is not None:
        ghosts = f", ghost levels {test['ghost_levels']}" if test.get("ghost_levels") is not None else ""
        lines.append(f"  test: H MAE {float(test['gauge_mae_mev']):.2f} meV (energy zero removed), levels within "
                     f"±2 eV of E_F off by {float(test['band_mae_ef_mev']):.1f} meV{ghosts}, over "
                     f"{test.get('n_structures')} held-out structures; card: {folder / 'card.yaml'}")
    elif test.get("mae_mev") is not None:
        lines.append(f"  test H MAE {float(test['mae_mev']):.1f} meV over {test.get('n_structures')} held-out "
                     f"structures; card: {folder / 'card.yaml'}")
    return lines


def _cmd_digest(args) -> int:
    from .io.h5 import data_digest, load_dataset
    from .model.train_config import fixed_split

    files = [f for d in args.folders for f in load_dataset(d)]
    parts = {"all": files}
    if args.split:  # read and checked as training reads it: every name must be one of the folders' files
        parts = dict(zip(("train", "val", "test"), fixed_split(files, args.split)))
    elif args.card:  # held-out folders, as the card names them
        parts = {f"heldout:{Path(d).name}": load_dataset(d) for d in args.folders}
    recorded = _card_digests(args.card) if args.card else None
    differ = 0
    for part, paths in parts.items():
        if paths:
            d = data_digest(paths)
            print(f"{part:8s} {d['structures']:6d} structures  geometry {d['geometry_sha256']}  sha256 {d['sha256']}")
            if recorded is not None:
                verdict, same = _against_card(d, recorded.get(part))
                differ += not same
                print(f"         {verdict}")
    if differ:
        print(f"{differ} part(s) do not match the digests the card records", file=sys.stderr)
    return 1 if differ else 0


def _card_digests(model: str) -> dict[str, dict]:
    """The data digests a model's card records (``data.digests``)."""
    from .models import card

    info = card(model)
    digests = ((info or {}).get("data") or {}).get("digests")
    if not digests:
        raise InputNotFoundError(f"{model}: its card records no data digests (data.digests in card.yaml)")
    return digests


def _against_card(found: dict, recorded: dict | None) -> tuple[str, bool]:
    """What a part's digests say against the card's, and whether they are the same structures."""
    if recorded is None:
        return "not in the card", False
    if found["structures"] != recorded.get("structures"):
        return f"card: {recorded.get('structures')} structures, here {found['structures']}", False
    if found["sha256"] == recorded.get("sha256"):
        return "the card's data, bit for bit", True
    if "geometry_sha256" not in recorded:
        return ("numbers differ from the card's, which records no geometry digest (older card): compare the "
                "card's figures with tracegrad evaluate"), False
    if found["geometry_sha256"] != recorded["geometry_sha256"]:
        return "other structures than the card's (geometry digest differs)", False
    return ("the card's structures; numbers differ in the last bits (regenerated on another machine or build): "
            "compare the card's figures with tracegrad evaluate"), True
