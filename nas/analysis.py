"""Analysis of run directories: load into pandas, Pareto fronts, summaries.

`nas show`, `nas plot` and the notebook all call these.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from nas import rundir


def load_run(path: str | Path) -> pd.DataFrame:
    """trials.parquet of one run, with `run` and `sampler` columns added."""
    p = Path(path)
    cfg = rundir.read_config(p)
    df = rundir.read_trials(p).copy()
    df.insert(0, "run", p.name)
    df.insert(1, "sampler", cfg.get("sampler"))
    return df


def load_runs(paths: Iterable[str | Path]) -> pd.DataFrame:
    frames = [load_run(p) for p in paths]
    if not frames:
        raise ValueError("no run directories given")
    return pd.concat(frames, ignore_index=True)


def completed(df: pd.DataFrame) -> pd.DataFrame:
    return df[(df["state"] == "COMPLETE") & df["accuracy"].notna() & df["macs"].notna()]


def pareto_front(df: pd.DataFrame, cost: str = "macs", score: str = "accuracy") -> pd.DataFrame:
    """Rows not dominated by any other (lower-or-equal cost and higher-or-equal score,
    strictly better in one). Exact ties are all kept. Sorted by cost."""
    d = df.dropna(subset=[cost, score]).sort_values([cost, score], ascending=[True, False], kind="mergesort")
    keep = []
    best = float("-inf")
    last_cost = last_score = None
    for idx, c, s in zip(d.index, d[cost], d[score]):
        if s > best:
            keep.append(idx)
            best = s
            last_cost, last_score = c, s
        elif s == last_score and c == last_cost:
            keep.append(idx)  # an exact duplicate of a front point
    return d.loc[keep]


def summary(df: pd.DataFrame, target: float | None = None, top: int = 10) -> pd.DataFrame:
    """The best `top` completed trials by reward, with the columns a reader needs."""
    cols = ["number", "state", "reward", "accuracy", "macs", "n_params", "seconds", "block_strings"]
    d = completed(df).sort_values("reward", ascending=False).head(top)[cols].copy()
    d["macs_M"] = d["macs"] / 1e6
    if target:
        d["within_T"] = d["macs"] <= target
    return d
