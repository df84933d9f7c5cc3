"""What a crystal's predicted Hamiltonian responds with: the optical conductivity and Boltzmann transport, as
methods of :class:`~tracegrad_ase.calculator.TraceGradCalculator` (a mixin: it reads the calculator's prediction,
lock and parameters). The physics lives in :mod:`tracegrad_ase.electronic.optics` and
:mod:`tracegrad_ase.electronic.transport`; here: the mesh (its irreducible wedge and the point group to symmetrize
the tensors over, unless the calculator's ``symmetry=False``), checked arguments, this prediction's E_F."""

from __future__ import annotations

from typing import Any

from . import electronic
from .electronic.optics import OpticalConductivity
from .electronic.transport import TransportCoefficients, boltzmann_transport
from .parameters import _real, response_mesh

__all__ = ["CrystalResponses"]


class CrystalResponses:
    """``get_optical_conductivity`` and ``get_transport`` for the calculator (which provides ``_owner``,
    ``_lock``, ``parameters``, ``get_fermi_level``, ``asm``, ``_lindep`` and ``results``)."""

    def get_optical_conductivity(self, energies: Any, kpts: Any, width: float = 0.05, kt: float | None = None,
                                 drude: float | None = None, progress: bool = False) -> OpticalConductivity:
        """Interband Re σ_ab(ħω) on ``energies`` (eV) from the whole mesh ``kpts`` (3 integers), occupied at this
        prediction's E_F with ``kt`` (eV; default: the smearing width): Kubo-Greenwood, tight-binding velocities,
        no excitons; with ``drude`` (ħ/τ, eV) plus the intraband Drude peak
        (:func:`~tracegrad_ase.electronic.optics.optical_conductivity`)."""
        mesh, weights, group = response_mesh(self._owner(), kpts, "optical conductivity", self.parameters.symmetry)
        width = _real("width (eV)", width, 0.0, strict_low=True)
        kt = _real("kt (eV)", self.parameters.width if kt is None else kt, 0.0)
        drude = _real("drude (ħ/τ, eV)", drude, 0.0, strict_low=True, allow_none=True)
        with self._lock:
            ef = self.get_fermi_level()  # predicts first: asm and lindep are this structure's
            return electronic.optical_conductivity(self.asm.ham, mesh, ef, energies, width=width, kt=kt,
                                                   lindep=self._lindep, progress=progress, drude=drude,
                                                   weights=weights, rotations=group)

    def get_transport(self, mu: Any, temperature: float, kpts: Any, progress: bool = False) -> TransportCoefficients:
        """Constant-τ Boltzmann σ/τ, Seebeck and κ_e/τ at chemical potentials ``mu`` (eV, relative to this
        prediction's E_F: a rigid-band doping) and ``temperature`` (K) from the whole mesh ``kpts`` (3 integers)
        (:func:`~tracegrad_ase.electronic.transport.boltzmann_transport`)."""
        mesh, weights, group = response_mesh(self._owner(), kpts, "Boltzmann transport", self.parameters.symmetry)
        temperature = _real("temperature (K)", temperature, 0.0, strict_low=True)
        with self._lock:
            ef = self.get_fermi_level()
            return boltzmann_transport(self.asm.ham, mesh, ef, mu, temperature, self.results["n_electrons"],
                                       lindep=self._lindep, progress=progress, weights=weights, rotations=group)
