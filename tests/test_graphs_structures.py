import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, graphene, molecule
from ase.neighborlist import neighbor_list as ase_neighbor_list

from tracegrad_ase.core.errors import StructureError
from tracegrad_ase.core.graphs import neighbor_list
from tracegrad_ase.core.structures import validate_atoms


@pytest.mark.parametrize("atoms", [bulk("Si", "diamond", a=5.43), graphene(a=2.46, vacuum=5.0), molecule("CH3CH2OH")])
def test_neighbor_list_matches_ase_and_edge_convention(atoms):
    if len(atoms.cell.array.nonzero()[0]) == 0:
        atoms.pbc = False
    nl = neighbor_list(atoms, 5.0)
    i, j, s = ase_neighbor_list("ijS", atoms, 5.0)
    ours = sorted(zip(nl.i.tolist(), nl.j.tolist(), map(tuple, nl.shifts.tolist())))
    theirs = sorted(zip(i.tolist(), j.tolist(), map(tuple, s.tolist())))
    assert ours == theirs
    cell = atoms.cell.array
    expect = atoms.positions[nl.j] + nl.shifts @ cell - atoms.positions[nl.i]
    assert np.allclose(nl.vectors, expect)
    # every edge has its reverse (j, i, -R): what Hermiticity H_ji(-R) = H_ij(R)^T needs
    edges = set(ours)
    assert all((b, a, tuple(-np.array(r))) in edges for a, b, r in ours)


@pytest.mark.parametrize("atoms", [bulk("Si", "diamond", a=5.43), graphene(a=2.46, vacuum=5.0), molecule("CH3CH2OH")])
def test_ase_backend_gives_the_same_edges(atoms):
    if not atoms.cell.array.any():
        atoms.pbc = False
    a, b = neighbor_list(atoms, 4.5, self_edges=True), neighbor_list(atoms, 4.5, self_edges=True, backend="ase")
    assert (a.i == b.i).all() and (a.j == b.j).all() and (a.shifts == b.shifts).all()
    assert np.allclose(a.vectors, b.vectors)


def test_self_edges_carry_on_site_blocks():
    nl = neighbor_list(molecule("H2O"), 2.0, self_edges=True)
    onsite = [(i, j) for i, j, r in zip(nl.i, nl.j, nl.shifts) if i == j and not r.any()]
    assert onsite == [(0, 0), (1, 1), (2, 2)]


def test_validate_atoms_periodic_image_too_close():
    atoms = Atoms("H", positions=[[0, 0, 0]], cell=[0.4, 5, 5], pbc=True)
    with pytest.raises(StructureError, match="atoms 0 \\(H\\) and 0 \\(H\\) are 0.400 Å apart"):
        validate_atoms(atoms)


def test_validate_atoms_degenerate_cell_and_empty():
    with pytest.raises(StructureError, match="linearly dependent"):
        validate_atoms(Atoms("H", positions=[[0, 0, 0]], cell=[[1, 0, 0], [2, 0, 0], [0, 0, 3]], pbc=True))
    with pytest.raises(StructureError, match="no atoms"):
        validate_atoms(Atoms())
    validate_atoms(graphene(a=2.46, vacuum=5.0))  # a good one passes


def test_reverse_index_pairs_every_edge_with_its_reverse():
    from tracegrad_ase.model.data import reverse_index

    atoms = graphene(a=2.46, vacuum=5.0).repeat((3, 2, 1))
    atoms.pbc = [True, True, False]
    nl = neighbor_list(atoms, 6.0, self_edges=True)
    edges = np.column_stack([nl.shifts, nl.i, nl.j]).astype(np.int64)
    edges = edges[np.random.default_rng(0).permutation(len(edges))]
    rev = reverse_index(edges)
    assert np.array_equal(edges[rev][:, :3], -edges[:, :3])
    assert np.array_equal(edges[rev][:, 3], edges[:, 4]) and np.array_equal(edges[rev][:, 4], edges[:, 3])
    assert np.array_equal(rev[rev], np.arange(len(edges)))
    with pytest.raises(ValueError, match="no reverse edge"):
        reverse_index(edges[np.flatnonzero(edges[:, 3] != edges[:, 4])[1:]])
