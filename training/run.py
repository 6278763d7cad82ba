"""`nas train ARCH`: one architecture, a longer recipe, val + test accuracy, metrics.json.

The run directory holds config.yaml, arch.yaml, checkpoint.pt (the full training
state, rewritten after every epoch), and at the end metrics.json and model.pt
(the inference weights: the EMA when the recipe keeps one). Re-running the same
command after a kill continues from the last checkpoint; a run directory of
another config or architecture is refused.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from effnas import rundir
from effnas.config import compose, defaults, typed_fields
from effnas.errors import UserError
from effnas.log import logging_to
from search_spaces import Arch, cost
from training.data import Data, DataConfig, load_data
from training.guard import check_fits
from training.recipe import Recipe
from training.trainer import recipe_arch, resolve_device, train

CHECKPOINT = "checkpoint.pt"
ARCH = "arch.yaml"
RESUME_MAY_CHANGE = ("verbose", "device", "run")
"""Keys a re-run of `nas train` may change without starting a new run."""
SECTIONS = ("data", "train")
log = logging.getLogger("training")


@dataclass(frozen=True)
class TrainConfig:
    """`nas train`: effnas/conf/train.yaml over these defaults."""

    data: DataConfig
    train: Recipe
    name: str = "train"
    run: str | None = None
    """Run directory; default experiments/train-<hash of the command>."""
    seed: int = 0
    device: str = "auto"
    verbose: int = 2
    source: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        top = typed_fields(cls, d, "", skip=(*SECTIONS, "source"))
        return cls(data=DataConfig.from_mapping(d.get("data")), train=Recipe.from_mapping(d.get("train")),
                   source=dict(d), **top)  # fmt: skip


def bases() -> dict[str, dict[str, Any]]:
    top = {k: v for k, v in defaults(TrainConfig).items() if k not in SECTIONS}
    return {"train_base": top, "train/base": defaults(Recipe), "data/base": defaults(DataConfig)}


def compose_train(conf: str, overrides: list[str]) -> TrainConfig:
    return TrainConfig.from_dict(compose(conf, overrides, bases()))


def check_arch(run: Path, arch: Arch) -> None:
    """UserError if `run` already holds a run of another architecture."""
    f = run / ARCH
    if not f.is_file():
        return
    saved = Arch.from_yaml(f.read_text())
    if saved.replace(name="") != arch.replace(name=""):
        raise UserError(
            f"{run} holds a run of another architecture ({saved.name or 'unnamed'}, not {arch.name or 'this one'}); "
            "use another run= directory"
        )


def train_command(arch: Arch, cfg: TrainConfig, run: Path) -> int:
    device = resolve_device(cfg.device)
    cfg.data.check_files()
    rundir.check_usable(run, "train")
    check_arch(run, arch)
    data = load_data(cfg.data, seed=cfg.seed).to(device)
    size = cfg.train.train_size(data.name, data.resolution, arch.resolution)
    batch = min(cfg.train.batch_size, len(data.train))
    # before anything is written: a network that cannot fit leaves no run directory behind
    check_fits(arch, batch, size, data.num_classes, device.type, cfg.train.max_memory_gb, cfg.train.stride_reduction)
    with rundir.open_run(run, dict(cfg.source), "train", RESUME_MAY_CHANGE) as resuming:
        check_arch(run, arch)  # again, under the lock
        rundir.write_yaml(run / ARCH, arch.to_dict())
        with logging_to(run / "log.txt", cfg.verbose, info_at=1):
            return _train(arch, cfg, run, device, data, resuming)


def _train(arch: Arch, cfg: TrainConfig, run: Path, device: torch.device, data: Data, resuming: bool) -> int:
    recipe = cfg.train
    c = cost(arch, num_classes=data.num_classes)
    net = recipe_arch(arch, recipe)
    log.info(f"{arch.name or 'arch'}: {c.params:,} params, {c.macs / 1e6:.1f}M MACs at {arch.resolution}px; "
             f"training {recipe.epochs} epochs on {data.name} ({len(data.train)} train / {len(data.val)} val) "
             f"on {device}; dropout {net.dropout:g}, drop-path {net.drop_path:g}, "
             f"BN momentum {net.bn_momentum:g}{' (resuming)' if resuming else ''}")  # fmt: skip
    steps = recipe.epochs * max(1, len(data.train) // min(recipe.batch_size, len(data.train)))
    if net.bn_momentum * steps < 10:  # running statistics still carry their initial values / early weights
        log.warning(f"warning: BN momentum {net.bn_momentum:g} (TF {1 - net.bn_momentum:g}) averages its running "
                    f"statistics over ~{1 / net.bn_momentum:.0f} steps and this run has about {steps}: evaluation "
                    "may see unsettled statistics (measured at chance on CIFAR-10 after 225-375 steps, "
                    "experiments/recipe_b0/README.md); for short runs set train.bn_momentum=0.1")  # fmt: skip

    seed = cfg.seed
    torch.manual_seed(seed)
    trained = train(arch, data, recipe, device, seed=seed, progress=log.info, checkpoint=run / CHECKPOINT)
    result = trained.result
    test_acc = test_top5 = None
    if data.test is not None:
        test_acc, test_top5 = trained.evaluate(data.test)
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
        "dropout": net.dropout,
        "drop_path": net.drop_path,
        "bn_momentum": net.bn_momentum,
        "recipe": recipe.to_dict(),
        "images_per_second": result.images_per_second,
        "seconds": result.seconds,  # training + validation, summed over resumed calls
        "train_seconds": result.train_seconds,
        "eval_seconds": result.eval_seconds,
        "resumed_after_epoch": result.resumed_epoch,
        "device": result.device,
        "data": data.name,
    }
    rundir.write_text(run / "metrics.json", json.dumps(metrics, indent=2))
    state = {"arch": arch.to_dict(), "state_dict": trained.model.state_dict()}
    rundir.atomic_write(run / "model.pt", lambda tmp: torch.save(state, tmp))
    test = (
        f"{test_acc:.4f} (top-5 {test_top5:.4f})" if test_acc is not None else "n/a (no test split for this data set)"
    )
    print(f"val accuracy {result.accuracy:.4f} (top-5 {result.top5:.4f}), test accuracy {test}; "
          f"wrote {run / 'metrics.json'}")  # fmt: skip
    return 0
