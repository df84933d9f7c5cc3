"""Writing a training run's folder (:mod:`.run_folder` names its files): the epoch log, checkpoints/last with the
trainer's state, checkpoints/best and the snapshots; and mending the log when a run resumes."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..io.atomic import atomic_write_text
from .averaging import WeightAverage
from .checkpoint import save_model, stored_val_loss
from .network import TraceGradNet
from .run_folder import best_checkpoint, last_checkpoint, log_file, snapshot_checkpoint
from .train_config import TrainConfig

__all__ = ["save_epoch", "selected_on_disk", "truncate_log"]


def selected_on_disk(best: Path, cfg: TrainConfig) -> float | None:
    """The selection metric checkpoints/best holds (one written before ``val_select`` existed: its loss)."""
    value = stored_val_loss(best, "val_select")
    return stored_val_loss(best) if value is None and cfg.select_by == "loss" else value


def save_epoch(out: Path, model: TraceGradNet, record: dict, state: dict, val: dict, domain: dict, improved: bool,
               best_on_disk: float | None, optimizer, scheduler, ema: WeightAverage | None = None,
               snapshot: bool = False) -> float | None:
    """Log the epoch; save checkpoints/last (with trainer state), checkpoints/best if it improved on what that holds,
    checkpoints/epoch-NNNN if ``snapshot`` (validated weights: ``ema``'s average if on); returns best's metric."""
    with open(log_file(out), "a") as f:
        f.write(json.dumps(record) + "\n")
    meta = {"best_epoch": state["best_epoch"], "val_mae_mev": val["mae_mev"], "val_loss": val["loss"],
            "val_loss_h": val["loss_h"], "val_select": val["select"], "domain": domain}
    if "band_mae_mev" in val:
        meta["val_band_mae_mev"] = val["band_mae_mev"]
    validated = ema.average if ema else model
    if improved and (best_on_disk is None or val["select"] < best_on_disk):
        save_model(validated, best_checkpoint(out), metadata=meta)
        best_on_disk = val["select"]
    if snapshot:
        save_model(validated, snapshot_checkpoint(out, record["epoch"]), metadata={**meta, "epoch": record["epoch"]})
    save_model(model, last_checkpoint(out), metadata=meta, state=state, trainer_state={
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(), **({"ema": ema.state_dict()} if ema else {})})
    return best_on_disk


def truncate_log(path: Path, epochs: int) -> None:
    """Keep the log consistent with the checkpoint being resumed: drop lines of epochs it does not hold, and
    lines a kill cut short (they would also swallow the next line appended)."""
    if not path.exists():
        return
    text = path.read_text(errors="replace")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    kept = [ln for ln in lines if _log_epoch(ln) is not None and _log_epoch(ln) <= epochs]
    if len(kept) != len(lines) or not text.endswith("\n"):
        atomic_write_text(path, "".join(ln + "\n" for ln in kept))


def _log_epoch(line: str) -> int | None:
    """The epoch of a log line; None for a line that is not a complete record."""
    try:
        record = json.loads(line)
        return int(record.get("epoch", 0))
    except (ValueError, TypeError, AttributeError):
        return None
