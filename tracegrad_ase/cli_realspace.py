"""``tracegrad stm SHEET --bias V``: a simulated scanning-tunnelling image of a surface or sheet from the predicted
Hamiltonian (Tersoff-Hamann: the density of the states between E_F and E_F + V, the calculator's
``get_partial_density``), at constant height, or at constant current through ASE's own ``ase.dft.stm.STM``;
with the density as a cube file and as ASE's STM file."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .cli_responses import _crystal, _crystal_command, _save
from .cli_strict import strict_guard
from .cli_support import _check_positive
from .core.errors import ParameterError, StructureError
from .core.units import BOHR_TO_ANGSTROM
from .electronic.filling import SPIN_DEGENERACY
from .io.atomic import atomic_path

__all__ = ["add_stm_command", "cmd_stm"]

#: Default k-point density (points per Å⁻¹): a window of states (not a spectrum's fine structure) needs less.
DENSITY = {1: 20.0, 2: 20.0, 3: 10.0}


def add_stm_command(sub: Any, model_help: str) -> None:
    """The ``stm`` sub-command on the ``tracegrad`` parser's ``sub``."""
    def options(p):
        p.add_argument("--bias", type=float, required=True, help="sample bias V in volts: the states from E_F to "
                       "E_F + V are imaged (negative: occupied states)")
        p.add_argument("--height", type=float, default=2.0, help="tip height above the topmost atom, Å (constant "
                       "height; default: %(default)s)")
        p.add_argument("--current", type=float, default=None, help="constant-current mode (ASE's STM.scan) at this "
                       "current, in the units of ASE's STM (the LDOS per spin, 1/Å³)")
        p.add_argument("--spacing", type=float, default=0.2, help="real-space grid spacing, Å (default: %(default)s)")
        p.add_argument("--repeat", type=int, nargs=2, default=(3, 3), metavar=("N1", "N2"),
                       help="cells shown along a1, a2 (default: 3 3)")
        p.add_argument("--cube", default=None, help="also write the window's density as a Gaussian cube file "
                       "(atomic units: electrons/Bohr³)")
        p.add_argument("--ase-json", default=None, help="also write the LDOS as ASE's STM file "
                       "(ase.dft.stm.STM(FILE) reads it)")

    _crystal_command(sub, "stm", "simulated STM image of a sheet or surface from the predicted states",
                     "Tersoff-Hamann STM image: the density of the predicted states between E_F and E_F + bias on a "
                     "real-space grid of the cell, at constant height above the topmost atom (or at constant "
                     "current with --current). The structure needs two periodic directions and its third cell "
                     "vector along z, with the vacuum above the atoms.", model_help, options,
                     "the image, its axes and the settings as JSON", cmd_stm,
                     mesh_help="whole k-mesh, e.g. 24x24x1 (default: density 20 Å)",
                     structure_help="a sheet or slab (any format ASE reads): pbc T T F, a3 along z, vacuum above")


def _sheet(atoms, height: float) -> float:
    """The tip's z (Å) for a sheet whose third cell vector is along z; refused otherwise."""
    cell = atoms.cell[:]
    if list(atoms.pbc) != [True, True, False] or np.abs(cell[2, :2]).max() > 1e-8 or np.abs(cell[:2, 2]).max() > 1e-8:
        raise StructureError("tracegrad stm images a sheet or slab: pbc (True, True, False), a1 and a2 in the xy "
                             "plane and a3 along z")
    z = float(atoms.positions[:, 2].max()) + height
    if not 0.0 < z < cell[2, 2]:
        raise ParameterError(f"the tip at {height:g} Å above the topmost atom (z = {z:.2f} Å) is outside the cell "
                             f"(0 to {cell[2, 2]:.2f} Å along z): add vacuum above the atoms")
    return z


def _write_ase_stm(path: str, ldos: np.ndarray, bias: float, cell: np.ndarray) -> str:
    """ASE's STM file (what ``STM.write`` gives and ``STM(path)`` reads), written whole or not at all."""
    from ase.io.jsonio import write_json

    with atomic_path(path) as part:
        write_json(part, (ldos, bias, cell))
    return path


def cmd_stm(args) -> int:
    """Predict, integrate the window's states on the grid, image them."""
    _check_positive("--spacing", args.spacing)
    if args.bias == 0 or min(args.repeat) < 1:
        raise ParameterError(f"--bias must not be 0 and --repeat at least 1 1, got {args.bias} and {args.repeat}")
    if args.current is not None:
        _check_positive("--current", args.current)
    atoms, mesh, model = _crystal(args, "stm", DENSITY, outputs=(args.cube, args.ase_json))
    z = _sheet(atoms, args.height)
    atoms.calc.set(grid_spacing=args.spacing)
    emin, emax = sorted((0.0, float(args.bias)))
    with strict_guard(args):
        density = atoms.calc.get_partial_density(emin, emax, kpts=mesh, progress=True)
    ldos = density / SPIN_DEGENERACY  # ASE's STM: per spin
    name = Path(str(model)).name
    if args.ase_json:
        _write_ase_stm(args.ase_json, ldos, float(args.bias), atoms.cell[:])
    if args.current is None:
        from .wavefunctions import plane_at_height

        image = plane_at_height(ldos, atoms.cell[:], z)
        label, mode = "LDOS per spin (1/Å³)", f"constant height {args.height:g} Å"
    else:  # ASE's scan reads its own file format
        from ase.dft.stm import STM

        with tempfile.TemporaryDirectory() as tmp:
            ase_file = args.ase_json or _write_ase_stm(str(Path(tmp) / "stm.json"), ldos, float(args.bias),
                                                       atoms.cell[:])
            _, _, image = STM(ase_file).scan(float(args.bias), float(args.current), repeat=(1, 1))
        label, mode = "tip height (Å)", f"constant current {args.current:g}"
    if args.cube:
        from ase.io.cube import write_cube

        with atomic_path(args.cube) as part, open(part, "w") as fd:
            write_cube(fd, atoms, data=density * BOHR_TO_ANGSTROM ** 3,
                       comment=f"tracegrad stm: states E_F{emin:+g} to E_F{emax:+g} eV, electrons/Bohr^3")
    volume = atoms.get_volume()
    electrons = float(density.mean() * volume)
    print(f"{atoms.get_chemical_formula()} ({model}): bias {args.bias:+g} V, mesh {'x'.join(map(str, mesh))}, grid "
          f"{'x'.join(map(str, density.shape))}; {electrons:.3f} electrons per cell in the window; {mode}: "
          f"{image.min():.3g} to {image.max():.3g} -> {args.out}")
    from .interop.plots import plot_stm

    ax = plot_stm(atoms, image, tuple(args.repeat), f"{atoms.get_chemical_formula()} ({name}): STM, bias "
                  f"{args.bias:+g} V, {mode}", label)
    _save(ax.figure, args.out, {
        "bias_v": float(args.bias), "mode": mode, "image": image.tolist(), "image_unit": label,
        "grid": list(density.shape), "mesh": list(mesh), "tip_z_angstrom": z if args.current is None else None,
        "electrons_in_window": electrons, "model": str(model), "fermi_level_ev": atoms.calc.get_fermi_level(),
        "approximation": "Tersoff-Hamann (s-wave tip): the local density of the states in the bias window"},
        args.json)
    return 0
