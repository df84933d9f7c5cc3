"""Crystal symmetry through spglib: space group, standard primitive cell, and the irreducible wedge of a
Γ-centred (or half-shifted) k-point mesh with its weights.

k-points are fractional reciprocal coordinates, ``k = (address + is_shift / 2) / mesh`` with spglib's grid
addresses; :func:`full_mesh` lists the whole mesh in that same order, so ``full_mesh(mesh)[i]`` and
``kpts[mapping[i]]`` are symmetry-equivalent. No torch here: plain arrays only.

spglib sees every cell as 3-D. A slab or sheet (some ``pbc`` False) is fine as long as the mesh is 1 along
each non-periodic axis; the rotations that mix a non-periodic axis with a periodic one (possible only by
accident of the vacuum length) are not symmetries of the slab and are dropped before the mesh is reduced.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Sequence

import numpy as np
import spglib
from ase import Atoms

__all__ = ["cartesian_point_group", "equivalent_atoms", "full_mesh", "irreducible_kpoints", "orbit_mean", "spacegroup",
           "standard_primitive", "symmetrize_tensor"]


def _spglib(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call spglib, failing with ValueError whether it reports errors the old way (None) or the new (raise).

    spglib 2.7-2.x warns (DeprecationWarning) on every call under its old error handling; the switch is
    global state shared with phonopy and pymatgen, so it is silenced here rather than flipped.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            out = fn(*args, **kwargs)
        except spglib.error.SpglibError as exc:
            raise ValueError(f"spglib.{fn.__name__} failed: {exc}") from exc
        if out is None:
            raise ValueError(f"spglib.{fn.__name__} failed: {spglib.get_error_message()}")
    return out


def _cell(atoms: Atoms) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.asarray(atoms.cell[:], dtype=float), atoms.get_scaled_positions(wrap=True),
            np.asarray(atoms.numbers, dtype=np.intc))


def _dataset(atoms: Atoms, symprec: float) -> Any:
    if not np.any(atoms.pbc):
        raise ValueError("space-group symmetry needs a periodic structure (some pbc True)")
    return _spglib(spglib.get_symmetry_dataset, _cell(atoms), symprec=symprec)


def _slab_operations(atoms: Atoms, ds: Any) -> tuple[np.ndarray, np.ndarray]:
    """The (rotations, translations) of the dataset that keep every non-periodic axis to itself."""
    rot, trans = np.asarray(ds.rotations), np.asarray(ds.translations)
    keep = np.ones(len(rot), dtype=bool)
    for i in np.nonzero(~np.asarray(atoms.pbc))[0]:
        others = [j for j in range(3) if j != i]
        keep &= (rot[:, i, others] == 0).all(axis=1) & (rot[:, others, i] == 0).all(axis=1)
    return rot[keep], trans[keep]


def spacegroup(atoms: Atoms, symprec: float = 1e-5) -> dict[str, Any]:
    """Space group of ``atoms``: ``number`` (1-230), ``international`` (Hermann-Mauguin), ``hall`` and
    ``point_group`` symbols."""
    ds = _dataset(atoms, symprec)
    return {"number": int(ds.number), "international": str(ds.international), "hall": str(ds.hall),
            "point_group": str(ds.pointgroup)}


def standard_primitive(atoms: Atoms, symprec: float = 1e-5) -> Atoms:
    """spglib's standardized primitive cell (idealized: the cell may be rotated to the standard setting), with
    the input's ``pbc``.

    For a slab the standardization must keep each non-periodic axis the vacuum axis (same length, normal to the
    others): otherwise ``pbc`` would point at the wrong axis, and a ValueError is raised.
    """
    if not np.any(atoms.pbc):
        raise ValueError("a primitive cell needs a periodic structure (some pbc True)")
    lattice, scaled, numbers = _spglib(spglib.standardize_cell, _cell(atoms), to_primitive=True,
                                       no_idealize=False, symprec=symprec)
    prim = Atoms(numbers=numbers, cell=lattice, scaled_positions=scaled, pbc=atoms.pbc)
    old, new = np.asarray(atoms.cell[:]), np.asarray(prim.cell[:])
    for i in np.nonzero(~np.asarray(atoms.pbc))[0]:
        v = new[i] / np.linalg.norm(new[i])
        normal = all(abs(v @ new[j]) <= 1e-6 * np.linalg.norm(new[j]) for j in range(3) if j != i)
        if not normal or abs(np.linalg.norm(new[i]) - np.linalg.norm(old[i])) > 1e-6:
            raise ValueError(f"the standardized cell moved the non-periodic axis {i} (spglib treats the cell as 3-D)")
    return prim


def _check_mesh(mesh: Sequence[int], is_shift: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    m = np.asarray(mesh)
    s = np.asarray(is_shift)
    if m.shape != (3,) or not np.issubdtype(m.dtype, np.integer) or (m < 1).any():
        raise ValueError(f"a k-point mesh is 3 positive integers, got {list(mesh)}")
    if s.shape != (3,) or not np.isin(s, (0, 1)).all():
        raise ValueError(f"is_shift is 3 values of 0 (Γ-centred) or 1 (half-step shift), got {list(is_shift)}")
    return m.astype(np.intc), s.astype(np.intc)


def _fractional(address: np.ndarray, mesh: np.ndarray, shift: np.ndarray) -> np.ndarray:
    return (address + 0.5 * shift) / mesh


def full_mesh(mesh: Sequence[int], is_shift: Sequence[int] = (0, 0, 0)) -> np.ndarray:
    """All ``prod(mesh)`` fractional k-points of the mesh, in spglib's grid order (first axis fastest,
    addresses folded to about (-1/2, 1/2])."""
    m, s = _check_mesh(mesh, is_shift)
    # spglib itself lists the addresses (identity only, no time reversal), so the order and the folding are
    # exactly those of irreducible_kpoints' mapping.
    _, grid = _spglib(spglib.get_stabilized_reciprocal_mesh, m, np.eye(3, dtype=np.intc)[None], is_shift=s,
                      is_time_reversal=False)
    return _fractional(grid, m, s)


def irreducible_kpoints(atoms: Atoms, mesh: Sequence[int], is_shift: Sequence[int] = (0, 0, 0),
                        symprec: float = 1e-5, time_reversal: bool = True
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The irreducible k-points of a mesh under the crystal's point group (and k -> -k with
    ``time_reversal``, valid for a real, spin-restricted Hamiltonian).

    Returns ``kpts`` (nk, 3) fractional, ``weights`` (nk,) summing to 1 (the share of the full mesh each point
    stands for) and ``mapping`` (prod(mesh),): the irreducible index of every point of :func:`full_mesh`.
    The mesh must be 1 along each non-periodic axis.
    """
    m, s = _check_mesh(mesh, is_shift)
    flat = ~np.asarray(atoms.pbc)
    if (m[flat] != 1).any() or (s[flat] != 0).any():
        raise ValueError(f"the mesh must be 1 (unshifted) along non-periodic axes: pbc={list(atoms.pbc)}, "
                         f"mesh={list(mesh)}, is_shift={list(is_shift)}")
    if flat.any():
        rot, _ = _slab_operations(atoms, _dataset(atoms, symprec))
        grid_map, grid = _spglib(spglib.get_stabilized_reciprocal_mesh, m, np.ascontiguousarray(rot, dtype=np.intc),
                                 is_shift=s, is_time_reversal=time_reversal)
    else:
        grid_map, grid = _spglib(spglib.get_ir_reciprocal_mesh, m, _cell(atoms), is_shift=s,
                                 is_time_reversal=time_reversal, symprec=symprec)
    # spglib maps every grid point to the lowest-index point of its star; renumber those stars 0..nk-1.
    ir, mapping, counts = np.unique(grid_map, return_inverse=True, return_counts=True)
    return _fractional(grid[ir], m, s), counts / counts.sum(), mapping.reshape(-1)


def cartesian_point_group(atoms: Atoms, symprec: float = 1e-5) -> np.ndarray:
    """The point group :func:`irreducible_kpoints` folds a mesh with, as Cartesian rotations (n, 3, 3): what a
    tensor summed over an irreducible wedge must be averaged over (:func:`symmetrize_tensor`)."""
    ds = _dataset(atoms, symprec)
    rot = _slab_operations(atoms, ds)[0] if not np.all(atoms.pbc) else np.asarray(ds.rotations)
    rot = np.unique(rot, axis=0)
    lattice_t = np.asarray(atoms.cell[:], dtype=float).T  # columns a_i: r = A^T x for fractional x
    return lattice_t @ rot @ np.linalg.inv(lattice_t)


def symmetrize_tensor(x: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """(1/|G|) Σ_g R_g x R_gᵀ over the last two axes of ``x``: a rank-2 Cartesian tensor summed over an irreducible
    wedge with the star weights becomes the sum over the whole mesh."""
    return np.einsum("gij,...jk,glk->...il", rotations, x, rotations) / len(rotations)


def equivalent_atoms(atoms: Atoms, symprec: float = 1e-5) -> np.ndarray:
    """For each atom, the lowest index of the atoms symmetry-equivalent to it (its crystallographic orbit),
    under the operations :func:`irreducible_kpoints` uses (for a slab: those keeping the vacuum axis)."""
    ds = _dataset(atoms, symprec)
    if np.all(atoms.pbc):
        return np.asarray(ds.equivalent_atoms, dtype=np.int64)
    rot, trans = _slab_operations(atoms, ds)
    frac = atoms.get_scaled_positions(wrap=True)
    label = np.arange(len(atoms))
    for r, t in zip(rot, trans):
        moved = frac @ r.T + t
        d = moved[:, None, :] - frac[None, :, :]
        d -= np.round(d)
        dist = np.linalg.norm(d @ np.asarray(atoms.cell[:]), axis=2)  # (moved atom, atom)
        image = np.argmin(dist, axis=1)
        # The orbit of i is {g(i)}: the group is closed, so the lowest image over all g is the orbit's label.
        label = np.minimum(label, image)
    return label


def orbit_mean(values: dict[Any, np.ndarray], atoms: Atoms) -> dict[Any, np.ndarray]:
    """Per-atom quantities keyed by atom ``a`` or by ``(a, ...)``, each replaced by its mean over the atoms of a's
    crystallographic orbit (same rest of the key). On a symmetry-reduced k-mesh only such orbit sums are right
    (folding k permutes equivalent atoms); on the full mesh equivalent atoms have equal shares, so the mean is
    the exact per-atom value."""
    orbit = equivalent_atoms(atoms)

    def with_atom(key: Any, b: Any) -> Any:
        return (b,) + tuple(key[1:]) if isinstance(key, tuple) else b

    out = {}
    for key in values:
        a = key[0] if isinstance(key, tuple) else key
        out[key] = np.mean([values[with_atom(key, b)] for b in np.nonzero(orbit == orbit[a])[0]], axis=0)
    return out
