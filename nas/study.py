"""The Optuna study of a run directory, set up once for every executor.

Budget = finished trials (complete, pruned, or failed with an error). A trial
whose process died (SIGKILL, Ctrl-C) is marked interrupted on the next start,
does not count, and its architecture is enqueued again, so a re-run of the
same command loses no completed trial, duplicates none, and meets the budget.
Only Optuna's public API is used (storages are opened here and kept).
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.storages.journal import JournalFileBackend
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from effnas.errors import UserError
from effnas.rundir import MARKER, RunDirError, owner, repair_lines
from nas.config import SearchConfig
from training.data import Data

STUDY = "search"
log = logging.getLogger("nas")
STORAGE = "study.journal"


@dataclass
class Study:
    """The study and the storage it lives in (both public handles)."""

    study: optuna.Study
    storage: optuna.storages.BaseStorage

    def trial_id(self, number: int) -> int:
        study_id = self.storage.get_study_id_from_name(STUDY)
        return self.storage.get_trial_id_from_study_id_trial_number(study_id, number)

    def set_attr(self, number: int, key: str, value: object) -> None:
        self.storage.set_trial_user_attr(self.trial_id(number), key, value)


class _NoInterrupts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[0] if record.exc_info else None
        if exc is not None and issubclass(exc, KeyboardInterrupt):
            return False
        return not record.getMessage().endswith("failed with value None.")  # said already, with the reason


def quiet_interrupts() -> None:
    """Drop Optuna's warning (with traceback) for a trial stopped by Ctrl-C or SIGTERM: the command prints
    its one-line resume hint instead, and the next start marks the trial interrupted. Also Optuna's second
    line for every failed trial ("failed with value None"): the first one gave the reason."""
    optimize = logging.getLogger("optuna.study._optimize")  # the logger Optuna reports failed trials on
    if not any(isinstance(f, _NoInterrupts) for f in optimize.filters):
        optimize.addFilter(_NoInterrupts())


def make_sampler(cfg: SearchConfig, seed: int) -> optuna.samplers.BaseSampler:
    name = cfg.sampler
    if name == "evolution":
        from nas.samplers import RegularizedEvolutionSampler

        return RegularizedEvolutionSampler(cfg.evolution.population, cfg.evolution.tournament, seed=seed)
    if name == "rl":  # its draws are keyed by trial number: the run's own seed, not the shifted one
        from nas.rl import for_space

        return for_space(cfg.space, cfg.rl, cfg.seed)
    if name == "local":
        from nas.samplers import LocalSearchSampler

        return LocalSearchSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=5, multivariate=True, constant_liar=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=8)
    raise UserError(f"unknown sampler {name!r}")


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2)
    return optuna.pruners.NopPruner()


def _valid_record(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def repair_storage(run: Path) -> int:
    """Cut a journal whose last record was written halfway back to its last whole record (bytes dropped)."""
    return repair_lines(run / STORAGE, _valid_record)


def check_storage(run: Path, results: tuple[str, ...]) -> None:
    """RunDirError when a search run has results but no journal to go with them: a new study would write
    its first trial's results over them (B0 is enqueued before any trial runs). Read-only: called before
    the run directory is opened, so a refused command leaves every file as it was."""
    if not (run / MARKER).is_file() or owner(run) != "search":
        return  # a new directory, or another command's: open_run says what is wrong with it
    journal = run / STORAGE
    left = [name for name in results if (run / name).exists()]
    if left and (not journal.is_file() or journal.stat().st_size == 0):
        raise RunDirError(
            f"{journal} is missing or empty but {', '.join(left)} exist: refusing to start a new study over "
            "them (was the journal deleted?); move the run directory's files away to start over"
        )


class SignalSafeJournal(JournalFileBackend):
    """Optuna's journal file with Ctrl-C and SIGTERM held back while records are written and the file's lock
    released; the signal is raised again right after. A stop that landed inside the lock's release made
    Optuna unlink its rename file twice: the trial failed with FileNotFoundError (counted against the
    budget, never retried) and the command ended 0 instead of 130 (seen once in the parallel test suite).
    The Python-level handlers are swapped, not the thread's signal mask: a signal sent to the process may
    be taken by any thread (torch's), and Python runs its handler in the main thread all the same."""

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        if threading.current_thread() is not threading.main_thread():
            return super().append_logs(logs)
        caught: list[int] = []
        held = {s: signal.signal(s, lambda n, _: caught.append(n)) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            return super().append_logs(logs)
        finally:
            for s, handler in held.items():
                signal.signal(s, handler)
            if caught:
                signal.raise_signal(caught[0])  # now, in this thread, to the command's own handler


def open_study(run: Path, cfg: SearchConfig, worker: int = 0) -> Study:
    storage = optuna.storages.JournalStorage(SignalSafeJournal(str(run / STORAGE)))
    directions = [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE] if cfg.multi else [StudyDirection.MAXIMIZE]
    try:
        existing = storage.get_n_trials(storage.get_study_id_from_name(STUDY)) if storage.get_all_studies() else 0
    except Exception as e:  # a journal Optuna cannot replay: refuse rather than append after it
        raise RunDirError(f"{run / STORAGE} is corrupt ({type(e).__name__}: {e}); move it away to start over") from None
    # Seed by the state of the storage, so a resumed sampler does not replay its first draws.
    seed = cfg.seed + 1000 * worker + existing
    study = optuna.create_study(
        study_name=STUDY,
        storage=storage,
        sampler=make_sampler(cfg, seed),
        pruner=make_pruner(cfg.pruner),
        directions=directions,
        load_if_exists=True,
    )
    return Study(study, storage)


def is_interrupted(t: FrozenTrial) -> bool:
    return t.state == TrialState.FAIL and "error" not in t.user_attrs


def counts_toward_budget(t: FrozenTrial) -> bool:
    return t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (t.state == TrialState.FAIL and not is_interrupted(t))


def recover(s: Study, param_names: list[str]) -> int:
    """Mark trials left RUNNING by a dead process as interrupted; enqueue their points again."""
    for t in s.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        s.storage.set_trial_state_values(s.trial_id(t.number), TrialState.FAIL)
    trials = s.study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    n = 0
    for t in trials:
        if is_interrupted(t) and t.number not in retried and set(t.params) == set(param_names):
            s.study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
            n += 1
    return n


def describe(s: Study, cfg: SearchConfig) -> None:
    """What the study is, inside the study (a new one): the objective's names (optuna-dashboard and
    `trials_dataframe` show them), the reward's target and exponents (nas/reward.py), the space's
    choices, the composed config."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        s.study.set_metric_names(["accuracy", cfg.reward.column] if cfg.multi else ["reward"])
    r = cfg.reward
    latency = {"table": r.table, "table_sha256": r.latency_table().sha256} if r.metric == "latency" else {}
    s.study.set_user_attr("reward", {"metric": r.metric, "T": r.T, "alpha": r.alpha, "beta": r.beta,
                                     "resolution": r.resolution, "num_classes": r.num_classes, **latency})  # fmt: skip
    s.study.set_user_attr("space", {n: list(cfg.space.choices[n.split("_", 1)[1]]) for n in cfg.space.param_names()})
    s.study.set_user_attr("config", json.loads(json.dumps(dict(cfg.source), default=str)))


def warmup_picks(cfg: SearchConfig, data: Data | None) -> tuple[list[tuple[float, dict[str, Any]]], int]:
    """The zero-cost warm-up's choice: `warmup.pool` distinct random points of the space other than the base
    (seeded by the run's seed), scored untrained by `warmup.score`; the best `warmup.top` as (score, params),
    best first, and the pool's size (a small space may have fewer distinct points)."""
    import random

    from nas.zerocost import score
    from training.data import load_data

    w = cfg.warmup
    data = data or load_data(cfg.data, seed=cfg.seed)
    rng = random.Random(cfg.seed)
    base = cfg.space.to_arch(cfg.space.params_of(cfg.space.base)).to_json() if cfg.enqueue_base else None
    pool: dict[str, dict[str, Any]] = {}
    for _ in range(50 * w.pool):
        params = cfg.space.random(rng)
        key = cfg.space.to_arch(params).to_json()
        if key != base:
            pool.setdefault(key, params)
        if len(pool) == w.pool:
            break
    scored = []
    for i, params in enumerate(pool.values()):
        value, _ = score(w.score, cfg.space.to_arch(params), data, cfg.seed, resolution=cfg.reward.resolution,
                         num_classes=cfg.reward.num_classes)  # fmt: skip
        scored.append((value, i, params))
    scored.sort(key=lambda t: (-t[0], t[1]))
    return [(value, params) for value, _, params in scored[: w.top]], len(pool)


def warm_up(s: Study, cfg: SearchConfig, data: Data | None) -> None:
    """Enqueue the zero-cost warm-up's picks (`warmup_picks`), each with its score; the pool's record is a
    study attribute."""
    import time

    start = time.perf_counter()
    picks, pool = warmup_picks(cfg, data)
    for value, params in picks:
        s.study.enqueue_trial(params, user_attrs={"warmup_score": value})
    seconds = time.perf_counter() - start
    w = cfg.warmup
    s.study.set_user_attr("warmup", {"score": w.score, "pool": pool, "top": w.top, "seconds": seconds})
    log.info("warm-up: %d architectures scored by %s in %.1fs, the best %d enqueued", pool, w.score, seconds,
             len(picks))  # fmt: skip


@dataclass
class Budget:
    done: int
    remaining: int
    retried: int


def prepare(s: Study, cfg: SearchConfig, data: Data | None = None) -> Budget:
    """The one study setup of every executor: B0 first, then the zero-cost warm-up's picks (a new study
    only), interrupted trials re-enqueued, the budget counted."""
    if not s.study.trials:
        describe(s, cfg)
        if cfg.enqueue_base:
            s.study.enqueue_trial(cfg.space.params_of(cfg.space.base), user_attrs={"base": True})
        if cfg.warmup.pool:
            warm_up(s, cfg, data)
    retried = recover(s, cfg.space.param_names())
    done = sum(counts_toward_budget(t) for t in s.study.get_trials(deepcopy=False))
    return Budget(done, max(0, cfg.trials - done), retried)
