"""DOS time and peak memory versus k-mesh: the blocked Gaussian sum of ``electronic`` against the dense formula.

    python benchmarks/dos_memory.py                       # meshes 24 48 96 200 (n x n x 1)
    python benchmarks/dos_memory.py --meshes 24 48 --dense-max-mb 1000

The case is what ``tracegrad dos graphene.cif --model carbon --mesh NxNx1`` sums: 2 carbon atoms in gth-dzvp
(26 bands) on the full n x n mesh, the total DOS and 6 projections (atom x s/p/d), Gaussian width 0.1 eV on
``complete_dos``'s default grid (all levels ± 5 widths, step width/5). The levels are synthetic (26 dispersive
bands over 35 eV): time and memory depend on their number and the grid, not on their values. Peak memory is
numpy's, from ``tracemalloc``, above the inputs. The dense formula (one grid x levels matrix) also runs where
that matrix stays under ``--dense-max-mb``; above, its size is printed (the temporaries of the line shape take
about three times that). Prints a table and writes benchmarks/results/dos_memory.json.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from pathlib import Path

import numpy as np

from _results import machine, merge_results  # benchmarks/_results.py
from tracegrad_ase.electronic.dos import DOS_CHUNK, _broadening
from tracegrad_ase.electronic.dos import weighted_dos as _weighted_dos

NBANDS, NGROUPS, WIDTH = 26, 6, 0.1


def levels(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Energies (n², 26) of 26 bands dispersing over the mesh, uniform weights, and projections (6, n², 26)."""
    k = (np.arange(n) / n)[:, None]
    phase = (np.cos(2 * np.pi * k) + np.cos(2 * np.pi * k.T)).reshape(-1, 1)  # (n², 1)
    centres = np.linspace(-20.0, 12.0, NBANDS)[None, :]
    e = centres + (1.0 + 0.1 * np.arange(NBANDS))[None, :] * phase
    rng = np.random.default_rng(0)
    amp = rng.uniform(size=(NGROUPS, n * n, NBANDS))
    return e, np.full(n * n, 1.0 / (n * n)), amp / amp.sum(axis=0)


def default_grid(e: np.ndarray) -> np.ndarray:
    lo, hi = e.min() - 5 * WIDTH, e.max() + 5 * WIDTH
    return np.linspace(lo, hi, max(501, int(np.ceil((hi - lo) / (WIDTH / 5))) + 1))


def dense(e, wk, amp, grid):
    """The formula before issue #14: one (grid x all levels) matrix."""
    g = _broadening(grid[:, None] - e.ravel()[None, :], WIDTH, "gaussian")
    return (2.0 * amp * wk[:, None]).reshape(amp.shape[:-2] + (-1,)) @ g.T


def measure(fn, *args) -> tuple[np.ndarray, float, float]:
    """(result, seconds, peak MB above what was allocated before the call)."""
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn(*args)
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, seconds, peak / 2**20


def blocked(e, wk, amp, grid):
    total = _weighted_dos(e, wk, np.ones_like(e), grid, WIDTH, "gaussian")
    return total, _weighted_dos(e, wk, amp, grid, WIDTH, "gaussian")


def run(n: int, dense_max_mb: float) -> dict:
    e, wk, amp = levels(n)
    grid = default_grid(e)
    (total, proj), seconds, peak = measure(blocked, e, wk, amp, grid)
    row = {"mesh": f"{n}x{n}x1", "kpoints": n * n, "levels": e.size, "grid": len(grid), "time_s": seconds,
           "peak_mb": peak, "dense_matrix_mb": len(grid) * e.size * 8 / 2**20}
    if row["dense_matrix_mb"] <= dense_max_mb:
        def both(*args):
            return dense(e, wk, np.ones_like(e), grid), dense(*args)
        (t_ref, p_ref), row["dense_time_s"], row["dense_peak_mb"] = measure(both, e, wk, amp, grid)
        row["max_rel_diff"] = float(max(np.abs(total - t_ref).max() / t_ref.max(),
                                        np.abs(proj - p_ref).max() / p_ref.max()))
    # Both spins, normalized weights: the total integrates to 2 x bands (checks the blocked sum end to end).
    row["integral"] = float(np.trapezoid(total, grid))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--meshes", type=int, nargs="+", default=[24, 48, 96, 200])
    parser.add_argument("--dense-max-mb", type=float, default=300.0,
                        help="run the dense formula where its matrix is at most this (default %(default)s MB)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "dos_memory.json"))
    args = parser.parse_args()
    rows = []
    print(f"{'mesh':>10} {'k-points':>9} {'levels':>9} {'grid':>5} {'time s':>7} {'peak MB':>8} "
          f"{'dense matrix MB':>16} {'dense time s':>12} {'dense peak MB':>13} {'max rel diff':>12}")
    for n in args.meshes:
        r = run(n, args.dense_max_mb)
        rows.append(r)
        dense_cols = (f"{r['dense_time_s']:>12.2f} {r['dense_peak_mb']:>13.0f} {r['max_rel_diff']:>12.1e}"
                      if "dense_time_s" in r else f"{'-':>12} {'-':>13} {'-':>12}")
        print(f"{r['mesh']:>10} {r['kpoints']:>9} {r['levels']:>9} {r['grid']:>5} {r['time_s']:>7.2f} "
              f"{r['peak_mb']:>8.1f} {r['dense_matrix_mb']:>16.0f} {dense_cols}", flush=True)
    merge_results(args.out, f"2-atom gth-dzvp levels, total + {NGROUPS} projections, width {WIDTH} eV",
                  {"rows": rows, "dos_chunk": DOS_CHUNK, "machine": machine()})


if __name__ == "__main__":
    main()
