"""Orbitals and density matrices: molecular orbitals of a molecule, occupied density matrices D(k) of a crystal.

Both feed a DFT engine's initial guess (:func:`tracegrad_ase.engines.pyscf.scf.guess_density`). e3nn orbital order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.errors import StructureError
from ..core.hamiltonian import RealSpaceHamiltonian
from .bloch import BlochAssembler, as_assembler
from .filling import SPIN_DEGENERACY, electron_count, fermi_level, occupations
from .solve import LINDEP_THRESHOLD, generalized_eigh, solve_k

__all__ = ["density_matrices", "molecular_orbitals"]


def density_matrices(
    ham_or_assembler: RealSpaceHamiltonian | BlochAssembler,
    kpts: Any,
    smearing: str = "fermi-dirac",
    width: float = 0.05,
    n_electrons: float | None = None,
    lindep: float = LINDEP_THRESHOLD,
) -> tuple[np.ndarray, float]:
    """Density matrices ``D(k) = sum_n f_kn c_kn c_kn^H`` (e3nn order, complex, ``(nk, norb, norb)``) on the
    k-points ``kpts`` (uniform weights: a full mesh), and the Fermi level (eV) that fills them.

    Occupations ``f`` (0..2) use ``smearing``/``width`` with the Fermi level that holds ``n_electrons`` per cell
    (default :func:`electron_count`). In the convention of PySCF's ``make_rdm1`` for k-point SCF, the density
    is ``(1/Nk) sum_k D(k)`` and the electron count per cell is ``(1/Nk) sum_k tr(D(k) S(k))``.
    """
    asm = as_assembler(ham_or_assembler)
    sol = solve_k(asm, kpts, lindep=lindep, vectors=True, sparse=False)
    nel = electron_count(asm.ham) if n_electrons is None else n_electrons
    mu = fermi_level(sol.energies, sol.weights, nel, smearing, width)
    occ = occupations(sol.energies, mu, smearing, width, sol.weights, nel)
    dms = np.array([(c * f) @ c.conj().T for c, f in zip(sol.vectors, occ)])
    return dms, float(mu)


def molecular_orbitals(ham: RealSpaceHamiltonian, lindep: float = LINDEP_THRESHOLD) -> dict[str, Any]:
    """Molecular orbitals of a molecule (only R = 0 edges), in real arithmetic.

    Returns ``energies`` (eV), ``coefficients`` (norb, nmo), ``occupations`` (aufbau, 2 per orbital, a single
    electron in the last one for an odd count), ``homo``, ``lumo``, ``gap`` (None without a LUMO),
    ``homo_index``, ``n_electrons`` and the density matrix ``density_matrix = Σ_i occ_i c_i c_i^T``
    (``trace(D S) = N``).
    """
    if (ham.edges[:, :3] != 0).any():
        raise StructureError("molecular_orbitals needs a molecule: the Hamiltonian has edges to other cells")
    asm = BlochAssembler(ham)  # the one H(k) builder; a molecule's only "k" is Γ, and each block appears once
    gamma = np.zeros(3)
    hk, sk = asm.at_real(gamma) or asm.at(gamma)
    h, s = np.real(hk.toarray()), np.real(sk.toarray())
    e, c = generalized_eigh(h, s, lindep)
    nel = electron_count(ham)
    if nel > SPIN_DEGENERACY * len(e):
        raise ValueError(f"{nel} electrons do not fit in {len(e)} molecular orbitals")
    occ = np.zeros(len(e))
    full, odd = divmod(nel, SPIN_DEGENERACY)  # aufbau: doubly occupied orbitals, then one partly filled
    occ[:full] = float(SPIN_DEGENERACY)
    if odd:
        occ[full] = float(odd)
    homo_index = int(np.nonzero(occ)[0].max()) if nel else None
    lumo_index = int(np.nonzero(occ == 0)[0].min()) if (occ == 0).any() else None
    homo = float(e[homo_index]) if homo_index is not None else None
    lumo = float(e[lumo_index]) if lumo_index is not None else None
    d = (c * occ) @ c.T
    return {
        "energies": e,
        "coefficients": c,
        "occupations": occ,
        "homo": homo,
        "lumo": lumo,
        "gap": (lumo - homo) if homo is not None and lumo is not None else None,
        "homo_index": homo_index,
        "n_electrons": nel,
        "density_matrix": d,
        "overlap": s,
    }
