"""Loss pieces that see a structure as a whole: the energy zero (gauge) and band energies.

**Gauge.** The zero of energy of a periodic DFT calculation is the cell-averaged potential: the same atoms in a
cell with more vacuum give H + c·S (measured: graphene in a 10 Å and a 15 Å cell differ by c = -1.273 eV, exactly
c·S over every block). A local model cannot see c, so the loss compares the prediction with the truth moved to
the prediction's zero, ``H_true + c*·S`` with the least-squares shift per structure

    c* = <S, H_pred - H_true> / <S, S>          (Frobenius products over every block of the structure)

Because c* minimises the squared error, its derivative drops out of the gradient (the loss is stationary in c),
so it is computed without a graph. Trace labels are taken from the aligned truth too, so T does not depend on
the zero either.

**Bands.** ``band_energies`` solves H(k) c = e S(k) c for padded blocks at given k-points, differentiably:
S(k) is fixed data, so its canonical orthogonalization X (directions below ``lindep`` dropped, as the calculator
does for predictions) is made without a graph and the eigenvalues of the Hermitian X† H(k) X come from
``torch.linalg.eigvalsh``, whose backward pass uses eigenvectors only through V diag(g) V† and stays finite at
degenerate levels (only eigenvector gradients have 1/(e_i - e_j) terms). ``form="projected"`` replaces the
eigenvalue errors by their first-order projection onto the truth's own states in the window (a convex quadratic
in H that solves only the truth: :func:`window_projected_loss`).
"""

from __future__ import annotations

import math

import torch

from .data import GraphBatch
from .train_config import BAND_FORMS


def per_graph_sum(values: torch.Tensor, index: torch.Tensor, n_graphs: int) -> torch.Tensor:
    """Sum of per-edge ``values`` (E,) into their structures (n_graphs,)."""
    return torch.zeros(n_graphs, dtype=values.dtype, device=values.device).index_add(0, index, values)


def gauge_shift(diff: torch.Tensor, batch: GraphBatch) -> torch.Tensor:
    """Least-squares c per structure with ``diff - c·S`` smallest (``diff`` padded blocks (E, n, n), eV).

    Zero for a structure without overlap blocks. Returned without a graph (see the module docstring).
    """
    if batch.overlap is None:
        return torch.zeros(batch.n_graphs, dtype=diff.dtype, device=diff.device)
    s = batch.overlap.to(diff.dtype) * batch.mask.to(diff.dtype)
    num = per_graph_sum((s * diff.detach()).flatten(1).sum(1), batch.edge_graph, batch.n_graphs)
    den = per_graph_sum((s * s).flatten(1).sum(1), batch.edge_graph, batch.n_graphs)
    return torch.where(den > 0, num / den.clamp(min=1e-30), torch.zeros_like(num))


def aligned_target(pred: torch.Tensor, batch: GraphBatch, periodic_only: bool = False
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """The truth moved to the prediction's energy zero, ``H_true + c*·S``, and c* per structure (eV).

    ``periodic_only``: molecules (no periodic direction) keep their own zero, the vacuum level, which is physical
    and the same for every molecule; aligning them too lets the model's absolute levels drift (measured on the
    molecule benchmark: validation MAE 145 meV after alignment, 624 meV raw)."""
    c = gauge_shift(pred - batch.target, batch)
    if periodic_only and batch.pbc is not None:
        c = c * batch.pbc.any(dim=1).to(c.dtype)
    return shifted_target(batch, c), c


def shifted_target(batch: GraphBatch, c: torch.Tensor) -> torch.Tensor:
    """The truth with ``c[s]·S`` added to every block of structure s (the truth itself without overlap blocks)."""
    if batch.overlap is None:
        return batch.target
    shift = c[batch.edge_graph][:, None, None] * batch.overlap.to(batch.target.dtype)
    return batch.target + shift * batch.mask.to(batch.target.dtype)


def _graph_rows(batch: GraphBatch, g: int) -> tuple[torch.Tensor, torch.Tensor]:
    edges = torch.nonzero(batch.edge_graph == g).flatten()
    nodes = torch.nonzero(batch.node_graph == g).flatten()
    return edges, nodes


def bloch_sum(blocks: torch.Tensor, batch: GraphBatch, edges: torch.Tensor, first_node: int, n_atoms: int,
              kpts: torch.Tensor) -> torch.Tensor:
    """Padded H(k) = Σ_R exp(2πi k·R) H(R) of one structure, shape (nk, n_atoms·n_orb, n_atoms·n_orb), complex128.

    ``edges`` are that structure's edge indices in ``batch``; ``kpts`` (nk, 3) fractional.
    """
    n = blocks.shape[-1]
    i = batch.edge_index[0][edges] - first_node
    j = batch.edge_index[1][edges] - first_node
    phase = torch.exp(2j * math.pi * (kpts.to(torch.float64) @ batch.edge_shift[edges].T.to(torch.float64)))
    values = blocks[edges].to(torch.complex128)  # (E_g, n, n)
    flat = torch.zeros(len(kpts), n_atoms * n_atoms, n, n, dtype=torch.complex128, device=blocks.device)
    flat = flat.index_add(1, i * n_atoms + j, phase[:, :, None, None] * values[None])
    hk = flat.reshape(len(kpts), n_atoms, n_atoms, n, n).permute(0, 1, 3, 2, 4)
    return hk.reshape(len(kpts), n_atoms * n, n_atoms * n)


def orthogonalizer(sk: torch.Tensor, lindep: float) -> list[torch.Tensor]:
    """Canonical orthogonalization X = U_keep / sqrt(s_keep) of each S(k) (no graph), dropping eigenvalues below
    ``lindep`` (the padding orbitals of elements with fewer shells have s = 0 and go too)."""
    with torch.no_grad():
        sk = 0.5 * (sk + sk.conj().transpose(-1, -2))
        s, u = torch.linalg.eigh(sk)
        return [u[k][:, s[k] > lindep] / torch.sqrt(s[k][s[k] > lindep]) for k in range(len(sk))]


def orthogonal_blocks(hk: torch.Tensor, xs: list[torch.Tensor]) -> list[torch.Tensor]:
    """X† H(k) X for each k-point, made exactly Hermitian (round-off), differentiable in H."""
    out = []
    for k, x in enumerate(xs):
        h = x.conj().T @ hk[k] @ x
        out.append(0.5 * (h + h.conj().T))
    return out


def band_energies(hk: torch.Tensor, xs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Eigenvalues (ascending) of X† H(k) X for each k-point, differentiable in H."""
    return [torch.linalg.eigvalsh(h) for h in orthogonal_blocks(hk, xs)]


def sample_kpoints(pbc: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` uniformly random fractional k-points along the periodic directions (Γ only for a molecule)."""
    if not bool(pbc.any()):
        return torch.zeros(1, 3, dtype=torch.float64)
    k = torch.rand(n, 3, generator=generator, dtype=torch.float64)
    return k * pbc.to(torch.float64)[None, :]


def _structure_k(batch: GraphBatch, g: int, n_kpoints: int, lindep: float, generator: torch.Generator | None
                 ) -> tuple[torch.Tensor, int, int, torch.Tensor, list[torch.Tensor]]:
    """One structure's edges, first node, atom count, random k-points and overlap orthogonalizers X(k)."""
    edges, nodes = _graph_rows(batch, g)
    first, n_atoms = int(nodes[0]), len(nodes)
    kpts = sample_kpoints(batch.pbc[g].cpu(), n_kpoints, generator).to(batch.overlap.device)  # a CPU generator
    return edges, first, n_atoms, kpts, orthogonalizer(bloch_sum(batch.overlap, batch, edges, first, n_atoms, kpts),
                                                       lindep)


def window_band_errors(pred: torch.Tensor, target: torch.Tensor, shift: torch.Tensor, batch: GraphBatch,
                       n_kpoints: int, window_ev: float, lindep: float,
                       generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """Per structure, the band-energy errors e_pred - e_true (eV; differentiable in ``pred``) of the true levels
    within ``window_ev`` of the structure's Fermi level (``batch.fermi`` shifted like the target) or, for a
    molecule, from ``window_ev`` below its HOMO to ``window_ev`` above its LUMO (Γ), at ``n_kpoints`` random
    k-points, levels paired by index in the same orthogonalized basis (directions of S(k) below ``lindep``
    dropped).

    ``target`` must be in the prediction's energy zero and ``shift`` the c* that moved it there
    (:func:`aligned_target`)."""
    errors = []
    for g in range(batch.n_graphs):
        edges, first, n_atoms, kpts, xs = _structure_k(batch, g, n_kpoints, lindep, generator)
        e_pred = band_energies(bloch_sum(pred, batch, edges, first, n_atoms, kpts), xs)
        with torch.no_grad():
            e_true = band_energies(bloch_sum(target, batch, edges, first, n_atoms, kpts), xs)
        lo, hi = _window(batch, g, e_true, float(shift[g]), window_ev)
        parts = [(ep - et)[(et >= lo) & (et <= hi)] for ep, et in zip(e_pred, e_true)]
        errors.append(torch.cat(parts))
    return errors


def window_projected_loss(pred: torch.Tensor, target: torch.Tensor, shift: torch.Tensor, batch: GraphBatch,
                          n_kpoints: int, window_ev: float, lindep: float, scale: float,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """The band loss to first order, without solving the prediction: per structure, Σ_k ||C_k† (H_pred(k) -
    H'(k)) C_k||_F² over the true levels in the window (in units of ``scale``², per level; 0 without levels), where
    C_k holds the truth's own eigenvectors of those levels (S-orthonormal, ``lindep`` directions dropped).

    Its diagonal is the first-order error of each level in the window (on carbon 0.8's and a fitted model's AA
    bilayer the exact E_F-window band errors correlate with it at 0.97-0.98), its off-diagonal the mixing of the
    window's states, so it does not depend on how degenerate levels are chosen. Unlike the eigenvalue loss it is a
    convex quadratic in H_pred and pairs no levels by index (a predicted level that enters the window from outside
    does not swap partners). ``target`` in the prediction's energy zero, ``shift`` the c* that moved it there.
    Shape (n_graphs,)."""
    losses = []
    for g in range(batch.n_graphs):
        edges, first, n_atoms, kpts, xs = _structure_k(batch, g, n_kpoints, lindep, generator)
        hp = bloch_sum(pred, batch, edges, first, n_atoms, kpts)
        with torch.no_grad():
            ht = bloch_sum(target, batch, edges, first, n_atoms, kpts)
            solved = [torch.linalg.eigh(h) for h in orthogonal_blocks(ht, xs)]
        lo, hi = _window(batch, g, [e for e, _ in solved], float(shift[g]), window_ev)
        total = torch.zeros((), dtype=torch.float64, device=pred.device)
        count = 0
        for k, (x, (e, v)) in enumerate(zip(xs, solved)):
            keep = (e >= lo) & (e <= hi)
            if bool(keep.any()):
                c = x @ v[:, keep]
                total = total + ((c.conj().T @ (hp[k] - ht[k]) @ c).abs() ** 2).sum()
                count += int(keep.sum())
        losses.append(total / (scale * scale * max(count, 1)))
    return torch.stack(losses).to(pred.dtype)


def band_loss(pred: torch.Tensor, target: torch.Tensor, shift: torch.Tensor, batch: GraphBatch, n_kpoints: int,
              window_ev: float, lindep: float, scale: float, generator: torch.Generator | None = None,
              form: str = "eigenvalues") -> torch.Tensor:
    """Mean squared band-energy error per structure (:func:`window_band_errors`), in units of ``scale``²; 0 for a
    structure without levels in the window; ``form="projected"``: :func:`window_projected_loss`. Returns shape
    (n_graphs,)."""
    if form == "projected":
        return window_projected_loss(pred, target, shift, batch, n_kpoints, window_ev, lindep, scale, generator)
    if form != "eigenvalues":
        raise ValueError(f"band form must be one of {BAND_FORMS}, got {form!r}")
    return band_loss_of(window_band_errors(pred, target, shift, batch, n_kpoints, window_ev, lindep, generator),
                        scale).to(pred.dtype)


def band_loss_of(errors: list[torch.Tensor], scale: float) -> torch.Tensor:
    """:func:`band_loss` from the errors of :func:`window_band_errors` (float64, shape (n_graphs,))."""
    return torch.stack([((e.to(torch.float64) / scale) ** 2).sum() / max(len(e), 1) for e in errors])


def band_maes_and_loss(pred: torch.Tensor, target: torch.Tensor, shift: torch.Tensor, batch: GraphBatch,
                       n_kpoints: int, window_ev: float, lindep: float, scale: float,
                       generator: torch.Generator | None = None) -> tuple[list[float], float]:
    """Validation's band figures from one solve: each structure's band MAE (meV, structures with levels in the
    window) and the summed :func:`band_loss`."""
    errors = window_band_errors(pred, target, shift, batch, n_kpoints, window_ev, lindep, generator)
    return ([1000 * float(e.abs().mean()) for e in errors if len(e)],
            float(band_loss_of(errors, scale).to(pred.dtype).sum()))


def _window(batch: GraphBatch, g: int, e_true: list[torch.Tensor], shift: float, width: float
            ) -> tuple[float, float]:
    """The energy range whose true levels count, in the aligned target's zero: E_F ± ``width`` for a crystal; for
    a molecule from ``width`` below its HOMO to ``width`` above its LUMO, so the frontier levels always count
    whatever the gap (a window around the gap's midpoint misses both where the gap exceeds twice the width:
    ethanol's 6.6 eV against the default 3 eV); the median level ± ``width`` where neither is known."""
    fermi = float(batch.fermi[g]) if batch.fermi is not None else float("nan")
    if math.isfinite(fermi) and bool(batch.pbc[g].any()):
        return fermi + shift - width, fermi + shift + width
    levels = torch.cat(e_true).sort().values
    n_el = float(batch.n_electrons[g]) if batch.n_electrons is not None else float("nan")
    if not math.isfinite(n_el) or len(e_true) != 1:
        mid = float(levels.median())
        return mid - width, mid + width
    nocc = int(math.ceil(n_el / 2))  # Γ only: a molecule
    homo = float(levels[min(max(nocc - 1, 0), len(levels) - 1)])
    lumo = float(levels[nocc]) if 0 < nocc < len(levels) else homo
    return homo - width, lumo + width

