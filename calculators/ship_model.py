"""Ship a trained model: copy its weights into calculators/NAME, evaluate it and its baseline, write the card.

    python calculators/ship_model.py molecules --run runs/ship/molecules --baseline runs/ship/molecules-baseline \\
        --data data/molecules-svp data/molecules-svp-extra
    python calculators/ship_model.py carbon --run runs/ship/carbon --baseline runs/ship/carbon-baseline \\
        --data data/carbon-dzvp/graphene data/carbon-dzvp/bilayer --heldout data/carbon-dzvp/heldout-aa

Every figure on the card comes from ``tracegrad evaluate`` JSON files written here (calculators/NAME/evaluation/)
and from the training runs' own state files; ``calculators/NAME/card.in.yaml`` holds the words (what the model
is for, how its data are made). The test split is the one the training run wrote (split.json).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent


def _evaluate(model: Path, data: list[str], split: str, out: Path, parity: Path | None = None) -> dict:
    cmd = [sys.executable, "-m", "tracegrad_ase.cli", "evaluate", str(model), *data, "--split", split, "--json", str(out)]
    if parity is not None:
        cmd += ["--parity", str(parity)]
    subprocess.run(cmd, check=True)
    return json.loads(out.read_text())


def _figures(res: dict) -> dict:
    keys = ("n_structures", "mae_mev", "mae_onsite_mev", "mae_offsite_mev", "eig_mae_mev", "eig_near_edges_mae_mev",
            "eig_occupied_mae_mev", "homo_lumo_gap_error_mev", "mae_by_degree_mev")
    return {k: res[k] for k in keys if res.get(k) is not None}


def _training(run: Path) -> dict:
    state = json.loads((run / "checkpoints" / "last" / "state.json").read_text())
    card = json.loads((run / "checkpoints" / "best" / "model.json").read_text())
    split = json.loads((run / "split.json").read_text())
    return {"epochs_run": state["epoch"], "best_epoch": state["best_epoch"],
            "wall_time_s": round(state.get("wall_time_s", state["history"][-1]["time_s"]), 1),
            "best_val_mae_mev": card["metadata"].get("val_mae_mev"),
            "split": {k: len(v) for k, v in split.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name")
    ap.add_argument("--run", required=True, help="training run folder of the model to ship")
    ap.add_argument("--baseline", default=None, help="training run folder of its baseline (tracegrad: false)")
    ap.add_argument("--data", nargs="+", required=True, help="the data folders it was trained on")
    ap.add_argument("--heldout", nargs="*", default=[], help="data folders of structure types never trained on")
    args = ap.parse_args()

    dest = HERE / args.name
    run, best = Path(args.run), Path(args.run) / "checkpoints" / "best"
    evaluation = dest / "evaluation"
    evaluation.mkdir(parents=True, exist_ok=True)
    # Weights and config are copied as they are; only the card's metadata gains the model's name.
    shutil.copy2(best / "model.safetensors", dest / "model.safetensors")
    model_json = json.loads((best / "model.json").read_text())
    model_json["metadata"]["name"] = args.name
    domain = model_json["metadata"].setdefault("domain", {})
    if "fermi_level_ev" not in domain:  # runs trained before training_domain recorded it
        from tracegrad_ase.datafiles import load_h5
        from tracegrad_ase.model.train import training_domain

        names = set(json.loads((run / "split.json").read_text())["train"])
        files = [f for d in args.data for f in sorted((Path(d) / "structures").glob("*.h5")) if f.name in names]
        fermi = training_domain([load_h5(f) for f in files]).get("fermi_level_ev")
        if fermi is not None:
            domain["fermi_level_ev"] = fermi
    (dest / "model.json").write_text(json.dumps(model_json, indent=2))

    card = yaml.safe_load((dest / "card.in.yaml").read_text())
    cfg = model_json["config"]
    card["model"] = {"elements": cfg["elements"], "basis": cfg["basis"]["name"], "pseudo": cfg["basis"].get("pseudo"),
                     "cutoff_angstrom": cfg["cutoff"], "tracegrad": cfg["tracegrad"], "layers": cfg["num_layers"],
                     "muls": cfg["muls"], "dtype": model_json["dtype"],
                     "weights_bytes": (dest / "model.safetensors").stat().st_size}
    card["training"] = {**card.get("training", {}), **_training(run)}
    card["test"] = {"model": _figures(_evaluate(best, args.data, "test", evaluation / "test.json",
                                                 evaluation / "parity_test.png"))}
    if args.baseline:
        bbest = Path(args.baseline) / "checkpoints" / "best"
        card["test"]["baseline"] = _figures(_evaluate(bbest, args.data, "test", evaluation / "test_baseline.json"))
        card["training"]["baseline"] = _training(Path(args.baseline))
        m, b = card["test"]["model"].get("mae_mev"), card["test"]["baseline"].get("mae_mev")
        if m and b:
            card["test"]["ratio_model_over_baseline"] = round(m / b, 3)
    for folder in args.heldout:
        tag = Path(folder).name
        card.setdefault("heldout", {})[tag] = {"model": _figures(_evaluate(best, [folder], "all",
                                                                           evaluation / f"{tag}.json"))}
        if args.baseline:
            card["heldout"][tag]["baseline"] = _figures(_evaluate(
                Path(args.baseline) / "checkpoints" / "best", [folder], "all", evaluation / f"{tag}_baseline.json"))
    card["evaluate_command"] = (f"tracegrad evaluate {best} {' '.join(args.data)} --split test "
                                f"--json test.json --parity parity.png")
    (dest / "card.yaml").write_text("# Written by calculators/ship_model.py from the evaluation/ JSON files.\n"
                                    + yaml.safe_dump(card, sort_keys=False, allow_unicode=True, width=110))
    print(yaml.safe_dump({"test": card["test"], "heldout": card.get("heldout", {})}, sort_keys=False))
    print(f"-> {dest}")


if __name__ == "__main__":
    main()
