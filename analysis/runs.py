"""Analysis of run directories: load into pandas, Pareto fronts, reward landscapes, summaries.

`nas show`, `nas plot` and the notebook all call these; none of them re-implements
the reward (`nas.reward.reward` is the one formula).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from effnas import rundir
from effnas.errors import UserError
from nas.config import SearchConfig
from nas.results import best_row, read_trials
from nas.reward import SOFT, check_reward_params, reward
from search_spaces.latency import parse_time

REWARD_COLUMNS = ("reward_T", "reward_alpha", "reward_beta")
"""Per-row copy of the run's reward settings (T in the metric's unit: MACs or ms; alpha, beta), added by
`load_run` with `reward_metric` (macs | latency)."""


def cost_column(df: pd.DataFrame) -> str:
    """The column the runs' reward counted as cost: latency_ms when every run used reward.metric=latency."""
    latency = "reward_metric" in df.columns and len(df) and (df["reward_metric"] == "latency").all()
    return "latency_ms" if latency else "macs"


FAMILY_FILES = ("family.parquet", "family.csv")

EFFICIENTNET_PAPER = pd.DataFrame(
    {
        "name": [f"B{i}" for i in range(8)],
        "phi": list(range(8)),
        "params": [5.3e6, 7.8e6, 9.2e6, 12e6, 19e6, 30e6, 43e6, 66e6],
        "flops": [0.39e9, 0.70e9, 1.0e9, 1.8e9, 4.2e9, 9.9e9, 19e9, 37e9],
        "top1": [77.1, 79.1, 80.1, 81.6, 82.9, 83.6, 84.0, 84.3],
    }
)
"""EfficientNet paper, Table 2: params, FLOPs (multiply-adds) and ImageNet top-1 (%) of B0..B7."""


def load_run(path: str | Path) -> pd.DataFrame:
    """trials.parquet of one run, with `run` and `sampler` columns first and the reward settings last.

    RunDirError (a ValueError) when the directory is missing, foreign, or has no trials yet.
    """
    p = Path(path)
    cfg = rundir.read_config(p, "search")
    df = read_trials(p).copy()
    df.insert(0, "run", p.resolve().name)
    df.insert(1, "sampler", cfg.get("sampler"))
    try:  # which trial is the space's base network (trial 0 with enqueue_base), for the plots to mark it
        base = " ".join(SearchConfig.from_dict(cfg).space.base.to_block_strings())
        df["is_base"] = df["block_strings"] == base
    except (UserError, KeyError, TypeError):
        df["is_base"] = False
    rc = cfg.get("reward") or {}
    df["reward_metric"] = rc.get("metric", "macs")
    df["reward_T"] = parse_time(rc["T"]) if df["reward_metric"].iloc[0] == "latency" else float(rc.get("T", np.nan))
    df["reward_alpha"] = float(rc.get("alpha", SOFT[0]))
    df["reward_beta"] = float(rc.get("beta", SOFT[1]))
    return df


def search_runs(folder: str | Path) -> list[str]:
    """The search run directories under `folder` that have finished trials (the notebook's default); a
    UserError that says what to do when there is none."""
    from nas.results import find_runs

    root = Path(folder)
    found = [str(r) for r in find_runs(root) if rundir.owner(r) == "search" and (r / "trials.parquet").is_file()]
    if not found:
        raise UserError(f"no search run with finished trials under {root.resolve()}: run one first (the README's "
                        "quick start, `nas search`), or set RUN_DIRS to your run directories")  # fmt: skip
    return found


def load_runs(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Several runs in one frame; runs with the same folder name are told apart by their parent."""
    dirs = [Path(p) for p in paths]
    frames = [load_run(p) for p in dirs]
    if not frames:
        raise UserError("no run directories given")
    names = [p.resolve().name for p in dirs]
    for f, p, name in zip(frames, dirs, names):
        if names.count(name) > 1:
            f["run"] = f"{p.resolve().parent.name}/{name}"
    return pd.concat(frames, ignore_index=True)


def completed(df: pd.DataFrame) -> pd.DataFrame:
    """Trials that finished with an accuracy and a cost."""
    return df[(df["state"] == "COMPLETE") & df["accuracy"].notna() & df["macs"].notna()]


def pareto_front(df: pd.DataFrame, cost: str = "macs", score: str = "accuracy") -> pd.DataFrame:
    """The rows no other row dominates (minimise `cost`, maximise `score`), sorted by cost.

    Row a dominates row b when cost(a) <= cost(b) and score(a) >= score(b), one of
    them strictly. Tie rule: rows equal in BOTH cost and score do not dominate
    each other, so exact duplicates of a front point are all kept; a row that
    ties on one axis only and is worse on the other (same cost, lower score; same
    score, higher cost) is dominated and dropped. Rows with a missing cost or
    score are ignored. Pass completed trials (see `completed`).
    """
    d = df.dropna(subset=[cost, score]).sort_values([cost, score], ascending=[True, False], kind="mergesort")
    keep = []
    best = float("-inf")
    last: tuple[float, float] | None = None
    for idx, c, s in zip(d.index, d[cost], d[score]):
        if s > best:  # better than every cheaper-or-equal row
            keep.append(idx)
            best = s
            last = (c, s)
        elif (c, s) == last:  # an exact duplicate of the last front point
            keep.append(idx)
    return d.loc[keep]


def landscape_ranges(df: pd.DataFrame, points: int = 5) -> tuple[list[float], list[float]]:
    """Costs (MACs, or ms for latency runs) and accuracy values for a reward table around the data: costs
    geometric from the cheapest trial (or T/2) to the dearest (or 2T), accuracies at the completed trials'
    quantiles."""
    done = completed(df)
    T = float(df["reward_T"].iloc[0])
    col = cost_column(df)
    lo, hi = min(float(done[col].min()), T / 2), max(float(done[col].max()), 2 * T)
    acc = done["accuracy"].astype(float)
    accuracies = sorted({round(float(q), 3) for q in acc.quantile(np.linspace(0, 1, points))})
    costs = np.geomspace(lo, hi, points)
    return [float(m) for m in (costs.round(-3) if col == "macs" else costs.round(3))], accuracies


def reward_landscape(
    target: float,
    alpha: float = SOFT[0],
    beta: float = SOFT[1],
    macs: Sequence[float] | np.ndarray | None = None,
    accuracy: Sequence[float] | np.ndarray | None = None,
    n: int = 80,
) -> pd.DataFrame:
    """Reward over a (MACs, accuracy) grid: `grid.loc[acc, m] == nas.reward.reward(acc, m, target, alpha, beta)`.

    Index: accuracy (fraction, ascending); columns: MACs (ascending). Defaults:
    `n` MACs log-spaced over [T/4, 4T] and `n` accuracies over [0, 1]. Draw
    iso-reward lines with `ax.contour(grid.columns, grid.index, grid.to_numpy())`.
    """
    check_reward_params(target, alpha, beta)
    m = np.geomspace(target / 4, target * 4, n) if macs is None else np.sort(np.asarray(macs, dtype=float))
    a = np.linspace(0.0, 1.0, n) if accuracy is None else np.sort(np.asarray(accuracy, dtype=float))
    values = [[reward(float(acc), float(x), target, alpha, beta) for x in m] for acc in a]
    grid = pd.DataFrame(values, index=pd.Index(a, name="accuracy"), columns=pd.Index(m, name="macs"))
    grid.attrs.update(target=target, alpha=alpha, beta=beta)
    return grid


def best_so_far(df: pd.DataFrame, score: str = "reward") -> pd.DataFrame:
    """Per run, by trial number: the trial's `score` and the best completed `score` up to it.

    Columns: run, sampler, number, state, <score>, best. Trials that did not
    complete carry the best so far forward (NaN before the first completed one).
    """
    cols = ["run", "sampler", "number", "state", score]
    order = {r: i for i, r in enumerate(dict.fromkeys(df["run"]))}  # keep the runs in load order
    d = df[cols].sort_values(["run", "number"], key=lambda c: c.map(order) if c.name == "run" else c, kind="mergesort")
    d = d.reset_index(drop=True)
    ok = d[score].where(d["state"] == "COMPLETE")
    d["best"] = ok.groupby(d["run"]).cummax()
    d["best"] = d.groupby("run")["best"].ffill()
    return d


def summary(df: pd.DataFrame, target: float | None = None, top: int = 10, cost: str = "macs") -> pd.DataFrame:
    """The best `top` completed trials by reward, with the columns a reader needs; `within_T`: `cost` (the
    reward's column, macs or latency_ms) <= `target`."""
    cols = ["number", "state", "reward", "accuracy", "macs", "n_params", "seconds", "block_strings"]
    cols += ["latency_ms"] if cost == "latency_ms" else []
    cols += [c for c in ("recheck_reward", "within_noise_of_best") if c in df.columns]  # runs since the re-runs
    if "run" in df.columns:
        cols = ["run", *cols]
    d = completed(df).sort_values("reward", ascending=False).head(top)[cols].copy()
    d["macs_M"] = d["macs"] / 1e6
    if target:
        d["within_T"] = d[cost] <= target
    return d


def run_summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run (a frame from `load_runs`): trial counts by state, the best trial, front sizes."""
    rows = []
    for run, g in df.groupby("run", sort=False):
        done = completed(g)
        row: dict[str, object] = {"run": run, "sampler": g["sampler"].iloc[0], "trials": len(g)}
        for state in ("COMPLETE", "PRUNED", "FAIL"):
            row[state.lower()] = int((g["state"] == state).sum())
        target = float(g["reward_T"].iloc[0]) if "reward_T" in g.columns else np.nan
        col = cost_column(g)
        if col == "macs":
            row["T_M"] = target / 1e6
        else:
            row["T_ms"] = target
        best = best_row(g)
        row["best_number"] = int(best["number"]) if best is not None else pd.NA
        row["best_reward"] = float(best["reward"]) if best is not None else np.nan
        row["best_accuracy"] = float(best["accuracy"]) if best is not None else np.nan
        row["best_macs_M"] = float(best["macs"]) / 1e6 if best is not None else np.nan
        row["best_params_M"] = float(best["n_params"]) / 1e6 if best is not None else np.nan
        if col == "latency_ms":
            row["best_latency_ms"] = float(best["latency_ms"]) if best is not None else np.nan
        row["within_T"] = int((done[col] <= target).sum()) if np.isfinite(target) else pd.NA
        row["front_macs"] = len(pareto_front(done, "macs"))
        row["front_params"] = len(pareto_front(done, "n_params"))
        rows.append(row)
    return pd.DataFrame(rows)


def reward_settings(df: pd.DataFrame) -> pd.DataFrame:
    """Distinct (reward_T, reward_alpha, reward_beta) of a `load_runs` frame, with the runs using each."""
    cols = list(REWARD_COLUMNS)
    return df.groupby(cols, sort=False)["run"].unique().apply(list).reset_index().rename(columns={"run": "runs"})


def load_family(path: str | Path) -> pd.DataFrame:
    """A family table written by `scale family --out DIR`: DIR, or its family.parquet / family.csv."""
    p = Path(path)
    if p.is_dir():
        found = [p / f for f in FAMILY_FILES if (p / f).is_file()]
        if not found:
            raise UserError(f"{p} has no {' or '.join(FAMILY_FILES)} (write one with `scale family --out {p}`)")
        p = found[0]
    if not p.is_file():
        raise UserError(f"family table {p} does not exist")
    try:
        t = pd.read_csv(p) if p.suffix == ".csv" else pd.read_parquet(p)
    except Exception as e:
        raise UserError(f"cannot read family table {p} ({type(e).__name__})") from None
    missing = {"phi", "macs"} - set(t.columns)
    if missing:
        raise UserError(f"{p} is not a family table (missing columns {sorted(missing)})")
    return t.sort_values("phi").reset_index(drop=True)
