"""Ship a trained model: copy its weights into calculators/NAME, evaluate it and its baseline, write the card.

calculators/NAME links to tracegrad_ase/shipped/NAME, the package data a wheel carries (tracegrad_ase.models).

    python calculators/ship_model.py molecules --run runs/ship/molecules --baseline runs/ship/molecules-baseline \\
        --data data/molecules-svp data/molecules-svp-extra
    python calculators/ship_model.py carbon --run runs/ship/carbon --baseline runs/ship/carbon-baseline \\
        --data data/carbon-dzvp/graphene data/carbon-dzvp/bilayer --heldout data/carbon-dzvp/heldout-aa
    python calculators/ship_model.py graphene-szv --add-heldout data/graphene-6x6-szv
    python calculators/ship_model.py carbon --refresh-words     # card.in.yaml's words and the learning curve only
    python calculators/ship_model.py graphene-szv --run runs/szv-v5d/m2 --selection runs/szv-v5d/m2/selection.json \\
        --data ... --heldout ... --committee ...

Every figure on the card comes from ``tracegrad evaluate`` JSON files written here (calculators/NAME/evaluation/)
and from the training runs' own state files; ``calculators/NAME/card.in.yaml`` holds the words (what the model
is for, how its data are made). The test split is the one the training run wrote (split.json). A card.in.yaml
``learning_curve: {key: KEY, figure: PNG}`` puts that curve's sizes, test figures, fitted slopes and the training-set
sizes the goals would need on the card, read from benchmarks/results/learning_curve.json (benchmarks/learning_curve.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tracegrad_ase.committee import COMMITTEE_DIR, member_folders

HERE = Path(__file__).resolve().parent
#: What benchmarks/learning_curve.py writes; a card's ``learning_curve`` names a key of it.
LEARNING_CURVES = HERE.parent / "benchmarks" / "results" / "learning_curve.json"
#: Beyond this many training structures an extrapolated need says only that the fitted slope is too flat.
FAR_BEYOND_REACH = 1e6


def _evaluate(model: Path, data: list[str], split: str, out: Path, parity: Path | None = None,
              members: list[Path] | None = None) -> dict:
    """``tracegrad evaluate``; ``split`` "test"/"all" with data folders, or "files" when ``data`` are .h5 files;
    ``members``: judge the committee's mean with these further members (``--ensemble``)."""
    cmd = [sys.executable, "-m", "tracegrad_ase.cli", "evaluate", str(model), *data, "--json", str(out), "--force"]
    if split != "files":
        cmd += ["--split", split]
    if parity is not None:
        cmd += ["--parity", str(parity)]
    if members:
        cmd += ["--ensemble", *map(str, members)]
    subprocess.run(cmd, check=True)
    return json.loads(out.read_text())


def _judged(model: Path, data: list[str], split: str, out: Path, members: list[Path],
            parity: Path | None = None) -> dict:
    """Figures of ``model`` (``"model"``, JSON ``out``) and, where it has further ``members``, of the committee's
    mean (``"ensemble"``, JSON ``<out stem>_ensemble.json``)."""
    judged = {"model": _figures(_evaluate(model, data, split, out, parity))}
    if members:
        judged["ensemble"] = _figures(_evaluate(model, data, split, out.with_name(f"{out.stem}_ensemble.json"),
                                                members=members))
    return judged


def _figures(res: dict) -> dict:
    keys = ("n_structures", "mae_mev", "gauge_mae_mev", "mae_onsite_mev", "gauge_mae_onsite_mev", "mae_offsite_mev",
            "gauge_mae_offsite_mev", "band_mae_ef_mev", "band_max_ef_mev", "band_mae_ef_full_mev", "ghost_levels",
            "ghost_levels_domain", "ghost_kpoints", "eig_mae_mev", "eig_near_edges_mae_mev", "eig_occupied_mae_mev",
            "homo_lumo_gap_error_mev", "homo_lumo_gap_error_full_mev", "mae_by_degree_mev", "gauge_mae_by_degree_mev")
    return {k: res[k] for k in keys if res.get(k) is not None}


def _training(run: Path, shipped: Path | None = None) -> dict:
    """The run's facts for the card; ``shipped``: the checkpoint shipped (default: checkpoints/best)."""
    from tracegrad_ase.model.run_folder import best_checkpoint, last_checkpoint, split_file

    state = json.loads((last_checkpoint(run) / "state.json").read_text())
    card = json.loads(((shipped or best_checkpoint(run)) / "model.json").read_text())
    split = json.loads(split_file(run).read_text())
    cfg = state.get("train_config", {})
    out = {"epochs_run": state["epoch"], "best_epoch": card["metadata"].get("epoch", state["best_epoch"]),
           "wall_time_s": round(state.get("wall_time_s", state["history"][-1]["time_s"]), 1),
           "best_val_mae_mev": card["metadata"].get("val_mae_mev"),
           "split": {k: len(v) for k, v in split.items()}}
    if cfg.get("select_by", "loss") != "loss":  # how best was picked, and its figure
        out["selected_by"] = cfg["select_by"]
        out["best_val_band_mae_mev"] = card["metadata"].get("val_band_mae_mev")
    if cfg.get("init_from"):  # a fine-tuned model: which run's weights it started from
        out["init_from"] = Path(os.path.normpath(cfg["init_from"])).name  # the run folder's name
    return out


def _run_parts(data: list[str], split: Path) -> dict[str, list[Path]]:
    """The run's train / val / test files in ``data``, read as training read them: a name the data folders lack
    is an error, since the card's digests and domain must describe the files the model was trained on."""
    from tracegrad_ase.io.h5 import load_dataset
    from tracegrad_ase.model.train_config import fixed_split

    files = [f for d in data for f in load_dataset(d)]
    return dict(zip(("train", "val", "test"), fixed_split(files, str(split))))


def _complete_domain(model_json: dict, train_files: list[Path]) -> None:
    """Add what newer training runs record in the model's domain (Fermi level, spectral range, environment
    fingerprints) to older ones."""
    from tracegrad_ase.io.h5 import load_h5
    from tracegrad_ase.model.domain import training_domain

    domain = model_json["metadata"].setdefault("domain", {})
    keys = ("fermi_level_ev", "spectral_range_ev", "fingerprints")
    if all(k in domain for k in keys):
        return
    new = training_domain([load_h5(f) for f in train_files])
    for key in keys:
        if key not in domain and key in new:
            domain[key] = new[key]


def _record_digests(card: dict, parts: dict[str, list[Path]], heldout: list[str]) -> None:
    """Content digests of the files each part used, and of each held-out folder (``tracegrad digest`` checks a
    copy of the data against them)."""
    from tracegrad_ase.io.h5 import data_digest, load_dataset

    digests = {part: data_digest(files) for part, files in parts.items()}
    digests.update({f"heldout:{Path(f).name}": data_digest(load_dataset(f)) for f in heldout})
    card.setdefault("data", {})["digests"] = digests
    card["data"]["digest_command"] = "tracegrad digest DATA_FOLDERS... --split RUN/split.json  (held out: FOLDER)"


#: model.json metadata chosen for one set of weights by a calibration script (calculators/), which predictions use.
CALIBRATIONS = {"lindep": "calibrate_lindep.py", "scf_mixing": "calibrate_scf_mixing.py",
                "refine_mixing": "calibrate_refine_mixing.py"}


def _refuse_lost_calibrations(shipped: Path, new: Path, drop: bool) -> None:
    """Refuse to replace weights whose model.json holds a calibration (:data:`CALIBRATIONS`) with weights that lack
    it: the new model would silently be solved with the defaults (the molecules model's gap error is 3.2 eV at the
    default lindep against 0.7 at its calibrated 0.05). ``drop`` (--drop-calibrations) ships anyway."""
    if not shipped.is_file():
        return
    old = json.loads(shipped.read_text()).get("metadata", {})
    lost = [k for k in CALIBRATIONS if k in old and k not in json.loads(new.read_text()).get("metadata", {})]
    if lost and not drop:
        commands = "; ".join(f"python calculators/{CALIBRATIONS[k]} {new.parent} --data DATA... --split val"
                             for k in lost)
        raise SystemExit(f"the shipped weights were calibrated ({', '.join(f'{k} = {old[k]}' for k in lost)}) and "
                         f"{new.parent} is not: calibrate it first ({commands}), or give --drop-calibrations")
    for k in lost:
        print(f"note: {k} (calibrated for the previous weights) dropped: predictions use the default")


def _heldout_digests(heldout: list[str]) -> dict[str, list[str]]:
    """The held-out folders' structures by geometry (``io.h5.structure_index``), digested once per ship."""
    from tracegrad_ase.io.h5 import load_dataset, structure_index

    return structure_index([f for d in heldout for f in load_dataset(d)])


def _refuse_heldout_seen(seen: list[Path], held: dict[str, list[str]]) -> None:
    """Refuse to ship when a held-out structure (``held``: :func:`_heldout_digests`) was trained or validated on,
    under any name: its figures would not be held out."""
    from tracegrad_ase.io.h5 import structure_digest

    if pairs := sorted((h, f.name) for f in seen for h in held.get(structure_digest(f), [])):
        listed = ", ".join(f"{h} = {s}" for h, s in pairs[:5]) + (" ..." if len(pairs) > 5 else "")
        raise SystemExit(f"{len(pairs)} held-out structure(s) are also in the run's training or validation data "
                         f"(same geometry): {listed}; their figures would not be held out")


def _selected_checkpoint(run: Path, selection: str, held: dict[str, list[str]]) -> tuple[Path, dict]:
    """The checkpoint of ``run`` that ``calculators/select_checkpoint.py`` chose in ``selection``, and what the card
    says of the choice. Refused when the file judged another run, the checkpoint changed since (a resumed run may
    rewrite a snapshot), or a selection cell is also in a held-out set (its figures would then be chosen on)."""
    from tracegrad_ase.model.checkpoint import weights_digest
    from tracegrad_ase.model.run_folder import best_checkpoint

    sel = json.loads(Path(selection).read_text())
    if "selected" not in sel:
        raise SystemExit(f"{selection} names no chosen checkpoint: run calculators/select_checkpoint.py to the end")
    if Path(sel["run"]).resolve() != run.resolve():
        raise SystemExit(f"{selection} chose among the checkpoints of {sel['run']}, not of {run}")
    folder = best_checkpoint(run).parent / sel["selected"]
    row = next(r for r in sel["table"] if r["role"] == "candidate" and r["checkpoint"] == sel["selected"])
    if weights_digest(folder) != row["weights_sha256"]:
        raise SystemExit(f"{folder} changed since {selection} judged it: run calculators/select_checkpoint.py again")
    # by geometry where the selection recorded it (select_checkpoint.py since session 37), else by name
    seen, names = sel.get("structures") or {}, {n for ns in held.values() for n in ns}
    clash = sorted(n for n in sel["data"] if (seen[n] in held if n in seen else n in names))
    if clash:
        raise SystemExit(f"selection cells {clash} are also held out: a checkpoint chosen on them biases their figures")
    return folder, {
        "by": "E_F-aligned band MAE within ±2 eV on cells in neither the training split nor a held-out set "
              "(calculators/select_checkpoint.py)",
        "checkpoint": sel["selected"], "epoch": row["epoch"], "band_mae_ef_mev": round(row["band_mae_ef_mev"], 2),
        "cells": sel["data"], "cells_sha256": sel["data_digest"]["sha256"],
        "candidates": {r["checkpoint"]: round(r["band_mae_ef_mev"], 2)
                       for r in sel["table"] if r["role"] == "candidate"},
        # a reference is named as it was given (e.g. the shipped model this one replaces): its digest says which
        "references": {r["checkpoint"]: {"band_mae_ef_mev": round(r["band_mae_ef_mev"], 2),
                                         "weights_sha256": r["weights_sha256"]} for r in sel["table"]
                       if r["role"] == "reference"}}


def _redrawn_split(dest: Path, data: list[str]) -> dict[str, list[Path]]:
    """The training run's split, for models whose run folder is gone: the shipped split.json (a fine-tuned model's
    split is no draw from train.yaml), else drawn again from the shipped train.yaml's split and seed.
    split_dataset depends only on the sorted file names, so the split is drawn over every name the card's recipes
    make (whether generated yet or not); the test structures must all exist, the training ones found are returned
    (the card says how many of how many)."""
    from tracegrad_ase.datasets.recipes import load_recipe, recipe_structures
    from tracegrad_ase.io.h5 import load_dataset, split_dataset

    found = {f.name: f for d in data for f in load_dataset(d)}
    if (dest / "split.json").is_file():
        parts = json.loads((dest / "split.json").read_text())
    else:
        cfg = yaml.safe_load((dest / "train.yaml").read_text())
        recipes = (yaml.safe_load((dest / "card.in.yaml").read_text()).get("data") or {}).get("recipes") or []
        names = sorted({f"{a.info['name']}.h5" for r in recipes
                        for a in recipe_structures(load_recipe(HERE.parent / r))} or found)
        parts = dict(zip(("train", "val", "test"), split_dataset(names, cfg.get("split", [0.8, 0.1, 0.1]),
                                                                cfg.get("seed", 0))))
    missing = [n for n in parts["test"] if n not in found]
    if missing:
        raise SystemExit(f"test structures {missing} are not in {data}: generate them first")
    split = {k: [found[n] for n in v if n in found] for k, v in parts.items()}
    split["n_train_expected"] = len(parts["train"])
    return split


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name")
    ap.add_argument("--run", default=None, help="training run folder of the model to ship")
    ap.add_argument("--reevaluate", action="store_true",
                    help="no run: evaluate the shipped weights again (split redrawn from train.yaml)")
    ap.add_argument("--baseline", default=None, help="training run folder of its baseline (tracegrad: false)")
    ap.add_argument("--add-heldout", nargs="+", default=None, metavar="FOLDER",
                    help="no run: evaluate the shipped weights on these held-out folders only and add them to the "
                         "card, keeping its other figures (the card's words are refreshed from card.in.yaml)")
    ap.add_argument("--refresh-words", action="store_true",
                    help="no run, no evaluation: rewrite the card's words from card.in.yaml and its learning-curve "
                         "summary from benchmarks/results/learning_curve.json, keeping every figure")
    ap.add_argument("--data", nargs="+", default=None, help="the data folders it was trained on")
    ap.add_argument("--heldout", nargs="*", default=[], help="data folders of structure types never trained on")
    ap.add_argument("--selection", default=None, metavar="JSON",
                    help="with --run: ship the checkpoint calculators/select_checkpoint.py chose in JSON "
                         "instead of the run's checkpoints/best")
    ap.add_argument("--drop-calibrations", action="store_true",
                    help=f"ship weights without a calibration ({', '.join(CALIBRATIONS)}) the shipped ones carry")
    ap.add_argument("--committee", nargs="*", default=[],
                    help="training run folders of further committee members (other seeds): their best checkpoints "
                         "go to committee/<run name>/ (uncertainty=True in the calculator)")
    args = ap.parse_args()
    if bool(args.run) + bool(args.reevaluate) + bool(args.add_heldout) + args.refresh_words != 1:
        ap.error("give exactly one of --run, --reevaluate, --add-heldout and --refresh-words")
    if not (args.add_heldout or args.refresh_words) and not args.data:
        ap.error("--run and --reevaluate need --data")
    if args.selection and not args.run:
        ap.error("--selection needs --run")

    dest = HERE / args.name
    if args.add_heldout:
        _add_heldout(dest, args.name, args.add_heldout)
        return
    if args.refresh_words:
        _write_card(dest, _with_words(yaml.safe_load((dest / "card.yaml").read_text()), dest))
        print(f"-> {dest / 'card.yaml'}")
        return
    evaluation = dest / "evaluation"
    evaluation.mkdir(parents=True, exist_ok=True)
    if args.reevaluate:
        best = dest
        split = _redrawn_split(dest, args.data)
        model_json = json.loads((dest / "model.json").read_text())
        _complete_domain(model_json, split["train"])
        if len(split["train"]) < split["n_train_expected"]:
            print(f"note: the domain's spectral range comes from {len(split['train'])} of the "
                  f"{split['n_train_expected']} training structures (the others are not generated here)")
            model_json["metadata"]["domain"]["spectral_range_from"] = (
                f"{len(split['train'])} of {split['n_train_expected']} training structures")
        (dest / "model.json").write_text(json.dumps(model_json, indent=2))
        card = yaml.safe_load((dest / "card.yaml").read_text())
        # Figures of the old metrics would sit beside new ones; the baseline runs are not shipped, so their
        # figures go (git history keeps them) and every held-out set given is evaluated again.
        for key in ("test", "heldout", "evaluate_command"):
            card.pop(key, None)
        card.get("training", {}).pop("baseline", None)
        if args.committee:  # members trained later beside weights whose run folder is gone
            card["committee"] = _ship_committee(dest, args.name, [Path(r) for r in args.committee])
        _record_digests(card, {k: split[k] for k in ("train", "val", "test")}, args.heldout)
        test_args, test_split = [str(f) for f in split["test"]], "files"
        _reevaluated(card, dest, best, test_args, test_split, args)
        return
    from tracegrad_ase.model.run_folder import best_checkpoint, split_file

    run, best, selected = Path(args.run), best_checkpoint(args.run), None
    parts = _run_parts(args.data, split_file(run))
    held = _heldout_digests(args.heldout)
    _refuse_heldout_seen(parts["train"] + parts["val"], held)
    if args.selection:
        best, selected = _selected_checkpoint(run, args.selection, held)
    _refuse_lost_calibrations(dest / "model.json", best / "model.json", args.drop_calibrations)
    # Weights and config are copied as they are; only the card's metadata gains the model's name.
    shutil.copy2(best / "model.safetensors", dest / "model.safetensors")
    shutil.copy2(split_file(run), dest / "split.json")  # what --reevaluate tests on once the run folder is gone
    model_json = json.loads((best / "model.json").read_text())
    model_json["metadata"]["name"] = args.name
    _complete_domain(model_json, parts["train"])
    card = _with_words({}, dest)
    if card.get("excluded_environments"):  # trained on, measured wrong: refused (exclude_environments.py)
        from tracegrad_ase.model.domain import apply_exclusions

        apply_exclusions(model_json, card["excluded_environments"], parts["train"], root=HERE.parent)
    (dest / "model.json").write_text(json.dumps(model_json, indent=2))

    cfg = model_json["config"]
    card["model"] = {"elements": cfg["elements"], "basis": cfg["basis"]["name"], "pseudo": cfg["basis"].get("pseudo"),
                     "cutoff_angstrom": cfg["cutoff"], "tracegrad": cfg["tracegrad"], "layers": cfg["num_layers"],
                     "muls": cfg["muls"], "dtype": model_json["dtype"],
                     "weights_bytes": (dest / "model.safetensors").stat().st_size}
    card["training"] = {**card.get("training", {}), **_training(run, best)}
    if selected:
        card["training"]["selected"] = selected
    _record_digests(card, parts, args.heldout)
    if args.committee:
        card["committee"] = _ship_committee(dest, args.name, [Path(r) for r in args.committee])
    elif member_folders(dest):  # members of the weights this replaces: no committee of these weights
        shutil.rmtree(dest / COMMITTEE_DIR)
        print(f"note: removed {dest / COMMITTEE_DIR} (members of the previous weights; give --committee RUNS)")
    _reevaluated(card, dest, best, args.data, "test", args)


def learning_curve_summary(words: dict | None, results_path: Path | None = None) -> dict | None:
    """The card's ``learning_curve`` entry: card.in.yaml's words (``key`` in ``results_path``, by default
    :data:`LEARNING_CURVES`; ``figure``; an optional ``note``) with the curve's training-set sizes and what they
    count, its test figures per size, fitted log-log slopes and the training-set sizes its targets would need, all
    read from the benchmark's JSON (nothing typed by hand)."""
    if not words:
        return None
    results_path = results_path or LEARNING_CURVES
    words = {k: words[k] for k in ("key", "figure", "note") if k in words}
    if "key" not in words:
        raise SystemExit("card.in.yaml: learning_curve needs a key (a name in benchmarks/results/learning_curve.json)")
    curve = json.loads(results_path.read_text()).get(words["key"]) if results_path.is_file() else None
    if curve is None:
        raise SystemExit(f"card.in.yaml: learning curve {words['key']!r} is not in {results_path} "
                         "(run benchmarks/learning_curve.py)")
    rows = curve["rows"]
    metrics = list(curve["fits"])
    needed = {}
    for metric, ext in curve.get("extrapolation", {}).items():
        n, slope = ext.get("n_needed"), curve["fits"][metric]["slope"]
        needed[metric] = {"target": ext["target"], "training_set_size":
                          round(n) if n is not None and n <= FAR_BEYOND_REACH else
                          f"out of reach at the fitted slope {slope:.3f}"}
    return {**words, "config": curve["settings"]["config"],
            "training_set_sizes": [r["n_train"] for r in rows],
            # learning_curve.py --group-by counts whole molecules (all their conformers), else structures
            "size_unit": curve["settings"].get("group_by") or "structure",
            "test": {m: [round(r["test"][m], 3) for r in rows] for m in metrics},
            "slopes": {m: round(curve["fits"][m]["slope"], 3) for m in metrics},
            "fitted_from_size": curve.get("fit_min", 0), "needed": needed}


def _with_words(card: dict, dest: Path) -> dict:
    """``card`` with card.in.yaml's words (``data`` and ``training`` merged: they also hold computed keys) and its
    learning-curve summary."""
    for key, words in yaml.safe_load((dest / "card.in.yaml").read_text()).items():
        if key in ("data", "training") and isinstance(card.get(key), dict):
            card[key].update(words)
        else:
            card[key] = words
    if card.get("learning_curve"):
        card["learning_curve"] = learning_curve_summary(card["learning_curve"])
    return card


def _write_card(dest: Path, card: dict) -> None:
    (dest / "card.yaml").write_text("# Written by calculators/ship_model.py from the evaluation/ JSON files.\n"
                                    + yaml.safe_dump(card, sort_keys=False, allow_unicode=True, width=110))


def _add_heldout(dest: Path, name: str, folders: list[str]) -> None:
    """Evaluate the shipped weights on ``folders`` and add their figures and digests to the card, whose other
    figures stay: a new held-out set (one hours-long supercell) needs no new test run. The words of
    ``card.in.yaml`` replace the card's (``data`` and ``training`` are merged: they also hold computed keys)."""
    from tracegrad_ase.io.h5 import data_digest, load_dataset

    card = _with_words(yaml.safe_load((dest / "card.yaml").read_text()), dest)
    members = member_folders(dest)
    for folder in folders:
        tag = Path(folder).name
        card.setdefault("heldout", {})[tag] = {
            **_judged(dest, [folder], "all", dest / "evaluation" / f"{tag}.json", members),
            "command": f"python calculators/ship_model.py {name} --add-heldout {folder}"}
        card.setdefault("data", {}).setdefault("digests", {})[f"heldout:{tag}"] = data_digest(load_dataset(folder))
    _write_card(dest, card)
    print(yaml.safe_dump({"heldout": {Path(f).name: card["heldout"][Path(f).name] for f in folders}}, sort_keys=False))
    print(f"-> {dest}")


def _ship_committee(dest: Path, name: str, runs: list[Path]) -> dict:
    """Copy each member run's best weights and model file to committee/<run name>/ (replacing old members)."""
    from tracegrad_ase.model.run_folder import best_checkpoint

    root = dest / COMMITTEE_DIR
    shutil.rmtree(root, ignore_errors=True)
    members = {}
    for run in runs:
        best, out = best_checkpoint(run), root / run.name
        out.mkdir(parents=True)
        shutil.copy2(best / "model.safetensors", out / "model.safetensors")
        model_json = json.loads((best / "model.json").read_text())
        model_json["metadata"]["name"] = f"{name}/{COMMITTEE_DIR}/{run.name}"
        (out / "model.json").write_text(json.dumps(model_json, indent=2))
        members[run.name] = _training(run)
    return {"members": len(runs) + 1, "further_members": members,
            "use": "TraceGradCalculator(NAME, uncertainty=True): spread over members in results['eigenvalues_std'], "
                   "['fermi_level_std'], ['band_gap_std']; ensemble=True: the members' mean H (the card's ensemble "
                   "figures)"}


def _reevaluated(card: dict, dest: Path, best: Path, test_data: list[str], test_split: str, args) -> None:
    """Test and held-out figures of ``best`` (and the baseline run, if any; and the committee's mean where the model
    has members: ``ensemble``) into the card; writes card.yaml."""
    evaluation = dest / "evaluation"
    members = member_folders(dest)
    card["test"] = _judged(best, test_data, test_split, evaluation / "test.json", members,
                           evaluation / "parity_test.png")
    if args.baseline:
        from tracegrad_ase.model.run_folder import best_checkpoint

        bbest = best_checkpoint(args.baseline)
        card["test"]["baseline"] = _figures(_evaluate(bbest, args.data, "test", evaluation / "test_baseline.json"))
        card["training"]["baseline"] = _training(Path(args.baseline))
        m, b = card["test"]["model"].get("mae_mev"), card["test"]["baseline"].get("mae_mev")
        if m and b:
            card["test"]["ratio_model_over_baseline"] = round(m / b, 3)
    for folder in args.heldout:
        tag = Path(folder).name
        card.setdefault("heldout", {})[tag] = _judged(best, [folder], "all", evaluation / f"{tag}.json", members)
        if args.baseline:
            card["heldout"][tag]["baseline"] = _figures(_evaluate(
                best_checkpoint(args.baseline), [folder], "all", evaluation / f"{tag}_baseline.json"))
    card["evaluate_command"] = (
        f"python calculators/ship_model.py {args.name} --reevaluate --data {' '.join(args.data)} --heldout "
        f"{' '.join(args.heldout)}" if args.reevaluate else
        f"tracegrad evaluate {best} {' '.join(args.data)} --split test --json test.json --parity parity.png")
    _write_card(dest, card)
    print(yaml.safe_dump({"test": card["test"], "heldout": card.get("heldout", {})}, sort_keys=False))
    print(f"-> {dest}")


if __name__ == "__main__":
    main()
