"""`executor=ray`: the same search as Ray Tune trials, driven by the same Optuna sampler through
Ray Tune's OptunaSearch, writing to the same journal storage, running the same trial function.

- Data go to workers once, through Ray's object store (`tune.with_parameters`),
  as CPU tensors; each trial moves them to its own device (the GPU Ray assigned
  through CUDA_VISIBLE_DEVICES, bf16 + channels_last there).
- A trial's bookkeeping travels as Tune results; the searcher copies it into the
  Optuna trial's user attributes through the storage's public API.
- `ray.max_failures` retries a trial whose worker died; after that it is
  recorded as failed. `ray.asha=true` stops poor trials early (ASHA).
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import torch

from effnas.raycluster import ray_session, worker_device
from nas import weights
from nas.config import SearchConfig
from nas.objective import Setup, make_setup, run_trial
from nas.results import write_results
from nas.study import STUDY, Study, make_sampler, open_study, prepare
from search_spaces import SearchSpace
from training.data import Data

log = logging.getLogger("nas")
NUMBER = "_number"
"""The config key that carries the Optuna trial number to the Ray trial."""


class _ResultSink:
    """Bookkeeping collected for Tune results: one result per epoch. The last epoch's result waits for
    what is known only after training (history, images/s, seconds), so a trial of N epochs reports N times."""

    def __init__(self, report: Any, epochs: int) -> None:
        self.attrs: dict[str, Any] = {}
        self.report, self.last = report, epochs - 1

    def set(self, key: str, value: Any) -> None:
        self.attrs[key] = value

    def epoch(self, epoch: int, accuracy: float, reward: float) -> None:
        self.attrs["epoch"] = epoch + 1
        if epoch < self.last:
            self.report(dict(self.attrs))


def _trainable(config: dict[str, Any], setup: Setup, seed: int) -> None:
    """One Ray Tune trial: `run_trial` on the worker's device; failures become a result with `error`."""
    from ray import tune

    device = worker_device()
    local = replace(setup, data=setup.data.to(device))
    sink = _ResultSink(tune.report, setup.recipe.epochs)
    try:
        number = int(config.get(NUMBER, 0))
        run_trial(local, lambda: {k: config[k] for k in setup.space.param_names()}, device, seed + number, sink,
                  number=number)  # fmt: skip
    except Exception:
        # Tune wants the metrics in every result; NaN marks them absent, `error` makes the searcher fail the trial
        nan = float("nan")
        sink.attrs.update(
            accuracy=nan, reward=nan, macs=sink.attrs.get("macs", nan), latency_ms=sink.attrs.get("latency_ms", nan)
        )
    tune.report(dict(sink.attrs))


def _search_class() -> type:
    from ray.tune.search.optuna import OptunaSearch

    class _Search(OptunaSearch):
        """OptunaSearch that also copies each result's bookkeeping into the Optuna trial (public API only)."""

        def __init__(self, study: Study, weights_folder: Path, keep_weights: int, **kwargs: Any) -> None:
            super().__init__(storage=study.storage, study_name=STUDY, **kwargs)
            self._study = study
            self._weights, self._keep = weights_folder, keep_weights
            self._numbers: dict[str, int] = {}

        def suggest(self, trial_id: str) -> dict[str, Any] | None:
            config = super().suggest(trial_id)
            if config:
                self._numbers[trial_id] = int(config[NUMBER])
            return config

        def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
            self._attrs(trial_id, result)
            super().on_trial_result(trial_id, result)

        def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
            if result:
                self._attrs(trial_id, result)
            if error and not (result and "error" in result):
                self._set(trial_id, "error", "ray worker failed (retries exhausted)")
            if result and "error" in result:
                result, error = None, True
            super().on_trial_complete(trial_id, result, error)
            weights.prune(self._weights, self._study.study.get_trials(deepcopy=False), self._keep)

        def _attrs(self, trial_id: str, result: dict[str, Any]) -> None:
            for k in RESULT_ATTRS:
                v = result.get(k)
                if v is not None and not (isinstance(v, float) and math.isnan(v)):
                    self._set(trial_id, k, v)

        def _set(self, trial_id: str, key: str, value: Any) -> None:
            if trial_id in self._numbers:
                self._study.set_attr(self._numbers[trial_id], key, value)

    return _Search


RESULT_ATTRS = ("macs", "latency_ms", "n_params", "block_strings", "vector", "device", "accuracy", "reward", "history",
                "images_per_second", "seconds", "error")  # fmt: skip


class _Define:
    """Define-by-run space for OptunaSearch (a class, so Ray can pickle it)."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    def __call__(self, trial: optuna.Trial) -> dict[str, Any]:
        self.space.sample(trial)
        return {NUMBER: trial.number}


def run_ray(cfg: SearchConfig, run: Path, data: Data | None = None) -> pd.DataFrame:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    s = open_study(run, cfg)
    b = prepare(s, cfg, data)
    log.info("ray: %d/%d trials done, %d to run", b.done, cfg.trials, b.remaining)
    if b.remaining == 0:
        return write_results(run, s, cfg)

    with ray_session(cfg.ray):
        # CPU tensors into the object store; the trials write their weights into the run directory, which
        # (like Tune's storage_path) every node must reach
        setup = make_setup(cfg, torch.device("cpu"), data, run)
        search = _search_class()(
            space=_Define(cfg.space),
            metric=["accuracy", cfg.reward.column] if cfg.multi else "reward",
            mode=["max", "min"] if cfg.multi else "max",
            sampler=make_sampler(cfg, cfg.seed + len(s.study.trials)),
            study=s,
            weights_folder=run / weights.DIR,
            keep_weights=cfg.keep_weights,
        )
        # Optuna's pruners do not apply under Ray; ray.asha=true is the equivalent.
        asha = cfg.ray.asha and not cfg.multi
        scheduler = ASHAScheduler(metric="reward", mode="max", grace_period=1) if asha else None
        trainable = tune.with_resources(
            tune.with_parameters(_trainable, setup=setup, seed=cfg.seed),
            {"cpu": cfg.ray.cpus_per_trial, "gpu": cfg.ray.gpus_per_trial},
        )
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=search, scheduler=scheduler, num_samples=b.remaining,
                max_concurrent_trials=cfg.ray.max_concurrent,
                reuse_actors=True,  # a new worker process per trial costs seconds (torch import)
            ),
            run_config=tune.RunConfig(
                name="tune", storage_path=str((run / "ray").resolve()), verbose=min(1, cfg.verbose),
                failure_config=tune.FailureConfig(max_failures=cfg.ray.max_failures),
            ),
        )  # fmt: skip
        tuner.fit()
    return write_results(run, s, cfg)
