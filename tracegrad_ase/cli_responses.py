"""``tracegrad optics CRYSTAL`` and ``tracegrad transport CRYSTAL``: a crystal's predicted Hamiltonian's interband
optical conductivity (Kubo-Greenwood, tight-binding velocities; :mod:`tracegrad_ase.electronic.optics`) and its
constant-τ Boltzmann transport against doping (:mod:`tracegrad_ase.electronic.transport`), plotted and as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .cli_strict import strict_guard
from .cli_support import _check_outputs, _check_positive, _default_model, _mesh_arg, _prediction_outputs
from .core.errors import ParameterError, StructureError
from .io.atomic import atomic_path, atomic_write_text

__all__ = ["add_optics_command", "add_transport_command", "cmd_optics", "cmd_transport"]

#: Default k-point density (points per Å⁻¹ along each periodic reciprocal vector): a Dirac cone at width 0.1 eV
#: needs ~240 x 240 in graphene (density 80); bulk meshes grow as its cube, so they start coarser. Transport at
#: room temperature needs level spacings below kT, as fine.
DENSITY = {1: 80.0, 2: 80.0, 3: 20.0}


_MESH_HELP = "whole k-mesh, e.g. 240x240x1 (default: density 80 Å for sheets and wires, 20 Å in bulk)"


def _crystal_command(sub: Any, name: str, help: str, description: str, model_help: str, options: Any,
                     json_help: str, func: Any, mesh_help: str = _MESH_HELP,
                     structure_help: str = "a crystal (any format ASE reads, with a cell and pbc)") -> None:
    """A sub-command on one crystal: structure, --model and --mesh, the command's ``options(p)``, then the outputs
    and prediction options every such command takes (:func:`~tracegrad_ase.cli_support._prediction_outputs`)."""
    p = sub.add_parser(name, help=help, description=description)
    p.add_argument("structure", help=structure_help)
    p.add_argument("--model", default=None, help=model_help)
    p.add_argument("--mesh", default=None, help=mesh_help)
    options(p)
    _prediction_outputs(p, f"{name}.png", json_help)
    p.set_defaults(func=func)


def _crystal(args, command: str, density: dict[int, float] = DENSITY, outputs: tuple = ()):
    """The structure with a calculator of the chosen model attached, and the mesh (``--mesh``, else of
    ``density`` by the number of periodic directions); refused before any work when it has no periodic direction
    or the outputs (-o, --json and ``outputs``) cannot be written. Sets the file-only plotting backend."""
    from .calculator import TraceGradCalculator
    from .core.figures import pyplot
    from .interop.files import read_structure

    pyplot()  # before anything draws

    atoms = read_structure(args.structure)
    if not np.any(atoms.pbc):
        raise StructureError(f"{args.structure}: no periodic direction; tracegrad {command} is for crystals")
    _check_outputs(args, [(args.out, "file"), (args.json, "file")] + [(o, "file") for o in outputs],
                   inputs=[args.structure])
    mesh = _mesh_arg(args.mesh, atoms, density[int(np.sum(atoms.pbc))])
    model = _default_model(args, atoms)
    atoms.calc = TraceGradCalculator(model, ensemble=args.ensemble, refine=args.refine)
    return atoms, mesh, model


def _save(fig, out: str, record: dict, json_out: str | None) -> None:
    """The figure to ``out`` and, asked for, the record to ``json_out``: each written whole or not at all."""
    import matplotlib.pyplot as plt

    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=150, format=Path(out).suffix.lstrip(".") or "png", bbox_inches="tight")
    plt.close(fig)
    if json_out:
        atomic_write_text(json_out, json.dumps(record, indent=1))


def add_optics_command(sub: Any, model_help: str) -> None:
    """The ``optics`` sub-command on the ``tracegrad`` parser's ``sub``."""
    def options(p):
        p.add_argument("--width", type=float, default=0.1, help="Gaussian broadening in eV (default: %(default)s)")
        p.add_argument("--kt", type=float, default=0.025, help="Fermi-Dirac temperature in eV (default: %(default)s)")
        p.add_argument("--emax", type=float, default=8.0, help="highest photon energy in eV (default: %(default)s)")
        p.add_argument("--points", type=int, default=321, help="photon energies from 0 to --emax (default: "
                       "%(default)s)")
        p.add_argument("--drude", type=float, default=None, metavar="GAMMA", help="add the intraband Drude peak "
                       "with relaxation rate ħ/τ = GAMMA eV (metals, doped semimetals)")

    _crystal_command(sub, "optics", "predicted optical conductivity (and a sheet's absorbance) of a crystal",
                     "Interband Re σ(ħω) of the predicted Hamiltonian on a whole k-mesh (Kubo-Greenwood with "
                     "tight-binding velocities; --drude adds the intraband peak; no excitons, no local fields). "
                     "Sheets (two periodic directions) in units of graphene's e²/4ħ, bulk in S/m. Converge the mesh: "
                     "a mesh too coarse for --width shows spikes (and a CoarseMeshWarning).", model_help, options,
                     "energies, the 3x3 tensor per energy, unit and settings as JSON", cmd_optics)


def cmd_optics(args) -> int:
    """Predict, compute Re σ on the mesh, report and plot."""
    for name in ("width", "emax"):
        _check_positive(f"--{name}", getattr(args, name))
    if args.kt < 0 or args.points < 2:
        raise ParameterError(f"--kt must be >= 0 and --points at least 2, got {args.kt} and {args.points}")
    atoms, mesh, model = _crystal(args, "optics")
    energies = np.linspace(0.0, args.emax, args.points)
    with strict_guard(args):
        oc = atoms.calc.get_optical_conductivity(energies, mesh, width=args.width, kt=args.kt, drude=args.drude,
                                                 progress=True)
    sheet = oc.periodic_dimensions == 2
    xx = oc.in_sigma0()[:, 0, 0] if sheet else oc.sigma[:, 0, 0]
    peak = int(np.argmax(xx))
    print(f"{atoms.get_chemical_formula()} ({model}): E_F {oc.fermi_level:.3f} eV, mesh {'x'.join(map(str, mesh))} "
          f"({oc.nkpts} k-points); Re σ_xx peaks at {energies[peak]:.2f} eV ({xx[peak]:.3g} "
          f"{'e²/4ħ' if sheet else oc.unit})"
          + (f"; absorbance at 1 eV {100 * np.interp(1.0, energies, oc.absorbance(0)):.2f} %" if sheet else "")
          + f" -> {args.out}")
    ax = oc.plot(components=("xx", "yy") if sheet else ("xx", "yy", "zz"))
    ax.set_title(f"{atoms.get_chemical_formula()}: interband optical conductivity ({Path(str(model)).name})")
    _save(ax.figure, args.out, {
        "energies_ev": energies.tolist(), "sigma": oc.sigma.tolist(), "unit": oc.unit,
        "sigma_over_sigma0_xx": xx.tolist() if sheet else None, "fermi_level_ev": oc.fermi_level,
        "mesh": list(mesh), "width_ev": oc.width, "kt_ev": oc.kt, "drude_ev": args.drude, "model": str(model),
        "approximation": oc.meta["approximation"]}, args.json)
    return 0


def add_transport_command(sub: Any, model_help: str) -> None:
    """The ``transport`` sub-command on the ``tracegrad`` parser's ``sub``."""
    def options(p):
        p.add_argument("--temperature", type=float, default=300.0, help="K (default: %(default)s)")
        p.add_argument("--mu", type=float, nargs=2, default=(-1.0, 1.0), metavar=("LOW", "HIGH"),
                       help="chemical potentials relative to E_F, eV (default: -1 1)")
        p.add_argument("--points", type=int, default=81, help="chemical potentials (default: %(default)s)")

    _crystal_command(sub, "transport", "predicted Seebeck coefficient and σ/τ of a crystal against doping",
                     "Constant relaxation-time Boltzmann transport of the predicted bands (rigid bands: μ moves, "
                     "the bands do not) with exact band velocities on a whole k-mesh: Seebeck coefficient, σ/τ and "
                     "κ_e/τ against μ − E_F and the carrier density. --refine matters here: a Seebeck coefficient "
                     "near a band crossing needs band errors of a few meV.", model_help, options,
                     "μ, doping, carrier density and the 3x3 tensors as JSON", cmd_transport)


def cmd_transport(args) -> int:
    """Predict, compute the coefficients on the mesh, report and plot."""
    _check_positive("--temperature", args.temperature)
    if args.points < 2 or not args.mu[0] < args.mu[1]:
        raise ParameterError(f"--mu needs LOW < HIGH and --points at least 2, got {args.mu} and {args.points}")
    atoms, mesh, model = _crystal(args, "transport")
    mu = np.linspace(args.mu[0], args.mu[1], args.points)
    with strict_guard(args):
        tr = atoms.calc.get_transport(mu, args.temperature, mesh, progress=True)
    sxx = tr.seebeck[:, 0, 0]
    print(f"{atoms.get_chemical_formula()} ({model}): E_F {tr.fermi_level:.3f} eV, mesh {'x'.join(map(str, mesh))}, "
          f"{tr.temperature:g} K; Seebeck S_xx from {1e6 * sxx.min():.1f} to {1e6 * sxx.max():.1f} µV/K over "
          f"μ − E_F {mu[0]:g} to {mu[-1]:g} eV (carriers {tr.carrier_density[0]:.3g} to "
          f"{tr.carrier_density[-1]:.3g} {tr.units['carrier_density']}) -> {args.out}")
    axes = tr.plot()
    axes[0].figure.suptitle(f"{atoms.get_chemical_formula()}: constant-τ transport ({Path(str(model)).name})")
    _save(axes[0].figure, args.out, {
        "mu_ev": mu.tolist(), "temperature_k": tr.temperature, "fermi_level_ev": tr.fermi_level,
        "doping": tr.doping.tolist(), "carrier_density": tr.carrier_density.tolist(),
        "sigma_over_tau": tr.sigma_over_tau.tolist(), "seebeck_v_per_k": tr.seebeck.tolist(),
        "kappa_over_tau": tr.kappa_over_tau.tolist(), "units": tr.units, "mesh": list(mesh),
        "model": str(model), "approximation": tr.meta["approximation"]}, args.json)
    return 0
