"""The MnasNet reward, once: ACC * (MACs / T) ** w, w = alpha if MACs <= T else beta."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from effnas.config import typed
from effnas.errors import UserError

SOFT = (-0.07, -0.07)
"""MnasNet's soft constraint (alpha, beta)."""
HARD = (0.0, -1.0)
"""MnasNet's hard constraint (alpha, beta)."""


def check_reward_params(target: float, alpha: float, beta: float) -> None:
    if not (isinstance(target, (int, float)) and math.isfinite(target) and target > 0):
        raise UserError(f"reward.T (target multiply-adds) must be > 0, got {target}")
    for name, w in (("alpha", alpha), ("beta", beta)):
        if not math.isfinite(w) or w > 0:
            raise UserError(f"reward.{name} must be <= 0 (a penalty exponent), got {w}")


def reward(accuracy: float, macs: float, target: float, alpha: float = SOFT[0], beta: float = SOFT[1]) -> float:
    """MnasNet's objective, with multiply-adds (the EfficientNet search's "FLOPs") as cost."""
    check_reward_params(target, alpha, beta)
    if macs <= 0:
        raise UserError(f"MACs must be > 0, got {macs}")
    w = alpha if macs <= target else beta
    return float(accuracy * (macs / target) ** w)


@dataclass(frozen=True)
class RewardConfig:
    """The `reward:` section: the target and the exponents, and where MACs are counted against T."""

    T: float = 400e6
    """Target multiply-adds, counted at `resolution` with `num_classes` outputs."""
    alpha: float = SOFT[0]
    """Exponent when MACs <= T (soft: -0.07, hard: 0)."""
    beta: float = SOFT[1]
    """Exponent when MACs > T (soft: -0.07, hard: -1)."""
    resolution: int = 224
    num_classes: int = 1000
    """Classifier width at which MACs are counted (ImageNet's), independent of the proxy data."""

    def __post_init__(self) -> None:
        check_reward_params(self.T, self.alpha, self.beta)
        if self.resolution < 1 or self.num_classes < 1:
            raise UserError("reward.resolution and reward.num_classes must be >= 1")

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> RewardConfig:
        return typed(cls, d, "reward")

    def __call__(self, accuracy: float, macs: float) -> float:
        return reward(accuracy, macs, self.T, self.alpha, self.beta)
