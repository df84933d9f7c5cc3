"""Orbital bases and the one place where orbital orders are converted.

A shell of angular momentum ``l`` holds ``2l+1`` real orbitals. Five orders for them meet in this package:

``"pyscf"``
    PySCF's spherical AO order: p as (x, y, z); ``l >= 2`` as the real spherical harmonics
    m = -l..l (d: xy, yz, z², xz, x²-y²), all with positive sign.
``"e3nn"``
    The components of e3nn's real spherical harmonics, so that a block transforms with
    ``e3nn.o3.Irrep(l, (-1)**l).D_from_matrix(R)``. e3nn's functions are the standard m = -l..l
    functions with the axes relabelled (x, y, z) -> (z, x, y); for l = 1 that is plain (x, y, z), for
    l >= 2 it mixes the m components, so the map is an orthogonal matrix, not a permutation.
    **This is the package's internal order**: every stored block is in it.
``"deeph"``
    The DeepH / OpenMX file order: p (x, y, z); d (z², x²-y², xy, xz, yz);
    f (m = 0, +1, -1, +2, -2, +3, -3).
``"sisl"``
    sisl's (SIESTA's) real spherical harmonics (``sisl.AtomicOrbital``): m = -l..l like "std" (p: y, z, x;
    d: xy, yz, z², xz, x²-y², the order of pymatgen's ``Orbital`` names too), each with the sign (-1)^m.
``"std"``
    The real spherical harmonics m = -l..l of Wikipedia's table, no Condon-Shortley phase: p (y, z, x),
    d (xy, yz, z², xz, x²-y²). DeePTB's files and DeepH-pack's newer layout (DeepH-dock's ``hamiltonian.h5``)
    are in it: both take OpenMX's order to it by the same permutation (DeePTB ``OPENMX2DeePTB``, DeepH-dock
    ``BASIS_TRANS_OPENMX2WIKI``), and PySCF's by relabelling p only (DeePTB ``PYSCF2DeePTB``).

Each order is written as an orthogonal matrix ``M`` from the standard m = -l..l order ("std", where l = 1 is
(y, z, x)): ``v_order = M @ v_std``. Converting a block between orders is ``T_i @ H @ T_j.T``.
These maps are proven numerically in ``tests/test_basis.py`` (PySCF orbital values against e3nn's spherical
harmonics, and rotated-molecule Fock matrices against ``D(R) F D(R)^T``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Mapping, Sequence

import numpy as np
from ase.data import atomic_numbers, chemical_symbols

from .dtypes import default_dtype
from .errors import UnknownElementError

ORDERS = ("pyscf", "e3nn", "deeph", "sisl", "std")

# Index k of an order holds std component _PERM[order][l][k] (std is m = -l..l).
_PERMS: dict[str, dict[int, tuple[int, ...]]] = {
    "pyscf": {1: (2, 0, 1)},
    "deeph": {1: (2, 0, 1), 2: (2, 4, 0, 3, 1), 3: (3, 4, 2, 5, 1, 6, 0)},
}
_DEEPH_LMAX = 3


def _permutation_matrix(perm: Sequence[int]) -> np.ndarray:
    return np.eye(len(perm))[list(perm)]


@lru_cache(maxsize=None)
def _from_std(l: int, order: str) -> np.ndarray:
    """Orthogonal matrix M with v_order = M @ v_std for one shell of angular momentum l."""
    if order not in ORDERS:
        raise ValueError(f"unknown orbital order {order!r}; choose one of {ORDERS}")
    if l < 0:
        raise ValueError(f"angular momentum must be >= 0, got {l}")
    if order == "e3nn":
        # e3nn_Y(r) = Y_std(P r) with P r = (z, x, y), hence e3nn_Y = D_e3nn(P) Y_std.
        return wigner_d(l, np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    if order == "sisl":
        # sisl evaluates SIESTA's harmonics: Condon-Shortley phase kept in the real combinations (p_y = -y, p_x = -x).
        return np.diag([(-1.0) ** abs(m) for m in range(-l, l + 1)])
    if order == "deeph" and l > _DEEPH_LMAX:
        raise ValueError(f"the DeepH/OpenMX order is defined up to l = {_DEEPH_LMAX}, got l = {l}")
    perm = _PERMS.get(order, {}).get(l, tuple(range(2 * l + 1)))
    return _permutation_matrix(perm)


def wigner_d(l: int, rotation: np.ndarray) -> np.ndarray:
    """e3nn's real Wigner matrix D^l(R) of a proper rotation, exact to float64 round-off.

    e3nn builds its SO(3) generators in torch's default dtype; under float32 the result is only good to
    ~1e-7, so the default is raised to float64 for the call.
    """
    import torch
    from e3nn import o3

    rotation = np.asarray(rotation, dtype=float)
    if rotation.shape != (3, 3) or not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-10):
        raise ValueError("rotation must be a 3x3 orthogonal matrix")
    if np.linalg.det(rotation) < 0:
        raise ValueError("rotation must be proper (det = +1); handle inversion through parity")
    with default_dtype(torch.float64):
        d = o3.Irrep(l, (-1) ** l).D_from_matrix(torch.as_tensor(rotation, dtype=torch.float64))
    return d.numpy().copy()


def orbital_rotation(ls: Sequence[int], rotation: np.ndarray) -> np.ndarray:
    """Block-diagonal D(R) over the shells ``ls`` (e3nn order): a block becomes ``D_i @ H @ D_j.T``."""
    return _block_diag([wigner_d(l, rotation) for l in ls])


def _block_diag(blocks: Sequence[np.ndarray]) -> np.ndarray:
    n = sum(b.shape[0] for b in blocks)
    out = np.zeros((n, n))
    o = 0
    for b in blocks:
        d = b.shape[0]
        out[o : o + d, o : o + d] = b
        o += d
    return out


def shell_transform(l: int, src: str, dst: str) -> np.ndarray:
    """Matrix T with ``v_dst = T @ v_src`` for one shell of angular momentum ``l``."""
    return _from_std(l, dst) @ _from_std(l, src).T


def orbital_transform(ls: Sequence[int], src: str, dst: str) -> np.ndarray:
    """Block-diagonal T over the shells ``ls`` of one atom, ``v_dst = T @ v_src``."""
    return _block_diag([shell_transform(l, src, dst) for l in ls])


def symbol_of(element: str | int) -> str:
    """Chemical symbol of an element given by symbol or atomic number."""
    if isinstance(element, (int, np.integer)):
        if not 0 < int(element) < len(chemical_symbols):
            raise UnknownElementError(f"no element has atomic number {element}")
        return chemical_symbols[int(element)]
    if element not in atomic_numbers:
        raise UnknownElementError(f"{element!r} is not a chemical symbol")
    return element


@dataclass(frozen=True)
class OrbitalBasis:
    """Per-element orbital shells of a basis set, with the data needed to name and count them.

    ``shells[symbol]`` lists the angular momentum of each shell in PySCF's shell order (a contracted shell
    with several radial functions counts once per function). ``valence[symbol]`` is the electron count of the
    neutral atom (its nuclear charge, or the pseudopotential's valence charge).
    """

    name: str
    shells: Mapping[str, tuple[int, ...]]
    valence: Mapping[str, int]
    pseudo: str | None = None
    _transforms: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_pyscf(cls, name: str, elements: Iterable[str | int], pseudo: str | None = None) -> "OrbitalBasis":
        """Read the shells of ``elements`` from a PySCF basis name (``"def2-svp"``, ``"gth-dzvp"``, ...)."""
        shells: dict[str, tuple[int, ...]] = {}
        valence: dict[str, int] = {}
        for el in elements:
            sym = symbol_of(el)
            if sym in shells:
                continue
            shells[sym], valence[sym] = _pyscf_shells(name, sym, pseudo)
        return cls(name=name, shells=shells, valence=valence, pseudo=pseudo)

    @property
    def elements(self) -> tuple[str, ...]:
        return tuple(self.shells)

    def shells_of(self, element: str | int) -> tuple[int, ...]:
        """Angular momenta of the shells of ``element``; a clear error if the basis lacks it."""
        sym = symbol_of(element)
        try:
            return tuple(self.shells[sym])
        except KeyError:
            raise UnknownElementError(
                f"element {sym!r} is not in basis {self.name!r} (it covers: {', '.join(self.shells) or 'nothing'})"
            ) from None

    def norb(self, element: str | int) -> int:
        """Number of orbitals of one atom of ``element``."""
        return sum(2 * l + 1 for l in self.shells_of(element))

    def irreps(self, element: str | int) -> str:
        """e3nn irreps string of one atom's orbitals, shell by shell (``"1x0e+1x0e+1x1o+1x1o+1x2e"``)."""
        return "+".join(f"1x{l}{'e' if l % 2 == 0 else 'o'}" for l in self.shells_of(element))

    def transform(self, element: str | int, src: str, dst: str) -> np.ndarray:
        """Orthogonal matrix taking one atom's orbital vector from order ``src`` to ``dst``."""
        key = (symbol_of(element), src, dst)
        if key not in self._transforms:
            self._transforms[key] = orbital_transform(self.shells_of(element), src, dst)
        return self._transforms[key]

    def convert_block(self, block: np.ndarray, zi: str | int, zj: str | int, src: str, dst: str) -> np.ndarray:
        """Convert an orbital block between atoms ``zi`` and ``zj`` from order ``src`` to ``dst``."""
        return self.transform(zi, src, dst) @ block @ self.transform(zj, src, dst).T

    def rotation(self, numbers: Sequence[int], rotation: np.ndarray) -> np.ndarray:
        """D(R) over a structure's orbitals (e3nn order): a cell-sized matrix transforms as ``D @ H @ D.T``."""
        return _block_diag([orbital_rotation(self.shells_of(z), rotation) for z in numbers])

    def structure_transform(self, numbers: Sequence[int], src: str, dst: str) -> np.ndarray:
        """Orthogonal matrix over a structure's orbitals from order ``src`` to ``dst``: ``M @ A @ M.T`` converts
        any cell-sized matrix (Hamiltonian, overlap or density matrix)."""
        return _block_diag([self.transform(z, src, dst) for z in numbers])

    def atom_offsets(self, numbers: Sequence[int]) -> np.ndarray:
        """Start index of each atom's orbitals in a structure's orbital list (length N+1)."""
        return np.concatenate([[0], np.cumsum([self.norb(z) for z in numbers])]).astype(int)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "pseudo": self.pseudo,
            "shells": {k: list(v) for k, v in self.shells.items()},
            "valence": dict(self.valence),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "OrbitalBasis":
        return cls(
            name=str(d["name"]),
            shells={str(k): tuple(int(x) for x in v) for k, v in d["shells"].items()},
            valence={str(k): int(v) for k, v in d["valence"].items()},
            pseudo=d.get("pseudo"),
        )


def _pyscf_shells(name: str, symbol: str, pseudo: str | None) -> tuple[tuple[int, ...], int]:
    from pyscf import gto

    try:
        raw = gto.basis.load(name, symbol)
    except Exception as exc:  # PySCF raises several types (KeyError, BasisNotFoundError, RuntimeError)
        raise UnknownElementError(f"element {symbol!r} is not in basis {name!r}: {exc}") from None
    if not raw:
        raise UnknownElementError(f"element {symbol!r} is not in basis {name!r}")
    valence = atomic_numbers[symbol]
    if pseudo:
        from pyscf.pbc.gto import pseudo as gth

        try:
            valence = int(sum(gth.load(pseudo, symbol)[0]))
        except Exception as exc:
            raise UnknownElementError(f"element {symbol!r} has no pseudopotential {pseudo!r}: {exc}") from None
    mol = gto.Mole()
    mol.atom = [[symbol, (0.0, 0.0, 0.0)]]
    mol.basis = {symbol: raw}
    mol.spin = valence % 2
    mol.charge = atomic_numbers[symbol] - valence  # only fixes the electron count; shells do not depend on it
    mol.verbose = 0
    mol.build()
    ls: list[int] = []
    for ib in range(mol.nbas):
        ls += [int(mol.bas_angular(ib))] * int(mol.bas_nctr(ib))
    return tuple(ls), valence
