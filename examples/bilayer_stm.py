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

BIAS, HEIGHT, MESH = -0.5, 2.0, (60, 60, 1)  # a Dirac cone holds few states near E_F: a fine mesh
RECIPES = Path(__file__).resolve().parent.parent / "tracegrad_ase" / "shipped" / "carbon" / "recipes"


def at_point(density: np.ndarray, atoms, point: np.ndarray) -> float:
    """The density at ``point`` (Å), trilinear on the periodic grid."""
    frac = np.linalg.solve(atoms.cell[:].T, point) * density.shape
    i0 = np.floor(frac).astype(int)
    t = frac - i0
    return float(sum(np.prod([t[d] if c[d] else 1 - t[d] for d in range(3)])
                     * density[tuple((i0[d] + c[d]) % density.shape[d] for d in range(3))]
                     for c in np.ndindex(2, 2, 2)))


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
        for a in top:
            x, y, _ = atoms.positions[a]
            kind = "sheet" if len(below) == 0 else (
                "dimer" if np.min(np.linalg.norm(below[:, :2] - [x, y], axis=1)) < 0.1 else "non-dimer")
            print(f"  atom {a} ({kind} site): {at_point(density, atoms, np.array([x, y, ztop + HEIGHT])):.3e} / Å³")
        # the constant-height image, tiled 3x3 over the lattice
        n1, n2, nz = density.shape
        plane = np.array([[at_point(density, atoms, np.array([*(np.array([i / n1, j / n2]) @ atoms.cell[:2, :2]),
                                                              ztop + HEIGHT])) for j in range(n2)] for i in range(n1)])
        f = np.stack(np.meshgrid(np.arange(3 * n1 + 1) / n1, np.arange(3 * n2 + 1) / n2, indexing="ij"), -1)
        xy = (f - 0.5 / np.array([n1, n2])) @ atoms.cell[:2, :2]
        m = ax.pcolormesh(xy[..., 0], xy[..., 1], np.tile(plane, (3, 3)), cmap="afmhot", shading="flat")
        shifts = np.array([[i, j] for i in range(3) for j in range(3)]) @ atoms.cell[:2, :2]
        dots = (atoms.positions[top, None, :2] + shifts[None]).reshape(-1, 2)
        ax.scatter(dots[:, 0], dots[:, 1], s=8, c="cyan", alpha=0.7, linewidths=0)
        ax.set_aspect("equal")
        ax.set_title(f"{name}: STM at {BIAS:+g} V, {HEIGHT:g} Å above the top layer", fontsize=9)
        fig.colorbar(m, ax=ax, fraction=0.046, label="LDOS per spin (1/Å³)")
    fig.tight_layout()
    fig.savefig("bilayer_stm.png", dpi=130)
    print("-> bilayer_stm.png")


if __name__ == "__main__":
    main()
