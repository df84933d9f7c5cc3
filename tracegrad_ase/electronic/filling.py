"""Electrons and how they fill levels: the one electron count, smearing, occupations, Fermi level and gap.

Spin is degenerate throughout the package (no spin-polarized Hamiltonian is predicted): every level holds up to
:data:`SPIN_DEGENERACY` electrons, and this module is the one place that says so. Energies in eV.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from scipy.optimize import brentq
from scipy.special import erfc, expit

from ..core.basis import OrbitalBasis, symbol_of
from ..core.errors import ElectronCountError
from ..core.hamiltonian import RealSpaceHamiltonian
from .bloch import as_assembler, check_kpts, kpoint_weights
from .solve import SPARSE_THRESHOLD, band_energies, states_below

__all__ = ["DEGENERACY_TOL", "FERMI_COUNT_WINDOW", "NSPINS", "SMEARINGS", "SPIN_DEGENERACY", "band_gap",
           "electron_count", "electrons_below_fermi_level", "fermi_level", "occupations", "spin_axis",
           "valence_electrons", "window_band_gap"]

#: Electrons per level: spin-degenerate (restricted) Hamiltonians only.
SPIN_DEGENERACY = 2

#: Spin channels reported to ASE (``results["eigenvalues"]`` is (nspins, nkpts, nbands)): one, degenerate.
NSPINS = 1

SMEARINGS = ("fermi-dirac", "gaussian", "none")

#: Two levels closer than this (eV) are treated as degenerate when filling levels without smearing.
DEGENERACY_TOL = 1e-8

#: A recorded DFT Fermi level fixes the electron count only with no level within this many eV of it at any k:
#: about 4 kT at room temperature, the smearing OpenMX and SIESTA use by default, so the smeared tails beyond it
#: hold far less than the one electron that would change the count (an isolated atom's d levels 20 meV from
#: OpenMX's E_F do not).
FERMI_COUNT_WINDOW = 0.1


def spin_axis(per_k: np.ndarray) -> np.ndarray:
    """(nkpts, nbands) -> (nspins, nkpts, nbands), the shape ASE declares for eigenvalues and occupations."""
    return np.asarray(per_k)[None, ...]


def _without_valence(basis: OrbitalBasis, numbers: Sequence[int]) -> list[str]:
    return sorted({symbol_of(int(z)) for z in numbers} - set(basis.valence))


def _ask_for_valence(basis: OrbitalBasis, missing: list[str]) -> str:
    example = ", ".join(f"{s!r}: ..." for s in missing)
    return (f"basis {basis.name!r} records no valence charge for {', '.join(missing)} (data read from another "
            "program's folder do not say how many electrons the pseudopotentials hold); pass valence= when "
            f"reading it, e.g. io.layouts.read_folder(folder, valence={{{example}}}), or the total per cell, "
            "valence=N")


def valence_electrons(basis: OrbitalBasis, numbers: Sequence[int]) -> int:
    """Electrons of the neutral atoms ``numbers`` in ``basis`` (its valence charges: pseudopotentials count);
    :class:`ElectronCountError` if the basis records none for one of the elements (foreign data)."""
    missing = _without_valence(basis, numbers)
    if missing:
        raise ElectronCountError(f"unknown electron count: {_ask_for_valence(basis, missing)}")
    return sum(int(basis.valence[symbol_of(int(z))]) for z in numbers)


def electron_count(ham: RealSpaceHamiltonian) -> int:
    """Electrons per cell, the one rule of the package: the basis' valence charges minus
    ``meta["settings"]["charge"]``. Counted from the structure, so a supercell's count is right even where its
    ``meta`` still carries the primitive cell's ``nelectron``.

    Foreign data (``io.deeph``, ``io.deeph_pack``, ``io.deeptb``) may lack valence charges. Then, in order: a total
    given for this very structure (``meta["nelectron"]`` with ``meta["nelectron_formula"]`` equal to its
    formula); else the count the recorded DFT Fermi level fixes (:func:`electrons_below_fermi_level`, kept in
    ``meta`` once found); else :class:`ElectronCountError` asking for ``valence=``. Never the nuclear charges."""
    missing = _without_valence(ham.basis, ham.atoms.numbers)
    total = valence_electrons(ham.basis, ham.atoms.numbers) if not missing else _foreign_count(ham, missing)
    charge = (ham.meta.get("settings") or {}).get("charge", 0)
    n = total - charge
    if abs(n - round(n)) > 1e-9:
        raise ValueError(f"non-integer electron count {n}")
    if n < 0:
        raise ValueError(f"negative electron count {n} (charge {charge})")
    return int(round(n))


def _foreign_count(ham: RealSpaceHamiltonian, missing: list[str]) -> int:
    meta = ham.meta
    if meta.get("nelectron") is not None and meta.get("nelectron_formula") == ham.atoms.get_chemical_formula():
        return int(meta["nelectron"])
    fermi = meta.get("fermi_level_ev")
    if not fermi:  # None, or exactly 0.0: the placeholder some converters write (DeepH-JAX, our own writer)
        raise ElectronCountError(f"unknown electron count: {_ask_for_valence(ham.basis, missing)}")
    n = electrons_below_fermi_level(ham, float(fermi), hint=_ask_for_valence(ham.basis, missing))
    if n > int(np.sum(ham.atoms.numbers)):
        raise ElectronCountError(f"{n} levels' worth of electrons lie below the recorded Fermi level {fermi} eV, more "
                                 f"than the nuclear charges hold: it is not this data's Fermi level; "
                                 f"{_ask_for_valence(ham.basis, missing)}")
    # Kept with the data (and saved with it): the mesh search runs once per Hamiltonian.
    meta.update(nelectron=n, nelectron_formula=ham.atoms.get_chemical_formula(), nelectron_source="fermi_level")
    return n


def electrons_below_fermi_level(ham: RealSpaceHamiltonian, fermi: float, window: float = FERMI_COUNT_WINDOW,
                                spacing: float = 0.2, hint: str = "pass valence= to the reader") -> int:
    """Electrons per cell fixed by the Fermi level ``fermi`` (eV) of the DFT run that made ``ham``.

    On a Γ-centred mesh (about ``spacing`` 1/Å, so supercells get few k-points) every k-point must have the same
    number of levels below ``fermi`` and none within ``window`` eV of it: E_F then lies in a gap and the count is
    exact, whatever mesh the DFT code used. A compensated semimetal whose pockets fall between mesh points
    passes too, and still gets the right integer (pockets smaller than half the zone cannot change it). A metal,
    or E_F on a band edge, raises :class:`ElectronCountError` (ending with ``hint``): the count is then not
    read off a Fermi level, it is asked for.
    """
    rec = 2 * np.pi * np.linalg.inv(np.asarray(ham.atoms.cell[:], dtype=float)).T
    mesh = [max(1, int(np.ceil(np.linalg.norm(b) / spacing))) if p else 1 for b, p in zip(rec, ham.atoms.pbc)]
    kpts = np.stack(np.meshgrid(*[np.arange(n) / n for n in mesh], indexing="ij"), -1).reshape(-1, 3)
    kpts = np.where(kpts > 0.5, kpts - 1.0, kpts)
    if ham.norb <= SPARSE_THRESHOLD:
        e = band_energies(ham, kpts)
        below, near = (e < fermi - window).sum(axis=1), (np.abs(e - fermi) <= window).any(axis=1)
    else:  # inertia counts: no eigenvalue is computed
        asm = as_assembler(ham)
        below = np.array([states_below(asm, k, fermi - window) for k in kpts])
        near = np.array([states_below(asm, k, fermi + window) for k in kpts]) != below
    where = f"the Fermi level {fermi:.4f} eV recorded with the data ({'x'.join(map(str, mesh))} mesh)"
    if near.any():
        k = kpts[int(np.argmax(near))]
        raise ElectronCountError(f"levels lie within {window * 1e3:.0f} meV of {where} at k = {np.round(k, 3).tolist()}"
                                 f" (a metal, or E_F on a band edge), so it does not fix the electron count: {hint}")
    if np.ptp(below) > 0:
        raise ElectronCountError(f"bands cross {where}: {below.min()} to {below.max()} levels lie below it "
                                 f"depending on k (a metal), so it does not fix the electron count: {hint}")
    return SPIN_DEGENERACY * int(below[0])


def _smearing_function(x: np.ndarray, smearing: str) -> np.ndarray:
    """Occupation (0..1) per spin of a level at reduced energy x = (e - mu) / width."""
    if smearing == "fermi-dirac":
        return expit(-x)  # overflow-safe 1 / (1 + exp(x))
    if smearing == "gaussian":
        return 0.5 * erfc(x)
    raise ValueError(f"unknown smearing {smearing!r}; choose one of {SMEARINGS}")


def occupations(
    energies: np.ndarray,
    mu: float,
    smearing: str = "fermi-dirac",
    width: float = 0.05,
    weights: Any = None,
    n_electrons: float | None = None,
) -> np.ndarray:
    """Occupation (0..2, both spins) of every level at chemical potential ``mu`` (eV).

    With ``smearing="none"`` levels below ``mu`` hold 2 and levels above 0; levels at ``mu`` (within 1e-8 eV)
    hold 1, or, when ``n_electrons`` is given (with the k ``weights``, default uniform), share the electrons left over equally so the
    count is exact (a metal whose Fermi level sits on a partly filled degenerate level).
    """
    e = np.asarray(energies, dtype=float)
    if smearing != "none":
        if width <= 0:
            raise ValueError("a smearing width must be positive")
        return SPIN_DEGENERACY * _smearing_function((e - mu) / width, smearing)
    occ = np.where(e < mu - DEGENERACY_TOL, float(SPIN_DEGENERACY), 0.0)
    at_mu = np.abs(e - mu) <= DEGENERACY_TOL
    if not at_mu.any():
        return occ
    if n_electrons is None:
        return np.where(at_mu, 0.5 * SPIN_DEGENERACY, occ)
    wk = kpoint_weights(weights, e.shape[0])
    w = np.broadcast_to(wk.reshape((-1,) + (1,) * (e.ndim - 1)), e.shape)
    left = n_electrons - float((w * occ).sum())
    share = np.clip(left / float(w[at_mu].sum()), 0.0, float(SPIN_DEGENERACY))
    return np.where(at_mu, share, occ)


def fermi_level(
    energies: np.ndarray,
    weights: Any,
    n_electrons: float,
    smearing: str = "fermi-dirac",
    width: float = 0.05,
) -> float:
    """Chemical potential (eV) that holds ``n_electrons`` per cell: ``Σ_k w_k Σ_n 2 f((e_kn - mu)/width) = N``.

    Smeared: root by Brent's method (the count is monotone in mu). ``"none"``: fill the levels in order of
    energy (any k weights); if the filling ends exactly between two distinct levels — always the case for an
    insulator — mu is midway between them (mid-gap); otherwise mu is the partly filled highest occupied level.
    ``weights`` None means uniform; weights are normalized to sum to 1.
    """
    e = np.atleast_2d(np.asarray(energies, dtype=float))
    w = kpoint_weights(weights, e.shape[0])
    n = float(n_electrons)
    capacity = float(SPIN_DEGENERACY) * e.shape[1]
    if smearing not in SMEARINGS:
        raise ValueError(f"unknown smearing {smearing!r}; choose one of {SMEARINGS}")
    if n <= 0:
        raise ValueError(f"the electron count must be positive, got {n}")
    if smearing == "none":
        if n > capacity * (1 + 1e-12):
            raise ValueError(f"{n} electrons do not fit in {e.shape[1]} bands")
        return _fermi_level_step(e, w, n)
    if n >= capacity:
        raise ValueError(f"{n} electrons fill all {e.shape[1]} bands: no Fermi level with smearing")
    if width <= 0:
        raise ValueError("a smearing width must be positive")

    def excess(mu: float) -> float:
        return float(w @ (SPIN_DEGENERACY * _smearing_function((e - mu) / width, smearing)).sum(axis=1)) - n

    # The smearing tails decay within ~40 widths (erfc(x) ~ 1e-16 at x = 8, Fermi-Dirac at x = 37).
    lo = e.min() - 40.0 * width - 1.0
    hi = e.max() + 40.0 * width + 1.0
    return float(brentq(excess, lo, hi, xtol=1e-13, rtol=4 * np.finfo(float).eps, maxiter=500))


def _fermi_level_step(e: np.ndarray, w: np.ndarray, n: float) -> float:
    flat = e.ravel()
    wt = float(SPIN_DEGENERACY) * np.broadcast_to(w[:, None], e.shape).ravel()
    order = np.argsort(flat, kind="stable")
    levels, wt = flat[order], wt[order]
    cum = np.cumsum(wt)
    tol = 1e-9 * max(1.0, n)
    last = int(np.searchsorted(cum, n - tol))  # first level at which the count reaches n
    last = min(last, len(levels) - 1)
    top = levels[last]
    # Levels degenerate with the one that completes the count belong to the same (possibly shared) level.
    same = np.abs(levels - top) <= DEGENERACY_TOL
    upto = int(np.nonzero(same)[0].max())
    if abs(cum[upto] - n) <= tol and upto + 1 < len(levels):
        return float(0.5 * (top + levels[upto + 1]))  # integer filling: mid-gap
    return float(top)


# -- band gap ---------------------------------------------------------------------------------------------------
def window_band_gap(energies: np.ndarray, kpts: Any, fermi: float) -> dict[str, Any] | None:
    """:func:`band_gap` of a window of levels (the sparse path's), or None when the window does not straddle
    ``fermi``: a window away from E_F says nothing about the gap."""
    e = np.asarray(energies)
    if not ((e <= fermi).any() and (e > fermi).any()):
        return None
    return band_gap(e, kpts, fermi)


def band_gap(energies: np.ndarray, kpts: Any, fermi: float) -> dict[str, Any]:
    """Band gap around the Fermi level ``fermi`` (eV).

    Returns ``gap``, ``direct`` (VBM and CBM at the same k), ``vbm``, ``cbm``, ``k_vbm``, ``k_cbm`` and
    ``direct_gap`` (smallest gap at one k) plus ``metal``. A band with levels on both sides of E_F (it crosses
    E_F), or bands that touch at E_F, make it a metal: gap and direct_gap are 0.
    """
    e = np.atleast_2d(np.asarray(energies, dtype=float))
    kpts = check_kpts(kpts)
    if len(kpts) != e.shape[0]:
        raise ValueError(f"{len(kpts)} k-points for {e.shape[0]} rows of energies")
    occ = e <= fermi + DEGENERACY_TOL
    if not occ.any() or occ.all():
        raise ValueError("the energies need levels on both sides of the Fermi level to define a gap")
    flat_occ = np.where(occ, e, -np.inf)
    flat_emp = np.where(occ, np.inf, e)
    iv = np.unravel_index(np.argmax(flat_occ), e.shape)
    ic = np.unravel_index(np.argmin(flat_emp), e.shape)
    vbm, cbm = float(e[iv]), float(e[ic])
    crossing = bool((occ.any(axis=0) & (~occ).any(axis=0)).any())
    per_k = flat_emp.min(axis=1) - flat_occ.max(axis=1)  # inf where a k-point has no level on one side
    out: dict[str, Any] = {"vbm": vbm, "cbm": cbm, "k_vbm": kpts[iv[0]].copy(), "k_cbm": kpts[ic[0]].copy()}
    if crossing or cbm - vbm <= DEGENERACY_TOL:
        out.update(gap=0.0, direct_gap=0.0, direct=False, metal=True)
        return out
    gap = cbm - vbm
    kd = int(np.argmin(per_k))
    direct_gap = float(per_k[kd])
    direct = bool(direct_gap - gap <= 1e-9 * max(1.0, abs(gap)))
    if direct:  # VBM and CBM may be reached at several k; report one k where both are
        out["k_vbm"] = kpts[kd].copy()
        out["k_cbm"] = kpts[kd].copy()
    out.update(gap=float(gap), direct_gap=direct_gap, direct=direct, metal=False)
    return out
