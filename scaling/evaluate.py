"""Proxy-training evaluation of scaled networks, through nas's objective.

`scale grid` and `scale family --train` take the same `key=value` overrides
as `nas search` (data=, data.path=, train.epochs=, device=, executor=ray,
ray.*, ...), composed from conf/grid.yaml. With `executor=ray` the grid's
points are trained as parallel Ray tasks (fractional GPUs from ray.*). A
member scaled to resolution r x the base's is trained at
round(data.resolution * r) pixels, so gamma acts on the proxy data too.

Evaluations are appended to `evaluations.jsonl` in the run directory as they
finish; a re-run of the same command reuses them (resumable like a search).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from search_spaces import Arch

Evaluate = Callable[[Arch], dict[str, Any]]
CACHE = "evaluations.jsonl"


def compose_eval_config(overrides: list[str]) -> dict[str, Any]:
    from nas.cli import compose

    cfg = compose("grid", overrides)
    from nas.data import check_data_config
    from nas.objective import RewardConfig
    from nas.search import check_executor
    from nas.train import Recipe, resolve_device

    check_data_config(cfg["data"])
    Recipe.from_mapping(cfg["train"])
    RewardConfig.from_mapping(cfg["reward"])
    resolve_device(str(cfg["device"]))
    check_executor(cfg)
    return cfg


def _key(arch: Arch) -> str:
    return arch.replace(name="").to_json()


def train_member(cfg: dict[str, Any], data: Any, base: Arch, arch: Arch, device: Any) -> dict[str, Any]:
    """Proxy-train one scaled member (data on the CPU, resized here to the member's proxy resolution)."""
    import torch

    from nas.data import resize_split
    from nas.objective import RewardConfig, evaluate_arch
    from nas.train import Recipe

    res = max(8, round(data.resolution * arch.resolution / base.resolution))
    scaled = replace(
        data, train=resize_split(data.train, res), val=resize_split(data.val, res), resolution=res, test=None
    ).to(device)
    start = time.perf_counter()
    out = evaluate_arch(arch, scaled, Recipe.from_mapping(cfg["train"]), RewardConfig.from_mapping(cfg["reward"]),
                        device, seed=int(cfg["seed"]))  # fmt: skip
    del scaled
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {
        "accuracy": out["accuracy"],
        "proxy_resolution": res,
        "seconds": time.perf_counter() - start,
        "images_per_second": out["images_per_second"],
        "device": out["device"],
    }


class _Cache:
    """evaluations.jsonl: one line per finished member, appended as it finishes."""

    def __init__(self, run: Path) -> None:
        self.run, self.file, self.data = run, run / CACHE, {}
        if self.file.is_file():
            for line in self.file.read_text().splitlines():
                try:
                    rec = json.loads(line)
                    self.data[rec["key"]] = rec["result"]
                except (json.JSONDecodeError, KeyError):
                    continue  # a line cut short by a kill: evaluate that point again

    def add(self, arch: Arch, result: dict[str, Any], verbose: int) -> None:
        self.run.mkdir(parents=True, exist_ok=True)
        with self.file.open("a") as f:
            f.write(json.dumps({"key": _key(arch), "result": result}) + "\n")
        self.data[_key(arch)] = result
        if verbose >= 1:
            print(f"  {arch.name or 'member'}: acc {result['accuracy']:.4f} at {result['proxy_resolution']}px "
                  f"in {result['seconds']:.1f}s on {result['device']}", file=sys.stderr, flush=True)  # fmt: skip


def proxy_evaluator(cfg: dict[str, Any], base: Arch, run: Path, prefill: list[Arch] | None = None) -> Evaluate:
    """Arch -> {accuracy, proxy_resolution, seconds, ...}, cached in run/evaluations.jsonl.

    With `executor=ray`, the members in `prefill` are first trained in parallel
    as Ray tasks (ray.* keys as for nas search); the cache then answers them.
    """
    from nas.data import load_data
    from nas.train import resolve_device

    device = resolve_device(str(cfg["device"]))
    data = load_data(cfg["data"], seed=int(cfg["seed"]))
    cache = _Cache(run)
    verbose = int(cfg.get("verbose", 1))
    if cfg.get("executor") == "ray" and prefill:
        _prefill_on_ray(cfg, data, base, [a for a in prefill if _key(a) not in cache.data], cache, verbose)

    def evaluate(arch: Arch) -> dict[str, Any]:
        if _key(arch) not in cache.data:
            cache.add(arch, train_member(cfg, data, base, arch, device), verbose)
        return cache.data[_key(arch)]

    return evaluate


def _remote_member(cfg: dict[str, Any], data: Any, base: Arch, arch: Arch) -> dict[str, Any]:
    from nas.ray_executor import worker_device

    return train_member(cfg, data, base, arch, worker_device())


def _prefill_on_ray(cfg: dict[str, Any], data: Any, base: Arch, todo: list[Arch], cache: _Cache, verbose: int) -> None:
    import ray

    from nas.ray_executor import ray_config, ray_session

    rc = ray_config(cfg)
    if not todo:
        return
    with ray_session(rc):
        task = ray.remote(num_cpus=float(rc["cpus_per_trial"]), num_gpus=float(rc["gpus_per_trial"]),
                          max_retries=int(rc["max_failures"]))(_remote_member)  # fmt: skip
        data_ref = ray.put(data)
        pending = {task.remote(cfg, data_ref, base, a): a for a in todo}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                arch = pending.pop(ref)
                cache.add(arch, ray.get(ref), verbose)
