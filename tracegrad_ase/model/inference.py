"""The one prediction step: a graph in, the padded H blocks out, with the model in eval mode and no autograd graph.

Used by the calculator's prediction (:func:`tracegrad_ase.predict.predict_hamiltonian`, a structure from scratch)
and by evaluation (:func:`tracegrad_ase.model.evaluate.predict_for`, a data set's structure and edges), so the two
cannot drift apart.
"""

from __future__ import annotations

import torch

from .data import GraphBatch
from .network import TraceGradNet

__all__ = ["on_model_device", "predict_padded"]


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
