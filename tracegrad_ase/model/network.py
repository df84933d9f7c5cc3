"""The TraceGrad network: an E(3)-equivariant message-passing backbone (DeepH-E3 family) whose edge features
get TraceGrad's non-linear equivariant update v = dz/df from invariant features z supervised by trace labels.

Per interaction layer k:

    h_i  <- h_i + Gate(Linear(h_i) + Linear(sum_j TP(h_j, Y(r_ij); w(|r_ij|)) / sqrt(avg_neighbours)))
    f_ij <- f_ij + Gate(Linear(TP(Linear(h_i) + Linear(h_j), Y(r_ij); w(|r_ij|))))
    z_k  =  MLP(FCTP(f_ij, f_ij -> n x 0e))                 # invariant, any non-linearity
    f_ij <- f_ij + alpha * d(sum z_k)/d f_ij                 # equivariant, H's physical dimension

then H_ij = CG(Linear(f_ij)) on every edge (on-site blocks are the self edges i->i, R=0), made Hermitian by
H_ij(R) <- (H_ij(R) + H_ji(-R)^T) / 2, and the invariant decoder T_hat = MLP(z_1..z_K) predicts the trace
labels. ``tracegrad=False`` gives the identical backbone without the z branch, the update and the decoder.

Inference needs autograd (v is a gradient): the module enables it itself, so prediction may (and in this package
does) run under ``torch.no_grad()``, which keeps memory to what inference needs.
No ASE here; inputs are :class:`~tracegrad_ase.model.data.GraphBatch` tensors.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from e3nn import o3
from e3nn.math import soft_one_hot_linspace
from e3nn.nn import FullyConnectedNet, Gate
from torch import nn

from ..core.basis import OrbitalBasis
from .data import GraphBatch
from .edge_frame import FrameConvolution, IrrepsRotation, invariant_gradient, invariant_products, wigner_matrices
from .layout import BlockLayout
from ..core.dtypes import default_dtype


@dataclass
class ModelConfig:
    """Everything that defines a network's shape; stored with every checkpoint."""

    elements: list[str]
    basis: dict  # OrbitalBasis.to_dict()
    cutoff: float = 8.0  # Å: edges (and predicted blocks) up to this distance
    num_layers: int = 3
    muls: list[int] = field(default_factory=lambda: [32, 16, 8, 8, 4])  # channels per l of hidden features
    lmax_sh: int = 4
    num_radial: int = 16
    radial_hidden: int = 32
    avg_neighbors: float = 20.0
    tracegrad: bool = True
    tg_hidden: int = 64  # invariants from f (x) f -> tg_hidden x 0e
    tg_z: int = 32  # invariant features z per layer
    # "unit": f + v (the DeepH-E3 variant of the authors' code); "adaptive": f + 0.2 sg(|f|/|v|) v per edge
    # (NextHAM's). Measured on the molecule benchmark (80 epochs): unit 142 meV, adaptive 289 meV test MAE.
    tg_alpha: str = "unit"
    trace_granularity: str = "shell_pair"  # or "degree"
    # How the trace labels are presented to the invariant branch: "none" (T itself, eV²), "sqrt" (√T, the block
    # norms, in eV like H) or "layer_norm" (each edge's T vector normalized over its channels, as in the authors'
    # derivative code). T spans orders of magnitude between near and far edges; the carbon model's trace loss
    # fell only 10 % in training with "none" (stop 9), which these options are here to test.
    trace_normalization: str = "none"
    target_scale: float = 1.0  # eV; the network works in units of this
    # Per element, per same-l slot-shell pair (a, b): mean on-site tr(H_ab)/(2l+1) of the training set (eV),
    # added as that times the identity to on-site blocks. Identity blocks commute with every rotation, so the
    # network stays exactly equivariant while it learns only the deviation (core levels are ~-500 eV).
    onsite_reference: dict[str, list[list[float]]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        """A config from a model file's ``config``: unknown keys, missing fields without a safe default and
        impossible values are a ValueError that names them.

        A missing field would otherwise take its default silently: a model trained at a cutoff of 5 Å would run
        at 8 Å, or without its target scale or on-site reference, and predict wrong numbers without an error.
        Only fields added after model files existed, whose default is the behaviour before them, may be absent.
        """
        if not isinstance(d, dict):
            raise ValueError(f"the model config must be a mapping, got {type(d).__name__}")
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model settings {sorted(unknown)}")
        optional = {"trace_normalization"}  # added later; its default "none" is what older models did
        missing = sorted(known - optional - set(d))
        if missing:
            raise ValueError(f"missing required field(s) {missing} (they have no safe default)")
        positive = {k: d[k] for k in ("cutoff", "avg_neighbors", "target_scale")}
        bad = [f"{k}={v!r}" for k, v in positive.items()
               if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0]
        if bad:
            raise ValueError(f"{', '.join(bad)}: must be finite positive numbers")
        if not isinstance(d["elements"], list) or not d["elements"] \
                or not all(isinstance(e, str) for e in d["elements"]):
            raise ValueError(f"elements must be a non-empty list of element symbols, got {d['elements']!r}")
        return cls(**d)


def _hidden_irreps(muls: list[int], needed: o3.Irreps, lmax_sh: int) -> o3.Irreps:
    """Hidden irreps: every (l, parity) the output needs, plus the spherical harmonics' own, ``muls[l]`` each."""
    keys = {(ir.l, ir.p) for _, ir in needed} | {(l, (-1) ** l) for l in range(lmax_sh + 1)}
    keys |= {(0, 1)}
    items = [(muls[min(l, len(muls) - 1)], (l, p)) for l, p in sorted(keys, key=lambda k: (k[0], -k[1]))]
    return o3.Irreps(items)


def _tp_with_sh(irreps_in: o3.Irreps, irreps_sh: o3.Irreps, irreps_target: o3.Irreps):
    """A 'uvu' tensor product with per-edge weights, keeping only outputs the target has."""
    wanted = {ir for _, ir in irreps_target}
    mid, instructions = [], []
    for i, (mul, ir_in) in enumerate(irreps_in):
        for j, (_, ir_sh) in enumerate(irreps_sh):
            for ir_out in ir_in * ir_sh:
                if ir_out in wanted:
                    instructions.append((i, j, len(mid), "uvu", True))
                    mid.append((mul, ir_out))
    mid = o3.Irreps(mid)
    tp = o3.TensorProduct(irreps_in, irreps_sh, mid, instructions, shared_weights=False, internal_weights=False)
    return tp, mid


class GatedLinear(nn.Module):
    """Linear to ``irreps_out`` followed by a gated non-linearity (SiLU on scalars, sigmoid gates on the rest)."""

    def __init__(self, irreps_in: o3.Irreps, irreps_out: o3.Irreps):
        super().__init__()
        scalars = o3.Irreps([(m, ir) for m, ir in irreps_out if ir.l == 0])
        gated = o3.Irreps([(m, ir) for m, ir in irreps_out if ir.l > 0])
        gates = o3.Irreps([(gated.num_irreps, "0e")]) if gated.num_irreps else o3.Irreps("")
        acts = [torch.nn.functional.silu if ir.p == 1 else torch.tanh for _, ir in scalars]
        self.gate = Gate(scalars, acts, gates, [torch.sigmoid] * len(gates), gated)
        self.linear = o3.Linear(irreps_in, self.gate.irreps_in)
        self.irreps_out = self.gate.irreps_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(self.linear(x))


class TraceGradBlock(nn.Module):
    """z = MLP(FCTP(f, f -> n x 0e)) and v = d(sum z)/df: invariant features and their equivariant gradient."""

    def __init__(self, irreps: o3.Irreps, n_hidden: int, n_z: int):
        super().__init__()
        self.tp = o3.FullyConnectedTensorProduct(irreps, irreps, f"{n_hidden}x0e")
        self.mlp = nn.Sequential(
            nn.Linear(n_hidden, n_hidden), nn.LayerNorm(n_hidden), nn.SiLU(),
            nn.Linear(n_hidden, n_z), nn.LayerNorm(n_z), nn.SiLU(),
        )

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():  # v is a gradient: needed at inference too
            s = invariant_products(self.tp, f)
            if not s.requires_grad:  # frozen weights and f: only the MLP's part of the chain needs a graph
                s = s.detach().requires_grad_(True)
            z = self.mlp(s)
            # dz/ds by autograd through the small MLP, then ds/df in closed form (edge_frame.invariant_gradient)
            (g,) = torch.autograd.grad(z.sum(), s, create_graph=self.training)
            v = invariant_gradient(self.tp, f, g)
        return z, v


class TraceGradNet(nn.Module):
    """Predicts padded H blocks (eV) on every edge of a :class:`GraphBatch`; see the module docstring."""

    @property
    def domain(self) -> dict[str, Any]:
        """The training domain recorded in :attr:`model_file` (elements, closest pairs, E_F, spectral range)."""
        return self.model_file.get("metadata", {}).get("domain") or {}

    @property
    def card(self) -> dict[str, Any]:
        """Former name of :attr:`model_file` (it is ``model.json``, not the model card ``card.yaml``)."""
        return self.model_file

    @card.setter
    def card(self, value: dict[str, Any]) -> None:
        self.model_file = value

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        #: The ``model.json`` the model was loaded from (config, dtype, ``metadata`` with the training ``domain``);
        #: empty for a model built in memory. Set by :func:`tracegrad_ase.predict.load`.
        self.model_file: dict[str, Any] = {}
        self.basis = OrbitalBasis.from_dict(config.basis)
        self.layout = BlockLayout.build(self.basis, config.elements)
        irreps_out = o3.Irreps(self.layout.irreps_out)
        self.irreps_sh = o3.Irreps.spherical_harmonics(config.lmax_sh)
        self.irreps_hidden = _hidden_irreps(config.muls, irreps_out, config.lmax_sh)
        n_species = len(self.layout.elements)
        n_radial_in = config.num_radial + 1  # + the on-site flag
        self.embed = o3.Linear(f"{n_species}x0e", self.irreps_hidden)
        self.node_tp, self.edge_tp, self.node_update, self.edge_update = (nn.ModuleList() for _ in range(4))
        self.node_self, self.edge_src, self.edge_dst, self.node_radial, self.edge_radial = (
            nn.ModuleList() for _ in range(5))
        self.tracegrad_blocks = nn.ModuleList()
        for _ in range(config.num_layers):
            tp, mid = _tp_with_sh(self.irreps_hidden, self.irreps_sh, self.irreps_hidden)
            self.node_tp.append(tp)
            self.node_radial.append(FullyConnectedNet([n_radial_in, config.radial_hidden, tp.weight_numel], torch.nn.functional.silu))
            self.node_self.append(o3.Linear(self.irreps_hidden, mid))
            self.node_update.append(GatedLinear(mid, self.irreps_hidden))
            self.edge_src.append(o3.Linear(self.irreps_hidden, self.irreps_hidden))
            self.edge_dst.append(o3.Linear(self.irreps_hidden, self.irreps_hidden))
            tp, mid = _tp_with_sh(self.irreps_hidden, self.irreps_sh, self.irreps_hidden)
            self.edge_tp.append(tp)
            self.edge_radial.append(FullyConnectedNet([n_radial_in, config.radial_hidden, tp.weight_numel], torch.nn.functional.silu))
            self.edge_update.append(GatedLinear(mid, self.irreps_hidden))
            if config.tracegrad:
                self.tracegrad_blocks.append(TraceGradBlock(self.irreps_hidden, config.tg_hidden, config.tg_z))
        # The same products evaluated in each edge's frame (edge_frame.py): equal to round-off, several times
        # cheaper. ``use_edge_frame = False`` runs e3nn's modules themselves (the reference in the tests).
        self.use_edge_frame = True
        # The node update's linear layer is bias-free, so it may act on each message before the sum over edges.
        self.node_conv = [FrameConvolution(tp, up.linear) for tp, up in zip(self.node_tp, self.node_update)]
        self.edge_conv = [FrameConvolution(tp, up.linear) for tp, up in zip(self.edge_tp, self.edge_update)]
        for n, conv in enumerate(self.node_conv + self.edge_conv):  # buffers only; parameters live above
            self.add_module(f"frame_conv_{n}", conv)
        self.rot_hidden = IrrepsRotation(self.irreps_hidden)
        self.rot_gate_in = IrrepsRotation(self.node_update[0].linear.irreps_out) if config.num_layers else None
        self.rot_update = IrrepsRotation(self.edge_update[0].irreps_out) if config.num_layers else None
        self.frame_lmax = max(ir.l for _, ir in self.irreps_hidden)
        self.edge_init = o3.Linear(f"{n_species * 2}x0e", self.irreps_hidden)
        self.output = o3.Linear(self.irreps_hidden, irreps_out)
        dtype = torch.get_default_dtype()
        self.register_buffer("cg", torch.as_tensor(self.layout.cg, dtype=dtype))
        trace_map = self.layout.shell_pair_matrix() if config.trace_granularity == "shell_pair" else None
        if config.trace_granularity not in ("shell_pair", "degree"):
            raise ValueError(f"trace_granularity must be 'shell_pair' or 'degree', got {config.trace_granularity!r}")
        if config.trace_normalization not in ("none", "sqrt", "layer_norm"):
            raise ValueError("trace_normalization must be 'none', 'sqrt' or 'layer_norm', "
                             f"got {config.trace_normalization!r}")
        self.register_buffer("trace_blocks", torch.as_tensor(
            trace_map if trace_map is not None else np.zeros((0, 0)), dtype=dtype))
        self.register_buffer("degree_map", torch.as_tensor(self.layout.degree_matrix(), dtype=dtype))
        self.register_buffer("onsite_ref", torch.as_tensor(self._onsite_reference_blocks(), dtype=dtype))
        self.n_trace = len(self.layout.shell_pairs) if config.trace_granularity == "shell_pair" else len(self.layout.degrees)
        if config.tracegrad:
            width = 4 * config.tg_z
            self.decoder = nn.Sequential(
                nn.Linear(config.num_layers * config.tg_z, width), nn.LayerNorm(width), nn.SiLU(),
                nn.Linear(width, width), nn.LayerNorm(width), nn.SiLU(), nn.Linear(width, self.n_trace))

    def _onsite_reference_blocks(self) -> np.ndarray:
        """(n_species, n_orb, n_orb) padded reference blocks from ``config.onsite_reference``."""
        n, start = self.layout.n_orb, self.layout.slot_start
        out = np.zeros((len(self.layout.elements), n, n))
        for s, element in enumerate(self.layout.elements):
            table = self.config.onsite_reference.get(element)
            if table is None:
                continue
            table = np.asarray(table, dtype=float)
            if table.shape != (len(self.layout.slot_ls),) * 2:
                raise ValueError(f"onsite_reference[{element!r}] has shape {table.shape}; the layout has "
                                 f"{len(self.layout.slot_ls)} shell slots (l = {list(self.layout.slot_ls)})")
            table = 0.5 * (table + table.T)  # on-site blocks are symmetric
            mask = self.layout.orbital_mask(element)
            for a, la in enumerate(self.layout.slot_ls):
                for b, lb in enumerate(self.layout.slot_ls):
                    if la == lb and table[a][b]:
                        out[s, start[a] : start[a + 1], start[b] : start[b + 1]] = table[a][b] * np.eye(2 * la + 1)
            out[s] *= np.outer(mask, mask)
        return out

    # -- pieces -----------------------------------------------------------------------------------
    def _edge_geometry(self, batch: GraphBatch, with_sh: bool = True):
        i, j = batch.edge_index
        vec = batch.pos[j] + batch.edge_offset - batch.pos[i]
        dist = vec.norm(dim=-1)
        onsite = batch.onsite()
        # On-site edges have no direction: Y = (1, 0, ..., 0), which any rotation leaves as it is.
        safe = torch.where(onsite[:, None], torch.tensor([0.0, 0.0, 1.0], dtype=vec.dtype, device=vec.device), vec)
        sh = None
        if with_sh:  # the edge-frame products need none
            sh = o3.spherical_harmonics(self.irreps_sh, safe, normalize=True, normalization="component")
            sh = torch.cat([sh[:, :1], sh[:, 1:] * (~onsite)[:, None].to(sh.dtype)], dim=1)
        c = self.config.cutoff
        radial = soft_one_hot_linspace(dist, 0.0, c, self.config.num_radial, basis="gaussian", cutoff=False)
        envelope = torch.where(dist < c, (1 - (dist / c) ** 2) ** 2, torch.zeros_like(dist))
        radial = torch.cat([radial * envelope[:, None] * math.sqrt(self.config.num_radial),
                            onsite[:, None].to(radial.dtype)], dim=1)
        return sh, radial, vec, onsite

    def _alpha(self, f: torch.Tensor, v: torch.Tensor) -> torch.Tensor | float:
        if self.config.tg_alpha == "unit":
            return 1.0
        ratio = f.norm(dim=-1, keepdim=True) / (v.norm(dim=-1, keepdim=True) + 1e-5)
        return 0.2 * ratio.detach()

    # -- forward ----------------------------------------------------------------------------------
    #: At inference, edges are processed in chunks of this many, so peak memory is the edge features plus one
    #: chunk's intermediates rather than every edge's (a 10,000-atom graphene sheet has ~10^6 edges).
    inference_chunk: int = 32768

    def _chunks(self, n_edges: int) -> list[slice]:
        if self.training or torch.is_grad_enabled() or n_edges <= self.inference_chunk:
            return [slice(0, n_edges)]  # gradients through the whole graph: no chunking
        return [slice(a, min(a + self.inference_chunk, n_edges)) for a in range(0, n_edges, self.inference_chunk)]

    def forward(self, batch: GraphBatch) -> dict[str, torch.Tensor]:
        """Returns ``H`` (E, n_orb, n_orb) in eV, Hermitian over edge pairs, and with TraceGrad ``trace_hat``
        (E, n_trace, in units of target_scale**2) and ``z`` (E, K*tg_z). Under ``torch.no_grad()`` (inference)
        edges go through in chunks of :attr:`inference_chunk`; the result is the same."""
        i, j = batch.edge_index
        n_species = len(self.layout.elements)
        onehot = torch.nn.functional.one_hot(batch.species, n_species).to(batch.pos.dtype)
        h = self.embed(onehot)
        f = self.edge_init(torch.cat([onehot[i], onehot[j]], dim=1))
        sh, radial, vec, onsite_edge = self._edge_geometry(batch, with_sh=not self.use_edge_frame)
        norm = 1.0 / math.sqrt(self.config.avg_neighbors)
        chunks = self._chunks(len(i))
        frame = self.use_edge_frame
        vec = torch.where(onsite_edge[:, None], torch.zeros_like(vec), vec)  # frame of an on-site edge: identity

        # One graph (training, small cells): every layer shares one set of Wigner matrices. Chunked inference
        # makes them per chunk and use rather than hold every edge's.
        whole = wigner_matrices(vec, self.frame_lmax) if frame and len(chunks) == 1 else None

        def frames(c: slice) -> list[torch.Tensor]:
            return whole if whole is not None else wigner_matrices(vec[c], self.frame_lmax)

        zs = []
        for k in range(self.config.num_layers):
            width = self.node_update[k].linear.irreps_out.dim if frame else self.node_tp[k].irreps_out.dim
            agg = torch.zeros(h.shape[0], width, dtype=h.dtype, device=h.device)
            for c in chunks:
                w = self.node_radial[k](radial[c])
                if frame:  # message already through the node update's linear layer
                    d = frames(c)
                    msg = self.rot_gate_in(self.node_conv[k](self.rot_hidden(h[j[c]], d), w, onsite_edge[c]), d,
                                           inverse=True)
                else:
                    msg = self.node_tp[k](h[j[c]], sh[c], w)
                agg = agg.index_add(0, i[c], msg)
            if frame:
                update = self.node_update[k]
                h = h + update.gate(update.linear(self.node_self[k](h)) + agg * norm)
            else:
                h = h + self.node_update[k](self.node_self[k](h) + agg * norm)
            src, dst = self.edge_src[k](h), self.edge_dst[k](h)
            # Chunked (inference, no graph): an edge's update reads only its own row of f, so each chunk overwrites
            # its rows in place and no second copy of every edge's features is made.
            z_layer = None
            for c in chunks:
                x, w = src[i[c]] + dst[j[c]], self.edge_radial[k](radial[c])
                if frame:  # the gated update commutes with rotations: only its result goes back
                    d = frames(c)
                    upd = self.rot_update(self.edge_update[k].gate(self.edge_conv[k](self.rot_hidden(x, d), w,
                                                                                     onsite_edge[c])), d, inverse=True)
                else:
                    upd = self.edge_update[k](self.edge_tp[k](x, sh[c], w))
                fc = f[c] + upd
                if self.config.tracegrad:
                    z, v = self.tracegrad_blocks[k](fc)
                    fc = fc + self._alpha(fc, v) * v
                    if len(chunks) == 1:
                        z_layer = z
                    else:
                        z_layer = z.new_empty(len(i), z.shape[1]) if z_layer is None else z_layer
                        z_layer[c] = z
                if len(chunks) == 1:
                    f = fc
                else:
                    f[c] = fc
            if z_layer is not None:
                zs.append(z_layer)
        if len(chunks) == 1:
            blocks = self._blocks(self.output(f) @ self.cg.T, batch, slice(None))
        else:  # the output's temporaries, one chunk at a time
            out = torch.cat([self.output(f[c]) @ self.cg.T for c in chunks])
            blocks = torch.empty_like(out).view(-1, self.layout.n_orb, self.layout.n_orb)
            for c in chunks:
                blocks[c] = self._blocks(out, batch, c)
        result = {"H": blocks}
        if self.config.tracegrad:
            z = torch.cat(zs, dim=1)
            result["z"] = z
            result["trace_hat"] = self.decoder(z)
        return result

    def _blocks(self, out: torch.Tensor, batch: GraphBatch, c: slice) -> torch.Tensor:
        """Padded blocks (eV) of the edges ``c`` from every edge's CG output: Hermitian over edge pairs, scaled,
        on-site reference added, masked."""
        n = self.layout.n_orb
        i, j = batch.edge_index[0][c], batch.edge_index[1][c]
        reverse = batch.reverse[c]
        blocks = 0.5 * (out[c].reshape(-1, n, n) + out[reverse].reshape(-1, n, n).transpose(1, 2))
        blocks = blocks * self.config.target_scale
        onsite = batch.onsite()[c]
        blocks = blocks + self.onsite_ref[batch.species[i]] * onsite[:, None, None].to(blocks.dtype)
        return blocks * batch.mask[c].to(blocks.dtype)

    def trace_labels(self, blocks: torch.Tensor, species: torch.Tensor | None = None,
                     onsite: torch.Tensor | None = None) -> torch.Tensor:
        """Trace labels T of padded blocks (eV), in units of target_scale**2: per shell pair or per degree.
        With ``species`` (of each edge's first atom) and ``onsite``, the on-site reference is removed first, so
        the labels describe what the network itself must produce."""
        if species is not None and onsite is not None:
            blocks = blocks - self.onsite_ref[species] * onsite[:, None, None].to(blocks.dtype)
        x = blocks.reshape(blocks.shape[0], -1) / self.config.target_scale
        if self.config.trace_granularity == "shell_pair":
            t = (x * x) @ self.trace_blocks.T
        else:
            comps = x @ self.cg  # the CG map is orthogonal: components h^(l) of the block
            t = (comps * comps) @ self.degree_map.T
        if self.config.trace_normalization == "sqrt":
            return t.clamp(min=0).sqrt()
        if self.config.trace_normalization == "layer_norm":
            return torch.nn.functional.layer_norm(t, t.shape[-1:])
        return t

    def trace_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """Which trace labels exist for each edge (shell pairs present in both atoms' bases)."""
        m = mask.reshape(mask.shape[0], -1).to(self.cg.dtype)
        if self.config.trace_granularity == "shell_pair":
            return (m @ self.trace_blocks.T) > 0
        return ((m @ self.cg.abs()) @ self.degree_map.T) > 0


def build_model(config: ModelConfig, dtype: torch.dtype = torch.float32) -> TraceGradNet:
    """Construct a model in ``dtype``. e3nn computes its Clebsch-Gordan buffers in the default dtype at
    construction, so float64 models are built under a float64 default to be equivariant to round-off."""
    import e3nn

    optimization = e3nn.get_optimization_defaults()
    # opt_einsum_fx's contraction search is most of the construction time (9 of 16 s for a carbon model) and
    # measured no faster at inference on CPU, so models are built without it.
    e3nn.set_optimization_defaults(optimize_einsums=False)
    try:
        with default_dtype(dtype):
            return TraceGradNet(config)
    finally:
        e3nn.set_optimization_defaults(**optimization)
