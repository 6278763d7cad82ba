"""`nas train ARCH`: one architecture, a longer recipe, val + test accuracy, metrics.json."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from nas import rundir
from nas.data import load_data
from nas.train import Recipe, evaluate, resolve_device, train_eval
from search_spaces import Arch, cost


def train_command(arch: Arch, cfg: dict[str, Any], run: Path) -> int:
    recipe = Recipe.from_mapping(cfg["train"])
    device = resolve_device(str(cfg["device"]))
    data = load_data(cfg["data"], seed=int(cfg["seed"])).to(device)
    run.mkdir(parents=True, exist_ok=True)
    (run / rundir.MARKER).write_text("effnas run directory v1\n")
    rundir.write_yaml(run / rundir.CONFIG, cfg)
    rundir.write_yaml(run / "arch.yaml", arch.to_dict())
    c = cost(arch, num_classes=data.num_classes)
    print(f"{arch.name or 'arch'}: {c.params:,} params, {c.macs / 1e6:.1f}M MACs at {arch.resolution}px; "
          f"training {recipe.epochs} epochs on {data.name} ({len(data.train)} train / {len(data.val)} val) "
          f"at {data.resolution}px on {device}", file=sys.stderr)  # fmt: skip
    start = time.perf_counter()
    holder: dict[str, Any] = {}

    def progress(msg: str) -> None:
        if int(cfg.get("verbose", 1)) >= 1:
            print(msg, file=sys.stderr)

    torch.manual_seed(int(cfg["seed"]))
    result = train_eval(arch, data, recipe, device, seed=int(cfg["seed"]), progress=progress, keep=holder)
    test_acc = None
    if data.test is not None:
        test_acc = evaluate(holder["model"], data, data.test, recipe.eval_batch_size, device)
    metrics = {
        "arch": arch.name,
        "params": c.params,
        "macs": c.macs,
        "val_accuracy": result.accuracy,
        "val_history": result.history,
        "test_accuracy": test_acc,
        "epochs": result.epochs,
        "images_per_second": result.images_per_second,
        "seconds": time.perf_counter() - start,
        "device": result.device,
        "data": data.name,
    }
    (run / "metrics.json").write_text(json.dumps(metrics, indent=2))
    torch.save({"arch": arch.to_dict(), "state_dict": holder["model"].state_dict()}, run / "model.pt")
    test = f"{test_acc:.4f}" if test_acc is not None else "n/a (no test split for this data set)"
    print(f"val accuracy {result.accuracy:.4f}, test accuracy {test}; wrote {run / 'metrics.json'}")
    return 0
