"""Capacity probe: can the network fit the structures it is trained on? (Data or capacity: what limits a model.)

    python benchmarks/capacity_probe.py calculators/carbon/train_v9.yaml --structures aa320-00000.h5 \
        --architecture calculators/carbon --max-time-s 1500 --jobs 3 --tag carbon-aa320 \
        --variant "0.8 fine-tuned" init_from=calculators/carbon lr=0.001 \
        --variant "0.8's shape, from scratch" init_from=null lr=0.003 \
        --variant "3 layers, 1.4x channels, from scratch" init_from=null lr=0.003 num_layers=3 muls=[32,16,12,8,6]

Each variant trains on ``--structures`` and is validated on the same structures, so its best validation band MAE is
how well it can *fit* them. A model whose error on its own training structures is as large as on held-out ones is
not short of data: more structures of the kind it already has will not bring the error down, a larger network
(or a better optimisation) might. Variant settings are training settings (``lr=0.001``, ``band_weight=0.01``,
``init_from=FOLDER`` or ``init_from=null`` for random weights) or model settings (``num_layers=3``,
``muls=[32,16,12,8,6]``), which start from ``--architecture``'s (a model folder's config). With ``init_from``, only
``num_layers`` may be set: the trained model grows by layers that at first predict nothing (model/grow.py). Runs
resume (rerun the same command). Prints a table; writes ``benchmarks/results/capacity_probe.json`` and a PNG of the
fit over time.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields, replace
from pathlib import Path

import yaml

from _results import machine, merge_results
from learning_curve import train_all
from tracegrad_ase.io.atomic import atomic_write_json
from tracegrad_ase.io.h5 import load_dataset
from tracegrad_ase.model.run_folder import read_log
from tracegrad_ase.model.train import TrainConfig

#: ModelConfig fields that define a network's shape (elements, basis, scales and references come from the data).
SHAPE_KEYS = ("cutoff", "num_layers", "muls", "lmax_sh", "num_radial", "radial_hidden", "tracegrad", "tg_hidden",
              "tg_z", "tg_alpha", "trace_granularity", "trace_normalization")
TRAIN_KEYS = {f.name for f in fields(TrainConfig)}


def variant_config(base: TrainConfig, label: str, settings: list[str], fit: list[str], run: Path,
                   architecture: dict, max_time_s: float) -> TrainConfig:
    """``base`` trained on ``fit`` and validated on the same structures, with one variant's settings."""
    run.mkdir(parents=True, exist_ok=True)
    split = run / "fit_split.json"
    atomic_write_json(split, {"train": fit, "val": fit, "test": []})
    # Snapshots and weight averaging are for long runs; a variant may set them.
    train_keys: dict = {"snapshot_every": None, "ema_decay": None}
    model = {k: v for k, v in architecture.items() if k in SHAPE_KEYS}
    given: list[str] = []
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"variant {label!r}: {item!r} is not KEY=VALUE")
        parsed = yaml.safe_load(value)
        if key in TRAIN_KEYS:
            train_keys[key] = str(Path(parsed).resolve()) if key == "init_from" and parsed else parsed
        elif key in SHAPE_KEYS:
            model[key] = parsed
            given.append(key)
        else:
            raise SystemExit(f"variant {label!r}: unknown setting {key!r} (training: {sorted(TRAIN_KEYS)}; "
                             f"model: {list(SHAPE_KEYS)})")
    init = train_keys.get("init_from", base.init_from)
    grown = {k: model[k] for k in ("num_layers",) if k in given}
    if init and set(given) - set(grown):
        raise SystemExit(f"variant {label!r}: model settings other than num_layers need init_from=null "
                         f"(fine-tuning keeps the init's shape; num_layers grows it)")
    return replace(base, **{**train_keys, "out": str(run), "split_file": str(split), "progress": False,
                            "model": grown if init else model, "epochs": 10 ** 6, "early_stopping": 10 ** 6,
                            "max_time_s": max_time_s})


def _figures(folder: str | Path, fit_files: list[Path], ghost_kpoints: int) -> tuple[dict, int]:
    """``tracegrad evaluate``'s figures of the weights in ``folder`` on ``fit_files``, and their parameter count."""
    from tracegrad_ase.model.evaluate import evaluate
    from tracegrad_ase.predict import load

    model = load(folder)  # with its card: the training domain, for ghost levels
    return (evaluate(model, fit_files, progress=False, ghost_kpoints=ghost_kpoints),
            sum(p.numel() for p in model.parameters()))


def fit_figures(run: Path, start: dict, fit_files: list[Path], ghost_kpoints: int) -> dict:
    """The run's trajectory and its best checkpoint's figures on the structures it fitted (E_F-aligned band MAE
    within ±2 eV and gauge MAE), beside ``start``, those of the weights it started from (empty from scratch)."""
    epochs = read_log(run)
    m, parameters = _figures(run / "checkpoints" / "best", fit_files, ghost_kpoints)
    return {"parameters": parameters, "epochs": epochs[-1]["epoch"],
            "start_band_mae_ef_mev": start.get("band_mae_ef_mev"), "start_gauge_mae_mev": start.get("gauge_mae_mev"),
            "train_time_s": epochs[-1]["time_s"], "s_per_epoch": epochs[-1]["time_s"] / max(epochs[-1]["epoch"], 1),
            "first_val_band_mae_mev": epochs[0]["val_band_mae_mev"],
            "best_val_band_mae_mev": min(r["val_band_mae_mev"] for r in epochs),
            "fit_band_mae_ef_mev": m["band_mae_ef_mev"], "fit_gauge_mae_mev": m["gauge_mae_mev"],
            "ghost_levels": m["ghost_levels"],
            # (wall time s, validation band MAE, gauge MAE) per epoch, rounded: thousands of epochs in the JSON
            "trajectory": [[round(r["time_s"], 1), round(r["val_band_mae_mev"], 2), round(r["val_mae_mev"], 4)]
                           for r in epochs]}


def plot(rows: dict[str, dict], png: Path, title: str) -> None:
    from tracegrad_ase.core.figures import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 4.0), dpi=150)
    for label, r in rows.items():
        t, band, _ = zip(*r["trajectory"])
        ax.semilogy([x / 60 for x in t], band, lw=1, label=f"{label} (best {r['best_val_band_mae_mev']:.1f})")
    ax.axhline(10, color="k", lw=0.6, ls=":", label="10 meV goal")
    ax.set_xlabel("training wall time (min)")
    ax.set_ylabel("band MAE on its own training structures (meV)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", help="training YAML (data folders and settings)")
    ap.add_argument("--structures", nargs="+", required=True, help="structure file names to fit (train = val)")
    ap.add_argument("--data", nargs="+", help="data folders instead of the config's")
    ap.add_argument("--variant", nargs="+", action="append", required=True, metavar="LABEL [KEY=VALUE ...]")
    ap.add_argument("--architecture", required=True, help="model folder whose network shape variants start from")
    ap.add_argument("--max-time-s", type=float, default=1500)
    ap.add_argument("--jobs", type=int, default=1, help="variants trained at once (processes)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per training process")
    ap.add_argument("--ghost-kpoints", type=int, default=200)
    ap.add_argument("--tag", default="probe")
    ap.add_argument("--runs", default="runs/capacity_probe")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "capacity_probe.json"))
    args = ap.parse_args()

    base = TrainConfig.from_yaml(args.config)
    if args.data:
        base = replace(base, data=[str(Path(d).resolve()) for d in args.data])
    by_name = {f.name: f for d in base.data for f in load_dataset(d)}
    if missing := [s for s in args.structures if s not in by_name]:
        raise SystemExit(f"structures not in the config's data: {missing}")
    architecture = json.loads((Path(args.architecture) / "model.json").read_text())["config"]
    labels = [v[0] for v in args.variant]
    if len(set(labels)) != len(labels):
        raise SystemExit(f"variant labels must differ: {labels}")
    root = Path(args.runs) / args.tag
    configs = {v[0]: variant_config(base, v[0], v[1:], args.structures, root / f"v{i}", architecture,
                                    args.max_time_s) for i, v in enumerate(args.variant)}
    train_all(configs, args.jobs, args.threads)
    fit_files = [by_name[s] for s in args.structures]
    # Each starting model judged once, however many variants fine-tune it.
    starts = {c.init_from: _figures(c.init_from, fit_files, 0)[0] for c in configs.values() if c.init_from}
    rows = {label: {"settings": v[1:], "run": configs[label].out,
                    **fit_figures(Path(configs[label].out), starts.get(configs[label].init_from, {}), fit_files,
                                  args.ghost_kpoints)}
            for label, v in zip(labels, args.variant)}
    png = Path(args.out).with_name(f"capacity_probe_{args.tag}.png")
    png.parent.mkdir(parents=True, exist_ok=True)
    plot(rows, png, f"{args.tag}: fitting {len(args.structures)} training structure(s)")
    merge_results(args.out, args.tag, {"structures": args.structures, "config": args.config,
                                       "architecture": args.architecture, "rows": rows, "png": str(png),
                                       "machine": machine(threads=args.threads, jobs=args.jobs)})
    # Band MAE in the training window (band_window_ev, band_kpoints fixed k-points) after the first epoch and at
    # the best; then the evaluation's ±2 eV figures of the weights started from and of the best checkpoint.
    print(f"\n{'variant':>40} {'params':>9} {'epochs':>7} {'s/epoch':>8} {'val band: 1st':>14} {'best':>6} "
          f"{'band ±2 eV: start':>18} {'fitted':>7} {'gauge: start':>13} {'fitted':>7} {'ghosts':>7}")
    for label, r in rows.items():
        start = (f"{r['start_band_mae_ef_mev']:18.1f}" if r["start_band_mae_ef_mev"] is not None else f"{'-':>18}")
        start_g = (f"{r['start_gauge_mae_mev']:13.3f}" if r["start_gauge_mae_mev"] is not None else f"{'-':>13}")
        print(f"{label:>40} {r['parameters']:9d} {r['epochs']:7d} {r['s_per_epoch']:8.1f} "
              f"{r['first_val_band_mae_mev']:14.1f} {r['best_val_band_mae_mev']:6.1f} {start} "
              f"{r['fit_band_mae_ef_mev']:7.1f} {start_g} {r['fit_gauge_mae_mev']:7.3f} {r['ghost_levels']:7d}")
    print(f"-> {png}")


if __name__ == "__main__":
    main()
