#!/usr/bin/env python
"""Question: does TPE find better networks than random search at an equal number of trials?

Runs the real `nas search` on the CIFAR-10 subset for each sampler and seed
(same trial budget, same seeds), then reports per run: best reward, best
validation accuracy among trials with MACs <= T, and wall time.

    .venv/bin/python bench/search_samplers.py [--trials 12] [--seeds 0 1] [--workers 1] [key=value ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch
import yaml


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=12)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--samplers", nargs="+", default=["tpe", "random"])
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--npz", default="../shared/data/cifar10-train-10k.npz", help="'none': the overrides name the data")
    p.add_argument("--out", default="experiments/bench-samplers")
    p.epilog = "Any key=value argument, anywhere on the line, is passed to nas search as an override."
    overrides = [x for x in sys.argv[1:] if "=" in x and not x.startswith("-")]
    a = p.parse_args([x for x in sys.argv[1:] if x not in overrides])
    a.overrides = overrides
    npz = a.npz if a.npz == "none" else str(Path(a.npz).resolve())
    rows = []
    for seed in a.seeds:
        for sampler in a.samplers:
            run = Path(a.out) / f"{sampler}-s{seed}"
            data = [] if a.npz == "none" else ["data=npz", f"data.path={npz}"]
            cmd = [sys.executable, "-m", "nas.cli", "search", f"sampler={sampler}", f"seed={seed}",
                   f"trials={a.trials}", f"workers={a.workers}", *data, "verbose=0", f"run={run}",
                   *a.overrides]  # fmt: skip
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            wall = time.perf_counter() - t0
            df = pd.read_parquet(run / "trials.parquet")
            ok = df[df["state"] == "COMPLETE"]
            target = float(yaml.safe_load((run / "config.yaml").read_text())["reward"]["T"])
            within = ok[ok["macs"] <= target]
            rows.append({"sampler": sampler, "seed": seed, "trials": len(df), "complete": len(ok),
                         "best_reward": ok["reward"].max(), "best_acc_within_T": within["accuracy"].max(),
                         "best_acc": ok["accuracy"].max(), "wall_s": wall})  # fmt: skip
            print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    dev = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(f"device: {dev}; data {a.npz}; {a.trials} trials per run; overrides {a.overrides}")
    print(df.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    print(df.groupby("sampler")[["best_reward", "best_acc_within_T", "wall_s"]].agg(["mean", "sem"]).to_string())


if __name__ == "__main__":
    main()
