"""Shared by the analysis tests: hand-made trials tables and run directories."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from effnas import rundir
from nas.reward import reward

T = 400e6


def trials(sampler_seed: int, n: int = 8) -> pd.DataFrame:
    """A plausible trials.parquet: accuracies 50..90 %, MACs 150M..900M, a pruned and a failed trial."""
    rng = np.random.default_rng(sampler_seed)
    acc = rng.uniform(0.5, 0.9, n).round(3)
    macs = rng.uniform(150e6, 900e6, n).round()
    state = ["COMPLETE"] * n
    state[2], state[5] = "PRUNED", "FAIL"
    df = pd.DataFrame(
        {
            "number": range(n),
            "state": state,
            "accuracy": acc,
            "macs": macs.astype("int64"),
            "n_params": rng.integers(2_000_000, 7_000_000, n),
            "seconds": 1.0,
            "block_strings": "r1_k3_s11_e1_i32_o16",
        }
    )
    df["reward"] = [reward(a, m, T) for a, m in zip(df["accuracy"], df["macs"])]
    df.loc[df["state"] == "FAIL", ["accuracy", "reward"]] = np.nan
    return df


def make_run(path: Path, sampler: str, seed: int, with_trials: bool = True) -> Path:
    cfg = {"name": "synthetic", "sampler": sampler, "reward": {"T": T, "alpha": -0.07, "beta": -0.07}}
    with rundir.open_run(path, cfg, "search"):
        if with_trials:
            rundir.write_table(path / "trials.parquet", trials(seed))
    return path
