"""Apply a shipped model card's ``excluded_environments`` to its model.json without shipping it again (issue 18:
the carbon model and diamond). ``ship_model.py`` applies them too, at shipping.

Each entry of ``card.in.yaml``'s ``excluded_environments`` names training structures the model predicts badly
(``training_files``: a file-name pattern; ``reference_data``: a data folder of such structures where these weights
did not train on them), in a user's words (``name``) and with the measured ``reason``. Their
environments leave the model's domain (its fingerprints are recomputed from the other training structures) and
are recorded apart, so the calculator refuses structures like them with that reason
(``model.domain.exclude_environments``). model.json is rewritten atomically.

    python calculators/exclude_environments.py carbon --split calculators/carbon/split.json \\
        --data data/carbon-dzvp/graphene data/carbon-dzvp/bilayer data/carbon-dzvp/diamond
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from tracegrad_ase.io.atomic import atomic_write_text
from tracegrad_ase.io.h5 import load_dataset
from tracegrad_ase.model.domain import apply_exclusions
from tracegrad_ase.model.train_config import fixed_split
from tracegrad_ase.models import MODEL_FILE, resolve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a shipped model's name or a model folder")
    ap.add_argument("--data", nargs="+", required=True, help="the data folders it was trained on")
    ap.add_argument("--split", required=True, type=Path, help="its split.json (the train list is used)")
    args = ap.parse_args()
    folder = resolve(args.model)
    specs = yaml.safe_load((folder / "card.in.yaml").read_text()).get("excluded_environments") or []
    if not specs:
        raise SystemExit(f"{folder}/card.in.yaml has no excluded_environments")
    # read as training read it: every name of the split must be one of the data's files
    train = fixed_split([f for d in args.data for f in load_dataset(d)], str(args.split))[0]
    model_json = json.loads((folder / MODEL_FILE).read_text())
    apply_exclusions(model_json, specs, train, root=Path(__file__).resolve().parents[1])
    atomic_write_text(folder / MODEL_FILE, json.dumps(model_json, indent=2))
    domain = model_json["metadata"]["domain"]
    for entry in domain["excluded"]:
        print(f"{folder / MODEL_FILE}: {entry['n_structures']} training structures excluded as {entry['name']!r}")
    print(f"domain fingerprints from the other {len(train) - sum(e['n_structures'] for e in domain['excluded'])}")


if __name__ == "__main__":
    main()
