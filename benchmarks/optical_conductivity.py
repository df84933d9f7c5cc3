"""Optical conductivity (and, with --transport, Boltzmann transport) of a model's prediction against the stored
PySCF truth, on the same k-mesh.

For each structure file: interband Re σ_xx(ħω) (``electronic.optics``; sheets in e²/4ħ, bulk in S/m) from the
model's predicted H(R) and from the file's own H(R), S(R), each at its own Fermi level (found on ``--fermi-mesh``
with Fermi-Dirac smearing ``--kt``), the model's lindep on both sides. Prints σ at a few photon energies, the mean
absolute difference over the grid relative to the truth's mean, the time, and writes the curves to a PNG and the
figures to benchmarks/results/optical_conductivity.json under ``--label``.

    python benchmarks/optical_conductivity.py calculators/carbon data/carbon-dzvp/heldout-vacuum/structures/s0-base.h5 \\
        --mesh 240 240 1 --label "carbon, graphene in a 20 Å cell"

``--refine`` judges the prediction refined by Kohn-Sham builds from its density (``refine=True``'s DIIS, the data
set's own settings) instead of the bare prediction. ``--transport T --transport-mesh N N 1`` instead compares constant-τ Seebeck coefficients and σ/τ at T (K) for
μ − E_F in ``--mu`` (each side at its own E_F and electron count), written under the label's "transport" key.
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
from tracegrad_ase.electronic.filling import electron_count, fermi_level
from tracegrad_ase.electronic.optics import SIGMA0_SIEMENS, optical_conductivity
from tracegrad_ase.electronic.transport import boltzmann_transport
from tracegrad_ase.engines.pyscf.self_consistency import refined_hamiltonian
from tracegrad_ase.engines.pyscf.settings import GroundTruthSettings
from tracegrad_ase.electronic.solve import model_lindep, solve_k
from tracegrad_ase.io.h5 import load_h5
from tracegrad_ase.predict import load, predict_hamiltonian
from tracegrad_ase.refine import DEFAULT_BUILDS, model_refine_mixing

OUT = Path(__file__).parent / "results" / "optical_conductivity.json"


def own_fermi_level(ham, fermi_mesh, kt, lindep) -> float:
    sol = solve_k(ham, full_mesh(fermi_mesh), lindep=lindep)
    return fermi_level(sol.energies, None, electron_count(ham), "fermi-dirac", kt)


def conductivity(ham, mesh, fermi_mesh, energies, width, kt, lindep):
    ef = own_fermi_level(ham, fermi_mesh, kt, lindep)
    return optical_conductivity(ham, full_mesh(mesh), ef, energies, width=width, kt=kt, lindep=lindep, progress=True)


def transport_rows(pred, truth, args, lindep) -> dict:
    """Seebeck (µV/K) and σ/τ of prediction and truth at the same μ − E_F, and their differences."""
    mu = np.linspace(args.mu[0], args.mu[1], args.mu_points)
    kt = 8.617333262e-5 * args.transport
    out = {}
    for name, ham in (("model", pred), ("truth", truth)):
        ef = own_fermi_level(ham, args.fermi_mesh, kt, lindep)
        out[name] = boltzmann_transport(ham, full_mesh(args.transport_mesh), ef, mu, args.transport,
                                        electron_count(ham), lindep=lindep, progress=True)
    sp, st = (1e6 * out[n].seebeck[:, 0, 0] for n in ("model", "truth"))
    cp, ct = (out[n].sigma_over_tau[:, 0, 0] for n in ("model", "truth"))
    picks = [m for m in (-0.5, -0.25, -0.1, 0.1, 0.25, 0.5) if mu[0] <= m <= mu[-1]]
    print(f"\nconstant-τ transport at {args.transport:g} K, mesh {args.transport_mesh}: S_xx (µV/K), model / truth")
    for m in picks:
        print(f"  μ − E_F {m:+.2f} eV: {np.interp(m, mu, sp):8.2f} / {np.interp(m, mu, st):8.2f}")
    mae_s = float(np.mean(np.abs(sp - st)))
    rel_c = float(np.mean(np.abs(cp - ct)) / np.mean(np.abs(ct)))
    print(f"  MAE of S over μ: {mae_s:.2f} µV/K; σ/τ relative MAE {100 * rel_c:.1f} %; level step / kT "
          f"{out['truth'].meta['level_step_over_kt']:.2f}")
    return {"temperature_k": args.transport, "mesh": args.transport_mesh, "mae_seebeck_uv_per_k": mae_s,
            "relative_mae_sigma_over_tau": rel_c,
            "seebeck_uv_per_k": {f"{m:+g}": {"model": float(np.interp(m, mu, sp)), "truth": float(np.interp(m, mu, st))}
                                 for m in picks}}


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
    ap.add_argument("--transport", type=float, default=None, metavar="T",
                    help="compare constant-τ transport at T (K) instead of the optical conductivity")
    ap.add_argument("--transport-mesh", type=int, nargs=3, default=[500, 500, 1])
    ap.add_argument("--mu", type=float, nargs=2, default=[-0.5, 0.5])
    ap.add_argument("--mu-points", type=int, default=41)
    ap.add_argument("--refine", action="store_true", help="refine the prediction first, as refine=True does")
    ap.add_argument("--label", required=True)
    ap.add_argument("--png", default=None,
                    help="figure path (default benchmarks/results/optical_conductivity_<file>.png)")
    args = ap.parse_args()
    model = load(args.model)
    lindep = model_lindep(model.model_file)
    energies = np.linspace(args.emin, args.emax, args.points)
    rows = {}
    for f in map(Path, args.files):
        truth = load_h5(f)
        t0 = time.perf_counter()
        pred = predict_hamiltonian(truth.atoms, model)
        if args.refine:
            settings = GroundTruthSettings.from_dict(json.loads((f.parent.parent / SETTINGS_FILE).read_text()))
            pred = refined_hamiltonian(pred, settings, DEFAULT_BUILDS, model_refine_mixing(model.model_file))
        t_pred = time.perf_counter() - t0
        if args.transport is not None:
            rows[f.name] = {"transport": transport_rows(pred, truth, args, lindep)}
            continue
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
        row = rows[f.name]
        print(f"relative MAE over {args.emin}-{args.emax} eV: {100 * row['relative_mae']:.1f} %; peak "
              f"{row['peak_ev']['model']:.2f} eV (model) vs {row['peak_ev']['truth']:.2f} eV (truth); "
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
