#!/usr/bin/env python
"""Does our builder train EfficientNet-B0 as fast as torchvision's implementation?

Times one training step (forward + cross-entropy backward + SGD step) of
`build(preset("efficientnet-b0"), num_classes=10)` and of
`torchvision.models.efficientnet_b0(num_classes=10)` in the same process, steps of the
two models interleaved (order alternating) so machine load drift hits both alike.
Reports the median over `--steps` timed steps (fewer if `--budget` seconds run out) after
`--warmup` untimed ones, as images/s.
CPU: fp32, (batch 32, 32x32) and (batch 8, 224x224). `--device cuda`: bf16 autocast,
channels_last, (batch 256, 224x224) and (batch 1024, 32x32).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torchvision
from _machine import machine_line  # bench/ is on sys.path when a script runs
from torch import nn

from search_spaces import build, preset

CONFIGS = {"cpu": [(32, 32), (8, 224)], "cuda": [(256, 224), (1024, 32)]}  # (batch, resolution)


def make_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: str) -> Callable[[], float]:
    """A closure running one training step and returning its wall time in seconds."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    cuda = device == "cuda"

    def step() -> float:
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast(device, dtype=torch.bfloat16, enabled=cuda):
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    return step


def bench_config(batch: int, res: int, device: str, warmup: int, steps: int, budget: float) -> dict[str, float]:
    """Median images/s of ours and torchvision at one batch size and resolution.

    Stops timing early (after at least 5 steps each) once `budget` seconds have gone by.
    `pair` (pair ratio) is the median over steps of torchvision's step time / ours in the same step pair.
    """
    torch.manual_seed(0)
    fmt = torch.channels_last if device == "cuda" else torch.contiguous_format
    models = {
        "ours": build(preset("efficientnet-b0"), num_classes=10),
        "torchvision": torchvision.models.efficientnet_b0(num_classes=10),
    }
    x = torch.randn(batch, 3, res, res, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,), device=device)
    fns = {k: make_step(m.to(device, memory_format=fmt).train(), x, y, device) for k, m in models.items()}
    times: dict[str, list[float]] = {k: [] for k in fns}
    order = list(fns)
    for _ in range(warmup):
        for k in order:
            fns[k]()
    deadline = time.perf_counter() + budget
    for i in range(steps):
        for k in order:
            times[k].append(fns[k]())
        order.reverse()
        if i + 1 >= 5 and time.perf_counter() > deadline:
            break
    med = {k: batch / statistics.median(v) for k, v in times.items()}
    pair = statistics.median(t / o for o, t in zip(times["ours"], times["torchvision"]))
    return {**med, "pair": pair, "steps": len(times["ours"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps per model and config (default 3)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per model and config (cpu 30, cuda 20)")
    ap.add_argument("--budget", type=float, default=60.0, help="seconds of timed steps per config (default 60)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = args.steps or (30 if args.device == "cpu" else 20)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda, but torch.cuda.is_available() is False")
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True

    print(machine_line(args.device, torchvision=torchvision.__version__))
    n_ours = sum(p.numel() for p in build(preset("efficientnet-b0"), num_classes=10).parameters())
    n_tv = sum(p.numel() for p in torchvision.models.efficientnet_b0(num_classes=10).parameters())
    prec = "bf16 autocast, channels_last" if args.device == "cuda" else "fp32"
    print(f"params: ours {n_ours:,}, torchvision {n_tv:,}; {prec}; warmup {args.warmup}, median of up to {steps} steps")
    print()
    print("| device | batch | resolution | steps | ours img/s | torchvision img/s | ours / torchvision | pair ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for batch, res in CONFIGS[args.device]:
        r = bench_config(batch, res, args.device, args.warmup, steps, args.budget)
        print(
            f"| {args.device} | {batch} | {res}x{res} | {r['steps']:.0f} | {r['ours']:,.1f} | {r['torchvision']:,.1f} "
            f"| {r['ours'] / r['torchvision']:.3f} | {r['pair']:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
