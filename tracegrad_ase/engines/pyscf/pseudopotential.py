"""The GTH pseudopotential matrix of a multigrid crystal, with its non-local part from real-space integrals.

PySCF's multigrid ``get_pp`` (``MultiGridNumInt``, the only multigrid that takes k-points) evaluates the
non-local projectors in reciprocal space: a Fourier transform of every orbital on the whole FFT mesh, per
k-point. A slab's vacuum makes that mesh large (131 x 131 x 177 points for a 3x3 graphene cell with 10 Å of
vacuum), and its cost grows with atoms x mesh x orbitals: 159 s for that 18-atom cell at 4 k-points, more than
20 minutes at Γ alone for 72 atoms, paid again for every k-point of the dense H(R) mesh. ``pp_int.get_pp_nl``
computes the same integrals analytically in real space (what PySCF's own ``MultiGridNumInt2`` and density fitting
use) in well under a second; with the local part, PySCF's multigrid code unchanged, the 18-atom cell takes 8 s
(``benchmarks/pseudopotential_speed.py``; the matrices agree to 1e-14 Ha).
"""

from __future__ import annotations

from typing import Any

import numpy as np


#: Complex numbers per block of the local part's structure factors (16 MB each, two such arrays at a time).
BLOCK_NUMBERS = 1_000_000


def real_space_nonlocal_pp(ni: Any, kpts: np.ndarray | None = None) -> np.ndarray:
    """``MultiGridNumInt.get_pp`` with the non-local projectors integrated in real space (Hartree)."""
    from pyscf.pbc.df import fft
    from pyscf.pbc.dft.multigrid.multigrid import _get_j_pass2
    from pyscf.pbc.gto.pseudo import pp_int
    from pyscf.pbc.lib.kpts_helper import gamma_point

    kpts = np.zeros((1, 3)) if kpts is None else kpts
    kpts, single = fft._check_kpts(ni, kpts)
    cell = ni.cell
    gv = cell.get_Gv(ni.mesh)
    # The long-range local part on the multigrid mesh, as PySCF's get_pp, in blocks of G: at once, the structure
    # factors alone are natm x ngrids complex numbers (14 GB for 72 atoms on a 262 x 262 x 177 mesh).
    vloc_g = np.empty(len(gv), dtype=np.complex128)
    step = max(1, BLOCK_NUMBERS // cell.natm)
    for g0 in range(0, len(gv), step):
        block = gv[g0 : g0 + step]
        vloc_g[g0 : g0 + step] = -np.einsum("ij,ij->j", cell.get_SI(block), pp_int.get_gth_vlocG_part1(cell, block))
    vpp = _get_j_pass2(ni, vloc_g, 1, kpts)[0]
    short_range = pp_int.get_pp_loc_part2(cell, kpts)
    nonlocal_ = pp_int.get_pp_nl(cell, kpts)
    out = []
    for k, kpt in enumerate(kpts):
        v = vpp[k] + short_range[k] + nonlocal_[k]
        out.append(v.real if gamma_point(kpt) else v)
    out = np.asarray(out)
    return out[0] if single else out


def use_real_space_nonlocal_pp(mf: Any) -> None:
    """Make a multigrid crystal SCF ``mf`` (and its later ``get_hcore`` calls) use :func:`real_space_nonlocal_pp`."""
    ni = mf._numint
    ni.get_pp = lambda kpts=None, **_: real_space_nonlocal_pp(ni, kpts)
