"""Exponential moving average of a model's weights (the EfficientNet recipe's inference weights).

As TF's `tf.train.ExponentialMovingAverage(decay, num_updates=global_step)` in the
official EfficientNet code: every floating-point entry of the state dict is averaged,
the BatchNorm running mean and variance included (TF adds `moving_mean` and
`moving_variance` to the EMA variables); integer buffers (num_batches_tracked) are copied.
With `warmup`, the decay after t optimizer steps is TF's min(decay, (1 + t) / (10 + t)),
which lets short runs average over their own length (t = 1000: 0.991) instead of
staying near the random init for ~10,000 steps at 0.9999.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from effnas.errors import UserError


def ema_decay_at(decay: float, updates: int, warmup: bool = True) -> float:
    return min(decay, (1.0 + updates) / (10.0 + updates)) if warmup else decay


class ModelEma:
    def __init__(self, model: nn.Module, decay: float, warmup: bool = True) -> None:
        if not 0.0 <= decay < 1.0:
            raise UserError(f"EMA decay must be in [0, 1), got {decay}")
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay, self.warmup, self.updates = decay, warmup, 0
        ema_state = self.module.state_dict(keep_vars=True)
        model_state = model.state_dict(keep_vars=True)
        floats = [k for k in ema_state if ema_state[k].is_floating_point()]
        # built once: the optimizer and BatchNorm update these tensors in place, so the lists stay valid
        self._ema_float = [ema_state[k].detach() for k in floats]
        self._model_float = [model_state[k].detach() for k in floats]
        self._other = [(ema_state[k], model_state[k]) for k in ema_state if not ema_state[k].is_floating_point()]

    @torch.no_grad()
    def update(self) -> None:
        """One step: ema <- d * ema + (1 - d) * weights, after the optimizer step."""
        self.updates += 1
        d = ema_decay_at(self.decay, self.updates, self.warmup)
        if self._ema_float:
            torch._foreach_lerp_(self._ema_float, self._model_float, 1.0 - d)
        for e, c in self._other:
            e.copy_(c)

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
