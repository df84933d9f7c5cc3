"""Padded orbital layout of a model and the Clebsch-Gordan map between equivariant outputs and H blocks.

A model covers several elements whose bases differ (H: 2s1p, O: 3s2p1d). Every atom's orbitals are placed
into one padded list of "slots": for each l, as many shells as the element with most shells of that l has.
An atom-pair block is then a fixed ``n_slots x n_slots`` matrix with a mask, and one equivariant output of
irreps ``irreps_out`` per edge rebuilds it:

    H_ab = sum_l  C(l_a, l_b, l) . h^(l)          for every slot-shell pair (a, b), l = |l_a-l_b| .. l_a+l_b

with C = sqrt(2l+1) * e3nn.o3.wigner_3j(l_a, l_b, l), orthonormal, so the map is an orthogonal matrix and
||H_ab||^2 = sum_l ||h^(l)||^2. The trace labels of TraceGrad are these squared norms: T_ab = tr(H_ab H_ab^T)
per shell pair ("shell_pair") or T^(l)_ab = ||h^(l)||^2 per degree ("degree").

No ASE and no data files here: the layout is built from an :class:`OrbitalBasis` and a list of elements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..core.basis import OrbitalBasis, symbol_of
from ..core.dtypes import default_dtype


def _float64_wigner_3j(l1: int, l2: int, l3: int) -> np.ndarray:
    # e3nn builds wigner_3j in torch's default dtype; in float32 it is only good to ~1e-7.
    from e3nn import o3

    with default_dtype(torch.float64):
        return o3.wigner_3j(l1, l2, l3).numpy().copy()


@dataclass
class BlockLayout:
    """Slots, masks and the CG map of a model's elements (see module docstring)."""

    elements: tuple[str, ...]
    slot_ls: tuple[int, ...]  # l of each slot shell, grouped by l
    element_orbitals: dict[str, np.ndarray]  # element -> slot-orbital index of each of its own orbitals
    shell_pairs: tuple[tuple[int, int], ...]  # (slot shell a, slot shell b) in output order
    irreps_out: str  # e3nn irreps of one edge's output vector
    cg: np.ndarray  # (n_slots_orb**2, dim_out): flattened padded block = cg @ output
    degree_of_output: np.ndarray  # (dim_out,) index into `degrees` of each output component
    degrees: tuple[tuple[int, int, int], ...]  # (a, b, l) of each degree component

    @classmethod
    def build(cls, basis: OrbitalBasis, elements) -> "BlockLayout":
        elements = tuple(sorted({symbol_of(e) for e in elements}, key=lambda s: (len(s), s)))
        lmax = max(max(basis.shells_of(e), default=0) for e in elements)
        count = [max(basis.shells_of(e).count(l) for e in elements) for l in range(lmax + 1)]
        slot_ls = tuple(l for l in range(lmax + 1) for _ in range(count[l]))
        slot_start = np.concatenate([[0], np.cumsum([2 * l + 1 for l in slot_ls])]).astype(int)
        first_slot_of_l = {l: slot_ls.index(l) for l in set(slot_ls)}
        element_orbitals = {}
        for e in elements:
            seen = {l: 0 for l in first_slot_of_l}
            idx = []
            for l in basis.shells_of(e):  # the element's own shell order, mapped to the k-th slot of that l
                slot = first_slot_of_l[l] + seen[l]
                seen[l] += 1
                idx += list(range(slot_start[slot], slot_start[slot] + 2 * l + 1))
            element_orbitals[e] = np.asarray(idx, dtype=np.int64)
        n = int(slot_start[-1])
        pairs, irreps, cols, degree_of_output, degrees = [], [], [], [], []
        dim = 0
        for a, la in enumerate(slot_ls):
            for b, lb in enumerate(slot_ls):
                pairs.append((a, b))
                for l in range(abs(la - lb), la + lb + 1):
                    parity = "e" if (la + lb) % 2 == 0 else "o"
                    irreps.append(f"1x{l}{parity}")
                    c = np.sqrt(2 * l + 1) * _float64_wigner_3j(la, lb, l)  # (2la+1, 2lb+1, 2l+1)
                    for m in range(2 * l + 1):
                        full = np.zeros((n, n))
                        full[slot_start[a] : slot_start[a + 1], slot_start[b] : slot_start[b + 1]] = c[:, :, m]
                        cols.append(full.ravel())
                        degree_of_output.append(len(degrees))
                    degrees.append((a, b, l))
                    dim += 2 * l + 1
        return cls(
            elements=elements,
            slot_ls=slot_ls,
            element_orbitals=element_orbitals,
            shell_pairs=tuple(pairs),
            irreps_out="+".join(irreps),
            cg=np.stack(cols, axis=1),
            degree_of_output=np.asarray(degree_of_output, dtype=np.int64),
            degrees=tuple(degrees),
        )

    # -- sizes ------------------------------------------------------------------------------------
    @property
    def n_orb(self) -> int:
        """Slot orbitals per atom (padded)."""
        return int(sum(2 * l + 1 for l in self.slot_ls))

    @property
    def slot_start(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum([2 * l + 1 for l in self.slot_ls])]).astype(int)

    def orbital_mask(self, element: str) -> np.ndarray:
        """Boolean (n_orb,) mask of the slot orbitals an element uses."""
        m = np.zeros(self.n_orb, dtype=bool)
        m[self.element_orbitals[element]] = True
        return m

    def species_index(self, element: str | int) -> int:
        return self.elements.index(symbol_of(element))

    # -- blocks <-> padded ------------------------------------------------------------------------
    def pad_block(self, block: np.ndarray, zi: str | int, zj: str | int) -> np.ndarray:
        """Place an element-pair block (e3nn order) into the padded ``n_orb x n_orb`` layout."""
        out = np.zeros((self.n_orb, self.n_orb), dtype=block.dtype)
        oi, oj = self.element_orbitals[symbol_of(zi)], self.element_orbitals[symbol_of(zj)]
        out[np.ix_(oi, oj)] = block
        return out

    def unpad_block(self, padded: np.ndarray, zi: str | int, zj: str | int) -> np.ndarray:
        oi, oj = self.element_orbitals[symbol_of(zi)], self.element_orbitals[symbol_of(zj)]
        return np.asarray(padded)[np.ix_(oi, oj)]

    def unpad_blocks(self, padded, symbols: Sequence[str | int], i: np.ndarray, j: np.ndarray,
                     dtype=np.float64) -> list[np.ndarray]:
        """:meth:`unpad_block` for every edge ``(i[e], j[e])`` at once, ``padded`` (E, n_orb, n_orb) and the atoms'
        elements ``symbols``: one slice per element pair, so a million-edge prediction is not a million
        fancy-index calls. The blocks are views of one array per pair."""
        per_atom = np.array([symbol_of(z) for z in symbols])
        zi, zj = per_atom[np.asarray(i)], per_atom[np.asarray(j)]
        out: list = [None] * len(zi)
        for a in np.unique(zi):
            for b in np.unique(zj[zi == a]):
                idx = np.flatnonzero((zi == a) & (zj == b))
                oi, oj = self.element_orbitals[a], self.element_orbitals[b]
                sub = np.asarray(padded[np.ix_(idx, oi, oj)], dtype=dtype)
                for n, block in zip(idx.tolist(), sub):
                    out[n] = block
        return out

    # -- trace labels -----------------------------------------------------------------------------
    def shell_pair_matrix(self) -> np.ndarray:
        """(n_shell_pairs, n_orb**2) 0/1 matrix summing squared block entries into each shell pair's trace."""
        start = self.slot_start
        out = np.zeros((len(self.shell_pairs), self.n_orb * self.n_orb))
        for p, (a, b) in enumerate(self.shell_pairs):
            m = np.zeros((self.n_orb, self.n_orb))
            m[start[a] : start[a + 1], start[b] : start[b + 1]] = 1.0
            out[p] = m.ravel()
        return out

    def degree_matrix(self) -> np.ndarray:
        """(n_degrees, dim_out) 0/1 matrix summing squared output components into T^(l)_ab."""
        out = np.zeros((len(self.degrees), self.cg.shape[1]))
        out[self.degree_of_output, np.arange(self.cg.shape[1])] = 1.0
        return out

    def to_dict(self) -> dict:
        return {"elements": list(self.elements), "slot_ls": list(self.slot_ls),
                "element_orbitals": {k: v.tolist() for k, v in self.element_orbitals.items()}}
