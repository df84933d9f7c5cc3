"""Is a committee's mean H more accurate than its members? (issue 13: graphene-szv's band goal)

For each committee (``--committee NAME=MODEL0,MODEL1,...``: model folders or training runs' best checkpoints), every
member alone and the members' mean (each member's H moved to member 0's energy zero, then averaged: what
``TraceGradCalculator(..., ensemble=True)`` and ``tracegrad evaluate --ensemble`` report) are evaluated on the same
structures: gauge MAE of H, E_F-aligned band MAE within ±2 eV, ghost levels. Prints a table and merges the figures
into benchmarks/results/committee_mean.json under ``--label`` (beside the committees earlier runs measured there on
the same structures).

    python benchmarks/committee_mean.py --label heldout \\
        --committee v2=runs/szv-v2/large,runs/szv-v2/large-s1,runs/szv-v2/large-s2 \\
        --committee v3=runs/szv-v3/deep,runs/szv-v3/deep-s1,runs/szv-v3/deep-s2 \\
        data/graphene-4x4-szv data/graphene-6x6-szv data/graphene-3x3-szv
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _results import machine, merge_results
from tracegrad_ase.io.h5 import load_dataset
from tracegrad_ase.model.evaluate import evaluate
from tracegrad_ase.model.run_folder import best_checkpoint
from tracegrad_ase.predict import load

OUT = Path(__file__).parent / "results" / "committee_mean.json"
KEYS = ("gauge_mae_mev", "band_mae_ef_mev", "band_max_ef_mev", "ghost_levels")


def _folder(path: str) -> Path:
    """A model folder, or a training run's best checkpoint."""
    p = Path(path)
    return p if (p / "model.json").is_file() else best_checkpoint(p)


def _figures(res: dict) -> dict:
    return {**{k: res.get(k) for k in KEYS},
            "per_structure": {s["name"]: {k: s.get(k) for k in ("gauge_mae_mev", "band_mae_ef_mev", "ghost_levels")}
                              for s in res["per_structure"]}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", nargs="+", help="data set folders or .h5 files (never trained on by any member)")
    ap.add_argument("--committee", action="append", required=True, metavar="NAME=M0,M1,...")
    ap.add_argument("--label", required=True, help="key in the results JSON (e.g. heldout, validation)")
    ap.add_argument("--ghost-kpoints", type=int, default=1000)
    ap.add_argument("--means-only", action="store_true", help="skip the members alone (measured in another run)")
    ap.add_argument("--json", type=Path, default=OUT)
    args = ap.parse_args()
    files = [f for d in args.data for f in ([Path(d)] if Path(d).is_file() else load_dataset(d))]
    entry = {"structures": [f.name for f in files], "committees": {}}
    print(f"{'committee':12s} {'model':34s} {'gauge MAE':>10s} {'band MAE':>9s} {'ghosts':>7s} {'s':>6s}")
    for spec in args.committee:
        name, _, runs = spec.partition("=")
        names = runs.split(",")
        models = [load(_folder(r)) for r in names]  # with model_file: the training domain, for ghost levels against it
        rows = {}
        alone = [] if args.means_only else [(r, m, []) for r, m in zip(names, models)]
        for label, main_model, members in alone + [(f"mean of {len(models)}", models[0], models[1:])]:
            t0 = time.perf_counter()
            res = evaluate(main_model, files, progress=False, ghost_kpoints=args.ghost_kpoints, members=members)
            rows[label] = {**_figures(res), "seconds": round(time.perf_counter() - t0, 1)}
            r = rows[label]
            print(f"{name:12s} {label:34s} {r['gauge_mae_mev']:10.2f} {r['band_mae_ef_mev']:9.1f} "
                  f"{r['ghost_levels']:7d} {r['seconds']:6.0f}", flush=True)
        entry["committees"][name] = rows
    entry["machine"] = machine()
    merge_results(args.json, args.label, _with_earlier(args.json, args.label, entry))


def _with_earlier(path: Path, label: str, entry: dict) -> dict:
    """``entry`` plus the committees an earlier run measured under ``label`` on the same structures, so that
    committees can be measured one run at a time (a committee measured again replaces its old figures)."""
    old = json.loads(path.read_text()).get(label) if path.exists() else None
    if not old or old.get("structures") != entry["structures"]:
        return entry
    return {**entry, "committees": {**old["committees"], **entry["committees"]}}


if __name__ == "__main__":
    main()
