"""Choose a training run's checkpoint by the E_F-aligned band MAE on a validation set of its own (large cells).

    python calculators/select_checkpoint.py runs/szv-v5d/m2 \\
        --data data/graphene-szv-large4/structures/train4x4c-0000[0-3].h5 --reference calculators/graphene-szv

A run picks checkpoints/best by its validation split, which for graphene-szv is mostly 2x2 cells: it chose an
epoch-5 model whose band error on held-out 4x4 cells was half again that of later epochs (issue 13, session 35).
With ``snapshot_every`` the run keeps checkpoints/epoch-NNNN; this script judges each of them (and best) on
``--data``, cells that are neither in the run's training split nor in any held-out set the card reports (by name
and by geometry, ``io.h5.structure_digest``), and writes
RUN/selection.json: every candidate's figures and weights digest, and the chosen one (the lowest band MAE among
candidates without ghost levels). ``calculators/ship_model.py --selection RUN/selection.json`` ships that
checkpoint. ``--reference`` models (the shipped one) are judged beside them for comparison, never chosen. It
resumes: a candidate whose weights digest is already in the file is not judged again (a resumed run may rewrite a
snapshot; its new weights are judged anew).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tracegrad_ase.io.atomic import atomic_write_json
from tracegrad_ase.io.h5 import data_digest, files_named, shared_structures, structure_digest
from tracegrad_ase.model.checkpoint import is_complete, load_training_state, weights_digest
from tracegrad_ase.model.evaluate import evaluate
from tracegrad_ase.model.run_folder import best_checkpoint, last_checkpoint, split_file
from tracegrad_ase.models import resolve
from tracegrad_ase.predict import load

KEYS = ("band_mae_ef_mev", "band_max_ef_mev", "gauge_mae_mev", "ghost_levels", "ghost_levels_domain")


def candidates(run: Path) -> list[Path]:
    """checkpoints/best and the run's epoch-NNNN snapshots, in epoch order."""
    best = best_checkpoint(run)
    snapshots = sorted(p for p in best.parent.glob("epoch-*") if is_complete(p))
    return ([best] if is_complete(best) else []) + snapshots


def training_files(run: Path, names: set[str]) -> list[Path]:
    """The run's training files, found in the data folders of its training config (checkpoints/last), so that
    a selection cell is refused by geometry as well as by name; [] where the config or a folder is missing."""
    _, state = load_training_state(last_checkpoint(run))
    return files_named(((state or {}).get("train_config") or {}).get("data", []), names)


def judged(folder: Path, files: list[str], ghost_kpoints: int) -> dict:
    """The band and block figures of the model in ``folder`` on ``files``, with per-structure band MAEs."""
    model = load(folder)  # with its model.json: the training domain, for ghost levels outside it
    res = evaluate(model, files, progress=False, ghost_kpoints=ghost_kpoints)
    meta = model.model_file.get("metadata", {})
    return {**{k: res.get(k) for k in KEYS}, "epoch": meta.get("epoch", meta.get("best_epoch")),
            "val_band_mae_mev": meta.get("val_band_mae_mev"),
            "per_structure": {s["name"]: s.get("band_mae_ef_mev") for s in res["per_structure"]}}


def chosen(table: list[dict]) -> dict:
    """The run's candidate with the lowest band MAE among those without ghost levels."""
    ok = [c for c in table if c["role"] == "candidate" and not c["ghost_levels"]]
    if not ok:
        raise SystemExit("every candidate shows ghost levels on the selection set: none is chosen")
    return min(ok, key=lambda c: c["band_mae_ef_mev"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="training run folder (with checkpoints/epoch-NNNN snapshots)")
    ap.add_argument("--data", nargs="+", required=True, help="the selection cells (.h5 files)")
    ap.add_argument("--reference", nargs="*", default=[], help="models judged beside them, never chosen")
    ap.add_argument("--ghost-kpoints", type=int, default=200, help="random k-points per cell for ghost levels")
    ap.add_argument("--out", default=None, help="JSON (default RUN/selection.json)")
    args = ap.parse_args()

    run = Path(args.run)
    out = Path(args.out) if args.out else run / "selection.json"
    files = sorted(args.data)
    trained = set(json.loads(split_file(run).read_text())["train"])
    overlap = {Path(f).name for f in files if Path(f).name in trained}
    overlap |= {f"{name} (= {other})" for name, other in shared_structures(files, training_files(run, trained))}
    if overlap:
        raise SystemExit(f"{', '.join(sorted(overlap))} in the run's training split: they cannot choose among its "
                         "checkpoints")
    digest = data_digest(files)
    old = json.loads(out.read_text()) if out.exists() else {}
    if old and old.get("data_digest") != digest:
        raise SystemExit(f"{out} was written for other selection cells; give --out or remove it")
    done = {c["weights_sha256"]: c for c in old.get("table", [])}

    table = []
    doc = {"run": str(run), "data": [Path(f).name for f in files], "data_digest": digest, "table": table,
           "structures": {Path(f).name: structure_digest(f) for f in files}}  # ship_model.py checks held-out sets
    models = [(p, "candidate", p.name) for p in candidates(run)]
    models += [(resolve(r), "reference", str(r)) for r in args.reference]
    for i, (folder, role, label) in enumerate(models, 1):
        sha = weights_digest(folder)
        row = done.get(sha) or judged(folder, files, args.ghost_kpoints)
        row = {**row, "checkpoint": label, "role": role, "weights_sha256": sha}
        table.append(row)
        print(f"[{i}/{len(models)}] {row['checkpoint']:>28} epoch {row['epoch']!s:>4}: band MAE "
              f"{row['band_mae_ef_mev']:.2f} meV (max {row['band_max_ef_mev']:.1f}), gauge MAE "
              f"{row['gauge_mae_mev']:.3f} meV, ghosts {row['ghost_levels']}", flush=True)
        atomic_write_json(out, doc, indent=2)  # each row kept as it comes: a killed run resumes from it
    best = chosen(table)
    doc.update(selected=best["checkpoint"], selected_epoch=best["epoch"],
               selected_band_mae_ef_mev=best["band_mae_ef_mev"])
    atomic_write_json(out, doc, indent=2)
    print(f"chosen: {best['checkpoint']} (epoch {best['epoch']}), {best['band_mae_ef_mev']:.2f} meV -> {out}")


if __name__ == "__main__":
    main()
