"""Proxy training: train an `Arch` briefly on on-device data, report validation accuracy.

One code path for CPU and CUDA; on CUDA it adds bf16 autocast and
channels_last. The per-epoch validation accuracy goes to `report` (which
may raise `optuna.TrialPruned`); a non-finite loss raises FloatingPointError.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas.data import Data, DeviceLoader, Split
from search_spaces import Arch, build

OPTIMIZERS = ("sgd", "rmsprop")


@dataclass(frozen=True)
class Recipe:
    epochs: int = 3
    batch_size: int = 32
    optimizer: str = "sgd"
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 5e-5
    warmup_epochs: float = 0.5
    label_smoothing: float = 0.1
    eval_batch_size: int = 500
    bn_momentum: float | None = 0.1
    zero_init_classifier: bool = True
    """Overrides the Arch's BatchNorm momentum (PyTorch convention) for this recipe: the
    TF value 0.01 leaves running statistics near their init after a few hundred steps,
    so short proxy runs evaluate garbage. None keeps the Arch's."""

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"train.optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError("train.epochs, train.batch_size and train.eval_batch_size must be >= 1")
        if not self.lr > 0 or self.weight_decay < 0 or self.warmup_epochs < 0:
            raise ValueError("train.lr must be > 0, train.weight_decay and train.warmup_epochs >= 0")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"train.label_smoothing must be in [0, 1), got {self.label_smoothing}")

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> Recipe:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown train keys {unknown}; expected some of {sorted(known)}")
        return cls(**dict(d))


@dataclass
class TrainResult:
    accuracy: float
    history: list[float] = field(default_factory=list)
    epochs: int = 0
    seconds: float = 0.0
    train_seconds: float = 0.0
    train_images: int = 0
    device: str = "cpu"

    @property
    def images_per_second(self) -> float:
        return self.train_images / self.train_seconds if self.train_seconds > 0 else 0.0


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={name} but no CUDA device is available")
    if name != "cpu" and not name.startswith("cuda"):
        raise ValueError(f"device must be auto, cpu or cuda[:N], got {name!r}")
    return torch.device(name)


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)  # no weight decay on BN and biases
    groups = [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.momentum > 0)
    return torch.optim.RMSprop(groups, lr=recipe.lr, alpha=0.9, momentum=recipe.momentum, eps=1e-3)


def warmup_cosine(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """Learning-rate factor per step: linear warm-up, then cosine to zero."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


@torch.no_grad()
def evaluate(model: nn.Module, data: Data, split: Split, batch_size: int, device: torch.device) -> float:
    model.eval()
    cuda = device.type == "cuda"
    correct = torch.zeros((), dtype=torch.long, device=split.x.device)
    for x, y in DeviceLoader(data, split, batch_size, train=False, channels_last=cuda):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            correct += (model(x).argmax(1) == y).sum()
    return correct.item() / max(1, len(split))


def train_eval(
    arch: Arch,
    data: Data,
    recipe: Recipe,
    device: torch.device,
    report: Callable[[int, float], None] | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    keep: dict[str, Any] | None = None,
) -> TrainResult:
    """Train `arch` on data.train for recipe.epochs; validation accuracy after each epoch.

    `data` must already be on `device` (see Data.to). Pass `keep={}` to get the
    trained model back as keep["model"].
    """
    start = time.perf_counter()
    torch.manual_seed(seed)
    cuda = device.type == "cuda"
    if recipe.bn_momentum is not None:
        arch = arch.replace(bn_momentum=recipe.bn_momentum)
    model = build(arch, num_classes=data.num_classes).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    if recipe.zero_init_classifier:  # timm's init gives logits of std ~6 with 10 classes
        nn.init.zeros_(model.classifier.weight)
    if keep is not None:
        keep["model"] = model
    gen = torch.Generator(device=data.train.x.device)
    gen.manual_seed(seed)
    loader = DeviceLoader(data, data.train, recipe.batch_size, train=True, channels_last=cuda, generator=gen)
    steps_per_epoch = len(loader)
    opt = make_optimizer(model, recipe)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, warmup_cosine(recipe.epochs * steps_per_epoch, int(recipe.warmup_epochs * steps_per_epoch))
    )
    result = TrainResult(accuracy=0.0, device=str(device))
    for epoch in range(recipe.epochs):
        model.train()
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        for x, y in loader:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                loss = F.cross_entropy(model(x), y, label_smoothing=recipe.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.detach().float()
        mean_loss = loss_sum.item() / max(1, steps_per_epoch)  # one sync per epoch
        result.train_seconds += time.perf_counter() - t0
        result.train_images += steps_per_epoch * recipe.batch_size
        if not math.isfinite(mean_loss):
            raise FloatingPointError(f"non-finite training loss ({mean_loss}) in epoch {epoch + 1}")
        acc = evaluate(model, data, data.val, recipe.eval_batch_size, device)
        result.history.append(acc)
        result.accuracy, result.epochs = acc, epoch + 1
        if progress is not None:
            progress(f"epoch {epoch + 1}/{recipe.epochs}: loss {mean_loss:.3f}, val acc {acc:.4f}")
        if report is not None:
            report(epoch, acc)
    result.seconds = time.perf_counter() - start
    return result
