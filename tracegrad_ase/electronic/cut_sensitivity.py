"""How much a predicted gap depends on the overlap cut (``lindep``) it was solved with.

A predicted H is solved with the overlap directions below ``lindep`` dropped (:mod:`.solve`): along nearly
linearly dependent directions its errors are amplified by 1/s. Where a band edge lives in such directions (the
diffuse σ* LUMO of a saturated amine or alkane in def2-SVP, diamond's conduction band in gth-dzvp), the cut moves
the gap itself: the exact PBE Hamiltonian of methylamine solved at 0.05 has a gap 1.35 eV too wide
(``benchmarks/lindep_floor.py``). No model can do better than its cut there, and a model solved at a smaller cut
meets its own amplified errors instead. Either way the gap is uncertain by about as much as it moves when the
cut moves, so that movement is measured: the gap is solved again at ``CUT_FACTORS`` x ``lindep`` at the two
k-points of the band edges, and the largest change is the sensitivity.

On the 46 held-out molecules (molecules 0.6, lindep 0.05; ``benchmarks/heldout_gaps.py``) a sensitivity above
0.1 eV flags 15 molecules (gap MAE 0.49 eV), among them all four gap errors above 0.9 eV; the 31 it passes have a
gap MAE of 0.165 eV. It cannot see a band edge that every nearby cut removes alike (diamond in gth-dzvp: its
conduction band lives in directions of ~2e-6, far below 0.6 x 1e-2), nor the model's own errors.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..core.errors import UncertaintyWarning
from ..core.stacklevel import user_stacklevel
from .bloch import BlochAssembler
from .solve import levels_at_cuts

__all__ = ["CUT_FACTORS", "THRESHOLD_EV", "check_gap_cut", "gap_cut_sensitivity"]

#: The other cuts, as multiples of the model's lindep (0.03 and 0.1 for the molecules model's 0.05).
CUT_FACTORS = (0.6, 2.0)
#: A gap that moves more than this (eV) when the cut moves is reported as uncertain.
THRESHOLD_EV = 0.1


def gap_cut_sensitivity(asm: BlochAssembler, gap: dict[str, Any], nelec: int, lindep: float,
                        factors: tuple[float, ...] = CUT_FACTORS) -> dict[str, Any] | None:
    """The gap at ``lindep`` and at ``factors`` x ``lindep`` (eV), at the band edges' k-points of ``gap``
    (:func:`~tracegrad_ase.electronic.band_gap`'s result), and ``sensitivity``: the largest change.

    None where the question has no answer: a metal, an odd electron count (no closed-shell edge levels), or
    ``lindep`` = 0 (nothing is cut). Only the two edge levels are computed, at one or two k-points
    (:func:`~tracegrad_ase.electronic.solve.levels_at_cuts`).
    """
    if gap.get("metal", True) or nelec % 2 or lindep <= 0:
        return None
    nocc = nelec // 2
    if nocc < 1:
        return None
    cuts = [float(lindep), *(float(f * lindep) for f in factors)]
    kv, kc = (tuple(np.round(np.asarray(gap[key], float), 12)) for key in ("k_vbm", "k_cbm"))
    at = {}  # levels nocc-1 and nocc per cut, at each edge k-point (one solve when the gap is direct)
    for k in {kv, kc}:
        pair = asm.at_real(np.array(k))  # real arithmetic where H(k), S(k) are real (Γ, molecules): ~4x faster
        h, s = (m.toarray() for m in (pair if pair is not None else asm.at(np.array(k))))
        at[k] = levels_at_cuts(h, s, cuts, nocc - 1, nocc)
    gaps = {c: float(at[kc][c][1] - at[kv][c][0]) for c in cuts if at[kc][c] is not None and at[kv][c] is not None}
    if cuts[0] not in gaps:
        return None
    return {"gaps": gaps, "sensitivity": max(abs(g - gaps[cuts[0]]) for g in gaps.values())}


def check_gap_cut(asm: BlochAssembler, gap: dict[str, Any], nelec: int, lindep: float,
                  threshold: float = THRESHOLD_EV, stacklevel: int | None = None) -> float | None:
    """:func:`gap_cut_sensitivity`'s ``sensitivity`` (None where it has no answer), with an
    :class:`~tracegrad_ase.core.errors.UncertaintyWarning` when it is above ``threshold`` eV (at the user's line, or
    ``stacklevel`` frames up)."""
    cut = gap_cut_sensitivity(asm, gap, nelec, lindep)
    if cut is None:
        return None
    s = cut["sensitivity"]
    if s > threshold:
        others = sorted(c for c in cut["gaps"] if c != float(lindep))
        warnings.warn(f"the gap ({gap['gap']:.3f} eV) moves by up to {s:.3f} eV when the overlap cut moves from "
                      f"lindep {lindep:g} to {' or '.join(f'{c:g}' for c in others)}: a band edge lies in nearly "
                      "linearly dependent basis directions, where neither the cut nor the model can be trusted; "
                      f"treat the gap as uncertain by at least {s:.2f} eV", UncertaintyWarning,
                      stacklevel=stacklevel or user_stacklevel())
    return s
