"""Pack a device run's results into at most a few tar files that the device tool brings back.

    python benchmarks/device/pack.py OUT_DIR ROOT:PATTERN [ROOT:PATTERN ...] --part-mb 15 --total-mb 60 --parts 6

Files are taken in the order given (put what matters most first) into tar parts of at most ``--part-mb`` MB,
named results-00.tar, results-01.tar, ... (paths inside are relative to the current folder); what does not fit in
``--parts`` parts or ``--total-mb`` is listed as left out in OUT_DIR/manifest.json, never silently dropped.
"""

from __future__ import annotations

import argparse
import glob
import json
import tarfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("patterns", nargs="+", help="glob patterns relative to the current folder, in priority order")
    ap.add_argument("--part-mb", type=float, default=15.0)
    ap.add_argument("--total-mb", type=float, default=60.0)
    ap.add_argument("--parts", type=int, default=6)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    part_limit, total_limit = args.part_mb * 1e6, args.total_mb * 1e6
    files: list[Path] = []
    for pattern in args.patterns:
        files += [Path(p) for p in sorted(glob.glob(pattern, recursive=True)) if Path(p).is_file()]
    parts: list[list[str]] = [[]]
    sizes = [0.0]
    left_out: list[str] = []
    total = 0.0
    for f in dict.fromkeys(files):
        size = f.stat().st_size + 1024  # tar header and padding
        if total + size > total_limit or size > part_limit:
            left_out.append(str(f))
            continue
        if sizes[-1] + size > part_limit:
            if len(parts) == args.parts:
                left_out.append(str(f))
                continue
            parts.append([])
            sizes.append(0.0)
        parts[-1].append(str(f))
        sizes[-1] += size
        total += size
    for k, names in enumerate(parts):
        if names:
            with tarfile.open(out / f"results-{k:02d}.tar", "w") as tar:
                for name in names:
                    tar.add(name)
    manifest = {"parts": {f"results-{k:02d}.tar": len(n) for k, n in enumerate(parts) if n},
                "total_mb": total / 1e6, "left_out": left_out}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    print(f"packed {sum(len(p) for p in parts)} files in {len([p for p in parts if p])} parts "
          f"({total / 1e6:.1f} MB); {len(left_out)} left out")


if __name__ == "__main__":
    main()
