"""Simulated STM images (Tersoff-Hamann) of a model's prediction against the stored PySCF truth.

For each structure file (a sheet: pbc T T F, a3 along z): the density of the states between E_F and E_F + bias
(``wavefunctions.states_density``, the calculator's ``get_partial_density``) from the model's predicted H(R) and
from the file's own H(R), S(R), each at its own Fermi level (found on the same whole mesh with Fermi-Dirac smearing
``--kt``), the model's lindep on both sides, on one real-space grid. Prints, per bias: the electrons per cell in
the window, the constant-height image's relative L1 error and Pearson correlation against the truth at
``--height`` Å above the topmost atom, the whole grid's relative L1 error, the density that high above each atom
of the top layer (an AB bilayer's dimer and non-dimer sites); draws truth, prediction and difference
side by side (PNG) and writes the figures to benchmarks/results/stm_images.json under ``--label``.

    python benchmarks/stm_images.py calculators/carbon data/carbon-dzvp/heldout-2x2/structures/*.h5 \\
        --mesh 12 12 1 --bias -1 1 --label "carbon 0.11, held-out 2x2 cell"

``--refine`` judges the prediction refined by Kohn-Sham builds from its density (``refine=True``'s DIIS, the data
set's own settings) instead of the bare prediction.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from _results import machine, merge_results
from tracegrad_ase.core.symmetry import full_mesh
from tracegrad_ase.datasets import SETTINGS_FILE
from tracegrad_ase.engines.pyscf.self_consistency import refined_hamiltonian
from tracegrad_ase.engines.pyscf.settings import GroundTruthSettings
from tracegrad_ase.refine import DEFAULT_BUILDS, model_refine_mixing
from tracegrad_ase.electronic.filling import electron_count, fermi_level
from tracegrad_ase.electronic.solve import model_lindep, solve_k
from tracegrad_ase.io.h5 import load_h5
from tracegrad_ase.predict import load, predict_hamiltonian
from tracegrad_ase.wavefunctions import (density_at, filled_states, orbital_grid, plane_at_height, states_density,
                                         window_filling)

OUT = Path(__file__).parent / "results" / "stm_images.json"


def window_density(ham, mesh, bias, kt, lindep, spacing):
    """The window's density on the grid, and the electrons per cell in it."""
    sol = solve_k(ham, full_mesh(mesh), lindep=lindep, vectors=True)
    ef = fermi_level(sol.energies, None, electron_count(ham), "fermi-dirac", kt)
    low, high = sorted((ef, ef + bias))
    rho = states_density(orbital_grid(ham, spacing), filled_states(sol, window_filling(sol.energies, low, high)))
    return rho, float(rho.mean() * ham.atoms.get_volume())


def above_atoms(rho, atoms, height):
    """The density ``height`` Å above each top-layer atom (within 0.5 Å of the topmost), trilinear on the grid."""
    top = np.flatnonzero(atoms.positions[:, 2] > atoms.positions[:, 2].max() - 0.5)
    values = density_at(rho, atoms.cell[:], atoms.positions[top] + [0.0, 0.0, height])
    return {int(a): float(v) for a, v in zip(top, values)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("structures", nargs="+", help="HDF5 ground-truth files of sheets")
    ap.add_argument("--mesh", type=int, nargs=3, default=(12, 12, 1))
    ap.add_argument("--bias", type=float, nargs="+", default=(-1.0, 1.0))
    ap.add_argument("--height", type=float, default=2.0)
    ap.add_argument("--spacing", type=float, default=0.2)
    ap.add_argument("--kt", type=float, default=0.05)
    ap.add_argument("--refine", action="store_true", help="refine the prediction first, as refine=True does")
    ap.add_argument("--label", required=True)
    ap.add_argument("--png", default=None, help="figure (default: results/stm_images_<first file>.png)")
    args = ap.parse_args()
    net = load(args.model)
    lindep = model_lindep(net.model_file)
    rows, panels = [], []
    for path in args.structures:
        truth = load_h5(path)
        pred = predict_hamiltonian(truth.atoms, net)
        if args.refine:
            settings = GroundTruthSettings.from_dict(json.loads((Path(path).parent.parent / SETTINGS_FILE).read_text()))
            pred = refined_hamiltonian(pred, settings, DEFAULT_BUILDS, model_refine_mixing(net.model_file))
        for bias in args.bias:
            t0 = time.perf_counter()
            got, n_got = window_density(pred, args.mesh, bias, args.kt, lindep, args.spacing)
            ref, n_ref = window_density(truth, args.mesh, bias, args.kt, lindep, args.spacing)
            cell, z = truth.atoms.cell[:], truth.atoms.positions[:, 2].max() + args.height
            img_got, img_ref = plane_at_height(got, cell, z), plane_at_height(ref, cell, z)
            above_got, above_ref = above_atoms(got, truth.atoms, args.height), above_atoms(ref, truth.atoms, args.height)
            row = {"structure": Path(path).name, "bias_v": bias, "electrons_model": n_got, "electrons_truth": n_ref,
                   "image_rel_l1": float(np.abs(img_got - img_ref).sum() / np.abs(img_ref).sum()),
                   "image_correlation": float(np.corrcoef(img_got.ravel(), img_ref.ravel())[0, 1]),
                   "grid_rel_l1": float(np.abs(got - ref).sum() / np.abs(ref).sum()),
                   "grid": list(got.shape), "seconds": time.perf_counter() - t0,
                   "above_top_atoms": {a: [m, above_ref[a]] for a, m in above_got.items()}}
            rows.append(row)
            panels.append((row, img_ref, img_got, truth.atoms))
            print(f"{row['structure']:>28} bias {bias:+5.2f} V: electrons {n_got:.4f} / {n_ref:.4f}; image at "
                  f"{args.height:g} Å: rel. L1 {row['image_rel_l1']:.3f}, r {row['image_correlation']:.4f}; grid "
                  f"rel. L1 {row['grid_rel_l1']:.3f} ({row['seconds']:.0f} s)")
            print("    above the top layer's atoms, model / truth: " + ", ".join(
                f"{a}: {m:.3g} / {t:.3g}" for a, (m, t) in row["above_top_atoms"].items()))
    draw(panels, args.png or OUT.parent / f"stm_images_{Path(args.structures[0]).stem}.png", args.label)
    merge_results(OUT, args.label, {"rows": rows, "mesh": list(args.mesh), "height_angstrom": args.height,
                                    "spacing_angstrom": args.spacing, "kt_ev": args.kt, "model": args.model,
                                    "refined": args.refine,
                                    "machine": machine()})


def draw(panels, out, label) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 3, figsize=(10, 3.2 * len(panels)), squeeze=False)
    for (row, ref, got, atoms), line in zip(panels, axes):
        cell = atoms.cell[:2, :2]
        n1, n2 = ref.shape
        f = np.stack(np.meshgrid(np.arange(n1 + 1) / n1, np.arange(n2 + 1) / n2, indexing="ij"), -1) @ cell
        top = max(ref.max(), got.max())
        for ax, data, name in zip(line, (ref, got, got - ref), ("PySCF truth", "prediction", "prediction - truth")):
            lim = dict(vmin=0, vmax=top, cmap="afmhot") if name != "prediction - truth" else \
                dict(vmin=-np.abs(data).max(), vmax=np.abs(data).max(), cmap="RdBu_r")
            m = ax.pcolormesh(f[..., 0], f[..., 1], data, shading="flat", **lim)
            ax.set_aspect("equal")
            ax.set_title(f"{row['structure']} {row['bias_v']:+g} V: {name}" if name == "PySCF truth" else name,
                         fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(m, ax=ax, fraction=0.046)
    fig.suptitle(label, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"-> {out}")


if __name__ == "__main__":
    main()
