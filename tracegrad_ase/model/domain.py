"""The training domain recorded in ``model.json``: what a model saw (elements, closest pairs, periodicity, the
median Fermi level, the spectral range relative to E_F), for the calculator's out-of-domain and ghost-level checks."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..electronic.solve import band_energies

__all__ = ["training_domain"]


def training_domain(hams) -> dict[str, Any]:
    """What the model saw: elements and the shortest distance of each element pair (Å), for the calculator's
    out-of-domain checks; the median Fermi level of its structures (eV), where the data record one; and the
    spectral range relative to E_F (eV), for the ghost-level check (:mod:`tracegrad_ase.electronic.spectrum`)."""
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
    return out


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
