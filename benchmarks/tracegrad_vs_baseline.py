"""TraceGrad against its own backbone (tracegrad=False): same data, split, seed, epochs and architecture.

    python benchmarks/tracegrad_vs_baseline.py data/molecules-svp --epochs 12
    python benchmarks/tracegrad_vs_baseline.py data/graphene-2x2-szv --cutoff 8 --epochs 12

Data sets come from benchmarks/recipes/*.yaml (`tracegrad generate RECIPE`). Runs resume if killed (rerun the
same command). Prints a table and writes benchmarks/results/tracegrad_vs_baseline.json (merged by data set and epochs).

Training is gauge-invariant by default on every structure, molecules included (the truth moved to the
prediction's energy zero, H + c·S, as issue 12 asked of this benchmark; ``tracegrad train`` aligns periodic
structures only by default), ``--no-gauge`` for the old loss; rows report the raw and gauge test MAE and the E_F-aligned band MAE within ±2 eV.
``--wide`` adds a baseline whose channels are widened until it has as many parameters as TraceGrad
("baseline-wide"), to compare at equal parameter count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from tracegrad_ase.io.h5 import load_dataset
from tracegrad_ase.model.checkpoint import load_model
from tracegrad_ase.model.evaluate import evaluate
from tracegrad_ase.model.train import TrainConfig, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--cutoff", type=float, default=6.0)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--muls", type=int, nargs="+", default=[16, 8, 4, 4, 2])
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tg-alpha", default="adaptive", choices=["adaptive", "unit"],
                    help="TraceGrad injection: f + 0.2 sg(|f|/|v|) v (adaptive) or f + v (unit)")
    ap.add_argument("--trace-weight", type=float, default=0.3)
    ap.add_argument("--trace-norm", default="none", choices=["none", "sqrt", "layer_norm"],
                    help="how trace labels are normalized (ModelConfig.trace_normalization)")
    ap.add_argument("--tg-hidden", type=int, default=32, help="invariants from f (x) f (ModelConfig.tg_hidden)")
    ap.add_argument("--tg-z", type=int, default=16, help="invariant features z per layer (ModelConfig.tg_z)")
    ap.add_argument("--granularity", default="shell_pair", choices=["shell_pair", "degree"],
                    help="trace labels per shell pair or per CG degree")
    ap.add_argument("--lr-patience", type=int, default=4,
                    help="plateau scheduler patience in epochs; a large value keeps the learning rate constant")
    ap.add_argument("--only", choices=["baseline", "tracegrad", "baseline-wide"], default=None,
                    help="train one variant only")
    ap.add_argument("--no-gauge", action="store_true", help="train on raw H (the energy zero counts)")
    ap.add_argument("--band-weight", type=float, default=0.0, help="weight of the band-energy loss (TrainConfig)")
    ap.add_argument("--wide", action="store_true", help="also train a baseline widened to TraceGrad's parameters")
    ap.add_argument("--runs", default="runs/benchmark")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "tracegrad_vs_baseline.json"))
    args = ap.parse_args()
    name = Path(args.data).name
    tag = f"{args.epochs} epochs" + ("" if args.tg_alpha == "adaptive" else f", alpha {args.tg_alpha}") + (
        "" if args.trace_weight == 0.3 else f", lambda {args.trace_weight}") + (
        "" if args.lr_patience == 4 else f", lr patience {args.lr_patience}") + (
        "" if args.granularity == "shell_pair" else f", traces per {args.granularity}") + (
        "" if args.trace_norm == "none" else f", traces {args.trace_norm}") + (
        "" if (args.tg_hidden, args.tg_z) == (32, 16) else f", invariant branch {args.tg_hidden}/{args.tg_z}") + (
        "" if args.seed == 0 else f", seed {args.seed}") + ("" if args.no_gauge else ", gauge") + (
        "" if args.band_weight == 0 else f", band weight {args.band_weight}")
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    rows = dict(results.get(f"{name}/{tag}", {}))
    variants = [("baseline", False), ("tracegrad", True)] + ([("baseline-wide", False)] if args.wide else [])
    for variant, tracegrad in variants:
        if args.only and variant != args.only:
            continue
        muls = list(args.muls)
        if variant == "baseline-wide":
            muls = _equal_parameter_muls(args, rows)
        suffix = "" if variant == "baseline" or args.tg_alpha == "adaptive" else f"-{args.tg_alpha}"
        suffix += "" if variant == "baseline" or args.trace_weight == 0.3 else f"-lambda{args.trace_weight}"
        suffix += "" if args.lr_patience == 4 else f"-patience{args.lr_patience}"
        suffix += "" if variant == "baseline" or args.granularity == "shell_pair" else f"-{args.granularity}"
        suffix += "" if variant == "baseline" or args.trace_norm == "none" else f"-{args.trace_norm}"
        suffix += "" if variant == "baseline" or (args.tg_hidden, args.tg_z) == (32, 16) else \
            f"-tg{args.tg_hidden}x{args.tg_z}"
        suffix += "" if args.seed == 0 else f"-seed{args.seed}"
        suffix += "" if args.no_gauge else "-gauge"
        suffix += "" if args.band_weight == 0 else f"-band{args.band_weight}"
        run = Path(args.runs) / f"{name}-{args.epochs}ep" / (variant + suffix)
        cfg = TrainConfig(data=[args.data], out=str(run), epochs=args.epochs, batch_size=args.batch_size,
                          lr=args.lr, seed=args.seed, early_stopping=args.epochs, lr_patience=args.lr_patience,
                          trace_weight=args.trace_weight, gauge=not args.no_gauge, band_weight=args.band_weight,
                          model={"cutoff": args.cutoff, "num_layers": args.layers, "muls": muls,
                                 "tg_hidden": args.tg_hidden, "tg_z": args.tg_z, "tracegrad": tracegrad, "tg_alpha": args.tg_alpha,
                                 "trace_granularity": args.granularity, "trace_normalization": args.trace_norm})
        t0 = time.perf_counter()
        state = train(cfg)
        model = load_model(run / "checkpoints" / "best")
        split = json.loads((run / "split.json").read_text())
        test = [p for p in load_dataset(args.data) if p.name in set(split["test"])]
        metrics = evaluate(model, test, progress=False, ghost_kpoints=200)
        rows[variant] = {
            "test_mae_mev": metrics["mae_mev"], "test_onsite_mev": metrics["mae_onsite_mev"],
            "test_offsite_mev": metrics["mae_offsite_mev"], "test_eig_mae_mev": metrics.get("eig_mae_mev"),
            "test_mae_by_degree_mev": metrics["mae_by_degree_mev"],
            "test_gauge_mae_mev": metrics["gauge_mae_mev"], "test_band_mae_ef_mev": metrics["band_mae_ef_mev"],
            "test_ghost_levels": metrics["ghost_levels"], "muls": muls, "run": str(run),
            "time_per_epoch_s": state["wall_time_s"] / max(state["epoch"], 1),
            "parameters": sum(p.numel() for p in model.parameters()),
            "train_time_s": state["wall_time_s"], "epochs": state["epoch"], "best_epoch": state["best_epoch"],
            "n_train": len(split["train"]), "n_val": len(split["val"]), "n_test": len(test),
            "this_call_s": time.perf_counter() - t0,
        }
        print(f"{name}/{variant}: test MAE {metrics['mae_mev']:.3f} meV after {state['epoch']} epochs", flush=True)
    if "baseline" not in rows and args.lr_patience == 4 and args.no_gauge:  # the baseline does not depend on alpha or lambda
        plain = results.get(f"{name}/{args.epochs} epochs" + ("" if args.seed == 0 else f", seed {args.seed}"),
                            {}).get("baseline")
        if plain:
            rows["baseline"] = plain
    rows["settings"] = vars(args)
    rows["machine"] = {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                       "platform": platform.platform()}
    # Again: other runs (e.g. `--only baseline` beside `--only tracegrad`) may have written meanwhile; keep their
    # variants and add ours.
    results = json.loads(out.read_text()) if out.exists() else {}
    rows = {**results.get(f"{name}/{tag}", {}), **rows}
    if "baseline" in rows and "tracegrad" in rows:
        rows["ratio_tracegrad_over_baseline"] = rows["tracegrad"]["test_mae_mev"] / rows["baseline"]["test_mae_mev"]
        if rows["tracegrad"].get("test_gauge_mae_mev") and rows["baseline"].get("test_gauge_mae_mev"):
            rows["gauge_ratio_tracegrad_over_baseline"] = (rows["tracegrad"]["test_gauge_mae_mev"]
                                                           / rows["baseline"]["test_gauge_mae_mev"])
    if "baseline-wide" in rows and "tracegrad" in rows and rows["baseline-wide"].get("test_gauge_mae_mev"):
        rows["gauge_ratio_tracegrad_over_wide_baseline"] = (rows["tracegrad"]["test_gauge_mae_mev"]
                                                            / rows["baseline-wide"]["test_gauge_mae_mev"])
    results[f"{name}/{tag}"] = rows
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, out)
    fmt = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
    print(f"\n{'data set':22} {'model':13} {'raw MAE':>8} {'gauge MAE':>9} {'band MAE':>9} {'ghosts':>6} "
          f"{'params':>8} {'s/epoch':>8}")
    for v in ("baseline", "tracegrad", "baseline-wide"):
        if v not in rows:
            continue
        r = rows[v]
        print(f"{name:22} {v:13} {r['test_mae_mev']:8.2f} {fmt(r.get('test_gauge_mae_mev')):>9} "
              f"{fmt(r.get('test_band_mae_ef_mev')):>9} {r.get('test_ghost_levels', 'n/a'):>6} {r['parameters']:8d} "
              f"{fmt(r.get('time_per_epoch_s')):>8}")
    for key in ("ratio_tracegrad_over_baseline", "gauge_ratio_tracegrad_over_baseline",
                "gauge_ratio_tracegrad_over_wide_baseline"):
        if key in rows:
            print(f"{key}: {rows[key]:.3f}")
    print(f"wrote {out}")


def _equal_parameter_muls(args, rows: dict) -> list[int]:
    """Baseline channels scaled by one factor until its parameter count is closest to TraceGrad's."""
    from dataclasses import replace

    from tracegrad_ase.model.checkpoint import read_card
    from tracegrad_ase.model.network import ModelConfig, build_model

    tg = rows.get("tracegrad") or {}
    if "run" not in tg:
        raise SystemExit("train the tracegrad variant first (its parameter count sets the wide baseline's)")
    config = ModelConfig.from_dict(read_card(Path(tg["run"]) / "checkpoints" / "best")["config"])
    best, best_gap = list(args.muls), float("inf")
    for f10 in range(10, 41):
        muls = [max(1, round(m * f10 / 10)) for m in args.muls]
        n = sum(p.numel() for p in build_model(replace(config, muls=muls, tracegrad=False)).parameters())
        if abs(n - tg["parameters"]) < best_gap:
            best, best_gap = muls, abs(n - tg["parameters"])
    return best


if __name__ == "__main__":
    main()
