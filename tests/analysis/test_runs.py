"""analysis.runs on hand-made data."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import runs as analysis
from nas.reward import HARD, reward
from tests.analysis.helpers import T, make_run


def frame(points: list[tuple[float, float]], cost: str = "macs") -> pd.DataFrame:
    return pd.DataFrame(
        {"number": range(len(points)), cost: [c for c, _ in points], "accuracy": [s for _, s in points]}
    )


def brute_force_front(df: pd.DataFrame, cost: str = "macs", score: str = "accuracy") -> set[int]:
    """The definition, O(n^2): a row stays unless another is <= in cost, >= in score, and differs."""
    rows = list(zip(df.index, df[cost], df[score]))
    return {
        i
        for i, c, s in rows
        if not any(c2 <= c and s2 >= s and (c2, s2) != (c, s) for j, c2, s2 in rows if j != i)
    }  # fmt: skip


# ---------------------------------------------------------------- Pareto front


def test_pareto_front_excludes_dominated_and_keeps_exact_ties():
    pts = [(1, 0.5), (2, 0.7), (2, 0.6), (3, 0.7), (4, 0.9), (4, 0.9), (5, 0.8), (0.5, 0.4)]
    front = analysis.pareto_front(frame(pts))
    # (2, .6): same cost, lower score; (3, .7): same score, higher cost; (5, .8): dominated by (4, .9)
    assert list(zip(front["macs"], front["accuracy"])) == [(0.5, 0.4), (1, 0.5), (2, 0.7), (4, 0.9), (4, 0.9)]
    assert sorted(front["number"]) == [0, 1, 4, 5, 7]
    assert front["macs"].is_monotonic_increasing and front["accuracy"].is_monotonic_increasing


def test_pareto_front_matches_the_definition_on_random_data_with_ties():
    rng = random.Random(0)
    for _ in range(50):
        pts = [(rng.randint(1, 6), rng.randint(0, 5) / 10) for _ in range(rng.randint(1, 25))]
        df = frame(pts)
        assert set(analysis.pareto_front(df).index) == brute_force_front(df)


def test_pareto_front_single_empty_nan_and_params():
    one = frame([(3e8, 0.7)])
    assert analysis.pareto_front(one).equals(one)
    empty = frame([])
    out = analysis.pareto_front(empty)
    assert out.empty and list(out.columns) == list(empty.columns)
    with_nan = frame([(1, np.nan), (np.nan, 0.9), (2, 0.5)])
    assert list(analysis.pareto_front(with_nan)["number"]) == [2]
    by_params = frame([(5e6, 0.7), (4e6, 0.7), (6e6, 0.8)], cost="n_params")
    assert list(analysis.pareto_front(by_params, cost="n_params")["number"]) == [1, 2]


# ---------------------------------------------------------------- reward landscape


@pytest.mark.parametrize("alpha, beta", [(-0.07, -0.07), HARD, (-0.05, -0.3)])
def test_reward_landscape_is_nas_reward(alpha: float, beta: float):
    macs, acc = [T / 3, T / 2, T, T * 1.01, 2 * T], [0.0, 0.25, 0.7, 1.0]
    grid = analysis.reward_landscape(T, alpha, beta, macs=macs, accuracy=acc)
    assert grid.shape == (4, 5)
    for a, m in itertools.product(acc, macs):
        assert grid.loc[a, m] == reward(a, m, T, alpha, beta)
    dense = analysis.reward_landscape(T, alpha, beta, n=30)
    assert (
        dense.shape == (30, 30)
        and dense.columns[0] == pytest.approx(T / 4)
        and dense.columns[-1] == pytest.approx(4 * T)
    )
    rng = np.random.default_rng(0)
    for i, j in rng.integers(0, 30, size=(20, 2)):
        a, m = dense.index[i], dense.columns[j]
        assert dense.iloc[i, j] == reward(a, m, T, alpha, beta)


def test_reward_landscape_rejects_bad_settings():
    with pytest.raises(ValueError, match="reward.T"):
        analysis.reward_landscape(0.0)
    with pytest.raises(ValueError, match="alpha"):
        analysis.reward_landscape(T, alpha=0.5)


# ---------------------------------------------------------------- progress and summaries


def test_best_so_far_per_run(tmp_path: Path):
    df = analysis.load_runs([make_run(tmp_path / "a", "tpe", 0), make_run(tmp_path / "b", "random", 1)])
    prog = analysis.best_so_far(df)
    assert list(prog.columns) == ["run", "sampler", "number", "state", "reward", "best"]
    for run, g in prog.groupby("run"):
        src = df[df["run"] == run].sort_values("number")
        ok = src["reward"].where(src["state"] == "COMPLETE")
        expected = [ok.iloc[: i + 1].max() for i in range(len(src))]
        assert g["best"].tolist() == pytest.approx(expected)
        assert g["best"].is_monotonic_increasing
    assert set(prog["sampler"]) == {"tpe", "random"}


def test_load_runs_and_run_summary(tmp_path: Path):
    a, b = make_run(tmp_path / "x" / "run", "tpe", 0), make_run(tmp_path / "y" / "run", "random", 1)
    df = analysis.load_runs([a, b])
    assert sorted(df["run"].unique()) == ["x/run", "y/run"]  # same folder name: told apart by the parent
    assert (df["reward_T"] == T).all() and (df["reward_alpha"] == -0.07).all()
    s = analysis.run_summary(df).set_index("run")
    assert s.loc["x/run", "complete"] == 6 and s.loc["x/run", "pruned"] == 1 and s.loc["x/run", "fail"] == 1
    done = analysis.completed(df[df["run"] == "y/run"])
    assert s.loc["y/run", "best_reward"] == done["reward"].max()
    assert s.loc["y/run", "front_macs"] == len(analysis.pareto_front(done))
    top = analysis.summary(df, target=T, top=3)
    assert len(top) == 3 and top["reward"].is_monotonic_decreasing and "within_T" in top
    with pytest.raises(ValueError, match="no run"):
        analysis.load_runs([])
