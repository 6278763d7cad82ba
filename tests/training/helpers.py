"""Shared by the training tests: the EfficientNet recipe settings, a tiny Arch, a tiny in-memory data set."""

from __future__ import annotations

import torch

from search_spaces import from_block_strings
from training.data import Data, Split

EFFNET = {
    "optimizer": "rmsprop_tf", "lr": 0.256, "lr_batch": 4096, "weight_decay": 1e-5, "schedule": "exponential",
    "warmup_epochs": 5, "ema_decay": 0.9999, "drop_path": 0.2, "bn_momentum": None, "augment": "autoaugment",
    "crop": "auto", "image_size": "auto",
}  # fmt: skip


def _data(n: int = 64, res: int = 16, classes: int = 4) -> Data:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, res, res), dtype=torch.uint8, generator=g)
    y = torch.arange(n) % classes
    split = Split(x, y)
    return Data("npz", split, Split(x[:16], y[:16]), classes, (0.5,) * 3, (0.25,) * 3, res, True, 2)


def _tiny_arch():
    return from_block_strings(["r1_k3_s11_e1_i8_o8_se0.25", "r2_k3_s22_e3_i8_o16_se0.25"], stem=8, head=32, name="tiny")
