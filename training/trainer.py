"""The one trainer: an `Arch` on on-device data under a `Recipe`; validation accuracy per epoch.

The proxy recipe (search trials, conf/train/proxy.yaml) and the EfficientNet
paper's recipe (conf/train/efficientnet.yaml: TF RMSprop, exponential decay,
EMA weights, AutoAugment, stochastic depth) run through the same loop; every
part is a recipe field. One code path for CPU and CUDA; on CUDA it adds bf16
autocast and channels_last. The per-epoch validation accuracy (of the EMA
weights when the recipe keeps an EMA) goes to `report` (which may raise
`optuna.TrialPruned`); a non-finite loss raises FloatingPointError. With
`checkpoint=PATH` the full training state is saved there after every epoch
and a later call with the same arguments continues from it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from effnas.errors import UserError
from search_spaces import Arch, build
from training import checkpoint as ckpt
from training.augment import EvalLoader, TrainLoader
from training.data import Data, Split
from training.ema import ModelEma
from training.guard import check_fits
from training.optim import lr_schedule, make_optimizer
from training.recipe import Recipe

RESUMED_FIELDS = ("accuracy", "top5", "accuracy_raw", "history", "history_top5", "history_raw", "epochs", "steps",
                  "lr", "seconds", "train_seconds", "eval_seconds", "train_images")  # fmt: skip


@dataclass
class TrainResult:
    accuracy: float
    """Validation top-1 after the last epoch, of the inference weights (the EMA when kept)."""
    history: list[float] = field(default_factory=list)
    epochs: int = 0
    seconds: float = 0.0
    """Wall time of training and validation, summed over the calls that resumed one run."""
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    """Wall time of the per-epoch validation passes (all of them, EMA and raw weights)."""
    train_images: int = 0
    device: str = "cpu"
    top5: float = 0.0
    history_top5: list[float] = field(default_factory=list)
    accuracy_raw: float | None = None
    """Validation top-1 of the trained (not averaged) weights, when an EMA is kept."""
    history_raw: list[float] = field(default_factory=list)
    steps: int = 0
    lr: float = 0.0
    """Learning rate of the last optimizer step."""
    image_size: int = 0
    eval_crop: float = 1.0
    resumed_epoch: int | None = None

    @property
    def images_per_second(self) -> float:
        return self.train_images / self.train_seconds if self.train_seconds > 0 else 0.0


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device={name} but no CUDA device is available")
    if name != "cpu" and not name.startswith("cuda"):
        raise UserError(f"device must be auto, cpu or cuda[:N], got {name!r}")
    return torch.device(name)


@torch.no_grad()
def evaluate_topk(
    model: nn.Module,
    data: Data,
    split: Split,
    batch_size: int,
    device: torch.device,
    size: int | None = None,
    crop: float = 1.0,
    k: int = 5,
) -> tuple[float, float]:
    """(top-1, top-k) accuracy; images centre-cropped to `crop` of their side and resized to `size`."""
    model.eval()
    cuda = device.type == "cuda"
    kk = min(k, data.num_classes)
    top1 = torch.zeros((), dtype=torch.long, device=split.x.device)
    topk = torch.zeros((), dtype=torch.long, device=split.x.device)
    for x, y in EvalLoader(data, split, batch_size, size or data.resolution, crop, channels_last=cuda):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            hit = model(x).topk(kk, dim=1).indices == y[:, None]
        top1 += hit[:, 0].sum()
        topk += hit.any(dim=1).sum()
    n = max(1, len(split))
    return top1.item() / n, topk.item() / n


def recipe_arch(arch: Arch, recipe: Recipe) -> Arch:
    """The Arch as trained: the recipe's BatchNorm momentum, dropout and drop-path where it sets them."""
    changes = {"bn_momentum": recipe.bn_momentum, "dropout": recipe.dropout, "drop_path": recipe.drop_path}
    return arch.replace(**{k: v for k, v in changes.items() if v is not None})


@dataclass
class Trained:
    """What `train` hands back: the scores, the inference model (the EMA weights when the recipe keeps an
    EMA), the trained weights, and the evaluation transform of the recipe."""

    result: TrainResult
    model: nn.Module
    train_model: nn.Module
    evaluate: Callable[[Split], tuple[float, float]]
    """split -> (top-1, top-5) of the inference model, with the recipe's evaluation crop and size."""


def train_eval(
    arch: Arch,
    data: Data,
    recipe: Recipe,
    device: torch.device,
    report: Callable[[int, float], None] | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    checkpoint: Path | None = None,
) -> TrainResult:
    """`train(...)`'s scores alone."""
    return train(arch, data, recipe, device, report, seed, progress, checkpoint).result


def train(
    arch: Arch,
    data: Data,
    recipe: Recipe,
    device: torch.device,
    report: Callable[[int, float], None] | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    checkpoint: Path | None = None,
) -> Trained:
    """Train `arch` on data.train for recipe.epochs; validation accuracy after each epoch.

    `data` must already be on `device` (see Data.to). `report(epoch, accuracy)` is
    called after every epoch (it may raise to stop, e.g. optuna.TrialPruned).
    """
    start = time.perf_counter()
    torch.manual_seed(seed)
    cuda = device.type == "cuda"
    size = recipe.train_size(data.name, data.resolution, arch.resolution)
    check_fits(arch, min(recipe.batch_size, len(data.train)), size, data.num_classes, device.type,
               recipe.max_memory_gb, recipe.stride_reduction)  # fmt: skip
    model = build(recipe_arch(arch, recipe), data.num_classes, recipe.stride_reduction).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    if recipe.zero_init_classifier:  # the TF/timm init gives logits of std ~6 with 10 classes
        nn.init.zeros_(model.classifier.weight)
    gen = torch.Generator(device=data.train.x.device)
    gen.manual_seed(seed)
    crop = recipe.eval_crop_fraction(data.name, size)
    loader = TrainLoader(data, data.train, recipe, size, channels_last=cuda, generator=gen)
    steps_per_epoch, batch = len(loader), min(recipe.batch_size, len(data.train))
    lr_at = lr_schedule(recipe, steps_per_epoch, batch)
    opt = make_optimizer(model, recipe, lr_at(0))
    ema = ModelEma(model, recipe.ema_decay, recipe.ema_warmup) if recipe.ema_decay > 0 else None
    inference = ema.module if ema is not None else model
    result = TrainResult(accuracy=0.0, device=str(device), image_size=size, eval_crop=crop)

    def eval_split(m: nn.Module, split: Split) -> tuple[float, float]:
        return evaluate_topk(m, data, split, recipe.eval_batch_size, device, size, crop)

    state = ckpt.load(checkpoint, device) if checkpoint is not None else None
    if state is not None and checkpoint is not None:
        ckpt.check_compatible(state, checkpoint, arch, recipe, data.num_classes)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        for k in RESUMED_FIELDS:
            setattr(result, k, state["result"].get(k, getattr(result, k)))
        result.resumed_epoch = result.epochs
        ckpt.set_rng_state(state["rng"], gen)
        if progress is not None:
            progress(f"resumed from {checkpoint} after epoch {result.epochs}/{recipe.epochs} (step {result.steps})")
    step, earlier = result.steps, result.seconds
    for epoch in range(result.epochs, recipe.epochs):
        model.train()
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        for x, y in loader:
            lr = lr_at(step)
            for g in opt.param_groups:
                g["lr"] = lr
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                loss = F.cross_entropy(model(x), y, label_smoothing=recipe.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            if ema is not None:
                ema.update()
            step += 1
            loss_sum += loss.detach().float()
        mean_loss = loss_sum.item() / max(1, steps_per_epoch)  # one sync per epoch
        result.train_seconds += time.perf_counter() - t0
        result.train_images += steps_per_epoch * batch
        if not math.isfinite(mean_loss):
            raise FloatingPointError(f"non-finite training loss ({mean_loss}) in epoch {epoch + 1}")
        t0 = time.perf_counter()
        acc, top5 = eval_split(inference, data.val)
        result.history.append(acc)
        result.history_top5.append(top5)
        if ema is not None:
            result.accuracy_raw = eval_split(model, data.val)[0]
            result.history_raw.append(result.accuracy_raw)
        result.eval_seconds += time.perf_counter() - t0
        result.accuracy, result.top5, result.epochs, result.steps, result.lr = (
            acc,
            top5,
            epoch + 1,
            step,
            lr_at(step - 1),
        )
        result.seconds = earlier + time.perf_counter() - start
        if checkpoint is not None:
            ckpt.save(checkpoint, {
                "arch": arch.to_dict(), "num_classes": data.num_classes, "recipe": recipe.to_dict(),
                "model": model.state_dict(), "optimizer": opt.state_dict(),
                "ema": ema.state_dict() if ema is not None else None,
                "result": {k: v for k, v in asdict(result).items() if k in RESUMED_FIELDS},
                "rng": ckpt.rng_state(gen),
            })  # fmt: skip
        if progress is not None:
            raw = f", without EMA {result.accuracy_raw:.4f}" if ema is not None else ""
            progress(f"epoch {epoch + 1}/{recipe.epochs}: loss {mean_loss:.3f}, lr {result.lr:.4g}, "
                     f"val acc {acc:.4f} (top-5 {top5:.4f}){raw}")  # fmt: skip
        if report is not None:
            report(epoch, acc)
    result.seconds = earlier + time.perf_counter() - start
    return Trained(result, inference, model, lambda split: eval_split(inference, split))
