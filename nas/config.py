"""The `nas search` config as typed data: `SearchConfig.from_dict(compose_search(overrides))`.

The defaults of every key live in the dataclasses (this one, `RewardConfig`,
`RayConfig`, `Recipe`, `DataConfig`); effnas/conf/mobile400m.yaml sets what the
preset changes. The composed dict is what a run directory stores as
config.yaml; `from_dict` reads it back the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from effnas.config import at_least, compose, defaults, one_of, typed, typed_fields
from effnas.errors import UserError
from effnas.raycluster import EXECUTORS, RayConfig
from nas.reward import RewardConfig
from search_spaces import SearchSpace
from training.data import DataConfig
from training.recipe import Recipe
from training.trainer import resolve_device

SAMPLERS = ("tpe", "random", "nsga2", "evolution", "local", "rl")
PRUNERS = ("none", "median", "halving")
OBJECTIVES = ("reward", "multi")
SECTIONS = ("data", "train", "space", "reward", "ray", "evolution", "rl", "warmup")
RESUME_MAY_CHANGE = ("trials", "workers", "verbose", "device", "run", "executor", "ray", "recheck", "keep_weights")
"""Keys a re-run may change without starting a new run (e.g. more trials)."""


@dataclass(frozen=True)
class EvolutionConfig:
    """`sampler=evolution` (nas/samplers.py): regularized evolution's population and tournament."""

    population: int = 20
    """P: the most recent completed trials that parents are drawn from (the paper's large runs: 100; a
    budget of 50-500 trials would spend 100 of them on the random start)."""
    tournament: int = 5
    """S: members drawn per child; the best of them is the parent (larger: greedier)."""

    def __post_init__(self) -> None:
        if self.population < 2:
            raise UserError(f"evolution.population must be >= 2, got {self.population}")
        if not 1 <= self.tournament <= self.population:
            raise UserError(f"evolution.tournament must be in 1..population ({self.population}), got {self.tournament}")


@dataclass(frozen=True)
class RLConfig:
    """`sampler=rl` (nas/rl.py): MnasNet's controller and its PPO updates (defaults: NASNet's settings, PPO's)."""

    hidden: int = 100
    """LSTM units (NASNet, MnasNet: one layer of 100)."""
    lr: float = 3.5e-4
    """Adam's learning rate (NASNet)."""
    entropy_weight: float = 1e-5
    """Weight of the entropy bonus (NASNet)."""
    baseline_decay: float = 0.95
    """Decay of the moving-average baseline subtracted from the reward (NASNet)."""
    update_every: int = 5
    """m: completed trials per PPO update."""
    ppo_epochs: int = 10
    """Adam steps on each update's trials (PPO, Schulman et al. 2017: 10)."""
    clip: float = 0.2
    """PPO's clip range of the probability ratio (Schulman et al. 2017: 0.2)."""

    def __post_init__(self) -> None:
        rules = {"hidden": self.hidden >= 1, "update_every": self.update_every >= 1, "ppo_epochs": self.ppo_epochs >= 1,
                 "lr": self.lr > 0, "entropy_weight": self.entropy_weight >= 0,
                 "baseline_decay": 0 <= self.baseline_decay < 1, "clip": 0 < self.clip < 1}  # fmt: skip
        wanted = {"hidden": ">= 1", "update_every": ">= 1", "ppo_epochs": ">= 1", "lr": "> 0", "entropy_weight": ">= 0",
                  "baseline_decay": "in [0, 1)", "clip": "in (0, 1)"}  # fmt: skip
        for name, ok in rules.items():
            if not ok:
                raise UserError(f"rl.{name} must be {wanted[name]}, got {getattr(self, name)}")


@dataclass(frozen=True)
class WarmupConfig:
    """Zero-cost warm-up (nas/zerocost.py, Abdelfattah et al. 2021): before the sampler starts, score `pool`
    random architectures of the space untrained and enqueue the best `top` (after the base). 0: off."""

    pool: int = 0
    top: int = 0
    score: str = "synflow"
    """synflow | naswot | grad_norm | params | macs; how each ranks on your data: `nas fidelity`."""

    def __post_init__(self) -> None:
        from nas.zerocost import SCORES

        one_of("warmup.score", self.score, SCORES, "zero-cost score")
        at_least("warmup.pool", self.pool, 0)
        at_least("warmup.top", self.top, 0)
        if self.top > self.pool:
            raise UserError(f"warmup.top ({self.top}) must be <= warmup.pool ({self.pool}): the best of the pool")
        if self.pool and not self.top:
            raise UserError(f"warmup.pool={self.pool} with warmup.top=0 scores architectures for nothing")


@dataclass(frozen=True)
class SearchConfig:
    data: DataConfig
    train: Recipe
    space: SearchSpace
    reward: RewardConfig = RewardConfig()
    ray: RayConfig = RayConfig()
    evolution: EvolutionConfig = EvolutionConfig()
    """sampler=evolution's population and tournament (nas/samplers.py)."""
    rl: RLConfig = RLConfig()
    """sampler=rl's controller and PPO settings (nas/rl.py)."""
    warmup: WarmupConfig = WarmupConfig()
    """Zero-cost warm-up: the best-scored of a pool of random architectures, enqueued first."""
    name: str = "search"
    run: str | None = None
    """Run directory; default experiments/<conf>[-<hash of the overrides>]."""
    trials: int = 10
    """Budget: finished trials (complete, pruned or failed)."""
    workers: int = 1
    """Trials at once, in separate processes sharing the storage (and the GPU)."""
    seed: int = 0
    sampler: str = "tpe"
    """tpe | random | nsga2 (objective=multi) | evolution (regularized evolution) | local (local search)
    (nas/samplers.py) | rl (MnasNet's RL controller, nas/rl.py)."""
    pruner: str = "none"
    """none | median | halving, on the per-epoch validation reward."""
    objective: str = "reward"
    """reward (single objective) | multi (max accuracy, min MACs: a Pareto front)."""
    recheck: int = 2
    """After the budget, the best `recheck` completed trials are trained again with another seed: the run's
    own estimate of its noise, and which trials it cannot tell from the best (nas/noise.py). 0: off."""
    enqueue_base: bool = True
    """Trial 0 is the space's base network (EfficientNet-B0)."""
    keep_weights: int = 5
    """Trained weights kept in RUN/weights/ (for `nas export`): of the best `keep_weights` trials by reward;
    -1 every trial's, 0 none (nas/weights.py)."""
    device: str = "auto"
    """auto | cpu | cuda | cuda:N."""
    verbose: int = 1
    """0 quiet, 1 progress bar, 2 per-epoch lines."""
    executor: str = "local"
    """local (in-process / worker processes) | ray (Ray Tune trials)."""
    source: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The composed dict this was read from (what config.yaml stores)."""

    def __post_init__(self) -> None:
        one_of("sampler", self.sampler, SAMPLERS)
        one_of("pruner", self.pruner, PRUNERS)
        one_of("objective", self.objective, OBJECTIVES)
        one_of("executor", self.executor, EXECUTORS)
        at_least("trials", self.trials, 1)
        at_least("workers", self.workers, 1)
        at_least("recheck", self.recheck, 0)
        at_least("keep_weights", self.keep_weights, -1)
        if self.sampler in ("evolution", "local", "rl") and self.multi:
            raise UserError(f"sampler={self.sampler} optimises one objective; use objective=reward (or sampler=nsga2)")
        if self.enqueue_base:  # trial 0 is the base: it must be a point of the space, checked before any file
            try:
                self.space.params_of(self.space.base)
            except UserError as e:
                raise UserError(f"enqueue_base: the space's base is not one of its points ({e}); add the base's "
                                "choice to space.choices or set enqueue_base=false") from None  # fmt: skip

    def check_runnable(self) -> None:
        """What a run needs of this machine (data files, the device, the latency table), checked before
        anything is written."""
        self.data.check_files()
        resolve_device(self.device)
        r = self.reward
        if r.metric == "latency":
            from search_spaces.latency import check_table_for

            check_table_for(r.latency_table(), self.space, r.resolution, r.num_classes)

    def run_config(self) -> dict[str, Any]:
        """What the run directory stores as config.yaml: the composed config, with the latency table's hash."""
        d = dict(self.source)
        if self.reward.metric == "latency":
            d["reward"] = {**d.get("reward", {}), "table_sha256": self.reward.latency_table().sha256}
        return d

    @property
    def multi(self) -> bool:
        return self.objective == "multi"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SearchConfig:
        missing = [s for s in ("data", "train", "space") if s not in d]
        if missing:
            raise UserError(f"the config has no {', '.join(missing)} section (a config.yaml of another command?)")
        top = typed_fields(cls, d, "", skip=(*SECTIONS, "source"))
        return cls(
            data=DataConfig.from_mapping(d["data"]),
            train=Recipe.from_mapping(d["train"]),
            space=space_of(d["space"]),
            reward=RewardConfig.from_mapping(d.get("reward")),
            ray=typed(RayConfig, d.get("ray"), "ray"),
            evolution=typed(EvolutionConfig, d.get("evolution"), "evolution"),
            rl=typed(RLConfig, d.get("rl"), "rl"),
            warmup=typed(WarmupConfig, d.get("warmup"), "warmup"),
            source=dict(d),
            **top,
        )


def space_of(d: Any) -> SearchSpace:
    if not isinstance(d, Mapping):
        raise UserError(f"space must be a mapping, got {d!r}")
    try:
        return SearchSpace.from_dict(d)
    except (TypeError, KeyError) as e:
        raise UserError(f"bad space: {e}") from None


def bases() -> dict[str, dict[str, Any]]:
    """The Hydra ConfigStore entries the search configs build on (the dataclasses' defaults)."""
    top = {k: v for k, v in defaults(SearchConfig).items() if k not in SECTIONS}
    return {
        "search_base": {
            **top,
            "reward": defaults(RewardConfig),
            "ray": defaults(RayConfig),
            "evolution": defaults(EvolutionConfig),
            "rl": defaults(RLConfig),
            "warmup": defaults(WarmupConfig),
        },
        "train/base": defaults(Recipe),
        "data/base": defaults(DataConfig),
    }


def compose_search(conf: str, overrides: list[str]) -> SearchConfig:
    return SearchConfig.from_dict(compose(conf, overrides, bases()))
