"""Where a fine-tuning run starts: ``init_from`` (a training config key) names a trained model whose weights,
architecture, elements and basis a new run takes over, for data sets that grow across sessions. The model is
checked against the new data before any training step, so a mismatch is an error that names it, not a run that
silently learns something else."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..core.basis import OrbitalBasis
from ..core.errors import ConfigError, DataFormatError
from .checkpoint import load_model, resolve_folder
from .grow import grow_layers
from .network import TraceGradNet
from .run_folder import best_checkpoint


def initial_model(init_from: str | os.PathLike, settings: dict[str, Any], hams: dict[Path, Any],
                  dtype: torch.dtype) -> TraceGradNet:
    """The model named by ``init_from`` (a model folder, or a run folder's best checkpoint), checked to fit the data
    ``hams``: every element of the data known to it with the same orbitals, and no ``model`` setting (``settings``)
    that contradicts it. ``num_layers`` larger than the model's grows it (:func:`~.grow.grow_layers`): the same
    predictions to round-off, with new layers to train."""
    source = Path(init_from)
    folder = source if (resolve_folder(source) / "model.json").is_file() else best_checkpoint(source)
    if not (resolve_folder(folder) / "model.json").is_file():
        raise DataFormatError(f"init_from {source}: neither a model folder nor a run folder with checkpoints/best")
    model = load_model(folder, dtype)
    known = OrbitalBasis.from_dict(model.config.basis)
    for p, h in hams.items():
        for e in sorted(set(h.atoms.get_chemical_symbols())):
            if e not in model.config.elements:
                raise DataFormatError(f"{p}: element {e} is unknown to the init_from model {folder} "
                                      f"(it has {model.config.elements}); train a new model instead")
            if h.basis.name != known.name or h.basis.shells_of(e) != known.shells_of(e):
                raise DataFormatError(f"{p}: the orbitals of {e} ({h.basis.name} {h.basis.shells_of(e)}) differ from "
                                      f"the init_from model's ({known.name} {known.shells_of(e)})")
    have = model.config.to_dict()
    clash = {k: (have.get(k), v) for k, v in settings.items() if k != "num_layers" and have.get(k) != v}
    if clash:
        detail = "; ".join(f"{k}: {a!r} in the model, {b!r} here" for k, (a, b) in clash.items())
        raise ConfigError(f"init_from keeps its model's settings (but num_layers, which may grow), and 'model' "
                          f"contradicts them ({detail}); drop those keys or train a new model")
    deeper = settings.get("num_layers", have["num_layers"])
    return model if deeper == have["num_layers"] else grow_layers(model, deeper)  # a ConfigError if it shrinks
