"""Training structures labelled by a shipped model's committee mean instead of DFT (ensemble distillation).

    python calculators/distill_data.py calculators/graphene-szv/recipes/distill_large.yaml \\
        --teacher calculators/graphene-szv --out data/graphene-szv-distill

A committee's mean H is more accurate than any one member on cells none of them saw (graphene-szv v4: 7.0 meV
E_F-aligned band MAE on the held-out set against 10.6-13.5 for its members, benchmarks/results/committee_mean.json),
because the members' errors partly cancel. Training one network on the mean's predictions for new structures of the
training domain hands it some of that, at the cost of inference instead of PySCF (seconds against minutes per
cell). The recipe gives the structures only (its SCF settings are unused); each file is written like a ground-truth
file (``save_h5``, atomically; files this teacher made before are skipped, so the script resumes), with the overlap
from the basis integrals as every prediction has, and ``meta["label_source"] = "committee mean"`` with the
teacher's weights digests, so that nobody mistakes these labels for DFT. Never put a held-out structure through
this: its labels would then come from models that are judged on it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tqdm import tqdm

from tracegrad_ase.committee import member_folders, member_hamiltonians, mean_hamiltonian
from tracegrad_ase.datasets.recipes import load_recipe, recipe_structures
from tracegrad_ase.io.h5 import load_h5, save_h5
from tracegrad_ase.model.checkpoint import weights_digest
from tracegrad_ase.models import resolve
from tracegrad_ase.predict import load, predict_hamiltonian


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe", help="a tracegrad generate recipe: its structures are labelled")
    ap.add_argument("--teacher", required=True, help="a model folder with committee/ members, or a shipped name")
    ap.add_argument("--out", required=True, help="data set folder: OUT/structures/NAME.h5")
    args = ap.parse_args()

    teacher = resolve(args.teacher)  # a folder, or a shipped model's name
    further = member_folders(teacher)
    if not further:
        raise SystemExit(f"{args.teacher}: no committee/ members; a distilled label needs a committee's mean")
    main_model, members = load(teacher), [load(f) for f in further]
    source = {"label_source": "committee mean", "teacher": str(args.teacher),
              "teacher_sha256": [weights_digest(f) for f in [teacher, *further]]}
    out = Path(args.out) / "structures"
    structures = recipe_structures(load_recipe(args.recipe))
    done = 0
    t0 = time.perf_counter()
    for atoms in tqdm(structures, desc="committee labels", unit="structure"):
        path = out / f"{atoms.info['name']}.h5"
        if path.is_file() and load_h5(path).meta.get("teacher_sha256") == source["teacher_sha256"]:
            continue  # made by this teacher before (resumed)
        first = predict_hamiltonian(atoms, main_model)
        mean = mean_hamiltonian([first] + member_hamiltonians(atoms, first, members))
        mean.meta = {**mean.meta, **source, "name": atoms.info["name"]}
        save_h5(mean, path)
        done += 1
    print(f"{done} of {len(structures)} structures labelled in {time.perf_counter() - t0:.0f} s -> {out}")


if __name__ == "__main__":
    main()
