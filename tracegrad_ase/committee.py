"""A committee of models, for error bars: the spread of the levels, Fermi level and gap that its members predict.

A model folder may hold further members under ``committee/<member>/`` (each a complete model folder:
``model.json`` and weights, same basis and cutoff, trained from another seed or data split). The folder's own
model is member 0, the one whose numbers the calculator reports; the others only give the spread, unless the
calculator is asked for the committee's mean (``ensemble=True``, :func:`mean_hamiltonian`): the members' errors
are partly independent, so their mean H is closer to the truth than any one member (graphene-szv's held-out
4x4 and 6x6 cells: E_F-aligned band MAE 14 and 13 meV for the mean of three, 13-24 and 11-20 meV for one).

Each member's H is moved to member 0's energy zero first (H + c·S with the least-squares c,
:func:`~tracegrad_ase.core.hamiltonian.gauge_shift`): the zero of a periodic prediction is arbitrary, so absolute
levels of two members differ by a constant that says nothing about trust. After that, the spread of a level
relative to E_F (as bands are read), of E_F and of the gap is the standard deviation over members (ddof = 1).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import electronic
from .core.errors import DataFormatError, ParameterError
from .core.hamiltonian import RealSpaceHamiltonian, gauge_shift
from .models import MODEL_FILE, resolve
from .model.committee_mean import check_same_quantity
from .predict import load, predict_hamiltonian

#: Where further members live inside a model folder.
COMMITTEE_DIR = "committee"
#: The default warning threshold (eV): the largest spread of a level within ``WINDOW_EV`` of E_F.
THRESHOLD_EV = 0.1
WINDOW_EV = 2.0


def member_folders(name_or_path: str | os.PathLike) -> list[Path]:
    """The folders of a model's further committee members (empty when it has none), by name."""
    root = resolve(name_or_path) / COMMITTEE_DIR
    return sorted(d for d in root.iterdir() if (d / MODEL_FILE).is_file()) if root.is_dir() else []


def load_members(name_or_path: str | os.PathLike, main, device: str = "cpu", dtype=None) -> list:
    """The further members, loaded like the main model ``main`` and checked to predict the same quantity (same
    elements, basis and cutoff); a model without members is a :class:`ParameterError` (uncertainty asked of a
    model that cannot give it)."""
    folders = member_folders(name_or_path)
    if not folders:
        raise ParameterError(f"model {str(name_or_path)!r} has no committee (no {COMMITTEE_DIR}/<member>/ folders "
                             "with a model.json), so it cannot estimate its uncertainty or average its members; use "
                             "uncertainty=False, ensemble=False")
    main_dtype = next(main.parameters()).dtype  # members compute in the main model's precision
    members = [load(f, device=device, dtype=dtype if dtype is not None else main_dtype) for f in folders]
    check_same_quantity(main, members, [str(f) for f in folders])
    return members


@dataclass
class Spread:
    """Standard deviations over the members (eV), and each member's own figures."""

    eigenvalues_std: np.ndarray  # (nkpts, nbands) of ε - E_F, on the calculator's k-points
    fermi_level_std: float
    band_gap_std: float | None  # None for a metal in every member
    fermi_levels: np.ndarray  # (members,), in member 0's energy zero
    gaps: np.ndarray  # (members,), 0 for metals
    size: int

    def worst_near_fermi(self, energies: np.ndarray, fermi: float, window: float = WINDOW_EV) -> float:
        """The largest level spread within ``window`` eV of E_F (0 when no level is there)."""
        near = np.abs(np.asarray(energies) - fermi) <= window
        return float(self.eigenvalues_std[near].max()) if near.any() else 0.0


def aligned(ham: RealSpaceHamiltonian, reference: RealSpaceHamiltonian) -> RealSpaceHamiltonian:
    """``ham`` moved to ``reference``'s energy zero (same edges): H + c·S with the least-squares c."""
    c = gauge_shift(reference.hamiltonian, ham.hamiltonian, ham.overlap)
    return RealSpaceHamiltonian(atoms=ham.atoms, basis=ham.basis, edges=ham.edges, overlap=ham.overlap,
                                hamiltonian=[h + c * s for h, s in zip(ham.hamiltonian, ham.overlap)],
                                meta=dict(ham.meta))


def predict(atoms, main, members: list, ensemble: bool) -> tuple[RealSpaceHamiltonian, list[RealSpaceHamiltonian]]:
    """The H a calculator reports (member 0's, or with ``ensemble`` the members' mean) and the Hamiltonians the
    spread is taken over besides it (the further members; with ``ensemble`` every member), in one energy zero."""
    ham = predict_hamiltonian(atoms, main)
    if not members:
        return ham, []
    others = member_hamiltonians(atoms, ham, members)
    return (mean_hamiltonian([ham] + others), [ham] + others) if ensemble else (ham, others)


def member_hamiltonians(atoms, reference: RealSpaceHamiltonian, members: list) -> list[RealSpaceHamiltonian]:
    """Each further member's prediction for ``atoms``, moved to ``reference``'s (member 0's) energy zero."""
    return [aligned(predict_hamiltonian(atoms, model), reference) for model in members]


def mean_hamiltonian(hams: list[RealSpaceHamiltonian]) -> RealSpaceHamiltonian:
    """The committee's mean H: the block-wise mean of ``hams`` (member 0 first, the others already in its energy
    zero: :func:`member_hamiltonians`), on member 0's edges, overlap and atoms."""
    first = hams[0]
    for other in hams[1:]:
        if not np.array_equal(other.edges, first.edges):  # same atoms and cutoff give the same graph
            raise DataFormatError("committee members predicted different edge lists for the same structure; "
                                  "members must share the cutoff and the neighbour search")
    blocks = [np.mean([h.hamiltonian[i] for h in hams], axis=0) for i in range(len(first.hamiltonian))]
    return RealSpaceHamiltonian(atoms=first.atoms, basis=first.basis, edges=first.edges, overlap=first.overlap,
                                hamiltonian=blocks, meta=dict(first.meta, committee_mean=len(hams)))


def spread(main_ham: RealSpaceHamiltonian, main_energies: np.ndarray, main_fermi: float,
           others: list[RealSpaceHamiltonian], kpts: np.ndarray, fermi_kpts: tuple[np.ndarray, Any] | None,
           weights: Any, settings: dict, include_main: bool = True) -> Spread:
    """Solve every member's H in ``others`` (in ``main_ham``'s energy zero: :func:`member_hamiltonians`) on the
    calculator's k-points (E_F on the same mesh: ``fermi_kpts`` = (k, weights), or ``kpts`` when None) and return
    the spread over members. ``main_energies``, ``main_fermi``: the reported levels (``main_ham``'s), which count
    as a member unless ``include_main`` is False (the reported H is the committee's mean, ``others`` its members).

    ``settings``: ``lindep``, ``smearing``, ``width`` as the calculator uses them.
    """
    nelec = electronic.electron_count(main_ham)
    lindep, smearing, width = settings["lindep"], settings["smearing"], settings["width"]
    levels, fermis, gaps = [np.asarray(main_energies)], [main_fermi], []
    for ham in others:
        asm = electronic.BlochAssembler(ham)
        sol = electronic.solve_k(asm, kpts, weights=weights, lindep=lindep)
        fsol = sol if fermi_kpts is None else electronic.solve_k(asm, fermi_kpts[0], weights=fermi_kpts[1],
                                                                 lindep=lindep)
        ef = electronic.fermi_level(fsol.energies, fsol.weights, nelec, smearing, width)
        n = min(levels[0].shape[1], sol.energies.shape[1])  # lindep may drop a different number of directions
        levels = [x[:, :n] for x in levels] + [sol.energies[:, :n]]
        fermis.append(ef)
    if not include_main:
        levels, fermis = levels[1:], fermis[1:]
    for e, ef in zip(levels, fermis):
        gaps.append(electronic.band_gap(e, kpts, ef)["gap"])
    # Bands are read relative to E_F, so the spread of ε - E_F is what a shaded band plot means. On the carbon
    # committee's held-out sets it covers about as many true errors within 2σ as the spread of absolute levels
    # (85 vs 83 %), with a weaker per-level rank correlation (0.18 vs 0.31): benchmarks/committee_uncertainty.py.
    std = (np.stack(levels) - np.asarray(fermis)[:, None, None]).std(axis=0, ddof=1)
    if std.shape[1] < np.asarray(main_energies).shape[1]:  # levels some member lacks: no spread known
        std = np.pad(std, ((0, 0), (0, np.asarray(main_energies).shape[1] - std.shape[1])), constant_values=np.nan)
    return _spread_of(std, fermis, gaps)


def _spread_of(std: np.ndarray, fermis: list[float], gaps: list[float]) -> Spread:
    """The :class:`Spread` of the members' level spread ``std``, Fermi levels and gaps (0 for a metal)."""
    gaps_arr = np.asarray(gaps, dtype=float)
    return Spread(eigenvalues_std=std, fermi_level_std=float(np.std(fermis, ddof=1)),
                  band_gap_std=None if not gaps_arr.any() else float(gaps_arr.std(ddof=1)),
                  fermi_levels=np.asarray(fermis), gaps=gaps_arr, size=len(fermis))


def window_spread(main_asm: electronic.BlochAssembler, main_energies: np.ndarray, main_fermi: float,
                  others: list[RealSpaceHamiltonian], kpts: np.ndarray, sigma: float, pad: int = 4,
                  include_main: bool = True) -> Spread:
    """:func:`spread` for large cells, where only a window of levels near ``sigma`` is known (sparse shift-invert;
    ``main_energies``: member 0's window, solved from ``main_asm``). Each member finds its own E_F
    (:func:`~tracegrad_ase.electronic.sparse_fermi_level`, at Γ) and solves a window ``pad`` levels wider on each
    side at the same offset from it. Levels are matched by their absolute band index, which one inertia count per
    k-point and member gives (:func:`~tracegrad_ase.electronic.states_below`): matching by position in the window
    would pair different bands wherever a level sits near E_F in one member and not in another. A level no member
    window reaches has a NaN spread. ``others``, ``include_main``: as for :func:`spread`.
    """
    main_ham = main_asm.ham
    nelec = electronic.electron_count(main_ham)
    main_energies = np.asarray(main_energies)
    n_bands = main_energies.shape[1]
    offset = sigma - main_fermi  # each member's window sits as far from its own E_F
    first = _window_starts(main_asm, kpts, sigma, main_energies)
    rel = [main_energies - main_fermi]
    fermis, gaps = [main_fermi], [_window_gap(main_energies, kpts, main_fermi)]
    for ham in others:
        asm = electronic.BlochAssembler(ham)
        ef = electronic.sparse_fermi_level(asm, nelec, guess=main_fermi)["fermi_level"]
        sol = electronic.solve_k(asm, kpts, sparse=True, sigma=ef + offset, n_bands=n_bands + 2 * pad)
        starts = _window_starts(asm, kpts, ef + offset, sol.energies)
        matched = np.full(main_energies.shape, np.nan)
        for ik in range(len(kpts)):
            pos = first[ik] - starts[ik] + np.arange(n_bands)  # the same bands in this window
            ok = (pos >= 0) & (pos < sol.energies.shape[1])
            matched[ik, ok] = sol.energies[ik, pos[ok]] - ef
        rel.append(matched)
        fermis.append(ef)
        gaps.append(_window_gap(sol.energies, kpts, ef))
    if not include_main:
        rel, fermis, gaps = rel[1:], fermis[1:], gaps[1:]
    return _spread_of(np.std(np.stack(rel), axis=0, ddof=1), fermis, gaps)


def _window_starts(asm, kpts: np.ndarray, sigma: float, energies: np.ndarray) -> np.ndarray:
    """The absolute band index of each k-point's first window level: the levels below ``sigma`` counted by
    inertia, less those of the window below it."""
    return np.array([electronic.states_below(asm, k, sigma) - int(np.sum(e < sigma))
                     for k, e in zip(np.asarray(kpts), np.asarray(energies))])


def _window_gap(energies: np.ndarray, kpts: np.ndarray, fermi: float) -> float:
    """The gap a window shows (0 when it does not straddle E_F, like a metal's)."""
    gap = electronic.window_band_gap(energies, kpts, fermi)
    return 0.0 if gap is None else float(gap["gap"])


def results(spread_: Spread, energies: np.ndarray, fermi: float, threshold: float = THRESHOLD_EV) -> dict:
    """The calculator's results entries for a spread (ASE's spin axis on the level spreads), with one
    :class:`~tracegrad_ase.core.errors.UncertaintyWarning` when a level within ``WINDOW_EV`` of E_F spreads by
    more than ``threshold`` eV."""
    import warnings

    from .core.errors import UncertaintyWarning
    from .core.stacklevel import user_stacklevel
    from .electronic.filling import spin_axis

    worst = spread_.worst_near_fermi(energies, fermi)
    if worst > threshold:
        warnings.warn(f"the {spread_.size} committee members disagree by up to {worst:.3f} eV (standard deviation) "
                      f"on levels within {WINDOW_EV:g} eV of E_F, above {threshold:g} eV: the bands there are "
                      f"uncertain (gap spread: {spread_.band_gap_std if spread_.band_gap_std is not None else 0:.3f} "
                      "eV)", UncertaintyWarning, stacklevel=user_stacklevel())
    return {"eigenvalues_std": spin_axis(spread_.eigenvalues_std), "fermi_level_std": spread_.fermi_level_std,
            "band_gap_std": spread_.band_gap_std, "committee_size": spread_.size,
            "uncertainty_near_fermi": worst}
