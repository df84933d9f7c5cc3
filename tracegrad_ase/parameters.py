"""The calculator's parameters and k-points, checked where they are given: types, ranges, mesh and path forms,
and their fit to the atoms (non-periodic directions, a BandPath's cell). Each failure is a
:class:`~tracegrad_ase.core.errors.ParameterError` (or :class:`~tracegrad_ase.core.errors.MismatchError`) naming
the parameter; nothing here needs the model. :func:`check_sparse_lindep` refuses the sparse solver where the
overlap is too nearly dependent for it (a :class:`~tracegrad_ase.core.errors.LinearDependenceError`).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
from ase import Atoms
from ase.calculators.calculator import kpts2kpts, kpts2sizeandoffsets
from ase.dft.kpoints import BandPath

from . import electronic
from .core import symmetry
from .core.errors import (LinearDependenceError, MismatchError, ParameterError, PredictionError, StructureError,
                          UnknownParameterError)
from .electronic.filling import SMEARINGS
from .electronic.solve import model_lindep

_NOT_OFFERED = ("energy", "free_energy", "forces", "stress", "energies", "stresses", "magmom", "magmoms",
                "dipole", "charges")
#: ASE's own Calculator keywords, passed on (its restart files mean nothing here and are refused).
_ASE_KEYWORDS = ("atoms", "label", "directory")
#: Keys of a ``kpts`` dict: ASE's Monkhorst-Pack form, or a band path built on the atoms' cell.
_MESH_KEYS = ("size", "density", "gamma", "even")
_PATH_KEYS = ("path", "npoints", "density", "special_points", "eps")
#: A BandPath fits the atoms when the metric tensors of their periodic cell vectors agree to this (relative).
_CELL_TOL = 1e-6


# -- parameter checks (no atoms needed) -----------------------------------------------------------------
def _is_real(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def _real(name: str, value: Any, low: float | None = None, high: float | None = None, strict_low: bool = False,
          allow_none: bool = False) -> float | None:
    """A finite real number within the bounds, or a ParameterError naming ``name``."""
    if value is None and allow_none:
        return None
    if not _is_real(value) or not math.isfinite(float(value)):
        raise ParameterError(f"{name} must be a finite number{' or None' if allow_none else ''}, got {value!r}")
    v = float(value)
    if low is not None and (v < low or (strict_low and v == low)):
        raise ParameterError(f"{name} must be {'>' if strict_low else '>='} {low:g}, got {value!r}")
    if high is not None and v >= high:
        raise ParameterError(f"{name} must be < {high:g}, got {value!r}")
    return v


def _integral(name: str, value: Any, low: int = 1) -> int:
    """An integer >= ``low``. A float with an integral value is accepted as that integer (6.0 -> 6: YAML and JSON
    give floats); 6.5, booleans and strings are refused."""
    if not _is_real(value) or not math.isfinite(float(value)) or not float(value).is_integer():
        raise ParameterError(f"{name} must be an integer, got {value!r}")
    if int(value) < low:
        raise ParameterError(f"{name} must be >= {low}, got {value!r}")
    return int(value)


def _mesh_size(name: str, value: Any) -> tuple[int, int, int]:
    arr = np.asarray(value, dtype=object).ravel() if not isinstance(value, (str, bytes)) else None
    if arr is None or len(arr) != 3:
        raise ParameterError(f"a Monkhorst-Pack size needs 3 integers, got {value!r}")
    try:
        return tuple(_integral(name, x) for x in arr)  # type: ignore[return-value]
    except ParameterError:
        raise ParameterError(f"{name}: a Monkhorst-Pack size is 3 positive integers, got {value!r} (for explicit "
                             "k-points give a list of them, [[kx, ky, kz], ...])") from None


def _kpts_dict(d: dict, name: str) -> dict:
    """ASE's dict forms: a mesh (``size`` or ``density``, ``gamma``, ``even``) or a path (``path``, ...)."""
    if "path" in d or "special_points" in d or "npoints" in d:
        unknown = sorted(set(map(str, d)) - set(_PATH_KEYS))
        if unknown:
            raise UnknownParameterError(f"{name}: unknown band-path key(s) {unknown}; known: {list(_PATH_KEYS)}")
        out = dict(d)
        if out.get("path") is not None and not isinstance(out["path"], str):
            raise ParameterError(f"{name}['path'] must be a string of special points such as 'GMKG', "
                                 f"got {out['path']!r}")
        if out.get("npoints") is not None:
            out["npoints"] = _integral(f"{name}['npoints']", out["npoints"])
        for key in ("density", "eps"):
            if out.get(key) is not None:
                out[key] = _real(f"{name}[{key!r}]", out[key], 0.0, strict_low=True)
        return out
    unknown = sorted(set(map(str, d)) - set(_MESH_KEYS))
    if unknown:
        raise UnknownParameterError(f"{name}: unknown key(s) {unknown}; a mesh takes {list(_MESH_KEYS)}, a band path "
                                    f"{list(_PATH_KEYS)}")
    if ("size" in d) == ("density" in d):
        raise ParameterError(f"{name} as a mesh needs 'size' or 'density' (one of them), got {d!r}")
    out = dict(d)
    if "size" in out:
        out["size"] = _mesh_size(f"{name}['size']", out["size"])
    else:
        out["density"] = _real(f"{name}['density']", out["density"], 0.0, strict_low=True)
    for key in ("gamma", "even"):
        if out.get(key) is not None and not isinstance(out[key], (bool, np.bool_)):
            raise ParameterError(f"{name}[{key!r}] must be True, False or None, got {out[key]!r}")
    return out


def check_kpts(value: Any, name: str = "kpts") -> Any:
    """``kpts`` as the calculator keeps it: None, a ``BandPath``, a checked dict, a Monkhorst-Pack size as a tuple of
    3 ints, or an (nk, 3) float array of fractional k-points. Anything else is a :class:`ParameterError`.

    A 1-D sequence of 3 numbers is always a mesh size: ``(6.0, 6.0, 1.0)`` is the mesh (6, 6, 1) (not one k-point at
    (6, 6, 1), which ASE's ``kpts2kpts`` makes of it); ``(6.5, 6, 1)`` is refused.
    """
    if value is None:
        return None
    if isinstance(value, BandPath):
        k = np.asarray(value.kpts, dtype=float)
        if k.ndim != 2 or k.shape[1] != 3 or len(k) == 0 or not np.isfinite(k).all():
            raise ParameterError(f"{name}: the BandPath has no usable k-points (shape {k.shape}); interpolate it, "
                                 "e.g. cell.bandpath('GMKG', npoints=100)")
        return value
    if isinstance(value, dict):
        return _kpts_dict(value, name)
    if isinstance(value, (str, bytes)):
        raise ParameterError(f"{name} must be a Monkhorst-Pack size (3 integers), a dict such as {{'density': 5}}, an "
                             f"(nk, 3) list of fractional k-points or a BandPath, got the string {value!r}")
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):
        arr = np.asarray(None)
    if arr.dtype.kind not in "iuf" or arr.ndim not in (1, 2):
        raise ParameterError(f"{name} must be a Monkhorst-Pack size (3 integers), a dict such as {{'density': 5}}, an "
                             f"(nk, 3) list of fractional k-points or a BandPath, got {value!r}")
    if arr.ndim == 1:
        return _mesh_size(name, value)
    if arr.shape[1] != 3 or len(arr) == 0:
        raise ParameterError(f"an explicit k-point list must have shape (nk, 3), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ParameterError(f"{name}: the k-point list holds NaN or infinite values")
    return arr.astype(float)


def check_fermi_kpts(value: Any) -> Any:
    """``fermi_kpts``: like ``kpts`` but a mesh or a list, never a path (a path does not sample the zone)."""
    out = check_kpts(value, "fermi_kpts")
    if isinstance(out, BandPath) or _is_path_dict(out):
        raise ParameterError("fermi_kpts must sample the Brillouin zone (a Monkhorst-Pack size, {'density': d} or a "
                             "k-point list), not a band path: the Fermi level of a path is not the crystal's")
    return out


def _check_smearing(value: Any) -> str:
    if not isinstance(value, str) or value not in SMEARINGS:
        raise ParameterError(f"smearing must be one of {SMEARINGS}, got {value!r}")
    return value


def _check_bool(name: str) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if not isinstance(value, (bool, np.bool_)):
            raise ParameterError(f"{name} must be True or False, got {value!r}")
        return bool(value)
    return check


def _check_refine(value: Any) -> int:
    """``refine``: checked by :func:`tracegrad_ase.refine.builds` (imported here only when set: it loads PySCF)."""
    from .refine import builds

    return builds(value)


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "kpts": check_kpts,
    "fermi_kpts": check_fermi_kpts,
    "smearing": _check_smearing,
    "width": lambda v: _real("width (eV)", v, 0.0, strict_low=True),
    "sigma": lambda v: _real("sigma (eV)", v, allow_none=True),
    "n_bands": lambda v: None if v is None else _integral("n_bands", v),
    "symmetry": _check_bool("symmetry"),
    "lindep": lambda v: _real("lindep", v, 0.0, 1.0, allow_none=True),
    "scf_check": lambda v: None if v is None else _check_bool("scf_check")(v),
    "refine": _check_refine,
    "grid_spacing": lambda v: _real("grid_spacing (Å)", v, 0.0, strict_low=True),
}


def domain_results(ham) -> dict:
    """``domain_scores`` (natoms,): each atom's distance from the training environments (> 1: out of domain)."""
    scores = ham.meta.get("domain_scores")
    return {} if scores is None else {"domain_scores": np.asarray(scores, dtype=float)}


def _is_path_dict(kpts: Any) -> bool:
    return isinstance(kpts, dict) and any(k in kpts for k in ("path", "special_points", "npoints"))


def _axes(mask: np.ndarray) -> str:
    return ", ".join("abc"[i] for i in np.flatnonzero(mask))



# -- checks against the atoms --------------------------------------------------------------------------
def _path_from_dict(atoms: Atoms, spec: dict) -> BandPath:
    """ASE's band path of the atoms' periodic lattice; special points it does not know are a ParameterError."""
    try:
        return atoms.cell.bandpath(pbc=atoms.pbc, **spec)
    except (KeyError, ValueError) as exc:
        try:
            known = sorted(atoms.cell.bandpath(pbc=atoms.pbc, npoints=0).special_points)
        except Exception:  # noqa: BLE001 - only for the message
            known = []
        raise ParameterError(f"kpts {spec!r}: ASE cannot build that path for this cell ({exc!s}); its lattice's "
                             f"special points are {known}") from None


def _check_finite(energies: Any, fermi: float) -> None:
    if not (np.isfinite(np.asarray(energies, dtype=float)).all() and math.isfinite(float(fermi))):
        raise PredictionError("the predicted Hamiltonian gave NaN or infinite levels (or Fermi level); nothing is "
                              "returned. Check the model file and the structure")


def _check_mesh_pbc(atoms: Atoms, size, name: str) -> None:
    flat = ~np.asarray(atoms.pbc, dtype=bool)
    if (np.asarray(size)[flat] != 1).any():
        raise ParameterError(f"{name}={tuple(int(n) for n in size)}: a mesh must be 1 along the non-periodic "
                             f"direction(s) {_axes(flat)} (pbc={[bool(p) for p in atoms.pbc]})")


def _check_nonperiodic_k(atoms: Atoms, k: np.ndarray, name: str) -> np.ndarray:
    """k along a non-periodic direction must be 0 (a whole number is the same point: H(k) has no R there)."""
    flat = ~np.asarray(atoms.pbc, dtype=bool)
    off = k[:, flat]
    if (np.abs(off - np.round(off)) > 1e-6).any():  # rounding noise of path conversions passes
        raise ParameterError(
            f"{name} has k-points with non-zero components along the non-periodic direction(s) {_axes(flat)} "
            f"(pbc={[bool(p) for p in atoms.pbc]}): H(k) does not depend on them, so bands along them are flat "
            "and say nothing. Set those components to 0, e.g. atoms.cell.bandpath(pbc=atoms.pbc)")
    return k


def check_bandpath(atoms: Atoms, path: BandPath, made_here: bool = False) -> None:
    """A BandPath's fractional k-points mean something only on the cell it was made for. ASE may hand back that
    cell rotated to a standard orientation, so the periodic vectors' metric (lengths and angles) is compared.
    ``made_here``: the path was built from these atoms (a ``kpts`` dict), so a mismatch is ASE's choice of basis."""
    pbc = np.asarray(atoms.pbc, dtype=bool)
    mine, theirs = np.asarray(atoms.cell[:], dtype=float)[pbc], np.asarray(path.cell[:], dtype=float)[pbc]
    g_mine, g_theirs = mine @ mine.T, theirs @ theirs.T
    if np.allclose(g_theirs, g_mine, rtol=0, atol=_CELL_TOL * max(1.0, float(np.abs(g_mine).max()))):
        return
    if made_here:
        raise ParameterError(
            f"ASE's band path for this cell ({path.path}) is given in another basis of its periodic lattice (ASE "
            "re-orders or reduces the cell vectors of this slab or wire), so its k-points would be misread; give the "
            "special points in this cell's basis: kpts={'path': 'GX', 'special_points': {'G': [0, 0, 0], "
            "'X': [0.5, 0, 0]}, 'npoints': 50}")
    lengths = lambda g: ", ".join(f"{x:.4f}" for x in np.sqrt(np.abs(np.diag(g))))  # noqa: E731
    raise MismatchError(
        f"kpts is a BandPath of another cell: its periodic cell vectors ({_axes(pbc)}) have lengths "
        f"[{lengths(g_theirs)}] Å, these atoms' [{lengths(g_mine)}] Å (or the angles differ). Build the path on "
        "these atoms, atoms.cell.bandpath(..., pbc=atoms.pbc); for a slab whose in-plane vectors ASE re-orders, give "
        "the special points in this cell's basis: atoms.cell.bandpath('GXY', special_points={...}, pbc=atoms.pbc)")


def is_path_or_list(kpts: Any) -> bool:
    """``kpts`` names explicit k-points (a BandPath, a path dict or an (nk, 3) list), not a mesh."""
    return isinstance(kpts, BandPath) or _is_path_dict(kpts) or (kpts is not None and np.ndim(kpts) == 2)


def is_mesh_size(kpts: Any) -> bool:
    """``kpts`` is a Monkhorst-Pack size ``(n1, n2, n3)`` of integers."""
    return isinstance(kpts, tuple) and len(kpts) == 3 and all(isinstance(n, (int, np.integer)) for n in kpts)


def response_mesh(atoms: Atoms, size: Any, what: str, use_symmetry: bool
                  ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The Γ-centred mesh ``size`` of a crystal (3 positive integers, 1 along non-periodic directions) for a tensor
    (optical conductivity, transport): (k-points, weights, Cartesian point group), its irreducible wedge with the
    group to symmetrize over, or with ``use_symmetry=False`` every point (weights and group None). ``what`` names
    the quantity in the errors."""
    if not np.any(atoms.pbc):
        raise StructureError(f"{what} is for crystals (a periodic direction); this structure has none")
    name = f"kpts ({what})"
    kpts, weights = _mesh(atoms, _mesh_size(name, size), name, use_symmetry)
    return kpts, weights, symmetry.cartesian_point_group(atoms) if use_symmetry else None


def mesh_dict_kpoints(atoms: Atoms, spec: dict, name: str) -> np.ndarray:
    """ASE's Monkhorst-Pack points of a ``{"size"|"density", "gamma", "even"}`` dict."""
    size, _ = kpts2sizeandoffsets(atoms=atoms, **spec)
    _check_mesh_pbc(atoms, size, name)
    return np.asarray(kpts2kpts(spec, atoms=atoms).kpts, dtype=float)


# -- the k-points of a calculation -------------------------------------------------------------------------
def molecule_kpoints(atoms: Atoms, kpts: Any) -> np.ndarray:
    """Γ; a band path for a molecule is a mistake, not a request for flat bands."""
    if isinstance(kpts, BandPath) or _is_path_dict(kpts):
        raise ParameterError("kpts is a band path, but the structure is a molecule (no periodic direction): it "
                             "has no bands; use get_eigenvalues() or get_molecular_orbitals()")
    if kpts is not None and np.ndim(kpts) == 2:
        _check_nonperiodic_k(atoms, kpts, "kpts")
    return np.zeros((1, 3))


def resolve_kpoints(atoms: Atoms, params: Any) -> tuple[np.ndarray, np.ndarray | None, BandPath | None]:
    """A periodic calculation's k-points, their weights (None: uniform) and its band path (None: not a path),
    from the calculator's parameters (``kpts``, ``fermi_kpts``, ``symmetry``). ``scf_check=True`` is refused
    here, before any prediction: the self-consistency check is for molecules."""
    if params.get("scf_check") is True:
        raise ParameterError("scf_check=True: the self-consistency check is for molecules, and this structure is "
                             "periodic; use uncertainty=True (a committee) for crystals")
    kpts = params.kpts
    if kpts is None:
        return (*fermi_mesh(atoms, params), None)
    if isinstance(kpts, BandPath) or _is_path_dict(kpts):
        path = kpts if isinstance(kpts, BandPath) else _path_from_dict(atoms, kpts)
        check_bandpath(atoms, path, made_here=not isinstance(kpts, BandPath))
        return _check_nonperiodic_k(atoms, np.asarray(path.kpts, dtype=float), "kpts"), None, path
    if isinstance(kpts, dict):
        return mesh_dict_kpoints(atoms, kpts, "kpts"), None, None
    if is_mesh_size(kpts):
        return (*_mesh(atoms, kpts, "kpts", params.symmetry), None)
    return _check_nonperiodic_k(atoms, np.asarray(kpts, dtype=float), "kpts"), None, None


def _mesh(atoms: Atoms, size, name: str, use_symmetry: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """The Γ-centred mesh of ``size``: its irreducible points and weights, or with ``symmetry=False`` all of
    it (the same points in spglib's convention either way, so the two agree)."""
    _check_mesh_pbc(atoms, size, name)
    if use_symmetry:
        k, w, _ = symmetry.irreducible_kpoints(atoms, size)
        return k, w
    return symmetry.full_mesh(size), None


def fermi_mesh(atoms: Atoms, params: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """The k-points (and weights, None: uniform) the Fermi level is found on: ``fermi_kpts``, by default a
    Monkhorst-Pack mesh of density 5 Å."""
    fk = params.fermi_kpts
    if fk is None:
        # Rounded up to odd sizes: that Monkhorst-Pack mesh is Γ-centred, so it is reduced like any size.
        size, _ = kpts2sizeandoffsets(density=5.0, even=False, atoms=atoms)
        fk = tuple(int(n) for n in size)
    if is_mesh_size(fk):
        return _mesh(atoms, fk, "fermi_kpts", params.symmetry)
    if isinstance(fk, dict):
        return mesh_dict_kpoints(atoms, fk, "fermi_kpts"), None
    return _check_nonperiodic_k(atoms, np.asarray(fk, dtype=float), "fermi_kpts"), None


def effective_lindep(params: Any, model_file: dict | None = None) -> float:
    """The overlap threshold a calculation with these parameters solves with: ``lindep`` if given, else the value
    the model was calibrated with (``model_lindep``), else ``electronic.solve.PREDICTED_LINDEP`` (every adapter
    that solves again must use the same one: pass ``calc.model.model_file``)."""
    value = params.get("lindep")
    if value is None:
        return model_lindep(model_file)
    return float(value)


def check_sparse_lindep(asm: Any, lindep: float) -> None:
    """The sparse solver cannot drop linear dependencies: a :class:`LinearDependenceError` where S(Γ) of the
    Bloch assembler ``asm`` has an eigenvalue below ``lindep``."""
    smallest = electronic.smallest_overlap_eigenvalue(asm)
    if smallest < lindep:
        raise LinearDependenceError(
            f"{asm.norb} orbitals take the sparse solver, which cannot drop linear dependencies, but this "
            f"cell's overlap S(Γ) has an eigenvalue of {smallest:.1e} in the {asm.ham.basis.name} basis, below "
            f"lindep = {lindep:g}: a predicted H gives spurious levels there (its errors are amplified "
            f"by 1/s). Use a model in a better-conditioned basis (the shipped 'graphene-szv': smallest overlap "
            f"eigenvalue ~0.12 in graphene), at most {electronic.solve.SPARSE_THRESHOLD} orbitals (dense path), or "
            f"lindep=0 to accept the risk")
