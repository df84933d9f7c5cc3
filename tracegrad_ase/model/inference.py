"""The one prediction step: a graph in, the padded H blocks out, with the model in eval mode and no autograd graph.

Used by the calculator's prediction (:func:`tracegrad_ase.predict.predict_hamiltonian`, a structure from scratch)
and by evaluation (:func:`tracegrad_ase.model.evaluate.predict_for`, a data set's structure and edges), so the two
cannot drift apart.
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.basis import OrbitalBasis
from ..core.hamiltonian import RealSpaceHamiltonian
from .data import GraphBatch, graph_from_hamiltonian
from .network import TraceGradNet

__all__ = ["on_model_device", "predict_for", "predict_padded"]


def on_model_device(model: TraceGradNet, graph: GraphBatch) -> GraphBatch:
    """The graph on the model's device and in its dtype."""
    p = next(model.parameters())
    return graph.to(device=p.device, dtype=p.dtype)


def predict_padded(model: TraceGradNet, graph: GraphBatch) -> torch.Tensor:
    """Padded predicted blocks (E, n_orb, n_orb) in eV, on the CPU in the model's dtype.

    Under torch.no_grad(): TraceGrad's update is a gradient, but the network computes it with autograd switched
    on locally; everything else needs no graph (and edges then go through in chunks). The model's train/eval
    mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            h = model(graph)["H"]
    finally:
        model.train(was_training)
    return h.detach().cpu()


# -- a stored structure's edges -----------------------------------------------------------------------------
def _model_graph(model: TraceGradNet, ham: RealSpaceHamiltonian) -> tuple[RealSpaceHamiltonian, GraphBatch]:
    """The truth restricted to the model's cutoff and its graph, on the model's device and dtype."""
    _check_basis(model.basis, ham)
    sub = ham.within(model.config.cutoff)
    return sub, on_model_device(model, graph_from_hamiltonian(model.layout, sub))


def _check_basis(model_basis: OrbitalBasis, ham: RealSpaceHamiltonian) -> None:
    # Blocks of another basis would fit the padded layout silently wherever the shell counts happen to agree.
    for z in sorted(set(int(z) for z in ham.atoms.numbers)):
        if tuple(ham.basis.shells_of(z)) != tuple(model_basis.shells_of(z)):
            raise ValueError(f"the data's basis {ham.basis.name!r} has shells {list(ham.basis.shells_of(z))} for "
                             f"atomic number {z}, the model's basis {model_basis.name!r} has "
                             f"{list(model_basis.shells_of(z))}")


def _forward(model: TraceGradNet, graph: GraphBatch) -> np.ndarray:
    """Padded predicted blocks (E, n_orb, n_orb) in eV, float64 (:func:`~.inference.predict_padded`)."""
    return predict_padded(model, graph).to(torch.float64).numpy()


def predict_for(ham: RealSpaceHamiltonian, model: TraceGradNet) -> RealSpaceHamiltonian:
    """The model's H on ``ham``'s structure and edges (those within the model's cutoff), overlap copied.

    S is not learned: its blocks are ``ham``'s own on the same edges. ``meta["source"]`` is ``"model"``.
    Argument order as :func:`tracegrad_ase.predict.predict_hamiltonian` (structure first, then model), which
    predicts for a bare structure (its own edges, S(R) from the basis).
    """
    sub, graph = _model_graph(model, ham)
    padded = _forward(model, graph)
    numbers = sub.atoms.numbers
    layout = model.layout
    blocks = layout.unpad_blocks(padded, numbers, sub.edges[:, 3], sub.edges[:, 4])
    meta = {
        "source": "model",
        "cutoff": float(model.config.cutoff),
        "model": {"tracegrad": bool(model.config.tracegrad), "num_layers": int(model.config.num_layers),
                  "elements": list(model.layout.elements)},
        "overlap_from": ham.meta.get("source", "data"),
    }
    # Keep what describes the structure's electrons, so the prediction can be diagonalised and filled alike.
    for key in ("nelectron", "fermi_level_ev", "name"):
        if key in ham.meta:
            meta[key] = ham.meta[key]
    return RealSpaceHamiltonian(atoms=sub.atoms.copy(), basis=sub.basis, edges=sub.edges.copy(),
                                hamiltonian=blocks, overlap=[np.array(s) for s in sub.overlap], meta=meta)


def predict_hamiltonian(model: TraceGradNet, ham: RealSpaceHamiltonian) -> RealSpaceHamiltonian:
    """Deprecated (removed in 0.6): :func:`predict_for` ``(ham, model)``, in the argument order of
    :func:`tracegrad_ase.predict.predict_hamiltonian`."""
    import warnings

    warnings.warn("tracegrad_ase.model.evaluate.predict_hamiltonian(model, ham) is deprecated; use "
                  "predict_for(ham, model)", DeprecationWarning, stacklevel=2)
    return predict_for(ham, model)
