"""Electronic structure from a :class:`~tracegrad_ase.core.hamiltonian.RealSpaceHamiltonian`: the numpy/scipy
layer that the calculator, the evaluation and the DFT engines call. No torch here: it works on plain arrays.

One module per concept, each the only owner of it:

- :mod:`.bloch`: H(k), S(k) (the only Bloch-sum builder), k-point and weight checks;
- :mod:`.solve`: ``H(k) c = e S(k) c`` (dense or sparse shift-invert), linear-dependence thresholds, inertia;
- :mod:`.filling`: the electron count, smearing, occupations, Fermi level, gap, and spin degeneracy;
- :mod:`.large_cell`: the Fermi level of a large cell from inertia counts and shift-invert windows;
- :mod:`.dos`: total and Mulliken-projected densities of states;
- :mod:`.molecules`: molecular orbitals and density matrices (DFT initial guesses);
- :mod:`.spectrum`: E_F-aligned band errors, spectral ranges and ghost levels;
- :mod:`.sparse_factor`: the sparse LDLᵀ of H − σS (PARDISO or SuperLU);
- :mod:`.unfolding`: supercell levels unfolded onto a primitive k-path (spectral weights with S);
- :mod:`.optics`: the interband optical conductivity (Kubo-Greenwood, tight-binding velocities).

Energies in eV, lengths in Å, k-points in fractional reciprocal coordinates (``H(k) = sum_R exp(2 pi i k.R)
H(R)``). The names below are re-exported so ``from tracegrad_ase.electronic import solve_k`` keeps working.
"""

from __future__ import annotations

from .bloch import BlochAssembler, bloch_dense, bloch_sparse
from .dos import DOS_CHUNK, dos, mulliken_weights, projected_dos
from .filling import (NSPINS, SMEARINGS, SPIN_DEGENERACY, band_gap, electron_count, fermi_level, occupations,
                      window_band_gap)
from .large_cell import sparse_fermi_level
from .molecules import density_matrices, molecular_orbitals
from .solve import (DEFAULT_SPARSE_BANDS, LINDEP_THRESHOLD, PREDICTED_LINDEP, SPARSE_THRESHOLD, KSolution,
                    band_energies, generalized_eigh, shifted_factorization, smallest_overlap_eigenvalue, solve_k,
                    states_below)
from .optics import OpticalConductivity, optical_conductivity
from .unfolding import UnfoldedBands, supercell_map, unfold

__all__ = [
    "DEFAULT_SPARSE_BANDS",
    "DOS_CHUNK",
    "LINDEP_THRESHOLD",
    "NSPINS",
    "PREDICTED_LINDEP",
    "SMEARINGS",
    "SPARSE_THRESHOLD",
    "SPIN_DEGENERACY",
    "BlochAssembler",
    "KSolution",
    "OpticalConductivity",
    "UnfoldedBands",
    "band_energies",
    "band_gap",
    "bloch_dense",
    "bloch_sparse",
    "density_matrices",
    "dos",
    "electron_count",
    "fermi_level",
    "generalized_eigh",
    "molecular_orbitals",
    "mulliken_weights",
    "occupations",
    "optical_conductivity",
    "projected_dos",
    "shifted_factorization",
    "smallest_overlap_eigenvalue",
    "solve_k",
    "sparse_fermi_level",
    "states_below",
    "supercell_map",
    "unfold",
    "window_band_gap",
]
