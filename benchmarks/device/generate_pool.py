"""Ground truth for a recipe's structures on a machine with many cores and a fixed time, without Dask.

    python benchmarks/device/generate_pool.py RECIPE.yaml OUT_DIR --procs 11 --deadline-s 480 --reverse
    python benchmarks/device/generate_pool.py RECIPE.yaml OUT_DIR --procs 7 --threads 2   # large cells

Runs one PySCF process per structure (one thread each), newest-first with ``--reverse`` so that a forward
``tracegrad generate`` of the same recipe elsewhere meets it in the middle. Stops handing out work at the deadline,
kills what is still running, and leaves ``OUT_DIR/structures/{name}.h5`` for every finished structure: the same
files ``tracegrad generate`` writes, which it then skips (same geometry and settings) when they are copied into the
recipe's data set. Used for the GPU machine's spare cores (benchmarks/device/README.md), and on the VM when some
structures are needed first (``--first NAME ...``: a split's validation and test sets before its training set).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
from dataclasses import replace
from pathlib import Path


def _one(args) -> tuple[str, str | None, float]:
    atoms, settings, path = args
    from tracegrad_ase.engines.pyscf.scf import ground_truth
    from tracegrad_ase.io.h5 import save_h5

    t0 = time.perf_counter()
    try:
        save_h5(ground_truth(atoms, settings), path)
        return atoms.info["name"], None, time.perf_counter() - t0
    except Exception as exc:  # noqa: BLE001 - reported, the pool goes on
        return atoms.info["name"], f"{type(exc).__name__}: {exc}", time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe")
    ap.add_argument("out_dir")
    ap.add_argument("--procs", type=int, default=os.cpu_count())
    ap.add_argument("--threads", type=int, default=1,
                    help="BLAS/OpenMP threads per process (large cells: fewer processes, each finishing sooner)")
    ap.add_argument("--deadline-s", type=float, default=480.0)
    ap.add_argument("--reverse", action="store_true")
    ap.add_argument("--skip-dir", help="a data set whose finished structures (same geometry and settings) are skipped")
    ap.add_argument("--start", type=int, default=0,
                    help="skip the first START structures of the order (done elsewhere)")
    ap.add_argument("--first", nargs="*", default=[],
                    help="structure names computed before all others, in this order (e.g. a split's validation and "
                         "test sets, or the cheapest molecules first)")
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    from tracegrad_ase.datasets.generation import _reusable
    from tracegrad_ase.datasets.recipes import load_recipe, recipe_settings, recipe_structures

    t0 = time.perf_counter()
    recipe = load_recipe(args.recipe)
    settings = replace(recipe_settings(recipe), threads=args.threads)
    structures = recipe_structures(recipe)
    done = Path(args.skip_dir) / "structures" if args.skip_dir else None
    # The test tracegrad generate uses: a file counts only if it loads and was made from this geometry and settings.
    todo = [a for a in structures
            if done is None or not _reusable(done / f"{a.info['name']}.h5", a.info["name"], a, settings, False)]
    if args.reverse:
        todo = todo[::-1]
    todo = todo[args.start:]
    rank = {name: k for k, name in enumerate(args.first)}
    todo.sort(key=lambda a: rank.get(a.info["name"], len(rank)))  # stable: the rest keep their order
    out = Path(args.out_dir) / "structures"
    out.mkdir(parents=True, exist_ok=True)
    print(f"{len(todo)} of {len(structures)} structures to do, {args.procs} processes of {args.threads} threads",
          flush=True)
    n_ok, times = 0, []
    pool = mp.get_context("fork").Pool(args.procs, maxtasksperchild=20)
    jobs = ((a, settings, out / f"{a.info['name']}.h5") for a in todo)
    results = pool.imap_unordered(_one, jobs)
    try:
        while True:
            left = args.deadline_s - (time.perf_counter() - t0)
            if left <= 0:
                break
            try:
                name, err, dt = results.next(timeout=left)
            except (StopIteration, mp.TimeoutError):
                break
            if err:
                print(f"FAILED {name}: {err}", flush=True)  # save_h5 is atomic: a failure leaves no file
            else:
                n_ok += 1
                times.append(dt)
    finally:
        pool.terminate()  # unfinished structures stay undone; atomic writes leave no partial file behind
        pool.join()
    mean = sum(times) / len(times) if times else float("nan")
    print(f"{n_ok} structures in {time.perf_counter() - t0:.0f} s ({mean:.1f} s each on {args.threads} thread(s))",
          flush=True)


if __name__ == "__main__":
    main()
