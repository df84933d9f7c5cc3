"""``TraceGradCalculator``: an ASE calculator that predicts the Hamiltonian and answers ASE's
electronic-structure interface, so ``ase.dft.dos.DOS(calc)``, ``ase.dft.bandgap.bandgap(calc)`` and
``atoms.calc.band_structure().plot()`` work unchanged.

It recomputes only when the atoms change (ASE's ``check_state``). It offers no total energy and no forces:
the model predicts H, not E.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import (Calculator, PropertyNotImplementedError, all_changes, kpts2kpts,
                                         kpts2sizeandoffsets)
from ase.dft.kpoints import BandPath

from . import electronic, symmetry
from .errors import LinearDependenceError
from .hamiltonian import PREDICTED_LINDEP
from .predict import load, predict_hamiltonian

_NOT_OFFERED = ("energy", "free_energy", "forces", "stress", "energies", "stresses", "magmom", "magmoms",
                "dipole", "charges")


class TraceGradCalculator(Calculator):
    """Predicted H(R) (eV) with the basis overlap S(R), and everything that follows from them.

    Parameters
    ----------
    model: a shipped model's name or a model folder.
    kpts: where eigenvalues are wanted: a Monkhorst-Pack size ``(n1, n2, n3)``, ``{"density": d}``, an explicit
        (nk, 3) list of fractional k-points, or a ``BandPath`` (``atoms.cell.bandpath()``). Molecules: Γ.
    fermi_kpts: the mesh the Fermi level is found on when ``kpts`` is a path or a list (default: a
        Monkhorst-Pack mesh of density 5 Å, or ``kpts`` itself when that is a mesh).
    symmetry: a Monkhorst-Pack size (of ``kpts`` or ``fermi_kpts``) is a Γ-centred mesh; with ``symmetry=True``
        only its irreducible points are solved (spglib's point group and time reversal), weighted by their star.
    smearing, width: ``"fermi-dirac"``, ``"gaussian"`` or ``"none"``, width in eV.
    sigma, n_bands: for structures above ``electronic.SPARSE_THRESHOLD`` (3000) orbitals no dense matrix is
        formed: the ``n_bands`` (default 32) eigenpairs nearest ``sigma`` (eV; default: the Fermi level) come
        from a sparse shift-invert solver. The Fermi level is then the Γ-point HOMO/LUMO midpoint found by
        inertia counting (``electronic.sparse_fermi_level``: sparse factorizations, no diagonalization);
        occupations are not available.
    lindep: overlap eigenvalues below this are dropped as linear dependencies when solving (canonical
        orthogonalization). Default ``hamiltonian.PREDICTED_LINDEP`` (1e-2), molecules and crystals: nearly
        dependent bases (gth-dzvp graphene: S(k) down to 1e-8; def2-SVP ethanol: ~1e-3) amplify a prediction's
        errors along those directions by 1/s — measured with the shipped carbon model, band errors near E_F of
        6.7 eV at 1e-6 and 0.18 eV at 1e-2; with the ethanol model, spurious levels in the HOMO-LUMO gap at
        1e-6 —, while the exact Hamiltonian is consistent with S there and needs no such cut.
    device, dtype: where the network runs.
    """

    implemented_properties = ["hamiltonian", "eigenvalues", "fermi_level", "band_gap"]
    default_parameters: dict[str, Any] = {"kpts": None, "fermi_kpts": None, "smearing": "fermi-dirac", "width": 0.05,
                                          "sigma": None, "n_bands": None, "symmetry": True, "lindep": None}
    ignored_changes = {"initial_magmoms", "initial_charges"}

    def __init__(self, model: str | os.PathLike, kpts=None, fermi_kpts=None, smearing: str = "fermi-dirac",
                 width: float = 0.05, sigma: float | None = None, n_bands: int | None = None, device: str = "cpu",
                 dtype=None, symmetry: bool = True, lindep: float | None = None, **kwargs):
        super().__init__(kpts=kpts, fermi_kpts=fermi_kpts, smearing=smearing, width=width, sigma=sigma,
                         n_bands=n_bands, symmetry=symmetry, lindep=lindep, **kwargs)
        if smearing not in electronic.SMEARINGS:
            raise ValueError(f"smearing must be one of {electronic.SMEARINGS}, got {smearing!r}")
        self.model = load(model, device=device, dtype=dtype)
        self.model_name = str(model)
        self._attached: Atoms | None = None
        self._folded = False  # whether the k-points are a symmetry-reduced mesh

    def set_atoms(self, atoms: Atoms) -> None:
        """Called by ``atoms.calc = calc``: ASE's argument-free getters then follow these atoms' changes."""
        self._attached = atoms

    # -- ASE's Calculator protocol ---------------------------------------------------------------
    def get_property(self, name, atoms=None, allow_calculation=True):
        if name in _NOT_OFFERED:
            raise PropertyNotImplementedError(
                f"TraceGradCalculator predicts the Hamiltonian, not '{name}': it offers "
                f"{', '.join(self.implemented_properties)}, get_eigenvalues(), get_fermi_level(), band_structure(), "
                "ase.dft.dos.DOS(calc) and ase.dft.bandgap.bandgap(calc)")
        return super().get_property(name, atoms, allow_calculation)

    def calculate(self, atoms: Atoms | None = None, properties=("hamiltonian",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        ham = predict_hamiltonian(atoms, self.model)
        self.asm = electronic.BlochAssembler(ham)
        nelec = electronic.electron_count(ham)
        periodic = bool(np.any(atoms.pbc))
        kpts, weights = self._kpoints(atoms, self.parameters.kpts) if periodic else (np.zeros((1, 3)), None)
        self._folded = weights is not None  # only a symmetry-reduced mesh carries weights
        self._lindep = self.parameters.lindep if self.parameters.lindep is not None else PREDICTED_LINDEP
        if self.asm.norb > electronic.SPARSE_THRESHOLD:
            self._calculate_window(ham, kpts, weights, nelec)
            return
        sol = electronic.solve_k(self.asm, kpts, vectors=not periodic, weights=weights, lindep=self._lindep)
        smearing, width = self.parameters.smearing, self.parameters.width
        if periodic and self._is_path_or_list(self.parameters.kpts):
            fk, fw = self._fermi_mesh(atoms)
            fsol = electronic.solve_k(self.asm, fk, weights=fw, lindep=self._lindep)
            ef = electronic.fermi_level(fsol.energies, fsol.weights, nelec, smearing, width)
        else:
            ef = electronic.fermi_level(sol.energies, sol.weights, nelec, smearing, width)
        ham.meta["fermi_level_ev"] = ef
        self.solution = sol
        self.results = {
            "hamiltonian": ham,
            "eigenvalues": sol.energies,
            "fermi_level": ef,
            "band_gap": electronic.band_gap(sol.energies, sol.kpts, ef),
            "occupations": electronic.occupations(sol.energies, ef, smearing, width, sol.weights, nelec),
            "n_electrons": nelec,
        }

    def _calculate_window(self, ham, kpts: np.ndarray, weights: np.ndarray | None, nelec: int) -> None:
        """Large structures: the bands nearest ``sigma`` only, by sparse shift-invert."""
        smallest = electronic.smallest_overlap_eigenvalue(self.asm)
        if smallest < self._lindep:
            raise LinearDependenceError(
                f"{self.asm.norb} orbitals take the sparse solver, which cannot drop linear dependencies, but this "
                f"cell's overlap S(Γ) has an eigenvalue of {smallest:.1e} in the {ham.basis.name} basis, below "
                f"lindep = {self._lindep:g}: a predicted H gives spurious levels there (its errors are amplified "
                f"by 1/s). Use a model in a better-conditioned basis (the shipped 'graphene-szv': smallest overlap "
                f"eigenvalue ~0.12 in graphene), at most {electronic.SPARSE_THRESHOLD} orbitals (dense path), or "
                f"lindep=0 to accept the risk")
        edges = electronic.sparse_fermi_level(self.asm, nelec, guess=self.parameters.sigma)
        ef = edges["fermi_level"]
        sigma = ef if self.parameters.sigma is None else float(self.parameters.sigma)
        sol = electronic.solve_k(self.asm, kpts, sparse=True, sigma=sigma, n_bands=self.parameters.n_bands,
                                 weights=weights)
        ham.meta["fermi_level_ev"] = ef
        self.solution = sol
        straddles = (sol.energies <= ef).any() and (sol.energies > ef).any()  # a window away from E_F has no gap
        self.results = {"hamiltonian": ham, "eigenvalues": sol.energies, "fermi_level": ef, "n_electrons": nelec,
                        "band_gap": electronic.band_gap(sol.energies, sol.kpts, ef) if straddles else None}

    # -- kpoints ----------------------------------------------------------------------------------
    @staticmethod
    def _is_path_or_list(kpts) -> bool:
        return isinstance(kpts, BandPath) or (kpts is not None and np.ndim(kpts) == 2)

    @staticmethod
    def _is_size(kpts) -> bool:
        return np.ndim(kpts) == 1 and len(kpts) == 3 and all(isinstance(n, (int, np.integer)) for n in kpts)

    def _kpoints(self, atoms: Atoms, kpts) -> tuple[np.ndarray, np.ndarray | None]:
        """k-points and their weights (None: uniform)."""
        if kpts is None:
            return self._fermi_mesh(atoms)
        if isinstance(kpts, BandPath):
            return np.asarray(kpts.kpts, dtype=float), None
        if np.ndim(kpts) == 2:
            k = np.asarray(kpts, dtype=float)
            if k.shape[1] != 3:
                raise ValueError(f"an explicit k-point list must have shape (nk, 3), got {k.shape}")
            return k, None
        if np.ndim(kpts) == 1 and len(kpts) != 3:
            raise ValueError(f"a Monkhorst-Pack size needs 3 integers, got {list(kpts)}")
        if self._is_size(kpts):
            return self._mesh(atoms, kpts)
        return kpts2kpts(kpts, atoms=atoms).kpts, None

    def _mesh(self, atoms: Atoms, size) -> tuple[np.ndarray, np.ndarray | None]:
        """The Γ-centred mesh of ``size``: its irreducible points and weights, or with ``symmetry=False`` all of
        it (the same points in spglib's convention either way, so the two agree)."""
        if self.parameters.symmetry:
            k, w, _ = symmetry.irreducible_kpoints(atoms, size)
            return k, w
        return symmetry.full_mesh(size), None

    def _fermi_mesh(self, atoms: Atoms) -> tuple[np.ndarray, np.ndarray | None]:
        fk = self.parameters.fermi_kpts
        if fk is None:
            # Rounded up to odd sizes: that Monkhorst-Pack mesh is Γ-centred, so it is reduced like any size.
            size, _ = kpts2sizeandoffsets(density=5.0, even=False, atoms=atoms)
            fk = tuple(int(n) for n in size)
        if self._is_size(fk):
            return self._mesh(atoms, fk)
        return kpts2kpts(fk, atoms=atoms).kpts, None

    # -- ASE's electronic-structure interface -----------------------------------------------------
    def _result(self, name):
        atoms = self._attached if self._attached is not None else self.atoms
        if atoms is None:
            raise ValueError("no structure: attach the calculator (atoms.calc = calc) or call calculate(atoms)")
        return self.get_property(name, atoms)

    def get_hamiltonian(self, atoms: Atoms | None = None):
        """The predicted :class:`~tracegrad_ase.hamiltonian.RealSpaceHamiltonian` (H and S blocks, eV)."""
        return self.get_property("hamiltonian", atoms) if atoms is not None else self._result("hamiltonian")

    def get_eigenvalues(self, kpt: int = 0, spin: int = 0) -> np.ndarray:
        if spin != 0:
            raise IndexError("TraceGradCalculator is spin-restricted: only spin 0 exists")
        return np.array(self._result("eigenvalues")[kpt])

    def get_fermi_level(self) -> float:
        return float(self._result("fermi_level"))

    def get_ibz_k_points(self) -> np.ndarray:
        """The k-points the eigenvalues are given on: a mesh's irreducible points with ``symmetry=True``."""
        self._result("eigenvalues")
        return np.array(self.solution.kpts)

    def get_k_point_weights(self) -> np.ndarray:
        self._result("eigenvalues")
        return np.array(self.solution.weights)

    def get_number_of_spins(self) -> int:
        return 1

    def get_spin_polarized(self) -> bool:
        return False

    def get_number_of_bands(self) -> int:
        return int(self._result("eigenvalues").shape[1])

    def get_occupation_numbers(self, kpt: int = 0, spin: int = 0) -> np.ndarray:
        self._result("eigenvalues")
        if "occupations" not in self.results:
            raise PropertyNotImplementedError("occupations need the full spectrum; this structure was solved for a "
                                              "window of bands near sigma (sparse solver)")
        return np.array(self.results["occupations"][kpt])

    def get_band_gap(self) -> dict[str, Any]:
        """Gap (eV), direct or not, band edges and their k-points."""
        return dict(self._result("band_gap"))

    def get_dos(self, energies: np.ndarray, width: float = 0.1, by: str | None = None) -> Any:
        """Total DOS (states/eV per cell, both spins) on ``energies`` (absolute, eV) over the calculator's
        k-points, or with ``by="atom" | "element" | "l"`` the Mulliken-projected DOS as a dict of arrays."""
        self._result("eigenvalues")
        if by is None:
            return electronic.dos(self.solution.energies, self.solution.weights, energies, width)
        sol = electronic.solve_k(self.asm, self.solution.kpts, vectors=True, weights=self.solution.weights,
                                 lindep=self._lindep)
        pdos = electronic.projected_dos(sol, self.asm, energies, width, by=by)
        if by == "atom" and self._folded:
            # Folding k by symmetry permutes equivalent atoms: only their average is the full-mesh value.
            orbit = symmetry.equivalent_atoms(self.atoms)
            pdos = {a: np.mean([pdos[b] for b in np.nonzero(orbit == orbit[a])[0]], axis=0) for a in pdos}
        return pdos

    def band_structure(self, reference: float | None = None):
        """ASE's ``BandStructure`` on the calculator's k-path (``kpts`` must be a ``BandPath``)."""
        from ase.spectrum.band_structure import BandStructure

        path = self.parameters.kpts
        if not isinstance(path, BandPath):
            raise ValueError("band_structure() needs the calculator's kpts to be a BandPath, "
                             "e.g. TraceGradCalculator(model, kpts=atoms.cell.bandpath(npoints=100))")
        energies = self._result("eigenvalues")[None]
        return BandStructure(path=path, energies=energies,
                             reference=self.get_fermi_level() if reference is None else reference)

    # -- molecules --------------------------------------------------------------------------------
    def get_molecular_orbitals(self) -> dict[str, Any]:
        """Orbital energies, MO coefficients (e3nn order), occupations, HOMO/LUMO, gap, density matrix."""
        ham = self.get_hamiltonian()
        if np.any(ham.atoms.pbc):
            raise ValueError("molecular orbitals are for molecules (no periodic direction); use get_eigenvalues")
        lindep = self.parameters.lindep if self.parameters.lindep is not None else PREDICTED_LINDEP
        return electronic.molecular_orbitals(ham, lindep)

    def get_homo_lumo(self) -> tuple[float, float]:
        mo = self.get_molecular_orbitals()
        return float(mo["homo"]), float(mo["lumo"])

    # -- export -----------------------------------------------------------------------------------
    def write_hamiltonian(self, path: str | os.PathLike, format: str = "h5") -> None:
        """Write the predicted H(R), S(R): ``format="h5"`` (our HDF5) or ``"deeph"`` (a DeepH folder)."""
        from .datafiles import save_h5
        from .deeph import write_deeph

        ham = self.get_hamiltonian()
        if format == "h5":
            save_h5(ham, path)
        elif format == "deeph":
            write_deeph(ham, path)
        else:
            raise ValueError(f"format must be 'h5' or 'deeph', got {format!r}")
