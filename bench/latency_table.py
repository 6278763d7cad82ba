#!/usr/bin/env python
"""Question: how well does a latency table of this machine predict whole networks of the default space
(goal on the 2-core CPU, torch backend, batch 1: >= 90% of 100 sampled architectures within +-10% of
measured, the B0 base within +-5%), how long does the table take to build (goal < 15 min), and what does a
lookup cost beside the MACs count it replaces (goal <= 1 ms per architecture)?

For each timing method: `nas latency build-table` (timed), then `nas latency validate n=100` (the same
100 architectures for every method: seed 0, the base first; 3 passes over them, a model's number the median
of its passes; `passes_within_10`: the share of models whose every pass lies within +-10% of that median,
the measurement's own noise), then the lookup cost of `predict` against
`cost()` (the MACs the default reward counts) over 1,000 random architectures, in the same process.

    .venv/bin/python bench/latency_table.py [--methods in-network isolated] [--n 100] [--out DIR]
                                            [--device cpu] [--batch 1] [key=value ...]   (more build-table keys)
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import pandas as pd
from _machine import machine_line  # bench/ is on sys.path when a script runs

from effnas.config import typed
from nas.latency import ValidateConfig, build_table, load_space_option, validate
from nas.latency_timer import TableConfig
from search_spaces import cost
from search_spaces.latency import read_table


def lookup_cost(table_path: Path, n: int = 1000) -> tuple[float, float]:
    """(ms per `predict`, ms per `cost()`) over the same `n` random architectures of the table's space."""
    table = read_table(table_path)
    space = load_space_option(table.header.get("space_source", table.header["space"]))
    rng = random.Random(1)
    archs = [space.to_arch(space.random(rng)) for _ in range(n)]
    t0 = time.perf_counter()
    for a in archs:
        table.predict(a)
    t1 = time.perf_counter()
    for a in archs:
        cost(a, 224, 1000)
    t2 = time.perf_counter()
    return (t1 - t0) / n * 1e3, (t2 - t1) / n * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--methods", nargs="+", default=["in-network", "isolated"])
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--out", default="bench/data/latency")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("keys", nargs="*", help="more build-table keys (key=value)")
    args = p.parse_args()
    print(machine_line(args.device))
    extra = dict(k.split("=", 1) for k in args.keys)
    rows = []
    for method in args.methods:
        out = Path(args.out) / f"mnasnet-{args.device.replace(':', '')}-b{args.batch}-{method}.json"
        cfg = typed(TableConfig, {"space": "mnasnet", "out": str(out), "method": method, "device": args.device,
                                  "batch": args.batch, **extra}, "")  # fmt: skip
        t0 = time.perf_counter()
        build_table(cfg)
        built = time.perf_counter() - t0
        df = validate(ValidateConfig(table=str(out), n=args.n, out=str(out.with_suffix(".validation.csv"))))
        rel = (df["table_sum_ms"] / df["measured_ms"] - 1).abs()
        rounds = df[[c for c in df.columns if c.startswith("round") and c.endswith("_ms")]].to_numpy()
        noise = (abs(rounds / df["measured_ms"].to_numpy()[:, None] - 1)).max(axis=1)
        base = df.iloc[0]
        lookup, macs = lookup_cost(out)
        rows.append({"method": method, "entries": len(read_table(out).entries), "build_min": built / 60,
                     "models": len(df), "passes_within_10": (noise <= 0.10).mean(),
                     "within_5": (rel <= 0.05).mean(), "within_10": (rel <= 0.10).mean(),
                     "rmse_ms": ((df["table_sum_ms"] - df["measured_ms"]) ** 2).mean() ** 0.5,
                     "median_measured_ms": df["measured_ms"].median(), "base_measured_ms": base["measured_ms"],
                     "base_error": base["table_sum_ms"] / base["measured_ms"] - 1, "lookup_ms": lookup,
                     "macs_cost_ms": macs, "lookup_vs_macs": lookup / macs})  # fmt: skip
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
