"""Learning curve: the same model trained on growing training sets, judged on one fixed validation and test set.

    python benchmarks/learning_curve.py calculators/carbon/train.yaml --sizes 4 8 16 26 \
        --split-from calculators/carbon/split.json --heldout data/carbon-dzvp/heldout-* --max-time-s 900
    python benchmarks/learning_curve.py examples/train_molecules.yaml --sizes 10 20 40 77 --epochs 40

The training YAML gives the data folders and every setting; this script only replaces the split (a fixed one per
size, nested: each training set holds the smaller ones), the run folder and, if given, the epochs, time budget,
device and model settings (``--set num_layers=3`` for a model-size point). Validation and test come from
``--split-from`` (a run's split.json: its val and test lists; every other structure of the data is the pool) or
are drawn with ``--seed``. Runs resume (rerun the same command).

Stages: ``--stage train`` only trains (``--jobs N`` runs N sizes at once, e.g. on one GPU), ``--stage evaluate``
only evaluates finished runs (so training can run on another machine and come back), ``all`` does both. For each
size it evaluates the best checkpoint on the test set and on each ``--heldout`` data set: gauge MAE, E_F-aligned
band MAE within ±2 eV and ghost levels (``tracegrad evaluate``'s metrics), fits err ∝ N^slope on the log-log test
points and says how many structures a target error would need at that slope (an extrapolation, nothing more).
Prints a table, writes ``benchmarks/results/learning_curve.json`` and a log-log PNG beside it.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import yaml

from _results import machine, merge_results
from tracegrad_ase.io.atomic import atomic_write_json
from tracegrad_ase.io.h5 import load_dataset
from tracegrad_ase.model.run_folder import read_log
from tracegrad_ase.model.train import TrainConfig, train

METRICS = ("gauge_mae_mev", "band_mae_ef_mev")


def molecule_of(name: str) -> str:
    """The molecule a structure file belongs to: its name without the conformer suffix ("<molecule>-<k>.h5")."""
    return Path(name).stem.rsplit("-", 1)[0]


def nested_splits(files: list[Path], sizes: list[int], n_val: int, n_test: int, seed: int,
                  fixed: dict | None = None, group: bool = False) -> dict[int, dict]:
    """One shuffled order of the pool, nested training sets of each size; validation and test from ``fixed``
    (a split.json's "val" and "test") or the first ``n_test`` + ``n_val`` of the shuffled files. With ``group``,
    sizes count molecules (:func:`molecule_of`) and each training set holds every conformer of its molecules."""
    order = [files[i] for i in np.random.default_rng(seed).permutation(len(files))]
    if fixed:
        held = set(fixed["val"]) | set(fixed["test"])
        by_name = {f.name for f in files}
        missing = sorted(held - by_name)
        if missing:
            raise SystemExit(f"--split-from names structures that are not in the data: {missing[:3]}")
        val, test = list(fixed["val"]), list(fixed["test"])
        pool = [f for f in order if f.name not in held]
    else:
        test, val = [f.name for f in order[:n_test]], [f.name for f in order[n_test:n_test + n_val]]
        pool = order[n_test + n_val:]
    if group:
        leaked = {molecule_of(f.name) for f in pool} & {molecule_of(x) for x in val + test}
        if leaked:
            raise SystemExit(f"molecules both in the pool and in validation/test: {sorted(leaked)[:3]}")
        molecules = list(dict.fromkeys(molecule_of(f.name) for f in pool))  # shuffled order, first seen
    unit = "molecules" if group else "structures"
    too_big = [n for n in sizes if n > (len(molecules) if group else len(pool))]
    if too_big:
        raise SystemExit(f"sizes {too_big} exceed the {unit} left after validation and test")
    if group:
        chosen = {n: set(molecules[:n]) for n in sizes}
        return {n: {"train": [f.name for f in pool if molecule_of(f.name) in chosen[n]], "val": val, "test": test}
                for n in sizes}
    return {n: {"train": [f.name for f in pool[:n]], "val": val, "test": test} for n in sizes}


def fit_slope(sizes: list[int], errors: list[float | None]) -> tuple[float, float] | None:
    """log(err) = a + slope·log(N) by least squares; (slope, a), or None with fewer than two points."""
    pts = [(math.log(n), math.log(e)) for n, e in zip(sizes, errors) if e and e > 0]
    if len(pts) < 2:
        return None
    x, y = np.array(pts).T
    slope, a = np.polyfit(x, y, 1)
    return float(slope), float(a)


def needed(fit: tuple[float, float] | None, target: float) -> float | None:
    """Training-set size at which the fitted curve reaches ``target`` (None if it does not fall)."""
    if fit is None or fit[0] >= 0:
        return None
    slope, a = fit
    return float(math.exp((math.log(target) - a) / slope))


def _config(base: TrainConfig, run: Path, split: dict, args) -> TrainConfig:
    run.mkdir(parents=True, exist_ok=True)
    split_file = run / "fixed_split.json"
    atomic_write_json(split_file, split)
    model = dict(base.model)
    for item in args.set or []:
        key, value = item.split("=", 1)
        model[key] = yaml.safe_load(value)
    epochs = math.ceil(args.visits / len(split["train"])) if args.visits else (args.epochs or base.epochs)
    return replace(base, out=str(run), split_file=str(split_file), progress=False, model=model,
                   epochs=epochs, max_time_s=args.max_time_s or base.max_time_s,
                   device=args.device or base.device)


def _train_one(cfg: TrainConfig, threads: int | None) -> dict:
    import torch

    if threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    state = train(cfg)
    return {"epochs": state["epoch"], "best_epoch": state["best_epoch"], "train_time_s": state["wall_time_s"],
            "this_call_s": time.perf_counter() - t0}


def train_all(configs: dict[int, TrainConfig], jobs: int, threads: int | None) -> dict[int, dict]:
    """Train every size, ``jobs`` at a time (spawned processes: CUDA does not survive a fork)."""
    if jobs <= 1:
        return {n: _train_one(cfg, threads) for n, cfg in configs.items()}
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        pending = {n: pool.apply_async(_train_one, (cfg, threads)) for n, cfg in configs.items()}
        return {n: p.get() for n, p in pending.items()}


def evaluate_run(run: Path, files: dict[str, Path], split: dict, heldout: list[str], ghost_kpoints: int,
                 lindep: float | None = None) -> dict:
    """The best checkpoint's metrics on the test split and on each held-out data set (solved with ``lindep``
    when given: one overlap threshold for every size, as a shipped model records its own)."""
    from tracegrad_ase.model.evaluate import evaluate
    from tracegrad_ase.predict import load

    model = load(run / "checkpoints" / "best")  # with its card: the training domain, for ghost levels
    if lindep is not None:
        model.model_file.setdefault("metadata", {})["lindep"] = lindep
    sets = {"test": [files[x] for x in split["test"]]}
    sets.update({Path(d).name: load_dataset(d) for d in heldout})
    out = {}
    for name, paths in sets.items():
        m = evaluate(model, paths, progress=False, ghost_kpoints=ghost_kpoints)
        out[name] = {k: m.get(k) for k in ("gauge_mae_mev", "mae_mev", "band_mae_ef_mev", "ghost_levels",
                                           "homo_lumo_gap_error_mev", "n_structures")}
    epochs = read_log(run)
    out["epochs"] = epochs[-1]["epoch"] if epochs else None
    out["train_time_s"] = epochs[-1].get("time_s") if epochs else None
    out["best_val_mae_mev"] = min((r["val_mae_mev"] for r in epochs if r.get("val_mae_mev") is not None), default=None)
    return out


def plot(rows: list[dict], fits: dict, png: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 4.0), dpi=150)
    n = [r["n_train"] for r in rows]
    for key, label, colour in (("gauge_mae_mev", "gauge block MAE", "tab:blue"),
                               ("band_mae_ef_mev", "band MAE within ±2 eV of E_F", "tab:orange")):
        ax.loglog(n, [r["test"][key] for r in rows], "o-", color=colour, label=f"{label} (test)")
        held = [r for r in rows if r.get("heldout_mean", {}).get(key)]
        if held:
            ax.loglog([r["n_train"] for r in held], [r["heldout_mean"][key] for r in held], "s:", color=colour,
                      alpha=0.7, label=f"{label} (held-out sets, mean)")
        if fits.get(key):
            s, a = fits[key]
            xs = np.geomspace(min(n), max(n) * 4, 30)
            ax.loglog(xs, np.exp(a) * xs ** s, "--", color=colour, lw=0.8, label=f"fit N^{s:.2f}")
    ax.set_xlabel(f"training {'molecules' if rows and rows[0].get('grouped') else 'structures'}")
    ax.set_ylabel("error (meV)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)


def report(rows: list[dict], args, tag: str, runs: Path) -> None:
    fitted = [r for r in rows if r["n_train"] >= args.fit_min]
    sizes = [r["n_train"] for r in fitted]
    fits = {k: fit_slope(sizes, [r["test"][k] for r in fitted]) for k in METRICS}
    targets = dict(zip(METRICS, args.targets))
    extrapolation = {k: {"target": targets[k], "n_needed": needed(fits[k], targets[k])} for k in METRICS}
    out = Path(args.out)
    png = out.with_name(f"learning_curve_{tag}.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    budget = f", {args.visits} structure visits each" if args.visits else ""
    plot(rows, fits, png, f"{tag}: errors vs training-set size{budget}")
    merge_results(out, tag, {"rows": rows, "fits": {k: (None if v is None else {"slope": v[0], "log_prefactor": v[1]})
                                                   for k, v in fits.items()},
                             "extrapolation": extrapolation, "fit_min": args.fit_min, "runs": str(runs),
                             "settings": vars(args),
                             "png": str(png), "machine": machine()})
    print(f"\n{'N train':>8} {'set':>26} {'gauge MAE':>10} {'band MAE':>10} {'gap error':>10} {'ghosts':>7}")
    for r in rows:
        for name, m in r.items():
            if isinstance(m, dict) and "ghost_levels" in m:
                band = "n/a" if m["band_mae_ef_mev"] is None else f"{m['band_mae_ef_mev']:.1f}"
                gap = "n/a" if m.get("homo_lumo_gap_error_mev") is None else f"{m['homo_lumo_gap_error_mev']:.0f}"
                print(f"{r['n_train']:8d} {name:>26} {m['gauge_mae_mev']:10.3f} {band:>10} {gap:>10} "
                      f"{m['ghost_levels']:7d}")
    for k, v in fits.items():
        if v is not None:
            e = extrapolation[k]
            more = (f"; {e['target']} meV at N ~ {e['n_needed']:.3g}" if e["n_needed"]
                    else f"; does not fall: no size reaches {e['target']} meV at this slope")
            print(f"{k} (test, N >= {args.fit_min}): slope {v[0]:.2f}{more}")
    print(f"-> {png}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", help="training YAML (data folders and settings)")
    ap.add_argument("--sizes", type=int, nargs="+", required=True)
    ap.add_argument("--split-from", help="a split.json whose val and test lists are kept fixed")
    ap.add_argument("--n-val", type=int, default=3)
    ap.add_argument("--n-test", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", nargs="+", help="data folders instead of the config's (same structures elsewhere)")
    ap.add_argument("--heldout", nargs="*", default=[], help="held-out data set folders, evaluated too")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE", help="a model setting, e.g. num_layers=3")
    ap.add_argument("--tag", help="name of this curve (default: the config's folder and stem)")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--visits", type=int, default=None,
                    help="the same training budget for every size: epochs = ceil(VISITS / N) (early stopping applies)")
    ap.add_argument("--max-time-s", type=float, default=None)
    ap.add_argument("--device", default=None, help="cpu, cuda, ... (default: the config's)")
    ap.add_argument("--jobs", type=int, default=1, help="sizes trained at once (processes)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads per training process")
    ap.add_argument("--stage", choices=["all", "train", "evaluate", "report"], default="all",
                    help="report: refit and replot the rows an earlier evaluate stored in --out")
    ap.add_argument("--fit-min", type=int, default=0,
                    help="fit the slope on sizes >= this only (a size too small to hold every structure type is "
                         "off the curve)")
    ap.add_argument("--ghost-kpoints", type=int, default=200)
    ap.add_argument("--lindep", type=float, default=None,
                    help="overlap threshold every size is solved with (default: each checkpoint's own, else 1e-2)")
    ap.add_argument("--targets", type=float, nargs=2, default=[1.0, 10.0],
                    help="gauge MAE and band MAE goals (meV) to extrapolate to (default: 1 and 10)")
    ap.add_argument("--group-by", choices=["structure", "molecule"], default="structure",
                    help="what --sizes count: structures, or molecules (all conformers of each; '<molecule>-<k>.h5')")
    ap.add_argument("--runs", default="runs/learning_curve")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "learning_curve.json"))
    args = ap.parse_args()

    tag = args.tag or f"{Path(args.config).parent.name}-{Path(args.config).stem}"
    root = Path(args.runs) / tag
    if args.stage == "report":  # the stored rows: no data, no runs
        report(json.loads(Path(args.out).read_text())[tag]["rows"], args, tag, root)
        return
    base = TrainConfig.from_yaml(args.config)
    if args.data:
        base = replace(base, data=[str(Path(d).resolve()) for d in args.data])
    files = [f for d in base.data for f in load_dataset(d)]
    fixed = json.loads(Path(args.split_from).read_text()) if args.split_from else None
    grouped = args.group_by == "molecule"
    splits = nested_splits(files, sorted(args.sizes), args.n_val, args.n_test, args.seed, fixed, grouped)
    if args.stage in ("all", "train"):
        configs = {n: _config(base, root / f"n{n}", split, args) for n, split in splits.items()}
        for n, info in train_all(configs, args.jobs, args.threads).items():
            print(f"N={n}: {info['epochs']} epochs (best {info['best_epoch']}) in {info['this_call_s']:.0f} s",
                  flush=True)
    if args.stage == "train":
        return
    by_name = {f.name: f for f in files}
    rows = []
    for n, split in splits.items():
        row = {"n_train": n, "grouped": grouped, "n_structures": len(split["train"]), **evaluate_run(root / f"n{n}", by_name, split, args.heldout, args.ghost_kpoints,
                                                args.lindep)}
        held = [row[Path(d).name] for d in args.heldout]
        row["heldout_mean"] = {k: (float(np.mean([h[k] for h in held])) if held and all(h[k] is not None for h in held)
                                   else None) for k in METRICS}
        rows.append(row)
        print(f"N={n}: test gauge MAE {row['test']['gauge_mae_mev']:.3f} meV, band MAE "
              f"{row['test']['band_mae_ef_mev']} meV", flush=True)
    report(rows, args, tag, root)


if __name__ == "__main__":
    main()
