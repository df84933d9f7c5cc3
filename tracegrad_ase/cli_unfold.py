"""``tracegrad bands SUPERCELL --unfold PRIMITIVE``: the supercell's predicted levels unfolded onto the primitive
cell's high-symmetry path (pymatgen's labels; ASE's path where pymatgen's misses a periodic direction), drawn as
an effective band structure (spectral weight against k and E − E_F) and optionally written as JSON."""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np

from .cli_strict import strict_guard
from .cli_support import _check_outputs, _check_positive, _spans_periodic
from .core.errors import ParameterError, StructureError
from .electronic.unfolding import supercell_map
from .interop.files import read_structure
from .io.atomic import atomic_write_text

__all__ = ["cmd_unfold", "primitive_path"]


def primitive_path(primitive: Any, path_type: str, density: float) -> tuple[np.ndarray, list[str], str]:
    """(k-points in the primitive cell's basis, per-point labels, the path used): pymatgen's path of the
    ``path_type`` convention, else ASE's special-point path of the periodic lattice."""
    from .interop.pymatgen import symm_kpath

    if path_type != "ase":
        try:
            kpts, labels, _ = symm_kpath(primitive, path_type=path_type, line_density=density)
            if _spans_periodic(kpts, primitive.pbc):
                return kpts, labels, path_type
        except ValueError:
            pass
        print(f"note: the {path_type} path does not fit the primitive cell (pbc={[bool(p) for p in primitive.pbc]}); "
              "using ASE's path of the periodic lattice instead", file=sys.stderr)
    bp = primitive.cell.bandpath(pbc=primitive.pbc, density=2 * np.pi * density)  # ASE's 1/Å has no 2π
    x, sx, names = bp.get_linear_kpoint_axis()
    labels = [""] * len(bp.kpts)
    for xi, name in zip(sx, names):
        labels[int(np.argmin(np.abs(x - xi)))] = name
    return np.asarray(bp.kpts), labels, "ase"


def cmd_unfold(args, atoms: Any, model: Any, mesh: tuple[int, int, int]) -> int:
    """Predict the supercell ``atoms``, unfold onto ``args.unfold``'s path, plot to ``args.out`` (and JSON)."""
    from .calculator import TraceGradCalculator

    _check_positive("--density", args.density)
    if getattr(args, "projected", None):
        raise ParameterError("--unfold and --projected do not combine: unfolded weights are per primitive k, fat-band "
                             "projections per orbital of the supercell")
    primitive = read_structure(args.unfold)
    if not any(primitive.pbc):
        raise StructureError(f"{args.unfold}: the primitive cell must be periodic")
    _check_outputs(args, [(args.out, "file"), (args.json, "file")], inputs=[args.structure, args.unfold])
    cmap = supercell_map(atoms, primitive)  # a wrong primitive cell is refused before the model runs
    kpts, labels, used = primitive_path(primitive, args.path, args.density)
    # Γ for the eigenvalues (the unfolding solves its own k), the mesh for E_F (large cells: Γ inertia counts).
    calc = TraceGradCalculator(model, kpts=[[0.0, 0.0, 0.0]], fermi_kpts=mesh, ensemble=args.ensemble)
    atoms = atoms.copy()
    atoms.calc = calc
    with strict_guard(args):
        ub = calc.unfold(primitive, path=kpts, labels=labels)
    title = (f"{atoms.get_chemical_formula()} on {primitive.get_chemical_formula()}: "
             f"{cmap.n_cells} cells, {len(cmap.site)} atoms")
    ax = ub.plot(emin=-8.0, emax=6.0, sigma=0.05, title=title)
    ax.figure.tight_layout()
    ax.figure.savefig(args.out, dpi=150)
    print(f"{atoms.get_chemical_formula()} unfolded onto {primitive.get_chemical_formula()} (M = "
          f"{cmap.matrix.tolist()}, {cmap.n_cells} primitive cells; {ub.energies.shape[1]} levels"
          f"{' near E_F' if ub.sparse else ''} at {len(kpts)} k, {used} path): E_F {ub.fermi_level:.3f} eV "
          f"-> {args.out}")
    if args.json:
        atomic_write_text(args.json, json.dumps({
            "efermi_ev": ub.fermi_level, "supercell_matrix": cmap.matrix.tolist(), "path": used,
            "method": ub.method, "sparse": ub.sparse, "labels": labels, "x": ub.x.tolist(),
            "kpoints_frac": ub.kpts.tolist(), "energies_ev": ub.energies.tolist(), "weights": ub.weights.tolist()}))
    return 0
