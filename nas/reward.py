"""The MnasNet reward, once: ACC * (MACs / T) ** w, w = alpha if MACs <= T else beta."""

from __future__ import annotations

import math

SOFT = (-0.07, -0.07)
"""MnasNet's soft constraint (alpha, beta)."""
HARD = (0.0, -1.0)
"""MnasNet's hard constraint (alpha, beta)."""


def check_reward_params(target: float, alpha: float, beta: float) -> None:
    if not (isinstance(target, (int, float)) and math.isfinite(target) and target > 0):
        raise ValueError(f"reward.T (target multiply-adds) must be > 0, got {target}")
    for name, w in (("alpha", alpha), ("beta", beta)):
        if not math.isfinite(w) or w > 0:
            raise ValueError(f"reward.{name} must be <= 0 (a penalty exponent), got {w}")


def reward(accuracy: float, macs: float, target: float, alpha: float = SOFT[0], beta: float = SOFT[1]) -> float:
    """MnasNet's objective, with multiply-adds (the EfficientNet search's "FLOPs") as cost."""
    check_reward_params(target, alpha, beta)
    if macs <= 0:
        raise ValueError(f"MACs must be > 0, got {macs}")
    w = alpha if macs <= target else beta
    return float(accuracy * (macs / target) ** w)
