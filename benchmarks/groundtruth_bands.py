"""How exactly do stored H(R), S(R) reproduce PySCF's own bands? Errors versus cutoff, off the k-meshes.

For each crystal: one PBE SCF, blocks extracted within the largest cutoff on its alias-free mesh, then for
each smaller cutoff the blocks are truncated and the bands re-summed along the standard k-path (none of whose
points needs to lie on a mesh) and compared with ``mf.get_bands`` at the same k-points. "edges±2 eV" is the
window from 2 eV below the valence-band maximum to 2 eV above the conduction-band minimum (E_F ± 2 eV for a
metal).

    python benchmarks/groundtruth_bands.py                         # graphene, h-BN, Si at gth-dzvp
    python benchmarks/groundtruth_bands.py --systems graphene --basis gth-szv --cutoffs 6 7 8

Prints a table and writes benchmarks/results/groundtruth_bands.json (merged by system and basis).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from ase.build import bulk, graphene

from tracegrad_ase.electronic.spectrum import near_band_edges
from tracegrad_ase.electronic import band_energies
from tracegrad_ase.engines.pyscf.scf import GroundTruthSettings, extract_blocks, overlap_cutoff, reference_bands, run_scf


def structure(name: str):
    if name == "graphene":
        atoms = graphene(a=2.46, vacuum=7.5)
    elif name == "hbn":
        atoms = graphene(formula="BN", a=2.50, vacuum=7.5)
    elif name == "si":
        return bulk("Si", "diamond", a=5.43)
    elif name == "diamond":
        return bulk("C", "diamond", a=3.567)
    else:
        raise SystemExit(f"unknown system {name}")
    atoms.pbc = [True, True, False]
    return atoms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--systems", nargs="+", default=["graphene", "hbn", "si"])
    ap.add_argument("--basis", default="gth-dzvp")
    ap.add_argument("--cutoffs", nargs="+", type=float, default=None,
                    help="Å (default: the automatic overlap cutoff c and c-2, c-1, c+1)")
    ap.add_argument("--kmesh", default=None, help="SCF mesh, e.g. 6x6x1 (default: kspacing 0.5/Å)")
    ap.add_argument("--npoints", type=int, default=40)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "groundtruth_bands.json"))
    args = ap.parse_args()
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    rows = []
    for name in args.systems:
        atoms = structure(name)
        kmesh = tuple(int(x) for x in args.kmesh.split("x")) if args.kmesh else None
        auto = overlap_cutoff(args.basis, atoms.get_chemical_symbols())
        cutoffs = args.cutoffs or [auto - 2, auto - 1, auto, auto + 1]
        settings = GroundTruthSettings(basis=args.basis, kmesh=kmesh, cutoff=max(cutoffs))
        t0 = time.perf_counter()
        run = run_scf(atoms, settings)
        t_scf = time.perf_counter() - t0
        path = atoms.cell.bandpath(npoints=args.npoints, pbc=atoms.pbc)
        t0 = time.perf_counter()
        ref = reference_bands(run, path.kpts)
        t_ref = time.perf_counter() - t0
        t0 = time.perf_counter()
        ham = extract_blocks(run)
        t_extract = time.perf_counter() - t0
        ef = ham.meta["fermi_level_ev"]
        entry = {
            "system": name, "basis": args.basis, "orbitals": ham.norb, "scf_kmesh": run.info["kmesh"],
            "hr_kmesh": ham.meta["hr_kmesh"], "path": path.path, "kpoints": len(path.kpts),
            "fermi_level_ev": ef, "auto_cutoff": auto, "scf_s": t_scf, "extract_s": t_extract, "pyscf_bands_s": t_ref, "cutoffs": {},
        }
        for c in sorted(cutoffs):
            h = ham.within(c)
            e = band_energies(h, path.kpts)  # canonical orthogonalization drops near-null overlap directions
            r_ = ref[:, : e.shape[1]]
            err = np.abs(e - r_)
            near = near_band_edges(r_, ef)
            occ = r_ <= ef
            r = {
                "edges": len(h.edges),
                "bands_compared": int(e.shape[1]),
                "max_mev_near_band_edges": float(err[near].max() * 1e3),
                "max_mev_occupied": float(err[occ].max() * 1e3),
                "max_mev_all_bands": float(err.max() * 1e3),
            }
            entry["cutoffs"][str(c)] = r
            rows.append((name + ("*" if c == auto else ""), args.basis, c, len(h.edges), r["max_mev_near_band_edges"], r["max_mev_occupied"],
                         r["max_mev_all_bands"]))
        results[f"{name}/{args.basis}"] = entry
        print(f"{name}: SCF {t_scf:.0f} s on {run.info['kmesh']}, blocks {t_extract:.0f} s on "
              f"{ham.meta['hr_kmesh']}, PySCF bands {t_ref:.0f} s", flush=True)
    results["_machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(),
                           "omp_threads": os.environ.get("OMP_NUM_THREADS")}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, out)
    print(f"\n{'system':9} {'basis':9} {'cutoff Å':>8} {'edges':>6} {'edges±2 eV':>11} {'occupied':>10} {'all bands':>10}  (max |error|, meV)")
    for n, b, c, e, a, o, al in rows:
        print(f"{n:9} {b:9} {c:8.1f} {e:6d} {a:11.3f} {o:10.3f} {al:10.3f}")
    print(f"* the automatic cutoff (overlap below 1e-6 beyond it)\nwrote {out}")


if __name__ == "__main__":
    main()
