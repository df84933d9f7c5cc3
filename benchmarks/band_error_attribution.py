"""Which blocks make a model's band error? (issue 13: block MAE is not what users feel)

For each structure, the model's H(R) is compared with the truth (moved to the prediction's energy zero, H + c·S
with the least-squares c, as every gauge figure is), and the E_F-aligned band MAE within ±2 eV is measured on
the evaluation mesh, as `tracegrad evaluate` measures it, for Hamiltonians that mix the two by group of blocks:

- ``alone``: the truth with only this group's blocks predicted: the band error this group's block errors cause;
- ``fixed``: the prediction with this group's blocks replaced by the truth: what is left once the group is exact.

Groups: on-site blocks, off-site pairs by distance shell, and, where a structure has layers (pairs more than 1 Å
apart along a non-periodic direction), the interlayer pairs. The errors of groups do not add (bands respond to
all blocks at once), but the group whose ``alone`` error is near the whole error, or whose ``fixed`` error is
far below it, is where training data or capacity should go. Prints a table, merges the figures into
benchmarks/results/band_error_attribution.json under ``--label`` and draws them (PNG beside it).

    python benchmarks/band_error_attribution.py calculators/carbon data/carbon-dzvp/heldout-aa --label "carbon 0.8 AA"
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from _results import machine, merge_results
from tracegrad_ase.core.hamiltonian import RealSpaceHamiltonian, gauge_shift
from tracegrad_ase.electronic.filling import electron_count
from tracegrad_ase.electronic.solve import model_lindep
from tracegrad_ase.electronic.spectrum import band_errors, evaluation_mesh, levels
from tracegrad_ase.io.h5 import load_dataset, load_h5
from tracegrad_ase.model.inference import _model_graph
from tracegrad_ase.model.committee_mean import mean_padded
from tracegrad_ase.predict import load

OUT = Path(__file__).parent / "results" / "band_error_attribution.json"
#: Distance shells (Å) of the off-site groups: first neighbours of sp2/sp3 carbon, the next two shells, the
#: interlayer distance of graphite, then the long tail the cutoff reaches.
SHELLS = (0.0, 2.0, 3.0, 4.0, 5.0, 7.0, np.inf)
INTERLAYER_ANGSTROM = 1.0


def _groups(ham: RealSpaceHamiltonian) -> dict[str, np.ndarray]:
    """Group name -> (E,) bool over the structure's edges."""
    atoms = ham.atoms
    shift = ham.edges[:, :3] @ atoms.cell.array
    i, j = ham.edges[:, 3], ham.edges[:, 4]
    vec = atoms.positions[j] + shift - atoms.positions[i]
    dist = np.linalg.norm(vec, axis=1)
    onsite = (i == j) & np.all(ham.edges[:, :3] == 0, axis=1)
    groups = {"on-site": onsite}
    for lo, hi in zip(SHELLS[:-1], SHELLS[1:]):
        sel = ~onsite & (dist >= lo) & (dist < hi)
        if sel.any():
            groups[f"{lo:g}-{hi:g} Å" if np.isfinite(hi) else f">{lo:g} Å"] = sel
    open_axes = [a for a in range(3) if not atoms.pbc[a]]
    if open_axes:  # layers stack along a non-periodic direction (the cell's axis: vacuum is along it)
        across = np.abs(vec[:, open_axes]).max(axis=1) > INTERLAYER_ANGSTROM
        if across.any():
            groups["interlayer"] = across
    return groups


def _with_blocks(ham: RealSpaceHamiltonian, blocks: list[np.ndarray]) -> RealSpaceHamiltonian:
    return RealSpaceHamiltonian(atoms=ham.atoms, basis=ham.basis, edges=ham.edges, hamiltonian=blocks,
                                overlap=ham.overlap, meta={})


def _mixed(base: list[np.ndarray], other: list[np.ndarray], sel: np.ndarray) -> list[np.ndarray]:
    """``base`` with the blocks of the edges in ``sel`` taken from ``other``."""
    return [o if s else b for b, o, s in zip(base, other, sel)]


def attribute(model, path: Path) -> dict:
    """The whole band error of one structure and each group's ``alone``/``fixed`` errors (meV, pooled levels)."""
    sub, graph = _model_graph(model, load_h5(path))
    padded = mean_padded([model], graph)
    raw = graph.target.detach().cpu().double().numpy()
    overlap = graph.overlap.detach().cpu().double().numpy() * graph.mask.cpu().numpy()
    c = gauge_shift([padded], [raw], [overlap])
    pred = model.layout.unpad_blocks(padded, sub.atoms.numbers, sub.edges[:, 3], sub.edges[:, 4])
    true = [h + c * s for h, s in zip(sub.hamiltonian, sub.overlap)]
    lindep = model_lindep(getattr(model, "model_file", None))
    mesh = evaluation_mesh(sub.atoms.cell[:], sub.atoms.pbc)
    nelec = electron_count(sub)
    e_true = levels(_with_blocks(sub, true), mesh, lindep)

    def error(blocks: list[np.ndarray]) -> tuple[float, int]:
        b = band_errors(e_true, levels(_with_blocks(sub, blocks), mesh, lindep), None, nelec)
        return b["mae_mev"], b["n_levels"]

    whole, n = error(pred)
    row = {"name": path.stem, "n_atoms": len(sub.atoms), "n_levels": n, "whole_mev": whole, "groups": {}}
    for name, sel in _groups(sub).items():
        row["groups"][name] = {"n_edges": int(sel.sum()), "alone_mev": error(_mixed(true, pred, sel))[0],
                               "fixed_mev": error(_mixed(pred, true, sel))[0]}
    return row


def _pooled(rows: list[dict]) -> dict:
    """Level-weighted means over structures: the whole error and each group's."""
    weights = np.array([r["n_levels"] for r in rows], float)
    out = {"whole_mev": float(np.average([r["whole_mev"] for r in rows], weights=weights)), "groups": {}}
    names = [g for r in rows for g in r["groups"]]
    for g in dict.fromkeys(names):
        have = [r for r in rows if g in r["groups"]]
        w = np.array([r["n_levels"] for r in have], float)
        out["groups"][g] = {k: float(np.average([r["groups"][g][k] for r in have], weights=w))
                            for k in ("alone_mev", "fixed_mev")}
        out["groups"][g]["n_structures"] = len(have)
    return out


def _figure(pooled: dict, label: str, png: Path) -> None:
    from tracegrad_ase.core.figures import pyplot

    plt = pyplot()
    names = list(pooled["groups"])
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(7.2, 3.6), dpi=150)
    ax.bar(x - 0.2, [pooled["groups"][g]["alone_mev"] for g in names], 0.4, label="only this group predicted")
    ax.bar(x + 0.2, [pooled["groups"][g]["fixed_mev"] for g in names], 0.4, label="this group exact")
    ax.axhline(pooled["whole_mev"], color="0.3", ls="--", lw=0.8, label="whole prediction")
    ax.set_xticks(x, names, rotation=20, fontsize=8)
    ax.set_ylabel("E_F-aligned band MAE ±2 eV (meV)")
    ax.set_title(f"band error by block group: {label}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="model folder (model.json + model.safetensors), e.g. calculators/carbon")
    ap.add_argument("data", nargs="+", help="data set folders or .h5 files of crystals")
    ap.add_argument("--label", required=True, help="key in the results JSON (e.g. 'carbon 0.8 AA')")
    ap.add_argument("--json", type=Path, default=OUT)
    args = ap.parse_args()
    files = [f for d in args.data for f in ([Path(d)] if Path(d).is_file() else load_dataset(d))]
    model = load(args.model)
    rows = []
    for f in files:
        rows.append(attribute(model, f))
        r = rows[-1]
        print(f"{r['name']}: whole {r['whole_mev']:.1f} meV over {r['n_levels']} levels")
    pooled = _pooled(rows)
    print(f"\n{'group':>14s} {'alone':>8s} {'fixed':>8s}   (whole {pooled['whole_mev']:.1f} meV)")
    for g, v in pooled["groups"].items():
        print(f"{g:>14s} {v['alone_mev']:8.1f} {v['fixed_mev']:8.1f}")
    png = args.json.with_name(f"band_error_attribution_{args.label.replace(' ', '_')}.png")
    _figure(pooled, args.label, png)
    merge_results(args.json, args.label, {"model": str(args.model), "structures": rows, "pooled": pooled,
                                          "figure": png.name, "machine": machine()})


if __name__ == "__main__":
    main()
