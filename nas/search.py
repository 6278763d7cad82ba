"""`nas search`: an Optuna study in a run directory, resumable, in-process, in k worker processes or on Ray.

The study setup (nas/study.py), the trial function (nas/objective.py) and the
results (nas/results.py) are the same for every executor; this module holds the
run directory, the progress bar and the local executors.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import optuna
import pandas as pd
from optuna.trial import FrozenTrial
from tqdm import tqdm

from effnas import rundir
from effnas.log import logging_to
from effnas.workers import die_with_parent, run_workers, set_threads
from nas.config import RESUME_MAY_CHANGE, SearchConfig
from nas.objective import Objective, make_setup
from nas.results import LOG, best_row, write_results
from nas.study import open_study, prepare, repair_storage
from training.data import Data, load_data
from training.trainer import resolve_device

log = logging.getLogger("nas")


def run_search(cfg: SearchConfig, run: Path) -> pd.DataFrame:
    """Create or resume the run in `run`; returns the trials table."""
    cfg.check_runnable()
    data = load_data(cfg.data, seed=cfg.seed)  # before the run directory: bad data leaves nothing behind
    with (
        rundir.open_run(run, dict(cfg.source), "search", RESUME_MAY_CHANGE) as resumed,
        logging_to(run / LOG, cfg.verbose),
    ):
        dropped = repair_storage(run)
        if dropped:
            log.warning("%s: dropped %d bytes of a record written halfway (a kill or a full disk)",
                        run / "study.journal", dropped)  # fmt: skip
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if cfg.executor == "ray":
            from nas.ray_executor import run_ray

            return run_ray(cfg, run, data)
        return _run_local(cfg, run, resumed, data)


def _worker_main(run: str, n_trials: int, worker: int, workers: int) -> None:
    die_with_parent()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    set_threads(workers)
    cfg = SearchConfig.from_dict(rundir.read_config(Path(run), "search"))
    device = resolve_device(cfg.device)
    s = open_study(Path(run), cfg, worker)
    s.study.optimize(Objective(make_setup(cfg, device), device, cfg.seed), n_trials=n_trials, catch=(Exception,))


def _run_local(cfg: SearchConfig, run: Path, resumed: bool, data: Data) -> pd.DataFrame:
    s = open_study(run, cfg)
    b = prepare(s, cfg)
    log.info(
        "%s %s: %d/%d trials done, %d to run on %d worker(s)%s",
        "resuming" if resumed else "starting", run, b.done, cfg.trials, b.remaining, cfg.workers,
        f", {b.retried} interrupted trial(s) re-enqueued" if b.retried else "",
    )  # fmt: skip
    bar = tqdm(total=cfg.trials, initial=b.done, desc="trials", unit="trial", disable=cfg.verbose < 1, file=sys.stderr)

    def refresh(df: pd.DataFrame) -> None:
        n = int(sum(df["state"].isin(["COMPLETE", "PRUNED", "FAIL"])))
        bar.update(max(0, n - bar.n))
        best = best_row(df)
        if best is not None:
            bar.set_postfix(best_reward=f"{best['reward']:.4f}", acc=f"{best['accuracy']:.3f}")

    refresh(write_results(run, s, cfg))
    if b.remaining and cfg.workers == 1:
        set_threads(1)
        device = resolve_device(cfg.device)
        obj = Objective(make_setup(cfg, device, data), device, cfg.seed, cfg.verbose)

        def after_trial(_: optuna.Study, t: FrozenTrial) -> None:
            refresh(write_results(run, s, cfg))
            a = t.user_attrs
            log.info("trial %d %s reward %s accuracy %s MACs %s seconds %.1f %s", t.number, t.state.name,
                     _num(a.get("reward")), _num(a.get("accuracy")), a.get("macs"), a.get("seconds") or 0.0,
                     a.get("error", ""))  # fmt: skip

        s.study.optimize(obj, n_trials=b.remaining, catch=(Exception,), callbacks=[after_trial])
    elif b.remaining:
        shares = [b.remaining // cfg.workers + (1 if i < b.remaining % cfg.workers else 0) for i in range(cfg.workers)]
        args = [(str(run), n, i, cfg.workers) for i, n in enumerate(shares) if n]
        bad = run_workers(_worker_main, args, lambda: refresh(write_results(run, s, cfg)))
        if bad:
            log.error("worker process(es) exited with %s", bad)
    df = write_results(run, s, cfg)
    refresh(df)
    bar.close()
    return df


def _num(x: object) -> str:
    return f"{x:.4f}" if isinstance(x, float) else "-"
