"""`nas search`: an Optuna study in a run directory, resumable, in-process, in k worker processes or on Ray.

The study setup (nas/study.py), the trial function (nas/objective.py) and the
results (nas/results.py) are the same for every executor; this module holds the
run directory, the progress bar and the local executors.
"""

from __future__ import annotations

import logging
import numbers
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import optuna
import pandas as pd
from optuna.trial import FrozenTrial
from tqdm import tqdm

from effnas import rundir
from effnas.errors import UserError
from effnas.log import logging_to
from effnas.workers import die_with_parent, run_workers, set_threads
from nas import noise, weights
from nas.config import RESUME_MAY_CHANGE, SearchConfig
from nas.objective import Objective, make_setup, run_trial
from nas.results import BEST, LOG, TRIALS, best_row, write_results
from nas.study import check_storage, open_study, prepare, quiet_interrupts, repair_storage
from training.data import Data, load_data
from training.trainer import resolve_device

log = logging.getLogger("nas")


def run_search(cfg: SearchConfig, run: Path) -> pd.DataFrame:
    """Create or resume the run in `run`; returns the trials table."""
    cfg.check_runnable()
    data = load_data(cfg.data, seed=cfg.seed)  # before the run directory: bad data leaves nothing behind
    check_storage(run, (TRIALS, BEST))
    stored = cfg.run_config()
    if cfg.reward.metric == "latency" and rundir.is_run_dir(run):
        saved = rundir.read_config(run, "search").get("reward") or {}
        if saved.get("table_sha256") and saved["table_sha256"] != stored["reward"]["table_sha256"]:
            raise UserError(f"reward.table {cfg.reward.table} is not the table {run} was started with (sha256 "
                            f"{stored['reward']['table_sha256'][:12]}, the run's {saved['table_sha256'][:12]}): "
                            "restore that table or use another run directory")  # fmt: skip
    with (
        rundir.open_run(run, stored, "search", RESUME_MAY_CHANGE) as resumed,
        logging_to(run / LOG, cfg.verbose),
    ):
        dropped = repair_storage(run)
        if dropped:
            log.warning("%s: dropped %d bytes of a record written halfway (a kill or a full disk)",
                        run / "study.journal", dropped)  # fmt: skip
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        quiet_interrupts()
        timm = cfg.space.timm_incompatible()
        if timm and not resumed:
            # a note in log.txt (and at verbose=2), not a terminal warning: the default space is one of these
            log.info("note: some architectures of this space cannot be exported to timm (%s); space=timm "
                     "searches only what timm can build", "; ".join(timm))  # fmt: skip
        if cfg.executor == "ray":
            from nas.ray_executor import run_ray

            df = run_ray(cfg, run, data)
        else:
            df = _run_local(cfg, run, resumed, data)
        weights.prune(run / weights.DIR, open_study(run, cfg).study.get_trials(deepcopy=False), cfg.keep_weights)
        return _recheck(cfg, run, data, df)


def _recheck(cfg: SearchConfig, run: Path, data: Data, df: pd.DataFrame) -> pd.DataFrame:
    """Train the best `cfg.recheck` trials again with another seed (in this process), once per trial."""
    todo = noise.to_recheck(df, cfg.recheck)
    if not todo:
        return df
    s = open_study(run, cfg)
    device = resolve_device(cfg.device)
    setup = make_setup(cfg, device, data)
    params = {t.number: t.params for t in s.study.get_trials(deepcopy=False) if t.number in todo}
    log.info("training trial(s) %s again with another seed: the run's own noise", todo)
    bar = tqdm(todo, desc="noise check", unit="trial", disable=cfg.verbose < 1, file=sys.stderr)
    for number in bar:
        seed = noise.recheck_seed(cfg.seed, number)
        sink = _Record()
        try:
            acc, cost = run_trial(setup, partial(params.__getitem__, number), device, seed, sink)
        except Exception as e:  # the search's own results stand; say why this estimate is missing
            log.warning("the re-run of trial %d failed (%s): no noise estimate from it", number, e)
            continue
        s.study.set_user_attr(f"{noise.ATTR}{number}", {"seed": seed, "accuracy": acc,
                              "reward": cfg.reward(acc, cost), "seconds": sink.values.get("seconds")})  # fmt: skip
        log.info("trial %d again with seed %d: accuracy %.4f (was %.4f)", number, seed, acc,
                 float(df.loc[df["number"] == number, "accuracy"].iloc[0]))  # fmt: skip
    bar.close()
    return write_results(run, s, cfg)


class _Record:
    """A trial sink that keeps what it is told (the re-runs are not Optuna trials)."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def set(self, key: str, value: object) -> None:
        self.values[key] = value

    def epoch(self, epoch: int, accuracy: float, reward: float) -> None:
        pass


def _worker_main(run: str, n_trials: int, worker: int, workers: int) -> None:
    die_with_parent()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    quiet_interrupts()
    set_threads(workers)
    cfg = SearchConfig.from_dict(rundir.read_config(Path(run), "search"))
    device = resolve_device(cfg.device)
    s = open_study(Path(run), cfg, worker)
    s.study.optimize(Objective(make_setup(cfg, device, run=Path(run)), device, cfg.seed), n_trials=n_trials,
                     catch=(Exception,), callbacks=[keep_best_weights(Path(run), cfg.keep_weights)])  # fmt: skip


def keep_best_weights(run: Path, keep: int) -> Callable[[optuna.Study, FrozenTrial], None]:
    """An Optuna callback: after each finished trial, the weights of the best `keep` trials stay."""

    def callback(study: optuna.Study, _: FrozenTrial) -> None:
        weights.prune(run / weights.DIR, study.get_trials(deepcopy=False), keep)

    return callback


def _run_local(cfg: SearchConfig, run: Path, resumed: bool, data: Data) -> pd.DataFrame:
    s = open_study(run, cfg)
    b = prepare(s, cfg, data)
    log.info(
        "%s %s: %d/%d trials done, %d to run on %d worker(s)%s",
        "resuming" if resumed else "starting", run, b.done, cfg.trials, b.remaining, cfg.workers,
        f", {b.retried} interrupted trial(s) re-enqueued" if b.retried else "",
    )  # fmt: skip
    bar = tqdm(total=cfg.trials, initial=b.done, desc="trials", unit="trial", disable=cfg.verbose < 1, file=sys.stderr)

    finished = ["COMPLETE", "PRUNED", "FAIL"]
    logged: set[int] = set()

    def refresh(df: pd.DataFrame) -> None:
        """The progress bar, and a log line for each trial finished since (whichever process ran it)."""
        ended = df[df["state"].isin(finished)]
        for _, t in ended[~ended["number"].isin(logged)].iterrows():
            log.info("trial %d %s reward %s accuracy %s MACs %s seconds %.1f %s", t["number"], t["state"],
                     _num(t.get("reward")), _num(t.get("accuracy")), _int(t.get("macs")),
                     _float(t.get("seconds")), t.get("error") if isinstance(t.get("error"), str) else "")  # fmt: skip
            logged.add(int(t["number"]))
        bar.update(max(0, len(ended) - bar.n))
        if cfg.multi:  # two objectives: no single best, the front is the result
            done = df[(df["state"] == "COMPLETE") & df["accuracy"].notna()]
            if len(done):  # (the front itself: `nas show`, analysis.pareto_front)
                bar.set_postfix(best_acc=f"{done['accuracy'].max():.3f}", min_MACs=f"{done['macs'].min() / 1e6:.0f}M")
            return
        best = best_row(df)
        if best is not None:
            bar.set_postfix(best_reward=f"{best['reward']:.4f}", acc=f"{best['accuracy']:.3f}")

    first = write_results(run, s, cfg)
    logged.update(int(n) for n in first.loc[first["state"].isin(finished), "number"])  # said in an earlier run
    refresh(first)
    if b.remaining and cfg.workers == 1:
        set_threads(1)
        device = resolve_device(cfg.device)
        obj = Objective(make_setup(cfg, device, data, run), device, cfg.seed, cfg.verbose)
        keep = keep_best_weights(run, cfg.keep_weights)

        def after_trial(study: optuna.Study, t: FrozenTrial) -> None:
            keep(study, t)
            refresh(write_results(run, s, cfg))

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
    return f"{float(x):.4f}" if isinstance(x, numbers.Real) and x == x else "-"


def _int(x: object) -> str:
    return str(round(float(x))) if isinstance(x, numbers.Real) and x == x else "-"


def _float(x: object) -> float:
    return float(x) if isinstance(x, numbers.Real) and x == x else 0.0
