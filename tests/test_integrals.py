"""The basis overlap S_ij(R): the chunked path for large cells gives the same blocks as one piece."""

import numpy as np
from ase.build import graphene, molecule

from tracegrad_ase.engines.pyscf import integrals
from tracegrad_ase.core.basis import OrbitalBasis
from tracegrad_ase.core.graphs import neighbor_list


def _edges(atoms, cutoff):
    nl = neighbor_list(atoms, cutoff, self_edges=True)
    return np.column_stack([nl.shifts, nl.i, nl.j])


def test_chunked_overlap_equals_whole_cell(monkeypatch):
    basis = OrbitalBasis.from_pyscf("gth-szv", ["C"], "gth-pbe")
    sheet = graphene(a=2.46, vacuum=5.0)
    sheet.pbc = [True, True, False]
    atoms = sheet.repeat((4, 3, 1))
    atoms.rattle(0.05, seed=3)
    edges = _edges(atoms, 6.0)
    whole = integrals.overlap_blocks(atoms, basis, edges)
    monkeypatch.setattr(integrals, "OVERLAP_CHUNK", 5)  # 24 atoms in 5 chunks
    chunked = integrals.overlap_blocks(atoms, basis, edges)
    assert max(np.abs(a - b).max() for a, b in zip(whole, chunked)) == 0.0


def test_chunked_overlap_with_several_elements(monkeypatch):
    basis = OrbitalBasis.from_pyscf("def2-svp", ["C", "H", "O"])
    mol = molecule("CH3CH2OH")
    edges = _edges(mol, 6.0)
    whole = integrals.overlap_blocks(mol, basis, edges)
    monkeypatch.setattr(integrals, "OVERLAP_CHUNK", 2)
    chunked = integrals.overlap_blocks(mol, basis, edges)
    assert all(a.shape == b.shape for a, b in zip(whole, chunked))
    assert max(np.abs(a - b).max() for a, b in zip(whole, chunked)) == 0.0
    on = [b for b, e in zip(whole, edges) if e[3] == e[4]]
    assert all(np.allclose(np.diag(b), 1.0) for b in on)  # normalized basis functions
