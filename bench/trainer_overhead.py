#!/usr/bin/env python
"""Question: what does our proxy trainer cost beyond pure model time?

Same data (on device), same batch size, same number of training images:
(a) a plain loop over torchvision's efficientnet_b0 (random batches, no
augmentation, no bookkeeping) followed by the same number of plain
evaluation passes over the validation images (model.eval, no_grad, same
evaluation batch size), and (b) `training.trainer.train_eval` on
`preset("efficientnet-b0")` (shuffle, on-device crop+flip, LR schedule,
per-epoch validation, loss checks). Reports images/s of each and the
trainer's overhead = (b) / (a) - 1, for the training loop alone and end to
end. Goal: < 10%. Both sides are warmed up with the same shapes first.

    .venv/bin/python bench/trainer_overhead.py [--device cuda] [--npz PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from dataclasses import replace

import torch
import torch.nn.functional as F
import torchvision

from search_spaces import preset
from training.data import load_data
from training.recipe import Recipe
from training.trainer import train_eval


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def plain_loop(data, steps: int, batch: int, device: torch.device) -> tuple[float, torch.nn.Module]:
    """Seconds for `steps` SGD steps of torchvision's B0 on random batches of the same tensors, and the model."""
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
    return time.perf_counter() - t0, model


@torch.no_grad()
def plain_eval(model: torch.nn.Module, data, passes: int, batch: int, device: torch.device) -> float:
    """Seconds for `passes` evaluation passes of `model` over the validation tensors."""
    cuda = device.type == "cuda"
    model.eval()
    x_all, y_all = data.val.x, data.val.y
    sync(device)
    t0 = time.perf_counter()
    for _ in range(passes):
        hits = torch.zeros((), dtype=torch.long, device=device)
        for i in range(0, len(y_all), batch):
            x = x_all[i : i + batch].float().div_(255)
            if cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                hits += (model(x).argmax(1) == y_all[i : i + batch]).sum()
        hits.item()
    sync(device)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--npz", default="../shared/data/cifar10-train-10k.npz")
    p.add_argument("--limit", type=int, default=None, help="images to use (default: 2000 on CPU, all on CUDA)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch", type=int, default=None, help="default 32 on CPU, 256 on CUDA")
    p.add_argument("--eval-batch", type=int, default=500)
    p.add_argument("--repeats", type=int, default=4, help="measured runs of each side, order alternating")
    a = p.parse_args()
    device = torch.device(a.device)
    cuda = device.type == "cuda"
    batch = a.batch or (256 if cuda else 32)
    limit = a.limit or (None if cuda else 2000)
    data = load_data({"name": "npz", "path": a.npz, "limit": limit, "val_fraction": 0.2}, seed=0).to(device)
    recipe = Recipe(epochs=a.epochs, batch_size=batch, eval_batch_size=a.eval_batch)
    # warm-up of both sides with the measured shapes (cuDNN, allocator, lazy init), then the measured runs
    train_eval(preset("efficientnet-b0"), data, replace(recipe, epochs=1), device)
    _, warm = plain_loop(data, 3, batch, device)
    plain_eval(warm, data, 1, a.eval_batch, device)
    sync(device)
    rows = []
    for rep in range(a.repeats):  # alternate the order: slow drifts of a shared machine hit both sides
        sides = ("ours", "plain") if rep % 2 == 0 else ("plain", "ours")
        row: dict[str, float] = {}
        for side in sides:
            if side == "ours":
                t0 = time.perf_counter()
                r = train_eval(preset("efficientnet-b0"), data, recipe, device)
                sync(device)
                row.update(ours=time.perf_counter() - t0, ours_train=r.train_seconds, ours_val=r.eval_seconds)
            else:
                steps = a.epochs * (int(len(data.train)) // batch)
                row["plain_train"], model = plain_loop(data, steps, batch, device)
                row["plain_val"] = plain_eval(model, data, a.epochs, a.eval_batch, device)
        row["order"] = rep % 2
        rows.append(row)
    steps = r.train_images // batch
    name = torch.cuda.get_device_name() if cuda else f"{platform.processor() or platform.machine()} CPU"
    print(f"device: {name}; torch {torch.__version__}; threads {torch.get_num_threads()}; "
          f"1-min load at end {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"data: {len(data.train)} train / {len(data.val)} val at {data.resolution}px; batch {batch}, "
          f"eval batch {a.eval_batch}; {a.epochs} epochs = {steps} steps ({r.train_images} images) and "
          f"{a.epochs} validation passes per run; {a.repeats} repeats, order alternating")  # fmt: skip
    print("seconds per run; overhead = ours / plain - 1 (end to end: the whole train_eval call / plain train + val)")
    print("| repeat | first | plain train | plain val | ours train | ours val | ours end to end | "
          "loop overhead | end-to-end overhead |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    loop, e2e = [], []
    for i, w in enumerate(rows):
        loop.append(w["ours_train"] / w["plain_train"] - 1)
        e2e.append(w["ours"] / (w["plain_train"] + w["plain_val"]) - 1)
        first = "ours" if w["order"] == 0 else "plain"
        print(f"| {i} | {first} | {w['plain_train']:.2f} | {w['plain_val']:.2f} | {w['ours_train']:.2f} | "
              f"{w['ours_val']:.2f} | {w['ours']:.2f} | {loop[-1]:+.1%} | {e2e[-1]:+.1%} |")  # fmt: skip
    best = {k: min(w[k] for w in rows) for k in ("plain_train", "ours_train", "ours")}
    plain_e2e = min(w["plain_train"] + w["plain_val"] for w in rows)
    loop_best, e2e_best = best["ours_train"] / best["plain_train"] - 1, best["ours"] / plain_e2e - 1
    print(f"best of {a.repeats} (least-disturbed run of each side): training loop {loop_best:+.1%}, "
          f"end to end {e2e_best:+.1%}")  # fmt: skip
    print(f"median overhead: training loop {statistics.median(loop):+.1%}, end to end {statistics.median(e2e):+.1%}; "
          f"images/s (median): plain {r.train_images / statistics.median(w['plain_train'] for w in rows):,.0f}, "
          f"ours {r.train_images / statistics.median(w['ours_train'] for w in rows):,.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
