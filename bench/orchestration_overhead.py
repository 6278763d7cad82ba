#!/usr/bin/env python
"""Question: what does each executor cost per trial beyond the trial's own work?

Runs the real search (`nas.search.run_search`) with the local and the Ray
executor, one trial at a time, on (a) near-empty trials (8 images at 8px, one
epoch) and (b) a short real proxy training (digits, 200 images, 16px).
Two measures: the median gap between trials (end of one trial's own work to
the start of the next: tell, results files, ask, scheduling), and (wall time
of the study - sum of the trials' own seconds) / trials, which also spreads
the study's one-time setup (imports, data load, storage) over the trials.
Ray's cluster start is timed separately. Goals: < 0.05 s per trial local,
< 1 s per trial on Ray.

    .venv/bin/python bench/orchestration_overhead.py [--trials 20] [--executors local ray]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import pandas as pd

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

WORKLOADS = {
    "near-empty": ["data.limit=20", "data.resolution=8", "train.epochs=1", "train.batch_size=8"],
    "short proxy": ["data.limit=200", "data.resolution=16", "train.epochs=1"],
}


def measure(executor: str, overrides: list[str], trials: int) -> dict[str, float]:
    from nas.config import compose_search
    from nas.search import run_search

    cfg = compose_search("mobile400m", [f"trials={trials}", "verbose=0", "device=cpu", f"executor={executor}",
                                 "ray.max_concurrent=1", *overrides])  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        t0 = time.perf_counter()
        df = run_search(cfg, run)
        wall = time.perf_counter() - t0
    own = float(pd.to_numeric(df["seconds"]).sum())
    # gap between trials: from the end of trial i's own work to the start (ask) of trial i+1
    t = df.sort_values("number")
    start = pd.to_datetime(t["datetime_start"])
    end = start + pd.to_timedelta(pd.to_numeric(t["seconds"]), unit="s")
    gaps = (start.shift(-1) - end).dt.total_seconds().dropna()
    return {"wall_s": wall, "trial_s_sum": own, "median_gap_s": float(gaps.median()), "max_gap_s": float(gaps.max()),
            "overhead_per_trial_s": (wall - own) / len(df), "trials": len(df)}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--executors", nargs="+", default=["local", "ray"])
    a = p.parse_args()
    rows = []
    for ex in a.executors:
        start_s = 0.0
        if ex == "ray":
            import ray

            t0 = time.perf_counter()
            ray.init(address="local", include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
            start_s = time.perf_counter() - t0
        for name, ov in WORKLOADS.items():
            rows.append({"executor": ex, "workload": name, **measure(ex, ov, a.trials), "cluster_start_s": start_s})
            print(rows[-1], flush=True)
        if ex == "ray":
            ray.shutdown()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; load {os.getloadavg()}")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda x: f"{x:.3f}"))


if __name__ == "__main__":
    main()
