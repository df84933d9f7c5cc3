"""The TraceGrad model: layout of blocks, graph tensors, the network, training and evaluation. No ASE imports."""

from .data import GraphBatch, collate, graph_from_arrays, graph_from_hamiltonian
from .layout import BlockLayout
from .network import ModelConfig, TraceGradNet, build_model

__all__ = ["BlockLayout", "GraphBatch", "ModelConfig", "TraceGradNet", "build_model", "collate",
           "graph_from_arrays", "graph_from_hamiltonian"]
