"""The search driver: an Optuna study in a run directory, resumable, k workers.

Budget = finished trials (complete, pruned, or failed with an error). A trial
whose process died (SIGKILL, Ctrl-C) is marked interrupted on the next start,
does not count, and its architecture is enqueued again, so a re-run of the
same command loses no completed trial, duplicates none, and meets the budget.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing as mp
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import torch
from optuna.trial import FrozenTrial, TrialState
from tqdm import tqdm

from nas import rundir
from nas.data import Data, check_data_config, load_data
from nas.objective import Objective, RewardConfig
from nas.train import Recipe, resolve_device
from search_spaces import Arch, SearchSpace

log = logging.getLogger("nas")
SAMPLERS = ("tpe", "random", "nsga2")
PRUNERS = ("none", "median", "halving")
STUDY = "search"


@dataclass
class Setup:
    space: SearchSpace
    data: Data
    recipe: Recipe
    rc: RewardConfig
    device: torch.device


def check_executor(cfg: dict[str, Any]) -> None:
    """ValueError for an unknown `executor` or bad `ray.*` keys (searches and scaling grids)."""
    if cfg.get("executor", "local") not in ("local", "ray"):
        raise ValueError(f"executor must be local or ray, got {cfg['executor']!r}")
    if cfg.get("executor") == "ray":
        from nas.ray_executor import ray_config

        ray_config(cfg)


def validate(cfg: dict[str, Any]) -> None:
    """Checks that need no data: fail before anything is written."""
    if cfg["sampler"] not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {cfg['sampler']!r}")
    if cfg["pruner"] not in PRUNERS:
        raise ValueError(f"pruner must be one of {PRUNERS}, got {cfg['pruner']!r}")
    if cfg["objective"] not in ("reward", "multi"):
        raise ValueError(f"objective must be reward or multi, got {cfg['objective']!r}")
    check_executor(cfg)
    if int(cfg["trials"]) < 1 or int(cfg["workers"]) < 1:
        raise ValueError("trials and workers must be >= 1")
    RewardConfig.from_mapping(cfg["reward"])
    Recipe.from_mapping(cfg["train"])
    check_data_config(cfg["data"])
    SearchSpace.from_dict(cfg["space"])
    resolve_device(str(cfg["device"]))


def make_setup(cfg: dict[str, Any]) -> Setup:
    device = resolve_device(str(cfg["device"]))
    data = load_data(cfg["data"], seed=int(cfg["seed"])).to(device)
    return Setup(
        SearchSpace.from_dict(cfg["space"]),
        data,
        Recipe.from_mapping(cfg["train"]),
        RewardConfig.from_mapping(cfg["reward"]),
        device,
    )


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=5, multivariate=True, constant_liar=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.NSGAIISampler(seed=seed, population_size=8)


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2)
    return optuna.pruners.NopPruner()


def open_study(run: Path, cfg: dict[str, Any], worker: int = 0) -> optuna.Study:
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(rundir.storage_path(run))))
    directions = ["maximize", "minimize"] if cfg["objective"] == "multi" else ["maximize"]
    existing = len(storage.get_all_studies()) and storage.get_n_trials(storage.get_study_id_from_name(STUDY))
    # Seed by the state of the storage, so a resumed sampler does not replay its first draws.
    seed = int(cfg["seed"]) + 1000 * worker + int(existing or 0)
    return optuna.create_study(
        study_name=STUDY,
        storage=storage,
        sampler=make_sampler(cfg["sampler"], seed),
        pruner=make_pruner(cfg["pruner"]),
        directions=directions,
        load_if_exists=True,
    )


def is_interrupted(t: FrozenTrial) -> bool:
    return t.state == TrialState.FAIL and "error" not in t.user_attrs


def counts_toward_budget(t: FrozenTrial) -> bool:
    return t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (t.state == TrialState.FAIL and not is_interrupted(t))


def recover(study: optuna.Study, space: SearchSpace) -> int:
    """Mark trials left RUNNING by a dead process as interrupted; enqueue their points again."""
    storage = study._storage
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    n = 0
    for t in trials:
        if is_interrupted(t) and t.number not in retried and set(t.params) == set(space.param_names()):
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
            n += 1
    return n


TRIAL_COLUMNS = ["number", "state", "block_strings", "vector", "n_params", "macs", "accuracy", "reward",
                 "seconds", "device", "error", "retry_of", "datetime_start"]  # fmt: skip


def trials_frame(study: optuna.Study, space: SearchSpace) -> pd.DataFrame:
    rows = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        state = "INTERRUPTED" if is_interrupted(t) else t.state.name
        rows.append(
            {
                "number": t.number,
                "state": state,
                **{n: t.params.get(n) for n in space.param_names()},
                "block_strings": a.get("block_strings"),
                "vector": a.get("vector"),
                "n_params": a.get("n_params"),
                "macs": a.get("macs"),
                "accuracy": a.get("accuracy"),
                "reward": a.get("reward"),
                "seconds": a.get("seconds"),
                "device": a.get("device"),
                "error": a.get("error", "interrupted" if state == "INTERRUPTED" else None),
                "retry_of": a.get("retry_of"),
                "datetime_start": t.datetime_start,
            }
        )
    return pd.DataFrame(rows, columns=TRIAL_COLUMNS[:2] + space.param_names() + TRIAL_COLUMNS[2:])


def best_row(df: pd.DataFrame) -> pd.Series | None:
    done = df[(df["state"] == "COMPLETE") & df["reward"].notna()]
    return None if done.empty else done.loc[done["reward"].idxmax()]


_best_written: dict[Path, int] = {}  # run -> trial number of the best_arch.yaml this process last wrote


def write_results(run: Path, study: optuna.Study, space: SearchSpace, cfg: dict[str, Any]) -> pd.DataFrame:
    """Rewrite trials.parquet, and best_arch.yaml when the best trial changed (or the file is missing)."""
    df = trials_frame(study, space)
    rundir.write_parquet(run / rundir.TRIALS, df)
    best = best_row(df)
    if best is not None:
        number, path = int(best["number"]), run / rundir.BEST
        if _best_written.get(run.resolve()) != number or not path.is_file():
            arch = space.to_arch({n: best[n] for n in space.param_names()})
            rundir.write_yaml(path, best_arch_record(arch, best, cfg))
            _best_written[run.resolve()] = number
    return df


def best_arch_record(arch: Arch, row: pd.Series, cfg: dict[str, Any]) -> dict[str, Any]:
    return {
        "trial": int(row["number"]),
        "reward": float(row["reward"]),
        "accuracy": float(row["accuracy"]),
        "macs": int(row["macs"]),
        "n_params": int(row["n_params"]),
        "target_macs": float(cfg["reward"]["T"]),
        "block_strings": arch.to_block_strings(),
        "timm_arch_def": _timm_or_none(arch),
        "arch": arch.to_dict(),
    }


def _timm_or_none(arch: Arch) -> list[list[str]] | None:
    try:
        return arch.to_timm_arch_def()
    except ValueError:
        return None  # pooling skip or SE on a regular conv: timm cannot express it


def _set_threads(workers: int) -> None:
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _worker_main(run: str, n_trials: int, worker: int, workers: int) -> None:
    _die_with_parent()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _set_threads(workers)
    cfg = rundir.read_config(Path(run))
    s = make_setup(cfg)
    study = open_study(Path(run), cfg, worker)
    obj = Objective(s.space, s.data, s.recipe, s.rc, s.device, cfg["objective"] == "multi", int(cfg["seed"]))
    study.optimize(obj, n_trials=n_trials, catch=(Exception,))


def run_search(cfg: dict[str, Any], run: Path) -> pd.DataFrame:
    """Create or resume the run in `run`; returns the trials table."""
    validate(cfg)
    rundir.check_usable(run)
    run.mkdir(parents=True, exist_ok=True)
    with rundir.locked(run):
        resumed = rundir.prepare(run, cfg)
        handler = logging.FileHandler(run / rundir.LOG)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        handlers: list[logging.Handler] = [handler]
        if int(cfg["verbose"]) >= 2:  # per-epoch lines on the terminal too
            console = logging.StreamHandler(sys.stderr)
            console.setFormatter(logging.Formatter("%(message)s"))
            handlers.append(console)
        for h in handlers:
            for name in ("nas", "optuna"):
                logging.getLogger(name).addHandler(h)
        log.setLevel(logging.INFO)
        try:
            return _run_locked(cfg, run, resumed)
        finally:
            for h in handlers:
                for name in ("nas", "optuna"):
                    logging.getLogger(name).removeHandler(h)
                h.close()


def _run_locked(cfg: dict[str, Any], run: Path, resumed: bool) -> pd.DataFrame:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if cfg.get("executor") == "ray":
        from nas.ray_executor import run_ray

        return run_ray(cfg, run)
    space = SearchSpace.from_dict(cfg["space"])
    study = open_study(run, cfg)
    if not study.trials and cfg.get("enqueue_base", True):
        study.enqueue_trial(space.params_of(space.base), user_attrs={"base": True})
    retried = recover(study, space)
    budget, workers = int(cfg["trials"]), int(cfg["workers"])
    done = sum(counts_toward_budget(t) for t in study.get_trials(deepcopy=False))
    remaining = max(0, budget - done)
    log.info(
        "%s %s: %d/%d trials done, %d to run on %d worker(s)%s",
        "resuming" if resumed else "starting", run, done, budget, remaining, workers,
        f", {retried} interrupted trial(s) re-enqueued" if retried else "",
    )  # fmt: skip
    bar = tqdm(
        total=budget, initial=done, desc="trials", unit="trial", disable=int(cfg["verbose"]) < 1, file=sys.stderr
    )

    def refresh(df: pd.DataFrame) -> None:
        n = int(sum(df["state"].isin(["COMPLETE", "PRUNED", "FAIL"])))
        bar.update(max(0, n - bar.n))
        best = best_row(df)
        if best is not None:
            bar.set_postfix(best_reward=f"{best['reward']:.4f}", acc=f"{best['accuracy']:.3f}")

    refresh(write_results(run, study, space, cfg))
    if remaining and workers == 1:
        _set_threads(1)
        s = make_setup(cfg)
        obj = Objective(space, s.data, s.recipe, s.rc, s.device, cfg["objective"] == "multi", int(cfg["seed"]))
        obj.verbose = int(cfg["verbose"])

        def after_trial(st: optuna.Study, t: FrozenTrial) -> None:
            refresh(write_results(run, st, space, cfg))
            log.info("trial %d %s %s", t.number, t.state.name, t.user_attrs.get("error", ""))

        study.optimize(obj, n_trials=remaining, catch=(Exception,), callbacks=[after_trial])
    elif remaining:
        ctx = mp.get_context("spawn")
        shares = [remaining // workers + (1 if i < remaining % workers else 0) for i in range(workers)]
        procs = [ctx.Process(target=_worker_main, args=(str(run), n, i, workers)) for i, n in enumerate(shares) if n]
        for p in procs:
            p.start()
        while any(p.is_alive() for p in procs):
            time.sleep(1.0)
            refresh(write_results(run, study, space, cfg))
        bad = [p.exitcode for p in procs if p.exitcode]
        if bad:
            log.error("worker process(es) exited with %s", bad)
    df = write_results(run, study, space, cfg)
    refresh(df)
    bar.close()
    return df
