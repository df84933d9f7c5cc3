"""Learning curve: the same model trained on growing training sets, judged on one fixed validation and test set.

    python benchmarks/learning_curve.py calculators/carbon/train_band.yaml --sizes 8 16 24 --n-val 3 --n-test 3 \
        --max-time-s 900
    python benchmarks/learning_curve.py examples/train_molecules.yaml --sizes 10 20 40 77 --epochs 40

The training YAML gives the data folders and every setting; this script only replaces the split (a fixed one per
size, nested: each training set holds the smaller ones), the run folder and, if given, the epochs and time budget.
Runs resume (rerun the same command). For each size it evaluates the best checkpoint on the test set: gauge MAE
and E_F-aligned band MAE within ±2 eV (``tracegrad evaluate``'s metrics), fits err ∝ N^slope on the log-log points
and says how many structures a target error would need at that slope (an extrapolation, nothing more). Prints a
table, writes ``benchmarks/results/learning_curve.json`` and a log-log PNG beside it.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from _results import machine, merge_results
from tracegrad_ase.io.atomic import atomic_write_json
from tracegrad_ase.io.h5 import load_dataset
from tracegrad_ase.model.checkpoint import load_model, read_card
from tracegrad_ase.model.evaluate import evaluate
from tracegrad_ase.model.train import TrainConfig, train


def nested_splits(files: list[Path], sizes: list[int], n_val: int, n_test: int, seed: int) -> dict[int, dict]:
    """One shuffled order: test and validation first, then nested training sets of each size."""
    order = [files[i] for i in np.random.default_rng(seed).permutation(len(files))]
    test, val, pool = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    too_big = [n for n in sizes if n > len(pool)]
    if too_big:
        raise SystemExit(f"sizes {too_big} exceed the {len(pool)} structures left after validation and test")
    names = lambda fs: [f.name for f in fs]  # noqa: E731
    return {n: {"train": names(pool[:n]), "val": names(val), "test": names(test)} for n in sizes}


def fit_slope(sizes: list[int], errors: list[float]) -> tuple[float, float] | None:
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


def plot(rows: list[dict], fits: dict, png: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.8), dpi=150)
    n = [r["n_train"] for r in rows]
    for key, label, colour in (("gauge_mae_mev", "gauge block MAE", "tab:blue"),
                               ("band_mae_ef_mev", "band MAE within ±2 eV of E_F", "tab:orange")):
        y = [r[key] for r in rows]
        ax.loglog(n, y, "o-", color=colour, label=label)
        if fits.get(key):
            s, a = fits[key]
            xs = np.geomspace(min(n), max(n) * 4, 30)
            ax.loglog(xs, np.exp(a) * xs ** s, "--", color=colour, lw=0.8, label=f"fit N^{s:.2f}")
    ax.set_xlabel("training structures")
    ax.set_ylabel("test error (meV)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", help="training YAML (data folders and settings)")
    ap.add_argument("--sizes", type=int, nargs="+", required=True)
    ap.add_argument("--n-val", type=int, default=3)
    ap.add_argument("--n-test", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--max-time-s", type=float, default=None)
    ap.add_argument("--targets", type=float, nargs=2, default=[1.0, 10.0],
                    help="gauge MAE and band MAE goals (meV) to extrapolate to (default: 1 and 10)")
    ap.add_argument("--runs", default="runs/learning_curve")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "learning_curve.json"))
    args = ap.parse_args()

    base = TrainConfig.from_yaml(args.config)
    files = [f for d in base.data for f in load_dataset(d)]
    splits = nested_splits(files, sorted(args.sizes), args.n_val, args.n_test, args.seed)
    tag = f"{Path(args.config).parent.name}/{Path(args.config).stem}"
    root = Path(args.runs) / tag.replace("/", "-")
    rows = []
    for n, split in splits.items():
        run = root / f"n{n}"
        run.mkdir(parents=True, exist_ok=True)
        split_file = run / "fixed_split.json"
        atomic_write_json(split_file, split)
        cfg = replace(base, out=str(run), split_file=str(split_file), progress=False,
                      epochs=args.epochs or base.epochs, max_time_s=args.max_time_s or base.max_time_s)
        t0 = time.perf_counter()
        state = train(cfg)
        best = run / "checkpoints" / "best"
        model = load_model(best)
        model.card = read_card(best)
        by_name = {f.name: f for f in files}
        metrics = evaluate(model, [by_name[x] for x in split["test"]], progress=False, ghost_kpoints=200)
        rows.append({"n_train": n, "gauge_mae_mev": metrics["gauge_mae_mev"], "mae_mev": metrics["mae_mev"],
                     "band_mae_ef_mev": metrics["band_mae_ef_mev"], "ghost_levels": metrics["ghost_levels"],
                     "epochs": state["epoch"], "best_epoch": state["best_epoch"], "train_time_s": state["wall_time_s"],
                     "this_call_s": time.perf_counter() - t0})
        print(f"N={n}: gauge MAE {metrics['gauge_mae_mev']:.3f} meV, band MAE {metrics['band_mae_ef_mev']} meV "
              f"({state['epoch']} epochs)", flush=True)
    fits = {k: fit_slope([r["n_train"] for r in rows], [r[k] for r in rows])
            for k in ("gauge_mae_mev", "band_mae_ef_mev")}
    extrapolation = {"gauge_mae_mev": {"target": args.targets[0], "n_needed": needed(fits["gauge_mae_mev"],
                                                                                     args.targets[0])},
                     "band_mae_ef_mev": {"target": args.targets[1], "n_needed": needed(fits["band_mae_ef_mev"],
                                                                                       args.targets[1])}}
    out = Path(args.out)
    png = out.with_name(f"learning_curve_{tag.replace('/', '-')}.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    plot(rows, fits, png, f"{tag}: test errors vs training-set size")
    merge_results(out, tag, {"rows": rows, "fits": {k: (None if v is None else {"slope": v[0], "log_prefactor": v[1]})
                                                   for k, v in fits.items()},
                             "extrapolation": extrapolation, "n_val": args.n_val, "n_test": args.n_test,
                             "settings": vars(args), "png": str(png), "machine": machine()})
    print(f"\n{'N train':>8} {'gauge MAE':>10} {'band MAE':>10} {'ghosts':>7} {'epochs':>7} {'train s':>8}")
    for r in rows:
        band = "n/a" if r["band_mae_ef_mev"] is None else f"{r['band_mae_ef_mev']:.1f}"
        print(f"{r['n_train']:8d} {r['gauge_mae_mev']:10.3f} {band:>10} {r['ghost_levels']:7d} {r['epochs']:7d} "
              f"{r['train_time_s']:8.0f}")
    for k, v in fits.items():
        if v is not None:
            e = extrapolation[k]
            more = f"; {e['target']} meV at N ~ {e['n_needed']:.0f}" if e["n_needed"] else ""
            print(f"{k}: slope {v[0]:.2f}{more}")
    print(f"-> {png}")


if __name__ == "__main__":
    main()
