"""From Atoms to a predicted Hamiltonian: overlap from the basis, model checks and out-of-domain warnings."""

import warnings

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule

from tracegrad_ase.core.basis import OrbitalBasis
from tracegrad_ase.core.errors import StructureError, UnknownElementError
from tracegrad_ase.engines.pyscf.integrals import overlap_blocks
from tracegrad_ase.model import ModelConfig, build_model
from tracegrad_ase.model.checkpoint import save_model
from tracegrad_ase.predict import OutOfDomainWarning, load, predict_hamiltonian, resolve_model
from tracegrad_ase.engines.pyscf.scf import GroundTruthSettings, ground_truth


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    basis = OrbitalBasis.from_pyscf("sto-3g", ["H", "O"])
    torch.manual_seed(0)
    cfg = ModelConfig(elements=["H", "O"], basis=basis.to_dict(), cutoff=4.0, num_layers=1, muls=[4, 2, 2],
                      lmax_sh=2, tg_hidden=8, tg_z=4)
    folder = tmp_path_factory.mktemp("models") / "water"
    domain = {"elements": ["H", "O"], "min_distance": {"H-H": 1.4, "H-O": 0.9}, "periodic": [False]}
    save_model(build_model(cfg), folder, metadata={"name": "water-test", "domain": domain})
    return folder


def test_predicted_blocks_and_overlap_from_the_basis(model_dir):
    model = load(model_dir)
    water = molecule("H2O")
    ham = predict_hamiltonian(water, model)
    assert ham.hermiticity_error() < 1e-6  # float32 model
    truth = ground_truth(water, GroundTruthSettings(basis="sto-3g"))
    # S is the basis' own overlap: the same as PySCF's in the ground truth
    idx = truth.index()
    for e, s in zip(ham.edges, ham.overlap):
        assert np.allclose(s, truth.overlap[idx[tuple(int(x) for x in e)]], atol=1e-10)
    assert ham.meta["nelectron"] == 10 and ham.norb == 7


def test_inference_inside_no_grad_matches(model_dir):
    model = load(model_dir)
    a = predict_hamiltonian(molecule("H2O"), model)
    with torch.no_grad():
        b = predict_hamiltonian(molecule("H2O"), model)
    assert max(np.abs(x - y).max() for x, y in zip(a.hamiltonian, b.hamiltonian)) == 0


def test_unknown_element_names_model_elements(model_dir):
    with pytest.raises(UnknownElementError, match="element\\(s\\) C not in the model \\(it knows H, O\\)"):
        predict_hamiltonian(molecule("CH4"), load(model_dir))


def test_too_close_for_the_model_and_out_of_domain(model_dir):
    model = load(model_dir)
    squeezed = Atoms("OH2", positions=[[0, 0, 0], [0.6, 0, 0], [-0.3, 0.9, 0]])
    with pytest.raises(StructureError, match="cannot be trusted below"):
        predict_hamiltonian(squeezed, model)
    close = Atoms("OH2", positions=[[0, 0, 0], [0.82, 0, 0], [-0.3, 0.93, 0]])
    with pytest.warns(OutOfDomainWarning, match="closer than any H-O pair"):
        predict_hamiltonian(close, model)
    crystal = molecule("H2O", vacuum=3.0)
    crystal.pbc = True
    with pytest.warns(OutOfDomainWarning, match="trained on molecules only"):
        predict_hamiltonian(crystal, model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predict_hamiltonian(molecule("H2O"), model)  # in-domain: silent


def test_crystal_without_cell_and_unknown_model_names(model_dir):
    atoms = Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]], pbc=True)
    with pytest.raises(StructureError, match="no cell vector"):
        predict_hamiltonian(atoms, load(model_dir))
    with pytest.raises(FileNotFoundError, match="no shipped model of that name"):
        resolve_model("no-such-model")


def test_overlap_blocks_periodic_match_truth_engine():
    from ase.build import graphene

    from tracegrad_ase.core.graphs import neighbor_list

    atoms = graphene(a=2.46, vacuum=4.0)
    basis = OrbitalBasis.from_pyscf("gth-szv", ["C"], pseudo="gth-pbe")
    nl = neighbor_list(atoms, 3.0, self_edges=True)
    edges = np.column_stack([nl.shifts, nl.i, nl.j])
    s = overlap_blocks(atoms, basis, edges)
    onsite = [b for b, e in zip(s, edges) if e[3] == e[4] and not e[:3].any()]
    assert all(np.allclose(np.diag(b), 1.0, atol=1e-6) for b in onsite)  # normalised GTOs
    rev = {tuple(e): n for n, e in enumerate(edges.tolist())}
    for n, (rx, ry, rz, i, j) in enumerate(edges.tolist()):
        assert np.allclose(s[n], s[rev[(-rx, -ry, -rz, j, i)]].T, atol=1e-12)
