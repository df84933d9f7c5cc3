"""Simulated STM images of graphene and of AB-stacked (Bernal) bilayer graphene from the shipped carbon model.

On graphite and Bernal bilayers STM sees three of the six atoms of each hexagon near E_F: the top-layer atoms with
no atom below them (the "non-dimer" sites) carry the states at the band edges; those above a bottom-layer atom (the
"dimer" sites) are bonded away from E_F. A monolayer shows all six alike. This example images both at a bias of
-0.5 V (the occupied states within 0.5 eV of E_F) at constant height, 2 Å above the top layer (Tersoff-Hamann, the
calculator's ``get_partial_density``), and prints the LDOS above each top-layer atom. About two minutes on one core.

    python examples/bilayer_stm.py          # writes bilayer_stm.png

``tracegrad stm STRUCTURE --bias V`` draws the same for any sheet; ASE's own ``ase.dft.stm.STM(atoms)`` also works
on the calculator (it reads ``get_pseudo_wave_function`` on the calculator's irreducible k-points).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from ase.build import graphene  # noqa: E402
from ase.io import read  # noqa: E402

from tracegrad_ase import TraceGradCalculator  # noqa: E402
from tracegrad_ase.interop.plots import plot_stm  # noqa: E402
from tracegrad_ase.wavefunctions import density_at, plane_at_height  # noqa: E402

BIAS, HEIGHT, MESH = -0.5, 2.0, (60, 60, 1)  # a Dirac cone holds few states near E_F: a fine mesh
RECIPES = Path(__file__).resolve().parent.parent / "tracegrad_ase" / "shipped" / "carbon" / "recipes"


def main() -> None:
    mono = graphene(a=2.46, vacuum=5.0)
    mono.pbc = [True, True, False]
    bilayer = read(RECIPES / "bilayer_ab.extxyz")  # AB stacking, 3.35 Å apart
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for atoms, name, ax in ((mono, "graphene", axes[0]), (bilayer, "AB bilayer", axes[1])):
        atoms.calc = TraceGradCalculator("carbon", kpts=MESH, grid_spacing=0.2)
        density = atoms.calc.get_partial_density(BIAS, 0.0, progress=True) / 2  # per spin, as ASE's STM
        ztop = atoms.positions[:, 2].max()
        top = np.flatnonzero(atoms.positions[:, 2] > ztop - 0.5)
        below = atoms.positions[atoms.positions[:, 2] < ztop - 0.5]
        print(f"{name}: E_F {atoms.calc.get_fermi_level():.3f} eV; LDOS per spin {HEIGHT:g} Å above each "
              f"top-layer atom at {BIAS:+g} V:")
        above = density_at(density, atoms.cell[:], atoms.positions[top] + [0.0, 0.0, HEIGHT])
        for a, value in zip(top, above):
            x, y, _ = atoms.positions[a]
            kind = "sheet" if len(below) == 0 else (
                "dimer" if np.min(np.linalg.norm(below[:, :2] - [x, y], axis=1)) < 0.1 else "non-dimer")
            print(f"  atom {a} ({kind} site): {value:.3e} / Å³")
        plot_stm(atoms, plane_at_height(density, atoms.cell[:], ztop + HEIGHT), (3, 3),
                 f"{name}: STM at {BIAS:+g} V, {HEIGHT:g} Å above the top layer", "LDOS per spin (1/Å³)", ax)
    fig.tight_layout()
    fig.savefig("bilayer_stm.png", dpi=130)
    print("-> bilayer_stm.png")


if __name__ == "__main__":
    main()
