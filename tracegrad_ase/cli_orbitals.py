"""``tracegrad orbitals MOLECULE``: a molecule's predicted orbital energies, HOMO-LUMO gap and the checks on it
(the gap's move with the overlap cut; one Fock build from the predicted density: its residual and the refined
gap), printed, as JSON, as a level diagram beside F[ρ]'s levels and (``--cube``) the HOMO and LUMO as cube files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .cli_strict import strict_guard
from .cli_support import _check_outputs, _check_positive, _default_model
from .core.errors import StructureError
from .core.units import BOHR_TO_ANGSTROM
from .io.atomic import atomic_path, atomic_write_text

__all__ = ["add_orbitals_command", "cmd_orbitals"]

#: Levels drawn: this far (eV) below the HOMO and above the LUMO (the JSON holds them all).
WINDOW_EV = 10.0
#: Vacuum (Å) around a molecule without a cell, for the grid of its cube files.
CUBE_VACUUM = 4.0


def add_orbitals_command(sub: Any, model_help: str, force_option: Any) -> None:
    """The ``orbitals`` sub-command on the ``tracegrad`` parser's ``sub``."""
    p = sub.add_parser("orbitals", help="predicted orbital energies and HOMO-LUMO gap of a molecule, with its checks",
                       description="Predicts a molecule's Hamiltonian and solves it: HOMO, LUMO, gap, how far the gap "
                       "moves with the overlap cut, and (models whose card names their functional) one PySCF Fock "
                       "build from the predicted density: the gap's self-consistency residual and the refined gap.")
    p.add_argument("structure", help="a molecule (any format ASE reads; no periodic direction)")
    p.add_argument("--model", default=None, help=model_help)
    p.add_argument("--no-scf-check", action="store_true", help="skip the Fock build (faster; no residual)")
    p.add_argument("-o", "--out", default=None, help="level diagram (PNG, PDF or SVG)")
    p.add_argument("--json", default=None, help="the levels, gap and checks as JSON")
    p.add_argument("--cube", default=None, metavar="PREFIX", help="also write the HOMO and LUMO on a grid as Gaussian "
                   "cube files PREFIX-homo.cube, PREFIX-lumo.cube (Bohr^-3/2; a molecule without a cell gets a box "
                   f"with {CUBE_VACUUM:g} Å of vacuum around it for the grid)")
    p.add_argument("--spacing", type=float, default=0.2, help="the cube files' grid spacing, Å (default: "
                   "%(default)s)")
    p.add_argument("--strict", action="store_true", help="exit 2, nothing written, when a check warns (a gap that "
                   "moves with the cut or with F[ρ], ghost levels, atoms outside the training domain)")
    force_option(p)
    p.set_defaults(func=cmd_orbitals)


def cmd_orbitals(args) -> int:
    """Predict, solve and report one molecule."""
    from .calculator import TraceGradCalculator
    from .interop.files import read_structure

    atoms = read_structure(args.structure)
    if np.any(atoms.pbc):
        raise StructureError(f"{args.structure}: periodic along {np.flatnonzero(atoms.pbc).tolist()}; tracegrad "
                             "orbitals is for molecules (use tracegrad bands for a crystal)")
    cubes = [f"{args.cube}-{name}.cube" for name in ("homo", "lumo")] if args.cube else []
    _check_outputs(args, [(args.out, "file"), (args.json, "file")] + [(c, "file") for c in cubes],
                   inputs=[args.structure])
    if cubes:
        _check_positive("--spacing", args.spacing)
        if atoms.cell.volume < 1e-6:  # the grid needs a box; H does not move with the molecule
            atoms.center(vacuum=CUBE_VACUUM)
    model = _default_model(args, atoms)
    atoms.calc = TraceGradCalculator(model, scf_check=False if args.no_scf_check else None,
                                     grid_spacing=args.spacing)
    with strict_guard(args):
        mo = atoms.calc.get_molecular_orbitals()
    report = _report(atoms.calc.results, mo)
    print(_summary(atoms, str(model), report))
    if args.json:
        atomic_write_text(args.json, json.dumps(report, indent=1))
    if args.out:
        _draw(report, f"{atoms.get_chemical_formula()} ({model})", Path(args.out))
        print(f"level diagram -> {args.out}")
    if cubes:
        _write_cubes(atoms, mo, cubes)
    return 0


def _write_cubes(atoms: Any, mo: dict[str, Any], paths: list[str]) -> None:
    """The HOMO and LUMO (the calculator's ``get_pseudo_wave_function``) as cube files, in Bohr^-3/2."""
    from ase.io.cube import write_cube

    homo = int(np.flatnonzero(np.asarray(mo["occupations"]) > 0).max())
    for band, path, name in zip((homo, homo + 1), paths, ("HOMO", "LUMO")):
        psi = atoms.calc.get_pseudo_wave_function(band=band)
        with atomic_path(path) as part, open(part, "w") as fd:
            write_cube(fd, atoms, data=psi * BOHR_TO_ANGSTROM ** 1.5,
                       comment=f"tracegrad orbitals: {name} (level {band}), Bohr^-3/2")
        print(f"{name} -> {path}")


def _report(results: dict[str, Any], mo: dict[str, Any]) -> dict[str, Any]:
    """What the command prints and writes (eV)."""
    fock = results.get("fock_levels")
    return {"homo_ev": mo["homo"], "lumo_ev": mo["lumo"], "gap_ev": mo["gap"],
            "gap_cut_sensitivity_ev": results.get("band_gap_cut_sensitivity"),
            "scf_gap_residual_ev": results.get("scf_gap_residual"), "fock_gap_ev": results.get("fock_gap"),
            "refined_gap_ev": results.get("refined_gap"), "n_electrons": int(results["n_electrons"]),
            "energies_ev": np.asarray(mo["energies"]).tolist(), "occupations": np.asarray(mo["occupations"]).tolist(),
            "fock_energies_ev": None if fock is None else np.asarray(fock).tolist(),
            "ghost_levels": len(results.get("ghost_levels") or []),
            "largest_domain_score": (float(np.max(results["domain_scores"])) if "domain_scores" in results else None)}


def _summary(atoms: Any, model: str, r: dict[str, Any]) -> str:
    lines = [f"{atoms.get_chemical_formula()} ({len(atoms)} atoms, model {model}): HOMO {r['homo_ev']:.3f} eV, "
             f"LUMO {r['lumo_ev']:.3f} eV, gap {r['gap_ev']:.3f} eV"]
    if r["gap_cut_sensitivity_ev"] is not None:
        lines.append(f"  the gap moves by {r['gap_cut_sensitivity_ev']:.3f} eV with the overlap cut")
    if r["scf_gap_residual_ev"] is not None:
        lines.append(f"  one Fock build from the predicted density: gap {r['fock_gap_ev']:.3f} eV "
                     f"(residual {r['scf_gap_residual_ev']:+.3f} eV)")
    if r["refined_gap_ev"] is not None:
        lines.append(f"  refined gap (the gap moved toward self-consistency): {r['refined_gap_ev']:.3f} eV")
    return "\n".join(lines)


def _draw(r: dict[str, Any], title: str, out: Path) -> None:
    """Levels within WINDOW_EV of the frontier, occupied and empty in two colours, F[ρ]'s beside them."""
    from .core.figures import pyplot

    plt = pyplot()
    lo, hi = r["homo_ev"] - WINDOW_EV, r["lumo_ev"] + WINDOW_EV
    columns = [("model", r["energies_ev"])] + ([("F[ρ]", r["fock_energies_ev"])] if r["fock_energies_ev"] else [])
    occupied = int(np.count_nonzero(r["occupations"]))  # an open shell's half-filled level is drawn occupied
    fig, ax = plt.subplots(figsize=(2.2 + 1.6 * len(columns), 5))
    for x, (_, levels) in enumerate(columns):
        for i, e in enumerate(levels):
            if lo <= e <= hi:
                ax.hlines(e, x - 0.3, x + 0.3, color="tab:blue" if i < occupied else "tab:orange", lw=1.5)
    for colour, label in (("tab:blue", "occupied"), ("tab:orange", "empty")):
        ax.plot([], [], color=colour, label=label)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_xticks(range(len(columns)), [name for name, _ in columns])
    ax.set_xlim(-0.6, len(columns) - 0.4)
    ax.set_ylim(lo, hi)
    ax.set_ylabel("orbital energy (eV)")
    ax.set_title(f"{title}\ngap {r['gap_ev']:.2f} eV" + (f", F[ρ] {r['fock_gap_ev']:.2f} eV"
                                                        if r["fock_gap_ev"] is not None else ""), fontsize=9)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=out.suffix.lstrip(".") or "png", dpi=150)
    plt.close(fig)
