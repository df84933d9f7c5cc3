"""Deeper networks from trained ones: a model grown by interaction layers that at first compute nothing.

Training a larger network from random weights costs what the trained one cost and more (hours of CPU for the
carbon model). H is read from the edge features f alone, and every interaction layer updates them residually
(f <- f + Gate(...) + v), so a layer whose edge update and v are zero leaves f as it was, whatever it does to the
node features h: appended to a trained model, it predicts the same H to round-off, and fine-tuning starts from the
trained model's error instead of from scratch. The zeroed maps are

- the edge update's linear layer (the gate of a zero input is zero: SiLU(0) = tanh(0) = 0, and every gated
  channel is multiplied by its zero input);
- the invariant branch's tensor product f (x) f -> s: with zero weights, v = dz/df = (dz/ds)(ds/df) = 0;
- the trace decoder's first layer on the new z: zero columns (a plain linear layer, so the other columns keep
  their meaning).

Their gradients are not zero (each is the input of a non-zero derivative), so they learn from the first step;
the new node update is left random (zeroing it too would leave its gradient zero until the edge update moved).
Only depth grows: the hidden irreps, radial basis and invariant widths set normalizations (e3nn's fan-in
scaling, the layer norms) that a wider copy would change.
"""

from __future__ import annotations

import torch

from ..core.errors import ConfigError
from .network import TraceGradNet, build_model


def grow_layers(model: TraceGradNet, num_layers: int) -> TraceGradNet:
    """A copy of ``model`` with ``num_layers`` interaction layers (at least its own), the added ones last and
    predicting nothing until trained. New layers' other weights are random from torch's current seed."""
    have = model.config.num_layers
    if not isinstance(num_layers, int) or isinstance(num_layers, bool) or num_layers < have:
        raise ConfigError(f"num_layers={num_layers!r}: a model grows, it does not shrink (it has {have} layers)")
    dtype = next(model.parameters()).dtype
    config = type(model.config).from_dict({**model.config.to_dict(), "num_layers": num_layers})
    grown = build_model(config, dtype)
    grown.model_file = model.model_file
    own = model.state_dict()
    state = grown.state_dict()
    for key, value in own.items():
        if key == "decoder.0.weight" and num_layers > have:
            continue
        if key not in state or state[key].shape != value.shape:
            raise ConfigError(f"cannot grow: {key} has shape {tuple(value.shape)} here and "
                              f"{tuple(state[key].shape) if key in state else 'none'} in the deeper network")
        state[key] = value
    grown.load_state_dict(state)
    if num_layers == have:
        return grown
    with torch.no_grad():
        for k in range(have, num_layers):
            grown.edge_update[k].linear.weight.zero_()
            if config.tracegrad:
                grown.tracegrad_blocks[k].tp.weight.zero_()
        if config.tracegrad:
            first = grown.decoder[0].weight  # (width, num_layers * tg_z): old layers' z come first
            old = own["decoder.0.weight"]
            first.zero_()
            first[:, : old.shape[1]] = old
    return grown
