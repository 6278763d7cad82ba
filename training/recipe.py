"""A training recipe as typed data: `Recipe.from_mapping(cfg["train"])`.

conf/train/proxy.yaml (search trials) and conf/train/efficientnet.yaml (the
EfficientNet paper's ImageNet recipe) are two settings of this one dataclass;
every field can be overridden on the command line (`train.<field>=...`).
The defaults are the proxy recipe, so old configs keep their meaning.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from effnas.config import one_of, typed
from effnas.errors import UserError

OPTIMIZERS = ("sgd", "rmsprop", "rmsprop_tf")
SCHEDULES = ("cosine", "exponential")
AUGMENTS = ("none", "autoaugment", "randaugment")
AUTOAUGMENT_POLICIES = ("imagenet", "cifar10", "svhn")
CROPS = ("auto", "pad", "rrc")
IMAGE_SIZES = ("auto", "data", "arch")
TF_CROP_PADDING = 32
"""TF official eval: centre crop image_size / (image_size + 32) of the shorter side, resize."""


@dataclass(frozen=True)
class Recipe:
    epochs: int = 3
    batch_size: int = 32
    optimizer: str = "sgd"
    """sgd (Nesterov) | rmsprop (torch.optim.RMSprop) | rmsprop_tf (TensorFlow's, see nas/optim.py)."""
    lr: float = 0.02
    lr_batch: int | None = None
    """If set, `lr` is the rate at this batch size, scaled linearly to the batch trained with."""
    momentum: float = 0.9
    rmsprop_decay: float = 0.9
    rmsprop_eps: float = 1e-3
    weight_decay: float = 5e-5
    schedule: str = "cosine"
    """cosine: linear warm-up then cosine to zero. exponential: TF's warm-up then lr * rate^(step/decay_steps)."""
    lr_decay_rate: float = 0.97
    lr_decay_epochs: float = 2.4
    staircase: bool = True
    warmup_epochs: float = 0.5
    label_smoothing: float = 0.1
    eval_batch_size: int = 500
    bn_momentum: float | None = 0.1
    """Overrides the Arch's BatchNorm momentum (PyTorch convention) for this recipe: the
    TF value 0.01 leaves running statistics near their init after a few hundred steps,
    so short proxy runs evaluate garbage. None keeps the Arch's."""
    zero_init_classifier: bool = True
    dropout: float | None = None
    """Dropout before the classifier; None keeps the Arch's (EfficientNet presets: B0 0.2 .. B7 0.5)."""
    drop_path: float | None = None
    """Stochastic depth at the last block (linear over blocks, search_spaces/plan.py); None keeps the Arch's."""
    ema_decay: float = 0.0
    """Exponential moving average of the weights (0 = off); the EMA weights are evaluated and saved."""
    ema_warmup: bool = True
    """TF's num_updates rule: decay_t = min(ema_decay, (1 + t) / (10 + t)) after t optimizer steps."""
    augment: str = "none"
    autoaugment_policy: str = "imagenet"
    randaugment_n: int = 2
    randaugment_m: int = 9
    """RandAugment magnitude on torchvision's 0..30 scale (31 bins); TF's 0..10 scale is a third of it."""
    augment_chunk: int = 1
    """Images per policy draw (1: each image its own sub-policy, as in TF; larger is cheaper on a GPU)."""
    crop: str = "pad"
    """pad: the data's pad-and-crop (nas/data.py); rrc: random resized crop (ImageNet); auto: rrc for imagefolder."""
    rrc_min_area: float = 0.08
    image_size: int | str = "data"
    """Training/eval resolution: data (the data's), arch (the Arch's, e.g. 224 for B0), auto (arch if rrc), or N."""
    eval_crop: float | None = None
    """Centre-crop fraction at evaluation; None: image_size / (image_size + 32) with rrc (TF), else 1."""
    max_memory_gb: float | None = None
    """Refuse to train a network whose estimated training memory exceeds this (training/guard.py);
    None: 90% of the device's memory (the GPU's, or the machine's RAM)."""
    stride_reduction: int = 0
    """Proxy-only: the first N stride-2 layers (the stem first, then the first stride-2 blocks) run at
    stride 1. The architecture, its parameters and its cost at reward.resolution are unchanged; 2 gives
    32-px images the feature maps that 128-px images have at the network's own stride (32 -> 8)."""

    def __post_init__(self) -> None:
        one_of("train.optimizer", self.optimizer, OPTIMIZERS)
        one_of("train.schedule", self.schedule, SCHEDULES)
        one_of("train.augment", self.augment, AUGMENTS, "augmentation policy")
        one_of("train.autoaugment_policy", self.autoaugment_policy, AUTOAUGMENT_POLICIES, "AutoAugment policy")
        one_of("train.crop", self.crop, CROPS)
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1:
            raise UserError("train.epochs, train.batch_size and train.eval_batch_size must be >= 1")
        if not self.lr > 0 or self.weight_decay < 0 or self.warmup_epochs < 0:
            raise UserError("train.lr must be > 0, train.weight_decay and train.warmup_epochs >= 0")
        if self.lr_batch is not None and self.lr_batch < 1:
            raise UserError(f"train.lr_batch must be >= 1 or null, got {self.lr_batch}")
        if not 0 <= self.label_smoothing < 1:
            raise UserError(f"train.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        _in("momentum", self.momentum, 0.0, 1.0)
        _in("rmsprop_decay", self.rmsprop_decay, 0.0, 1.0)
        if not self.rmsprop_eps > 0:
            raise UserError(f"train.rmsprop_eps (epsilon) must be > 0, got {self.rmsprop_eps}")
        if not 0 < self.lr_decay_rate <= 1:
            raise UserError(f"train.lr_decay_rate must be in (0, 1], got {self.lr_decay_rate}")
        if not self.lr_decay_epochs > 0:
            raise UserError(f"train.lr_decay_epochs must be > 0, got {self.lr_decay_epochs}")
        _in("ema_decay", self.ema_decay, 0.0, 1.0)
        for name in ("dropout", "drop_path"):
            v = getattr(self, name)
            if v is not None:
                _in(name, v, 0.0, 1.0)
        if self.bn_momentum is not None and not 0 < self.bn_momentum < 1:
            raise UserError(f"train.bn_momentum must be in (0, 1) or null, got {self.bn_momentum}")
        if self.randaugment_n < 1 or not 0 <= self.randaugment_m <= 30:
            raise UserError("train.randaugment_n must be >= 1 and train.randaugment_m in [0, 30]")
        if self.augment_chunk < 1:
            raise UserError(f"train.augment_chunk must be >= 1, got {self.augment_chunk}")
        if not 0 < self.rrc_min_area <= 1:
            raise UserError(f"train.rrc_min_area must be in (0, 1], got {self.rrc_min_area}")
        if isinstance(self.image_size, str):
            one_of("train.image_size", self.image_size, IMAGE_SIZES)
        elif self.image_size < 8:
            raise UserError(f"train.image_size must be >= 8 pixels or one of {IMAGE_SIZES}, got {self.image_size}")
        if self.max_memory_gb is not None and not self.max_memory_gb > 0:
            raise UserError(f"train.max_memory_gb must be > 0 or null, got {self.max_memory_gb}")
        if not 0 <= self.stride_reduction <= 3:
            raise UserError(f"train.stride_reduction must be 0..3, got {self.stride_reduction}")
        if self.eval_crop is not None and not 0 < self.eval_crop <= 1:
            raise UserError(f"train.eval_crop must be in (0, 1] or null, got {self.eval_crop}")

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> Recipe:
        return typed(cls, d, "train")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    # ---- derived ----------------------------------------------------------
    def crop_mode(self, data_name: str) -> str:
        if self.crop == "auto":
            return "rrc" if data_name == "imagefolder" else "pad"
        return self.crop

    def train_size(self, data_name: str, data_resolution: int, arch_resolution: int) -> int:
        size = self.image_size
        if size == "auto":
            size = "arch" if self.crop_mode(data_name) == "rrc" else "data"
        if size == "data":
            return data_resolution
        if size == "arch":
            return arch_resolution
        return int(size)

    def eval_crop_fraction(self, data_name: str, size: int) -> float:
        if self.eval_crop is not None:
            return self.eval_crop
        return size / (size + TF_CROP_PADDING) if self.crop_mode(data_name) == "rrc" else 1.0

    def peak_lr(self, batch_size: int) -> float:
        """`lr`, scaled linearly from `lr_batch` to the batch size trained with (TF: 0.016 per 256)."""
        return self.lr * batch_size / self.lr_batch if self.lr_batch else self.lr


def _in(name: str, value: float, lo: float, hi: float) -> None:
    if not (lo <= value < hi) or math.isnan(value):
        raise UserError(f"train.{name} must be in [{lo:g}, {hi:g}), got {value}")
