#!/usr/bin/env python
"""Question: what does our proxy trainer cost beyond pure model time?

Same data (on device), same batch size, same number of training images:
(a) a plain loop over torchvision's efficientnet_b0 (random batches, no
augmentation, no validation, no bookkeeping) and (b) `nas.train.train_eval`
on `preset("efficientnet-b0")` (shuffle, on-device crop+flip, LR schedule,
per-epoch validation, loss checks). Reports images/s of each and the
trainer's overhead = (b) wall time / (a) wall time - 1. Goal: < 10%.

    .venv/bin/python bench/trainer_overhead.py [--device cuda] [--npz PATH]
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
import torch.nn.functional as F
import torchvision

from nas.data import load_data
from nas.train import Recipe, train_eval
from search_spaces import preset


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def plain_loop(data, steps: int, batch: int, device: torch.device) -> float:
    """Seconds for `steps` SGD steps of torchvision's B0 on random batches of the same tensors."""
    cuda = device.type == "cuda"
    model = torchvision.models.efficientnet_b0(num_classes=data.num_classes).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x_all, y_all = data.train.x, data.train.y
    model.train()

    def step() -> None:
        idx = torch.randint(0, len(y_all), (batch,), device=x_all.device)
        x = x_all[idx].float().div_(255)
        if cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = F.cross_entropy(model(x), y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--npz", default="../shared/data/cifar10-train-10k.npz")
    p.add_argument("--limit", type=int, default=None, help="images to use (default: 2000 on CPU, all on CUDA)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch", type=int, default=None, help="default 32 on CPU, 256 on CUDA")
    a = p.parse_args()
    device = torch.device(a.device)
    cuda = device.type == "cuda"
    batch = a.batch or (256 if cuda else 32)
    limit = a.limit or (None if cuda else 2000)
    data = load_data({"name": "npz", "path": a.npz, "limit": limit, "val_fraction": 0.2}, seed=0).to(device)
    recipe = Recipe(epochs=a.epochs, batch_size=batch, eval_batch_size=1000)
    # warm-up run of our trainer (cuDNN autotune, allocator), then the measured one
    train_eval(preset("efficientnet-b0"), data, Recipe(epochs=1, batch_size=batch), device)
    sync(device)
    t0 = time.perf_counter()
    r = train_eval(preset("efficientnet-b0"), data, recipe, device)
    sync(device)
    ours = time.perf_counter() - t0
    steps = r.train_images // batch
    plain = plain_loop(data, steps, batch, device)
    name = torch.cuda.get_device_name() if cuda else f"{platform.processor() or platform.machine()} CPU"
    print(f"device: {name}; torch {torch.__version__}; threads {torch.get_num_threads()}")
    print(f"data: {len(data.train)} train / {len(data.val)} val at {data.resolution}px; batch {batch}; "
          f"{a.epochs} epochs = {steps} steps")  # fmt: skip
    print(f"{'what':<44}{'seconds':>10}{'img/s':>10}")
    print(f"{'plain torchvision B0 loop (model only)':<44}{plain:>10.2f}{r.train_images / plain:>10.0f}")
    print(f"{'nas trainer, training loop only':<44}{r.train_seconds:>10.2f}{r.images_per_second:>10.0f}")
    print(f"{'nas trainer, end to end (incl. validation)':<44}{ours:>10.2f}{r.train_images / ours:>10.0f}")
    print(f"overhead vs model time: loop {r.train_seconds / plain - 1:+.1%}, end to end {ours / plain - 1:+.1%}")


if __name__ == "__main__":
    main()
