"""The one trial function: choices -> Arch -> cost + proxy training -> reward, for every executor.

`run_trial` does the work and tells a `Sink` what it learns: bookkeeping
(`set`) and per-epoch scores (`epoch`, which may raise `optuna.TrialPruned`).
In-process and worker-process trials write into the Optuna trial (`Objective`);
Ray trials send the same keys as Tune results (nas/ray_executor.py). Every
trial records its architecture, cost and scores as user attributes, so the
Optuna storage alone is enough to rebuild `trials.parquet`. An error anywhere
in a trial (sampling, costing, training) is recorded with its reason and fails
the trial; it is never mistaken for an interrupted one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import optuna
import torch

from nas import weights
from nas.config import SearchConfig
from nas.reward import RewardConfig
from search_spaces import Arch, SearchSpace, cost
from training.data import Data, load_data
from training.recipe import Recipe
from training.trainer import train

log = logging.getLogger("nas")


@dataclass
class Setup:
    """What every trial of a search shares: the space, the data (on the trials' device), recipe, reward."""

    space: SearchSpace
    data: Data
    recipe: Recipe
    rc: RewardConfig
    multi: bool = False
    weights: Path | None = None
    """Where trials write their trained weights (nas/weights.py); None: nowhere."""


def make_setup(cfg: SearchConfig, device: torch.device, data: Data | None = None, run: Path | None = None) -> Setup:
    """The shared parts of every trial; `data` (loaded once by the caller) or the config's data, on `device`;
    the trials' weights into `run`'s weights folder unless `keep_weights=0`."""
    data = data if data is not None else load_data(cfg.data, seed=cfg.seed)
    folder = (run / weights.DIR).resolve() if run is not None and cfg.keep_weights else None
    return Setup(cfg.space, data.to(device), cfg.train, cfg.reward, cfg.multi, folder)


def arch_cost(arch: Arch, rc: RewardConfig) -> tuple[int, int]:
    """(params, MACs) at the target's resolution and classifier width."""
    c = cost(arch, rc.resolution, rc.num_classes)
    return c.params, c.macs


class Sink(Protocol):
    def set(self, key: str, value: Any) -> None: ...

    def epoch(self, epoch: int, accuracy: float, reward: float) -> None: ...


def run_trial(
    setup: Setup,
    sample: Callable[[], dict[str, Any]],
    device: torch.device,
    seed: int,
    sink: Sink,
    progress: Callable[[str], None] | None = None,
    number: int | None = None,
) -> tuple[float, float]:
    """Sample, cost and train one architecture; returns (accuracy, cost: MACs or predicted ms). Raises what
    failed, after recording it in the sink as `error`. Trial `number`'s trained weights go into `setup.weights`."""
    start = time.perf_counter()
    try:
        params = sample()
        arch = setup.space.to_arch(params)
        n_params, macs = arch_cost(arch, setup.rc)
        cost = setup.rc.cost(arch, macs)
        for k, v in {"macs": macs, "n_params": n_params, "block_strings": " ".join(arch.to_block_strings()),
                     "vector": setup.space.encode(params), "device": str(device)}.items():  # fmt: skip
            sink.set(k, v)
        if setup.rc.metric == "latency":
            sink.set("latency_ms", cost)

        def report(epoch: int, acc: float) -> None:
            r = setup.rc(acc, cost)
            sink.set("accuracy", acc)
            sink.set("reward", r)
            sink.epoch(epoch, acc, r)

        trained = train(arch, setup.data, setup.recipe, device, report, seed=seed, progress=progress)
        result = trained.result
        if setup.weights is not None and number is not None:
            weights.save(weights.path(setup.weights, number), arch, trained.model)
    except optuna.TrialPruned:
        sink.set("seconds", time.perf_counter() - start)
        raise
    except Exception as e:
        sink.set("error", f"{type(e).__name__}: {e}"[:500])
        sink.set("seconds", time.perf_counter() - start)
        if device.type == "cuda":
            torch.cuda.empty_cache()
        raise
    sink.set("history", result.history)
    sink.set("images_per_second", result.images_per_second)
    sink.set("seconds", time.perf_counter() - start)
    return result.accuracy, cost


class _TrialSink:
    """Bookkeeping into the Optuna trial; per-epoch rewards to its pruner (single objective only)."""

    def __init__(self, trial: optuna.Trial, prune: bool) -> None:
        self.trial, self.prune = trial, prune

    def set(self, key: str, value: Any) -> None:
        self.trial.set_user_attr(key, value)

    def epoch(self, epoch: int, accuracy: float, reward: float) -> None:
        if not self.prune:
            return  # Optuna has no pruning for multi-objective studies
        self.trial.report(reward, epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch + 1}")


class Objective:
    """`study.optimize(Objective(...))`: the trial function for in-process and worker-process trials."""

    def __init__(self, setup: Setup, device: torch.device, seed: int = 0, verbose: int = 1) -> None:
        self.setup, self.device, self.seed, self.verbose = setup, device, seed, verbose

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        def progress(msg: str) -> None:
            if self.verbose >= 2:
                log.info("trial %d %s", trial.number, msg)

        acc, cost = run_trial(
            self.setup,
            lambda: self.setup.space.sample(trial)[1],
            self.device,
            self.seed + trial.number,
            _TrialSink(trial, prune=not self.setup.multi),
            progress,
            trial.number,
        )
        return (acc, cost) if self.setup.multi else self.setup.rc(acc, cost)
