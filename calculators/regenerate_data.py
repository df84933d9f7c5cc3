"""Regenerate a shipped model's data sets from the recipes its card lists, then check them against its digests.

    python calculators/regenerate_data.py carbon                 # held-out sets first, then the training data
    python calculators/regenerate_data.py carbon --only heldout  # what evaluation needs
    python calculators/regenerate_data.py carbon --check         # no PySCF: the digests of what is there
    python calculators/regenerate_data.py carbon --also calculators/carbon/recipes/scale_bilayers_aa.yaml

The data sets live outside git (``data/``, the recipes' ``out_dir``); a machine that comes up without them (as in
session 48, when every file outside the checkout was gone) gets them back with this one command. Each recipe
resumes (``tracegrad generate``: finished structures are skipped), so the command can be killed and rerun. At the
end every held-out folder is compared with the card's ``data.digests`` (``tracegrad digest FOLDER --card MODEL``)
and the training folders, split by the model's ``split.json``, with its train/val/test digests: "the card's data,
bit for bit" when PySCF reproduced every number, "same structures" when only the geometries agree. Exit 1 when a
part differs from the card or a recipe had failures.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from tracegrad_ase.datasets.recipes import load_recipe, recipe_out_dir, run_recipe
from tracegrad_ase.models import card, card_path, resolve

def _recipes(info: dict, key: str) -> list[Path]:
    return [card_path(r) for r in (info.get("data") or {}).get(key) or []]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a shipped model's name or folder")
    ap.add_argument("--only", choices=["heldout", "train"], default=None, help="one kind of data set only")
    ap.add_argument("--check", action="store_true", help="generate nothing: compare what is there with the card")
    ap.add_argument("--workers", type=int, default=None, help="local workers (default: each recipe's own)")
    ap.add_argument("--also", nargs="+", default=[], metavar="RECIPE",
                    help="recipes beyond the card's, made after them (a run in progress trains on more data)")
    args = ap.parse_args()
    folder = resolve(args.model)
    info = card(args.model) or {}
    heldout, train = _recipes(info, "heldout_recipes"), _recipes(info, "recipes")
    order = {"heldout": heldout, "train": train, None: heldout + train}[args.only] + [Path(r) for r in args.also]
    failed = 0
    if not args.check:
        for recipe in order:
            print(f"== {recipe.name}", flush=True)
            report = run_recipe(recipe, n_workers=args.workers)
            failed += len(report.failed)
    code = 0
    for recipe in heldout if args.only != "train" else []:
        out = recipe_out_dir(load_recipe(recipe))
        if out.is_dir():
            code |= subprocess.call(["tracegrad", "digest", str(out), "--card", str(folder)])
    folders = [str(out) for out in (recipe_out_dir(load_recipe(r)) for r in train) if out.is_dir()]
    if folders and args.only != "heldout":
        code |= subprocess.call(["tracegrad", "digest", *folders, "--split", str(folder / "split.json"),
                                 "--card", str(folder)])
    return 1 if failed or code else 0


if __name__ == "__main__":
    sys.exit(main())
