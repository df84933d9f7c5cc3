"""From a structure to a predicted Hamiltonian: checks, neighbour list, the model, and the basis overlap.

The one path every user-facing tool (ASE calculator, CLI) takes to run a model on ``ase.Atoms``:
H(R) comes from the network, S(R) from the basis' integrals (PySCF), never learned.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from ase import Atoms

from .core.dtypes import dtype_names
from .core.errors import (DataFormatError, ModelNotFoundError, OutOfDomainError, OutOfDomainWarning,  # noqa: F401
                          ParameterError, PredictionError, StructureError, UnknownElementError)
from .core.graphs import neighbor_list
from .core.hamiltonian import RealSpaceHamiltonian
from .core.stacklevel import user_stacklevel
from .core.structures import MIN_DISTANCE, validate_atoms
from .electronic.filling import valence_electrons
from .electronic.solve import model_lindep
from .engines.pyscf.integrals import overlap_blocks
from . import models

#: Error below this fraction of the shortest distance of an element pair seen in training; warn below WARN.
TOO_CLOSE_FRACTION = 0.75
WARN_FRACTION = 0.95
SHIPPED_MODELS = models.SHIPPED_MODELS  # deprecated alias: the registry is tracegrad_ase.models
resolve_model = models.resolve  # the one resolver (kept here: ``predict.resolve_model`` is public API)


_DTYPES = dtype_names()  # the one name -> dtype map (core.dtypes)


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """``None`` (the model file's own), ``"float32"``/``"float64"`` or the torch dtypes; anything else is a
    :class:`ParameterError`."""
    if dtype is None:
        return None
    if isinstance(dtype, str) and dtype in _DTYPES:
        return _DTYPES[dtype]
    if isinstance(dtype, torch.dtype) and dtype in _DTYPES.values():
        return dtype
    raise ParameterError(f"dtype must be None, 'float32', 'float64', torch.float32 or torch.float64, got {dtype!r}")


def resolve_device(device: str | torch.device) -> torch.device:
    """A torch device from ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or ``"auto"`` (CUDA when available, else
    CPU); a device torch does not know or that is not available here is a :class:`ParameterError`."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, (str, torch.device)):
        raise ParameterError(f"device must be a string such as 'cpu', 'cuda' or 'auto', got {device!r}")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ParameterError(f"device {device!r} is not a torch device ({exc}); use 'cpu', 'cuda', 'cuda:N', "
                             "'mps' or 'auto'") from None
    if dev.type == "cuda" and (not torch.cuda.is_available()
                               or (dev.index is not None and dev.index >= torch.cuda.device_count())):
        raise ParameterError(f"device {device!r}: no such CUDA device here "
                             f"({torch.cuda.device_count()} available); use 'cpu' or 'auto'")
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ParameterError(f"device {device!r} is not available here; use 'cpu' or 'auto'")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ParameterError(f"device {device!r} is not supported; use 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto'")
    return dev


def load(name_or_path, device: str | torch.device = "cpu", dtype: str | torch.dtype | None = None):
    """Load a model (folder or shipped name) with its card metadata.

    ``device``: see :func:`resolve_device` (``"auto"`` included); ``dtype``: see :func:`resolve_dtype`. A model
    whose weights hold NaN or infinite values is refused (:class:`DataFormatError`), so it can never predict.
    """
    from .model.checkpoint import WEIGHTS, load_model, read_card

    dev, dt = resolve_device(device), resolve_dtype(dtype)
    folder = resolve_model(name_or_path)
    model = load_model(folder, dt)
    _check_finite_weights(model, folder / WEIGHTS)
    model = model.to(dev)
    model.eval()
    model.model_file = read_card(folder)  # config and metadata (training domain): model.json
    return model


def _check_finite_weights(model: torch.nn.Module, source: Path) -> None:
    # Checked once here, where weights enter: a NaN weight makes every prediction NaN.
    bad = [name for name, t in model.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise DataFormatError(f"{source}: weights hold NaN or infinite values in {len(bad)} tensor(s) "
                              f"({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}); the model file is corrupt "
                              "or came from a training run that diverged")


def check_domain(atoms: Atoms, model) -> np.ndarray | None:
    """Errors for elements the model lacks and atoms closer than it can handle; warnings for structures
    unlike its training data. Returns each atom's environment score (:func:`domain_scores`), or ``None`` for a
    model without recorded fingerprints."""
    elements = list(model.layout.elements)
    symbols = atoms.get_chemical_symbols()
    missing = sorted(set(symbols) - set(elements))
    if missing:
        raise UnknownElementError(f"element(s) {', '.join(missing)} not in the model (it knows {', '.join(elements)})")
    domain = model.domain
    _check_pairs(atoms, domain.get("min_distance", {}))
    periodic = domain.get("periodic")
    if periodic and bool(any(atoms.pbc)) not in periodic:
        kind = "crystal" if any(atoms.pbc) else "molecule"
        warnings.warn(f"this is a {kind}; the model was trained on "
                      f"{'crystals' if periodic == [True] else 'molecules'} only", OutOfDomainWarning,
                      stacklevel=user_stacklevel())
    from .model.domain import domain_scores as _scores

    scores = _scores(atoms, domain)  # once: the refusal and the warning both read it
    _refuse_excluded(atoms, domain, scores)
    return domain_scores(atoms, model, scores=scores)


def _refuse_excluded(atoms: Atoms, domain: dict, scores: np.ndarray | None) -> None:
    """Structures whose atoms sit in an environment the model's card excludes (it trained on some and measured
    them wrong) are refused with the card's reason: a warning would still print a confidently wrong number.
    ``scores``: the atoms' scores against the kept domain."""
    from .model.domain import excluded_atoms

    for entry, idx in excluded_atoms(atoms, domain, scores):
        shown = ", ".join(str(int(i)) for i in idx[:8]) + (", ..." if len(idx) > 8 else "")
        raise OutOfDomainError(f"{len(idx)} of {len(atoms)} atoms ({shown}) are {entry['name']}, which this model "
                               f"does not predict: {entry['reason']}")


def _check_pairs(atoms: Atoms, shortest: dict[str, float]) -> None:
    """Pairs closer than the training data's closest of their kind (error far below, warning just below), and
    element pairs that never were neighbours in training."""
    if not shortest:
        return
    symbols = atoms.get_chemical_symbols()
    nl = neighbor_list(atoms, max(shortest.values()) + 1e-9)
    seen_pairs = set()
    warned = False
    for i, j, d in zip(nl.i, nl.j, nl.distances):
        key = "-".join(sorted((symbols[i], symbols[j])))
        seen_pairs.add(key)
        ref = shortest.get(key)
        if ref is None:
            continue
        if d < max(TOO_CLOSE_FRACTION * ref, MIN_DISTANCE):
            raise StructureError(f"atoms {i} ({symbols[i]}) and {j} ({symbols[j]}) are {d:.3f} Å apart; the model "
                                 f"saw {key} pairs no closer than {ref:.3f} Å and cannot be trusted below "
                                 f"{TOO_CLOSE_FRACTION * ref:.3f} Å")
        if d < WARN_FRACTION * ref and not warned:
            warnings.warn(f"atoms {i} and {j} ({key}) are {d:.3f} Å apart, closer than any {key} pair in the "
                          f"training data ({ref:.3f} Å): outside the training domain", OutOfDomainWarning,
                          stacklevel=user_stacklevel())
            warned = True
    unseen = sorted(k for k in seen_pairs if k not in shortest)
    if unseen:
        warnings.warn(f"element pairs {unseen} are neighbours here but never were in the training data",
                      OutOfDomainWarning, stacklevel=user_stacklevel())


def domain_scores(atoms: Atoms, model, worst: int = 5, scores: np.ndarray | None = None) -> np.ndarray | None:
    """Each atom's environment score: the distance of its fingerprint (:mod:`tracegrad_ase.core.environment`) to
    the nearest one of its element in the training data, over that element's scale (:mod:`.model.domain`). Atoms
    above the threshold (1) get one :class:`OutOfDomainWarning` naming the ``worst`` highest; ``None`` (no check)
    for a model without recorded fingerprints. ``scores``: those scores, where the caller has them already."""
    from .model.domain import DOMAIN_THRESHOLD, domain_scores as _scores

    if scores is None:
        scores = _scores(atoms, model.domain)
    if scores is None:
        return None
    threshold = float(model.domain["fingerprints"].get("threshold", DOMAIN_THRESHOLD))
    out = np.flatnonzero(scores > threshold)
    if len(out):
        symbols = atoms.get_chemical_symbols()
        top = out[np.lexsort((out, -np.round(scores[out], 2)))][:worst]  # ties (equivalent atoms): by index
        named = ", ".join(f"{int(i)} {symbols[i]} ({scores[i]:.2f})" for i in top)
        warnings.warn(f"{len(out)} of {len(atoms)} atoms have environments unlike any in the training data "
                      f"(score > {threshold:g}; atom, element, score: {named}{', ...' if len(out) > worst else ''}): "
                      "the prediction may be poor there", OutOfDomainWarning, stacklevel=user_stacklevel())
    return scores


def predict_hamiltonian(atoms: Atoms, model) -> RealSpaceHamiltonian:
    """Predicted H(R) (eV, e3nn order) and the basis overlap S(R) on every pair within the model's cutoff."""
    from .model.data import graph_from_arrays
    from .model.inference import on_model_device, predict_padded

    validate_atoms(atoms)
    scores = check_domain(atoms, model)
    nl = neighbor_list(atoms, model.config.cutoff, self_edges=True)
    edges = np.column_stack([nl.shifts, nl.i, nl.j]).astype(np.int64)
    graph = graph_from_arrays(model.layout, atoms.numbers, atoms.get_positions(), np.asarray(atoms.cell[:]), edges)
    padded = predict_padded(model, on_model_device(model, graph)).numpy()  # the one prediction step
    _check_finite_prediction(padded, edges)
    symbols = atoms.get_chemical_symbols()
    h = model.layout.unpad_blocks(padded, symbols, edges[:, 3], edges[:, 4])
    s = overlap_blocks(atoms, model.basis, edges)
    nelec = valence_electrons(model.basis, atoms.numbers)
    metadata = model.model_file.get("metadata", {})
    meta = {"source": "model", "cutoff": model.config.cutoff, "nelectron": nelec, "model": metadata.get("name"),
            "fermi_level_guess_ev": (metadata.get("domain") or {}).get("fermi_level_ev"),
            "lindep": model_lindep(model.model_file)}  # how to solve it (a saved prediction keeps it too)
    if scores is not None:  # per atom, so a saved prediction keeps what the model thought of its input
        meta["domain_scores"] = [round(float(x), 4) for x in scores]
    return RealSpaceHamiltonian(atoms=atoms.copy(), basis=model.basis, edges=edges, hamiltonian=h, overlap=s, meta=meta)


def _check_finite_prediction(padded: np.ndarray, edges: np.ndarray) -> None:
    """A NaN or infinite predicted block is an error naming its edges, never a result."""
    bad = ~np.isfinite(padded.reshape(len(padded), -1)).all(axis=1)
    if bad.any():
        first = [f"({int(i)}, {int(j)}, R={tuple(int(x) for x in r)})" for r, i, j in
                 zip(edges[bad, :3], edges[bad, 3], edges[bad, 4])][:3]
        raise PredictionError(f"the model predicted NaN or infinite blocks on {int(bad.sum())} of {len(edges)} edges "
                              f"(first: {', '.join(first)}); nothing is returned. Check the model file and the "
                              "structure (e.g. atoms far closer than in the training data)")
