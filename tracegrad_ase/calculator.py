"""``TraceGradCalculator``: an ASE calculator that predicts the Hamiltonian and answers ASE's
electronic-structure interface, so ``ase.dft.dos.DOS(calc)``, ``ase.dft.bandgap.bandgap(calc)`` and
``atoms.calc.band_structure().plot()`` work unchanged.

It recomputes only when the atoms or a parameter change. No total energy and no forces: the model predicts H.

Absolute levels (``get_eigenvalues``) are in the model's own energy zero: the zero of a periodic DFT calculation is
the cell-averaged potential (more vacuum: every level moves together), which no local model can see. Levels
relative to ``get_fermi_level()``, gaps, the DOS around E_F and occupations do not depend on it. Predicted levels
far outside the model's training range (relative to E_F) are ghost levels: a ``spectrum.GhostLevelWarning`` and
``results["ghost_levels"]``. Atoms unlike any in the training data: an ``OutOfDomainWarning`` and
``results["domain_scores"]`` (per atom; above 1 out of the domain).

Reliability contract:

- every parameter is checked where it is given (constructor or ``set``); unknown keywords, wrong types and
  impossible values are a :class:`~tracegrad_ase.errors.ParameterError` naming the parameter;
- results belong to the atoms they were computed for: the argument-free getters (``get_fermi_level()``, ...)
  answer for the one ``Atoms`` the calculator is attached to, recomputing when it changed, and refuse
  (:class:`~tracegrad_ase.errors.CalculatorUsageError`) while it is attached to several;
- k-points along a non-periodic direction must be 0 (or a whole number): a path along one would plot flat bands;
- a ``BandPath`` made for another cell is refused (:class:`~tracegrad_ase.errors.MismatchError`), and NaN or
  infinite levels are an error (:class:`~tracegrad_ase.errors.PredictionError`), never a result;
- one calculator may be shared between threads: calculations and result reads hold a lock.
"""

from __future__ import annotations

import copy
import os
import threading
import weakref
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, Parameters, PropertyNotImplementedError, all_changes
from ase.dft.kpoints import BandPath

from . import electronic
from .electronic import spectrum
from .electronic.filling import NSPINS, spin_axis
from .core import symmetry
from .core.errors import (CalculatorUsageError, MismatchError, ParameterError, PredictionError,
                     StructureError, UnknownParameterError)
from .electronic.cut_sensitivity import check_gap_cut
from .electronic.solve import PREDICTED_LINDEP
from . import committee, refine, scf_check
from .predict import load
from .core.structures import validate_atoms
from .parameters import (_ASE_KEYWORDS, _CHECKS, _NOT_OFFERED, _check_bool, _check_finite, _is_path_dict,  # noqa: F401
                         _real, check_sparse_lindep, domain_results,
                         check_bandpath, check_fermi_kpts, check_kpts, effective_lindep, fermi_mesh,  # check_*: public,
                         is_path_or_list, molecule_kpoints, resolve_kpoints)  # re-exported from their old home
from .responses import CrystalResponses
from .wavefunctions import RealSpaceStates

class TraceGradCalculator(CrystalResponses, RealSpaceStates, Calculator):
    """Predicted H(R) (eV) with the basis overlap S(R), and everything that follows from them.

    Parameters
    ----------
    model: a shipped model's name or a model folder.
    kpts: where eigenvalues are wanted: a Monkhorst-Pack size ``(n1, n2, n3)`` (a Γ-centred mesh; integral floats
        such as 6.0 are taken as 6), ASE's dicts ``{"density": d}`` / ``{"size": ..., "gamma": ...}`` (ASE's
        Monkhorst-Pack points) or ``{"path": "GMKG", "npoints": 100}`` (a path on the atoms' cell), an explicit
        (nk, 3) list of fractional k-points, or a ``BandPath`` of the atoms' cell (``atoms.cell.bandpath()``).
        k along a non-periodic direction must be 0, and a mesh 1 there. Molecules: Γ (a path is refused).
    fermi_kpts: the mesh the Fermi level is found on when ``kpts`` is a path or a list (default: a
        Monkhorst-Pack mesh of density 5 Å, or ``kpts`` itself when that is a mesh). Never a path.
    symmetry: a Monkhorst-Pack size (of ``kpts`` or ``fermi_kpts``) is a Γ-centred mesh; with ``symmetry=True``
        only its irreducible points are solved (spglib's point group and time reversal), weighted by their star.
    smearing, width: ``"fermi-dirac"``, ``"gaussian"`` or ``"none"``, width in eV (> 0).
    sigma, n_bands: for structures above ``electronic.solve.SPARSE_THRESHOLD`` (3000) orbitals no dense matrix is
        formed: the ``n_bands`` (default 32) eigenpairs nearest ``sigma`` (eV; default: the Fermi level) come
        from a sparse shift-invert solver. The Fermi level is then the Γ-point HOMO/LUMO midpoint found by
        inertia counting (``electronic.sparse_fermi_level``: sparse factorizations, no diagonalization);
        occupations are not available.
    lindep: overlap eigenvalues below this are dropped as linear dependencies when solving (canonical
        orthogonalization), 0 <= lindep < 1. Default: the model's own value (model.json, calibrated on its
        validation set by ``calculators/calibrate_lindep.py``), else ``electronic.solve.PREDICTED_LINDEP`` (1e-2):
        a prediction's errors along nearly dependent overlap directions (gth-dzvp graphene: S(k) down to 1e-8;
        def2-SVP: ~1e-3) are amplified by 1/s — with the shipped carbon model, band errors near E_F of 6.7 eV at
        1e-6, 0.18 eV at 1e-2 —, while the exact Hamiltonian is consistent with S there. The gap is solved again at
        0.6x and 2x lindep (at its band edges' k-points): ``band_gap_cut_sensitivity`` (eV) is how far it moves,
        with an ``UncertaintyWarning`` above 0.1 eV (``electronic.cut_sensitivity``).
    scf_check: molecules: one Kohn-Sham matrix F[ρ] (PySCF, the model's functional and basis) from the predicted
        density; ``scf_gap_residual`` is its HOMO-LUMO gap minus the prediction's (eV; also ``fock_gap``,
        ``fock_levels``, ``refined_gap``), an ``UncertaintyWarning`` above 0.1 eV (:mod:`~tracegrad_ase.scf_check`).
        None: on for molecules up to 300 orbitals whose model card names its functional; True: on; False: off.
    refine: crystals: replace the prediction by Kohn-Sham builds from its own density (PySCF; the model's functional,
        basis, pseudopotentials, smearing and SCF k-spacing from its card): ``True`` two builds combined by DIIS,
        an integer that many (1: one build mixed by the model's calibrated factor), ``False``/0 none
        (:mod:`~tracegrad_ase.refine`). Carbon 0.8, band MAE within ±2 eV of E_F: held-out 2x2 cell 31 -> 7 meV,
        for ~25 s a build on a graphene cell (minutes for larger ones; no SCF). H is then in the ground truth's
        energy zero (``meta``: ``source`` "fock", ``refine_residual_ev``); not with ``uncertainty`` (the
        committee's spread is of the predictions) nor for molecules (``scf_check``).
    grid_spacing: the real-space grid's spacing (Å) for states and densities (``get_pseudo_wave_function``,
        ``get_pseudo_density``, ``get_partial_density``: :mod:`~tracegrad_ase.wavefunctions`); 0.2 by default.
    uncertainty: also predict with the model's committee (``committee/`` members: other seeds) and report the
        spread over members in ``results``: ``eigenvalues_std`` (of ε - E_F, shaped as ``eigenvalues``), ``fermi_level_std``,
        ``band_gap_std`` (eV; ``get_property("band_gap_std")``), with an ``UncertaintyWarning`` when a level within
        2 eV of E_F spreads by more than 0.1 eV. Costs one prediction and solve per member; on the sparse path
        also one Fermi-level search per member and one inertia count per k-point and member (bands matched by index).
    ensemble: report the committee's mean H (:func:`~tracegrad_ase.committee.mean_hamiltonian`; every member's
        prediction in member 0's energy zero) and its levels, E_F and gap instead of member 0's: more accurate
        (the shipped cards' ``ensemble`` figures) at one prediction per member; ``uncertainty`` is then the spread
        over the members themselves.
    device, dtype: where the network runs: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or ``"auto"``; ``None``
        (the model file's), ``"float32"``, ``"float64"`` or the torch dtypes (anything else: a ``ParameterError``
        naming these). Use ``"float64"`` for reproducible comparisons: rotating or permuting the atoms moves the
        levels by ~1e-3 meV in float64 but by ~0.03-0.3 meV in float32 (shipped ``carbon`` model, graphene and
        diamond); float32 (the shipped models' own) is faster and accurate far beyond the model's error.

    Any other keyword (except ASE's ``atoms``, ``label``, ``directory``) is an
    :class:`~tracegrad_ase.errors.UnknownParameterError`, and so is an unknown name in ``calc.set(...)``.

    Public attributes (for adapters such as :mod:`tracegrad_ase.interop.pymatgen`; read them after a calculation):

    - ``model``: the loaded :class:`~tracegrad_ase.model.network.TraceGradNet` (``model.model_file``,
      ``model.domain``);
    - ``solution``: the :class:`~tracegrad_ase.electronic.solve.KSolution` of the last calculation (k-points,
      weights, energies; ``sparse`` for a window of bands);
    - ``asm``: the :class:`~tracegrad_ase.electronic.bloch.BlochAssembler` of the predicted Hamiltonian
      (``asm.ham``), for further Bloch sums and solves;
    - ``folded``: whether ``solution`` is on a symmetry-reduced mesh (per-atom quantities then need
      :func:`~tracegrad_ase.core.symmetry.orbit_mean`);
    - :meth:`for_kpoints`: a copy on other k-points that shares the loaded network.
    """

    implemented_properties = ["hamiltonian", "eigenvalues", "fermi_level", "band_gap", "eigenvalues_std",
                              "fermi_level_std", "band_gap_std", "band_gap_cut_sensitivity", "scf_gap_residual"]
    default_parameters: dict[str, Any] = {"kpts": None, "fermi_kpts": None, "smearing": "fermi-dirac", "width": 0.05,
                                          "sigma": None, "n_bands": None, "symmetry": True, "lindep": None,
                                          "scf_check": None, "refine": False, "grid_spacing": 0.2}
    ignored_changes = {"initial_magmoms", "initial_charges"}

    def __init__(self, model: str | os.PathLike, kpts=None, fermi_kpts=None, smearing: str = "fermi-dirac",
                 width: float = 0.05, sigma: float | None = None, n_bands: int | None = None, device: str = "cpu",
                 dtype=None, symmetry: bool = True, lindep: float | None = None, uncertainty: bool = False,
                 scf_check: bool | None = None, ensemble: bool = False, refine: bool = False,
                 grid_spacing: float = 0.2, **kwargs):
        unknown = sorted(set(kwargs) - set(_ASE_KEYWORDS))
        if unknown:
            raise UnknownParameterError(
                f"TraceGradCalculator got unknown keyword(s) {unknown}; it takes model, "
                f"{', '.join(self.default_parameters)}, device, dtype (and ASE's {', '.join(_ASE_KEYWORDS)})")
        if not isinstance(model, (str, os.PathLike)):
            raise ParameterError(f"model must be a shipped model's name or a model folder, got {model!r}")
        self._lock = threading.RLock()
        self._attached: list[weakref.ref] | None = None
        self._folded = False  # whether the k-points are a symmetry-reduced mesh
        self._bandpath: BandPath | None = None
        self._refined: dict = {}  # the last refined H, shared with for_kpoints copies (refine.remembered)
        # Checked before the model loads, so a typo costs nothing.
        params = {k: _CHECKS[k](v) for k, v in dict(kpts=kpts, fermi_kpts=fermi_kpts, smearing=smearing, width=width,
                                                     sigma=sigma, n_bands=n_bands, symmetry=symmetry,
                                                     lindep=lindep, scf_check=scf_check, refine=refine,
                                                     grid_spacing=grid_spacing).items()}
        self.model = load(model, device=device, dtype=dtype)
        self._uncertainty, self._ensemble = _check_bool("uncertainty")(uncertainty), _check_bool("ensemble")(ensemble)
        self._members = committee.load_members(model, self.model, device, dtype) if uncertainty or ensemble else []
        self.model_name = str(model)
        super().__init__(**params, **kwargs)

    def set(self, **kwargs) -> dict:
        """Change parameters (checked like the constructor's); any change discards the results."""
        unknown = sorted(set(kwargs) - set(self.default_parameters))
        if unknown:
            raise UnknownParameterError(f"unknown calculator parameter(s) {unknown}; known: "
                                        f"{', '.join(self.default_parameters)} (model, device and dtype are fixed "
                                        "when the calculator is made)")
        clean = {k: _CHECKS[k](v) for k, v in kwargs.items()}
        with self._lock:
            changed = super().set(**clean)
            if changed:  # results of the old parameters would be wrong answers for the new ones
                self.reset()
            return changed

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for name in ("_lock", "_grid_cache", "_state_cache", "_vector_cache"):  # grids and states: rebuilt on demand
            state.pop(name, None)
        state["_attached"] = None  # a copy is attached to nothing: atoms.calc still names the original
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    @property
    def folded(self) -> bool:
        """Whether the last calculation's k-points are a symmetry-reduced mesh (weights from the star of each)."""
        return self._folded

    def for_kpoints(self, kpts: Any) -> "TraceGradCalculator":
        """A copy on the explicit k-point list ``kpts`` that shares the loaded network; this calculator's
        parameters and results are not touched. E_F needs a mesh: this one's Monkhorst-Pack ``kpts`` become the
        copy's ``fermi_kpts`` when it has none."""
        calc = copy.copy(self)  # __getstate__: the copy is attached to no Atoms
        calc.parameters = Parameters(copy.deepcopy(dict(self.parameters)))
        calc.reset()
        params = calc.parameters
        if params.get("fermi_kpts") is None and params.get("kpts") is not None \
                and not is_path_or_list(params["kpts"]):
            params["fermi_kpts"] = params["kpts"]
        params["kpts"] = np.asarray(kpts, dtype=float)
        return calc

    # -- which atoms the results belong to ----------------------------------------------------------
    def set_atoms(self, atoms: Atoms) -> None:
        """Called by ``atoms.calc = calc``: the argument-free getters then answer for these atoms."""
        with self._lock:
            others = [a for a in self._attached_atoms() if a is not atoms]
            self._attached = [weakref.ref(a) for a in others] + [weakref.ref(atoms)]

    def _attached_atoms(self) -> list[Atoms]:
        """The Atoms objects whose ``calc`` is this calculator now (reassigned or collected ones drop out)."""
        out: list[Atoms] = []
        for ref in self._attached or []:
            a = ref()
            if a is not None and a.calc is self and all(a is not b for b in out):
                out.append(a)
        return out

    def _owner(self) -> Atoms:
        """The atoms an argument-free getter answers for: the one attached Atoms, else the last calculated."""
        attached = self._attached_atoms()
        if len(attached) > 1:
            formulas = ", ".join(a.get_chemical_formula() for a in attached)
            raise CalculatorUsageError(
                f"this calculator is attached to {len(attached)} Atoms objects ({formulas}), so an argument-free "
                "getter cannot tell which one you mean (ASE keeps one calculator per Atoms). Give each its own "
                "TraceGradCalculator, or ask with the atoms: calc.get_property('fermi_level', atoms)")
        if attached:
            return attached[0]
        if self.atoms is not None:
            return self.atoms
        raise CalculatorUsageError("no structure: attach the calculator (atoms.calc = calc) or call calculate(atoms)")

    # -- ASE's Calculator protocol ---------------------------------------------------------------
    def get_property(self, name, atoms=None, allow_calculation=True):
        if name in _NOT_OFFERED:
            raise PropertyNotImplementedError(
                f"TraceGradCalculator predicts the Hamiltonian, not '{name}': it offers "
                f"{', '.join(self.implemented_properties)}, get_eigenvalues(), get_fermi_level(), band_structure(), "
                "ase.dft.dos.DOS(calc) and ase.dft.bandgap.bandgap(calc)")
        with self._lock:  # check_state, calculate and the read of results are one step for other threads
            return super().get_property(name, self._owner() if atoms is None else atoms, allow_calculation)

    def calculate(self, atoms: Atoms | None = None, properties=("hamiltonian",), system_changes=all_changes):
        with self._lock:
            super().calculate(self._owner() if atoms is None else atoms, properties, system_changes)
            atoms = self.atoms
            validate_atoms(atoms)  # before symmetry and k-points, which would fail less clearly
            periodic = bool(np.any(atoms.pbc))
            if periodic:
                kpts, weights, self._bandpath = resolve_kpoints(atoms, self.parameters)
            else:
                kpts, weights, self._bandpath = molecule_kpoints(atoms, self.parameters.kpts), None, None
            if self.parameters.refine:
                refine.check_request(atoms, self._uncertainty)  # before any prediction: a refusal costs nothing
            ham, others = committee.predict(atoms, self.model, self._members, self._ensemble)
            if self.parameters.refine:
                ham = refine.remembered(self._refined, ham, self.model_name, self.model.model_file,
                                        self.parameters.refine)
            self.asm = electronic.BlochAssembler(ham)
            nelec = electronic.electron_count(ham)
            self._folded = weights is not None  # only a symmetry-reduced mesh carries weights
            self._lindep = effective_lindep(self.parameters, self.model.model_file)
            if self.asm.norb > electronic.solve.SPARSE_THRESHOLD:
                self._calculate_window(ham, others, kpts, weights, nelec)
                return
            sol = electronic.solve_k(self.asm, kpts, vectors=not periodic, weights=weights, lindep=self._lindep)
            smearing, width = self.parameters.smearing, self.parameters.width
            if periodic and is_path_or_list(self.parameters.kpts):
                fk, fw = fermi_mesh(atoms, self.parameters)
                fsol = electronic.solve_k(self.asm, fk, weights=fw, lindep=self._lindep)
                ef = electronic.fermi_level(fsol.energies, fsol.weights, nelec, smearing, width)
                _check_finite(fsol.energies, ef)
            else:
                fsol = None
                ef = electronic.fermi_level(sol.energies, sol.weights, nelec, smearing, width)
            _check_finite(sol.energies, ef)
            ham.meta["fermi_level_ev"] = ef
            # levels far outside the training range, on every k-point solved: a GhostLevelWarning naming the worst
            ghosts = spectrum.solution_ghost_levels([sol] if fsol is None else [sol, fsol], ef, self.model.model_file)
            self.solution = sol
            self.results = {
                "hamiltonian": ham,
                "eigenvalues": spin_axis(sol.energies),  # (nspins, nkpts, nbands), as ASE declares it
                "fermi_level": ef,
                "band_gap": electronic.band_gap(sol.energies, sol.kpts, ef),
                "occupations": spin_axis(electronic.occupations(sol.energies, ef, smearing, width, sol.weights,
                                                                nelec)),
                "n_electrons": nelec,
                "ghost_levels": ghosts, **domain_results(ham),
            }
            self.results["band_gap_cut_sensitivity"] = check_gap_cut(self.asm, self.results["band_gap"], nelec,
                                                                      self._lindep)
            self.results.update(scf_check.calculator_results(self.parameters.scf_check, ham, self.results,
                                                             self.model_name, self.model.model_file))
            if self._uncertainty:
                spread = committee.spread(ham, sol.energies, ef, others, kpts, None if fsol is None else (fk, fw),
                                          weights, dict(lindep=self._lindep, smearing=smearing, width=width),
                                          include_main=not self._ensemble)
                self.results.update(committee.results(spread, sol.energies, ef))

    def _calculate_window(self, ham, others: list, kpts: np.ndarray, weights: np.ndarray | None, nelec: int) -> None:
        """Large structures: the bands nearest ``sigma`` only, by sparse shift-invert."""
        check_sparse_lindep(self.asm, self._lindep)
        edges = electronic.sparse_fermi_level(self.asm, nelec, guess=self.parameters.sigma)
        ef = edges["fermi_level"]
        sigma = ef if self.parameters.sigma is None else float(self.parameters.sigma)
        sol = electronic.solve_k(self.asm, kpts, sparse=True, sigma=sigma, n_bands=self.parameters.n_bands,
                                 weights=weights)
        _check_finite(sol.energies, ef)
        ham.meta["fermi_level_ev"] = ef
        self.solution = sol
        self.results = {"hamiltonian": ham, "eigenvalues": spin_axis(sol.energies), "fermi_level": ef,
                        "n_electrons": nelec, **domain_results(ham),
                        "band_gap": electronic.window_band_gap(sol.energies, sol.kpts, ef),
                        "band_gap_cut_sensitivity": None}  # nothing is cut here (the solver refuses lindep cases)
        if self._uncertainty:
            spread = committee.window_spread(self.asm, sol.energies, ef, others, kpts, sigma,
                                             include_main=not self._ensemble)
            self.results.update(committee.results(spread, sol.energies, ef))

    # -- ASE's electronic-structure interface -----------------------------------------------------
    def _result(self, name):
        """``name`` for the atoms this calculator answers for (see :meth:`_owner`), recomputed if they changed."""
        return self.get_property(name)

    def get_hamiltonian(self, atoms: Atoms | None = None):
        """The predicted :class:`~tracegrad_ase.hamiltonian.RealSpaceHamiltonian` (H and S blocks, eV)."""
        return self.get_property("hamiltonian", atoms)

    def get_eigenvalues(self, kpt: int = 0, spin: int = 0) -> np.ndarray:
        if spin != 0:
            raise IndexError("TraceGradCalculator is spin-restricted: only spin 0 exists")
        return np.array(self._result("eigenvalues")[spin, kpt])

    def get_fermi_level(self) -> float:
        return float(self._result("fermi_level"))

    def get_ibz_k_points(self) -> np.ndarray:
        """The k-points the eigenvalues are given on: a mesh's irreducible points with ``symmetry=True``."""
        with self._lock:
            self._result("eigenvalues")
            return np.array(self.solution.kpts)

    def get_k_point_weights(self) -> np.ndarray:
        with self._lock:
            self._result("eigenvalues")
            return np.array(self.solution.weights)

    def get_number_of_spins(self) -> int:
        return NSPINS

    def get_spin_polarized(self) -> bool:
        return False

    def get_number_of_bands(self) -> int:
        return int(self._result("eigenvalues").shape[2])

    def get_occupation_numbers(self, kpt: int = 0, spin: int = 0) -> np.ndarray:
        if spin != 0:
            raise IndexError("TraceGradCalculator is spin-restricted: only spin 0 exists")
        with self._lock:
            self._result("eigenvalues")
            if "occupations" not in self.results:
                raise PropertyNotImplementedError("occupations need the full spectrum; this structure was solved "
                                                  "for a window of bands near sigma (sparse solver)")
            return np.array(self.results["occupations"][spin, kpt])

    def get_band_gap(self) -> dict[str, Any]:
        """Gap (eV), direct or not, band edges and their k-points."""
        return dict(self._result("band_gap"))

    def get_dos(self, energies: np.ndarray, width: float = 0.1, by: str | None = None) -> Any:
        """Total DOS (states/eV per cell, both spins) on ``energies`` (absolute, eV) over the calculator's
        k-points, or with ``by="atom" | "element" | "l"`` the Mulliken-projected DOS as a dict of arrays."""
        width = _real("width (eV)", width, 0.0, strict_low=True)
        with self._lock:
            self._result("eigenvalues")
            if by is None:
                return electronic.dos(self.solution.energies, self.solution.weights, energies, width)
            sol = electronic.solve_k(self.asm, self.solution.kpts, vectors=True, weights=self.solution.weights,
                                     lindep=self._lindep)
            pdos = electronic.projected_dos(sol, self.asm, energies, width, by=by)
            if by in ("atom", "atom_l") and self._folded:
                # Folding k by symmetry permutes equivalent atoms: only their average is the full-mesh value.
                pdos = symmetry.orbit_mean(pdos, self.atoms)
            return pdos

    def band_structure(self, reference: float | None = None):
        """ASE's ``BandStructure`` on the calculator's k-path (``kpts`` must be a ``BandPath`` or a path dict)."""
        from ase.spectrum.band_structure import BandStructure

        kpts = self.parameters.kpts
        if not (isinstance(kpts, BandPath) or _is_path_dict(kpts)):
            raise ParameterError("band_structure() needs the calculator's kpts to be a BandPath, "
                                 "e.g. TraceGradCalculator(model, kpts=atoms.cell.bandpath(npoints=100))")
        with self._lock:
            energies = self._result("eigenvalues")  # (nspins, nkpts, nbands): ASE's BandStructure shape
            path = self._bandpath if self._bandpath is not None else kpts
            return BandStructure(path=path, energies=energies,
                                 reference=self.get_fermi_level() if reference is None else reference)

    def unfold(self, primitive_cell: Atoms, path=None, npoints: int = 60, **kw):
        """This supercell's levels unfolded onto ``primitive_cell``'s k-path (``electronic.unfold``; its keywords):
        an ``UnfoldedBands`` (``energies``, ``weights``, ``plot()``), with this prediction's E_F and lindep."""
        with self._lock:
            ef = self.get_fermi_level()  # predicts first: asm and lindep are this structure's
            kw = dict(fermi_level=ef, lindep=self._lindep, sigma=self.parameters.sigma,
                      n_bands=self.parameters.n_bands) | kw
            return electronic.unfold(self.asm, primitive_cell, path, npoints, **kw)

    # -- molecules --------------------------------------------------------------------------------
    def get_molecular_orbitals(self) -> dict[str, Any]:
        """Orbital energies, MO coefficients (e3nn order), occupations, HOMO/LUMO, gap, density matrix."""
        with self._lock:
            ham = self.get_hamiltonian()
            lindep = effective_lindep(self.parameters, self.model.model_file)
        if np.any(ham.atoms.pbc):
            raise StructureError("molecular orbitals are for molecules (no periodic direction); use get_eigenvalues")
        mo = electronic.molecular_orbitals(ham, lindep)
        _check_finite(mo["energies"], 0.0)
        return mo

    def get_homo_lumo(self) -> tuple[float, float]:
        mo = self.get_molecular_orbitals()
        return float(mo["homo"]), float(mo["lumo"])

    # -- export -----------------------------------------------------------------------------------
    def write_hamiltonian(self, path: str | os.PathLike, format: str = "h5") -> None:
        """Write the predicted H(R), S(R): ``format="h5"`` (our HDF5) or ``"deeph"`` (a DeepH folder)."""
        from .io.layouts import write_hamiltonian

        write_hamiltonian(self.get_hamiltonian(), path, format)

    def to_sisl(self, atoms: Atoms | None = None):
        """The predicted H(R), S(R) as a non-orthogonal ``sisl.Hamiltonian`` (eV; the ``[sisl]`` extra), for sisl's
        fat bands, COOP/COHP, Berry phases and TBtrans: :func:`tracegrad_ase.io.sisl.to_sisl`."""
        from .io.sisl import to_sisl

        return to_sisl(self.get_hamiltonian(atoms))
