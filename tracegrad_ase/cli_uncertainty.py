"""``tracegrad bands STRUCTURE --uncertainty``: the bands of the model's member 0 with the committee's spread
shaded (±2σ of ε − E_F per level), the gap with its spread, and a JSON with both (issue 17)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .cli_strict import strict_guard
from .cli_support import _check_outputs
from .cli_unfold import primitive_path
from .io.atomic import atomic_write_text

__all__ = ["cmd_uncertainty", "plot_uncertainty"]


def _axis(atoms: Any, kpts: np.ndarray) -> np.ndarray:
    """Distance along the path (1/Å, 2π included); a repeated point (a jump between segments) adds nothing."""
    cart = np.asarray(kpts) @ (2 * np.pi * np.linalg.inv(np.asarray(atoms.cell[:])).T)
    steps = np.linalg.norm(np.diff(cart, axis=0), axis=1)
    return np.concatenate([[0.0], np.cumsum(steps)])


def plot_uncertainty(x: np.ndarray, energies: np.ndarray, std: np.ndarray, fermi: float, labels: list[str],
                     title: str = "", emin: float = -8.0, emax: float = 6.0):
    """Bands (ε − E_F) with ±2σ shaded; returns the matplotlib Axes."""
    from .core.figures import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    rel = energies - fermi
    for n in range(rel.shape[1]):
        if rel[:, n].max() < emin - 1 or rel[:, n].min() > emax + 1:
            continue
        band_std = np.nan_to_num(std[:, n])
        ax.fill_between(x, rel[:, n] - 2 * band_std, rel[:, n] + 2 * band_std, color="tab:orange", alpha=0.35, lw=0)
        ax.plot(x, rel[:, n], color="k", lw=1)
    ticks = [(xi, lab) for xi, lab in zip(x, labels) if lab]
    for xi, _ in ticks:
        ax.axvline(xi, color="0.7", lw=0.6)
    ax.set_xticks([t[0] for t in ticks], [r"$\Gamma$" if t[1] in ("G", "\\Gamma", "Γ") else t[1] for t in ticks])
    ax.axhline(0.0, color="tab:blue", ls="--", lw=0.8)
    ax.set_xlim(x[0], x[-1])
    ax.set_ylim(emin, emax)
    ax.set_ylabel(r"$E - E_F$ (eV)")
    ax.set_title(title + ("\n" if title else "") + "shaded: ±2σ over the committee", fontsize=9)
    fig.tight_layout()
    return ax


def cmd_uncertainty(args, atoms: Any, model: Any, mesh: tuple[int, int, int]) -> int:
    """Predict with the committee on the path, plot to ``args.out`` (and JSON)."""
    from .calculator import TraceGradCalculator

    _check_outputs(args, [(args.out, "file"), (args.json, "file")], inputs=[args.structure])
    kpts, labels, used = primitive_path(atoms, args.path, args.density)
    calc = TraceGradCalculator(model, kpts=kpts, fermi_kpts=mesh, uncertainty=True)
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
