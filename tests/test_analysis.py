"""nas.analysis on hand-made data, and `nas plot` (real command, subprocess) on hand-made run directories."""

from __future__ import annotations

import itertools
import os
import random
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nas import analysis, rundir
from nas.plot import plot_command
from nas.reward import HARD, reward
from tests.conftest import PYTHON, ROOT

T = 400e6


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
    rundir.prepare(path, cfg)
    if with_trials:
        rundir.write_parquet(path / rundir.TRIALS, trials(seed))
    return path


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


# ---------------------------------------------------------------- nas plot


def nas(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [PYTHON, "-m", "nas.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )  # fmt: skip


def family_dir(path: Path, accuracy: bool = False) -> Path:
    from scaling.family import family, family_table, pure_multipliers
    from search_spaces import preset

    b0 = preset("efficientnet-b0")
    table = family_table(family(b0, 1.2, 1.1, 1.15, range(4)), b0, pure_multipliers(1.2, 1.1, 1.15, range(4)))
    if accuracy:
        table["accuracy"] = [0.77, 0.79, 0.80, 0.81]
    path.mkdir(parents=True)
    table.to_parquet(path / "family.parquet", index=False)
    return path


def assert_images(out: Path, stems: list[str]) -> None:
    for stem in stems:
        png, svg = out / f"{stem}.png", out / f"{stem}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert "<svg" in svg.read_text()[:2000], svg


RUN_FIGURES = ["accuracy_vs_macs", "accuracy_vs_params", "progress"]
FAMILY_FIGURES = ["family", "efficientnet_reference"]


def test_nas_plot_runs_and_family(tmp_path: Path):
    a, b = make_run(tmp_path / "tpe", "tpe", 0), make_run(tmp_path / "random", "random", 1)
    fam = family_dir(tmp_path / "fam")
    p = nas("plot", str(a), str(b), "--family", str(fam), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert_images(a / "plots", RUN_FIGURES + FAMILY_FIGURES)  # default --out: the first RUN/plots
    assert len(p.stdout.split()) == 2 * len(RUN_FIGURES + FAMILY_FIGURES)


def test_plot_command_out_family_file_and_accuracy(tmp_path: Path):
    fam = family_dir(tmp_path / "fam", accuracy=True)
    written = plot_command([], out=tmp_path / "figs", family=fam / "family.parquet")
    assert_images(tmp_path / "figs", FAMILY_FIGURES)
    assert len(written) == 4
    assert_images(Path(plot_command([], family=fam)[0]).parent, FAMILY_FIGURES)  # default: FAMILY/plots
    assert (fam / "plots").is_dir()


def one_line_error(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 2, (p.stdout, p.stderr)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    assert "Traceback" not in p.stderr
    return lines[0]


def test_nas_plot_on_missing_or_empty_run_is_one_error_line(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    assert "does not exist" in one_line_error(nas("plot", str(tmp_path / "missing"), cwd=tmp_path))
    assert "not an effnas run directory" in one_line_error(nas("plot", str(tmp_path / "empty"), cwd=tmp_path))
    assert not (tmp_path / "empty" / "plots").exists()


@pytest.mark.parametrize(
    "args, message",
    [(["{tmp}/fresh"], "no trials.parquet"), ([], "nothing to plot"), (["--family", "{tmp}/empty"], "no family")],
)
def test_nas_plot_user_errors_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str], args, message):
    from nas.cli import main

    (tmp_path / "empty").mkdir()
    make_run(tmp_path / "fresh", "tpe", 0, with_trials=False)
    assert main(["plot", *(a.format(tmp=tmp_path) for a in args)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
