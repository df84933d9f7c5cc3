"""Choose a crystal model's refinement mixing factor on its validation cells and record it in model.json.

    python calculators/calibrate_refine_mixing.py calculators/carbon --data data/carbon-dzvp/graphene \
        data/carbon-dzvp/scale-2x2 data/carbon-dzvp/scale-bilayers data/carbon-dzvp/scale-bilayer-2x2 \
        --cache data/carbon-dzvp/refine-cache

``TraceGradCalculator(refine=1)`` (one build; ``refine=True`` is two, combined by DIIS with no factor) replaces the
prediction H by one Kohn-Sham build from its density, F[ρ] (``engines.pyscf.self_consistency.fock_hamiltonian``),
mixed with it: ``(1 - a) H + a F`` (``mix_hamiltonians``). F[ρ] overshoots where the levels respond strongly to
the density (the damping every SCF needs), so ``a`` is chosen per model, on cells it did not train on (the
``--split`` part of its split.json), by the E_F-aligned band MAE within ±2 eV against the stored truth (the
evaluation mesh of ``tracegrad evaluate``, the model's lindep on both sides). One Fock build per cell; ``--cache``
keeps each F[ρ] so an interrupted run resumes, under a folder named by the weights' digest: F[ρ] is built from the
prediction's density, so another model's builds must not be taken for this one's. The factor goes into
``metadata.refine_mixing`` with the table that chose it (``metadata.refine_mixing_calibration``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tracegrad_ase.datasets import SETTINGS_FILE
from tracegrad_ase.electronic.filling import electron_count
from tracegrad_ase.electronic.solve import model_lindep
from tracegrad_ase.electronic.spectrum import band_errors, evaluation_mesh, levels
from tracegrad_ase.engines.pyscf.self_consistency import fock_hamiltonian, mix_hamiltonians
from tracegrad_ase.engines.pyscf.settings import GroundTruthSettings
from tracegrad_ase.io.h5 import load_h5, save_h5
from tracegrad_ase.model.checkpoint import weights_digest
from tracegrad_ase.model.evaluate import predict_for
from tracegrad_ase.predict import load
from calibrate_scf_mixing import model_split_file  # calculators/
from model_metadata import record_calibration, split_structures  # calculators/model_metadata.py

GRID = tuple(round(0.05 * i, 2) for i in range(21))


def weights_cache(cache: Path, model_dir: Path) -> Path:
    """The folder of ``cache`` (created) that holds the F[ρ] built from ``model_dir``'s predictions, named by its
    weights' digest."""
    digest = weights_digest(model_dir)
    if digest is None:
        raise SystemExit(f"no model.safetensors in {model_dir}: nothing to key the build cache by")
    folder = cache / digest[:16]
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def band_maes(model, path: Path, cache: Path | None) -> dict[float, float]:
    """E_F-aligned band MAE (meV, ±2 eV) of one cell's refinement at each mixing factor of ``GRID``."""
    truth = load_h5(path)
    pred = predict_for(truth, model)
    cached = None if cache is None else cache / path.name
    if cached is not None and cached.is_file():
        fock = load_h5(cached)
    else:
        settings = GroundTruthSettings.from_dict(json.loads((path.parent.parent / SETTINGS_FILE).read_text()))
        fock = fock_hamiltonian(pred, settings)
        if cached is not None:
            save_h5(fock, cached)  # atomic: a killed run keeps the cells it finished
    lindep = model_lindep(model.model_file)
    mesh = evaluation_mesh(truth.atoms.cell[:], truth.atoms.pbc)
    exact, nelec = levels(truth, mesh, lindep), electron_count(truth)
    return {a: band_errors(exact, levels(mix_hamiltonians(pred, fock, a), mesh, lindep), None, nelec)["mae_mev"]
            for a in GRID}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path, help="a crystal model folder (shipped, or a run's checkpoints/best)")
    ap.add_argument("--data", nargs="+", required=True, help="data folders holding the split's cells")
    ap.add_argument("--split", default="val", help="the part of split.json to calibrate on")
    ap.add_argument("--cache", type=Path, help="a folder for each cell's F[rho] (resumes an interrupted run)")
    ap.add_argument("--dry-run", action="store_true", help="print the table, write nothing")
    args = ap.parse_args()
    split = model_split_file(args.model)
    files = split_structures(split, args.data, args.split)
    names = json.loads(split.read_text())[args.split]
    missing = sorted(set(names) - {f.name for f in files})
    cache = None if args.cache is None else weights_cache(args.cache, args.model)
    model = load(args.model)
    rows = {f.stem: band_maes(model, f, cache) for f in tqdm(files, desc=f"{args.split} cells", unit="cell")}
    mean = {a: float(np.mean([r[a] for r in rows.values()])) for a in GRID}
    best = min(GRID, key=mean.get)
    print(f"{len(files)} {args.split} cells of {len(names)} in the split"
          + (f" (not found: {', '.join(missing)})" if missing else "")
          + "; E_F-aligned band MAE ±2 eV (meV) by mixing factor (0: the prediction, 1: F[rho]):")
    print(f"  {'cell':22s}" + "".join(f"{a:7.2f}" for a in GRID[::2]))
    for name, r in rows.items():
        print(f"  {name:22s}" + "".join(f"{r[a]:7.1f}" for a in GRID[::2]))
    print(f"  {'mean':22s}" + "".join(f"{mean[a]:7.1f}" for a in GRID[::2]))
    print(f"chosen: {best:g}, {mean[best]:.1f} meV (the prediction: {mean[0.0]:.1f}, F[rho]: {mean[1.0]:.1f})")
    if args.dry_run:
        return
    path = record_calibration(args.model, "refine_mixing", best, {
        "metric": "E_F-aligned band MAE within 2 eV (meV)", "split": args.split, "n_structures": len(files),
        "missing": missing, "mae_mev": round(mean[best], 1), "mae_mev_by_mixing": {f"{a:g}": round(m, 1)
                                                                                   for a, m in mean.items()},
        "mae_mev_by_cell": {n: {f"{a:g}": round(r[a], 1) for a in (0.0, best, 1.0)} for n, r in rows.items()},
        "command": "python calculators/calibrate_refine_mixing.py MODEL --data ... --split " + args.split})
    print(f"refine_mixing = {best:g} -> {path}")


if __name__ == "__main__":
    main()
