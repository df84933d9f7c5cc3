"""Graphs as tensors for the model: nodes, directed edges with lattice offsets, padded target blocks.

No ASE import: a graph is built from arrays (numbers, positions, cell, edges) or from a stored
:class:`~tracegrad_ase.hamiltonian.RealSpaceHamiltonian`, whose edges and blocks it reuses.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np
import torch

from ..core.errors import UnknownElementError
from .layout import BlockLayout


@dataclass
class GraphBatch:
    """One or several structures as one disconnected graph.

    ``edge_index[:, e] = (i, j)``: block H_ij(R) for atom j in the cell shifted by R; ``edge_offset[e] = R @ cell``
    (Å), so the edge vector is ``pos[j] + edge_offset - pos[i]``; ``edge_shift[e] = R`` (integers, for Bloch
    phases). ``reverse[e]`` is the edge (j, i, -R); on-site edges (i, i, 0) are their own reverse.
    ``target``/``overlap``/``mask`` are padded blocks (eV; S dimensionless) in the layout.

    Training graphs also carry what the gauge-invariant and band losses need: the overlap S on the same edges
    (the energy zero of a periodic calculation is arbitrary: H and H + c·S are the same physics), each structure's
    periodic directions, its electron count and its Fermi level (NaN where unknown, e.g. molecules).
    """

    species: torch.Tensor  # (N,) long, index into layout.elements
    pos: torch.Tensor  # (N, 3)
    edge_index: torch.Tensor  # (2, E) long
    edge_offset: torch.Tensor  # (E, 3)
    reverse: torch.Tensor  # (E,) long
    node_graph: torch.Tensor  # (N,) long, which structure
    edge_graph: torch.Tensor  # (E,) long
    mask: torch.Tensor  # (E, n_orb, n_orb) bool
    target: torch.Tensor | None = None  # (E, n_orb, n_orb) eV
    n_graphs: int = 1
    edge_shift: torch.Tensor | None = None  # (E, 3) long, R in lattice vectors
    overlap: torch.Tensor | None = None  # (E, n_orb, n_orb)
    pbc: torch.Tensor | None = None  # (n_graphs, 3) bool
    n_electrons: torch.Tensor | None = None  # (n_graphs,)
    fermi: torch.Tensor | None = None  # (n_graphs,) eV in the target's own zero, NaN if unknown

    def to(self, device=None, dtype=None) -> "GraphBatch":
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, torch.Tensor):
                v = v.to(device=device, dtype=dtype if (dtype is not None and v.is_floating_point()) else None)
            out[f.name] = v
        return GraphBatch(**out)

    def onsite(self) -> torch.Tensor:
        """(E,) bool: the on-site edges (i == j, R = 0), the one definition the model's code uses."""
        i, j = self.edge_index
        return (i == j) & (self.edge_offset.abs().sum(dim=1) == 0)

    @property
    def num_edges(self) -> int:
        return int(self.edge_index.shape[1])


def reverse_index(edges: np.ndarray) -> np.ndarray:
    """For edges ``(Rx, Ry, Rz, i, j)``, the position of each edge's reverse ``(-R, j, i)``."""
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 5)
    if len(edges) == 0:
        return np.zeros(0, dtype=np.int64)
    # One integer key per row, so the lookup is a sort and a binary search (a dict over 10^6 edges took seconds)
    reverse = np.column_stack([-edges[:, :3], edges[:, 4], edges[:, 3]])
    low = np.minimum(edges.min(axis=0), reverse.min(axis=0))
    span = np.maximum(edges.max(axis=0), reverse.max(axis=0)) - low + 1
    if float(np.prod(span.astype(float))) >= 2.0 ** 62:
        raise ValueError(f"edge indices or cell shifts too large to index ({span.tolist()})")
    strides = np.cumprod(np.concatenate([[1], span[::-1][:-1]]))[::-1]
    keys = (edges - low) @ strides
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    wanted = (reverse - low) @ strides
    pos = np.minimum(np.searchsorted(sorted_keys, wanted), len(keys) - 1)
    found = sorted_keys[pos] == wanted
    if not found.all():
        rx, ry, rz, i, j = (int(x) for x in edges[np.argmin(found)])
        raise ValueError(f"edge (R={rx, ry, rz}, i={i}, j={j}) has no reverse edge; blocks must come in pairs")
    return order[pos]


def graph_from_arrays(
    layout: BlockLayout,
    numbers: Sequence[int],
    positions: np.ndarray,
    cell: np.ndarray,
    edges: np.ndarray,
    blocks: Sequence[np.ndarray] | None = None,
    overlap: Sequence[np.ndarray] | None = None,
    pbc: Sequence[bool] | None = None,
    n_electrons: float | None = None,
    fermi: float | None = None,
) -> GraphBatch:
    """A graph for ``edges`` (rows ``Rx, Ry, Rz, i, j``), with target ``blocks`` (eV, e3nn order) and their
    ``overlap`` if given; ``pbc``, ``n_electrons`` and ``fermi`` (eV) describe the structure for the band loss."""
    numbers = np.asarray(numbers)
    try:
        species = np.array([layout.species_index(int(z)) for z in numbers], dtype=np.int64)
    except ValueError:
        missing = sorted({int(z) for z in numbers} - {_z(e) for e in layout.elements})
        raise UnknownElementError(
            f"elements {missing} (atomic numbers) are not covered by the model (it knows {', '.join(layout.elements)})"
        ) from None
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 5)
    rev = reverse_index(edges)
    el = [layout.elements[s] for s in species]
    per_species = np.array([layout.orbital_mask(e) for e in layout.elements], dtype=bool).reshape(-1, layout.n_orb)
    rows, cols = per_species[species[edges[:, 3]]], per_species[species[edges[:, 4]]]
    mask = rows[:, :, None] & cols[:, None, :]  # one outer product per edge, without a loop over edges
    def padded(values):
        if values is None:
            return None
        return torch.as_tensor(np.stack([layout.pad_block(np.asarray(b), el[i], el[j])
                                         for b, (i, j) in zip(values, edges[:, 3:])]))

    n, e = len(numbers), len(edges)
    return GraphBatch(
        species=torch.as_tensor(species),
        pos=torch.as_tensor(np.asarray(positions, dtype=float)),
        edge_index=torch.as_tensor(edges[:, 3:].T.copy()),
        edge_offset=torch.as_tensor(edges[:, :3].astype(float) @ np.asarray(cell, dtype=float)),
        reverse=torch.as_tensor(rev),
        node_graph=torch.zeros(n, dtype=torch.long),
        edge_graph=torch.zeros(e, dtype=torch.long),
        mask=torch.as_tensor(mask),
        target=padded(blocks),
        edge_shift=torch.as_tensor(edges[:, :3].copy()),
        overlap=padded(overlap),
        pbc=torch.as_tensor(np.asarray(pbc if pbc is not None else (True, True, True), dtype=bool).reshape(1, 3)),
        n_electrons=torch.tensor([float("nan") if n_electrons is None else float(n_electrons)]),
        fermi=torch.tensor([float("nan") if fermi is None else float(fermi)]),
    )


def graph_from_hamiltonian(layout: BlockLayout, ham, cutoff: float | None = None) -> GraphBatch:
    """A training graph from a stored Hamiltonian (H, S, electrons, Fermi level), keeping its edges up to
    ``cutoff`` Å."""
    from ..electronic import electron_count

    if cutoff is not None:
        ham = ham.within(cutoff)
    atoms = ham.atoms
    return graph_from_arrays(layout, atoms.numbers, atoms.get_positions(), np.asarray(atoms.cell[:]),
                             ham.edges, ham.hamiltonian, overlap=ham.overlap, pbc=atoms.pbc,
                             n_electrons=electron_count(ham), fermi=ham.meta.get("fermi_level_ev"))


def collate(graphs: Sequence[GraphBatch]) -> GraphBatch:
    """Concatenate graphs into one batch, shifting node and edge indices."""
    if len(graphs) == 1:
        return graphs[0]
    node_off = np.cumsum([0] + [len(g.species) for g in graphs])
    edge_off = np.cumsum([0] + [g.num_edges for g in graphs])
    has_target = all(g.target is not None for g in graphs)
    device = graphs[0].species.device  # new index tensors live where the graphs do (a GPU batch: on the GPU)

    def cat(name: str):
        values = [getattr(g, name) for g in graphs]
        return None if any(v is None for v in values) else torch.cat(values)

    return GraphBatch(
        species=torch.cat([g.species for g in graphs]),
        pos=torch.cat([g.pos for g in graphs]),
        edge_index=torch.cat([g.edge_index + int(o) for g, o in zip(graphs, node_off)], dim=1),
        edge_offset=torch.cat([g.edge_offset for g in graphs]),
        reverse=torch.cat([g.reverse + int(o) for g, o in zip(graphs, edge_off)]),
        node_graph=torch.cat([torch.full((len(g.species),), k, dtype=torch.long, device=device)
                              for k, g in enumerate(graphs)]),
        edge_graph=torch.cat([torch.full((g.num_edges,), k, dtype=torch.long, device=device)
                              for k, g in enumerate(graphs)]),
        mask=torch.cat([g.mask for g in graphs]),
        target=torch.cat([g.target for g in graphs]) if has_target else None,
        n_graphs=len(graphs),
        edge_shift=cat("edge_shift"),
        overlap=cat("overlap"),
        pbc=cat("pbc"),
        n_electrons=cat("n_electrons"),
        fermi=cat("fermi"),
    )


def _z(symbol: str) -> int:
    from ..core.basis import atomic_numbers

    return atomic_numbers[symbol]


__all__ = ["GraphBatch", "collate", "graph_from_arrays", "graph_from_hamiltonian", "reverse_index"]
