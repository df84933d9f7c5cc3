"""What a ground-truth calculation is asked for: ``GroundTruthSettings`` (functional, basis, pseudopotentials,
meshes, smearing, cutoff), checked before any SCF runs so a typo costs nothing."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Sequence

import numpy as np
from ase import Atoms

from ...core.basis import OrbitalBasis
from ...core.errors import ParameterError

MOLECULE_DEFAULTS = {"basis": "def2-svp", "pseudo": None}
CRYSTAL_DEFAULTS = {"basis": "gth-dzvp", "pseudo": "gth-pbe"}
#: Crystal blocks are kept out to where every atom pair's overlap falls below this (see overlap_cutoff).
OVERLAP_TOLERANCE = 1e-6
#: PySCF's own initial guesses that :func:`run_scf` accepts by name.
PYSCF_GUESSES = ("minao", "atom", "huckel", "1e")


@dataclass(frozen=True)
class GroundTruthSettings:
    """How a ground-truth Hamiltonian is computed. Energies in eV, lengths in Å, k-spacings in 1/Å."""

    xc: str = "pbe"
    basis: str | None = None  # None: def2-svp for molecules, gth-dzvp for crystals
    pseudo: str | None = None  # None: none for molecules, gth-pbe for crystals
    charge: int = 0
    cutoff: float | None = None  # Å; pairs farther apart are not stored. None: all pairs (molecules), or for
    # crystals the distance beyond which every pair's overlap is below OVERLAP_TOLERANCE (overlap_cutoff)
    kmesh: tuple[int, int, int] | None = None  # SCF mesh; None: from kspacing
    kspacing: float = 0.5  # 1/Å (2π included) for the automatic SCF mesh
    hr_kmesh: tuple[int, int, int] | None = None  # mesh H(R) is extracted from; None: smallest alias-free one
    smearing: float | None = 0.05  # eV, Fermi-Dirac (crystals); None or 0 for none
    integrals: str = "auto"  # "multigrid" (GTH + pure xc), "fftdf", or "auto"
    conv_tol: float = 1e-9  # Hartree
    max_cycle: int = 100
    grids_level: int = 3  # molecular DFT grid
    threads: int | None = None  # PySCF threads; None leaves PySCF's default

    def for_atoms(self, atoms: Atoms) -> "GroundTruthSettings":
        """These settings with the molecule/crystal defaults filled in."""
        basis, pseudo = _basis_and_pseudo(self, atoms)
        cutoff = self.cutoff
        if cutoff is None and any(atoms.pbc):
            cutoff = overlap_cutoff(basis, sorted(set(atoms.get_chemical_symbols())))
        return replace(self, basis=basis, pseudo=pseudo, cutoff=cutoff)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GroundTruthSettings":
        """Settings from :meth:`to_dict` output, a data set's settings.json or a recipe (meshes as lists)."""
        s = dict(d)
        for key in ("kmesh", "hr_kmesh"):
            if s.get(key) is not None:
                # Whole numbers only (JSON may give 6.0): 2.5 stays 2.5, for check_settings to refuse, not to become 2.
                s[key] = tuple(int(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and float(x).is_integer()
                               else x for x in s[key])
        return cls(**s)


def _basis_and_pseudo(settings: GroundTruthSettings, atoms: Atoms) -> tuple[str, str | None]:
    """The basis and pseudopotential names, with the molecule/crystal defaults filled in."""
    defaults = CRYSTAL_DEFAULTS if any(atoms.pbc) else MOLECULE_DEFAULTS
    basis = settings.basis or defaults["basis"]
    pseudo = settings.pseudo if settings.pseudo is not None else defaults["pseudo"]
    if pseudo is None and basis.lower().startswith("gth"):
        pseudo = "gth-" + settings.xc.lower()
    return basis, pseudo


def check_settings(settings: GroundTruthSettings, atoms: Atoms) -> None:
    """Refuse, before any SCF, settings that PySCF would fail on late or misread: impossible numbers, meshes that
    are not 1 along a non-periodic direction, an unknown functional (libxc's ``parse_xc``), and a basis or
    pseudopotential without one of the structure's elements (:class:`UnknownElementError`)."""
    problems = settings_problems(settings) + _mesh_problems(settings, atoms)
    if problems:
        raise ParameterError("bad ground-truth settings: " + "; ".join(problems))
    check_xc(settings.xc)
    basis, pseudo = _basis_and_pseudo(settings, atoms)
    OrbitalBasis.from_pyscf(basis, sorted(set(atoms.get_chemical_symbols())), pseudo)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_)) \
        and math.isfinite(float(x))


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def settings_problems(s: GroundTruthSettings) -> list[str]:
    """Settings that are of the wrong type or out of range, each as "name=value (must be ...)"."""
    checks = [
        ("kspacing", s.kspacing, _is_number(s.kspacing) and s.kspacing > 0, "> 0 (1/Å)"),
        ("smearing", s.smearing, s.smearing is None or (_is_number(s.smearing) and s.smearing >= 0), ">= 0 eV or None"),
        ("cutoff", s.cutoff, s.cutoff is None or (_is_number(s.cutoff) and s.cutoff > 0), "> 0 Å or None"),
        ("conv_tol", s.conv_tol, _is_number(s.conv_tol) and s.conv_tol > 0, "> 0 Hartree"),
        ("max_cycle", s.max_cycle, _is_int(s.max_cycle) and s.max_cycle >= 1, "an integer >= 1"),
        ("grids_level", s.grids_level, _is_int(s.grids_level) and 0 <= s.grids_level <= 9, "an integer 0-9"),
        ("threads", s.threads, s.threads is None or (_is_int(s.threads) and s.threads >= 1), "an integer >= 1 or None"),
        ("charge", s.charge, _is_int(s.charge), "an integer"),
        ("integrals", s.integrals, s.integrals in ("auto", "multigrid", "fftdf"), "'auto', 'multigrid' or 'fftdf'"),
        ("basis", s.basis, s.basis is None or (isinstance(s.basis, str) and s.basis.strip() != ""), "a basis name"),
        ("pseudo", s.pseudo, s.pseudo is None or isinstance(s.pseudo, str), "a pseudopotential name or None"),
    ]
    return [f"{name}={value!r} (must be {what})" for name, value, ok, what in checks if not ok]


def _mesh_problems(s: GroundTruthSettings, atoms: Atoms) -> list[str]:
    out = []
    flat = ~np.asarray(atoms.pbc, dtype=bool)
    for name in ("kmesh", "hr_kmesh"):
        mesh = getattr(s, name)
        if mesh is None:
            continue
        if len(mesh) != 3 or not all(_is_int(n) and n >= 1 for n in mesh):
            out.append(f"{name}={mesh!r} (must be 3 positive integers)")
        elif any(flat) and any(atoms.pbc) and any(n != 1 for n, f in zip(mesh, flat) if f):
            out.append(f"{name}={tuple(mesh)} (must be 1 along the non-periodic direction(s) "
                       f"{', '.join('abc'[i] for i in np.flatnonzero(flat))})")
    return out


def check_xc(xc: Any) -> None:
    """A :class:`ParameterError` for a functional name libxc does not know (``pbee``), before any SCF."""
    if not isinstance(xc, str) or not xc.strip():
        raise ParameterError(f"xc must name an exchange-correlation functional such as 'pbe', got {xc!r}")
    from pyscf.dft import libxc

    try:
        libxc.parse_xc(xc)
    except Exception as exc:  # KeyError or ValueError, depending on how the name is wrong
        reason = str(exc).strip("'\"")
        raise ParameterError(f"unknown exchange-correlation functional {xc!r} ({reason}); use a PySCF/libxc name such "
                             "as 'pbe', 'pbe0', 'b3lyp' or 'lda,vwn'") from None


def overlap_cutoff(basis: str, elements: Sequence[str], tol: float = OVERLAP_TOLERANCE, step: float = 0.5,
                   rmax: float = 30.0) -> float:
    """Smallest distance (Å, a multiple of ``step``) beyond which the overlap of every pair of ``elements``
    stays below ``tol``: the range the crystal blocks must cover.

    Band errors from truncating H(R), S(R) follow the overlap's tail, and diffuse bases reach far: measured
    with gth-dzvp (benchmarks/groundtruth_bands.py), sub-meV bands near the edges need ~9.5 Å in graphene,
    11 Å in h-BN and 13 Å in bulk Si, which is where max |S_AB| < 1e-6.
    """
    from pyscf import gto

    symbols = sorted(set(elements))
    last_above = 0.0
    for n, a in enumerate(symbols):
        for b in symbols[n:]:
            for d in np.arange(step, rmax + step / 2, step):
                mol = gto.Mole()
                mol.atom = [[a, (0.0, 0.0, 0.0)], [b, (0.0, 0.0, float(d))]]
                mol.basis = basis
                mol.unit = "Angstrom"
                mol.spin = (gto.charge(a) + gto.charge(b)) % 2
                mol.verbose = 0
                mol.build()
                na = mol.aoslice_by_atom()[0, 3]
                if np.abs(mol.intor("int1e_ovlp")[:na, na:]).max() >= tol:
                    last_above = max(last_above, float(d))
    return last_above + step
