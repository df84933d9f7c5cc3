"""``tracegrad bands STRUCTURE --uncertainty``: the bands of the model's member 0 with the committee's spread
shaded (±2σ of ε − E_F per level), the gap with its spread, and a JSON with both (issue 17)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .cli_strict import strict_guard
from .cli_support import _check_outputs
from .cli_unfold import primitive_path
from .interop.plots import plot_uncertainty
from .io.atomic import atomic_write_text

__all__ = ["cmd_uncertainty"]


def _axis(atoms: Any, kpts: np.ndarray) -> np.ndarray:
    """Distance along the path (1/Å, 2π included); a repeated point (a jump between segments) adds nothing."""
    cart = np.asarray(kpts) @ (2 * np.pi * np.linalg.inv(np.asarray(atoms.cell[:])).T)
    steps = np.linalg.norm(np.diff(cart, axis=0), axis=1)
    return np.concatenate([[0.0], np.cumsum(steps)])


def cmd_uncertainty(args, atoms: Any, model: Any, mesh: tuple[int, int, int]) -> int:
    """Predict with the committee on the path, plot to ``args.out`` (and JSON)."""
    from .calculator import TraceGradCalculator

    _check_outputs(args, [(args.out, "file"), (args.json, "file")], inputs=[args.structure])
    kpts, labels, used = primitive_path(atoms, args.path, args.density)
    calc = TraceGradCalculator(model, kpts=kpts, fermi_kpts=mesh, uncertainty=True, ensemble=args.ensemble)
    with strict_guard(args):
        calc.calculate(atoms.copy())
    r = calc.results
    energies, std, ef = r["eigenvalues"][0], r["eigenvalues_std"][0], r["fermi_level"]
    gap, gap_std = (r["band_gap"] or {}).get("gap", 0.0), r["band_gap_std"]
    title = f"{atoms.get_chemical_formula()}: {r['committee_size']} members"
    plot_uncertainty(_axis(atoms, kpts), energies, std, ef, labels, title).figure.savefig(args.out, dpi=150)
    spread = f" ± {gap_std:.3f}" if gap_std is not None else ""
    print(f"{atoms.get_chemical_formula()}: E_F {ef:.3f} ± {r['fermi_level_std']:.3f} eV; "
          + ("metal" if not gap else f"gap {gap:.3f}{spread} eV")
          + f"; largest spread within 2 eV of E_F {r['uncertainty_near_fermi']:.3f} eV ({used} path) -> {args.out}")
    if args.json:
        atomic_write_text(args.json, json.dumps({
            "efermi_ev": ef, "efermi_std_ev": r["fermi_level_std"], "gap_ev": gap, "gap_std_ev": gap_std,
            "committee_size": r["committee_size"], "path": used, "labels": labels,
            "kpoints_frac": np.asarray(kpts).tolist(), "energies_ev": energies.tolist(),
            "energies_std_ev": np.nan_to_num(std).tolist()}, indent=1))
    return 0
