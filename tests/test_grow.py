"""A model grown by interaction layers predicts what it predicted, to float64 round-off, and its new layers learn."""

import numpy as np
import pytest
import torch
from ase.build import graphene

from conftest import assert_equivariant, random_rotation
from tracegrad_ase.core.basis import OrbitalBasis, orbital_rotation
from tracegrad_ase.core.errors import ConfigError
from tracegrad_ase.core.graphs import neighbor_list
from tracegrad_ase.model import ModelConfig, build_model, graph_from_arrays
from tracegrad_ase.model.grow import grow_layers

BASIS = OrbitalBasis(name="mini", shells={"C": (0, 0, 1, 1, 2), "H": (0, 1)}, valence={"C": 4, "H": 1})


def _model(tracegrad: bool, num_layers: int = 2):
    torch.manual_seed(1)
    cfg = ModelConfig(elements=["C", "H"], basis=BASIS.to_dict(), cutoff=4.0, num_layers=num_layers,
                      muls=[8, 4, 4, 2, 2], tg_hidden=16, tg_z=8, tracegrad=tracegrad)
    model = build_model(cfg, torch.float64)
    with torch.no_grad():  # stand-in for training: weights that are not e3nn's initial ones
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def _graph(model, atoms):
    nl = neighbor_list(atoms, model.config.cutoff, self_edges=True)
    edges = np.column_stack([nl.shifts, nl.i, nl.j])
    return graph_from_arrays(model.layout, atoms.numbers, atoms.positions, atoms.cell[:], edges), edges


def _crystal():
    atoms = graphene(a=2.46, vacuum=6.0).repeat((2, 1, 1))
    atoms.numbers[1] = 1
    atoms.rattle(0.08, seed=3)
    return atoms


@pytest.mark.parametrize("tracegrad", [False, True], ids=["baseline", "tracegrad"])
def test_grown_model_predicts_what_the_model_predicted(tracegrad):
    model = _model(tracegrad)
    torch.manual_seed(7)
    grown = grow_layers(model, 4)
    assert grown.config.num_layers == 4 and len(grown.node_update) == 4
    assert sum(p.numel() for p in grown.parameters()) > sum(p.numel() for p in model.parameters())
    g, _ = _graph(model, _crystal())
    before, after = model(g), grown(g)
    scale = float(before["H"].detach().abs().max())
    assert scale > 0.1
    assert float((after["H"] - before["H"]).detach().abs().max()) < 1e-12 * scale
    if tracegrad:  # the decoder reads the new layers' z through zero columns
        assert after["z"].shape[1] == 2 * before["z"].shape[1]
        assert torch.allclose(after["trace_hat"], before["trace_hat"], rtol=0, atol=1e-12)


def test_the_new_layers_learn_and_the_grown_model_stays_equivariant(rng):
    model = _model(True)
    grown = grow_layers(model, 3).train()
    g, _ = _graph(model, _crystal())
    target = torch.randn_like(grown(g)["H"])
    loss = ((grown(g)["H"] - target) ** 2).mean() + grown(g)["trace_hat"].square().mean()
    loss.backward()
    zeroed = [grown.edge_update[2].linear.weight, grown.tracegrad_blocks[2].tp.weight]
    assert all(float(w.detach().abs().max()) == 0.0 for w in zeroed)
    assert float(grown.node_update[2].linear.weight.detach().abs().max()) > 0
    assert all(float(w.grad.abs().max()) > 1e-8 for w in zeroed)  # not stuck at zero
    assert float(grown.decoder[0].weight.grad[:, -grown.config.tg_z:].abs().max()) > 1e-8
    with torch.no_grad():  # one "step" later the new layer acts, and H stays equivariant
        for w in zeroed:
            w.add_(0.1 * torch.randn_like(w))
    grown.eval()
    g, _ = _graph(grown, _crystal())
    assert float((grown(g)["H"] - model(g)["H"]).detach().abs().max()) > 1e-3

    def predict(atoms):
        graph, edges = _graph(grown, atoms)
        return {tuple(e): h for e, h in zip(edges.tolist(), grown(graph)["H"].detach())}

    def block_rotation(symbol, r):
        return torch.as_tensor(grown.layout.pad_block(orbital_rotation(BASIS.shells_of(symbol), r), symbol, symbol))

    assert_equivariant(predict, _crystal(), random_rotation(rng), block_rotation)


def test_a_model_does_not_shrink():
    model = _model(True, num_layers=2)
    with pytest.raises(ConfigError, match=r"does not shrink \(it has 2 layers\)"):
        grow_layers(model, 1)
    assert grow_layers(model, 2).config == model.config
