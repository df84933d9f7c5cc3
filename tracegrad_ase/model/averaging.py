"""An exponential moving average (EMA) of a model's weights, for validation and checkpoints/best.

Fine-tuning on hundreds of molecules, the validation band MAE of the raw weights jumps by ±30 meV from epoch to
epoch while the block MAE falls steadily (molecules 0.5: 272-336 meV over 16 epochs), so early stopping and the
choice of checkpoints/best follow noise. The average of the weights over the last ~1/(1 - decay) optimizer steps
is smoother and usually better than any single step's weights (Polyak averaging); training still steps the raw
weights, and checkpoints/last keeps both so that a run resumes exactly.
"""

from __future__ import annotations

import copy
from typing import Any

import torch


class WeightAverage:
    """``model``'s weights averaged as w_avg <- d·w_avg + (1 - d)·w after each optimizer step, with the usual
    warm-up d = min(decay, (1 + n) / (10 + n)) so that the first steps of a fine-tune are not swamped by the
    starting weights. ``average`` is a full model (same class and config) holding the averaged weights."""

    def __init__(self, model: torch.nn.Module, decay: float, state: dict[str, Any] | None = None) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay must be between 0 and 1, got {decay!r}")
        self.decay = decay
        self.average = copy.deepcopy(model)
        self.steps = 0
        if state is not None:
            self.average.load_state_dict(state["weights"])
            self.steps = int(state["steps"])

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Fold the model's current weights into the average (call after each optimizer step)."""
        self.steps += 1
        d = min(self.decay, (1.0 + self.steps) / (10.0 + self.steps))
        for avg, new in zip(self.average.state_dict().values(), model.state_dict().values()):
            if avg.dtype.is_floating_point:
                avg.lerp_(new, 1.0 - d)
            else:
                avg.copy_(new)

    def state_dict(self) -> dict[str, Any]:
        """What checkpoints/last stores to resume the average."""
        return {"weights": {k: v.detach().clone() for k, v in self.average.state_dict().items()},
                "steps": self.steps}
