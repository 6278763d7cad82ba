"""Proxy training of scaled networks (`scale grid`, `scale family --train`), on the one trainer.

Both commands take the same `key=value` overrides as `nas search` for data,
training and execution (data=, data.path=, train.epochs=, device=,
executor=ray, ray.*), composed from effnas/conf/grid.yaml over `GridConfig`.
With `executor=ray` the members are trained as parallel Ray tasks (fractional
GPUs from ray.*). A member scaled to resolution r x the base's is trained at
round(data.resolution * r) pixels, so gamma acts on the proxy data too.

Evaluations are appended to `evaluations.jsonl` in the command's run directory
as they finish; a re-run of the same command (same config: the run directory
refuses another) reuses them.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from effnas import rundir
from effnas.config import compose, defaults, one_of, typed, typed_fields
from effnas.errors import UserError
from effnas.raycluster import EXECUTORS, RayConfig
from scaling.grid import Evaluate
from search_spaces import Arch
from training.data import Data, DataConfig
from training.recipe import Recipe

CACHE = "evaluations.jsonl"
SECTIONS = ("data", "train", "ray")
log = logging.getLogger("scaling")


@dataclass(frozen=True)
class GridConfig:
    """How `scale grid` and `scale family --train` train their members."""

    data: DataConfig
    train: Recipe
    ray: RayConfig = RayConfig()
    name: str = "grid"
    seed: int = 0
    device: str = "auto"
    verbose: int = 1
    executor: str = "local"
    """local: one member after another | ray: members as parallel Ray tasks."""
    source: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        one_of("executor", self.executor, EXECUTORS)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GridConfig:
        top = typed_fields(cls, d, "", skip=(*SECTIONS, "source"))
        return cls(data=DataConfig.from_mapping(d.get("data")), train=Recipe.from_mapping(d.get("train")),
                   ray=typed(RayConfig, d.get("ray"), "ray"), source=dict(d), **top)  # fmt: skip


def compose_grid_config(overrides: list[str]) -> GridConfig:
    from training.trainer import resolve_device

    top = {k: v for k, v in defaults(GridConfig).items() if k not in SECTIONS}
    bases = {
        "grid_base": {**top, "ray": defaults(RayConfig)},
        "train/base": defaults(Recipe),
        "data/base": defaults(DataConfig),
    }
    cfg = GridConfig.from_dict(compose("grid", overrides, bases))
    cfg.data.check_files()
    resolve_device(cfg.device)
    return cfg


def _key(arch: Arch) -> str:
    return arch.replace(name="").to_json()


def train_member(cfg: GridConfig, data: Data, base: Arch, arch: Arch, device: Any) -> dict[str, Any]:
    """Proxy-train one scaled member (data on the CPU, resized here to the member's proxy resolution)."""
    import torch

    from training.data import resize_split
    from training.trainer import train_eval

    res = max(8, round(data.resolution * arch.resolution / base.resolution))
    scaled = replace(
        data, train=resize_split(data.train, res), val=resize_split(data.val, res), resolution=res, test=None
    ).to(device)
    start = time.perf_counter()
    out = train_eval(arch, scaled, cfg.train, device, seed=cfg.seed)
    del scaled
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {
        "accuracy": out.accuracy,
        "val_images": len(data.val),
        "num_classes": data.num_classes,
        "proxy_resolution": res,
        "seconds": time.perf_counter() - start,
        "images_per_second": out.images_per_second,
        "device": out.device,
    }


FAILURES = (UserError, RuntimeError, FloatingPointError, MemoryError)
"""What ends one member's training without ending the command: the memory guard's refusal (UserError),
out-of-memory and other runtime errors, a non-finite loss. The member becomes a row with its reason."""


def attempt(cfg: GridConfig, data: Data, base: Arch, arch: Arch, device: Any) -> dict[str, Any]:
    """`train_member`, or {"error": reason} when the member's training fails (never cached: a rerun retries)."""
    try:
        return train_member(cfg, data, base, arch, device)
    except FAILURES as e:
        return {"error": f"{type(e).__name__}: {' '.join(str(e).split())}"[:500]}


def recipe_summary(cfg: GridConfig) -> str:
    """How members were trained, in one line for the family table."""
    r, d = cfg.train, cfg.data
    return (f"{r.epochs} epoch(s), batch {r.batch_size}, lr {r.lr:g}, seed {cfg.seed}, on {d.name}"
            f"{f' ({d.limit} images)' if d.limit else ''} at {d.resolution} px (scaled with each member)")  # fmt: skip


class _Cache:
    """evaluations.jsonl: one line per finished member, appended whole as it finishes."""

    def __init__(self, run: Path) -> None:
        self.file = run / CACHE
        self.data, dropped = rundir.read_results(self.file)
        if dropped:
            log.warning("%s: dropped %d bytes of a record written halfway", self.file, dropped)
        self.todo, self.done, self.start = 0, 0, time.perf_counter()
        self.names: dict[str, str] = {}
        self.failed: dict[str, dict[str, Any]] = {}

    def plan(self, members: list[Arch]) -> None:
        """Count the members still to train (progress lines: k/N and an ETA)."""
        self.names = {_key(a): a.name for a in members}  # the members' names (the coefficients), for the lines
        self.todo = len(set(self.names) - set(self.data))
        self.done, self.start = 0, time.perf_counter()
        if self.todo:
            log.info("%d member(s) to train, %d cached", self.todo, len(members) - self.todo)

    def add(self, arch: Arch, result: dict[str, Any]) -> None:
        self.done += 1
        if "error" in result:  # kept for this command's table only: the next run trains the member again
            self.failed[_key(arch)] = result
            log.warning("[%d/%d] %s failed: %s", self.done, max(self.todo, self.done),
                        self.names.get(_key(arch)) or arch.name or "member", result["error"])  # fmt: skip
            return
        rundir.append_result(self.file, _key(arch), result)
        self.data[_key(arch)] = result
        left = max(0, self.todo - self.done)
        eta = (time.perf_counter() - self.start) / self.done * left
        name = self.names.get(_key(arch)) or arch.name or "member"
        log.info("[%d/%d] %s: acc %.4f at %dpx in %.1fs on %s%s", self.done, max(self.todo, self.done), name,
                 result["accuracy"], result["proxy_resolution"], result["seconds"], result["device"],
                 f", ETA {eta / 60:.1f} min" if left else "")  # fmt: skip


def proxy_evaluator(cfg: GridConfig, base: Arch, run: Path, members: list[Arch]) -> Evaluate:
    """Arch -> {accuracy, proxy_resolution, seconds, ...}, cached in run/evaluations.jsonl.

    With `executor=ray`, `members` are first trained in parallel as Ray tasks
    (ray.* keys as for nas search); the cache then answers them.
    """
    from training.data import load_data
    from training.trainer import resolve_device

    device = resolve_device(cfg.device)
    data = load_data(cfg.data, seed=cfg.seed)
    cache = _Cache(run)
    cache.plan(members)
    if cfg.executor == "ray":
        _train_on_ray(cfg, data, base, [a for a in members if _key(a) not in cache.data], cache)

    def evaluate(arch: Arch) -> dict[str, Any]:
        key = _key(arch)
        if key not in cache.data and key not in cache.failed:
            cache.add(arch, attempt(cfg, data, base, arch, device))
        return dict(cache.data.get(key) or cache.failed[key])

    return evaluate


def _remote_member(data: Data, cfg: GridConfig, base: Arch, arch: Arch) -> dict[str, Any]:
    from effnas.raycluster import worker_device

    return attempt(cfg, data, base, arch, worker_device())


def member_gpus(rc: RayConfig, macs: int, base_macs: int) -> float:
    """A member's GPU share (`ray.gpus_by_cost`): gpus_per_trial scaled by its MACs over the base's, rounded
    up to a step of 0.05 and capped at one GPU; gpus_per_trial itself when the rule is off or GPUs are not used."""
    if not rc.gpus_by_cost or rc.gpus_per_trial <= 0:
        return rc.gpus_per_trial
    share = rc.gpus_per_trial * macs / base_macs
    return min(1.0, max(0.05, math.ceil(round(share / 0.05, 9)) * 0.05))


def _train_on_ray(cfg: GridConfig, data: Data, base: Arch, todo: list[Arch], cache: _Cache) -> None:
    from effnas.raycluster import run_tasks
    from search_spaces import cost

    base_macs = cost(base).macs
    gpus = [member_gpus(cfg.ray, cost(a).macs, base_macs) for a in todo]
    if cfg.ray.gpus_per_trial > 0:
        log.info("GPU share per member: %s", ", ".join(f"{a.name or 'member'} {g:g}" for a, g in zip(todo, gpus)))
    run_tasks(cfg.ray, _remote_member, data, [(cfg, base, a) for a in todo], lambda i, r: cache.add(todo[i], r), gpus)
