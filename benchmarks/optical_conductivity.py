"""Optical conductivity of a model's prediction against the stored PySCF truth, on the same k-mesh.

For each structure file: interband Re σ_xx(ħω) (``electronic.optics``; sheets in e²/4ħ, bulk in S/m) from the
model's predicted H(R) and from the file's own H(R), S(R), each at its own Fermi level (found on ``--fermi-mesh``
with Fermi-Dirac smearing ``--kt``), the model's lindep on both sides. Prints σ at a few photon energies, the mean
absolute difference over the grid relative to the truth's mean, the time, and writes the curves to a PNG and the
figures to benchmarks/results/optical_conductivity.json under ``--label``.

    python benchmarks/optical_conductivity.py calculators/carbon data/carbon-dzvp/heldout-vacuum/structures/s0-base.h5 \\
        --mesh 240 240 1 --label "carbon, graphene in a 20 Å cell"
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from _results import machine, merge_results
from tracegrad_ase.core.symmetry import full_mesh
from tracegrad_ase.electronic.filling import electron_count, fermi_level
from tracegrad_ase.electronic.optics import SIGMA0_SIEMENS, optical_conductivity
from tracegrad_ase.electronic.solve import model_lindep, solve_k
from tracegrad_ase.io.h5 import load_h5
from tracegrad_ase.predict import load, predict_hamiltonian

OUT = Path(__file__).parent / "results" / "optical_conductivity.json"


def conductivity(ham, mesh, fermi_mesh, energies, width, kt, lindep):
    sol = solve_k(ham, full_mesh(fermi_mesh), lindep=lindep)
    ef = fermi_level(sol.energies, None, electron_count(ham), "fermi-dirac", kt)
    return optical_conductivity(ham, full_mesh(mesh), ef, energies, width=width, kt=kt, lindep=lindep, progress=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--mesh", type=int, nargs=3, default=[240, 240, 1])
    ap.add_argument("--fermi-mesh", type=int, nargs=3, default=[30, 30, 1])
    ap.add_argument("--emin", type=float, default=0.25)
    ap.add_argument("--emax", type=float, default=8.0)
    ap.add_argument("--points", type=int, default=156)
    ap.add_argument("--width", type=float, default=0.1)
    ap.add_argument("--kt", type=float, default=0.025)
    ap.add_argument("--label", required=True)
    ap.add_argument("--png", default=None, help="figure path (default benchmarks/results/optical_conductivity_<file>.png)")
    args = ap.parse_args()
    model = load(args.model)
    lindep = model_lindep(model.model_file)
    energies = np.linspace(args.emin, args.emax, args.points)
    rows = {}
    for f in map(Path, args.files):
        truth = load_h5(f)
        t0 = time.perf_counter()
        pred = predict_hamiltonian(truth.atoms, model)
        t_pred = time.perf_counter() - t0
        t0 = time.perf_counter()
        sp = conductivity(pred, args.mesh, args.fermi_mesh, energies, args.width, args.kt, lindep)
        t_sigma = time.perf_counter() - t0
        st = conductivity(truth, args.mesh, args.fermi_mesh, energies, args.width, args.kt, lindep)
        scale = 1 / SIGMA0_SIEMENS if sp.periodic_dimensions == 2 else 1.0
        xp, xt = sp.sigma[:, 0, 0] * scale, st.sigma[:, 0, 0] * scale
        picks = [e for e in (0.5, 1.0, 2.0, 3.0, 4.0, 5.0) if args.emin <= e <= args.emax]
        at = {f"{e:g}": {"model": float(np.interp(e, energies, xp)), "truth": float(np.interp(e, energies, xt))}
              for e in picks}
        rows[f.name] = {"unit": "e^2/4hbar" if scale != 1.0 else sp.unit, "at_ev": at,
                        "relative_mae": float(np.mean(np.abs(xp - xt)) / np.mean(np.abs(xt))),
                        "peak_ev": {"model": float(energies[np.argmax(xp)]), "truth": float(energies[np.argmax(xt)])},
                        "predict_s": t_pred, "sigma_s": t_sigma, "norb": pred.norb}
        print(f"\n{f.name}: Re σ_xx ({rows[f.name]['unit']}), mesh {args.mesh}, width {args.width} eV")
        print(f"{'ħω (eV)':>8} {'model':>8} {'truth':>8}")
        for e, v in at.items():
            print(f"{e:>8} {v['model']:8.3f} {v['truth']:8.3f}")
        print(f"relative MAE over {args.emin}-{args.emax} eV: {100 * rows[f.name]['relative_mae']:.1f} %; peak "
              f"{rows[f.name]['peak_ev']['model']:.2f} eV (model) vs {rows[f.name]['peak_ev']['truth']:.2f} eV (truth); "
              f"σ from the prediction in {t_sigma:.1f} s")
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(energies, xt, "k-", label="PySCF truth H(R)")
        ax.plot(energies, xp, "r--", label=f"{Path(args.model).name} prediction")
        if scale != 1.0:
            ax.axhline(1.0, color="grey", lw=0.5)
        ax.set_xlabel("ħω (eV)")
        ax.set_ylabel("Re σ_xx / (e²/4ħ)" if scale != 1.0 else f"Re σ_xx ({sp.unit})")
        ax.set_title(f"{f.stem}: interband optical conductivity")
        ax.legend()
        png = Path(args.png) if args.png else OUT.parent / f"optical_conductivity_{f.stem}.png"
        fig.savefig(png, dpi=120, bbox_inches="tight")
        print(f"figure: {png}")
    merge_results(OUT, args.label, {"rows": rows, "mesh": args.mesh, "width_ev": args.width, "kt_ev": args.kt,
                                    "model": args.model, "machine": machine()})


if __name__ == "__main__":
    main()
