"""Write organic_valtest.extxyz: the frames of organic.extxyz that the shipped model's split.json holds out for
validation and test, so that a fresh checkout can regenerate the data every evaluation needs first.

    python calculators/molecules/recipes/build_valtest.py      # then: tracegrad generate .../organic_valtest.yaml

The split (``calculators/molecules/split.json``) names files; a frame's file is its info ``name`` + ``.h5``.
"""

from __future__ import annotations

import json
from pathlib import Path

from ase.io import read, write

HERE = Path(__file__).resolve().parent


def main() -> None:
    split = json.loads((HERE.parent / "split.json").read_text())
    wanted = {name.removesuffix(".h5") for part in ("val", "test") for name in split[part]}
    frames = [a for a in read(HERE / "organic.extxyz", index=":") if a.info.get("name") in wanted]
    missing = wanted - {a.info["name"] for a in frames}
    if missing:
        raise SystemExit(f"{len(missing)} validation/test structures are not in organic.extxyz: {sorted(missing)[:5]}")
    write(HERE / "organic_valtest.extxyz", frames, format="extxyz")
    print(f"{len(frames)} frames -> {HERE / 'organic_valtest.extxyz'}")


if __name__ == "__main__":
    main()
