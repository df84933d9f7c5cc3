"""Where an evaluation's block errors lie: by element pair, by CG degree and by neighbour distance.

Each breakdown sums absolute errors (eV) and their counts over the files, so its MAEs pool every value, as the
evaluation's totals do (:mod:`tracegrad_ase.model.evaluate`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .data import GraphBatch
from .network import TraceGradNet

EV_TO_MEV = 1000.0

#: Width (Å) of the neighbour-distance bins of :class:`DistanceProfile`: narrow enough to keep graphene's first
#: shells (1.42, 2.46, 2.84 Å) and a bilayer's interlayer pairs (3.35 Å) apart, displaced by ~0.1 Å.
DISTANCE_BIN_ANGSTROM = 0.25


@dataclass
class ErrorSum:
    """Running sum of absolute errors (eV) and their count."""

    total: float = 0.0
    count: int = 0

    def add(self, errors: np.ndarray) -> None:
        self.total += float(np.sum(errors))
        self.count += int(np.size(errors))

    def add_sum(self, total: float, count: int) -> None:
        self.total += float(total)
        self.count += int(count)

    def mev(self) -> float | None:
        return self.total / self.count * EV_TO_MEV if self.count else None


def _per_edge(err: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Summed absolute error and count of real (masked-in) values of each edge's padded block."""
    n_edges = len(err)
    return (np.abs(err) * mask).reshape(n_edges, -1).sum(axis=1), mask.reshape(n_edges, -1).sum(axis=1)


class PairDegreeBreakdown:
    """Errors by unordered element pair (``"C-H"``) and by CG degree of the block's components."""

    def __init__(self, model: TraceGradNet) -> None:
        layout = model.layout
        self.elements = layout.elements
        self.cg = layout.cg  # float64, orthonormal columns
        start = layout.slot_start[:-1]
        self.presence = np.stack([layout.orbital_mask(e)[start] for e in layout.elements])  # (species, slots)
        degrees = np.asarray(layout.degrees, dtype=np.int64).reshape(-1, 3)[layout.degree_of_output]
        self.col_a, self.col_b, self.col_l = degrees[:, 0], degrees[:, 1], degrees[:, 2]  # slot shells, degree
        self.pairs: dict[str, ErrorSum] = {}
        self.degrees = {int(l): ErrorSum() for l in sorted(set(self.col_l.tolist()))}

    def add(self, diff: np.ndarray, mask: np.ndarray, si: np.ndarray, sj: np.ndarray) -> None:
        """Errors ``diff`` (E, n, n) of edges whose atoms have species ``si``, ``sj``."""
        per_edge_sum, per_edge_cnt = _per_edge(diff, mask)
        for a in range(len(self.elements)):
            for b in range(a, len(self.elements)):
                sel = ((si == a) & (sj == b)) | ((si == b) & (sj == a))
                if sel.any():
                    key = "-".join(sorted((self.elements[a], self.elements[b])))
                    self.pairs.setdefault(key, ErrorSum()).add_sum(per_edge_sum[sel].sum(), per_edge_cnt[sel].sum())
        # CG components of the error: the map is orthonormal, so components = flattened block @ cg. Blocks are
        # masked (the model masks its output, the padded truth is zero outside), so a component whose shell pair
        # an edge lacks is exactly 0; it is left out rather than counted as a perfect prediction.
        comp_err = np.abs((diff * mask).reshape(len(si), -1) @ self.cg)
        exists = self.presence[si][:, self.col_a] & self.presence[sj][:, self.col_b]
        for l, acc in self.degrees.items():
            cols = self.col_l == l
            acc.add(comp_err[:, cols][exists[:, cols]])

    def by_pair(self) -> dict[str, float | None]:
        return {k: v.mev() for k, v in sorted(self.pairs.items())}

    def by_degree(self) -> dict[str, float | None]:
        return {str(l): v.mev() for l, v in sorted(self.degrees.items())}


@dataclass
class DistanceProfile:
    """Errors by neighbour distance |r_j + R - r_i| in bins of :data:`DISTANCE_BIN_ANGSTROM` (on-site blocks: bin
    -1): where a model's error lives, and how much of it the many far pairs add."""

    sums: dict[int, ErrorSum] = field(default_factory=dict)
    edges: dict[int, int] = field(default_factory=dict)

    def add(self, graph: GraphBatch, err: np.ndarray, mask: np.ndarray, onsite: np.ndarray) -> None:
        """Errors ``err`` (E, n, n) on the edges of ``graph``; ``onsite``: (E,) bool."""
        pos = graph.pos.detach().cpu().numpy().astype(np.float64)
        i, j = graph.edge_index.cpu().numpy()
        dist = np.linalg.norm(pos[j] + graph.edge_offset.detach().cpu().numpy() - pos[i], axis=1)
        bins = np.where(onsite, -1, np.floor(dist / DISTANCE_BIN_ANGSTROM).astype(int))
        per_edge_sum, per_edge_cnt = _per_edge(err, mask)
        for b in np.unique(bins):
            sel = bins == b
            self.sums.setdefault(int(b), ErrorSum()).add_sum(per_edge_sum[sel].sum(), per_edge_cnt[sel].sum())
            self.edges[int(b)] = self.edges.get(int(b), 0) + int(sel.sum())

    def rows(self) -> list[dict[str, Any]]:
        """A row per occupied bin, on-site (0 to 0 Å) first: edges, values, MAE (meV) and share of the summed
        absolute error."""
        whole = sum(s.total for s in self.sums.values())
        return [{"from_angstrom": max(b, 0) * DISTANCE_BIN_ANGSTROM, "to_angstrom": (b + 1) * DISTANCE_BIN_ANGSTROM,
                 "n_edges": self.edges[b], "n_values": acc.count, "mae_mev": acc.mev(),
                 "share_of_error": acc.total / whole if whole else None}
                for b, acc in sorted(self.sums.items())]
