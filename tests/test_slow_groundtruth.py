"""Heavy ground-truth checks at production settings (gth-dzvp). Skipped in CI; run with `pytest -m slow`."""

import numpy as np
import pytest
from ase.build import bulk, graphene

from tracegrad_ase.electronic.spectrum import near_band_edges
from tracegrad_ase.electronic import band_energies
from tracegrad_ase.engines.pyscf.scf import GroundTruthSettings, extract_blocks, reference_bands, run_scf

pytestmark = pytest.mark.slow


def _layer(formula, a):
    atoms = graphene(formula=formula, a=a, vacuum=7.5)
    atoms.pbc = [True, True, False]
    return atoms


@pytest.mark.parametrize("atoms", [_layer("C2", 2.46), _layer("BN", 2.50), bulk("Si", "diamond", a=5.43)],
                         ids=["graphene", "hBN", "Si"])
def test_dzvp_bands_from_blocks_within_5_mev_near_fermi(atoms):
    run = run_scf(atoms, GroundTruthSettings(basis="gth-dzvp"))  # default cutoff: the overlap range
    ham = extract_blocks(run)
    assert ham.hermiticity_error() < 1e-8
    path = atoms.cell.bandpath(npoints=25, pbc=atoms.pbc)
    ours = band_energies(ham, path.kpts)
    ref = reference_bands(run, path.kpts)[:, : ours.shape[1]]
    near = near_band_edges(ref, ham.meta["fermi_level_ev"])
    assert np.abs(ours - ref)[near].max() < 5e-3


def test_supercell_blocks_equal_primitive_blocks():
    """Periodicity: the H blocks of a 2x1x1 supercell equal those of its primitive cell."""
    prim = _layer("C2", 2.46)
    settings = GroundTruthSettings(basis="gth-szv", kmesh=(6, 6, 1), cutoff=6.0)
    hp = extract_blocks(run_scf(prim, settings))
    sup = prim.repeat((2, 1, 1))
    hs = extract_blocks(run_scf(sup, GroundTruthSettings(basis="gth-szv", kmesh=(3, 6, 1), cutoff=6.0)))
    ip = hp.index()
    cell = sup.cell.array
    pos = sup.positions
    worst = 0.0
    for (rx, ry, rz, i, j), n in hs.index().items():
        # supercell atom k is primitive atom k % 2 in primitive cell (k // 2, 0, 0)
        d = pos[j] + np.array([rx, ry, rz]) @ cell - pos[i]
        rp = (np.array([2 * rx + j // 2 - i // 2, ry, rz]))
        m = ip[(int(rp[0]), int(rp[1]), int(rp[2]), i % 2, j % 2)]
        assert np.allclose(hp.edge_vectors()[m], d)
        worst = max(worst, float(np.abs(hs.hamiltonian[n] - hp.hamiltonian[m]).max()))
    assert worst < 2e-3  # eV: same k-point sampling, SCF convergence and grid differences only
