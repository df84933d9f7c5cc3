"""The registry of shipped models: which exist, where their files are, what their cards say.

Shipped models are package data (``tracegrad_ase/shipped/NAME/``: weights ``model.safetensors``, ``model.json``,
the evaluated ``card.yaml`` and the words it is made from, data recipes, training configs, evaluation JSON), so
a wheel carries them. In a source checkout ``calculators/NAME`` links to the same folder, so the paths written
on the cards and in the README (``calculators/NAME/...``) keep working there.

Two files are called "card": ``model.json`` is the *model file* (config, dtype, metadata incl. the training
domain; :func:`model_file`); ``card.yaml`` is the *model card* (what the model is for, its test figures;
:func:`card`).

The conventional surface: :func:`available` (the names), :func:`info` (a model's elements, periodicity, basis,
summary and role in the default choice), :func:`card`, and :func:`choose`, the model picked for a structure when
none is named (``tracegrad bands|dos|predict`` without ``--model``)::

    from tracegrad_ase import models
    models.available()              # ['carbon', 'ethanol', 'graphene-szv', 'molecules']
    models.info("carbon")           # {'elements': ['C'], 'periodic': [True], 'basis': 'gth-dzvp', ...}
    models.choose(["C"], periodic=True)   # 'carbon'
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .core.errors import ModelNotFoundError

__all__ = ["DEFAULT_ROLE", "SHIPPED_MODELS", "available", "card", "card_path", "choose", "covers", "domain",
           "folders", "info", "model_file", "names", "resolve"]

#: Where the shipped models live (inside the installed package).
SHIPPED_MODELS = Path(__file__).resolve().parent / "shipped"

#: The prefix of paths written on cards and in configs: the source checkout's link to :data:`SHIPPED_MODELS`.
CHECKOUT_PREFIX = "calculators"

#: The model file in each folder (config and metadata); ``card.yaml`` is the card.
MODEL_FILE = "model.json"
CARD_FILE = "card.yaml"

#: Each shipped model's part in the choice made without a model name (:func:`choose`). ``"general"``: the model
#: for whatever its training domain covers, chosen over the others that cover it too (``carbon`` for carbon
#: crystals, ``molecules`` for H, C, N, O molecules); ``"special"``: chosen only where it is the one model that
#: covers the structure (``graphene-szv``, the minimal-basis model for large graphene cells, is asked for by name);
#: ``"never"``: only by name (``ethanol``, one molecule's model). A shipped model not listed here is ``"special"``.
DEFAULT_ROLE: dict[str, str] = {"carbon": "general", "molecules": "general", "graphene-szv": "special",
                                "ethanol": "never"}


def folders() -> list[Path]:
    """Folders of the shipped models (those with a ``model.json``), by name."""
    root = SHIPPED_MODELS
    return sorted(d for d in root.iterdir() if (d / MODEL_FILE).is_file()) if root.is_dir() else []


def names() -> list[str]:
    """Names of the shipped models."""
    return [d.name for d in folders()]


def available() -> list[str]:
    """Names of the shipped models, each usable wherever a model is asked for
    (``TraceGradCalculator(name)``, ``--model name``); :func:`info` and :func:`card` say more."""
    return names()


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


def info(name_or_path: str | os.PathLike) -> dict[str, Any]:
    """What a model covers, from its ``model.json`` (no torch): ``name``, ``elements`` and ``periodic`` (the
    training domain: the elements and the periodicities, ``[True]`` crystals, ``[False]`` molecules, of its
    training structures), ``basis``, ``cutoff`` (Å), ``dtype``, ``summary`` (from the card, or None) and
    ``default`` (its :data:`DEFAULT_ROLE`; None for a model folder)."""
    folder = resolve(name_or_path)
    mf = json.loads((folder / MODEL_FILE).read_text())
    cfg = mf.get("config") or {}
    elements, periodic = _domain(mf)
    try:
        summary = (card(folder) or {}).get("summary")
    except Exception:  # the card is documentation: an unreadable one must not hide the model
        summary = None
    shipped = folder.resolve().parent == SHIPPED_MODELS
    return {"name": (mf.get("metadata") or {}).get("name") or folder.name, "elements": elements,
            "periodic": periodic, "basis": (cfg.get("basis") or {}).get("name"), "cutoff": cfg.get("cutoff"),
            "dtype": mf.get("dtype"), "summary": " ".join(str(summary).split()) if summary else None,
            "default": DEFAULT_ROLE.get(folder.name, "special") if shipped else None}


def domain(name_or_path: str | os.PathLike) -> tuple[list[str], list[bool]]:
    """(elements, periodicities) of a model's training domain, from ``model.json`` alone (its config's elements
    where it recorded no domain; periodicities ``[True]`` crystals, ``[False]`` molecules, ``[]`` not recorded)."""
    return _domain(model_file(name_or_path))


def _domain(mf: dict[str, Any]) -> tuple[list[str], list[bool]]:
    domain = (mf.get("metadata") or {}).get("domain") or {}
    elements = domain.get("elements") or (mf.get("config") or {}).get("elements") or []
    return [str(e) for e in elements], [bool(p) for p in domain.get("periodic") or []]


def covers(name_or_path: str | os.PathLike, elements, periodic: bool) -> bool:
    """Whether a model's training domain holds every one of ``elements`` and structures of this periodicity (a
    model that recorded no periodicity covers neither)."""
    have, kinds = domain(name_or_path)
    return set(map(str, elements)) <= set(have) and bool(periodic) in kinds


def choose(elements, periodic: bool) -> str:
    """The shipped model for a structure of these elements (symbols) and periodicity, when none is named.

    Candidates are the shipped models whose training domain covers both (:func:`covers`), except those whose
    :data:`DEFAULT_ROLE` is ``"never"``. The one ``"general"`` candidate wins; without one, a lone candidate is
    chosen. No candidate, or a choice that is not unique, is a :class:`ModelNotFoundError` that lists what is
    shipped (or the candidates) and asks for a model by name.
    """
    want = sorted(set(map(str, elements)))
    kind = "periodic" if periodic else "non-periodic"
    candidates = [n for n in names() if DEFAULT_ROLE.get(n, "special") != "never" and covers(n, want, periodic)]
    general = [n for n in candidates if DEFAULT_ROLE.get(n) == "general"]
    if len(general) == 1:
        return general[0]
    if not general and len(candidates) == 1:
        return candidates[0]
    if candidates:
        raise ModelNotFoundError(f"several shipped models cover {kind} {', '.join(want)}: {', '.join(candidates)}; "
                                 "name one (--model NAME)")
    shipped = "; ".join(_coverage_text(n) for n in names())
    raise ModelNotFoundError(f"no shipped model covers {kind} {', '.join(want)} (shipped: {shipped or 'none'}); "
                             "name a trained model's folder (--model FOLDER)")


def _coverage_text(name: str) -> str:
    """``carbon (C, periodic)``: a shipped model and what its training domain covers."""
    elements, periodic = domain(name)
    kinds = "/".join("periodic" if p else "non-periodic" for p in sorted(periodic, reverse=True))
    return f"{name} ({', '.join(elements)}, {kinds or 'periodicity unknown'})"
