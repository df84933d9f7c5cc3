import os

# PySCF and BLAS share the CI machine's 2 cores with pytest; one thread each keeps timings predictable.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest


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
