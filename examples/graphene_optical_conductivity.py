"""Optical conductivity of graphene, flat and under uniaxial strain, from the shipped carbon model (~3 minutes).

    python examples/graphene_optical_conductivity.py [--mesh 240] [--strain 0.03] [--out graphene_optics.png]

Flat graphene absorbs πα ≈ 2.3 % of normally incident light at low photon energies (Re σ = e²/4ħ, the Dirac cone's
universal value) and has its π → π* peak at the M point (~4 eV in PBE). Stretching the sheet along x makes it
dichroic: σ_xx and σ_yy part, and the M peak splits, because the three bonds are no longer equivalent. The
velocities are tight-binding ones (orbital centres as positions) and the spectrum has no excitons or Drude term:
see `tracegrad_ase.electronic.optics`.
"""

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from ase.build import graphene

from tracegrad_ase import TraceGradCalculator


def sheet(strain: float = 0.0):
    atoms = graphene(a=2.46, vacuum=7.5)
    atoms.pbc = [True, True, False]
    cell = atoms.cell[:].copy()
    cell[:, 0] *= 1 + strain  # stretch along Cartesian x
    atoms.set_cell(cell, scale_atoms=True)
    return atoms


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mesh", type=int, default=240, help="k-points along each in-plane direction")
    ap.add_argument("--strain", type=float, default=0.03)
    ap.add_argument("--out", default="graphene_optics.png")
    args = ap.parse_args()
    energies = np.linspace(0.0, 7.0, 281)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, strain in zip(axes, (0.0, args.strain)):
        atoms = sheet(strain)
        atoms.calc = TraceGradCalculator("carbon")
        oc = atoms.calc.get_optical_conductivity(energies, (args.mesh, args.mesh, 1), width=0.1, progress=True)
        ratio = oc.in_sigma0()
        ax.plot(energies, ratio[:, 0, 0], label="σ_xx")
        ax.plot(energies, ratio[:, 1, 1], "--", label="σ_yy")
        ax.axhline(1.0, color="grey", lw=0.5)
        ax.set_title(f"graphene, {100 * strain:.0f} % strain along x")
        ax.set_xlabel("ħω (eV)")
        ax.legend()
        a_xx = 100 * np.interp(1.5, energies, oc.absorbance(0))
        a_yy = 100 * np.interp(1.5, energies, oc.absorbance(1))
        peaks = [energies[np.argmax(ratio[:, i, i])] for i in (0, 1)]
        print(f"strain {100 * strain:.0f} %: absorbance at 1.5 eV {a_xx:.2f} % (x) / {a_yy:.2f} % (y), "
              f"πα = {100 * np.pi / 137.036:.2f} %; M peak at {peaks[0]:.2f} eV (x) / {peaks[1]:.2f} eV (y)")
    axes[0].set_ylabel("Re σ / (e²/4ħ)")
    fig.savefig(args.out, dpi=120, bbox_inches="tight")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
