#!/usr/bin/env python
"""Question: how much does running k proxy trials at once on one GPU multiply throughput?

Each of k processes (what `nas search workers=k` does) trains EfficientNet-B0
on the CIFAR-10 subset with our trainer (bf16, channels_last, data on the
GPU); all start together. Aggregate images/s = all training images / wall
time from the common start to the last finish.

    python bench/gpu_workers.py [--workers 1 2 4 8] [--epochs 2] [--batch 256]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.multiprocessing as mp


def worker(rank: int, args: argparse.Namespace, barrier, results) -> None:  # type: ignore[no-untyped-def]
    from search_spaces import preset
    from training.data import load_data
    from training.recipe import Recipe
    from training.trainer import train_eval

    dev = torch.device(args.device)
    data = load_data({"name": "npz", "path": args.npz, "val_fraction": 0.2}, seed=rank).to(dev)
    train_eval(preset("efficientnet-b0"), data, Recipe(epochs=1, batch_size=args.batch), dev)  # warm-up
    torch.cuda.synchronize()
    barrier.wait()
    t0 = time.time()
    r = train_eval(preset("efficientnet-b0"), data, Recipe(epochs=args.epochs, batch_size=args.batch), dev, seed=rank)
    torch.cuda.synchronize()
    results.put((rank, t0, time.time(), r.train_images, r.images_per_second))


def run(k: int, args: argparse.Namespace) -> tuple[float, float]:
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(k), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(i, args, barrier, results)) for i in range(k)]
    for p in procs:
        p.start()
    out = [results.get() for _ in procs]
    for p in procs:
        p.join()
    start, end = min(o[1] for o in out), max(o[2] for o in out)
    images = sum(o[3] for o in out)
    return images / (end - start), sum(o[4] for o in out) / k


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--npz", default="../shared/data/cifar10-train-10k.npz")
    p.add_argument("--device", default="cuda")
    args = p.parse_args()
    print(f"device: {torch.cuda.get_device_name()}; torch {torch.__version__}; B0, 32px, batch {args.batch}, bf16")
    print(f"{'workers':>8}{'aggregate img/s':>18}{'per-process img/s':>20}{'vs 1 worker':>13}")
    base = None
    for k in args.workers:
        agg, per = run(k, args)
        base = base or agg
        print(f"{k:>8}{agg:>18.0f}{per:>20.0f}{agg / base:>12.2f}x", flush=True)


if __name__ == "__main__":
    main()
