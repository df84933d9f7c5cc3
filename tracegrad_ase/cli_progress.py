"""``tracegrad progress RUN``: where a training run stands, read from its folder while it trains or after.

A run that goes on over sessions is judged by its validation figures per epoch, its best epoch and what will stop
it (the time budget, early stopping, the smallest learning rate); this prints them from ``log.jsonl`` and the last
checkpoint's ``state.json``, and with ``--plot`` draws the validation errors and the learning rate against the
epoch. It reads the files only: a running ``tracegrad train`` is not disturbed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from .cli_support import _check_outputs, _table_cell
from .core.errors import InputNotFoundError

__all__ = ["add_progress_command", "cmd_progress", "plot_progress", "progress_lines"]


def add_progress_command(sub: Any, force_option: Any) -> None:
    """The ``progress`` sub-command on the ``tracegrad`` parser's ``sub``."""
    p = sub.add_parser("progress", help="where a training run stands: validation errors per epoch, best epoch, "
                       "what stops it", description="Reads RUN/log.jsonl and RUN/checkpoints/last/state.json (the "
                       "run folder, `out` in the training YAML); safe while the run trains.")
    p.add_argument("run", help="training run folder")
    p.add_argument("--last", type=int, default=10, metavar="N", help="epochs in the table (default: %(default)s)")
    p.add_argument("--plot", default=None, metavar="PNG",
                   help="validation MAE, validation band MAE and learning rate against the epoch")
    force_option(p)
    p.set_defaults(func=cmd_progress)


def progress_lines(records: Sequence[dict[str, Any]], state: dict[str, Any] | None, last: int = 10) -> list[str]:
    """A table of the last ``last`` epoch records and the run's standing: epochs and hours against its budget,
    the best epoch by the run's own selection, epochs since it and the learning rate against their limits."""
    cfg = (state or {}).get("train_config") or {}
    lines = [f"{'epoch':>6} {'train L_H':>10} {'val MAE meV':>12} {'val band meV':>13} {'lr':>9} {'hours':>7}"]
    best = (state or {}).get("best_epoch")
    for r in records[-last:] if last > 0 else []:
        mark = "  <- best" if r.get("epoch") == best else ""
        row_hours = r["time_s"] / 3600 if r.get("time_s") is not None else None
        lines.append(f"{r['epoch']:>6} {_table_cell(r.get('train_loss_h'), '10.4g')} "
                     f"{_table_cell(r.get('val_mae_mev'), '12.2f')} {_table_cell(r.get('val_band_mae_mev'), '13.1f')} "
                     f"{_table_cell(r.get('lr'), '9.2e')} {_table_cell(row_hours, '7.2f')}{mark}")
    latest = records[-1]
    budget = cfg.get("max_time_s")
    hours = latest.get("time_s", 0.0) / 3600
    pace = _seconds_per_epoch(records[-last - 1:] if last > 0 else records[-2:])
    left = (f": ~{(budget - latest['time_s']) / pace:.0f} more epochs at the table's {pace:.0f} s per epoch"
            if budget and pace and latest.get("time_s") is not None and budget > latest["time_s"] else "")
    lines.append(f"{latest['epoch']} of at most {cfg.get('epochs', '?')} epochs; {hours:.2f} h of training"
                 + (f" (max_time_s {budget / 3600:.1f} h{left})" if budget else ""))
    if best is not None:
        value = (f"validation band MAE {state['best_val']:.1f} meV" if cfg.get("select_by") == "band"
                 else f"validation loss {state['best_val']:.4g}")
        stop = cfg.get("early_stopping")
        lines.append(f"best: epoch {best}, {value}; {latest['epoch'] - best} epochs since"
                     + (f" (early stopping after {stop})" if stop else ""))
    if latest.get("lr") is not None and cfg.get("min_lr") is not None:
        lines.append(f"learning rate {latest['lr']:.2e}: times {cfg.get('lr_factor')} after {cfg.get('lr_patience')} "
                     f"epochs without a lower validation loss; the run stops below {cfg['min_lr']:.0e}")
    return lines


def _seconds_per_epoch(records: Sequence[dict[str, Any]]) -> float | None:
    """Training seconds per epoch between the first and last of ``records`` (None with fewer than two); a resumed
    run's wall time continues across sessions, so the pace is that of training, not of the calendar."""
    timed = [r for r in records if r.get("time_s") is not None]
    if len(timed) < 2 or timed[-1]["epoch"] <= timed[0]["epoch"]:
        return None
    return (timed[-1]["time_s"] - timed[0]["time_s"]) / (timed[-1]["epoch"] - timed[0]["epoch"])


def plot_progress(records: Sequence[dict[str, Any]], best_epoch: int | None, out: str | Path, title: str = "") -> None:
    """Validation MAE and band MAE (log scale) and the learning rate against the epoch, the best epoch marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in records]
    fig, (ax, ax_lr) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True, height_ratios=[3, 1])
    for key, label in (("val_mae_mev", "validation MAE (gauge, meV)"),
                       ("val_band_mae_mev", "validation band MAE near E_F (meV)")):
        pts = [(e, r[key]) for e, r in zip(epochs, records) if r.get(key) is not None]
        if pts:
            ax.plot(*zip(*pts), marker=".", label=label)
    if best_epoch is not None:
        ax.axvline(best_epoch, color="grey", ls="--", lw=1, label=f"best epoch {best_epoch}")
    ax.set_yscale("log")
    ax.set_ylabel("meV")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    ax.set_title(title)
    ax_lr.plot(epochs, [r.get("lr") for r in records], drawstyle="steps-post", color="k")
    ax_lr.set_yscale("log")
    ax_lr.set_ylabel("lr")
    ax_lr.set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def cmd_progress(args) -> int:
    from .model.checkpoint import read_state
    from .model.run_folder import last_checkpoint, log_file, read_log

    run = Path(args.run)
    if not run.is_dir():
        raise InputNotFoundError(f"{run}: no such training run folder (the `out` of a training YAML)")
    _check_outputs(args, [(args.plot, "file")])
    records = read_log(run)
    if not records:
        raise InputNotFoundError(f"{run}: no finished epoch yet ({log_file(run).name} is missing or empty)")
    state = read_state(last_checkpoint(run))  # None before the first checkpoint; a swap's .last.old meanwhile
    print(f"{run}:")
    print("\n".join(progress_lines(records, state, args.last)))
    if args.plot:
        plot_progress(records, (state or {}).get("best_epoch"), args.plot, title=run.name)
        print(f"-> {args.plot}")
    return 0
