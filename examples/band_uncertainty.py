"""Bands with error bars: the shipped carbon model's committee on graphene, AA bilayer graphene and a rattled 2x2
graphene supercell; diamond, which the carbon model refuses (its card excludes sp3 carbon), shows the refusal.

    python examples/band_uncertainty.py                 # writes band_uncertainty.png, prints gaps with their spread
    python examples/band_uncertainty.py --large 22      # + a rattled 968-atom sheet, graphene-szv's committee (~3 min)

``TraceGradCalculator(model, uncertainty=True)`` predicts with every member of the model's committee (members
trained from other seeds, ``committee/`` in the model folder), moves each to member 0's energy zero, and reports the
standard deviation over members of each level relative to E_F (``results["eigenvalues_std"]``), of E_F and of the
gap. Where members disagree, the model is guessing: the shaded band (±2σ) is wide, and an ``UncertaintyWarning``
names the spread when a level within 2 eV of E_F spreads by more than 0.1 eV. The numbers printed are member 0's,
the same as without ``uncertainty``. Whether σ tracks the true error on held-out structures is measured by
``benchmarks/committee_uncertainty.py`` (README, "Error bars").
"""

import argparse
import warnings

import numpy as np
from ase.build import bulk, graphene

from tracegrad_ase import TraceGradCalculator
from tracegrad_ase.core.errors import OutOfDomainError, UncertaintyWarning
from tracegrad_ase.core.figures import pyplot
from tracegrad_ase.interop.plots import plot_uncertainty


def structures() -> dict:
    sheet = graphene(a=2.46, vacuum=7.5)
    sheet.pbc = [True, True, False]
    aa = graphene(a=2.46, vacuum=0.0)
    aa = aa + aa.copy()  # AA stacking: the second layer straight above the first
    aa.positions[2:, 2] += 3.35
    aa.cell[2, 2] = 18.0
    aa.pbc = [True, True, False]
    rattled = sheet.repeat((2, 2, 1))
    rattled.rattle(0.05, seed=1)
    return {"graphene": (sheet, "GMKG", (9, 9, 1)), "AA bilayer": (aa, "GMKG", (9, 9, 1)),
            "rattled 2x2": (rattled, "GMKG", (5, 5, 1))}


def large_cell(n: int) -> None:
    """A rattled n x n graphene sheet (2 n² atoms) on the sparse path: ``graphene-szv``'s committee, the levels
    nearest E_F at Γ and K only; members are matched band by band (inertia counts), not by window position."""
    sheet = graphene(a=2.46, vacuum=5.0).repeat((n, n, 1))
    sheet.pbc = [True, True, False]
    sheet.rattle(0.02, seed=0)
    sheet.calc = TraceGradCalculator("graphene-szv", kpts=[[0, 0, 0], [1 / 3, 1 / 3, 0]], n_bands=12,
                                     uncertainty=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UncertaintyWarning)
        sheet.calc.calculate(sheet)
    r = sheet.calc.results
    rel, std = r["eigenvalues"][0] - r["fermi_level"], r["eigenvalues_std"][0]
    print(f"{len(sheet)}-atom sheet: E_F {r['fermi_level']:.3f} ± {r['fermi_level_std']:.3f} eV, largest σ within 2 eV "
          f"of E_F {r['uncertainty_near_fermi']:.3f} eV" + ("  (UncertaintyWarning)" if caught else ""))
    for label, e, sd in zip(("Γ", "K"), rel, std):
        print(f"  {label}: " + "  ".join(f"{x:+.3f}±{y:.3f}" for x, y in zip(e, sd)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="carbon")
    ap.add_argument("--npoints", type=int, default=60)
    ap.add_argument("-o", "--out", default="band_uncertainty.png")
    ap.add_argument("--large", type=int, default=0, help="n of an n x n sheet on the sparse path (0: none)")
    args = ap.parse_args()
    if args.large:
        large_cell(args.large)
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2))
    for ax, (name, (atoms, path, mesh)) in zip(axes, structures().items()):
        bp = atoms.cell.bandpath(path, npoints=args.npoints, pbc=atoms.pbc)
        calc = TraceGradCalculator(args.model, kpts=bp, fermi_kpts=mesh, uncertainty=True)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UncertaintyWarning)
            calc.calculate(atoms)
        r = calc.results
        gap = (r["band_gap"] or {}).get("gap", 0.0)
        print(f"{name:11s} E_F {r['fermi_level']:7.3f} ± {r['fermi_level_std']:.3f} eV, gap {gap:.3f}"
              + (f" ± {r['band_gap_std']:.3f}" if r["band_gap_std"] is not None else "") + " eV, largest σ within "
              f"2 eV of E_F {r['uncertainty_near_fermi']:.3f} eV" + ("  (UncertaintyWarning)" if caught else ""))
        x, special_x, special = bp.get_linear_kpoint_axis()
        labels = [""] * len(x)
        for sx, lab in zip(special_x, special):
            labels[int(np.argmin(np.abs(x - sx)))] = lab
        plot_uncertainty(x, r["eigenvalues"][0], r["eigenvalues_std"][0], r["fermi_level"], labels,
                         f"{name}: {r['committee_size']} members", ax=ax)
    axes[0].set_ylabel(r"$E - E_F$ (eV)")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"-> {args.out}")
    try:  # sp3 carbon: refused with the measured reason rather than answered with wrong bands
        TraceGradCalculator(args.model, kpts=(6, 6, 6)).calculate(bulk("C", "diamond", a=3.567))
    except OutOfDomainError as exc:
        print(f"diamond: refused: {str(exc)[:160]}...")


if __name__ == "__main__":
    main()
