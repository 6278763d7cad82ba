"""A search's results in its run directory: trials.parquet, best_arch.yaml, and reading them back.

    experiments/<run>/
      study.journal    the Optuna storage (journal file, multi-process safe)
      trials.parquet   one row per trial (rebuilt from the storage alone)
      best_arch.yaml   the best architecture (+ block strings, timm arch_def, scores)
      log.txt          the log

Results are never written from an empty storage over existing ones. Reading them needs no Optuna.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from effnas import rundir
from effnas.errors import UserError
from nas import noise
from nas.config import SearchConfig
from search_spaces import Arch, SearchSpace

if TYPE_CHECKING:
    from nas.study import Study

TRIALS = "trials.parquet"
BEST = "best_arch.yaml"
LOG = "log.txt"
_FROM_ATTRS = ["block_strings", "vector", "n_params", "macs", "latency_ms", "accuracy", "reward", "seconds", "device"]
TRIAL_COLUMNS = ["number", "state", *_FROM_ATTRS, "error", "retry_of", "datetime_start", *noise.COLUMNS]
"""The columns of trials.parquet; the space's parameter names stand between `state` and `block_strings`.
The last three: the re-run of the best trials with another seed and what it says (nas/noise.py)."""


def trials_frame(s: Study, space: SearchSpace) -> pd.DataFrame:
    from nas.study import is_interrupted

    rows = []
    for t in s.study.get_trials(deepcopy=False):
        a = t.user_attrs
        state = "INTERRUPTED" if is_interrupted(t) else t.state.name
        rows.append(
            {
                "number": t.number,
                "state": state,
                **{n: t.params.get(n) for n in space.param_names()},
                **{k: a.get(k) for k in _FROM_ATTRS},
                "error": a.get("error", "interrupted" if state == "INTERRUPTED" else None),
                "retry_of": a.get("retry_of"),
                "datetime_start": t.datetime_start,
            }
        )
    columns = TRIAL_COLUMNS[:2] + space.param_names() + TRIAL_COLUMNS[2 : -len(noise.COLUMNS)]
    return noise.add_columns(pd.DataFrame(rows, columns=columns), s.study.user_attrs)


def best_row(df: pd.DataFrame) -> pd.Series | None:
    """The completed trial with the highest reward (None if there is none)."""
    done = df[(df["state"] == "COMPLETE") & df["reward"].notna()]
    return None if done.empty else done.loc[done["reward"].idxmax()]


_best_written: dict[Path, int] = {}  # run -> trial number of the best_arch.yaml this process last wrote


def write_results(run: Path, s: Study, cfg: SearchConfig) -> pd.DataFrame:
    """Rewrite trials.parquet, and best_arch.yaml when the best trial changed (or the file is missing)."""
    df = trials_frame(s, cfg.space)
    if df.empty and (run / TRIALS).is_file():
        raise rundir.RunDirError(
            f"{run / 'study.journal'} holds no trial but {run / TRIALS} exists: refusing to overwrite it "
            "(was the journal deleted?); move the run directory's files away to start over"
        )
    rundir.write_table(run / TRIALS, df)
    best = best_row(df)
    if best is not None:
        number, path = int(best["number"]), run / BEST
        if _best_written.get(run.resolve()) != number or not path.is_file():
            arch = cfg.space.to_arch({n: best[n] for n in cfg.space.param_names()})
            rundir.write_yaml(path, best_arch_record(arch, best, cfg))
            _best_written[run.resolve()] = number
    return df


def best_arch_record(arch: Arch, row: pd.Series, cfg: SearchConfig) -> dict[str, Any]:
    return {
        "trial": int(row["number"]),
        "reward": float(row["reward"]),
        "accuracy": float(row["accuracy"]),
        "macs": int(row["macs"]),
        "n_params": int(row["n_params"]),
        **(
            {"latency_ms": float(row["latency_ms"]), "target_ms": cfg.reward.target}
            if cfg.reward.metric == "latency"
            else {"target_macs": cfg.reward.target}
        ),
        "block_strings": arch.to_block_strings(),
        "timm_arch_def": _timm_or_none(arch),
        "arch": arch.to_dict(),
    }


def _timm_or_none(arch: Arch) -> list[list[str]] | None:
    try:
        return arch.to_timm_arch_def()
    except UserError:
        return None  # pooling skip or SE on a regular conv: timm cannot express it


def read_trials(run: Path) -> pd.DataFrame:
    """trials.parquet of a search run directory (RunDirError if absent or unreadable)."""
    rundir.read_config(run, "search")
    return rundir.read_table(run / TRIALS, "no trial has finished")


def read_search(run: Path) -> tuple[SearchConfig, pd.DataFrame]:
    """The typed config and the trials table of a search run directory."""
    cfg = SearchConfig.from_dict(rundir.read_config(run, "search"))
    return cfg, read_trials(run)


def arch_of_trial(run: Path, trial: int | None = None) -> Arch:
    """The Arch of trial N of a search run (default: the best)."""
    return trial_arch(run, trial)[1]


def trial_arch(run: Path, trial: int | None = None) -> tuple[int, Arch]:
    """(number, Arch) of trial N of a search run (default: the best)."""
    cfg, df = read_search(run)
    if trial is None:
        row = best_row(df)
        if row is None:
            raise UserError(f"{run} has no completed trial yet")
    else:
        rows = df[df["number"] == trial]
        if rows.empty:
            raise UserError(f"{run} has no trial {trial}")
        row = rows.iloc[0]
    params = {n: row[n] for n in cfg.space.param_names()}
    number = int(row["number"])
    return number, cfg.space.to_arch(params).replace(name=f"{cfg.name}-t{number}")


def run_overview(run: Path) -> dict[str, Any]:
    """One row about a run directory of any command, for `nas list` / `nas compare`: its command and state
    (running: a process holds its lock; done; stopped), and for a search its budget and best trial."""
    command = rundir.owner(run) or "?"
    row: dict[str, Any] = {"run": str(run), "command": command}
    running = rundir.in_use(run)
    if command == "search":
        cfg = SearchConfig.from_dict(rundir.read_config(run, "search"))
        df = pd.read_parquet(run / TRIALS) if (run / TRIALS).is_file() else pd.DataFrame(columns=["state"])
        done = int(df["state"].isin(["COMPLETE", "PRUNED", "FAIL"]).sum())
        best = best_row(df) if len(df) else None
        r = cfg.reward
        row.update(trials=f"{done}/{cfg.trials}", sampler=cfg.sampler,
                   **({"T_ms": r.target} if r.metric == "latency" else {"T_M": r.target / 1e6}),
                   best_trial=None if best is None else int(best["number"]),
                   best_reward=None if best is None else float(best["reward"]),
                   accuracy=None if best is None else float(best["accuracy"]),
                   macs_M=None if best is None else float(best["macs"]) / 1e6)  # fmt: skip
        if r.metric == "latency":
            row["latency_ms"] = None if best is None else float(best["latency_ms"])
        finished = done >= cfg.trials
    else:
        finished = any((run / f).is_file() for f in ("metrics.json", "grid.parquet", "family.parquet", "summary.csv"))
    row["state"] = "running" if running else "done" if finished else "stopped"
    return row


def find_runs(folder: Path, depth: int = 3) -> list[Path]:
    """Run directories under `folder` (itself included), `depth` levels deep (multirun jobs: DIR/0, DIR/1)."""
    found, level = [], [folder]
    for _ in range(depth + 1):
        nxt = []
        for d in level:
            if rundir.is_run_dir(d):
                found.append(d)
            elif d.is_dir():
                nxt += sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
        level = nxt
    return sorted(found)
