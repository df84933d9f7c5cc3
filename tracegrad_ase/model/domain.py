"""The training domain recorded in ``model.json``: what a model saw (elements, closest pairs, periodicity, the
median Fermi level, the spectral range relative to E_F, fingerprints of its atoms' environments), for the
calculator's out-of-domain and ghost-level checks."""

from __future__ import annotations

import base64
import binascii
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from ..core.errors import DataFormatError
from ..core.environment import fingerprint_settings, fingerprints, nearest_distances
from ..electronic.solve import band_energies

__all__ = ["DOMAIN_THRESHOLD", "add_fingerprints", "apply_exclusions", "domain_scores", "environment_domain",
           "exclude_environments", "excluded_atoms", "training_domain"]

#: An atom whose score (distance to the nearest training fingerprint of its element / that element's scale) is
#: above this is out of the training domain.
DOMAIN_THRESHOLD = 1.0
MAX_REFERENCES = 500  # per element: a few hundred KB of model.json at most
SCALE_PERCENTILE = 95  # of the training atoms' leave-one-structure-out distances: the spread of what was seen
#: The scale is this times that percentile. Measured on 96 molecule conformers (80 % recorded): with a margin of 1,
#: 26 % of held-out conformers had an atom above 1 (max 1.41), benzene's atoms 7-10, acetic acid's 2.9-8; with 2,
#: none of the held-out ones, and every atom of the three unseen molecules still above 1.4.
SCALE_MARGIN = 2.0
SCALE_FLOOR = 0.05  # fingerprint units (~ neighbour counts): identical training structures give a scale of 0
DECIMALS = 3  # stored fingerprints, rounded: far below the scale, and they compress (zeros, repeated digits)
_PRESAMPLE = 20000  # atoms per element entering the farthest-point selection (seeded draw above)


def training_domain(hams) -> dict[str, Any]:
    """What the model saw: elements and the shortest distance of each element pair (Å), for the calculator's
    out-of-domain checks; the median Fermi level of its structures (eV), where the data record one; and the
    spectral range relative to E_F (eV), for the ghost-level check (:mod:`tracegrad_ase.electronic.spectrum`);
    ``fingerprints`` of its atoms' environments (:func:`environment_domain`), for the per-atom check."""
    shortest: dict[str, float] = {}
    for h in hams:
        sym = h.atoms.get_chemical_symbols()
        lengths = h.edge_lengths()
        for (_, _, _, i, j), d, onsite in zip(h.edges, lengths, h.onsite_mask()):
            if onsite:
                continue
            key = "-".join(sorted((sym[i], sym[j])))
            shortest[key] = min(shortest.get(key, np.inf), float(d))
    elements = sorted({s for h in hams for s in h.atoms.get_chemical_symbols()})
    periodic = sorted({bool(any(h.atoms.pbc)) for h in hams})
    out = {"elements": elements, "min_distance": dict(sorted(shortest.items())), "periodic": periodic,
           "n_structures": len(hams)}
    fermi = [h.meta["fermi_level_ev"] for h in hams if h.meta.get("fermi_level_ev") is not None]
    if fermi:  # where the sparse solver of a large cell starts looking (a guess eV off costs factorizations)
        out["fermi_level_ev"] = float(np.median(fermi))
    ranges = [r for r in (_spectral_range(h) for h in hams) if r is not None]
    if ranges:
        out["spectral_range_ev"] = [min(r[0] for r in ranges), max(r[1] for r in ranges)]
    out["fingerprints"] = environment_domain([h.atoms for h in hams], elements)
    return out


def add_fingerprints(model_json: dict, train_hams) -> None:
    """Record the environment fingerprints of ``train_hams`` (the model's training structures) in an existing
    ``model.json`` (as a dict, changed in place: ``metadata.domain.fingerprints``). ``train_hams``:
    :class:`RealSpaceHamiltonian` objects (e.g. ``io.h5.load_h5`` of the split's ``train`` files) or ``Atoms``."""
    structures = [h if isinstance(h, Atoms) else h.atoms for h in train_hams]
    domain = model_json.setdefault("metadata", {}).setdefault("domain", {})
    elements = model_json.get("config", {}).get("elements") or sorted(
        {s for a in structures for s in a.get_chemical_symbols()})
    domain["fingerprints"] = environment_domain(structures, list(elements))


def exclude_environments(model_json: dict, kept, excluded, name: str, reason: str) -> dict[str, Any]:
    """Take the environments of ``excluded`` (structures the model trained on but predicts badly, e.g. the carbon
    model's diamond cells) out of its domain: ``fingerprints`` are recomputed from ``kept`` alone (the rest of
    its training structures), and ``excluded`` is recorded under ``domain.excluded`` with ``name`` and
    ``reason`` (what a user reads when a prediction is refused: say what was measured). ``kept`` and
    ``excluded``: ``Atoms`` or :class:`RealSpaceHamiltonian` objects. Changes ``model_json`` in place and
    returns the new entry; an entry of the same name is replaced."""
    as_atoms = [[h if isinstance(h, Atoms) else h.atoms for h in group] for group in (kept, excluded)]
    domain = model_json.setdefault("metadata", {}).setdefault("domain", {})
    elements = list(model_json.get("config", {}).get("elements") or sorted(
        {s for group in as_atoms for a in group for s in a.get_chemical_symbols()}))
    domain["fingerprints"] = environment_domain(as_atoms[0], elements)
    present = [e for e in elements if any(e in a.get_chemical_symbols() for a in as_atoms[1])]
    entry = {"name": name, "reason": reason, "n_structures": len(as_atoms[1]),
             **environment_domain(as_atoms[1], present)}
    entry["settings"] = domain["fingerprints"]["settings"]  # one fingerprint for both comparisons
    domain["excluded"] = [e for e in domain.get("excluded", []) if e.get("name") != name] + [entry]
    return entry


def apply_exclusions(model_json: dict, specs: list[dict[str, str]], train_files,
                     root: str | os.PathLike | None = None) -> None:
    """:func:`exclude_environments` for each of a card's ``excluded_environments`` (``name``, ``reason`` and
    ``training_files``: a file-name pattern over the model's training files ``train_files``); the kept domain is
    what no pattern matches. An entry's optional ``reference_data`` (a data folder, relative to ``root``) adds its
    structures that match the pattern to the excluded environment: weights that never trained on diamond are
    still refused diamond where the reason (gth-dzvp's overlap cut) holds for any weights. A pattern that matches
    nothing, or everything, is an error (a stale card)."""
    import fnmatch

    from ..io.h5 import load_dataset, load_h5

    files = sorted(train_files, key=lambda f: Path(f).name)
    groups = [[f for f in files if fnmatch.fnmatch(Path(f).name, spec["training_files"])] for spec in specs]
    out = {Path(f).name for g in groups for f in g}
    kept = [load_h5(f) for f in files if Path(f).name not in out]
    for spec, group in zip(specs, groups):
        if spec.get("reference_data"):
            trained = {Path(f).name for f in group}
            group = group + [f for f in load_dataset(Path(root or ".") / spec["reference_data"])
                             if fnmatch.fnmatch(f.name, spec["training_files"]) and f.name not in trained]
        if not group or not kept:
            raise ValueError(f"excluded environment {spec['name']!r}: pattern {spec['training_files']!r} matches "
                             f"{len(group)} of {len(files)} training files"
                             + (f" and {spec['reference_data']}" if spec.get("reference_data") else ""))
        exclude_environments(model_json, kept, [load_h5(f) for f in group], spec["name"], " ".join(
            spec["reason"].split()))


def excluded_atoms(atoms, domain: dict[str, Any], kept: np.ndarray | None = None
                   ) -> list[tuple[dict[str, Any], np.ndarray]]:
    """For each excluded environment (:func:`exclude_environments`) that ``atoms`` fall into, the entry and the
    indices of its atoms: nearer to its references than to the kept training domain (each distance in units of
    its side's scale), and either within the entry's threshold or outside the kept domain's (a strongly strained
    diamond is still more diamond than anything the carbon model is trusted on). ``kept``: the atoms'
    :func:`domain_scores` against the kept domain, where the caller has them already."""
    entries = (domain or {}).get("excluded") or []
    if not entries:  # every prediction passes here: no fingerprints for a model that excludes nothing
        return []
    found = []
    if kept is None:
        kept = domain_scores(atoms, domain)
    for entry in entries:
        scores = domain_scores(atoms, {"fingerprints": entry})
        if scores is None:
            continue
        hit = scores <= float(entry.get("threshold", DOMAIN_THRESHOLD))
        if kept is not None:
            outside = kept > float(domain["fingerprints"].get("threshold", DOMAIN_THRESHOLD))
            hit = (hit | outside) & (scores < kept)
        if hit.any():
            found.append((entry, np.flatnonzero(hit)))
    return found


def environment_domain(structures, elements: list[str]) -> dict[str, Any]:
    """Per element: up to :data:`MAX_REFERENCES` training fingerprints (farthest-point selection, deterministic,
    rounded to :data:`DECIMALS`) and a scale: :data:`SCALE_MARGIN` times the :data:`SCALE_PERCENTILE` th percentile
    of each training atom's distance to the nearest reference from *another* structure (a conformer or strain the
    model saw next to it). One structure alone has no such neighbour: its scale is the floor."""
    settings = fingerprint_settings(elements)
    feats, owner, sym = [], [], []
    for n, atoms in enumerate(structures):
        feats.append(fingerprints(atoms, settings))
        owner.append(np.full(len(atoms), n))
        sym.extend(atoms.get_chemical_symbols())
    x, owner, sym = np.concatenate(feats), np.concatenate(owner), np.array(sym)
    refs, scale = {}, {}
    for el in elements:
        mine = np.flatnonzero(sym == el)
        if not len(mine):
            continue
        pick = _farthest_points(x[mine], MAX_REFERENCES)
        ref = np.round(x[mine][pick], DECIMALS)
        scale[el] = _scale(x[mine], owner[mine], ref, owner[mine][pick])
        refs[el] = _encode(ref)
    return {"settings": settings, "threshold": DOMAIN_THRESHOLD, "scale": scale, "references": refs}


def _farthest_points(x: np.ndarray, k: int) -> np.ndarray:
    """Indices of at most ``k`` rows of ``x`` spread over its range (greedy farthest-point, from row 0); copies
    (the equivalent atoms of a crystal) are dropped."""
    if len(x) > _PRESAMPLE:  # bounds the cost on huge training sets; seeded, so the same data give the same set
        x_idx = np.sort(np.random.default_rng(0).choice(len(x), _PRESAMPLE, replace=False))
    else:
        x_idx = np.arange(len(x))
    sub = x[x_idx]
    chosen = [0]
    d = np.linalg.norm(sub - sub[0], axis=1)
    while len(chosen) < k:
        nxt = int(np.argmax(d))
        if d[nxt] <= 0.5 * 10.0 ** -DECIMALS:  # all that is left is (up to rounding) a copy of a reference
            break
        chosen.append(nxt)
        d = np.minimum(d, np.linalg.norm(sub - sub[nxt], axis=1))
    return x_idx[np.array(chosen)]


def _scale(x: np.ndarray, owner: np.ndarray, ref: np.ndarray, ref_owner: np.ndarray) -> float:
    """The spread of the training fingerprints of one element (leave one structure out), at least the floor."""
    d = np.full(len(x), np.inf)
    for s in np.unique(owner):
        here, others = owner == s, ref[ref_owner != s]
        if len(others):
            d[here] = nearest_distances(x[here], others)
    d = d[np.isfinite(d)]
    return float(max(SCALE_MARGIN * np.percentile(d, SCALE_PERCENTILE), SCALE_FLOOR) if len(d) else SCALE_FLOOR)


def domain_scores(atoms, domain: dict[str, Any]) -> np.ndarray | None:
    """Each atom's distance to the nearest training fingerprint of its element over that element's scale (inf
    for an element never seen); ``None`` for a model without recorded fingerprints."""
    record = (domain or {}).get("fingerprints")
    if not record or not record.get("references"):
        return None
    x = fingerprints(atoms, record["settings"])
    sym = np.array(atoms.get_chemical_symbols())
    scores = np.full(len(atoms), np.inf)
    for el, ref in record["references"].items():
        mine = sym == el
        if mine.any():
            scores[mine] = nearest_distances(x[mine], _decode(ref, x.shape[1])) / float(record["scale"][el])
    return scores


def _encode(ref: np.ndarray) -> dict[str, Any]:
    """Little-endian float32, zlib, base64: the molecules model's 779 references of 76 numbers take 76 KB this
    way against 345 KB as JSON numbers (830 KB indented, as model.json is written); no pickle anywhere."""
    raw = np.ascontiguousarray(ref, dtype="<f4").tobytes()
    return {"dtype": "<f4", "shape": list(ref.shape), "zlib_base64": base64.b64encode(zlib.compress(raw, 9)).decode()}


def _decode(entry, width: int) -> np.ndarray:
    """The (n, width) references of one element from :func:`_encode`'s form (or a plain list of lists); a
    malformed entry is a :class:`DataFormatError`, and decompression never goes past the size the shape says."""
    if isinstance(entry, list):
        ref = np.asarray(entry, dtype=float).reshape(-1, width)
    else:
        try:
            shape = [int(n) for n in entry["shape"]]
            expected = int(np.prod(shape)) * 4
            raw = zlib.decompressobj().decompress(base64.b64decode(entry["zlib_base64"]), expected + 1)
            if entry["dtype"] != "<f4" or len(raw) != expected or len(shape) != 2 or shape[1] != width:
                raise ValueError(f"{len(raw)} bytes for shape {shape} (width {width}), dtype {entry['dtype']!r}")
            ref = np.frombuffer(raw, dtype="<f4").reshape(shape).astype(float)
        except (KeyError, TypeError, ValueError, zlib.error, binascii.Error) as exc:
            raise DataFormatError(f"model.json: unreadable domain fingerprints ({exc})") from None
    if not np.isfinite(ref).all():
        raise DataFormatError("model.json: domain fingerprints hold NaN or infinite values")
    return ref


def _spectral_range(ham) -> tuple[float, float] | None:
    """Lowest and highest level of a structure relative to its Fermi level (eV), at Γ (molecule) or a few k."""
    from ..electronic import electron_count
    from ..electronic.spectrum import align, spectral_range
    from .evaluate import default_kpoints

    periodic = bool(np.any(ham.atoms.pbc))
    k = default_kpoints(ham.atoms.pbc) if periodic else np.zeros((1, 3))
    try:
        e = band_energies(ham, k)
        fermi = ham.meta.get("fermi_level_ev") if periodic else None
        ref = float(fermi) if fermi is not None else align(e, None, electron_count(ham), kind="fermi").ref
    except (ValueError, np.linalg.LinAlgError):  # no Fermi level to be had (e.g. all bands filled)
        return None
    return spectral_range(e, ref)
