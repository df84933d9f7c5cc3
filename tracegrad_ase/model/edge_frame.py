"""Tensor products with the spherical harmonics of an edge, computed in that edge's own frame.

The backbone's message and edge updates are e3nn ``uvu`` tensor products ``TP(x, Y(r_ij); w)``. In a frame
where the edge points along e3nn's polar axis ŷ, ``Y_l(ŷ)`` has one non-zero component (m = 0), so the
Clebsch-Gordan contraction collapses to a small, sparse matrix per path, and the product becomes

    TP(x, Y(r); w) = D(R) TP(D(R)^T x, Y(ŷ); w),       R ŷ = r̂,

exactly (CG coefficients are invariant under D ⊗ D ⊗ D). The gated linear layers that follow commute with
rotations too, so the edge update runs wholly in the frame and only its result is rotated back. Per edge this
costs the rotations (block-diagonal, Σ mul (2l+1)² multiply-adds) instead of the dense
``(2l1+1)(2l2+1)(2l3+1)`` contraction per path: the network's outputs are the same to round-off (tested against
e3nn's own modules), the work several times smaller. e3nn's modules stay the reference: they define the paths,
their normalization and the weight layout that :class:`FrameTensorProduct` reads.

Also :func:`invariant_products` and :func:`invariant_gradient`: the TraceGrad block's ``f ⊗ f -> scalars`` product
as batched matrix products, and its gradient in closed form.
"""

from __future__ import annotations

import functools
import math

import torch
from e3nn import o3
from torch import nn
from ..core.dtypes import default_dtype


@functools.lru_cache(maxsize=None)
def _rotation_tables(l: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For ``D^l(α, β, 0) = Z(α) J Z(β) J^T`` in e3nn's real basis (Z = rotation about ŷ, J = D^l of the rotation
    taking ŷ to x̂): ``J Z(β) J^T`` over the trigonometric basis (cos mβ, m = 0..l; sin mβ, m = 1..l), and Z's
    sparse form ``Z[i, i] = cos(m_i θ)``, ``Z[i, 2l - i] = sign_i sin(m_i θ)``, ``m_i = |l - i|``,
    ``sign_i = sign(l - i)``. Float64."""
    d = 2 * l + 1
    with default_dtype(torch.float64):  # e3nn builds its generators in the default dtype
        gen = o3.so3_generators(l)
        to_x = torch.tensor([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
        j = o3.Irrep(l, 1).D_from_matrix(to_x)
    samples = torch.arange(d, dtype=torch.float64) * 2 * math.pi / d + 0.1
    z = torch.matrix_exp(samples[:, None, None] * gen[1])
    trig = torch.cat([torch.cos(samples[:, None] * torch.arange(l + 1)),
                      torch.sin(samples[:, None] * torch.arange(1, l + 1))], dim=1)
    coeff = torch.linalg.solve(trig, z.reshape(d, -1)).reshape(d, d, d)  # Z(θ) is a trig polynomial of degree l
    i = torch.arange(d)
    return (j @ coeff @ j.T).reshape(d, d * d), (l - i).abs(), torch.sign(l - i).to(torch.float64)


def wigner_matrices(vec: torch.Tensor, lmax: int) -> list[torch.Tensor]:
    """``D^l(R)`` (E, 2l+1, 2l+1) for l = 0..lmax, in e3nn's real basis, for the rotation R with R ŷ = r̂ (the
    identity for zero vectors, i.e. on-site edges), so that ``Y_l(r̂) = D^l Y_l(ŷ)``.

    The angles are e3nn's (``xyz_to_angles``) but with β = atan2(ρ, y) rather than acos(y), which loses half the
    digits near the poles; per l one small matrix product and a sparse rotation, no matrix exponential."""
    x, y, z = vec.unbind(-1)
    alpha = torch.atan2(x, z)
    beta = torch.atan2(torch.sqrt(x * x + z * z), y)
    ms = torch.arange(lmax + 1, dtype=vec.dtype, device=vec.device)
    ca, sa = torch.cos(alpha[:, None] * ms), torch.sin(alpha[:, None] * ms)
    cb, sb = torch.cos(beta[:, None] * ms), torch.sin(beta[:, None] * ms)
    out = []
    for l in range(lmax + 1):
        d = 2 * l + 1
        table, m, sign = _rotation_tables(l)
        m = m.to(vec.device)
        inner = (torch.cat([cb[:, : l + 1], sb[:, 1: l + 1]], dim=1) @ table.to(vec)).view(-1, d, d)
        flip = torch.arange(d - 1, -1, -1, device=vec.device)
        out.append(inner * ca[:, m, None] + inner[:, flip, :] * (sign.to(vec) * sa[:, m])[:, :, None])
    return out


class IrrepsRotation(nn.Module):
    """Rotates features of one ``Irreps`` by per-edge Wigner matrices: one batched product per irrep slot."""

    def __init__(self, irreps: o3.Irreps):
        super().__init__()
        self.irreps = o3.Irreps(irreps)
        self.slots = [(mul, ir.l) for mul, ir in self.irreps]
        self.sizes = [mul * ir.dim for mul, ir in self.irreps]

    def forward(self, x: torch.Tensor, wigner: list[torch.Tensor], inverse: bool = False) -> torch.Tensor:
        """``D^T x`` per edge (into the edge frame), or ``D x`` with ``inverse=True`` (back to the lab frame)."""
        e = x.shape[0]
        # One split, not a slice per slot: autograd zero-fills a gradient of the whole of x for every slice.
        blocks = list(torch.split(x, self.sizes, dim=1))
        for k, (mul, l) in enumerate(self.slots):
            if l > 0 and mul > 0:  # rows are vectors: (D^T v)^T = v^T D
                rot = wigner[l].transpose(1, 2) if inverse else wigner[l]
                blocks[k] = torch.bmm(blocks[k].reshape(e, mul, 2 * l + 1), rot).view(e, mul * (2 * l + 1))
        return torch.cat(blocks, dim=1)


class FrameConvolution(nn.Module):
    """``linear(TP(x, Y(r̂); w))`` evaluated in the edge frame, for an e3nn ``uvu`` product of features with
    the edge's spherical harmonics (one copy of each Y_l, per-edge weights ``w``) followed by a bias-free e3nn
    ``Linear`` with shared weights.

    In the frame ``Y(ŷ)`` has only its m = 0 components, so each path is a fixed sparse matrix A_p acting on the
    components of its input; the products of all paths that feed one output irrep are stacked along channels
    and mixed by the linear layer's weights in one matrix product. The paths, path weights and weight layouts
    are read from the two e3nn modules (which stay the reference, and hold the linear layer's parameters), so
    the result equals ``linear(tp(x, Y, w))`` rotated into the frame, to round-off. Input and output are in the
    edge frame."""

    def __init__(self, tp: o3.TensorProduct, linear: o3.Linear):
        super().__init__()
        if linear.irreps_in != tp.irreps_out or not linear.shared_weights or linear.bias_numel:
            raise ValueError("FrameConvolution needs a bias-free, shared-weight Linear on the product's output")
        self.linear = [linear]  # a plain list: the parameters stay registered in the network's own module
        self.irreps_in, self.irreps_out = tp.irreps_in1, linear.irreps_out
        dtype = torch.get_default_dtype()
        by_mid, offset = {}, 0
        # The per-edge weights, the inputs, each input's path rows and the linear layer's weights are each cut
        # into their blocks by one split (see IrrepsRotation.forward): the sizes here, indices into them below.
        w_sizes: list[int] = []
        l2_positive = torch.zeros(tp.weight_numel, dtype=torch.bool)
        for ins in tp.instructions:
            if ins.connection_mode != "uvu" or not ins.has_weight or tp.irreps_in2[ins.i_in2].mul != 1:
                raise ValueError("FrameConvolution takes 'uvu' products with weights and one copy of each Y_l")
            mul, ir1 = self.irreps_in[ins.i_in1]
            l2 = tp.irreps_in2[ins.i_in2].ir.l
            ir3 = tp.irreps_out[ins.i_out].ir
            # A[i, k] = path_weight * sum_j C[i, j, k] Y_j(ŷ), with Y_l2(ŷ) = sqrt(2 l2 + 1) e_{m=0}
            c = o3.wigner_3j(ir1.l, l2, ir3.l, dtype=torch.float64)
            by_mid[ins.i_out] = (ins.i_in1, ins.path_weight * math.sqrt(2 * l2 + 1) * c[:, l2, :], len(w_sizes))
            w_sizes.append(mul)
            l2_positive[offset: offset + mul] = l2 > 0
            offset += mul
        self.register_buffer("l2_positive", l2_positive, persistent=False)
        # Per input slot: all its paths' A^T stacked, so one product gives every path's rows.
        rows: dict[int, list] = {}
        for mid, (i1, _, _) in sorted(by_mid.items()):
            rows.setdefault(i1, []).append(mid)
        self.in_sizes = [mul * ir.dim for mul, ir in self.irreps_in]
        self.inputs, row_of = [], {}
        for n, (i1, mids) in enumerate(sorted(rows.items())):
            stacked = torch.cat([by_mid[m][1].T for m in mids], dim=0)  # (sum d3, d1)
            self.register_buffer(f"a_{n}", stacked.to(dtype), persistent=False)
            row_sizes = [tp.irreps_out[m].ir.dim for m in mids]
            self.inputs.append((n, i1, self.irreps_in[i1].mul, self.irreps_in[i1].ir.dim, row_sizes))
            for j, m in enumerate(mids):
                row_of[m] = (n, j)
        self.w_sizes = w_sizes
        # Per output slot of the linear layer: the paths that feed it, with their product-weight columns and
        # their block of the linear layer's weights.
        w_lin, self.lin_sizes = {}, []
        for ins in linear.instructions:
            w_lin[(ins.i_in, ins.i_out)] = (len(self.lin_sizes), tuple(ins.path_shape), ins.path_weight)
            self.lin_sizes.append(ins.path_shape[0] * ins.path_shape[1])
        self.outputs = []
        for o, (g, ir) in enumerate(self.irreps_out):
            feeds = [(row_of[m], by_mid[m][2], w_lin[(m, oo)]) for (m, oo) in sorted(w_lin) if oo == o]
            if g > 0:
                self.outputs.append((ir.dim, g, feeds))

    def forward(self, x: torch.Tensor, weight: torch.Tensor, onsite: torch.Tensor | None = None) -> torch.Tensor:
        """x (E, irreps_in) in the edge frame, weight (E, weight_numel) of the product; ``onsite`` edges have
        Y = (1, 0, ...), so their paths through l2 > 0 vanish."""
        if onsite is not None:
            weight = weight.masked_fill(onsite[:, None] & self.l2_positive[None, :], 0.0)
        e = x.shape[0]
        lin = self.linear[0].weight
        # Component-major layout (component, edge * channel): every path's rows are one contiguous block, so
        # the weighting and the linear layer are plain matrix products over all edges at once.
        x_in = torch.split(x, self.in_sizes, dim=1)
        w_in = torch.split(weight, self.w_sizes, dim=1)
        lin_in = torch.split(lin, self.lin_sizes)
        rows = []
        for n, i1, mul, dim, row_sizes in self.inputs:
            xt = x_in[i1].reshape(e, mul, dim).permute(2, 0, 1).reshape(dim, e * mul)
            rows.append(torch.split(getattr(self, f"a_{n}") @ xt, row_sizes))  # per path: (d3, E * mul)
        parts = []
        for d, g, feeds in self.outputs:
            y = x.new_zeros(d * e, g)
            for (n, j), k_w, (k_lin, shape, pw) in feeds:
                d3 = rows[n][j].shape[0]
                block = rows[n][j].view(d3, e, shape[0]) * w_in[k_w]
                y = torch.addmm(y, block.view(d3 * e, shape[0]), lin_in[k_lin].view(shape), alpha=pw)
            parts.append(y.view(d, e, g).permute(1, 2, 0).reshape(e, g * d))
        return torch.cat(parts, dim=1)


def _scalar_paths(tp: o3.FullyConnectedTensorProduct, x: torch.Tensor):
    """For each path of an e3nn product ``x ⊗ x -> n x 0e``: (instruction, its weights as (mul1 mul2, n) with the
    path's normalization folded in, its two inputs as (E, mul, 2l+1))."""
    if len(tp.irreps_out) != 1 or tp.irreps_out[0].ir.l != 0:
        raise ValueError(f"expected a product into one block of scalars, got {tp.irreps_out}")
    irreps, e, offset = tp.irreps_in1, x.shape[0], 0
    pieces = torch.split(x, [mul * ir.dim for mul, ir in irreps], dim=1)  # one split (IrrepsRotation.forward)
    n_out = tp.irreps_out[0].mul
    for ins in tp.instructions:
        if ins.connection_mode != "uvw":
            raise ValueError("expected 'uvw' paths (a fully connected product)")
        (mul1, ir), (mul2, _) = irreps[ins.i_in1], irreps[ins.i_in2]
        w = tp.weight[offset: offset + mul1 * mul2 * n_out].view(mul1 * mul2, n_out)
        offset += mul1 * mul2 * n_out
        a = pieces[ins.i_in1].reshape(e, mul1, ir.dim)
        b = pieces[ins.i_in2].reshape(e, mul2, ir.dim)
        yield ins, w * (ins.path_weight / math.sqrt(ir.dim)), a, b


def invariant_products(tp: o3.FullyConnectedTensorProduct, x: torch.Tensor) -> torch.Tensor:
    """``tp(x, x)`` for an e3nn fully connected product into scalars only, as Gram matrices and one matrix
    product per path (e3nn's generic einsum is several times slower here, forward and backward)."""
    out = None
    for _, w, a, b in _scalar_paths(tp, x):
        term = torch.bmm(a, b.transpose(1, 2)).reshape(x.shape[0], -1) @ w
        out = term if out is None else out + term
    return out


def invariant_gradient(tp: o3.FullyConnectedTensorProduct, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``d(sum_w g_w s_w)/dx`` for ``s = invariant_products(tp, x)``: per path ``(G + G^T) x`` with ``G = g W^T``,
    as a differentiable expression (it trains), without autograd's slice-by-slice zero-filled gradients of every
    irrep."""
    e = x.shape[0]
    grads: dict[int, torch.Tensor] = {}
    for ins, w, a, b in _scalar_paths(tp, x):
        big_g = (g @ w.T).view(e, a.shape[1], b.shape[1])
        if ins.i_in1 == ins.i_in2:
            parts = {ins.i_in1: torch.bmm(big_g + big_g.transpose(1, 2), a)}
        else:
            parts = {ins.i_in1: torch.bmm(big_g, b), ins.i_in2: torch.bmm(big_g.transpose(1, 2), a)}
        for i, part in parts.items():
            grads[i] = part if i not in grads else grads[i] + part
    pieces = [grads[i].reshape(e, -1) if i in grads else x.new_zeros(e, mul * ir.dim)
              for i, (mul, ir) in enumerate(tp.irreps_in1)]
    return torch.cat(pieces, dim=1)
