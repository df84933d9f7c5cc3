"""sisl interchange: a :class:`~tracegrad_ase.core.hamiltonian.RealSpaceHamiltonian` as a non-orthogonal
``sisl.Hamiltonian`` (H and S) and back, so sisl's fat bands, COOP/COHP, Berry phases and TBtrans run on it.

Why here (layer 2) and not in ``interop``: the conversion needs only :mod:`~tracegrad_ase.core`, and the
calculator (layer 7, below ``interop``) offers ``TraceGradCalculator.to_sisl()``; ``core`` may import nothing
above it, so ``RealSpaceHamiltonian`` has no ``to_sisl`` method: call :func:`to_sisl` ``(ham)``.

Conventions. sisl stores H in supercell form: rows are the ``no`` orbitals of the cell, column ``isc * no + jo``
is orbital ``jo`` in the image cell ``lattice.sc_off[isc]``; that is our edge ``(R, i, j)`` with
``H_ij(R) = <i, 0|H|j, R>`` (``core.graphs``), and sisl's lattice gauge ``H(k) = sum_R exp(2 pi i k.R) H(R)``
with k fractional is ours. ``nsc`` along a periodic axis is ``2 max|R| + 1``, 1 along a non-periodic one (whose
boundary condition is sisl's ``UNKNOWN``, what ``Lattice.pbc = False`` sets). Orbitals are ``sisl.AtomicOrbital``
with their l and m in sisl's order (:mod:`core.basis` order ``"sisl"``, SIESTA's real harmonics), so sisl's
projections name the right orbitals; n is the lowest for l (the basis records no principal quantum numbers),
zeta counts the shells of one l, and ``q0`` spreads the neutral atom's valence over its orbitals. No radial
functions travel: sisl cannot put wavefunctions on a real-space grid from these orbitals. Energies eV, lengths Å.
``sisl`` is imported lazily: install it with ``pip install "tracegrad-ase[sisl]"``.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
from ase import Atoms

from ..core.basis import OrbitalBasis, symbol_of
from ..core.errors import DataFormatError, ElectronCountError, MismatchError, StructureError
from ..core.hamiltonian import RealSpaceHamiltonian

if TYPE_CHECKING:
    import sisl

__all__ = ["from_sisl", "to_sisl"]

#: Vacuum (Å) around a molecule that has no cell of its own: sisl's geometry always has a lattice.
MOLECULE_BOX_VACUUM = 10.0


def _sisl():
    try:
        import sisl
    except ImportError:
        raise ImportError('the sisl interface needs sisl (>= 0.20): pip install "tracegrad-ase[sisl]"') from None
    return sisl


def _cell(atoms: Atoms) -> np.ndarray:
    cell = np.asarray(atoms.cell[:], dtype=float)
    if atoms.cell.rank == 3:
        return cell
    if np.any(atoms.pbc):
        raise StructureError(f"a periodic structure needs three cell vectors for sisl (cell rank {atoms.cell.rank})")
    span = np.ptp(atoms.positions, axis=0) if len(atoms) else np.zeros(3)
    return np.diag(span + MOLECULE_BOX_VACUUM)


def _nsc(ham: RealSpaceHamiltonian) -> list[int]:
    reach = np.abs(ham.edges[:, :3]).max(axis=0) if len(ham.edges) else np.zeros(3, dtype=np.int64)
    pbc = np.asarray(ham.atoms.pbc, dtype=bool)
    bad = np.nonzero(~pbc & (reach > 0))[0]
    if len(bad):
        raise StructureError(f"edges reach {int(reach[bad[0]])} cells along the non-periodic axis {int(bad[0])}")
    return [int(2 * r + 1) for r in reach]


def _species(sisl_mod, basis: OrbitalBasis, z: int):
    """One sisl.Atom per element: its orbitals shell by shell, m = -l..l, q0 = valence / norb each."""
    sym = symbol_of(int(z))
    ls = basis.shells_of(sym)
    if sym not in basis.valence:
        raise ElectronCountError(f"no valence charge for {sym} in basis {basis.name!r} (foreign data read without "
                                 "valence=): sisl's orbital charges q0 need it")
    q0 = basis.valence[sym] / basis.norb(sym)
    zeta: Counter = Counter()
    orbitals = []
    for l in ls:
        zeta[l] += 1
        orbitals += [sisl_mod.AtomicOrbital(n=l + 1, l=l, m=m, zeta=zeta[l], q0=q0) for m in range(-l, l + 1)]
    return sisl_mod.Atom(int(z), orbitals=orbitals)


def _convert(basis: OrbitalBasis, numbers: np.ndarray, pairs: np.ndarray, blocks: list[np.ndarray], src: str,
             dst: str) -> list[np.ndarray]:
    """``T_i @ B @ T_j.T`` for every block, one batched product per element pair."""
    out: list[np.ndarray] = [np.empty(0)] * len(blocks)
    zi, zj = numbers[pairs[:, 0]], numbers[pairs[:, 1]]
    for a, b in sorted(set(zip(zi.tolist(), zj.tolist()))):
        sel = np.nonzero((zi == a) & (zj == b))[0]
        stack = basis.transform(a, src, dst) @ np.stack([blocks[e] for e in sel]) @ basis.transform(b, src, dst).T
        for e, blk in zip(sel, stack):
            out[e] = blk
    return out


def to_sisl(ham: RealSpaceHamiltonian) -> "sisl.Hamiltonian":
    """A non-orthogonal ``sisl.Hamiltonian`` (eV, with the overlap) holding every block of ``ham``.

    Orbitals go from the internal e3nn order to sisl's (``core.basis`` order ``"sisl"``); a molecule without
    a cell gets a box with :data:`MOLECULE_BOX_VACUUM` Å of vacuum. ``from_sisl(to_sisl(ham))`` gives ``ham``
    back, to the round-off of the orthogonal order maps (~1e-13 eV).
    """
    import scipy.sparse as sp

    sisl_mod = _sisl()
    atoms, basis, edges = ham.atoms, ham.basis, ham.edges
    bc = [sisl_mod.BoundaryCondition.PERIODIC if p else sisl_mod.BoundaryCondition.UNKNOWN for p in atoms.pbc]
    lattice = sisl_mod.Lattice(_cell(atoms), nsc=_nsc(ham), boundary_condition=bc)
    kinds = {int(z): _species(sisl_mod, basis, int(z)) for z in dict.fromkeys(atoms.numbers.tolist())}
    geom = sisl_mod.Geometry(atoms.positions.copy(), atoms=[kinds[int(z)] for z in atoms.numbers], lattice=lattice)
    no, off = ham.norb, ham.offsets
    isc = np.asarray(lattice.sc_index(edges[:, :3]), dtype=np.int64).reshape(-1) if len(edges) else edges[:, 0]
    pairs = edges[:, 3:]
    h = _convert(basis, atoms.numbers, pairs, [np.asarray(b) for b in ham.hamiltonian], "e3nn", "sisl")
    s = _convert(basis, atoms.numbers, pairs, [np.asarray(b) for b in ham.overlap], "e3nn", "sisl")
    rows, cols = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    for e, (i, j) in enumerate(pairs):
        r, c = np.meshgrid(np.arange(off[i], off[i + 1]), isc[e] * no + np.arange(off[j], off[j + 1]), indexing="ij")
        rows.append(r.ravel())
        cols.append(c.ravel())
    rc = (np.concatenate(rows), np.concatenate(cols))
    shape = (no, no * lattice.n_s)
    hmat = sp.csr_matrix((np.concatenate([np.zeros(0)] + [b.ravel() for b in h]), rc), shape=shape)
    smat = sp.csr_matrix((np.concatenate([np.zeros(0)] + [b.ravel() for b in s]), rc), shape=shape)
    return sisl_mod.Hamiltonian.fromsp(geom, hmat, smat)


def _shells_of_species(atom: Any) -> tuple[tuple[int, ...], np.ndarray]:
    """(shell l's, permutation taking our m = -l..l slots to the species' orbital positions)."""
    ls: list[int] = []
    perm: list[int] = []
    orbs = list(atom.orbitals)
    pos = 0
    while pos < len(orbs):
        o = orbs[pos]
        l = getattr(o, "l", None)
        if l is None or getattr(o, "m", None) is None:
            raise DataFormatError(f"sisl atom {atom.symbol}: orbital {pos} ({type(o).__name__}) has no l and m; "
                                 "from_sisl needs AtomicOrbital or SphericalOrbital-based orbitals")
        shell = orbs[pos : pos + 2 * l + 1]
        key = lambda q: (getattr(q, "n", None), q.l, getattr(q, "zeta", None), getattr(q, "P", None))  # noqa: E731
        ms = [int(q.m) for q in shell]
        if len(shell) < 2 * l + 1 or any(key(q) != key(o) for q in shell) or sorted(ms) != list(range(-l, l + 1)):
            raise DataFormatError(f"sisl atom {atom.symbol}: orbitals {pos}.. do not form a complete l = {l} shell "
                                 f"(m = {ms})")
        ls.append(int(l))
        perm += [pos + ms.index(m) for m in range(-l, l + 1)]
        pos += 2 * l + 1
    return tuple(ls), np.asarray(perm, dtype=np.int64)


def _basis_from(geom: Any, basis: OrbitalBasis | None, valence: Mapping[str, int] | None, name: str
                ) -> tuple[OrbitalBasis, dict[str, np.ndarray]]:
    shells: dict[str, tuple[int, ...]] = {}
    perms: dict[str, np.ndarray] = {}
    charges: dict[str, int] = {}
    for atom in geom.atoms.atom:
        sym = symbol_of(int(atom.Z))
        ls, perm = _shells_of_species(atom)
        if sym in shells and shells[sym] != ls:
            raise DataFormatError(f"two sisl species of {sym} have different orbitals: our basis keeps one per element")
        shells[sym], perms[sym] = ls, perm
        q0 = float(np.sum(atom.q0))
        if q0 > 0:
            charges[sym] = int(round(q0))
    if basis is not None:
        for sym, ls in shells.items():
            if basis.shells_of(sym) != ls:
                raise MismatchError(f"{sym}: sisl has shells l = {list(ls)}, basis {basis.name!r} has "
                                     f"{list(basis.shells_of(sym))}")
        return basis, perms
    charges.update(valence or {})
    missing = sorted(set(shells) - set(charges))
    if missing:
        raise DataFormatError(f"the sisl atoms of {', '.join(missing)} carry no valence charge (q0): pass valence="
                             "{'El': electrons of the neutral atom} or basis=")
    return OrbitalBasis(name=name, shells=shells, valence={s: charges[s] for s in shells}), perms


def _canonical(m):
    m = m.tocsr()
    m.sum_duplicates()
    m.sort_indices()
    return m


def from_sisl(H: "sisl.Hamiltonian", basis: OrbitalBasis | None = None, valence: Mapping[str, int] | None = None,
              name: str = "sisl") -> RealSpaceHamiltonian:
    """A :class:`RealSpaceHamiltonian` (e3nn order, eV) from a spin-unpolarized, non-orthogonal sisl Hamiltonian.

    Every stored (row, supercell column) entry becomes part of an edge block, so the edges are the atom pairs
    and image shifts sisl holds. Each species' orbitals must carry l and m (``AtomicOrbital``; any m order within
    a shell). The basis: ``basis`` when given (its shells must match), else one named ``name`` with shells from
    the orbitals and the valence from sisl's ``q0`` or ``valence``. ``pbc`` is the lattice's periodicity.
    """
    sisl_mod = _sisl()
    if not isinstance(H, sisl_mod.Hamiltonian):
        raise TypeError(f"expected a sisl.Hamiltonian, got {type(H).__name__}")
    if not H.spin.is_unpolarized:
        raise DataFormatError(f"from_sisl takes a spin-unpolarized Hamiltonian, got {H.spin}")
    if H.orthogonal:
        raise DataFormatError("from_sisl needs a non-orthogonal Hamiltonian (with S): ours always has an overlap")
    geom = H.geometry
    basis, perms = _basis_from(geom, basis, valence, name)
    atoms = Atoms(numbers=geom.atoms.Z, positions=geom.xyz, cell=geom.cell, pbc=geom.lattice.pbc)
    no, numbers = geom.no, atoms.numbers
    off = basis.atom_offsets(numbers)
    # Our orbital slot -> sisl orbital index, atom by atom (shell order kept, m sorted to -l..l).
    slot_to_sisl = np.concatenate([geom.firsto[a] + perms[symbol_of(int(z))] for a, z in enumerate(numbers)])
    sisl_to_slot = np.empty(no, dtype=np.int64)
    sisl_to_slot[slot_to_sisl] = np.arange(no)
    hc, sc = _canonical(H.tocsr(0)), _canonical(H.tocsr(H.S_idx))
    if not (np.array_equal(hc.indptr, sc.indptr) and np.array_equal(hc.indices, sc.indices)):
        sc = _canonical(sc + 0.0 * hc)  # one pattern for both (sisl stores them together, so this is rare)
        hc = _canonical(hc + 0.0 * sc)
    rows = sisl_to_slot[np.repeat(np.arange(no), np.diff(hc.indptr))]
    isc, col_orb = hc.indices // no, sisl_to_slot[hc.indices % no]
    atom_of = np.repeat(np.arange(len(numbers)), np.diff(off))
    ai, aj = atom_of[rows], atom_of[col_orb]
    shifts = np.asarray(geom.lattice.sc_off, dtype=np.int64)[isc]
    uniq, which = np.unique(np.column_stack([ai, aj, shifts]), axis=0, return_inverse=True)  # (i, j, R) order
    which = which.reshape(-1)
    ni, nj = np.diff(off)[uniq[:, 0]], np.diff(off)[uniq[:, 1]]
    start = np.concatenate([[0], np.cumsum(ni * nj)])
    flat = start[which] + (rows - off[ai]) * nj[which] + (col_orb - off[aj])
    hbuf, sbuf = np.zeros(start[-1], dtype=hc.data.dtype), np.zeros(start[-1], dtype=sc.data.dtype)
    hbuf[flat], sbuf[flat] = hc.data, sc.data
    hblocks = [hbuf[start[e]:start[e + 1]].reshape(ni[e], nj[e]) for e in range(len(uniq))]
    sblocks = [sbuf[start[e]:start[e + 1]].reshape(ni[e], nj[e]) for e in range(len(uniq))]
    edges = np.column_stack([uniq[:, 2:], uniq[:, :2]]).reshape(-1, 5)
    h = _convert(basis, numbers, uniq[:, :2], hblocks, "sisl", "e3nn")
    s = _convert(basis, numbers, uniq[:, :2], sblocks, "sisl", "e3nn")
    return RealSpaceHamiltonian(atoms=atoms, basis=basis, edges=edges, hamiltonian=h, overlap=s,
                                meta={"source": "sisl", "sisl_version": str(sisl_mod.__version__)})
