"""Ground truth for graphene with PySCF: H(R), S(R) to HDF5 and DeepH, bands checked against PySCF.

    python examples/groundtruth_graphene.py [--basis gth-dzvp] [--out out/graphene]
"""

import argparse
from pathlib import Path

import numpy as np
from ase.build import graphene

from tracegrad_ase.io.h5 import save_h5
from tracegrad_ase.electronic import band_energies
from tracegrad_ase.io.deeph import write_deeph
from tracegrad_ase.interop.plots import plot_bands
from tracegrad_ase.engines.pyscf.scf import GroundTruthSettings, extract_blocks, reference_bands, run_scf


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--basis", default="gth-szv")
    ap.add_argument("--out", default="out/graphene")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    atoms = graphene(a=2.46, vacuum=7.5)
    atoms.pbc = [True, True, False]  # the vacuum vector stays: PySCF needs a full cell
    run = run_scf(atoms, GroundTruthSettings(basis=args.basis, kmesh=(6, 6, 1)))  # cutoff: the overlap range
    ham = extract_blocks(run)
    save_h5(ham, out / "graphene.h5")
    write_deeph(ham, out / "deeph")

    path = atoms.cell.bandpath("GMKG", npoints=60, pbc=atoms.pbc)
    ours, ref = band_energies(ham, path.kpts), reference_bands(run, path.kpts)
    ef = ham.meta["fermi_level_ev"]
    x, sx, sl = path.get_linear_kpoint_axis()
    plot_bands(x, ours, out / "bands.png", sx, sl, ef, reference=ref, title=f"graphene PBE/{args.basis}")
    near = np.abs(ref - ef) < 2
    print(f"E_F = {ef:.3f} eV, {len(ham.edges)} blocks, max band error within 2 eV of E_F: "
          f"{np.abs(ours - ref)[near].max() * 1e3:.3f} meV -> {out}")


if __name__ == "__main__":
    main()
