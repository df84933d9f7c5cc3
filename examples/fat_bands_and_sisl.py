"""Fat bands of graphene from the shipped carbon model, and the same predicted Hamiltonian handed to sisl.

    python examples/fat_bands_and_sisl.py [--out fat_bands.png]

Writes a PNG with one panel per Mulliken projection (p_z: the π bands through the Dirac point; s + p_x,y: the σ
bands), then converts the predicted H(R), S(R) to a non-orthogonal ``sisl.Hamiltonian`` and checks that sisl's
eigensolver gives our band energies (needs ``pip install "tracegrad-ase[sisl]"``; skipped without sisl).
"""

import argparse

import numpy as np
from ase.build import graphene

from tracegrad_ase.calculator import TraceGradCalculator
from tracegrad_ase.electronic.projections import band_projections, projected_weights
from tracegrad_ase.electronic.solve import PREDICTED_LINDEP
from tracegrad_ase.interop.projected_bands import plot_fat_bands, projected_band_structure


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="fat_bands.png")
    args = ap.parse_args()
    atoms = graphene(a=2.46, vacuum=5.0)  # in the xy plane, so p_z is the π orbital
    atoms.calc = TraceGradCalculator("carbon", kpts=(9, 9, 1))  # 9x9x1 holds K

    # pymatgen's BandStructureSymmLine with projections: BSPlotterProjected and get_projection_on_elements work.
    bs = projected_band_structure(atoms.calc, atoms, line_density=20)
    plot_fat_bands(bs, ["C:pz", "C:s+px+py", "C:d"], args.out)
    print(f"fat bands -> {args.out} (E_F {bs.efermi:.3f} eV)")

    # The weights themselves, at K: the two bands at E_F are π.
    ham = atoms.calc.get_hamiltonian()
    sol, w = band_projections(ham, [[1 / 3, 1 / 3, 0]], PREDICTED_LINDEP)
    pz = projected_weights(w, ham, specs=["C:pz"])["C:pz"][0]
    near = np.argsort(np.abs(sol.energies[0] - bs.efermi))[:2]
    print("p_z weight of the two bands at E_F at K:", np.round(pz[near], 3))

    try:
        import sisl  # noqa: F401
    except ImportError:
        print("sisl is not installed: pip install 'tracegrad-ase[sisl]' for the sisl part")
        return
    from tracegrad_ase.electronic import solve_k
    from tracegrad_ase.io.sisl import from_sisl, to_sisl

    H = to_sisl(ham)  # or atoms.calc.to_sisl()
    kpts = np.random.default_rng(0).uniform(-0.5, 0.5, size=(5, 3)) * atoms.pbc
    ours = solve_k(ham, kpts, lindep=0.0).energies  # sisl drops no overlap direction, so neither do we here
    theirs = np.array([H.eigh(k=k) for k in kpts])
    # gth-dzvp is nearly linearly dependent in graphene (S(k) eigenvalues ~5e-8): its top levels (~1e6 eV, what
    # PREDICTED_LINDEP removes) agree only to ~1e-8 relative; the physical bands agree to round-off.
    low = ours < bs.efermi + 20.0
    print(f"sisl: {H.no} orbitals, nsc {[int(n) for n in H.geometry.nsc]}, {H.nnz} entries; max |E_sisl - E_ours| "
          f"below E_F + 20 eV: {np.abs(theirs - ours)[low].max():.1e} eV")
    back = from_sisl(H, basis=ham.basis)
    blocks = {tuple(e): h for e, h in zip(back.edges.tolist(), back.hamiltonian)}
    change = max(np.abs(blocks[tuple(e)] - h).max() for e, h in zip(ham.edges.tolist(), ham.hamiltonian))
    print(f"round trip: {len(back.edges)} of {len(ham.edges)} edges, max block change {change:.1e} eV")


if __name__ == "__main__":
    main()
