"""`nas train ARCH`: one architecture, a longer recipe, val + test accuracy, metrics.json.

The run directory holds config.yaml, arch.yaml, checkpoint.pt (the full training
state, rewritten after every epoch), and at the end metrics.json and model.pt
(the inference weights: the EMA when the recipe keeps one). Re-running the same
command after a kill continues from the last checkpoint; a run directory of
another config or architecture is refused.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch

from nas import rundir
from nas.data import check_data_config, load_data
from nas.train import Recipe, recipe_arch, resolve_device, train_eval
from search_spaces import Arch, cost

CHECKPOINT = "checkpoint.pt"
ARCH = "arch.yaml"


def check_arch(run: Path, arch: Arch) -> None:
    """ValueError if `run` already holds a run of another architecture."""
    f = run / ARCH
    if not f.is_file():
        return
    saved = Arch.from_yaml(f.read_text())
    if saved.replace(name="") != arch.replace(name=""):
        raise ValueError(
            f"{run} holds a run of another architecture ({saved.name or 'unnamed'}, not {arch.name or 'this one'}); "
            "use another run= directory"
        )


def train_command(arch: Arch, cfg: dict[str, Any], run: Path) -> int:
    recipe = Recipe.from_mapping(cfg["train"])
    device = resolve_device(str(cfg["device"]))
    check_data_config(cfg["data"])
    rundir.check_usable(run)
    check_arch(run, arch)
    data = load_data(cfg["data"], seed=int(cfg["seed"])).to(device)
    run.mkdir(parents=True, exist_ok=True)
    with rundir.locked(run):
        resuming = rundir.prepare(run, cfg)
        check_arch(run, arch)  # again, under the lock
        rundir.write_yaml(run / ARCH, arch.to_dict())
        return _train(arch, cfg, run, recipe, device, data, resuming)


def _train(arch: Arch, cfg: dict[str, Any], run: Path, recipe: Recipe, device: torch.device, data: Any,
           resuming: bool) -> int:  # fmt: skip
    c = cost(arch, num_classes=data.num_classes)
    trained = recipe_arch(arch, recipe)
    print(f"{arch.name or 'arch'}: {c.params:,} params, {c.macs / 1e6:.1f}M MACs at {arch.resolution}px; "
          f"training {recipe.epochs} epochs on {data.name} ({len(data.train)} train / {len(data.val)} val) "
          f"on {device}; dropout {trained.dropout:g}, drop-path {trained.drop_path:g}, "
          f"BN momentum {trained.bn_momentum:g}{' (resuming)' if resuming else ''}", file=sys.stderr)  # fmt: skip
    steps = recipe.epochs * max(1, len(data.train) // min(recipe.batch_size, len(data.train)))
    if trained.bn_momentum * steps < 10:  # running statistics still carry their initial values / early weights
        print(f"warning: BN momentum {trained.bn_momentum:g} (TF {1 - trained.bn_momentum:g}) averages its running "
              f"statistics over ~{1 / trained.bn_momentum:.0f} steps and this run has about {steps}: evaluation may "
              "see unsettled statistics (measured at chance on CIFAR-10 after 225-375 steps, "
              "experiments/recipe_b0/README.md); for short runs set train.bn_momentum=0.1",
              file=sys.stderr)  # fmt: skip
    holder: dict[str, Any] = {}

    def progress(msg: str) -> None:
        if int(cfg.get("verbose", 1)) >= 1:
            print(msg, file=sys.stderr, flush=True)

    seed = int(cfg["seed"])
    torch.manual_seed(seed)
    result = train_eval(
        arch, data, recipe, device, seed=seed, progress=progress, keep=holder, checkpoint=run / CHECKPOINT
    )
    test_acc = test_top5 = None
    if data.test is not None:
        test_acc, test_top5 = holder["evaluate"](data.test)
    metrics = {
        "arch": arch.name,
        "params": c.params,
        "macs": c.macs,
        "val_accuracy": result.accuracy,
        "val_top5": result.top5,
        "val_history": result.history,
        "val_accuracy_without_ema": result.accuracy_raw,
        "test_accuracy": test_acc,
        "test_top5": test_top5,
        "epochs": result.epochs,
        "steps": result.steps,
        "final_lr": result.lr,
        "ema": recipe.ema_decay > 0,
        "image_size": result.image_size,
        "eval_crop_fraction": result.eval_crop,
        "dropout": trained.dropout,
        "drop_path": trained.drop_path,
        "bn_momentum": trained.bn_momentum,
        "recipe": recipe.to_dict(),
        "images_per_second": result.images_per_second,
        "seconds": result.seconds,  # training + validation, summed over resumed calls
        "train_seconds": result.train_seconds,
        "eval_seconds": result.eval_seconds,
        "resumed_after_epoch": result.resumed_epoch,
        "device": result.device,
        "data": data.name,
    }
    (run / "metrics.json").write_text(json.dumps(metrics, indent=2))
    torch.save({"arch": arch.to_dict(), "state_dict": holder["model"].state_dict()}, run / "model.pt")
    test = (
        f"{test_acc:.4f} (top-5 {test_top5:.4f})" if test_acc is not None else "n/a (no test split for this data set)"
    )
    print(f"val accuracy {result.accuracy:.4f} (top-5 {result.top5:.4f}), test accuracy {test}; "
          f"wrote {run / 'metrics.json'}")  # fmt: skip
    return 0


def train_arch(arch: Arch, overrides: list[str], run: Path) -> dict[str, Any]:
    """`nas train` from Python: compose conf/train.yaml with `overrides`, train into `run`, return metrics.json.

    For callers such as `scale family --train` that want the full recipe with a run directory
    (checkpoints, resume) per member rather than a proxy score."""
    from nas.cli import compose

    cfg = compose("train", overrides)
    train_command(arch, cfg, run)
    return dict(json.loads((run / "metrics.json").read_text()))
