"""How accurate must a predicted Hamiltonian be to speed up the SCF? The exact one plus random errors.

    python benchmarks/guess_vs_noise.py data/molecules-svp-extra/structures/uracil-00000.h5

Adds symmetric Gaussian noise with a given mean absolute error per matrix element to the ground-truth H of one
structure (the overlap stays exact), starts PySCF from each, and prints the SCF cycles against minao's. Writes
benchmarks/results/guess_vs_noise.json (merged by structure).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tracegrad_ase.io.h5 import load_h5
from tracegrad_ase.core.hamiltonian import RealSpaceHamiltonian
from tracegrad_ase.engines.pyscf.scf import GroundTruthSettings, run_scf
from _results import machine, merge_results  # benchmarks/_results.py


def noisy(ham: RealSpaceHamiltonian, mae_ev: float, rng: np.random.Generator) -> RealSpaceHamiltonian:
    """``ham`` with N(0, σ) errors (σ√(2/π) = ``mae_ev``) on every element, kept Hermitian: H_ji(−R) = H_ij(R)ᵀ."""
    idx = ham.index()
    blocks: list = [None] * len(ham.edges)
    sigma = mae_ev * np.sqrt(np.pi / 2)
    for e, (rx, ry, rz, i, j) in enumerate(ham.edges.tolist()):
        if blocks[e] is not None:
            continue
        b = ham.hamiltonian[e] + rng.normal(0.0, sigma, ham.hamiltonian[e].shape)
        partner = idx[(-rx, -ry, -rz, j, i)]
        if partner == e:
            b = 0.5 * (b + b.T)
        blocks[e], blocks[partner] = b, b.T
    return RealSpaceHamiltonian(ham.atoms, ham.basis, ham.edges, blocks, ham.overlap, dict(ham.meta))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("h5")
    ap.add_argument("--mae-mev", type=float, nargs="+", default=[0.0, 1.0, 10.0, 30.0, 100.0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "guess_vs_noise.json"))
    args = ap.parse_args()
    ham = load_h5(args.h5)
    settings = GroundTruthSettings.from_dict(ham.meta["settings"])
    rng = np.random.default_rng(args.seed)
    minao = run_scf(ham.atoms, settings).info["scf_cycles"]
    rows = {"minao": minao}
    print(f"{Path(args.h5).stem}: minao {minao} cycles")
    for mae in args.mae_mev:
        cycles = run_scf(ham.atoms, settings, init_guess=noisy(ham, mae / 1000, rng)).info["scf_cycles"]
        rows[f"{mae:g} meV"] = cycles
        print(f"  exact H + {mae:g} meV MAE noise: {cycles} cycles ({cycles / minao:.2f} of minao)")
    merge_results(args.out, Path(args.h5).stem, {**rows, "machine": machine()})


if __name__ == "__main__":
    main()
