"""The registry of shipped models: which exist, where their files are, what their cards say.

Shipped models are package data (``tracegrad_ase/shipped/NAME/``: weights ``model.safetensors``, ``model.json``,
the evaluated ``card.yaml`` and the words it is made from, data recipes, training configs, evaluation JSON), so
a wheel carries them. In a source checkout ``calculators/NAME`` links to the same folder, so the paths written
on the cards and in the README (``calculators/NAME/...``) keep working there.

Two files are called "card": ``model.json`` is the *model file* (config, dtype, metadata incl. the training
domain; :func:`model_file`); ``card.yaml`` is the *model card* (what the model is for, its test figures;
:func:`card`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .core.errors import ModelNotFoundError

__all__ = ["SHIPPED_MODELS", "card", "card_path", "folders", "model_file", "names", "resolve"]

#: Where the shipped models live (inside the installed package).
SHIPPED_MODELS = Path(__file__).resolve().parent / "shipped"

#: The prefix of paths written on cards and in configs: the source checkout's link to :data:`SHIPPED_MODELS`.
CHECKOUT_PREFIX = "calculators"

#: The model file in each folder (config and metadata); ``card.yaml`` is the card.
MODEL_FILE = "model.json"
CARD_FILE = "card.yaml"


def folders() -> list[Path]:
    """Folders of the shipped models (those with a ``model.json``), by name."""
    root = SHIPPED_MODELS
    return sorted(d for d in root.iterdir() if (d / MODEL_FILE).is_file()) if root.is_dir() else []


def names() -> list[str]:
    """Names of the shipped models."""
    return [d.name for d in folders()]


def resolve(name_or_path: str | os.PathLike) -> Path:
    """A model folder from a path, or the name of a shipped model; :class:`ModelNotFoundError` otherwise."""
    p = Path(name_or_path)
    if p.is_dir():
        return p
    shipped = SHIPPED_MODELS / str(name_or_path)
    if shipped.is_dir():
        return shipped
    available = names()
    raise ModelNotFoundError(f"no model folder {str(name_or_path)!r}, and no shipped model of that name "
                             f"(shipped: {', '.join(available) or 'none yet'})")


def model_file(name_or_path: str | os.PathLike) -> dict[str, Any]:
    """The parsed ``model.json`` of a model folder or shipped model."""
    return json.loads((resolve(name_or_path) / MODEL_FILE).read_text())


def card(name_or_path: str | os.PathLike) -> dict[str, Any] | None:
    """The parsed ``card.yaml`` of a model (None without one)."""
    import yaml

    path = resolve(name_or_path) / CARD_FILE
    return yaml.safe_load(path.read_text()) if path.is_file() else None


def card_path(written: str | os.PathLike) -> Path:
    """A path as a card writes it (``calculators/NAME/recipes/x.yaml``, from the checkout's root) as a file of
    the installed package, so it resolves without a checkout too."""
    parts = Path(written).parts
    if parts and parts[0] == CHECKOUT_PREFIX:
        return SHIPPED_MODELS.joinpath(*parts[1:])
    return Path(written)
