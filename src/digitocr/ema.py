"""An exponential moving average (EMA) of a model's weights during training, for a smoother final model.

The average starts as a copy of the model and follows it after every optimiser step; batch-norm statistics
are averaged too, so the copy is a complete model that can be validated and saved as is.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightEMA:
    """``module`` holds ``decay * module + (1 - decay) * model`` after each ``update(model)``.

    The decay ramps up as (1 + t) / (10 + t) over the first steps (as timm's ModelEmaV2 warm-up), so short
    runs are not dominated by the random initial weights.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.module = copy.deepcopy(model).eval()
        self.module.requires_grad_(False)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        averaged, current = self.module.state_dict(), model.state_dict()
        floats = [name for name, tensor in averaged.items() if tensor.is_floating_point()]
        torch._foreach_lerp_(
            [averaged[name] for name in floats], [current[name].detach() for name in floats], 1 - decay
        )
        for name, tensor in averaged.items():
            if not tensor.is_floating_point():  # step counters such as BatchNorm's num_batches_tracked
                tensor.copy_(current[name])


def make_ema(model: nn.Module, decay: float) -> WeightEMA | None:
    """The EMA tracker for ``decay`` in (0, 1), or None when it is 0 (off)."""
    return WeightEMA(model, decay) if decay > 0 else None
