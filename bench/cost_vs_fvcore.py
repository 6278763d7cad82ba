#!/usr/bin/env python
"""How much faster is the analytic `cost(arch)` than counting with fvcore, and do they agree?

Samples `--n` architectures from the MnasNet search space (random.Random(seed)) plus
EfficientNet-B0, and per architecture times (a) `cost(arch, resolution, classes)` as the
mean of `--repeats` back-to-back calls, (b) building the module, (c) fvcore's
`FlopCountAnalysis(...).by_operator()` (conv + linear), the count only. Every architecture's
MACs must be identical between the two (params are checked against the built module too).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import warnings
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import torch
from _machine import machine_line  # bench/ is on sys.path when a script runs

from search_spaces import Arch, build, cost, load_space, preset

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    name: str
    macs: int
    cost_s: float
    build_s: float
    fvcore_s: float
    macs_ok: bool
    params_ok: bool


def measure(name: str, arch: Arch, resolution: int, classes: int, repeats: int) -> Row:
    from fvcore.nn import FlopCountAnalysis

    c = cost(arch, resolution, classes)  # warm-up call
    t0 = time.perf_counter()
    for _ in range(repeats):
        cost(arch, resolution, classes)
    cost_s = (time.perf_counter() - t0) / repeats

    t0 = time.perf_counter()
    model = build(arch, classes).eval()
    build_s = time.perf_counter() - t0

    x = torch.randn(1, 3, resolution, resolution)
    t0 = time.perf_counter()
    fa = FlopCountAnalysis(model, x)
    fa.unsupported_ops_warnings(False)
    fa.uncalled_modules_warnings(False)
    ops = fa.by_operator()
    fvcore_s = time.perf_counter() - t0

    fv_macs = ops.get("conv", 0) + ops.get("linear", 0)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return Row(name, c.macs, cost_s, build_s, fvcore_s, fv_macs == c.macs, n_params == c.params)


def summary(label: str, rows: list[Row]) -> str:
    med = statistics.median
    c, b, f = med(r.cost_s for r in rows), med(r.build_s for r in rows), med(r.fvcore_s for r in rows)
    lo, hi = min(r.macs for r in rows) / 1e6, max(r.macs for r in rows) / 1e6
    e2e = med((r.build_s + r.fvcore_s) / r.cost_s for r in rows)
    bad_m = sum(not r.macs_ok for r in rows)
    bad_p = sum(not r.params_ok for r in rows)
    return (
        f"| {label} | {len(rows)} | {lo:.0f}-{hi:.0f} | {c * 1e6:.1f} | {b * 1e3:.1f} | {f * 1e3:.1f} "
        f"| {f / c:,.0f}x | {e2e:,.0f}x | {bad_m} | {bad_p} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100, help="number of sampled architectures (default 100)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--space", default=str(REPO / "effnas/conf/space/mnasnet.yaml"))
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=100, help="cost() calls timed per architecture")
    ap.add_argument("--verbose", action="store_true", help="print one line per architecture")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)  # fvcore's torch.jit.script deprecation
    torch.manual_seed(0)

    space = load_space(args.space)
    rng = random.Random(args.seed)
    archs = [(f"sample{i}", space.to_arch(space.random(rng))) for i in range(args.n)]
    b0 = preset("efficientnet-b0")

    print(machine_line())
    space_name = Path(args.space).resolve()
    space_name = space_name.relative_to(REPO) if space_name.is_relative_to(REPO) else space_name
    print(f"space {space_name}, seed {args.seed}, resolution {args.resolution}, {args.classes} classes, ", end="")
    print(f"fvcore {version('fvcore')}")
    t_start = time.perf_counter()
    rows = []
    for name, arch in archs:
        rows.append(measure(name, arch, args.resolution, args.classes, args.repeats))
        if args.verbose:
            r = rows[-1]
            print(f"{name:>10} {r.macs:>14,} cost {r.cost_s * 1e6:8.1f} us  build {r.build_s * 1e3:7.1f} ms  "
                  f"fvcore {r.fvcore_s * 1e3:8.1f} ms  macs_ok={r.macs_ok} params_ok={r.params_ok}")  # fmt: skip
    b0_rows = [measure("efficientnet-b0", b0, args.resolution, args.classes, args.repeats) for _ in range(5)]
    elapsed = time.perf_counter() - t_start

    print()
    print("medians per architecture; ratio = median fvcore / median cost(); build+fvcore = median per-arch ratio")
    print(
        "| archs | n | MMACs range | cost() us | build ms | fvcore ms | ratio | build+fvcore ratio "
        "| MAC mismatches | param mismatches |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(summary(f"mnasnet space, Random({args.seed})", rows))
    print(summary("efficientnet-b0, measured 5 times", b0_rows))
    print(f"\ntotal wall time {elapsed:.1f} s")
    bad = sum(not r.macs_ok for r in [*rows, *b0_rows])
    if bad:
        raise SystemExit(f"{bad} architectures where cost().macs != fvcore conv+linear")


if __name__ == "__main__":
    main()
