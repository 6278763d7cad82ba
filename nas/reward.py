"""The MnasNet reward, once: ACC * (cost / T) ** w, w = alpha if cost <= T else beta.

The cost is multiply-adds (`reward.metric=macs`, the default: EfficientNet's search) or the latency a
table of the user's device predicts (`reward.metric=latency reward.T=25ms reward.table=FILE`: MnasNet's
search, with the table from `nas latency build-table`, search_spaces/latency.py)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from effnas.config import one_of, typed
from effnas.errors import UserError
from search_spaces.arch import Arch
from search_spaces.latency import LatencyTable, load_table, parse_time

SOFT = (-0.07, -0.07)
"""MnasNet's soft constraint (alpha, beta)."""
HARD = (0.0, -1.0)
"""MnasNet's hard constraint (alpha, beta)."""


METRICS = ("macs", "latency")
COLUMNS = {"macs": "macs", "latency": "latency_ms"}
"""The trials.parquet column holding each metric's cost."""


def check_reward_params(target: float, alpha: float, beta: float) -> None:
    if not (isinstance(target, (int, float)) and math.isfinite(target) and target > 0):
        raise UserError(f"reward.T (the target cost) must be > 0, got {target}")
    for name, w in (("alpha", alpha), ("beta", beta)):
        if not math.isfinite(w) or w > 0:
            raise UserError(f"reward.{name} must be <= 0 (a penalty exponent), got {w}")


def reward(accuracy: float, macs: float, target: float, alpha: float = SOFT[0], beta: float = SOFT[1]) -> float:
    """MnasNet's objective; `macs` is the cost in the target's unit (multiply-adds, the EfficientNet search's
    "FLOPs", or milliseconds of predicted latency)."""
    check_reward_params(target, alpha, beta)
    if macs <= 0:
        raise UserError(f"the cost (MACs or latency) must be > 0, got {macs}")
    w = alpha if macs <= target else beta
    return float(accuracy * (macs / target) ** w)


@dataclass(frozen=True)
class RewardConfig:
    """The `reward:` section: the cost metric, the target and the exponents, and where costs are counted."""

    T: float | str = 400e6
    """Target: multiply-adds (metric=macs), or a time with its unit (metric=latency: 25ms, 800us)."""
    metric: str = "macs"
    """macs | latency (predicted by `table` for the device it was built on)."""
    table: str = ""
    """metric=latency: the table file of `nas latency build-table` (built at `resolution`, `num_classes`)."""
    table_sha256: str = ""
    """Written by the search into the run's config.yaml: a resume with another table is refused."""
    alpha: float = SOFT[0]
    """Exponent when MACs <= T (soft: -0.07, hard: 0)."""
    beta: float = SOFT[1]
    """Exponent when MACs > T (soft: -0.07, hard: -1)."""
    resolution: int = 224
    num_classes: int = 1000
    """Classifier width at which MACs are counted (ImageNet's), independent of the proxy data."""

    def __post_init__(self) -> None:
        one_of("reward.metric", self.metric, METRICS, "cost metric")
        if self.metric == "macs":
            if isinstance(self.T, str):
                raise UserError(f"reward.T={self.T!r}: with reward.metric=macs the target is a number of "
                                "multiply-adds (e.g. 400e6); a time needs reward.metric=latency")  # fmt: skip
            if self.table:
                raise UserError("reward.table is read only with reward.metric=latency")
        elif not self.table:
            raise UserError("reward.metric=latency needs reward.table=FILE (from nas latency build-table)")
        check_reward_params(self.target, self.alpha, self.beta)
        if self.resolution < 1 or self.num_classes < 1:
            raise UserError("reward.resolution and reward.num_classes must be >= 1")

    @property
    def target(self) -> float:
        """T in the metric's unit: multiply-adds, or milliseconds."""
        return parse_time(self.T) if self.metric == "latency" else float(self.T)

    @property
    def column(self) -> str:
        """The trials.parquet column of the cost: macs or latency_ms."""
        return COLUMNS[self.metric]

    def describe_target(self) -> str:
        return f"{self.target:g} ms" if self.metric == "latency" else f"{self.target / 1e6:g}M MACs"

    def latency_table(self) -> LatencyTable:
        return load_table(self.table)

    def cost(self, arch: Arch, macs: int) -> float:
        """The arch's cost for the reward: its MACs, or its latency predicted by the table."""
        return float(macs) if self.metric == "macs" else self.latency_table().predict(arch)

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> RewardConfig:
        return typed(cls, d, "reward")

    def __call__(self, accuracy: float, cost: float) -> float:
        return reward(accuracy, cost, self.target, self.alpha, self.beta)
