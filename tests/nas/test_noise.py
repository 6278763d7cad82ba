"""The run's own noise: which trials are re-run, the sd estimate, the threshold and its t quantile."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nas import noise


def trials(rewards: list[float], rechecks: dict[int, float]) -> pd.DataFrame:
    df = pd.DataFrame({"number": range(len(rewards)), "state": "COMPLETE", "reward": rewards})
    attrs = {f"recheck_{n}": {"seed": 0, "accuracy": r, "reward": r} for n, r in rechecks.items()}
    return noise.add_columns(df, attrs)


def test_t_quantile_matches_scipy():
    for dof in range(1, 120):
        assert noise.t975(dof) == pytest.approx(stats.t.ppf(0.975, dof), abs=1e-3), dof


def test_estimate_and_marks():
    df = trials([0.50, 0.48, 0.30, 0.47, 0.20], {0: 0.46, 1: 0.50})
    n = noise.estimate(df)
    assert n is not None and n.reruns == 2 and (n.best, n.runner_up) == (0, 1)
    sd = math.sqrt(((0.50 - 0.46) ** 2 + (0.48 - 0.50) ** 2) / 2 / 2)
    assert n.sd == pytest.approx(sd)
    assert n.threshold == pytest.approx(stats.t.ppf(0.975, 2) * math.sqrt(2) * sd, rel=1e-3)
    assert n.gap == pytest.approx(0.02) and not n.gap_beyond_noise
    inside = df["reward"] >= 0.50 - n.threshold
    assert df["within_noise_of_best"].astype(bool).tolist() == inside.tolist()
    assert "within the noise" in n.describe()
    # a clear winner: the same noise, a gap far beyond it
    wide = noise.estimate(trials([0.90, 0.48, 0.30], {0: 0.91, 1: 0.47}))
    assert wide is not None and wide.gap_beyond_noise and "beyond the noise" in wide.describe()


def test_identical_reruns_give_no_estimate():
    df = trials([0.1, 0.1, 0.1], {0: 0.1})
    assert df["within_noise_of_best"].isna().all()
    n = noise.estimate(df)
    assert n is not None and n.sd == 0 and not n.gap_beyond_noise and "no estimate" in n.describe()


def test_which_trials_are_rerun():
    df = trials([0.3, 0.5, np.nan, 0.4], {1: 0.45})
    df.loc[3, "state"] = "PRUNED"
    assert noise.to_recheck(df, 2) == [0]  # the best two complete: 1 (done already) and 0
    assert noise.to_recheck(df, 0) == [] and noise.recheck_seed(7, 3) == 7 + 1_000_000 + 3
    assert noise.estimate(trials([0.3], {})) is None
