"""A committee's mean prediction in the model layer (no ASE): what ``tracegrad evaluate --ensemble`` judges and
``TraceGradCalculator(..., ensemble=True)`` reports (:mod:`tracegrad_ase.committee` builds the same mean from
whole Hamiltonians; ``tests/test_committee.py`` checks that the two agree).
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch

from ..core.errors import DataFormatError
from ..core.hamiltonian import gauge_shift
from .checkpoint import load_model
from .data import GraphBatch
from .inference import _forward
from .network import TraceGradNet

__all__ = ["check_same_quantity", "load_members", "mean_padded"]


def check_same_quantity(main: TraceGradNet, members: Sequence[TraceGradNet], names: Sequence[str]) -> None:
    """Committee members must predict the main model's Hamiltonian: same elements, basis and cutoff (so also the
    same graph and padded layout); a :class:`DataFormatError` naming the first that does not."""
    for name, member in zip(names, members):
        same = (list(member.layout.elements) == list(main.layout.elements) and member.basis.name == main.basis.name
                and abs(member.config.cutoff - main.config.cutoff) < 1e-9)
        if not same:
            raise DataFormatError(f"{name}: committee member differs from the main model in elements, basis or "
                                  "cutoff; members must predict the same Hamiltonian")


def load_members(main: TraceGradNet, folders: Sequence[str | os.PathLike]) -> list[TraceGradNet]:
    """Member model folders, loaded in the main model's dtype and checked (:func:`check_same_quantity`)."""
    members = [load_model(f, dtype=next(main.parameters()).dtype) for f in folders]
    check_same_quantity(main, members, [str(f) for f in folders])
    return members


def mean_padded(models: Sequence[TraceGradNet], graph: GraphBatch) -> np.ndarray:
    """The committee's mean of padded blocks (float64, eV): each member's moved to the first's energy zero
    (H + c·S, least-squares c; the zero of a periodic prediction is arbitrary) before averaging. One model: its
    own blocks."""
    preds = [_forward(m, graph) for m in models]
    if len(preds) == 1:
        return preds[0]
    overlap = (graph.overlap.detach().to("cpu", torch.float64).numpy() * graph.mask.cpu().numpy()
               if graph.overlap is not None else np.zeros_like(preds[0]))
    return np.mean([preds[0]] + [p + gauge_shift([preds[0]], [p], [overlap]) * overlap for p in preds[1:]], axis=0)
