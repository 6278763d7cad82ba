"""Proxy-training evaluation of scaled networks, through nas's objective.

`scale grid` and `scale family --train` take the same `key=value` overrides
as `nas search` (data=, data.path=, train.epochs=, device=, ...), composed
from conf/grid.yaml. A member scaled to resolution r x the base's is trained
at round(data.resolution * r) pixels, so gamma acts on the proxy data too.

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
    from nas.train import Recipe, resolve_device

    check_data_config(cfg["data"])
    Recipe.from_mapping(cfg["train"])
    RewardConfig.from_mapping(cfg["reward"])
    resolve_device(str(cfg["device"]))
    return cfg


def proxy_evaluator(cfg: dict[str, Any], base: Arch, run: Path) -> Evaluate:
    """Arch -> {accuracy, proxy_resolution, seconds, ...}, cached in run/evaluations.jsonl."""
    import torch

    from nas.data import load_data, resize_split
    from nas.objective import RewardConfig, evaluate_arch
    from nas.train import Recipe, resolve_device

    device = resolve_device(str(cfg["device"]))
    data = load_data(cfg["data"], seed=int(cfg["seed"]))
    recipe = Recipe.from_mapping(cfg["train"])
    rc = RewardConfig.from_mapping(cfg["reward"])
    cache_file = run / CACHE
    cache: dict[str, dict[str, Any]] = {}
    if cache_file.is_file():
        for line in cache_file.read_text().splitlines():
            try:
                rec = json.loads(line)
                cache[rec["key"]] = rec["result"]
            except (json.JSONDecodeError, KeyError):
                continue  # a line cut short by a kill: evaluate that point again

    def evaluate(arch: Arch) -> dict[str, Any]:
        key = arch.replace(name="").to_json()
        if key in cache:
            return cache[key]
        res = max(8, round(data.resolution * arch.resolution / base.resolution))
        scaled = replace(
            data, train=resize_split(data.train, res), val=resize_split(data.val, res), resolution=res, test=None
        ).to(device)
        start = time.perf_counter()
        out = evaluate_arch(arch, scaled, recipe, rc, device, seed=int(cfg["seed"]))
        result = {
            "accuracy": out["accuracy"],
            "proxy_resolution": res,
            "seconds": time.perf_counter() - start,
            "images_per_second": out["images_per_second"],
            "device": out["device"],
        }
        run.mkdir(parents=True, exist_ok=True)
        with cache_file.open("a") as f:
            f.write(json.dumps({"key": key, "result": result}) + "\n")
        cache[key] = result
        if int(cfg.get("verbose", 1)) >= 1:
            print(f"  {arch.name or 'member'}: acc {result['accuracy']:.4f} at {res}px in {result['seconds']:.1f}s",
                  file=sys.stderr, flush=True)  # fmt: skip
        del scaled
        if device.type == "cuda":
            torch.cuda.empty_cache()
        return result

    return evaluate
