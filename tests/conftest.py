import os

# PySCF and BLAS share the CI machine's 2 cores with pytest; one thread each keeps timings predictable.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest


def benchmark_module(name: str):
    """A script of benchmarks/ as a module (its siblings, e.g. _results, importable while it loads)."""
    import importlib.util
    import sys
    from pathlib import Path

    bench = Path(__file__).parents[1] / "benchmarks"
    sys.path.insert(0, str(bench))
    try:
        spec = importlib.util.spec_from_file_location(name, bench / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(bench))
    return module


@pytest.fixture
def rng():
    return np.random.default_rng(20261125)


def random_rotation(rng) -> np.ndarray:
    """A uniformly random proper rotation matrix."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


def chain_hamiltonian(t: float = -1.0, s: float = 0.2):
    """One s orbital per cell along x: H(k) = 2t cos(2πk), S(k) = 1 + 2s cos(2πk)."""
    from ase import Atoms

    from tracegrad_ase.core.basis import OrbitalBasis
    from tracegrad_ase.core.hamiltonian import RealSpaceHamiltonian

    basis = OrbitalBasis(name="s", shells={"H": (0,)}, valence={"H": 1})
    atoms = Atoms("H", positions=[[0, 0, 0]], cell=[2.0, 10.0, 10.0], pbc=[True, False, False])
    edges = [(0, 0, 0, 0, 0), (1, 0, 0, 0, 0), (-1, 0, 0, 0, 0)]
    h = [np.array([[0.0]]), np.array([[t]]), np.array([[t]])]
    o = [np.array([[1.0]]), np.array([[s]]), np.array([[s]])]
    return RealSpaceHamiltonian(atoms, basis, edges, h, o)


A = 2.46  # Å, graphene's lattice constant in the tight-binding models below
T = -2.7  # eV, their nearest-neighbour hopping


def honeycomb(t: float = T, s: float = 0.0, gap: float = 0.0, t2: float = 0.0):
    """One orbital per site of a honeycomb sheet: nearest-neighbour hopping t and overlap s, on-site ±gap/2
    (h-BN-like when gap > 0), and an optional second-neighbour hopping t2 (breaks electron-hole symmetry)."""
    from ase import Atoms

    from tracegrad_ase.core.basis import OrbitalBasis
    from tracegrad_ase.core.hamiltonian import RealSpaceHamiltonian

    cell = np.array([[A, 0, 0], [-A / 2, A * np.sqrt(3) / 2, 0], [0, 0, 15.0]])
    pos = np.array([[0, 0, 0], [0, A / np.sqrt(3), 0]])
    atoms = Atoms("C2", positions=pos, cell=cell, pbc=[True, True, False])
    edges = [(0, 0, 0, 0, 0), (0, 0, 0, 1, 1)]
    h = [np.array([[gap / 2]]), np.array([[-gap / 2]])]
    o = [np.ones((1, 1)), np.ones((1, 1))]
    for i in (0, 1):
        for j in (0, 1):
            for r1 in (-1, 0, 1):
                for r2 in (-1, 0, 1):
                    dist = np.linalg.norm(pos[j] + r1 * cell[0] + r2 * cell[1] - pos[i])
                    if abs(dist - A / np.sqrt(3)) < 1e-6:
                        edges.append((r1, r2, 0, i, j))
                        h.append(np.array([[t]]))
                        o.append(np.array([[s]]))
                    elif t2 and abs(dist - A) < 1e-6:
                        edges.append((r1, r2, 0, i, j))
                        h.append(np.array([[t2]]))
                        o.append(np.zeros((1, 1)))
    basis = OrbitalBasis(name="pz", shells={"C": (0,)}, valence={"C": 1})
    return RealSpaceHamiltonian(atoms, basis, edges, h, o)


def square_lattice(t: float = 1.0, a: float = 3.0):
    """One orbital per site of a square sheet, hopping -t to 4 neighbours: ε(k) = -2t (cos k_x a + cos k_y a),
    parabolic near the bottom -4t with m* = ħ²/(2ta²)."""
    from ase import Atoms

    from tracegrad_ase.core.basis import OrbitalBasis
    from tracegrad_ase.core.hamiltonian import RealSpaceHamiltonian

    atoms = Atoms("H", positions=[[0, 0, 0]], cell=[a, a, 15.0], pbc=[True, True, False])
    edges = [(0, 0, 0, 0, 0), (1, 0, 0, 0, 0), (-1, 0, 0, 0, 0), (0, 1, 0, 0, 0), (0, -1, 0, 0, 0)]
    h = [np.zeros((1, 1))] + [np.array([[-t]])] * 4
    o = [np.ones((1, 1))] + [np.zeros((1, 1))] * 4
    basis = OrbitalBasis(name="s", shells={"H": (0,)}, valence={"H": 1})
    return RealSpaceHamiltonian(atoms, basis, edges, h, o)


def lone_atom(basis):
    """One carbon atom in a box and no periodic direction, as a RealSpaceHamiltonian: what a crystal-only routine
    must refuse."""
    from ase import Atoms

    from tracegrad_ase.core.hamiltonian import RealSpaceHamiltonian

    return RealSpaceHamiltonian(Atoms("C", positions=[[0, 0, 0]], cell=[10, 10, 10]), basis, [(0, 0, 0, 0, 0)],
                                [np.zeros((1, 1))], [np.ones((1, 1))])


def calculated_sheet(model):
    """Graphene in a 10 Å cell with a TraceGradCalculator of ``model`` on a 4x4 mesh attached (keep the Atoms:
    the calculator holds it weakly)."""
    from ase.build import graphene

    from tracegrad_ase.calculator import TraceGradCalculator

    sheet = graphene(a=2.46, vacuum=5.0)
    sheet.pbc = [True, True, False]
    sheet.calc = TraceGradCalculator(model, kpts=(4, 4, 1))
    return sheet


@pytest.fixture(scope="session")
def graphene_szv_scf():
    """A converged PySCF run of graphene (gth-szv, 3x3x1 SCF mesh, 10 Å cell) and its H(R), S(R) blocks: one SCF
    (~30 s) shared by every test module that needs a crystal's ground truth."""
    from ase.build import graphene

    from tracegrad_ase.engines.pyscf.scf import GroundTruthSettings, extract_blocks, run_scf

    atoms = graphene(a=2.46, vacuum=5.0)
    atoms.pbc = [True, True, False]
    run = run_scf(atoms, GroundTruthSettings(basis="gth-szv", kmesh=(3, 3, 1)))
    return run, extract_blocks(run)


# -- a toy TraceGrad model, and the carbon one most calculator tests use --------------------------------------------
REFERENCE = {  # plausible on-site levels (eV) per slot shell pair, so the random model has sensible bands
    "gth-szv": {"C": [[-12.0, 0], [0, -4.0]]},
    "sto-3g": {"H": [[-5.0, 0, 0], [0, 0, 0], [0, 0, 0]], "O": [[-500.0, 0, 0], [0, -25.0, 0], [0, 0, -8.0]]},
}


def toy_model(folder, name, elements, pseudo=None):
    """A small random TraceGrad model in basis ``name`` saved under ``folder/name`` (its folder is returned); the
    on-site references make its bands plausible. Seeded: the same call gives the same weights."""
    import torch

    from tracegrad_ase.core.basis import OrbitalBasis
    from tracegrad_ase.model import ModelConfig, build_model
    from tracegrad_ase.model.checkpoint import save_model

    basis = OrbitalBasis.from_pyscf(name, elements, pseudo=pseudo)
    torch.manual_seed(0)
    cfg = ModelConfig(elements=list(elements), basis=basis.to_dict(), cutoff=5.0, num_layers=1, muls=[4, 2, 2],
                      lmax_sh=2, tg_hidden=8, tg_z=4, target_scale=0.5,
                      onsite_reference=REFERENCE[name])
    return save_model(build_model(cfg), folder / name)


@pytest.fixture(scope="module")
def carbon(tmp_path_factory):
    """The toy carbon model (gth-szv) of a test module."""
    return toy_model(tmp_path_factory.mktemp("m"), "gth-szv", ["C"], "gth-pbe")


# -- equivariance, in the spirit of e3nn.util.test.assert_equivariant ---------------------------------------------
def rotated(atoms, rotation: np.ndarray):
    """``atoms`` with positions and cell rotated by ``rotation`` (a proper 3x3 rotation)."""
    out = atoms.copy()
    out.positions = atoms.positions @ rotation.T
    out.cell = atoms.cell[:] @ rotation.T
    return out


def rotation_error(predict, atoms, rotated_atoms, rotation, block_rotation, mapping=None):
    """Largest |D_i H_ij D_j^T - H'_ij| over the edges, and the largest |H|: ``predict(atoms)`` maps edge tuples
    ``(Rx, Ry, Rz, i, j)`` to blocks, ``block_rotation(symbol, rotation)`` gives D for an atom's orbitals, and
    ``mapping`` relabels an edge of ``atoms`` to its image in ``rotated_atoms`` (default: the same edge)."""
    a, b = predict(atoms), predict(rotated_atoms)
    sym = atoms.get_chemical_symbols()
    err = 0.0
    for (rx, ry, rz, i, j), h in a.items():
        key = (rx, ry, rz, i, j) if mapping is None else mapping(rx, ry, rz, i, j)
        di, dj = block_rotation(sym[i], rotation), block_rotation(sym[j], rotation)
        err = max(err, float(abs(di @ h @ dj.T - b[key]).max()))
    return err, max(float(abs(h).max()) for h in a.values())


def assert_equivariant(predict, atoms, rotation, block_rotation, rtol: float = 1e-12) -> None:
    """The blocks predicted for the rotated structure are the rotated blocks, to ``rtol`` of the largest block
    (which must not be trivially small)."""
    err, scale = rotation_error(predict, atoms, rotated(atoms, rotation), rotation, block_rotation)
    assert scale > 1e-2 and err < rtol * max(1.0, scale), (err, scale)
