"""The objective: Optuna trial -> Arch -> cost + proxy training -> reward.

The same objective runs in-process, in worker processes and on Ray. Every
trial records its architecture, cost and scores as user attributes, so the
Optuna storage alone is enough to rebuild `trials.parquet`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import optuna
import torch

from nas.data import Data
from nas.reward import check_reward_params, reward
from nas.train import Recipe, TrainResult, train_eval
from search_spaces import Arch, SearchSpace, cost

log = logging.getLogger("nas")


@dataclass(frozen=True)
class RewardConfig:
    T: float = 400e6
    alpha: float = -0.07
    beta: float = -0.07
    resolution: int = 224
    num_classes: int = 1000

    def __post_init__(self) -> None:
        check_reward_params(self.T, self.alpha, self.beta)
        if self.resolution < 1 or self.num_classes < 1:
            raise ValueError("reward.resolution and reward.num_classes must be >= 1")

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> RewardConfig:
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown reward keys {unknown}")
        return cls(**{k: (float(v) if k in ("T", "alpha", "beta") else int(v)) for k, v in d.items()})

    def __call__(self, accuracy: float, macs: float) -> float:
        return reward(accuracy, macs, self.T, self.alpha, self.beta)


def arch_cost(arch: Arch, rc: RewardConfig) -> tuple[int, int]:
    """(params, MACs) at the target's resolution and classifier width."""
    c = cost(arch, rc.resolution, rc.num_classes)
    return c.params, c.macs


def trial_record(
    space: SearchSpace, params: dict[str, Any], arch: Arch, rc: RewardConfig, device: Any
) -> dict[str, Any]:
    """What every trial records before training (both executors): cost at the target, block strings, vector."""
    n_params, macs = arch_cost(arch, rc)
    return {"macs": macs, "n_params": n_params, "block_strings": " ".join(arch.to_block_strings()),
            "vector": space.encode(params), "device": str(device)}  # fmt: skip


def evaluate_arch(
    arch: Arch,
    data: Data,
    recipe: Recipe,
    rc: RewardConfig,
    device: torch.device,
    seed: int = 0,
    report: Any = None,
    progress: Any = None,
) -> dict[str, Any]:
    """Cost + proxy training of one architecture (also used by `scale grid`)."""
    params, macs = arch_cost(arch, rc)
    result: TrainResult = train_eval(arch, data, recipe, device, report=report, seed=seed, progress=progress)
    return {
        "n_params": params,
        "macs": macs,
        "accuracy": result.accuracy,
        "reward": rc(result.accuracy, macs),
        "history": result.history,
        "train_seconds": result.train_seconds,
        "images_per_second": result.images_per_second,
        "device": result.device,
    }


class Objective:
    def __init__(
        self,
        space: SearchSpace,
        data: Data,
        recipe: Recipe,
        rc: RewardConfig,
        device: torch.device,
        multi: bool = False,
        seed: int = 0,
        verbose: int = 1,
    ) -> None:
        self.space, self.data, self.recipe, self.rc = space, data, recipe, rc
        self.device, self.multi, self.seed, self.verbose = device, multi, seed, verbose

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        start = time.perf_counter()
        arch, params = self.space.sample(trial)
        record = trial_record(self.space, params, arch, self.rc, self.device)
        for k, v in record.items():
            trial.set_user_attr(k, v)
        macs = record["macs"]

        def report(epoch: int, acc: float) -> None:
            trial.set_user_attr("accuracy", acc)
            trial.set_user_attr("reward", self.rc(acc, macs))
            if self.multi:
                return  # Optuna has no pruning for multi-objective studies
            trial.report(self.rc(acc, macs), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {epoch + 1}")

        def progress(msg: str) -> None:
            if self.verbose >= 2:
                log.info("trial %d %s", trial.number, msg)

        try:
            result = train_eval(
                arch, self.data, self.recipe, self.device, report, seed=self.seed + trial.number, progress=progress
            )
        except optuna.TrialPruned:
            trial.set_user_attr("seconds", time.perf_counter() - start)
            raise
        except Exception as e:
            trial.set_user_attr("error", f"{type(e).__name__}: {e}"[:500])
            trial.set_user_attr("seconds", time.perf_counter() - start)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            raise
        trial.set_user_attr("history", result.history)
        trial.set_user_attr("images_per_second", result.images_per_second)
        trial.set_user_attr("seconds", time.perf_counter() - start)
        if self.multi:
            return result.accuracy, float(macs)
        return self.rc(result.accuracy, macs)
