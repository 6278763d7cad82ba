"""A search states its own noise: its best trials trained again with seeds no trial used.

One proxy training of an architecture moves by a few points between two seeds
(bench/RESULTS.md), often more than the gap between the best trials of a
search. After its budget, `nas search` trains its `recheck` best completed
trials (by reward) once more, with seed `run seed + RECHECK_SEED + trial
number`, and keeps each result in the study as the user attribute
`recheck_<number>`, so the storage alone still rebuilds every result.

From the n re-run pairs it estimates the standard deviation of one run's
reward, sd = sqrt(mean(d^2) / 2) over the differences d of each pair, with n
degrees of freedom. A difference of two runs has standard deviation sqrt(2) x
sd; a trial whose reward is within t x sqrt(2) x sd of the best one's, t the
two-sided 95% quantile of Student's t with n degrees of freedom (12.7 for one
re-run, 4.30 for two, 1.96 for many), is `within_noise_of_best`: this proxy
cannot tell it from the best. (The best of many trials is also the luckiest,
so a gap beyond this threshold is still an optimistic reading.) Re-runs that
reproduce their rewards exactly give no estimate: nothing is marked then.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

RECHECK_SEED = 1_000_000
"""Added to the run's seed and the trial number: far from every trial's own seed (run seed + number)."""
ATTR = "recheck_"
_T975 = ("12.706 4.303 3.182 2.776 2.571 2.447 2.365 2.306 2.262 2.228 2.201 2.179 2.160 2.145 2.131 "
         "2.120 2.110 2.101 2.093 2.086 2.080 2.074 2.069 2.064 2.060 2.056 2.052 2.048 2.045 2.042")  # fmt: skip
"""Student's t two-sided 95% quantiles for 1..30 degrees of freedom."""
COLUMNS = ["recheck_accuracy", "recheck_reward", "within_noise_of_best"]


def recheck_seed(run_seed: int, number: int) -> int:
    return run_seed + RECHECK_SEED + number


def to_recheck(df: pd.DataFrame, k: int) -> list[int]:
    """Numbers of the k best completed trials by reward that have no re-run yet."""
    done = df[(df["state"] == "COMPLETE") & df["reward"].notna()].sort_values("reward", ascending=False)
    return [int(n) for n, r in zip(done["number"].head(k), done["recheck_reward"].head(k)) if pd.isna(r)]


def add_columns(df: pd.DataFrame, study_attrs: Mapping[str, Any]) -> pd.DataFrame:
    """The re-run scores (from the study's user attributes) and `within_noise_of_best`, as columns of df."""
    runs = {int(k[len(ATTR) :]): v for k, v in study_attrs.items() if k.startswith(ATTR)}
    df = df.copy()
    df["recheck_accuracy"] = [runs.get(int(n), {}).get("accuracy", math.nan) for n in df["number"]]
    df["recheck_reward"] = [runs.get(int(n), {}).get("reward", math.nan) for n in df["number"]]
    df["within_noise_of_best"] = pd.Series(pd.NA, index=df.index, dtype="boolean")
    n = estimate(df)
    if n is not None and n.sd > 0:
        ok = (df["state"] == "COMPLETE") & df["reward"].notna()
        df.loc[ok, "within_noise_of_best"] = df.loc[ok, "reward"] >= n.best_reward - n.threshold
    return df


def t975(dof: int) -> float:
    """Student's t 0.975 quantile: the table to 30 degrees of freedom, then Cornish-Fisher's expansion."""
    if dof < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {dof}")
    table = _T975.split()
    if dof <= len(table):
        return float(table[dof - 1])
    z = 1.959964
    return z + (z**3 + z) / (4 * dof) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * dof**2)


@dataclass(frozen=True)
class Noise:
    reruns: int
    sd: float
    """Estimated standard deviation of one run's reward."""
    threshold: float
    """t975(reruns) x sqrt(2) x sd: a smaller difference between two trials' rewards is inside the noise."""
    best: int
    best_reward: float
    runner_up: int | None
    gap: float
    """Reward of the best minus that of the runner-up (NaN without a runner-up)."""
    pairs: list[tuple[int, float, float]]
    """(trial, reward, reward of the re-run) per re-run trial."""

    @property
    def gap_beyond_noise(self) -> bool:
        return self.sd > 0 and self.gap > self.threshold

    def describe(self) -> str:
        runs = ", ".join(f"#{n} {a:.4f} -> {b:.4f}" for n, a, b in self.pairs)
        head = f"noise: {self.reruns} trial(s) trained again with another seed ({runs})"
        if self.sd == 0:
            return f"{head}: the same rewards again, so no estimate of the noise (do the trials learn at all?)"
        head += f"; one run's sd of the reward ~ {self.sd:.4f} ({self.reruns} degree(s) of freedom)"
        if self.runner_up is None:
            return head
        verdict = "beyond" if self.gap_beyond_noise else "within"
        return (f"{head}; the best trial #{self.best} leads #{self.runner_up} by {self.gap:.4f}, {verdict} the noise "
                f"(t x sqrt(2) x sd = {self.threshold:.4f})")  # fmt: skip


def estimate(df: pd.DataFrame) -> Noise | None:
    """The noise of a trials table with re-run columns (None when no trial was re-run)."""
    if "recheck_reward" not in df.columns:
        return None
    done = df[(df["state"] == "COMPLETE") & df["reward"].notna()].sort_values("reward", ascending=False)
    pairs = done[done["recheck_reward"].notna()]
    if pairs.empty or done.empty:
        return None
    d = pairs["reward"].astype(float) - pairs["recheck_reward"].astype(float)
    sd = math.sqrt(float((d**2).mean()) / 2)
    best = done.iloc[0]
    second = done.iloc[1] if len(done) > 1 else None
    return Noise(
        reruns=len(pairs),
        sd=sd,
        threshold=t975(len(pairs)) * math.sqrt(2) * sd,
        best=int(best["number"]),
        best_reward=float(best["reward"]),
        runner_up=None if second is None else int(second["number"]),
        gap=math.nan if second is None else float(best["reward"]) - float(second["reward"]),
        pairs=[(int(r["number"]), float(r["reward"]), float(r["recheck_reward"])) for _, r in pairs.iterrows()],
    )
