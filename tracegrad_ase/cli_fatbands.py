"""``tracegrad bands --projected``: fat bands (Mulliken weights per band and k) instead of plain bands.

The projections are checked against the structure before any model runs; the band structure the command already
made is solved again with coefficients on the same Hamiltonian (:mod:`tracegrad_ase.interop.projected_bands`).
"""

from __future__ import annotations

from typing import Any, Sequence

from .core.errors import ParameterError
from .electronic.projections import check_projection


def projection_specs(values: Sequence[str] | None, atoms: Any, basis: Any) -> list[str]:
    """The projections of ``--projected`` (space- or comma-separated, ``C:p C:s`` or ``C:p,C:s``), checked against
    the structure's elements and the model's ``basis`` (exit 2 before any work)."""
    specs = [v.strip() for value in values or () for v in str(value).split(",") if v.strip()]
    if not specs:
        raise ParameterError("--projected needs at least one projection, e.g. C:p C:s (or C:pz, C:px+py, C)")
    shells = {el: basis.shells_of(el) for el in dict.fromkeys(atoms.get_chemical_symbols())}
    for spec in specs:
        check_projection(spec, shells)
    return list(dict.fromkeys(specs))


def draw_fat_bands(calc: Any, atoms: Any, bs: Any, specs: Sequence[str], out: str) -> Any:
    """Add the projections to ``bs`` (made by ``calc`` on ``atoms``), draw one panel per spec to ``out`` (PNG)
    and return the projected band structure."""
    from .interop.projected_bands import plot_fat_bands, with_projections
    from .parameters import effective_lindep
    from .predict import predict_hamiltonian

    lindep = effective_lindep(calc.parameters, calc.model.model_file)  # the one the bands were solved with
    projected = with_projections(bs, predict_hamiltonian(atoms, calc.model), lindep)
    plot_fat_bands(projected, specs, out)
    return projected
