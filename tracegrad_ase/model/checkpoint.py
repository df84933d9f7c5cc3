"""Model files: a folder with ``model.safetensors`` (weights) and ``model.json`` (format, config, metadata).

Training checkpoints add ``state.json`` (epoch, best validation loss, history) and the optimizer, scheduler and
RNG state as ``trainer.safetensors`` (tensors) with ``trainer.json`` (everything else): no pickle, so reading a
checkpoint never runs code. ``trainer.pt`` of older checkpoints is still read, with ``weights_only=True`` and
only on torch >= 2.6 (older torch can be made to run code by such a file).

Folders are written through :mod:`tracegrad_ase.atomic` (a temporary folder renamed into place, ``model.json``
written last); a kill at any moment leaves the previous or the new folder complete, possibly as ``.NAME.old``
between the two renames of a swap, which readers fall back on and the next write renames back. Anything else is
refused with a clear error.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from ..core.dtypes import dtype_names
from ..io.atomic import atomic_folder, old_folder, recover_folder
from ..core.errors import DataFormatError
from .network import ModelConfig, TraceGradNet, build_model

FORMAT = "tracegrad-ase/model"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CARD = "model.json"
STATE = "state.json"
TRAINER_TENSORS = "trainer.safetensors"
TRAINER_JSON = "trainer.json"
TRAINER = "trainer.pt"  # older checkpoints: a torch pickle
TRAINER_FORMAT = "tracegrad-ase/trainer-state"

_DTYPES = dtype_names()  # the one name -> dtype map (core.dtypes)


def save_model(model: TraceGradNet, folder: str | os.PathLike, metadata: dict[str, Any] | None = None,
               trainer_state: dict[str, Any] | None = None, state: dict[str, Any] | None = None) -> Path:
    """Write a model (and optionally the training state) to ``folder`` atomically."""
    from safetensors.torch import save_file

    folder = Path(folder)
    _check_replaceable(folder)
    dtype = next(model.parameters()).dtype
    card = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": model.config.to_dict(),
            "dtype": str(dtype).removeprefix("torch."), "metadata": metadata or {}}
    card_text = json.dumps(card, indent=2)  # fails here, before anything is written, on metadata JSON refuses
    with atomic_folder(folder, before_replace=_check_replaceable, complete=is_complete) as tmp:
        weights = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        save_file(weights, str(tmp / WEIGHTS), metadata={"format": FORMAT})
        if trainer_state is not None:
            _save_trainer_state(trainer_state, tmp)
        if state is not None:
            (tmp / STATE).write_text(json.dumps(state, indent=2))
        # Last: a folder with a card is complete (recovery and readers rely on it).
        (tmp / CARD).write_text(card_text)
    return folder


def is_complete(folder: str | os.PathLike) -> bool:
    """True for a model folder with its card and weights, and, for a training checkpoint, all of its state."""
    folder = Path(folder)
    if not ((folder / CARD).is_file() and (folder / WEIGHTS).is_file()):
        return False
    new_trainer = (folder / TRAINER_JSON).is_file() or (folder / TRAINER_TENSORS).is_file()
    if new_trainer and not ((folder / TRAINER_JSON).is_file() and (folder / TRAINER_TENSORS).is_file()):
        return False
    if new_trainer or (folder / TRAINER).is_file():
        return (folder / STATE).is_file()
    return True


def resolve_folder(folder: str | os.PathLike) -> Path:
    """``folder``, or the complete ``.NAME.old`` a kill between the two renames of a swap left in its place."""
    folder = Path(folder)
    old = old_folder(folder)
    if not os.path.lexists(folder) and old.is_dir() and is_complete(old):
        return old
    return folder


def recover_checkpoint(folder: str | os.PathLike) -> bool:
    """Rename a complete ``.NAME.old`` back to ``folder`` where a killed swap left it missing; True if done."""
    return recover_folder(folder, complete=is_complete)


def read_card(folder: str | os.PathLike) -> dict[str, Any]:
    """The ``model.json`` of a model folder, checked for format and version."""
    folder = resolve_folder(folder)
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


def weights_digest(folder: str | os.PathLike) -> str | None:
    """SHA-256 of a model folder's weights file: which model a results file speaks of, wherever it lay (None:
    no weights file)."""
    import hashlib

    weights = resolve_folder(folder) / WEIGHTS
    return hashlib.sha256(weights.read_bytes()).hexdigest() if weights.is_file() else None


def load_model(folder: str | os.PathLike, dtype: torch.dtype | None = None) -> TraceGradNet:
    """Rebuild a model from its folder; a corrupt or foreign file is a :class:`DataFormatError`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = resolve_folder(folder)
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
    folder = resolve_folder(folder)
    trainer = None
    if (folder / TRAINER).is_file():
        trainer = _load_legacy_trainer_state(folder)
    elif (folder / TRAINER_JSON).is_file() or (folder / TRAINER_TENSORS).is_file():
        trainer = _load_trainer_state(folder)
    return trainer, read_state(folder)


def read_state(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The training state of a checkpoint folder (``state.json``: epoch, best epoch and value, wall time, the
    training config), or None where it has none; no weights are read."""
    path = resolve_folder(folder) / STATE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise DataFormatError(f"{path}: unreadable ({exc})") from None


def stored_val_loss(folder: str | os.PathLike, key: str = "val_loss") -> float | None:
    """The validation loss ``key`` recorded in a model folder's metadata (training writes ``val_loss``, the
    loss that selects the best model, and ``val_loss_h``); None where the folder is missing, unreadable, or
    older than this record."""
    try:
        value = read_card(folder).get("metadata", {}).get(key)
    except DataFormatError:
        return None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _check_replaceable(folder: Path) -> None:
    if folder.is_dir() and not (folder / CARD).is_file() and any(folder.iterdir()):
        raise DataFormatError(f"{folder}: exists and is not a model folder; refusing to overwrite it")
    if os.path.lexists(folder) and not folder.is_dir():
        raise DataFormatError(f"{folder}: exists and is not a folder; refusing to overwrite it")


# -- trainer state without pickle ---------------------------------------------------------------------------------
def _unreadable_trainer(path: Path, folder: Path, why: str) -> DataFormatError:
    # torch's own message advises weights_only=False, i.e. running whatever the file holds: never repeat it.
    return DataFormatError(
        f"{path}: unreadable training state ({why}); the file is damaged or was not written by tracegrad-ase. "
        f"Delete {folder} and run again to restart training (checkpoints/best keeps the best model so far and "
        "is replaced only by a better one), or use checkpoints/best as the trained model")


def _encode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON-able form of a state dict: tensors go to ``tensors``; tuples and non-string keys are tagged."""
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = obj.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v, tensors) for v in obj]
    if isinstance(obj, dict):
        # Optimizer state is keyed by parameter index: JSON would turn int keys into strings.
        return {"__dict__": [[_encode(k, tensors), _encode(v, tensors)] for k, v in obj.items()]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} in a training checkpoint")


def _decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        if set(obj) == {"__tuple__"}:
            return tuple(_decode(v, tensors) for v in obj["__tuple__"])
        if set(obj) == {"__dict__"}:
            return {_decode(k, tensors): _decode(v, tensors) for k, v in obj["__dict__"]}
        raise ValueError(f"unexpected object with keys {sorted(obj)[:3]}")
    return obj


def _save_trainer_state(trainer_state: dict[str, Any], folder: Path) -> None:
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    tree = _encode(trainer_state, tensors)
    save_file(tensors, str(folder / TRAINER_TENSORS), metadata={"format": TRAINER_FORMAT})
    (folder / TRAINER_JSON).write_text(json.dumps({"format": TRAINER_FORMAT, "format_version": 1, "state": tree}))


def _load_trainer_state(folder: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    try:
        doc = json.loads((folder / TRAINER_JSON).read_text())
        if not isinstance(doc, dict) or doc.get("format") != TRAINER_FORMAT:
            raise ValueError("not a tracegrad-ase trainer state")
    except (OSError, ValueError) as exc:
        raise _unreadable_trainer(folder / TRAINER_JSON, folder, str(exc)) from None
    try:
        tensors = load_file(str(folder / TRAINER_TENSORS))
    except Exception as exc:  # SafetensorError, OSError, ...: the message names the problem, nothing to run
        raise _unreadable_trainer(folder / TRAINER_TENSORS, folder, f"{type(exc).__name__}: {exc}") from None
    try:
        state = _decode(doc["state"], tensors)
    except (KeyError, TypeError, ValueError) as exc:
        raise _unreadable_trainer(folder / TRAINER_JSON, folder, f"{type(exc).__name__}: {exc}") from None
    if not isinstance(state, dict):
        raise _unreadable_trainer(folder / TRAINER_JSON, folder, "not a mapping")
    return state


def _load_legacy_trainer_state(folder: Path) -> dict[str, Any]:
    path = folder / TRAINER
    major_minor = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2])
    if major_minor < (2, 6):
        # CVE-2025-32434: torch.load(weights_only=True) before 2.6 can still be made to run code.
        raise DataFormatError(
            f"{path}: a pickled training state of an older tracegrad-ase; torch {torch.__version__} cannot read it "
            f"safely (needs torch >= 2.6). Upgrade torch to resume this run, or delete {folder} to restart "
            "training (checkpoints/best is kept and replaced only by a better model)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors of many kinds; their text may advise weights_only=False
        raise _unreadable_trainer(path, folder, type(exc).__name__) from None
    if not isinstance(state, dict):
        raise _unreadable_trainer(path, folder, "not a mapping")
    return state
