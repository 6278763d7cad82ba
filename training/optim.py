"""Optimizers and learning-rate schedules of the recipes.

`RMSpropTF` is RMSprop as TensorFlow defines it (tf.compat.v1.train.RMSPropOptimizer,
kernel ApplyRMSProp in tensorflow/core/kernels/training_ops.cc), which the
EfficientNet and MnasNet papers trained with (decay 0.9, momentum 0.9, epsilon 1e-3):

    ms  <- rho * ms + (1 - rho) * g^2              ms starts at ONE (TF's "rms" slot, ones_initializer)
    mom <- momentum * mom + lr * g / sqrt(ms + eps)
    w   <- w - mom

`torch.optim.RMSprop(alpha=rho, eps=eps, momentum=m)` differs in three ways:
  1. eps outside the root: g / (sqrt(ms) + eps). With eps = 1e-3 the two agree only
     while ms >> 1e-3; for small gradients TF's sqrt(eps) = 0.032 floor is 30x larger.
  2. ms starts at zero, so the first steps divide by sqrt(0.1 g^2) = 0.32|g|: a sign-like
     step of about 3.2 lr per weight, where TF's first steps are ~ lr * g (ms ~ 1).
  3. lr multiplies the momentum buffer on the way out (w -= lr * buf), where TF folds
     lr into the buffer; the two differ whenever lr changes (warm-up, decay): TF's
     buffer still carries the smaller rates of earlier steps.
timm's `RMSpropTF` makes the same three changes. Weight decay here is TF's L2 term
added to the loss (g <- g + wd * w, before the RMS normalisation), not decoupled.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from effnas.errors import UserError
from training.recipe import Recipe


class RMSpropTF(torch.optim.Optimizer):
    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        decay: float = 0.9,
        momentum: float = 0.9,
        eps: float = 1e-3,
        weight_decay: float = 0.0,
    ) -> None:
        if not lr >= 0 or not 0 <= decay < 1 or not 0 <= momentum < 1 or not eps > 0 or weight_decay < 0:
            raise UserError(f"bad RMSpropTF settings lr={lr} decay={decay} momentum={momentum} eps={eps}")
        defaults = {"lr": lr, "decay": decay, "momentum": momentum, "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads: list[torch.Tensor] = [p.grad for p in params if p.grad is not None]
            for p in params:
                state = self.state[p]
                if not state:
                    state["square_avg"] = torch.ones_like(p, memory_format=torch.preserve_format)
                    state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            ms = [self.state[p]["square_avg"] for p in params]
            mom = [self.state[p]["momentum_buffer"] for p in params]
            lr, rho, m = group["lr"], group["decay"], group["momentum"]
            if group["weight_decay"]:
                grads = list(torch._foreach_add(grads, params, alpha=group["weight_decay"]))
            torch._foreach_mul_(ms, rho)
            torch._foreach_addcmul_(ms, grads, grads, value=1.0 - rho)
            scale = torch._foreach_add(ms, group["eps"])
            torch._foreach_rsqrt_(scale)
            torch._foreach_mul_(scale, grads)  # g / sqrt(ms + eps)
            torch._foreach_mul_(mom, m)
            torch._foreach_add_(mom, scale, alpha=lr)
            torch._foreach_sub_(params, mom)
        return loss


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on BatchNorm and biases (TF's EfficientNet exempts only BatchNorm;
    at wd 1e-5 the few bias vectors make no measurable difference)."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, recipe: Recipe, lr: float | None = None) -> torch.optim.Optimizer:
    groups = param_groups(model, recipe.weight_decay)
    lr = recipe.lr if lr is None else lr
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=recipe.momentum, nesterov=recipe.momentum > 0)
    if recipe.optimizer == "rmsprop_tf":
        return RMSpropTF(groups, lr=lr, decay=recipe.rmsprop_decay, momentum=recipe.momentum, eps=recipe.rmsprop_eps)
    return torch.optim.RMSprop(groups, lr=lr, alpha=recipe.rmsprop_decay, momentum=recipe.momentum,
                               eps=recipe.rmsprop_eps)  # fmt: skip


def warmup_cosine(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """Learning-rate factor per step: linear warm-up, then cosine to zero."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def warmup_exponential(
    steps_per_epoch: int, warmup_epochs: float, rate: float, decay_epochs: float, staircase: bool = True
) -> Callable[[int], float]:
    """TF official EfficientNet (utils.build_learning_rate): factor rate^(step / decay_steps),
    decay_steps = decay_epochs * steps_per_epoch, floored when `staircase` (TF's default there);
    for step < int(warmup_epochs * steps_per_epoch) the warm-up step / warmup_steps replaces it
    (so the decay is counted from step 0, not from the end of the warm-up)."""
    warmup_steps = int(warmup_epochs * steps_per_epoch)
    decay_steps = decay_epochs * steps_per_epoch

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / warmup_steps
        p = step / decay_steps
        return float(rate ** (math.floor(p) if staircase else p))

    return factor


def lr_schedule(recipe: Recipe, steps_per_epoch: int, batch_size: int) -> Callable[[int], float]:
    """The learning rate used by optimizer step `step` (0-based) under `recipe`."""
    peak = recipe.peak_lr(batch_size)
    if recipe.schedule == "exponential":
        f = warmup_exponential(
            steps_per_epoch, recipe.warmup_epochs, recipe.lr_decay_rate, recipe.lr_decay_epochs, recipe.staircase
        )
    else:
        f = warmup_cosine(recipe.epochs * steps_per_epoch, int(recipe.warmup_epochs * steps_per_epoch))
    return lambda step: peak * f(step)
