"""The energy zero of a periodic calculation, and ghost levels, with the shipped carbon model.

    python examples/energy_zero_and_ghost_levels.py            # seconds
    python examples/energy_zero_and_ghost_levels.py --check    # + PySCF on both graphene cells (minutes)

1. Graphene in a 10 Å and a 15 Å cell. DFT's zero of energy is the cell-averaged potential, so PySCF's levels
   move together by a constant c (--check measures it: H(15 Å) = H(10 Å) + c·S). The model sees the same atoms
   and predicts the same H in both cells: its absolute levels are in its own zero, and only levels relative to
   E_F are comparable with DFT's. They agree in both cells.
2. AA-stacked bilayer graphene, a stacking the carbon model never saw: the calculator checks the predicted levels
   against the model's training spectrum (relative to E_F) and warns about ghost levels, naming energy and
   k-point; ``tracegrad bands FILE --model carbon --strict`` refuses such a prediction (exit code 2).
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from ase import Atoms
from ase.build import graphene

from tracegrad_ase.calculator import TraceGradCalculator
from tracegrad_ase.electronic.spectrum import GhostLevelWarning

KPTS = [[0, 0, 0], [0.5, 0, 0], [1 / 3, 1 / 3, 0]]  # Γ, M, K


def sheet(vacuum: float) -> Atoms:
    atoms = graphene(a=2.46, vacuum=vacuum)
    atoms.pbc = [True, True, False]
    return atoms


def predicted_levels(atoms: Atoms) -> tuple[np.ndarray, float]:
    atoms.calc = TraceGradCalculator("carbon", kpts=KPTS, fermi_kpts=(12, 12, 1))
    ef = atoms.calc.get_fermi_level()
    return np.array([atoms.calc.get_eigenvalues(k) for k in range(len(KPTS))]), ef


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="also run PySCF on both cells")
    args = ap.parse_args()

    print("1. graphene, 10 Å vs 15 Å cell (levels at Γ, M, K nearest E_F)")
    for vacuum in (5.0, 7.5):
        e, ef = predicted_levels(sheet(vacuum))
        near = e[np.abs(e - ef) < 3.0]
        print(f"   model, cell {2 * vacuum:.0f} Å: E_F {ef:+.3f} eV; levels - E_F: {np.round(np.sort(near - ef), 3)}")
    if args.check:
        from tracegrad_ase.core.hamiltonian import gauge_shift
        from tracegrad_ase.engines.pyscf.scf import GroundTruthSettings, extract_blocks, run_scf

        hams = [extract_blocks(run_scf(sheet(v), GroundTruthSettings(basis="gth-dzvp"))) for v in (5.0, 7.5)]
        a, b = (h.within(9.5) for h in hams)
        c = gauge_shift(b.hamiltonian, a.hamiltonian, a.overlap)
        rest = max(float(np.abs(x - y - c * s).max()) for x, y, s in zip(b.hamiltonian, a.hamiltonian, a.overlap))
        print(f"   PySCF: H(15 Å) - H(10 Å) = c·S with c = {c:+.3f} eV (largest remainder {1000 * rest:.2f} meV); "
              f"E_F {hams[0].meta['fermi_level_ev']:+.3f} vs {hams[1].meta['fermi_level_ev']:+.3f} eV")

    print("2. AA bilayer graphene (never in training)")
    aa = Atoms("C4", scaled_positions=[[0, 0, 0.4], [1 / 3, 2 / 3, 0.4], [0, 0, 0.6], [1 / 3, 2 / 3, 0.6]],
               cell=sheet(5.0).cell[:] * [1, 1, 1.675], pbc=[True, True, False])  # layers 3.35 Å apart
    aa.calc = TraceGradCalculator("carbon", kpts=(6, 6, 1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GhostLevelWarning)
        ef = aa.calc.get_fermi_level()
    ghosts = aa.calc.results.get("ghost_levels") or []
    print(f"   E_F {ef:+.3f} eV; {len(ghosts)} ghost level(s) on the 6x6 mesh")
    for w in caught:
        print(f"   warning: {w.message}")


if __name__ == "__main__":
    main()
