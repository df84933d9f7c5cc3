"""The network's physics, to float64 round-off, for the baseline and for TraceGrad."""

import numpy as np
import pytest
import torch
from ase.build import graphene, molecule

from conftest import assert_equivariant, random_rotation, rotation_error
from tracegrad_ase.core.basis import OrbitalBasis, orbital_rotation
from tracegrad_ase.core.graphs import neighbor_list
from tracegrad_ase.model import ModelConfig, build_model, graph_from_arrays

BASIS = OrbitalBasis(name="mini", shells={"C": (0, 0, 1, 1, 2), "H": (0, 1), "O": (0, 0, 1, 1, 2)},
                     valence={"C": 4, "H": 1, "O": 6})


@pytest.fixture(scope="module", params=[False, True], ids=["baseline", "tracegrad"])
def model(request):
    torch.manual_seed(0)
    reference = np.random.default_rng(5).normal(size=(5, 5)).tolist()  # on-site identity blocks, C and O
    cfg = ModelConfig(elements=["C", "H", "O"], basis=BASIS.to_dict(), cutoff=4.0, num_layers=2,
                      muls=[8, 4, 4, 2, 2], tg_hidden=16, tg_z=8, tracegrad=request.param,
                      onsite_reference={"C": reference, "O": reference})
    return build_model(cfg, torch.float64).eval()


def _predict(model, atoms):
    nl = neighbor_list(atoms, model.config.cutoff, self_edges=True)
    edges = np.column_stack([nl.shifts, nl.i, nl.j])
    g = graph_from_arrays(model.layout, atoms.numbers, atoms.positions, atoms.cell[:], edges)
    return {tuple(e): h for e, h in zip(edges.tolist(), model(g)["H"].detach())}


def _padded_rotation(model, symbol, r):
    return torch.as_tensor(model.layout.pad_block(orbital_rotation(BASIS.shells_of(symbol), r), symbol, symbol))


def _max_rotation_error(model, atoms, rotated_atoms, r, mapping=None):
    return rotation_error(lambda x: _predict(model, x), atoms, rotated_atoms, r,
                          lambda symbol, rot: _padded_rotation(model, symbol, rot), mapping)


def _crystal():
    atoms = graphene(a=2.46, vacuum=6.0).repeat((2, 1, 1))
    atoms.numbers[1] = 1
    atoms.numbers[3] = 8
    atoms.rattle(0.08, seed=3)
    return atoms


def test_random_rotation_molecule_and_crystal(model, rng):
    for atoms in (molecule("CH3CH2OH"), _crystal()):
        assert_equivariant(lambda x: _predict(model, x), atoms, random_rotation(rng),
                           lambda symbol, rot: _padded_rotation(model, symbol, rot))


def test_rotation_mapping_crystal_onto_itself(model):
    """A 60° rotation about a hexagon centre maps perfect graphene onto itself: the blocks map onto each other."""
    atoms = graphene(a=2.46, vacuum=6.0)
    c, s = np.cos(np.pi / 3), np.sin(np.pi / 3)
    r = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    # rotated about atom 0 and wrapped back into the original cell, the crystal is the same crystal
    rot = atoms.copy()
    rot.positions = (atoms.positions - atoms.positions[0]) @ r.T + atoms.positions[0]
    rot.cell = atoms.cell[:]
    rot.wrap()
    a, b = _predict(model, atoms), _predict(model, rot)
    # same structure => same set of blocks up to the edge relabelling; compare via invariants per distance
    norms_a = sorted(round(float(h.norm()), 9) for h in a.values())
    norms_b = sorted(round(float(h.norm()), 9) for h in b.values())
    assert norms_a == norms_b
    # and the equivariance relation holds edge by edge with the rotated geometry (no wrap)
    rot2 = atoms.copy()
    rot2.positions = (atoms.positions - atoms.positions[0]) @ r.T + atoms.positions[0]
    rot2.cell = atoms.cell[:] @ r.T
    err, _ = _max_rotation_error(model, atoms, rot2, r)
    assert err < 1e-12 and np.allclose(rot2.cell.cellpar(), atoms.cell.cellpar())


def test_translation_and_permutation_invariance(model, rng):
    atoms = _crystal()
    ref = _predict(model, atoms)
    moved = atoms.copy()
    moved.positions += np.array([0.37, -1.2, 0.5])
    out = _predict(model, moved)
    assert max(float((ref[k] - out[k]).abs().max()) for k in ref) < 1e-12
    perm = rng.permutation(len(atoms))
    permuted = atoms[perm]
    inv = np.argsort(perm)
    out = _predict(model, permuted)
    err = max(float((h - out[(rx, ry, rz, int(inv[i]), int(inv[j]))]).abs().max())
              for (rx, ry, rz, i, j), h in ref.items())
    assert err < 1e-12


def test_supercell_blocks_equal_primitive_blocks(model):
    prim = _crystal()
    sup = prim.repeat((2, 1, 1))
    a, b = _predict(model, prim), _predict(model, sup)
    n = len(prim)
    err = 0.0
    for (rx, ry, rz, i, j), h in b.items():
        # supercell atom k is primitive atom k % n in primitive cell (k // n, 0, 0)
        key = (2 * rx + j // n - i // n, ry, rz, i % n, j % n)
        err = max(err, float((h - a[key]).abs().max()))
    assert err < 1e-12


def test_hermitian_by_construction_and_masked(model):
    atoms = molecule("CH3OH")
    nl = neighbor_list(atoms, model.config.cutoff, self_edges=True)
    edges = np.column_stack([nl.shifts, nl.i, nl.j])
    g = graph_from_arrays(model.layout, atoms.numbers, atoms.positions, np.zeros((3, 3)), edges)
    h = model(g)["H"].detach()
    assert (h - h[g.reverse].transpose(1, 2)).abs().max() == 0
    assert (h[~g.mask] == 0).all()


def test_inference_under_no_grad_still_applies_tracegrad(model):
    atoms = molecule("H2O")
    nl = neighbor_list(atoms, model.config.cutoff, self_edges=True)
    g = graph_from_arrays(model.layout, atoms.numbers, atoms.positions, np.zeros((3, 3)),
                          np.column_stack([nl.shifts, nl.i, nl.j]))
    free = model(g)["H"]
    with torch.no_grad():
        guarded = model(g)["H"]
    assert torch.allclose(free.detach(), guarded, atol=1e-12)


@pytest.mark.parametrize("granularity", ["shell_pair", "degree"])
def test_trace_labels_invariant_and_consistent(granularity, rng):
    cfg = ModelConfig(elements=["C", "H"], basis=BASIS.to_dict(), num_layers=1, muls=[4, 2, 2, 2, 2],
                      trace_granularity=granularity, target_scale=2.0)
    model = build_model(cfg, torch.float64)
    blocks = torch.randn(5, model.layout.n_orb, model.layout.n_orb, dtype=torch.float64)
    t = model.trace_labels(blocks)
    assert t.shape == (5, 25 if granularity == "shell_pair" else sum(
        2 * min(la, lb) + 1 for la in (0, 0, 1, 1, 2) for lb in (0, 0, 1, 1, 2)))
    d = _padded_rotation(model, "C", random_rotation(rng))
    assert torch.allclose(t, model.trace_labels(d @ blocks @ d.T), atol=1e-10)
    # either granularity sums to the whole-block trace tr(H H^T)
    assert torch.allclose(t.sum(1), (blocks**2).sum((1, 2)) / 4.0)


@pytest.mark.parametrize("tracegrad", [True, False])
def test_chunked_inference_equals_the_whole_graph(tracegrad):
    """Under no_grad edges go through in chunks (bounded memory for 10^6 edges): same blocks to round-off."""
    cfg = ModelConfig(elements=["C", "H"], basis=BASIS.to_dict(), num_layers=2, muls=[4, 2, 2, 2, 2],
                      tracegrad=tracegrad, tg_hidden=8, tg_z=4, cutoff=4.0)
    torch.manual_seed(0)
    model = build_model(cfg, torch.float64)
    model.eval()
    atoms = molecule("C2H6")
    nl = neighbor_list(atoms, model.config.cutoff, self_edges=True)
    g = graph_from_arrays(model.layout, atoms.numbers, atoms.positions, np.zeros((3, 3)),
                          np.column_stack([nl.shifts, nl.i, nl.j]))
    whole = model(g)  # autograd on: one chunk
    model.inference_chunk = 7
    assert len(model._chunks(len(nl.i))) == 1  # still one chunk while gradients are recorded
    with torch.no_grad():
        assert len(model._chunks(len(nl.i))) > 5
        chunked = model(g)
    for key in whole:
        assert torch.allclose(whole[key].detach(), chunked[key], atol=1e-12, rtol=0)


@pytest.mark.parametrize("normalization", ["sqrt", "layer_norm"])
def test_normalized_trace_labels_stay_invariant(normalization, rng):
    cfg = ModelConfig(elements=["C", "H"], basis=BASIS.to_dict(), num_layers=1, muls=[4, 2, 2, 2, 2],
                      trace_normalization=normalization, target_scale=2.0)
    model = build_model(cfg, torch.float64)
    raw = build_model(ModelConfig(**{**cfg.to_dict(), "trace_normalization": "none"}), torch.float64)
    blocks = torch.randn(5, model.layout.n_orb, model.layout.n_orb, dtype=torch.float64)
    t = model.trace_labels(blocks)
    d = _padded_rotation(model, "C", random_rotation(rng))
    assert torch.allclose(t, model.trace_labels(d @ blocks @ d.T), atol=1e-10)
    if normalization == "sqrt":
        assert torch.allclose(t**2, raw.trace_labels(blocks), atol=1e-12)
    else:
        assert torch.allclose(t.mean(1), torch.zeros(5, dtype=torch.float64), atol=1e-10)
        assert torch.allclose(t.std(1, unbiased=False), torch.ones(5, dtype=torch.float64), atol=1e-4)
    with pytest.raises(ValueError, match="trace_normalization"):
        build_model(ModelConfig(**{**cfg.to_dict(), "trace_normalization": "log"}))


def test_edge_frame_products_equal_e3nn_modules(model):
    """The edge-frame evaluation (edge_frame.py) is the same network as e3nn's modules: outputs, TraceGrad's
    invariant features, and training gradients of every parameter, to float64 round-off. A graphene cell puts
    edges along e3nn's polar axis ŷ (the frame's singular direction) and on-site edges in."""
    atoms = _crystal()
    atoms.positions[2] = atoms.positions[0] + [0.0, 1.42, 0.0]  # an edge exactly along +y, and its reverse
    nl = neighbor_list(atoms, model.config.cutoff, self_edges=True)
    g = graph_from_arrays(model.layout, atoms.numbers, atoms.positions, atoms.cell[:],
                          np.column_stack([nl.shifts, nl.i, nl.j]))
    outs, grads = [], []
    model.train()
    try:
        for frame in (True, False):
            model.use_edge_frame = frame
            model.zero_grad()
            out = model(g)
            loss = (out["H"] ** 2).sum() + (out["trace_hat"] ** 2).sum() if "trace_hat" in out else (out["H"] ** 2).sum()
            loss.backward()
            outs.append({k: v.detach() for k, v in out.items()})
            grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    finally:
        model.use_edge_frame = True
        model.eval()
    for key in outs[0]:
        scale = float(outs[1][key].abs().max())
        assert float((outs[0][key] - outs[1][key]).abs().max()) < 1e-10 * max(scale, 1.0), key
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 10
    for name in grads[0]:
        scale = float(grads[1][name].abs().max())
        assert float((grads[0][name] - grads[1][name]).abs().max()) < 1e-9 * max(scale, 1.0), name


def _slices_in_graph(output: torch.Tensor) -> int:
    """SliceBackward nodes autograd recorded for ``output``: each zero-fills a gradient of its whole input."""
    seen, stack, n_slices = set(), [output.grad_fn], 0
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        n_slices += type(node).__name__ == "SliceBackward0"
        stack += [f for f, _ in node.next_functions]
    return n_slices


def test_edge_frame_products_cut_their_inputs_by_one_split_each(model):
    """A training step spent a third of its time on the zero-filled gradients of per-block slices of the edge
    features (README "Training throughput"): the edge-frame modules take their blocks with one split per tensor."""
    from tracegrad_ase.model.edge_frame import invariant_gradient, invariant_products

    torch.manual_seed(1)
    e = 7
    x = torch.randn(e, model.irreps_hidden.dim, dtype=torch.float64, requires_grad=True)
    wigner = [torch.eye(2 * l + 1, dtype=torch.float64).expand(e, -1, -1) for l in range(5)]
    assert _slices_in_graph(model.rot_hidden(x, wigner).sum()) == 0
    conv = model.node_conv[0]
    w = torch.randn(e, int(sum(conv.w_sizes)), dtype=torch.float64, requires_grad=True)
    assert _slices_in_graph(conv(x, w).sum()) == 0
    if model.config.tracegrad:
        tp = model.tracegrad_blocks[0].tp
        f = torch.randn(e, tp.irreps_in1.dim, dtype=torch.float64, requires_grad=True)
        s = invariant_products(tp, f)
        # the weight slices of the (small) parameter vector are all that remain
        assert _slices_in_graph(s.sum()) == _slices_in_graph(invariant_products(tp, f.detach()).sum())
        assert _slices_in_graph(invariant_gradient(tp, f, torch.ones_like(s)).sum()) == \
            _slices_in_graph(invariant_gradient(tp, f.detach(), torch.ones_like(s)).sum())


def test_tracegrad_block_equals_autograd_through_e3nn():
    """TraceGrad's block (closed-form gradient of the Gram-matrix invariants) against the definition: z from
    e3nn's own product, v = dz/df by autograd; and the training gradients of a loss on v, to round-off."""
    from e3nn import o3

    from tracegrad_ase.model.network import TraceGradBlock

    torch.manual_seed(1)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        irreps = o3.Irreps("4x0e+3x1o+2x1e+2x2e+1x3o")
        block = TraceGradBlock(irreps, 6, 5).train()
        f = irreps.randn(7, -1).requires_grad_(True)
        z, v = block(f)
        loss = (v ** 2).sum() + (z ** 3).sum()
        grads = torch.autograd.grad(loss, [f, *block.parameters()])
        z_ref = block.mlp(block.tp(f, f))
        (v_ref,) = torch.autograd.grad(z_ref.sum(), f, create_graph=True)
        loss_ref = (v_ref ** 2).sum() + (z_ref ** 3).sum()
        grads_ref = torch.autograd.grad(loss_ref, [f, *block.parameters()])
    finally:
        torch.set_default_dtype(previous)
    z, v, z_ref, v_ref = (t.detach() for t in (z, v, z_ref, v_ref))
    assert float((z - z_ref).abs().max()) < 1e-12 and float((v - v_ref).abs().max()) < 1e-12
    assert float(v.abs().max()) > 1e-3
    for a, b in zip(grads, grads_ref):
        assert float((a - b).abs().max()) < 1e-10 * max(1.0, float(b.abs().max()))
