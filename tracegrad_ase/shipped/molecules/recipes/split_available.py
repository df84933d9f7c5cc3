"""Write the training split for the organic data generated so far (the data set grows across sessions).

    python calculators/molecules/recipes/split_available.py data/molecules-organic data/molecules-svp \
        data/molecules-svp-extra --out runs/ship/molecules-v3-split.json

organic_split.json splits all 884 organic structures by molecule (train / val / held out); a training run needs a
split of the files that exist (``split_file`` refuses names that are not in the data). This keeps each present
organic file in its part, puts every structure of the other folders (the ten molecules of the earlier model, none
of them held out) into training, splits organic_split.json's validation molecules into validation and test, and
never lets a held-out name in.

A model fine-tuned from an earlier one (``init_from``) must be tested on molecules that model never chose itself
by: ``--previous`` keeps every molecule of the earlier split's validation and test sets in its part, and
alternates only the new ones.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("organic", help="the organic data set folder (organic.yaml's out_dir)")
    ap.add_argument("extra", nargs="*", help="other data set folders, all for training")
    ap.add_argument("--split", default=str(Path(__file__).with_name("organic_split.json")))
    ap.add_argument("--out", required=True)
    ap.add_argument("--previous", help="an earlier split whose validation and test molecules stay where they are")
    args = ap.parse_args()
    full = json.loads(Path(args.split).read_text())
    present = {p.name for p in (Path(args.organic) / "structures").glob("*.h5")}
    held = set(full["heldout"])
    extra = sorted(p.name for d in args.extra for p in (Path(d) / "structures").glob("*.h5"))
    leaked = sorted(held & (present | set(extra)))
    if leaked:
        raise SystemExit(f"held-out structures in the training folders: {leaked[:5]}")
    # organic_split.json's validation molecules, alternately to validation (model selection) and test (the card's
    # test figures); a molecule's conformers ("<molecule>-<k>.h5") stay together.
    def molecule(name: str) -> str:
        return name.rsplit("-", 1)[0]

    before = json.loads(Path(args.previous).read_text()) if args.previous else {"val": [], "test": []}
    kept_val, kept_test = ({molecule(n) for n in before[part]} for part in ("val", "test"))
    val_molecules = sorted({molecule(n) for n in present & set(full["val"])} - kept_val - kept_test)
    test_molecules = set(val_molecules[1::2]) | kept_test
    val = sorted(n for n in present & set(full["val"]) if molecule(n) not in test_molecules)
    test = sorted(n for n in present & set(full["val"]) if molecule(n) in test_molecules)
    split = {"train": sorted(present & set(full["train"])) + extra, "val": val, "test": test}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(split, indent=1))
    print(f"{len(split['train'])} training ({len(extra)} from {len(args.extra)} other folders), "
          f"{len(split['val'])} validation, {len(split['test'])} test structures -> {args.out}")


if __name__ == "__main__":
    main()
