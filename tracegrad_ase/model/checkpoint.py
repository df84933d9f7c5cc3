"""Model files: a folder with ``model.safetensors`` (weights) and ``model.json`` (format, config, metadata).

Training checkpoints add ``trainer.pt`` (optimizer/scheduler/RNG state, read with ``weights_only=True``) and
``state.json`` (epoch, best validation loss, history). Folders are written under a temporary name and renamed,
so a killed job leaves the previous checkpoint intact. Anything else is refused with a clear error.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from ..errors import DataFormatError
from .network import ModelConfig, TraceGradNet, build_model

FORMAT = "tracegrad-ase/model"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CARD = "model.json"
TRAINER = "trainer.pt"
STATE = "state.json"

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def save_model(model: TraceGradNet, folder: str | os.PathLike, metadata: dict[str, Any] | None = None,
               trainer_state: dict[str, Any] | None = None, state: dict[str, Any] | None = None) -> Path:
    """Write a model (and optionally the training state) to ``folder`` atomically."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        weights = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        save_file(weights, str(tmp / WEIGHTS), metadata={"format": FORMAT})
        dtype = next(model.parameters()).dtype
        card = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": model.config.to_dict(),
                "dtype": str(dtype).removeprefix("torch."), "metadata": metadata or {}}
        (tmp / CARD).write_text(json.dumps(card, indent=2))
        if trainer_state is not None:
            torch.save(trainer_state, tmp / TRAINER)
        if state is not None:
            (tmp / STATE).write_text(json.dumps(state, indent=2))
        _swap_into_place(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def read_card(folder: str | os.PathLike) -> dict[str, Any]:
    """The ``model.json`` of a model folder, checked for format and version."""
    folder = Path(folder)
    card_path = folder / CARD
    if not folder.is_dir() or not card_path.is_file():
        raise DataFormatError(f"{folder}: not a tracegrad-ase model folder (no {CARD})")
    try:
        card = json.loads(card_path.read_text())
    except (OSError, ValueError) as exc:
        raise DataFormatError(f"{card_path}: unreadable model card ({exc})") from None
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        raise DataFormatError(f"{card_path}: not a tracegrad-ase model (format {card.get('format') if isinstance(card, dict) else None!r})")
    if int(card.get("format_version", -1)) > FORMAT_VERSION:
        raise DataFormatError(f"{card_path}: model format version {card['format_version']} is newer than this package")
    return card


def load_model(folder: str | os.PathLike, dtype: torch.dtype | None = None) -> TraceGradNet:
    """Rebuild a model from its folder; a corrupt or foreign file is a :class:`DataFormatError`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    card = read_card(folder)
    try:
        config = ModelConfig.from_dict(card["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DataFormatError(f"{folder / CARD}: bad model config ({exc})") from None
    dtype = dtype or _DTYPES.get(card.get("dtype", "float32"), torch.float32)
    model = build_model(config, dtype)
    try:
        weights = load_file(str(folder / WEIGHTS))
    except (SafetensorError, OSError, FileNotFoundError) as exc:
        raise DataFormatError(f"{folder / WEIGHTS}: unreadable weights ({exc})") from None
    expected = model.state_dict()
    missing, unexpected = set(expected) - set(weights), set(weights) - set(expected)
    bad_shape = [k for k in set(expected) & set(weights) if expected[k].shape != weights[k].shape]
    if missing or unexpected or bad_shape:
        raise DataFormatError(f"{folder / WEIGHTS}: weights do not fit the model config (missing {sorted(missing)[:3]}, "
                              f"unexpected {sorted(unexpected)[:3]}, wrong shape {sorted(bad_shape)[:3]})")
    model.load_state_dict({k: v.to(dtype) if v.is_floating_point() else v for k, v in weights.items()})
    return model


def load_training_state(folder: str | os.PathLike) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(trainer_state, state) of a checkpoint folder; (None, None) where it has none."""
    folder = Path(folder)
    trainer = state = None
    if (folder / TRAINER).is_file():
        try:
            trainer = torch.load(folder / TRAINER, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle/zip errors of many kinds
            raise DataFormatError(f"{folder / TRAINER}: unreadable training state ({exc})") from None
    if (folder / STATE).is_file():
        try:
            state = json.loads((folder / STATE).read_text())
        except ValueError as exc:
            raise DataFormatError(f"{folder / STATE}: unreadable ({exc})") from None
    return trainer, state


def _swap_into_place(tmp: Path, folder: Path) -> None:
    if folder.exists() and not (folder / CARD).is_file() and any(folder.iterdir()):
        raise DataFormatError(f"{folder}: exists and is not a model folder; refusing to overwrite it")
    if not folder.exists():
        os.rename(tmp, folder)
        return
    old = folder.with_name(f".{folder.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    os.rename(folder, old)
    os.rename(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)
