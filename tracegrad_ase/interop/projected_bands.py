"""Fat bands through pymatgen: a ``BandStructureSymmLine`` with Mulliken ``projections`` (so pymatgen's
``BSPlotterProjected`` and ``get_projection_on_elements`` work on it), and a fat-band figure per projection.

The weights are :mod:`tracegrad_ase.electronic.projections`' (orbitals in core.basis' ``"sisl"`` order, m = -l..l,
which is pymatgen's ``Orbital`` order: s; py, pz, px; dxy, dyz, dz2, dxz, dx2-y2; f m = -3..3). pymatgen keeps one
slot per (orbital, site), so the shells of one l on an atom (gth-dzvp's two p shells) are summed into its
``px``/``py``/``pz``. Projections are given for ``Spin.up`` only (spin-restricted), shape
``(nbands, nkpts, 9 or 16, nsites)``. Energies eV.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from ase import Atoms
from pymatgen.electronic_structure.bandstructure import BandStructureSymmLine
from pymatgen.electronic_structure.core import Spin

from ..core.errors import MismatchError, ParameterError
from ..core.hamiltonian import RealSpaceHamiltonian
from ..electronic.projections import ORBITAL_NAMES, band_projections, matches, orbital_table, split_projection
from ..electronic.solve import PREDICTED_LINDEP
from ..parameters import effective_lindep

if TYPE_CHECKING:
    from ..calculator import TraceGradCalculator

__all__ = ["pymatgen_projections", "plot_fat_bands", "projected_band_structure", "spec_weights", "with_projections"]

#: pymatgen's Orbital index of (l, m = -l) (its Orbital enum runs s, p, d, f with m = -l..l inside each).
_PMG_START = {0: 0, 1: 1, 2: 4, 3: 9}


def pymatgen_projections(weights: np.ndarray, ham: RealSpaceHamiltonian) -> np.ndarray:
    """(nk, nbands, norb) orbital weights -> pymatgen's (nbands, nk, 9 or 16, natoms) array."""
    table = orbital_table(ham)
    lmax = max((o.l for o in table), default=0)
    if lmax > 3:
        raise ValueError(f"pymatgen's Orbital names stop at f; the basis {ham.basis.name!r} has l = {lmax}")
    slot = np.array([_PMG_START[o.l] + o.m + o.l for o in table], dtype=np.int64)
    atom = np.array([o.atom for o in table], dtype=np.int64)
    out = np.zeros((weights.shape[1], weights.shape[0], 16 if lmax == 3 else 9, len(ham.atoms)))
    np.add.at(out, (slice(None), slice(None), slot, atom), np.transpose(weights, (1, 0, 2)))
    return out


def with_projections(bs: BandStructureSymmLine, ham: RealSpaceHamiltonian, lindep: float = PREDICTED_LINDEP
                     ) -> BandStructureSymmLine:
    """A copy of ``bs`` with Mulliken projections from ``ham`` at its k-points (fractional in the reciprocal basis
    of ``ham``'s cell, as :func:`~tracegrad_ase.interop.pymatgen.band_structure` makes them). ``ham`` and
    ``lindep`` must be the ones that made the bands: they are solved again, with coefficients, and checked."""
    kpts = np.array([k.frac_coords for k in bs.kpoints])
    sol, weights = band_projections(ham, kpts, lindep)
    energies = np.asarray(bs.bands[Spin.up]).T
    if energies.shape != sol.energies.shape or np.abs(energies - sol.energies).max() > 1e-6:
        raise MismatchError(f"the band structure ({energies.shape[1]} bands) was not made from this Hamiltonian with "
                         f"lindep={lindep:g} ({sol.nbands} bands): pass the same Hamiltonian and lindep")
    labels = {lab: k.cart_coords for lab, k in bs.labels_dict.items()}
    return BandStructureSymmLine([k.cart_coords for k in bs.kpoints], {Spin.up: sol.energies.T}, bs.lattice_rec,
                                 bs.efermi, labels, coords_are_cartesian=True, structure=bs.structure,
                                 projections={Spin.up: pymatgen_projections(weights, ham)})


def _lindep(calc: TraceGradCalculator) -> float:
    return effective_lindep(calc.parameters, calc.model.model_file)


def projected_band_structure(calc_or_model: Any, atoms: Atoms, path_type: str = "setyawan_curtarolo",
                             line_density: float = 20, **calc_kwargs: Any) -> BandStructureSymmLine:
    """:func:`~tracegrad_ase.interop.pymatgen.band_structure` with Mulliken projections: ``BSPlotterProjected``
    draws it, ``get_projection_on_elements()`` sums it. ``calc_or_model`` as there (a calculator, left alone, or a
    model name with ``calc_kwargs``)."""
    from ..calculator import TraceGradCalculator
    from ..predict import predict_hamiltonian
    from .pymatgen import band_structure

    calc = calc_or_model if isinstance(calc_or_model, TraceGradCalculator) else \
        TraceGradCalculator(calc_or_model, **calc_kwargs)
    if calc_kwargs and calc is calc_or_model:
        raise TypeError("calculator keywords go with a model name; a calculator instance brings its own")
    bs = band_structure(calc, atoms, path_type=path_type, line_density=line_density)
    return with_projections(bs, predict_hamiltonian(atoms, calc.model), _lindep(calc))


def spec_weights(bs: BandStructureSymmLine, specs: Sequence[str]) -> dict[str, np.ndarray]:
    """(nbands, nk) weight of each projection (``"C"``, ``"C:p"``, ``"C:pz"``, ``"C:px+py"``) from ``bs``'s
    projections, summed over the sites of the element."""
    if not bs.projections:
        raise ValueError("this band structure has no projections (see projected_band_structure)")
    proj = np.asarray(bs.projections[Spin.up])
    names = [(l, ORBITAL_NAMES[l][i]) for l in sorted(_PMG_START) for i in range(2 * l + 1)][: proj.shape[2]]
    symbols = [site.specie.symbol for site in bs.structure]
    out = {}
    for spec in specs:
        element, parts = split_projection(spec)
        sites = [n for n, sym in enumerate(symbols) if sym == element]
        if not sites:
            raise ParameterError(f"projection {spec!r}: no {element!r} in the structure "
                                 f"(it has {', '.join(sorted(set(symbols)))})")
        slots = [n for n, (l, name) in enumerate(names) if not parts or any(matches(p, l, name) for p in parts)]
        if not slots:
            raise ParameterError(f"projection {spec!r}: no orbital {'+'.join(parts)!r} (names: s, p, d, f or "
                             f"{', '.join(n for _, n in names)})")
        out[spec] = proj[:, :, slots][..., sites].sum(axis=(2, 3))
    return out


def plot_fat_bands(bs: BandStructureSymmLine, specs: Sequence[str], path: str | os.PathLike | None = None,
                   ylim: tuple[float, float] = (-8.0, 6.0), marker_size: float = 40.0) -> Any:
    """One panel per projection: the bands (relative to E_F) as lines, with dots whose area grows with the weight
    (clipped to [0, 1]). pymatgen's path layout and tick labels (``BSPlotter.bs_plot_data``). Returns the
    matplotlib Figure; with ``path`` it is also written (PNG) and closed."""
    from ..core.figures import pyplot

    plt = pyplot()
    from pymatgen.electronic_structure.plotter import BSPlotter

    weights = spec_weights(bs, specs)
    data = BSPlotter(bs).bs_plot_data(zero_to_efermi=False)  # its zero is the VBM for an insulator: E_F here
    xs = [np.asarray(d) for d in data["distances"]]
    es = [np.asarray(seg) - bs.efermi for seg in data["energy"][str(Spin.up)]]  # (nbands, nk of the segment)
    cuts = np.cumsum([len(x) for x in xs])[:-1]
    fig, axes = plt.subplots(1, len(specs), figsize=(3.2 * len(specs) + 0.6, 4.2), dpi=150, sharey=True,
                             squeeze=False)
    ticks = data["ticks"]
    for ax, spec in zip(axes[0], specs):
        for x, e, w in zip(xs, es, np.split(np.clip(weights[spec], 0.0, 1.0), cuts, axis=1)):
            ax.plot(x, e.T, color="0.55", lw=0.7)
            ax.scatter(np.tile(x, e.shape[0]), e.ravel(), s=marker_size * w.ravel(), color="tab:red", alpha=0.6,
                       linewidths=0)
        ax.axhline(0.0, color="tab:blue", lw=0.6, ls="--")
        for tx in ticks["distance"]:
            ax.axvline(tx, color="0.8", lw=0.5)
        ax.set_xticks(ticks["distance"], ticks["label"])  # pymatgen's mathtext labels ($\\Gamma$)
        ax.set_xlim(xs[0][0], xs[-1][-1])
        ax.set_ylim(*ylim)
        ax.set_title(spec, fontsize=10)
    axes[0][0].set_ylabel("E − E_F (eV)")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
        plt.close(fig)
    return fig
