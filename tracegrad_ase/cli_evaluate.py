"""``tracegrad evaluate MODEL DATA...``: a model's errors on data (block MAE raw and in the gauge, E_F-aligned band
errors, ghost levels) to JSON, optionally with a parity plot; with ``--ensemble`` the committee's mean is judged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .cli_support import _check_outputs, _table_cell
from .core.errors import InputNotFoundError, ParameterError

__all__ = ["add_evaluate_command", "cmd_evaluate", "per_structure_lines"]


def add_evaluate_command(sub: Any, force_option: Any) -> None:
    """The ``evaluate`` sub-command on the ``tracegrad`` parser's ``sub``."""
    ev = sub.add_parser("evaluate", help="errors of a model on data: MAE by block type and degree, eigenvalues",
                        description="Writes a JSON of the metrics (meV) and, with --parity, a parity plot.")
    ev.add_argument("model", help="model folder (model.json + model.safetensors)")
    ev.add_argument("data", nargs="+", help="data set folders or .h5 files")
    ev.add_argument("--split", choices=["all", "test", "val", "train"], default="all",
                    help="with a training run's split.json beside the model's run folder, evaluate that part")
    ev.add_argument("--json", default="evaluation.json", help="output JSON (default: %(default)s)")
    ev.add_argument("--parity", default=None, metavar="PNG",
                    help="parity plot of matrix elements, with the error histogram and the gauge MAE by neighbour "
                    "distance")
    ev.add_argument("--ghost-kpoints", type=int, default=1000, metavar="N",
                    help="random k-points per crystal on which ghost levels are counted (default: %(default)s)")
    ev.add_argument("--ensemble", nargs="*", default=None, metavar="MEMBER",
                    help="judge the committee's mean H (what the calculator's ensemble=True reports): the model with "
                    "these further member folders, or with its own committee/ members when none are named")
    ev.add_argument("--per-structure", action="store_true",
                    help="print a line per structure (gauge MAE, band MAE near E_F, gap error, ghost levels) "
                    "before the summary: one bad cell hides in a pooled MAE")
    force_option(ev)
    ev.set_defaults(func=cmd_evaluate)


def per_structure_lines(result: dict[str, Any]) -> list[str]:
    """A table of ``result["per_structure"]`` (``evaluate``'s answer), one line per structure, meV."""
    rows = result.get("per_structure", [])
    name_width = max([9] + [len(str(r["name"])) for r in rows])
    lines = [f"{'structure':<{name_width}}  {'gauge meV':>9}  {'band meV':>8}  {'aligned':>7}  {'gap meV':>7}  "
             f"{'ghosts':>6}"]
    for r in rows:
        lines.append(f"{r['name']:<{name_width}}  {_table_cell(r.get('gauge_mae_mev'), '9.2f')}  "
                     f"{_table_cell(r.get('band_mae_ef_mev'), '8.1f')}  {str(r.get('band_alignment') or '-'):>7}  "
                     f"{_table_cell(r.get('homo_lumo_gap_error_mev'), '7.1f')}  "
                     f"{_table_cell(r.get('ghost_levels'), '6.0f')}")
    return lines


def _members(args) -> list:
    """The further members' folders of ``--ensemble`` (none without it)."""
    if args.ensemble is None or args.ensemble:
        return args.ensemble or []
    from .committee import COMMITTEE_DIR, member_folders  # --ensemble alone: the model folder's own committee

    members = member_folders(args.model)
    if not members:
        raise InputNotFoundError(f"--ensemble without member folders needs {args.model}/{COMMITTEE_DIR}/<member>/ "
                                 "(model folders); name the members' folders after --ensemble instead")
    return members


def cmd_evaluate(args) -> int:
    from .io.h5 import load_dataset
    from .model.evaluate import evaluate_to_files

    paths = []
    for d in args.data:
        paths += [Path(d)] if Path(d).is_file() else load_dataset(d)
    if args.split != "all":
        split_file = Path(args.model).parent.parent / "split.json"
        if not split_file.is_file():
            raise InputNotFoundError(f"--split {args.split} needs {split_file} (written by tracegrad train)")
        names = set(json.loads(split_file.read_text())[args.split])
        paths = [p for p in paths if p.name in names]
    if not paths:
        raise ParameterError("no structures to evaluate")
    members = _members(args)
    _check_outputs(args, [(args.json, "file"), (args.parity, "file")], inputs=[args.model, *args.data, *members])
    res = evaluate_to_files(args.model, paths, args.json, parity_png=args.parity, ghost_kpoints=args.ghost_kpoints,
                            members=members)
    if args.per_structure:
        print("\n".join(per_structure_lines(res)))
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    print(f"{res['n_structures']} structures: H MAE {fmt(res['mae_mev'])} meV raw, {fmt(res['gauge_mae_mev'])} meV "
          f"gauge (on-site {fmt(res['gauge_mae_onsite_mev'])}, off-site {fmt(res['gauge_mae_offsite_mev'])}); "
          f"E_F-aligned band MAE within ±2 eV {fmt(res['band_mae_ef_mev'])} meV; "
          f"ghost levels {res['ghost_levels']} on {res['ghost_kpoints']} random k-points per structure"
          + (f" (committee mean of {1 + len(members)} models)" if members else "") + f" -> {args.json}")
    return 0
