#!/usr/bin/env python
"""EfficientNet paper, Section 3.3, at proxy scale on CIFAR-10 (JPEG q75 copy).

Scale B0 by width only, depth only, resolution only, and compound (alpha=1.2,
beta=1.1, gamma=1.15, phi=1), each to about the compound member's MACs; train
each with the same proxy recipe on a stratified subset of
cifar10-train-10k.npz (validation carved from it), report top-1 on
cifar10-test-2k.npz. Writes results.csv and prints a Markdown table.

    .venv/bin/python experiments/repro_section33/run.py [--limit 4000] [--epochs 4]
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

from scaling import scale_compound
from search_spaces import Arch, cost, preset, scale
from training.data import load_data, resize_split
from training.recipe import Recipe
from training.trainer import train

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1].parent / "shared" / "data"


def matched(base: Arch, target: int, make: object, lo: float, hi: float) -> tuple[float, Arch]:
    """Bisect a single multiplier so that MACs (at the member's resolution) come closest to target."""
    best: tuple[float, float, Arch] | None = None
    for _ in range(40):
        mid = (lo + hi) / 2
        a = make(mid)  # type: ignore[operator]
        m = cost(a).macs
        if best is None or abs(m - target) < best[0]:
            best = (abs(m - target), mid, a)
        lo, hi = (mid, hi) if m < target else (lo, mid)
    assert best is not None
    return best[1], best[2]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, default=4000, help="stratified subset of the 10k train file")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--base-res", type=int, default=32, help="proxy resolution of B0")
    p.add_argument("--device", default="cpu")
    p.add_argument("--data", default=str(DATA), help="folder with cifar10-train-10k.npz and cifar10-test-2k.npz")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--out", default=str(HERE / "results.csv"))
    a = p.parse_args()

    b0 = preset("efficientnet-b0")
    comp = scale_compound(b0, 1.2, 1.1, 1.15, 1, name="compound (a1.2 b1.1 g1.15)")
    target = cost(comp).macs
    wf, width = matched(b0, target, lambda w: scale(b0, width=w, name="width only"), 1.0, 3.0)
    df_, depth = matched(b0, target, lambda d: scale(b0, depth=d, name="depth only"), 1.0, 4.0)
    rf, res = matched(b0, target, lambda r: scale(b0, resolution=float(r), name="resolution only"), 1.0, 2.5)
    device = torch.device(a.device)
    members = [(b0, "d=1 w=1 r=1"), (width, f"w={wf:.3f}"), (depth, f"d={df_:.3f}"), (res, f"r={rf:.3f}"),
               (comp, "d=1.2 w=1.1 r=1.15")]  # fmt: skip

    folder = Path(a.data)
    cfg = {"name": "npz", "path": str(folder / "cifar10-train-10k.npz"),
           "test_path": str(folder / "cifar10-test-2k.npz"),
           "limit": a.limit, "val_fraction": 0.2, "flip": True, "crop_padding": 4}  # fmt: skip
    data = load_data(cfg, seed=0)
    recipe = Recipe(epochs=a.epochs, batch_size=a.batch, lr=a.lr)
    rows = []
    dev_name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or platform.machine()
    machine = f"{dev_name}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    for arch, factors in members:
        px = max(8, round(a.base_res * arch.resolution / b0.resolution))
        d = replace(data, train=resize_split(data.train, px), val=resize_split(data.val, px),
                    test=resize_split(data.test, px), resolution=px).to(device)  # fmt: skip
        t0 = time.perf_counter()
        trained = train(arch, d, recipe, device, seed=0, progress=lambda m: print("   ", m, flush=True))
        r, test = trained.result, trained.evaluate(d.test)[0]
        c = cost(arch)
        rows.append({"scaling": arch.name or "B0", "factors": factors, "imagenet_res": arch.resolution,
                     "proxy_px": px, "params_M": c.params / 1e6, "macs_G": c.macs / 1e9,
                     "macs_ratio": c.macs / cost(b0).macs, "val_acc": r.accuracy, "test_acc": test,
                     "seconds": time.perf_counter() - t0})  # fmt: skip
        print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    df.to_csv(a.out, index=False)
    print(f"machine: {machine}; data: {len(data.train)} train / {len(data.val)} val / {len(data.test)} test; "
          f"recipe: proxy, {a.epochs} epochs, batch {a.batch}, lr {a.lr}")  # fmt: skip
    print(df.to_string(index=False, float_format=lambda x: f"{x:.4f}"))


if __name__ == "__main__":
    main()
